"""Time jumps of record and flow windows are visible: the network flow encoder's
`window_time_jumps` makes a running daemon's /health degraded and is a /metrics series, and
velodyne_udp reports its record windows' jumps in its status (real UDP packets)."""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import numpy as np
import pytest
from _daemon import Daemon, wait_for
from conftest import free_port

FLOWS = """
[pipeline]
name = "flow_jumps"

[drivers.cap]
type = "pcap"
path = "{pcap}"
speed = 1.0
loop = true
batch_us = 50000

[encoders.flows]
type = "network_flow"
inputs = ["cap"]
features = ["packets_per_s"]
neurons = 2
window_us = 200000
hop_us = 100000

[readouts.r]
type = "spike_count"
inputs = ["flows"]
labels = ["low", "high"]

[sinks.zmq]
type = "zmq_pub"
inputs = ["r"]
endpoint = "tcp://127.0.0.1:{zmq}"

[http]
enabled = true
port = {http}
health_window_s = 30.0
"""


def write_jumping_capture(path) -> None:  # noqa: ANN001
    """A full reader chunk of packets over 1 s at T, one at T - 20 s (the clock went back),
    then a few up to T + 5 s. The jump falls between two chunks of the reader, as it does
    for a live capture."""
    from edgesnn_drivers.network.pcap import MAX_PACKETS_PER_CHUNK, write_pcap

    n = MAX_PACKETS_PER_CHUNK
    udp = struct.pack("!HHHH", 40000, 9999, 8, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 64, 17, 0, bytes([10, 0, 0, 1]),
                     bytes([10, 0, 0, 2]))
    frame = bytes(6) + bytes([2, 0, 0, 0, 0, 1]) + b"\x08\x00" + ip + udp
    t0 = 1_700_000_000_000_000
    step = 1_000_000 // n
    times = [t0 + k * step for k in range(n)]
    times += [t0 - 20_000_000 + k * step for k in range(n)]
    times += [t0 + 2_000_000 + k * 10_000 for k in range(300)]
    write_pcap(path, [(t, frame) for t in times])


def _degraded_by_window_jump(d: Daemon):
    code, body = d.health()
    if code == 503 and any(r.startswith("flows: window clock jumped back")
                           for r in body.get("reasons", [])):
        return body
    return None


def test_flow_window_time_jump_degrades_health_and_is_a_metric(tmp_path):
    pcap = tmp_path / "jump.pcap"
    write_jumping_capture(pcap)
    http = free_port()
    path = tmp_path / "flows.toml"
    path.write_text(FLOWS.format(pcap=pcap, zmq=free_port(), http=http), encoding="utf-8")
    with Daemon(path, http) as d:
        d.wait_running()
        body = wait_for(lambda: _degraded_by_window_jump(d), 60)
        assert body["status"] == "degraded"
        jumps = d.status()["counters"]["flows"]["window_time_jumps"]
        assert jumps >= 1
        got = [v for (n, labels), v in d.metrics().items()
               if n == "edgesnn_component_window_time_jumps_total"
               and ("component", "flows") in labels]
        assert got and got[0] >= 1, got
        # the replay driver's packet windows restarted too, and say so
        assert d.status()["counters"]["cap"]["window_time_jumps"] >= 1


def test_velodyne_udp_reports_record_window_time_jumps(data_dir):
    """Real VLP-16 payloads whose device clock goes back 15 minutes: the record windows
    restart there and `window_time_jumps` counts it."""
    from edgesnn_drivers.lidar import velodyne

    from edgesnn.components import BuildContext
    from edgesnn.encoders.generic import built

    pcap = data_dir / "lidar" / "velodyne_vlp16_example.pcap"
    if not pcap.exists():
        pytest.skip(f"{pcap} missing")
    rows = [row for c in velodyne.iter_pcap_payloads(pcap) for row in c.data][:120]
    dev0 = np.array([int(np.frombuffer(r[1200:1204].tobytes(), "<u4")[0]) for r in rows],
                    np.int64)
    rel = dev0 - dev0[0]
    hour = 3600 * 1_000_000

    def packets(base_us: int) -> list[bytes]:
        out = []
        for r, d in zip(rows, rel, strict=True):
            p = bytearray(r.tobytes())
            p[1200:1204] = struct.pack("<I", int((base_us + d) % hour))
            out.append(bytes(p))
        return out

    port = free_port()

    async def go() -> dict:
        d = built(velodyne.VelodyneUdpDriver, {"port": port, "batch_us": 5_000},
                  BuildContext(), "v")
        assert d.status()["window_time_jumps"] == 0

        async def drain() -> None:
            async for _ in d.batches():
                pass

        task = asyncio.create_task(drain())
        now = time.time_ns() // 1000
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for base in (now, now - 15 * 60 * 1_000_000):  # then the clock goes back 15 min
                for p in packets(base):
                    tx.sendto(p, ("127.0.0.1", port))
                    await asyncio.sleep(0.001)
            for _ in range(300):
                if d.status()["window_time_jumps"]:
                    break
                await asyncio.sleep(0.01)
        st = d.status()
        await d.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return st

    st = asyncio.run(go())
    assert st["window_time_jumps"] == 1, st
    assert st["late_points"] == 0, st
