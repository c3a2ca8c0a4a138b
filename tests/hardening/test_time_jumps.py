"""Time jumps in live streams (forward or back, any size) through every encoder that bins by
time: counted in `time_jumps`, no raster spans the gap, and the jump allocates nothing per
missing step (numpy allocations are traced)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from edgesnn.components import BuildContext
from edgesnn.encoders.audio import CochleaEncoder, LogMelEncoder
from edgesnn.encoders.binning import MAX_GAP_US
from edgesnn.encoders.dvs import DVSPoolEncoder
from edgesnn.encoders.generic import (
    DeltaEncoder,
    LatencyEncoder,
    PopulationEncoder,
    RateEncoder,
    built,
)
from edgesnn.encoders.lidar import LidarRangeChangeEncoder
from edgesnn.encoders.network import NetworkFlowEncoder
from edgesnn.encoders.vibration import BandEnergyEncoder
from edgesnn.events import DVS_EVENT, FLOW_FEATURES, LIDAR_POINT, EventBatch

DT = 1000
BATCH_US = 20_000
RATE = 16_000  # audio / sample rate of the sample batches
# forward and back, from just over the 10 s limit to far beyond a 32-bit microsecond clock
JUMPS = [1 << 31, -(1 << 31), MAX_GAP_US + 5 * BATCH_US, -(1 << 40), 1 << 44]
# steps one batch may close after a jump; a 2^31 µs leap would be 2.1 million
MAX_STEPS = MAX_GAP_US // DT + 2 * BATCH_US // DT
PEAK_BYTES = 4 << 20  # numpy allocations while a jumped batch is encoded


def samples(t: int, k: int) -> EventBatch:
    """20 ms of a 440 Hz tone with a rising level (spikes in every encoder), at time t."""
    n = RATE * BATCH_US // 1_000_000
    x = (0.2 + 0.1 * (k % 5)) * np.sin(2 * np.pi * 440 * (np.arange(n) + k * n) / RATE)
    return EventBatch("s", k, t, t + BATCH_US, x.astype(np.float32)[:, None], "samples", 0,
                      {"sample_rate_hz": RATE})


def lidar(t: int, k: int) -> EventBatch:
    """A sweep of 16 rings x 360 points whose ranges change from batch to batch."""
    n = 16 * 360
    p = np.zeros(n, LIDAR_POINT)
    p["t"] = t + np.arange(n) * BATCH_US // n
    p["ring"] = np.arange(n) // 360
    p["azimuth_deg"] = np.arange(n) % 360
    p["distance_m"] = 5.0 + (k % 3)
    return EventBatch("l", k, t, t + BATCH_US, p, "lidar", 0, {})


def dvs(t: int, k: int) -> EventBatch:
    ev = np.zeros(400, DVS_EVENT)
    ev["x"], ev["y"] = np.arange(400) % 32, (np.arange(400) // 32) % 32
    ev["t"] = t + np.arange(400) * BATCH_US // 400
    return EventBatch("d", k, t, t + BATCH_US, ev, "dvs", 0, {"width": 32, "height": 32})


def flows(t: int, k: int) -> EventBatch:
    r = np.zeros(20, FLOW_FEATURES)
    r["t"] = t + np.arange(20) * BATCH_US // 20
    r["packets_per_s"] = 100.0 * (1 + k % 4)
    return EventBatch("f", k, t, t + BATCH_US, r, "records", 0, {})


CASES: dict[str, tuple[type, dict[str, Any], Callable[[int, int], EventBatch]]] = {
    "lidar_range_change": (LidarRangeChangeEncoder, {"threshold_m": 0.1}, lidar),
    "cochlea": (CochleaEncoder, {"bands": 8}, samples),
    "logmel": (LogMelEncoder, {"bands": 8, "floor_db": -90.0}, samples),
    "rate": (RateEncoder, {"range": [-1.0, 1.0]}, samples),
    "latency": (LatencyEncoder, {"range": [-1.0, 1.0]}, samples),
    "population": (PopulationEncoder, {"range": [-1.0, 1.0]}, samples),
    "delta": (DeltaEncoder, {"threshold": 0.05}, samples),
    "band_energy": (BandEnergyEncoder, {"bands": 4, "window_ms": 4.0, "hop_ms": 2.0}, samples),
    "network_flow": (NetworkFlowEncoder, {"features": ["packets_per_s"],
                                         "ranges": {"packets_per_s": [0.0, 1000.0]}}, flows),
    "dvs_pool": (DVSPoolEncoder, {"sensor": [32, 32], "grid": [4, 4]}, dvs),
}


@pytest.mark.parametrize("name", list(CASES))
def test_time_jumps_are_counted_and_allocate_nothing_per_missing_step(name: str) -> None:
    cls, params, make = CASES[name]
    enc = built(cls, params, BuildContext(dt_us=DT))
    t = 1_000_000_000  # a Unix-like µs clock far from 0, so jumps back stay positive
    k = 0
    spikes_after: list[int] = []
    for jump in [0, *JUMPS]:
        t += jump
        tracemalloc.start()
        try:
            for i in range(4):  # the jumped batch, then the stream goes on from there
                r = enc.encode(make(t + i * BATCH_US, k))
                k += 1
                if r is not None:
                    assert 0 <= r.n_steps <= MAX_STEPS, (name, jump, r.n_steps)
                    assert abs(r.t0_us - t) <= MAX_GAP_US + 4 * BATCH_US, (name, jump, r.t0_us)
                    if i:
                        spikes_after.append(int(r.ptr[-1] - r.ptr[0]))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        if jump:  # (the first batches load compiled kernels)
            assert peak < PEAK_BYTES, (name, jump, peak)
        t += 4 * BATCH_US
    st = enc.status()
    assert st["time_jumps"] == len(JUMPS), (name, st)
    assert "jump_discarded" in st
    if name != "network_flow":  # flow windows of constant rate code the same level each step
        assert sum(spikes_after) > 0, name  # spikes keep flowing after the jumps


@pytest.mark.parametrize("name", ["rate", "cochlea", "delta"])
def test_one_long_continuous_batch_is_not_a_jump(name: str) -> None:
    """A 20 s block of samples in one batch (longer than the jump limit) is data, not a gap."""
    cls, params, _ = CASES[name]
    enc = built(cls, params, BuildContext(dt_us=DT))
    n = 20 * 1000
    x = np.sin(np.arange(n) / 50.0).astype(np.float32)[:, None]
    r = enc.encode(EventBatch("s", 0, 0, 20_000_000, x, "samples", 0, {"sample_rate_hz": 1000}))
    assert r is not None and r.n_steps == n
    assert enc.status()["time_jumps"] == 0


def test_record_windows_restart_after_the_clock_goes_back() -> None:
    """The windows of live LiDAR / packet drivers: a clock reset (2^31 µs back) restarts the
    windows instead of dropping every later record as late; forward leaps skip empty windows."""
    from edgesnn_drivers.network.windows import TimeWindows

    win = TimeWindows("l", "lidar", LIDAR_POINT, BATCH_US)
    t, out = 1 << 40, []
    for jump in [0, 1 << 31, -(1 << 31), -(1 << 35)]:
        t += jump
        for k in range(5):
            out += list(win.add(lidar(t + k * BATCH_US, k).events))
    assert win.time_jumps == 2 and win.late == 0
    assert sum(len(b) for b in out) + sum(len(h) for h in win._held) == 20 * 16 * 360
    assert all(b.t_end_us - b.t_start_us == BATCH_US for b in out)


def test_flow_windows_restart_after_the_clock_goes_back() -> None:
    from edgesnn.events import PACKET
    from edgesnn.flows import FlowWindows

    fw = FlowWindows(window_us=100_000, hop_us=50_000)
    t, rows = 1 << 40, 0
    for jump in [0, -(1 << 31), 1 << 20]:
        t += jump
        for k in range(20):
            pk = np.zeros(10, PACKET)
            pk["t"] = t + k * 10_000 + np.arange(10) * 1000
            pk["length"] = 100
            rows += len(fw.add(pk))
    st = fw.status()
    assert st["window_time_jumps"] == 1 and st["late_packets"] == 0, st
    assert rows >= 3 * 3  # windows keep coming after the jump back
