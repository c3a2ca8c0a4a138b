"""The `spikes` encoder: bins SPIKE records (t, channel) into rasters at the pipeline's dt.

Pre-recorded spike trains (a `spike_file` driver, or any driver emitting "records" batches of
`edgesnn.events.SPIKE`) drive a network through it. A spike at time t falls in step
floor((t - t0) / dt_us) of a grid anchored at the first batch; a channel spiking several times
in one step spikes once in the raster (counted as `merged`). A step is emitted once, when a
batch reaches its end; the partial last step waits for the next batch or `flush()`. Spikes on a
channel outside 0..n_channels-1 and spikes older than the steps already emitted are dropped
and counted (`out_of_range`, `late`), never an error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgesnn.components import BuildContext, Component, Driver, Encoder, register
from edgesnn.config.schema import Field, Schema
from edgesnn.encoders.binning import SpikeHold, steps_to_csr
from edgesnn.events import EventBatch, SpikeRaster


@register
class SpikeEncoder(Encoder):
    """SPIKE records -> SpikeRaster at the pipeline's dt (channel i -> input i)."""

    type_name = "spikes"
    summary = "Bins recorded spikes (SPIKE records: t, channel) into rasters at the dt."
    schema = Schema(
        {
            "n_channels": Field(int, default=0, min=0, doc="Channels of the raster (0: the "
                                "driver's, e.g. the spike file's n_inputs)."),  # fmt: skip
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: BuildContext):
        super().__init__(id, params, ctx)
        self._n = int(params.get("n_channels", 0))
        self.hold = SpikeHold(ctx.dt_us)
        self.clock = self.hold.clock
        self._dropped = 0
        self._seq = 0
        self.spikes_in = 0
        self.spikes_out = 0
        self.merged = 0
        self.out_of_range = 0
        self.late = 0

    @property
    def n_channels(self) -> int:
        return self._n

    def check(self, inputs: list[Component]) -> list[str]:
        problems = []
        for d in inputs:
            if not isinstance(d, Driver):
                continue
            if d.batch_kind != "records":
                problems.append(f"driver {d.id!r} produces {d.batch_kind!r} batches; the "
                                "spikes encoder takes SPIKE records (e.g. spike_file)")  # fmt: skip
                continue
            shape = d.sensor_shape()
            if not shape:
                continue
            if self.params.get("n_channels", 0) == 0:
                self._n = max(self._n, int(shape[0]))
            elif shape[0] > self._n:
                problems.append(f"driver {d.id!r} has {shape[0]} channels but n_channels = "
                                f"{self._n}")  # fmt: skip
        if self._n == 0 and not problems:
            problems.append("channel count unknown: set n_channels (or give the driver a "
                            "readable spike file)")  # fmt: skip
        return problems

    def encode(self, batch: EventBatch) -> SpikeRaster | None:
        ev = batch.events
        names = ev.dtype.names or ()
        if "t" not in names or "channel" not in names:
            raise ValueError(f"spikes encoder {self.id!r}: {batch.kind!r} batch of stream "
                             f"{batch.stream!r} has no t / channel fields (SPIKE)")  # fmt: skip
        if self._n == 0:
            self._n = int(batch.meta.get("n_channels", 0))
            if self._n == 0:
                raise ValueError(f"spikes encoder {self.id!r}: channel count unknown; set "
                                 "n_channels")  # fmt: skip
        self._dropped += batch.dropped_before
        t = np.asarray(ev["t"], np.int64)
        c = np.asarray(ev["channel"], np.int64)
        self.spikes_in += t.size
        ok = (c >= 0) & (c < self._n)
        if not ok.all():
            self.out_of_range += int(t.size - ok.sum())
            self._dropped += int(t.size - ok.sum())
            t, c = t[ok], c[ok]
        t, c, t0, n = self.hold.add(batch.t_start_us, batch.t_end_us, t, c)
        return self._emit(t, c.astype(np.int32), t0, n)

    def _emit(self, t: np.ndarray, c: np.ndarray, t0: int, n: int) -> SpikeRaster | None:
        taken = self.hold.take(t, c, t0, n)
        if taken is None:
            return None
        step, chan, n_late = taken
        self.late += n_late
        self._dropped += n_late
        dt = self.clock.dt_us
        ptr, idx = steps_to_csr(step, chan, n, self._n)
        self.merged += int(step.size - idx.size)
        self.spikes_out += int(idx.size)
        r = SpikeRaster(self.id, self._seq, t0, dt, self._n, ptr, idx, self._dropped)
        self._dropped = 0
        self._seq += 1
        return r

    def flush(self) -> SpikeRaster | None:
        """The steps still open at the end of the stream (the partial one and any holding
        spikes), as one raster."""
        h = self.hold
        if self.clock.t0_us is None or not (h.partial or h.t.size):
            return None
        h.partial = False
        t_last = int(h.t.max()) if h.t.size else self.clock.t0_us
        t0, n = self.clock.advance(t_last + self.clock.dt_us)
        return self._emit(h.t, h.c, t0, max(n, 1))

    def status(self) -> dict[str, Any]:
        return {
            "spikes_in": self.spikes_in,
            "spikes_out": self.spikes_out,
            "merged": self.merged,
            "out_of_range": self.out_of_range,
            "late": self.late,
            "time_jumps": self.hold.time_jumps,
            "jump_discarded": self.hold.jump_discarded,
        }
