"""Run-time learning control: rewards over a real ZeroMQ socket, `edgesnn reward` (ZeroMQ and
HTTP) against a running daemon, and per-projection learning switches."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import urllib.request

import msgpack
import numpy as np
import pytest
import zmq
from conftest import edgesnn_cmd, free_port, subprocess_env

from edgesnn.config import pipeline as pl
from edgesnn.events import SpikeRaster
from edgesnn.learning.reward import RewardServer, send_reward

PIPELINE = """
[pipeline]
name = "rstdp_demo"
dt_us = 1000

[reward]
endpoint = "tcp://127.0.0.1:{reward_port}"

[drivers.camera]
type = "synthetic_dvs"
width = 16
height = 16
speed = 4

[encoders.pooled]
type = "dvs_pool"
inputs = ["camera"]
grid = [4, 4]

[networks.learner]
type = "snn"
inputs = ["pooled"]
outputs = ["out"]

[[networks.learner.layers]]
name = "in"
n = 32
model = "input"

[[networks.learner.layers]]
name = "out"
n = 2
model = "lif"
v_th = 0.5

[[networks.learner.projections]]
source = "in"
target = "out"
weight = 0.5
plasticity = {{ rule = "rstdp", tau_elig_ms = 500.0, eta = 0.5 }}

[[networks.learner.layers]]
name = "side"
n = 2
model = "lif"
v_th = 0.5

[[networks.learner.projections]]
source = "in"
target = "side"
weight = 0.1
plasticity = {{ rule = "stdp", pairing = "nearest" }}

[readouts.choice]
type = "spike_count"
inputs = ["learner"]
labels = ["a", "b"]

[sinks.zmq]
type = "zmq_pub"
inputs = ["choice"]
endpoint = "tcp://127.0.0.1:{pub_port}"
"""


def _write(tmp_path, **kw):
    path = tmp_path / "rstdp_demo.toml"
    path.write_text(PIPELINE.format(reward_port=kw.get("reward_port", free_port()),
                                    pub_port=free_port()))
    return path


def _feed(comp, steps=300, seed=0):
    rng = np.random.default_rng(seed)
    n = comp.n_inputs
    per = [np.flatnonzero(rng.random(n) < 0.1).astype(np.int32) for _ in range(steps)]
    ptr = np.zeros(steps + 1, np.int64)
    ptr[1:] = np.cumsum([p.size for p in per])
    comp.process(SpikeRaster("s", 0, 0, 1000, n, ptr, np.concatenate(per), 0, {}))


def test_reward_server_on_a_real_socket(tmp_path):
    cfg = pl.load(_write(tmp_path))
    comps = cfg.build()
    learner = comps["learner"]
    port = free_port()
    endpoint = f"tcp://127.0.0.1:{port}"

    async def scenario():
        server = RewardServer(endpoint)
        server.attach(comps)
        await server.start()
        try:
            _feed(learner)  # eligibility builds up
            ok = await asyncio.to_thread(send_reward, endpoint, 1.5)
            bad_proj = await asyncio.to_thread(send_reward, endpoint, 1.0, None, "nope")
            bad_comp = await asyncio.to_thread(send_reward, endpoint, 1.0, "camera2")
            not_rstdp = await asyncio.to_thread(send_reward, endpoint, 1.0, None, "in->side")
            # raw DEALER client with garbage, then a valid map: the server keeps going
            ctx = zmq.asyncio.Context()
            d = ctx.socket(zmq.DEALER)
            d.setsockopt(zmq.LINGER, 0)
            d.connect(endpoint)
            await d.send(b"\xc1 not msgpack")
            garbage = msgpack.unpackb(await asyncio.wait_for(d.recv(), 5), raw=False)
            await d.send(msgpack.packb({"value": "x"}))
            not_number = msgpack.unpackb(await asyncio.wait_for(d.recv(), 5), raw=False)
            await d.send(msgpack.packb({"value": 0.5, "extra": 1}))
            unknown_key = msgpack.unpackb(await asyncio.wait_for(d.recv(), 5), raw=False)
            # wrongly typed fields are refused one by one and the service keeps serving
            typed = []
            for bad in ({"value": 1, "component": [1]}, {"value": True},
                        {"value": 1.0, "projection": {"a": 1}}):
                await d.send(msgpack.packb(bad))
                typed.append(msgpack.unpackb(await asyncio.wait_for(d.recv(), 5), raw=False))
            await d.send(msgpack.packb({"value": 0.25}))
            after = msgpack.unpackb(await asyncio.wait_for(d.recv(), 5), raw=False)
            d.close()
            ctx.term()
            return (ok, bad_proj, bad_comp, not_rstdp, garbage, not_number, unknown_key, typed,
                    after, server)
        finally:
            await server.stop()

    (ok, bad_proj, bad_comp, not_rstdp, garbage, not_number, unknown_key, typed, after,
     server) = asyncio.run(scenario())
    assert [r["ok"] for r in typed] == [False, False, False]
    assert '"component" must be a string' in typed[0]["error"]
    assert after["ok"] is True  # still serving after the bad messages
    assert ok["ok"] and ok["result"]["learner"]["projections"] == ["in->out"]
    for r in (bad_proj, bad_comp, not_rstdp, garbage, not_number, unknown_key):
        assert r["ok"] is False and r["error"]
    assert "no rstdp projection" in not_rstdp["error"]
    assert server.applied == 2 and server.rejected == 9
    w0 = learner.net.weights(0).copy()
    _feed(learner, steps=5, seed=1)  # queued rewards reach the kernel at the next step
    assert learner.status()["plasticity"]["in->out"]["rewards_applied"] >= 1
    assert not np.array_equal(learner.net.weights(0), w0)


def test_learning_switch_per_projection_and_globally(tmp_path):
    comps = pl.load(_write(tmp_path)).build()
    learner = comps["learner"]
    w1 = learner.net.weights(1).copy()
    st = learner.control("learning", on=False, projection="in->side")
    assert st["learning"] is True
    _feed(learner)
    np.testing.assert_array_equal(learner.net.weights(1), w1)
    learner.control("learning", on=True, projection=1)  # by index works too
    _feed(learner, seed=2)
    assert not np.array_equal(learner.net.weights(1), w1)
    learner.control("learning", on=False)
    w1 = learner.net.weights(1).copy()
    _feed(learner, seed=3)
    np.testing.assert_array_equal(learner.net.weights(1), w1)
    with pytest.raises(ValueError):
        learner.control("learning", on=True, projection="x->y")
    with pytest.raises(TypeError, match="true or false"):  # "false" must not switch it on
        learner.control("learning", on="false")
    assert learner.net.learning is False
    with pytest.raises(ValueError):
        learner.control("reward", value=float("nan"))
    with pytest.raises(TypeError):
        learner.control("reward", value=1.0, bogus=2)


def _http(port, path, body=None, token="secret"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                 data=None if body is None else json.dumps(body).encode(),
                                 method="GET" if body is None else "POST")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def test_edgesnn_reward_cli_against_a_running_daemon(tmp_path):
    reward_port = free_port()
    path = _write(tmp_path, reward_port=reward_port)
    http_port = free_port()
    env = subprocess_env()
    env["EDGESNN_TOKEN"] = "secret"
    proc = subprocess.Popen(
        edgesnn_cmd("run", str(path), "--set", "http.enabled=true",
                    "--set", f"http.port={http_port}"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _http(http_port, "/status")
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
                time.sleep(0.2)
        r1 = subprocess.run(edgesnn_cmd("reward", "1.0", "--pipeline", str(path)),
                            capture_output=True, text=True, env=env, timeout=60)
        assert r1.returncode == 0, r1.stderr
        assert json.loads(r1.stdout)["ok"] is True
        r2 = subprocess.run(
            edgesnn_cmd("reward", "-0.5", "--http", f"http://127.0.0.1:{http_port}",
                        "--component", "learner"),
            capture_output=True, text=True, env=env, timeout=60)
        assert r2.returncode == 0, r2.stdout + r2.stderr
        r3 = subprocess.run(
            edgesnn_cmd("reward", "1", "--endpoint", f"tcp://127.0.0.1:{reward_port}",
                        "--projection", "nope"),
            capture_output=True, text=True, env=env, timeout=60)
        assert r3.returncode == 1 and "no plastic projection" in r3.stdout
        r4 = subprocess.run(
            edgesnn_cmd("reward", "1", "--endpoint", f"tcp://127.0.0.1:{free_port()}",
                        "--timeout", "0.5"),
            capture_output=True, text=True, env=env, timeout=60)
        assert r4.returncode == 2 and "no reply" in r4.stderr

        def applied():
            st = _http(http_port, "/status")
            return st["counters"]["learner"]["plasticity"]["in->out"]["rewards_applied"]

        deadline = time.monotonic() + 30
        while applied() < 1:  # rewards reaching the same step are summed into one
            assert time.monotonic() < deadline, _http(http_port, "/status")
            time.sleep(0.1)
        st = _http(http_port, "/status")
        assert st["reward"]["applied"] == 1 and st["reward"]["rejected"] == 1
        assert st["counters"]["learner"]["rewards_received"] == 2
        # learning switched off over HTTP, per projection
        res = _http(http_port, "/control/learner/learning", {"on": False, "projection": 0})
        assert res["result"]["plasticity"]["in->out"]["on"] is False
        assert res["result"]["plasticity"]["in->side"]["on"] is True
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert proc.returncode == 0, proc.stderr.read()
