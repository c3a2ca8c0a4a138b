"""Rate-threshold readout: a label is detected when its firing rate in a window is high enough.

Per window, the rate of each label is its spike count / (neurons x window length) in Hz. Every
label at or above `threshold_hz` is detected (highest rate first, or only the highest with
`only_max`), with score = its rate in Hz.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgesnn.components import register
from edgesnn.config.schema import Field, Schema
from edgesnn.events import Detection, SpikeRaster
from edgesnn.readouts._windows import LabelWindowReadout, Window, window_detections


@register
class RateThresholdReadout(LabelWindowReadout):
    """Labels whose windowed firing rate reaches a threshold."""

    type_name = "rate_threshold"
    summary = "Labels whose firing rate (Hz) in a window reaches a threshold; score = rate."
    schema = Schema(
        {
            "labels": Field(("list", str), doc="One label per output group, in neuron order."),
            "neurons_per_label": Field(int, default=1, min=1, doc="Output neurons per label."),
            "window_ms": Field(float, default=100.0, min=0.001, doc="Rate window (ms)."),
            "threshold_hz": Field(float, default=20.0, min=0.0, doc="Rate to detect (Hz)."),
            "only_max": Field(bool, default=True, doc="Emit only the highest rate per window."),
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self.windows = 0

    def _decide(self, w: Window) -> list[Detection]:
        self.windows += 1
        per_label = w.counts.reshape(len(self.labels), self.group).sum(axis=1)
        rates = per_label * 1e6 / (self.group * (w.t_end_us - w.t_start_us))
        order = np.argsort(-rates, kind="stable")
        dets = []
        if self.params["only_max"] and len(order) > 1 and rates[order[0]] == rates[order[1]]:
            return dets  # a tie for the top is no decision (the one rule)
        for i in order:
            if rates[i] < self.params["threshold_hz"] or per_label[i] == 0:
                break
            t = w.last_spike_us if w.last_spike_us is not None else w.t_end_us
            dets.append(
                Detection(
                    self.labels[int(i)],
                    float(rates[i]),
                    int(t),
                    {"window_us": self.window_us, "spikes": int(per_label[i])},
                )
            )
            if self.params["only_max"]:
                break
        return dets

    def update(self, raster: SpikeRaster) -> list[Detection]:
        return window_detections(self.win, raster, self._decide)

    def flush(self) -> list[Detection]:
        w = self.win.flush()
        return self._decide(w) if w is not None and w.counts.any() else []

    def status(self) -> dict[str, Any]:
        return {"windows": self.windows}
