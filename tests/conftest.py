"""Shared test helpers: paths, free ports, and the real data folder beside the repo."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


_HANDED_OUT: set[int] = set()


def _worker() -> tuple[int, int]:
    """(index, count) of this pytest-xdist worker; (0, 1) without xdist."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    try:
        return int(name.removeprefix("gw")), max(1, int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    except (KeyError, ValueError):
        return 0, 1


def _ours(port: int) -> bool:
    """Whether this worker may hand out `port`: the workers of one run take disjoint ports
    (by residue of port // 2: Linux gives bind(0) odd ports by preference), so two of them
    never start servers on one port."""
    idx, count = _worker()
    return port not in _HANDED_OUT and (port >> 1) % count == idx


def free_port() -> int:
    """A free loopback TCP port, never one this test session handed out before (the kernel may
    give a just-closed port again, and tests take several at once for one daemon), nor one
    another worker of a parallel run may hand out."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if _ours(port):
            _HANDED_OUT.add(port)
            return port


def reusable_port() -> int:
    """A free loopback TCP port below the kernel's ephemeral range, for a server a test stops
    and starts again on the same port: between the two, no bind(0) or outgoing connection of
    another process can be given it (a port from `free_port` may be)."""
    import random

    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    lo, hi = max(1024, low - 12000), max(2048, low - 1000)
    rng = random.Random()
    while True:
        port = rng.randrange(lo, hi)
        if not _ours(port):
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port


@pytest.fixture
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"real recordings not found at {DATA}")
    return DATA


def edgesnn_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgesnn", *args]


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def activity_pipeline(
    name: str,
    zmq_port: int,
    *,
    label: str = "activity",
    window_ms: float = 20.0,
    speed: float = 2.0,
    duration_s: float = 0.0,
    heartbeat_s: float = 1.0,
    join_wait_ms: int = 0,
    extra: str = "",
) -> str:
    """A small pipeline without an SNN (synthetic DVS -> 1-cell pool -> counts -> ZeroMQ).

    It exercises the runtime, sinks and CLI quickly; `extra` is appended (more tables).
    """
    return f"""
[pipeline]
name = "{name}"
heartbeat_s = {heartbeat_s}

[drivers.cam]
type = "synthetic_dvs"
speed = {speed}
duration_s = {duration_s}

[encoders.enc]
type = "dvs_pool"
inputs = ["cam"]
grid = [1, 1]
polarity = "merge"

[readouts.r]
type = "spike_count"
inputs = ["enc"]
labels = ["{label}"]
window_ms = {window_ms}

[sinks.zmq]
type = "zmq_pub"
inputs = ["r"]
endpoint = "tcp://127.0.0.1:{zmq_port}"
join_wait_ms = {join_wait_ms}
{extra}"""


def in_worker(cfg: Any) -> Any:
    """A loaded pipeline whose branch jobs all run in a worker thread (`inline_job_us = 0`):
    a test that holds the runtime's worker then holds the branch."""
    cfg.settings["inline_job_us"] = 0.0
    return cfg


class HeldBranch:
    """A live pipeline whose branch jobs all run on one worker thread (`in_worker`) that a test
    can hold: after `hold()` the branch stays busy with its next job until the run ends, so a
    driver must gather what arrives meanwhile (and hand it over at a stop)."""

    def __init__(self, cfg: Any) -> None:
        import threading
        from concurrent.futures import ThreadPoolExecutor

        from edgesnn.runtime.runner import Runtime

        self.gate = threading.Event()
        self.ex = ThreadPoolExecutor(1)
        self.rt = Runtime(in_worker(cfg), executor=self.ex)

    def hold(self) -> None:
        """The worker waits for the end of the run; the branch's next job waits behind it."""
        self.ex.submit(self.gate.wait, 30)

    def run(self, body: Any, drain_s: float = 130.0) -> int:
        """Run the pipeline and `await body()` beside it; then release the worker, stop, drain
        and return the runtime's exit code."""
        import asyncio

        async def go() -> int:
            task = asyncio.create_task(self.rt.run(install_signals=False))
            try:
                await body()
            finally:
                self.gate.set()
                self.rt.request_stop()
                code = await asyncio.wait_for(task, drain_s)
            return code

        try:
            return asyncio.run(go())
        finally:
            self.gate.set()
            self.ex.shutdown()
