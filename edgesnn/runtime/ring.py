"""Small bounded rings for what the dashboard and metrics show, cheap on hot paths.

`SpikeRing` keeps the last output spikes of a network as (t_us, neuron) pairs: one deque
append per raster on the data path, expanded with array operations only when read.
`ArrivalClock` remembers when (host time) each recent driver batch arrived, so a detection's
sensor time can be turned into a latency on the host clock whatever clock the sensor uses
(live, replayed or synthetic).
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np


class SpikeRing:
    """The last output spikes of a network as (t_us, neuron) pairs, for the dashboard.

    Writing is one deque append per raster that has spikes (the raster's own CSR arrays are
    kept, not copied or expanded: the arrays are fresh per raster and never written again);
    reading expands the newest rasters into at most `capacity` pairs. Memory is bounded by
    `max_rasters` rasters. One writer thread, readers anywhere (deque appends are atomic)."""

    def __init__(self, n_neurons: int, capacity: int = 4096, max_rasters: int = 2048):
        self.n_neurons = int(n_neurons)
        self.capacity = int(capacity)
        # (position after this raster's spikes, t0_us, dt_us, ptr, idx)
        self._q: deque[tuple[int, int, int, np.ndarray, np.ndarray]] = deque(maxlen=max_rasters)
        self.total = 0  # spikes ever written (the position of the next one)

    def push(self, t0_us: int, dt_us: int, ptr: np.ndarray, idx: np.ndarray) -> None:
        """Remember the spikes of one raster (CSR over steps, as in `SpikeRaster`)."""
        k = int(ptr[-1] - ptr[0])
        if k > 0:
            self._q.append((self.total + k, t0_us, dt_us, ptr, idx))
            self.total += k

    def since(self, seen: int) -> tuple[np.ndarray, np.ndarray, int]:
        """The spikes written after position `seen` (at most `capacity`, the newest), oldest
        first, and the position to ask from next time."""
        entries = list(self._q)
        total = entries[-1][0] if entries else self.total
        want = min(total - seen, self.capacity) if 0 <= seen <= total else self.capacity
        starts: list[list[int]] = []  # per raster (newest first): step times and counts
        counts: list[list[int]] = []
        ns: list[np.ndarray] = []
        got = 0
        for end, t0, dt, ptr, idx in reversed(entries):
            if got >= want or end <= seen:
                break
            a, b = int(ptr[0]), int(ptr[-1])
            if ptr.shape[0] == 2:  # one step (the streaming path): no arrays to build
                starts.append([t0])
                counts.append([b - a])
            else:
                starts.append([t0 + k * dt for k in range(ptr.shape[0] - 1)])
                counts.append(np.diff(ptr).tolist())
            ns.append(idx[a:b])
            got += b - a
        if not ns:
            return np.zeros(0, np.int64), np.zeros(0, np.int32), total
        t = np.repeat(np.array([x for e in reversed(starts) for x in e], np.int64),
                      np.array([x for e in reversed(counts) for x in e], np.int64))
        n = np.concatenate(ns[::-1]).astype(np.int32, copy=False)
        keep = min(want, t.shape[0])
        return t[t.shape[0] - keep :], n[n.shape[0] - keep :], total


class ArrivalClock:
    """Host arrival time (µs since the epoch) of the last `capacity` batches of one driver."""

    def __init__(self, capacity: int = 1024):
        self.capacity = int(capacity)
        self.sensor_us = np.zeros(self.capacity, np.int64)
        self.host_us = np.zeros(self.capacity, np.int64)
        self.count = 0

    def note(self, t_end_us: int) -> None:
        """A batch covering sensor time up to `t_end_us` has just been read."""
        i = self.count % self.capacity
        self.sensor_us[i] = t_end_us
        self.host_us[i] = time.time_ns() // 1000
        self.count += 1

    def arrival_us(self, t_sensor_us: int) -> int | None:
        """Host time at which the evidence of sensor time `t_sensor_us` arrived (the first
        batch ending at or after it, in the latest pass over the sensor clock), or None when
        it is older than the ring."""
        n = min(self.count, self.capacity)
        if n == 0:
            return None
        order = np.arange(self.count - n, self.count) % self.capacity
        s = self.sensor_us[order]
        covers = s >= t_sensor_us
        first = covers & np.concatenate(([True], s[:-1] < t_sensor_us))
        j = np.flatnonzero(first)
        if j.size == 0 or (j[-1] == 0 and self.count > self.capacity):
            return None  # not in the ring (or its start is cut off)
        return int(self.host_us[order[j[-1]]])
