"""Isolation of the pipelines of one daemon (in-process, real sockets and files): a source
that crashes while streaming takes down only its own pipeline."""

from __future__ import annotations

import asyncio

from conftest import activity_pipeline, free_port

from edgesnn.runtime import pipeset
from edgesnn.runtime.multi import MultiDaemon

CSV_SOURCE = """
[pipeline]
name = "csv"

[drivers.rows]
type = "vibration_csv"
path = "{csv}"
sample_rate_hz = 1000
speed = "max"

[encoders.spikes]
type = "rate"
inputs = ["rows"]
channels = [0]
range = [0.0, 1.0]
max_rate_hz = 1000.0
mode = "regular"

[readouts.r]
type = "spike_count"
inputs = ["spikes"]
labels = ["x"]
window_ms = 10.0

[sinks.zmq]
type = "zmq_pub"
inputs = ["r"]
endpoint = "tcp://127.0.0.1:{port}"
"""


def test_a_source_that_crashes_mid_stream_is_restarted_alone(tmp_path):
    """A CSV replay hitting a malformed row raises while streaming: that pipeline restarts
    (from the top of its file, seq counting on), the other never stops."""
    csv = tmp_path / "accel.csv"
    csv.write_text("a\n" + "0.9\n" * 2000 + "oops\n" + "0.9\n" * 10)
    bad = tmp_path / "csv.toml"
    bad.write_text(CSV_SOURCE.format(csv=csv, port=free_port()))
    good = tmp_path / "good.toml"
    good.write_text(activity_pipeline("good", free_port()))
    paths = [good.resolve(), bad.resolve()]
    loaded = [pipeset.load(p, []) for p in paths]
    assert all(x.cfg is not None for x in loaded), [x.error for x in loaded]

    async def main():
        d = MultiDaemon(paths, [], [], loaded, restart_min_s=0.05, restart_max_s=0.1)
        task = asyncio.create_task(d.run())
        at_failure: dict[int, int] = {}  # failure number -> next seq of the crashed run
        try:
            while not d.slots or d.slots[paths[1]].failures < 3:
                assert not task.done()
                s = d.slots.get(paths[1])
                if s is not None and s.state == "restarting":
                    at_failure[s.failures] = s.rt.next_seq
                await asyncio.sleep(0.01)
            slot, other = d.slots[paths[1]], d.slots[paths[0]]
            seq_then = other.rt.next_seq
            while other.rt.next_seq < seq_then + 3:
                await asyncio.sleep(0.05)
        finally:
            d.stop()
            assert await asyncio.wait_for(task, 30) == 0
        assert "component 'rows'" in slot.failure and "line 2002" in slot.failure, slot.failure
        # each run published detections before its crash, and seq never started over
        runs = sorted(at_failure.items())
        assert len(runs) >= 2 and runs[0][1] > 0, runs
        assert all(b[1] > a[1] for a, b in zip(runs, runs[1:])), runs
        assert other.restarts == 0 and other.failures == 0

    asyncio.run(main())
