"""Cochlea-like audio encoder: band-pass filterbank, rectification, envelope, level crossings.

Each of `bands` channels is a cascade of `order` identical 2nd-order band-pass sections
(constant 0 dB peak gain) centred on frequencies evenly spaced on the ERB-rate (Glasberg &
Moore) or mel scale between `f_min_hz` and `f_max_hz`. A band's -3 dB bandwidth is the spacing
of its neighbouring centres times `bandwidth_factor`. The band output is half-wave rectified
and smoothed by two cascaded one-pole low-passes (`tau_env_ms` each; the second stage keeps
the ripple of low bands from chattering across levels), a hair-cell-like envelope. The envelope is
then level-crossing coded on a logarithmic ladder: levels `step_db` apart from `floor_db`
(re. full scale 1.0) up to +20 dB; crossing to the next level up gives an UP spike (channel b),
down a DOWN spike (channel bands + b, when `polarity = "both"`). Like the delta encoder, several
crossings within one sample or step give one spike; all are counted in `status()`.

Each batch is one call of `cochlea_fused_kernel`: the filter and envelope stages run across all
bands per sample (vectorised), crossings are checked against each band's next level up/down,
and the spikes are binned into the step CSR in the same call, with reused buffers.

The sample rate comes from the batches (`meta["sample_rate_hz"]`); filters are designed at the
first batch. `f_max_hz` above 0.45 x the sample rate is lowered to it (`status()["f_max_hz"]`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from edgesnn.components import BuildContext, Encoder, register
from edgesnn.config.schema import Field, Schema
from edgesnn.core.tiny import zero_tiny
from edgesnn.encoders.binning import StepClock
from edgesnn.encoders.generic import ScalarEncoder
from edgesnn.events import EventBatch, SpikeRaster

CEIL_DB = 20.0


def hz_to_scale(f: np.ndarray | float, scale: str) -> np.ndarray:
    """ERB-rate (ERBs) or mel value of frequency f (Hz)."""
    f = np.asarray(f, np.float64)
    if scale == "erb":
        return 21.4 * np.log10(1.0 + 0.00437 * f)
    return 2595.0 * np.log10(1.0 + f / 700.0)


def scale_to_hz(s: np.ndarray | float, scale: str) -> np.ndarray:
    """Inverse of `hz_to_scale`."""
    s = np.asarray(s, np.float64)
    if scale == "erb":
        return (10.0 ** (s / 21.4) - 1.0) / 0.00437
    return 700.0 * (10.0 ** (s / 2595.0) - 1.0)


def band_centres(n: int, f_min_hz: float, f_max_hz: float, scale: str
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(centres, -3 dB bandwidths) in Hz of n bands evenly spaced on the scale."""
    lo, hi = hz_to_scale(f_min_hz, scale), hz_to_scale(f_max_hz, scale)
    if n == 1:
        fc = np.array([float(scale_to_hz((lo + hi) / 2, scale))])
        return fc, np.array([max(f_max_hz - f_min_hz, fc[0] / 2)])
    step = (hi - lo) / (n - 1)
    s = lo + step * np.arange(-1, n + 1)
    f = scale_to_hz(s, scale)
    f[0] = max(f[0], 0.0)
    return f[1:-1], (f[2:] - f[:-2]) / 2.0


def design_bandpass(fc_hz: np.ndarray, bw_hz: np.ndarray, rate_hz: float, order: int
                    ) -> np.ndarray:
    """(bands, 3) coefficients [b0, a1, a2] of the sections (b1 = 0, b2 = -b0, a0 = 1) whose
    `order`-fold cascade has a -3 dB bandwidth of bw_hz around fc_hz (RBJ band-pass, 0 dB)."""
    widen = 1.0 / math.sqrt(2.0 ** (1.0 / order) - 1.0)
    q = fc_hz / np.maximum(bw_hz * widen, 1e-9)
    w0 = 2 * np.pi * fc_hz / rate_hz
    alpha = np.sin(w0) / (2 * q)
    a0 = 1 + alpha
    return np.stack([alpha / a0, -2 * np.cos(w0) / a0, (1 - alpha) / a0], axis=1)


@njit(cache=True, nogil=True)
def cochlea_kernel(
    x: np.ndarray, coef: np.ndarray, z: np.ndarray, env: np.ndarray, lev: np.ndarray,
    levels: np.ndarray, alpha: float, up_only: bool, out_j: np.ndarray, out_c: np.ndarray,
    counts: np.ndarray,
) -> int:
    """Filterbank + rectifier + envelope + log level crossings over mono samples x (n,), one
    band at a time: the plain form of `cochlea_fused_kernel` (same arithmetic, no binning).

    State: z (bands, sections, 2) filter memories, env (bands, 2) the two smoothing stages,
    lev (bands,) level index.
    Writes (sample index, channel) of spikes, returns their number; counts[0] += crossings.
    """
    nb = coef.shape[0]
    ns = z.shape[1]
    top = levels.shape[0] - 1
    k = 0
    for j in range(x.shape[0]):
        xin = np.float64(x[j])
        for b in range(nb):
            b0 = coef[b, 0]
            a1 = coef[b, 1]
            a2 = coef[b, 2]
            y = xin
            for s in range(ns):
                u = y
                y = b0 * u + z[b, s, 0]
                z[b, s, 0] = -a1 * y + z[b, s, 1]
                z[b, s, 1] = -b0 * u - a2 * y
            r = y if y > 0.0 else 0.0
            e1 = env[b, 0] + alpha * (r - env[b, 0])
            e = env[b, 1] + alpha * (e1 - env[b, 1])
            env[b, 0] = e1
            env[b, 1] = e
            m = lev[b]
            if m < top and e >= levels[m + 1]:
                while m < top and e >= levels[m + 1]:
                    m += 1
                    counts[0] += 1
                lev[b] = m
                out_j[k] = j
                out_c[k] = b
                k += 1
            elif m > 0 and e <= levels[m - 1]:
                while m > 0 and e <= levels[m - 1]:
                    m -= 1
                    counts[0] += 1
                lev[b] = m
                if not up_only:
                    out_j[k] = j
                    out_c[k] = nb + b
                    k += 1
    return k


@njit(cache=True, nogil=True)
def bin_held_spikes(buf_t: np.ndarray, buf_c: np.ndarray, n: int, t0_us: int, n_steps: int,
                    dt_us: int, ptr: np.ndarray, idx: np.ndarray, mark: np.ndarray,
                    cnt: np.ndarray) -> int:
    """`SpikeBinner.push` in one call, in any time order: of the n spikes (time, channel) in
    row 0 of buf_t/buf_c, those before the end of the n_steps steps from t0_us go into the CSR
    (ptr, idx) as sorted unique channels per step (before t0_us: counted late in cnt[2]); the
    others stay in row 0, cnt[1] of them. Row 1 and mark (channels,) are scratch. Returns the
    number of idx entries; with n_steps = 0 nothing is emitted and earlier spikes are dropped.
    """
    t_end = t0_us + n_steps * dt_us
    held_t = buf_t[0]
    held_c = buf_c[0]
    step = buf_t[1]
    chan = buf_c[1]
    keep = 0
    d = 0
    for i in range(n):
        t = held_t[i]
        if t >= t_end:
            held_t[keep] = t
            held_c[keep] = held_c[i]
            keep += 1
        elif n_steps == 0:
            continue
        elif t < t0_us:
            cnt[2] += 1
        else:
            step[d] = (t - t0_us) // dt_us
            chan[d] = held_c[i]
            d += 1
    cnt[1] = keep
    if n_steps == 0:
        ptr[0] = 0
        return 0
    # counting sort by step into idx; then ptr[s] is the end of step s
    ptr[:] = 0
    for i in range(d):
        ptr[step[i] + 1] += 1
    for s in range(n_steps):
        ptr[s + 1] += ptr[s]
    for i in range(d):
        s = step[i]
        idx[ptr[s]] = chan[i]
        ptr[s] += 1
    # unique channels of each step (compacted in place), sorted
    mark[:] = -1
    k = 0
    start = 0
    for s in range(n_steps):
        end = ptr[s]
        ptr[s] = k
        first = k
        for i in range(start, end):
            c = idx[i]
            if mark[c] != s:
                mark[c] = s
                idx[k] = c
                k += 1
        if k - first > 32:
            idx[first:k].sort()
        else:
            for i in range(first + 1, k):
                c = idx[i]
                q = i - 1
                while q >= first and idx[q] > c:
                    idx[q + 1] = idx[q]
                    q -= 1
                idx[q + 1] = c
        start = end
    ptr[n_steps] = k
    return k


# rows of the fused kernel's float state `fs` (rows x bands): coefficients, level bounds,
# scratch, the two envelope stages, then z0, z1 of each section
_B0, _NA1, _NB0, _A2, _HI, _LO, _Y, _E0, _E1, _Z = range(10)


@njit(cache=True, nogil=True)
def cochlea_fused_kernel(
    x: np.ndarray, fs: np.ndarray, lev: np.ndarray, levels: np.ndarray, alpha: float,
    up_only: bool, rate_hz: float, t_start_us: int, t0_us: int, n_steps: int, dt_us: int,
    buf_t: np.ndarray, buf_c: np.ndarray, ptr: np.ndarray, idx: np.ndarray, mark: np.ndarray,
    cnt: np.ndarray,
) -> int:
    """One batch of the cochlea encoder: filterbank, envelope and level crossings of mono
    samples x (n,) starting at t_start_us, then binning of the spikes into the CSR (ptr, idx)
    of the `n_steps` complete steps from t0_us; the arithmetic is that of `cochlea_kernel`.

    fs (rows, bands) holds the coefficients and the filter/envelope state by band (rows
    `_B0`.. above), so that each stage runs across all bands at once; lev (bands,) the level
    index. buf_t/buf_c (2, cap) hold in row 0 the spikes (time, channel) not yet binned,
    cnt[1] of them at entry (the tail after the last complete step); row 1 is scratch, as are
    mark (channels,) and idx (cap,). cnt = [crossings, held spikes, late spikes, spikes].
    Writes ptr (n_steps + 1) and idx[:k]; returns k.
    """
    nb = lev.shape[0]
    ns = (fs.shape[0] - _Z) // 2
    top = levels.shape[0] - 1
    b0 = fs[_B0]
    na1 = fs[_NA1]
    nb0 = fs[_NB0]
    a2 = fs[_A2]
    hi = fs[_HI]
    lo = fs[_LO]
    y = fs[_Y]
    env0 = fs[_E0]
    env1 = fs[_E1]
    held_t = buf_t[0]
    held_c = buf_c[0]
    zl0 = fs[_Z + 2 * (ns - 1)]  # the last section feeds the envelope in the same loop
    zl1 = fs[_Z + 2 * ns - 1]
    w = cnt[1]
    for j in range(x.shape[0]):
        xin = np.float64(x[j])
        if ns > 1:
            z0 = fs[_Z]
            z1 = fs[_Z + 1]
            for b in range(nb):
                v = b0[b] * xin + z0[b]
                z0[b] = na1[b] * v + z1[b]
                z1[b] = nb0[b] * xin - a2[b] * v
                y[b] = v
            for s in range(1, ns - 1):
                z0 = fs[_Z + 2 * s]
                z1 = fs[_Z + 2 * s + 1]
                for b in range(nb):
                    u = y[b]
                    v = b0[b] * u + z0[b]
                    z0[b] = na1[b] * v + z1[b]
                    z1[b] = nb0[b] * u - a2[b] * v
                    y[b] = v
        hit = 0
        for b in range(nb):
            u = y[b] if ns > 1 else xin
            v = b0[b] * u + zl0[b]
            zl0[b] = na1[b] * v + zl1[b]
            zl1[b] = nb0[b] * u - a2[b] * v
            r = v if v > 0.0 else 0.0
            e1 = env0[b] + alpha * (r - env0[b])
            e = env1[b] + alpha * (e1 - env1[b])
            env0[b] = e1
            env1[b] = e
            hit |= (e >= hi[b]) | (e <= lo[b])
        if hit == 0:
            continue
        # same rounding as EventBatch.sample_t_us
        tj = t_start_us + np.int64(np.float64(j * 1_000_000) / rate_hz)
        for b in range(nb):
            e = env1[b]
            m = lev[b]
            if m < top and e >= levels[m + 1]:
                while m < top and e >= levels[m + 1]:
                    m += 1
                    cnt[0] += 1
                held_t[w] = tj
                held_c[w] = b
                w += 1
            elif m > 0 and e <= levels[m - 1]:
                while m > 0 and e <= levels[m - 1]:
                    m -= 1
                    cnt[0] += 1
                if not up_only:
                    held_t[w] = tj
                    held_c[w] = nb + b
                    w += 1
            else:
                continue
            lev[b] = m
            hi[b] = levels[m + 1] if m < top else np.inf
            lo[b] = levels[m - 1] if m > 0 else -np.inf
    cnt[3] += w - cnt[1]
    return bin_held_spikes(buf_t, buf_c, w, t0_us, n_steps, dt_us, ptr, idx, mark, cnt)


def _check_band_inputs(params: dict[str, Any], inputs: list[Any]) -> list[str]:
    """Problems of a filterbank encoder's wiring: drivers must give samples; the band range
    must not be empty."""
    out = []
    for d in inputs:
        kind = getattr(d, "batch_kind", "samples")
        if getattr(d, "kind", "") == "driver" and kind != "samples":
            out.append(f"needs a samples input, {d.id!r} gives {kind}")
    if params["f_min_hz"] >= params["f_max_hz"]:
        out.append("f_min_hz must be below f_max_hz")
    return out


@register
class CochleaEncoder(ScalarEncoder):
    """Audio samples -> per-band envelope level-crossing spikes (a cochlea model)."""

    type_name = "cochlea"
    summary = "Audio -> ERB/mel band-pass filterbank, envelope, level-crossing spikes per band."
    schema = Schema(
        {
            "bands": Field(int, default=32, min=1, max=512, doc="Number of frequency bands."),
            "f_min_hz": Field(float, default=100.0, min=1.0, doc="Lowest band centre."),
            "f_max_hz": Field(float, default=3600.0, min=1.0,
                              doc="Highest band centre (lowered to 0.45 x sample rate)."),
            "scale": Field(str, default="erb", choices=("erb", "mel"),
                           doc="Spacing of the band centres."),
            "order": Field(int, default=2, min=1, max=8,
                           doc="2nd-order sections per band (sharper with more)."),
            "bandwidth_factor": Field(float, default=1.0, min=0.05, max=20.0,
                                      doc="Band -3 dB width in units of the centre spacing."),
            "tau_env_ms": Field(float, default=4.0, min=0.01, doc="Envelope smoothing."),
            "step_db": Field(float, default=3.0, min=0.1, max=40.0,
                             doc="Spacing of the envelope levels."),
            "floor_db": Field(float, default=-90.0, max=0.0,
                              doc="Lowest level re. full scale; quieter is silence."),
            "gain_db": Field(float, default=0.0, doc="Input gain before the filterbank."),
            "polarity": Field(str, default="both", choices=("both", "up"),
                              doc="UP and DOWN channels, or UP (rising envelope) only."),
            "channel": Field(int, default=-1, min=-1,
                             doc="Input column to use; -1 averages all columns to mono."),
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: BuildContext):
        p = dict(params, channels=[max(0, params["channel"])], fields=[])
        super().__init__(id, p, ctx)
        self.n_bands = params["bands"]
        self.rate_hz = 0.0
        self.f_max_hz = params["f_max_hz"]
        self.centres_hz = np.zeros(0)
        # [crossings, held spikes, late spikes, spikes] (see cochlea_fused_kernel)
        self._counts = np.zeros(4, np.int64)
        self.dt_us = int(ctx.dt_us)
        self.clock = StepClock(self.dt_us)  # first step not yet emitted; time-jump guard
        self.jump_discarded = 0  # held spikes discarded by a time jump
        self._partial = False  # data reached past the last emitted step
        self._dropped = 0
        self._seq = 0
        self._buf_t = np.zeros((2, 0), np.int64)  # row 0: spikes not yet binned; 1: scratch
        self._buf_c = np.zeros((2, 0), np.int32)
        self._idx = np.zeros(0, np.int32)
        self._mark = np.full(self.n_channels, -1, np.int64)
        self._no_samples = np.zeros(0, np.float32)
        self._channel = params["channel"]
        self._gain = 10.0 ** (params["gain_db"] / 20.0) if params["gain_db"] != 0 else 1.0
        self._up_only = params["polarity"] == "up"
        step = params["step_db"]
        k = int(math.floor((CEIL_DB - params["floor_db"]) / step)) + 1
        self.levels = 10.0 ** ((params["floor_db"] + step * np.arange(k)) / 20.0)

    @property
    def n_channels(self) -> int:
        return self.params["bands"] * (2 if self.params["polarity"] == "both" else 1)

    def check(self, inputs: list[Any]) -> list[str]:
        return _check_band_inputs(self.params, inputs)

    def _design(self, rate: float) -> None:
        p = self.params
        self.rate_hz = rate
        self.f_max_hz = min(p["f_max_hz"], 0.45 * rate)
        f_min = min(p["f_min_hz"], 0.9 * self.f_max_hz)
        fc, bw = band_centres(self.n_bands, f_min, self.f_max_hz, p["scale"])
        bw = np.minimum(bw * p["bandwidth_factor"], 2 * fc)
        self.centres_hz = fc
        self.coef = design_bandpass(fc, bw, rate, p["order"])
        nb, order = self.n_bands, p["order"]
        fs = np.zeros((_Z + 2 * order, nb))
        fs[_B0], fs[_A2] = self.coef[:, 0], self.coef[:, 2]
        fs[_NA1], fs[_NB0] = -self.coef[:, 1], -self.coef[:, 0]
        fs[_HI] = self.levels[1] if len(self.levels) > 1 else np.inf
        fs[_LO] = -np.inf
        self._fs = fs
        self._flat = fs.reshape(-1)  # a view, for `zero_tiny`
        # views of the state in the layout of `cochlea_kernel`
        self.z = fs[_Z:].reshape(order, 2, nb).transpose(2, 0, 1)
        self.env = fs[_E0:_E1 + 1].T
        self.lev = np.zeros(nb, np.int64)
        self.alpha = 1.0 - math.exp(-1.0 / (rate * p["tau_env_ms"] * 1e-3))

    def encode(self, batch: EventBatch) -> SpikeRaster | None:
        rate = float(batch.meta["sample_rate_hz"])
        if rate != self.rate_hz:
            self._design(rate)
        ev = batch.events
        if ev.ndim == 1:
            ev = ev[:, None]
        ch = self._channel
        x = ev[:, ch] if ch >= 0 or ev.shape[1] == 1 else ev.mean(axis=1)
        if self._gain != 1.0:
            x = x * self._gain
        if x.dtype != np.float32 or not x.flags.c_contiguous:
            x = np.ascontiguousarray(x, np.float32)
        self.samples_in += x.shape[0]
        t_start = int(batch.t_start_us)
        self._dropped += batch.dropped_before
        if self.clock.guard(t_start, int(batch.t_end_us)):  # the spikes held are of the old grid
            self.jump_discarded += int(self._counts[1])
            self._counts[1] = 0
        t0, n = self.clock.advance(int(batch.t_end_us))
        self._partial = batch.t_end_us > t0 + n * self.dt_us
        return self._run(x, rate, t_start, t0, n)

    def _run(self, x: np.ndarray, rate: float, t_start: int, t0: int, n: int
             ) -> SpikeRaster | None:
        """Encode x and emit the n complete steps from t0 as one raster (None when n is 0)."""
        need = int(self._counts[1]) + x.shape[0] * self.n_bands
        if need > self._idx.shape[0]:
            self._grow(need)
        ptr = np.empty(n + 1, np.int64)
        k = cochlea_fused_kernel(x, self._fs, self.lev, self.levels, self.alpha,
                                 self._up_only, rate, t_start, t0, n,
                                 self.dt_us, self._buf_t, self._buf_c, ptr, self._idx,
                                 self._mark, self._counts)
        # filter memories in digital silence would decay into subnormals and stay there,
        # making every later sample ~12x slower (see `edgesnn.core.tiny`)
        zero_tiny(self._flat)
        if n == 0:
            return None
        r = SpikeRaster(self.id, self._seq, t0, self.dt_us, self.n_channels, ptr,
                        self._idx[:k].copy(), self._dropped)
        self._dropped = 0
        self._seq += 1
        return r

    def _grow(self, need: int) -> None:
        cap = max(need, 2 * self._idx.shape[0], 1024)
        held = int(self._counts[1])
        t, c = np.zeros((2, cap), np.int64), np.zeros((2, cap), np.int32)
        t[0, :held], c[0, :held] = self._buf_t[0, :held], self._buf_c[0, :held]
        self._buf_t, self._buf_c, self._idx = t, c, np.zeros(cap, np.int32)

    def flush(self) -> SpikeRaster | None:
        """The partial final step (if any data reached it) as a one-step raster."""
        if self.clock.t0_us is None or not (self._partial or self._counts[1]):
            return None
        self._partial = False
        t0, n = self.clock.advance(self.clock.t0_us + self.dt_us)
        return self._run(self._no_samples, self.rate_hz, t0, t0, n)

    def status(self) -> dict[str, Any]:
        return {"samples_in": self.samples_in, "crossings": int(self._counts[0]),
                "spikes": int(self._counts[3]), "late_spikes": int(self._counts[2]),
                "time_jumps": self.clock.time_jumps, "jump_discarded": self.jump_discarded,
                "f_max_hz": self.f_max_hz,
                "sample_rate_hz": self.rate_hz}


# --- log-mel level encoder --------------------------------------------------------------------


def vtlp_warp(f_hz: np.ndarray, alpha: float, nyquist_hz: float) -> np.ndarray:
    """Frequencies f_hz under a vocal-tract-length warp by `alpha` (Jaitly & Hinton 2013):
    f * alpha up to a boundary, then linear to the Nyquist frequency, which stays put."""
    f = np.asarray(f_hz, np.float64)
    if alpha == 1.0:
        return f
    f_hi = 0.85 * nyquist_hz * min(alpha, 1.0)
    knee = f_hi / alpha
    upper = nyquist_hz - (nyquist_hz - f_hi) / (nyquist_hz - knee) * (nyquist_hz - f)
    return np.where(f <= knee, f * alpha, upper)


def mel_filterbank(bands: int, n_fft: int, rate_hz: float, f_min_hz: float, f_max_hz: float,
                   warp: float = 1.0) -> np.ndarray:
    """(bands, n_fft // 2 + 1) triangular filters evenly spaced on the mel scale; with `warp`
    != 1 their edges move as under a vocal-tract-length warp (`vtlp_warp`)."""
    edges = scale_to_hz(np.linspace(hz_to_scale(f_min_hz, "mel"), hz_to_scale(f_max_hz, "mel"),
                                    bands + 2), "mel")
    edges = vtlp_warp(edges, warp, rate_hz / 2.0)
    bins = np.fft.rfftfreq(n_fft, 1.0 / rate_hz)
    w = np.zeros((bands, bins.size))
    for b in range(bands):
        lo, c, hi = edges[b], edges[b + 1], edges[b + 2]
        w[b] = np.clip(np.minimum((bins - lo) / (c - lo), (hi - bins) / (hi - c)), 0.0, None)
    return w


@register
class LogMelEncoder(Encoder):
    """Audio -> log-mel band energies per step, levels relative to a running peak, as spikes."""

    type_name = "logmel"
    summary = ("Audio -> log-mel band energy per step, level-coded (thermometer or population) "
               "relative to a running peak; silence gives no spikes.")
    schema = Schema(
        {
            "bands": Field(int, default=20, min=1, max=256, doc="Number of mel bands."),
            "f_min_hz": Field(float, default=100.0, min=0.0, doc="Lowest band edge."),
            "f_max_hz": Field(float, default=3800.0, min=1.0,
                              doc="Highest band edge (lowered to 0.475 x sample rate)."),
            "frame_ms": Field(float, default=25.0, min=1.0,
                              doc="Analysis window (Hann) ending at each step's end."),
            "cepstra": Field(int, default=0, min=0, max=256,
                             doc="Keep this many cepstral (DCT) coefficients of each step's "
                                 "log-mel spectrum (drops pitch harmonics); 0: all."),
            "output": Field(str, default="bands", choices=("bands", "cepstra"),
                            doc="Code the (smoothed) band levels, or the cepstral coefficients "
                                "(MFCCs; coefficient 0 replaced by the loudness re. the running "
                                "peak)."),
            "cep_mean": Field(("list", float), default=[],
                              doc="Per-coefficient mean subtracted before coding (output = "
                                  "cepstra; [] = 0); fitted on training data."),
            "cep_scale": Field(("list", float), default=[],
                               doc="Per-coefficient scale (output = cepstra; [] = 1)."),
            "cep_range": Field(float, default=2.0, min=0.01,
                               doc="Levels span mean +- this many scales (output = cepstra)."),
            "levels": Field(int, default=8, min=1, max=64, doc="Level neurons per band."),
            "range_db": Field(float, default=40.0, min=1.0,
                              doc="Levels span this many dB below the running peak."),
            "code": Field(str, default="thermometer", choices=("thermometer", "population"),
                          doc="thermometer: every level neuron at or below the band's level "
                              "spikes; population: only the neuron of that level."),
            "release_db_per_s": Field(float, default=20.0, min=0.0,
                                      doc="How fast the running peak (reference) falls."),
            "floor_db": Field(float, default=-75.0, max=0.0,
                              doc="A step whose loudest band is below this (dB re full scale) "
                                  "is silence: no spikes."),
            "reset_after_ms": Field(float, default=250.0, min=0.0,
                                    doc="After this much silence the running peak and the "
                                        "onset clock restart (each utterance coded alone); "
                                        "0: never."),
            "clock": Field(int, default=0, min=0, max=256,
                           doc="Onset-clock channels: channel j spikes in the j-th interval of "
                               "clock_ms after speech onset (0: none)."),
            "clock_ms": Field(float, default=60.0, min=0.1, doc="Onset-clock interval."),
            "channel": Field(int, default=-1, min=-1,
                             doc="Input column to use; -1 averages all columns to mono."),
            "warp": Field(float, default=1.0, min=0.5, max=2.0,
                          doc="Vocal-tract-length warp of the band edges (1: none); training "
                              "augmentation draws it per copy, as another speaker."),
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: BuildContext):
        super().__init__(id, params, ctx)
        self.dt_us = int(ctx.dt_us)
        self.rate_hz = 0.0
        self.samples_in = 0
        self._seq = 0
        self._dropped = 0
        self.clock = StepClock(self.dt_us)  # first step not yet emitted; time-jump guard
        self.jump_discarded = 0  # samples not yet coded, discarded by a time jump
        self._spikes = 0
        self._silent_steps = 0

    @property
    def n_coded(self) -> int:
        """Coded values per step: bands, or cepstral coefficients."""
        p = self.params
        if p["output"] == "cepstra":
            return p["cepstra"] or p["bands"]
        return p["bands"]

    @property
    def n_channels(self) -> int:
        p = self.params
        return self.n_coded * p["levels"] + p["clock"]

    def check(self, inputs: list[Any]) -> list[str]:
        return _check_band_inputs(self.params, inputs)

    def _design(self, rate: float) -> None:
        p = self.params
        self.rate_hz = rate
        hop = rate * self.dt_us / 1e6
        self.hop = int(round(hop))
        if self.hop < 1 or abs(hop - self.hop) > 1e-6:
            raise ValueError(f"encoder {self.id!r}: dt_us {self.dt_us} is not a whole number of "
                             f"samples at {rate:g} Hz")
        self.frame = max(self.hop, int(round(p["frame_ms"] * rate / 1000.0)))
        self.n_fft = 1 << (self.frame - 1).bit_length()
        self.window = np.hanning(self.frame)
        self._norm = 1.0 / float(np.sum(self.window**2))
        f_max = min(p["f_max_hz"], 0.475 * rate)
        self.fbank = mel_filterbank(p["bands"], self.n_fft, rate, min(p["f_min_hz"], 0.9 * f_max),
                                    f_max, p["warp"])
        nb, kc = p["bands"], p["cepstra"]
        self._smooth: np.ndarray | None = None
        self._dct: np.ndarray | None = None
        if p["output"] == "cepstra":
            kc = kc or nb
            k = np.arange(nb)
            d = np.cos(np.pi / nb * (k[None, :] + 0.5) * np.arange(kc)[:, None])
            d *= np.sqrt(2.0 / nb)
            d[0] /= np.sqrt(2.0)
            self._dct = d.T.copy()  # (bands, kc): e @ dct gives the cepstra
            mean = np.zeros(kc)
            scale = np.ones(kc)
            mean[: len(p["cep_mean"][:kc])] = p["cep_mean"][:kc]
            scale[: len(p["cep_scale"][:kc])] = p["cep_scale"][:kc]
            self._cmean, self._cscale = mean, np.maximum(scale, 1e-9)
        elif 0 < kc < nb:
            # orthonormal DCT-II rows 0..kc-1; E @ D.T @ D keeps the first kc cepstra
            k = np.arange(nb)
            d = np.cos(np.pi / nb * (k[None, :] + 0.5) * np.arange(kc)[:, None])
            d *= np.sqrt(2.0 / nb)
            d[0] /= np.sqrt(2.0)
            self._smooth = d.T @ d
        self._buf = np.zeros(self.frame - self.hop)  # pre-padding: the first frame's history
        self._avail = 0  # samples received past the last emitted step
        self._rel = p["release_db_per_s"] * self.dt_us / 1e6
        self._ref = -np.inf
        self._onset = -1  # steps since speech onset (-1: none yet)
        self._reset_steps = int(round(p["reset_after_ms"] * 1000 / self.dt_us))
        p_levels = p["levels"]
        self._lvl_scale = p_levels / p["range_db"]

    def band_db(self, frames: np.ndarray) -> np.ndarray:
        """(n, bands) log-mel energies (dB re a full-scale sine's power) of frames (n, frame)."""
        spec = np.fft.rfft(frames * self.window, self.n_fft, axis=1)
        power = (spec.real**2 + spec.imag**2) * self._norm
        e = 10.0 * np.log10(power @ self.fbank.T + 1e-10)
        return e if self._smooth is None else e @ self._smooth

    def analyse(self, x: np.ndarray, rate_hz: float) -> np.ndarray:
        """(steps, bands) log-mel energies of a whole mono recording x, step by step as the
        stream would see them (no state is changed; for fitting `cep_mean`/`cep_scale`)."""
        if rate_hz != self.rate_hz:
            self._design(rate_hz)
        n = max(1, -(-x.size // self.hop))
        xp = np.concatenate([np.zeros(self.frame - self.hop), np.asarray(x, np.float64),
                             np.zeros(n * self.hop - x.size)])
        frames = np.lib.stride_tricks.sliding_window_view(xp, self.frame)[::self.hop][:n]
        return self.band_db(frames)

    def _code(self, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Spike CSR (ptr, idx) of the band energies e (n, bands), advancing the running peak,
        the silence count and the onset clock."""
        p = self.params
        n_l, code = p["levels"], p["code"]
        ptr = np.zeros(e.shape[0] + 1, np.int64)
        out: list[np.ndarray] = []
        n_v = self.n_coded
        base = n_v * n_l
        offs = np.arange(n_v) * n_l
        ramp = np.arange(n_l)[None, :]
        grid = offs[:, None] + ramp
        for k in range(e.shape[0]):
            top = float(e[k].max())
            self._ref = max(self._ref - self._rel, top)
            if top < p["floor_db"]:
                self._silent_steps += 1
                if self._reset_steps and self._silent_steps >= self._reset_steps:
                    self._ref = -np.inf
                    self._onset = -1
                ptr[k + 1] = ptr[k]
                continue
            self._silent_steps = 0
            self._onset += 1
            if self._dct is None:
                lvl = np.clip(np.floor((e[k] - self._ref + p["range_db"]) * self._lvl_scale),
                              0, n_l).astype(np.int64)
            else:
                if top < self._ref - p["range_db"]:
                    ptr[k + 1] = ptr[k]
                    continue
                z = (e[k] @ self._dct - self._cmean) / self._cscale
                v = np.floor((z + p["cep_range"]) * (n_l / (2.0 * p["cep_range"])))
                v[0] = np.floor((top - self._ref + p["range_db"]) * self._lvl_scale)
                lvl = np.clip(v, 0, n_l).astype(np.int64)
            if code == "thermometer":
                idx = grid[ramp < lvl[:, None]]
            else:
                on = lvl > 0
                idx = offs[on] + lvl[on] - 1
            if p["clock"]:
                j = int(self._onset * self.dt_us // int(p["clock_ms"] * 1000))
                if j < p["clock"]:
                    idx = np.append(idx, base + j)
            idx = np.asarray(idx, np.int32)
            out.append(idx)
            ptr[k + 1] = ptr[k] + idx.size
        idx_all = np.concatenate(out) if out else np.zeros(0, np.int32)
        self._spikes += int(idx_all.size)
        return ptr, idx_all

    def _emit(self, n: int) -> SpikeRaster | None:
        if n <= 0:
            return None
        b = self._buf
        frames = np.lib.stride_tricks.sliding_window_view(b, self.frame)[::self.hop][:n]
        ptr, idx = self._code(self.band_db(frames))
        self._buf = b[n * self.hop :].copy()
        t0 = self.clock.t0_us
        assert t0 is not None
        r = SpikeRaster(self.id, self._seq, t0, self.dt_us, self.n_channels, ptr, idx,
                        self._dropped)
        self.clock.t0_us = t0 + n * self.dt_us
        self._dropped = 0
        self._seq += 1
        return r

    def encode(self, batch: EventBatch) -> SpikeRaster | None:
        rate = float(batch.meta["sample_rate_hz"])
        if rate != self.rate_hz:
            self._design(rate)
        ev = batch.events
        if ev.ndim == 1:
            ev = ev[:, None]
        ch = self.params["channel"]
        x = ev[:, ch] if ch >= 0 or ev.shape[1] == 1 else ev.mean(axis=1)
        x = np.asarray(x, np.float64)
        self.samples_in += x.shape[0]
        # steps are counted in samples: the samples not yet coded began where the next step
        # does; a batch far from that in time is a jump, and coding restarts at the batch
        t_start = int(batch.t_start_us)
        began = t_start - (self._avail * self.dt_us) // self.hop
        if self.clock.guard(began, began + 1):
            self.jump_discarded += self._avail
            self._buf = np.zeros(self.frame - self.hop)
            self._avail = 0
            self.clock.t0_us = t_start - t_start % self.dt_us
        self._dropped += batch.dropped_before
        self._buf = np.concatenate([self._buf, x])
        self._avail += x.shape[0]
        n = self._avail // self.hop
        self._avail -= n * self.hop
        return self._emit(n)

    def flush(self) -> SpikeRaster | None:
        """The partial final step (zero-padded) when samples reached past the last step."""
        if self.clock.t0_us is None or self._avail == 0:
            return None
        self._buf = np.concatenate([self._buf, np.zeros(self.hop - self._avail)])
        self._avail = 0
        return self._emit(1)

    def status(self) -> dict[str, Any]:
        return {"samples_in": self.samples_in, "spikes": self._spikes,
                "sample_rate_hz": self.rate_hz, "time_jumps": self.clock.time_jumps,
                "jump_discarded": self.jump_discarded,
                "reference_db": None if not np.isfinite(self._ref) else float(self._ref)}
