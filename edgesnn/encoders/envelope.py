"""Bearing encoder: band levels, RMS, kurtosis and shaft-speed-normalised envelope-spectrum peaks,
each level coded (thermometer) into spikes.

A bearing fault shows in two ways: the machine gets louder, mostly at high frequencies, and the
impacts of a damaged race or ball repeat at a fixed multiple ("order") of the shaft speed: BPFO
(outer race), BPFI (inner race), BSF (ball spin). Every `hop_ms`, over the last `window_ms` of
each selected column, this encoder measures:

- the energy of `bands` log-spaced bands (as `band_energy`: Hann window, Parseval-scaled band
  power, dB re. 1 unit^2, floored at `floor_db`), and the frame's RMS in dB;
- the kurtosis of the frame (impulsiveness), in dB (10 log10; a Gaussian signal reads 4.8 dB);
- for every entry of `orders`, the envelope-spectrum peak at that order of the shaft frequency
  `rpm / 60`: the frame is band-passed to `demod_hz` and demodulated (magnitude of the analytic
  signal); the magnitude spectrum of the Hann-windowed envelope (mean removed) is searched within
  +-`tolerance` (relative, plus one bin) of `o * h * rpm / 60` for h = 1..`harmonics`; the mean of
  these maxima over the median of the envelope spectrum between the shaft frequency and
  `(max(orders) * harmonics + 1)` times it is the peak, 20 log10 in dB. Dividing by the median
  makes it independent of the level; using orders makes it independent of the speed.

With `contrast = true`, each order also gets its contrast: its peak minus the largest peak of the
other orders (dB), positive when that fault frequency dominates the envelope spectrum (the
classic diagnosis rule, whatever the level or the size of the peaks).

Each value is level coded: feature f spikes, every frame, on each of its `levels` channels whose
threshold it reaches. Thresholds: `level_min_db + j * level_step_db` (bands, RMS),
`kurtosis_min_db + j * kurtosis_step_db`, `peak_min_db + j * peak_step_db` (orders),
`j * peak_step_db` (contrasts). A frame's
spikes are timed at its last sample. So over a window the count of each channel is the number of
frames in which that feature was at least that high: the level survives (a louder machine gives
more spikes), unlike delta codes.

Channels of column i: features `[band 0 .. band B-1, rms, kurtosis, order 0 .. order K-1]`
(then `contrast 0 .. contrast K-1` with `contrast = true`), feature f's level j at
`(i * F + f) * levels + j` (F = B + 2 + K, or B + 2 + 2K).

Defaults fit the CWRU drive-end bearing (SKF 6205-2RS JEM, fault frequencies per shaft
revolution: BPFO 3.5848, BPFI 5.4152, 2 x BSF 4.7135, the ball fault's dominant line) at 12 kHz.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgesnn.components import BuildContext, register
from edgesnn.config.schema import Field, Schema
from edgesnn.encoders.generic import SCALAR_SCHEMA
from edgesnn.encoders.vibration import BandEnergyEncoder, _edges_check

#: fault frequencies of the CWRU drive-end bearing (SKF 6205), in multiples of the shaft speed
CWRU_DE_ORDERS = {"bpfo": 3.5848, "bpfi": 5.4152, "bsf2": 4.7135}


def _pair_check(v: Any) -> str | None:
    if len(v) != 2 or v[0] < 0 or (v[1] and v[1] <= v[0]):
        return "expected [lo, hi] with 0 <= lo < hi (hi = 0: half the sample rate)"
    return None


def _orders_check(v: Any) -> str | None:
    if any(o <= 0 for o in v):
        return "orders must be positive"
    return None


@register
class EnvelopeOrderEncoder(BandEnergyEncoder):
    """Accelerometer -> band levels, RMS, kurtosis, envelope order peaks -> level-coded spikes."""

    type_name = "envelope_orders"
    summary = ("Vibration -> band levels, RMS, kurtosis and envelope-spectrum peaks at fault "
               "orders of the shaft speed -> level-coded (thermometer) spikes.")
    schema = SCALAR_SCHEMA | Schema(
        {
            "window_ms": Field(float, default=170.0, min=1.0, doc="Analysis window length."),
            "hop_ms": Field(float, default=20.0, min=0.01, doc="Time between windows."),
            "band_edges_hz": Field(("list", float), default=[], check=_edges_check,
                                   doc="Explicit band edges; [] uses bands/f_min/f_max."),
            "bands": Field(int, default=4, min=1, max=256, doc="Bands when no edges are given."),
            "f_min_hz": Field(float, default=750.0, min=0.0, doc="Lowest edge (log spacing)."),
            "f_max_hz": Field(float, default=0.0, min=0.0,
                              doc="Highest edge; 0 means half the sample rate."),
            "floor_db": Field(float, default=-100.0,
                              doc="Band energies below this (dB re. 1 unit^2) count as this."),
            "rpm": Field(float, default=1797.0, min=1.0,
                         doc="Shaft speed (revolutions per minute) the orders refer to."),
            "orders": Field(("list", float), default=list(CWRU_DE_ORDERS.values()),
                            check=_orders_check,
                            doc="Fault frequencies in multiples of the shaft frequency."),
            "harmonics": Field(int, default=3, min=1, max=16,
                               doc="Harmonics of each order averaged into its peak."),
            "tolerance": Field(float, default=0.03, min=0.0, max=0.5,
                               doc="Relative search width around each harmonic."),
            "demod_hz": Field(("list", float), default=[1000.0, 0.0], check=_pair_check,
                              doc="Band demodulated for the envelope; hi = 0: Nyquist."),
            "levels": Field(int, default=12, min=1, max=256, doc="Thresholds per feature."),
            "level_min_db": Field(float, default=-60.0, doc="Lowest band/RMS threshold (dB)."),
            "level_step_db": Field(float, default=4.0, min=0.01, doc="Band/RMS threshold step."),
            "kurtosis_min_db": Field(float, default=5.0, doc="Lowest kurtosis threshold (dB)."),
            "kurtosis_step_db": Field(float, default=1.0, min=0.01, doc="Kurtosis step (dB)."),
            "peak_min_db": Field(float, default=3.0, doc="Lowest order-peak threshold (dB)."),
            "peak_step_db": Field(float, default=2.0, min=0.01, doc="Order-peak step (dB)."),
            "contrast": Field(bool, default=False,
                              doc="Also code each order's peak minus the largest other one."),
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: BuildContext):
        params = {**params, "code": "level", "polarity": "up", "threshold_db": 1.0}
        super().__init__(id, params, ctx)

    @property
    def n_features(self) -> int:
        """Features per column: bands, RMS, kurtosis, orders."""
        k = len(self.params["orders"])
        return self.n_bands + 2 + (2 * k if self.params["contrast"] else k)

    @property
    def n_channels(self) -> int:
        return self.n_in * self.n_features * self.params["levels"]

    def thresholds(self) -> np.ndarray:
        """(features, levels) thresholds in dB of one column's features."""
        p = self.params
        j = np.arange(p["levels"])
        rows = [p["level_min_db"] + p["level_step_db"] * j] * (self.n_bands + 1)
        rows.append(p["kurtosis_min_db"] + p["kurtosis_step_db"] * j)
        rows += [p["peak_min_db"] + p["peak_step_db"] * j] * len(p["orders"])
        if p["contrast"]:
            rows += [p["peak_step_db"] * j] * len(p["orders"])
        return np.stack(rows)

    def _design(self, rate: float) -> None:
        super()._design(rate)
        lo, hi = self.params["demod_hz"]
        f = np.fft.fftfreq(self.win, 1.0 / rate)
        # analytic signal of the demodulation band: positive bins doubled, the rest zeroed
        self._analytic = np.where((f > 0) & (f >= lo) & (f <= (hi or rate / 2)), 2.0, 0.0)
        fr = self.params["rpm"] / 60.0
        fe = np.fft.rfftfreq(self.win, 1.0 / rate)
        df = rate / self.win
        h = self.params["harmonics"]
        tol = self.params["tolerance"]
        self._base_bins = (fe >= fr) & (fe <= (max(self.params["orders"]) * h + 1) * fr)
        self._peak_bins = []
        for o in self.params["orders"]:
            self._peak_bins.append([np.flatnonzero((fe >= o * k * fr * (1 - tol) - df)
                                                   & (fe <= o * k * fr * (1 + tol) + df))
                                    for k in range(1, h + 1)])

    def features(self, frames: np.ndarray) -> np.ndarray:
        """(n, features) values in dB of windows (n, win) of one column (after `_design`)."""
        x = np.asarray(frames, np.float64)
        n = x.shape[0]
        xc = x - x.mean(axis=1, keepdims=True)
        var = np.mean(xc**2, axis=1)
        floor = 10.0 ** (self.params["floor_db"] / 10.0)
        rms_db = 10.0 * np.log10(np.maximum(np.mean(x**2, axis=1), floor))
        kurt = np.mean(xc**4, axis=1) / np.maximum(var, 1e-300) ** 2
        kurt_db = 10.0 * np.log10(np.maximum(kurt, 1e-12))
        env = np.abs(np.fft.ifft(np.fft.fft(x, axis=1) * self._analytic, axis=1))
        env -= env.mean(axis=1, keepdims=True)
        spec = np.abs(np.fft.rfft(env * self.window, axis=1))
        base = np.maximum(np.median(spec[:, self._base_bins], axis=1), 1e-300)
        peaks = np.empty((n, len(self._peak_bins)))
        for k, per_h in enumerate(self._peak_bins):
            peaks[:, k] = np.mean([spec[:, b].max(axis=1) if b.size else np.zeros(n)
                                   for b in per_h], axis=0)
        peak_db = 20.0 * np.log10(np.maximum(peaks / base[:, None], 1e-12))
        cols = [self.band_db(x), rms_db, kurt_db, peak_db]
        if self.params["contrast"]:
            k = peak_db.shape[1]
            others = np.array([[j for j in range(k) if j != i] for i in range(k)]).reshape(k, -1)
            if k > 1:
                cols.append(peak_db - peak_db[:, others].max(axis=2))
            else:
                cols.append(np.zeros_like(peak_db))
        return np.column_stack(cols)

    def _frames(self, buf: np.ndarray, buf_t: np.ndarray, ends: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
        n = len(ends)
        if n == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int32)
        self.frames_out += n
        idx = ends[:, None] - self.win + np.arange(self.win)[None, :]
        thr = self.thresholds()
        hit = np.concatenate([self.features(buf[idx, i])[:, :, None] >= thr[None]
                              for i in range(self.n_in)], axis=1)
        f, ch = np.nonzero(hit.reshape(n, -1))  # frame-major: spikes in time order
        self._counts[0] += f.size
        return buf_t[ends - 1][f], ch.astype(np.int32)
