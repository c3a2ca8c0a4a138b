"""Anomaly-score readout: distance of the windowed activity from a learned baseline.

Each window gives a vector of spike counts per output neuron. The first `baseline_windows`
windows learn the baseline (per-neuron mean and variance, Welford); afterwards the score of a
window is the root mean square z-score of its counts, sqrt(mean(((c - mean) / std)^2)), with
std floored at `min_std`. A window scoring at least `threshold` is detected as `label`; normal
windows keep adapting the baseline with weight `adapt_rate` (0 freezes it).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from edgesnn.components import Readout, register
from edgesnn.config.schema import Field, Schema
from edgesnn.events import Detection, SpikeRaster
from edgesnn.readouts._windows import Window, Windows, window_detections


@register
class AnomalyReadout(Readout):
    """Scores each window's activity against a learned baseline; flags large deviations."""

    type_name = "anomaly"
    summary = "RMS z-score of windowed spike counts against a learned baseline."
    schema = Schema(
        {
            "window_ms": Field(float, default=100.0, min=0.001, doc="Scoring window (ms)."),
            "baseline_windows": Field(int, default=50, min=2, doc="Windows learning the baseline."),
            "threshold": Field(float, default=3.0, min=0.0, doc="Score that is an anomaly."),
            "adapt_rate": Field(
                float, default=0.01, min=0.0, max=1.0, doc="Baseline update on normal windows."
            ),
            "min_std": Field(float, default=1.0, min=1e-9, doc="Floor of the per-neuron std."),
            "label": Field(str, default="anomaly", doc="Label of anomalous windows."),
            "emit_normal": Field(bool, default=False, doc="Also emit 'normal' windows."),
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self.window_us = int(params["window_ms"] * 1000)
        self.win: Windows | None = None
        self.seen = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None
        self.anomalies = 0
        self.last_score = 0.0
        self._lock = threading.Lock()  # checkpoints are taken from another thread

    @property
    def learning(self) -> bool:
        """True while the baseline is still being learned."""
        return self.seen < self.params["baseline_windows"]

    def score(self, counts: np.ndarray) -> float:
        """RMS z-score of `counts` against the baseline (0 before any baseline exists)."""
        if self.mean is None or self.m2 is None or self.seen < 2:
            return 0.0
        var = self.m2 / (min(self.seen, self.params["baseline_windows"]) - 1)
        std = np.maximum(np.sqrt(var), self.params["min_std"])
        return float(np.sqrt(np.mean(((counts - self.mean) / std) ** 2)))

    def _learn(self, c: np.ndarray) -> None:
        if self.mean is None or self.m2 is None:
            self.mean = np.zeros(c.size)
            self.m2 = np.zeros(c.size)
        self.seen += 1
        delta = c - self.mean
        self.mean += delta / self.seen
        self.m2 += delta * (c - self.mean)

    def _decide(self, w: Window) -> list[Detection]:
        c = w.counts.astype(np.float64)
        t = w.last_spike_us if w.last_spike_us is not None else w.t_end_us
        if self.learning:
            self._learn(c)
            return []
        s = self.score(c)
        self.last_score = s
        assert self.mean is not None and self.m2 is not None
        if s >= self.params["threshold"]:
            self.anomalies += 1
            return [Detection(self.params["label"], s, int(t), {"window_us": self.window_us})]
        a = self.params["adapt_rate"]
        if a > 0:  # exponential forgetting of the baseline on normal windows
            n = self.params["baseline_windows"] - 1
            var = self.m2 / n
            delta = c - self.mean
            self.mean += a * delta
            self.m2 = ((1 - a) * (var + a * delta**2)) * n
        if self.params["emit_normal"]:
            return [Detection("normal", s, int(t), {"window_us": self.window_us})]
        return []

    def update(self, raster: SpikeRaster) -> list[Detection]:
        with self._lock:
            return self._update(raster)

    def _update(self, raster: SpikeRaster) -> list[Detection]:
        if self.win is None:
            self.win = Windows(raster.n_channels, self.window_us)
        return window_detections(self.win, raster, self._decide)

    def flush(self) -> list[Detection]:
        return []  # a partial window is not comparable with the baseline

    def control(self, command: str, **kwargs: Any) -> Any:
        if command == "reset":  # forget the baseline and learn it again
            with self._lock:
                self.win = None
                self.seen = 0
                self.mean = self.m2 = None
            return {"reset": True}
        raise KeyError(command)

    def checkpoint_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The learned baseline (per-neuron mean and M2, windows seen) for checkpoints."""
        with self._lock:
            arrays = {}
            if self.mean is not None and self.m2 is not None:
                arrays = {"mean": self.mean.copy(), "m2": self.m2.copy()}
            return arrays, {"seen": self.seen, "anomalies": self.anomalies}

    def restore_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Put a checkpointed baseline back (ValueError when it is not a baseline this
        readout could have learned: shapes, non-finite values, negative M2 or counts)."""
        mean, m2 = arrays.get("mean"), arrays.get("m2")
        if mean is not None and m2 is not None:
            if (mean.ndim != 1 or mean.shape != m2.shape or mean.dtype.kind != "f"
                    or m2.dtype.kind != "f"):
                raise ValueError("checkpoint baseline: mean and m2 must be float vectors of "
                                 "one length")
            if self.mean is not None and mean.shape != self.mean.shape:
                raise ValueError(f"checkpoint baseline covers {mean.size} neurons, not "
                                 f"{self.mean.size}")
            if not (np.isfinite(mean).all() and np.isfinite(m2).all()) or (m2 < 0).any():
                raise ValueError("checkpoint baseline holds non-finite values or negative M2")
        for key in ("seen", "anomalies"):
            v = meta.get(key, 0)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"checkpoint {key} {v!r} is not a count")
        with self._lock:
            if "mean" in arrays and "m2" in arrays:
                self.mean = np.array(arrays["mean"], dtype=np.float64)
                self.m2 = np.array(arrays["m2"], dtype=np.float64)
            self.seen = int(meta.get("seen", 0))
            self.anomalies = int(meta.get("anomalies", 0))

    def status(self) -> dict[str, Any]:
        return {
            "learning_baseline": self.learning,
            "anomalies": self.anomalies,
            "last_score": self.last_score,
        }
