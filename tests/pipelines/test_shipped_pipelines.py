"""The shipped modality pipelines, run end to end by `edgesnn run` on the real recordings.

Each pipeline is replayed at speed "max" with its path set to a recording in ../shared/data;
detections go to a JSON-lines file sink added with --set (and, for one pipeline, to a real
ZeroMQ SUB on loopback). Each test checks that the run ends by itself, exits 0, and that the
detections agree with what the recording holds, computed here from the decoded data.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import tomllib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import free_port

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
PIPELINES = REPO / "pipelines"


def need(rel: str) -> Path:
    p = DATA / rel
    if not p.exists():
        pytest.skip(f"real recording {p} not present (../shared/data beside the repo)")
    return p


def settings(name: str) -> dict:
    return tomllib.loads((PIPELINES / f"{name}.toml").read_text())


def run_pipeline(name: str, driver: str, path: Path, readout: str, tmp_path: Path,
                 extra: list[str] | None = None, endpoint: str | None = None
                 ) -> list[dict]:
    """`edgesnn run` the shipped pipeline on `path` at max speed; its detections."""
    out = tmp_path / f"{name}.jsonl"
    sets = {
        f"drivers.{driver}.path": json.dumps(str(path)),
        f"drivers.{driver}.speed": '"max"',
        "sinks.zmq.endpoint": endpoint or f"tcp://127.0.0.1:{free_port()}",
        "sinks.jsonl.type": "file",
        "sinks.jsonl.inputs": json.dumps([readout]),
        "sinks.jsonl.path": json.dumps(str(out)),
    }
    args = [sys.executable, "-m", "edgesnn", "run", str(PIPELINES / f"{name}.toml")]
    for k, v in sets.items():
        args += ["--set", f"{k}={v}"]
    for item in extra or []:
        args += ["--set", item]
    r = subprocess.run(args, capture_output=True, text=True, timeout=240, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "failed" not in r.stderr, r.stderr[-3000:]
    lines = out.read_text().splitlines() if out.exists() else []
    dets = [json.loads(x) for x in lines]
    assert all(d["kind"] == "det" and d["pipeline"] == name for d in dets)
    return dets


def test_shipped_pipelines_validate_without_the_data(tmp_path: Path) -> None:
    """Default paths point beside the repo; a copy elsewhere (no data) still validates, and a
    missing recording is a clear error at start naming the file."""
    from edgesnn.config import pipeline as pl

    for name in ("keyword_audio", "bearing_vibration", "intrusion_pcap", "lidar_obstacles",
                 "dvs_motion"):
        copy = tmp_path / f"{name}.toml"
        copy.write_text((PIPELINES / f"{name}.toml").read_text())
        assert pl.load(copy).components  # the relative default path does not exist here
    r = subprocess.run([sys.executable, "-m", "edgesnn", "run", str(tmp_path / "dvs_motion.toml"),
                        "--set", "drivers.camera.speed=\"max\"",
                        "--set", f"sinks.zmq.endpoint=tcp://127.0.0.1:{free_port()}"],
                       capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode != 0
    assert "aedat2_dvs128_alex_walking_again.aedat not found" in r.stderr
    assert "drivers.camera.path" in r.stderr


# --- DVS ------------------------------------------------------------------------------------


def test_dvs_motion_on_a_dvs128_recording_over_zeromq(tmp_path: Path) -> None:
    """The recording is replayed to its end; the detections arrive on a real ZeroMQ SUB, in
    order and without gaps, and equal the file sink's."""
    from edgesnn.client import Subscriber

    rec = need("dvs/aedat2_dvs128_alex_walking_again.aedat")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    got: list[dict] = []
    sub = Subscriber(endpoint, timeout_ms=500)
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            try:
                got.append(sub.recv())
            except TimeoutError:
                continue

    th = threading.Thread(target=listen, daemon=True)
    th.start()
    try:
        dets = run_pipeline("dvs_motion", "camera", rec, "direction", tmp_path,
                            extra=["sinks.zmq.join_wait_ms=1500"], endpoint=endpoint)
        deadline = 50
        while len(got) < len(dets) and deadline:
            stop.wait(0.1)
            deadline -= 1
    finally:
        stop.set()
        th.join(2)
        sub.close()
    assert len(dets) > 0
    assert [(m["label"], m["t_sensor_us"]) for m in got] == [
        (d["label"], d["t_sensor_us"]) for d in dets]
    assert sub.gaps == 0 and [m["seq"] for m in got] == list(range(len(got)))
    labels = settings("dvs_motion")["readouts"]["direction"]["labels"]
    # the recording spans t 41 306 606 .. 48 193 156 µs (shared/data/README.md)
    for d in dets:
        assert d["label"] in labels
        assert 41_306_606 <= d["t_sensor_us"] <= 48_193_156 + 50_000
        counts = d["extra"]["counts"]
        assert counts[labels.index(d["label"])] == max(counts) >= 2  # min_spikes


# --- audio ------------------------------------------------------------------------------------


def test_keyword_audio_on_spoken_digits_and_on_silence(tmp_path: Path) -> None:
    import wave

    rec = need("audio/fsdd/0_jackson_0.wav")  # 5 148 frames at 8 kHz: 0.6435 s
    dets = run_pipeline("keyword_audio", "mic", rec, "region", tmp_path)
    labels = settings("keyword_audio")["readouts"]["region"]["labels"]
    assert len(dets) > 0 and {d["label"] for d in dets} <= set(labels)
    assert all(0 <= d["t_sensor_us"] <= 5148 * 1_000_000 // 8000 + 50_000 for d in dets)
    for d in dets:
        c = d["extra"]["counts"]
        assert c[labels.index(d["label"])] == max(c)
    # the same pipeline on a real silent file of the same format: no detection at all
    silent = tmp_path / "silence.wav"
    with wave.open(str(silent), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(2 * 8000))
    assert run_pipeline("keyword_audio", "mic", silent, "region", tmp_path / "s") == []


# --- vibration --------------------------------------------------------------------------------


def test_bearing_vibration_scores_every_window_after_the_baseline(tmp_path: Path) -> None:
    rec = need("vibration/cwru/cwru_12k_de_inner_race_007_0hp_IR007_0.mat")
    cfg = settings("bearing_vibration")["readouts"]["health"]
    dets = run_pipeline("bearing_vibration", "accel", rec, "health", tmp_path)
    # 121 265 samples at 12 kHz = 10.1 s: 101 whole 100 ms windows, the first 50 learn
    assert len(dets) == 121_265 * 10 // 12_000 - cfg["baseline_windows"]
    t = np.array([d["t_sensor_us"] for d in dets])
    assert (np.diff(t) > 0).all() and t[-1] <= 121_265 * 1_000_000 // 12_000
    for d in dets:
        assert d["label"] == ("anomaly" if d["score"] >= cfg["threshold"] else "normal")
    # measured: a steady recording scored against its own first 5 s has no anomaly window
    assert Counter(d["label"] for d in dets) == {"normal": len(dets)}


# --- network traffic --------------------------------------------------------------------------


def _syn_windows(path: Path) -> np.ndarray:
    """End times of the 1 s flow windows whose SYN share is >= 0.75, from decoded packets."""
    from edgesnn_drivers.network import pcap

    from edgesnn.flows import FlowWindows

    fw = FlowWindows(1_000_000, 100_000)
    pk = pcap.read_packets(path)
    r = np.concatenate([fw.add(pk), fw.flush()])
    return np.asarray(r["t"][r["syn_ratio"] >= 0.75], np.int64)


def test_intrusion_pcap_marks_the_syn_scan_phase(tmp_path: Path) -> None:
    rec = need("network/pcap/attack_synscan.pcap")
    dets = run_pipeline("intrusion_pcap", "capture", rec, "pattern", tmp_path)
    heavy = np.array([d["t_sensor_us"] for d in dets if d["label"] == "syn_heavy"])
    low = np.array([d["t_sensor_us"] for d in dets if d["label"] == "low_syn"])
    ref = _syn_windows(rec)
    assert len(ref) and len(heavy) and len(low)
    # SYN-heavy only while the flow windows are SYN-heavy (plus one readout window of lag)
    assert heavy.min() >= ref.min() and heavy.max() <= ref.max() + 500_000
    assert low.min() > ref.min()  # the handshake-free scan comes first in this capture


@pytest.mark.parametrize("name", ["normal_http_google.pcapng", "attack_arppoison.pcap"])
def test_intrusion_pcap_no_syn_pattern_in_ordinary_traffic(tmp_path: Path, name: str) -> None:
    rec = need(f"network/pcap/{name}")
    assert len(_syn_windows(rec)) == 0
    dets = run_pipeline("intrusion_pcap", "capture", rec, "pattern", tmp_path)
    assert dets and {d["label"] for d in dets} == {"low_syn"}


# --- LiDAR ------------------------------------------------------------------------------------


def test_lidar_obstacles_match_the_nearest_returns(tmp_path: Path) -> None:
    from edgesnn_drivers.lidar import velodyne

    rec = need("lidar/velodyne_vlp16_example.pcap")
    cfg = settings("lidar_obstacles")
    enc, ro = cfg["encoders"]["ranges"], cfg["readouts"]["sectors"]
    dets = run_pipeline("lidar_obstacles", "lidar", rec, "sectors", tmp_path)
    # reference: the nearest in-band return of every sector over the whole capture
    pts, _ = velodyne.read_points(rec)
    z0, z1 = enc["z_band_m"]
    band = pts[(pts["z"] >= z0) & (pts["z"] <= z1) & (pts["distance_m"] > 0)]
    sector = (band["azimuth_deg"].astype(np.float64) * enc["sectors"] / 360).astype(int)
    near = np.full(enc["sectors"], np.inf)
    np.minimum.at(near, sector % enc["sectors"], band["distance_m"])
    expect = set(np.flatnonzero(near < ro["obstacle_m"]).tolist())
    assert expect  # this indoor capture has returns within 2.5 m
    got = {d["extra"]["sector"] for d in dets if d["label"] == "obstacle"}
    assert got == expect
    for d in dets:
        s = d["extra"]["sector"]
        assert d["label"] == "obstacle"  # one pass: nothing moves away again
        assert near[s] - 1e-3 <= d["extra"]["distance_m"] < ro["obstacle_m"]
