"""The HTTP API never answers 500: a checkpoint or model file that cannot be written is a
one-line 503 (counted in /status and /metrics), a bad argument a one-line 400, and any other
failure of a handler a one-line 503 whose traceback is logged once."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
from _daemon import Daemon
from conftest import activity_pipeline, free_port

from edgesnn.config import pipeline as pl
from edgesnn.runtime.http import HttpApi
from edgesnn.runtime.runner import Runtime

REPO = Path(__file__).resolve().parents[2]
TOKEN = "s3cret"


def _post(base: str, path: str, body: object | None = None) -> tuple[int, dict, bytes]:
    data = json.dumps(body).encode() if body is not None else b""
    req = urllib.request.Request(base + path, data=data, method="POST", headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
            return r.status, json.loads(raw), raw
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw), raw


def _one_line_error(raw: bytes) -> str:
    body = json.loads(raw)
    msg = body["error"]
    assert isinstance(msg, str) and "\n" not in msg and "Traceback" not in msg, raw
    assert 0 < len(msg) <= 300, msg
    return msg


def test_checkpoint_and_save_into_an_unwritable_folder_answer_503(tmp_path, monkeypatch):
    """The checkpoint folder lies under a regular file (what a read-only or vanished folder
    is to the writer, also for root): POST /checkpoint and `save` answer 503 with the reason,
    the daemon keeps serving, and the failures are counted."""
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a regular file\n")
    http = free_port()
    text = (REPO / "pipelines" / "learning_demo.toml").read_text(encoding="utf-8")
    text = text.replace('dir = ""', f'dir = "{blocker / "state"}"', 1)
    text = text.replace("tcp://127.0.0.1:5558", f"tcp://127.0.0.1:{free_port()}")
    text += (f'\n[http]\nenabled = true\nport = {http}\ntoken_env = "EDGESNN_TEST_TOKEN"\n'
             "health_window_s = 60.0\n")
    path = tmp_path / "learn.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("EDGESNN_TEST_TOKEN", TOKEN)
    with Daemon(path, http) as d:
        d.wait_running()
        code, _, raw = _post(d.base, "/checkpoint")
        assert code == 503, raw
        msg = _one_line_error(raw)
        assert msg.startswith("checkpoint failed: ") and "Error" in msg, msg
        code, _, raw = _post(d.base, "/control/learner/save", {"path": "model.npz"})
        assert code == 503, raw
        assert _one_line_error(raw).startswith("learner/save failed: "), raw
        # what the client got wrong is still a 4xx
        code, _, raw = _post(d.base, "/control/learner/learning", {"on": "false"})
        assert code == 400, raw
        _one_line_error(raw)
        code, _, raw = _post(d.base, "/control/cluster/assign", {"assignments": [0, 1, 2]})
        assert code == 400, raw  # 3 label indices for 8 neurons
        code, _, raw = _post(d.base, "/control/cluster/assign", {"assignments": [1e400] * 8})
        assert code == 400, raw  # infinity is no label index
        # still serving, the failures counted and reported
        st = d.status()
        assert st["http"]["server_errors"] == 2, st["http"]
        m = d.metrics()
        assert m[("edgesnn_http_server_errors_total", ())] == 2.0
        code, health = d.health()
        assert code == 503 and any(r.startswith("checkpoint: 1 failed")
                                   for r in health["reasons"]), health
        assert st["state"] == "running"
        assert d.stop() == 0
    assert "Traceback" not in d.stderr()


def test_any_handler_failure_is_a_one_line_503_logged_once(tmp_path, caplog):
    """A control command failing in a way no handler expects (here a component whose
    control raises RuntimeError) is a 503 with one line, counted; its traceback is logged
    for the first failure only."""
    extra = f'\n[http]\nenabled = true\nport = {free_port()}\ntoken_env = "X_UNUSED"\n'
    cfg = pl.loads(activity_pipeline("boom", free_port(), extra=extra),
                   str(tmp_path / "boom.toml"))
    rt = Runtime(cfg)

    def explode(command: str, **kwargs: object) -> object:
        raise RuntimeError("kernel state\nis broken")

    rt.components["r"].control = explode  # type: ignore[method-assign]
    api = HttpApi(rt, cfg.http, token=TOKEN)

    async def go() -> list[tuple[int, bytes]]:
        await api.start()
        out = []
        try:
            async with aiohttp.ClientSession() as s:
                for _ in range(3):
                    async with s.post(f"http://127.0.0.1:{api.port}/control/r/reset",
                                      json={}, headers={"Authorization": f"Bearer {TOKEN}"}
                                      ) as r:
                        out.append((r.status, await r.read()))
                async with s.get(f"http://127.0.0.1:{api.port}/status") as r:
                    out.append((r.status, await r.read()))
                # a GET sends nothing that could be wrong: a TypeError there is ours (503)
                rt.heartbeat_message = lambda: {"bad": sorted([1, "a"])}  # type: ignore
                async with s.get(f"http://127.0.0.1:{api.port}/status") as r:
                    out.append((r.status, await r.read()))
        finally:
            await api.stop()
        return out

    with caplog.at_level(logging.WARNING, logger="edgesnn.http"):
        got = asyncio.run(go())
    for code, raw in got[:3]:
        assert code == 503, raw
        assert _one_line_error(raw) == "internal error: RuntimeError: kernel state is broken"
    assert got[3][0] == 200 and json.loads(got[3][1])["http"]["server_errors"] == 3
    assert got[4][0] == 503 and _one_line_error(got[4][1]).startswith(
        "internal error: TypeError: '<' not supported"), got[4]
    assert api.server_errors == 4
    traced = [r for r in caplog.records if r.exc_info]
    assert len(traced) == 2, [r.getMessage() for r in caplog.records]  # one per route
    assert len([r for r in caplog.records if "/control/" in r.getMessage()]) == 3


def test_several_pipelines_checkpoint_failure_is_503_with_what_was_written(tmp_path,
                                                                           monkeypatch):
    """With several pipelines, POST /checkpoint answers 503 naming the pipeline whose
    checkpoint failed and giving the paths of those written; per pipeline likewise."""
    import contextlib

    from edgesnn.runtime import pipeset
    from edgesnn.runtime.multi import MultiDaemon

    monkeypatch.setenv("EDGESNN_TOKEN", TOKEN)
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a regular file\n")
    http = free_port()
    dirs = {"a": blocker / "state", "b": tmp_path / "b_state"}
    paths = []
    for name, folder in dirs.items():
        p = tmp_path / f"{name}.toml"
        p.write_text(activity_pipeline(name, free_port(), extra=(
            f'\n[checkpoint]\ndir = "{folder}"\ninterval_s = 3600.0\n'
            f"\n[http]\nenabled = true\nport = {http}\n")), encoding="utf-8")
        paths.append(p.resolve())
    base = f"http://127.0.0.1:{http}"
    auth = {"Authorization": f"Bearer {TOKEN}"}

    async def main() -> list[tuple[int, dict]]:
        loaded = [pipeset.load(p, []) for p in paths]
        d = MultiDaemon(paths, [], [], loaded)
        task = asyncio.create_task(d.run())
        out = []
        try:
            for _ in range(600):
                assert not task.done(), f"daemon ended early with {task.result()}"
                if d.slots and all(s.state == "running" for s in d.slots.values()):
                    break
                await asyncio.sleep(0.05)
            async with aiohttp.ClientSession() as s:
                for path in ("/checkpoint", "/pipelines/a/checkpoint",
                             "/pipelines/b/checkpoint"):
                    async with s.post(base + path, headers=auth) as r:
                        out.append((r.status, await r.json()))
                async with s.get(base + "/status") as r:
                    out.append((r.status, await r.json()))
                async with s.get(base + "/metrics") as r:
                    metrics = await r.text()
                assert "edgesnn_http_server_errors_total 2.0" in metrics.splitlines(), metrics
        finally:
            d.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 30)
        return out

    (c1, all_), (c2, one_a), (c3, one_b), (_, status) = asyncio.run(main())
    assert c1 == 503, all_
    assert all_["ok"] is False and all_["paths"]["a"] is None, all_
    assert all_["paths"]["b"].startswith(str(dirs["b"])), all_
    assert all_["error"].startswith("a: checkpoint failed: ") and "\n" not in all_["error"]
    assert c2 == 503 and one_a["error"].startswith("checkpoint failed: "), one_a
    assert c3 == 200 and one_b["ok"] is True, one_b
    assert status["http"]["server_errors"] == 2, status.get("http")


RSTDP = """
[pipeline]
name = "rstdp_args"

[drivers.camera]
type = "synthetic_dvs"
width = 16
height = 16

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

[[networks.learner.projections]]
source = "in"
target = "out"
weight = 0.5
plasticity = {{ rule = "rstdp", tau_elig_ms = 500.0, eta = 0.5 }}

[readouts.choice]
type = "spike_count"
inputs = ["learner"]
labels = ["a", "b"]

[sinks.zmq]
type = "zmq_pub"
inputs = ["choice"]
endpoint = "tcp://127.0.0.1:{pub}"

[http]
enabled = true
port = {http}
"""


def test_reward_over_http_takes_json_numbers_only(tmp_path):
    """`true` is no reward of 1 and "1" no number, and a projection is a name or an index,
    not a boolean (True == 1 would pick projection 1): 400 each, counted as rejected."""
    cfg = pl.loads(RSTDP.format(pub=free_port(), http=free_port()), str(tmp_path / "r.toml"))
    rt = Runtime(cfg)
    api = HttpApi(rt, cfg.http, token=TOKEN)
    bodies = [{"value": True}, {"value": "1"}, {"value": 1, "projection": True},
              {"value": 10**400}, {"value": 0.5}, {"value": -1, "projection": 0}]

    async def go() -> list[tuple[int, bytes]]:
        await api.start()
        out = []
        try:
            async with aiohttp.ClientSession() as s:
                for b in bodies:
                    async with s.post(f"http://127.0.0.1:{api.port}/control/learner/reward",
                                      data=json.dumps(b),
                                      headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                        out.append((r.status, await r.read()))
        finally:
            await api.stop()
        return out

    got = asyncio.run(go())
    assert [c for c, _ in got] == [400, 400, 400, 400, 200, 200], got
    for _, raw in got[:4]:
        _one_line_error(raw)
    st = rt.components["learner"].status()
    assert st["rewards_received"] == 2 and st["rewards_rejected"] == 4, st


def test_routing_and_size_refusals_are_one_json_line(tmp_path):
    """aiohttp's own refusals (unknown path, wrong method, body too large) keep their 4xx
    status and come as {"error": one line} like every other refusal."""
    from edgesnn.runtime.http import MAX_BODY_BYTES

    extra = f'\n[http]\nenabled = true\nport = {free_port()}\n'
    cfg = pl.loads(activity_pipeline("refusals", free_port(), extra=extra),
                   str(tmp_path / "refusals.toml"))
    api = HttpApi(Runtime(cfg), cfg.http, token=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}

    async def go() -> list[tuple[int, str, bytes, str | None]]:
        await api.start()
        base = f"http://127.0.0.1:{api.port}"
        out = []
        try:
            async with aiohttp.ClientSession() as s:
                for method, path, data in (("GET", "/nowhere", None),
                                           ("GET", "/checkpoint", None),
                                           ("POST", "/control/r/reset",
                                            b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}")):
                    async with s.request(method, base + path, data=data, headers=auth) as r:
                        out.append((r.status, r.content_type, await r.read(),
                                    r.headers.get("Allow")))
        finally:
            await api.stop()
        return out

    (c404, t404, b404, _), (c405, t405, b405, allow), (c413, t413, b413, _) = asyncio.run(go())
    assert (c404, c405, c413) == (404, 405, 413)
    assert t404 == t405 == t413 == "application/json"
    assert _one_line_error(b404) == "404: Not Found"
    assert _one_line_error(b405) == "405: Method Not Allowed" and allow == "POST"
    assert "Maximum request body size" in _one_line_error(b413)
    assert api.server_errors == 0
