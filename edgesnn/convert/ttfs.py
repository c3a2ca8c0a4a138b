"""Time-to-first-spike (TTFS) conversion: every neuron spikes at most once; earlier is larger.

For MLPs and small CNNs alike: a convolution or pooling layer is a ramp layer like a dense one,
its clock weights computed from the sum of each neuron's incoming weights.

The scheme (a discrete-time form of the exact ReLU-to-TTFS mapping of Stanojevic et al. 2023,
built from the core's ``cuba_lif`` and ``if`` models): layer l (input l = 0) emits its spikes
in the window ``[l*T, (l+1)*T]`` of T + 1 steps, a neuron with normalised activation a at step
``l*T + T - n`` where ``n = round(a * T)`` (a >= 1: at the window start or earlier; a <= 0: at
the window end, forced). Inputs in [0, 1] are coded so by `encode_latency`.

- Ramps: a hidden or output neuron is a ``cuba_lif`` with (numerically) no leak and synaptic
  currents that never decay (euler integration, ``tau_mem = 2^40`` steps, ``tau_syn = 2^80``
  steps: ``k = 2^-40`` exactly, decay exactly 1; weights are scaled by ``2^40`` so a spike of
  weight w raises v by w every following step). A pre spike at step s thus adds
  ``w * (E - s)`` to v by step E: at the end ``E = l*T`` of its inputs' window,
  ``v(E) = sum_i w_i n_i + T b + 1/2 ≈ T z`` (z: the balanced pre-activation).
- Clocks: a layer ``clock`` of ``if`` neurons, each spiking once at a fixed step (``i_bias =
  1``, ``v_init = -step``, reset to -1e9). The clock at ``(l-1)*T`` gives layer l its bias
  ramp (weight b); the clock at ``l*T`` sets every neuron's slope to exactly 1 per step from
  then on (weight ``1 - sum_i w_i - b``; by then every pre neuron has spiked, so the slope
  ``sum_i w_i`` is known); the clock at ``(l+1)*T - 1`` forces the neurons still silent at the
  window end to spike (a large weight). With threshold T the neuron then spikes at
  ``l*T + T - n`` with ``n = round(T z)``: its activation is coded like its inputs'.
- Spike once: ``t_ref_ms`` of 10^9 steps holds the neuron after its spike.
- Output: the last layer is not forced (a class whose logit is <= 0 stays silent); each output
  neuron drives a ``latch`` (``if``, reset to 0, exciting itself) that spikes every step after
  the output's first spike, so the runtime's decision rule (most spikes; ties undecided) picks
  the class that spiked first, with ties when two spike in the same step.

Approximations: activations are rounded to 1/T per layer; a neuron whose partial sum crosses the
threshold before its window (a large activation, or early positive inputs that later negative
ones would have cancelled) spikes early. The first output spike comes at about
``(L + 1) * T - round(T a_max)`` steps; a decision needs at most ``(L + 1) * T + 2``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgesnn.convert.ann import ReluCNN, ReluMLP
from edgesnn.core import NetworkSpec

#: membrane factor k of the ramp neurons (exactly representable), and the weight scale 1/k
K_RAMP = 2.0**-40
#: clock neurons reset far below threshold so they spike only once in any run
CLOCK_RESET = -1e9
#: refractory time that makes a ramp neuron spike once
SPIKE_ONCE_MS = 1e12


def encode_latency(x01: np.ndarray, window: int, steps: int) -> np.ndarray:
    """Input spikes (n, steps, n_in) bool: one per channel at step ``window - round(x01 *
    window)`` (x01 = 1 at step 0, x01 = 0 at step `window`)."""
    n, c = x01.shape
    out = np.zeros((n, steps, c), bool)
    s = window - np.rint(np.clip(x01, 0.0, 1.0) * window).astype(np.int64)
    r, ch = np.nonzero(s < steps)
    out[r, s[r, ch], ch] = True
    return out


def clock_steps(n_layers: int, window: int) -> list[int]:
    """Steps at which the clock neurons spike: l*T for l = 0..L, then (l+1)*T - 1 for the
    hidden layers l = 1..L-1."""
    ends = [l * window for l in range(n_layers + 1)]
    forces = [(l + 1) * window - 1 for l in range(1, n_layers)]
    return ends + forces


def ttfs_spec(model: ReluMLP | ReluCNN, scales: list[float], window: int,
              dt_us: int = 1000) -> tuple[NetworkSpec, dict[str, Any]]:
    """The TTFS network of a normalised ANN or CNN (inputs in [0, 1]) with layer scales
    `scales`; returns the spec and the manifest entries (window, total steps, clock steps)."""
    from edgesnn.convert.snn import stages

    if window < 2:
        raise ValueError("a TTFS window needs at least 2 steps")
    layers = stages(model, scales)
    n_layers = len(layers)
    times = clock_steps(n_layers, window)
    scale = 1.0 / K_RAMP
    dt_ms = dt_us / 1000.0
    ramp = {
        "v_th": float(window), "v_reset": 0.0, "v_rest": 0.0, "v_init": 0.5,
        "tau_mem_ms": dt_ms / K_RAMP, "tau_syn_exc_ms": dt_ms * 2.0**80,
        "tau_syn_inh_ms": dt_ms * 2.0**80, "t_ref_ms": SPIKE_ONCE_MS, "integration": "euler",
    }
    # float64: the converted network spikes exactly as the numpy simulation of the conversion
    spec = NetworkSpec(dt_us=dt_us, dtype="float64")
    spec.add_layer("in", model.n_inputs, "input")
    spec.add_layer("clock", len(times), "if", v_th=1.0, reset="zero", v_reset=CLOCK_RESET,
                   i_bias=1.0, v_init=-np.asarray(times, np.float64))
    prev = "in"
    for li, st in enumerate(layers):
        layer = li + 1
        spec.add_layer(st.name, st.n, "cuba_lif", **ramp)
        spec.connect(prev, st.name, st.rule, **st.scaled(scale), synapse="exc")
        clk = np.zeros((len(times), st.n))
        clk[times.index((layer - 1) * window)] = st.bias
        clk[times.index(layer * window)] = 1.0 - st.weight_sum() - st.bias
        if layer < n_layers:
            clk[times.index((layer + 1) * window - 1)] = 1e6 * window
        spec.connect("clock", st.name, "dense", weight=clk * scale, synapse="exc")
        prev = st.name
    n_out = model.n_outputs
    spec.add_layer("latch", n_out, "if", v_th=1.0, reset="zero", v_reset=0.0)
    spec.connect("out", "latch", "one_to_one", weight=1.0, synapse="exc")
    spec.connect("latch", "latch", "one_to_one", weight=1.0, synapse="exc")
    spec.outputs = ["latch"]
    spec.check()
    total = (n_layers + 1) * window + 2
    return spec, {"window": int(window), "total_steps": int(total), "clock_steps": times}
