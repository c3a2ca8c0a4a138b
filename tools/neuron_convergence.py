"""Izhikevich and Hodgkin-Huxley spike counts at a coarse step against converged solutions.

    python tools/neuron_convergence.py [--dt-us 1000] [--substeps 0.5,0.25,0.1,0.05]
    python-with-brian2 tools/neuron_convergence.py --brian2

Default: for each Izhikevich (2003) cell (RS, IB, CH, FS, LTS) under constant currents of
4..30 and the squid axon under 7..50 uA/cm2, 1 s from rest, prints the core's counts at --dt-us
for each max_substep_ms beside the RK4-at-1-us reference of tests/core/test_convergence.py, and
the worst relative error per cell. --brian2 runs the same cells (I = 10) and axon currents in
Brian2 (rk4, dt = 1 us, numpy target; needs only brian2, takes minutes) and prints JSON: the
counts written into tests/core/test_convergence.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

IZH = {
    "RS": (0.02, 0.2, -65.0, 8.0),
    "IB": (0.02, 0.2, -55.0, 4.0),
    "CH": (0.02, 0.2, -50.0, 2.0),
    "FS": (0.1, 0.2, -65.0, 2.0),
    "LTS": (0.02, 0.25, -65.0, 2.0),
}
HH_CURRENTS = (7.0, 10.0, 20.0, 50.0)


def brian2_counts() -> dict[str, dict[str, int]]:
    """Spike counts in 1 s from Brian2 rk4 at 1 us (Izhikevich at I = 10, HH per current)."""
    import brian2 as b2
    import numpy as np

    b2.prefs.codegen.target = "numpy"
    b2.defaultclock.dt = 1 * b2.us
    names = list(IZH)
    izh = b2.NeuronGroup(
        len(names),
        """dv/dt = (0.04*v**2 + 5*v + 140 - u + I)/ms : 1
        du/dt = a*(b*v - u)/ms : 1
        a : 1
        b : 1
        c : 1
        d : 1
        I : 1""",
        threshold="v >= 30",
        reset="v = c; u += d",
        method="rk4",
        namespace={"ms": b2.ms},
    )
    for k, col in enumerate("abcd"):
        setattr(izh, col, [IZH[n][k] for n in names])
    izh.I = 10.0
    izh.v = -65.0
    izh.u = izh.b * -65.0
    hh = b2.NeuronGroup(
        len(HH_CURRENTS),
        """dv/dt = (I - 120*m**3*h*(v - 50) - 36*n**4*(v + 77) - 0.3*(v + 54.387))/ms : 1
        dm/dt = am*(1 - m) - bm*m : 1
        dh/dt = ah*(1 - h) - bh*h : 1
        dn/dt = an*(1 - n) - bn*n : 1
        am = 0.1*(v + 40)/(1 - exp(-(v + 40)/10))/ms : Hz
        bm = 4*exp(-(v + 65)/18)/ms : Hz
        ah = 0.07*exp(-(v + 65)/20)/ms : Hz
        bh = 1/(1 + exp(-(v + 35)/10))/ms : Hz
        an = 0.01*(v + 55)/(1 - exp(-(v + 55)/10))/ms : Hz
        bn = 0.125*exp(-(v + 65)/80)/ms : Hz
        I : 1""",
        threshold="v > 0",
        refractory="v > 0",
        method="rk4",
        namespace={"ms": b2.ms, "Hz": b2.Hz},
    )
    v0 = -65.0
    am, bm = 0.1 * (v0 + 40) / (1 - np.exp(-(v0 + 40) / 10)), 4 * np.exp(-(v0 + 65) / 18)
    ah, bh = 0.07 * np.exp(-(v0 + 65) / 20), 1 / (1 + np.exp(-(v0 + 35) / 10))
    an, bn = 0.01 * (v0 + 55) / (1 - np.exp(-(v0 + 55) / 10)), 0.125 * np.exp(-(v0 + 65) / 80)
    hh.v, hh.m, hh.h, hh.n = v0, am / (am + bm), ah / (ah + bh), an / (an + bn)
    hh.I = list(HH_CURRENTS)
    m_izh, m_hh = b2.SpikeMonitor(izh), b2.SpikeMonitor(hh)
    b2.run(1 * b2.second)
    return {
        "izhikevich_I10": {n: int(k) for n, k in zip(names, m_izh.count)},
        "hh": {str(c): int(k) for c, k in zip(HH_CURRENTS, m_hh.count)},
    }


def core_table(dt_us: int, substeps: list[float]) -> None:
    """Print the core's counts per sub-step beside the RK4 reference, and the worst error."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "core"))
    from test_convergence import REF_H_MS, T_MS, _engine_counts, _hh_ref, _izh_ref

    izh_cur = [float(c) for c in range(4, 31, 2)]
    ref = {
        (n, c): _izh_ref(a, b, cc, d, c, T_MS, REF_H_MS)
        for n, (a, b, cc, d) in IZH.items()
        for c in izh_cur
    }
    hh_ref = {c: _hh_ref(c, T_MS, REF_H_MS) for c in HH_CURRENTS}
    print(f"dt = {dt_us} us, 1 s, counts: core at each max_substep_ms / RK4 at 1 us")
    for sub in substeps:
        layers = {
            f"{n}@{c}": ("izhikevich", dict(a=a, b=b, c=cc, d=d, i_bias=c, max_substep_ms=sub))
            for n, (a, b, cc, d) in IZH.items()
            for c in izh_cur
        }
        hh_sub = min(sub, 0.01)
        layers |= {f"hh@{c}": ("hh", dict(i_bias=c, max_substep_ms=hh_sub)) for c in HH_CURRENTS}
        got = _engine_counts(dt_us, layers)
        print(f"max_substep_ms = {sub} (hh {hh_sub})")
        for n in IZH:
            row = [(got[f"{n}@{c}"], ref[n, c]) for c in izh_cur]
            worst = max(abs(g - r) / max(r, 1) for g, r in row)
            cells = " ".join(f"{g}/{r}" for g, r in row)
            print(f"  {n:4s} I={izh_cur[0]:g}..{izh_cur[-1]:g}: {cells}  worst {worst:.2%}")
        row = [(got[f"hh@{c}"], hh_ref[c]) for c in HH_CURRENTS]
        worst = max(abs(g - r) / max(r, 1) for g, r in row)
        cells = " ".join(f"{g}/{r}" for g, r in row)
        print(f"  HH   I={HH_CURRENTS}: {cells}  worst {worst:.2%}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--brian2", action="store_true", help="print Brian2 rk4 counts as JSON")
    ap.add_argument("--dt-us", type=int, default=1000)
    ap.add_argument("--substeps", default="0.5,0.25,0.1,0.05", help="max_substep_ms values")
    args = ap.parse_args(argv)
    if args.brian2:
        print(json.dumps(brian2_counts()))
        return 0
    core_table(args.dt_us, [float(s) for s in args.substeps.split(",")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
