"""`dvs_file` replay, `edgesnn info`, `edgesnn record` and `edgesnn bench io` end to end."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from edgesnn_drivers.dvs import read_events
from edgesnn_drivers.dvs.udp import encode_aestream

from edgesnn.components import BuildContext, lookup

from .test_readers import DVS, need


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgesnn", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_dvs_file_replay_driver(tmp_path: Path) -> None:
    cls = lookup("driver", "dvs_file")
    assert cls is not None
    p = need("evt3_gen41_hd_pedestrians.raw")
    problems: list[Any] = []
    params = cls.schema.validate({"path": str(p), "speed": "max", "batch_us": 5000}, "d",
                                 problems)
    assert not problems
    drv = cls("cam", params, BuildContext(base_dir=str(tmp_path)))
    assert drv.sensor_shape() == (1280, 720)

    async def collect() -> list[Any]:
        return [b async for b in drv.batches()]

    batches = asyncio.run(collect())
    assert [b.seq for b in batches] == list(range(len(batches)))
    assert np.array_equal(np.concatenate([b.events for b in batches]), read_events(p))
    assert all(b.stream == "cam" and b.meta["width"] == 1280 for b in batches)
    bad: list[Any] = []
    cls.schema.validate({"path": "x", "format": "evt4"}, "d", bad)
    assert bad and "format" in bad[0].path


def test_info_text_and_json() -> None:
    p = need("dat_ncars_obj_004397_td.dat")
    r = _cli("info", str(p), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["format"] == "dat" and d["events"] == 4407 and d["t_last_us"] == 99937
    assert d["x_range"] == [0, 53] and d["y_range"] == [1, 60]
    assert d["p1"] == 1671 and d["p0"] == 2736 and (d["width"], d["height"]) == (304, 240)
    r = _cli("info", str(need("aedat4_davis346_aestream_davis.aedat4")))
    assert r.returncode == 0, r.stderr
    assert "aedat4" in r.stdout and "117 667" in r.stdout and "DAVIS346" in r.stdout
    r = _cli("info", str(DVS / "nmnist_atis_tonic_sample.bin"))
    assert r.returncode == 2 and "unrecognised" in r.stderr


def test_record_udp_to_files_round_trip(tmp_path: Path) -> None:
    ev = read_events(need("aedat2_dvs128_alex_walking_again.aedat"))[:4000]
    for out in (tmp_path / "rec.aedat4", tmp_path / "rec.raw"):
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "edgesnn", "record", "dvs_udp", "-p", f"port={port}",
             "-p", "sensor=[128, 128]", "-p", "batch_us=1000", "-o", str(out),
             "--max-events", str(len(ev)), "--duration", "60"],
            stderr=subprocess.PIPE, text=True)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            time.sleep(1.5)  # let the recorder bind
            for i, g in enumerate(encode_aestream(ev)):
                sock.sendto(g, ("127.0.0.1", port))
                if i % 8 == 7:
                    time.sleep(0.002)
            _, err = proc.communicate(timeout=60)
        finally:
            sock.close()
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err
        back = read_events(out)
        assert np.array_equal(back, ev), err


def test_record_rejects_unknown_source(tmp_path: Path) -> None:
    r = _cli("record", "no_such_driver", "-o", str(tmp_path / "x.aedat4"))
    assert r.returncode == 2 and "unknown driver type" in r.stderr


def test_bench_io_json_lines() -> None:
    if not DVS.is_dir():
        import pytest

        pytest.skip("real recordings not found")
    r = _cli("bench", "io", "--format", "dat", "--format", "evt3", "--json", "--seconds",
             "0.01", "--no-replay", "--no-reference")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert {row["format"] for row in rows} == {"dat", "evt3"}
    for row in rows:
        assert row["events"] > 0 and row["events_per_s"] > 0 and row["file"]
    assert {row["file"]: row["events"] for row in rows}["dat_ncars_obj_004397_td.dat"] == 4407
