"""DVS encoders: polarity channels pooled to a grid, binned at the network's dt.

Output channel of an event at (x, y, p): `p * gw * gh + (y // fy) * gw + (x // fx)` with
`fx = ceil(width / gw)`, `fy = ceil(height / gh)` (polarity = "split"), or without the polarity
term (polarity = "merge"). A channel spikes in a step when at least `min_events` of its events
fall in that step.

Optional filters run before pooling (see `edgesnn.encoders.dvs_filters`): region of interest
(`roi`), hot-pixel suppression (`hot_pixel_window_us` with `hot_pixel_max_events`),
background-activity filtering (`ba_filter_us`) and a refractory period (`refractory_us`).
All are off by default.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np

from edgesnn.components import Driver, Encoder, register
from edgesnn.config.schema import Field, Schema
from edgesnn.encoders.binning import SpikeHold
from edgesnn.encoders.dvs_filters import DVSFilter
from edgesnn.events import DVS_EVENT, EventBatch, SpikeRaster


def _grid_check(v: Any) -> str | None:
    return None if len(v) == 2 and min(v) >= 1 else "expected [width, height], each >= 1"


def _roi_check(v: Any) -> str | None:
    if not v or (len(v) == 4 and 0 <= v[0] < v[2] and 0 <= v[1] < v[3]):
        return None
    return "expected [] or [x0, y0, x1, y1] with 0 <= x0 < x1 and 0 <= y0 < y1"


@register
class DVSPoolEncoder(Encoder):
    """Pools DVS events to a grid of polarity channels and bins them at dt."""

    type_name = "dvs_pool"
    summary = "DVS events -> polarity channels pooled to a grid, one spike per cell and step."
    schema = Schema(
        {
            "sensor": Field(
                ("list", int), default=[0, 0], length=2,
                doc="Sensor [width, height]; [0, 0] takes it from the input driver.",
            ),
            "grid": Field(("list", int), default=[16, 16], check=_grid_check,
                          doc="Output grid [width, height]."),
            "polarity": Field(str, default="split", choices=("split", "merge"),
                              doc="Separate ON/OFF channels, or one channel per cell."),
            "min_events": Field(int, default=1, min=1,
                                doc="Events of a cell within one step needed for a spike."),
            "roi": Field(("list", int), default=[], check=_roi_check,
                         doc="Region of interest [x0, y0, x1, y1] (pixels, end exclusive); "
                         "[] keeps the whole sensor. Pooling still covers the whole sensor."),
            "refractory_us": Field(int, default=0, min=0,
                                   doc="Drop events of a pixel within this time of its last "
                                   "passed event (0: off)."),
            "ba_filter_us": Field(int, default=0, min=0,
                                  doc="Background-activity filter: keep an event only when a "
                                  "neighbour fired within this time (0: off)."),
            "hot_pixel_window_us": Field(int, default=0, min=0,
                                         doc="Hot-pixel window (0: off)."),
            "hot_pixel_max_events": Field(int, default=0, min=0,
                                          doc="Events of a pixel per window above which it is "
                                          "muted for the next window (0: off)."),
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self.gw, self.gh = params["grid"]
        self.width, self.height = params["sensor"]
        self.n_pol = 2 if params["polarity"] == "split" else 1
        self.hold = SpikeHold(ctx.dt_us)
        self.clock = self.hold.clock
        self.events_in = 0
        self.out_of_range = 0
        self._seq = 0
        self._filter: DVSFilter | None = None
        p = params
        self._filtering = bool(p["roi"] or p["refractory_us"] or p["ba_filter_us"]
                               or (p["hot_pixel_window_us"] and p["hot_pixel_max_events"]))

    @property
    def n_channels(self) -> int:
        return self.n_pol * self.gw * self.gh

    def check(self, inputs: list[Any]) -> list[str]:
        problems = []
        for d in inputs:
            if isinstance(d, Driver) and d.sensor_shape():
                w, h = d.sensor_shape()[:2]
                if self.width == 0:
                    self.width, self.height = w, h
                elif (self.width, self.height) != (w, h):
                    problems.append(
                        f"sensor is {self.width}x{self.height} here but driver {d.id!r} "
                        f"produces {w}x{h}"
                    )
        if self.width == 0:
            problems.append("sensor size unknown: set sensor = [width, height]")
        return problems

    def _in_sensor(self, ev: np.ndarray) -> np.ndarray:
        """The events inside the sensor (those outside are counted in `out_of_range`)."""
        ok = (ev["x"] < self.width) & (ev["y"] < self.height)
        if ok.all():
            return ev
        self.out_of_range += int((~ok).sum())
        return ev[ok]

    def _pooled(self, ev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(t, channel) of the events inside the sensor, in one kernel pass for DVS_EVENT
        records (numpy for any other record layout)."""
        fx = math.ceil(self.width / self.gw)
        fy = math.ceil(self.height / self.gh)
        if ev.dtype == DVS_EVENT:
            from edgesnn.encoders._binning_kernels import pool_channels

            t, c, bad = pool_channels(ev, self.width, self.height, fx, fy, self.gw, self.gh,
                                      self.n_pol)
            self.out_of_range += int(bad)
            return t, c
        ev = self._in_sensor(ev)
        c = (ev["y"].astype(np.int32) // fy) * self.gw + ev["x"].astype(np.int32) // fx
        if self.n_pol == 2:
            c += ev["p"].astype(np.int32) * (self.gw * self.gh)
        return np.asarray(ev["t"], np.int64), c

    def encode(self, batch: EventBatch) -> SpikeRaster | None:
        if self.width == 0:
            self.width = int(batch.meta.get("width", 0))
            self.height = int(batch.meta.get("height", 0))
        ev = batch.events
        if not len(ev) and not len(self.hold.t) and self.clock.t0_us is not None \
                and not self._filtering:  # a step closed on the host clock, nothing held
            return self._empty(batch)
        self.events_in += len(ev)
        if self._filtering:  # the filters index pixels: only events inside the sensor
            if self._filter is None:
                p = self.params
                self._filter = DVSFilter(
                    self.width, self.height, roi=p["roi"] or None,
                    hot_window_us=p["hot_pixel_window_us"],
                    hot_max_events=p["hot_pixel_max_events"], ba_us=p["ba_filter_us"],
                    refractory_us=p["refractory_us"])
            ev = self._filter(self._in_sensor(ev))
        t, c = self._pooled(ev)
        return self._emit(*self.hold.add(batch.t_start_us, batch.t_end_us, t, c),
                          batch.dropped_before)

    def _empty(self, batch: EventBatch) -> SpikeRaster | None:
        """The steps an empty batch closes, without spikes (what `_emit` gives for it)."""
        clock = self.clock
        assert clock.t0_us is not None
        if not (clock.t0_us - clock.max_gap_us <= batch.t_end_us
                <= clock.t0_us + clock.max_gap_us):  # far off: the time-jump guard decides
            t, c, t0, n = self.hold.add(batch.t_start_us, batch.t_end_us,
                                        np.zeros(0, np.int64), np.zeros(0, np.int32))
            return self._emit(t, c, t0, n, batch.dropped_before)
        t0, n = clock.advance(batch.t_end_us)
        self.hold.partial = batch.t_end_us > clock.t0_us  # type: ignore[operator]
        if n == 0:
            return None
        r = SpikeRaster(self.id, self._seq, t0, clock.dt_us, self.n_channels,
                        np.zeros(n + 1, np.int64), np.zeros(0, np.int32), batch.dropped_before)
        self._seq += 1
        return r

    def _emit(self, t: np.ndarray, c: np.ndarray, t0: int, n: int, dropped: int
              ) -> SpikeRaster | None:
        # `SpikeHold.take` and the binning in one kernel call: the spikes of the n steps from
        # t0 binned, later ones held, older ones (arrived too late) counted and dropped
        from edgesnn.encoders._binning_kernels import take_steps

        hold = self.hold
        ptr, idx, hold.t, hold.c, late = take_steps(
            t, c.astype(np.int32, copy=False), t0, n, self.clock.dt_us, self.n_channels,
            self.params["min_events"])
        hold.late += int(late)
        if n == 0:
            return None
        r = SpikeRaster(self.id, self._seq, t0, self.clock.dt_us, self.n_channels, ptr, idx,
                        dropped)
        self._seq += 1
        return r

    async def start(self) -> None:
        """Load (or compile) the binning kernel before data flows, off the event loop."""
        await asyncio.to_thread(_warm_binning)

    def flush(self) -> SpikeRaster | None:
        h = self.hold
        if not len(h.t) or self.clock.t0_us is None:
            return None
        t0, n = self.clock.advance(int(h.t.max()) + self.clock.dt_us)
        return self._emit(h.t, h.c, t0, n, 0)

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"events_in": self.events_in, "out_of_range": self.out_of_range,
                               "time_jumps": self.hold.time_jumps,
                               "jump_discarded": self.hold.jump_discarded,
                               "late_events": self.hold.late}
        if self._filter is not None:
            out.update(self._filter.counters)
        return out


def _warm_binning() -> None:
    from edgesnn.encoders._binning_kernels import pool_channels, steps_to_csr_kernel, take_steps

    steps_to_csr_kernel(np.zeros(1, np.int64), np.zeros(1, np.int32), 1, 1, 1)
    take_steps(np.zeros(1, np.int64), np.zeros(1, np.int32), 0, 1, 1, 1, 1)
    pool_channels(np.zeros(1, DVS_EVENT), 1, 1, 1, 1, 1, 1, 1)
