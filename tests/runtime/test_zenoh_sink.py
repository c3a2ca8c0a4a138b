"""The zenoh sink: a daemon's real detections reach a Zenoh subscriber in another process."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import activity_pipeline, edgesnn_cmd, free_port, subprocess_env

from edgesnn.components import BuildContext
from edgesnn.config import pipeline as pl
from edgesnn.errors import ConfigError

zenoh = pytest.importorskip("zenoh", reason="eclipse-zenoh is not installed (edgesnn[zenoh])")

SUB = Path(__file__).parent / "_zenoh_sub.py"


def _zenoh_sink(**params: object) -> str:
    lines = ["", "[sinks.z]", 'type = "zenoh"', 'inputs = ["r"]']
    lines += [f"{k} = {json.dumps(v)}" for k, v in params.items()]
    return "\n".join(lines) + "\n"


def _run(tmp_path: Path, name: str, sink: str, sub_args: list[str], count: int) -> list[dict]:
    """Start the subscriber process, then the daemon; the subscriber's JSON lines."""
    path = tmp_path / f"{name}.toml"
    path.write_text(activity_pipeline(name, free_port(), window_ms=100.0, heartbeat_s=0.3,
                                      extra=sink))
    sub = subprocess.Popen([sys.executable, str(SUB), *sub_args, "--count", str(count),
                            "--timeout", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=subprocess_env())
    assert sub.stdout is not None and sub.stdout.readline().strip() == "ready"
    daemon = subprocess.Popen(edgesnn_cmd("run", str(path)), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        out, err = sub.communicate(timeout=120)
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, d_err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, d_err
    assert sub.returncode == 0, err + d_err
    return [json.loads(line) for line in out.splitlines()]


def _check(rows: list[dict], device: str, name: str, encoding: str) -> None:
    dets = [r for r in rows if r["msg"]["kind"] == "det"]
    hbs = [r for r in rows if r["msg"]["kind"] == "hb"]
    assert dets and hbs
    for r in dets:
        assert r["key"] == f"edgesnn/{device}/{name}/det/activity"
        assert r["encoding"].startswith(encoding)
        m = r["msg"]
        assert m["v"] == 1 and m["pipeline"] == name and m["label"] == "activity"
    assert all(r["key"] == f"edgesnn/{device}/{name}/hb" for r in hbs)
    seqs = [r["msg"]["seq"] for r in dets]  # reliable transport: gap-free once connected
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_zenoh_peer_daemon_listens_subscriber_process_connects(tmp_path):
    port = free_port()
    sink = _zenoh_sink(listen=[f"tcp/127.0.0.1:{port}"], device="cam-7")
    rows = _run(tmp_path, "zpeer", sink, ["--connect", f"tcp/127.0.0.1:{port}"], 12)
    _check(rows, "cam-7", "zpeer", "application/msgpack")


def test_zenoh_client_mode_json_to_a_listening_peer(tmp_path):
    port = free_port()
    # a Zenoh config file to start from (relative to the pipeline); the sink's keys override it
    (tmp_path / "zenoh.json5").write_text('{ mode: "peer", scouting: { multicast: '
                                          '{ enabled: true } } }\n')
    sink = _zenoh_sink(mode="client", connect=[f"tcp/127.0.0.1:{port}"], device="d1",
                       format="json", prefix="site/edgesnn", config_file="zenoh.json5")
    rows = _run(tmp_path, "zjson", sink,
                ["--listen", f"tcp/127.0.0.1:{port}", "--key", "site/edgesnn/d1/**"], 8)
    _check([{**r, "key": r["key"].removeprefix("site/")} for r in rows], "d1", "zjson",
           "application/json")


def test_zenoh_client_without_router_counts_then_connects():
    """A client whose router is not up yet does not fail the pipeline: messages are counted
    as not_connected, and it connects with backoff once the router listens."""
    from edgesnn.sinks.zenoh_pub import ZenohPubSink

    port = free_port()
    ep = f"tcp/127.0.0.1:{port}"
    params = ZenohPubSink.schema.validate({"mode": "client", "connect": [ep], "device": "x"},
                                          "sinks.z", [])
    sink = ZenohPubSink("z", params, BuildContext())
    det = {"v": 1, "kind": "det", "pipeline": "p", "seq": 0, "label": "a/b*", "score": 1.0}

    async def main() -> list[str]:
        await sink.start()
        await sink.send(det)
        assert sink.status()["connected"] is False and sink.not_connected == 1
        c = zenoh.Config()
        c.insert_json5("scouting/multicast/enabled", "false")
        c.insert_json5("listen/endpoints", json.dumps([ep]))
        got: list[str] = []
        with zenoh.open(c) as router:
            router.declare_subscriber("edgesnn/**", lambda s: got.append(str(s.key_expr)))
            for _ in range(400):
                if sink.status()["connected"]:
                    break
                await asyncio.sleep(0.05)
            assert sink.status()["connected"], sink.status()
            for _ in range(100):
                await sink.send({**det, "seq": 1})
                await asyncio.sleep(0.02)
                if got:
                    break
            await sink.stop()
        return got

    got = asyncio.run(main())
    assert got and got[0] == "edgesnn/x/p/det/a_b_"  # '/' and wildcards never split the key
    assert sink.connect_failures >= 1


@pytest.mark.parametrize("params, words", [
    ({"connect": ["tcp://127.0.0.1:7447"]}, "Zenoh endpoints are written tcp/127.0.0.1:7447"),
    ({"listen": ["tcp/127.0.0.1"]}, "tcp/ endpoints need HOST:PORT"),
    ({"mode": "client"}, "client mode needs a router"),
    ({"prefix": "edgesnn/*"}, "without wildcards"),
    ({"config_file": "/nonexistent/zenoh.json5"}, "config_file: /nonexistent/zenoh.json5"),
])
def test_zenoh_sink_config_problems_name_the_key(params, words):
    text = activity_pipeline("zbad", free_port()) + _zenoh_sink(**params)
    with pytest.raises(ConfigError) as exc:
        pl.loads(text, "zbad.toml")
    assert any(words in str(p) for p in exc.value.problems), exc.value.problems


def test_subscribe_cli_reads_a_zenoh_daemon(tmp_path):
    """`edgesnn subscribe --zenoh ENDPOINT` prints the daemon's detections and heartbeats."""
    port = free_port()
    path = tmp_path / "zcli.toml"
    path.write_text(activity_pipeline(
        "zcli", free_port(), window_ms=100.0, heartbeat_s=0.3,
        extra=_zenoh_sink(listen=[f"tcp/127.0.0.1:{port}"], device="cli-dev")))
    daemon = subprocess.Popen(edgesnn_cmd("run", str(path)), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        res = subprocess.run(
            edgesnn_cmd("subscribe", "--zenoh", f"tcp/127.0.0.1:{port}", "--heartbeats",
                        "--count", "8", "--timeout", "60"),
            capture_output=True, text=True, timeout=120, env=subprocess_env())
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, d_err = daemon.communicate(timeout=30)
    assert res.returncode == 0, res.stderr + d_err
    msgs = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(msgs) == 8 and {m["kind"] for m in msgs} <= {"det", "hb"}
    for m in msgs:
        assert m["topic"] == ("edgesnn/cli-dev/zcli/hb" if m["kind"] == "hb"
                              else "edgesnn/cli-dev/zcli/det/activity")
    assert "lost" not in res.stderr
    bad = subprocess.run(edgesnn_cmd("subscribe", "--zenoh", "tcp://127.0.0.1:7447"),
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "written tcp/127.0.0.1:7447" in bad.stderr


def test_zenoh_sink_bounded_queue_counts_every_message():
    """A burst beyond `queue` is dropped and counted, never blocks the loop; sent + dropped
    accounts for every message; status uses the outbox_* names /metrics exports."""
    from edgesnn.sinks.zenoh_pub import ZenohPubSink

    params = ZenohPubSink.schema.validate(
        {"listen": [f"tcp/127.0.0.1:{free_port()}"], "queue": 1}, "sinks.z", [])
    sink = ZenohPubSink("z", params, BuildContext())
    n = 20_000
    det = {"v": 1, "kind": "det", "pipeline": "p", "seq": 0, "label": "a", "score": 1.0}

    async def main() -> dict:
        await sink.start()
        for seq in range(n):  # no await yields inside send: the sending thread lags behind
            await sink.send({**det, "seq": seq})
        for _ in range(200):
            if sink.sent + sink.dropped == n:
                break
            await asyncio.sleep(0.01)
        st = sink.status()
        await sink.stop()
        return st

    st = asyncio.run(main())
    assert st["outbox_dropped"] > 0 and st["outbox_capacity"] == 1
    assert st["sent"] + st["outbox_dropped"] == n and st["send_errors"] == 0
    assert "dropped" not in st and "queue_depth" not in st
