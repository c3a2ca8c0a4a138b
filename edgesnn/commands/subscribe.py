"""`edgesnn subscribe ENDPOINT`: print detections (and heartbeats) as JSON lines.

Exit codes: 0 after --count messages, or after --timeout seconds of silence once something
arrived; 2 for a bad endpoint or option; 3 when nothing at all arrived within --timeout (no
daemon there, or nothing published on the topics). Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "subscribe",
        help="print a daemon's detections as JSON lines",
        description="Connect a ZeroMQ SUB socket to ENDPOINT and print one JSON object per "
        "message. Sequence gaps (lost messages) are reported on stderr. Exit 0 after --count "
        "messages or --timeout seconds of silence after the first message; 2 for a bad "
        "endpoint; 3 when nothing arrived within --timeout.",
    )
    p.add_argument("endpoint", nargs="?", default="tcp://127.0.0.1:5556",
                   help="publisher endpoint (default tcp://127.0.0.1:5556)")
    p.add_argument("--topic", action="append", default=None, metavar="PREFIX",
                   help="topic prefix, e.g. det.demo or det.demo.left (default det.); repeatable")
    p.add_argument("--heartbeats", action="store_true", help="also print heartbeats (hb.*)")
    p.add_argument("--count", type=int, default=0, help="exit after N messages (0: never)")
    p.add_argument("--timeout", type=float, default=0.0,
                   help="exit when nothing arrives for this many seconds (0: wait forever); "
                   "exit code 3 when nothing arrived at all")
    p.add_argument("--curve-key", metavar="FILE",
                   help="CURVE: this subscriber's .key_secret file (edgesnn keys generate), for "
                   "a publisher with curve_secret_key; needs --server-key")
    p.add_argument("--server-key", metavar="FILE|KEY",
                   help="CURVE: the publisher's public key (its .key file or the Z85 text)")
    p.add_argument("--mqtt", metavar="BROKER",
                   help="read from an MQTT broker instead (HOST[:PORT], mqtts://HOST for TLS): "
                   "the mqtt sink's topics, --topic filters default edgesnn/+/+/det/#, "
                   "--heartbeats adds .../hb and .../status; QoS 1 duplicates are dropped")
    p.add_argument("--zenoh", action="append", metavar="ENDPOINT",
                   help="read from Zenoh instead: connect to ENDPOINT (tcp/HOST:7447: a zenoh "
                   "sink's listen endpoint or a router; repeatable); --topic takes key "
                   "expressions (default edgesnn/*/*/det/**), --heartbeats adds edgesnn/*/*/hb")
    p.set_defaults(func=run)


#: exit code when --timeout passed without a single message
NOTHING_RECEIVED = 3


def run(args: argparse.Namespace) -> int:
    if args.mqtt:
        from edgesnn.mqtt_client import run_cli

        return run_cli(args.mqtt, args.topic, args.heartbeats, args.count, args.timeout)
    if getattr(args, "zenoh", None):
        from edgesnn.zenoh_client import run_cli as zenoh_cli

        return zenoh_cli(args.zenoh, args.topic, args.heartbeats, args.count, args.timeout)
    import zmq

    from edgesnn.client import Subscriber
    from edgesnn.config.schema import check_zmq_endpoint

    problem = check_zmq_endpoint(args.endpoint)
    if problem is None and args.endpoint.startswith("tcp://*:"):
        problem = f"{args.endpoint!r}: '*' binds; a subscriber connects to the daemon's address"
    if problem is None and (args.count < 0 or args.timeout < 0):
        problem = "--count and --timeout must not be negative"
    if problem is None and bool(args.curve_key) != bool(args.server_key):
        problem = "--curve-key and --server-key go together (CURVE needs both)"
    keys = None
    if problem is None and args.curve_key:
        from edgesnn.curve import CurveClient, KeyFileError

        try:
            keys = CurveClient.load(args.curve_key, args.server_key)
        except KeyFileError as e:
            problem = str(e)
    if problem:
        print(f"subscribe: {problem}", file=sys.stderr)
        return 2

    def gap(pipeline: str, expected: int, got: int) -> None:
        print(f"edgesnn: {pipeline}: {got - expected} message(s) lost (seq {expected}..{got - 1})",
              file=sys.stderr)

    timeout = int(args.timeout * 1000) if args.timeout > 0 else None
    n = 0
    try:
        with Subscriber(args.endpoint, args.topic, args.heartbeats, gap, timeout,
                        curve=keys) as sub:
            for msg in sub:
                sys.stdout.write(json.dumps(msg, separators=(",", ":"), default=str) + "\n")
                sys.stdout.flush()
                n += 1
                if args.count and n >= args.count:
                    break
    except zmq.ZMQError as e:
        print(f"subscribe: cannot connect to {args.endpoint}: {e}", file=sys.stderr)
        return 2
    if n == 0 and timeout is not None:
        topics = ", ".join(args.topic or ["det."]) + (" and hb." if args.heartbeats else "")
        print(f"subscribe: nothing received from {args.endpoint} on {topics} within "
              f"{args.timeout:g} s (is a daemon publishing there?"
              + (" does it allow this --curve-key?" if keys else "") + ")", file=sys.stderr)
        return NOTHING_RECEIVED
    return 0
