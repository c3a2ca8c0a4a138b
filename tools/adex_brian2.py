"""Brian2 golden spike times for the AdEx neuron model (tests/core/data/adex_brian2.npz).

    python-with-brian2 tools/adex_brian2.py [--out tests/core/data/adex_brian2.npz]

Three AdEx cells (Brette & Gerstner 2005 regular spiking; Naud et al. 2008 tonic and initial
bursting parameters, cut-off v_peak = V_T + 5 Δ_T) are driven for 1 s at dt = 1 ms by (a) a
current step switched on at 100 ms and (b) 40 Poisson inputs at 20 Hz through weights in pA on
top of a constant bias. The input reaches the cells exactly as in edgesnn: the spikes of step k
are a current during step k + 1. Brian2 integrates the equations of `edgesnn.core.neurons.adex`
with rk4 at 1 µs (numpy target) and the spike times are stored with the inputs, so
tests/core/test_adex.py replays the same drive through the core without Brian2. Takes a few
minutes; needs only brian2 (e.g. Brian2 2.9.0 with numpy 2.3).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

#: name -> AdEx parameters in the units of edgesnn's parameter names
CELLS = {
    "regular": dict(c_m_pf=281.0, g_l_ns=30.0, e_l_mv=-70.6, v_t_mv=-50.4, delta_t_mv=2.0,
                    a_ns=4.0, tau_w_ms=144.0, b_pa=80.5, v_reset_mv=-70.6, v_peak_mv=-40.4),
    "tonic": dict(c_m_pf=200.0, g_l_ns=10.0, e_l_mv=-70.0, v_t_mv=-50.0, delta_t_mv=2.0,
                  a_ns=0.0, tau_w_ms=30.0, b_pa=60.0, v_reset_mv=-58.0, v_peak_mv=-40.0),
    "bursting": dict(c_m_pf=200.0, g_l_ns=12.0, e_l_mv=-70.0, v_t_mv=-50.0, delta_t_mv=2.0,
                     a_ns=2.0, tau_w_ms=300.0, b_pa=60.0, v_reset_mv=-46.0, v_peak_mv=-40.0),
}  # fmt: skip
STEP_PA = {"regular": 800.0, "tonic": 500.0, "bursting": 400.0}
BIAS_PA = {"regular": 500.0, "tonic": 150.0, "bursting": 180.0}
N_STEPS = 1000
STEP_ON = 100  # the current flows from this step on (its input spike is one step earlier)
N_POISSON, RATE_HZ, SEED = 40, 20.0, 12


def drives() -> dict[str, np.ndarray]:
    """The input spikes (per step, per input neuron) and weights of both experiments."""
    names = list(CELLS)
    step_spikes = np.zeros((N_STEPS, 1), bool)
    step_spikes[STEP_ON - 1 :, 0] = True
    step_w = np.asarray([[STEP_PA[n] for n in names]])
    rng = np.random.default_rng(SEED)
    pois_spikes = rng.random((N_STEPS, N_POISSON)) < RATE_HZ * 1e-3
    pois_w = rng.uniform(0.0, 400.0, (N_POISSON, len(names)))
    bias = np.asarray([BIAS_PA[n] for n in names])
    return {"step_spikes": step_spikes, "step_w": step_w, "step_bias": np.zeros(len(names)),
            "poisson_spikes": pois_spikes, "poisson_w": pois_w, "poisson_bias": bias}  # fmt: skip


def currents(spikes: np.ndarray, w: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """The current (pA) of every cell during every step: bias + the previous step's spikes."""
    cur = np.zeros((N_STEPS, w.shape[1])) + bias
    cur[1:] += spikes[:-1].astype(float) @ w
    return cur


def brian2_spikes(cur: np.ndarray) -> list[np.ndarray]:
    """Spike times (ms) of every cell under the step currents `cur` (steps x cells), rk4 1 us."""
    import brian2 as b2

    b2.prefs.codegen.target = "numpy"
    b2.start_scope()
    b2.defaultclock.dt = 1 * b2.us
    drive = b2.TimedArray(cur * b2.pA, dt=1 * b2.ms)
    g = b2.NeuronGroup(
        cur.shape[1],
        """dv/dt = (gL*(EL - v) + gL*DeltaT*exp((v - VT)/DeltaT) - w + I)/C : volt
        dw/dt = (a*(v - EL) - w)/tauw : amp
        I = drive(t, i) : amp
        C : farad (constant)
        gL : siemens (constant)
        EL : volt (constant)
        VT : volt (constant)
        DeltaT : volt (constant)
        a : siemens (constant)
        tauw : second (constant)
        b : amp (constant)
        Vr : volt (constant)
        Vpeak : volt (constant)""",
        threshold="v >= Vpeak",
        reset="v = Vr; w += b",
        method="rk4",
        namespace={"drive": drive},
    )
    cols = [CELLS[n] for n in CELLS]
    g.C = [c["c_m_pf"] for c in cols] * b2.pF
    g.gL = [c["g_l_ns"] for c in cols] * b2.nS
    g.EL = [c["e_l_mv"] for c in cols] * b2.mV
    g.VT = [c["v_t_mv"] for c in cols] * b2.mV
    g.DeltaT = [c["delta_t_mv"] for c in cols] * b2.mV
    g.a = [c["a_ns"] for c in cols] * b2.nS
    g.tauw = [c["tau_w_ms"] for c in cols] * b2.ms
    g.b = [c["b_pa"] for c in cols] * b2.pA
    g.Vr = [c["v_reset_mv"] for c in cols] * b2.mV
    g.Vpeak = [c["v_peak_mv"] for c in cols] * b2.mV
    g.v = g.EL
    g.w = 0 * b2.pA
    mon = b2.SpikeMonitor(g)
    b2.run(N_STEPS * b2.ms)
    trains = mon.spike_trains()
    return [np.asarray(trains[k] / b2.ms) for k in range(cur.shape[1])]


def main() -> None:
    import brian2 as b2

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="tests/core/data/adex_brian2.npz")
    args = ap.parse_args()
    d = drives()
    out: dict[str, np.ndarray] = dict(d)
    for case in ("step", "poisson"):
        cur = currents(d[f"{case}_spikes"], d[f"{case}_w"], d[f"{case}_bias"])
        for name, times in zip(CELLS, brian2_spikes(cur)):
            out[f"{case}/{name}"] = times
            print(f"{case:8s} {name:9s} {times.size:3d} spikes", flush=True)
    meta = {"cells": CELLS, "n_steps": N_STEPS, "dt_us": 1000, "brian2": b2.__version__,
            "method": "rk4", "brian2_dt_us": 1.0, "numpy": np.__version__}  # fmt: skip
    out["meta"] = np.asarray(json.dumps(meta))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
