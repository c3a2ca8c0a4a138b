"""Readouts: first spike, rate threshold, anomaly score (each produces Detections)."""

from __future__ import annotations

import numpy as np

from edgesnn.components import BuildContext, lookup
from edgesnn.events import SpikeRaster


def _make(type_name: str, body: dict):
    cls = lookup("readout", type_name)
    assert cls is not None, type_name
    problems: list = []
    params = cls.schema.validate(body, f"readouts.{type_name}", problems)
    assert problems == []
    return cls(type_name, params, BuildContext())


def _raster(dense: np.ndarray, t0: int = 0, dt: int = 1000) -> SpikeRaster:
    return SpikeRaster.from_dense(dense, t0_us=t0, dt_us=dt)


def test_first_spike_picks_the_earliest_label_per_window() -> None:
    r = _make("first_spike", {"labels": ["a", "b"], "neurons_per_label": 2, "window_ms": 10})
    dense = np.zeros((30, 4), bool)
    dense[3, 3] = True  # b first in window 0 (latency 3 ms)
    dense[5, 0] = True
    dense[12, 0] = dense[12, 1] = dense[12, 2] = True  # tie at one step: a has more spikes
    dense[25, 2] = True  # window 2: b at latency 5 ms
    dets = r.update(_raster(dense[:17])) + r.update(_raster(dense[17:], t0=17_000))
    assert [(d.label, d.t_sensor_us) for d in dets] == [("b", 3000), ("a", 12000), ("b", 25000)]
    assert [round(d.score, 3) for d in dets] == [0.7, 0.8, 0.5]


def test_rate_threshold() -> None:
    r = _make("rate_threshold", {"labels": ["x", "y"], "window_ms": 100, "threshold_hz": 50})
    dense = np.zeros((300, 2), bool)
    dense[0:100:10, 0] = True  # 100 Hz for x in window 0
    dense[100:200:25, 1] = True  # 40 Hz for y in window 1: below threshold
    dense[200:300:5, 1] = True  # 200 Hz for y in window 2
    dets = r.update(_raster(dense)) + r.flush()
    assert [(d.label, d.score) for d in dets] == [("x", 100.0), ("y", 200.0)]
    assert dets[0].t_sensor_us == 90_000


def test_anomaly_learns_a_baseline_then_flags_deviations() -> None:
    r = _make(
        "anomaly", {"window_ms": 10, "baseline_windows": 20, "threshold": 3.0, "min_std": 0.5}
    )
    rng = np.random.default_rng(0)
    n_w, dense_parts = 60, []
    for w in range(n_w):
        block = rng.random((10, 8)) < 0.1
        if w in (40, 50):
            block[:, :4] = True  # a burst on half of the channels
        dense_parts.append(block)
    dense = np.concatenate(dense_parts)
    dets = []
    for k in range(0, dense.shape[0], 7):  # uneven raster sizes
        dets += r.update(_raster(dense[k : k + 7], t0=k * 1000))
    flagged = sorted({d.t_sensor_us // 10_000 for d in dets})
    assert flagged == [40, 50]
    assert all(d.label == "anomaly" and d.score >= 3.0 for d in dets)
    assert r.status()["learning_baseline"] is False


def test_a_window_closes_with_the_raster_that_ends_it() -> None:
    """A window whose last step is in this raster is decided in this update, not when a later
    step arrives (on a live stream, one step sooner); flush then has nothing left to close."""
    r = _make("rate_threshold", {"labels": ["x"], "window_ms": 10, "threshold_hz": 50})
    dense = np.zeros((10, 1), bool)
    dense[::2, 0] = True  # 500 Hz in window [0, 10 ms)
    dets = r.update(_raster(dense))
    assert [(d.label, d.score) for d in dets] == [("x", 500.0)]
    assert r.flush() == []
    r2 = _make("rate_threshold", {"labels": ["x"], "window_ms": 10, "threshold_hz": 50})
    assert r2.update(_raster(dense[:9])) == []  # one step short: still open
    assert [d.score for d in r2.flush()] == [500.0]  # the partial window, at the end


class _OldSpikeCount:
    """spike_count's window close and vote as they were (np.add.at, a stable argsort): the
    reference the faster ones must equal."""

    def __init__(self, r):  # noqa: ANN001
        self.r = r

    def close(self) -> list:
        r = self.r
        r.windows += 1
        c = r.counts
        total = int(c.sum())
        dets = []
        if total >= r.params["min_spikes"]:
            order = np.argsort(c, kind="stable")[::-1]
            lead = int(c[order[0]] - (c[order[1]] if len(c) > 1 else 0))
            if lead >= r.params["margin"]:
                label = r.labels[int(order[0])]
                if r.params["emit_repeats"] or label != r.last_label:
                    dets.append((label, float(c[order[0]]) / total, r.last_spike_t,
                                 {"counts": c.tolist(), "window_us": r.window_us}))
                r.last_label = label
        r.counts = np.zeros_like(c)
        r._total = 0
        return dets

    def votes(self, neurons) -> None:  # noqa: ANN001
        r = self.r
        if r.assignments is None:
            np.add.at(r.counts, neurons // r.group, 1)
        else:
            lab = r.assignments[neurons[neurons < r.assignments.size]]
            np.add.at(r.counts, lab[lab >= 0], 1)
        r._total = int(r.counts.sum())


def test_spike_count_equals_its_argsort_and_add_at_reference() -> None:
    """Random rasters through spike_count with groups or assignments, margins, minimum
    evidence and emit_repeats off: the same detections (label, score, time, counts) as the
    np.add.at / stable-argsort implementation, ties included."""
    rng = np.random.default_rng(5)
    cases = [
        {"labels": ["a", "b", "c"], "neurons_per_label": 2, "window_ms": 3.0, "margin": 1},
        {"labels": ["a", "b", "c", "d"], "window_ms": 1.0, "margin": 0, "min_spikes": 2},
        {"labels": ["x", "y"], "assignments": [0, 1, -1, 1, 0, -1], "window_ms": 2.0,
         "margin": 2, "emit_repeats": False},
        {"labels": ["only"], "window_ms": 1.0},
    ]
    total = 0
    for params in cases:
        new = _make("spike_count", params)
        old = _make("spike_count", params)
        ref = _OldSpikeCount(old)
        old._close_window = ref.close
        old._votes = ref.votes
        n = new.n_inputs
        t0 = 0
        for k in range(400):
            steps = int(rng.integers(1, 5))
            per = rng.integers(0, 3, steps)
            idx = np.concatenate([np.sort(rng.choice(n, min(int(p), n), replace=False))
                                  for p in per]).astype(np.int32)
            ptr = np.concatenate([[0], np.cumsum(np.minimum(per, n))]).astype(np.int64)
            raster = SpikeRaster("net", k, t0, 1000, n, ptr, idx)
            t0 += steps * 1000
            got = [(d.label, d.score, d.t_sensor_us, d.extra) for d in new.update(raster)]
            want = old.update(raster)
            assert got == want
            total += len(got)
        assert [(d.label, d.score) for d in new.flush()] == [d[:2] for d in old.flush()]
    assert total > 300
