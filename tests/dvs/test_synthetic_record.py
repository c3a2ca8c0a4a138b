"""The synthetic camera's times never go back, and `edgesnn record` records it (and any live
source with late events) to files that read back exactly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from edgesnn_drivers.dvs.readers import read_events

from edgesnn.commands.record import TimeOrder
from edgesnn.components import BuildContext, lookup
from edgesnn.events import DVS_EVENT


def _camera(**params):
    cls = lookup("driver", "synthetic_dvs")
    problems: list = []
    full = cls.schema.validate(params, "cam", problems)
    assert not problems
    return cls("cam", full, BuildContext())


@pytest.mark.parametrize("seed,batch_us,duration_s", [(1, 10_000, 20.0), (7, 7_300, 20.0),
                                                     (42, 1_234, 4.0)])
def test_synthetic_times_never_go_back(seed, batch_us, duration_s):
    """Hundreds of fast objects; batch lengths that are not multiples of the step."""
    cam = _camera(seed=seed, duration_s=duration_s, batch_us=batch_us, speed="max",
                  speed_px_s=[400.0, 900.0], gap_ms=[5.0, 20.0])
    last = -1
    n = 0
    for b in cam.iter_batches():
        t = b.events["t"]
        if len(t):
            assert t[0] >= b.t_start_us and t[-1] < b.t_end_us, (b.seq, t[0], t[-1])
            assert np.all(np.diff(t) >= 0), b.seq
            assert t[0] >= last, f"batch {b.seq} goes back by {last - t[0]} µs"
            last = int(t[-1])
        n += len(t)
    assert n > 20_000 and cam.segments_started > 50


def test_synthetic_scene_is_reproducible():
    a = np.concatenate([b.events for b in _camera(seed=3, duration_s=2.0).iter_batches()])
    b = np.concatenate([b.events for b in _camera(seed=3, duration_s=2.0).iter_batches()])
    assert len(a) > 1000 and np.array_equal(a, b)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgesnn", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("suffix", [".raw", ".aedat4"])
def test_record_synthetic_camera(tmp_path: Path, suffix: str):
    out = tmp_path / f"scene{suffix}"
    res = _cli("record", "synthetic_dvs", "-p", "speed='max'", "-p", "duration_s=5",
               "-p", "seed=5", "-o", str(out))
    assert res.returncode == 0, res.stderr
    ev = read_events(out)
    want = np.concatenate([b.events for b in _camera(seed=5, duration_s=5.0).iter_batches()])
    assert len(ev) == len(want) > 5_000
    assert np.all(np.diff(ev["t"]) >= 0)
    assert np.array_equal(ev["t"], want["t"]) and np.array_equal(ev["x"], want["x"])
    assert "late events" not in res.stderr


def test_time_order_sorts_and_raises_late_events():
    order = TimeOrder()
    a = np.zeros(4, DVS_EVENT)
    a["t"] = [10, 30, 20, 40]
    a["x"] = [0, 1, 2, 3]
    out = order(a)
    assert list(out["t"]) == [10, 20, 30, 40] and list(out["x"]) == [0, 2, 1, 3]
    b = np.zeros(3, DVS_EVENT)
    b["t"] = [35, 41, 50]  # the first one arrived late
    out = order(b)
    assert list(out["t"]) == [40, 41, 50] and order.fixed == 1
    assert len(order(np.zeros(0, DVS_EVENT))) == 0


def _without(module: str, *argv: str) -> subprocess.CompletedProcess:
    """Run the CLI in a Python where `module` cannot be imported (as if not installed)."""
    code = (f"import sys; sys.modules[{module!r}] = None\n"
            f"from edgesnn.cli import main; sys.exit(main({list(argv)!r}))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


def test_missing_lz4_points_at_the_formats_extra(tmp_path: Path):
    out = tmp_path / "x.aedat4"
    res = _without("lz4", "record", "synthetic_dvs", "-p", "duration_s=0.5", "-o", str(out))
    assert res.returncode == 2
    assert "pip install 'edgesnn[formats]'" in res.stderr and "Traceback" not in res.stderr
    # an lz4-compressed file replayed without lz4: the failure names the extra
    assert _cli("record", "synthetic_dvs", "-p", "speed='max'", "-p", "duration_s=0.5",
                "-o", str(out)).returncode == 0
    pipe = tmp_path / "replay.toml"
    pipe.write_text(f"""
[pipeline]
name = "replay"

[drivers.cam]
type = "dvs_file"
path = "{out}"
speed = "max"

[encoders.enc]
type = "dvs_pool"
inputs = ["cam"]
grid = [1, 1]
polarity = "merge"

[readouts.r]
type = "spike_count"
inputs = ["enc"]
labels = ["a"]

[sinks.out]
type = "file"
inputs = ["r"]
path = "{tmp_path / 'det.jsonl'}"
""")
    res = _without("lz4", "run", str(pipe))
    assert res.returncode == 1
    assert "component 'cam' failed" in res.stderr
    assert "pip install 'edgesnn[formats]'" in res.stderr
