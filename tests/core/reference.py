"""A slow, obvious pure-Python simulator of a NetworkSpec, the twin of the numba kernels.

Everything is a Python float or list; every projection is a list of (pre, post, weight, delay)
synapses built straight from the rule's definition (convolution and pooling by looping over
output positions and kernel taps). Each neuron model's update is the reference twin in its
module (`edgesnn.core.neurons.<model>.reference`), the same arithmetic in the same order as its
kernel, so float64 spike trains must be identical to the kernels'.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edgesnn.core.models import MODELS, initial_state
from edgesnn.core.neurons import RefEnv
from edgesnn.core.spec import NetworkSpec, random_edges
from edgesnn.learning.rules.common import DEFAULTS as COMMON_DEFAULTS
from edgesnn.learning.rules.stdp import DEFAULTS as STDP_DEFAULTS


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
                init = initial_state(lay.model, p, lay.n)
                for var, row in zip(MODELS[lay.model].state, init):
                    st[var] = [float(x) for x in row]
                st["ref"] = [0.0] * lay.n
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
                env = RefEnv(self.dt_ms, spec.dt_us, self.direct[li])
                self.spikes[li] = MODELS[lay.model].reference(
                    self.p[li], self.state[li], xe, xi, env
                )
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
        d = {**STDP_DEFAULTS, **COMMON_DEFAULTS}  # the rule's defaults, from its module
        d_pre = math.exp(-self.dt_ms / pl.get("tau_pre_ms", d["tau_pre_ms"]))
        d_post = math.exp(-self.dt_ms / pl.get("tau_post_ms", d["tau_post_ms"]))
        a_plus, a_minus = pl.get("a_plus", d["a_plus"]), pl.get("a_minus", d["a_minus"])
        w_min, w_max = pl.get("w_min", d["w_min"]), pl.get("w_max", d["w_max"])
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
