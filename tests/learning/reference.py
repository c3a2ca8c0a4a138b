"""Plain per-step reference implementations of the learning rules (no laziness, no numba).

Every trace and eligibility decays at every step; weights are a dense matrix with a mask of the
synapses that exist. The order of operations inside a step is the one documented in
edgesnn.learning.kernels.
"""

from __future__ import annotations

import math

import numpy as np

from edgesnn.core import NetworkSpec
from edgesnn.learning.rules import rule_params


class NaiveRule:
    """One plastic projection, advanced one step at a time from its spike trains."""

    def __init__(self, pl: dict, w0: np.ndarray, mask: np.ndarray, dt_us: int = 1000,
                 tau_adapt_ms: float | None = None):
        self.p = rule_params(pl, dt_us)
        self.rule = self.p["rule"]
        self.w = w0.astype(np.float64).copy()
        self.mask = mask.astype(bool)
        n_pre, n_post = w0.shape
        self.r1 = np.zeros(n_pre)
        self.r2 = np.zeros(n_pre)
        self.o1 = np.zeros(n_post)
        self.o2 = np.zeros(n_post)
        self.c = np.zeros_like(self.w)
        self.d = 0.0
        self.theta = np.zeros(n_post)
        dt = dt_us / 1000.0

        def dec(tau: float) -> float:
            return math.exp(-dt / tau) if tau > 0 else 0.0

        self.d1pre, self.d2pre = dec(self.p["tau_plus_ms"]), dec(self.p["tau_x_ms"])
        self.d1post, self.d2post = dec(self.p["tau_minus_ms"]), dec(self.p["tau_y_ms"])
        self.de, self.dd = dec(self.p["tau_elig_ms"]), dec(self.p["tau_dopa_ms"])
        self.da = dec(tau_adapt_ms) if tau_adapt_ms else 1.0
        self.t = 0

    def _bump(self, x: np.ndarray, k: int) -> None:
        if self.p["pairing"] == "nearest":
            x[k] = 1.0
        else:
            x[k] += 1.0

    def _change(self, i: int, j: int, pot: float, dep: float) -> None:
        w = self.w[i, j]
        lo, hi = self.p["w_min"], self.p["w_max"]
        if self.p["bounds"] == "multiplicative":
            w = w + pot * (hi - w) - dep * (w - lo)
        else:
            w = w + pot - dep
        self.w[i, j] = min(max(w, lo), hi)

    def step(self, pre: list[int], post: list[int], reward: float = 0.0) -> None:
        """Advance one step with these pre and post spikes (and a reward given before it)."""
        p = self.p
        n_pre, n_post = self.w.shape
        # every state variable decays once per step
        self.r1 *= self.d1pre
        self.r2 *= self.d2pre
        self.o1 *= self.d1post
        self.o2 *= self.d2post
        self.c *= self.de
        self.d *= self.dd
        self.theta *= self.da
        if self.rule == "rstdp":
            if reward != 0.0:
                for i in range(n_pre):
                    for j in range(n_post):
                        if self.mask[i, j]:
                            x = self.w[i, j] + p["gain"] * reward * self.c[i, j]
                            self.w[i, j] = min(max(x, p["w_min"]), p["w_max"])
                self.d += reward
            kd = p["gain"] * self.d
            for i in pre:
                for j in range(n_post):
                    if self.mask[i, j]:
                        dc = -p["a2_minus"] * self.o1[j]
                        if p["bounds"] == "multiplicative":
                            dc *= self.w[i, j] - p["w_min"]
                        self.c[i, j] += dc
                        if kd != 0.0:
                            x = self.w[i, j] + kd * dc
                            self.w[i, j] = min(max(x, p["w_min"]), p["w_max"])
                self._bump(self.r1, i)
            for j in post:
                for i in range(n_pre):
                    if self.mask[i, j]:
                        dc = p["a2_plus"] * self.r1[i]
                        if p["bounds"] == "multiplicative":
                            dc *= p["w_max"] - self.w[i, j]
                        self.c[i, j] += dc
                        if kd != 0.0:
                            x = self.w[i, j] + kd * dc
                            self.w[i, j] = min(max(x, p["w_min"]), p["w_max"])
                self._bump(self.o1, j)
        else:
            for i in pre:
                amp = p["a2_minus"] + p["a3_minus"] * self.r2[i]
                for j in range(n_post):
                    if self.mask[i, j]:
                        self._change(i, j, 0.0, amp * self.o1[j])
                self._bump(self.r1, i)
                self._bump(self.r2, i)
            for j in post:
                amp = p["a2_plus"] + p["a3_plus"] * self.o2[j]
                for i in range(n_pre):
                    if self.mask[i, j]:
                        self._change(i, j, amp * self.r1[i], 0.0)
                self._bump(self.o1, j)
                self._bump(self.o2, j)
        for j in post:
            self.theta[j] += p["theta_plus"]
        if p["norm_total"] > 0:
            every = p["norm_interval_steps"]
            cols = post if every == 0 else (range(n_post) if (self.t + 1) % every == 0 else [])
            for j in cols:
                s = sum(self.w[i, j] for i in range(n_pre) if self.mask[i, j])
                if s > 0:
                    for i in range(n_pre):
                        if self.mask[i, j]:
                            self.w[i, j] *= p["norm_total"] / s
        self.t += 1


def teacher_spec(n_pre: int, n_post: int, pl: dict, *, sparse_edges=None, w0=None,
                 post_model: str = "lif", dt_us: int = 1000, dtype: str = "float64",
                 tau_adapt_ms: float = 100.0) -> NetworkSpec:
    """Inputs `pre` (n_pre) and `teach` (n_post); `post` fires one step after its teacher
    input (teacher weight 100, the plastic pre->post projection has gain 0), so the spike
    trains of both sides of the plastic projection are chosen by the test."""
    spec = NetworkSpec(dt_us=dt_us, dtype=dtype)
    spec.add_layer("pre", n_pre, "input")
    spec.add_layer("teach", n_post, "input")
    kw = {"tau_adapt_ms": tau_adapt_ms, "theta_plus": 0.0} if post_model == "adaptive_lif" else {}
    spec.add_layer("post", n_post, post_model, v_th=0.5, **kw)
    spec.connect("teach", "post", "one_to_one", weight=100.0)
    if sparse_edges is None:
        spec.connect("pre", "post", "dense", weight=w0, gain=0.0, plasticity=pl)
    else:
        a, b = sparse_edges
        spec.connect("pre", "post", "sparse", pre=a, post=b, weight=w0, gain=0.0, plasticity=pl)
    spec.outputs = ["post"]
    return spec
