"""Windowed spike-count readout: argmax over output neurons with a minimum evidence.

Output neurons are grouped by label (`neurons_per_label` consecutive neurons each). Every
`window_ms` of sensor time the spikes of each label are summed; when the total reaches
`min_spikes` and the winner leads by `margin` the label with the most spikes is detected, with
score = its share of the window's spikes. `t_sensor_us` is the time of the last spike counted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgesnn.components import Readout, register
from edgesnn.config.schema import Field, Schema
from edgesnn.events import Detection, SpikeRaster


@register
class SpikeCountReadout(Readout):
    """Windowed spike counts with argmax and a minimum-evidence threshold."""

    type_name = "spike_count"
    summary = "Argmax of windowed spike counts per label, with a minimum evidence."
    schema = Schema(
        {
            "labels": Field(("list", str), doc="One label per output group, in neuron order."),
            "neurons_per_label": Field(int, default=1, min=1, doc="Output neurons per label."),
            "window_ms": Field(float, default=50.0, min=0.001, doc="Counting window (ms)."),
            "min_spikes": Field(int, default=1, min=1, doc="Evidence needed to detect."),
            "margin": Field(
                int, default=1, min=0, doc="Spikes the winner must lead the runner-up by."
            ),
            "emit_repeats": Field(
                bool, default=True,
                doc="Emit every window; false emits only when the label changes.",
            ),
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self.labels = list(params["labels"])
        self.group = params["neurons_per_label"]
        self.window_us = int(params["window_ms"] * 1000)
        self.counts = np.zeros(len(self.labels), np.int64)
        self.window_start: int | None = None
        self.last_spike_t = 0
        self.last_label: str | None = None
        self.windows = 0

    @property
    def n_inputs(self) -> int:
        return len(self.labels) * self.group

    def check(self, inputs: list[Any]) -> list[str]:
        out = []
        for c in inputs:
            n = getattr(c, "n_outputs", None) or getattr(c, "n_channels", None)
            if isinstance(n, int) and n != self.n_inputs:
                out.append(
                    f"expects {self.n_inputs} input neurons ({len(self.labels)} labels x "
                    f"{self.group}) but {c.id!r} has {n} outputs"
                )
        return out

    def _close_window(self) -> list[Detection]:
        self.windows += 1
        c = self.counts
        total = int(c.sum())
        dets: list[Detection] = []
        if total >= self.params["min_spikes"]:
            order = np.argsort(c, kind="stable")[::-1]
            lead = int(c[order[0]] - (c[order[1]] if len(c) > 1 else 0))
            if lead >= self.params["margin"]:
                label = self.labels[int(order[0])]
                if self.params["emit_repeats"] or label != self.last_label:
                    dets.append(
                        Detection(
                            label, float(c[order[0]]) / total, self.last_spike_t,
                            {"counts": c.tolist(), "window_us": self.window_us},
                        )
                    )
                self.last_label = label
        self.counts = np.zeros_like(c)
        return dets

    def update(self, raster: SpikeRaster) -> list[Detection]:
        if self.window_start is None:
            self.window_start = raster.t0_us
        dets: list[Detection] = []
        dt = raster.dt_us
        ptr, idx = raster.ptr, raster.idx
        steps_per_window = max(1, self.window_us // dt)
        k = 0
        n = raster.n_steps
        while k < n:
            # steps remaining in the current window
            t_k = raster.t0_us + k * dt
            w_end = self.window_start + steps_per_window * dt
            if t_k >= w_end:
                dets += self._close_window()
                self.window_start = w_end
                continue
            k_end = min(n, k + (w_end - t_k + dt - 1) // dt)
            sl = idx[ptr[k] : ptr[k_end]]
            if len(sl):
                np.add.at(self.counts, sl // self.group, 1)
                last_step = int(np.searchsorted(ptr, ptr[k_end] - 1, side="right") - 1)
                self.last_spike_t = raster.t0_us + last_step * dt
            k = k_end
        return dets

    def control(self, command: str, **kwargs: Any) -> Any:
        if command == "reset":
            self.counts[:] = 0
            self.last_label = None
            return {"reset": True}
        raise KeyError(command)

    def flush(self) -> list[Detection]:
        return self._close_window() if self.counts.any() else []

    def status(self) -> dict[str, Any]:
        return {"windows": self.windows}
