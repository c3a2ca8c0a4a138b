"""Replay pacing: "realtime" follows sensor time, "max" does not wait; loop keeps time monotonic."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from edgesnn.components import BuildContext
from edgesnn.events import DVS_EVENT, EventBatch
from edgesnn.replay import REPLAY_SCHEMA, ReplayDriver


class TenBatches(ReplayDriver):
    """Ten 50 ms batches of one event each: 0.5 s of sensor time."""

    type_name = "test_ten"

    def iter_batches(self):
        for i in range(10):
            ev = np.zeros(1, DVS_EVENT)
            ev["t"] = i * 50_000
            yield EventBatch("s", i, i * 50_000, (i + 1) * 50_000, ev)


def drain(speed, loop=False, limit=10):
    params = REPLAY_SCHEMA.validate({"path": __file__, "speed": speed, "loop": loop}, "d", [])
    drv = TenBatches("d", params, BuildContext())

    async def go():
        out = []
        async for b in drv.batches():
            out.append(b)
            if len(out) >= limit:
                break
        return out

    t = time.monotonic()
    out = asyncio.run(go())
    return out, time.monotonic() - t


def test_realtime_paces_by_sensor_time_and_max_does_not():
    _, wall_rt = drain("realtime")
    _, wall_max = drain("max")
    _, wall_fast = drain(5.0)
    # the first batch is released at once, the last one 0.45 s of sensor time later
    assert wall_rt >= 0.44
    assert wall_fast >= 0.44 / 5
    assert wall_max < wall_rt / 2


def test_loop_restarts_with_monotonic_time_and_seq():
    out, _ = drain("max", loop=True, limit=25)
    t = [b.t_start_us for b in out]
    assert t == sorted(t) and len(set(t)) == 25
    assert [b.seq for b in out] == list(range(25))
    assert all(int(b.events["t"][0]) == b.t_start_us for b in out)


def test_speed_is_validated():
    problems = []
    REPLAY_SCHEMA.validate({"path": "x", "speed": "fast"}, "drivers.d", problems)
    REPLAY_SCHEMA.validate({"path": "x", "speed": -1}, "drivers.e", problems)
    assert [p.path for p in problems] == ["drivers.d.speed", "drivers.e.speed"]


def test_missing_recording_is_a_clear_error():
    params = REPLAY_SCHEMA.validate({"path": "no/such/file.raw"}, "d", [])
    drv = TenBatches("cam", params, BuildContext())

    async def go():
        async for _ in drv.batches():
            pass

    import pytest

    with pytest.raises(FileNotFoundError, match="drivers.cam.path"):
        asyncio.run(go())
