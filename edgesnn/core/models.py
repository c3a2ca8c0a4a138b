"""Neuron models: their parameters (units in the names), state variables and update rules.

Each model is one module of `edgesnn.core.neurons` (parameters with units in their names,
state, packed scalars, numba update kernel and its slow reference twin), registered there in one
place; the step kernel's layer dispatch is generated from that registry. Each model documents its
update; its kernel implements exactly it.
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
- ``adex``: adaptive exponential integrate-and-fire (Brette & Gerstner 2005), ``C v' = -g_L(v -
  E_L) + g_L Δ_T exp((v - V_T)/Δ_T) - w + I``, ``τ_w w' = a(v - E_L) - w``; ``v >= v_peak_mv``
  spikes: ``v = v_reset_mv, w += b_pa``. Parameters ``c_m_pf``, ``g_l_ns``, ``e_l_mv``,
  ``v_t_mv``, ``delta_t_mv``, ``a_ns``, ``tau_w_ms``, ``b_pa``, ``v_reset_mv``, ``v_peak_mv``
  (default V_T + 5 Δ_T, Brian2's cut-off), currents (``i_bias``, input) in pA; integrated as
  ``izhikevich`` (Heun sub-steps of at most ``max_substep_ms``, default 0.1 ms, reset at the
  crossing): spike times match Brian2 (RK4 at 1 µs) within one 1 ms step.

``k`` and the decays come from the time constants: ``integration = "exact"`` uses
``k = 1 - exp(-dt/tau)``, ``d = exp(-dt/tau)``; ``"euler"`` uses ``k = dt/tau``, ``d = 1 -
dt/tau``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgesnn.core.neurons import REGISTRY, NeuronModel
from edgesnn.core.neurons._base import factors as _factors  # noqa: F401 - used by tests
from edgesnn.core.neurons.hh import hh_gates_at

__all__ = ["MODELS", "ModelDef", "hh_gates_at", "initial_state", "pack_params"]

#: A neuron model (`edgesnn.core.neurons._base.NeuronModel`): code, parameters, state, kernel.
ModelDef = NeuronModel

#: every neuron model by name (the registry of `edgesnn.core.neurons`)
MODELS: dict[str, NeuronModel] = REGISTRY


def _vector(value: Any, n: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(n, float(arr))
    return arr.reshape(n).astype(np.float64)


def pack_params(model: str, p: dict[str, Any], n: int, dt_us: int) -> np.ndarray:
    """The fp block of a layer (the model's scalars, then i_bias per neuron), float64."""
    md = MODELS[model]
    if md.pack is None:
        return np.zeros(0)
    head = md.pack(p, dt_us)
    if len(head) != len(md.slots):  # pragma: no cover - a model module's mistake
        raise RuntimeError(f"model {model}: packs {len(head)} scalars for {len(md.slots)} slots")
    return np.concatenate([np.asarray(head, dtype=np.float64), _vector(p["i_bias"], n)])


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
    if md.init is not None:
        md.init(p, out)
    return out
