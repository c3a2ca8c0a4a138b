"""vibration_mat / vibration_csv replay drivers, CSV info/probe, and the band-energy encoder."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import numpy as np
import pytest
from edgesnn_drivers.vibration.replay import (
    CsvSamples,
    VibrationCsvDriver,
    VibrationMatDriver,
    bench_io_cases,
    info_file,
    probe_file,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgesnn.components import BuildContext
from edgesnn.encoders.generic import built
from edgesnn.encoders.vibration import BandEnergyEncoder
from edgesnn.errors import FormatError
from edgesnn.events import EventBatch

DATA = Path(__file__).parents[1].parent.parent / "shared" / "data"
CWRU = DATA / "vibration" / "cwru"


def cwru(name: str) -> Path:
    p = CWRU / name
    if not p.exists():
        pytest.skip(f"CWRU recording {p} not present (../shared/data beside the repo)")
    return p


async def _all(d) -> list:  # noqa: ANN001
    return [b async for b in d.batches()]


def test_mat_driver_replays_cwru_drive_end() -> None:
    p = cwru("cwru_12k_de_inner_race_007_0hp_IR007_0.mat")
    d = built(VibrationMatDriver, {"path": str(p), "sample_rate_hz": 12000, "speed": "max",
                                   "variables": ["_DE_time", "_FE_time"]})
    assert d.sensor_shape() == (2,) and d.check([]) == []
    got = asyncio.run(_all(d))
    x = np.concatenate([b.events for b in got])
    assert x.shape == (121_265, 2) and x.dtype == np.float32
    assert x[0, 0] == np.float32(-0.08300435129740519)
    assert got[-1].t_end_us == 121_265 * 1_000_000 // 12000
    assert len(got[0]) == 120  # 10 ms batches
    assert got[0].meta["columns"] == ["X105_DE_time", "X105_FE_time"]


def test_mat_driver_default_columns_and_errors() -> None:
    p = cwru("cwru_12k_normal_0hp_Normal_0.mat")
    d = built(VibrationMatDriver, {"path": str(p), "sample_rate_hz": 12000})
    assert d.column_names() == ["X097_DE_time", "X097_FE_time"]  # the RPM scalar is left out
    bad = built(VibrationMatDriver, {"path": str(p), "sample_rate_hz": 12000,
                                     "variables": ["_BA_time"]})
    assert "no variable" in bad.check([])[0]


def test_cwru_rms_separates_normal_from_faulty() -> None:
    rms = {}
    for name in ("cwru_12k_normal_0hp_Normal_0.mat", "cwru_12k_de_ball_007_0hp_B007_0.mat",
                 "cwru_12k_de_inner_race_007_0hp_IR007_0.mat",
                 "cwru_12k_de_outer_race_007_at6_0hp_OR007at6_0.mat"):
        d = built(VibrationMatDriver, {"path": str(cwru(name)), "sample_rate_hz": 12000,
                                       "speed": "max", "variables": ["_DE_time"]})
        x = np.concatenate([b.events[:, 0].astype(np.float64) for b in asyncio.run(_all(d))])
        rms[name.split("_0hp")[0]] = math.sqrt(float(np.mean(x**2)))
    normal = rms.pop("cwru_12k_normal")
    assert normal == pytest.approx(0.073764, abs=1e-5)
    assert all(v >= 0.139 for v in rms.values()) and normal < 0.1


# --- CSV ------------------------------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "v.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode())
    return p


def test_csv_with_header_comments_and_crlf(tmp_path: Path) -> None:
    p = write(tmp_path, "# accelerometer log\r\nax,ay,az\r\n0.1,0.2,0.3\r\n\r\n"
                        "0.4,0.5,0.6\r\n# pause\r\n-1,-2,-3\r\n")
    c = CsvSamples(str(p))
    assert c.names == ["ax", "ay", "az"] and c.has_header
    x = np.concatenate(list(c.blocks(2)))
    np.testing.assert_allclose(x, [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [-1, -2, -3]])
    d = built(VibrationCsvDriver, {"path": str(p), "sample_rate_hz": 100, "speed": "max",
                                   "columns": ["az", "0"]})
    got = asyncio.run(_all(d))
    np.testing.assert_allclose(np.concatenate([b.events for b in got]),
                               [[0.3, 0.1], [0.6, 0.4], [-3, -1]], rtol=1e-6)
    assert got[-1].t_end_us == 30_000 and d.sensor_shape() == (2,)
    assert probe_file(str(p), p.read_bytes()) == "csv"
    info = info_file(str(p), "csv")
    assert info["rows"] == 3 and info["header"] == ["ax", "ay", "az"]
    assert [v["length"] for v in info["variables"]] == [3, 3, 3]
    assert info["variables"][2]["first"] == pytest.approx(0.3)


@pytest.mark.parametrize("sep", [",", ";", "\t", " ", "  "])
def test_csv_delimiters_without_header(tmp_path: Path, sep: str) -> None:
    rows = np.arange(12.0).reshape(4, 3) / 4
    p = write(tmp_path, "\n".join(sep.join(f"{v:g}" for v in r) for r in rows) + "\n")
    c = CsvSamples(str(p))
    assert c.names == ["0", "1", "2"] and not c.has_header
    np.testing.assert_allclose(np.concatenate(list(c.blocks(3))), rows)


def test_csv_bad_row_is_an_error_with_offset_or_counted(tmp_path: Path) -> None:
    text = "a,b\n1,2\n3,x\n5,6\n7\n"
    p = write(tmp_path, text)
    with pytest.raises(FormatError, match="line 3") as e:
        list(CsvSamples(str(p)).blocks(10))
    assert e.value.offset == text.index("3,x")
    d = built(VibrationCsvDriver, {"path": str(p), "sample_rate_hz": 10, "speed": "max",
                                   "skip_bad_rows": True})
    x = np.concatenate([b.events for b in asyncio.run(_all(d))])
    assert x.tolist() == [[1, 2], [5, 6]] and d.status()["bad_rows"] == 2


def test_probe_leaves_other_text_alone(tmp_path: Path) -> None:
    kdd = b"0,tcp,ftp_data,SF,491,0,0,0,normal,20\n0,udp,other,SF,146,0,0,0,normal,15\n"
    assert probe_file("x", kdd) is None
    assert probe_file("x", b'{"lidar_mode": "1024x10"}\n') is None
    assert probe_file("x", b"RIFF\x24\x00\x00\x00WAVEfmt ") is None
    assert probe_file("x", b"#!AER-DAT2.0\r\n# header\r\n\x00\x01\x02") is None
    assert probe_file("x", b"1,2\n3,4\n") == "csv"


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_fuzz_csv(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "f.csv"
    p.write_bytes(data)
    probe_file(str(p), data[:4096])
    try:
        c = CsvSamples(str(p))
        for b in c.blocks(7):
            assert b.shape[1] == len(c.names)
    except FormatError:
        pass


# --- band-energy encoder --------------------------------------------------------------------------


def ref_band_db(frame: np.ndarray, rate: float, edges: np.ndarray, floor_db: float
                ) -> np.ndarray:
    """Direct DFT of one Hann-windowed frame, summed per band, as dB of mean square."""
    n = len(frame)
    w = np.array([0.5 - 0.5 * math.cos(2 * math.pi * (i + 1) / (n + 1)) for i in range(n)])
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        e = 0.0
        for k in range(n // 2 + 1):
            f = k * rate / n
            if lo <= f < hi:
                s = sum(frame[i] * w[i] * complex(math.cos(2 * math.pi * k * i / n),
                                                  -math.sin(2 * math.pi * k * i / n))
                        for i in range(n))
                e += abs(s) ** 2 * 2 / (n * sum(v * v for v in w))
        out.append(10 * math.log10(max(e, 10 ** (floor_db / 10))))
    return np.array(out)


def test_band_db_matches_direct_dft() -> None:
    enc = built(BandEnergyEncoder, {"band_edges_hz": [0.0, 500.0, 1500.0, 4000.0],
                                    "window_ms": 8.0}, BuildContext(dt_us=1000))
    enc._design(8000.0)
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(3, enc.win))
    got = enc.band_db(frames)
    for i in range(3):
        np.testing.assert_allclose(got[i], ref_band_db(frames[i], 8000.0, enc.edges_hz, -120),
                                   atol=1e-9)


def feed(enc: BandEnergyEncoder, x: np.ndarray, rate: int, per: int) -> np.ndarray:
    rs = []
    for i in range(0, len(x), per):
        b = x[i:i + per].reshape(-1, 1).astype(np.float32)
        r = enc.encode(EventBatch("v", 0, i * 1_000_000 // rate,
                                  (i + len(b)) * 1_000_000 // rate, b, "samples", 0,
                                  {"sample_rate_hz": rate}))
        if r is not None:
            rs.append(r)
    r = enc.flush()
    if r is not None:
        rs.append(r)
    return np.concatenate([r.to_dense() for r in rs])


def test_sine_energy_and_spikes_land_in_its_band() -> None:
    rate = 12000
    t = np.arange(rate) / rate
    # a steady 300 Hz tone, and a 1 kHz tone rising from -40 dB to 0 dB between 0.2 and 0.6 s
    gain_db = np.clip((t - 0.2) / 0.4, 0, 1) * 40 - 40
    x = np.sin(2 * np.pi * 300 * t) + 10 ** (gain_db / 20) * np.sin(2 * np.pi * 1000 * t)
    edges = [100.0, 400.0, 800.0, 1600.0, 3200.0, 6000.0]
    enc = built(BandEnergyEncoder, {"band_edges_hz": edges, "threshold_db": 2.0},
                BuildContext(dt_us=1000))
    d = feed(enc, x, rate, 120)
    assert enc.n_channels == 10 and d.shape == (1000, 10)
    up, down = d[:, :5].sum(axis=0), d[:, 5:].sum(axis=0)
    assert int(np.argmax(up)) == 2 and abs(up[2] - 20) <= 1  # 40 dB in 2 dB steps
    assert down[2] == 0 and up[0] + down[0] <= 1  # the steady tone's band stays quiet
    assert d[:200, 2].sum() == 0 and d[620:, 2].sum() == 0  # only while it rises
    # the measured level of a sine is its mean square A^2 / 2
    db = enc.band_db(np.sin(2 * np.pi * 1000 * t[None, :enc.win]))
    assert db[0, 2] == pytest.approx(10 * math.log10(0.5), abs=0.1)
    assert db[0, 2] - db[0, 0] > 30


def test_band_energy_batching_invariance() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=6000) * np.repeat(rng.uniform(0.1, 2, 30), 200)
    a = feed(built(BandEnergyEncoder, {}, BuildContext(dt_us=2000)), x, 8000, 6000)
    b = feed(built(BandEnergyEncoder, {}, BuildContext(dt_us=2000)), x, 8000, 37)
    np.testing.assert_array_equal(a, b)
    assert a.sum() > 20


def test_cwru_faults_raise_the_upper_band_energies() -> None:
    from edgesnn_drivers.vibration.mat5 import MatFile

    enc = built(BandEnergyEncoder, {}, BuildContext(dt_us=1000))
    enc._design(12000.0)
    assert enc.edges_hz[-1] > 6000 and len(enc.edges_hz) == 9
    top = {}
    for name in ("cwru_12k_normal_0hp_Normal_0.mat", "cwru_12k_de_ball_007_0hp_B007_0.mat",
                 "cwru_12k_de_inner_race_007_0hp_IR007_0.mat",
                 "cwru_12k_de_outer_race_007_at6_0hp_OR007at6_0.mat"):
        x = MatFile(cwru(name)).read("_DE_time")[:12000, 0]
        frames = x[: len(x) // enc.win * enc.win].reshape(-1, enc.win)
        top[name.split("_0hp")[0]] = float(enc.band_db(frames)[:, -1].mean())  # 3.3-6 kHz
    normal = top.pop("cwru_12k_normal")
    assert all(v > normal + 20 for v in top.values()), (normal, top)


def test_bench_cases() -> None:
    cwru("cwru_12k_normal_0hp_Normal_0.mat")
    cases = bench_io_cases(DATA)
    assert cases[0]["format"] == "mat" and cases[0]["run"]() == 2 * 243_938
