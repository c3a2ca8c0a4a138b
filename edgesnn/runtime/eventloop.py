"""An asyncio event loop whose timers fire on time, for the daemon.

asyncio waits for its next timer with epoll_wait, whose timeout is in whole milliseconds,
rounded up: a timer 0.3 ms ahead fired after 1 ms or more (measured: `asyncio.sleep` overshot
by 0.63 ms at p50 on a busy 2-core machine). The host-clock step closes of live pipelines, the
drain timers of paused drivers and paced replays all wait that way. `PreciseEpollSelector`
adds a timerfd (Linux, through ctypes) armed for the exact deadline of short waits, so the
epoll wakes then (`asyncio.sleep` overshoot p50 0.035 ms on the same machine); elsewhere, or
with EDGESNN_EVENT_LOOP=asyncio in the environment, the loop is asyncio's own.
"""

from __future__ import annotations

import asyncio
import ctypes
import math
import os
import select
import selectors
import sys
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: waits at least this long (s) keep epoll's millisecond rounding (under 2 % then)
PRECISE_MAX_S = 0.05

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = 0o4000
_TFD_CLOEXEC = 0o2000000
_TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _timerfd_api() -> tuple[Any, Any] | None:
    """libc's timerfd_create and timerfd_settime, or None where they are not to be had."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        create, settime = libc.timerfd_create, libc.timerfd_settime
    except (OSError, AttributeError):
        return None
    create.argtypes = [ctypes.c_int, ctypes.c_int]
    create.restype = ctypes.c_int
    settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec), ctypes.c_void_p]
    settime.restype = ctypes.c_int
    return create, settime


if hasattr(selectors, "EpollSelector"):

    class PreciseEpollSelector(selectors.EpollSelector):
        """An epoll selector that wakes at the exact deadline of waits under PRECISE_MAX_S,
        through a timerfd registered beside the loop's descriptors (never reported as ready).
        The timer is re-armed only when the deadline moves and cleared once it has passed, so
        a fired timer never leaves the epoll readable."""

        def __init__(self) -> None:
            super().__init__()
            self._tfd = -1
            self._armed: float | None = None  # the armed deadline (monotonic s)
            self._spec = _Itimerspec()
            #: wake-ups of the epoll by the timer (a test can tell the timerfd works)
            self.timer_wakeups = 0
            api = _timerfd_api()
            if api is None:
                return
            create, self._settime = api
            fd = create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
            if fd < 0:
                return
            self._selector.register(fd, self._EVENT_READ)
            self._tfd = fd

        @property
        def precise(self) -> bool:
            """Whether short waits end on a timerfd."""
            return self._tfd >= 0

        def _arm(self, deadline: float) -> None:
            v = self._spec.it_value
            if deadline:
                sec = int(deadline)
                v.tv_sec, v.tv_nsec = sec, int((deadline - sec) * 1e9)
            else:
                v.tv_sec = v.tv_nsec = 0  # disarms it, and clears a fired one
            self._settime(self._tfd, _TFD_TIMER_ABSTIME, ctypes.byref(self._spec), None)

        def select(self, timeout: float | None = None) -> list[Any]:
            if self._tfd < 0:
                return super().select(timeout)
            if timeout is not None and 0 < timeout < PRECISE_MAX_S:
                deadline = time.monotonic() + timeout
                if self._armed is None or abs(deadline - self._armed) > 10e-6:
                    self._arm(deadline)
                    self._armed = deadline
            # what EpollSelector.select does, with one more event for the timer
            wait = -1.0 if timeout is None else 0.0 if timeout <= 0 \
                else math.ceil(timeout * 1e3) * 1e-3  # fmt: skip
            ready: list[Any] = []
            try:
                fd_events = self._selector.poll(wait, len(self._fd_to_key) + 1)
            except InterruptedError:
                return ready
            for fd, event in fd_events:
                if fd == self._tfd:
                    self.timer_wakeups += 1
                    continue
                key = self._key_from_fd(fd)
                if key:
                    events = (selectors.EVENT_WRITE if event & ~select.EPOLLIN else 0) \
                        | (selectors.EVENT_READ if event & ~select.EPOLLOUT else 0)
                    ready.append((key, events & key.events))
            if self._armed is not None and time.monotonic() >= self._armed:
                self._arm(0.0)  # it fired (or is about to): no longer readable
                self._armed = None
            return ready

        def close(self) -> None:
            if self._tfd >= 0:
                os.close(self._tfd)
                self._tfd = -1
            super().close()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """An event loop on `PreciseEpollSelector` where epoll exists, asyncio's default elsewhere
    or when the environment says EDGESNN_EVENT_LOOP=asyncio."""
    if hasattr(selectors, "EpollSelector") and os.environ.get("EDGESNN_EVENT_LOOP") != "asyncio":
        return asyncio.SelectorEventLoop(PreciseEpollSelector())
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on `new_event_loop`."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
