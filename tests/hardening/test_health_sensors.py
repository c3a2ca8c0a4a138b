"""Sensor faults on a real `edgesnn run` subprocess: a PCM sender that goes away, a serial
device that stops sending while plugged in (a stalled source) and one unplugged from its
pseudo-terminal make /health 503 "degraded" with the reason and counters (also in /metrics);
the sensor coming back makes it "ok" again."""

from __future__ import annotations

import os
import socket
import threading
import time
import tty

import numpy as np
import pytest
from _daemon import Daemon, wait_for
from conftest import free_port

LABELS = '["a", "b", "c", "d", "e", "f", "g", "h"]'
WINDOW_S = 1.0

PCM = """
[pipeline]
name = "pcm_health"

[drivers.mic]
type = "pcm_udp"
port = {udp}
sample_rate_hz = 16000
lost_after_s = 0.3
reconnect_max_s = 0.1

[encoders.coch]
type = "cochlea"
inputs = ["mic"]
bands = 4

[readouts.r]
type = "spike_count"
inputs = ["coch"]
labels = {labels}

[sinks.zmq]
type = "zmq_pub"
inputs = ["r"]
endpoint = "tcp://127.0.0.1:{zmq}"

[http]
enabled = true
port = {http}
health_window_s = {window}
"""

SERIAL = """
[pipeline]
name = "serial_health"

[drivers.accel]
type = "accel_serial"
port = "{tty}"
sample_rate_hz = 1000
channels = 1
reconnect_max_s = 0.1

[encoders.bands]
type = "band_energy"
inputs = ["accel"]
bands = 4
window_ms = 8.0
hop_ms = 4.0

[readouts.r]
type = "spike_count"
inputs = ["bands"]
labels = {labels}

[sinks.zmq]
type = "zmq_pub"
inputs = ["r"]
endpoint = "tcp://127.0.0.1:{zmq}"

[http]
enabled = true
port = {http}
health_window_s = {window}
"""


class Sender(threading.Thread):
    """Streams 10 ms PCM datagrams (S16_LE, 16 kHz) to a port until stopped."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port = port
        self.halt = threading.Event()
        self.sent = 0

    def run(self) -> None:
        x = (3000 * np.sin(2 * np.pi * 440 * np.arange(160) / 16000)).astype("<i2").tobytes()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            while not self.halt.is_set():
                s.sendto(x, ("127.0.0.1", self.port))
                self.sent += 1
                time.sleep(0.01)


def _ok(d: Daemon) -> bool:
    return d.health()[0] == 200


def _degraded_with(d: Daemon, *parts: str):
    code, body = d.health()
    if code == 503 and body.get("status") == "degraded" and all(
            any(p in r for r in body["reasons"]) for p in parts):
        return body
    return None


def _sample(m: dict, name: str, component: str) -> float | None:
    for (n, labels), v in m.items():
        if n == name and ("component", component) in labels:
            return v
    return None


def test_pcm_sender_gone_degrades_health_until_it_returns(tmp_path):
    udp, http = free_port(), free_port()
    path = tmp_path / "pcm.toml"
    path.write_text(PCM.format(udp=udp, zmq=free_port(), http=http, labels=LABELS,
                               window=WINDOW_S), encoding="utf-8")
    with Daemon(path, http) as d:
        d.wait_running()
        snd = Sender(udp)
        snd.start()
        try:
            wait_for(lambda: d.status()["counters"]["mic"]["connected"] is True, 60)
            wait_for(lambda: _ok(d), 60)  # the silence before the sender started has passed
            snd.halt.set()  # the sender goes away
            snd.join()
            body = wait_for(lambda: _degraded_with(d, "mic: sensor disconnected",
                                                   "mic: sensor lost (lost grew to",
                                                   "mic: source stalled, no data for"), 30)
            row = d.status()["counters"]["mic"]
            assert row["connected"] is False and row["lost"] >= 1, row
            m = d.metrics()
            assert _sample(m, "edgesnn_component_connected", "mic") == 0.0
            assert _sample(m, "edgesnn_component_sensor_lost_total", "mic") >= 1
            snd = Sender(udp)  # it comes back
            snd.start()
            wait_for(lambda: d.status()["counters"]["mic"]["connected"] is True, 30)
            wait_for(lambda: _ok(d), 30)  # once the window has passed
            assert _sample(d.metrics(), "edgesnn_component_connected", "mic") == 1.0
        finally:
            snd.halt.set()
        assert d.stop() == 0, d.stderr()
    assert any("sensor disconnected" in r for r in body["reasons"]), body


def _pty(link) -> int:  # noqa: ANN001
    """A new pseudo-terminal behind the path `link` (a replugged device); its master fd."""
    master, slave = os.openpty()
    tty.setraw(slave)
    name = os.ttyname(slave)
    os.close(slave)
    tmp = link.with_suffix(".new")
    os.symlink(name, tmp)
    os.replace(tmp, link)
    return master


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs pseudo-terminals")
def test_serial_unplug_degrades_health_until_replugged(tmp_path):
    pytest.importorskip("serial", reason="pyserial is not installed")
    link = tmp_path / "ttyACCEL"
    master = _pty(link)
    http = free_port()
    path = tmp_path / "serial.toml"
    path.write_text(SERIAL.format(tty=link, zmq=free_port(), http=http, labels=LABELS,
                                  window=WINDOW_S), encoding="utf-8")
    lines = b"".join(b"%d\n" % (i % 100) for i in range(50))
    with Daemon(path, http) as d:
        try:
            d.wait_running()
            wait_for(lambda: d.status()["counters"]["accel"]["connected"] is True, 60)
            os.write(master, lines)
            wait_for(lambda: d.status()["counters"]["accel"]["lines"] >= 50, 30)
            wait_for(lambda: _ok(d), 30)
            # the device stops sending but stays plugged in: a stalled source
            stalled = wait_for(lambda: _degraded_with(d, "accel: source stalled, no data for"),
                               30)
            assert d.status()["counters"]["accel"]["connected"] is True
            assert not any("disconnected" in r for r in stalled["reasons"]), stalled
            os.write(master, lines)  # it sends again
            wait_for(lambda: d.status()["counters"]["accel"]["lines"] >= 100, 30)
            wait_for(lambda: _ok(d), 30)
            os.close(master)  # unplugged: reads fail, and the device node is gone
            master = -1
            body = wait_for(lambda: _degraded_with(
                d, "accel: sensor disconnected", "accel: sensor dropped out (reconnects grew"), 30)
            row = d.status()["counters"]["accel"]
            assert row["connected"] is False and row["reconnects"] >= 1, row
            assert _sample(d.metrics(), "edgesnn_component_connected", "accel") == 0.0
            master = _pty(link)  # replugged (a new pty behind the same path)
            wait_for(lambda: d.status()["counters"]["accel"]["connected"] is True, 30)
            os.write(master, lines)
            wait_for(lambda: d.status()["counters"]["accel"]["lines"] >= 150, 30)
            wait_for(lambda: _ok(d), 30)
        finally:
            if master >= 0:
                os.close(master)
        assert d.stop() == 0, d.stderr()
    assert "reasons" in body


def test_stall_means_nothing_taken_while_items_wait_not_silent_output(tmp_path):
    """The stall reason follows what a component takes from its input channel: a network
    whose output is silent (no spikes: `items` does not grow) still makes progress."""
    import asyncio

    from conftest import activity_pipeline

    from edgesnn.config import pipeline as pl
    from edgesnn.runtime.health import HealthWatch
    from edgesnn.runtime.runner import Runtime

    rt = Runtime(pl.loads(activity_pipeline("stall", free_port()), str(tmp_path / "s.toml")))
    watch = HealthWatch(window_s=0.2)
    ch = rt.inbox["r"]  # the readout's input channel; nothing runs, we are its two ends

    async def go() -> tuple[list[str], list[str]]:
        for i in range(4):
            await ch.put(i)
        progressing = []
        for _ in range(6):  # the consumer takes one item per 0.1 s: slow, never stalled
            await ch.put(0)
            await ch.get()
            await asyncio.sleep(0.1)
            progressing += watch.reasons(rt)
        await asyncio.sleep(0.3)  # now it takes nothing while items wait
        return progressing, watch.reasons(rt)

    progressing, stuck = asyncio.run(go())
    assert rt.counters()["r"]["items"] == 0
    assert not [r for r in progressing if "stalled" in r], progressing
    assert [r for r in stuck if r.startswith("r: stalled, 4 items waiting")], stuck


def test_velodyne_udp_reports_connected_through_silence_and_return(data_dir):
    """The live LiDAR driver's `connected`: None before the first packet, False after
    `lost_after_s` of silence, True again with the next packet (real VLP-16 payloads)."""
    import asyncio

    from edgesnn_drivers.lidar import velodyne

    from edgesnn.components import BuildContext
    from edgesnn.encoders.generic import built

    pcap = data_dir / "lidar" / "velodyne_vlp16_example.pcap"
    if not pcap.exists():
        pytest.skip(f"{pcap} missing")
    data = [row.tobytes() for c in velodyne.iter_pcap_payloads(pcap) for row in c.data][:200]
    port = free_port()

    async def go() -> list:
        d = built(velodyne.VelodyneUdpDriver, {"port": port, "lost_after_s": 0.2,
                                               "batch_us": 5_000}, BuildContext(), "v")
        seen = [d.status()["connected"]]
        task = asyncio.create_task(_drain(d))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for phase in range(2):  # packets, silence, packets
                for _ in range(200):
                    tx.sendto(data[0], ("127.0.0.1", port))
                    await asyncio.sleep(0.005)
                    if d.status()["connected"]:
                        break
                seen.append(d.status()["connected"])
                for p in data[:50]:
                    tx.sendto(p, ("127.0.0.1", port))
                    await asyncio.sleep(0.002)
                if phase == 0:
                    for _ in range(200):
                        await asyncio.sleep(0.02)
                        if d.status()["connected"] is False:
                            break
                    seen.append(d.status()["connected"])
        await d.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return seen + [d.status()["lost"]]

    async def _drain(d) -> None:  # noqa: ANN001
        async for _ in d.batches():
            pass

    seen = asyncio.run(go())
    assert seen[:4] == [None, True, False, True], seen
    assert seen[4] >= 1
