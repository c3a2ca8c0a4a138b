"""The one HTTP API of a daemon running several pipelines (real daemon in-process, real HTTP)."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from conftest import activity_pipeline, free_port
from prometheus_client.parser import text_string_to_metric_families

from edgesnn.runtime import pipeset
from edgesnn.runtime.multi import MultiDaemon

TOKEN = "multi-secret"


def _files(tmp_path, names: list[str], http: int) -> list:
    paths = []
    for n in names:
        p = tmp_path / f"{n}.toml"
        p.write_text(activity_pipeline(n, free_port(), label=f"l{n}")
                     + f"\n[http]\nenabled = true\nport = {http}\n")
        paths.append(p.resolve())
    return paths


@contextlib.asynccontextmanager
async def _daemon(paths):
    loaded = [pipeset.load(p, []) for p in paths]
    assert all(x.cfg is not None for x in loaded), [x.error for x in loaded]
    d = MultiDaemon(paths, [], [], loaded)
    task = asyncio.create_task(d.run())
    try:
        for _ in range(600):
            assert not task.done(), f"daemon ended early with {task.result()}"
            if d.slots and all(s.state == "running" for s in d.slots.values()):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("pipelines did not reach the running state")
        yield d
    finally:
        d.stop()
        code = await asyncio.wait_for(task, 30)
    assert code == 0
    assert {s.state for s in d.slots.values()} == {"stopped"}


def test_several_pipelines_behind_one_api(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESNN_TOKEN", TOKEN)
    http = free_port()
    paths = _files(tmp_path, ["a", "b"], http)
    base = f"http://127.0.0.1:{http}"
    auth = {"Authorization": f"Bearer {TOKEN}"}

    async def main():
        async with _daemon(paths) as d, aiohttp.ClientSession() as s:
            while any(sl.rt.next_seq < 3 for sl in d.slots.values()):
                await asyncio.sleep(0.05)

            async def get(path):
                async with s.get(base + path) as r:
                    ctype = r.headers.get("Content-Type", "")
                    return r.status, (await r.json() if "json" in ctype else await r.text())

            async def post(path, headers=None):
                async with s.post(base + path, json={}, headers=headers) as r:
                    return r.status, await r.json()

            code, st = await get("/status")
            assert code == 200 and sorted(st["pipelines"]) == ["a", "b"]
            assert "counters" not in st  # several: an overview, not one pipeline's status
            assert st["pipelines"]["a"]["file"] == str(paths[0])
            code, a = await get("/status/a")
            assert code == 200 and a["pipeline"] == "a" and "r" in a["counters"]
            assert all(m["label"] == "la" for m in a["last_detections"])
            assert (await get("/pipelines/b/status"))[1]["pipeline"] == "b"
            code, missing = await get("/status/zz")
            assert code == 404 and "no pipeline 'zz' (running: a, b)" in missing["error"]
            code, h = await get("/health")
            assert code == 200 and h["status"] == "ok" and set(h["pipelines"]) == {"a", "b"}
            assert (await get("/health/b"))[1]["status"] == "ok"
            # control: per pipeline; the single-pipeline form is ambiguous here
            assert (await post("/control/r/reset"))[0] == 401
            code, amb = await post("/control/r/reset", auth)
            assert code == 409 and "/pipelines/<name>/control/<component>/<command>" in \
                amb["error"]
            assert (await post("/pipelines/a/control/r/reset"))[0] == 401
            code, ok = await post("/pipelines/a/control/r/reset", auth)
            assert code == 200 and ok["ok"] is True, ok
            assert (await post("/pipelines/a/control/nope/reset", auth))[0] == 404
            code, ck = await post("/checkpoint", auth)
            assert code == 409 and "no pipeline has checkpoints" in ck["error"]
            # metrics: every pipeline's series in one valid exposition
            code, text = await get("/metrics")
            fams = {f.name: f for f in text_string_to_metric_families(text)}
            dets = {smp.labels["pipeline"] for smp in fams["edgesnn_detections"].samples}
            assert dets == {"a", "b"}
            assert len(fams["edgesnn_build_info"].samples) == 1
            restarts = {smp.labels["pipeline"]: smp.value
                        for smp in fams["edgesnn_pipeline_restarts"].samples}
            assert restarts == {"a": 0.0, "b": 0.0}
            # dashboards: an index of them, each with its own feed
            code, page = await get("/")
            assert code == 200 and 'href="/pipelines/a/"' in page and 'href="/pipelines/b/"' \
                in page
            assert (await get("/ws"))[0] == 409
            async with s.ws_connect(f"{base}/pipelines/b/ws") as ws:
                snap = await ws.receive_json(timeout=5)
            assert snap["pipeline"] == "b"

    asyncio.run(main())


def test_one_pipeline_from_a_folder_keeps_the_single_pipeline_api(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESNN_TOKEN", TOKEN)
    http = free_port()
    paths = _files(tmp_path, ["solo"], http)
    base = f"http://127.0.0.1:{http}"

    async def main():
        async with _daemon(paths), aiohttp.ClientSession() as s:
            async with s.get(f"{base}/status") as r:
                st = await r.json()
            assert st["pipeline"] == "solo" and "r" in st["counters"]
            assert list(st["pipelines"]) == ["solo"]
            async with s.get(f"{base}/health") as r:
                assert r.status == 200 and (await r.json())["status"] == "ok"
            async with s.post(f"{base}/control/r/reset", json={},
                              headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                assert r.status == 200 and (await r.json())["ok"] is True
            async with s.ws_connect(f"{base}/ws") as ws:
                assert (await ws.receive_json(timeout=5))["pipeline"] == "solo"

    asyncio.run(main())


def test_a_pipeline_that_cannot_start_is_retried_and_reported(tmp_path):
    """A start failure (a sink that cannot open its file) is a failure like any other."""
    http = free_port()
    good = _files(tmp_path, ["good"], http)[0]
    bad = tmp_path / "bad.toml"
    bad.write_text(activity_pipeline("bad", free_port(), extra=(
        '\n[sinks.out]\ntype = "file"\ninputs = ["r"]\npath = "/proc/edgesnn-no/x"\n'))
        + f"\n[http]\nenabled = true\nport = {http}\n")
    loaded = [pipeset.load(p, []) for p in (good, bad.resolve())]
    base = f"http://127.0.0.1:{http}"

    async def main():
        d = MultiDaemon([good, bad.resolve()], [], [], loaded, restart_min_s=0.05,
                        restart_max_s=0.2)
        task = asyncio.create_task(d.run())
        try:
            while not d.slots or d.slots[bad.resolve()].restarts < 3:
                assert not task.done()
                await asyncio.sleep(0.05)
            async with aiohttp.ClientSession() as s:
                async with s.get(f"{base}/health/bad") as r:
                    bad_health = (r.status, await r.json())
                async with s.get(f"{base}/health/good") as r:
                    good_health = (r.status, await r.json())
                async with s.get(f"{base}/metrics") as r:
                    text = await r.text()
        finally:
            d.stop()
            assert await asyncio.wait_for(task, 30) == 0
        restarts = {smp.labels["pipeline"]: smp.value for f in
                    text_string_to_metric_families(text) if f.name == "edgesnn_pipeline_restarts"
                    for smp in f.samples}
        assert restarts["good"] == 0 and restarts["bad"] >= 3
        assert good_health[0] == 200
        code, body = bad_health
        assert code == 503 and body["status"] in ("failed", "degraded"), body
        assert any("component 'out'" in r for r in body["reasons"]), body
        assert d.slots[good].rt.failure is None and d.slots[good].restarts == 0

    asyncio.run(main())

