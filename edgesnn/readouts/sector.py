"""Sector obstacle readout: the nearest LiDAR return per azimuth sector, as detections.

A Readout only receives spike rasters, and spikes alone cannot say *how far* the nearest
return is. So the `lidar_range_change` encoder, which sees the raw points, attaches the
nearest in-band return of every sector to each raster (`meta["sector_nearest_m"]`); fed
directly by that encoder, this readout reports an "obstacle" detection when a sector's
nearest return comes within `obstacle_m` and a "clear" one when it moves beyond
`obstacle_m + hysteresis_m` (one detection per change, not per step). Fed by a network (no
distances in the raster), it falls back to spike activity: channel c belongs to sector
c % sectors (the encoder's layout), and a sector with at least `min_spikes` spikes within
`window_ms` gives an "activity" detection.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgesnn.components import Readout, register
from edgesnn.config.schema import Field, Schema
from edgesnn.events import Detection, SpikeRaster


@register
class SectorObstacleReadout(Readout):
    """Nearest return per sector -> obstacle / clear detections (activity without distances)."""

    type_name = "sector_obstacle"
    summary = "LiDAR sector obstacle readout: nearest return per sector within a distance."
    schema = Schema({
        "sectors": Field(int, default=0, min=0,
                         doc="Azimuth sectors; 0 takes them from the encoder's rasters."),
        "obstacle_m": Field(float, default=2.0, min=0.0,
                            doc="A sector whose nearest return is closer is an obstacle."),
        "hysteresis_m": Field(float, default=0.2, min=0.0,
                              doc="Extra distance before a sector is reported clear again."),
        "min_spikes": Field(int, default=3, min=1,
                            doc="Activity mode: spikes of a sector per window to report it."),
        "window_ms": Field(float, default=100.0, min=0.001, doc="Activity mode window (ms)."),
    })

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self.S = params["sectors"]
        self.blocked = np.zeros(self.S, bool)
        self.nearest = np.full(self.S, np.inf, np.float32)
        self._counts = np.zeros(self.S, np.int64)
        self._win_start: int | None = None
        self.detections = 0

    def _ensure(self, sectors: int) -> None:
        if self.S == 0 or len(self.blocked) != sectors:
            self.S = sectors
            self.blocked = np.zeros(sectors, bool)
            self.nearest = np.full(sectors, np.inf, np.float32)
            self._counts = np.zeros(sectors, np.int64)

    def _extra(self, s: int, d: float) -> dict[str, Any]:
        w = 360.0 / self.S
        return {"sector": s, "azimuth_deg": [s * w, (s + 1) * w],
                "distance_m": None if not np.isfinite(d) else round(float(d), 3)}

    def update(self, raster: SpikeRaster) -> list[Detection]:
        near = raster.meta.get("sector_nearest_m") if raster.meta else None
        if near is not None:
            return self._distances(np.asarray(near, np.float32), raster.t_end_us)
        return self._activity(raster)

    def _distances(self, near: np.ndarray, t_us: int) -> list[Detection]:
        if self.params["sectors"] and len(near) != self.params["sectors"]:
            raise ValueError(f"rasters carry {len(near)} sectors, readout set to "
                             f"{self.params['sectors']}")
        self._ensure(len(near))
        self.nearest = near
        ob = self.params["obstacle_m"]
        enter = ~self.blocked & (near < ob)
        leave = self.blocked & (near > ob + self.params["hysteresis_m"])
        out = []
        for s in np.flatnonzero(enter):
            d = float(near[s])
            out.append(Detection("obstacle", float(np.clip(1.0 - d / ob, 0.0, 1.0)) if ob else 1.0,
                                 t_us, self._extra(int(s), d)))
        for s in np.flatnonzero(leave):
            out.append(Detection("clear", 1.0, t_us, self._extra(int(s), float(near[s]))))
        self.blocked |= enter
        self.blocked &= ~leave
        self.detections += len(out)
        return out

    def _activity(self, raster: SpikeRaster) -> list[Detection]:
        if self.S == 0:
            raise ValueError("sectors must be set when the input carries no sector distances")
        self._ensure(self.S)
        if self._win_start is None:
            self._win_start = raster.t0_us
        c = raster.counts()
        self._counts += np.bincount(np.arange(len(c)) % self.S, weights=c,
                                    minlength=self.S).astype(np.int64)
        out: list[Detection] = []
        if raster.t_end_us - self._win_start >= self.params["window_ms"] * 1000:
            hot = np.flatnonzero(self._counts >= self.params["min_spikes"])
            total = max(1, int(self._counts.sum()))
            for s in hot:
                e = self._extra(int(s), np.inf)
                e["spikes"] = int(self._counts[s])
                out.append(Detection("activity", float(self._counts[s]) / total,
                                     raster.t_end_us, e))
            self._counts[:] = 0
            self._win_start = raster.t_end_us
        self.detections += len(out)
        return out

    def status(self) -> dict[str, Any]:
        return {"detections": self.detections,
                "blocked_sectors": [int(s) for s in np.flatnonzero(self.blocked)]}
