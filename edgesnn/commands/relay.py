"""`edgesnn relay --sub tcp://A:5556 [--sub ...] --pub tcp://127.0.0.1:5560`: many daemons, one
endpoint for monitors.

An XSUB socket connects to every daemon's PUB endpoint and an XPUB socket binds the one that
monitors subscribe to; libzmq's proxy (`zmq.proxy_steerable`) moves messages between them in C
and forwards the monitors' subscriptions upstream, so a daemon sends only what someone wants.
Messages are relayed unchanged: each keeps its topic and its pipeline's gap-free `seq`, so a
monitor detects loss per source as it would on a direct connection. Either side can use CURVE
(`edgesnn.curve`): `--curve-key`/`--server-key` towards CURVE daemons, `--pub-secret-key`/
`--pub-allowed-keys` for the monitors.
"""

from __future__ import annotations

import argparse
import logging
import signal
import struct
import sys
import threading
import time
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


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "relay",
        help="join many daemons' detection streams into one ZeroMQ endpoint",
        description="Connect to the ZeroMQ PUB endpoint of every daemon (--sub, repeatable) and "
        "republish everything on one endpoint (--pub) for monitors: an XSUB/XPUB proxy in "
        "libzmq. Topics and per-pipeline seq pass unchanged, subscriptions are forwarded "
        "upstream. Runs until SIGINT/SIGTERM; logs message counts every --stats-s.",
    )
    p.add_argument("--sub", action="append", required=True, metavar="ENDPOINT",
                   help="a daemon's publisher, e.g. tcp://192.0.2.7:5556 (repeatable)")
    p.add_argument("--pub", default="tcp://127.0.0.1:5560", metavar="ENDPOINT",
                   help="where monitors connect (bound; default tcp://127.0.0.1:5560)")
    p.add_argument("--curve-key", metavar="FILE",
                   help="CURVE towards the daemons: the relay's .key_secret file (its .key must "
                   "be in each daemon's curve_allowed_keys folder)")
    p.add_argument("--server-key", action="append", metavar="FILE|KEY",
                   help="CURVE: a daemon's public key; once for all --sub, or once per --sub in "
                   "the same order")
    p.add_argument("--pub-secret-key", metavar="FILE",
                   help="CURVE towards the monitors: the relay's own .key_secret file")
    p.add_argument("--pub-allowed-keys", metavar="DIR",
                   help="CURVE: folder of the monitors' public .key files allowed to connect")
    p.add_argument("--hwm", type=int, default=100_000,
                   help="messages queued per connection before ZeroMQ drops (default 100000)")
    p.add_argument("--stats-s", type=float, default=60.0,
                   help="log message counts every this many seconds (0: only at exit)")
    p.set_defaults(func=run)


def _problem(args: argparse.Namespace) -> str | None:
    from edgesnn.config.schema import check_zmq_endpoint

    for ep in [*args.sub, args.pub]:
        problem = check_zmq_endpoint(ep)
        if problem:
            return problem
    if any(ep.startswith("tcp://*") for ep in args.sub):
        return "--sub connects to a daemon's address; '*' only binds"
    if bool(args.curve_key) != bool(args.server_key):
        return "--curve-key and --server-key go together (CURVE towards the daemons needs both)"
    if args.server_key and len(args.server_key) not in (1, len(args.sub)):
        return (f"give --server-key once (every daemon) or once per --sub ({len(args.sub)}), "
                f"not {len(args.server_key)} times")
    if args.pub_allowed_keys and not args.pub_secret_key:
        return "--pub-allowed-keys needs --pub-secret-key (the relay's own key pair)"
    if args.hwm < 1 or args.stats_s < 0:
        return "--hwm must be positive and --stats-s not negative"
    return None


def run(args: argparse.Namespace) -> int:
    problem = _problem(args)
    clients: list[zcurve.CurveClient | None] = [None] * len(args.sub)
    server = None
    if problem is None:
        try:
            if args.curve_key:
                keys = args.server_key * len(args.sub) if len(args.server_key) == 1 \
                    else args.server_key
                clients = [zcurve.CurveClient.load(args.curve_key, k) for k in keys]
            if args.pub_secret_key:
                server = zcurve.CurveServer.load(args.pub_secret_key,
                                                 args.pub_allowed_keys or "")
        except zcurve.KeyFileError as e:
            problem = str(e)
    if problem:
        print(f"relay: {problem}", file=sys.stderr)
        return 2
    relay = Relay(args.sub, args.pub, clients, server, args.hwm)
    try:
        relay.start()
    except zmq.ZMQError as e:
        print(f"relay: cannot bind {args.pub}: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    last = time.monotonic()
    try:
        while not stop.wait(1.0) and relay.error is None:
            if args.stats_s and time.monotonic() - last >= args.stats_s:
                last = time.monotonic()
                st = relay.stats()
                log.info("relayed %d message(s), %d byte(s)", st.get("back_msgs_out", 0),
                         st.get("back_bytes_out", 0))
    finally:
        st = relay.stats()
        relay.stop()
    log.info("relay stopped after %d message(s), %d byte(s)", st.get("back_msgs_out", 0),
             st.get("back_bytes_out", 0))
    return 1 if relay.error is not None else 0
