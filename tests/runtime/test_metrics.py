"""/metrics through prometheus_client: a real daemon scraped over HTTP and parsed with the
Prometheus parser; the spike and arrival rings behind the dashboard and the latency metric."""

from __future__ import annotations

import asyncio

import aiohttp
import numpy as np
from _demo_daemon import demo_daemon
from prometheus_client.parser import text_string_to_metric_families

from edgesnn.runtime.ring import ArrivalClock, SpikeRing

HOSTILE = 'de"mo\\ line\nbreak'


def samples(text: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append(s)
    return out


def one(got: dict[str, list], name: str, **labels: str) -> float:
    rows = [s for s in got.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(rows) == 1, (name, labels, got.get(name))
    return rows[0].value


def test_metrics_of_a_running_daemon_parse_with_escaped_labels(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESNN_TEST_TOKEN", "t0k")
    extra = (f'checkpoint.dir="{tmp_path}"', 'http.token_env="EDGESNN_TEST_TOKEN"')

    async def go():
        async with demo_daemon(extra=extra, name=HOSTILE) as (rt, base), \
                aiohttp.ClientSession() as s:
            for _ in range(400):  # until detections have been published
                if rt.next_seq >= 3:
                    break
                await asyncio.sleep(0.05)
            async with s.post(f"{base}/checkpoint",
                              headers={"Authorization": "Bearer t0k"}) as r:
                assert r.status == 200, await r.text()
            async with s.get(f"{base}/metrics") as r:
                return r.headers["Content-Type"], await r.text()

    ctype, text = asyncio.run(go())
    assert ctype == "text/plain; version=0.0.4; charset=utf-8"
    got = samples(text)
    p = {"pipeline": HOSTILE}  # the parser gives the label back exactly: escaping is right
    (info,) = got["edgesnn_build_info"]
    assert info.value == 1 and set(info.labels) == {"version", "python", "numba"}
    assert one(got, "edgesnn_uptime_seconds", **p) > 0
    assert one(got, "edgesnn_healthy", **p) == 1
    assert one(got, "edgesnn_pipeline_state", state="running", **p) == 1
    n_det = one(got, "edgesnn_detections_total", **p)
    assert n_det >= 3
    assert one(got, "edgesnn_component_events_total", component="camera", **p) > 0
    assert one(got, "edgesnn_component_spikes_total", component="pooled", **p) > 0
    assert one(got, "edgesnn_component_spikes_total", component="motion", **p) > 0
    assert one(got, "edgesnn_component_detections_total", component="direction", **p) >= 3
    assert one(got, "edgesnn_component_busy_seconds_total", component="motion", **p) > 0
    assert "edgesnn_component_busy_s_total" not in got
    assert 0 <= one(got, "edgesnn_component_queue_depth", component="motion", **p) <= 16
    assert one(got, "edgesnn_component_queue_capacity", component="motion", **p) == 16
    assert one(got, "edgesnn_component_dropped_total", component="motion", **p) == 0
    assert one(got, "edgesnn_network_learning", component="motion", **p) in (0, 1)
    assert one(got, "edgesnn_network_steps_total", component="motion", **p) > 0
    n_lat = one(got, "edgesnn_detection_latency_seconds_count", readout="direction", **p)
    assert n_lat >= 1
    assert one(got, "edgesnn_detection_latency_seconds_bucket", readout="direction",
               le="+Inf", **p) == n_lat
    assert one(got, "edgesnn_checkpoints_written_total", **p) >= 1
    assert 0 <= one(got, "edgesnn_checkpoint_age_seconds", **p) < 600


def test_spike_ring_keeps_the_newest_spikes_in_order():
    ring = SpikeRing(n_neurons=4, capacity=5)
    ptr = np.array([0, 2, 2, 3], np.int64)  # steps 0..2: neurons {1, 3}, {}, {0}
    ring.push(1000, 10, ptr, np.array([1, 3, 0], np.int32))
    t, n, pos = ring.since(0)
    assert t.tolist() == [1000, 1000, 1020] and n.tolist() == [1, 3, 0] and pos == 3
    ring.push(2000, 10, np.array([0, 4], np.int64), np.array([0, 1, 2, 3], np.int32))
    t, n, pos = ring.since(3)  # only what came after position 3
    assert t.tolist() == [2000] * 4 and n.tolist() == [0, 1, 2, 3] and pos == 7
    t, n, _ = ring.since(0)  # older spikes were overwritten: the last 5 remain
    assert t.tolist() == [1020, 2000, 2000, 2000, 2000] and n.tolist() == [0, 0, 1, 2, 3]
    big = np.arange(12, dtype=np.int32) % 4  # more than the capacity in one raster
    ring.push(3000, 10, np.array([0, 12], np.int64), big)
    t, n, pos = ring.since(7)
    assert pos == 19 and n.tolist() == big[-5:].tolist()
    assert ring.since(pos)[0].size == 0
    few = SpikeRing(n_neurons=2, capacity=100, max_rasters=2)  # memory: at most 2 rasters
    for k in range(3):
        few.push(k * 10, 1, np.array([0, 1], np.int64), np.array([k % 2], np.int32))
    t, n, pos = few.since(0)
    assert t.tolist() == [10, 20] and n.tolist() == [1, 0] and pos == 3


def test_arrival_clock_finds_the_batch_that_carried_a_sensor_time():
    clock = ArrivalClock(capacity=4)
    for t_end in (100, 200, 300):
        clock.note(t_end)
    clock.host_us[:3] = [10, 20, 30]  # host arrival times, set for the check
    assert clock.arrival_us(150) == 20 and clock.arrival_us(200) == 20
    assert clock.arrival_us(50) == 10 and clock.arrival_us(301) is None
    for t_end in (400, 100, 200):  # a looping replay starts the sensor clock again
        clock.note(t_end)
    clock.host_us[:] = [50, 60, 30, 40]  # ring slots: 100 (new), 200 (new), 300, 400
    assert clock.arrival_us(150) == 60  # the latest pass over sensor time 150
    assert clock.arrival_us(350) == 40


def test_collector_reports_failure_and_unknown_latency_without_running(tmp_path):
    from conftest import activity_pipeline, free_port

    from edgesnn.config import pipeline as pl
    from edgesnn.runtime.metrics import DaemonMetrics
    from edgesnn.runtime.runner import Runtime

    cfg = pl.loads(activity_pipeline("p", free_port()), str(tmp_path / "p.toml"))
    rt = Runtime(cfg)
    rt.name = HOSTILE
    m = DaemonMetrics(lambda: rt)
    got = samples(m.exposition().decode())
    assert one(got, "edgesnn_healthy", pipeline=HOSTILE) == 1
    assert one(got, "edgesnn_pipeline_state", pipeline=HOSTILE, state="created") == 1
    assert one(got, "edgesnn_component_events_total", component="cam", pipeline=HOSTILE) == 0
    assert "edgesnn_checkpoint_age_seconds" not in got  # no [checkpoint] dir
    # a detection whose sensor data never arrived (nothing read yet): counted, no latency
    assert m.observe({"source": "r", "t_sensor_us": 5_000}) is None
    rt.arrivals["cam"].note(10_000)  # now a batch up to 10 ms has arrived
    assert m.observe({"source": "r", "t_sensor_us": 5_000}) >= 0
    rt.failure = ("enc", ValueError("broken"))
    got = samples(m.exposition().decode())
    assert one(got, "edgesnn_healthy", pipeline=HOSTILE) == 0
    assert one(got, "edgesnn_detection_latency_unknown_total", readout="r") == 1
    assert one(got, "edgesnn_detection_latency_seconds_count", readout="r") == 1
