"""Reward delivery to a running daemon over ZeroMQ, and the client used by `edgesnn reward`.

With ``[reward] endpoint = "tcp://127.0.0.1:5557"`` in the pipeline, the daemon binds a ZeroMQ
ROUTER socket there. A subscriber of the detections (a robot controller, a monitor) that
judges them sends a reward back: one msgpack map per message,

    {"value": 1.0, "component": "snn", "projection": "in->out"}   (component, projection optional)

from a REQ socket (it gets a reply map ``{"ok": true, "result": ...}`` or ``{"ok": false,
"error": "..."}``) or a DEALER socket (replies may be ignored). The reward goes to the
component's ``control("reward", value=..., projection=...)``, i.e. to its rstdp projections,
and takes effect at the network's next step. Bad messages are counted and answered with an
error; messages larger than 64 KiB are refused by the socket.

With ``curve_secret_key`` (and ``curve_allowed_keys``) in ``[reward]`` the socket is a CURVE
server (`edgesnn.curve`): only senders whose public key is in the allowed folder get through,
encrypted; `send_reward(..., curve=CurveClient.load(...))` and `edgesnn reward --curve-key`
send that way. A non-loopback endpoint without CURVE logs a warning: anyone reaching it could
steer the learning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from typing import Any

import msgpack
import zmq
import zmq.asyncio

from edgesnn import curve as zcurve
from edgesnn.components import Network

log = logging.getLogger("edgesnn.reward")

MAX_MESSAGE_BYTES = 65536


class RewardServer:
    """Receives rewards on a bound ROUTER socket and hands them to the network components."""

    def __init__(
        self,
        endpoint: str,
        component: str = "",
        *,
        curve_secret_key: str = "",
        curve_allowed_keys: str = "",
        base_dir: Any = None,
    ) -> None:
        self.endpoint = endpoint
        self.component = component
        self.curve_secret_key = curve_secret_key
        self.curve_allowed_keys = curve_allowed_keys
        self.base_dir = base_dir
        self._auth: zcurve.ServerAuth | None = None
        self.components: dict[str, Any] = {}
        self.received = 0
        self.applied = 0
        self.rejected = 0
        self.last_error = ""
        self._ctx: zmq.asyncio.Context | None = None
        self._sock: zmq.asyncio.Socket | None = None
        self._task: asyncio.Task[None] | None = None

    def attach(self, components: dict[str, Any]) -> None:
        """Deliver to these components from now on (a reloaded pipeline's)."""
        self.components = components

    async def start(self) -> None:
        """Bind the socket (OSError / ZMQError when the endpoint is unusable, KeyFileError
        when the CURVE key files are; then nothing is bound)."""
        server = None
        if self.curve_secret_key:
            server = zcurve.CurveServer.load(self.curve_secret_key, self.curve_allowed_keys,
                                             self.base_dir)
        elif self.curve_allowed_keys:
            raise zcurve.KeyFileError("reward.curve_allowed_keys needs reward.curve_secret_key")
        self._ctx = zmq.asyncio.Context()
        sock = self._ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        sock.setsockopt(zmq.RCVHWM, 1000)
        sock.setsockopt(zmq.SNDHWM, 1000)
        try:
            if server is not None:
                self._auth = server.start(self._ctx, sock)
            zcurve.warn_if_exposed(self.endpoint, "the reward socket", server is not None,
                                   "reward.curve_secret_key")
            sock.bind(self.endpoint)
        except zmq.ZMQError:
            sock.close(0)
            if self._auth is not None:
                self._auth.stop()
                self._auth = None
            self._ctx.term()
            self._ctx = None
            raise
        self._sock = sock
        self._task = asyncio.create_task(self._serve(), name="reward")
        log.info("rewards on %s", self.endpoint)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    async def _serve(self) -> None:
        assert self._sock is not None
        while True:
            frames = await self._sock.recv_multipart()
            if len(frames) < 2:
                self.rejected += 1
                continue
            envelope, payload = frames[:-1], frames[-1]
            self.received += 1
            try:
                reply = await asyncio.to_thread(self.handle, payload)
            except Exception as e:  # one bad message never stops the reward service
                log.exception("reward message failed")
                reply = self._reject(f"internal error: {type(e).__name__}: {e}")
            with contextlib.suppress(zmq.ZMQError):
                await self._sock.send_multipart([*envelope, msgpack.packb(reply)],
                                                flags=zmq.NOBLOCK)

    def handle(self, payload: bytes) -> dict[str, Any]:
        """Decode one reward message and deliver it; the reply map."""
        try:
            msg = msgpack.unpackb(payload, raw=False)
        except Exception as e:
            return self._reject(f"not msgpack: {e}")
        if not isinstance(msg, dict) or "value" not in msg:
            return self._reject('expected a map with "value"')
        unknown = {str(k) for k in msg} - {"value", "component", "projection"}
        if unknown:
            return self._reject(f"unknown keys {sorted(unknown)}")
        value, component, projection = msg["value"], msg.get("component"), msg.get("projection")
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            return self._reject(f'"value" must be a finite number, not {value!r:.60}')
        if component is not None and not isinstance(component, str):
            return self._reject(f'"component" must be a string, not {component!r:.60}')
        if projection is not None and (isinstance(projection, bool)
                                       or not isinstance(projection, (str, int))):
            return self._reject(f'"projection" must be a name or an index, not '
                                f"{projection!r:.60}")
        target = component or self.component
        return self.deliver(float(value), target or None, projection)

    def deliver(self, value: Any, component: str | None, projection: Any) -> dict[str, Any]:
        """Give the reward to `component` (or every network) and report what took it."""
        if component is not None:
            if component not in self.components:
                return self._reject(f"no component {component!r}")
            targets = {component: self.components[component]}
        else:
            targets = {k: c for k, c in self.components.items() if isinstance(c, Network)}
        results: dict[str, Any] = {}
        errors: list[str] = []
        for cid, comp in targets.items():
            try:
                results[cid] = comp.control("reward", value=value, projection=projection)
            except KeyError:
                errors.append(f"{cid!r} takes no rewards")
            except (TypeError, ValueError) as e:
                errors.append(f"{cid}: {e}")
        if not results:
            return self._reject("; ".join(errors) or "no network takes rewards")
        self.applied += 1
        return {"ok": True, "result": results}

    def _reject(self, why: str) -> dict[str, Any]:
        self.rejected += 1
        self.last_error = why
        log.warning("reward rejected: %s", why)
        return {"ok": False, "error": why}

    def status(self) -> dict[str, Any]:
        """Counters for the heartbeat / status endpoint."""
        out = {
            "endpoint": self.endpoint,
            "received": self.received,
            "applied": self.applied,
            "rejected": self.rejected,
            "last_error": self.last_error,
        }
        if self._auth is not None:
            out.update(self._auth.status())
        return out


def send_reward(
    endpoint: str,
    value: float,
    component: str | None = None,
    projection: str | None = None,
    timeout_s: float = 3.0,
    curve: zcurve.CurveClient | None = None,
) -> dict[str, Any]:
    """Send one reward to a daemon's reward socket and return its reply map; TimeoutError when
    no reply arrives within timeout_s (also when a CURVE socket refuses this key)."""
    msg: dict[str, Any] = {"value": float(value)}
    if component:
        msg["component"] = component
    if projection:
        msg["projection"] = projection
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        curve.apply(sock)
    try:
        sock.connect(endpoint)
        sock.send(msgpack.packb(msg))
        if not sock.poll(int(timeout_s * 1000)):
            raise TimeoutError(f"no reply from {endpoint} within {timeout_s} s")
        reply = msgpack.unpackb(sock.recv(), raw=False)
        return reply if isinstance(reply, dict) else {"ok": False, "error": "bad reply"}
    finally:
        sock.close(0)
        ctx.term()
