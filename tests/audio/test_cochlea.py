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
    cochlea_kernel,
    design_bandpass,
    hz_to_scale,
    scale_to_hz,
)
from edgesnn.encoders.generic import built
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
