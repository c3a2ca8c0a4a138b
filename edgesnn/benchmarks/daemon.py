"""Start-up and memory of the real daemon (`edgesnn run`) on a canonical core workload.

`measure_daemon("W1")` writes, into a temporary folder, the W1 network of ../shared/bench as a
model file (dense 1000 -> 400 CUBA LIF, forward Euler, W x gain 0.02), its 1000 Poisson input
trains as a spike file, and a pipeline (spike_file at real time, looping -> spikes -> snn ->
spike_count -> file sink). It starts `python -m edgesnn run` twice: a cold start, which compiles
the kernels (by default into a fresh numba cache folder, so that it really is cold) and must
say so, then a warm start, which is measured: seconds from process start to the first
processed network step (the daemon's own log line, timed from the kernel's process start
time), and the daemon's peak RSS (VmHWM) after `stream_s` seconds of real-time streaming,
read just before SIGTERM. Figures are measurements on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import numpy as np

BENCH_DIR = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "bench"
#: workload -> bench file (dense feedforward CUBA LIF, W1's rules)
WORKLOADS = {"W1": "ff_1000x400.npz", "S100x50": "ff_100x50.npz"}
TARGETS = {"first_step_s": 2.0, "peak_rss_mb": 250.0}
FIRST_STEP = re.compile(r"first step processed by network '[^']*', ([0-9.]+) s after process")


def ff_spec(W: np.ndarray, dtype: str) -> Any:
    """The W1 network: input -> dense (W, gain 0.02) -> CUBA LIF, tau_mem 20 ms, tau_syn 5 ms,
    threshold 1, reset to 0, forward Euler, dt 1 ms (../shared/bench/README.md)."""
    from edgesnn.core import NetworkSpec

    spec = NetworkSpec(dt_us=1000, dtype=dtype)
    spec.add_layer("in", W.shape[0], "input")
    spec.add_layer("out", W.shape[1], "cuba_lif", tau_mem_ms=20.0, tau_syn_exc_ms=5.0,
                   v_th=1.0, v_reset=0.0, integration="euler")  # fmt: skip
    spec.connect("in", "out", "dense", weight=W.astype(np.float64), gain=0.02)
    return spec


def _groups(n: int) -> int:
    return next(k for k in (4, 5, 2, 1) if n % k == 0)


def write_workload(out_dir: str | os.PathLike[str], workload: str = "W1",
                   dtype: str = "float32", bench_dir: str | os.PathLike[str] = BENCH_DIR
                   ) -> pathlib.Path:  # fmt: skip
    """Write model.npz, input.npz and pipeline.toml of `workload` into out_dir; returns the
    pipeline path."""
    from edgesnn_drivers.spikes import save_spike_file

    from edgesnn.core import Network

    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}; known: {', '.join(WORKLOADS)}")
    src = pathlib.Path(bench_dir) / WORKLOADS[workload]
    if not src.exists():
        raise FileNotFoundError(f"{src} not found (the canonical workloads live in "
                                "../shared/bench beside the repository)")  # fmt: skip
    with np.load(src, allow_pickle=False) as z:
        W, ptr, idx = z["W"], z["in_ptr"], z["in_idx"]
    out = pathlib.Path(out_dir)
    Network(ff_spec(W, dtype)).save(out / "model.npz")
    save_spike_file(out / "input.npz", ptr, idx, dt_us=1000, n_channels=W.shape[0])
    k = _groups(W.shape[1])
    labels = ", ".join(f'"g{i}"' for i in range(k))
    toml = f"""\
[pipeline]
name = "bench_{workload.lower()}"
description = "{workload} of ../shared/bench as a daemon: recorded spikes -> network"
dt_us = 1000

[drivers.input]
type = "spike_file"
path = "input.npz"
speed = "realtime"
loop = true

[encoders.spikes]
type = "spikes"
inputs = ["input"]

[networks.net]
type = "snn"
inputs = ["spikes"]
model = "model.npz"

[readouts.groups]
type = "spike_count"
inputs = ["net"]
labels = [{labels}]
neurons_per_label = {W.shape[1] // k}
window_ms = 100.0

[sinks.out]
type = "file"
inputs = ["groups"]
path = "detections.jsonl"
"""
    path = out / "pipeline.toml"
    path.write_text(toml, encoding="utf-8")
    return path


class _Daemon:
    """One `python -m edgesnn run` process whose stderr is read line by line in a thread."""

    def __init__(self, pipeline: pathlib.Path | str, env: dict[str, str],
                 extra: tuple[str, ...] = ()):
        self.t_spawn = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edgesnn", "run", str(pipeline), *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
        )
        self.lines: list[str] = []
        self._q: queue.Queue[tuple[float, str] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._q.put((time.monotonic(), line.rstrip("\n")))
        self._q.put(None)

    def wait_first_step(self, timeout_s: float) -> tuple[float, float]:
        """(the daemon's figure, seconds from spawn as seen here) of the first step line."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                item = self._q.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                item = None
                if time.monotonic() < deadline:
                    continue
            if item is None:
                self.stop()
                tail = "\n  ".join(self.lines[-15:])
                raise RuntimeError(f"the daemon gave no first-step line (exit "
                                   f"{self.proc.poll()}):\n  {tail}")  # fmt: skip
            t, line = item
            self.lines.append(line)
            m = FIRST_STEP.search(line)
            if m:
                return float(m.group(1)), t - self.t_spawn

    def peak_rss_mb(self) -> float | None:
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM"):
                        return int(line.split()[1]) / 1024.0
        except OSError:
            pass
        return None

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM (the daemon drains and exits), then collect the rest of its stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        while True:
            try:
                item = self._q.get(timeout=5.0)
            except queue.Empty:
                break
            if item is None:
                break
            self.lines.append(item[1])
        return code

    def said_compiling(self) -> bool:
        return any("compiling" in ln for ln in self.lines)


def measure_daemon(workload: str = "W1", dtype: str = "float32", *, stream_s: float = 3.0,
                   fresh_cache: bool = True, bench_dir: str | os.PathLike[str] = BENCH_DIR,
                   timeout_s: float = 600.0) -> dict[str, Any]:  # fmt: skip
    """Cold then warm start of `edgesnn run` on `workload`; the warm start's first-step time
    and peak RSS, and whether the cold start said it was compiling.

    fresh_cache=True compiles into an empty numba cache folder (NUMBA_CACHE_DIR), so the cold
    start is cold whatever the state of the shared cache; False uses the usual cache.
    """
    with tempfile.TemporaryDirectory(prefix="edgesnn-bench-daemon-") as tmp:
        pipeline = write_workload(tmp, workload, dtype, bench_dir)
        env = dict(os.environ)
        root = str(pathlib.Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        env["PYTHONUNBUFFERED"] = "1"
        if fresh_cache:
            env["NUMBA_CACHE_DIR"] = os.path.join(tmp, "numba-cache")
        cold = _Daemon(pipeline, env)
        cold_first, _ = cold.wait_first_step(timeout_s)
        cold_code = cold.stop()
        warm = _Daemon(pipeline, env)
        first, first_wall = warm.wait_first_step(timeout_s)
        time.sleep(stream_s)
        rss = warm.peak_rss_mb()
        code = warm.stop()
        with open(os.path.join(tmp, "detections.jsonl"), encoding="utf-8") as f:
            detections = sum(1 for _ in f)
    return {
        "workload": workload,
        "mode": "daemon",
        "first_step_s": first,
        "peak_rss_mb": None if rss is None else round(rss, 1),
        "cold_said_compiling": cold.said_compiling(),
        "warm_said_compiling": warm.said_compiling(),
        "cold_first_step_s": cold_first,
        "first_step_wall_s": round(first_wall, 3),
        "stream_s": stream_s,
        "dtype": dtype,
        "fresh_cache": fresh_cache,
        "detections": detections,
        "exit_codes": [cold_code, code],
    }


def measure_demo(*, fresh_cache: bool = True, timeout_s: float = 600.0) -> dict[str, Any]:
    """Cold then warm start of the shipped `demo` pipeline (`edgesnn run demo`, its ZeroMQ
    sink on a free loopback port): seconds from process start to the first processed step."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    extra = ("--set", f"sinks.zmq.endpoint=tcp://127.0.0.1:{port}")
    with tempfile.TemporaryDirectory(prefix="edgesnn-bench-demo-") as tmp:
        env = dict(os.environ)
        root = str(pathlib.Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        env["PYTHONUNBUFFERED"] = "1"
        if fresh_cache:
            env["NUMBA_CACHE_DIR"] = os.path.join(tmp, "numba-cache")
        cold = _Daemon("demo", env, extra)
        cold_first, _ = cold.wait_first_step(timeout_s)
        cold_code = cold.stop()
        warm = _Daemon("demo", env, extra)
        first, first_wall = warm.wait_first_step(timeout_s)
        code = warm.stop()
    return {
        "workload": "demo",
        "mode": "daemon",
        "first_step_s": first,
        "peak_rss_mb": None,
        "cold_said_compiling": cold.said_compiling(),
        "warm_said_compiling": warm.said_compiling(),
        "cold_first_step_s": cold_first,
        "first_step_wall_s": round(first_wall, 3),
        "stream_s": 0.0,
        "fresh_cache": fresh_cache,
        "exit_codes": [cold_code, code],
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    """Human-readable figures against the targets of the start-up requirement."""
    head = (f"{'workload':<9} {'cold 1st step s':>15} {'said compiling':>14} "
            f"{'warm 1st step s':>15} {'warm notice':>11} {'peak RSS MB':>11}")  # fmt: skip
    print("edgesnn daemon start-up (edgesnn run; first step timed from process start)")
    print(head)
    print("-" * len(head))
    for r in rows:
        rss = "-" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.0f}"
        print(f"{r['workload']:<9} {r['cold_first_step_s']:>15.2f} "
              f"{'yes' if r['cold_said_compiling'] else 'NO':>14} {r['first_step_s']:>15.2f} "
              f"{'WRONG' if r['warm_said_compiling'] else 'none':>11} {rss:>11}")  # fmt: skip
    print(f"targets: warm first step < {TARGETS['first_step_s']:.0f} s, peak RSS < "
          f"{TARGETS['peak_rss_mb']:.0f} MB (W1), cold start says it is compiling; RSS read "
          f"after {rows[0]['stream_s'] if rows else 0:g} s of real-time streaming")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="edgesnn bench daemon",
                                description=__doc__.split("\n")[0])  # fmt: skip
    p.add_argument("--workload", default="W1",
                   help=f"{', '.join(WORKLOADS)} or demo (the shipped demo pipeline; "
                        "comma-separated list ok)")  # fmt: skip
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--stream-s", type=float, default=3.0,
                   help="real-time streaming before reading the peak RSS")  # fmt: skip
    p.add_argument("--shared-cache", action="store_true",
                   help="use the usual numba cache (the cold start may then be warm)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    args = p.parse_args(argv)
    from edgesnn.benchmarks.core import add_row

    rows: list[dict[str, Any]] = []
    for name in (w.strip() for w in args.workload.split(",")):
        try:
            if name == "demo":
                row = measure_demo(fresh_cache=not args.shared_cache)
            else:
                row = measure_daemon(name, args.dtype, stream_s=args.stream_s,
                                     fresh_cache=not args.shared_cache)  # fmt: skip
        except (ValueError, FileNotFoundError, RuntimeError) as e:
            print(f"bench daemon: {e}", file=sys.stderr)
            return 1
        add_row(rows, row, args.json)
    if not args.json:
        print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
