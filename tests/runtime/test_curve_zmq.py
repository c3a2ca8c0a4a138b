"""CURVE across hosts: `edgesnn keys generate`, an encrypted and authenticated zmq_pub sink
(allowed subscribers receive, others nothing), the reward socket, and the warning for an
exposed endpoint without CURVE."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
import zmq
import zmq.auth
from conftest import activity_pipeline, edgesnn_cmd, free_port, subprocess_env

from edgesnn.client import Subscriber
from edgesnn.commands import keys as keys_cmd
from edgesnn.commands import subscribe as subscribe_cmd
from edgesnn.components import BuildContext
from edgesnn.config import pipeline as pl
from edgesnn.curve import CurveClient, is_loopback
from edgesnn.errors import ConfigError
from edgesnn.learning.reward import send_reward
from edgesnn.sinks.zmq_pub import ZmqPubSink


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    """server.key(_secret), mon.key(_secret) (allowed), intruder.key(_secret) (not allowed)."""
    (tmp_path / "keys").mkdir()
    for name in ("server", "mon", "intruder"):
        zmq.auth.create_certificates(tmp_path / "keys", name)
    (tmp_path / "allowed").mkdir()
    shutil.copy(tmp_path / "keys" / "mon.key", tmp_path / "allowed")
    return tmp_path


def _client(keys: Path, name: str) -> CurveClient:
    return CurveClient.load(str(keys / "keys" / f"{name}.key_secret"),
                            str(keys / "keys" / "server.key"))


def test_keys_generate_writes_a_pair_with_a_private_secret(tmp_path, capsys):
    d = tmp_path / "k"
    res = subprocess.run(edgesnn_cmd("keys", "generate", str(d), "--name", "cam-1"),
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    public, secret = d / "cam-1.key", d / "cam-1.key_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(public.stat().st_mode) == 0o644
    pub, sec = zmq.auth.load_certificate(secret)
    assert sec is not None and zmq.auth.load_certificate(public) == (pub, None)
    assert pub.decode() in res.stdout
    # never overwritten silently (unless --force); a bad name is refused
    def generate(name: str, force: bool = False) -> int:
        return keys_cmd.generate(argparse.Namespace(dir=str(d), name=name, force=force))

    assert generate("cam-1") == 1 and "exists; give --force" in capsys.readouterr().err
    assert zmq.auth.load_certificate(secret) == (pub, sec)
    assert generate("../x") == 2 and "--name" in capsys.readouterr().err
    assert generate("cam-1", force=True) == 0
    assert zmq.auth.load_certificate(secret)[0] != pub
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_curve_publisher_allowed_key_receives_others_nothing(keys, tmp_path):
    port = free_port()
    extra = ('curve_secret_key = "keys/server.key_secret"\n'
             'curve_allowed_keys = "allowed"\n')
    path = tmp_path / "cv.toml"
    path.write_text(activity_pipeline("cv", port, window_ms=50.0, extra=extra))
    ep = f"tcp://127.0.0.1:{port}"
    # subscribers first: ZeroMQ connects whenever the daemon binds
    ctx = zmq.Context()
    good = Subscriber(ep, timeout_ms=200, context=ctx, curve=_client(keys, "mon"))
    intruder = Subscriber(ep, timeout_ms=200, context=ctx, curve=_client(keys, "intruder"))
    plain = Subscriber(ep, timeout_ms=200, context=ctx)
    daemon = subprocess.Popen(edgesnn_cmd("run", str(path)), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        got: list[dict] = []
        deadline = time.monotonic() + 60
        while len(got) < 10:
            assert time.monotonic() < deadline and daemon.poll() is None
            with contextlib.suppress(TimeoutError):
                got.append(good.recv())
        others = []
        for sub in (intruder, plain):
            with contextlib.suppress(TimeoutError):
                others.append(sub.recv())
        seqs = [m["seq"] for m in got]
        assert seqs == list(range(seqs[0], seqs[0] + 10)) and good.gaps == 0
        assert all(m["pipeline"] == "cv" and m["label"] == "activity" for m in got)
        assert others == []  # refused at the handshake: not one message, not even a frame
        # the allowed-keys folder is re-read: the intruder's key added, it receives too
        shutil.copy(keys / "keys" / "intruder.key", keys / "allowed")
        late = Subscriber(ep, timeout_ms=200, context=ctx, curve=_client(keys, "intruder"))
        deadline = time.monotonic() + 30
        while True:
            assert time.monotonic() < deadline and daemon.poll() is None
            try:
                assert late.recv()["pipeline"] == "cv"
                break
            except TimeoutError:
                pass
    finally:
        for s in (good, intruder, plain):
            s.close()
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=30)
    late.close()
    ctx.term()
    assert daemon.returncode == 0, err
    assert "CURVE client refused" in err and "without CURVE" not in err


def test_subscribe_cli_with_curve_keys(keys, tmp_path, capsys):
    port = free_port()
    path = tmp_path / "cli.toml"
    path.write_text(activity_pipeline(
        "cli", port, window_ms=50.0,
        extra=f'curve_secret_key = "{keys}/keys/server.key_secret"\n'
              f'curve_allowed_keys = "{keys}/allowed"\n'))
    k = keys / "keys"
    args = [f"tcp://127.0.0.1:{port}", "--server-key", str(k / "server.key")]
    sub = subprocess.Popen(edgesnn_cmd("subscribe", *args, "--curve-key",
                                       str(k / "mon.key_secret"), "--count", "5",
                                       "--timeout", "60"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=subprocess_env())
    daemon = subprocess.Popen(edgesnn_cmd("run", str(path)), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        out, err = sub.communicate(timeout=120)
        capsys.readouterr()
        refused = subscribe_cmd.run(argparse.Namespace(
            endpoint=args[0], topic=None, heartbeats=False, count=0, timeout=1.0,
            curve_key=str(k / "intruder.key_secret"), server_key=args[2], mqtt=None))
        refused_out = capsys.readouterr()
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=30)
    assert sub.returncode == 0, err
    assert len(out.splitlines()) == 5 and json.loads(out.splitlines()[0])["pipeline"] == "cli"
    assert refused == 3 and refused_out.out == ""
    assert "does it allow this --curve-key?" in refused_out.err
    half = argparse.Namespace(endpoint=args[0], topic=None, heartbeats=False, count=0,
                              timeout=0.2, curve_key=None, server_key=args[2], mqtt=None)
    assert subscribe_cmd.run(half) == 2
    assert "go together" in capsys.readouterr().err


def _start_sink(params: dict, caplog) -> list[str]:
    """Start and stop a zmq_pub sink; the warnings it logged."""
    p = ZmqPubSink.schema.validate(params, "sinks.zmq", [])
    sink = ZmqPubSink("zmq", p, BuildContext())

    async def go() -> None:
        await sink.start()
        await sink.stop()

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        asyncio.run(go())
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_exposed_bind_without_curve_warns(keys, caplog):
    exposed = _start_sink({"endpoint": f"tcp://0.0.0.0:{free_port()}"}, caplog)
    assert len(exposed) == 1 and "without CURVE" in exposed[0]
    assert "sinks.zmq.curve_secret_key" in exposed[0]
    assert _start_sink({"endpoint": f"tcp://127.0.0.1:{free_port()}"}, caplog) == []
    assert _start_sink({"endpoint": f"tcp://0.0.0.0:{free_port()}",
                        "curve_secret_key": str(keys / "keys" / "server.key_secret"),
                        "curve_allowed_keys": str(keys / "allowed")}, caplog) == []
    assert [is_loopback(e) for e in ("tcp://127.0.0.1:1", "tcp://[::1]:1", "tcp://localhost:1",
                                     "ipc:///tmp/x", "tcp://*:1", "tcp://eth0:1",
                                     "tcp://192.0.2.1:1")] == [True] * 4 + [False] * 3


def test_curve_config_problems(keys, tmp_path):
    base = activity_pipeline("bad", free_port())
    for extra, words in [
        ('curve_secret_key = "nope.key_secret"\n', "not a readable CURVE key file"),
        (f'curve_secret_key = "{keys}/keys/server.key"\n', "holds only a public key"),
        (f'curve_allowed_keys = "{keys}/allowed"\n', "needs curve_secret_key"),
        (f'curve_secret_key = "{keys}/keys/server.key_secret"\ncurve_allowed_keys = "none"\n',
         "allowed-keys folder not found"),
    ]:
        with pytest.raises(ConfigError) as exc:
            pl.loads(base + extra, str(tmp_path / "bad.toml"))
        assert any("sinks.zmq" in str(p) and words in str(p) for p in exc.value.problems), \
            exc.value.problems


REWARD_PIPELINE = """
[pipeline]
name = "rw"

[reward]
endpoint = "tcp://127.0.0.1:{reward}"
curve_secret_key = "keys/server.key_secret"
curve_allowed_keys = "allowed"

[drivers.camera]
type = "synthetic_dvs"
width = 16
height = 16
speed = 2

[encoders.pooled]
type = "dvs_pool"
inputs = ["camera"]
grid = [2, 2]

[networks.learner]
type = "snn"
inputs = ["pooled"]
outputs = ["out"]

[[networks.learner.layers]]
name = "in"
n = 8
model = "input"

[[networks.learner.layers]]
name = "out"
n = 2
model = "lif"

[[networks.learner.projections]]
source = "in"
target = "out"
weight = 0.5
plasticity = {{ rule = "rstdp" }}

[readouts.choice]
type = "spike_count"
inputs = ["learner"]
labels = ["a", "b"]

[sinks.zmq]
type = "zmq_pub"
inputs = ["choice"]
endpoint = "tcp://127.0.0.1:{pub}"
"""


def test_reward_socket_with_curve_takes_only_allowed_senders(keys, tmp_path):
    port = free_port()
    path = tmp_path / "rw.toml"
    path.write_text(REWARD_PIPELINE.format(reward=port, pub=free_port()))
    ep = f"tcp://127.0.0.1:{port}"
    daemon = subprocess.Popen(edgesnn_cmd("run", str(path)), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        deadline = time.monotonic() + 120
        while True:  # the daemon binds once its kernels are ready
            assert daemon.poll() is None and time.monotonic() < deadline
            try:
                reply = send_reward(ep, 1.0, timeout_s=0.5, curve=_client(keys, "mon"))
                break
            except TimeoutError:
                pass
        assert reply["ok"] is True and "learner" in reply["result"]
        with pytest.raises(TimeoutError):
            send_reward(ep, 1.0, timeout_s=0.5, curve=_client(keys, "intruder"))
        with pytest.raises(TimeoutError):
            send_reward(ep, 1.0, timeout_s=0.5)
        k = keys / "keys"
        cli = subprocess.run(edgesnn_cmd("reward", "0.5", "--endpoint", ep, "--curve-key",
                                         str(k / "mon.key_secret"), "--server-key",
                                         str(k / "server.key")),
                             capture_output=True, text=True, timeout=60)
        assert cli.returncode == 0 and json.loads(cli.stdout)["ok"] is True, cli.stderr
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err
    assert "CURVE client refused" in err


def test_reload_keeps_the_curve_socket_or_rebinds_when_keys_change(keys):
    """A reload with the same endpoint and keys keeps the bound socket (and its authenticator);
    other CURVE settings close it and bind a new one with the new settings."""
    ep = f"tcp://127.0.0.1:{free_port()}"
    secure = {"endpoint": ep, "curve_secret_key": str(keys / "keys" / "server.key_secret"),
              "curve_allowed_keys": str(keys / "allowed")}

    def sink(params: dict) -> ZmqPubSink:
        return ZmqPubSink("zmq", ZmqPubSink.schema.validate(params, "sinks.zmq", []),
                          BuildContext())

    det = {"v": 1, "kind": "det", "pipeline": "rl", "seq": 0, "label": "x", "score": 1.0}

    async def receives(s: ZmqPubSink, curve: CurveClient | None, tries: int = 40) -> bool:
        ctx = zmq.Context()
        sub = Subscriber(ep, timeout_ms=50, context=ctx, curve=curve)
        try:
            for _ in range(tries):
                await s.send(det)
                try:
                    await asyncio.to_thread(sub.recv)
                    return True
                except TimeoutError:
                    pass
            return False
        finally:
            sub.close()
            ctx.term()

    async def go() -> list[bool]:
        first = sink(secure)
        await first.start()
        same = sink(secure)
        first.keep_open = True
        same.adopt(first)
        await same.start()
        kept = same._auth is not None and first._auth is None
        r = [kept, await receives(same, _client(keys, "mon")), await receives(same, None, 10)]
        plain = sink({"endpoint": ep})
        same.keep_open = True
        plain.adopt(same)
        await plain.start()  # closes the CURVE socket, binds a plain one on the same endpoint
        r += [await receives(plain, None), plain.status().get("curve") is None]
        await plain.stop()
        await first.stop()
        return r

    assert asyncio.run(go()) == [True, True, False, True, True]
