"""Slow, obvious numpy simulations of converted networks, the twins of the core's kernels.

A dense chain is simulated layer by layer and step by step with the core's conventions: input
spikes of step t reach the next layer in step t + 1 (one step per hop), a layer's input is the
sum of the weight rows of the pre neurons that spiked, added row by row in ascending neuron
order (the core's order, so float64 results are identical).
"""

from __future__ import annotations

import numpy as np

from edgesnn.core.spec import NetworkSpec


def _rows(w: np.ndarray, spiked: np.ndarray) -> np.ndarray:
    acc = np.zeros(w.shape[1])
    for i in np.flatnonzero(spiked):
        acc = acc + w[i]
    return acc


def simulate_if_chain(spec: NetworkSpec, spikes: np.ndarray) -> np.ndarray:
    """Output spikes (steps, n_out) bool of an input -> dense -> if -> ... chain for input
    spikes (steps, n_in) bool: v = (v + i_bias) + x; v >= v_th spikes; reset by subtraction."""
    layers = spec.layers[1:]
    ws = [np.asarray(p.get("weight"), np.float64) for p in spec.projections]
    v = []
    for lay in layers:
        p = lay.full_params()
        assert lay.model == "if" and p["reset"] == "subtract"
        v.append(np.full(lay.n, float(p["v_init"] if p["v_init"] is not None else 0.0)))
    prev = [spikes[0] * False] + [np.zeros(lay.n, bool) for lay in layers]
    out = np.zeros((spikes.shape[0], layers[-1].n), bool)
    for t in range(spikes.shape[0]):
        now = [spikes[t]]
        for li, lay in enumerate(layers):
            p = lay.full_params()
            x = _rows(ws[li], prev[li])
            bias = np.broadcast_to(np.asarray(p["i_bias"], np.float64), (lay.n,))
            vv = (v[li] + bias) + x
            s = vv >= p["v_th"]
            vv[s] -= p["v_th"]
            v[li] = vv
            now.append(s)
        prev = now
        out[t] = now[-1]
    return out
