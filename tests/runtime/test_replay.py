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


def test_stop_during_start_releases_what_was_opened(tmp_path):
    """A stop while a sink waits in start() still closes its socket and context."""
    from conftest import activity_pipeline, free_port

    from edgesnn.config import pipeline as pl
    from edgesnn.runtime.runner import Runtime

    cfg = pl.loads(activity_pipeline("early", free_port(), join_wait_ms=5000),
                   str(tmp_path / "p.toml"))
    rt = Runtime(cfg)
    sink = rt.components["zmq"]

    async def go():
        task = asyncio.create_task(rt.run(install_signals=False))
        for _ in range(200):
            if sink._sock is not None:
                break
            await asyncio.sleep(0.01)
        assert sink._sock is not None  # bound, now waiting for subscribers
        t = time.monotonic()
        rt.request_stop()
        code = await task
        return code, time.monotonic() - t

    code, elapsed = asyncio.run(go())
    assert code == 0 and elapsed < 2.0
    assert sink._sock is None and sink._ctx is None
