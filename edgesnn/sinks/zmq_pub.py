"""ZeroMQ PUB sink: multipart [topic, msgpack payload] per detection and heartbeat."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import zmq
import zmq.asyncio

from edgesnn import curve, wire
from edgesnn.components import Sink, register
from edgesnn.config.schema import Field, Schema, check_zmq_endpoint

log = logging.getLogger(__name__)


@register
class ZmqPubSink(Sink):
    """Publishes detections and heartbeats on a ZeroMQ PUB socket (bound)."""

    type_name = "zmq_pub"
    summary = "ZeroMQ PUB socket: det.<pipeline>.<label> and hb.<pipeline> (msgpack)."
    sends_at_once = True  # NOBLOCK sends: a full queue counts an error, never waits

    @classmethod
    def claims(cls, params: dict[str, Any], base_dir: str) -> list[Any]:
        """The endpoint it binds (a fixed TCP port or an ipc:// path)."""
        from edgesnn.runtime.pipeset import zmq_key

        key = zmq_key(params["endpoint"]) if isinstance(params.get("endpoint"), str) else None
        return [(key, "endpoint", params["endpoint"])] if key else []
    schema = Schema(
        {
            "endpoint": Field(
                str, default="tcp://127.0.0.1:5556", check=check_zmq_endpoint,
                doc="Where to bind; loopback by default (use tcp://0.0.0.0:5556 to expose).",
            ),
            "sndhwm": Field(
                int, default=10_000, min=1,
                doc="Messages queued per subscriber before ZeroMQ drops (seq shows gaps).",
            ),
            "linger_ms": Field(int, default=500, min=0, doc="Time to flush on close."),
            "join_wait_ms": Field(
                int, default=0, min=0, max=60_000,
                doc="Wait after binding so subscribers can connect before the first message "
                "(ZeroMQ drops messages published before a subscription arrives).",
            ),
            "curve_secret_key": Field(
                str, default="",
                doc="CURVE: this publisher's .key_secret file (`edgesnn keys generate`); "
                "encrypts every message ('' = no CURVE; relative paths are to the pipeline).",
            ),
            "curve_allowed_keys": Field(
                str, default="",
                doc="CURVE: folder of the subscribers' public NAME.key files allowed to connect "
                "(re-read when it changes; '' = any subscriber that knows the public key).",
            ),
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self._ctx: zmq.asyncio.Context | None = None
        self._sock: zmq.asyncio.Socket | None = None
        self.sent = 0
        self.heartbeats = 0
        self.errors = 0
        self.bound = ""
        #: set by the daemon when a reload hands this socket to the next pipeline: stop() keeps it
        self.keep_open = False
        self._auth: curve.ServerAuth | None = None
        #: a bound socket of the pipeline before a reload, with other CURVE settings: closed
        #: by start() before binding again
        self._stale: ZmqPubSink | None = None

    def _curve_params(self) -> tuple[str, str]:
        return self.params["curve_secret_key"], self.params["curve_allowed_keys"]

    def check(self, inputs: list[Any]) -> list[str]:
        secret, allowed = self._curve_params()
        problems = []
        if secret:
            problem = curve.check_secret_file(secret, self.ctx.base_dir)
            if problem:
                problems.append(f"curve_secret_key: {problem}")
        if allowed:
            if not secret:
                problems.append("curve_allowed_keys needs curve_secret_key (the publisher's "
                                "own key pair)")
            problem = curve.check_allowed_dir(allowed, self.ctx.base_dir)
            if problem:
                problems.append(f"curve_allowed_keys: {problem}")
        return problems

    def adopt(self, old: ZmqPubSink) -> None:
        """Take over `old`'s bound socket (a reload with the same endpoint): no re-bind, no gap.
        A change of CURVE settings needs a new socket: `old` is closed by start() instead."""
        if self._curve_params() != old._curve_params():
            self._stale = old
            return
        self._ctx, self._sock, self.bound = old._ctx, old._sock, old.bound
        self._auth, old._auth = old._auth, None
        self.sent, self.heartbeats, self.errors = old.sent, old.heartbeats, old.errors
        old._ctx, old._sock, old.keep_open = None, None, False

    async def start(self) -> None:
        if self._sock is not None:  # adopted from the pipeline before a reload: already bound
            self._sock.setsockopt(zmq.SNDHWM, self.params["sndhwm"])
            self._sock.setsockopt(zmq.LINGER, self.params["linger_ms"])
            log.info("still publishing on %s", self.bound)
            return
        if self._stale is not None:  # a reload that changed the CURVE settings: re-bind
            stale, self._stale = self._stale, None
            stale.keep_open = False
            await stale.stop()
        secret, allowed = self._curve_params()
        server = (curve.CurveServer.load(secret, allowed, self.ctx.base_dir) if secret
                  else None)
        # socket and context are owned from the first line, so stop() releases them even when
        # start() fails or is cancelled half-way (an unclosed socket would block the context's
        # termination forever when it is garbage-collected)
        self._ctx = zmq.asyncio.Context()
        sock = self._sock = self._ctx.socket(zmq.PUB)
        sock.setsockopt(zmq.SNDHWM, self.params["sndhwm"])
        sock.setsockopt(zmq.LINGER, self.params["linger_ms"])
        if server is not None:
            self._auth = server.start(self._ctx, sock)
        curve.warn_if_exposed(self.params["endpoint"], f"sink {self.id!r} (zmq_pub)",
                              server is not None, f"sinks.{self.id}.curve_secret_key")
        for attempt in range(20):  # a reload re-binds the port the old socket just released
            try:
                sock.bind(self.params["endpoint"])
                break
            except zmq.ZMQError as e:
                if e.errno != zmq.EADDRINUSE or attempt == 19:
                    await self.stop()
                    raise OSError(f"cannot bind {self.params['endpoint']}: {e}") from e
                await asyncio.sleep(0.1)
        self.bound = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        log.info("publishing on %s", self.bound)
        if self.params["join_wait_ms"]:
            await asyncio.sleep(self.params["join_wait_ms"] / 1000)

    async def _send(self, message: dict[str, Any]) -> None:
        if self._sock is None:  # not started, or already closed
            self.errors += 1
            return
        try:
            await self._sock.send_multipart(wire.frames(message), flags=zmq.NOBLOCK)
        except zmq.Again:
            self.errors += 1

    async def send(self, message: dict[str, Any]) -> None:
        await self._send(message)
        self.sent += 1

    async def heartbeat(self, message: dict[str, Any]) -> None:
        await self._send(message)
        self.heartbeats += 1

    async def stop(self) -> None:
        if self.keep_open:  # handed to the next pipeline of a reload (see adopt)
            return
        if self._sock is not None:
            self._sock.close(self.params["linger_ms"])
            self._sock = None
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def status(self) -> dict[str, Any]:
        out = {"endpoint": self.bound, "sent": self.sent, "heartbeats": self.heartbeats,
               "send_errors": self.errors}
        if self._auth is not None:
            out.update(self._auth.status())
        return out
