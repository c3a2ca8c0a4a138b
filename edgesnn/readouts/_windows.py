"""Tumbling windows of sensor time over output-spike rasters (shared by the readouts)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgesnn.components import Readout
from edgesnn.events import Detection, SpikeRaster


@dataclass
class Window:
    """One closed window: spike counts per neuron and where in time it was."""

    t_start_us: int
    t_end_us: int
    counts: np.ndarray
    last_spike_us: int | None


class Windows:
    """Cuts a stream of rasters into windows of `window_us`, aligned to the first raster."""

    def __init__(self, n: int, window_us: int):
        self.n = n
        self.window_us = max(1, int(window_us))
        self.start: int | None = None
        self.counts = np.zeros(n, np.int64)
        self.last_spike_us: int | None = None
        self.steps = 0  # steps fed into the open window

    def feed(self, raster: SpikeRaster) -> Iterator[tuple[str, object]]:
        """Yields ("step", (t_us, idx)) for every step with spikes, in time order, and
        ("window", Window) whenever a window closes."""
        if self.start is None:
            self.start = raster.t0_us
        dt = raster.dt_us
        for k in range(raster.n_steps):
            t = raster.t0_us + k * dt
            while t >= self.start + self.window_us:
                yield "window", self._close()
            self.steps += 1
            idx = raster.idx[raster.ptr[k] : raster.ptr[k + 1]]
            if idx.size:
                idx = idx[(idx >= 0) & (idx < self.n)]
                np.add.at(self.counts, idx, 1)
                self.last_spike_us = t
                yield "step", (t, idx)
        # a window ending with this raster closes now, not when a later step comes in (on a
        # live stream that is one step sooner)
        end = raster.t0_us + raster.n_steps * dt
        while raster.n_steps and self.start + self.window_us <= end:
            yield "window", self._close()

    def _close(self) -> Window:
        assert self.start is not None
        w = Window(self.start, self.start + self.window_us, self.counts, self.last_spike_us)
        self.start += self.window_us
        self.counts = np.zeros(self.n, np.int64)
        self.last_spike_us = None
        self.steps = 0
        return w

    def flush(self) -> Window | None:
        """Close the partial window (None when nothing started, or no step came since the last
        window closed)."""
        if self.start is None or self.steps == 0:
            return None
        return self._close()


def window_detections(win: Windows, raster: SpikeRaster,
                      decide: Callable[[Window], list[Detection]]) -> list[Detection]:
    """Feeds `raster` to `win` and collects `decide(window)` of every window it closes."""
    dets: list[Detection] = []
    for kind, item in win.feed(raster):
        if kind == "window":
            dets += decide(item)  # type: ignore[arg-type]
    return dets


def size_check(n_inputs: int, inputs: list[Any]) -> list[str]:
    """Problems where an input's output count differs from the readout's `n_inputs`."""
    out = []
    for c in inputs:
        n = getattr(c, "n_outputs", None)
        if n is None:
            n = getattr(c, "n_channels", None)
        if isinstance(n, int) and n != n_inputs:
            out.append(f"expects {n_inputs} input neurons but {c.id!r} has {n} outputs")
    return out


class LabelWindowReadout(Readout):
    """Readouts over `labels` x `neurons_per_label` outputs cut into windows of `window_ms`."""

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self.labels = list(params["labels"])
        self.group = int(params["neurons_per_label"])
        self.window_us = int(params["window_ms"] * 1000)
        self.win = Windows(self.n_inputs, self.window_us)

    @property
    def n_inputs(self) -> int:
        return len(self.labels) * self.group

    def check(self, inputs: list[Any]) -> list[str]:
        return size_check(self.n_inputs, inputs)

    def _reset(self) -> None:
        self.win = Windows(self.n_inputs, self.window_us)

    def control(self, command: str, **kwargs: Any) -> Any:
        if command == "reset":
            self._reset()
            return {"reset": True}
        raise KeyError(command)
