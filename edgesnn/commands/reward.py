"""`edgesnn reward VALUE`: send a reward to a running daemon (ZeroMQ reward socket or HTTP)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reward",
        help="send a reward to a running daemon's reward-modulated STDP",
        description="Send a reward (a number, negative for punishment) to the rstdp projections "
        "of a running daemon, over its ZeroMQ reward socket ([reward] endpoint of the pipeline) "
        "or over its HTTP API (POST /control/<component>/reward with the bearer token). Prints "
        "the daemon's reply as JSON; exit code 0 when the reward was taken, 1 when refused, 2 "
        "when the daemon cannot be reached.",
    )
    p.add_argument("value", type=float, help="reward value, e.g. 1 or -0.5")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--endpoint", help="ZeroMQ reward endpoint, e.g. tcp://127.0.0.1:5557")
    where.add_argument("--pipeline", help="pipeline file (or shipped name) to read [reward] from")
    where.add_argument("--http", metavar="URL", help="daemon HTTP API, e.g. http://127.0.0.1:8765")
    p.add_argument("--component", help="network component id (default: every network)")
    p.add_argument("--projection", help="one projection, 'source->target' (default: all rstdp)")
    p.add_argument("--token-env", default="EDGESNN_TOKEN",
                   help="environment variable holding the HTTP bearer token (EDGESNN_TOKEN)")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the reply")
    p.add_argument("--curve-key", metavar="FILE",
                   help="CURVE: this sender's .key_secret file, for a reward socket with "
                   "curve_secret_key (no reply within --timeout when the key is not allowed)")
    p.add_argument("--server-key", metavar="FILE|KEY",
                   help="CURVE: the reward socket's public key (.key file or Z85 text)")
    p.set_defaults(func=run)


def _endpoint(args: argparse.Namespace) -> str | None:
    if args.endpoint:
        return str(args.endpoint)
    if args.pipeline:
        from edgesnn.config import pipeline as pl
        from edgesnn.errors import ConfigError

        try:
            cfg = pl.load(args.pipeline)
        except ConfigError as e:
            print(f"{args.pipeline}: invalid pipeline", file=sys.stderr)
            for prob in e.problems:
                print(f"  {prob}", file=sys.stderr)
            return None
        ep = pl.REWARD_SCHEMA.validate(cfg.raw.get("reward", {}), "reward", []).get("endpoint")
        if not ep:
            print(f"{args.pipeline}: no [reward] endpoint configured", file=sys.stderr)
            return None
        return str(ep)
    print("give --endpoint, --pipeline or --http", file=sys.stderr)
    return None


def _via_http(args: argparse.Namespace) -> int:
    if not args.component:
        print("--http needs --component (the network's id)", file=sys.stderr)
        return 2
    body: dict[str, object] = {"value": args.value}
    if args.projection:
        body["projection"] = args.projection
    url = f"{args.http.rstrip('/')}/control/{args.component}/reward"
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    token = os.environ.get(args.token_env)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=args.timeout) as r:
            print(r.read().decode())
            return 0
    except urllib.error.HTTPError as e:
        print(e.read().decode() or str(e))
        return 1
    except (urllib.error.URLError, OSError) as e:
        print(f"cannot reach {url}: {e}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    if args.http:
        return _via_http(args)
    endpoint = _endpoint(args)
    if endpoint is None:
        return 2
    from edgesnn.curve import CurveClient, KeyFileError
    from edgesnn.learning.reward import send_reward

    keys = None
    if bool(args.curve_key) != bool(args.server_key):
        print("--curve-key and --server-key go together (CURVE needs both)", file=sys.stderr)
        return 2
    if args.curve_key:
        try:
            keys = CurveClient.load(args.curve_key, args.server_key)
        except KeyFileError as e:
            print(str(e), file=sys.stderr)
            return 2
    try:
        reply = send_reward(endpoint, args.value, args.component, args.projection, args.timeout,
                            curve=keys)
    except TimeoutError as e:
        print(str(e), file=sys.stderr)
        return 2
    print(json.dumps(reply, default=str))
    return 0 if reply.get("ok") else 1
