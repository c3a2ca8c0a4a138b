"""Exponential backoff with jitter, for reconnecting to lost sensors and peers."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

#: how often `pause` checks whether the wait should end
POLL_S = 0.05


async def pause(delay: float, ended: Callable[[], bool] | None = None) -> None:
    """Sleep `delay` seconds, or less: with `ended`, return within POLL_S once it is true, so
    a stop or finish does not wait out a reconnect delay for a device that may never return."""
    if ended is None:
        await asyncio.sleep(delay)
        return
    end = time.monotonic() + delay
    while not ended():
        left = end - time.monotonic()
        if left <= 0:
            return
        await asyncio.sleep(min(left, POLL_S))


class Backoff:
    """Delays initial_s, initial_s*factor, ... capped at max_s, each with +-jitter."""

    def __init__(
        self, initial_s: float = 0.1, max_s: float = 10.0, factor: float = 2.0, jitter: float = 0.1
    ):
        self.initial_s = initial_s
        self.max_s = max_s
        self.factor = factor
        self.jitter = jitter
        self.attempts = 0

    def next_delay(self) -> float:
        d = min(self.max_s, self.initial_s * self.factor**self.attempts)
        self.attempts += 1
        return max(0.0, d * (1.0 + random.uniform(-self.jitter, self.jitter)))

    async def sleep(self, ended: Callable[[], bool] | None = None) -> float:
        """Wait the next delay (less once `ended()` is true, see `pause`); returns it."""
        d = self.next_delay()
        await pause(d, ended)
        return d

    def reset(self) -> None:
        self.attempts = 0
