"""`edgesnn relay --sub tcp://A:5556 [--sub ...] --pub tcp://127.0.0.1:5560`: many daemons, one
endpoint for monitors (an XSUB/XPUB proxy; see edgesnn.relay)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time

log = logging.getLogger("edgesnn.relay")


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
    p.add_argument("--http", metavar="[HOST:]PORT",
                   help="serve GET /status (JSON) and GET /metrics (Prometheus) with the message "
                   "counts for monitors, e.g. 9100 (host 127.0.0.1) or 0.0.0.0:9100")
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
    if getattr(args, "http", None) and http_address(args.http) is None:
        return f"--http {args.http!r}: expected PORT or HOST:PORT, e.g. 127.0.0.1:9100"
    return None


def http_address(text: str) -> tuple[str, int] | None:
    """(host, port) of --http: PORT (on 127.0.0.1) or HOST:PORT; None when malformed."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]") if sep else "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536 or not host:
        return None
    return host, int(port)


def run(args: argparse.Namespace) -> int:
    import zmq

    from edgesnn import curve as zcurve
    from edgesnn.relay import Relay

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
    server = None
    if getattr(args, "http", None):
        from edgesnn.curve import is_loopback
        from edgesnn.relay import serve_http

        host, port = http_address(args.http) or ("127.0.0.1", 0)
        try:
            server = serve_http(relay, host, port)
        except OSError as e:
            relay.stop()
            print(f"relay: cannot serve HTTP on {args.http}: {e.strerror or e}", file=sys.stderr)
            return 2
        if not is_loopback(f"tcp://{host}:{port}"):
            log.warning("relay counts served on %s:%d, beyond loopback", host, port)
        log.info("relay counts on http://%s:%d/status and /metrics", host, port)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    last = time.monotonic()
    try:
        while not stop.wait(1.0) and relay.error is None:
            if args.stats_s and time.monotonic() - last >= args.stats_s:
                last = time.monotonic()
                st = relay.stats()
                log.info("relayed %d message(s), %d byte(s)", st.get("back_msgs_out", 0) // 2,
                         st.get("back_bytes_out", 0))
    finally:
        st = relay.stats()
        if server is not None:
            server.shutdown()
            server.server_close()
        relay.stop()
    log.info("relay stopped after %d message(s), %d byte(s)", st.get("back_msgs_out", 0) // 2,
             st.get("back_bytes_out", 0))
    return 1 if relay.error is not None else 0
