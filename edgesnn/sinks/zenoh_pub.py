"""Zenoh sink: detections and heartbeats on key expressions edgesnn/<device>/<pipeline>/...

Detections go to ``<prefix>/<device>/<pipeline>/det/<label>`` and heartbeats to
``<prefix>/<device>/<pipeline>/hb``; the payload is the msgpack map of the wire schema
(`edgesnn.wire`, encoding ``application/msgpack``) or the same map as JSON. The session runs in
peer mode (listening and/or connecting to explicit endpoints; without `listen` it listens on
loopback only, or not at all when it connects) or client mode (connecting to a
router, e.g. ``zenohd`` or ROS 2's ``rmw_zenohd``); multicast scouting is off unless asked for,
so nothing but the configured endpoints is contacted. `zenoh` (PyPI: eclipse-zenoh) is imported
when the sink starts, so pipelines without this sink never need it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import queue
import re
import socket
import threading
from typing import Any

from edgesnn import wire
from edgesnn.backoff import Backoff
from edgesnn.components import Sink, register
from edgesnn.config.schema import Field, Schema

log = logging.getLogger(__name__)

#: characters a Zenoh key-expression chunk cannot hold (wildcards, separators, verbatim marks)
_BAD_CHUNK = re.compile(r"[/*$?#\s]")
_LOCATOR = re.compile(r"^(?P<proto>[a-z][a-z0-9-]*)/(?P<addr>.+)$")
MSGPACK_ENCODING = "application/msgpack"
#: where a peer listens when `listen` is empty and it connects nowhere
LOOPBACK_LISTEN = "tcp/127.0.0.1:0"


def _short(e: BaseException) -> str:
    """A zenoh error without its Rust source location."""
    return " ".join(str(e).split(" at /")[0].split())[:200]


def key_chunk(text: str) -> str:
    """`text` as one key-expression chunk: '/', wildcards and blanks become '_'."""
    return _BAD_CHUNK.sub("_", text) or "_"


def det_key(prefix: str, device: str, pipeline: str, label: str) -> str:
    """Key expression of a detection: <prefix>/<device>/<pipeline>/det/<label>."""
    return f"{prefix}/{key_chunk(device)}/{key_chunk(pipeline)}/det/{key_chunk(label)}"


def hb_key(prefix: str, device: str, pipeline: str) -> str:
    """Key expression of a heartbeat: <prefix>/<device>/<pipeline>/hb."""
    return f"{prefix}/{key_chunk(device)}/{key_chunk(pipeline)}/hb"


def check_locator(value: str) -> str | None:
    """A Zenoh endpoint such as tcp/127.0.0.1:7447 or tls/host:7447; what is wrong, or None."""
    if "://" in value:
        proto, _, rest = value.partition("://")
        return f"{value!r}: Zenoh endpoints are written {proto}/{rest} (no '://')"
    m = _LOCATOR.match(value)
    if m is None:
        return f"{value!r} is not a Zenoh endpoint: expected PROTO/ADDRESS, e.g. tcp/127.0.0.1:7447"
    if m.group("proto") in ("tcp", "udp", "tls", "quic", "ws") \
            and not re.search(r":\d{1,5}$", m.group("addr").split("#")[0]):
        return f"{value!r}: {m.group('proto')}/ endpoints need HOST:PORT"
    return None


def is_loopback(locator: str) -> bool:
    """True for a Zenoh endpoint on 127.0.0.0/8, ::1 or localhost, or a Unix socket."""
    m = _LOCATOR.match(locator)
    if m is None:
        return False
    if m.group("proto").startswith("unixsock"):
        return True
    host = m.group("addr").split("#")[0].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name or an interface: reachable from elsewhere
        return False


def _locators(values: list[str]) -> str | None:
    for v in values:
        problem = check_locator(v)
        if problem:
            return problem
    return None


def _prefix(value: str) -> str | None:
    if not value or value.startswith("/") or value.endswith("/") or "//" in value \
            or re.search(r"[*$?#\s]", value):
        return (f"{value!r}: a key prefix is one or more non-empty chunks joined by '/', "
                "without wildcards (e.g. edgesnn or site1/edgesnn)")
    return None


@register
class ZenohPubSink(Sink):
    """Publishes detections and heartbeats through a Zenoh session (peer or client mode)."""

    type_name = "zenoh"
    summary = ("Zenoh publisher: <prefix>/<device>/<pipeline>/det/<label> and .../hb "
               "(msgpack or JSON; needs edgesnn[zenoh]).")
    schema = Schema(
        {
            "mode": Field(str, default="peer", choices=("peer", "client"),
                          doc="peer: talk to peers directly; client: go through a Zenoh router."),
            "connect": Field(("list", str), default=[], check=_locators,
                             doc="Endpoints to connect to, e.g. [\"tcp/192.0.2.7:7447\"] (a "
                             "router in client mode, or peers)."),
            "listen": Field(("list", str), default=[], check=_locators,
                            doc="Endpoints to listen on in peer mode, e.g. "
                            "[\"tcp/127.0.0.1:7447\"]; subscribers connect there. Empty: "
                            "no listener when `connect` is given, else tcp/127.0.0.1:0 "
                            "(never Zenoh's own default, every interface)."),
            "device": Field(str, default="",
                            doc="Device name in the key expressions ('' = this host's name)."),
            "prefix": Field(str, default="edgesnn", check=_prefix,
                            doc="First chunk(s) of every key expression."),
            "format": Field(str, default="msgpack", choices=("msgpack", "json"),
                            doc="Payload: the wire schema's msgpack map, or the same map as "
                            "JSON."),
            "heartbeats": Field(bool, default=True, doc="Also publish heartbeats on .../hb."),
            "express": Field(bool, default=True,
                             doc="Send each message at once instead of batching (lower latency)."),
            "queue": Field(int, default=10_000, min=1, max=10_000_000,
                           doc="Messages waiting for the sending thread; past this the newest "
                           "is dropped and counted (the pipeline never waits for Zenoh)."),
            "congestion": Field(str, default="block", choices=("block", "drop"),
                                doc="When Zenoh's transmit queue is full: block (the sending "
                                "thread waits, `queue` absorbs the stall) or drop (after "
                                "drop_wait_ms; seq shows the gap)."),
            "drop_wait_ms": Field(float, default=20.0, min=0.0, max=1000.0,
                                  doc="With congestion = \"drop\": how long a full transmit "
                                  "queue may hold a message before it is dropped (Zenoh's own "
                                  "default, 1 ms, drops under CPU load)."),
            "multicast_scouting": Field(bool, default=False,
                                        doc="Discover peers/routers by UDP multicast too."),
            "config_file": Field(str, default="",
                                 doc="A Zenoh JSON5 config file to start from (TLS or mTLS "
                                 "certificates, access control, ...; relative to the pipeline); "
                                 "the keys above override it."),
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self.device = params["device"] or socket.gethostname().split(".")[0] or "device"
        self._session: Any = None
        self._publishers: dict[str, Any] = {}
        self._connect_task: asyncio.Task[None] | None = None
        self._listen: list[str] | None = None
        self.sent = 0
        self.heartbeats = 0
        self.errors = 0
        self.not_connected = 0
        self.connect_failures = 0
        self.dropped = 0
        self.last_error = ""
        #: (key, payload, is heartbeat) for the sending thread; None stops it
        self._queue: queue.Queue[tuple[str, bytes, bool] | None] = queue.Queue(params["queue"])
        self._writer: threading.Thread | None = None
        self._stopping = False

    @classmethod
    def claims(cls, params: dict[str, Any], base_dir: str
               ) -> list[tuple[tuple[str, str, str], str, str]]:
        """Each fixed-port `listen` endpoint (tcp/tls/ws on TCP, udp/quic on UDP) or Unix
        socket: two pipelines of one daemon cannot listen on the same one."""
        out = []
        for ep in params.get("listen") or []:
            m = _LOCATOR.match(ep)
            if m is None:
                continue
            proto, addr = m.group("proto"), m.group("addr").split("#")[0]
            if proto.startswith("unixsock"):
                path = os.path.abspath(os.path.join(base_dir, addr))
                out.append((("unix", path, ""), "listen", f"Zenoh listener {ep}"))
                continue
            host, _, port = addr.rpartition(":")
            if port.isdigit() and int(port) != 0:
                out.append((("udp" if proto in ("udp", "quic") else "tcp", host, port), "listen",
                            f"Zenoh listener {ep}"))
        return out

    def check(self, inputs: list[Any]) -> list[str]:
        p = self.params
        problems = []
        if p["mode"] == "client" and not p["connect"] and not p["multicast_scouting"]:
            problems.append("client mode needs a router: give connect = [\"tcp/HOST:7447\"] "
                            "(or multicast_scouting = true)")
        if p["mode"] == "client" and p["listen"]:
            problems.append("listen is for peer mode; a client only connects")
        if p["config_file"]:
            try:
                self.config()
            except ImportError:
                pass  # checked when the sink starts, with the install hint
            except Exception as e:
                problems.append(f"config_file: {self._config_path()}: {_short(e)}")
        return problems

    def _config_path(self) -> str:
        path = os.path.expanduser(self.params["config_file"])
        return path if os.path.isabs(path) else os.path.join(self.ctx.base_dir, path)

    def config(self) -> Any:
        """The zenoh.Config of this sink (explicit endpoints, scouting off unless asked)."""
        import zenoh

        p = self.params
        c = zenoh.Config.from_file(self._config_path()) if p["config_file"] else zenoh.Config()
        c.insert_json5("mode", json.dumps(p["mode"]))
        c.insert_json5("scouting/multicast/enabled", json.dumps(p["multicast_scouting"]))
        if p["connect"]:
            c.insert_json5("connect/endpoints", json.dumps(p["connect"]))
        listen = self._listen = self.listen_endpoints(c)
        if listen is not None:
            c.insert_json5("listen/endpoints", json.dumps(listen))
        c.insert_json5("transport/link/tx/queue/congestion_control/drop/wait_before_drop",
                       str(int(p["drop_wait_ms"] * 1000)))
        return c

    def listen_endpoints(self, c: Any) -> list[str] | None:
        """What the session listens on: `listen`; in peer mode without it, nothing when
        connecting and tcp/127.0.0.1:0 otherwise (Zenoh's own default, tcp/[::]:0, is every
        interface); None keeps a config file's explicit list."""
        p = self.params
        if p["listen"]:
            return list(p["listen"])
        if p["mode"] != "peer":
            return None
        if p["config_file"] and isinstance(json.loads(c.get_json("listen/endpoints")), list):
            return None  # set by the file (Zenoh's default is a table per mode)
        return [] if p["connect"] else [LOOPBACK_LISTEN]

    def warn_if_exposed(self) -> list[str]:
        """Log a warning when an endpoint is not on loopback and no config file (TLS, access
        control) secures the session; the exposed endpoints."""
        p = self.params
        exposed = [ep for ep in p["listen"] + p["connect"] if not is_loopback(ep)]
        if exposed and not p["config_file"]:
            log.warning("zenoh sink %s: %s %s not on loopback and no config_file secures the "
                        "session (TLS, access control): detections travel unencrypted and any "
                        "peer that reaches it can read them", self.id, ", ".join(exposed),
                        "is" if len(exposed) == 1 else "are")
        return exposed

    async def start(self) -> None:
        try:
            import zenoh  # noqa: F401
        except ImportError as e:
            raise ImportError(
                "the zenoh sink needs eclipse-zenoh: pip install 'edgesnn[zenoh]'", name="zenoh"
            ) from e
        self.warn_if_exposed()
        cfg = self.config()
        try:
            self._session = await asyncio.to_thread(self._open, cfg)
        except Exception as e:
            if self.params["mode"] != "client":
                raise OSError(f"zenoh session cannot open: {e}") from e
            # a client whose router is not up yet keeps trying; messages until then are counted
            self._failed(e)
            self._connect_task = asyncio.create_task(self._reconnect(cfg), name=f"{self.id}-zenoh")
            return
        self._opened()

    @staticmethod
    def _open(cfg: Any) -> Any:
        import zenoh

        return zenoh.open(cfg)

    def _opened(self) -> None:
        self._writer = threading.Thread(target=self._write, name=f"zenoh-{self.id}", daemon=True)
        self._writer.start()
        where = ", ".join((self._listen or []) + self.params["connect"]) or "scouting"
        log.info("zenoh %s session %s publishing edgesnn/%s/... (%s)", self.params["mode"],
                 self._session.zid(), self.device, where)

    def _failed(self, e: Exception) -> None:
        self.connect_failures += 1
        self.last_error = _short(e)
        if self.connect_failures == 1:
            log.warning("zenoh router not reachable (%s); retrying", self.last_error)

    async def _reconnect(self, cfg: Any) -> None:
        backoff = Backoff(initial_s=0.2, max_s=10.0)
        while self._session is None:
            await backoff.sleep()
            try:
                self._session = await asyncio.to_thread(self._open, cfg)
            except Exception as e:
                self._failed(e)
        self._opened()

    def _publisher(self, key: str) -> Any:
        pub = self._publishers.get(key)
        if pub is None:
            import zenoh

            p = self.params
            pub = self._session.declare_publisher(
                key,
                encoding=zenoh.Encoding.APPLICATION_JSON if p["format"] == "json"
                else zenoh.Encoding(MSGPACK_ENCODING),
                congestion_control=zenoh.CongestionControl.BLOCK
                if p["congestion"] == "block" else zenoh.CongestionControl.DROP,
                express=p["express"],
            )
            self._publishers[key] = pub
        return pub

    def _payload(self, message: dict[str, Any]) -> bytes:
        if self.params["format"] == "json":
            return json.dumps(message, separators=(",", ":"), default=str).encode()
        return wire.pack(message)

    def _write(self) -> None:
        """The sending thread: Zenoh puts (which may wait on a full link) off the event loop."""
        while True:
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self._stopping:
                    break
                continue
            if item is None:
                break
            key, payload, hb = item
            if self._session is None:  # closed by stop() while this was queued
                self.dropped += 1
                continue
            try:
                self._publisher(key).put(payload)
            except Exception as e:  # a closed session or a refused put never stops the pipeline
                self.errors += 1
                self.last_error = _short(e)
                continue
            if hb:
                self.heartbeats += 1
            else:
                self.sent += 1
        for pub in self._publishers.values():
            with contextlib.suppress(Exception):
                pub.undeclare()
        self._publishers.clear()

    def _put(self, key: str, message: dict[str, Any], hb: bool) -> None:
        if self._session is None or self._writer is None:
            self.not_connected += 1
            return
        try:
            self._queue.put_nowait((key, self._payload(message), hb))
        except queue.Full:
            self.dropped += 1

    async def send(self, message: dict[str, Any]) -> None:
        key = det_key(self.params["prefix"], self.device, message["pipeline"], message["label"])
        self._put(key, message, False)

    async def heartbeat(self, message: dict[str, Any]) -> None:
        if self.params["heartbeats"]:
            self._put(hb_key(self.params["prefix"], self.device, message["pipeline"]), message,
                      True)

    async def stop(self) -> None:
        if self._connect_task is not None:
            self._connect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._connect_task
            self._connect_task = None
        writer, self._writer = self._writer, None
        self._stopping = True
        if writer is not None:  # send what is queued (up to 2 s), then stop the thread
            with contextlib.suppress(queue.Full):
                await asyncio.to_thread(self._queue.put, None, True, 2.0)
            await asyncio.to_thread(writer.join, 2.0)
        if self._session is not None:
            session, self._session = self._session, None
            with contextlib.suppress(Exception):
                await asyncio.to_thread(session.close)  # also ends a put stuck on a dead link
        if writer is not None and writer.is_alive():
            await asyncio.to_thread(writer.join, 2.0)

    def status(self) -> dict[str, Any]:
        return {"mode": self.params["mode"], "device": self.device,
                "connected": self._session is not None, "sent": self.sent,
                "heartbeats": self.heartbeats, "send_errors": self.errors,
                "not_connected": self.not_connected, "connect_failures": self.connect_failures,
                # the outbox_* names of the broker sinks: /metrics shows them, and they do not
                # shadow the runtime's own dropped / queue_depth of the input channel
                "outbox_depth": self._queue.qsize(), "outbox_capacity": self.params["queue"],
                "outbox_dropped": self.dropped,
                "last_error": self.last_error}
