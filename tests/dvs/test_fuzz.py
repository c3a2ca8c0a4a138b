"""Property-based fuzzing of every DVS decoder: bad input gives FormatError or counted drops."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from edgesnn_drivers.dvs import open_reader, stream_stats
from edgesnn_drivers.dvs.edvs import EDVSParser
from edgesnn_drivers.dvs.readers import MAX_CHUNK_EVENTS
from edgesnn_drivers.dvs.udp import DatagramDecoder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgesnn.errors import FormatError

from . import refs
from .test_readers import DVS

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
HEADERS = {
    "evt2": b"% evt 2.0\n% format EVT2;height=480;width=640\n% end\n",
    "evt3": b"% evt 3.0\n% format EVT3;height=720;width=1280\n% end\n",
    "dat": b"% Data file containing Event2D events.\n% Version 2\n% Width 304\n% Height 240\n"
           + bytes([0, 8]),
    "aedat2": b"#!AER-DAT2.0\r\n# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128\r\n",
    "aedat3": b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n",
    "nmnist": b"",  # headerless 5-byte records
}


def _seed_bytes() -> dict[str, bytes]:
    """Small valid prefixes of the real recordings, to mutate."""
    out = {}
    for name, fmt in [("evt2_gen3_vga_sample.raw", "evt2"),
                      ("evt3_gen41_hd_sample.raw", "evt3"),
                      ("dat_ncars_obj_004397_td.dat", "dat"),
                      ("aedat2_dvs128_alex_walking_again.aedat", "aedat2"),
                      ("aedat4_davis346_aestream_davis.aedat4", "aedat4"),
                      ("nmnist_atis_tonic_sample.bin", "nmnist")]:
        p = DVS / name
        if p.is_file():
            data = p.read_bytes()
            out[fmt] = data if fmt == "aedat4" else data[:12000]
    return out


SEEDS = _seed_bytes()


def decode_all(data: bytes, fmt: str | None = None) -> tuple[int, int]:
    """Decode bytes as a file; returns (events, dropped). Only FormatError may escape."""
    fd, name = tempfile.mkstemp(suffix=".bin")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        r = open_reader(name, fmt, chunk_bytes=1024)
        n = 0
        for ev in r.iter_chunks():
            assert len(ev) <= MAX_CHUNK_EVENTS
            if len(ev):
                assert int(ev["x"].max()) < r.width and int(ev["y"].max()) < r.height
                assert int(ev["p"].max()) <= 1
            n += len(ev)
        return n, r.dropped
    except FormatError as e:
        assert e.offset is not None and 0 <= e.offset <= max(len(data), 18)
        return -1, 0
    finally:
        os.unlink(name)


@SETTINGS
@given(fmt=st.sampled_from(sorted(HEADERS)), body=st.binary(max_size=3000))
def test_random_bodies_after_valid_headers(fmt: str, body: bytes) -> None:
    decode_all(HEADERS[fmt] + body, fmt)


@SETTINGS
@given(data=st.binary(max_size=2000))
def test_random_bytes_detect_or_refuse(data: bytes) -> None:
    decode_all(data)


@SETTINGS
@given(fmt=st.sampled_from(sorted(SEEDS) or ["evt2"]), cut=st.floats(0, 1),
       flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=8))
def test_truncated_and_corrupted_real_files(fmt: str, cut: float,
                                            flips: list[tuple[float, int]]) -> None:
    if fmt not in SEEDS:
        pytest.skip("real recordings not found")
    data = bytearray(SEEDS[fmt])
    for where, value in flips:
        data[int(where * (len(data) - 1))] = value
    decode_all(bytes(data[: int(cut * len(data))]), fmt)


@SETTINGS
@given(words=st.lists(st.integers(0, 0xFFFF), max_size=400))
def test_evt3_kernel_equals_reference_on_valid_word_types(words: list[int]) -> None:
    # keep only defined word types so the reference applies; coordinates may exceed 1280x720
    ok = [w for w in words if (w >> 12) in (0, 2, 3, 4, 5, 6, 7, 8, 10, 14, 15)]
    data = HEADERS["evt3"] + np.array(ok, "<u2").tobytes()
    fd, name = tempfile.mkstemp()
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    try:
        got = open_reader(name, chunk_bytes=64).read_all()
        ref = [e for e in refs.evt3(data) if e[1] < 1280 and e[2] < 720]
        assert [tuple(e) for e in got.tolist()] == ref
    finally:
        os.unlink(name)


@SETTINGS
@given(datagrams=st.lists(st.binary(max_size=600), max_size=20))
def test_malformed_datagrams_are_counted(datagrams: list[bytes]) -> None:
    d = DatagramDecoder(640, 480)
    n = 0
    for g in datagrams:
        ev = d.decode(g, 123)
        n += len(ev)
        if len(ev):
            assert int(ev["x"].max()) < 640 and int(ev["y"].max()) < 480
    expect_bad = sum(1 for g in datagrams if len(g) % 4)
    assert d.malformed >= expect_bad
    assert d.datagrams == len(datagrams)


@SETTINGS
@given(mode=st.integers(0, 4), chunks=st.lists(st.binary(max_size=300), max_size=20))
def test_edvs_parser_never_fails_and_bounds_its_tail(mode: int, chunks: list[bytes]) -> None:
    p = EDVSParser(mode)
    total = 0
    for c in chunks:
        ev = p.feed(c, 0)
        total += len(ev)
        assert len(p._tail) <= 8
        if len(ev):
            assert int(ev["x"].max()) < 128 and int(ev["y"].max()) < 128
    assert total * 2 + p.resync_bytes <= sum(len(c) for c in chunks)


def test_stats_of_empty_stream(tmp_path: Path) -> None:
    p = tmp_path / "e.raw"
    p.write_bytes(HEADERS["evt3"])
    st_ = stream_stats(open_reader(p))
    assert st_["events"] == 0 and "t_first_us" not in st_
