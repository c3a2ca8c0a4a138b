"""The level codes of `band_energy` and the `envelope_orders` encoder against slow, obvious
reference implementations (one frame at a time, loops over bins and thresholds)."""

from __future__ import annotations

import numpy as np
import pytest

from edgesnn.components import BuildContext
from edgesnn.encoders.envelope import EnvelopeOrderEncoder
from edgesnn.encoders.generic import built
from edgesnn.encoders.vibration import BandEnergyEncoder
from edgesnn.events import EventBatch

RATE = 12000


def run(enc, x: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """(step, channel) of every spike of `x` fed to `enc` in batches of `chunk` samples."""
    steps, chans = [], []
    for a in range(0, len(x), chunk):
        seg = x[a : a + chunk]
        t0 = a * 1_000_000 // RATE
        t1 = (a + len(seg)) * 1_000_000 // RATE
        for r in (enc.encode(EventBatch("a", 0, t0, t1, seg[:, None].astype(np.float32),
                                        "samples", 0, {"sample_rate_hz": RATE})),):
            if r is not None and r.idx.size:
                k = np.repeat(np.arange(r.n_steps), np.diff(r.ptr))
                steps.append(k + r.t0_us // enc.binner.clock.dt_us)
                chans.append(r.idx)
    r = enc.flush()
    if r is not None and r.idx.size:
        steps.append(np.repeat(np.arange(r.n_steps), np.diff(r.ptr)) + r.t0_us // 1000)
        chans.append(r.idx)
    return np.concatenate(steps), np.concatenate(chans)


def signal(n: int, seed: int = 0) -> np.ndarray:
    """A bearing-like test signal: noise, a 3 kHz resonance struck 100 times per second."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / RATE
    hits = (np.sin(2 * np.pi * 100.0 * t) > 0.995).astype(float)
    ring = np.convolve(hits, np.exp(-np.arange(60) / 10.0) * np.sin(2 * np.pi * 3000 * np.arange(60) / RATE))[:n]
    return 0.05 * rng.standard_normal(n) + 0.5 * ring


def ref_band_db(frame: np.ndarray, edges: np.ndarray, floor_db: float) -> np.ndarray:
    """Band energies in dB of one frame: Hann window, DFT by definition, Parseval scaling."""
    n = len(frame)
    w = np.hanning(n + 2)[1:-1]
    xw = frame * w
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        e = 0.0
        for k in range(n // 2 + 1):
            f = k * RATE / n
            if a <= f < b:
                c = np.sum(xw * np.exp(-2j * np.pi * k * np.arange(n) / n))
                e += abs(c) ** 2 * 2.0 / (n * np.sum(w * w))
        out.append(10 * np.log10(max(e, 10 ** (floor_db / 10))))
    return np.array(out)


def test_band_energy_level_code_matches_the_reference() -> None:
    enc = built(BandEnergyEncoder, {"bands": 4, "f_min_hz": 100.0, "window_ms": 5.0,
                                    "hop_ms": 2.5, "code": "level", "level_min_db": -50.0,
                                    "threshold_db": 6.0, "levels": 8},
                BuildContext(dt_us=1000))
    x = signal(1200)
    steps, chans = run(enc, x, 250)
    assert enc.n_channels == 4 * 8
    want = []
    for end in range(enc.win, len(x) + 1, enc.hop):
        db = ref_band_db(x[end - enc.win : end], enc.edges_hz, -80.0)
        step = ((end - 1) * 1_000_000 // RATE) // 1000
        for b in range(4):
            for j in range(8):
                if db[b] >= -50.0 + 6.0 * j:
                    want.append((step, b * 8 + j))
    got = sorted(zip(steps.tolist(), chans.tolist()))
    assert got == sorted(want) and len(want) > 50


def ref_features(frame: np.ndarray, rpm: float, orders: list[float], harmonics: int,
                 tol: float, demod: tuple[float, float], edges: np.ndarray) -> np.ndarray:
    """The envelope encoder's features of one frame, computed the plain way."""
    n = len(frame)
    bands = ref_band_db(frame, edges, -100.0)
    rms = 10 * np.log10(np.mean(frame**2))
    xc = frame - frame.mean()
    kurt = 10 * np.log10(np.mean(xc**4) / np.mean(xc**2) ** 2)
    spec = np.fft.fft(frame)
    analytic = np.zeros(n, complex)
    for k in range(1, n // 2 + 1):  # positive frequencies inside the band, doubled
        f = k * RATE / n
        if demod[0] <= f <= demod[1]:
            analytic[k] = 2 * spec[k]
    env = np.abs(np.fft.ifft(analytic))
    env = env - env.mean()
    w = np.hanning(n + 2)[1:-1]
    es = np.abs(np.fft.rfft(env * w))
    fe = np.arange(n // 2 + 1) * RATE / n
    fr = rpm / 60
    df = RATE / n
    base = np.median([es[k] for k in range(len(fe)) if fr <= fe[k] <= (max(orders) * harmonics + 1) * fr])
    peaks = []
    for o in orders:
        m = []
        for h in range(1, harmonics + 1):
            c = o * h * fr
            m.append(max(es[k] for k in range(len(fe)) if c * (1 - tol) - df <= fe[k] <= c * (1 + tol) + df))
        peaks.append(20 * np.log10(np.mean(m) / base))
    contrasts = [peaks[i] - max(peaks[j] for j in range(len(peaks)) if j != i)
                 for i in range(len(peaks))]
    return np.concatenate([bands, [rms, kurt], peaks, contrasts])


def test_envelope_orders_matches_the_reference() -> None:
    p = {"window_ms": 1000 * 512 / RATE, "hop_ms": 1000 * 256 / RATE, "bands": 3,
         "rpm": 1500.0, "orders": [4.0, 5.5], "harmonics": 2, "tolerance": 0.05,
         "demod_hz": [2000.0, 5000.0], "levels": 6, "level_min_db": -40.0,
         "level_step_db": 5.0, "kurtosis_min_db": 4.0, "kurtosis_step_db": 2.0,
         "peak_min_db": 0.0, "peak_step_db": 4.0, "contrast": True}
    enc = built(EnvelopeOrderEncoder, p, BuildContext(dt_us=1000))
    x = signal(2600, seed=1)
    steps, chans = run(enc, x, 700)
    assert enc.win == 512 and enc.hop == 256 and enc.n_channels == (3 + 2 + 2 + 2) * 6
    want = []
    thr = np.array([[-40.0 + 5.0 * j for j in range(6)]] * 4 + [[4.0 + 2.0 * j for j in range(6)]]
                   + [[4.0 * j for j in range(6)]] * 4)
    feats = []
    for end in range(512, len(x) + 1, 256):
        f = ref_features(x[end - 512 : end], 1500.0, [4.0, 5.5], 2, 0.05, (2000.0, 5000.0),
                         enc.edges_hz)
        feats.append(f)
        step = ((end - 1) * 1_000_000 // RATE) // 1000
        for i in range(len(f)):
            for j in range(6):
                if f[i] >= thr[i, j]:
                    want.append((step, i * 6 + j))
    ends = np.arange(512, len(x) + 1, 256)
    mine = enc.features(x[ends[:, None] - 512 + np.arange(512)[None, :]])
    assert mine == pytest.approx(np.array(feats), abs=1e-9)
    assert sorted(zip(steps.tolist(), chans.tolist())) == sorted(want)


def test_envelope_orders_scale_with_the_shaft_speed() -> None:
    """The same impacts read as order 4 at 1500 rpm read as order 5 at 1200 rpm."""
    x = signal(4096, seed=2)
    peaks = {}
    contrast = {}
    for rpm in (1500.0, 1200.0):
        enc = built(EnvelopeOrderEncoder, {"rpm": rpm, "orders": [4.0, 5.0], "contrast": True,
                                           "window_ms": 1000 * 2048 / RATE},
                    BuildContext(dt_us=1000))
        enc._design(float(RATE))
        f = enc.features(x[None, :2048])[0]
        peaks[rpm], contrast[rpm] = f[-4:-2], f[-2:]
    assert peaks[1500.0][0] > peaks[1500.0][1] + 6
    assert peaks[1200.0][1] > peaks[1200.0][0] + 6
    # the dominant order's contrast is positive, the other's the same amount negative
    assert contrast[1500.0][0] == pytest.approx(-contrast[1500.0][1]) and contrast[1500.0][0] > 6
