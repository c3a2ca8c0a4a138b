"""`dvs_file` replay, `edgesnn info`, `edgesnn record` and `edgesnn bench io` end to end."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from edgesnn_drivers.dvs import read_events
from edgesnn_drivers.dvs.udp import encode_aestream

from edgesnn.components import BuildContext, lookup

from .test_readers import DVS, need


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


def test_info_text_and_json(tmp_path: Path) -> None:
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
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(200, 256)) * 10)  # no header, not 5-byte N-MNIST records
    r = _cli("info", str(junk))
    assert r.returncode == 2 and "unrecognised" in r.stderr


class _StderrLines:
    """Collects a subprocess's stderr lines in a thread; `wait_for` blocks until one matches."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._pump, args=(proc,), daemon=True)
        self._thread.start()

    def _pump(self, proc: subprocess.Popen) -> None:
        for line in proc.stderr:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self.lines.append("")  # end of stream
            self._cond.notify_all()

    def wait_for(self, prefix: str, timeout_s: float) -> str | None:
        """The first line starting with `prefix`, or None at end of stream or timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for line in self.lines:
                    if line.startswith(prefix):
                        return line
                if self.lines[-1:] == [""] or time.monotonic() >= deadline:
                    return None
                self._cond.wait(max(0.0, deadline - time.monotonic()))

    def text(self) -> str:
        self._thread.join(30)
        return "".join(self.lines)


def test_record_udp_to_files_round_trip(tmp_path: Path) -> None:
    ev = read_events(need("aedat2_dvs128_alex_walking_again.aedat"))[:4000]
    for out in (tmp_path / "rec.aedat4", tmp_path / "rec.raw"):
        # port 0: the recorder binds any free port and names it in its readiness line
        proc = subprocess.Popen(
            [sys.executable, "-m", "edgesnn", "record", "dvs_udp", "-p", "port=0",
             "-p", "sensor=[128, 128]", "-p", "batch_us=1000", "-o", str(out),
             "--max-events", str(len(ev)), "--duration", "120"],
            stderr=subprocess.PIPE, text=True)
        err = _StderrLines(proc)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            ready = err.wait_for("record: dvs_udp started ", timeout_s=120)
            assert ready is not None, err.text()
            status = json.loads(ready.split(" started ", 1)[1])
            port = status["port"]
            assert port > 0 and status["host"] == "127.0.0.1"
            for i, g in enumerate(encode_aestream(ev)):
                sock.sendto(g, ("127.0.0.1", port))
                if i % 8 == 7:
                    time.sleep(0.002)  # pacing, not synchronisation
            proc.wait(timeout=120)
        finally:
            sock.close()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        text = err.text()
        assert proc.returncode == 0, text
        assert f"record: {len(ev)} events from dvs_udp" in text
        back = read_events(out)
        assert np.array_equal(back, ev), text


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
