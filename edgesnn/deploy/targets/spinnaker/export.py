"""SpiNNaker export for PyNN, in `pynn/`:
``network.json`` (``inputs``/``outputs``, PyNN populations with cell class
and parameters in PyNN units, projections as FromListConnector lists ``[pre, post, weight_nA,
delay_ms]`` per receptor type, all as sPyNNaker takes them) and ``build_pynn.py``, which builds
it with ``pyNN.spiNNaker`` or, with ``--backend``, another PyNN backend (converting signs, delta
weights and brian2's delay and refractory conventions), feeds ``--spikes`` (the CSR input of
``edgesnn deploy --check-on``) and writes the recorded spikes (``--out``). Run with pyNN.brian2
it agrees with the float model within +-1 step (tests/deploy/test_pynn_brian2.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgesnn.deploy.profile import Profile
from edgesnn.deploy.quantize import QuantizedModel


def export(qm: QuantizedModel, prof: Profile, out: Path) -> list[str]:
    """The target's toolchain files in out (`write_pynn` into out/pynn)."""
    return write_pynn(qm, prof, out / "pynn")


_PYNN_SCRIPT = '''"""Build the exported network (network.json beside this file) with PyNN, run it.

Usage: python build_pynn.py [RUN_MS] [--backend spiNNaker|brian2|NAME] [--spikes IN.npz]
                            [--out SPIKES.npz]

--spikes: input spikes as CSR over steps (in_ptr int64 steps+1, in_idx int32 indices into the
concatenated input populations, network.json "inputs" order), the format of
`edgesnn deploy --check-on`; step k is sent at k * timestep_ms. --out: every neuron
population's spikes as CSR over steps (<label>.ptr, <label>.idx) with "steps". RUN_MS defaults
to the input's length, else 1000 ms. Needs only numpy and PyNN with the backend.

network.json lists the numbers sPyNNaker takes (the backend "spiNNaker"). Other backends get
PyNN's standard units: inhibitory current weights negative, IF_curr_delta weights times the
population's "pynn_weight_scale" (edgesnn's SpiNNaker model applies a delta weight as a current
for one step through R = 1 MOhm; PyNN's meaning is a jump of v in mV). pyNN.brian2 applies a
spike delivered with delay D after the state update of that step, one step later than
sPyNNaker and edgesnn, so there delays are one step shorter; a jump of v delivered there would
be undone by a reset of the same step and leaked once more, so IF_curr_delta runs as
IF_curr_exp with a current pulse (tau_syn = timestep / 100) that moves v by the weight within
the step it arrives for; and brian2 holds v for tau_refrac / timestep - 1 steps (sPyNNaker and
edgesnn: tau_refrac / timestep), so tau_refrac is one step longer there.
"""

import argparse
import importlib
import json
import math
from pathlib import Path

import numpy as np


#: brian2: IF_curr_delta runs as IF_curr_exp with tau_syn = PULSE * timestep (see above)
PULSE = 1e-2


def build_and_run(sim, net, backend, in_ptr=None, in_idx=None, run_ms=None):
    """Build the network with the PyNN module `sim`, feed the input spikes, run; returns
    {population label: (steps, neuron indices)} of every neuron population."""
    dt = float(net["timestep_ms"])
    spinnaker = backend.lower() == "spinnaker"
    brian2 = backend.lower() == "brian2"
    sim.setup(timestep=dt)
    if brian2:
        import brian2 as b2

        b2.defaultclock.dt = dt * b2.ms  # pyNN.brian2 puts spike sources on this clock
    times = {}
    if in_ptr is not None:
        steps = np.repeat(np.arange(len(in_ptr) - 1), np.diff(in_ptr))
        off = 0
        for label in net["inputs"]:
            size = next(p["size"] for p in net["populations"] if p["label"] == label)
            times[label] = [(np.unique(steps[in_idx == off + i]) * dt).tolist()
                            for i in range(size)]
            off += size
        if run_ms is None:
            run_ms = (len(in_ptr) - 1) * dt
    pops, info = {}, {}
    for p in net["populations"]:
        info[p["label"]] = p
        if p["cellclass"] == "SpikeSourceArray":
            st = times.get(p["label"], [[] for _ in range(p["size"])])
            pops[p["label"]] = sim.Population(p["size"], sim.SpikeSourceArray(spike_times=st),
                                              label=p["label"])
        else:
            cp, cls = dict(p["cellparams"]), p["cellclass"]
            if brian2 and cp.get("tau_refrac", 0.0) > 0:
                cp["tau_refrac"] += dt  # brian2 holds v for tau_refrac / dt - 1 steps
            if brian2 and cls == "IF_curr_delta":
                cls = "IF_curr_exp"
                cp["tau_syn_E"] = cp["tau_syn_I"] = dt * PULSE
            cell = getattr(sim, cls)(**cp)
            pops[p["label"]] = sim.Population(p["size"], cell, label=p["label"])
            pops[p["label"]].record("spikes")
    for pr in net["projections"]:
        if not pr["connections"]:
            continue
        post = info[pr["post"]]
        c = np.asarray(pr["connections"], dtype=float)
        if not spinnaker:
            if post["cellclass"] == "IF_curr_delta":
                c[:, 2] *= post.get("pynn_weight_scale", 1.0)
                if brian2:  # the current pulse that moves v by the weight within one step
                    tm, ts, cm = (post["cellparams"]["tau_m"], dt * PULSE,
                                  post["cellparams"]["cm"])
                    c[:, 2] *= cm * (tm - ts) / (tm * ts * (math.exp(-dt / tm)
                                                            - math.exp(-dt / ts)))
            if pr["receptor_type"] == "inhibitory":
                c[:, 2] = -c[:, 2]
        if brian2:
            c[:, 3] -= dt
        conns = [[int(a), int(b), float(w), float(d)] for a, b, w, d in c]
        sim.Projection(pops[pr["pre"]], pops[pr["post"]], sim.FromListConnector(conns),
                       receptor_type=pr["receptor_type"])
    sim.run(float(run_ms) if run_ms is not None else 1000.0)
    out = {}
    for label, pop in pops.items():
        if info[label]["cellclass"] == "SpikeSourceArray":
            continue
        ks, ns = [], []
        for i, st in enumerate(pop.get_data("spikes").segments[0].spiketrains):
            i = int(st.annotations.get("source_index", i))
            t = np.asarray(st.rescale("ms").magnitude, dtype=float)
            ks.append(np.rint(t / dt).astype(np.int64))
            ns.append(np.full(t.size, i, np.int64))
        k = np.concatenate(ks) if ks else np.zeros(0, np.int64)
        n = np.concatenate(ns) if ns else np.zeros(0, np.int64)
        order = np.lexsort((n, k))
        out[label] = (k[order], n[order])
    sim.end()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_ms", nargs="?", type=float, default=None)
    ap.add_argument("--backend", default="spiNNaker", help="pyNN.<backend> (default spiNNaker)")
    ap.add_argument("--spikes", default=None, help="input spikes .npz (in_ptr, in_idx)")
    ap.add_argument("--out", default=None, help="write the recorded spikes here (.npz)")
    a = ap.parse_args()
    net = json.loads((Path(__file__).parent / "network.json").read_text())
    if a.backend == "brian2":
        import brian2

        brian2.prefs.codegen.target = "numpy"  # no C compiler needed
    sim = importlib.import_module(f"pyNN.{a.backend}")
    in_ptr = in_idx = None
    if a.spikes:
        with np.load(a.spikes) as z:
            in_ptr = z["in_ptr"].astype(np.int64)
            in_idx = z["in_idx"].astype(np.int64)
    dt = float(net["timestep_ms"])
    run_ms = a.run_ms
    if run_ms is None:
        run_ms = (len(in_ptr) - 1) * dt if in_ptr is not None else 1000.0
    out = build_and_run(sim, net, a.backend, in_ptr, in_idx, run_ms)
    if a.out:
        n_steps = int(round(run_ms / dt))
        arrays = {"steps": np.int64(n_steps)}
        for label, (k, n) in out.items():
            ptr = np.searchsorted(k, np.arange(n_steps + 1)).astype(np.int64)
            arrays[f"{label}.ptr"] = ptr
            arrays[f"{label}.idx"] = n[: ptr[-1]].astype(np.int32)
        np.savez(a.out, **arrays)
    for label, (k, _) in out.items():
        print(f"{label}: {k.size} spikes")


if __name__ == "__main__":
    main()
'''


def write_pynn(qm: QuantizedModel, prof: Profile, out: Path) -> list[str]:
    """pynn/network.json and pynn/build_pynn.py (PyNN populations and projections)."""
    out.mkdir(parents=True, exist_ok=True)
    dt_ms = qm.dt_us / 1000.0
    frac = 1 << int(prof["state"]["frac_bits"])
    pops = []
    for lay in qm.layers:
        if lay.is_input:
            pops.append({"label": lay.name, "size": lay.n, "cellclass": "SpikeSourceArray"})
            continue
        pp, info = lay.params, lay.info
        tau_m = float(info.get("tau_m_ms", 20.0))
        cp = {"tau_m": tau_m, "cm": tau_m, "v_rest": pp["v_rest"] / frac,
              "v_reset": pp["v_reset"] / frac, "v_thresh": pp["v_thresh"] / frac,
              "tau_refrac": pp["t_refract"] * dt_ms,
              "i_offset": float(lay.bias[0]) / frac if lay.n else 0.0}  # fmt: skip
        if not pp["delta"]:
            cp["tau_syn_E"] = float(info.get("tau_syn_e_ms", 5.0))
            cp["tau_syn_I"] = float(info.get("tau_syn_i_ms", 5.0))
        if lay.n and np.any(lay.bias != lay.bias[0]):
            cp["i_offset"] = (lay.bias / frac).tolist()
        pop = {"label": lay.name, "size": lay.n,
               "cellclass": "IF_curr_delta" if pp["delta"] else "IF_curr_exp",
               "cellparams": cp, "shift_exc": pp["shift_e"], "shift_inh": pp["shift_i"]}
        if pp["delta"]:  # the listed weights are currents of one step: k * w is the mV jump
            pop["pynn_weight_scale"] = float(info.get("k_effective", 1.0))
        pops.append(pop)  # fmt: skip
    projs = []
    for p in qm.projections:
        post = qm.layer(p.target)
        for c, receptor in ((0, "excitatory"), (1, "inhibitory")):
            sel = p.ch == c
            sh = post.params["shift_e" if c == 0 else "shift_i"]
            w_na = p.w[sel] * 2.0 ** (sh - int(prof["state"]["frac_bits"]))
            conns = [[int(a), int(b), float(w), float(d) * dt_ms] for a, b, w, d in
                     zip(p.pre[sel], p.post[sel], w_na, p.delay[sel])]  # fmt: skip
            if conns:
                projs.append({"name": p.name, "pre": p.source, "post": p.target,
                              "receptor_type": receptor, "connections": conns})  # fmt: skip
    doc = {"format": "edgesnn-pynn", "version": 1, "profile": qm.profile, "timestep_ms": dt_ms,
           "inputs": qm.inputs, "outputs": qm.outputs, "populations": pops,
           "projections": projs,
           "note": "numbers as sPyNNaker takes them: weights in nA on the ring-buffer grid of "
                   "shift_exc/shift_inh, magnitudes per receptor type; delays in ms (edgesnn "
                   "delay + 1 step); tau_refrac = held steps * timestep. build_pynn.py converts "
                   "them for other PyNN backends"}  # fmt: skip
    (out / "network.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    (out / "build_pynn.py").write_text(_PYNN_SCRIPT, encoding="utf-8")
    return ["pynn/network.json", "pynn/build_pynn.py"]
