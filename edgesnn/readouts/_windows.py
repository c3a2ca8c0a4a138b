"""Tumbling windows of sensor time over output-spike rasters (shared by the readouts)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from edgesnn.events import SpikeRaster


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
            idx = raster.idx[raster.ptr[k] : raster.ptr[k + 1]]
            if idx.size:
                idx = idx[(idx >= 0) & (idx < self.n)]
                np.add.at(self.counts, idx, 1)
                self.last_spike_us = t
                yield "step", (t, idx)

    def _close(self) -> Window:
        assert self.start is not None
        w = Window(self.start, self.start + self.window_us, self.counts, self.last_spike_us)
        self.start += self.window_us
        self.counts = np.zeros(self.n, np.int64)
        self.last_spike_us = None
        return w

    def flush(self) -> Window | None:
        """Close the partial window (None when nothing started)."""
        if self.start is None:
            return None
        return self._close()
