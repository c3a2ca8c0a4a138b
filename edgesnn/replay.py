"""File replay for drivers: pacing by sensor time ("realtime") or as fast as possible ("max").

A file driver subclasses `ReplayDriver` and implements `iter_batches()`, a synchronous generator
of `EventBatch`es read in bounded chunks. The base class runs the reader in a worker thread (so
decoding never stalls the event loop) and paces delivery: with `speed = "realtime"` a batch is
released when the wall clock reaches its `t_end_us` relative to the first batch; a number is a
multiple of real time; `"max"` does not wait.
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from edgesnn.components import Driver
from edgesnn.config.schema import Field, Schema
from edgesnn.events import EventBatch


def regular_file(path: str | os.PathLike[str]) -> None:
    """OSError unless `path` is a regular file: a FIFO would block its reader forever and a
    device never ends, so recordings are refused up front (stat never blocks)."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        m = st.st_mode
        kind = ("a directory" if stat.S_ISDIR(m) else "a FIFO" if stat.S_ISFIFO(m)
                else "a device" if stat.S_ISCHR(m) or stat.S_ISBLK(m)
                else "a socket" if stat.S_ISSOCK(m) else "not a file")
        raise OSError(f"{os.fspath(path)} is {kind}, not a regular file (recordings are "
                      "read from regular files only)")


def _check_speed(value: Any) -> str | None:
    if isinstance(value, str):
        return None if value in ("realtime", "max") else (
            f'{value!r} is not "realtime", "max" or a positive number'
        )
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return None
    return f'{value!r} is not "realtime", "max" or a positive number'


REPLAY_SCHEMA = Schema(
    {
        "path": Field(str, doc="Recording to replay (relative paths are to the pipeline file)."),
        "speed": Field(
            Any,
            default="realtime",
            doc='"realtime" paces by sensor timestamps, "max" reads as fast as possible, '
            "a number is a multiple of real time.",
            check=_check_speed,
        ),
        "loop": Field(bool, default=False, doc="Start again at the end of the file."),
        "batch_us": Field(
            int, default=10_000, min=1, doc="Sensor time covered by one batch (µs)."
        ),
    }
)


def speed_factor(speed: Any) -> float | None:
    """Multiple of real time, or None for as-fast-as-possible."""
    if speed == "max":
        return None
    if speed == "realtime":
        return 1.0
    return float(speed)


class Pacer:
    """Releases items at sensor-time pace: wall elapsed >= (t - t_first) / factor."""

    def __init__(self, factor: float | None):
        self.factor = factor
        self._t0_sensor: int | None = None
        self._t0_wall = 0.0

    async def wait(self, t_sensor_us: int) -> None:
        if self.factor is None:
            await asyncio.sleep(0)  # still yield so other tasks run
            return
        now = time.monotonic()
        if self._t0_sensor is None:
            self._t0_sensor, self._t0_wall = t_sensor_us, now
            return
        due = self._t0_wall + (t_sensor_us - self._t0_sensor) / 1e6 / self.factor
        if due > now:
            await asyncio.sleep(due - now)
        else:
            await asyncio.sleep(0)

    def rebase(self) -> None:
        """Forget the time origin (after a loop back to the file start)."""
        self._t0_sensor = None


class ReplayDriver(Driver):
    """Base of file-replay drivers; see the module docstring."""

    schema = REPLAY_SCHEMA

    def iter_batches(self) -> Iterator[EventBatch]:
        raise NotImplementedError

    def resolve_path(self) -> str:
        p = self.params["path"]
        return p if os.path.isabs(p) else os.path.join(self.ctx.base_dir, p)

    def require_file(self) -> str:
        """The resolved path; FileNotFoundError naming it and the setting when it is missing,
        OSError when it is not a regular file (a FIFO or a device)."""
        path = self.resolve_path()
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"{self.type_name} driver {self.id!r}: recording {path} not found (set "
                f"drivers.{self.id}.path, e.g. --set drivers.{self.id}.path=FILE)"
            )
        try:
            regular_file(path)
        except OSError as e:
            raise OSError(f"{self.type_name} driver {self.id!r}: {e}") from None
        return path

    async def batches(self) -> AsyncIterator[EventBatch]:
        if "path" in self.params:
            self.require_file()
        pacer = Pacer(speed_factor(self.params.get("speed", "max")))
        seq = 0
        offset_us = 0
        while True:
            it = self.iter_batches()
            last_end = None
            first_start = None
            sentinel = object()
            while True:
                batch = await asyncio.to_thread(next, it, sentinel)
                if batch is sentinel:
                    break
                assert isinstance(batch, EventBatch)
                if first_start is None:
                    first_start = batch.t_start_us
                if offset_us:
                    batch = _shift(batch, offset_us)
                batch.seq = seq
                seq += 1
                await pacer.wait(batch.t_end_us)
                last_end = batch.t_end_us
                yield batch
            if not self.params.get("loop", False) or last_end is None or first_start is None:
                return
            # keep time monotonic across loops
            offset_us = last_end - first_start


def _shift(batch: EventBatch, offset_us: int) -> EventBatch:
    ev = batch.events
    if ev.dtype.names and "t" in ev.dtype.names:
        ev = ev.copy()
        ev["t"] += offset_us
    return EventBatch(
        batch.stream,
        batch.seq,
        batch.t_start_us + offset_us,
        batch.t_end_us + offset_us,
        ev,
        batch.kind,
        batch.dropped_before,
        batch.meta,
    )
