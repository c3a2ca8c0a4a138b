"""/health on a real daemon: a UDP flood makes it 503 "degraded" with the reason; quiet, 200."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import aiohttp
import numpy as np
from conftest import free_port

from edgesnn.config import pipeline as pl
from edgesnn.events import DVS_EVENT
from edgesnn.runtime.daemon import run_daemon
from edgesnn.runtime.runner import Runtime

PIPELINE = """
[pipeline]
name = "udp_health"
dt_us = 1000

[drivers.camera]
type = "dvs_udp"
port = 0
sensor = [32, 32]
batch_us = 2000
rcvbuf_bytes = 4096

[encoders.pooled]
type = "dvs_pool"
inputs = ["camera"]
sensor = [32, 32]
grid = [16, 16]

[networks.motion]
type = "snn"
inputs = ["pooled"]
builder = "motion_direction"
builder_params = {{ grid = [16, 16] }}

[readouts.direction]
type = "spike_count"
inputs = ["motion"]
labels = ["left", "right", "up", "down"]
window_ms = 50.0

[sinks.zmq]
type = "zmq_pub"
inputs = ["direction"]
endpoint = "tcp://127.0.0.1:{zmq}"

[http]
enabled = true
port = {http}
health_window_s = 0.5
"""


def test_udp_flood_degrades_health_then_quiet_recovers(tmp_path):
    from edgesnn_drivers.dvs.udp import encode_aestream

    path = tmp_path / "udp_health.toml"
    http_port = free_port()
    path.write_text(PIPELINE.format(zmq=free_port(), http=http_port), encoding="utf-8")
    cfg = pl.load(str(path))
    ev = np.zeros(60, DVS_EVENT)
    ev["x"], ev["y"], ev["t"] = np.arange(60) % 32, 3, np.arange(60) * 20
    dg = encode_aestream(ev)[0]

    async def main():
        rt = Runtime(cfg)
        task = asyncio.create_task(run_daemon(cfg, rt))
        base = f"http://127.0.0.1:{http_port}"
        try:
            async with aiohttp.ClientSession() as s:
                async def health():
                    async with s.get(f"{base}/health") as r:
                        return r.status, await r.json()

                for _ in range(1200):  # a cold numba cache compiles for a while
                    assert not task.done(), f"daemon ended early with {task.result()}"
                    with contextlib.suppress(aiohttp.ClientConnectionError):
                        if (await health())[1]["state"] == "running":
                            break
                    await asyncio.sleep(0.05)
                assert await health() == (200, {"status": "ok", "state": "running"})
                drv = rt.components["camera"]
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                for _ in range(3000):  # the daemon's loop cannot read meanwhile
                    sock.sendto(dg, ("127.0.0.1", drv.bound_port))
                sock.close()
                code, body = await health()
                assert code == 503 and body["status"] == "degraded", body
                assert any(r.startswith("camera: kernel_drops grew") for r in body["reasons"])
                for _ in range(200):  # quiet: the window passes
                    await asyncio.sleep(0.05)
                    code, body = await health()
                    if code == 200:
                        break
                assert (code, body["status"]) == (200, "ok"), body
                return drv.status()
        finally:
            rt.request_stop()
            assert await asyncio.wait_for(task, 30) == 0

    st = asyncio.run(main())
    assert st["kernel_drops"] > 1000


def test_failed_checkpoints_degrade_health(tmp_path):
    from _demo_daemon import demo_daemon

    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x", encoding="utf-8")  # checkpoints under a file cannot be written

    async def main():
        extra = (f"checkpoint.dir={blocker / 'ck'}", "checkpoint.interval_s=0.2")
        async with demo_daemon(extra=extra) as (rt, base), aiohttp.ClientSession() as s:
            for _ in range(200):
                async with s.get(f"{base}/health") as r:
                    code, body = r.status, await r.json()
                if code == 503:
                    break
                await asyncio.sleep(0.05)
        return code, body

    code, body = asyncio.run(main())
    assert code == 503 and body["status"] == "degraded", body
    assert any(r.startswith("checkpoint: ") and "failed" in r for r in body["reasons"]), body
