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

The sample rate comes from the batches (`meta["sample_rate_hz"]`); filters are designed at the
first batch. `f_max_hz` above 0.45 x the sample rate is lowered to it (`status()["f_max_hz"]`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from edgesnn.components import BuildContext, register
from edgesnn.config.schema import Field, Schema
from edgesnn.encoders.generic import ScalarEncoder, SpikeBinner
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
    """Filterbank + rectifier + envelope + log level crossings over mono samples x (n,).

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
        self.binner = SpikeBinner(id, ctx.dt_us, self.n_channels)
        self.rate_hz = 0.0
        self.f_max_hz = params["f_max_hz"]
        self.centres_hz = np.zeros(0)
        self._counts = np.zeros(1, np.int64)
        step = params["step_db"]
        k = int(math.floor((CEIL_DB - params["floor_db"]) / step)) + 1
        self.levels = 10.0 ** ((params["floor_db"] + step * np.arange(k)) / 20.0)

    @property
    def n_channels(self) -> int:
        return self.params["bands"] * (2 if self.params["polarity"] == "both" else 1)

    def check(self, inputs: list[Any]) -> list[str]:
        out = []
        for d in inputs:
            kind = getattr(d, "batch_kind", "samples")
            if getattr(d, "kind", "") == "driver" and kind != "samples":
                out.append(f"needs a samples input, {d.id!r} gives {kind}")
        if self.params["f_min_hz"] >= self.params["f_max_hz"]:
            out.append("f_min_hz must be below f_max_hz")
        return out

    def _design(self, rate: float) -> None:
        p = self.params
        self.rate_hz = rate
        self.f_max_hz = min(p["f_max_hz"], 0.45 * rate)
        f_min = min(p["f_min_hz"], 0.9 * self.f_max_hz)
        fc, bw = band_centres(self.n_bands, f_min, self.f_max_hz, p["scale"])
        bw = np.minimum(bw * p["bandwidth_factor"], 2 * fc)
        self.centres_hz = fc
        self.coef = design_bandpass(fc, bw, rate, p["order"])
        self.z = np.zeros((self.n_bands, p["order"], 2))
        self.env = np.zeros((self.n_bands, 2))
        self.lev = np.zeros(self.n_bands, np.int64)
        self.alpha = 1.0 - math.exp(-1.0 / (rate * p["tau_env_ms"] * 1e-3))

    def encode(self, batch: EventBatch) -> SpikeRaster | None:
        rate = float(batch.meta["sample_rate_hz"])
        if rate != self.rate_hz:
            self._design(rate)
        ev = batch.events
        if ev.ndim == 1:
            ev = ev[:, None]
        ch = self.params["channel"]
        x = ev[:, ch] if ch >= 0 or ev.shape[1] == 1 else ev.mean(axis=1)
        g = self.params["gain_db"]
        x = np.ascontiguousarray(x if g == 0 else x * 10.0 ** (g / 20.0), np.float32)
        n = x.shape[0]
        self.samples_in += n
        out_j = np.empty(n * self.n_bands, np.int64)
        out_c = np.empty(n * self.n_bands, np.int32)
        k = cochlea_kernel(x, self.coef, self.z, self.env, self.lev, self.levels, self.alpha,
                           self.params["polarity"] == "up", out_j, out_c, self._counts)
        # same rounding as EventBatch.sample_t_us, computed for the spiking samples only
        t = batch.t_start_us + (out_j[:k] * 1_000_000 / rate).astype(np.int64)
        return self.binner.push(batch.t_start_us, batch.t_end_us, t, out_c[:k],
                                batch.dropped_before)

    def flush(self) -> SpikeRaster | None:
        return self.binner.flush()

    def status(self) -> dict[str, Any]:
        return {"samples_in": self.samples_in, "crossings": int(self._counts[0]),
                "spikes": self.binner.spikes_in, "f_max_hz": self.f_max_hz,
                "sample_rate_hz": self.rate_hz}
