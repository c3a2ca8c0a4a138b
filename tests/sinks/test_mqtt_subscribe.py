"""`edgesnn subscribe --mqtt`: JSON lines from a real Mosquitto broker, duplicates dropped,
gaps reported, the exit codes of the ZeroMQ subscriber."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import msgpack
import pytest
from _mqtt_broker import Broker, need_mosquitto
from conftest import edgesnn_cmd, free_port, subprocess_env

from edgesnn.mqtt_client import parse_broker


def det(seq: int, t: int) -> dict:
    return {"v": 1, "kind": "det", "pipeline": "p1", "seq": seq, "t_sensor_us": seq,
            "t_emit_us": t, "label": "left", "score": 0.5, "source": "r", "extra": {}}


def test_subscribe_mqtt_prints_each_detection_once_and_reports_gaps(tmp_path: Path) -> None:
    need_mosquitto()
    import paho.mqtt.client as mqtt

    broker = Broker(tmp_path, free_port())
    broker.start()
    proc = subprocess.Popen(
        edgesnn_cmd("subscribe", "--mqtt", f"127.0.0.1:{broker.port}", "--count", "5",
                    "--timeout", "10"),
        env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode()
        assert "listening on mqtt://127.0.0.1" in line, line
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        topic = "edgesnn/dev1/p1/det/left"
        payloads = [msgpack.packb(det(0, 100)), msgpack.packb(det(1, 101)),
                    msgpack.packb(det(2, 102)), msgpack.packb(det(2, 102)),  # a QoS 1 resend
                    b"\xc1not an edgesnn message",
                    msgpack.packb(det(4, 104)),  # seq 3 lost
                    json.dumps(det(0, 200)).encode()]  # the daemon restarted (payload = json)
        for p in payloads:
            pub.publish(topic, p, qos=1).wait_for_publish(5)
        out, err = proc.communicate(timeout=15)
        pub.loop_stop()
        pub.disconnect()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        broker.stop()
    assert proc.returncode == 0, err.decode()
    msgs = [json.loads(x) for x in out.decode().splitlines()]
    assert [(m["seq"], m["t_emit_us"]) for m in msgs] == [(0, 100), (1, 101), (2, 102),
                                                          (4, 104), (0, 200)]
    assert {m["topic"] for m in msgs} == {topic}
    assert "dev1/p1: 1 message(s) lost (seq 3..3)" in err.decode()


def test_subscribe_mqtt_exit_codes(tmp_path: Path) -> None:
    need_mosquitto()
    env = subprocess_env()
    bad = subprocess.run(edgesnn_cmd("subscribe", "--mqtt", "tcp://a:b"), env=env,
                         capture_output=True, timeout=30)
    assert bad.returncode == 2 and b"not a broker address" in bad.stderr
    nobody = subprocess.run(edgesnn_cmd("subscribe", "--mqtt", f"127.0.0.1:{free_port()}"),
                            env=env, capture_output=True, timeout=30)
    assert nobody.returncode == 2 and b"cannot connect to the broker" in nobody.stderr
    broker = Broker(tmp_path, free_port())
    broker.start()
    try:
        quiet = subprocess.run(edgesnn_cmd("subscribe", "--mqtt", f"127.0.0.1:{broker.port}",
                                           "--timeout", "0.5"),
                               env=env, capture_output=True, timeout=30)
    finally:
        broker.stop()
    assert quiet.returncode == 3, quiet.stderr
    assert b"nothing received" in quiet.stderr


@pytest.mark.parametrize(("text", "want"), [
    ("broker.lan", ("broker.lan", 1883, False)),
    ("10.0.0.5:1884", ("10.0.0.5", 1884, False)),
    ("mqtts://broker.lan", ("broker.lan", 8883, True)),
    ("mqtt://[::1]:1883", ("::1", 1883, False)),
])
def test_broker_addresses(text: str, want: tuple) -> None:
    assert parse_broker(text) == want
