#!/usr/bin/env python3
"""Latency of the fleet paths on loopback: ZeroMQ direct, direct with CURVE, through
`edgesnn relay` (plain and CURVE on both sides), and Zenoh (peer).

    python3 tools/fleet_latency.py [--n 2000] [--rate 500] [--paths direct,relay,zenoh]

The publisher is the real sink (`zmq_pub` or `zenoh`) in this process, sending wire-schema
detections at --rate; the subscriber is another process (`--child`), as a monitor would be; a
relay is an `edgesnn relay` process. Each message carries CLOCK_MONOTONIC at publish (shared by
the processes of one host); the subscriber takes the difference on arrival. Prints p50, p90,
p99 and max per path, and the p50/p99 added to ZeroMQ direct.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the subscriber process -------------------------------------------------------------------

def child(kind: str, endpoint: str, n: int, curve_key: str, server_key: str) -> int:
    """Receive n timed messages; print one JSON line of latency percentiles (µs)."""
    import numpy as np

    lat: list[int] = []
    seqs: list[int] = []
    started: list[bool] = []

    def take(msg: dict[str, Any]) -> bool:
        now = time.monotonic_ns()
        if msg.get("warmup"):
            if not started:
                started.append(True)
                print("go", flush=True)
            return False
        lat.append(now - msg["t_mono_ns"])
        seqs.append(msg["seq"])
        return msg["seq"] >= n - 1

    if kind == "zmq":
        from edgesnn.client import Subscriber
        from edgesnn.curve import CurveClient

        keys = CurveClient.load(curve_key, server_key) if curve_key else None
        with Subscriber(endpoint, timeout_ms=30_000, curve=keys) as sub:
            print("ready", flush=True)
            while True:
                try:
                    if take(sub.recv()):
                        break
                except TimeoutError:
                    break
    else:
        import queue

        import msgpack
        import zenoh

        c = zenoh.Config()
        c.insert_json5("mode", '"peer"')
        c.insert_json5("scouting/multicast/enabled", "false")
        c.insert_json5("connect/endpoints", json.dumps([endpoint]))
        q: queue.Queue[tuple[int, bytes]] = queue.Queue()
        with zenoh.open(c) as s:
            s.declare_subscriber("edgesnn/**/det/**",
                                 lambda smp: q.put((time.monotonic_ns(),
                                                    smp.payload.to_bytes())))
            print("ready", flush=True)
            while True:
                try:
                    t, payload = q.get(timeout=30 if not lat else 5)
                except queue.Empty:
                    break
                msg = msgpack.unpackb(payload, raw=False)
                if msg.get("warmup"):
                    take(msg)
                    continue
                lat.append(t - msg["t_mono_ns"])
                seqs.append(msg["seq"])
                if msg["seq"] >= n - 1:
                    break
    us = np.array(lat) / 1000.0
    gaps = n - len(seqs)  # every one of seq 0..n-1 not received
    print(json.dumps({"n": len(us), "gaps": gaps, "p50": float(np.percentile(us, 50)),
                      "p90": float(np.percentile(us, 90)), "p99": float(np.percentile(us, 99)),
                      "max": float(us.max())}), flush=True)
    return 0


# --- the publisher side -----------------------------------------------------------------------

def _sink(kind: str, params: dict[str, Any]) -> Any:
    from edgesnn.components import BuildContext

    if kind == "zmq":
        from edgesnn.sinks.zmq_pub import ZmqPubSink as cls
    else:
        from edgesnn.sinks.zenoh_pub import ZenohPubSink as cls
    return cls("out", cls.schema.validate(params, "sinks.out", []), BuildContext())


async def _publish(sink: Any, sub: subprocess.Popen[str], n: int, rate: float) -> None:
    base = {"v": 1, "kind": "det", "pipeline": "lat", "label": "x", "score": 1.0,
            "source": "r", "t_sensor_us": 0, "extra": {"counts": [1, 2, 3]}}
    assert sub.stdout is not None
    loop = asyncio.get_running_loop()
    go = loop.run_in_executor(None, sub.stdout.readline)  # "go": the path is joined
    while not go.done():
        await sink.send({**base, "seq": -1, "warmup": True, "t_mono_ns": time.monotonic_ns()})
        await asyncio.sleep(0.02)
    assert (await go).strip() == "go", "subscriber did not start"
    await asyncio.sleep(0.2)
    period = 1.0 / rate
    t0 = time.perf_counter()
    for seq in range(n):  # the subscriber stops at seq n-1 (or after 5 s of silence)
        await sink.send({**base, "seq": seq, "t_emit_us": time.time_ns() // 1000,
                         "t_mono_ns": time.monotonic_ns()})
        delay = t0 + (seq + 1) * period - time.perf_counter()
        await asyncio.sleep(max(0.0, delay))


def _spawn_child(kind: str, endpoint: str, n: int, keys: tuple[str, str] | None = None
                 ) -> subprocess.Popen[str]:
    args = [sys.executable, __file__, "--child", kind, endpoint, str(n)]
    if keys:
        args += ["--curve-key", keys[0], "--server-key", keys[1]]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return p


def measure(path: str, n: int, rate: float, keydir: Path) -> dict[str, Any]:
    """Run one path; its latency summary."""
    relay = None
    k = keydir
    if path.startswith("zenoh"):
        port = _free_port()
        sink = _sink("zenoh", {"listen": [f"tcp/127.0.0.1:{port}"], "device": "bench"})
        sub_args: tuple[Any, ...] = ("zenoh", f"tcp/127.0.0.1:{port}", n)
    else:
        pub = f"tcp://127.0.0.1:{_free_port()}"
        curve = path.endswith("curve")
        params: dict[str, Any] = {"endpoint": pub, "sndhwm": 100_000}
        if curve:
            params |= {"curve_secret_key": str(k / "daemon.key_secret"),
                       "curve_allowed_keys": str(k / "allowed")}
        sink = _sink("zmq", params)
        sub_ep = pub
        keys = (str(k / "monitor.key_secret"), str(k / "daemon.key")) if curve else None
        if path.startswith("relay"):
            sub_ep = f"tcp://127.0.0.1:{_free_port()}"
            cmd = [sys.executable, "-m", "edgesnn", "-q", "relay", "--sub", pub, "--pub", sub_ep,
                   "--stats-s", "0"]
            if curve:
                cmd += ["--curve-key", str(k / "relay.key_secret"), "--server-key",
                        str(k / "daemon.key"), "--pub-secret-key", str(k / "relay.key_secret"),
                        "--pub-allowed-keys", str(k / "allowed")]
                keys = (str(k / "monitor.key_secret"), str(k / "relay.key"))
            relay = subprocess.Popen(cmd)
        sub_args = ("zmq", sub_ep, n, keys)

    async def run() -> dict[str, Any]:
        await sink.start()
        sub = _spawn_child(*sub_args)
        try:
            await _publish(sink, sub, n, rate)
            out, _ = await asyncio.to_thread(sub.communicate, timeout=120)
        finally:
            if sub.poll() is None:
                sub.kill()
            await sink.stop()
        return json.loads(out.strip().splitlines()[-1])

    try:
        return asyncio.run(run())
    finally:
        if relay is not None:
            relay.terminate()
            relay.wait(10)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000, help="timed messages per path")
    p.add_argument("--rate", type=float, default=500.0, help="messages per second")
    p.add_argument("--paths", default="direct,direct-curve,relay,relay-curve,zenoh")
    p.add_argument("--repeat", type=int, default=1, help="runs per path (percentiles of each)")
    p.add_argument("--child", nargs=3, metavar=("KIND", "ENDPOINT", "N"), help=argparse.SUPPRESS)
    p.add_argument("--curve-key", default="", help=argparse.SUPPRESS)
    p.add_argument("--server-key", default="", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        return child(a.child[0], a.child[1], int(a.child[2]), a.curve_key, a.server_key)
    import shutil

    import zmq.auth

    with tempfile.TemporaryDirectory() as tmp:
        k = Path(tmp)
        for name in ("daemon", "relay", "monitor"):
            zmq.auth.create_certificates(k, name)
        (k / "allowed").mkdir()
        for name in ("relay", "monitor"):
            shutil.copy(k / f"{name}.key", k / "allowed")
        results: dict[str, list[dict[str, Any]]] = {}
        for _ in range(a.repeat):
            for path in a.paths.split(","):
                results.setdefault(path, []).append(measure(path, a.n, a.rate, k))
    print(f"{a.n} detections per run at {a.rate:g}/s, {a.repeat} run(s) per path; latency "
          "publish -> subscriber process, µs")
    print(f"{'path':<14}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>10}{'gaps':>6}"
          f"{'+p50':>9}{'+p99':>9}")
    ref = results.get("direct")
    for path, runs in results.items():
        for i, r in enumerate(runs):
            add = ""
            if ref and path != "direct":
                add = f"{r['p50'] - ref[i]['p50']:>9.0f}{r['p99'] - ref[i]['p99']:>9.0f}"
            print(f"{path:<14}{r['p50']:>9.0f}{r['p90']:>9.0f}{r['p99']:>9.0f}{r['max']:>10.0f}"
                  f"{r['gaps']:>6}{add}")
    if a.repeat > 1:
        from statistics import median

        print(f"median of {a.repeat} runs (added: median of the per-run differences to direct)")
        for path, runs in results.items():
            line = (f"{path:<14}p50 {median(r['p50'] for r in runs):>6.0f}   "
                    f"p99 {median(r['p99'] for r in runs):>7.0f}   "
                    f"gaps {sum(r['gaps'] for r in runs)}")
            if ref and path != "direct":
                d50 = median(r["p50"] - f["p50"] for r, f in zip(runs, ref))
                d99 = median(r["p99"] - f["p99"] for r, f in zip(runs, ref))
                line += f"   added p50 {d50:>5.0f}   added p99 {d99:>6.0f}"
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
