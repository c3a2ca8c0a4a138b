"""`edgesnn subscribe ENDPOINT`: print detections (and heartbeats) as JSON lines."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "subscribe",
        help="print a daemon's detections as JSON lines",
        description="Connect a ZeroMQ SUB socket to ENDPOINT and print one JSON object per "
        "message. Sequence gaps (lost messages) are reported on stderr.",
    )
    p.add_argument("endpoint", nargs="?", default="tcp://127.0.0.1:5556",
                   help="publisher endpoint (default tcp://127.0.0.1:5556)")
    p.add_argument("--topic", action="append", default=None, metavar="PREFIX",
                   help="topic prefix, e.g. det.demo or det.demo.left (default det.); repeatable")
    p.add_argument("--heartbeats", action="store_true", help="also print heartbeats (hb.*)")
    p.add_argument("--count", type=int, default=0, help="exit after N messages (0: never)")
    p.add_argument("--timeout", type=float, default=0.0,
                   help="exit when nothing arrives for this many seconds (0: wait forever)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgesnn.client import Subscriber

    def gap(pipeline: str, expected: int, got: int) -> None:
        print(f"edgesnn: {pipeline}: {got - expected} message(s) lost (seq {expected}..{got - 1})",
              file=sys.stderr)

    timeout = int(args.timeout * 1000) if args.timeout > 0 else None
    n = 0
    with Subscriber(args.endpoint, args.topic, args.heartbeats, gap, timeout) as sub:
        for msg in sub:
            sys.stdout.write(json.dumps(msg, separators=(",", ":"), default=str) + "\n")
            sys.stdout.flush()
            n += 1
            if args.count and n >= args.count:
                break
    return 0
