"""The zenoh sink never listens beyond loopback unless told to, and warns when told to."""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import activity_pipeline, edgesnn_cmd, free_port, subprocess_env

from edgesnn.components import BuildContext

zenoh = pytest.importorskip("zenoh", reason="eclipse-zenoh is not installed (edgesnn[zenoh])")

from edgesnn.sinks.zenoh_pub import ZenohPubSink, is_loopback  # noqa: E402

_LOOPBACK_HEX = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1 (/proc)


def sockets_of(pid: int) -> list[tuple[str, str, int]]:
    """(file, local address hex, port) of each TCP listener and bound UDP socket of `pid`."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = []
    for name in ("tcp", "tcp6", "udp", "udp6"):
        for line in Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]:
            f = line.split()
            addr, port = f[1].split(":")
            if f[9] in inodes and (f[3] == "0A" or name.startswith("udp")):
                out.append((name, addr, int(port, 16)))
    return out


def _daemon_sockets(tmp_path: Path, sink: str) -> tuple[list[tuple[str, str, int]], int, str]:
    """Start a daemon whose zenoh sink is `sink`; its sockets once the Zenoh session is open."""
    zmq_port = free_port()
    path = tmp_path / "z.toml"
    path.write_text(activity_pipeline("zloop", zmq_port, extra=sink))
    daemon = subprocess.Popen(edgesnn_cmd("run", str(path)), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env=subprocess_env())
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in daemon.stderr], daemon=True).start()
    err = ""
    try:
        while "publishing edgesnn/" not in err:
            try:
                err += lines.get(timeout=60)
            except queue.Empty:
                pytest.fail(f"no zenoh session within 60 s: {err}")
        return sockets_of(daemon.pid), zmq_port, err
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)


def _sink(**params: object) -> str:
    lines = ["", "[sinks.z]", 'type = "zenoh"', 'inputs = ["r"]', 'device = "d"']
    return "\n".join(lines + [f"{k} = {json.dumps(v)}" for k, v in params.items()]) + "\n"


def test_peer_without_listen_binds_loopback_only(tmp_path):
    socks, zmq_port, err = _daemon_sockets(tmp_path, _sink())
    exposed = [s for s in socks if s[1] not in _LOOPBACK_HEX]
    assert not exposed, (socks, err)
    # the Zenoh listener is there, on loopback, beside the ZeroMQ one
    assert [s for s in socks if s[0] == "tcp" and s[2] != zmq_port], socks
    assert "tcp/127.0.0.1:0" in err and "not on loopback" not in err


def test_connecting_peer_without_listen_has_no_listener(tmp_path):
    port = free_port()
    c = zenoh.Config()
    c.insert_json5("scouting/multicast/enabled", "false")
    c.insert_json5("listen/endpoints", json.dumps([f"tcp/127.0.0.1:{port}"]))
    with zenoh.open(c):  # the peer it connects to
        socks, zmq_port, err = _daemon_sockets(
            tmp_path, _sink(connect=[f"tcp/127.0.0.1:{port}"]))
    assert [s[2] for s in socks if s[0].startswith("tcp")] == [zmq_port], (socks, err)
    assert not [s for s in socks if s[1] not in _LOOPBACK_HEX], socks


def _params(**p: object) -> dict:
    return ZenohPubSink.schema.validate(p, "sinks.z", [])


def test_listen_defaults_and_config_file(tmp_path):
    def listen(**p: object) -> object:
        sink = ZenohPubSink("z", _params(**p), BuildContext(base_dir=str(tmp_path)))
        return json.loads(sink.config().get_json("listen/endpoints"))

    assert listen() == ["tcp/127.0.0.1:0"]
    assert listen(connect=["tcp/127.0.0.1:1"]) == []
    assert listen(listen=["tcp/127.0.0.1:7"]) == ["tcp/127.0.0.1:7"]
    (tmp_path / "own.json5").write_text('{ listen: { endpoints: ["tcp/127.0.0.1:9"] } }\n')
    assert listen(config_file="own.json5") == ["tcp/127.0.0.1:9"]  # the file's own list
    (tmp_path / "tls.json5").write_text("{ scouting: { multicast: { enabled: false } } }\n")
    assert listen(config_file="tls.json5") == ["tcp/127.0.0.1:0"]


def test_non_loopback_endpoints_warn_without_config_file(tmp_path, caplog):
    assert is_loopback("tcp/127.0.0.1:7447") and is_loopback("tcp/[::1]:1")
    assert is_loopback("tcp/localhost:1") and is_loopback("unixsock-stream//tmp/z.sock")
    assert not is_loopback("tcp/0.0.0.0:7447") and not is_loopback("tcp/[::]:1")
    assert not is_loopback("tls/cam.lan:7447")
    ctx = BuildContext(base_dir=str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="edgesnn.sinks.zenoh_pub"):
        quiet = ZenohPubSink("z", _params(listen=["tcp/127.0.0.1:1"]), ctx)
        assert quiet.warn_if_exposed() == [] and not caplog.records
        loud = ZenohPubSink("z", _params(listen=["tcp/0.0.0.0:1"],
                                         connect=["tcp/192.0.2.7:7447"]), ctx)
        assert loud.warn_if_exposed() == ["tcp/0.0.0.0:1", "tcp/192.0.2.7:7447"]
        assert "not on loopback" in caplog.text and "config_file" in caplog.text
        caplog.clear()
        (tmp_path / "tls.json5").write_text("{}\n")
        secured = ZenohPubSink("z", _params(listen=["tcp/0.0.0.0:1"], config_file="tls.json5"),
                               ctx)
        assert secured.warn_if_exposed() == ["tcp/0.0.0.0:1"] and not caplog.records
