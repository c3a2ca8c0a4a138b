"""Flood a running `edgesnn run` daemon's `dvs_udp` driver at a multiple of its capacity and
check that the loss it counts is the true loss, with bounded memory.

    python tools/udp_flood.py [--seconds 30] [--factor 10] [--max-pending 1024] [--json]

Starts a daemon (subprocess) running a real pipeline on loopback: `dvs_udp` -> `dvs_pool` ->
`snn` (motion_direction) -> `spike_count` -> `zmq_pub`, HTTP API on. Datagrams are 512
bytes in the AEStream layout, all events inside the sensor: 128 events without timestamps, or
with `--timestamps` 64 events each followed by the sender's µs clock.

1. Capacity: a 1 s overload; capacity = events that reached the encoder per second.
2. Flood: `--factor` x capacity for `--seconds`, paced every millisecond; the daemon's RSS is
   sampled meanwhile. Then the pipeline is left to drain until its counters stop moving.

Counts of the flood phase (deltas of /status): sent events; processed = events the encoder
took in; true loss = sent - processed; counted loss = the datagrams the kernel dropped for the
socket x events per datagram + the driver's own drops (overflow, malformed, out of range). The
encoder's channel (`block`, the default) drops nothing; its drop count is printed to show it.
Prints them, the relative error of the counted loss, the RSS before / peak / after, and whether
/metrics agrees with /status. Exit 1 when the counted loss is off by more than 1 % of the true
loss.

`--max-pending` is the driver's `max_pending_events`: it bounds what one batch period admits,
so capacity is at most about max_pending / batch period; 0 keeps the driver's default (about
a million events: then the SNN and the event loop set the capacity).
tests/hardening/test_udp_flood.py runs this for 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PER_DATAGRAM = 128
PROBE_S = 1.0

PIPELINE = """
[pipeline]
name = "flood"
dt_us = 1000

[drivers.camera]
type = "dvs_udp"
port = {udp}
sensor = [64, 64]
batch_us = {batch_us}
{pending}
rcvbuf_bytes = {rcvbuf}

[encoders.pooled]
type = "dvs_pool"
inputs = ["camera"]
sensor = [64, 64]
grid = [16, 16]
buffer_bytes = {buffer_bytes}

[networks.motion]
type = "snn"
inputs = ["pooled"]
builder = "motion_direction"
builder_params = {{ grid = [16, 16] }}

[readouts.direction]
type = "spike_count"
inputs = ["motion"]
labels = ["left", "right", "up", "down"]
window_ms = 50.0

[sinks.zmq]
type = "zmq_pub"
inputs = ["direction"]
endpoint = "tcp://127.0.0.1:{zmq}"

[http]
enabled = true
port = {http}
"""


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def datagram(t_us: int | None, per: int) -> bytes:
    """`per` events spread over the 64 x 64 sensor: without timestamps (stamped on arrival),
    or each followed by the timestamp word `t_us` (µs, wrapping at 2^32)."""
    i = np.arange(per, dtype=np.uint32)
    x, y, p = (i * 7) % 64, (i * 13) % 64, i & 1
    w = (x << 16) | (p << 15) | y
    if t_us is None:
        return (w | np.uint32(0x80000000)).astype("<u4").tobytes()
    rec = np.empty((per, 2), "<u4")
    rec[:, 0], rec[:, 1] = w, t_us & 0xFFFFFFFF
    return rec.tobytes()


class Daemon:
    def __init__(self, workdir: Path, args: argparse.Namespace):
        self.udp, http = free_port(socket.SOCK_DGRAM), free_port()
        pending = f"max_pending_events = {args.max_pending}" if args.max_pending else ""
        text = PIPELINE.format(udp=self.udp, http=http, zmq=free_port(), pending=pending,
                               batch_us=args.batch_us, rcvbuf=args.rcvbuf,
                               buffer_bytes=args.buffer_bytes)
        self.path = workdir / "flood.toml"
        self.path.write_text(text, encoding="utf-8")
        self.base = f"http://127.0.0.1:{http}"
        self.log = open(workdir / "daemon.log", "w", encoding="utf-8")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edgesnn", "run", str(self.path)],
            stdout=subprocess.DEVNULL, stderr=self.log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.base + path, timeout=60) as r:
            return bytes(r.read())

    def status(self) -> dict[str, Any]:
        return dict(json.loads(self.get("/status")))

    def wait_running(self, timeout_s: float) -> None:
        until = time.monotonic() + timeout_s
        while time.monotonic() < until:
            if self.proc.poll() is not None:
                raise SystemExit(f"daemon exited with {self.proc.returncode}; see {self.log.name}")
            try:
                if json.loads(self.get("/health")).get("state") == "running":
                    return
            except (urllib.error.URLError, ConnectionError, ValueError):
                pass
            time.sleep(0.05)
        raise SystemExit(f"daemon not running after {timeout_s} s; see {self.log.name}")

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return int(self.proc.returncode)


def snapshot(d: Daemon) -> dict[str, int]:
    """The counters the loss is computed from."""
    c = d.status()["counters"]
    cam, enc = c["camera"], c["pooled"]
    return {
        "datagrams": cam["datagrams"], "kernel_drops": cam["kernel_drops"] or 0,
        "driver_dropped": cam["overflow_dropped"] + cam["malformed"] + cam["out_of_range"],
        "overflow_dropped": cam["overflow_dropped"], "events_out": cam["events"],
        "events_in": enc["events_in"], "channel_dropped": enc["dropped"],
        "pending": cam.get("pending_events", 0), "queue_depth": enc["queue_depth"],
    }


def settle(d: Daemon, quiet_s: float = 0.6, timeout_s: float = 120.0) -> dict[str, int]:
    """Counters once nothing moves for `quiet_s` and nothing waits (the flood has drained)."""
    last = snapshot(d)
    still = time.monotonic()
    until = still + timeout_s
    while time.monotonic() < until:
        time.sleep(0.1)
        now = snapshot(d)
        if now != last or now["pending"] or now["queue_depth"]:
            last, still = now, time.monotonic()
        elif time.monotonic() - still >= quiet_s:
            return now
    raise SystemExit("the pipeline did not settle")


def send(port: int, rate_dg_s: float, seconds: float, per: int, stamped: bool,
         d: Daemon | None = None, rss: list[int] | None = None) -> int:
    """Send datagrams of `per` events at `rate_dg_s` for `seconds` (paced per millisecond,
    stamped with the sender's µs clock when `stamped`); how many."""
    payload = datagram(None, per)
    sent = 0
    t0 = time.monotonic()
    next_rss = t0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        addr = ("127.0.0.1", port)
        while True:
            now = time.monotonic()
            el = now - t0
            if el >= seconds:
                break
            due = int(rate_dg_s * el) - sent
            if stamped and due > 0:
                payload = datagram(time.monotonic_ns() // 1000, per)
            for _ in range(min(due, 2000)):
                s.sendto(payload, addr)
            sent += max(0, min(due, 2000))
            if d is not None and rss is not None and now >= next_rss:
                rss.append(d.rss_kb())
                next_rss = now + 0.05
            if due <= 0:
                time.sleep(0.0005)
    return sent


def metrics_agree(d: Daemon, after: dict[str, int]) -> bool:
    """Whether /metrics shows the same kernel drops and overflow as /status."""
    from prometheus_client.parser import text_string_to_metric_families

    want = {"edgesnn_component_kernel_drops_total": after["kernel_drops"],
            "edgesnn_component_overflow_dropped_total": after["overflow_dropped"]}
    got: dict[str, float] = {}
    for fam in text_string_to_metric_families(d.get("/metrics").decode()):
        for s in fam.samples:
            if s.name in want and s.labels.get("component") == "camera":
                got[s.name] = s.value
    return all(got.get(k) == float(v) for k, v in want.items())


def run(args: argparse.Namespace) -> dict[str, Any]:
    per = PER_DATAGRAM // 2 if args.timestamps else PER_DATAGRAM  # 512-byte datagrams
    with tempfile.TemporaryDirectory(prefix="edgesnn-flood-") as tmp:
        d = Daemon(Path(tmp), args)
        try:
            d.wait_running(args.start_timeout)
            base = settle(d)
            t = time.monotonic()
            send(d.udp, args.probe_rate, PROBE_S, per, args.timestamps)
            probe_s = time.monotonic() - t
            a = settle(d)
            # capacity: what reached the encoder during the overload, per second of it (the
            # few events still pending when it ended are drained and counted too)
            cap = max(1.0, (a["events_in"] - base["events_in"]) / probe_s)
            rate_dg = args.factor * cap / per
            rss: list[int] = []
            rss_before = d.rss_kb()
            t = time.monotonic()
            n_dg = send(d.udp, rate_dg, args.seconds, per, args.timestamps, d, rss)
            flood_s = time.monotonic() - t
            b = settle(d)
            rss_after = d.rss_kb()
            sent = n_dg * per
            processed = b["events_in"] - a["events_in"]
            kernel = (b["kernel_drops"] - a["kernel_drops"]) * per
            driver = b["driver_dropped"] - a["driver_dropped"]
            channel = b["channel_dropped"] - a["channel_dropped"]
            true_loss = sent - processed
            counted = kernel + driver
            agree = metrics_agree(d, b)
        finally:
            rc = d.stop()
    return {
        "capacity_events_s": round(cap), "factor": args.factor, "events_per_datagram": per,
        "flood_rate_events_s": round(sent / flood_s), "flood_s": round(flood_s, 3),
        "sent": sent, "processed": processed, "true_loss": true_loss,
        "counted_loss": counted, "kernel_drop_events": kernel, "driver_dropped": driver,
        "channel_dropped_batches": channel,
        "loss_fraction": round(true_loss / max(1, sent), 4),
        "counted_error": round(abs(counted - true_loss) / max(1, true_loss), 6),
        "rss_before_kb": rss_before, "rss_peak_kb": max(rss or [rss_before]),
        "rss_after_kb": rss_after, "metrics_agree": agree, "daemon_rc": rc,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="length of the flood")
    ap.add_argument("--factor", type=float, default=10.0, help="flood rate / capacity")
    ap.add_argument("--max-pending", type=int, default=1024,
                    help="the driver's max_pending_events (0: its default)")
    ap.add_argument("--batch-us", type=int, default=20_000, help="the driver's batch_us")
    ap.add_argument("--rcvbuf", type=int, default=262_144, help="socket receive buffer asked")
    ap.add_argument("--buffer-bytes", type=int, default=1 << 20,
                    help="byte bound of the encoder's input channel")
    ap.add_argument("--probe-rate", type=float, default=20_000.0,
                    help="datagrams/s of the 1 s overload that measures capacity")
    ap.add_argument("--start-timeout", type=float, default=600.0)
    ap.add_argument("--timestamps", action="store_true",
                    help="64 events with timestamp words per datagram (else 128 without)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    r = run(args)
    if args.json:
        print(json.dumps(r))
    else:
        print(f"capacity {r['capacity_events_s']} events/s; flood {r['flood_rate_events_s']} "
              f"events/s ({r['flood_rate_events_s'] / r['capacity_events_s']:.1f}x) for "
              f"{r['flood_s']} s")
        print(f"sent {r['sent']}  processed {r['processed']}  true loss {r['true_loss']} "
              f"({100 * r['loss_fraction']:.2f} %)")
        print(f"counted loss {r['counted_loss']} = kernel drops {r['kernel_drop_events']} + "
              f"driver {r['driver_dropped']}  (channel dropped {r['channel_dropped_batches']} "
              f"batches); error {100 * r['counted_error']:.4f} % of the true loss")
        print(f"RSS before {r['rss_before_kb']} kB, peak {r['rss_peak_kb']} kB, after "
              f"{r['rss_after_kb']} kB; /metrics agrees: {r['metrics_agree']}; daemon exit "
              f"{r['daemon_rc']}")
    ok = r["counted_error"] <= 0.01 and r["metrics_agree"] and r["daemon_rc"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
