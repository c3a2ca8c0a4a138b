"""A Zenoh subscriber in its own process, as a monitor would run it: prints one JSON line per
sample (key, encoding, decoded payload) until --count samples arrived or --timeout passed.

    python _zenoh_sub.py (--connect EP | --listen EP) [--mode peer|client] [--key KEYEXPR]
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import time

import msgpack
import zenoh


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--connect", action="append", default=[])
    p.add_argument("--listen", action="append", default=[])
    p.add_argument("--mode", default="peer")
    p.add_argument("--key", default="edgesnn/**")
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--timeout", type=float, default=60.0)
    a = p.parse_args()
    c = zenoh.Config()
    c.insert_json5("mode", json.dumps(a.mode))
    c.insert_json5("scouting/multicast/enabled", "false")
    if a.connect:
        c.insert_json5("connect/endpoints", json.dumps(a.connect))
    if a.listen:
        c.insert_json5("listen/endpoints", json.dumps(a.listen))
    got: queue.Queue[tuple[str, str, bytes]] = queue.Queue()
    with zenoh.open(c) as session:
        session.declare_subscriber(
            a.key, lambda s: got.put((str(s.key_expr), str(s.encoding), s.payload.to_bytes())))
        print("ready", flush=True)
        end = time.monotonic() + a.timeout
        n = 0
        while n < a.count:
            try:
                key, enc, payload = got.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                break
            msg = json.loads(payload) if "json" in enc else msgpack.unpackb(payload, raw=False)
            print(json.dumps({"key": key, "encoding": enc, "msg": msg}), flush=True)
            n += 1
    return 0 if n >= a.count else 3


if __name__ == "__main__":
    sys.exit(main())
