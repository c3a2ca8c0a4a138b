"""HTTP API (real aiohttp server, real HTTP) and the client library (real ZeroMQ on loopback)."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import aiohttp
import zmq
from conftest import activity_pipeline, free_port

from edgesnn import wire
from edgesnn.client import AsyncSubscriber, Subscriber
from edgesnn.config import pipeline as pl
from edgesnn.runtime.daemon import run_daemon
from edgesnn.runtime.runner import Runtime


def small_cfg(tmp_path, duration=3.0):
    extra = (f'\n[http]\nenabled = true\nport = {free_port()}\ntoken_env = "EDGESNN_TEST_TOKEN"\n'
             f'\n[sinks.log]\ntype = "file"\ninputs = ["r"]\npath = "{tmp_path / "dets.jsonl"}"\n')
    text = activity_pipeline("small", free_port(), speed=4.0, duration_s=duration,
                             heartbeat_s=0.2, join_wait_ms=300, extra=extra)
    return pl.loads(text, str(tmp_path / "small.toml"))


def test_http_endpoints_and_token(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESNN_TEST_TOKEN", "s3cret")
    cfg = small_cfg(tmp_path, duration=60.0)
    port = cfg.http["port"]
    base = f"http://127.0.0.1:{port}"

    async def go():
        rt = Runtime(cfg)
        daemon = asyncio.create_task(run_daemon(cfg, rt))
        async with aiohttp.ClientSession() as s:
            for _ in range(100):
                try:
                    async with s.get(f"{base}/health") as r:
                        health = await r.json()
                        if health["state"] == "running":
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)
            assert health == {"status": "ok", "state": "running"}
            await asyncio.sleep(0.5)
            async with s.get(f"{base}/metrics") as r:
                text = await r.text()
            assert ('edgesnn_component_received_total{component="enc",kind="encoder",'
                    'pipeline="small"}') in text
            assert "# TYPE edgesnn_component_queue_depth gauge" in text
            async with s.get(f"{base}/status") as r:
                status = await r.json()
            assert status["pipeline"] == "small" and status["counters"]["cam"]["emitted"] > 0
            async with s.get(f"{base}/") as r:
                assert "edgesnn" in await r.text()
            # mutating endpoints: no token -> 401, wrong command -> 404
            async with s.post(f"{base}/control/r/reset", json={}) as r:
                assert r.status == 401
            hdr = {"Authorization": "Bearer s3cret"}
            async with s.post(f"{base}/control/r/nonsense", json={}, headers=hdr) as r:
                assert r.status == 404
            async with s.post(f"{base}/control/nobody/x", json={}, headers=hdr) as r:
                assert r.status == 404
            async with s.post(f"{base}/control/r/reset", json={}, headers=hdr) as r:
                assert r.status == 200 and (await r.json())["result"] == {"reset": True}
            # hostile requests: a one-line 4xx each, never a 500
            hostile = [
                b"\xff\xfe not utf-8",
                b"[" * 5000 + b"]" * 5000,
                b'{"' + b"n" * 300 + b'": 1}',
                b'{"on": "false"}',
                b"[1, 2]",
            ]
            for body in hostile:
                async with s.post(f"{base}/control/enc/learning", data=body,
                                  headers={**hdr, "Content-Type": "application/json"}) as r:
                    reply = await r.json()
                    assert 400 <= r.status < 500, (body[:20], r.status, reply)
                    assert "\n" not in reply["error"]
            # a page that rebinds a foreign name to 127.0.0.1 is not answered
            async with s.get(f"{base}/status", headers={"Host": "attacker.example:80"}) as r:
                assert r.status == 421
            async with s.get(f"{base}/status", headers={"Host": f"localhost:{port}"}) as r:
                assert r.status == 200
        rt.request_stop()
        return await daemon

    assert asyncio.run(go()) == 0
    lines = (tmp_path / "dets.jsonl").read_text().splitlines()
    assert lines and all(json.loads(x)["pipeline"] == "small" for x in lines)


def test_mutating_endpoints_refused_without_configured_token(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGESNN_TEST_TOKEN", raising=False)
    cfg = small_cfg(tmp_path, duration=60.0)
    base = f"http://127.0.0.1:{cfg.http['port']}"

    async def go():
        rt = Runtime(cfg)
        daemon = asyncio.create_task(run_daemon(cfg, rt))
        async with aiohttp.ClientSession() as s:
            for _ in range(100):
                try:
                    async with s.post(f"{base}/control/r/reset", json={},
                                      headers={"Authorization": "Bearer "}) as r:
                        status = r.status
                        body = await r.json()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        rt.request_stop()
        await daemon
        return status, body

    status, body = asyncio.run(go())
    assert status == 403 and "EDGESNN_TEST_TOKEN" in body["error"]


def test_sync_and_async_clients_decode_and_count_gaps():
    port = free_port()
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.bind(f"tcp://127.0.0.1:{port}")
    endpoint = f"tcp://127.0.0.1:{port}"

    def msg(seq, pipeline="p"):
        return {"v": 1, "kind": "det", "pipeline": pipeline, "seq": seq, "t_sensor_us": seq,
                "t_emit_us": wire.now_us(), "label": "x", "score": 1.0}

    seqs = [0, 1, 2, 5, 6, 0, 1]  # gap of 2 (3, 4), then a restart

    def publish():
        time.sleep(0.4)
        for s in seqs:
            pub.send_multipart(wire.frames(msg(s)))
        pub.send_multipart([b"det.p.x", b"not msgpack"])
        pub.send_multipart(wire.frames(msg(2)))

    gaps = []
    sub = Subscriber(endpoint, on_gap=lambda p, a, b: gaps.append((p, a, b)), timeout_ms=2000)
    th = threading.Thread(target=publish)
    th.start()
    got = [sub.recv()["seq"] for _ in range(len(seqs) + 1)]
    th.join()
    assert got == seqs + [2]
    assert sub.gaps == 2 and gaps == [("p", 3, 5)] and sub.restarts == 1
    assert sub.bad_messages == 1
    sub.close()

    async def go():
        async with AsyncSubscriber(endpoint) as asub:
            await asyncio.sleep(0.3)
            for s in (10, 11, 13):
                pub.send_multipart(wire.frames(msg(s, "q")))
            out = [(await asub.recv())["seq"] for _ in range(3)]
            return out, asub.gaps

    out, g = asyncio.run(go())
    assert out == [10, 11, 13] and g == 1
    pub.close(0)
    ctx.term()


def test_checkpoint_endpoint_writes_one_now(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESNN_TEST_TOKEN", "tok")
    http_port = free_port()
    extra = (f'\n[http]\nenabled = true\nport = {http_port}\ntoken_env = "EDGESNN_TEST_TOKEN"\n'
             f'\n[checkpoint]\ndir = "{tmp_path / "ck"}"\ninterval_s = 3600.0\n')
    cfg = pl.loads(activity_pipeline("ck", free_port(), duration_s=60.0, extra=extra),
                   str(tmp_path / "ck.toml"))
    base = f"http://127.0.0.1:{http_port}"

    async def go():
        rt = Runtime(cfg)
        daemon = asyncio.create_task(run_daemon(cfg, rt))
        async with aiohttp.ClientSession() as s:
            for _ in range(200):
                try:
                    async with s.get(f"{base}/health") as r:
                        if (await r.json())["state"] == "running":
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)
            async with s.post(f"{base}/checkpoint") as r:
                assert r.status == 401
            async with s.post(f"{base}/checkpoint",
                              headers={"Authorization": "Bearer tok"}) as r:
                body = await r.json()
                assert r.status == 200, body
        rt.request_stop()
        await daemon
        return body

    body = asyncio.run(go())
    assert body["path"].endswith(".json") and (tmp_path / "ck").is_dir()
    assert any(p.name == body["path"].rsplit("/", 1)[-1] for p in (tmp_path / "ck").iterdir())


def test_run_time_model_save_only_writes_plain_names_in_the_state_folder(tmp_path):
    from edgesnn.commands.run import load_with_overrides

    cfg = load_with_overrides("demo", [f'checkpoint.dir="{tmp_path}"'])
    net = cfg.build()["motion"]
    for bad in ("../escape.npz", "/tmp/x.npz", "", "sub/dir.npz", "pipeline.toml",
                "ckpt-0000000001.npz", "model.json"):
        try:
            net.control("save", path=bad)
        except ValueError:
            continue
        raise AssertionError(f"save accepted {bad!r}")
    out = net.control("save", path="model.npz")
    assert out["saved"] == str(tmp_path / "model.npz") and (tmp_path / "model.npz").is_file()
