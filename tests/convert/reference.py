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


def simulate_chain(spec: NetworkSpec, spikes: np.ndarray) -> np.ndarray:
    """Output spikes (steps, n_out) bool of any spec of `input`, `if`, `lif` (no refractory
    period) and `cuba_lif` layers joined by dense or one_to_one projections without delays (the
    TTFS networks, the leaky rate networks).

    Per step: the input layer takes the given spikes; every other layer updates in spec order
    from what arrived before (cuba_lif: ``v += k*(v_rest + i_bias + (i_exc + i_inh) - v)``
    unless refractory, currents decay, ``v > v_th`` spikes, resets and holds for n_ref steps;
    if: ``v = (v + i_bias) + x``, ``v >= v_th`` spikes; lif: ``v += k*(v_rest + i_bias - v) +
    x``, ``v > v_th`` spikes and resets); then every projection, in spec order,
    adds the rows of its pre layer's spikes to its target: straight into i_exc for cuba_lif,
    into the input of the next step for if.
    """
    from edgesnn.core.models import _factors

    dt_ms = spec.dt_us / 1000.0
    st: dict[str, dict[str, np.ndarray | float]] = {}
    for lay in spec.layers:
        p = lay.full_params()
        n = lay.n
        if lay.model == "input":
            st[lay.name] = {"spk": np.zeros(n, bool)}
            continue
        v0 = p["v_init"] if p["v_init"] is not None else p.get("v_rest", 0.0)
        s: dict[str, np.ndarray | float] = {
            "v": np.broadcast_to(np.asarray(v0, np.float64), (n,)).copy(),
            "bias": np.broadcast_to(np.asarray(p["i_bias"], np.float64), (n,)).copy(),
            "spk": np.zeros(n, bool),
            "x": np.zeros(n),
        }
        if lay.model in ("cuba_lif", "lif"):
            s["k"], _ = _factors(dt_ms, p["tau_mem_ms"], p["integration"])
        if lay.model == "cuba_lif":
            s["de"] = _factors(dt_ms, p["tau_syn_exc_ms"], p["integration"])[1]
            s["nref"] = float(max(int(round(p["t_ref_ms"] * 1000.0 / spec.dt_us)) - 1, 0))
            s["ref"] = np.zeros(n)
        else:
            assert lay.model in ("if", "lif") and p.get("t_ref_ms", 0.0) == 0.0
        st[lay.name] = s
    out_name = spec.outputs[0]
    out = np.zeros((spikes.shape[0], spec.layer(out_name).n), bool)
    for t in range(spikes.shape[0]):
        for lay in spec.layers:
            s = st[lay.name]
            p = lay.full_params()
            if lay.model == "input":
                s["spk"] = spikes[t].copy()
            elif lay.model == "lif":
                v = s["v"] + s["k"] * (p["v_rest"] + s["bias"] - s["v"]) + (s["x"] + 0.0)
                s["x"] = np.zeros(lay.n)
                fire = v > p["v_th"]
                v[fire] = p["v_reset"]
                s["v"], s["spk"] = v, fire
            elif lay.model == "if":
                v = (s["v"] + s["bias"]) + s["x"]
                s["x"] = np.zeros(lay.n)
                fire = v >= p["v_th"]
                if p["reset"] == "subtract":
                    v[fire] -= p["v_th"]
                else:
                    v[fire] = p["v_reset"]
                s["v"], s["spk"] = v, fire
            else:
                ge = s["x"]  # i_exc, carried across steps (never reset here)
                v = s["v"]
                vn = v + s["k"] * ((p["v_rest"] + s["bias"]) + (ge + 0.0) - v)
                v = np.where(s["ref"] == 0.0, vn, v)
                s["ref"] = np.maximum(s["ref"] - 1.0, 0.0)
                s["x"] = ge * s["de"]
                fire = v > p["v_th"]
                v[fire] = p["v_reset"]
                s["ref"][fire] = s["nref"]
                s["v"], s["spk"] = v, fire
        for proj in spec.projections:
            pre, dst = st[proj.source], st[proj.target]
            w = np.asarray(proj.get("weight"), np.float64)
            if proj.rule == "one_to_one":
                dst["x"] = dst["x"] + np.where(pre["spk"], np.broadcast_to(w, pre["spk"].shape),
                                               0.0)
            else:
                assert proj.rule == "dense"
                for i in np.flatnonzero(pre["spk"]):
                    dst["x"] = dst["x"] + w[i]
        out[t] = st[out_name]["spk"]
    return out
