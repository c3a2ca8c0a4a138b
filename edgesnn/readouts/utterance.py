"""End-of-utterance readout: one decision per burst of output activity (a spoken word).

An utterance starts with the first output spike and ends when no output neuron has spiked for
`gap_ms` of sensor time (the speech ended and the network fell silent), or when it has lasted
`max_ms`. Its spikes are counted per label over the whole utterance and decided once, with the
runtime's rule (`edgesnn.evaluation.decide`: the label with strictly most spikes; a tie gives
no decision). So a word gives exactly one detection, at its end, whatever its length — not one
per fixed window. An utterance whose decision is a tie, or that has fewer than `min_spikes`
spikes, is still reported (label `undecided_label`, score 0) unless `undecided_label` is "".
`t_sensor_us` is the time of the utterance's last output spike; `extra` holds the counts and
the utterance's start and end.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from edgesnn.components import Readout, register
from edgesnn.config.schema import Field, Schema
from edgesnn.evaluation import decide
from edgesnn.events import Detection, SpikeRaster
from edgesnn.readouts._windows import size_check


@register
class UtteranceReadout(Readout):
    """Spike counts over each burst of output activity, decided once when it ends."""

    type_name = "utterance"
    summary = "One decision per utterance: counts from the first output spike until a silence gap."
    schema = Schema(
        {
            "labels": Field(("list", str), doc="One label per output group, in neuron order."),
            "neurons_per_label": Field(int, default=1, min=1, doc="Output neurons per label."),
            "gap_ms": Field(float, default=250.0, min=0.001,
                            doc="Output silence that ends an utterance (ms of sensor time)."),
            "max_ms": Field(float, default=3000.0, min=0.001,
                            doc="An utterance longer than this is decided and a new one begun."),
            "min_spikes": Field(int, default=1, min=1,
                                doc="Spikes an utterance needs for a decision."),
            "undecided_label": Field(str, default="?",
                                     doc='Label reported for an utterance without a decision; '
                                         '"" reports nothing.'),
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self.labels = list(params["labels"])
        self.group = params["neurons_per_label"]
        self.gap_us = int(round(params["gap_ms"] * 1000))
        self.max_us = int(round(params["max_ms"] * 1000))
        self.counts = np.zeros(len(self.labels), np.int64)
        self.start_us: int | None = None  # first spike of the open utterance (None: none open)
        self.last_us = 0
        self.utterances = 0
        self.undecided = 0
        self._lock = threading.Lock()

    @property
    def n_inputs(self) -> int:
        return len(self.labels) * self.group

    def check(self, inputs: list[Any]) -> list[str]:
        return size_check(self.n_inputs, inputs)

    def _close(self, end_us: int) -> list[Detection]:
        """Decide the open utterance and forget it."""
        c = self.counts
        start = self.start_us
        self.start_us = None
        self.counts = np.zeros_like(c)
        self.utterances += 1
        total = int(c.sum())
        k = int(decide(c)) if total >= self.params["min_spikes"] else -1
        extra = {"counts": c.tolist(), "start_us": start, "end_us": end_us, "decided": k >= 0}
        if k >= 0:
            return [Detection(self.labels[k], float(c[k]) / total, self.last_us, extra)]
        self.undecided += 1
        if not self.params["undecided_label"]:
            return []
        return [Detection(self.params["undecided_label"], 0.0, self.last_us, extra)]

    def update(self, raster: SpikeRaster) -> list[Detection]:
        with self._lock:
            return self._update(raster)

    def _update(self, raster: SpikeRaster) -> list[Detection]:
        dets: list[Detection] = []
        dt = raster.dt_us
        ptr, idx = raster.ptr, raster.idx
        n_out = self.n_inputs
        for k in np.flatnonzero(np.diff(ptr)):
            t = raster.t0_us + int(k) * dt
            if self.start_us is not None and (t - self.last_us >= self.gap_us
                                              or t - self.start_us >= self.max_us):
                dets += self._close(self.last_us + dt)
            s = idx[ptr[k] : ptr[k + 1]]
            s = s[(s >= 0) & (s < n_out)]
            if not s.size:
                continue
            if self.start_us is None:
                self.start_us = t
            np.add.at(self.counts, s // self.group, 1)
            self.last_us = t
        # the silence at the end of this raster may already close the utterance
        if self.start_us is not None and raster.t_end_us - dt - self.last_us >= self.gap_us:
            dets += self._close(self.last_us + dt)
        return dets

    def flush(self) -> list[Detection]:
        with self._lock:
            return self._close(self.last_us + 1) if self.start_us is not None else []

    def control(self, command: str, **kwargs: Any) -> Any:
        if command == "reset":
            with self._lock:
                self.counts[:] = 0
                self.start_us = None
            return {"reset": True}
        raise KeyError(command)

    def status(self) -> dict[str, Any]:
        return {"utterances": self.utterances, "undecided": self.undecided,
                "open": self.start_us is not None}
