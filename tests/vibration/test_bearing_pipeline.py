"""pipelines/bearing_vibration.toml run by the runtime on the real CWRU recordings.

One MAT v5 file is written holding the drive-end signal of the normal recording followed by
the first 2.5 s of every shared fault recording; `edgesnn run` replays it as fast as possible. The readout learns
its baseline on the first 5 s of the normal recording; the test then checks the claims of the
pipeline's header: no window of the last 30 % of the normal recording is an anomaly, and at
least 95 % of the windows of every fault recording are (windows that straddle a junction
between two recordings are not counted).
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
CWRU = REPO.parent / "shared" / "data" / "vibration" / "cwru"
PIPELINE = REPO / "pipelines" / "bearing_vibration.toml"
RATE = 12000


def write_mat(path: Path, name: str, x: np.ndarray) -> None:
    """A MAT v5 file (little-endian, uncompressed) with one double column vector `name`."""
    def element(typ: int, data: bytes) -> bytes:
        return struct.pack("<II", typ, len(data)) + data + bytes(-len(data) % 8)

    body = (element(6, struct.pack("<II", 6, 0))  # array flags: class double
            + element(5, struct.pack("<ii", x.size, 1))  # dimensions
            + element(1, name.encode())
            + element(9, np.asarray(x, "<f8").tobytes()))
    head = b"MATLAB 5.0 MAT-file, written by the edgesnn tests".ljust(116) + bytes(8)
    path.write_bytes(head + struct.pack("<H2s", 0x0100, b"IM") + element(14, body))


def drive_end(path: Path) -> np.ndarray:
    from edgesnn_drivers.vibration.mat5 import MatFile

    m = MatFile(path)
    (var,) = [v for v in m.variables if v.name.endswith("_DE_time")]
    return np.asarray(m.read(var.name), np.float64).ravel()


def test_mat_writer_round_trips(tmp_path: Path) -> None:
    from edgesnn_drivers.vibration.mat5 import MatFile

    x = np.linspace(-1.0, 1.0, 13)
    write_mat(tmp_path / "x.mat", "X001_DE_time", x)
    assert np.array_equal(np.ravel(MatFile(tmp_path / "x.mat").read("X001_DE_time")), x)


@pytest.mark.skipif(not CWRU.is_dir(), reason=f"CWRU recordings not found at {CWRU}")
def test_pipeline_flags_fault_recordings_and_not_the_normal_one(tmp_path: Path) -> None:
    normal = sorted(CWRU.glob("*normal*.mat"))
    faults = sorted(f for f in CWRU.glob("*.mat") if f not in normal)
    assert len(normal) == 1 and len(faults) >= 20
    # the whole normal recording, then the first 2.5 s of each fault recording (fast to run)
    parts = [drive_end(normal[0])] + [drive_end(f)[: 5 * RATE // 2] for f in faults]
    bounds = np.cumsum([0] + [len(p) for p in parts])
    rec = tmp_path / "normal_then_faults.mat"
    write_mat(rec, "X000_DE_time", np.concatenate(parts))
    cfg = tomllib.loads(PIPELINE.read_text())
    health = cfg["readouts"]["health"]
    win_us = int(health["window_ms"] * 1000)
    out = tmp_path / "health.jsonl"
    sets = {"drivers.accel.path": json.dumps(str(rec)), "drivers.accel.speed": '"max"',
            "sinks.zmq.endpoint": '"tcp://127.0.0.1:0"', "sinks.jsonl.type": '"file"',
            "sinks.jsonl.inputs": '["health"]', "sinks.jsonl.path": json.dumps(str(out))}
    args = [sys.executable, "-m", "edgesnn", "run", str(PIPELINE)]
    for k, v in sets.items():
        args += ["--set", f"{k}={v}"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    dets = [json.loads(line) for line in out.read_text().splitlines()]
    # a window [t - window, t) lies in recording k when both ends do
    t_end = np.array([d["t_sensor_us"] for d in dets], np.int64)
    w_end = -(-t_end // win_us) * win_us  # the window's end on the readout's grid
    b_us = bounds * 1_000_000 // RATE
    first = np.searchsorted(b_us, w_end - win_us, side="right") - 1
    last = np.searchsorted(b_us, w_end - 1, side="right") - 1
    anomaly = np.array([d["label"] == "anomaly" for d in dets])
    whole = first == last
    n_len = len(parts[0])
    tail = whole & (first == 0) & (w_end - win_us >= int(0.7 * n_len) * 1_000_000 // RATE)
    assert tail.sum() >= 55  # 6.1 s of 100 ms windows
    assert not anomaly[tail].any(), [d["score"] for d, t in zip(dets, tail) if t]
    rates = {}
    for k, f in enumerate(faults, start=1):
        sel = whole & (first == k)
        assert sel.sum() >= 23, f.name
        rates[f.name] = float(anomaly[sel].mean())
    assert min(rates.values()) >= 0.95, rates
    scores = np.array([d["score"] for d in dets])
    faulty = whole & (first > 0)
    print(json.dumps({"normal_tail_windows": int(tail.sum()),
                      "normal_tail_max_score": float(scores[tail].max()),
                      "fault_windows": int(faulty.sum()),
                      "fault_min_score": float(scores[faulty].min()),
                      "detection": float(anomaly[faulty].mean())}))
