"""Bounded channels between pipeline stages, with a declared policy when full and counters.

Policies: "block" (the producer waits: back-pressure), "drop_oldest" (the oldest queued item is
discarded to make room), "drop_newest" (the new item is discarded). Every drop is counted, so
overload is visible in heartbeats and metrics; memory never grows past `capacity` items, nor
past `max_bytes` of numpy payload (`item_nbytes`: an array's nbytes, or the summed arrays of a
dataclass such as EventBatch or SpikeRaster; default `DEFAULT_MAX_BYTES` = 64 MiB, far above
today's batches). One item is always admitted into an empty channel, however large.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from typing import Any, Generic, TypeVar

import numpy as np

T = TypeVar("T")
DEFAULT_MAX_BYTES = 64 << 20


def item_nbytes(item: Any) -> int:
    """Bytes of numpy payload an item holds (0 for items without arrays)."""
    if isinstance(item, np.ndarray):
        return int(item.nbytes)
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return sum(int(v.nbytes) for f in dataclasses.fields(item)
                   if isinstance(v := getattr(item, f.name, None), np.ndarray))
    return 0


class Closed(Exception):
    """The channel was closed and is empty."""


class Channel(Generic[T]):
    """An asyncio bounded queue with a when-full policy and counters; single consumer."""

    def __init__(self, capacity: int, when_full: str = "block", producers: int = 1,
                 max_bytes: int | None = DEFAULT_MAX_BYTES):
        if when_full not in ("block", "drop_oldest", "drop_newest"):
            raise ValueError(f"unknown when_full policy {when_full!r}")
        self.capacity = int(capacity)
        self.max_bytes = None if max_bytes is None else int(max_bytes)
        self.when_full = when_full
        self._q: deque[T] = deque()
        self._sizes: deque[int] = deque()
        self.bytes = 0  # numpy payload queued now
        self.high_water_bytes = 0
        self._open_producers = producers
        self._not_empty = asyncio.Event()
        self._not_full = asyncio.Event()
        self._not_full.set()
        #: set while the consumer waits on an empty channel (its last item is done with)
        self.idle = asyncio.Event()
        self.received = 0  # items offered by producers
        self.delivered = 0  # items taken by the consumer
        self.dropped = 0
        self.high_water = 0

    @property
    def depth(self) -> int:
        return len(self._q)

    @property
    def closed(self) -> bool:
        return self._open_producers <= 0

    async def put(self, item: T) -> bool:
        """Offer an item; False when it (or an older one) was dropped by the policy."""
        self.received += 1
        size = item_nbytes(item)
        if self._full(size):
            if self.when_full == "drop_newest":
                self.dropped += 1
                return False
            if self.when_full == "drop_oldest":
                while self._full(size):
                    self._popleft()
                    self.dropped += 1
                self._append(item, size)
                return False
            while self._full(size):
                self._not_full.clear()
                await self._not_full.wait()
        self._append(item, size)
        return True

    def _full(self, size: int) -> bool:
        """No room for an item of `size` bytes (an empty channel always has room)."""
        if not self._q:
            return False
        return len(self._q) >= self.capacity or (
            self.max_bytes is not None and self.bytes + size > self.max_bytes)

    def _append(self, item: T, size: int) -> None:
        self._q.append(item)
        self._sizes.append(size)
        self.bytes += size
        self.high_water = max(self.high_water, len(self._q))
        self.high_water_bytes = max(self.high_water_bytes, self.bytes)
        self.idle.clear()
        self._not_empty.set()

    def _popleft(self) -> T:
        self.bytes -= self._sizes.popleft()
        return self._q.popleft()

    def peek(self) -> T | None:
        """The next item without taking it (None when empty)."""
        return self._q[0] if self._q else None

    async def get(self) -> T:
        """Next item; raises Closed when every producer has closed and nothing is left."""
        while not self._q:
            if self._open_producers <= 0:
                raise Closed
            self._not_empty.clear()
            self.idle.set()
            await self._not_empty.wait()
        item = self._popleft()
        self.delivered += 1
        self._not_full.set()  # a blocked producer re-checks its own item's room
        return item

    def close(self) -> None:
        """One producer is done; the channel closes when all are."""
        self._open_producers -= 1
        self._not_empty.set()

    def counters(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "dropped": self.dropped,
            "queue_depth": len(self._q),
            "capacity": self.capacity,
            "high_water": self.high_water,
            "queue_bytes": self.bytes,
            "max_bytes": self.max_bytes,
            "high_water_bytes": self.high_water_bytes,
            "when_full": self.when_full,
        }
