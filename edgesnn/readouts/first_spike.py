"""First-spike readout: in every window, the label whose neurons spike first wins.

Time-to-first-spike decoding: the earlier the spike after the window opened, the stronger the
evidence, so score = 1 - latency / window (1.0 for a spike in the window's first step). Ties
within one step go to the label with more spikes in that step; an exact tie is no decision
(the window waits for a later step), the rule of every readout (`edgesnn.evaluation.decide`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgesnn.components import register
from edgesnn.config.schema import Field, Schema
from edgesnn.evaluation import decide
from edgesnn.events import Detection, SpikeRaster
from edgesnn.readouts._windows import LabelWindowReadout


@register
class FirstSpikeReadout(LabelWindowReadout):
    """The first label to spike in each window, scored by its latency."""

    type_name = "first_spike"
    summary = "Label of the first output spike in each window; score falls with latency."
    schema = Schema(
        {
            "labels": Field(("list", str), doc="One label per output group, in neuron order."),
            "neurons_per_label": Field(int, default=1, min=1, doc="Output neurons per label."),
            "window_ms": Field(float, default=50.0, min=0.001, doc="Decision window (ms)."),
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self.decided = False
        self.detections = 0

    def update(self, raster: SpikeRaster) -> list[Detection]:
        dets: list[Detection] = []
        for kind, item in self.win.feed(raster):
            if kind == "window":
                self.decided = False
                continue
            if self.decided:
                continue
            t, idx = item  # type: ignore[misc]
            per_label = np.bincount(np.asarray(idx) // self.group, minlength=len(self.labels))
            best = int(decide(per_label))
            if best < 0:  # labels tied in this step: no decision yet (the one rule)
                continue
            assert self.win.start is not None
            latency = t - self.win.start
            score = max(0.0, 1.0 - latency / self.window_us)
            dets.append(Detection(self.labels[best], score, int(t), {"latency_us": int(latency)}))
            self.decided = True
            self.detections += 1
        return dets

    def _reset(self) -> None:
        super()._reset()
        self.decided = False

    def status(self) -> dict[str, Any]:
        return {"detections": self.detections}

