"""The relay behind `edgesnn relay --sub tcp://A:5556 [--sub ...] --pub tcp://127.0.0.1:5560`:
many daemons, one endpoint for monitors.

An XSUB socket connects to every daemon's PUB endpoint and an XPUB socket binds the one that
monitors subscribe to; libzmq's proxy (`zmq.proxy_steerable`) moves messages between them in C
and forwards the monitors' subscriptions upstream, so a daemon sends only what someone wants.
Messages are relayed unchanged: each keeps its topic and its pipeline's gap-free `seq`, so a
monitor detects loss per source as it would on a direct connection. Either side can use CURVE
(`edgesnn.curve`): `--curve-key`/`--server-key` towards CURVE daemons, `--pub-secret-key`/
`--pub-allowed-keys` for the monitors. `--http HOST:PORT` serves the counts to monitors
(`serve_http`: GET /status as JSON, GET /metrics in the Prometheus text format).
"""

from __future__ import annotations

import json
import logging
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import zmq

from edgesnn import curve as zcurve

log = logging.getLogger("edgesnn.relay")

#: what libzmq's STATISTICS control command answers, in order; "msgs" are message frames (an
#: edgesnn message is two: topic and payload; a subscription is one)
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
        """Publishers, endpoint, frame counts per socket, edgesnn messages relayed (two frames
        each) and CURVE admission counts."""
        running = self._thread is not None and self._thread.is_alive() and self.error is None
        stats = self.stats()
        out: dict[str, Any] = {"running": running, "subs": self.subs, "pub": self.bound,
                               **stats}
        if stats:
            out["messages_relayed"] = stats["back_msgs_out"] // 2
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


#: STAT_NAMES as (metric, socket, direction): front is the XSUB side (daemons), back the XPUB
#: side (monitors); data flows front in -> back out, subscriptions back in -> front out
_METRICS = {n: ("frames" if "msgs" in n else "bytes", "xsub" if n.startswith("front")
                else "xpub", "in" if n.endswith("_in") else "out") for n in STAT_NAMES}


def metrics_text(status: dict[str, Any]) -> str:
    """The relay's status in the Prometheus text format (edgesnn_relay_*)."""
    up = int(bool(status.get("running")))
    out = ["# HELP edgesnn_relay_up 1 while the proxy runs.", "# TYPE edgesnn_relay_up gauge",
           f"edgesnn_relay_up {up}",
           "# HELP edgesnn_relay_publishers Daemon endpoints the relay connects to.",
           "# TYPE edgesnn_relay_publishers gauge",
           f"edgesnn_relay_publishers {len(status.get('subs', []))}"]
    if "messages_relayed" in status:
        out += ["# HELP edgesnn_relay_messages_total edgesnn messages relayed to the monitors "
                "(topic and payload frames each).", "# TYPE edgesnn_relay_messages_total counter",
                f"edgesnn_relay_messages_total {status['messages_relayed']}"]
    for kind, what in (("frames", "Message frames"), ("bytes", "Bytes")):
        name = f"edgesnn_relay_{kind}_total"
        out += [f"# HELP {name} {what} through each proxy socket (xsub in: from the daemons; "
                "xpub out: to the monitors; the other two carry subscriptions).",
                f"# TYPE {name} counter"]
        out += [f'{name}{{socket="{sock}",direction="{d}"}} {status[n]}'
                for n, (k, sock, d) in _METRICS.items() if k == kind and n in status]
    for key in ("clients_allowed", "clients_refused"):
        if key in status:
            name = f"edgesnn_relay_curve_{key}_total"
            out += [f"# HELP {name} CURVE monitors {key.split('_')[1]} by the relay.",
                    f"# TYPE {name} counter", f"{name} {status[key]}"]
    return "\n".join(out) + "\n"


def serve_http(relay: Relay, host: str, port: int) -> ThreadingHTTPServer:
    """Serve GET /status (JSON) and GET /metrics (Prometheus) for `relay` from a daemon thread;
    stop it with `.shutdown()` (OSError when the address cannot be bound)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = self.path.split("?", 1)[0]
            if path not in ("/status", "/metrics"):
                self._reply(404, "text/plain", b"not found: GET /status or /metrics\n")
                return
            status = relay.status()
            if path == "/status":
                self._reply(200, "application/json", json.dumps(status).encode())
            else:
                self._reply(200, "text/plain; version=0.0.4", metrics_text(status).encode())

        def _reply(self, code: int, ctype: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: no line per request
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="relay-http", daemon=True).start()
    return server
