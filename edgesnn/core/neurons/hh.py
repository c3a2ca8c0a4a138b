"""``hh``: Hodgkin-Huxley squid axon (rest -65 mV, classic rate functions).

Sub-stepped at most ``max_substep_ms`` (default 0.01 ms: spike counts of a converged solution at
dt = 1 ms); gates by exponential Euler, v by forward Euler; input moves v by its value in mV; an
upward crossing of ``v_spike_mv`` is a spike.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from edgesnn.core.layout import L_POFF
from edgesnn.core.neurons._base import OPTS, NeuronModel, RefEnv, n_substeps, vector
from edgesnn.core.neurons._base import views as _views

CODE = 6
G_NA, G_K, G_L, E_NA, E_K, E_L, C_M, DT_MS, N_SUB, V_SPIKE = range(10)
SLOTS = ("g_na", "g_k", "g_l", "e_na", "e_k", "e_l", "c_m", "dt_ms", "n_sub", "v_spike_mv")
NQ = len(SLOTS)


def pack(p: dict[str, Any], dt_us: int) -> list[float]:
    """Conductances, reversal potentials, capacitance, the step, sub-steps, spike level."""
    dt_ms = dt_us / 1000.0
    return [
        p["g_na_mS_per_cm2"],
        p["g_k_mS_per_cm2"],
        p["g_l_mS_per_cm2"],
        p["e_na_mv"],
        p["e_k_mv"],
        p["e_l_mv"],
        p["c_m_uF_per_cm2"],
        dt_ms,
        float(n_substeps(dt_ms, p["max_substep_ms"])),
        p["v_spike_mv"],
    ]


def hh_gates_at(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steady-state m, h, n of the Hodgkin-Huxley gates at membrane potential v (mV)."""
    v = np.asarray(v, dtype=np.float64)

    def vtrap(x: np.ndarray, y: float) -> np.ndarray:
        small = np.abs(x / y) < 1e-6
        safe = np.where(small, 1.0, x)
        return np.where(small, y * (1 - x / y / 2), safe / np.expm1(safe / y))

    a_m = 0.1 * vtrap(-(v + 40), 10.0)
    b_m = 4.0 * np.exp(-(v + 65) / 18)
    a_h = 0.07 * np.exp(-(v + 65) / 20)
    b_h = 1 / (1 + np.exp(-(v + 35) / 10))
    a_n = 0.01 * vtrap(-(v + 55), 10.0)
    b_n = 0.125 * np.exp(-(v + 65) / 80)
    return a_m / (a_m + b_m), a_h / (a_h + b_h), a_n / (a_n + b_n)


def init(p: dict[str, Any], st: np.ndarray) -> None:
    """The gates start at their steady state at v."""
    st[1], st[2], st[3] = hh_gates_at(st[0])


@njit(**OPTS)
def _vtrap(x, y):
    """x / (exp(x/y) - 1) without the 0/0 at x = 0."""
    if abs(x / y) < 1e-6:
        return y * (1.0 - x / y / 2.0)
    return x / (math.exp(x / y) - 1.0)


@njit(**OPTS)
def update(rec, fs, fp, ii, slot):
    """Hodgkin-Huxley squid axon (rest -65 mV), n_sub sub-steps per dt: gates by exponential
    Euler, v by forward Euler; input moves v by its value (mV). Upward crossing of v_spike
    spikes."""
    n, xe, xi, ref, spk, soff = _views(rec, fs, ii, slot)
    poff = ii[rec + L_POFF]
    v = fs[soff : soff + n]
    mg = fs[soff + n : soff + 2 * n]
    hgv = fs[soff + 2 * n : soff + 3 * n]
    ngv = fs[soff + 3 * n : soff + 4 * n]
    above_v = fs[soff + 4 * n : soff + 5 * n]
    bias = fp[poff + NQ : poff + NQ + n]
    g_na = fp[poff + G_NA]
    g_k = fp[poff + G_K]
    g_l = fp[poff + G_L]
    e_na = fp[poff + E_NA]
    e_k = fp[poff + E_K]
    e_l = fp[poff + E_L]
    c_m = fp[poff + C_M]
    dt_ms = fp[poff + DT_MS]
    n_sub = np.int64(fp[poff + N_SUB])
    v_spike = fp[poff + V_SPIKE]
    h = dt_ms / n_sub
    ns = 0
    for i in range(n):
        vi = v[i] + (xe[i] + xi[i])
        xe[i] = 0
        xi[i] = 0
        m = mg[i]
        hg = hgv[i]
        ng = ngv[i]
        above = above_v[i]
        cur = bias[i]
        spiked = False
        for _ in range(n_sub):
            a_m = 0.1 * _vtrap(-(vi + 40.0), 10.0)
            b_m = 4.0 * math.exp(-(vi + 65.0) / 18.0)
            a_h = 0.07 * math.exp(-(vi + 65.0) / 20.0)
            b_h = 1.0 / (1.0 + math.exp(-(vi + 35.0) / 10.0))
            a_n = 0.01 * _vtrap(-(vi + 55.0), 10.0)
            b_n = 0.125 * math.exp(-(vi + 65.0) / 80.0)
            i_ion = (
                g_na * m * m * m * hg * (vi - e_na)
                + g_k * ng * ng * ng * ng * (vi - e_k)
                + g_l * (vi - e_l)
            )
            s_m = a_m + b_m
            s_h = a_h + b_h
            s_n = a_n + b_n
            m = a_m / s_m + (m - a_m / s_m) * math.exp(-h * s_m)
            hg = a_h / s_h + (hg - a_h / s_h) * math.exp(-h * s_h)
            ng = a_n / s_n + (ng - a_n / s_n) * math.exp(-h * s_n)
            vi = vi + h * (cur - i_ion) / c_m
            if vi >= v_spike:
                if above == 0:
                    spiked = True
                above = 1.0
            else:
                above = 0.0
        if spiked:
            spk[ns] = i
            ns += 1
        v[i] = vi
        mg[i] = m
        hgv[i] = hg
        ngv[i] = ng
        above_v[i] = above
    return ns


def reference(p: dict[str, Any], st: dict[str, list[float]], xe: list[float],
              xi: list[float], env: RefEnv) -> list[int]:  # fmt: skip
    """The slow twin of `update`."""
    n = len(st["v"])
    bias = vector(p["i_bias"], n)
    n_sub = n_substeps(env.dt_ms, p["max_substep_ms"])
    h = env.dt_ms / float(n_sub)

    def vtrap(x: float, y: float) -> float:
        if abs(x / y) < 1e-6:
            return y * (1.0 - x / y / 2.0)
        return x / (math.exp(x / y) - 1.0)

    fired = []
    for i in range(n):
        v = st["v"][i] + (xe[i] + xi[i])
        m, hg, ng, above = st["m"][i], st["h"][i], st["n"][i], st["above"][i]
        spiked = False
        for _ in range(n_sub):
            a_m = 0.1 * vtrap(-(v + 40.0), 10.0)
            b_m = 4.0 * math.exp(-(v + 65.0) / 18.0)
            a_h = 0.07 * math.exp(-(v + 65.0) / 20.0)
            b_h = 1.0 / (1.0 + math.exp(-(v + 35.0) / 10.0))
            a_n = 0.01 * vtrap(-(v + 55.0), 10.0)
            b_n = 0.125 * math.exp(-(v + 65.0) / 80.0)
            i_ion = (
                p["g_na_mS_per_cm2"] * m * m * m * hg * (v - p["e_na_mv"])
                + p["g_k_mS_per_cm2"] * ng * ng * ng * ng * (v - p["e_k_mv"])
                + p["g_l_mS_per_cm2"] * (v - p["e_l_mv"])
            )
            s_m, s_h, s_n = a_m + b_m, a_h + b_h, a_n + b_n
            m = a_m / s_m + (m - a_m / s_m) * math.exp(-h * s_m)
            hg = a_h / s_h + (hg - a_h / s_h) * math.exp(-h * s_h)
            ng = a_n / s_n + (ng - a_n / s_n) * math.exp(-h * s_n)
            v = v + h * (bias[i] - i_ion) / p["c_m_uF_per_cm2"]
            if v >= p["v_spike_mv"]:
                if above == 0:
                    spiked = True
                above = 1.0
            else:
                above = 0.0
        if spiked:
            fired.append(i)
        st["v"][i], st["m"][i], st["h"][i], st["n"][i], st["above"][i] = v, m, hg, ng, above
    return fired


MODEL = NeuronModel(
    name="hh",
    code=CODE,
    params={
        "g_na_mS_per_cm2": 120.0,
        "g_k_mS_per_cm2": 36.0,
        "g_l_mS_per_cm2": 0.3,
        "e_na_mv": 50.0,
        "e_k_mv": -77.0,
        "e_l_mv": -54.387,
        "c_m_uF_per_cm2": 1.0,
        "i_bias": 0.0,
        "v_init": -65.0,
        "v_spike_mv": 0.0,
        "max_substep_ms": 0.01,  # converged spike counts at dt = 1 ms
    },
    state=("v", "m", "h", "n", "above"),
    doc="Hodgkin-Huxley squid axon; i_bias in uA/cm2.",
    slots=SLOTS,
    pack=pack,
    init=init,
    update=update,
    reference=reference,
)
