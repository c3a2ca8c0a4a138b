"""AEDAT 4.0 and EVT 3.0 writers: exact write-then-read round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from edgesnn_drivers.dvs import open_reader, open_writer, read_events

from edgesnn.events import DVS_EVENT

from .test_readers import need

SOURCES = ["evt3_gen41_hd_sample.raw", "aedat4_davis346_aestream_davis.aedat4",
           "aedat2_dvs128_neal_walking.aedat", "dat_ncars_obj_004397_td.dat"]


@pytest.mark.parametrize("fmt,comp", [("aedat4", "lz4"), ("aedat4", "zstd"),
                                      ("aedat4", "none"), ("aedat4", "lz4_high"),
                                      ("evt3", None)])
@pytest.mark.parametrize("name", SOURCES)
def test_round_trip_real_recordings(tmp_path: Path, name: str, fmt: str, comp: str | None
                                    ) -> None:
    r = open_reader(need(name))
    ev = r.read_all()
    out = tmp_path / f"o.{fmt}"
    kw = {"compression": comp} if comp else {}
    with open_writer(out, fmt, r.width, r.height, r.sensor, **kw) as w:
        for i in range(0, len(ev), 40_000):  # several writes, several packets
            w.write(ev[i : i + 40_000])
    back = open_reader(out)
    assert back.format == fmt
    assert (back.width, back.height, back.sensor) == (r.width, r.height, r.sensor)
    assert np.array_equal(back.read_all(), ev)


def test_evt3_long_gaps_and_epoch_times(tmp_path: Path) -> None:
    ev = np.zeros(6, DVS_EVENT)
    base = 1_633_953_690_975_950
    ev["t"] = [base, base + 5, base + (1 << 24) - 1, base + 3 * (1 << 24) + 17,
               base + 40 * (1 << 24), base + 40 * (1 << 24)]
    ev["x"], ev["y"], ev["p"] = [0, 1279, 5, 6, 7, 8], [719, 0, 3, 3, 3, 4], [1, 0, 1, 0, 1, 1]
    p = tmp_path / "gap.raw"
    with open_writer(p, "evt3", 1280, 720) as w:
        w.write(ev[:3])
        w.write(ev[3:])
    assert np.array_equal(read_events(p), ev)
    with open_writer(tmp_path / "bad.raw", "evt3", 1280, 720) as w, pytest.raises(ValueError):
        w.write(ev[::-1].copy())


def test_writer_rejects_events_outside_sensor(tmp_path: Path) -> None:
    ev = np.zeros(1, DVS_EVENT)
    ev["x"] = 200
    with open_writer(tmp_path / "a.aedat4", "aedat4", 128, 128) as w, pytest.raises(ValueError):
        w.write(ev)


def test_reference_decoder_reads_our_aedat4(tmp_path: Path) -> None:
    aedat = pytest.importorskip("aedat", reason="the `aedat` reference decoder is not installed")
    ev = read_events(need("aedat2_dvs128_alex_walking_again.aedat"))
    p = tmp_path / "x.aedat4"
    with open_writer(p, "aedat4", 128, 128, "DVS128") as w:
        w.write(ev)
    parts = [pk["events"] for pk in aedat.Decoder(str(p)) if "events" in pk]
    got = np.concatenate(parts)
    assert np.array_equal(got["t"], ev["t"]) and np.array_equal(got["x"], ev["x"])
    assert np.array_equal(got["y"], ev["y"]) and np.array_equal(got["on"].astype(int), ev["p"])
