"""A daemon with an MQTT sink: same maps as on ZeroMQ, and its last will when SIGKILLed."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import msgpack
import pytest
import zmq
from _mqtt_broker import Broker, Collector, need_mosquitto
from conftest import activity_pipeline, edgesnn_cmd, free_port, subprocess_env


def test_daemon_publishes_the_zmq_maps_and_its_last_will_marks_it_offline(
    tmp_path: Path,
) -> None:
    need_mosquitto()
    broker = Broker(tmp_path, free_port())
    broker.start()
    zport = free_port()
    mqtt = f"""
[sinks.mq]
type = "mqtt"
inputs = ["r"]
port = {broker.port}
device = "dev1"
"""
    pipe = tmp_path / "p.toml"
    pipe.write_text(activity_pipeline("fleet1", zport, extra=mqtt))
    sub = Collector(broker.port, ["edgesnn/dev1/#"])
    ctx = zmq.Context()
    zsub = ctx.socket(zmq.SUB)
    zsub.setsockopt(zmq.SUBSCRIBE, b"det.")
    zsub.setsockopt(zmq.RCVTIMEO, 1000)
    zsub.connect(f"tcp://127.0.0.1:{zport}")
    proc = subprocess.Popen(edgesnn_cmd("run", str(pipe)), env=subprocess_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        by_zmq = {}
        end = time.monotonic() + 20
        while len(by_zmq) < 20 and time.monotonic() < end:
            try:
                topic, payload = zsub.recv_multipart()
            except zmq.Again:  # a slow start
                continue
            m = msgpack.unpackb(payload, raw=False)
            by_zmq[m["seq"]] = (topic.decode(), m)
        msgs = sub.wait_for(lambda s: sum(1 for t, p, _ in s if "/det/" in t
                                          and msgpack.unpackb(p)["seq"] in by_zmq) >= 10)
        both = 0
        for t, p, _ in msgs:
            if "/det/" not in t:
                continue
            m = msgpack.unpackb(p, raw=False)
            if m["seq"] in by_zmq:
                ztopic, zm = by_zmq[m["seq"]]
                assert ztopic == f"det.fleet1.{m['label']}"
                assert t == f"edgesnn/dev1/fleet1/det/{m['label']}"
                # the same map; each sink stamps its own emit time
                assert {**m, "t_emit_us": 0} == {**zm, "t_emit_us": 0}
                both += 1
        assert both >= 10
        assert any(t == "edgesnn/dev1/fleet1/status" and msgpack.unpackb(p)["state"] == "online"
                   for t, p, _ in msgs)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        t_kill = time.monotonic()

        def offline(s: list[tuple[str, bytes, bool]]) -> bool:
            return any(t.endswith("/status") and msgpack.unpackb(p)["state"] == "offline"
                       for t, p, _ in s)

        msgs = sub.wait_for(offline, timeout=10)
        assert offline(msgs), "no last will within 10 s of SIGKILL"
        will = [msgpack.unpackb(p, raw=False) for t, p, _ in msgs if t.endswith("/status")][-1]
        assert will["reason"] == "lost" and will["device"] == "dev1"
        print(f"\nlast will after SIGKILL: {time.monotonic() - t_kill:.2f} s")
        sub.close()
        # retained: a monitor that connects later sees the device offline at once
        late = Collector(broker.port, ["edgesnn/+/+/status"])
        msgs = late.wait_for(lambda s: len(s) >= 1, timeout=5)
        late.close()
        assert [(t, msgpack.unpackb(p)["state"], r) for t, p, r in msgs] == [
            ("edgesnn/dev1/fleet1/status", "offline", True)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        zsub.close(0)
        ctx.term()
        broker.stop()


def test_metrics_and_status_show_the_outbox_while_the_broker_is_unreachable(
    tmp_path: Path,
) -> None:
    """No broker at all: the daemon runs, fills its 5-message outbox, counts the overflow, and
    /status and /metrics say so."""
    pytest.importorskip("paho.mqtt.client", reason="paho-mqtt not installed (edgesnn[mqtt])")
    from prometheus_client.parser import text_string_to_metric_families

    hport = free_port()
    extra = f"""
[http]
enabled = true
port = {hport}

[sinks.mq]
type = "mqtt"
inputs = ["r"]
port = {free_port()}
outbox = 5
max_inflight = 5
drain_s = 0.0
"""
    pipe = tmp_path / "p.toml"
    pipe.write_text(activity_pipeline("nobroker", free_port(), extra=extra))
    proc = subprocess.Popen(edgesnn_cmd("run", str(pipe)), env=subprocess_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        row: dict = {}
        end = time.monotonic() + 20
        while time.monotonic() < end:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{hport}/status", timeout=2) as r:
                    row = json.load(r)["counters"]["mq"]
                if row.get("outbox_dropped", 0) > 0:
                    break
            except (OSError, KeyError):
                pass
            time.sleep(0.1)
        assert row["connected"] is False and row["outbox_depth"] == 5, row
        assert row["outbox_dropped"] > 0 and row["connect_failures"] >= 1
        with urllib.request.urlopen(f"http://127.0.0.1:{hport}/metrics", timeout=5) as r:
            text = r.read().decode()
        got = {s.name: s.value for fam in text_string_to_metric_families(text)
               for s in fam.samples if s.labels.get("component") == "mq"}
        assert got["edgesnn_sink_connected"] == 0
        assert got["edgesnn_sink_outbox_depth"] == 5
        assert got["edgesnn_sink_outbox_capacity"] == 5
        assert got["edgesnn_sink_outbox_dropped_total"] >= row["outbox_dropped"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0, proc.stderr.read().decode()[-2000:] if proc.stderr else ""


def test_sighup_reload_keeps_the_mqtt_connection_and_seq_gap_free(tmp_path: Path) -> None:
    need_mosquitto()
    broker = Broker(tmp_path, free_port())
    broker.start()
    mqtt = f"""
[sinks.mq]
type = "mqtt"
inputs = ["r"]
port = {broker.port}
device = "dev1"
"""
    pipe = tmp_path / "p.toml"
    pipe.write_text(activity_pipeline("hup", free_port(), extra=mqtt))
    sub = Collector(broker.port, ["edgesnn/dev1/#"])

    def dets(s: list[tuple[str, bytes, bool]]) -> list[int]:
        return [msgpack.unpackb(p)["seq"] for t, p, _ in s if "/det/" in t]

    proc = subprocess.Popen(edgesnn_cmd("run", str(pipe)), env=subprocess_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert len(dets(sub.wait_for(lambda s: len(dets(s)) >= 10, 20))) >= 10
        proc.send_signal(signal.SIGHUP)
        n = len(dets(sub.snapshot()))
        assert len(dets(sub.wait_for(lambda s: len(dets(s)) >= n + 30, 20))) >= n + 30
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    msgs = sub.wait_for(lambda s: any(b"stopped" in p for t, p, _ in s
                                      if t.endswith("/status")), 5)
    sub.close()
    broker.stop()
    log = err.decode()
    assert proc.returncode == 0, log[-2000:]
    assert "still publishing to mqtt://" in log, log[-2000:]  # the reload adopted the sink
    got = dets(msgs)
    assert got == list(range(len(got)))  # one gap-free stream across the reload
    states = [msgpack.unpackb(p)["state"] for t, p, _ in msgs if t.endswith("/status")]
    assert states == ["online", "offline"]  # one connection: no flap at the reload
