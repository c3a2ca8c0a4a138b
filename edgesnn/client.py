"""Client library for edgesnn detection streams (sync and asyncio).

    from edgesnn.client import Subscriber
    with Subscriber("tcp://127.0.0.1:5556") as sub:
        for msg in sub:                    # decoded dicts of the wire schema (edgesnn.wire)
            print(msg["label"], msg["score"])
    print(sub.gaps)                        # messages lost, from gaps in seq

A daemon publishing with CURVE (`curve_secret_key` of its zmq_pub sink) needs
`curve=CurveClient.load("monitor.key_secret", "daemon.key")` (edgesnn.curve).

Gaps in `seq` (per pipeline) are counted in `gaps` and reported to `on_gap(pipeline,
expected, got)`; a restart of the daemon (seq back to 0) is counted in `restarts`, not as a gap.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import zmq
import zmq.asyncio

from edgesnn import wire

if TYPE_CHECKING:
    from edgesnn.curve import CurveClient

GapCallback = Callable[[str, int, int], None]


class _SeqTracker:
    def __init__(self, on_gap: GapCallback | None):
        self.last: dict[str, int] = {}
        self.gaps = 0
        self.restarts = 0
        self.received = 0
        self.heartbeats = 0
        self.bad = 0
        self.on_gap = on_gap

    def see(self, msg: dict[str, Any]) -> None:
        if msg.get("kind") == "hb":
            self.heartbeats += 1
            return
        self.received += 1
        pipe, seq = msg.get("pipeline", ""), int(msg.get("seq", -1))
        prev = self.last.get(pipe)
        if prev is not None:
            if seq == 0 and prev > 0:
                self.restarts += 1
            elif seq > prev + 1:
                self.gaps += seq - prev - 1
                if self.on_gap:
                    self.on_gap(pipe, prev + 1, seq)
        self.last[pipe] = seq


def _topics(topics: tuple[str, ...] | list[str] | str | None, heartbeats: bool) -> list[bytes]:
    if topics is None:
        t = [wire.DET_PREFIX]
    elif isinstance(topics, str):
        t = [topics]
    else:
        t = list(topics)
    if heartbeats and not any(wire.HB_PREFIX.startswith(x) for x in t):
        t.append(wire.HB_PREFIX)
    return [x.encode() for x in t]


class _Base:
    """Socket setup, decoding and sequence tracking shared by both subscribers."""

    def __init__(
        self,
        ctx: Any,
        endpoint: str,
        topics: tuple[str, ...] | list[str] | str | None,
        heartbeats: bool,
        on_gap: GapCallback | None,
        curve: CurveClient | None = None,
    ):
        self.endpoint = endpoint
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            curve.apply(self.sock)
        for t in _topics(topics, heartbeats):
            self.sock.setsockopt(zmq.SUBSCRIBE, t)
        self.sock.connect(endpoint)
        self._seq = _SeqTracker(on_gap)

    @property
    def gaps(self) -> int:
        """Messages lost so far (from gaps in seq)."""
        return self._seq.gaps

    @property
    def restarts(self) -> int:
        """Times a publisher's seq went back to 0 (a daemon restart)."""
        return self._seq.restarts

    @property
    def bad_messages(self) -> int:
        """Frames that were not edgesnn messages (skipped)."""
        return self._seq.bad

    def _decode(self, frames: list[bytes]) -> dict[str, Any] | None:
        if len(frames) != 2:
            self._seq.bad += 1
            return None
        try:
            msg = wire.unpack(frames[1])
        except Exception:
            self._seq.bad += 1
            return None
        msg["topic"] = frames[0].decode(errors="replace")
        self._seq.see(msg)
        return msg

    def close(self) -> None:
        self.sock.close(0)


class Subscriber(_Base):
    """Blocking subscriber: iterate to get decoded messages; counts seq gaps."""

    def __init__(
        self,
        endpoint: str = "tcp://127.0.0.1:5556",
        topics: tuple[str, ...] | list[str] | str | None = None,
        heartbeats: bool = False,
        on_gap: GapCallback | None = None,
        timeout_ms: int | None = None,
        context: zmq.Context | None = None,
        curve: CurveClient | None = None,
    ):
        super().__init__(context or zmq.Context.instance(), endpoint, topics, heartbeats, on_gap,
                         curve)
        if timeout_ms is not None:
            self.sock.setsockopt(zmq.RCVTIMEO, timeout_ms)

    def recv(self) -> dict[str, Any]:
        """Next message; raises TimeoutError when timeout_ms passes without one."""
        while True:
            try:
                frames = self.sock.recv_multipart()
            except zmq.Again:
                raise TimeoutError(f"no message from {self.endpoint}") from None
            msg = self._decode(frames)
            if msg is not None:
                return msg

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            try:
                yield self.recv()
            except TimeoutError:
                return

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncSubscriber(_Base):
    """asyncio subscriber: `async for msg in sub`; counts seq gaps like `Subscriber`."""

    def __init__(
        self,
        endpoint: str = "tcp://127.0.0.1:5556",
        topics: tuple[str, ...] | list[str] | str | None = None,
        heartbeats: bool = False,
        on_gap: GapCallback | None = None,
        context: zmq.asyncio.Context | None = None,
        curve: CurveClient | None = None,
    ):
        ctx = context or zmq.asyncio.Context.instance()
        super().__init__(ctx, endpoint, topics, heartbeats, on_gap, curve)

    async def recv(self) -> dict[str, Any]:
        """Next message."""
        while True:
            msg = self._decode(await self.sock.recv_multipart())
            if msg is not None:
                return msg

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            yield await self.recv()

    async def __aenter__(self) -> AsyncSubscriber:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
