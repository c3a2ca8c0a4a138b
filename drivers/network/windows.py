"""Cutting a stream of time-stamped records into `EventBatch` windows of fixed sensor time.

Used by the packet and LiDAR drivers: records arrive in chunks (file chunks, UDP bursts) whose
boundaries have nothing to do with time; `TimeWindows` holds them back and releases batches
covering [t, t + batch_us) once records `guard_us` past the window end have been seen, so a
slightly out-of-order stream (dual-return LiDAR blocks, merged interfaces) is still cut right.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from edgesnn.events import MAX_GAP_US, EventBatch


class TimeWindows:
    """Accumulates records (a structured array with "t") and yields complete windows."""

    def __init__(self, stream: str, kind: str, dtype: np.dtype, batch_us: int,
                 guard_us: int = 0, meta: dict[str, Any] | None = None,
                 max_held: int = 1_000_000):
        self.stream = stream
        self.kind = kind
        self.dtype = dtype
        self.batch_us = int(batch_us)
        self.guard_us = int(guard_us)
        self.meta = meta or {}
        self.max_held = max_held
        self._held: list[np.ndarray] = []
        self._n_held = 0
        self._t_start: int | None = None
        self._t_max = -(1 << 62)
        self.dropped = 0  # records lost before the next batch (counted by the producer)
        self.late = 0  # records older than an already released window (dropped, counted)
        self.time_jumps = 0  # the clock went back by more than MAX_GAP_US: restarted there
        self.seq = 0

    def add(self, records: np.ndarray) -> Iterator[EventBatch]:
        """Add records; yield every window that is now complete. Records more than
        `MAX_GAP_US` older than the current window are a time jump back (a clock reset): the
        held records are released and windows restart at the new records, instead of every
        record counting as late until the clock catches up. (A jump forward skips the empty
        windows between.)"""
        if len(records):
            if (self._t_start is not None
                    and int(records["t"].max()) < self._t_start - MAX_GAP_US):
                self.time_jumps += 1
                yield from self.flush()
                self._t_start, self._t_max = None, -(1 << 62)
            if self._t_start is None:
                self._t_start = int(records["t"].min())
            self._held.append(records)
            self._n_held += len(records)
            self._t_max = max(self._t_max, int(records["t"].max()))
        if self._t_start is None:
            return
        while self._n_held:
            self._skip_gap()
            if (self._t_max < self._t_start + self.batch_us + self.guard_us
                    and self._n_held <= self.max_held):
                break
            yield self._cut(self._t_start + self.batch_us)

    def flush(self) -> Iterator[EventBatch]:
        """Yield the remaining records as final windows."""
        while self._n_held and self._t_start is not None:
            self._skip_gap()
            yield self._cut(self._t_start + self.batch_us)

    def _skip_gap(self) -> None:
        """After a silent stretch, move to the window holding the next record (no empties)."""
        t_min = min(int(a["t"].min()) for a in self._held)
        assert self._t_start is not None
        if t_min >= self._t_start + self.batch_us:
            self._t_start += (t_min - self._t_start) // self.batch_us * self.batch_us

    def _cut(self, t_end: int) -> EventBatch:
        pool = np.concatenate(self._held) if len(self._held) != 1 else self._held[0]
        t = pool["t"]
        late = t < self._t_start  # type: ignore[operator]
        if late.any():
            self.late += int(late.sum())
            pool, t = pool[~late], t[~late]
        done = t < t_end
        out = pool[done]
        rest = pool[~done]
        self._held = [rest] if len(rest) else []
        self._n_held = len(rest)
        b = EventBatch(self.stream, self.seq, int(self._t_start), int(t_end),  # type: ignore[arg-type]
                       np.ascontiguousarray(out), self.kind, self.dropped, dict(self.meta))
        self.dropped = 0
        self.seq += 1
        self._t_start = t_end
        return b
