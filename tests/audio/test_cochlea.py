"""Cochlea encoder: kernel against a pure-Python reference, filter design, real speech."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from edgesnn_drivers.audio.wav import read_wav
from hypothesis import given, settings
from hypothesis import strategies as st

from edgesnn.components import BuildContext
from edgesnn.encoders.audio import (
    CochleaEncoder,
    band_centres,
    bin_held_spikes,
    cochlea_kernel,
    design_bandpass,
    hz_to_scale,
    scale_to_hz,
)
from edgesnn.encoders.generic import SpikeBinner, built
from edgesnn.events import EventBatch, SpikeRaster

DATA = Path(__file__).parents[1].parent.parent / "shared" / "data"


def ref_cochlea(x, coef, n_sections, levels, alpha, up_only):  # noqa: ANN001, ANN201
    """Slow, obvious model: per band a cascade of biquads (direct form I), half-wave
    rectifier, two one-pole smoothing stages, then stepping a level ladder one level at a time."""
    nb = len(coef)
    spikes = []
    crossings = 0
    for b in range(nb):
        b0, a1, a2 = coef[b]
        sig = [float(v) for v in x]
        for _ in range(n_sections):
            out = []
            x1 = x2 = y1 = y2 = 0.0
            for v in sig:
                y = b0 * v - b0 * x2 - a1 * y1 - a2 * y2
                x2, x1 = x1, v
                y2, y1 = y1, y
                out.append(y)
            sig = out
        e1 = env = 0.0
        lev = 0
        for j, y in enumerate(sig):
            e1 = e1 + alpha * (max(y, 0.0) - e1)
            env = env + alpha * (e1 - env)
            moved = 0
            while lev + 1 < len(levels) and env >= levels[lev + 1]:
                lev += 1
                moved += 1
            if moved:
                spikes.append((j, b))
            else:
                while lev > 0 and env <= levels[lev - 1]:
                    lev -= 1
                    moved += 1
                if moved and not up_only:
                    spikes.append((j, nb + b))
            crossings += moved
    return sorted(spikes), crossings


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), bands=st.integers(1, 5), order=st.integers(1, 3),
       up_only=st.booleans(), step_db=st.sampled_from([1.0, 3.0, 6.0]))
def test_kernel_matches_reference(seed: int, bands: int, order: int, up_only: bool,
                                  step_db: float) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    t = np.arange(n) / 8000
    x = (0.3 * np.sin(2 * np.pi * 700 * t) * (t > 0.01) + 0.05 * rng.standard_normal(n))
    x = x.astype(np.float32)
    fc, bw = band_centres(bands, 200, 3000, "erb")
    coef = design_bandpass(fc, bw, 8000, order)
    levels = 10.0 ** ((-60 + step_db * np.arange(int(80 / step_db) + 1)) / 20)
    alpha = 1 - math.exp(-1 / (8000 * 0.002))
    z = np.zeros((bands, order, 2))
    env = np.zeros((bands, 2))
    lev = np.zeros(bands, np.int64)
    oj = np.empty(n * bands, np.int64)
    oc = np.empty(n * bands, np.int32)
    counts = np.zeros(1, np.int64)
    k = cochlea_kernel(x, coef, z, env, lev, levels, alpha, up_only, oj, oc, counts)
    got = sorted(zip(oj[:k].tolist(), oc[:k].tolist()))
    ref, crossings = ref_cochlea(x, coef, order, levels, alpha, up_only)
    assert got == ref
    assert counts[0] == crossings


def test_scales_and_band_layout() -> None:
    f = np.array([100.0, 1000.0, 3000.0])
    for s in ("erb", "mel"):
        np.testing.assert_allclose(scale_to_hz(hz_to_scale(f, s), s), f)
        fc, bw = band_centres(16, 100, 3600, s)
        assert fc[0] == pytest.approx(100) and fc[-1] == pytest.approx(3600)
        assert np.all(np.diff(fc) > 0) and np.all(bw > 0)
        d = np.diff(hz_to_scale(fc, s))
        np.testing.assert_allclose(d, d[0])  # evenly spaced on the scale
    assert hz_to_scale(1000.0, "mel") == pytest.approx(1000, abs=0.5)  # mel is anchored at 1 kHz


@pytest.mark.parametrize("order", [1, 2, 4])
def test_bandpass_gain_and_bandwidth(order: int) -> None:
    fc, bw, fs = np.array([1000.0]), np.array([200.0]), 16000.0
    b0, a1, a2 = design_bandpass(fc, bw, fs, order)[0]

    def gain(f: float) -> float:
        z = np.exp(-2j * np.pi * f / fs)
        h = b0 * (1 - z * z) / (1 + a1 * z + a2 * z * z)
        return abs(h) ** order

    assert gain(1000.0) == pytest.approx(1.0, abs=1e-9)
    lo = 1000 - 100
    hi = 1000 + 100
    # -3 dB points of the cascade within a few percent of the requested bandwidth
    assert 20 * math.log10(gain(lo) * gain(hi)) / 2 == pytest.approx(-3.01, abs=0.35)
    assert gain(3000.0) < 0.2


def _encode(enc: CochleaEncoder, x: np.ndarray, rate: int, splits: list[int]
            ) -> list[SpikeRaster]:
    out = []
    pos = 0
    for n in splits + [len(x)]:
        n = min(n, len(x) - pos)
        if n <= 0:
            continue
        blk = x[pos:pos + n]
        t0 = pos * 1_000_000 // rate
        t1 = (pos + n) * 1_000_000 // rate
        r = enc.encode(EventBatch("a", 0, t0, t1, blk.reshape(-1, 1).astype(np.float32),
                                  "samples", 0, {"sample_rate_hz": rate}))
        if r is not None:
            out.append(r)
        pos += n
    r = enc.flush()
    if r is not None:
        out.append(r)
    return out


def _dense(rasters: list[SpikeRaster]) -> np.ndarray:
    steps = np.concatenate([r.to_dense() for r in rasters])
    t = [r.t0_us for r in rasters]
    for a, b in zip(rasters, rasters[1:]):
        assert b.t0_us == a.t_end_us  # contiguous
    assert t == sorted(t)
    return steps


def test_pure_tone_excites_its_band() -> None:
    rate = 16000
    t = np.arange(rate // 4) / rate
    for f in (300.0, 1200.0, 3000.0):
        x = 0.5 * np.sin(2 * np.pi * f * t)
        enc = built(CochleaEncoder, {"bands": 24, "f_max_hz": 6000}, BuildContext(dt_us=1000))
        counts = sum(r.counts() for r in _encode(enc, x, rate, [4000] * 4))
        up = counts[:24]
        best = int(np.argmax(enc.lev))  # the highest envelope level reached
        assert abs(enc.centres_hz[best] - f) / f < 0.15, (f, enc.centres_hz[best])
        # neighbouring bands meet at -3 dB, so the best band passes >= 0.707 of the tone,
        # whose half-wave rectified mean is A / pi
        assert 0.69 * 0.5 / math.pi < enc.env[:, 1].max() < 1.05 * 0.5 / math.pi
        far = np.abs(np.log(enc.centres_hz / f)) > 1.0  # more than e-fold away
        assert up[far].max() < up[best]


def test_batching_does_not_change_the_spikes() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal(4000) * 0.2 * (np.arange(4000) % 1000 < 500)
    params = {"bands": 8, "polarity": "both"}
    whole = _dense(_encode(built(CochleaEncoder, params, BuildContext(dt_us=1000)), x, 8000,
                           [4000]))
    split = _dense(_encode(built(CochleaEncoder, params, BuildContext(dt_us=1000)), x, 8000,
                           [1, 7, 333, 5, 80, 1000, 13]))
    np.testing.assert_array_equal(whole, split)
    assert whole.shape == (500, 16) and whole.sum() > 50
    assert whole[:, 8:].sum() > 0  # DOWN spikes when the noise stops


def test_silence_and_flush_and_clipping() -> None:
    enc = built(CochleaEncoder, {"f_max_hz": 20000}, BuildContext(dt_us=2000))
    rs = _encode(enc, np.zeros(1001), 8000, [1001])
    assert sum(r.n_spikes for r in rs) == 0
    assert enc.status()["f_max_hz"] == pytest.approx(3600.0)
    assert rs[-1].t_end_us >= 1001 * 125  # flush covered the partial last step
    assert enc.n_channels == 64


def test_up_only_channels_and_gain() -> None:
    x = 0.01 * np.sin(2 * np.pi * 1000 * np.arange(8000) / 8000)
    quiet = built(CochleaEncoder, {"polarity": "up", "bands": 16}, BuildContext(dt_us=1000))
    loud = built(CochleaEncoder, {"polarity": "up", "bands": 16, "gain_db": 30},
                 BuildContext(dt_us=1000))
    assert quiet.n_channels == 16
    cq = sum(r.counts() for r in _encode(quiet, x, 8000, [800] * 10))
    cl = sum(r.counts() for r in _encode(loud, x, 8000, [800] * 10))
    assert cl.sum() > cq.sum()  # 30 dB more climbs 10 more 3 dB levels at onset


def test_real_speech_digits() -> None:
    fsdd = DATA / "audio" / "fsdd"
    if not fsdd.exists():
        pytest.skip("shared FSDD recordings not present (../shared/data beside the repo)")
    for name in ("0_jackson_0.wav", "7_theo_9.wav"):
        rate, x = read_wav(fsdd / name)
        enc = built(CochleaEncoder, {}, BuildContext(dt_us=1000))
        rs = _encode(enc, x[:, 0], rate, [80] * (len(x) // 80))
        dense = _dense(rs)
        assert dense.shape[0] == math.ceil(len(x) * 1000 / rate)
        active = dense.any(axis=1)
        assert 0.1 < active.mean() < 1.0  # speech and pauses
        assert enc.status()["samples_in"] == len(x)


# --- the fused per-batch kernel against the two-stage path and pure-Python binning ------------


def _old_path(params: dict, dt_us: int) -> tuple:
    """The two-stage path the fused kernel replaces: `cochlea_kernel` per batch, then the
    shared `SpikeBinner`. Returns (encode(batch), flush(), state) closures over fresh state."""
    enc = built(CochleaEncoder, params, BuildContext(dt_us=dt_us))
    binner = SpikeBinner("enc", dt_us, enc.n_channels)
    st: dict = {"rate": 0.0, "crossings": np.zeros(1, np.int64)}

    def encode(b: EventBatch) -> SpikeRaster | None:
        rate = float(b.meta["sample_rate_hz"])
        if rate != st["rate"]:
            enc._design(rate)
            st.update(rate=rate, z=np.zeros((enc.n_bands, enc.params["order"], 2)),
                      env=np.zeros((enc.n_bands, 2)), lev=np.zeros(enc.n_bands, np.int64))
        ev = b.events if b.events.ndim == 2 else b.events[:, None]
        ch, g = params.get("channel", -1), params.get("gain_db", 0.0)
        x = ev[:, ch] if ch >= 0 or ev.shape[1] == 1 else ev.mean(axis=1)
        x = np.ascontiguousarray(x if g == 0 else x * 10.0 ** (g / 20.0), np.float32)
        oj = np.empty(len(x) * enc.n_bands, np.int64)
        oc = np.empty(len(x) * enc.n_bands, np.int32)
        k = cochlea_kernel(x, enc.coef, st["z"], st["env"], st["lev"], enc.levels, enc.alpha,
                           params.get("polarity") == "up", oj, oc, st["crossings"])
        t = b.t_start_us + (oj[:k] * 1_000_000 / rate).astype(np.int64)
        return binner.push(b.t_start_us, b.t_end_us, t, oc[:k], b.dropped_before)

    return encode, binner.flush, st, binner


def _batches(x: np.ndarray, rate: int, sizes: list[int], jitter: list[int] | None = None
             ) -> list[EventBatch]:
    """Batches of x in `sizes` (cycled); `jitter` (cycled) shifts each batch's start time,
    so batches may overlap, leave gaps or arrive out of step with the sample count."""
    out, pos, i = [], 0, 0
    while pos < len(x):
        n = min(sizes[i % len(sizes)], len(x) - pos)
        sh = jitter[i % len(jitter)] if jitter else 0
        t0 = pos * 1_000_000 // rate + sh
        t1 = (pos + n) * 1_000_000 // rate + sh
        out.append(EventBatch("a", i, t0, max(t0, t1), x[pos:pos + n], "samples", i % 3,
                              {"sample_rate_hz": rate}))
        pos += n
        i += 1
    return out


def _assert_same_rasters(a: list, b: list) -> None:
    assert len(a) == len(b)
    for p, q in zip(a, b):
        assert (p is None) == (q is None)
        if p is not None:
            assert (p.seq, p.t0_us, p.dt_us, p.n_channels, p.dropped_before) == \
                (q.seq, q.t0_us, q.dt_us, q.n_channels, q.dropped_before)
            np.testing.assert_array_equal(p.ptr, q.ptr)
            np.testing.assert_array_equal(p.idx, q.idx)


def _compare_paths(params: dict, dt_us: int, batches: list[EventBatch]) -> CochleaEncoder:
    enc = built(CochleaEncoder, params, BuildContext(dt_us=dt_us))
    encode, flush, st, binner = _old_path(params, dt_us)
    new = [enc.encode(b) for b in batches] + [enc.flush(), enc.flush()]
    old = [encode(b) for b in batches] + [flush(), flush()]
    _assert_same_rasters(new, old)
    np.testing.assert_array_equal(enc.lev, st["lev"])
    np.testing.assert_array_equal(enc.env, st["env"])
    np.testing.assert_array_equal(enc.z, st["z"])
    s = enc.status()
    assert (s["crossings"], s["spikes"], s["late_spikes"]) == \
        (st["crossings"][0], binner.spikes_in, binner.late)
    return enc


@pytest.mark.parametrize(("params", "dt_us", "sizes"), [
    ({}, 1000, [80]),
    ({}, 1000, [1, 7, 333, 5, 80, 1000, 13]),
    ({"bands": 5, "order": 3, "polarity": "up", "scale": "mel"}, 700, [17, 250, 3]),
    ({"bands": 64, "gain_db": 12.0}, 2000, [4096, 9, 55]),
    ({"bands": 1, "order": 1}, 125, [64, 1, 2]),
    ({"bands": 33, "order": 1, "step_db": 1.0}, 3000, [11, 160, 2999]),
])
def test_fused_path_equals_two_stage_path_on_speech(params: dict, dt_us: int,
                                                    sizes: list[int]) -> None:
    fsdd = DATA / "audio" / "fsdd"
    if not fsdd.exists():
        pytest.skip("shared FSDD recordings not present (../shared/data beside the repo)")
    parts = [read_wav(fsdd / n) for n in ("0_jackson_0.wav", "7_theo_9.wav", "3_george_1.wav")]
    rate = parts[0][0]
    x = np.concatenate([p[1] for p in parts])
    enc = _compare_paths(params, dt_us, _batches(x, rate, sizes))
    assert enc.status()["spikes"] > 50


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), sizes=st.lists(st.integers(1, 400), min_size=1, max_size=6),
       jitter=st.lists(st.integers(-3000, 3000), min_size=1, max_size=4),
       dt_us=st.sampled_from([125, 1000, 1500, 7000]), bands=st.integers(1, 12),
       order=st.integers(1, 3), up=st.booleans(), stereo=st.booleans())
def test_fused_path_equals_two_stage_path_on_uneven_timing(
        seed: int, sizes: list[int], jitter: list[int], dt_us: int, bands: int, order: int,
        up: bool, stereo: bool) -> None:
    """Overlapping and gapped batches (late and out-of-order spikes), batches shorter than a
    step, multichannel input averaged to mono."""
    rng = np.random.default_rng(seed)
    n = 2400
    t = np.arange(n) / 8000
    x = 0.3 * np.sin(2 * np.pi * 600 * t) * (np.arange(n) % 900 < 500) \
        + 0.02 * rng.standard_normal(n)
    x = np.stack([x, 0.5 * x], axis=1) if stereo else x[:, None]
    params = {"bands": bands, "order": order, "polarity": "up" if up else "both",
              "step_db": 2.0}
    _compare_paths(params, dt_us, _batches(x.astype(np.float32), 8000, sizes, jitter))


def test_fused_path_matches_pure_python_reference() -> None:
    """Encoder output on contiguous batches = `ref_cochlea` spikes, timed per batch and binned
    into sorted unique channels per step by plain Python."""
    rng = np.random.default_rng(7)
    rate, dt_us, n = 8000, 1000, 1700
    x = (0.2 * np.sin(2 * np.pi * 900 * np.arange(n) / rate) * (np.arange(n) < 1000)
         + 0.01 * rng.standard_normal(n)).astype(np.float32)
    params = {"bands": 6, "order": 2, "step_db": 3.0}
    enc = built(CochleaEncoder, params, BuildContext(dt_us=dt_us))
    batches = _batches(x[:, None], rate, [37, 80, 5, 200])
    rasters = [r for r in [enc.encode(b) for b in batches] + [enc.flush()] if r is not None]
    ref, crossings = ref_cochlea(x, enc.coef, 2, enc.levels, enc.alpha, False)
    starts = np.cumsum([0] + [len(b) for b in batches])
    steps: dict[int, set[int]] = {}
    for j, c in ref:
        i = int(np.searchsorted(starts, j, side="right")) - 1
        t = batches[i].t_start_us + int((j - starts[i]) * 1_000_000 / rate)
        steps.setdefault(t // dt_us, set()).add(c)
    got = {}
    for r in rasters:
        for k in range(r.n_steps):
            if r.ptr[k + 1] > r.ptr[k]:
                got[r.t0_us // dt_us + k] = r.step_spikes(k).tolist()
    assert got == {s: sorted(c) for s, c in steps.items()}
    assert enc.status()["crossings"] == crossings
    assert sum(r.n_steps for r in rasters) == math.ceil(n * 1_000_000 / rate / dt_us)


def ref_bin(t: list[int], c: list[int], t0: int, n_steps: int, dt: int
            ) -> tuple[list[list[int]], list[tuple[int, int]], int]:
    """Plain binning: (sorted unique channels per step, held (t, c) in order, late count)."""
    end = t0 + n_steps * dt
    held = [(a, b) for a, b in zip(t, c) if a >= end]
    if n_steps == 0:
        return [], held, 0
    per: list[set[int]] = [set() for _ in range(n_steps)]
    late = 0
    for a, b in zip(t, c):
        if a < t0:
            late += 1
        elif a < end:
            per[(a - t0) // dt].add(b)
    return [sorted(s) for s in per], held, late


@settings(max_examples=150, deadline=None)
@given(spikes=st.lists(st.tuples(st.integers(-50, 400), st.integers(0, 69)), max_size=300),
       t0=st.integers(0, 100), n_steps=st.integers(0, 12), dt=st.integers(1, 40))
def test_bin_held_spikes_matches_reference(spikes: list[tuple[int, int]], t0: int,
                                           n_steps: int, dt: int) -> None:
    n = len(spikes)
    cap = n + 1
    buf_t = np.zeros((2, cap), np.int64)
    buf_c = np.zeros((2, cap), np.int32)
    for i, (a, b) in enumerate(spikes):
        buf_t[0, i], buf_c[0, i] = a, b
    ptr = np.full(n_steps + 1, -5, np.int64)
    idx = np.full(cap, -5, np.int32)
    cnt = np.array([0, 0, 3, 0], np.int64)
    k = bin_held_spikes(buf_t, buf_c, n, t0, n_steps, dt, ptr, idx, np.zeros(70, np.int64),
                        cnt)
    per, held, late = ref_bin([a for a, _ in spikes], [b for _, b in spikes], t0, n_steps, dt)
    if n_steps:
        assert [idx[ptr[s]:ptr[s + 1]].tolist() for s in range(n_steps)] == per
        assert ptr[0] == 0 and ptr[-1] == k
    else:
        assert k == 0
    assert cnt[1] == len(held) and cnt[2] == 3 + late
    assert list(zip(buf_t[0, :cnt[1]].tolist(), buf_c[0, :cnt[1]].tolist())) == held


def test_digital_silence_leaves_no_subnormal_filter_state() -> None:
    """Zeros after sound: the filter memories decay, and would stay subnormal for good (every
    later sample then ~12x slower); they are zeroed once below 2**-996 instead, and sound
    afterwards is encoded as before."""
    rate = 16000
    rng = np.random.default_rng(3)
    enc = built(CochleaEncoder, {}, BuildContext(dt_us=1000))
    sound = rng.normal(0, 0.3, rate).astype(np.float32)
    x = np.concatenate([sound, np.zeros(8 * rate, np.float32)])
    rasters = _encode(enc, x, rate, [160] * (len(x) // 160))
    fs = enc._fs
    assert not ((fs != 0) & (np.abs(fs) < np.finfo(fs.dtype).tiny)).any()
    t1 = len(x) * 1_000_000 // rate
    again = enc.encode(EventBatch("a", 0, t1, t1 + 1_000_000, sound.reshape(-1, 1), "samples",
                                  0, {"sample_rate_hz": rate}))
    assert sum(r.idx.size for r in rasters[:100]) > 0
    assert again is not None and again.idx.size > 0
