"""A slow, obvious pure-Python simulator of a NetworkSpec, the twin of the numba kernels.

Everything is a Python float or list; every projection is a list of (pre, post, weight, delay)
synapses built straight from the rule's definition (convolution and pooling by looping over
output positions and kernel taps). Arithmetic follows the documented update of each model in
the same order, so float64 spike trains must be identical to the kernels'.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edgesnn.core.models import MODELS, hh_gates_at
from edgesnn.core.spec import NetworkSpec, random_edges


def _factors(dt_ms: float, tau_ms: float, integration: str) -> tuple[float, float]:
    if integration == "euler":
        return dt_ms / tau_ms, 1.0 - dt_ms / tau_ms
    d = math.exp(-dt_ms / tau_ms)
    return 1.0 - d, d


def _vec(value: Any, n: int) -> list[float]:
    a = np.asarray(value, dtype=np.float64)
    return [float(a)] * n if a.ndim == 0 else [float(x) for x in a.reshape(n)]


def synapses(spec: NetworkSpec, index: int) -> tuple[list[tuple[int, int, float, int]], int]:
    """(pre, post, weight, delay) of projection `index` in delivery order, and its channel."""
    proj = spec.projections[index]
    src, dst = spec.layer(proj.source), spec.layer(proj.target)
    w = np.asarray(proj.get("weight", 1.0), dtype=np.float64)
    d = np.asarray(proj.get("delay_steps", 0), dtype=np.int64)
    syn = proj.get("synapse", "auto")
    if syn == "inh":
        w = -np.abs(w)
    out: list[tuple[int, int, float, int]] = []
    rule = proj.rule
    if rule == "dense":
        W = np.broadcast_to(w, (src.n, dst.n))
        D = np.broadcast_to(d.reshape(src.n, dst.n) if d.ndim else d, (src.n, dst.n))
        out = [(i, j, float(W[i, j]), int(D[i, j])) for i in range(src.n) for j in range(dst.n)]
    elif rule == "sparse":
        a, b = list(proj.get("pre")), list(proj.get("post"))
        W = np.broadcast_to(w, (len(a),))
        D = np.broadcast_to(d, (len(a),))
        edges = [(int(a[q]), int(b[q]), float(W[q]), int(D[q])) for q in range(len(a))]
        out = sorted(edges, key=lambda e: e[0])  # stable: given order within a pre neuron
    elif rule == "random":  # the edges are drawn by the documented generator
        a, b = random_edges(spec, index)
        out = [(int(a[q]), int(b[q]), float(w), int(d)) for q in range(a.size)]
    elif rule == "one_to_one":
        W = np.broadcast_to(w, (src.n,))
        D = np.broadcast_to(d, (src.n,))
        out = [(i, i, float(W[i]), int(D[i])) for i in range(src.n)]
    elif rule == "wta":
        out = [(i, j, float(w), int(d)) for i in range(src.n) for j in range(dst.n) if i != j]
    elif rule == "conv2d":
        k = np.asarray(proj.get("kernel"), dtype=np.float64)
        if syn == "inh":
            k = -np.abs(k)
        c_in, h, wd = (int(x) for x in proj.get("in_shape"))
        c_out, _, kh, kw = k.shape
        st, pad = int(proj.get("stride", 1)), int(proj.get("padding", 0))
        ho, wo = (h + 2 * pad - kh) // st + 1, (wd + 2 * pad - kw) // st + 1
        for co in range(c_out):
            for oy in range(ho):
                for ox in range(wo):
                    for c in range(c_in):
                        for ky in range(kh):
                            for kx in range(kw):
                                y, x = oy * st - pad + ky, ox * st - pad + kx
                                if 0 <= y < h and 0 <= x < wd:
                                    out.append(
                                        (
                                            (c * h + y) * wd + x,
                                            (co * ho + oy) * wo + ox,
                                            float(k[co, c, ky, kx]),
                                            int(d),
                                        )
                                    )
        out.sort(key=lambda e: e[0])
    elif rule == "pool2d":
        c_in, h, wd = (int(x) for x in proj.get("in_shape"))
        size = int(proj.get("size", 2))
        st = int(proj.get("stride") or size)
        ho, wo = (h - size) // st + 1, (wd - size) // st + 1
        for c in range(c_in):
            for oy in range(ho):
                for ox in range(wo):
                    for y in range(oy * st, oy * st + size):
                        for x in range(ox * st, ox * st + size):
                            out.append(
                                ((c * h + y) * wd + x, (c * ho + oy) * wo + ox, float(w), int(d))
                            )
        out.sort(key=lambda e: e[0])
    else:
        raise ValueError(rule)
    if syn == "auto":
        ws = [e[2] for e in out]
        ch = 1 if ws and all(x <= 0 for x in ws) and any(x < 0 for x in ws) else 0
    else:
        ch = 1 if syn == "inh" else 0
    return out, ch


class Reference:
    """Steps a NetworkSpec one dt at a time with plain Python loops."""

    def __init__(self, spec: NetworkSpec):
        self.spec = spec
        self.dt_ms = spec.dt_us / 1000.0
        self.layers = spec.layers
        self.idx = {lay.name: i for i, lay in enumerate(self.layers)}
        self.p = [lay.full_params() for lay in self.layers]
        self.state: list[dict[str, list[float]]] = []
        for lay, p in zip(self.layers, self.p):
            st: dict[str, list[float]] = {}
            if lay.model != "input":
                v0 = p.get("v_init")
                v0 = p.get("v_rest", 0.0) if v0 is None else v0
                st["v"] = _vec(v0, lay.n)
                st["ref"] = [0.0] * lay.n
                for var in MODELS[lay.model].state[1:]:
                    st[var] = [0.0] * lay.n
                if lay.model == "izhikevich":
                    st["u"] = [p["b"] * v for v in st["v"]]
                if lay.model == "hh":
                    m, h, n = hh_gates_at(np.asarray(st["v"]))
                    st["m"], st["h"], st["n"] = list(m), list(h), list(n)
            self.state.append(st)
        self.proj = [synapses(spec, i) for i in range(len(spec.projections))]
        # a cuba_lif layer without delayed input takes spikes straight into its currents at
        # the end of the step; otherwise they wait in a buffer and join the currents next step
        max_d = [0] * len(self.layers)
        for proj in spec.projections:
            d = np.asarray(proj.get("delay_steps", 0))
            t = self.idx[proj.target]
            max_d[t] = max(max_d[t], int(d.max()) if d.size else 0)
        self.direct = [
            lay.model == "cuba_lif" and max_d[i] == 0 for i, lay in enumerate(self.layers)
        ]
        # pending[(layer, step)] = [exc list, inh list]: input that arrives at the end of step
        self.pending: dict[tuple[int, int], list[list[float]]] = {}
        self.t = 0
        self.spikes: list[list[int]] = [[] for _ in self.layers]
        self.counts = [0] * len(self.layers)
        self.learning = True
        self.weights = [[s[2] for s in syn] for syn, _ in self.proj]
        self.traces = {}
        for pi, proj in enumerate(spec.projections):
            if proj.get("plasticity") is not None:
                self.traces[pi] = (
                    [0.0] * spec.layer(proj.source).n,
                    [0.0] * spec.layer(proj.target).n,
                )

    def _arrived(self, li: int) -> list[list[float]]:
        n = self.layers[li].n
        return self.pending.pop((li, self.t - 1), [[0.0] * n, [0.0] * n])

    def step(self, inputs: list[int]) -> dict[str, list[int]]:
        spec = self.spec
        off = 0
        for li, lay in enumerate(self.layers):
            if lay.model == "input":
                self.spikes[li] = [i - off for i in inputs if off <= i < off + lay.n]
                off += lay.n
            else:
                xe, xi = self._arrived(li)
                self.spikes[li] = getattr(self, "_" + lay.model)(li, xe, xi)
            self.counts[li] += len(self.spikes[li])
        for pi, (syn, ch) in enumerate(self.proj):
            proj = spec.projections[pi]
            src, dst = self.idx[proj.source], self.idx[proj.target]
            gain = float(proj.get("gain", 1.0))
            fired = self.spikes[src]
            for s in fired:  # spikes in their emission order, synapses in CSR order
                for q, (i, j, _, d) in enumerate(syn):
                    if i == s and self.direct[dst]:
                        var = "i_inh" if ch else "i_exc"
                        self.state[dst][var][j] += gain * self.weights[pi][q]
                    elif i == s:
                        key = (dst, self.t + d)
                        if key not in self.pending:
                            n = self.layers[dst].n
                            self.pending[key] = [[0.0] * n, [0.0] * n]
                        self.pending[key][ch][j] += gain * self.weights[pi][q]
        if self.learning:
            for pi in self.traces:
                self._stdp(pi)
        self.t += 1
        return {lay.name: list(self.spikes[li]) for li, lay in enumerate(self.layers)}

    def _stdp(self, pi: int) -> None:
        proj = self.spec.projections[pi]
        pl = proj.get("plasticity")
        d_pre = math.exp(-self.dt_ms / pl.get("tau_pre_ms", 20.0))
        d_post = math.exp(-self.dt_ms / pl.get("tau_post_ms", 20.0))
        a_plus, a_minus = pl.get("a_plus", 0.01), pl.get("a_minus", 0.0105)
        w_min, w_max = pl.get("w_min", 0.0), pl.get("w_max", 1.0)
        x_pre, x_post = self.traces[pi]
        for i in range(len(x_pre)):
            x_pre[i] *= d_pre
        for j in range(len(x_post)):
            x_post[j] *= d_post
        syn, _ = self.proj[pi]
        w = self.weights[pi]
        for i in self.spikes[self.idx[proj.source]]:
            x_pre[i] += 1
            for q, (a, b, _, _) in enumerate(syn):
                if a == i:
                    w[q] = min(max(w[q] - a_minus * x_post[b], w_min), w_max)
        for j in self.spikes[self.idx[proj.target]]:
            x_post[j] += 1
            for q, (a, b, _, _) in enumerate(syn):
                if b == j:
                    w[q] = min(max(w[q] + a_plus * x_pre[a], w_min), w_max)

    # --- models (same arithmetic order as the kernels) -------------------------------------

    def _held(self, p: dict[str, Any]) -> float:
        return float(max(int(round(p["t_ref_ms"] * 1000.0 / self.spec.dt_us)) - 1, 0))

    def _lif_like(self, li: int, xe: list[float], xi: list[float], kind: str) -> list[int]:
        p, st, n = self.p[li], self.state[li], self.layers[li].n
        k, _ = _factors(self.dt_ms, p["tau_mem_ms"], p["integration"])
        bias = _vec(p["i_bias"], n)
        held = self._held(p)
        fired = []
        if kind == "cuba":
            _, de = _factors(self.dt_ms, p["tau_syn_exc_ms"], p["integration"])
            _, di = _factors(self.dt_ms, p["tau_syn_inh_ms"], p["integration"])
        if kind == "adaptive":
            _, da = _factors(self.dt_ms, p["tau_adapt_ms"], p["integration"])
        for i in range(n):
            v = st["v"][i]
            if kind == "cuba":
                ie = st["i_exc"][i] + xe[i] if not self.direct[li] else st["i_exc"][i]
                ih = st["i_inh"][i] + xi[i] if not self.direct[li] else st["i_inh"][i]
                vn = v + k * (p["v_rest"] + bias[i] + (ie + ih) - v)
                st["i_exc"][i] = ie * de
                st["i_inh"][i] = ih * di
            else:
                vn = v + k * (p["v_rest"] + bias[i] - v) + (xe[i] + xi[i])
            if st["ref"][i] == 0:
                v = vn
            st["ref"][i] = max(st["ref"][i] - 1, 0)
            th = p["v_th"]
            if kind == "adaptive":
                st["theta"][i] *= da
                th = p["v_th"] + st["theta"][i]
            if v > th:
                v = p["v_reset"]
                st["ref"][i] = held
                fired.append(i)
                if kind == "adaptive":
                    st["theta"][i] += p["theta_plus"]
            st["v"][i] = v
        return fired

    def _lif(self, li: int, xe: list[float], xi: list[float]) -> list[int]:
        return self._lif_like(li, xe, xi, "lif")

    def _cuba_lif(self, li: int, xe: list[float], xi: list[float]) -> list[int]:
        return self._lif_like(li, xe, xi, "cuba")

    def _adaptive_lif(self, li: int, xe: list[float], xi: list[float]) -> list[int]:
        return self._lif_like(li, xe, xi, "adaptive")

    def _if(self, li: int, xe: list[float], xi: list[float]) -> list[int]:
        p, st, n = self.p[li], self.state[li], self.layers[li].n
        bias = _vec(p["i_bias"], n)
        fired = []
        for i in range(n):
            v = st["v"][i] + bias[i] + (xe[i] + xi[i])
            if v >= p["v_th"]:
                v = v - p["v_th"] if p["reset"] == "subtract" else p["v_reset"]
                fired.append(i)
            st["v"][i] = v
        return fired

    def _izhikevich(self, li: int, xe: list[float], xi: list[float]) -> list[int]:
        p, st, n = self.p[li], self.state[li], self.layers[li].n
        bias = _vec(p["i_bias"], n)
        n_sub = max(1, math.ceil(self.dt_ms / p["max_substep_ms"] - 1e-9))
        h = self.dt_ms / float(n_sub)
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

    def _hh(self, li: int, xe: list[float], xi: list[float]) -> list[int]:
        p, st, n = self.p[li], self.state[li], self.layers[li].n
        bias = _vec(p["i_bias"], n)
        n_sub = max(1, math.ceil(self.dt_ms / p["max_substep_ms"] - 1e-9))
        h = self.dt_ms / float(n_sub)

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
