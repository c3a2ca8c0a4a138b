"""Connection hardening for the HTTP API: a connection limit, a header-read timeout and
rate-limited accept() error logs.

Without them, a thousand idle sockets (or clients sending half a request line) hold file
descriptors forever; at the process limit accept() fails with EMFILE on every loop turn, the
log floods and the daemon cannot open its own files (checkpoints). `GuardedSite` is an aiohttp
TCPSite whose protocol factory wraps each connection:

- beyond `max_connections` open connections a new one is closed at once and counted;
- a connection that has not sent a complete request head (up to the blank line) within
  `header_timeout_s` of connecting, or of the first byte of a later request on it, is closed
  and counted (`timed_out`; idle keep-alive connections between requests are closed by
  aiohttp's keepalive timeout);
- a request whose body (`Content-Length` bytes, or chunks up to the last one) has not arrived
  within `body_timeout_s` of its head is closed and counted (`body_timed_out`): a slowloris
  trickling its body cannot hold a handler and a descriptor for ever;

and `AcceptErrorLimiter` logs accept() failures at most once per interval, with the count.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import time
from typing import Any

from aiohttp import web

log = logging.getLogger("edgesnn.http")

#: the message asyncio's selector loop reports when accept() fails (EMFILE, ENFILE, ENOBUFS)
_ACCEPT_MESSAGE = "socket.accept() out of system resource"
_ACCEPT_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class ConnectionGuard:
    """Counts open connections and enforces the limit and the header timeout."""

    def __init__(self, max_connections: int, header_timeout_s: float, log_interval_s: float = 10.0,
                 body_timeout_s: float | None = None):
        self.max_connections = max_connections
        self.header_timeout_s = header_timeout_s
        self.body_timeout_s = header_timeout_s if body_timeout_s is None else body_timeout_s
        self.log_interval_s = log_interval_s
        self.open = 0
        #: connections closed at once because `max_connections` were open
        self.rejected = 0
        #: connections closed because their request head did not arrive in time
        self.timed_out = 0
        #: connections closed because a request body did not arrive in time
        self.body_timed_out = 0
        self._last_log = -float("inf")
        self._unlogged = 0

    def wrap(self, inner: asyncio.Protocol) -> asyncio.Protocol:
        """The guarded protocol of one new connection."""
        return _Guarded(inner, self)

    def counters(self) -> dict[str, int]:
        """Open connections and what was refused or cut (for /status and /metrics)."""
        return {"open": self.open, "rejected": self.rejected, "timed_out": self.timed_out,
                "body_timed_out": self.body_timed_out}

    def note_rejected(self) -> None:
        """Count a refused connection; log at most once per interval."""
        self.rejected += 1
        self._unlogged += 1
        now = time.monotonic()
        if now - self._last_log >= self.log_interval_s:
            log.warning("HTTP: %d connection(s) refused: %d open, the limit ([http] "
                        "max_connections)", self._unlogged, self.max_connections)
            self._last_log = now
            self._unlogged = 0


#: most bytes of a request head kept while looking for its end (aiohttp refuses longer heads)
_MAX_HEAD = 64 * 1024
_HEAD, _BODY, _CHUNKED, _IDLE, _TUNNEL = range(5)


def _body_length(head: bytes) -> int | None:
    """Bytes of body a request head announces; -1 for a WebSocket upgrade (no more requests
    follow), None for a chunked body."""
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"upgrade" and b"websocket" in value.lower():
            return -1
        if name == b"transfer-encoding" and b"chunked" in value.lower():
            return None
        if name == b"content-length":
            with contextlib.suppress(ValueError):
                length = max(0, int(value.strip()))
    return length


class _Guarded(asyncio.Protocol):
    """Delegates to aiohttp's handler; closes the connection when over the limit or slow.

    Follows each request on the connection: its head (until the blank line) must arrive
    within `header_timeout_s`, then its body within `body_timeout_s`; between requests the
    connection is idle (aiohttp's keep-alive timeout applies)."""

    __slots__ = ("inner", "guard", "transport", "timer", "buf", "state", "left", "counted")

    def __init__(self, inner: asyncio.Protocol, guard: ConnectionGuard):
        self.inner: asyncio.Protocol | None = inner
        self.guard = guard
        self.transport: asyncio.BaseTransport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.buf = bytearray()  # the request head so far, or the tail of a chunked body
        self.state = _HEAD
        self.left = 0  # body bytes still to come
        self.counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        g = self.guard
        if g.open >= g.max_connections:
            self.inner = None
            g.note_rejected()
            transport.abort()  # type: ignore[attr-defined]  # frees the descriptor now
            return
        g.open += 1
        self.counted = True
        self._arm(g.header_timeout_s, head=True)
        assert self.inner is not None
        self.inner.connection_made(transport)

    def _arm(self, delay: float | None, head: bool = True) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if delay is not None:
            self.timer = asyncio.get_running_loop().call_later(delay, self._too_slow, head)

    def _too_slow(self, head: bool) -> None:
        self.timer = None
        if head:
            self.guard.timed_out += 1
        else:
            self.guard.body_timed_out += 1
        if self.transport is not None:
            self.transport.abort()  # type: ignore[attr-defined]

    def _track(self, data: bytes) -> None:
        """Advance the request state machine over `data` (pipelined requests included)."""
        g = self.guard
        while data and self.state != _TUNNEL:
            if self.state == _IDLE:
                self.state = _HEAD
                self._arm(g.header_timeout_s)
            if self.state == _HEAD:
                buf = self.buf
                start = max(0, len(buf) - 3)  # (appending: no quadratic copying of a head
                buf += data                   # that trickles in byte by byte)
                end = buf.find(b"\r\n\r\n", start)
                if end < 0:
                    if len(buf) > _MAX_HEAD:  # aiohttp refuses such a head anyway
                        del buf[: len(buf) - _MAX_HEAD]
                    return
                head, data, self.buf = bytes(buf[:end]), bytes(buf[end + 4:]), bytearray()
                length = _body_length(head)
                if length == -1:  # a WebSocket: frames, not requests, from now on
                    self.state = _TUNNEL
                    self._arm(None)
                    return
                if length is None:
                    self.state = _CHUNKED
                elif length:
                    self.state, self.left = _BODY, length
                else:
                    self.state = _IDLE
                    self._arm(None)
                    continue
                self._arm(g.body_timeout_s, head=False)
            elif self.state == _BODY:
                n = min(self.left, len(data))
                self.left -= n
                data = data[n:]
                if not self.left:
                    self.state = _IDLE
                    self._arm(None)
            else:  # chunked: the body ends with the last, empty chunk
                buf = bytes(self.buf) + data
                end = buf.find(b"\r\n0\r\n\r\n")
                if end < 0 and not buf.startswith(b"0\r\n\r\n"):
                    self.buf = bytearray(buf[-8:])
                    return
                cut = 5 if end < 0 else end + 7
                data, self.buf = buf[cut:], bytearray()
                self.state = _IDLE
                self._arm(None)

    def data_received(self, data: bytes) -> None:
        if self.transport is not None:
            self._track(data)
        if self.inner is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.counted:
            self.guard.open -= 1
            self.counted = False
        if self.inner is not None:
            self.inner.connection_lost(exc)
            self.inner = None
        self.transport = None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()


class GuardedSite(web.TCPSite):
    """A TCPSite whose connections go through a `ConnectionGuard`."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, guard: ConnectionGuard,
                 **kwargs: Any):
        super().__init__(runner, host, port, **kwargs)
        self.guard = guard

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None
        guard = self.guard

        def factory() -> asyncio.Protocol:
            return guard.wrap(server())

        self._server = await asyncio.get_running_loop().create_server(
            factory, self._host, self._port, ssl=self._ssl_context, backlog=self._backlog,
            reuse_address=self._reuse_address, reuse_port=self._reuse_port,
        )
        if self._server.sockets:
            self._bound_port = self._server.sockets[0].getsockname()[1]


class AcceptErrorLimiter:
    """A loop exception handler that logs accept() failures at most once per interval (with
    how many there were) and passes everything else to the previous handler."""

    def __init__(self, interval_s: float = 10.0):
        self.interval_s = interval_s
        #: accept() failures seen in all
        self.count = 0
        self._unlogged = 0
        self._last_log = -float("inf")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._prev: Any = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._prev = loop.get_exception_handler()
        loop.set_exception_handler(self.handle)

    def uninstall(self) -> None:
        if self._loop is not None and self._loop.get_exception_handler() == self.handle:
            self._loop.set_exception_handler(self._prev)
        self._loop = None

    @staticmethod
    def is_accept_error(context: dict[str, Any]) -> bool:
        exc = context.get("exception")
        if str(context.get("message", "")).startswith(_ACCEPT_MESSAGE):
            return True
        return (isinstance(exc, OSError) and exc.errno in _ACCEPT_ERRNOS
                and "accept" in str(context.get("message", "")).lower())

    def handle(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if not self.is_accept_error(context):
            if self._prev is not None:
                self._prev(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        self.count += 1
        self._unlogged += 1
        now = time.monotonic()
        if now - self._last_log >= self.interval_s:
            exc = context.get("exception")
            log.error("HTTP: accept() failed %d time(s) since the last report (%s); new "
                      "connections wait (lower [http] max_connections or raise the file "
                      "limit); at most one such line every %g s", self._unlogged,
                      exc if exc is not None else context.get("message"), self.interval_s)
            self._last_log = now
            self._unlogged = 0
