"""Start-up figures of the real daemon: the first-step line, the cold-start notice, the clock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgesnn.benchmarks.daemon import FIRST_STEP, measure_daemon

BENCH = Path(__file__).resolve().parents[2].parent / "shared" / "bench"


def test_small_daemon_reports_first_step_and_says_compiling_only_when_cold() -> None:
    """`edgesnn run` on 100x50 twice with an empty kernel cache: the first start compiles
    and says so, the second does not; both log the first processed step."""
    if not (BENCH / "ff_100x50.npz").exists():
        pytest.skip(f"{BENCH / 'ff_100x50.npz'} not found (../shared/bench beside the repo)")
    r = measure_daemon("S100x50", "float32", stream_s=0.3, fresh_cache=True, bench_dir=BENCH)
    assert r["workload"] == "S100x50" and r["mode"] == "daemon"
    assert r["cold_said_compiling"] is True
    assert r["warm_said_compiling"] is False
    assert isinstance(r["first_step_s"], float) and r["first_step_s"] > 0
    assert isinstance(r["cold_first_step_s"], float) and r["cold_first_step_s"] > 0
    assert r["peak_rss_mb"] is None or r["peak_rss_mb"] > 0
    assert r["exit_codes"] == [0, 0]  # SIGTERM drains and exits cleanly


def test_first_step_line_format_is_what_the_bench_parses() -> None:
    from edgesnn.runtime import runner

    src = Path(runner.__file__).read_text()
    assert "first step processed by network %r, %.3f s after process start" in src
    line = "edgesnn INFO edgesnn.runtime: first step processed by network 'net', 0.812 s after " \
        "process start"
    m = FIRST_STEP.search(line)
    assert m is not None and float(m.group(1)) == 0.812


def test_process_age_counts_from_the_process_start() -> None:
    """A child that sleeps 1 s before asking is at least that old (and not years old)."""
    code = ("import time; time.sleep(1.0); "
            "from edgesnn.runtime.startup import process_age_s; print(process_age_s())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    age = float(out.strip())
    assert 0.97 <= age < 60.0
