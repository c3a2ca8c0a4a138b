"""The daemon's log lines are written by a thread: a stderr nobody reads does not stall it,
lines that do not fit are dropped and counted, exceptions keep their traceback, everything
queued is written at exit, and a forked child logs directly."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import logging, os, sys
from edgesnn.cli import setup_logging, LOG_QUEUE
setup_logging(0, False, sys.argv[2], background=True)
log = logging.getLogger("edgesnn.test")
n = int(sys.argv[3])
for k in range(n):
    log.info("line %d %s", k, "x" * 400)
if n > LOG_QUEUE:  # the queue is full: anything logged now would only be counted
    open(sys.argv[1], "w").write("done")  # reached although nobody has read stderr yet
    sys.exit(0)
try:
    1 / 0
except ZeroDivisionError:
    log.exception("boom")
pid = os.fork()
if pid == 0:
    log.warning("from the forked child")
    logging.getLogger().handlers[0].flush()
    os._exit(0)
os.waitpid(pid, 0)
open(sys.argv[1], "w").write("done")
"""


def _run(tmp_path: Path, fmt: str, n: int) -> tuple[str, Path]:
    marker = tmp_path / "done"
    p = subprocess.Popen([sys.executable, "-c", CHILD, str(marker), fmt, str(n)], cwd=REPO,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120  # a liveness bound, not a measurement
        while not marker.exists() and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "logging blocked on a full stderr pipe"
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err[-2000:]
    return err, marker


def test_a_stderr_nobody_reads_does_not_block_and_drops_are_counted(tmp_path: Path) -> None:
    from edgesnn.cli import LOG_QUEUE

    n = 3 * LOG_QUEUE  # ~12 MB: far more than a pipe holds
    err, _ = _run(tmp_path, "text", n)
    lines = err.splitlines()
    kept = [ln for ln in lines if "edgesnn.test: line " in ln]
    dropped = sum(int(ln.split("edgesnn.log: ")[1].split()[0]) for ln in lines
                  if "log line(s) dropped" in ln)  # fmt: skip
    assert dropped > 0
    assert len(kept) + dropped == n  # every line either written or counted
    nums = [int(ln.split("line ")[1].split()[0]) for ln in kept]
    assert nums == sorted(nums) and nums[0] == 0  # in order, the first ones kept


@pytest.mark.parametrize("n", [5])
def test_json_lines_keep_the_traceback(tmp_path: Path, n: int) -> None:
    err, _ = _run(tmp_path, "json", n)
    rows = [json.loads(ln) for ln in err.splitlines() if ln.startswith("{")]
    assert [r["msg"].split()[1] for r in rows if r["msg"].startswith("line")] == \
        [str(k) for k in range(n)]
    boom = [r for r in rows if r["msg"] == "boom"]
    assert boom and "ZeroDivisionError" in boom[0]["exc"]
    assert any(r["msg"] == "from the forked child" for r in rows)
