"""The daemon's event loop: short timers end on a timerfd, not on epoll's rounded milliseconds."""

from __future__ import annotations

import asyncio
import socket
import sys

import pytest

from edgesnn.runtime import eventloop

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timerfd is Linux's")


@linux
def test_short_waits_end_on_the_timer_and_the_loop_still_serves_sockets():
    async def main() -> tuple[int, int, bytes]:
        loop = asyncio.get_running_loop()
        sel = loop._selector  # type: ignore[attr-defined]
        assert isinstance(sel, eventloop.PreciseEpollSelector) and sel.precise
        for _ in range(20):
            await asyncio.sleep(0.0003)  # epoll alone would wait a whole millisecond
        woken = sel.timer_wakeups
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        got: asyncio.Future[bytes] = loop.create_future()
        loop.add_reader(rx.fileno(), lambda: got.done() or got.set_result(rx.recv(100)))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            tx.sendto(b"ping", rx.getsockname())
            data = await asyncio.wait_for(got, 5)
        loop.remove_reader(rx.fileno())
        rx.close()
        # a fired timer is cleared: a long idle wait is a few polls, not a busy loop
        calls = [0]
        inner = sel.select

        def counting(timeout=None):  # noqa: ANN001, ANN202
            calls[0] += 1
            return inner(timeout)

        sel.select = counting
        await asyncio.sleep(0.0003)
        await asyncio.sleep(0.1)  # longer than PRECISE_MAX_S: epoll's own timeout
        sel.select = inner
        return woken, calls[0], data

    woken, calls, data = eventloop.run(main())
    assert woken >= 20
    assert data == b"ping"
    assert calls <= 6


def test_the_loop_runs_timers_in_order_everywhere():
    async def main() -> list[int]:
        out: list[int] = []
        loop = asyncio.get_running_loop()
        for k, d in enumerate((0.004, 0.0002, 0.002, 0.0009, 0.07)):
            loop.call_later(d, out.append, k)
        await asyncio.sleep(0.1)
        return out

    assert eventloop.run(main()) == [1, 3, 2, 0, 4]


def test_edgesnn_event_loop_asyncio_keeps_asyncios_own(monkeypatch):
    monkeypatch.setenv("EDGESNN_EVENT_LOOP", "asyncio")
    loop = eventloop.new_event_loop()
    try:
        precise = getattr(eventloop, "PreciseEpollSelector", ())  # defined where epoll is
        assert not isinstance(loop._selector, precise)  # type: ignore[attr-defined]
    finally:
        loop.close()
