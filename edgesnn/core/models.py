"""Neuron models: their parameters (units in the names), state variables and update rules.

Each model documents its update; the kernels in `edgesnn.core.kernels` implement exactly it.
All models take input through two channels (excitatory, inhibitory) that arrive at the end of a
step and act from the next step on. ``i_bias`` (scalar or one value per neuron) is a constant
drive in the model's input unit.

- ``input``: no dynamics; its spikes are given by the caller each step.
- ``lif``: ``v += k*(v_rest + i_bias - v) + x`` (x = input of the step, delta synapses) unless
  refractory; ``v > v_th`` spikes, ``v = v_reset`` and the neuron is refractory: it integrates
  again ``t_ref_ms`` after its spike, i.e. v is held for ``round(t_ref/dt) - 1`` steps (the rule
  of W3 and Brian2; the input of held steps is discarded).
- ``cuba_lif``: ``ie += xe; ii += xi``; unless refractory ``v += k*(v_rest + i_bias + ie + ii -
  v)``; ``ie *= d_exc; ii *= d_inh``; ``v > v_th`` spikes and resets (this is W1/W3's order).
- ``adaptive_lif``: lif with threshold ``v_th + a``; ``a`` decays with ``tau_adapt_ms`` and grows
  by ``theta_plus`` at each spike.
- ``if``: non-leaky ``v += i_bias + x``; ``v >= v_th`` spikes; ``reset = "zero"`` sets
  ``v_reset``, ``"subtract"`` removes ``v_th`` (for converted networks).
- ``izhikevich``: Izhikevich (2003), ``v' = 0.04v² + 5v + 140 - u + I``, ``u' = a(bv - u)``,
  v and u integrated together by Heun (RK2) sub-steps of at most ``max_substep_ms`` (default
  0.1 ms); ``v >= v_peak_mv`` (30) spikes: ``v = c, u += d`` at the crossing time (linear within
  the sub-step) and the rest of the sub-step is integrated from the reset, so a 1 ms step gives
  the spike counts of a converged solution (RK4 at 1 µs) within 1 %; the input of a step is a
  current added to ``i_bias`` for that step. At most one spike per neuron and step is reported.
- ``hh``: Hodgkin-Huxley squid axon (rest -65 mV, classic rate functions), sub-stepped at most
  ``max_substep_ms`` (default 0.01 ms: spike counts of a converged solution at dt = 1 ms);
  gates by exponential Euler, v by forward Euler; input moves v by its value in mV; an upward
  crossing of ``v_spike_mv`` is a spike.

``k`` and the decays come from the time constants: ``integration = "exact"`` uses
``k = 1 - exp(-dt/tau)``, ``d = exp(-dt/tau)``; ``"euler"`` uses ``k = dt/tau``, ``d = 1 -
dt/tau``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgesnn.core import layout as L


@dataclass(frozen=True)
class ModelDef:
    """A neuron model: code, parameters with defaults, state variable names."""

    name: str
    code: int
    params: dict[str, Any]
    state: tuple[str, ...]
    doc: str = ""
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)


_LIF_COMMON = {
    "tau_mem_ms": 20.0,
    "v_rest": 0.0,
    "v_th": 1.0,
    "v_reset": 0.0,
    "t_ref_ms": 0.0,
    "i_bias": 0.0,
    "v_init": None,  # default v_rest
    "integration": "exact",
}

MODELS: dict[str, ModelDef] = {
    "input": ModelDef("input", L.MODEL_INPUT, {}, (), "External spikes enter here."),
    "lif": ModelDef(
        "lif",
        L.MODEL_LIF,
        dict(_LIF_COMMON),
        ("v",),
        "Leaky integrate-and-fire, delta synapses, refractory period.",
        {"integration": ("exact", "euler")},
    ),
    "cuba_lif": ModelDef(
        "cuba_lif",
        L.MODEL_CUBA,
        {**_LIF_COMMON, "tau_syn_exc_ms": 5.0, "tau_syn_inh_ms": 10.0},
        ("v", "i_exc", "i_inh"),
        "Current-based LIF with exponential excitatory and inhibitory currents.",
        {"integration": ("exact", "euler")},
    ),
    "adaptive_lif": ModelDef(
        "adaptive_lif",
        L.MODEL_ADLIF,
        {**_LIF_COMMON, "tau_adapt_ms": 100.0, "theta_plus": 0.05},
        ("v", "theta"),
        "LIF with an adaptive threshold (v_th + theta).",
        {"integration": ("exact", "euler")},
    ),
    "if": ModelDef(
        "if",
        L.MODEL_IF,
        {"v_th": 1.0, "v_reset": 0.0, "reset": "subtract", "i_bias": 0.0, "v_init": None},
        ("v",),
        "Non-leaky integrate-and-fire (converted networks).",
        {"reset": ("subtract", "zero")},
    ),
    "izhikevich": ModelDef(
        "izhikevich",
        L.MODEL_IZH,
        {
            "a": 0.02,
            "b": 0.2,
            "c": -65.0,
            "d": 8.0,
            "v_peak_mv": 30.0,
            "i_bias": 0.0,
            "v_init": -65.0,
            "max_substep_ms": 0.1,  # Heun sub-step: converged spike counts at dt = 1 ms
        },
        ("v", "u"),
        "Izhikevich (2003) simple model; a, b, c (mV), d as published.",
    ),
    "hh": ModelDef(
        "hh",
        L.MODEL_HH,
        {
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
        ("v", "m", "h", "n", "above"),
        "Hodgkin-Huxley squid axon; i_bias in uA/cm2.",
    ),
}


def _factors(dt_ms: float, tau_ms: float, integration: str) -> tuple[float, float]:
    """(k, d): membrane update factor and per-step decay for a time constant."""
    if integration == "euler":
        return dt_ms / tau_ms, 1.0 - dt_ms / tau_ms
    d = math.exp(-dt_ms / tau_ms)
    return 1.0 - d, d


def _vector(value: Any, n: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(n, float(arr))
    return arr.reshape(n).astype(np.float64)


def pack_params(model: str, p: dict[str, Any], n: int, dt_us: int) -> np.ndarray:
    """The fp block of a layer (scalars then i_bias per neuron), float64."""
    dt_ms = dt_us / 1000.0
    if model == "input":
        return np.zeros(0)
    bias = _vector(p["i_bias"], n)
    if model in ("lif", "cuba_lif", "adaptive_lif"):
        k, _ = _factors(dt_ms, p["tau_mem_ms"], p["integration"])
        # held steps: the neuron integrates again t_ref after its spike (W3 / Brian2 rule)
        n_ref = max(int(round(p["t_ref_ms"] * 1000.0 / dt_us)) - 1, 0)
        head = [k, p["v_rest"], p["v_th"], p["v_reset"], float(n_ref)]
        if model == "cuba_lif":
            head += [
                _factors(dt_ms, p["tau_syn_exc_ms"], p["integration"])[1],
                _factors(dt_ms, p["tau_syn_inh_ms"], p["integration"])[1],
            ]
        elif model == "adaptive_lif":
            head += [_factors(dt_ms, p["tau_adapt_ms"], p["integration"])[1], p["theta_plus"]]
    elif model == "if":
        head = [p["v_th"], p["v_reset"], 1.0 if p["reset"] == "subtract" else 0.0]
    elif model == "izhikevich":
        n_sub = max(1, math.ceil(dt_ms / p["max_substep_ms"] - 1e-9))
        head = [p["a"], p["b"], p["c"], p["d"], p["v_peak_mv"], dt_ms, float(n_sub)]
    elif model == "hh":
        n_sub = max(1, math.ceil(dt_ms / p["max_substep_ms"] - 1e-9))
        head = [
            p["g_na_mS_per_cm2"],
            p["g_k_mS_per_cm2"],
            p["g_l_mS_per_cm2"],
            p["e_na_mv"],
            p["e_k_mv"],
            p["e_l_mv"],
            p["c_m_uF_per_cm2"],
            dt_ms,
            float(n_sub),
            p["v_spike_mv"],
        ]
    else:  # pragma: no cover - validated before
        raise ValueError(model)
    return np.concatenate([np.asarray(head, dtype=np.float64), bias])


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


def initial_state(model: str, p: dict[str, Any], n: int) -> np.ndarray:
    """Initial state variables of a layer, shape (n_vars, n), float64."""
    md = MODELS[model]
    out = np.zeros((len(md.state), n))
    if model == "input":
        return out
    v0 = p.get("v_init")
    if v0 is None:
        v0 = p.get("v_rest", 0.0)
    out[0] = _vector(v0, n)
    if model == "izhikevich":
        out[1] = p["b"] * out[0]
    elif model == "hh":
        out[1], out[2], out[3] = hh_gates_at(out[0])
    return out
