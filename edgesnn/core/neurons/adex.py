"""``adex``: adaptive exponential integrate-and-fire (Brette & Gerstner 2005).

``C v' = -g_L (v - E_L) + g_L Δ_T exp((v - V_T)/Δ_T) - w + I``, ``τ_w w' = a (v - E_L) - w``
(C in pF, conductances in nS, potentials in mV, currents in pA, so v' is in mV/ms); ``v >=
v_peak_mv`` spikes: ``v = v_reset_mv, w += b_pa``. v and w are integrated together by Heun (RK2)
sub-steps of at most ``max_substep_ms`` (default 0.1 ms) with the reset at the crossing time
(linear within the sub-step) and the rest of the sub-step integrated from the reset, as
``izhikevich``; the exponent is capped at 80 (far above any v_peak) so float32 never
overflows. The input of a step is a current (pA) added to ``i_bias`` (pA) for that step; w
starts at 0. At most one spike per neuron and step is reported. The defaults are the paper's
regular-spiking cell, with Brian2's cut-off ``v_peak = V_T + 5 Δ_T``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from edgesnn.core.layout import L_POFF
from edgesnn.core.neurons._base import OPTS, NeuronModel, RefEnv, n_substeps, vector
from edgesnn.core.neurons._base import views as _views

CODE = 7
C_M, G_L, E_L, V_T, DELTA_T, A, TAU_W, B, V_RESET, V_PEAK, DT_MS, N_SUB = range(12)
SLOTS = ("c_m_pf", "g_l_ns", "e_l_mv", "v_t_mv", "delta_t_mv", "a_ns", "tau_w_ms", "b_pa",
         "v_reset_mv", "v_peak_mv", "dt_ms", "n_sub")  # fmt: skip
NQ = len(SLOTS)
_EXP_CAP = 80.0


def pack(p: dict[str, Any], dt_us: int) -> list[float]:
    """The parameters as given (units in their names), the step and the sub-steps per step."""
    dt_ms = dt_us / 1000.0
    head = [float(p[k]) for k in SLOTS[:DT_MS]]
    return head + [dt_ms, float(n_substeps(dt_ms, p["max_substep_ms"]))]


def init(p: dict[str, Any], st: np.ndarray) -> None:
    """v starts at e_l_mv unless v_init is given; w at 0."""
    if p.get("v_init") is None:
        st[0] = p["e_l_mv"]


@njit(**OPTS)
def _heun(v, w, cur, h, c_m, g_l, e_l, v_t, d_t, a, tau_w):
    """One Heun (explicit trapezoid) step of length h (ms) of the AdEx (v, w) system."""
    f_v = (g_l * (e_l - v) + g_l * d_t * math.exp(min((v - v_t) / d_t, _EXP_CAP)) - w + cur) / c_m
    f_w = (a * (v - e_l) - w) / tau_w
    vp = v + h * f_v
    wp = w + h * f_w
    g_v = (
        g_l * (e_l - vp) + g_l * d_t * math.exp(min((vp - v_t) / d_t, _EXP_CAP)) - wp + cur
    ) / c_m
    g_w = (a * (vp - e_l) - wp) / tau_w
    return v + 0.5 * h * (f_v + g_v), w + 0.5 * h * (f_w + g_w)


@njit(**OPTS)
def update(rec, fs, fp, ii, slot):
    """AdEx: n_sub Heun sub-steps of (v, w); a sub-step ending at v >= v_peak is a spike: (v, w)
    at the crossing (linear in the sub-step) is reset to v = v_reset, w += b and the rest of the
    sub-step is integrated from there. Input is a current (pA) for this step."""
    n, xe, xi, ref, spk, soff = _views(rec, fs, ii, slot)
    poff = ii[rec + L_POFF]
    v = fs[soff : soff + n]
    w = fs[soff + n : soff + 2 * n]
    bias = fp[poff + NQ : poff + NQ + n]
    c_m = fp[poff + C_M]
    g_l = fp[poff + G_L]
    e_l = fp[poff + E_L]
    v_t = fp[poff + V_T]
    d_t = fp[poff + DELTA_T]
    a = fp[poff + A]
    tau_w = fp[poff + TAU_W]
    b = fp[poff + B]
    v_reset = fp[poff + V_RESET]
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
        wi = w[i]
        spiked = False
        for _ in range(n_sub):
            v1, w1 = _heun(vi, wi, cur, h, c_m, g_l, e_l, v_t, d_t, a, tau_w)
            if v1 >= v_peak:
                spiked = True
                th = 0.0
                if vi < v_peak:
                    th = (v_peak - vi) / (v1 - vi)
                wc = wi + th * (w1 - wi) + b
                vi, wi = _heun(v_reset, wc, cur, (1.0 - th) * h, c_m, g_l, e_l, v_t, d_t, a, tau_w)
                if vi >= v_peak:  # a second crossing in one sub-step: reset, no more
                    vi = v_reset
                    wi = wi + b
            else:
                vi = v1
                wi = w1
        if spiked:
            spk[ns] = i
            ns += 1
        v[i] = vi
        w[i] = wi
    return ns


def reference(p: dict[str, Any], st: dict[str, list[float]], xe: list[float],
              xi: list[float], env: RefEnv) -> list[int]:  # fmt: skip
    """The slow twin of `update`."""
    n = len(st["v"])
    bias = vector(p["i_bias"], n)
    n_sub = n_substeps(env.dt_ms, p["max_substep_ms"])
    h = env.dt_ms / float(n_sub)
    c_m, g_l, e_l = p["c_m_pf"], p["g_l_ns"], p["e_l_mv"]
    v_t, d_t, a, tau_w = p["v_t_mv"], p["delta_t_mv"], p["a_ns"], p["tau_w_ms"]
    b, v_reset, v_peak = p["b_pa"], p["v_reset_mv"], p["v_peak_mv"]

    def rhs(v: float, w: float, cur: float) -> tuple[float, float]:
        ex = math.exp(min((v - v_t) / d_t, _EXP_CAP))
        return (g_l * (e_l - v) + g_l * d_t * ex - w + cur) / c_m, (a * (v - e_l) - w) / tau_w

    def heun(v: float, w: float, cur: float, h: float) -> tuple[float, float]:
        f_v, f_w = rhs(v, w, cur)
        g_v, g_w = rhs(v + h * f_v, w + h * f_w, cur)
        return v + 0.5 * h * (f_v + g_v), w + 0.5 * h * (f_w + g_w)

    fired = []
    for i in range(n):
        cur = bias[i] + (xe[i] + xi[i])
        v, w = st["v"][i], st["w"][i]
        spiked = False
        for _ in range(n_sub):
            v1, w1 = heun(v, w, cur, h)
            if v1 >= v_peak:
                spiked = True
                th = (v_peak - v) / (v1 - v) if v < v_peak else 0.0
                v, w = heun(v_reset, w + th * (w1 - w) + b, cur, (1.0 - th) * h)
                if v >= v_peak:
                    v, w = v_reset, w + b
            else:
                v, w = v1, w1
        if spiked:
            fired.append(i)
        st["v"][i], st["w"][i] = v, w
    return fired


MODEL = NeuronModel(
    name="adex",
    code=CODE,
    params={
        "c_m_pf": 281.0,
        "g_l_ns": 30.0,
        "e_l_mv": -70.6,
        "v_t_mv": -50.4,
        "delta_t_mv": 2.0,
        "a_ns": 4.0,
        "tau_w_ms": 144.0,
        "b_pa": 80.5,
        "v_reset_mv": -70.6,
        "v_peak_mv": -40.4,  # V_T + 5 delta_T (Brian2's cut-off)
        "i_bias": 0.0,  # pA
        "v_init": None,  # default e_l_mv
        "max_substep_ms": 0.1,
    },
    state=("v", "w"),
    doc="Adaptive exponential integrate-and-fire (Brette & Gerstner 2005); currents in pA.",
    slots=SLOTS,
    pack=pack,
    init=init,
    update=update,
    reference=reference,
)
