"""A synthetic DVS: objects moving across a sensor, with sensor-like noise.

Each *segment* one bright square crosses the sensor in one of four directions (left, right, up,
down) at a random speed; the leading edge emits ON events and the trailing edge OFF events, as a
real DVS does for a bright object on a dark background. Between segments the sensor only sees
noise. Noise is background activity (uncorrelated Poisson events on every pixel) and a few hot
pixels firing at a high rate. Everything is drawn from one seed, so `schedule()` gives the
ground truth of any run: the demo measures its accuracy against it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgesnn.components import Driver, register
from edgesnn.config.schema import Field, Schema
from edgesnn.events import DVS_EVENT, EventBatch
from edgesnn.replay import Pacer, _check_speed, speed_factor

DIRECTIONS = ("left", "right", "up", "down")
_VEC = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}


@dataclass(frozen=True, slots=True)
class Segment:
    """One object crossing: sensor time span, direction, speed and size."""

    t_start_us: int
    t_end_us: int
    direction: str
    speed_px_s: float
    size_px: int
    offset_px: float  # position across the direction of motion (object centre)


def _positive_pair(v: Any) -> str | None:
    if len(v) == 2 and 0 < v[0] <= v[1]:
        return None
    return "expected [min, max], 0 < min <= max"


@register
class SyntheticDVS(Driver):
    """Scene generator: squares crossing a DVS sensor (see module docstring)."""

    type_name = "synthetic_dvs"
    summary = "Synthetic DVS scene: objects moving left/right/up/down with sensor noise."
    batch_kind = "dvs"
    schema = Schema(
        {
            "width": Field(int, default=32, min=4, max=4096, doc="Sensor width (px)."),
            "height": Field(int, default=32, min=4, max=4096, doc="Sensor height (px)."),
            "seed": Field(int, default=1, doc="Seed of the scene and the noise."),
            "duration_s": Field(
                float, default=0.0, min=0.0, doc="Stop after this much sensor time (0: never)."
            ),
            "speed_px_s": Field(
                ("list", float), default=[120.0, 240.0], check=_positive_pair,
                doc="Range of object speeds [min, max] (px/s).",
            ),
            "size_px": Field(
                ("list", int), default=[4, 8], check=_positive_pair,
                doc="Range of object sizes [min, max] (px).",
            ),
            "gap_ms": Field(
                ("list", float), default=[50.0, 150.0], check=_positive_pair,
                doc="Quiet time between objects [min, max] (ms).",
            ),
            "noise_hz_per_px": Field(
                float, default=0.5, min=0.0, doc="Background-activity rate per pixel (Hz)."
            ),
            "hot_pixels": Field(int, default=2, min=0, doc="Number of hot pixels."),
            "hot_pixel_hz": Field(float, default=200.0, min=0.0, doc="Rate of each hot pixel."),
            "step_us": Field(int, default=500, min=10, doc="Internal rendering step (µs)."),
            "batch_us": Field(int, default=10_000, min=100, doc="Sensor time per batch (µs)."),
            "speed": Field(
                Any, default="realtime", check=_check_speed,
                doc='"realtime", "max", or a multiple of real time.',
            ),
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self.width = params["width"]
        self.height = params["height"]
        self.events_out = 0
        self.segments_started = 0

    def sensor_shape(self) -> tuple[int, ...]:
        return (self.width, self.height)

    # ------------------------------------------------------------------ ground truth
    def schedule(self, until_us: int | None = None) -> Iterator[Segment]:
        """The segments of the scene, in order (infinite unless `until_us` is given)."""
        p = self.params
        rng = np.random.default_rng([p["seed"], 7])
        t = int(rng.uniform(*p["gap_ms"]) * 1000)
        while until_us is None or t < until_us:
            d = DIRECTIONS[int(rng.integers(4))]
            speed = float(rng.uniform(*p["speed_px_s"]))
            size = int(rng.integers(p["size_px"][0], p["size_px"][1] + 1))
            across = self.height if d in ("left", "right") else self.width
            offset = float(rng.uniform(size / 2, max(size / 2, across - size / 2)))
            along = self.width if d in ("left", "right") else self.height
            dur = int((along + size) / speed * 1e6)
            yield Segment(t, t + dur, d, speed, size, offset)
            t += dur + int(rng.uniform(*p["gap_ms"]) * 1000)

    # ------------------------------------------------------------------ rendering
    def _object_mask(self, seg: Segment, t_us: int) -> np.ndarray:
        """Bool image (height, width) of the object at time t_us."""
        along = self.width if seg.direction in ("left", "right") else self.height
        travelled = (t_us - seg.t_start_us) / 1e6 * seg.speed_px_s
        # front edge starts at the entering border and ends `size` beyond the far border
        if seg.direction in ("right", "down"):
            lo = -seg.size_px + travelled
        else:
            lo = along - travelled
        hi = lo + seg.size_px
        a = np.arange(along) + 0.5
        on_along = (a >= lo) & (a < hi)
        across_n = self.height if seg.direction in ("left", "right") else self.width
        c = np.arange(across_n) + 0.5
        on_across = np.abs(c - seg.offset_px) < seg.size_px / 2
        if seg.direction in ("left", "right"):
            return on_across[:, None] & on_along[None, :]
        return on_along[:, None] & on_across[None, :]

    def generate(self, t_from_us: int, t_to_us: int, rng: np.random.Generator,
                 segs: list[Segment], hot: np.ndarray) -> np.ndarray:
        """Events rendered for [t_from_us, t_to_us), sorted by time (DVS_EVENT array).

        The edge events of the last rendering step may fall up to `step_us` after t_to_us
        (each step spreads its events over the whole step); `iter_batches` carries those into
        the next batch, so batches never overlap in time."""
        p = self.params
        step = p["step_us"]
        parts: list[np.ndarray] = []
        for seg in segs:
            a = max(t_from_us, seg.t_start_us)
            b = min(t_to_us, seg.t_end_us)
            if a >= b:
                continue
            t0 = a - (a - seg.t_start_us) % step
            prev = self._object_mask(seg, t0 - step) if t0 > seg.t_start_us else None
            if prev is None:
                prev = np.zeros((self.height, self.width), bool)
            for ts in range(t0, b, step):
                cur = self._object_mask(seg, ts + step)
                if ts >= a:
                    for pol, changed in ((1, cur & ~prev), (0, prev & ~cur)):
                        ys, xs = np.nonzero(changed)
                        if len(xs):
                            ev = np.empty(len(xs), DVS_EVENT)
                            ev["t"] = ts + rng.integers(0, step, len(xs))
                            ev["x"], ev["y"], ev["p"] = xs, ys, pol
                            parts.append(ev)
                prev = cur
        span_s = (t_to_us - t_from_us) / 1e6
        n_noise = rng.poisson(p["noise_hz_per_px"] * self.width * self.height * span_s)
        if n_noise:
            ev = np.empty(n_noise, DVS_EVENT)
            ev["t"] = rng.integers(t_from_us, t_to_us, n_noise)
            ev["x"] = rng.integers(0, self.width, n_noise)
            ev["y"] = rng.integers(0, self.height, n_noise)
            ev["p"] = rng.integers(0, 2, n_noise)
            parts.append(ev)
        for hx, hy in hot:
            n = rng.poisson(p["hot_pixel_hz"] * span_s)
            if n:
                ev = np.empty(n, DVS_EVENT)
                ev["t"] = rng.integers(t_from_us, t_to_us, n)
                ev["x"], ev["y"], ev["p"] = hx, hy, 1
                parts.append(ev)
        if not parts:
            return np.empty(0, DVS_EVENT)
        out = np.concatenate(parts)
        return out[np.argsort(out["t"], kind="stable")]

    def iter_batches(self) -> Iterator[EventBatch]:
        """All batches as fast as they can be rendered (the async path paces them)."""
        p = self.params
        rng = np.random.default_rng([p["seed"], 11])
        hot = rng.integers(0, [self.width, self.height], size=(p["hot_pixels"], 2))
        end = int(p["duration_s"] * 1e6) or None
        sched = self.schedule(end)
        pending: list[Segment] = []
        nxt = next(sched, None)
        t = 0
        seq = 0
        meta = {"width": self.width, "height": self.height, "sensor": "synthetic"}
        carry = np.empty(0, DVS_EVENT)  # events rendered past the end of the previous batch
        while end is None or t < end:
            t_to = t + p["batch_us"] if end is None else min(end, t + p["batch_us"])
            while nxt is not None and nxt.t_start_us < t_to:
                pending.append(nxt)
                self.segments_started += 1
                nxt = next(sched, None)
            ev = self.generate(t, t_to, rng, pending, hot)
            if carry.size:
                ev = np.concatenate([carry, ev])
                ev = ev[np.argsort(ev["t"], kind="stable")]
            # every batch holds only [t, t_to): time never goes back from one to the next
            cut = int(np.searchsorted(ev["t"], t_to, side="left"))
            ev, carry = ev[:cut], ev[cut:]
            pending = [s for s in pending if s.t_end_us > t_to]
            self.events_out += len(ev)
            yield EventBatch(self.id, seq, t, t_to, ev, "dvs", 0, meta)
            seq += 1
            t = t_to

    async def batches(self) -> AsyncIterator[EventBatch]:
        pacer = Pacer(speed_factor(self.params["speed"]))
        for batch in self.iter_batches():
            await pacer.wait(batch.t_end_us)
            yield batch
        await asyncio.sleep(0)

    def status(self) -> dict[str, Any]:
        return {"events": self.events_out, "segments": self.segments_started}
