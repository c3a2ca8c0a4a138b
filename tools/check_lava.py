"""Run an exported Loihi network in Intel's lava-nc and compare it with edgesnn's emulation.

    python tools/check_lava.py OUT_DIR [--spikes REC.npz | --recording FILE --pipeline P]
        [--steps 200 --rate 0.1 --seed 0] [--cfg loihi2|loihi1] [--lava-python PY] [--json]

OUT_DIR is what `edgesnn deploy MODEL --profile loihi1|loihi2 --out OUT_DIR` wrote. The lava
network is built from ``loihi/network.json`` and ``loihi/weights.npz`` alone: a RingBuffer per
input layer, per projection a Dense (or DelayDense) with the exported weights, weight_exp,
num_weight_bits and sign_mode, per layer a LIF with du, dv, vth, bias_mant, bias_exp, and one
Monitor each on s_out, u and v; run with ``Loihi2SimCfg`` (``--cfg loihi1``: Loihi1SimCfg) and
``select_tag="fixed_pt"``, i.e. lava's bit-accurate models (PyLifModelBitAcc,
PyDenseModelBitAcc, PyDelayDenseModelBitAcc). The emulation is `edgesnn.deploy.Emulator` on
``OUT_DIR/quantized.npz``, from rest, without resets.

Input: an input-spike .npz (``in_ptr``/``in_idx`` CSR over steps, as `edgesnn deploy
--check-on` takes), a sensor recording encoded by a pipeline (``--recording`` with
``--pipeline``, ``--max-steps``), or Bernoulli spikes (``--steps``, ``--rate``, ``--seed``).

lava-nc 0.10 needs Python 3.10 and numpy < 2, edgesnn Python >= 3.11: the emulation runs in
this interpreter and lava in ``--lava-python`` (default: ``$EDGESNN_LAVA_PYTHON``, else this
interpreter), which needs only numpy and lava-nc; this file runs there with ``--lava-worker``.

Prints per layer the spike counts, the share of lava's spike raster that edgesnn reproduces and
whether spikes, u and v are identical at every step, then "identical" or the first difference
(step, layer, neuron, variable, both values). Exit 0: identical; 1: they differ; 2: cannot run.
lava's bit-accurate LIF has no refractory period: layers exported with refractory_delay > 1 are
named in a warning (their differences are expected).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
VARS = ("s", "u", "v")


# --- the lava half (numpy and lava only: runs under Python 3.10) --------------------------------


def run_lava(net_dir: Path, inp: dict[str, np.ndarray], steps: int, cfg: str
             ) -> dict[str, np.ndarray]:  # fmt: skip
    """Build the lava processes from network.json + weights.npz, run `steps` steps; returns
    per neuron layer "<name>.s|u|v" arrays of shape (steps, n). `inp`: per input layer (n, steps)
    spikes."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi1SimCfg, Loihi2SimCfg
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor
    from lava.utils.weightutils import SignMode

    doc = json.loads((net_dir / "network.json").read_text(encoding="utf-8"))
    with np.load(net_dir / "weights.npz") as z:
        arr = {k: z[k] for k in z.files}
    procs, lifs, mons, conns = {}, {}, {}, []
    for lay in doc["layers"]:
        name, n = lay["name"], int(lay["shape"][0])
        if lay["process"] == "input":
            data = inp.get(name, np.zeros((n, steps), np.int32))
            procs[name] = RingBuffer(data=data.astype(np.int32))
            continue
        lif = LIF(shape=(n,), du=int(lay["du"]), dv=int(lay["dv"]), vth=int(lay["vth"]),
                  bias_mant=arr[lay["bias_mant"]].astype(np.int32),
                  bias_exp=arr[lay["bias_exp"]].astype(np.int32))  # fmt: skip
        procs[name] = lifs[name] = lif
        mons[name] = []
        for var in (lif.s_out, lif.u, lif.v):  # a lava Monitor holds one probe
            m = Monitor()
            m.probe(var, steps)
            mons[name].append(m)
    for pr in doc["projections"]:
        kw = {"weights": arr[pr["weights"]].astype(np.int32), "weight_exp": int(pr["weight_exp"]),
              "num_weight_bits": int(pr["num_weight_bits"]),
              "sign_mode": SignMode(int(pr["sign_mode"]))}  # fmt: skip
        if pr["process"] == "DelayDense":
            conn = DelayDense(delays=arr[pr["delays"]].astype(int), **kw)  # lava wants int
        else:
            conn = Dense(**kw)
        conns.append(conn)
        procs[pr["source"]].s_out.connect(conn.s_in)
        conn.a_out.connect(procs[pr["target"]].a_in)
    run_cfg = (Loihi1SimCfg if cfg == "loihi1" else Loihi2SimCfg)(
        select_tag="fixed_pt", select_sub_proc_model=True)
    first = next(iter(procs.values()))
    first.run(condition=RunSteps(num_steps=steps), run_cfg=run_cfg)
    out: dict[str, np.ndarray] = {}
    for name, lif in lifs.items():
        for m, var in zip(mons[name], ("s_out", "u", "v")):
            out[f"{name}.{var[0]}"] = np.asarray(m.get_data()[lif.name][var]).astype(np.int64)
    out["models"] = np.array(sorted({p.model_class.__name__ for p in [*procs.values(), *conns]}))
    first.stop()
    return out


def _worker(argv: list[str]) -> int:
    net_dir, inp_path, out_path, cfg = Path(argv[0]), argv[1], argv[2], argv[3]
    with np.load(inp_path) as z:
        inp = {k: z[k] for k in z.files if k != "steps"}
        steps = int(z["steps"])
    np.savez(out_path, **run_lava(net_dir, inp, steps, cfg))
    return 0


# --- the edgesnn half ---------------------------------------------------------------------------


def _input(args: argparse.Namespace, n_inputs: int, dt_us: int) -> tuple[np.ndarray, np.ndarray]:
    """(in_ptr, in_idx) CSR over steps."""
    if args.spikes:
        from edgesnn.deploy.report import load_recording

        rec = load_recording(args.spikes, n_inputs)
        return rec.in_ptr, rec.in_idx.astype(np.int64)
    if args.recording or args.pipeline:
        from edgesnn.deploy import PipelineSource

        rec = PipelineSource(args.pipeline, args.recording, max_steps=args.max_steps
                             ).read(n_inputs, dt_us, False)  # fmt: skip
        return rec.in_ptr, rec.in_idx.astype(np.int64)
    rng = np.random.default_rng(args.seed)
    raster = rng.random((args.steps, n_inputs)) < args.rate
    ptr = np.concatenate([[0], np.cumsum(raster.sum(1))]).astype(np.int64)
    return ptr, np.nonzero(raster)[1].astype(np.int64)


def emulate(qm, in_ptr: np.ndarray, in_idx: np.ndarray  # noqa: ANN001
            ) -> tuple[dict[str, np.ndarray], dict[str, int]]:  # fmt: skip
    """edgesnn's emulation: per neuron layer "<name>.s|u|v" arrays of shape (steps, n), and
    the emulator's overflow counters."""
    from edgesnn.deploy import Emulator

    em = Emulator(qm)
    steps = len(in_ptr) - 1
    names = [lay.name for lay in qm.layers if not lay.is_input]
    out = {f"{n}.{v}": np.zeros((steps, qm.layer(n).n), np.int64) for n in names for v in VARS}
    for k in range(steps):
        em.step(in_idx[in_ptr[k] : in_ptr[k + 1]])
        for n in names:
            i = em.layer_names.index(n)
            out[f"{n}.s"][k, em.layer_spikes(n)] = 1
            out[f"{n}.u"][k] = em.u[i]
            out[f"{n}.v"][k] = em.v[i]
    return out, em.counters


def compare(doc: dict, lava: dict[str, np.ndarray], emu: dict[str, np.ndarray]) -> dict:
    """Per layer identical flags, spike counts and agreement; the first difference."""
    layers, first = {}, None
    for lay in doc["layers"]:
        if lay["process"] == "input":
            continue
        n = lay["name"]
        same = {v: bool(np.array_equal(lava[f"{n}.{v}"], emu[f"{n}.{v}"])) for v in VARS}
        sl, se = lava[f"{n}.s"] > 0, emu[f"{n}.s"] > 0
        both = int(np.sum(sl & se))
        agree = both / max(int(sl.sum()), int(se.sum())) if sl.any() or se.any() else 1.0
        layers[n] = {"identical": all(same.values()), **{f"{v}_identical": same[v] for v in VARS},
                     "lava_spikes": int(sl.sum()), "edgesnn_spikes": int(se.sum()),
                     "spike_agreement": agree,
                     "refractory_delay": lay.get("refractory_delay", 1)}  # fmt: skip
        for v in VARS:
            diff = np.argwhere(lava[f"{n}.{v}"] != emu[f"{n}.{v}"])
            if diff.size:
                t, i = (int(x) for x in diff[0])
                cand = {"step": t, "layer": n, "neuron": i, "variable": v,
                        "lava": int(lava[f"{n}.{v}"][t, i]), "edgesnn": int(emu[f"{n}.{v}"][t, i])}
                if first is None or t < first["step"]:
                    first = cand
    return {"identical": first is None, "layers": layers, "first_difference": first}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--lava-worker":
        return _worker(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", metavar="OUT_DIR", help="an `edgesnn deploy` output folder")
    ap.add_argument("--spikes", help="input spikes .npz (in_ptr, in_idx)")
    ap.add_argument("--recording", help="a sensor recording, encoded by --pipeline")
    ap.add_argument("--pipeline", help="pipeline TOML or shipped name for --recording")
    ap.add_argument("--max-steps", type=int, default=None, help="cut the recording after N steps")
    ap.add_argument("--steps", type=int, default=200, help="Bernoulli input: steps (200)")
    ap.add_argument("--rate", type=float, default=0.1, help="Bernoulli input: p per step (0.1)")
    ap.add_argument("--seed", type=int, default=0, help="Bernoulli input: seed (0)")
    ap.add_argument("--cfg", choices=("loihi2", "loihi1"), default="loihi2",
                    help="lava run config (Loihi2SimCfg or Loihi1SimCfg)")
    ap.add_argument("--lava-python", default=os.environ.get("EDGESNN_LAVA_PYTHON"),
                    help="interpreter with lava-nc (default $EDGESNN_LAVA_PYTHON, else this one)")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from edgesnn.deploy import QuantizedModel
    from edgesnn.errors import FormatError

    out = Path(args.out_dir)
    net_dir = out / "loihi"
    try:
        doc = json.loads((net_dir / "network.json").read_text(encoding="utf-8"))
        qm = QuantizedModel.load(out / "quantized.npz")
    except (OSError, ValueError, FormatError) as e:
        print(f"check_lava: {out} is not a Loihi deploy folder ({e})", file=sys.stderr)
        return 2
    sizes = {lay.name: lay.n for lay in qm.layers}
    in_ptr, in_idx = _input(args, sum(sizes[n] for n in doc["inputs"]), qm.dt_us)
    steps = len(in_ptr) - 1
    inp, off = {"steps": np.int64(steps)}, 0
    k = np.repeat(np.arange(steps), np.diff(in_ptr))
    for name in doc["inputs"]:
        r = np.zeros((sizes[name], steps), np.int8)
        sel = (in_idx >= off) & (in_idx < off + sizes[name])
        r[in_idx[sel] - off, k[sel]] = 1
        inp[name] = r
        off += sizes[name]
    py = args.lava_python or sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "in.npz", **inp)
        r = subprocess.run([py, str(Path(__file__).resolve()), "--lava-worker", str(net_dir),
                            str(Path(tmp) / "in.npz"), str(Path(tmp) / "lava.npz"), args.cfg],
                           capture_output=True, text=True)  # fmt: skip
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"check_lava: lava did not run under {py}: {last}", file=sys.stderr)
            return 2
        with np.load(Path(tmp) / "lava.npz") as z:
            lava = {k: z[k] for k in z.files}
    emu, counters = emulate(qm, in_ptr, in_idx)
    res = compare(doc, lava, emu)
    res.update({"out_dir": str(out), "profile": doc.get("profile"), "cfg": args.cfg,
                "steps": steps, "input_spikes": int(in_idx.size),
                "lava_models": lava["models"].tolist(),
                "emulator_counters": counters})  # fmt: skip
    refr = [n for n, v in res["layers"].items() if v["refractory_delay"] > 1]
    if args.json:
        print(json.dumps(res))
        return 0 if res["identical"] else 1
    print(f"{out}: profile {res['profile']}, lava {args.cfg} ({', '.join(res['lava_models'])}), "
          f"{steps} steps, {res['input_spikes']} input spikes")  # fmt: skip
    for n, v in res["layers"].items():
        flags = " ".join(f"{x}:{'same' if v[f'{x}_identical'] else 'DIFF'}" for x in VARS)
        print(f"  {n:>12s}: spikes lava {v['lava_spikes']} / edgesnn {v['edgesnn_spikes']}, "
              f"raster agreement {100 * v['spike_agreement']:.1f}%  {flags}")  # fmt: skip
    if refr:
        print(f"  warning: lava's bit-accurate LIF has no refractory period; {', '.join(refr)} "
              "hold v after a spike in edgesnn (refractory_delay > 1)")  # fmt: skip
    f = res["first_difference"]
    if f is None:
        print("identical: spikes, u and v at every step of every layer")
        return 0
    print(f"first difference: step {f['step']}, layer {f['layer']}, neuron {f['neuron']}, "
          f"{f['variable']}: lava {f['lava']}, edgesnn {f['edgesnn']}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
