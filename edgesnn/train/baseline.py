"""ANN baselines for comparing SNNs on the same features: a small numpy MLP, detection rates.

The examples report an SNN next to a conventional network on accuracy, latency and operations;
this module is that conventional side, in plain numpy (no deep-learning framework).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class MLP:
    """A one-hidden-layer ReLU network with softmax output, trained full-batch with Adam."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.w1 = rng.normal(0, np.sqrt(2.0 / n_in), (n_in, n_hidden))
        self.b1 = np.zeros(n_hidden)
        self.w2 = rng.normal(0, np.sqrt(1.0 / n_hidden), (n_hidden, n_out))
        self.b2 = np.zeros(n_out)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one forward pass (the operation count to compare)."""
        return int(self.w1.size + self.w2.size)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x @ self.w1 + self.b1, 0.0) @ self.w2 + self.b2

    def fit(self, x: np.ndarray, y: np.ndarray, epochs: int, lr: float = 1e-2,
            weight_decay: float = 1e-4) -> None:
        """Cross-entropy training on integer labels `y`."""
        from edgesnn.train import Adam

        params = [self.w1, self.b1, self.w2, self.b2]
        opt = Adam(params, lr)
        n = x.shape[0]
        for _ in range(epochs):
            h_pre = x @ self.w1 + self.b1
            h = np.maximum(h_pre, 0.0)
            z = h @ self.w2 + self.b2
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(n), y] -= 1.0
            gz = p / n
            gh = (gz @ self.w2.T) * (h_pre > 0)
            opt.step([x.T @ gh + weight_decay * self.w1, gh.sum(0),
                      h.T @ gz + weight_decay * self.w2, gz.sum(0)])


def detection_rates(pred: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(detection rate, false-alarm rate) when class 0 is normal and a prediction > 0 is an
    alarm (a prediction of -1, no decision, raises none); NaN where a class is absent."""
    alarm = pred > 0
    positive = y > 0
    dr = float(alarm[positive].mean()) if positive.any() else float("nan")
    far = float(alarm[~positive].mean()) if (~positive).any() else float("nan")
    return dr, far


def core_decisions(
    net: Any, dataset: Any, n_classes: int, tail_steps: int
) -> tuple[np.ndarray, list[int], list[float], list[int]]:
    """Run every sample of `dataset` through a core `Network` (reset between samples) and
    decide by output spike counts, as a daemon readout would.

    Returns per sample: the decided class (-1 on a tie or silence), synaptic events, compute
    seconds, and the earliest step from which the running leader stays the final decision.
    """
    import time

    preds: list[int] = []
    syn: list[int] = []
    comp: list[float] = []
    stable: list[int] = []
    for i in range(len(dataset)):
        ptr, idx = dataset.sample(i)
        ptr = np.concatenate([ptr, np.full(tail_steps, ptr[-1])])
        net.reset()
        t0 = time.perf_counter()
        rec = net.run(ptr, idx)
        comp.append(time.perf_counter() - t0)
        syn.append(rec.syn_events)
        hits = np.zeros((rec.n_steps, n_classes))
        hits[np.repeat(np.arange(rec.n_steps), np.diff(rec.ptr)), rec.idx] = 1
        run = np.cumsum(hits, axis=0)
        top2 = np.sort(run, axis=1)
        pred = int(np.argmax(run[-1])) if top2[-1, -1] > top2[-1, -2] else -1
        preds.append(pred)
        ok = (np.argmax(run, axis=1) == pred) & (top2[:, -1] > top2[:, -2])
        bad = np.flatnonzero(~ok)
        stable.append(int(bad[-1] + 1 if bad.size else 0) if pred >= 0 else rec.n_steps - 1)
    return np.asarray(preds), syn, comp, stable
