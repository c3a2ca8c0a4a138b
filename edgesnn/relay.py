"""The relay behind `edgesnn relay --sub tcp://A:5556 [--sub ...] --pub tcp://127.0.0.1:5560`:
many daemons, one endpoint for monitors.

An XSUB socket connects to every daemon's PUB endpoint and an XPUB socket binds the one that
monitors subscribe to; libzmq's proxy (`zmq.proxy_steerable`) moves messages between them in C
and forwards the monitors' subscriptions upstream, so a daemon sends only what someone wants.
Messages are relayed unchanged: each keeps its topic and its pipeline's gap-free `seq`, so a
monitor detects loss per source as it would on a direct connection. Either side can use CURVE
(`edgesnn.curve`): `--curve-key`/`--server-key` towards CURVE daemons, `--pub-secret-key`/
`--pub-allowed-keys` for the monitors.
"""

from __future__ import annotations

import logging
import struct
import threading
from typing import Any

import zmq

from edgesnn import curve as zcurve

log = logging.getLogger("edgesnn.relay")

#: what libzmq's STATISTICS control command answers, in order
STAT_NAMES = ("front_msgs_in", "front_bytes_in", "front_msgs_out", "front_bytes_out",
              "back_msgs_in", "back_bytes_in", "back_msgs_out", "back_bytes_out")


class Relay:
    """XSUB (connected to every publisher) -> proxy -> XPUB (bound for the monitors)."""

    def __init__(
        self,
        subs: list[str],
        pub: str,
        clients: list[zcurve.CurveClient | None] | None = None,
        server: zcurve.CurveServer | None = None,
        hwm: int = 100_000,
    ):
        if not subs:
            raise ValueError("a relay needs at least one --sub endpoint")
        self.subs = list(subs)
        self.pub = pub
        self.clients = list(clients) if clients else [None] * len(subs)
        if len(self.clients) != len(self.subs):
            raise ValueError("one CURVE client setting per --sub endpoint")
        if any(c is None for c in self.clients) and any(c is not None for c in self.clients):
            raise ValueError("CURVE towards every publisher or towards none")
        self.server = server
        self.hwm = hwm
        self.bound = ""
        self._ctx: zmq.Context[Any] | None = None
        self._control: zmq.Socket[Any] | None = None
        self._thread: threading.Thread | None = None
        self._auth: zcurve.ServerAuth | None = None
        self._lock = threading.Lock()
        self.error: BaseException | None = None

    def start(self) -> None:
        """Bind the monitors' endpoint, connect to the publishers and start the proxy thread
        (zmq.ZMQError when the endpoint cannot be bound)."""
        ctx = self._ctx = zmq.Context()
        xsub = ctx.socket(zmq.XSUB)
        xpub = ctx.socket(zmq.XPUB)
        for s in (xsub, xpub):
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.RCVHWM, self.hwm)
            s.setsockopt(zmq.SNDHWM, self.hwm)
        try:
            if self.server is not None:
                self._auth = self.server.start(ctx, xpub)
            zcurve.warn_if_exposed(self.pub, "the relay", self.server is not None,
                                   "--pub-secret-key")
            xpub.bind(self.pub)
            self.bound = xpub.getsockopt_string(zmq.LAST_ENDPOINT)
            for ep, keys in zip(self.subs, self.clients):
                # CURVE options are taken per connection, at connect(): one server key each
                if keys is not None:
                    keys.apply(xsub)
                xsub.connect(ep)
        except zmq.ZMQError:
            xsub.close(0)
            xpub.close(0)
            self._close()
            raise
        control = ctx.socket(zmq.PAIR)
        control.bind("inproc://edgesnn-relay-control")
        self._control = ctx.socket(zmq.PAIR)
        self._control.connect("inproc://edgesnn-relay-control")

        def proxy() -> None:
            try:
                zmq.proxy_steerable(xsub, xpub, None, control)
            except zmq.ZMQError as e:  # ETERM when the context closes under it
                if e.errno != zmq.ETERM:
                    self.error = e
                    log.error("relay stopped: %s", e)
            finally:
                for s in (xsub, xpub, control):
                    s.close(0)

        self._thread = threading.Thread(target=proxy, name="relay", daemon=True)
        self._thread.start()
        log.info("relaying %d publisher(s) (%s) to %s%s", len(self.subs), ", ".join(self.subs),
                 self.bound, " with CURVE" if self.server else "")

    def stats(self, timeout_ms: int = 1000) -> dict[str, int]:
        """Messages and bytes through each side so far (libzmq's proxy statistics)."""
        with self._lock:
            if self._control is None or self._thread is None or not self._thread.is_alive():
                return {}
            self._control.send(b"STATISTICS")
            if not self._control.poll(timeout_ms):
                return {}
            frames = self._control.recv_multipart()
        return {n: struct.unpack("=Q", f)[0] for n, f in zip(STAT_NAMES, frames)}

    def status(self) -> dict[str, Any]:
        """Publishers, endpoint, message counts and CURVE admission counts."""
        out: dict[str, Any] = {"subs": self.subs, "pub": self.bound, **self.stats()}
        if self._auth is not None:
            out.update(self._auth.status())
        return out

    def stop(self) -> None:
        """Stop the proxy and close every socket."""
        with self._lock:
            if self._control is not None:
                if self._thread is not None and self._thread.is_alive():
                    self._control.send(b"TERMINATE")
                    self._thread.join(5)
                self._control.close(0)
                self._control = None
        self._close()

    def _close(self) -> None:
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def __enter__(self) -> Relay:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
