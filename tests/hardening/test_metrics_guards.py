"""Guard, byte and drop counters of a running `edgesnn run` (subprocess) are the same in
/metrics (Prometheus text) as in /status: time jumps of a live DVS stream, malformed and
out-of-range input, and the byte bound of each channel."""

from __future__ import annotations

import socket

import numpy as np
from _daemon import Daemon, wait_for
from conftest import free_port

from edgesnn.events import DVS_EVENT

PIPELINE = """
[pipeline]
name = "guards"

[drivers.camera]
type = "dvs_udp"
port = {udp}
sensor = [32, 32]
batch_us = 2000

[encoders.pooled]
type = "dvs_pool"
inputs = ["camera"]
sensor = [32, 32]
grid = [1, 1]
polarity = "merge"
buffer_bytes = 131072

[readouts.r]
type = "spike_count"
inputs = ["pooled"]
labels = ["a"]
buffer_bytes = 65536

[sinks.zmq]
type = "zmq_pub"
inputs = ["r"]
endpoint = "tcp://127.0.0.1:{zmq}"

[http]
enabled = true
port = {http}
"""


def _value(m: dict, name: str, component: str) -> float | None:
    for (n, labels), v in m.items():
        if n == name and ("component", component) in labels:
            return v
    return None


def test_guard_counters_in_metrics_match_status(tmp_path):
    from edgesnn_drivers.dvs.udp import encode_aestream

    udp, http = free_port(), free_port()
    path = tmp_path / "guards.toml"
    path.write_text(PIPELINE.format(udp=udp, http=http, zmq=free_port()), encoding="utf-8")
    ev = np.zeros(100, DVS_EVENT)
    ev["x"], ev["y"], ev["t"] = np.arange(100) % 32, 5, 1_000_000 + np.arange(100) * 100
    with Daemon(path, http) as d, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        d.wait_running()
        n_sent = 0
        for jump in (0, 1 << 30, 5_000_000):  # forward 18 min, then back 18 min
            seg = ev.copy()
            seg["t"] += jump
            for g in encode_aestream(seg):
                tx.sendto(g, ("127.0.0.1", udp))
            n_sent += len(seg)
            wait_for(lambda n=n_sent: d.status()["counters"]["camera"]["events"] >= n, 30)
        bad = ev[:10].copy()
        bad["x"] = 40  # outside the 32 x 32 sensor
        tx.sendto(encode_aestream(bad)[0] + b"\x01\x02", ("127.0.0.1", udp))  # and a torn tail
        cam = wait_for(lambda: (c := d.status()["counters"]["camera"])["malformed"] >= 1
                       and c["out_of_range"] >= 10 and c, 30)
        # the encoder takes the last segment in its own time (a job behind the driver)
        wait_for(lambda: d.status()["counters"]["pooled"]["events_in"] >= n_sent, 30)
        st = d.status()["counters"]
        m = d.metrics()
        assert (st["camera"]["time_jumps"], st["pooled"]["time_jumps"]) == (2, 2), (
            st["camera"], st["pooled"])
        for cid, key, name in [
            ("camera", "time_jumps", "edgesnn_component_time_jumps_total"),
            ("pooled", "time_jumps", "edgesnn_component_time_jumps_total"),
            ("pooled", "jump_discarded", "edgesnn_component_jump_discarded_total"),
            ("camera", "malformed", "edgesnn_component_malformed_total"),
            ("camera", "out_of_range", "edgesnn_component_out_of_range_total"),
            ("camera", "overflow_dropped", "edgesnn_component_overflow_dropped_total"),
            ("pooled", "max_bytes", "edgesnn_component_queue_max_bytes"),
            ("r", "max_bytes", "edgesnn_component_queue_max_bytes"),
            ("pooled", "high_water_bytes", "edgesnn_component_queue_high_water_bytes"),
        ]:
            assert _value(m, name, cid) == float(st[cid][key]), (cid, key, name)
        assert st["pooled"]["max_bytes"] == 131072 and st["r"]["max_bytes"] == 65536
        assert st["pooled"]["high_water_bytes"] > 0
        assert cam["malformed"] >= 1
        kd = _value(m, "edgesnn_component_kernel_drops_total", "camera")
        assert kd is not None and kd == float(st["camera"]["kernel_drops"])
        assert d.stop() == 0, d.stderr()
