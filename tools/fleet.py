#!/usr/bin/env python3
"""A fleet of edge daemons on loopback, watched by one monitor through every path at once.

    python3 tools/fleet.py [--daemons 20] [--duration 300] [--window-ms 50] [--no-zenoh] [--json]

Starts Mosquitto on a free loopback port (tests/sinks/_mqtt_broker.py), an `edgesnn relay`
process, and N `edgesnn run` daemons (subprocesses), each running a small synthetic pipeline
(a 16x16 `synthetic_dvs` -> `dvs_pool` -> `spike_count`, one detection per --window-ms of
sensor time, in real time) that publishes every detection three or four ways: a `zmq_pub` sink (read
directly and through the relay), an `mqtt` sink (QoS 1, device `devNN`) and, unless
--no-zenoh, a `zenoh` sink (peer, connecting to the monitor's listener).

The monitor, in this process, subscribes before the daemons start: one ZeroMQ SUB connected to
every daemon ("direct"), one SUB on the relay ("relay"), one MQTT client on
`edgesnn/+/+/det/#` and `.../status` ("mqtt") and one Zenoh peer ("zenoh"). Per path and
daemon it counts gaps in `seq` (holes, plus what never came after the last one received:
the daemon's last seq is known from its final heartbeat), duplicates, and detections lost
before the path was joined (`missed_at_start`: ZeroMQ and Zenoh drop what is published before
a subscription arrives). Added latency = receive time - `t_emit_us` (the wall-clock time the
runtime handed the detection to that sink), p50/p99 per path over the timed window.

Timeline: wait until every daemon was seen on every path; time --duration, sampling each
daemon's RSS every --sample-s (start = median of the first minute, end = median of the last
minute); SIGKILL one daemon and time its last will (`offline`, reason `lost`) at the monitor
against the MQTT keep-alive; SIGTERM the others and collect their last heartbeats.

Prints a table (and one JSON line with --json). Exit 1 when a path lost a detection after
joining, a daemon's RSS grew by more than --rss-bound-mb, the last will did not arrive within
the keep-alive, or a daemon did not stop cleanly. tests/sinks/test_fleet.py runs 3 daemons
for a few seconds.
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
import threading
import time
from array import array
from pathlib import Path
from statistics import median
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "sinks"))

PATHS = ("direct", "relay", "mqtt", "zenoh")

PIPELINE = """
[pipeline]
name = "{name}"
heartbeat_s = 1.0

[drivers.cam]
type = "synthetic_dvs"
seed = {seed}
speed = {speed}
width = 16                # a light scene: the fleet measures transport, not the sensor
height = 16
hot_pixels = 0
step_us = 2000
batch_us = {batch_us}

[encoders.enc]
type = "dvs_pool"
inputs = ["cam"]
grid = [1, 1]
polarity = "merge"

[readouts.r]
type = "spike_count"
inputs = ["enc"]
labels = ["activity"]
window_ms = {window_ms}

[sinks.zmq]
type = "zmq_pub"
inputs = ["r"]
endpoint = "tcp://127.0.0.1:{zport}"
join_wait_ms = {join_wait_ms}

[sinks.mq]
type = "mqtt"
inputs = ["r"]
port = {mport}
device = "{device}"
qos = 1
keepalive_s = {keepalive_s}
"""

ZENOH_SINK = """
[sinks.z]
type = "zenoh"
inputs = ["r"]
connect = ["tcp/127.0.0.1:{zenoh_port}"]
listen = ["tcp/127.0.0.1:0"]   # without it a connecting peer has no listener at all
device = "{device}"
config_file = "{zenoh_conf}"
"""

# gossip off: daemons talk to the monitor's listener only, not to each other (a star, as with a
# router); multicast scouting is off in the sink already
ZENOH_CONF = "{ scouting: { gossip: { enabled: false } } }\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kb(pid: int) -> int:
    """Resident set size of a process (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def percentile(values: array, q: float) -> float:  # type: ignore[type-arg]
    """q-th percentile (nearest rank) of a sequence; nan when empty."""
    if not values:
        return float("nan")
    s = sorted(values)
    return float(s[min(len(s) - 1, int(q / 100 * len(s)))])


class Track:
    """Seq bookkeeping of one daemon on one path: holes, duplicates, late arrivals."""

    __slots__ = ("first", "last", "missing", "dups", "late", "n")

    def __init__(self) -> None:
        self.first = self.last = -1
        self.missing: set[int] = set()
        self.dups = self.late = self.n = 0

    def see(self, seq: int) -> bool:
        """Record one seq; False for a duplicate."""
        if self.first < 0:
            self.first = self.last = seq
        elif seq == self.last + 1:
            self.last = seq
        elif seq > self.last:
            self.missing.update(range(self.last + 1, seq))
            self.last = seq
        elif seq in self.missing:
            self.missing.discard(seq)
            self.late += 1
        else:
            self.dups += 1
            return False
        self.n += 1
        return True


class Monitor:
    """Receives every detection of every daemon on each path, with its arrival time."""

    def __init__(self, paths: tuple[str, ...]):
        self.paths = paths
        self.lock = threading.Lock()
        self.tracks: dict[str, dict[str, Track]] = {p: {} for p in paths}
        self.latency_us: dict[str, array] = {p: array("q") for p in paths}  # type: ignore[type-arg]
        self.timing = False
        self.last_hb_seq: dict[str, int] = {}
        self.status: list[tuple[float, str, dict[str, Any]]] = []  # (arrival, topic, map)
        self.bad = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._mqtt: Any = None
        self._zenoh: Any = None
        self.zenoh_port = free_port()

    # --- recording (any thread) ---------------------------------------------------------------

    def _take(self, path: str, payload: bytes, t_us: int) -> None:
        import msgpack

        try:
            msg = msgpack.unpackb(payload, raw=False)
            kind = msg["kind"]
        except Exception:
            with self.lock:
                self.bad += 1
            return
        with self.lock:
            if kind == "hb":
                if path == "direct":
                    self.last_hb_seq[msg["pipeline"]] = int(msg["last_seq"])
                return
            if kind != "det":
                return
            tr = self.tracks[path].setdefault(msg["pipeline"], Track())
            if tr.see(int(msg["seq"])) and self.timing:
                self.latency_us[path].append(t_us - int(msg["t_emit_us"]))

    def seen_everywhere(self, names: list[str]) -> bool:
        with self.lock:
            return all(n in self.tracks[p] for p in self.paths for n in names)

    def counts(self) -> dict[str, int]:
        """Detections received so far per path (duplicates excluded)."""
        with self.lock:
            return {p: sum(t.n for t in tr.values()) for p, tr in self.tracks.items()}

    def statuses(self) -> list[tuple[float, str, dict[str, Any]]]:
        with self.lock:
            return list(self.status)

    # --- the subscribers ----------------------------------------------------------------------

    def start(self, zmq_eps: list[str], relay_ep: str, mqtt_port: int, zenoh_conf: Path
              ) -> None:
        """Subscribe on every path before the daemons start."""
        import zmq

        ctx = zmq.Context.instance()
        direct = ctx.socket(zmq.SUB)
        for topic in (b"det.", b"hb."):
            direct.setsockopt(zmq.SUBSCRIBE, topic)
        direct.setsockopt(zmq.RCVHWM, 1_000_000)
        for ep in zmq_eps:
            direct.connect(ep)
        relay = ctx.socket(zmq.SUB)
        relay.setsockopt(zmq.SUBSCRIBE, b"det.")
        relay.setsockopt(zmq.RCVHWM, 1_000_000)
        relay.connect(relay_ep)
        socks = {direct: "direct", relay: "relay"}

        def zmq_loop() -> None:
            poller = zmq.Poller()
            for s in socks:
                poller.register(s, zmq.POLLIN)
            while not self._stop.is_set():
                for s, _ in poller.poll(200):
                    while True:
                        try:
                            frames = s.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self._take(socks[s], frames[-1], time.time_ns() // 1000)
            for s in socks:
                s.close(0)

        self._threads.append(threading.Thread(target=zmq_loop, name="mon-zmq", daemon=True))
        self._threads[-1].start()

        import paho.mqtt.client as mqtt

        subscribed = threading.Event()
        c = self._mqtt = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fleet-monitor")

        def on_message(cl: Any, ud: Any, m: Any) -> None:
            t_us = time.time_ns() // 1000
            if m.topic.endswith("/status"):
                import msgpack

                with self.lock:
                    self.status.append((t_us / 1e6, m.topic, msgpack.unpackb(m.payload)))
                return
            self._take("mqtt", bytes(m.payload), t_us)

        c.on_connect = lambda cl, *a: cl.subscribe([("edgesnn/+/+/det/#", 1),
                                                    ("edgesnn/+/+/status", 1)])
        c.on_subscribe = lambda *a: subscribed.set()
        c.on_message = on_message
        c.connect("127.0.0.1", mqtt_port, keepalive=30)
        c.loop_start()
        if not subscribed.wait(10):
            raise SystemExit("monitor: no MQTT subscription within 10 s")

        if "zenoh" in self.paths:
            import zenoh

            conf = zenoh.Config.from_file(str(zenoh_conf))
            conf.insert_json5("mode", '"peer"')
            conf.insert_json5("scouting/multicast/enabled", "false")
            conf.insert_json5("listen/endpoints", json.dumps([f"tcp/127.0.0.1:{self.zenoh_port}"]))
            self._zenoh = zenoh.open(conf)
            self._zsub = self._zenoh.declare_subscriber(
                "edgesnn/*/*/det/**",
                lambda s: self._take("zenoh", s.payload.to_bytes(), time.time_ns() // 1000))

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)
        if self._mqtt is not None:
            self._mqtt.disconnect()
            self._mqtt.loop_stop()
        if self._zenoh is not None:
            self._zsub.undeclare()
            self._zenoh.close()


class Daemon:
    """One `edgesnn run` subprocess with its pipeline file and log."""

    def __init__(self, folder: Path, i: int, a: argparse.Namespace, mqtt_port: int,
                 zenoh_port: int, zenoh_conf: Path):
        self.name, self.device = f"p{i:02d}", f"dev{i:02d}"
        self.zport = free_port()
        self.endpoint = f"tcp://127.0.0.1:{self.zport}"
        text = PIPELINE.format(name=self.name, seed=a.seed + i, speed=a.speed,
                               window_ms=a.window_ms,
                               batch_us=int(min(50.0, a.window_ms) * 1000), zport=self.zport,
                               join_wait_ms=a.join_wait_ms,
                               mport=mqtt_port, device=self.device, keepalive_s=a.keepalive_s)
        if not a.no_zenoh:
            text += ZENOH_SINK.format(zenoh_port=zenoh_port, device=self.device,
                                      zenoh_conf=zenoh_conf)
        self.file = folder / f"{self.name}.toml"
        self.file.write_text(text)
        self.log = folder / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.rss: list[tuple[float, int]] = []  # (s since the timed window began, kB)
        self.killed_at = 0.0

    def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "edgesnn", "run", str(self.file)],
                                         stdout=log, stderr=subprocess.STDOUT, env=env)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return -9


def rss_summary(samples: list[tuple[float, int]], duration: float) -> dict[str, int]:
    """Start (median of the first minute), end (median of the last minute) and max, kB; the
    first and last third of the run when it is shorter than two minutes."""
    span = 60.0 if duration >= 120 else duration / 3
    first = [kb for t, kb in samples if t <= span and kb]
    last = [kb for t, kb in samples if t >= duration - span and kb]
    every = [kb for _, kb in samples if kb]
    if not (first and last):
        return {"start_kb": 0, "end_kb": 0, "max_kb": max(every, default=0)}
    return {"start_kb": int(median(first)), "end_kb": int(median(last)), "max_kb": max(every)}


def run(a: argparse.Namespace) -> dict[str, Any]:
    from _mqtt_broker import Broker

    paths = PATHS if not a.no_zenoh else PATHS[:3]
    with tempfile.TemporaryDirectory(prefix="edgesnn-fleet-") as tmp:
        folder = Path(a.keep) if a.keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "broker").mkdir(exist_ok=True)
        zenoh_conf = folder / "zenoh.json5"
        zenoh_conf.write_text(ZENOH_CONF)
        broker = Broker(folder / "broker", free_port())
        broker.start()
        mon = Monitor(paths)
        daemons = [Daemon(folder, i, a, broker.port, mon.zenoh_port, zenoh_conf)
                   for i in range(a.daemons)]
        relay_ep = f"tcp://127.0.0.1:{free_port()}"
        relay_cmd = [sys.executable, "-m", "edgesnn", "-q", "relay", "--pub", relay_ep,
                     "--stats-s", "0"]
        for d in daemons:
            relay_cmd += ["--sub", d.endpoint]
        relay = subprocess.Popen(relay_cmd)
        out: dict[str, Any] = {"daemons": a.daemons, "duration_s": a.duration,
                               "window_ms": a.window_ms, "paths": list(paths),
                               "keepalive_s": a.keepalive_s, "cpus": os.cpu_count(),
                               "loadavg_start": list(os.getloadavg())}
        t_start = time.monotonic()
        try:
            mon.start([d.endpoint for d in daemons], relay_ep, broker.port, zenoh_conf)
            for d in daemons:
                d.start()
            names = [d.name for d in daemons]
            end = time.monotonic() + a.start_timeout
            while not mon.seen_everywhere(names):
                dead = [d.name for d in daemons if d.proc and d.proc.poll() is not None]
                if dead or time.monotonic() > end:
                    with mon.lock:
                        late = sorted({(p, n) for p in paths for n in names
                                       if n not in mon.tracks[p]})
                    raise SystemExit(f"fleet: daemons exited {dead} or never seen on "
                                     f"{late[:10]} within {a.start_timeout:g} s; logs in "
                                     f"{folder} (--keep DIR keeps them)")
                time.sleep(0.2)
            out["start_s"] = round(time.monotonic() - t_start, 1)
            if not a.quiet:
                print(f"fleet: {a.daemons} daemons seen on {', '.join(paths)} after "
                      f"{out['start_s']} s; timing {a.duration:g} s", file=sys.stderr)

            # --- the timed window: rates, latency, RSS ------------------------------------
            c0 = mon.counts()
            with mon.lock:
                mon.timing = True
            t0 = time.monotonic()
            others = {"mosquitto": broker.proc.pid if broker.proc else 0, "relay": relay.pid}
            other_rss: dict[str, list[tuple[float, int]]] = {k: [] for k in others}
            load: list[float] = []
            while True:
                t = time.monotonic() - t0
                for d in daemons:
                    d.rss.append((t, rss_kb(d.pid)))
                for k, pid in others.items():
                    other_rss[k].append((t, rss_kb(pid)))
                load.append(os.getloadavg()[0])
                if t >= a.duration:
                    break
                time.sleep(min(a.sample_s, max(0.0, a.duration - t)))
            with mon.lock:
                mon.timing = False
            elapsed = time.monotonic() - t0
            c1 = mon.counts()
            out["loadavg_mean"] = round(sum(load) / len(load), 2)
            out["loadavg_end"] = list(os.getloadavg())
            out["timed_s"] = round(elapsed, 2)
            out["detections"] = {p: c1[p] - c0[p] for p in paths}
            out["per_s"] = {p: round((c1[p] - c0[p]) / elapsed, 1) for p in paths}
            # what the daemons would emit keeping real time; less: they were short of CPU
            out["realtime_per_s"] = round(a.daemons * a.speed * 1000 / a.window_ms, 1)
            out["latency_ms"] = {p: {"n": len(mon.latency_us[p]),
                                     "p50": round(percentile(mon.latency_us[p], 50) / 1e3, 3),
                                     "p99": round(percentile(mon.latency_us[p], 99) / 1e3, 3),
                                     "max": round(max(mon.latency_us[p], default=0) / 1e3, 3)}
                                 for p in paths}

            # --- SIGKILL one daemon: its last will ----------------------------------------
            victim = daemons[a.kill_index]
            n_status = len(mon.statuses())
            assert victim.proc is not None
            victim.killed_at = time.time()
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait(10)
            will = None
            end = time.monotonic() + 1.5 * a.keepalive_s + 5
            while will is None and time.monotonic() < end:
                for t_arr, topic, msg in mon.statuses()[n_status:]:
                    if topic == f"edgesnn/{victim.device}/{victim.name}/status" and \
                            msg.get("state") == "offline":
                        will = (t_arr, msg)
                        break
                time.sleep(0.01)
            out["killed"] = victim.name
            out["last_will"] = None if will is None else {
                "delay_ms": round((will[0] - victim.killed_at) * 1e3, 1),
                "reason": will[1].get("reason"), "within_keepalive":
                    will[0] - victim.killed_at <= a.keepalive_s}

            # --- stop the rest; what they sent last ---------------------------------------
            rcs = {d.name: d.stop() for d in daemons if d is not victim}
            time.sleep(a.settle_s)
        finally:
            for d in daemons:
                if d.proc is not None and d.proc.poll() is None:
                    d.proc.kill()
                    d.proc.wait(10)
            mon.stop()
            relay.send_signal(signal.SIGTERM)
            try:
                relay.wait(10)
            except subprocess.TimeoutExpired:
                relay.kill()
            broker.stop()

        # --- per daemon, per path ---------------------------------------------------------
        rows = []
        stopped = {msg.get("pipeline") for _, t, msg in mon.status
                   if msg.get("state") == "offline" and msg.get("reason") == "stopped"}
        for d in daemons:
            top = max([mon.tracks[p][d.name].last for p in paths if d.name in mon.tracks[p]]
                      + [mon.last_hb_seq.get(d.name, -1)])
            row: dict[str, Any] = {"daemon": d.name, "rc": rcs.get(d.name, "killed"),
                                   "last_seq": top, **rss_summary(d.rss, elapsed)}
            row["rss_growth_kb"] = row["end_kb"] - row["start_kb"]
            if d is not victim:
                row["offline_stopped"] = d.name in stopped
            for p in paths:
                tr = mon.tracks[p].get(d.name, Track())
                tail = 0 if d is victim else max(0, top - tr.last)
                row[p] = {"received": tr.n, "gaps": len(tr.missing) + tail,
                          "duplicates": tr.dups, "missed_at_start": max(0, tr.first)}
                if d is victim:  # what died in the daemon (outbox, socket buffers) is no loss
                    row[p]["not_sent_before_kill"] = max(0, top - tr.last)
            rows.append(row)
        out["per_daemon"] = rows
        out["gaps"] = {p: sum(r[p]["gaps"] for r in rows) for p in paths}
        out["duplicates"] = {p: sum(r[p]["duplicates"] for r in rows) for p in paths}
        out["missed_at_start"] = {p: sum(r[p]["missed_at_start"] for r in rows) for p in paths}
        out["received"] = {p: sum(r[p]["received"] for r in rows) for p in paths}
        growth = [r["rss_growth_kb"] for r in rows]
        out["rss_kb"] = {"start_median": int(median(r["start_kb"] for r in rows)),
                         "end_median": int(median(r["end_kb"] for r in rows)),
                         "max": max(r["max_kb"] for r in rows),
                         "growth_max": max(growth), "growth_median": int(median(growth))}
        # the median daemon's RSS at the end of each minute: creeping, or flat after a start?
        minutes = range(1, int(elapsed // 60) + 1)
        out["rss_by_minute_kb"] = [int(median(
            next((kb for t, kb in reversed(d.rss) if t <= 60 * m and kb), 0) for d in daemons))
            for m in minutes]
        out["other_rss_kb"] = {k: rss_summary(v, elapsed) for k, v in other_rss.items()}
        out["bad_payloads"] = mon.bad
        problems = []
        if any(out["gaps"].values()):
            problems.append(f"gaps {out['gaps']}")
        if max(growth) > a.rss_bound_mb * 1024:
            problems.append(f"RSS grew by up to {max(growth)} kB")
        if not (out["last_will"] and out["last_will"]["within_keepalive"]):
            problems.append(f"last will {out['last_will']}")
        if any(rc != 0 for rc in rcs.values()):
            problems.append(f"exit codes {rcs}")
        out["problems"] = problems
        return out


def table(r: dict[str, Any]) -> str:
    paths = r["paths"]
    la = r["loadavg_start"]
    lines = [f"{r['daemons']} daemons, {r['timed_s']:.0f} s timed (started in {r['start_s']} s), "
             f"detections every {r['window_ms']:g} ms each; {r['cpus']} CPUs, load average "
             f"{la[0]:.1f} at start, {r['loadavg_mean']:.1f} mean; in real time the daemons "
             f"would emit {r['realtime_per_s']:g}/s",
             "",
             f"{'path':<8}{'det/s':>9}{'received':>10}{'gaps':>6}{'dups':>6}{'late join':>10}"
             f"{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"]
    for p in paths:
        lat = r["latency_ms"][p]
        lines.append(f"{p:<8}{r['per_s'][p]:>9.1f}{r['received'][p]:>10}{r['gaps'][p]:>6}"
                     f"{r['duplicates'][p]:>6}{r['missed_at_start'][p]:>10}{lat['p50']:>9.2f}"
                     f"{lat['p99']:>9.2f}{lat['max']:>9.1f}")
    lines += ["", f"{'daemon':<8}{'rc':>7}{'last seq':>9}{'RSS start':>11}{'end':>9}{'max':>9}"
                  f"{'growth':>9}  gaps per path"]
    for row in r["per_daemon"]:
        lines.append(f"{row['daemon']:<8}{row['rc']!s:>7}{row['last_seq']:>9}"
                     f"{row['start_kb'] / 1024:>9.1f}MB{row['end_kb'] / 1024:>7.1f}MB"
                     f"{row['max_kb'] / 1024:>7.1f}MB{row['rss_growth_kb'] / 1024:>+7.1f}MB  "
                     + " ".join(f"{p}={row[p]['gaps']}" for p in paths))
    if r["rss_by_minute_kb"]:
        lines.append("median daemon RSS at minute 1, 2, ...: " + ", ".join(
            f"{kb / 1024:.1f}" for kb in r["rss_by_minute_kb"]) + " MB")
    o = r["other_rss_kb"]
    lines.append(f"mosquitto RSS {o['mosquitto']['start_kb'] / 1024:.1f} -> "
                 f"{o['mosquitto']['end_kb'] / 1024:.1f} MB; relay "
                 f"{o['relay']['start_kb'] / 1024:.1f} -> {o['relay']['end_kb'] / 1024:.1f} MB")
    w = r["last_will"]
    lines.append(f"SIGKILL {r['killed']}: " + (
        f"last will ({w['reason']}) after {w['delay_ms']:.1f} ms (keep-alive "
        f"{r['keepalive_s']} s)" if w else "no last will"))
    lines.append("OK" if not r["problems"] else "PROBLEMS: " + "; ".join(r["problems"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--daemons", type=int, default=20)
    p.add_argument("--duration", type=float, default=300.0, help="timed seconds (default 300)")
    p.add_argument("--window-ms", type=float, default=50.0,
                   help="one detection per daemon per this much sensor time (default 50)")
    p.add_argument("--speed", type=float, default=1.0, help="sensor time per wall time")
    p.add_argument("--seed", type=int, default=1, help="daemon i's scene seed is seed + i")
    p.add_argument("--keepalive-s", type=int, default=15, help="the MQTT sinks' keep-alive")
    p.add_argument("--join-wait-ms", type=int, default=2000,
                   help="zmq_pub join_wait_ms: time for the relay and monitor to subscribe")
    p.add_argument("--kill-index", type=int, default=-1, help="which daemon gets SIGKILL")
    p.add_argument("--sample-s", type=float, default=5.0, help="RSS sampling period")
    p.add_argument("--settle-s", type=float, default=2.0,
                   help="wait after the daemons stopped for messages in flight")
    p.add_argument("--start-timeout", type=float, default=300.0)
    p.add_argument("--rss-bound-mb", type=float, default=16.0,
                   help="largest growth of a daemon's RSS (end - start) counted as bounded")
    p.add_argument("--no-zenoh", action="store_true", help="no zenoh sink / path")
    p.add_argument("--keep", metavar="DIR", help="write pipelines and logs here and keep them")
    p.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    if a.daemons < 1 or a.duration <= 0:
        p.error("--daemons must be >= 1 and --duration > 0")
    r = run(a)
    print(table(r))
    if a.json:
        print(json.dumps(r))
    return 1 if r["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
