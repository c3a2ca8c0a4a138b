"""Generic encoders for any scalar channel: rate, latency, delta and population coding.

Inputs are "samples" batches (the columns listed in `channels`) or "records" batches (the
numeric `fields` listed, timestamped by the records' `t`). Values are normalised with
`range = [lo, hi]` to x = (v - lo) / (hi - lo), clipped to [0, 1], except by `delta`, which
works on raw values.

- `rate`: per step, x is the mean of the step's samples (the last value is held through steps
  without samples); a channel spikes with probability x * max_rate_hz * dt (Poisson, seeded),
  or deterministically at that rate (`mode = "regular"`, a phase accumulator).
- `latency`: time-to-first-spike. Steps are grouped in windows of `window_ms`; the value at a
  window's first step is encoded as one spike after round((1 - x) * (window steps - 1)) steps,
  so larger values spike earlier; x <= `threshold` gives no spike in that window.
- `delta`: send-on-delta per sample. An UP spike (channel c) each time the value rises a full
  `threshold` above the reference, a DOWN spike (channel C + c) each time it falls one below.
  `mode = "level"` moves the reference by whole thresholds (a level-crossing ADC);
  `"send_on_delta"` resets it to the value. Several crossings in one sample or step still make
  one spike in the binary raster; all crossings are counted in `status()`.
- `population`: `neurons` Gaussian receptive fields per channel with centres evenly spaced over
  [0, 1] and sigma = `width` x the centre spacing; neuron i of channel c (output c * neurons +
  i) fires at rate exp(-(x - mu_i)^2 / (2 sigma^2)) * max_rate_hz.

Spikes are binned at the pipeline's dt on a grid anchored at the first batch; a partial final
step is held back until a later batch completes it, or `flush()` emits it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from edgesnn.components import BuildContext, Component, Driver, Encoder, register
from edgesnn.config.schema import Field, Schema
from edgesnn.encoders.binning import SpikeHold, StepClock
from edgesnn.events import EventBatch, SpikeRaster

# --- kernels -----------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def delta_kernel(
    t_us: np.ndarray, v: np.ndarray, thr: float, ref: np.ndarray, started: np.ndarray,
    level_mode: bool, up_only: bool, out_t: np.ndarray, out_c: np.ndarray, counts: np.ndarray,
) -> int:
    """Send-on-delta over samples v (n, C) at times t_us; writes spikes, returns their count.

    ref (C,) and started (C,) carry the reference across calls; counts[0] += crossings.
    """
    n, nc = v.shape
    k = 0
    for j in range(n):
        for c in range(nc):
            x = v[j, c]
            if not np.isfinite(x):
                continue
            if started[c] == 0:
                ref[c] = x
                started[c] = 1
                continue
            d = x - ref[c]
            if d >= thr:
                m = np.floor(d / thr)
                counts[0] += np.int64(min(m, 9.0e18))
                ref[c] = ref[c] + m * thr if level_mode else x
                out_t[k] = t_us[j]
                out_c[k] = c
                k += 1
            elif d <= -thr:
                m = np.floor(-d / thr)
                counts[0] += np.int64(min(m, 9.0e18))
                ref[c] = ref[c] - m * thr if level_mode else x
                if not up_only:
                    out_t[k] = t_us[j]
                    out_c[k] = nc + c
                    k += 1
    return k


@njit(cache=True, nogil=True)
def step_means_kernel(k: np.ndarray, v: np.ndarray, sums: np.ndarray, cnt: np.ndarray) -> None:
    """Adds samples v (n, C) into rows k (n,) of sums (m, C); NaNs are ignored."""
    for j in range(v.shape[0]):
        r = k[j]
        for c in range(v.shape[1]):
            x = v[j, c]
            if np.isfinite(x):
                sums[r, c] += x
                cnt[r, c] += 1


@njit(cache=True, nogil=True)
def hold_fill_kernel(sums: np.ndarray, cnt: np.ndarray, last: np.ndarray, out: np.ndarray
                     ) -> None:
    """out = sums / cnt per cell, or the previous value (last, updated) where cnt is 0."""
    for r in range(sums.shape[0]):
        for c in range(sums.shape[1]):
            if cnt[r, c] > 0:
                last[c] = sums[r, c] / cnt[r, c]
            out[r, c] = last[c]


@njit(cache=True, nogil=True)
def rate_kernel(x: np.ndarray, p_max: float, uniform: np.ndarray, phase: np.ndarray,
                out: np.ndarray) -> None:
    """Spike where x (n, C) in [0, 1] asks: Bernoulli(x * p_max) when `uniform` has rows
    (Poisson mode), else a phase accumulator (regular mode)."""
    poisson = uniform.shape[0] > 0
    for j in range(x.shape[0]):
        for c in range(x.shape[1]):
            xv = x[j, c]
            if not xv > 0.0:  # also NaN: no value yet
                continue
            p = min(1.0, min(xv, 1.0) * p_max)
            if poisson:
                if uniform[j, c] < p:
                    out[j, c] = True
            else:
                phase[c] += p
                if phase[c] >= 1.0:
                    phase[c] -= 1.0
                    out[j, c] = True


@njit(cache=True, nogil=True)
def latency_kernel(x: np.ndarray, window: int, thr: float, pos: np.ndarray, due: np.ndarray,
                   out: np.ndarray) -> None:
    """Time-to-first-spike: at each window start schedule round((1-x)*(window-1)) steps."""
    for j in range(x.shape[0]):
        if pos[0] == 0:
            for c in range(x.shape[1]):
                xv = x[j, c]
                if xv > thr:
                    xv = min(xv, 1.0)
                    due[c] = np.int64(np.floor((1.0 - xv) * (window - 1) + 0.5))
                else:
                    due[c] = -1
        for c in range(x.shape[1]):
            if due[c] == 0:
                out[j, c] = True
            if due[c] >= 0:
                due[c] -= 1
        pos[0] = (pos[0] + 1) % window


@njit(cache=True, nogil=True)
def population_kernel(x: np.ndarray, centres: np.ndarray, sigma: float, p_max: float,
                      uniform: np.ndarray, phase: np.ndarray, out: np.ndarray) -> None:
    """Gaussian receptive fields: neuron i of channel c fires at exp(-(x-mu_i)^2/2s^2)*p_max."""
    poisson = uniform.shape[0] > 0
    nn = centres.shape[0]
    inv = 1.0 / (2.0 * sigma * sigma)
    for j in range(x.shape[0]):
        for c in range(x.shape[1]):
            xv = x[j, c]
            if not np.isfinite(xv):
                continue
            xv = min(max(xv, 0.0), 1.0)
            for i in range(nn):
                d = xv - centres[i]
                p = min(1.0, np.exp(-d * d * inv) * p_max)
                o = c * nn + i
                if poisson:
                    if uniform[j, o] < p:
                        out[j, o] = True
                else:
                    phase[o] += p
                    if phase[o] >= 1.0:
                        phase[o] -= 1.0
                        out[j, o] = True


@njit(cache=True, nogil=True)
def csr_kernel(step: np.ndarray, chan: np.ndarray, ptr: np.ndarray, idx: np.ndarray,
               mark: np.ndarray) -> int:
    """CSR over steps of the unique channels per step; `step` must be non-decreasing and
    within [0, len(ptr) - 1). mark (n_channels,) must hold -1. Returns the spike count."""
    n_steps = ptr.shape[0] - 1
    k = 0
    j = 0
    n = step.shape[0]
    for s in range(n_steps):
        ptr[s] = k
        start = k
        while j < n and step[j] == s:
            c = chan[j]
            if mark[c] != s:
                mark[c] = s
                idx[k] = c
                k += 1
            j += 1
        if k - start > 1:
            idx[start:k].sort()
    ptr[n_steps] = k
    return k


# --- binning helpers shared by the sample encoders ---------------------------------------------


class SpikeBinner:
    """Bins timed spikes (t_us, channel) into rasters of complete dt steps, holding the rest."""

    def __init__(self, stream: str, dt_us: int, n_channels: int):
        self.stream = stream
        self.hold = SpikeHold(dt_us)
        self.clock = self.hold.clock
        self.n_channels = n_channels
        self._dropped = 0
        self.seq = 0
        self.spikes_in = 0
        self.late = 0

    def push(self, t_start_us: int, t_end_us: int, t: np.ndarray, c: np.ndarray,
             dropped: int = 0) -> SpikeRaster | None:
        """Add the spikes of a batch covering [t_start_us, t_end_us); emit complete steps."""
        self._dropped += dropped
        self.spikes_in += len(t)
        return self._emit(*self.hold.add(t_start_us, t_end_us, t, c))

    def _emit(self, t: np.ndarray, c: np.ndarray, t0: int, n: int) -> SpikeRaster | None:
        taken = self.hold.take(t, c, t0, n)
        if taken is None:
            return None
        step, chan, late = taken
        self.late += late
        if len(step) > 1 and (step[1:] < step[:-1]).any():
            order = np.argsort(step, kind="stable")
            step, chan = step[order], chan[order]
        ptr = np.empty(n + 1, np.int64)
        idx = np.empty(len(step), np.int32)
        k = csr_kernel(step, chan.astype(np.int32, copy=False), ptr, idx,
                       np.full(self.n_channels, -1, np.int64))
        idx = idx[:k]
        dt = self.clock.dt_us
        r = SpikeRaster(self.stream, self.seq, t0, dt, self.n_channels, ptr, idx, self._dropped)
        self._dropped = 0
        self.seq += 1
        return r

    def counters(self) -> dict[str, int]:
        """Time-jump counters of the binner, for the encoder's status."""
        return {"time_jumps": self.hold.time_jumps, "jump_discarded": self.hold.jump_discarded}

    def flush(self) -> SpikeRaster | None:
        """The partial final step (if any data reached it) as a one-step raster."""
        h = self.hold
        if self.clock.t0_us is None or not (h.partial or len(h.t)):
            return None
        h.partial = False
        t0, n = self.clock.advance(self.clock.t0_us + self.clock.dt_us)
        return self._emit(h.t, h.c, t0, n)


class StepValues:
    """Per-step means of sampled values (dt grid), held back until a step is complete."""

    def __init__(self, dt_us: int, n_in: int):
        self.clock = StepClock(dt_us)
        self.n_in = n_in
        self._sum = np.zeros((1, n_in))
        self._cnt = np.zeros((1, n_in), np.int64)
        self._last = np.full(n_in, np.nan)
        self.late = 0
        self.jump_discarded = 0  # samples of a partial step discarded by a time jump

    def push(self, t_start_us: int, t_end_us: int, t: np.ndarray,
             v: np.ndarray) -> tuple[int, np.ndarray]:
        """(t0_us, (n_steps, C) values) of the steps this batch completes (a time jump
        re-anchors the grid instead of filling the gap; see edgesnn.encoders.binning)."""
        if self.clock.guard(t_start_us, t_end_us, t):
            self.jump_discarded += int(self._cnt.max(initial=0))
            self._sum[:] = 0
            self._cnt[:] = 0
        t0, n = self.clock.advance(t_end_us)
        dt = self.clock.dt_us
        sums = np.zeros((n + 1, self.n_in))
        cnt = np.zeros((n + 1, self.n_in), np.int64)
        sums[0] += self._sum[0]
        cnt[0] += self._cnt[0]
        if len(t):
            k = (t - t0) // dt
            ok = k >= 0
            if not ok.all():
                self.late += int((~ok).sum())
                k, v = k[ok], v[ok]
            step_means_kernel(np.minimum(k, n), np.ascontiguousarray(v, np.float64), sums, cnt)
        self._sum, self._cnt = sums[n:].copy(), cnt[n:].copy()
        out = np.empty((n, self.n_in))
        hold_fill_kernel(sums[:n], cnt[:n], self._last, out)
        return t0, out

    def flush(self) -> tuple[int, np.ndarray]:
        """The partial final step's values when it has samples, else zero steps."""
        if self.clock.t0_us is None or not self._cnt.any():
            return 0, np.zeros((0, self.n_in))
        t0 = self.clock.t0_us
        out = np.empty((1, self.n_in))
        hold_fill_kernel(self._sum, self._cnt, self._last, out)
        self._sum[:] = 0
        self._cnt[:] = 0
        self.clock.advance(t0 + self.clock.dt_us)
        return t0, out


def scalar_inputs(batch: EventBatch, channels: list[int], fields: list[str]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(t_us (n,), values (n, C) float64) of the selected columns or record fields."""
    ev = batch.events
    if fields:
        if ev.dtype.names is None:
            raise ValueError(f"fields {fields} given but the input batch has no named fields")
        t = np.asarray(ev["t"], np.int64)
        v = np.empty((len(ev), len(fields)))
        for i, f in enumerate(fields):
            v[:, i] = ev[f]
        return t, v
    if ev.ndim == 1:
        ev = ev[:, None]
    return batch.sample_t_us, np.asarray(ev[:, channels], np.float64)


def built(cls: type[Component], params: dict[str, Any] | None = None,
          ctx: BuildContext | None = None, id: str = "enc") -> Any:
    """An encoder built from `params` validated against its schema (defaults filled in)."""
    from edgesnn.errors import ConfigError, Problem

    problems: list[Problem] = []
    p = cls.schema.validate(params or {}, id, problems)
    if problems:
        raise ConfigError(problems)
    return cls(id, p, ctx or BuildContext())


# --- encoders ----------------------------------------------------------------------------------


def _range_check(v: Any) -> str | None:
    return None if len(v) == 2 and v[1] > v[0] else "expected [lo, hi] with hi > lo"


SCALAR_SCHEMA = Schema(
    {
        "channels": Field(("list", int), default=[0],
                          doc="Columns of a samples batch to encode, in order."),
        "fields": Field(("list", str), default=[],
                        doc="Numeric fields of a records batch to encode (replaces channels)."),
    }
)
RANGE_SCHEMA = Schema(
    {
        "range": Field(("list", float), default=[0.0, 1.0], check=_range_check,
                       doc="[lo, hi] of the input values; mapped to [0, 1] and clipped."),
    }
)



def population_schema(max_neurons: int, per: str) -> Schema:
    """Parameters of Gaussian receptive-field (population) coding, `neurons` per `per`."""
    return Schema(
        {
            "neurons": Field(int, default=8, min=1, max=max_neurons,
                             doc=f"Receptive fields per {per}."),
            "width": Field(float, default=0.5, min=1e-6,
                           doc="Sigma of each field in units of the centre spacing."),
            "max_rate_hz": Field(float, default=200.0, min=0.0, doc="Rate at a field's centre."),
            "mode": Field(str, default="regular", choices=("regular", "poisson"),
                          doc="Evenly spaced or random (seeded) spikes."),
            "seed": Field(int, default=-1, doc="Random seed; -1 uses the pipeline seed."),
        }
    )


def receptive_fields(neurons: int, width: float) -> tuple[np.ndarray, float]:
    """(centres, sigma) of `neurons` Gaussian fields evenly spaced over [0, 1]; sigma is
    `width` x the centre spacing (one field: centre 0.5, spacing 1)."""
    centres = np.linspace(0.0, 1.0, neurons) if neurons > 1 else np.array([0.5])
    spacing = 1.0 / (neurons - 1) if neurons > 1 else 1.0
    return centres, width * spacing

class ScalarEncoder(Encoder):
    """Common parts of the scalar encoders: input selection and normalisation."""

    def __init__(self, id: str, params: dict[str, Any], ctx: BuildContext):
        super().__init__(id, params, ctx)
        self.n_in = len(params["fields"]) or len(params["channels"])
        self.samples_in = 0
        self._seq = 0

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return cls.schema.validate({}, "", [])

    def check(self, inputs: list[Any]) -> list[str]:
        problems = []
        for d in inputs:
            if not isinstance(d, Driver):
                continue
            if self.params["fields"] and d.batch_kind != "records":
                problems.append(f"fields need a records input, {d.id!r} gives {d.batch_kind}")
            elif not self.params["fields"]:
                if d.batch_kind != "samples":
                    problems.append(f"needs a samples input, {d.id!r} gives {d.batch_kind}")
                elif d.sensor_shape():
                    bad = [c for c in self.params["channels"] if c >= d.sensor_shape()[0]]
                    if bad:
                        problems.append(f"channels {bad} not in the {d.sensor_shape()[0]} "
                                        f"channels of {d.id!r}")
        return problems

    def _normalised(self, v: np.ndarray) -> np.ndarray:
        lo, hi = self.params["range"]
        return (v - lo) / (hi - lo)

    def _raster(self, t0: int, spikes: np.ndarray, dropped: int) -> SpikeRaster | None:
        if spikes.shape[0] == 0:
            return None
        r = SpikeRaster.from_dense(spikes, stream=self.id, seq=self._seq, t0_us=t0,
                                   dt_us=self.ctx.dt_us)
        r.dropped_before = dropped
        self._seq += 1
        return r


class _StepEncoder(ScalarEncoder):
    """Encoders that work on per-step values (rate, latency, population)."""

    def __init__(self, id: str, params: dict[str, Any], ctx: BuildContext):
        super().__init__(id, params, ctx)
        self.steps = StepValues(ctx.dt_us, self.n_in)
        self._dropped = 0

    def _spikes(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def encode(self, batch: EventBatch) -> SpikeRaster | None:
        t, v = scalar_inputs(batch, self.params["channels"], self.params["fields"])
        self.samples_in += len(t)
        t0, vals = self.steps.push(batch.t_start_us, batch.t_end_us, t, v)
        self._dropped += batch.dropped_before
        r = self._raster(t0, self._spikes(self._normalised(vals)), self._dropped)
        if r is not None:
            self._dropped = 0
        return r

    def flush(self) -> SpikeRaster | None:
        t0, vals = self.steps.flush()
        return self._raster(t0, self._spikes(self._normalised(vals)), self._dropped)

    def _uniform(self, n: int, width: int) -> np.ndarray:
        if self.params.get("mode") == "poisson":
            return self.rng.random((n, width))
        return np.zeros((0, width))

    @property
    def rng(self) -> np.random.Generator:
        if not hasattr(self, "_rng"):
            seed = self.params.get("seed", -1)
            self._rng = np.random.default_rng(self.ctx.seed if seed < 0 else seed)
        return self._rng

    def status(self) -> dict[str, Any]:
        return {"samples_in": self.samples_in, "late_samples": self.steps.late,
                "time_jumps": self.steps.clock.time_jumps,
                "jump_discarded": self.steps.jump_discarded}


@register
class RateEncoder(_StepEncoder):
    """Rate coding: spike probability per step proportional to the normalised value."""

    type_name = "rate"
    summary = "Scalar channels -> Poisson (seeded) or regular spike trains, rate ~ value."
    schema = SCALAR_SCHEMA | RANGE_SCHEMA | Schema(
        {
            "max_rate_hz": Field(float, default=200.0, min=0.0, doc="Rate at x = 1."),
            "mode": Field(str, default="poisson", choices=("poisson", "regular"),
                          doc="Random (Bernoulli per step) or evenly spaced spikes."),
            "seed": Field(int, default=-1, doc="Random seed; -1 uses the pipeline seed."),
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: BuildContext):
        super().__init__(id, params, ctx)
        self.p_max = params["max_rate_hz"] * ctx.dt_us * 1e-6
        self._phase = np.zeros(self.n_in)

    @property
    def n_channels(self) -> int:
        return self.n_in

    def _spikes(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros(x.shape, bool)
        rate_kernel(x, self.p_max, self._uniform(*x.shape), self._phase, out)
        return out


@register
class LatencyEncoder(_StepEncoder):
    """Latency coding: one spike per window, earlier for larger values."""

    type_name = "latency"
    summary = "Scalar channels -> one spike per window, time-to-first-spike ~ 1 - value."
    schema = SCALAR_SCHEMA | RANGE_SCHEMA | Schema(
        {
            "window_ms": Field(float, default=20.0, min=0.0, doc="Coding window."),
            "threshold": Field(float, default=0.0, min=0.0, max=1.0,
                               doc="Normalised values at or below this give no spike."),
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: BuildContext):
        super().__init__(id, params, ctx)
        self.window_steps = max(1, round(params["window_ms"] * 1000 / ctx.dt_us))
        self._pos = np.zeros(1, np.int64)
        self._due = np.full(self.n_in, -1, np.int64)

    @property
    def n_channels(self) -> int:
        return self.n_in

    def _spikes(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros(x.shape, bool)
        latency_kernel(x, self.window_steps, self.params["threshold"], self._pos, self._due, out)
        return out


@register
class PopulationEncoder(_StepEncoder):
    """Population coding with Gaussian receptive fields, `neurons` per input channel."""

    type_name = "population"
    summary = "Scalar channels -> Gaussian receptive fields (neurons per channel)."
    schema = SCALAR_SCHEMA | RANGE_SCHEMA | population_schema(4096, "input")

    def __init__(self, id: str, params: dict[str, Any], ctx: BuildContext):
        super().__init__(id, params, ctx)
        self.centres, self.sigma = receptive_fields(params["neurons"], params["width"])
        self.p_max = params["max_rate_hz"] * ctx.dt_us * 1e-6
        self._phase = np.zeros(self.n_in * params["neurons"])

    @property
    def n_channels(self) -> int:
        return self.n_in * self.params["neurons"]

    def _spikes(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros((x.shape[0], self.n_channels), bool)
        population_kernel(x, self.centres, self.sigma, self.p_max,
                          self._uniform(x.shape[0], self.n_channels), self._phase, out)
        return out


@register
class DeltaEncoder(ScalarEncoder):
    """Send-on-delta / level-crossing coding: UP and DOWN spikes per threshold crossing."""

    type_name = "delta"
    summary = "Scalar channels -> UP/DOWN spikes each time the value moves by a threshold."
    schema = SCALAR_SCHEMA | Schema(
        {
            "threshold": Field(float, default=0.1, min=1e-12, doc="Step in input units."),
            "mode": Field(str, default="level", choices=("level", "send_on_delta"),
                          doc="Reference moves by whole thresholds, or resets to the value."),
            "polarity": Field(str, default="both", choices=("both", "up"),
                              doc="UP and DOWN channels, or UP only."),
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: BuildContext):
        super().__init__(id, params, ctx)
        self.binner = SpikeBinner(id, ctx.dt_us, self.n_channels)
        self._ref = np.zeros(self.n_in)
        self._started = np.zeros(self.n_in, np.uint8)
        self._counts = np.zeros(1, np.int64)

    @property
    def n_channels(self) -> int:
        return self.n_in * (2 if self.params["polarity"] == "both" else 1)

    def encode(self, batch: EventBatch) -> SpikeRaster | None:
        t, v = scalar_inputs(batch, self.params["channels"], self.params["fields"])
        self.samples_in += len(t)
        out_t = np.empty(v.size, np.int64)
        out_c = np.empty(v.size, np.int32)
        k = delta_kernel(t, np.ascontiguousarray(v), self.params["threshold"], self._ref,
                         self._started, self.params["mode"] == "level",
                         self.params["polarity"] == "up", out_t, out_c, self._counts)
        return self.binner.push(batch.t_start_us, batch.t_end_us, out_t[:k], out_c[:k],
                                batch.dropped_before)

    def flush(self) -> SpikeRaster | None:
        return self.binner.flush()

    def status(self) -> dict[str, Any]:
        return {"samples_in": self.samples_in, "crossings": int(self._counts[0]),
                "spikes": self.binner.spikes_in, "late_spikes": self.binner.late,
                **self.binner.counters()}
