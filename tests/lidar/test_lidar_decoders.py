"""Velodyne and Ouster decoders against the real captures, their expected values and the
pure-Python references; model detection; dual return; corrupt packets; info and bench."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from edgesnn_drivers.info import info
from edgesnn_drivers.lidar import ouster, velodyne
from hypothesis import given, settings
from hypothesis import strategies as st
from lidar_reference import ref_ouster, ref_velodyne

from edgesnn.components import BuildContext
from edgesnn.encoders.generic import built
from edgesnn.errors import FormatError


@pytest.fixture
def lidar_dir(data_dir: Path) -> Path:
    d = data_dir / "lidar"
    if not d.is_dir():
        pytest.skip(f"LiDAR captures not found at {d}")
    return d


def payloads(path: Path) -> tuple[np.ndarray, np.ndarray]:
    chunks = list(velodyne.iter_pcap_payloads(path))
    return (np.concatenate([c.data for c in chunks]),
            np.concatenate([c.data_t_us for c in chunks]))


def test_vlp16_expected_values(lidar_dir: Path) -> None:
    p = lidar_dir / "velodyne_vlp16_example.pcap"
    pts, vs = velodyne.read_points(p, keep_zero=True)
    assert vs.data_packets == 84 and vs.position_packets == 0
    assert len(pts) == 84 * 384 == 32_256
    nz = pts[pts["distance_m"] > 0]
    assert len(nz) == 31_630
    assert len(np.unique(nz["ring"])) == 16
    assert float(nz["distance_m"].max()) == pytest.approx(19.92, abs=1e-4)
    assert vs.product_ids == {0x22: 84} and vs.return_modes == {"strongest": 84}
    assert (vs.first_dev_us, vs.last_dev_us) == (596_380_001, 596_490_166)
    assert vs.model is velodyne.VLP16 and vs.model_reason == "packet timing"
    pay, t = payloads(p)
    assert (int(t[0]), int(t[-1])) == (1_525_347_606_362_040, 1_525_347_606_472_382)
    az = np.stack([pay[:, b * 100 + 2].astype(int) | (pay[:, b * 100 + 3].astype(int) << 8)
                   for b in range(12)], 1).ravel()
    step = np.diff(az) % 36000
    assert step.min() >= 38 and step.max() <= 42  # 0.38-0.42 deg per block


def test_hdl32e_expected_values(lidar_dir: Path) -> None:
    p = lidar_dir / "velodyne_hdl32e_short.pcap"
    pts, vs = velodyne.read_points(p, keep_zero=True)
    assert (vs.data_packets, vs.position_packets) == (91, 9)
    assert len(pts) == 34_944
    nz = pts[pts["distance_m"] > 0]
    assert len(nz) == 30_596 and len(np.unique(nz["ring"])) == 32
    assert float(nz["distance_m"].max()) == pytest.approx(104.9, abs=0.05)
    assert vs.model is velodyne.HDL32E and vs.product_ids == {0x21: 91}
    assert (vs.first_dev_us, vs.last_dev_us) == (2_777_070_101, 2_777_119_868)
    d = info(str(p))
    assert d["format"] == "velodyne-pcap" and d["model"] == "HDL-32E"
    assert (d["data_packets"], d["position_packets"], d["nonzero_returns"]) == (91, 9, 30_596)
    assert d["nmea"] == "$GPRMC,214616,A,3708.3443,N,12139.4299,W,009.7,040.6,111212,013.8,E,D*0E"


def ref_scan_sizes(pay: np.ndarray, nonzero_per_packet: np.ndarray) -> list[int]:
    """Points per scan as velodyne-decoder 3.0 batches them: a scan ends with the packet whose
    last-block azimuth wraps past the scan's first packet's after covering over 180 deg; the
    next scan starts from that packet's azimuth."""
    scans, cur, init, cover = [], 0, None, 0
    for p, nz in zip(pay, nonzero_per_packet):
        az = int(p[1102]) | int(p[1103]) << 8  # block 11 azimuth
        init = az if init is None else init
        cur += int(nz)
        new = (az - init) % 36000
        done = cover > 18000 and cover > new
        cover = new
        if done:
            scans.append(cur)
            cur, init, cover = 0, az, 0
    return scans + ([cur] if cur else [])


@pytest.mark.parametrize("name,scans,src,rings", [
    ("velodyne_vlp16_example.pcap", [29_027, 2_603], "192.168.1.200", 16),
    ("velodyne_hdl32e_short.pcap", [30_596], "192.168.1.201", 32)])
def test_velodyne_scans_addresses_and_ports(lidar_dir: Path, name: str, scans: list[int],
                                            src: str, rings: int) -> None:
    from edgesnn_drivers.network import pcap

    p = lidar_dir / name
    pts, vs = velodyne.read_points(p, keep_zero=True)
    pay, t = payloads(p)
    per_packet = (pts["distance_m"] > 0).reshape(len(pay), -1).sum(1)
    assert ref_scan_sizes(pay, per_packet) == scans  # velodyne-decoder's scans
    assert pts.reshape(len(pay), -1)["ring"].max() == rings - 1
    pk = pcap.read_packets(p)
    data = pk[pk["dport"] == velodyne.DATA_PORT]
    pos = pk[pk["dport"] == velodyne.POSITION_PORT]
    assert (len(data), len(pos)) == (vs.data_packets, vs.position_packets)
    assert (data["sport"] == velodyne.DATA_PORT).all() and (data["proto"] == 17).all()
    assert (data["length"] == 42 + velodyne.PACKET_BYTES).all()  # 1248-byte frames
    assert (pos["length"] == 42 + velodyne.POSITION_BYTES).all()
    assert {".".join(map(str, bytes(a)[12:])) for a in pk["src"]} == {src}
    assert {bytes(a)[12:] for a in pk["dst"]} == {b"\xff" * 4}  # broadcast
    if "hdl32e" in name:  # about 1830 data packets per second (18 per 10 ms)
        rate = (len(t) - 1) / ((int(t[-1]) - int(t[0])) / 1e6)
        assert 1750 < rate < 1900


def test_vlp16_info(lidar_dir: Path) -> None:
    d = info(str(lidar_dir / "velodyne_vlp16_example.pcap"))
    assert (d["model"], d["data_packets"], d["position_packets"]) == ("VLP-16", 84, 0)
    assert (d["returns"], d["nonzero_returns"]) == (32_256, 31_630)


@pytest.mark.parametrize("name,model", [("velodyne_vlp16_example.pcap", "vlp16"),
                                        ("velodyne_hdl32e_short.pcap", "hdl32e")])
def test_velodyne_kernel_matches_reference(lidar_dir: Path, name: str, model: str) -> None:
    pay, t = payloads(lidar_dir / name)
    for i in (0, 1, len(pay) // 2, len(pay) - 1):
        pts, bad = velodyne.decode_packets(pay[i:i + 1], t[i:i + 1], velodyne.MODELS[model])
        ref = ref_velodyne(pay[i].tobytes(), int(t[i]), model)
        assert bad == 0 and len(pts) == len(ref)
        got = np.array([tuple(p) for p in pts], dtype=float)
        np.testing.assert_allclose(got, np.array(ref, dtype=float), rtol=1e-5, atol=1e-4)


def test_product_id_is_not_trusted_blindly(lidar_dir: Path) -> None:
    pay, t = payloads(lidar_dir / "velodyne_vlp16_example.pcap")
    lied = pay.copy()
    lied[:, 1205] = 0x21  # a VLP-16 that reports HDL-32E, like productid0x21_with_position
    vs = velodyne.VelodyneStream()
    pts = np.concatenate([vs.push(lied, t), vs.finish()])
    assert vs.model is velodyne.VLP16 and vs.product_id_mismatch == 84
    ref, _ = velodyne.read_points(lidar_dir / "velodyne_vlp16_example.pcap")
    assert pts.tobytes() == ref.tobytes()
    # a single packet gives no timing: then the product id decides
    one = velodyne.VelodyneStream(detect_packets=1)
    one.push(pay[:1], t[:1])
    assert one.model is velodyne.VLP16 and one.model_reason == "product id 0x22"
    unknown = pay[:1].copy()
    unknown[:, 1205] = 0x77
    with pytest.raises(FormatError, match="model"):
        velodyne.VelodyneStream(detect_packets=1).push(unknown, t[:1])
    forced = velodyne.VelodyneStream("hdl32e", detect_packets=1)
    forced.push(unknown, t[:1])
    assert forced.model is velodyne.HDL32E


def test_dual_return_packets(lidar_dir: Path) -> None:
    pay, t = payloads(lidar_dir / "velodyne_vlp16_example.pcap")
    dual = pay[:4].copy()
    dual[:, 1204] = 0x39
    for b in range(1, 12, 2):  # blocks in pairs with the same azimuth (last, then strongest)
        dual[:, b * 100 + 2:b * 100 + 4] = dual[:, (b - 1) * 100 + 2:(b - 1) * 100 + 4]
    pts, bad = velodyne.decode_packets(dual, t[:4], velodyne.VLP16)
    ref = [p for i in range(4) for p in ref_velodyne(dual[i].tobytes(), int(t[i]), "vlp16")]
    assert bad == 0 and len(pts) == len(ref)
    np.testing.assert_allclose(np.array([tuple(p) for p in pts], float), np.array(ref, float),
                               rtol=1e-5, atol=1e-4)
    assert set(np.unique(pts["return_idx"])) == {0, 1}
    # both returns of a pair share their firing times; dual packets come twice as often
    assert pts["t"].max() - t[0] < 6 * 110.592 + 3 * 1327
    dev = (np.arange(16) * 663.552).astype(np.int64)
    assert velodyne.timing_model(dev, np.full(16, 0x39)) == "vlp16"
    assert velodyne.timing_model(dev, np.full(16, 0x37)) is None


def test_bad_blocks_are_counted(lidar_dir: Path) -> None:
    pay, t = payloads(lidar_dir / "velodyne_vlp16_example.pcap")
    bad = pay[:2].copy()
    bad[0, 300] = 0x00  # block 3 flag broken
    bad[1, 502:504] = [0xFF, 0xFF]  # block 5 azimuth 65535
    pts, n_bad = velodyne.decode_packets(bad, t[:2], velodyne.VLP16)
    assert n_bad == 2
    good, _ = velodyne.decode_packets(pay[:2], t[:2], velodyne.VLP16)
    assert len(pts) < len(good)


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=1206, max_size=1206), st.sampled_from(["vlp16", "hdl32e"]))
def test_fuzz_velodyne_packets(raw: bytes, model: str) -> None:
    pay = np.frombuffer(raw, np.uint8).reshape(1, -1)
    pts, _ = velodyne.decode_packets(pay, np.array([0]), velodyne.MODELS[model])
    ref = ref_velodyne(raw, 0, model)
    assert len(pts) == len(ref)
    if ref:
        np.testing.assert_allclose(np.array([tuple(p) for p in pts], float),
                                   np.array(ref, float), rtol=1e-5, atol=1e-3)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1205), st.integers(0, 255)), min_size=1, max_size=40))
def test_fuzz_flagged_velodyne_packets(flips: list[tuple[int, int]]) -> None:
    from conftest import DATA

    p = DATA / "lidar" / "velodyne_vlp16_example.pcap"
    if not p.exists():
        return
    raw = bytearray(_first_payload(p))
    for pos, v in flips:
        raw[pos] = v
    pts, _ = velodyne.decode_packets(np.frombuffer(bytes(raw), np.uint8), np.array([0]),
                                     velodyne.VLP16)
    assert len(pts) == len(ref_velodyne(bytes(raw), 0, "vlp16"))
    assert np.isfinite(pts["x"]).all()


_FIRST: dict[Path, bytes] = {}


def _first_payload(p: Path) -> bytes:
    if p not in _FIRST:
        _FIRST[p] = payloads(p)[0][0].tobytes()
    return _FIRST[p]


def test_device_time_around_the_hour() -> None:
    hour = velodyne.HOUR_US
    ref = np.array([5 * hour + 10, 5 * hour + hour - 10])
    dev = np.array([hour - 5, 3])  # just before the host's hour / just after the next one
    t = velodyne.device_time_us(dev, ref)
    assert list(t) == [4 * hour + hour - 5, 6 * hour + 3]


# --- Ouster -------------------------------------------------------------------------------


def test_ouster_expected_values(lidar_dir: Path) -> None:
    p = lidar_dir / "ouster_os1_64_legacy_1024x10.pcap"
    pts, cols, counts = ouster.read_points(p, keep_zero=True)
    assert counts["packets"] == 100 and len(cols) == 1600
    assert sorted(set(cols["frame_id"].tolist())) == [12072, 12073, 12074]
    assert (int(cols["measurement_id"][0]), int(cols["measurement_id"][-1])) == (800, 351)
    assert (int(cols["encoder"][0]), int(cols["encoder"][-1])) == (70_400, 30_888)
    assert (cols["status"] == 0xFFFFFFFF).all()
    assert len(pts) == 102_400 and int((pts["distance_m"] > 0).sum()) == 92_270
    assert float(pts["distance_m"].max()) == pytest.approx(143.208, abs=1e-4)
    assert (int(cols["t_ns"][0]), int(cols["t_ns"][-1])) == (1_561_675_845_250_318_848,
                                                            1_561_675_845_406_403_584)
    meta = json.loads((lidar_dir / "ouster_os1_64_legacy_1024x10.json").read_text())
    assert meta["lidar_mode"] == "1024x10"
    assert len(meta["beam_altitude_angles"]) == len(meta["beam_azimuth_angles"]) == 64
    assert meta["beam_altitude_angles"][0] == pytest.approx(16.856, abs=5e-4)
    assert meta["beam_altitude_angles"][-1] < 0
    from edgesnn_drivers.network import pcap

    pk = pcap.read_packets(p)  # 100 UDP packets 35117 -> 7502, 12 608-byte payloads
    assert len(pk) == 100 and (pk["proto"] == 17).all()
    assert set(pk["sport"].tolist()) == {35117} and set(pk["dport"].tolist()) == {7502}
    assert (pk["length"] == 42 + 12_608).all()
    assert (int(pk["t"][0]), int(pk["t"][-1])) == (1_561_675_844_795_833, 1_561_675_844_950_641)
    d = info(str(p))
    assert d["format"] == "ouster-pcap" and d["nonzero_returns"] == 92_270
    assert (d["data_packets"], d["columns"], d["pixels"]) == (100, 1600, 102_400)


def test_ouster_kernel_matches_reference(lidar_dir: Path) -> None:
    p = lidar_dir / "ouster_os1_64_legacy_1024x10.pcap"
    meta = ouster.load_metadata(ouster.metadata_beside(p))
    pay = next(ouster.iter_pcap_packets(p, meta.beams))[0]
    for i in (0, 57):
        pts, cols, bad = ouster.decode_packets(pay[i], meta)
        rp, rc = ref_ouster(pay[i].tobytes(), list(meta.altitude_deg), list(meta.azimuth_deg))
        assert bad == 0 and len(pts) == len(rp)
        got = np.stack([pts[f].astype(float) for f in
                        ("t", "x", "y", "z", "distance_m", "ring")], 1)
        np.testing.assert_allclose(got, np.array(rp, float), rtol=1e-5, atol=1e-4)
        assert [tuple(int(c[f]) for f in ouster.COLUMN_INFO.names) for c in cols] == rc


def test_ouster_invalid_columns_and_metadata_errors(lidar_dir: Path, tmp_path: Path) -> None:
    p = lidar_dir / "ouster_os1_64_legacy_1024x10.pcap"
    meta = ouster.load_metadata(ouster.metadata_beside(p))
    pay = next(ouster.iter_pcap_packets(p, meta.beams))[0][:1].copy()
    cb = 16 + 12 * 64 + 4
    pay[0, 2 * cb - 4:2 * cb] = 0  # column 1 status: invalid
    pts, _, bad = ouster.decode_packets(pay, meta)
    assert bad == 1 and not (pts["azimuth_deg"] == 0).all()
    bad_meta = tmp_path / "m.json"
    bad_meta.write_text(json.dumps({"beam_altitude_angles": [1.0]}))
    with pytest.raises(ValueError, match="beam_azimuth_angles"):
        ouster.load_metadata(bad_meta)
    bad_meta.write_text(json.dumps({"beam_altitude_angles": [1.0], "beam_azimuth_angles": [0.0],
                                    "udp_profile_lidar": "RNG19_RFL8_SIG16_NIR16"}))
    with pytest.raises(ValueError, match="legacy"):
        ouster.load_metadata(bad_meta)
    d = built(ouster.OusterPcapDriver, {"path": str(p), "metadata": str(tmp_path / "none.json")},
              BuildContext(), "o")
    with pytest.raises(FormatError, match="metadata"):
        next(d.iter_batches())


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=16 * (20 + 12 * 2), max_size=16 * (20 + 12 * 2)))
def test_fuzz_ouster_packets(raw: bytes) -> None:
    meta = ouster.Metadata(np.array([2.0, -2.0]), np.array([1.0, -1.0]), 512, 10, "512x10")
    pts, cols, bad = ouster.decode_packets(np.frombuffer(raw, np.uint8), meta)
    rp, rc = ref_ouster(raw, [2.0, -2.0], [1.0, -1.0])
    assert len(pts) == len(rp) and len(cols) == 16
    assert np.isfinite(pts["x"]).all()


def test_bench_cases(data_dir: Path) -> None:
    cases = velodyne.bench_io_cases(data_dir) + ouster.bench_io_cases(data_dir)
    got = {Path(c["file"]).name: c["run"]() for c in cases}
    assert got == {"velodyne_vlp16_example.pcap": 84, "velodyne_hdl32e_short.pcap": 91,
                   "ouster_os1_64_legacy_1024x10.pcap": 100}
    assert all(c["unit"] == "packets" and c["realtime_items_per_s"] > 0 for c in cases)
