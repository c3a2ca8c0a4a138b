"""Rate, latency, delta and population encoders: defining properties and kernel references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgesnn.components import BuildContext
from edgesnn.encoders.generic import (
    DeltaEncoder,
    LatencyEncoder,
    PopulationEncoder,
    RateEncoder,
    built,
    csr_kernel,
    delta_kernel,
    hold_fill_kernel,
    latency_kernel,
    population_kernel,
    rate_kernel,
    step_means_kernel,
)
from edgesnn.errors import ConfigError
from edgesnn.events import FLOW_FEATURES, EventBatch, SpikeRaster

DT = 1000


def run(enc, values: np.ndarray, rate_hz: int = 1000, splits: list[int] | None = None,  # noqa: ANN001
        t0_us: int = 0) -> np.ndarray:
    """Feed (n, C) samples at rate_hz in batches; the dense raster of everything emitted."""
    values = np.asarray(values, np.float32).reshape(len(values), -1)
    out: list[SpikeRaster] = []
    pos = 0
    for n in (splits or []) + [len(values)]:
        n = min(n, len(values) - pos)
        if n <= 0:
            continue
        a = t0_us + pos * 1_000_000 // rate_hz
        b = t0_us + (pos + n) * 1_000_000 // rate_hz
        r = enc.encode(EventBatch("s", 0, a, b, values[pos:pos + n], "samples", 0,
                                  {"sample_rate_hz": rate_hz}))
        if r is not None:
            out.append(r)
        pos += n
    r = enc.flush()
    if r is not None:
        out.append(r)
    if not out:
        return np.zeros((0, enc.n_channels), bool)
    for a, b in zip(out, out[1:]):
        assert b.t0_us == a.t_end_us and b.seq == a.seq + 1
    return np.concatenate([r.to_dense() for r in out])


# --- rate -----------------------------------------------------------------------------------------


def test_rate_regular_count_is_proportional_to_value() -> None:
    values = [0.0, 0.1, 0.25, 0.5, 0.8, 1.0]
    enc = built(RateEncoder, {"channels": list(range(6)), "mode": "regular",
                              "max_rate_hz": 400.0}, BuildContext(dt_us=DT))
    x = np.tile(values, (2000, 1))  # 2 s of constant values
    counts = run(enc, x).sum(axis=0)
    expect = np.array(values) * 400.0 * 2.0
    assert np.all(np.abs(counts - expect) <= 1), counts


def test_rate_poisson_mean_and_seed() -> None:
    x = np.tile([0.2, 0.6], (5000, 1))
    p = {"channels": [0, 1], "max_rate_hz": 500.0, "seed": 7}
    a = run(built(RateEncoder, p, BuildContext(dt_us=DT)), x)
    b = run(built(RateEncoder, p, BuildContext(dt_us=DT)), x, splits=[1, 99, 1234])
    c = run(built(RateEncoder, dict(p, seed=8), BuildContext(dt_us=DT)), x)
    np.testing.assert_array_equal(a, b)  # seeded, and independent of batching
    assert not np.array_equal(a, c)
    for ch, v in enumerate([0.2, 0.6]):
        pr = v * 0.5  # probability per 1 ms step
        n = 5000
        mean, sd = n * pr, math.sqrt(n * pr * (1 - pr))
        assert abs(a[:, ch].sum() - mean) < 4.5 * sd
    # ratio of counts follows the ratio of values
    assert a[:, 1].sum() / a[:, 0].sum() == pytest.approx(3.0, rel=0.15)


def test_rate_range_mapping_and_step_means() -> None:
    # 10 samples per 1 ms step alternating lo/hi: the step mean is the middle of the range
    x = np.tile([[-5.0], [15.0]], (5000, 1))
    enc = built(RateEncoder, {"range": [-5.0, 15.0], "mode": "regular", "max_rate_hz": 1000.0},
                BuildContext(dt_us=DT))
    counts = run(enc, x, rate_hz=10_000).sum()
    assert abs(counts - 500) <= 1  # 1 s at x = 0.5 and 1000 Hz


def ref_rate(x, p_max, uniform, phase):  # noqa: ANN001, ANN201
    out = np.zeros(x.shape, bool)
    for j in range(x.shape[0]):
        for c in range(x.shape[1]):
            v = x[j, c]
            if not v > 0:
                continue
            p = min(1.0, min(v, 1.0) * p_max)
            if len(uniform):
                out[j, c] = uniform[j, c] < p
            else:
                phase[c] += p
                if phase[c] >= 1:
                    phase[c] -= 1
                    out[j, c] = True
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), poisson=st.booleans(), p_max=st.floats(0.0, 2.0))
def test_rate_kernel_matches_reference(seed: int, poisson: bool, p_max: float) -> None:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.5, 1.5, size=(40, 3))
    x[rng.random(x.shape) < 0.1] = np.nan
    u = rng.random(x.shape) if poisson else np.zeros((0, 3))
    ph1, ph2 = np.zeros(3), np.zeros(3)
    out = np.zeros(x.shape, bool)
    rate_kernel(x, p_max, u, ph1, out)
    np.testing.assert_array_equal(out, ref_rate(x, p_max, u, ph2))
    np.testing.assert_allclose(ph1, ph2)


# --- latency --------------------------------------------------------------------------------------


def test_latency_larger_value_spikes_earlier() -> None:
    values = [1.0, 0.75, 0.5, 0.25, 0.05, 0.0]
    enc = built(LatencyEncoder, {"channels": list(range(6)), "window_ms": 20.0},
                BuildContext(dt_us=DT))
    d = run(enc, np.tile(values, (100, 1)))  # five 20-step windows
    assert d.shape == (100, 6)
    for w in range(5):
        win = d[w * 20:(w + 1) * 20]
        first = [int(np.argmax(win[:, c])) if win[:, c].any() else None for c in range(6)]
        assert win[:, :5].sum(axis=0).tolist() == [1] * 5  # one spike per window
        assert first[5] is None  # x = 0 is at the threshold: silent
        assert first[:5] == [round((1 - v) * 19) for v in values[:5]]
        assert first[:5] == sorted(first[:5])  # earlier for larger


def test_latency_threshold_and_window_start_value() -> None:
    enc = built(LatencyEncoder, {"window_ms": 10.0, "threshold": 0.5}, BuildContext(dt_us=DT))
    x = np.concatenate([np.full(10, 0.4), np.full(10, 0.9), np.full(5, 0.2), np.full(5, 1.0)])
    d = run(enc, x[:, None])[:, 0]
    assert d[:10].sum() == 0  # 0.4 <= threshold
    assert np.flatnonzero(d).tolist() == [10 + round(0.1 * 9)]  # the third window starts at 0.2


def ref_latency(x, window, thr, pos, due):  # noqa: ANN001, ANN201
    out = np.zeros(x.shape, bool)
    for j in range(x.shape[0]):
        if pos[0] == 0:
            for c in range(x.shape[1]):
                due[c] = int(math.floor((1 - min(x[j, c], 1.0)) * (window - 1) + 0.5)) \
                    if x[j, c] > thr else -1
        for c in range(x.shape[1]):
            out[j, c] = due[c] == 0
            due[c] = due[c] - 1 if due[c] >= 0 else -1
        pos[0] = (pos[0] + 1) % window
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), window=st.integers(1, 12), thr=st.floats(0, 1))
def test_latency_kernel_matches_reference(seed: int, window: int, thr: float) -> None:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.2, 1.2, size=(50, 2))
    pos1, due1 = np.zeros(1, np.int64), np.full(2, -1, np.int64)
    pos2, due2 = [0], [-1, -1]
    out = np.zeros(x.shape, bool)
    latency_kernel(x, window, thr, pos1, due1, out)
    np.testing.assert_array_equal(out, ref_latency(x, window, thr, pos2, due2))


# --- delta ----------------------------------------------------------------------------------------


def ref_crossings(v: np.ndarray, thr: float) -> tuple[int, int]:
    """(up, down) crossings of a level-crossing coder started at v[0], one level at a time."""
    ref = v[0]
    up = down = 0
    for x in v[1:]:
        while x - ref >= thr:
            ref += thr
            up += 1
        while ref - x >= thr:
            ref -= thr
            down += 1
    return up, down


def test_delta_one_spike_per_threshold_crossing() -> None:
    t = np.arange(4000) / 1000  # 4 s at 1 kHz, slow enough for <= 1 crossing per 1 ms step
    v = 2.0 * np.sin(2 * np.pi * 0.5 * t) + 0.3 * t
    enc = built(DeltaEncoder, {"threshold": 0.1}, BuildContext(dt_us=DT))
    d = run(enc, v[:, None], splits=[3, 500, 17, 1000])
    up, down = ref_crossings(v.astype(np.float32).astype(np.float64), 0.1)
    assert d[:, 0].sum() == up and d[:, 1].sum() == down
    assert enc.status()["crossings"] == up + down
    assert up > 50 and down > 50
    # every spike sits where the value has moved a threshold since the previous one
    assert not (d[:, 0] & d[:, 1]).any()


def test_delta_large_jump_is_one_spike_but_all_crossings_counted() -> None:
    enc = built(DeltaEncoder, {"threshold": 1e-6, "polarity": "up"}, BuildContext(dt_us=DT))
    d = run(enc, np.array([[0.0], [1e6], [1e6], [-1e6]]))
    assert d.sum() == 1 and enc.n_channels == 1
    assert enc.status()["crossings"] == pytest.approx(1e12 + 2e12, rel=1e-6)


def test_send_on_delta_resets_reference() -> None:
    v = np.array([0.0, 0.15, 0.2, 0.26, 0.3, 0.34])  # level: ref 0.1 after 0.15 -> 0.2 crosses
    lvl = run(built(DeltaEncoder, {"threshold": 0.1}, BuildContext(dt_us=DT)), v[:, None])
    sod = run(built(DeltaEncoder, {"threshold": 0.1, "mode": "send_on_delta"},
                    BuildContext(dt_us=DT)), v[:, None])
    assert np.flatnonzero(lvl[:, 0]).tolist() == [1, 2, 4]
    assert np.flatnonzero(sod[:, 0]).tolist() == [1, 3]


def ref_delta(t, v, thr, level):  # noqa: ANN001, ANN201
    nc = v.shape[1]
    ref = [None] * nc
    out = []
    cross = 0
    for j in range(len(t)):
        for c in range(nc):
            x = v[j, c]
            if not np.isfinite(x):
                continue
            if ref[c] is None:
                ref[c] = x
                continue
            d = x - ref[c]
            if abs(d) >= thr:
                m = math.floor(abs(d) / thr)
                cross += m
                ref[c] = (ref[c] + math.copysign(m * thr, d)) if level else x
                out.append((int(t[j]), c if d > 0 else nc + c))
    return out, cross


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**31), thr=st.floats(0.01, 2.0), level=st.booleans())
def test_delta_kernel_matches_reference(seed: int, thr: float, level: bool) -> None:
    rng = np.random.default_rng(seed)
    v = np.cumsum(rng.normal(0, 0.5, size=(60, 3)), axis=0)
    v[rng.random(v.shape) < 0.05] = np.nan
    t = np.arange(60, dtype=np.int64) * 37
    ot, oc = np.empty(180, np.int64), np.empty(180, np.int32)
    counts = np.zeros(1, np.int64)
    k = delta_kernel(t, v, thr, np.zeros(3), np.zeros(3, np.uint8), level, False, ot, oc,
                     counts)
    ref, cross = ref_delta(t, v, thr, level)
    assert list(zip(ot[:k].tolist(), oc[:k].tolist())) == ref
    assert counts[0] == cross


def test_delta_on_records_fields() -> None:
    rec = np.zeros(6, FLOW_FEATURES)
    rec["t"] = [0, 1500, 2500, 3500, 4500, 9000]
    rec["packets_per_s"] = [0, 10, 20, 20, 5, 5]
    enc = built(DeltaEncoder, {"fields": ["packets_per_s"], "threshold": 10.0},
                BuildContext(dt_us=DT))
    r1 = enc.encode(EventBatch("n", 0, 0, 5000, rec[:5], "records"))
    r2 = enc.encode(EventBatch("n", 1, 5000, 10_000, rec[5:], "records"))
    d = np.concatenate([r1.to_dense(), r2.to_dense()])
    assert np.flatnonzero(d[:, 0]).tolist() == [1, 2] and np.flatnonzero(d[:, 1]).tolist() == [4]
    assert enc.check([]) == []


# --- population -----------------------------------------------------------------------------------


def test_population_gaussian_tuning_curves() -> None:
    n_neurons, width, steps = 7, 0.6, 4000
    xs = np.linspace(0, 1, 41)
    enc = built(PopulationEncoder, {"channels": list(range(len(xs))), "neurons": n_neurons,
                                    "width": width, "max_rate_hz": 250.0},
                BuildContext(dt_us=DT))
    counts = run(enc, np.tile(xs, (steps, 1))).sum(axis=0).reshape(len(xs), n_neurons)
    centres = np.linspace(0, 1, n_neurons)
    sigma = width / (n_neurons - 1)
    peak = 250.0 * steps / 1000
    for i in range(n_neurons):
        curve = counts[:, i]
        expect = peak * np.exp(-((xs - centres[i]) ** 2) / (2 * sigma**2))
        assert np.all(np.abs(curve - expect) <= 1.0), i  # regular mode: exact up to one spike
        assert abs(xs[np.argmax(curve)] - centres[i]) <= 0.5 / (len(xs) - 1) + 1e-9
    # a Gaussian's log is a parabola: fit it and read back centre and width
    i = 3
    good = counts[:, i] > 5
    a, b, _ = np.polyfit(xs[good], np.log(counts[good, i]), 2)
    assert -b / (2 * a) == pytest.approx(centres[i], abs=0.01)
    assert math.sqrt(-1 / (2 * a)) == pytest.approx(sigma, rel=0.05)


def test_population_poisson_mean_follows_the_curve() -> None:
    enc = built(PopulationEncoder, {"neurons": 5, "mode": "poisson", "seed": 3,
                                    "max_rate_hz": 400.0}, BuildContext(dt_us=DT))
    counts = run(enc, np.full((20_000, 1), 0.5)).sum(axis=0)
    centres = np.linspace(0, 1, 5)
    p = 0.4 * np.exp(-((0.5 - centres) ** 2) / (2 * 0.125**2))
    sd = np.sqrt(20_000 * p * (1 - p)) + 1
    assert np.all(np.abs(counts - 20_000 * p) < 5 * sd)
    assert int(np.argmax(counts)) == 2


def ref_population(x, centres, sigma, p_max, uniform, phase):  # noqa: ANN001, ANN201
    nn = len(centres)
    out = np.zeros((x.shape[0], x.shape[1] * nn), bool)
    for j in range(x.shape[0]):
        for c in range(x.shape[1]):
            v = x[j, c]
            if not np.isfinite(v):
                continue
            v = min(max(v, 0.0), 1.0)
            for i in range(nn):
                p = min(1.0, math.exp(-((v - centres[i]) ** 2) / (2 * sigma**2)) * p_max)
                o = c * nn + i
                if len(uniform):
                    out[j, o] = uniform[j, o] < p
                else:
                    phase[o] += p
                    if phase[o] >= 1:
                        phase[o] -= 1
                        out[j, o] = True
    return out


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), poisson=st.booleans(), nn=st.integers(1, 6))
def test_population_kernel_matches_reference(seed: int, poisson: bool, nn: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.3, 1.3, size=(30, 2))
    x[0, 0] = np.nan
    centres = np.linspace(0, 1, nn)
    u = rng.random((30, 2 * nn)) if poisson else np.zeros((0, 2 * nn))
    ph1, ph2 = np.zeros(2 * nn), np.zeros(2 * nn)
    out = np.zeros((30, 2 * nn), bool)
    population_kernel(x, centres, 0.2, 0.7, u, ph1, out)
    np.testing.assert_array_equal(out, ref_population(x, centres, 0.2, 0.7, u, ph2))


# --- step means and binning -----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_step_mean_kernels_match_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = np.sort(rng.integers(0, 6, size=25))
    v = rng.normal(size=(25, 2))
    v[rng.random(v.shape) < 0.2] = np.nan
    sums, cnt = np.zeros((6, 2)), np.zeros((6, 2), np.int64)
    step_means_kernel(k, v, sums, cnt)
    last = np.array([np.nan, 7.0])
    out = np.empty((6, 2))
    hold_fill_kernel(sums, cnt, last, out)
    prev = [np.nan, 7.0]
    for r in range(6):
        for c in range(2):
            vals = [v[j, c] for j in range(25) if k[j] == r and np.isfinite(v[j, c])]
            if vals:
                prev[c] = sum(vals) / len(vals)
            assert (np.isnan(out[r, c]) and np.isnan(prev[c])) or out[r, c] == pytest.approx(
                prev[c])


@settings(max_examples=40, deadline=None)
@given(splits=st.lists(st.integers(1, 300), max_size=8), t0=st.integers(0, 10**9))
def test_batching_and_start_time_do_not_change_spikes(splits: list[int], t0: int) -> None:
    rng = np.random.default_rng(1)
    v = np.cumsum(rng.normal(0, 0.05, size=(1000, 2)), axis=0)
    make = [
        lambda: built(DeltaEncoder, {"channels": [0, 1], "threshold": 0.1},
                      BuildContext(dt_us=4000)),
        lambda: built(RateEncoder, {"channels": [0, 1], "seed": 2, "range": [-2.0, 2.0]},
                      BuildContext(dt_us=4000)),
        lambda: built(PopulationEncoder, {"channels": [1], "range": [-2.0, 2.0]},
                      BuildContext(dt_us=4000)),
        lambda: built(LatencyEncoder, {"channels": [0], "range": [-2.0, 2.0]},
                      BuildContext(dt_us=4000)),
    ]
    t0 = t0 - t0 % 4000  # same step grid
    for mk in make:
        a = run(mk(), v, rate_hz=1000, t0_us=t0)
        b = run(mk(), v, rate_hz=1000, splits=splits, t0_us=t0)
        np.testing.assert_array_equal(a, b)
        assert a.shape[0] == 250


@settings(max_examples=80, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 5)), max_size=60))
def test_csr_kernel_matches_reference(pairs: list[tuple[int, int]]) -> None:
    pairs.sort(key=lambda p: p[0])  # the kernel's contract: steps non-decreasing
    step = np.array([p[0] for p in pairs], np.int64)
    chan = np.array([p[1] for p in pairs], np.int32)
    ptr = np.empty(11, np.int64)
    idx = np.empty(len(pairs), np.int32)
    k = csr_kernel(step, chan, ptr, idx, np.full(6, -1, np.int64))
    for s in range(10):
        assert idx[ptr[s]:ptr[s + 1]].tolist() == sorted({c for t, c in pairs if t == s})
    assert k == ptr[-1] == len(set(pairs))


def test_config_is_strict() -> None:
    with pytest.raises(ConfigError, match="did you mean"):
        built(RateEncoder, {"max_rate": 10.0})
    with pytest.raises(ConfigError, match="hi > lo"):
        built(RateEncoder, {"range": [1.0, 0.0]})
    assert built(PopulationEncoder, {"channels": [0, 3], "neurons": 4}).n_channels == 8
    assert built(DeltaEncoder, {"channels": [0, 1, 2]}).n_channels == 6
