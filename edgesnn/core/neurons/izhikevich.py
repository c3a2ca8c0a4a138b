"""``izhikevich``: Izhikevich (2003), ``v' = 0.04v² + 5v + 140 - u + I``, ``u' = a(bv - u)``.

v and u are integrated together by Heun (RK2) sub-steps of at most ``max_substep_ms`` (default
0.1 ms); ``v >= v_peak_mv`` (30) spikes: ``v = c, u += d`` at the crossing time (linear within
the sub-step) and the rest of the sub-step is integrated from the reset, so a 1 ms step gives
the spike counts of a converged solution (RK4 at 1 µs) within 1 %; the input of a step is a
current added to ``i_bias`` for that step. At most one spike per neuron and step is reported.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from edgesnn.core.layout import L_POFF
from edgesnn.core.neurons._base import OPTS, NeuronModel, RefEnv, n_substeps, vector
from edgesnn.core.neurons._base import views as _views

CODE = 5
A, B, C, D, V_PEAK, DT_MS, N_SUB = range(7)
SLOTS = ("a", "b", "c", "d", "v_peak_mv", "dt_ms", "n_sub")
NQ = len(SLOTS)


def pack(p: dict[str, Any], dt_us: int) -> list[float]:
    """a, b, c, d, v_peak, the step (ms) and the sub-steps per step."""
    dt_ms = dt_us / 1000.0
    n_sub = n_substeps(dt_ms, p["max_substep_ms"])
    return [p["a"], p["b"], p["c"], p["d"], p["v_peak_mv"], dt_ms, float(n_sub)]


def init(p: dict[str, Any], st: np.ndarray) -> None:
    """u starts at b*v."""
    st[1] = p["b"] * st[0]


@njit(**OPTS)
def _heun(v, u, a, b, cur, h):
    """One Heun (explicit trapezoid) step of length h of the Izhikevich (v, u) system."""
    f_v = (0.04 * v + 5.0) * v + 140.0 - u + cur
    f_u = a * (b * v - u)
    vp = v + h * f_v
    up = u + h * f_u
    g_v = (0.04 * vp + 5.0) * vp + 140.0 - up + cur
    g_u = a * (b * vp - up)
    return v + 0.5 * h * (f_v + g_v), u + 0.5 * h * (f_u + g_u)


@njit(**OPTS)
def update(rec, fs, fp, ii, slot):
    """Izhikevich (2003): n_sub Heun sub-steps of v' = 0.04v^2 + 5v + 140 - u + I,
    u' = a(bv - u) together. A sub-step ending at v >= v_peak is a spike: (v, u) at the
    crossing (linear in the sub-step) is reset to v = c, u += d and the rest of the sub-step is
    integrated from there, so spike times are not rounded to sub-steps or steps (converges to
    the continuous model as the sub-step shrinks). Input is a current for this step."""
    n, xe, xi, ref, spk, soff = _views(rec, fs, ii, slot)
    poff = ii[rec + L_POFF]
    v = fs[soff : soff + n]
    u = fs[soff + n : soff + 2 * n]
    bias = fp[poff + NQ : poff + NQ + n]
    a = fp[poff + A]
    b = fp[poff + B]
    c = fp[poff + C]
    d = fp[poff + D]
    v_peak = fp[poff + V_PEAK]
    dt_ms = fp[poff + DT_MS]
    n_sub = np.int64(fp[poff + N_SUB])
    h = dt_ms / n_sub
    ns = 0
    for i in range(n):
        cur = bias[i] + (xe[i] + xi[i])
        xe[i] = 0
        xi[i] = 0
        vi = v[i]
        ui = u[i]
        spiked = False
        for _ in range(n_sub):
            v1, u1 = _heun(vi, ui, a, b, cur, h)
            if v1 >= v_peak:
                spiked = True
                th = 0.0
                if vi < v_peak:
                    th = (v_peak - vi) / (v1 - vi)
                vi, ui = _heun(c, ui + th * (u1 - ui) + d, a, b, cur, (1.0 - th) * h)
                if vi >= v_peak:  # a second crossing in one sub-step: reset, no more
                    vi = c
                    ui = ui + d
            else:
                vi = v1
                ui = u1
        if spiked:
            spk[ns] = i
            ns += 1
        v[i] = vi
        u[i] = ui
    return ns


def reference(p: dict[str, Any], st: dict[str, list[float]], xe: list[float],
              xi: list[float], env: RefEnv) -> list[int]:  # fmt: skip
    """The slow twin of `update`."""
    n = len(st["v"])
    bias = vector(p["i_bias"], n)
    n_sub = n_substeps(env.dt_ms, p["max_substep_ms"])
    h = env.dt_ms / float(n_sub)
    a, b, c, d, v_peak = p["a"], p["b"], p["c"], p["d"], p["v_peak_mv"]

    def heun(v: float, u: float, cur: float, h: float) -> tuple[float, float]:
        f_v = (0.04 * v + 5.0) * v + 140.0 - u + cur
        f_u = a * (b * v - u)
        vp, up = v + h * f_v, u + h * f_u
        g_v = (0.04 * vp + 5.0) * vp + 140.0 - up + cur
        g_u = a * (b * vp - up)
        return v + 0.5 * h * (f_v + g_v), u + 0.5 * h * (f_u + g_u)

    fired = []
    for i in range(n):
        cur = bias[i] + (xe[i] + xi[i])
        v, u = st["v"][i], st["u"][i]
        spiked = False
        for _ in range(n_sub):
            v1, u1 = heun(v, u, cur, h)
            if v1 >= v_peak:
                # reset at the crossing (linear in the sub-step), integrate the rest
                spiked = True
                th = (v_peak - v) / (v1 - v) if v < v_peak else 0.0
                v, u = heun(c, u + th * (u1 - u) + d, cur, (1.0 - th) * h)
                if v >= v_peak:
                    v, u = c, u + d
            else:
                v, u = v1, u1
        if spiked:
            fired.append(i)
        st["v"][i], st["u"][i] = v, u
    return fired


MODEL = NeuronModel(
    name="izhikevich",
    code=CODE,
    params={
        "a": 0.02,
        "b": 0.2,
        "c": -65.0,
        "d": 8.0,
        "v_peak_mv": 30.0,
        "i_bias": 0.0,
        "v_init": -65.0,
        "max_substep_ms": 0.1,  # Heun sub-step: converged spike counts at dt = 1 ms
    },
    state=("v", "u"),
    doc="Izhikevich (2003) simple model; a, b, c (mV), d as published.",
    slots=SLOTS,
    pack=pack,
    init=init,
    update=update,
    reference=reference,
)
