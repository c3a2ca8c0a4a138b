"""Small fixed-size numpy rings for what the dashboard and metrics show, cheap on hot paths.

`SpikeRing` keeps the last output spikes of a network as (t_us, neuron) pairs, written with
array operations once per raster (no per-spike Python objects). `ArrivalClock` remembers when
(host time) each recent driver batch arrived, so a detection's sensor time can be turned into
a latency on the host clock whatever clock the sensor uses (live, replayed or synthetic).
"""

from __future__ import annotations

import threading
import time

import numpy as np


class SpikeRing:
    """The last `capacity` spikes (t_us, neuron); one writer thread, readers anywhere."""

    def __init__(self, n_neurons: int, capacity: int = 4096):
        self.n_neurons = int(n_neurons)
        self.capacity = int(capacity)
        self.t_us = np.zeros(self.capacity, np.int64)
        self.neuron = np.zeros(self.capacity, np.int32)
        self.total = 0  # spikes ever written (the position of the next one)
        self._lock = threading.Lock()

    def push(self, t0_us: int, dt_us: int, ptr: np.ndarray, idx: np.ndarray) -> None:
        """Append the spikes of one raster (CSR over steps, as in `SpikeRaster`)."""
        a, b = int(ptr[0]), int(ptr[-1])
        k = b - a
        if k <= 0:
            return
        n_steps = ptr.shape[0] - 1
        if n_steps == 1:
            t = np.full(k, t0_us, np.int64)
        else:
            t = t0_us + np.repeat(np.arange(n_steps, dtype=np.int64), np.diff(ptr)) * dt_us
        n = idx[a:b]
        if k > self.capacity:
            t, n, skipped = t[-self.capacity :], n[-self.capacity :], k - self.capacity
        else:
            skipped = 0
        m = t.shape[0]
        with self._lock:
            pos = (self.total + skipped) % self.capacity
            first = min(m, self.capacity - pos)
            self.t_us[pos : pos + first] = t[:first]
            self.neuron[pos : pos + first] = n[:first]
            if first < m:
                self.t_us[: m - first] = t[first:]
                self.neuron[: m - first] = n[first:]
            self.total += k

    def since(self, seen: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Copies of the spikes written after position `seen` (at most `capacity`), and the
        position to ask from next time."""
        with self._lock:
            total = self.total
            k = min(total - seen, self.capacity) if seen <= total else min(total, self.capacity)
            if k <= 0:
                return np.zeros(0, np.int64), np.zeros(0, np.int32), total
            pos = np.arange(total - k, total) % self.capacity
            return self.t_us[pos], self.neuron[pos], total


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
