"""Vibration encoder: short-time band energies, then delta (level-crossing) spikes in dB.

Every `hop_ms` a Hann window of the last `window_ms` of each selected column is transformed
(real FFT); the mean-square value of each band (sum of the band's power bins, normalised by
Parseval so that a sine of amplitude A inside the band gives A^2 / 2) is taken in dB, floored
at `floor_db` (dB re. 1 unit^2, e.g. g^2). Bands are given by `band_edges_hz` (contiguous,
ascending), or `bands` edges evenly spaced in log frequency between `f_min_hz` and `f_max_hz`
(0: half the sample rate). Each band's dB value is delta coded with `threshold_db`: an UP spike
every time it rises one threshold above its reference, a DOWN spike every time it falls one
below (as the generic `delta` encoder, level mode). A frame's spikes are timed at its last
sample.

Output channel of column i, band b: `i * bands + b` (UP) and `n_in * bands + i * bands + b`
(DOWN, when `polarity = "both"`).

With `code = "level"` the band energies are level coded instead (a thermometer code that keeps
the absolute level, which delta spikes lose: a steadily louder machine gives the same delta
spikes as a quiet one): every frame, band b of column i spikes on each of its `levels` channels
`(i * bands + b) * levels + j` whose threshold `level_min_db + j * threshold_db` the band's dB
value reaches. So the count of a channel over a window is the number of frames in which the
band was at least that loud.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgesnn.components import BuildContext, register
from edgesnn.config.schema import Field, Schema
from edgesnn.encoders.generic import SCALAR_SCHEMA, ScalarEncoder, SpikeBinner, delta_kernel
from edgesnn.events import EventBatch, SpikeRaster


def _edges_check(v: Any) -> str | None:
    if not v:
        return None
    if len(v) < 2 or any(b <= a for a, b in zip(v, v[1:])) or v[0] < 0:
        return "expected at least 2 ascending, non-negative band edges"
    return None


def band_matrix(edges_hz: np.ndarray, n_fft: int, rate_hz: float) -> np.ndarray:
    """(bins, bands) 0/1 matrix: which rfft bins fall in [edge_b, edge_b+1)."""
    f = np.fft.rfftfreq(n_fft, 1.0 / rate_hz)
    m = (f[:, None] >= edges_hz[None, :-1]) & (f[:, None] < edges_hz[None, 1:])
    return m.astype(np.float64)


@register
class BandEnergyEncoder(ScalarEncoder):
    """Accelerometer samples -> short-time band energies -> delta spikes per band."""

    type_name = "band_energy"
    summary = "Vibration -> short-time band energies (dB) -> UP/DOWN delta spikes per band."
    schema = SCALAR_SCHEMA | Schema(
        {
            "window_ms": Field(float, default=20.0, min=0.01, doc="Analysis window length."),
            "hop_ms": Field(float, default=5.0, min=0.01, doc="Time between windows."),
            "band_edges_hz": Field(("list", float), default=[], check=_edges_check,
                                   doc="Explicit band edges; [] uses bands/f_min/f_max."),
            "bands": Field(int, default=8, min=1, max=1024, doc="Bands when no edges are given."),
            "f_min_hz": Field(float, default=50.0, min=0.0, doc="Lowest edge (log spacing)."),
            "f_max_hz": Field(float, default=0.0, min=0.0,
                              doc="Highest edge; 0 means half the sample rate."),
            "threshold_db": Field(float, default=2.0, min=0.01, doc="Delta step in dB."),
            "floor_db": Field(float, default=-80.0,
                              doc="Band energies below this (dB re. 1 unit^2) count as this."),
            "polarity": Field(str, default="both", choices=("both", "up"),
                              doc="UP and DOWN channels, or UP only (delta code)."),
            "code": Field(str, default="delta", choices=("delta", "level"),
                          doc="delta: UP/DOWN spikes on changes; level: thermometer code of "
                              "the absolute band level."),
            "level_min_db": Field(float, default=-60.0,
                                  doc="Lowest level threshold (level code), dB re. 1 unit^2."),
            "levels": Field(int, default=16, min=1, max=256,
                            doc="Thresholds per band, threshold_db apart (level code)."),
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: BuildContext):
        super().__init__(id, params, ctx)
        edges = params["band_edges_hz"]
        self.n_bands = len(edges) - 1 if edges else params["bands"]
        self.binner = SpikeBinner(id, ctx.dt_us, self.n_channels)
        self.rate_hz = 0.0
        self.frames_out = 0
        self._counts = np.zeros(1, np.int64)
        width = self.n_in * self.n_bands
        self._ref = np.zeros(width)
        self._started = np.zeros(width, np.uint8)

    @property
    def n_channels(self) -> int:
        if self.params["code"] == "level":
            return self.n_in * self.n_bands * self.params["levels"]
        return self.n_in * self.n_bands * (2 if self.params["polarity"] == "both" else 1)

    @property
    def level_thresholds_db(self) -> np.ndarray:
        """The level code's thresholds (dB), lowest first."""
        p = self.params
        return p["level_min_db"] + p["threshold_db"] * np.arange(p["levels"])

    def _design(self, rate: float) -> None:
        p = self.params
        self.rate_hz = rate
        self.win = max(2, round(p["window_ms"] * 1e-3 * rate))
        self.hop = max(1, round(p["hop_ms"] * 1e-3 * rate))
        if p["band_edges_hz"]:
            edges = np.asarray(p["band_edges_hz"], np.float64)
        else:
            hi = p["f_max_hz"] or rate / 2
            lo = max(p["f_min_hz"], rate / self.win)  # nothing below one bin is resolvable
            lo = min(lo, hi / 2)
            edges = np.geomspace(lo, hi, self.n_bands + 1)
            if not p["f_max_hz"]:
                edges[-1] = rate / 2 + 1.0  # the top band includes the Nyquist bin
        self.edges_hz = edges
        window = np.hanning(self.win + 2)[1:-1]  # no zero end points
        self.window = window
        # Parseval: one-sided power sums x 2 / (N sum w^2) give the band's share of the mean
        # square, so a sine of amplitude A well inside a band reads A^2 / 2 (DC and Nyquist
        # bins, counted twice, are the exception)
        self.scale = 2.0 / (self.win * float(np.dot(window, window)))
        self.bmat = band_matrix(edges, self.win, rate)
        self._buf = np.zeros((0, self.n_in))
        self._buf_t = np.zeros(0, np.int64)
        self._seen = 0  # samples received so far
        self._next_end = self.win  # absolute (exclusive) sample index of the next frame end

    def encode(self, batch: EventBatch) -> SpikeRaster | None:
        rate = float(batch.meta["sample_rate_hz"])
        if rate != self.rate_hz:
            self._design(rate)
        ev = batch.events if batch.events.ndim == 2 else batch.events[:, None]
        v = np.asarray(ev[:, self.params["channels"]], np.float64)
        t = batch.sample_t_us
        self.samples_in += len(t)
        buf = np.concatenate([self._buf, v]) if len(self._buf) else v
        buf_t = np.concatenate([self._buf_t, t]) if len(self._buf_t) else t
        self._seen += len(v)
        base = self._seen - len(buf)  # absolute index of buf[0]
        ends = np.arange(self._next_end, self._seen + 1, self.hop)
        if len(ends):
            self._next_end = int(ends[-1]) + self.hop
        out_t, out_c = self._frames(buf, buf_t, ends - base)
        keep = max(0, self._next_end - self.win - base)
        self._buf, self._buf_t = buf[keep:].copy(), buf_t[keep:].copy()
        return self.binner.push(batch.t_start_us, batch.t_end_us, out_t, out_c,
                                batch.dropped_before)

    def band_db(self, frames: np.ndarray) -> np.ndarray:
        """(n, bands) band energies in dB of windows (n, win) of one column."""
        spec = np.fft.rfft(frames * self.window, axis=1)
        power = (spec.real**2 + spec.imag**2) * self.scale
        e = power @ self.bmat
        return 10.0 * np.log10(np.maximum(e, 10.0 ** (self.params["floor_db"] / 10.0)))

    def _frames(self, buf: np.ndarray, buf_t: np.ndarray, ends: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
        n = len(ends)
        if n == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int32)
        self.frames_out += n
        idx = ends[:, None] - self.win + np.arange(self.win)[None, :]
        db = np.empty((n, self.n_in * self.n_bands))
        for i in range(self.n_in):
            db[:, i * self.n_bands:(i + 1) * self.n_bands] = self.band_db(buf[idx, i])
        ft = buf_t[ends - 1]
        if self.params["code"] == "level":
            hit = db[:, :, None] >= self.level_thresholds_db[None, None, :]
            f, ch = np.nonzero(hit.reshape(n, -1))  # frame-major: spikes in time order
            self._counts[0] += f.size
            return ft[f], ch.astype(np.int32)
        out_t = np.empty(db.size, np.int64)
        out_c = np.empty(db.size, np.int32)
        k = delta_kernel(ft, db, self.params["threshold_db"], self._ref, self._started, True,
                         self.params["polarity"] == "up", out_t, out_c, self._counts)
        return out_t[:k], out_c[:k]

    def flush(self) -> SpikeRaster | None:
        return self.binner.flush()

    def status(self) -> dict[str, Any]:
        return {"samples_in": self.samples_in, "frames": self.frames_out,
                "crossings": int(self._counts[0]), "spikes": self.binner.spikes_in,
                "window_samples": getattr(self, "win", 0), "hop_samples": getattr(self, "hop", 0),
                **self.binner.counters()}
