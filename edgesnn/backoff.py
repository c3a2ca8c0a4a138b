"""Exponential backoff with jitter, for reconnecting to lost sensors and peers."""

from __future__ import annotations

import asyncio
import random


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

    async def sleep(self) -> float:
        d = self.next_delay()
        await asyncio.sleep(d)
        return d

    def reset(self) -> None:
        self.attempts = 0
