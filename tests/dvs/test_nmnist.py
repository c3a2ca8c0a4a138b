"""N-MNIST / N-Caltech101 ATIS 5-byte records: reader, detection, info, replay, fuzzing."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from edgesnn_drivers.dvs import bench_io_cases, open_reader, read_events, stream_stats
from edgesnn_drivers.dvs.formats import detect, looks_nmnist
from edgesnn_drivers.dvs.readers import detect_file
from hypothesis import given, settings
from hypothesis import strategies as st

from edgesnn.components import BuildContext, lookup
from edgesnn.errors import FormatError
from edgesnn.events import DVS_EVENT

from . import refs
from .test_readers import DVS, need

NAME = "nmnist_atis_tonic_sample.bin"
DATA = DVS.parent
SETTINGS = settings(max_examples=80, deadline=None)

# data/README.md: 4 325 events, 0 overflow records, t 654 -> 311 175, x 0..33, y 0..33,
# p1 2 145, p0 2 180, first (654, 7, 15, 1), last (311175, 21, 14, 1)
N_EVENTS, FIRST, LAST = 4325, (654, 7, 15, 1), (311175, 21, 14, 1)


def _write(data: bytes) -> str:
    fd, name = tempfile.mkstemp(suffix=".bin")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return name


def test_expected_values_of_the_readme() -> None:
    p = need(NAME)
    r = open_reader(p)
    assert r.format == "nmnist" and (r.width, r.height) == (34, 34)
    assert r.header.data_offset == 0
    ev = r.read_all()
    assert ev.dtype == DVS_EVENT
    assert len(ev) == N_EVENTS
    assert r.counters["wraps"] == 0  # overflow records
    assert tuple(ev[0].tolist()) == FIRST and tuple(ev[-1].tolist()) == LAST
    assert (int(ev["t"].min()), int(ev["t"].max())) == (654, 311175)
    assert (int(ev["x"].min()), int(ev["x"].max())) == (0, 33)
    assert (int(ev["y"].min()), int(ev["y"].max())) == (0, 33)
    assert int(ev["p"].sum()) == 2145 and int((ev["p"] == 0).sum()) == 2180
    assert r.dropped == 0 and r.counters["backwards"] == 0
    s = stream_stats(r)
    assert (s["events"], s["p1"], s["p0"]) == (N_EVENTS, 2145, 2180)
    assert (s["t_first_us"], s["t_last_us"]) == (654, 311175)
    assert s["x_range"] == [0, 33] and s["y_range"] == [0, 33] and s["monotonic"]
    assert tuple(s["first_event"]) == FIRST and tuple(s["last_event"]) == LAST


@pytest.mark.parametrize("chunk_bytes", [64, 4093, 1 << 20])
def test_kernel_matches_slow_reference(chunk_bytes: int) -> None:
    p = need(NAME)
    rows, overflows = refs.nmnist(p.read_bytes())
    assert overflows == 0 and len(rows) == N_EVENTS
    r = open_reader(p, chunk_bytes=chunk_bytes)
    chunks = [c.copy() for c in r.iter_chunks(reuse=True)]
    if chunk_bytes == 64:
        assert len(chunks) > 100 and max(len(c) for c in chunks) <= 64 // 5 + 1
    assert np.array_equal(np.concatenate(chunks), refs.to_events(rows))


records = st.lists(
    st.tuples(st.integers(0, (1 << 23) - 1),
              st.one_of(st.integers(0, 40), st.integers(0, 255)),
              st.one_of(st.integers(0, 40), st.just(240), st.integers(0, 255)),
              st.integers(0, 1)),
    max_size=300)


@SETTINGS
@given(rows=records, sensor=st.sampled_from([(34, 34), (240, 180), (256, 256)]),
       chunk_bytes=st.sampled_from([64, 1000, 1 << 20]))
def test_kernel_equals_reference_on_random_records(rows: list, sensor: tuple[int, int],
                                                   chunk_bytes: int) -> None:
    """Overflow records, coordinates outside the sensor and times going back included."""
    data = refs.write_nmnist(rows)
    name = _write(data)
    try:
        r = open_reader(name, "nmnist", width=sensor[0], height=sensor[1],
                        chunk_bytes=chunk_bytes)
        got = r.read_all()
    finally:
        os.unlink(name)
    ref, overflows = refs.nmnist(data)
    inside = [e for e in ref if e[1] < sensor[0] and e[2] < sensor[1]]
    assert [tuple(e) for e in got.tolist()] == inside
    assert r.counters["wraps"] == overflows
    assert r.counters["out_of_range"] == len(ref) - len(inside) == r.dropped
    back = sum(1 for a, b in zip(ref, ref[1:]) if b[0] < a[0])
    assert r.counters["backwards"] == back


@SETTINGS
@given(data=st.binary(max_size=3000))
def test_random_bytes_give_offset_error_or_counted_drops(data: bytes) -> None:
    name = _write(data)
    try:
        r = open_reader(name, "nmnist", chunk_bytes=256)
        if len(data) % 5:
            with pytest.raises(FormatError) as e:
                r.read_all()
            assert e.value.offset == len(data) - len(data) % 5
            assert "truncated" in str(e.value)
        else:
            ev = r.read_all()
            c = r.counters
            assert len(ev) + c["out_of_range"] + c["wraps"] == len(data) // 5
            if len(ev):
                assert int(ev["x"].max()) < 34 and int(ev["y"].max()) < 34
        # detection never raises, whatever the bytes
        detect(data[:4096], len(data))
        detect_file(name)
    finally:
        os.unlink(name)


@SETTINGS
@given(cut=st.integers(0, 21625),
       flips=st.lists(st.tuples(st.integers(0, 21624), st.integers(0, 255)), max_size=8))
def test_truncated_and_corrupted_real_file(cut: int, flips: list[tuple[int, int]]) -> None:
    p = DVS / NAME
    if not p.is_file():
        pytest.skip(f"real recording {p} not found (shared/data beside the repo)")
    data = bytearray(p.read_bytes())
    for where, value in flips:
        data[where] = value
    data = bytes(data[:cut])
    name = _write(data)
    try:
        r = open_reader(name, "nmnist", chunk_bytes=1000)
        try:
            ev = r.read_all()
        except FormatError as e:
            assert cut % 5 and e.offset == cut - cut % 5
            return
        assert cut % 5 == 0
        rows, _ = refs.nmnist(data)
        assert [tuple(e) for e in ev.tolist()] == [e for e in rows if e[1] < 34 and e[2] < 34]
    finally:
        os.unlink(name)


def test_detection_on_every_dvs_file_and_other_sensor_files(tmp_path: Path) -> None:
    if not DVS.is_dir():
        pytest.skip(f"real recordings not found at {DVS}")
    expected = {"aedat2": "aedat2", "aedat4": "aedat4", "dat": "dat", "evt2": "evt2",
                "evt3": "evt3", "nmnist": "nmnist"}
    seen = set()
    for p in sorted(DVS.iterdir()):
        fmt = detect_file(p)
        assert fmt == expected[p.name.split("_", 1)[0]], p.name
        seen.add(fmt)
        head = p.read_bytes()[:4096]
        # even without the header checks first, no other DVS file reads as N-MNIST
        assert looks_nmnist(head, p.stat().st_size) == (fmt == "nmnist"), p.name
        assert looks_nmnist(head, None) == (fmt == "nmnist"), p.name
    assert "nmnist" in seen
    others = [DATA / "audio" / "fsdd" / "0_jackson_0.wav",
              DATA / "audio" / "format_edge_cases" / "test-8000Hz-le-3ch-5S-24bit.wav",
              DATA / "lidar" / "velodyne_vlp16_example.pcap",
              DATA / "network" / "pcap" / "normal_icmp_echo.pcap",
              DATA / "network" / "pcap" / "attack_synscan.pcapng",
              DATA / "network" / "nsl_kdd" / "field_names.csv",
              DATA / "vibration" / "cwru" / "cwru_12k_normal_0hp_Normal_0.mat"]
    others = [p for p in others if p.is_file()]
    if not others:
        pytest.skip("no non-DVS recordings found")
    for p in others:
        assert detect_file(p) is None, p.name
        assert not looks_nmnist(p.read_bytes()[:4096], p.stat().st_size), p.name
    # a misleading name does not matter
    dst = tmp_path / "recording.aedat4"
    dst.write_bytes((DVS / NAME).read_bytes())
    assert detect_file(dst) == "nmnist"


def test_detection_is_conservative(tmp_path: Path) -> None:
    data = need(NAME).read_bytes()
    head = data[:4096]
    assert detect(head, len(data)) == "nmnist"
    assert detect(head, len(data) - 1) is None  # size not a multiple of 5
    assert detect(head, 0) is None
    assert detect(data[1:4097], len(data) - 5) is None  # misaligned records
    assert detect(data[: 15 * 5], 15 * 5) is None  # too few records to tell
    assert detect(data[: 16 * 5], 16 * 5) == "nmnist"
    assert detect(bytes(4095), 4095) is None  # zeros: time never advances, one pixel
    rows, _ = refs.nmnist(data[:500])
    backwards = refs.write_nmnist([rows[1], rows[0], *rows[2:]])
    assert rows[1][0] > rows[0][0] and detect(backwards, len(backwards)) is None
    outside = refs.write_nmnist([*rows[:50], (rows[50][0], 34, 3, 1), *rows[51:]])
    assert detect(outside, len(outside)) is None
    # overflow records (y == 240) are part of the format: time restarts 2^13 later
    t_last = rows[49][0]
    ovf = refs.write_nmnist([*rows[:50], (0, 0, 240, 0),
                             *[(t_last - 8192 + 1 + k, 3, 4, k & 1) for k in range(20)]])
    assert detect(ovf, len(ovf)) == "nmnist"
    p = tmp_path / "o.bin"
    p.write_bytes(ovf)
    r = open_reader(p)
    ev = r.read_all()
    assert r.format == "nmnist" and r.counters["wraps"] == 1 and len(ev) == 70
    assert int(ev["t"][50]) == t_last + 1 and bool(np.all(np.diff(ev["t"]) >= 0))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgesnn", *args], capture_output=True,
                          text=True, timeout=120)


def test_info_json_and_text() -> None:
    p = need(NAME)
    r = _cli("info", str(p), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["format"] == "nmnist" and (d["width"], d["height"]) == (34, 34)
    assert d["events"] == N_EVENTS and (d["t_first_us"], d["t_last_us"]) == (654, 311175)
    assert d["x_range"] == [0, 33] and d["y_range"] == [0, 33]
    assert (d["p1"], d["p0"], d["dropped"]) == (2145, 2180, 0)
    assert tuple(d["first_event"]) == FIRST and tuple(d["last_event"]) == LAST
    assert "wraps" not in d["counters"]  # no overflow record
    r = _cli("info", str(p))
    assert r.returncode == 0, r.stderr
    assert "nmnist" in r.stdout and "4 325" in r.stdout and "311 175" in r.stdout


def _replay(params: dict[str, Any], tmp_path: Path) -> tuple[Any, list[Any]]:
    cls = lookup("driver", "dvs_file")
    problems: list[Any] = []
    full = cls.schema.validate({"speed": "max", "batch_us": 20_000, **params}, "d", problems)
    assert not problems, problems
    drv = cls("digit", full, BuildContext(base_dir=str(tmp_path)))

    async def collect() -> list[Any]:
        return [b async for b in drv.batches()]

    return drv, asyncio.run(collect())


@pytest.mark.parametrize("fmt", ["nmnist", "auto"])
def test_dvs_file_driver_replays_nmnist(fmt: str, tmp_path: Path) -> None:
    p = need(NAME)
    drv, batches = _replay({"path": str(p), "format": fmt}, tmp_path)
    assert drv.sensor_shape() == (34, 34)
    assert np.array_equal(np.concatenate([b.events for b in batches]), read_events(p))
    assert all(b.meta["width"] == 34 and b.meta["format"] == "nmnist" for b in batches)
    ev = read_events(p)
    assert len(batches) == len(np.unique(ev["t"] // 20_000))  # one per non-empty window
    assert drv.status()["format"] == "nmnist" and drv.status()["dropped"] == 0


def test_dvs_file_driver_sensor_override(tmp_path: Path) -> None:
    # N-Caltech101 uses the same records on a larger crop: the size comes from the config
    rows = [(10 * k, 200 - k, 150 - k, k & 1) for k in range(40)]
    p = tmp_path / "caltech.bin"
    p.write_bytes(refs.write_nmnist(rows))
    drv, batches = _replay({"path": str(p), "format": "nmnist", "sensor": [240, 180]},
                           tmp_path)
    assert drv.sensor_shape() == (240, 180)
    got = np.concatenate([b.events for b in batches])
    assert [tuple(e) for e in got.tolist()] == rows
    assert read_events(p, "nmnist").size == 0  # the 34x34 default drops them all ...
    r = open_reader(p, "nmnist")
    r.read_all()
    assert r.counters["out_of_range"] == 40  # ... and counts them


def test_bench_io_case() -> None:
    need(NAME)
    cases = [c for c in bench_io_cases(DATA) if c["format"] == "nmnist"]
    assert [c["file"] for c in cases] == [NAME]
    assert cases[0]["run"]() == N_EVENTS and cases[0]["unit"] == "events"
    assert cases[0]["realtime_items_per_s"] == pytest.approx(N_EVENTS / 0.310521)
    r = _cli("bench", "io", "--format", "nmnist", "--json", "--seconds", "0.01", "--no-replay",
             "--no-reference")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert [(row["format"], row["file"], row["events"]) for row in rows] == [
        ("nmnist", NAME, N_EVENTS)]
    assert rows[0]["events_per_s"] > 0
