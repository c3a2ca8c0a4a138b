"""Bounded channels between pipeline stages, with a declared policy when full and counters.

Policies: "block" (the producer waits: back-pressure), "drop_oldest" (the oldest queued item is
discarded to make room), "drop_newest" (the new item is discarded). Every drop is counted, so
overload is visible in heartbeats and metrics; memory never grows past `capacity` items.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Closed(Exception):
    """The channel was closed and is empty."""


class Channel(Generic[T]):
    """An asyncio bounded queue with a when-full policy and counters; single consumer."""

    def __init__(self, capacity: int, when_full: str = "block", producers: int = 1):
        if when_full not in ("block", "drop_oldest", "drop_newest"):
            raise ValueError(f"unknown when_full policy {when_full!r}")
        self.capacity = int(capacity)
        self.when_full = when_full
        self._q: deque[T] = deque()
        self._open_producers = producers
        self._not_empty = asyncio.Event()
        self._not_full = asyncio.Event()
        self._not_full.set()
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
        if len(self._q) >= self.capacity:
            if self.when_full == "drop_newest":
                self.dropped += 1
                return False
            if self.when_full == "drop_oldest":
                self._q.popleft()
                self.dropped += 1
                self._append(item)
                return False
            while len(self._q) >= self.capacity:
                self._not_full.clear()
                await self._not_full.wait()
        self._append(item)
        return True

    def _append(self, item: T) -> None:
        self._q.append(item)
        self.high_water = max(self.high_water, len(self._q))
        self._not_empty.set()

    async def get(self) -> T:
        """Next item; raises Closed when every producer has closed and nothing is left."""
        while not self._q:
            if self._open_producers <= 0:
                raise Closed
            self._not_empty.clear()
            await self._not_empty.wait()
        item = self._q.popleft()
        self.delivered += 1
        if len(self._q) < self.capacity:
            self._not_full.set()
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
            "when_full": self.when_full,
        }
