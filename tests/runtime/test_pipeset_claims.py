"""Claims that components declare themselves (Component.claims): an explicit MQTT client id on
one broker and a Zenoh listen endpoint belong to one pipeline of a daemon."""

from __future__ import annotations

import json

from conftest import activity_pipeline, free_port

from edgesnn.config import pipeline as pl
from edgesnn.runtime import pipeset


def _cfg(tmp_path, name: str, zmq_port: int, sink_type: str, **params: object):
    lines = ["", "[sinks.bus]", f'type = "{sink_type}"', 'inputs = ["r"]']
    lines += [f"{k} = {json.dumps(v)}" for k, v in params.items()]
    path = tmp_path / f"{name}.toml"
    path.write_text(activity_pipeline(name, zmq_port, extra="\n".join(lines) + "\n"))
    return pl.load(str(path))


def _text(problems) -> str:
    return "\n".join(map(str, problems))


def test_explicit_mqtt_client_id_is_one_pipelines_per_broker(tmp_path):
    a = _cfg(tmp_path, "a", free_port(), "mqtt", client_id="cam-7", port=1883)
    b = _cfg(tmp_path, "b", free_port(), "mqtt", client_id="cam-7", host="127.0.0.1")
    other_broker = _cfg(tmp_path, "c", free_port(), "mqtt", client_id="cam-7", port=1884)
    default_ids = [_cfg(tmp_path, n, free_port(), "mqtt") for n in ("d", "e")]
    problems = pipeset.check_set([a, b, other_broker, *default_ids])
    assert len(problems) == 1, _text(problems)
    text = _text(problems)
    assert str(b.path) in text and str(a.path) in text  # both files named
    assert "sinks.bus.client_id" in text
    assert "MQTT client id 'cam-7' on broker 127.0.0.1:1883 is also claimed by " \
           f"sinks.bus.client_id of {a.path}" in text
    assert problems[0].line is not None  # the line of b's client_id


def test_zenoh_listen_endpoint_is_one_pipelines(tmp_path):
    port, zmq_port = free_port(), free_port()
    a = _cfg(tmp_path, "a", free_port(), "zenoh", listen=[f"tcp/127.0.0.1:{port}"])
    b = _cfg(tmp_path, "b", free_port(), "zenoh", listen=[f"tcp/localhost:{port}"])
    c = _cfg(tmp_path, "c", free_port(), "zenoh", listen=[f"tcp/[::]:{port}"])
    text = _text(pipeset.check_set([a, b]))
    assert f"Zenoh listener tcp/localhost:{port} is also claimed by sinks.bus.listen of " \
           f"{a.path}" in text and str(b.path) in text
    assert len(pipeset.check_set([a, c])) == 1  # a wildcard host meets every host
    # the same TCP port as another pipeline's ZeroMQ endpoint is a collision too
    z = _cfg(tmp_path, "z", zmq_port, "zenoh", listen=["tcp/127.0.0.1:0"])
    d = _cfg(tmp_path, "d", free_port(), "zenoh", listen=[f"tcp/127.0.0.1:{zmq_port}"])
    assert "also claimed by sinks.zmq.endpoint" in _text(pipeset.check_set([z, d]))
    # any free port (0), other ports and UDP vs TCP never collide
    e = _cfg(tmp_path, "e", free_port(), "zenoh", listen=["tcp/127.0.0.1:0"])
    f = _cfg(tmp_path, "f", free_port(), "zenoh", listen=[f"udp/127.0.0.1:{port}"])
    assert pipeset.check_set([a, z, e, f]) == []


def test_driver_hooks_claim_ports_stdin_and_named_pipes(tmp_path):
    from edgesnn.components import lookup

    def claims(type_name: str, **params: object) -> list:
        cls = lookup("driver", type_name)
        return cls.claims(cls.schema.validate(params, "drivers.d", []), str(tmp_path))

    stdin = claims("pcm_stdin", sample_rate_hz=16000)
    assert [(k, p, w) for k, p, w in stdin] == [(("fd", "", "0"), "type", "standard input")]
    assert claims("pcm_stdin", sample_rate_hz=16000, fd=5)[0][0] == ("fd", "", "5")
    fifo = claims("pcm_stdin", sample_rate_hz=16000, path="mic.pcm")
    assert fifo == [(("file", str(tmp_path / "mic.pcm"), ""), "path", "named pipe mic.pcm")]
    assert claims("velodyne_udp", port=2368)[0][0] == ("udp", "127.0.0.1", "2368")
    assert claims("pcm_udp", sample_rate_hz=16000, port=0) == []  # any free port
    assert claims("dvs_udp", host="0.0.0.0", port=3333)[0][0] == ("udp", "0.0.0.0", "3333")
