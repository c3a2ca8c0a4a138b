"""LiDAR encoder: changes of a range image (ring x sector) to spikes.

Points are binned into cells (ring, sector = floor(azimuth / 360 * sectors)). Per ring, the
cell being swept accumulates its nearest return; when the sweep leaves the cell (the ring's
next point falls in another sector) the cell is closed and compared with its reference range:
nearer by more than max(threshold_m, relative x reference) gives a spike on the cell's
"closer" channel, farther by as much a spike on its "farther" channel, and the reference moves
to the new range (send-on-delta per cell). The first pass over a cell only sets its reference.
The spike time is the time of the point that closed the cell. Channels: closer
`ring * sectors + sector`, farther `rings * sectors + ring * sectors + sector` (polarity
"merge" folds both onto the first block).

Each raster also carries, in `meta["sector_nearest_m"]`, the nearest return per sector over
the latest sweep of every ring, counting only points with `z_band_m[0] <= z <= z_band_m[1]`
(so the ground and overhead returns can be left out): the raw-point summary that the
`sector_obstacle` readout turns into detections.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from edgesnn.components import BuildContext, Driver, Encoder, register
from edgesnn.config.schema import Field, Schema
from edgesnn.encoders.generic import SpikeBinner
from edgesnn.events import EventBatch, SpikeRaster


@njit(cache=True, nogil=True)
def _close_cell(r: int, t_us: int, n_sectors: int, n_cells: int, thr_m: float, rel: float,
                cur_sector: np.ndarray, cur_min: np.ndarray, cur_band: np.ndarray,
                ref: np.ndarray, image: np.ndarray, band: np.ndarray,
                out_t: np.ndarray, out_c: np.ndarray, n: int) -> int:
    cell = r * n_sectors + cur_sector[r]
    v = cur_min[r]
    image[cell] = v
    band[cell] = cur_band[r]
    if np.isnan(ref[cell]):
        ref[cell] = v
        return n
    th = max(thr_m, rel * ref[cell])
    if v < ref[cell] - th:
        out_t[n] = t_us
        out_c[n] = cell
        ref[cell] = v
        return n + 1
    if v > ref[cell] + th:
        out_t[n] = t_us
        out_c[n] = n_cells + cell
        ref[cell] = v
        return n + 1
    return n


@njit(cache=True, nogil=True)
def range_change_kernel(
    t: np.ndarray, ring: np.ndarray, az_deg: np.ndarray, dist: np.ndarray, z: np.ndarray,
    n_sectors: int, thr_m: float, rel: float, z_lo: float, z_hi: float,
    cur_sector: np.ndarray, cur_min: np.ndarray, cur_band: np.ndarray,
    ref: np.ndarray, image: np.ndarray, band: np.ndarray,
    out_t: np.ndarray, out_c: np.ndarray,
) -> int:
    """Feed points in order; write (time, channel) of range-change spikes; returns how many.

    State (per ring: cur_sector (-1 none), cur_min, cur_band; per cell: ref (NaN unset), image,
    band) is carried across calls. out_t/out_c need room for one spike per point.
    """
    n_cells = cur_sector.shape[0] * n_sectors
    n = 0
    for i in range(t.shape[0]):
        r = np.int64(ring[i])
        a = az_deg[i] % 360.0
        s = np.int64(a * n_sectors / 360.0)
        if s >= n_sectors:
            s = n_sectors - 1
        if cur_sector[r] != s:
            if cur_sector[r] >= 0:
                n = _close_cell(r, t[i], n_sectors, n_cells, thr_m, rel, cur_sector, cur_min,
                                cur_band, ref, image, band, out_t, out_c, n)
            cur_sector[r] = s
            cur_min[r] = np.inf
            cur_band[r] = np.inf
        d = dist[i]
        if d < cur_min[r]:
            cur_min[r] = d
        if z_lo <= z[i] <= z_hi and d < cur_band[r]:
            cur_band[r] = d
    return n


@njit(cache=True, nogil=True)
def close_all_kernel(t_us: int, n_sectors: int, thr_m: float, rel: float,
                     cur_sector: np.ndarray, cur_min: np.ndarray, cur_band: np.ndarray,
                     ref: np.ndarray, image: np.ndarray, band: np.ndarray,
                     out_t: np.ndarray, out_c: np.ndarray) -> int:
    """Close every open cell (end of stream) at time t_us."""
    n_cells = cur_sector.shape[0] * n_sectors
    n = 0
    for r in range(cur_sector.shape[0]):
        if cur_sector[r] >= 0:
            n = _close_cell(r, t_us, n_sectors, n_cells, thr_m, rel, cur_sector, cur_min,
                            cur_band, ref, image, band, out_t, out_c, n)
            cur_sector[r] = -1
    return n


def _zband_check(v: Any) -> str | None:
    return None if len(v) == 2 and v[0] <= v[1] else "expected [z_min, z_max] with z_min <= z_max"


@register
class LidarRangeChangeEncoder(Encoder):
    """Range-image changes per ring and sector to closer/farther spikes."""

    type_name = "lidar_range_change"
    summary = "LiDAR points -> closer/farther spikes per ring and sector (range-image changes)."
    schema = Schema({
        "sectors": Field(int, default=36, min=1, max=3600, doc="Azimuth sectors per turn."),
        "rings": Field(int, default=16, min=1, max=256,
                       doc="Rings (lasers) of the sensor: 16 VLP-16, 32 HDL-32E, 64 OS-1-64."),
        "threshold_m": Field(float, default=0.3, min=0.0,
                             doc="Range change that makes a spike (metres)."),
        "relative": Field(float, default=0.05, min=0.0,
                          doc="Or this fraction of the reference range, when larger."),
        "polarity": Field(str, default="split", choices=("split", "merge"),
                          doc="Separate closer/farther channels, or one channel per cell."),
        "z_band_m": Field(("list", float), default=[-1.0, 3.0], check=_zband_check,
                          doc="Height band [z_min, z_max] of points counted for the "
                          "per-sector nearest return (sensor frame, metres)."),
    })

    def __init__(self, id: str, params: dict[str, Any], ctx: BuildContext):
        super().__init__(id, params, ctx)
        R, S = params["rings"], params["sectors"]
        self.R, self.S = R, S
        n_out = (2 if params["polarity"] == "split" else 1) * R * S
        self.binner = SpikeBinner(id, ctx.dt_us, n_out)
        self.cur_sector = np.full(R, -1, np.int64)
        self.cur_min = np.full(R, np.inf)
        self.cur_band = np.full(R, np.inf)
        self.ref = np.full(R * S, np.nan)
        self.image = np.full(R * S, np.inf)
        self.band = np.full(R * S, np.inf)
        self.points_in = 0
        self.out_of_range = 0
        self.spikes = 0
        self._last_t = 0

    @property
    def n_channels(self) -> int:
        return (2 if self.params["polarity"] == "split" else 1) * self.R * self.S

    def check(self, inputs: list[Any]) -> list[str]:
        return [f"input {d.id!r} gives {d.batch_kind!r} batches, not 'lidar'"
                for d in inputs if isinstance(d, Driver) and d.batch_kind != "lidar"]

    def _spikes(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ok = pts["ring"] < self.R
        if not ok.all():
            self.out_of_range += int((~ok).sum())
            pts = pts[ok]
        self.points_in += len(pts)
        out_t = np.empty(len(pts), np.int64)
        out_c = np.empty(len(pts), np.int64)
        if not len(pts):
            return out_t, out_c.astype(np.int32)
        p = self.params
        n = range_change_kernel(
            np.ascontiguousarray(pts["t"]), np.ascontiguousarray(pts["ring"]),
            np.ascontiguousarray(pts["azimuth_deg"], np.float64),
            np.ascontiguousarray(pts["distance_m"], np.float64),
            np.ascontiguousarray(pts["z"], np.float64), self.S, p["threshold_m"],
            p["relative"], p["z_band_m"][0], p["z_band_m"][1], self.cur_sector, self.cur_min,
            self.cur_band, self.ref, self.image, self.band, out_t, out_c)
        self._last_t = int(pts["t"].max())
        return out_t[:n], self._fold(out_c[:n])

    def _fold(self, c: np.ndarray) -> np.ndarray:
        if self.params["polarity"] == "merge":
            c = c % (self.R * self.S)
        self.spikes += len(c)
        return c.astype(np.int32)

    def sector_nearest_m(self) -> np.ndarray:
        """Nearest in-band return per sector over the latest sweep (inf: none)."""
        return self.band.reshape(self.R, self.S).min(axis=0).astype(np.float32)

    def _with_meta(self, r: SpikeRaster | None) -> SpikeRaster | None:
        if r is not None:
            r.meta = {"sector_nearest_m": self.sector_nearest_m(), "sectors": self.S,
                      "rings": self.R, "layout": "closer/farther x ring x sector"}
        return r

    def encode(self, batch: EventBatch) -> SpikeRaster | None:
        t, c = self._spikes(batch.events)
        return self._with_meta(self.binner.push(batch.t_start_us, batch.t_end_us, t, c,
                                                batch.dropped_before))

    def flush(self) -> SpikeRaster | None:
        out_t = np.empty(self.R, np.int64)
        out_c = np.empty(self.R, np.int64)
        p = self.params
        t_close = max(self._last_t, self.binner.clock.t0_us or 0)
        n = close_all_kernel(t_close, self.S, p["threshold_m"], p["relative"],
                             self.cur_sector, self.cur_min, self.cur_band, self.ref, self.image,
                             self.band, out_t, out_c)
        if n and self.binner.clock.t0_us is not None:
            t0 = self.binner.clock.t0_us
            r1 = self.binner.push(t0, t0, out_t[:n], self._fold(out_c[:n]))
            assert r1 is None
        return self._with_meta(self.binner.flush())

    def status(self) -> dict[str, Any]:
        return {"points_in": self.points_in, "out_of_range": self.out_of_range,
                "spikes": self.spikes, "late": self.binner.late, **self.binner.counters()}
