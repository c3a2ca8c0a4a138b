"""Event-sent -> detection-received latency of a live DVS pipeline, three processes on loopback.

`edgesnn bench latency [--rate R] [--dt-us D] [--duration S] [--json]` writes a model and a
pipeline into a temporary folder and starts, as separate processes:

- the daemon (`python -m edgesnn run`): `dvs_udp` (127.0.0.1, AEStream datagrams) ->
  `dvs_pool` (64x64 sensor, grid 16x8, ON/OFF split: 256 channels) -> a 256 -> 16 LIF network
  (ON cell k drives output k above threshold, OFF cells drive nothing) -> `spike_count`
  (window = dt, one spike is a detection) -> `zmq_pub`, with `[pipeline] trace = true`;
- a sender: background OFF events at `--rate` events/s (64 per datagram, timestamped with the
  host's µs clock, paced every ~0.5 ms) and, every 5-15 ms, a probe: one datagram of 16 ON
  events in the cell of label `p<k>` (k = probe number mod 16), its send time noted;
- a subscriber (plain pyzmq SUB) noting the receive time of every detection.

A probe's latency is the receive time of the first `p<k>` detection after it was sent minus its
send time (host wall clock, shared by the processes). Prints p50 / p99 / max over the probes,
probes missed, the daemon's drop counters (its last heartbeat), the load average, and the
share of each stage from the detections' `extra.trace` timestamps: sent -> handed over by
the driver (UDP, the driver, waiting for the step to close), queued, encoder, network,
readout, publish (runtime and sink), ZeroMQ hop. Figures are measurements, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

SENSOR = (64, 64)
GRID = (16, 8)
N_LABELS = 16
PROBE_EVENTS = 16
PER_DATAGRAM = 64
PROBE_GAP_S = (0.005, 0.015)
#: stages from the trace, in order: (name, start key, end key)
STAGES = (
    ("driver+step wait", "sent", "t_handover_us"),
    ("queued", "t_handover_us", "t_start_us"),
    ("encoder", "t_start_us", "t_pooled_us"),
    ("network", "t_pooled_us", "t_net_us"),
    ("readout", "t_net_us", "t_probe_us"),
    ("publish", "t_probe_us", "t_emit_us"),
    ("zeromq", "t_emit_us", "recv"),
)


def _now_us() -> int:
    return time.time_ns() // 1000


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_pipeline(out: pathlib.Path, *, dt_us: int, udp_port: int, zmq_port: int,
                   lateness_us: int | None, budget_ms: float, batch_us: int | None,
                   trace: bool = True, lookahead: bool | None = None) -> pathlib.Path:
    """model.npz and pipeline.toml of the measured pipeline; returns the pipeline path.
    None for `lateness_us` / `batch_us` leaves the key out (the release's default)."""
    from edgesnn.core import Network, NetworkSpec

    n_in = 2 * GRID[0] * GRID[1]
    spec = NetworkSpec(dt_us=dt_us, dtype="float32")
    spec.add_layer("in", n_in, "input")
    spec.add_layer("out", N_LABELS, "lif", tau_mem_ms=max(0.01, dt_us / 1000.0), v_th=1.0,
                   v_reset=0.0)
    w = np.zeros((n_in, N_LABELS))
    for k in range(N_LABELS):  # ON channel of grid cell (k, 0) -> output k
        w[GRID[0] * GRID[1] + k, k] = 2.0
    spec.connect("in", "out", "dense", weight=w)
    Network(spec).save(out / "model.npz")
    settings = [f"dt_us = {dt_us}", "drain_timeout_s = 3.0"]
    if trace:
        settings.append("trace = true")
    if lateness_us is not None:
        settings.append(f"lateness_us = {lateness_us}")
    if budget_ms:
        settings.append(f"latency_budget_ms = {budget_ms}")
    labels = ", ".join(f'"p{k}"' for k in range(N_LABELS))
    toml = f"""\
[pipeline]
name = "latency"
{chr(10).join(settings)}

[drivers.cam]
type = "dvs_udp"
port = {udp_port}
sensor = [{SENSOR[0]}, {SENSOR[1]}]
{"" if batch_us is None else f"batch_us = {batch_us}"}

[encoders.pooled]
type = "dvs_pool"
inputs = ["cam"]
grid = [{GRID[0]}, {GRID[1]}]

[networks.net]
type = "snn"
inputs = ["pooled"]
model = "model.npz"
{"" if lookahead is None else f"lookahead = {str(lookahead).lower()}"}

[readouts.probe]
type = "spike_count"
inputs = ["net"]
labels = [{labels}]
window_ms = {dt_us / 1000.0}
min_spikes = 1
margin = 1

[sinks.zmq]
type = "zmq_pub"
inputs = ["probe"]
endpoint = "tcp://127.0.0.1:{zmq_port}"
"""
    path = out / "pipeline.toml"
    path.write_text(toml, encoding="utf-8")
    return path


# --- the sender process ----------------------------------------------------------------------

def _words(x: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    return ((x.astype(np.uint32) & 0x7FFF) << 16) | ((p.astype(np.uint32) & 1) << 15) | (
        y.astype(np.uint32) & 0x7FFF)


def sender(port: int, rate: float, duration_s: float, out_path: str, seed: int = 0) -> int:
    """Background OFF events at `rate` and probes every 5-15 ms; probe send times to a file."""
    rng = np.random.default_rng(seed)
    rnd = random.Random(seed)
    addr = ("127.0.0.1", port)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    n_tmpl = 4096
    bg = np.empty((n_tmpl, PER_DATAGRAM, 2), "<u4")
    bg[:, :, 0] = _words(rng.integers(0, SENSOR[0], (n_tmpl, PER_DATAGRAM)),
                         rng.integers(0, SENSOR[1], (n_tmpl, PER_DATAGRAM)),
                         np.zeros((n_tmpl, PER_DATAGRAM), np.uint8))
    fx, fy = SENSOR[0] // GRID[0], SENSOR[1] // GRID[1]
    probes = []
    for k in range(N_LABELS):
        rec = np.empty((PROBE_EVENTS, 2), "<u4")
        i = np.arange(PROBE_EVENTS)
        rec[:, 0] = _words(k * fx + i % fx, (i // fx) % fy, np.ones(PROBE_EVENTS, np.uint8))
        probes.append(rec)
    sent_probes: list[tuple[int, int]] = []
    t0 = time.monotonic()
    end = t0 + duration_s
    sent_ev = 0
    next_probe = t0 + 0.2 + rnd.uniform(*PROBE_GAP_S)
    n_probe = 0
    j = 0
    errors = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        due = int((now - t0) * rate) - sent_ev
        while due >= PER_DATAGRAM:
            d = bg[j % n_tmpl]
            j += 1
            d[:, 1] = _now_us() & 0xFFFFFFFF
            try:
                s.sendto(d.tobytes(), addr)
            except OSError:
                errors += 1
            sent_ev += PER_DATAGRAM
            due -= PER_DATAGRAM
        if now >= next_probe:
            k = n_probe % N_LABELS
            rec = probes[k]
            t = _now_us()
            rec[:, 1] = t & 0xFFFFFFFF
            s.sendto(rec.tobytes(), addr)
            sent_probes.append((k, t))
            n_probe += 1
            next_probe = now + rnd.uniform(*PROBE_GAP_S)
        time.sleep(0.0002)
    s.close()
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"probes": sent_probes, "background_events": sent_ev,
                   "send_errors": errors, "seconds": time.monotonic() - t0}, f)
    return 0


# --- the subscriber process ------------------------------------------------------------------

def subscriber(endpoint: str, out_path: str) -> int:
    """Note every detection (and the last heartbeat) until SIGTERM; write them to a file."""
    import msgpack
    import zmq

    stop = False

    def on_term(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.connect(endpoint)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    dets: list[list[Any]] = []
    hb: dict[str, Any] | None = None
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    print("subscribed", flush=True)
    while not stop:
        if not poller.poll(100):
            continue
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            recv = _now_us()
            msg = msgpack.unpackb(frames[-1], raw=False)
            if msg.get("kind") == "det":
                tr = (msg.get("extra") or {}).get("trace") or {}
                dets.append([recv, msg["label"], msg["t_emit_us"], tr])
            elif msg.get("kind") == "hb":
                hb = msg
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"detections": dets, "heartbeat": hb}, f)
    sock.close(0)
    ctx.term()
    return 0


# --- orchestration ---------------------------------------------------------------------------

def _child(args: list[str], env: dict[str, str], **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "edgesnn.benchmarks.latency", *args],
                            env=env, text=True, **kw)


def _wait_line(proc: subprocess.Popen[str], needle: str, timeout_s: float,
               lines: list[str]) -> None:
    assert proc.stderr is not None or proc.stdout is not None
    stream = proc.stderr if proc.stderr is not None else proc.stdout
    assert stream is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            raise RuntimeError("process ended early:\n  " + "\n  ".join(lines[-15:]))
        lines.append(line.rstrip())
        if needle in line:  # from here on the rest is read (and dropped) so it never blocks
            threading.Thread(target=stream.read, daemon=True).start()
            return
    raise RuntimeError(f"no {needle!r} within {timeout_s:g} s")


def _pct(a: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(a, q)), 3) if a.size else None


def analyse(sent: dict[str, Any], got: dict[str, Any], dt_us: int) -> dict[str, Any]:
    """Match probes to detections; latency figures (ms) and the share of each stage."""
    by_label: dict[str, list[list[Any]]] = {}
    for d in got["detections"]:
        by_label.setdefault(d[1], []).append(d)
    lat: list[float] = []
    stages: dict[str, list[float]] = {name: [] for name, _, _ in STAGES}
    missed = 0
    window_us = N_LABELS * int(PROBE_GAP_S[0] * 1e6)
    for k, t_sent in sent["probes"]:
        cands = [d for d in by_label.get(f"p{k}", []) if t_sent <= d[0] < t_sent + window_us]
        if not cands:
            missed += 1
            continue
        recv, _, t_emit, tr = min(cands, key=lambda d: d[0])
        lat.append((recv - t_sent) / 1000.0)
        marks = {"sent": t_sent, "recv": recv, "t_emit_us": t_emit, **tr}
        if all(a in marks and b in marks for _, a, b in STAGES):
            for name, a, b in STAGES:
                stages[name].append((marks[b] - marks[a]) / 1000.0)
    a = np.asarray(lat)
    hb = got.get("heartbeat") or {}
    counters = hb.get("counters", {})
    drops = {
        "kernel_drops": counters.get("cam", {}).get("kernel_drops"),
        "overflow_dropped": counters.get("cam", {}).get("overflow_dropped"),
        "late_events": counters.get("pooled", {}).get("late_events"),
        "shed_events": counters.get("pooled", {}).get("shed_events"),
        "channel_dropped": sum(int(r.get("dropped", 0)) for r in counters.values()),
        "events_in": counters.get("pooled", {}).get("events_in"),
    }
    total = sum(float(np.mean(v)) for v in stages.values() if v) or 1.0
    return {
        "probes": len(sent["probes"]),
        "matched": int(a.size),
        "missed": missed,
        "p50_ms": _pct(a, 50),
        "p99_ms": _pct(a, 99),
        "max_ms": round(float(a.max()), 3) if a.size else None,
        "within_dt_plus_0.5ms": round(float((a <= dt_us / 1000 + 0.5).mean()), 3)
        if a.size else 0.0,
        "stages_ms": {k: {"p50": _pct(np.asarray(v), 50),
                          "mean": round(float(np.mean(v)), 3) if v else None,
                          "share": round(float(np.mean(v)) / total, 3) if v else None}
                      for k, v in stages.items()},
        "sent_events": sent["background_events"] + PROBE_EVENTS * len(sent["probes"]),
        **drops,
    }


def measure(rate: float, dt_us: int, duration_s: float, *, lateness_us: int | None = None,
            budget_ms: float = 0.0, batch_us: int | None = None, trace: bool = True,
            lookahead: bool | None = None, timeout_s: float = 600.0) -> dict[str, Any]:
    """One run: daemon, subscriber and sender processes; the analysed figures."""
    with tempfile.TemporaryDirectory(prefix="edgesnn-bench-latency-") as tmp:
        d = pathlib.Path(tmp)
        udp, zport = _free_port(socket.SOCK_DGRAM), _free_port()
        pipe = write_pipeline(d, dt_us=dt_us, udp_port=udp, zmq_port=zport,
                              lateness_us=lateness_us, budget_ms=budget_ms,
                              batch_us=batch_us, trace=trace, lookahead=lookahead)
        env = dict(os.environ)
        root = str(pathlib.Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        env["PYTHONUNBUFFERED"] = "1"
        load0 = os.getloadavg()
        daemon = subprocess.Popen([sys.executable, "-m", "edgesnn", "run", str(pipe)], env=env,
                                  text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        lines: list[str] = []
        sub = None
        try:
            _wait_line(daemon, "listening on", timeout_s, lines)
            sub = _child(["--subscriber", f"tcp://127.0.0.1:{zport}", str(d / "got.json")],
                         env, stdout=subprocess.PIPE)
            _wait_line(sub, "subscribed", 60, [])
            time.sleep(0.3)  # the subscription reaches the publisher
            snd = _child(["--sender", str(udp), str(rate), str(duration_s),
                          str(d / "sent.json")], env)
            snd.wait(duration_s + 120)
            time.sleep(0.5)  # the last detections; the final heartbeat comes on SIGTERM
        finally:
            code = None
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
            try:
                code = daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
            if sub is not None:
                time.sleep(0.3)
                sub.send_signal(signal.SIGTERM)
                sub.wait(30)
        sent = json.loads((d / "sent.json").read_text())
        got = json.loads((d / "got.json").read_text())
    row = analyse(sent, got, dt_us)
    load1 = os.getloadavg()
    row.update(rate=rate, dt_us=dt_us, duration_s=duration_s, lateness_us=lateness_us,
               latency_budget_ms=budget_ms, batch_us=batch_us, lookahead=lookahead,
               daemon_exit=code, load_avg_1m=[round(load0[0], 2), round(load1[0], 2)])
    return row


def measure_demo(duration_s: float, timeout_s: float = 600.0) -> dict[str, Any]:
    """The shipped demo (synthetic camera at real time, sensor time only) with `trace = true`:
    batch handed over by the driver -> detection received, and the share of each stage
    (detections of the first second are left out: connections and caches warm up)."""
    zport = _free_port()
    env = dict(os.environ)
    root = str(pathlib.Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="edgesnn-bench-latency-") as tmp:
        out = pathlib.Path(tmp) / "got.json"
        sub = _child(["--subscriber", f"tcp://127.0.0.1:{zport}", str(out)], env,
                     stdout=subprocess.PIPE)
        _wait_line(sub, "subscribed", 60, [])
        daemon = subprocess.Popen(
            [sys.executable, "-m", "edgesnn", "run", "demo", "--set",
             f"sinks.zmq.endpoint=tcp://127.0.0.1:{zport}", "--set", "pipeline.trace=true"],
            env=env, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        lines: list[str] = []
        try:
            _wait_line(daemon, "first step processed", timeout_s, lines)
            time.sleep(duration_s)
        finally:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
            try:
                code: int | None = daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                code = None
            time.sleep(0.3)
            sub.send_signal(signal.SIGTERM)
            sub.wait(30)
        got = json.loads(out.read_text())
    lat: list[float] = []
    stages: dict[str, list[float]] = {}
    first = min((d[0] for d in got["detections"]), default=0)
    for recv, _, t_emit, tr in got["detections"]:
        if "t_handover_us" not in tr or recv < first + 1_000_000:  # the first second: warm-up
            continue
        marks = [(k, v) for k, v in tr.items() if k != "t_recv_us"]
        marks += [("t_emit_us", t_emit), ("recv", recv)]
        lat.append((recv - tr["t_handover_us"]) / 1000.0)
        for (a, ta), (b, tb) in zip(marks, marks[1:], strict=False):
            stages.setdefault(f"{a} -> {b}", []).append((tb - ta) / 1000.0)
    arr = np.asarray(lat)
    total = sum(float(np.mean(v)) for v in stages.values()) or 1.0
    return {"pipeline": "demo", "detections": int(arr.size), "p50_ms": _pct(arr, 50),
            "p99_ms": _pct(arr, 99),
            "max_ms": round(float(arr.max()), 3) if arr.size else None,
            "stages_ms": {k: {"p50": _pct(np.asarray(v), 50),
                              "mean": round(float(np.mean(v)), 3),
                              "share": round(float(np.mean(v)) / total, 3)}
                          for k, v in stages.items()},
            "duration_s": duration_s, "daemon_exit": code,
            "load_avg_1m": [round(load0[0], 2), round(os.getloadavg()[0], 2)]}


# --- the platform's floor ---------------------------------------------------------------------

def _timer_overshoot(n: int, seed: int = 1) -> np.ndarray:
    """Overshoot (ms) of `n` sleeps of 0.1-1.1 ms on the daemon's event loop (a step closing
    on the host clock wakes this way)."""
    import asyncio

    from edgesnn.runtime import eventloop

    rng = np.random.default_rng(seed)
    out = np.empty(n)

    async def main() -> None:
        for k in range(n):
            d = float(rng.uniform(0.0001, 0.0011))
            t = time.perf_counter()
            await asyncio.sleep(d)
            out[k] = (time.perf_counter() - t - d) * 1e3

    eventloop.run(main())
    return out


def _zmq_hop(duration_s: float, env: dict[str, str], seed: int = 0) -> np.ndarray:
    """Bare ZeroMQ hop (ms): msgpack messages from a PUB socket here to the benchmark's
    subscriber process on loopback, one every 5-15 ms (the probes' cadence)."""
    import msgpack
    import zmq

    rnd = random.Random(seed)
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="edgesnn-bench-floor-") as tmp:
        out = pathlib.Path(tmp) / "got.json"
        ctx = zmq.Context()
        pub = ctx.socket(zmq.PUB)
        pub.bind(f"tcp://127.0.0.1:{port}")
        sub = _child(["--subscriber", f"tcp://127.0.0.1:{port}", str(out)], env,
                     stdout=subprocess.PIPE)
        try:
            _wait_line(sub, "subscribed", 60, [])
            time.sleep(0.3)  # the subscription reaches the publisher
            end = time.monotonic() + duration_s
            seq = 0
            while time.monotonic() < end:
                msg = {"kind": "det", "label": "floor", "seq": seq, "t_emit_us": _now_us()}
                pub.send_multipart([b"det.floor", msgpack.packb(msg)])
                seq += 1
                time.sleep(rnd.uniform(*PROBE_GAP_S))
            time.sleep(0.1)
        finally:
            sub.send_signal(signal.SIGTERM)
            sub.wait(30)
            pub.close(0)
            ctx.term()
        got = json.loads(out.read_text())
    return np.asarray([(d[0] - d[2]) / 1000.0 for d in got["detections"]])


def measure_floor(dt_list: list[int], duration_s: float,
                  lateness_us: int | None = None) -> dict[str, Any]:
    """What this machine allows before any processing: the bare ZeroMQ hop between two
    processes and the event loop's timer overshoot, each measured, then event sent ->
    received with zero processing time (the wait for the step's end, uniform over dt, plus
    `lateness_us`, a timer wake-up and a ZeroMQ hop, drawn from the measured samples)."""
    from edgesnn.config.pipeline import PIPELINE_SCHEMA

    if lateness_us is None:
        lateness_us = int(PIPELINE_SCHEMA.fields["lateness_us"].default)
    env = dict(os.environ)
    root = str(pathlib.Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    load0 = os.getloadavg()
    hop = _zmq_hop(duration_s, env)
    if not hop.size:
        raise RuntimeError("no message reached the subscriber")
    timer = _timer_overshoot(max(100, int(duration_s * 1000)))
    rng = np.random.default_rng(2)
    n = 200_000
    rows = []
    for dt in dt_list:
        for late in sorted({lateness_us, 0}, reverse=True):
            tot = (rng.uniform(0.0, dt / 1000.0, n) + late / 1000.0 + rng.choice(hop, n)
                   + rng.choice(timer, n))
            rows.append({"dt_us": dt, "lateness_us": late, "p50_ms": _pct(tot, 50),
                         "p99_ms": _pct(tot, 99), "target_p99_ms": dt / 1000.0 + 0.5,
                         "room_p99_ms": round(dt / 1000.0 + 0.5 - float(np.percentile(tot, 99)),
                                              3)})
    return {"floor": True, "zmq_hop_ms": {"n": int(hop.size), "p50": _pct(hop, 50),
                                          "p99": _pct(hop, 99),
                                          "max": round(float(hop.max()), 3)},
            "timer_overshoot_ms": {"n": int(timer.size), "p50": _pct(timer, 50),
                                   "p99": _pct(timer, 99),
                                   "max": round(float(timer.max()), 3)},
            "no_processing": rows, "duration_s": duration_s,
            "load_avg_1m": [round(load0[0], 2), round(os.getloadavg()[0], 2)]}


def print_floor(r: dict[str, Any]) -> None:
    z, t = r["zmq_hop_ms"], r["timer_overshoot_ms"]
    print(f"platform floor (load {r['load_avg_1m']}): bare ZeroMQ hop between two processes "
          f"p50 {z['p50']:.3f} / p99 {z['p99']:.3f} / max {z['max']:.3f} ms ({z['n']} "
          f"messages, one every 5-15 ms); event-loop timer overshoot p50 {t['p50']:.3f} / "
          f"p99 {t['p99']:.3f} / max {t['max']:.3f} ms ({t['n']} sleeps of 0.1-1.1 ms)")
    print("event sent -> received with zero processing time (step wait + lateness_us + timer "
          "wake-up + ZeroMQ hop):")
    for row in r["no_processing"]:
        print(f"    dt {row['dt_us']:>5} µs  lateness {row['lateness_us']:>4} µs  p50 "
              f"{row['p50_ms']:.3f}  p99 {row['p99_ms']:.3f} ms  (p99 target dt + 0.5 ms = "
              f"{row['target_p99_ms']:.2f}: {row['room_p99_ms']:+.3f} ms left for processing)")


def print_demo(row: dict[str, Any]) -> None:
    print(f"demo: {row['detections']} detections, handed over -> received p50 "
          f"{row['p50_ms']} p99 {row['p99_ms']} max {row['max_ms']} ms, "
          f"load {row['load_avg_1m']}")
    print("    stages (mean ms, share): " + ", ".join(
        f"{k} {v['mean']:.3f} ({100 * v['share']:.0f} %)"
        for k, v in row["stages_ms"].items()))


def print_row(r: dict[str, Any]) -> None:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    print(f"rate {r['rate']:>9.0f} ev/s  dt {r['dt_us']:>5} µs  p50 {ms(r['p50_ms'])}  "
          f"p99 {ms(r['p99_ms'])}  max {ms(r['max_ms'])} ms  "
          f"probes {r['matched']}/{r['probes']} "
          f"(missed {r['missed']})  load {r['load_avg_1m']}")
    drops = {k: r[k] for k in ("kernel_drops", "overflow_dropped", "late_events", "shed_events",
                               "channel_dropped") if r.get(k)}
    if drops:
        print(f"    counted: {drops}")
    st = r["stages_ms"]
    if any(v["mean"] is not None for v in st.values()):
        print("    stages (mean ms, share): " + ", ".join(
            f"{k} {v['mean']:.3f} ({100 * v['share']:.0f} %)" for k, v in st.items()
            if v["mean"] is not None))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--sender":
        return sender(int(argv[1]), float(argv[2]), float(argv[3]), argv[4])
    if argv and argv[0] == "--subscriber":
        return subscriber(argv[1], argv[2])
    p = argparse.ArgumentParser(prog="edgesnn bench latency",
                                description=__doc__.split("\n")[0])
    p.add_argument("--rate", type=float, action="append",
                   help="background events/s (repeat for several; default 100000)")
    p.add_argument("--dt-us", type=int, action="append",
                   help="network step (µs; repeat for several; default 1000)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of sending per run")
    p.add_argument("--lateness-us", type=int, default=None,
                   help="[pipeline] lateness_us (default: the release's)")
    p.add_argument("--budget-ms", type=float, default=0.0,
                   help="[pipeline] latency_budget_ms (0: off)")
    p.add_argument("--batch-us", type=int, default=None,
                   help="dvs_udp batch_us (default: the release's)")
    p.add_argument("--lookahead", choices=("on", "off"), default=None,
                   help="the network's lookahead (default: the release's, on for this live "
                   "source): on emits each step's output one step sooner")
    p.add_argument("--no-trace", action="store_true",
                   help="leave [pipeline] trace out (releases without it)")
    p.add_argument("--demo", action="store_true",
                   help="measure the shipped demo instead (driver hand-over -> received)")
    p.add_argument("--floor", action="store_true",
                   help="measure what this machine allows before any processing instead: a "
                   "bare ZeroMQ hop between two processes, the event loop's timer overshoot, "
                   "and event sent -> received with zero processing time for each --dt-us")
    p.add_argument("--json", action="store_true", help="one JSON object per run")
    a = p.parse_args(argv)

    def show(measure_row: Callable[[], dict[str, Any]],
             printer: Callable[[dict[str, Any]], None]) -> bool:  # fmt: skip
        try:
            row = measure_row()
        except (RuntimeError, OSError) as e:
            print(f"bench latency: {e}", file=sys.stderr)
            return False
        if a.json:
            print(json.dumps(row), flush=True)
        else:
            printer(row)
        return True

    if a.floor:
        return 0 if show(lambda: measure_floor(a.dt_us or [1000, 100], a.duration,
                                                a.lateness_us), print_floor) else 1
    if a.demo:
        return 0 if show(lambda: measure_demo(a.duration), print_demo) else 1
    look = None if a.lookahead is None else a.lookahead == "on"
    for rate in a.rate or [100_000.0]:
        for dt in a.dt_us or [1000]:
            if not show(lambda r=rate, d=dt: measure(r, d, a.duration, lateness_us=a.lateness_us,
                                                     budget_ms=a.budget_ms,
                                                     batch_us=a.batch_us,
                                                     trace=not a.no_trace, lookahead=look),
                        print_row):
                return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
