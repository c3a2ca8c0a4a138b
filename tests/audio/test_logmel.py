"""The `logmel` encoder: log-mel band levels relative to a running peak, coded as spikes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgesnn.components import BuildContext
from edgesnn.encoders.audio import LogMelEncoder, mel_filterbank
from edgesnn.events import EventBatch

REPO = Path(__file__).resolve().parents[2]
FSDD = REPO.parent / "shared" / "data" / "audio" / "fsdd"
RATE = 8000


def encoder(dt_us: int = 5000, **over) -> LogMelEncoder:
    problems: list = []
    params = LogMelEncoder.schema.validate(over, "", problems)
    assert not problems
    return LogMelEncoder("mel", params, BuildContext(dt_us=dt_us))


def batches(x: np.ndarray, size: int) -> list[EventBatch]:
    out = []
    for a in range(0, x.size, size):
        blk = x[a : a + size].astype(np.float32)[:, None]
        out.append(EventBatch("mic", 0, a * 1_000_000 // RATE, (a + blk.shape[0]) * 1_000_000
                              // RATE, blk, "samples", 0, {"sample_rate_hz": RATE}))
    return out


def encode(enc: LogMelEncoder, x: np.ndarray, size: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """(spike count per step, channels per step) over the whole signal, flush included."""
    steps: list[np.ndarray] = []
    for r in [enc.encode(b) for b in batches(x, size)] + [enc.flush()]:
        if r is not None:
            steps += [r.idx[r.ptr[k] : r.ptr[k + 1]].copy() for k in range(r.n_steps)]
    return np.array([s.size for s in steps]), steps


def word(seconds: float = 0.4, f0: float = 220.0, seed: int = 0) -> np.ndarray:
    """A vowel-like harmonic tone with a rising and falling envelope, in silence."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 12))
    env = np.sin(np.pi * t / seconds) ** 2
    sil = np.zeros(int(0.1 * RATE))
    return np.concatenate([sil, 0.2 * env * x, sil]) + 1e-6 * np.random.default_rng(
        seed).standard_normal(sil.size * 2 + t.size)


def test_streaming_in_any_chunks_gives_the_same_spikes() -> None:
    x = word()
    n_a, a = encode(encoder(), x, 37)
    n_b, b = encode(encoder(), x, 4000)
    assert len(a) == len(b) == -(-x.size // 40)  # one step per 5 ms, the last one flushed
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert n_a.sum() > 0


def test_silence_gives_no_spikes_and_levels_are_relative_to_the_peak() -> None:
    x = word()
    n, steps = encode(encoder(), x, 400)
    assert n[:15].sum() == 0 and n[-15:].sum() == 0  # 100 ms of silence on either side
    # 20 dB quieter: the same spikes (levels follow the running peak, not full scale)
    n_q, steps_q = encode(encoder(), 0.1 * x, 400)
    same = np.mean([np.array_equal(p, q) for p, q in zip(steps, steps_q)])
    assert same > 0.95
    # a thermometer: in every band, the spiking levels are 0..m-1
    for s in steps:
        band, lvl = np.divmod(s, 8)
        for b in np.unique(band):
            assert np.array_equal(np.sort(lvl[band == b]), np.arange(np.sum(band == b)))


def test_population_code_sends_one_spike_per_band_and_clock_channels_follow_onset() -> None:
    x = word()
    _, thermo = encode(encoder(), x, 400)
    _, pop = encode(encoder(code="population"), x, 400)
    for t, p in zip(thermo, pop):
        band_t, lvl_t = np.divmod(t, 8)
        band_p, lvl_p = np.divmod(p, 8)
        assert np.array_equal(np.unique(band_t), band_p)  # one spike per sounding band
        for b, lv in zip(band_p, lvl_p):
            assert lv == lvl_t[band_t == b].max()  # at the band's level
    enc = encoder(clock=4, clock_ms=50.0)
    assert enc.n_channels == 20 * 8 + 4
    _, steps = encode(enc, x, 400)
    clock = [int(s[s >= 160][0]) - 160 if np.any(s >= 160) else -1 for s in steps]
    first = next(k for k, c in enumerate(clock) if c >= 0)
    assert clock[first : first + 10] == [0] * 10  # 10 steps of 5 ms: the first 50 ms
    assert clock[first + 10] == 1 and 3 in clock and max(clock) == 3


def test_reference_restarts_after_a_pause() -> None:
    loud, soft = word(seed=1), 0.05 * word(seed=2)
    enc = encoder()
    _, alone = encode(encoder(), soft, 400)
    _, both = encode(enc, np.concatenate([loud, np.zeros(int(0.4 * RATE)), soft]), 400)
    tail = both[-len(alone):]
    assert np.mean([np.array_equal(p, q) for p, q in zip(alone, tail)]) > 0.95
    # without the restart, the soft word is coded against the loud word's peak: fewer spikes
    _, kept = encode(encoder(reset_after_ms=0.0),
                     np.concatenate([loud, np.zeros(int(0.4 * RATE)), soft]), 400)
    assert sum(s.size for s in kept[-len(alone):]) < sum(s.size for s in alone)


def test_bad_step_and_filterbank_shape() -> None:
    enc = encoder(dt_us=1001)
    with pytest.raises(ValueError, match="not a whole number of samples"):
        enc.encode(batches(word(), 400)[0])
    fb = mel_filterbank(20, 256, RATE, 100.0, 3800.0)
    assert fb.shape == (20, 129) and np.all(fb.max(axis=1) > 0.5)
    assert enc.check([]) == [] and encoder(f_min_hz=4000.0, f_max_hz=3000.0).check([])


@pytest.mark.skipif(not FSDD.is_dir(), reason=f"FSDD recordings not found at {FSDD}")
def test_fsdd_recording_through_the_wav_driver() -> None:
    from edgesnn.train.recipe import KWS_DT_US, KWS_ENCODER, encode_wav

    ptr, idx, n_ch = encode_wav(FSDD / "7_theo_0.wav", KWS_ENCODER, KWS_DT_US)
    assert n_ch == 160 and ptr.size - 1 > 40 and idx.size > 500
    assert idx.min() >= 0 and idx.max() < 160


def test_vocal_tract_warp_moves_formants_and_keeps_the_band_edges() -> None:
    from edgesnn.encoders.audio import vtlp_warp

    f = np.array([0.0, 500.0, 1000.0, 2000.0, 3999.0, 4000.0])
    assert np.array_equal(vtlp_warp(f, 1.0, 4000.0), f)
    for a in (0.9, 1.1):
        g = vtlp_warp(f, a, 4000.0)
        assert np.allclose(g[1:4], f[1:4] * a)  # below the knee: f * alpha
        assert g[0] == 0.0 and g[-1] == 4000.0 and np.all(np.diff(g) > 0)  # monotonic, ends fixed
    # a tone at 1 kHz lands one band higher when the filterbank is warped down by 10 %: its
    # energy peaks in a band whose centre, unwarped, is 1.1 kHz
    t = np.arange(RATE) / RATE
    tone = 0.5 * np.sin(2 * np.pi * 1000.0 * t)
    peak = {w: int(np.argmax(encoder(warp=w).analyse(tone, RATE).mean(axis=0))) for w in (0.9, 1.0)}
    assert peak[0.9] > peak[1.0]
    problems: list = []
    LogMelEncoder.schema.validate({"warp": 3.0}, "encoder", problems)
    assert problems and "warp" in str(problems[0])
