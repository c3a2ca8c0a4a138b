"""The live dashboard: its WebSocket feed from a running demo daemon, and the page itself
rendered by headless Chromium (skipped when Chromium is not installed)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import aiohttp
import pytest
from _demo_daemon import demo_daemon

LABELS = {"left", "right", "up", "down"}


def test_websocket_pushes_counters_detections_and_output_spikes():
    async def go():
        async with demo_daemon() as (rt, base), aiohttp.ClientSession() as s:
            for path in ("/", "/dashboard"):
                async with s.get(base + path) as r:
                    assert r.status == 200 and "new WebSocket" in await r.text()
            try:  # another site's page may not read the feed
                await s.ws_connect(base + "/ws", headers={"Origin": "http://evil.example"})
                raise AssertionError("a cross-origin WebSocket was accepted")
            except aiohttp.WSServerHandshakeError as e:
                assert e.status == 403
            msgs = []
            async with s.ws_connect(base + "/ws", headers={"Origin": base}) as ws:
                for _ in range(40):
                    msgs.append(json.loads((await ws.receive(timeout=10)).data))
                    if (sum(len(m["detections"]) for m in msgs) >= 2
                            and sum(len(m["rasters"].get("motion", {}).get("t", []))
                                    for m in msgs) >= 2 and len(msgs) >= 2):
                        break
            return msgs, rt.components["motion"].n_outputs

    msgs, n_out = asyncio.run(go())
    last = msgs[-1]
    assert last["pipeline"] == "demo" and last["state"] == "running" and last["failure"] is None
    assert last["uptime_s"] >= msgs[0]["uptime_s"]
    comps = {c["id"]: c for c in last["components"]}
    assert set(comps) == {"camera", "pooled", "motion", "direction", "zmq"}
    assert comps["camera"]["items"] > 0 and comps["motion"]["capacity"] == 16
    assert comps["motion"]["learning"] in (True, False)
    dets = [d for m in msgs for d in m["detections"]]
    assert len(dets) >= 2 and {d["label"] for d in dets} <= LABELS
    seqs = [d["seq"] for d in dets]
    assert seqs == sorted(set(seqs))  # each detection is pushed once, in order
    assert all(0 <= d["score"] <= 1 for d in dets)
    assert any(d["latency_ms"] is not None and d["latency_ms"] >= 0 for d in dets)
    t = [x for m in msgs for x in m["rasters"]["motion"]["t"]]
    i = [x for m in msgs for x in m["rasters"]["motion"]["i"]]
    assert msgs[0]["rasters"]["motion"]["n"] == n_out
    assert msgs[0]["rasters"]["motion"]["rows"] == ["left", "right", "up", "down"]  # readout
    assert len(t) >= 2 and all(0 <= k < n_out for k in i)
    assert t == sorted(t)  # pushes continue where the last one ended


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1280,800"]

# what the page shows, read from the DOM (the raster is a canvas; it carries its counts)
READ_PAGE = """JSON.stringify({
  health: document.getElementById('health').textContent,
  pipeline: document.getElementById('pipeline').textContent,
  rows: Number(document.getElementById('log').dataset.rows),
  labels: [...document.querySelectorAll('#log .det')].map(e => e.dataset.label),
  components: document.querySelectorAll('#comps tbody tr').length,
  points: [...document.querySelectorAll('canvas.raster')].map(c => Number(c.dataset.points)),
})"""


async def _devtools(user_dir: Path, proc: subprocess.Popen) -> str:
    """The page target's DevTools WebSocket URL of a Chromium started with port 0."""
    port_file = user_dir / "DevToolsActivePort"
    for _ in range(1200):  # a loaded machine starts Chromium slowly
        if port_file.exists() and port_file.read_text().strip():
            break
        assert proc.poll() is None, "chromium exited at start"
        await asyncio.sleep(0.05)
    port = int(port_file.read_text().split()[0])
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/json/list") as r:
        targets = await r.json()
    return next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")


def test_chromium_shows_detections_and_the_spike_raster(tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    user_dir = tmp_path / "chromium"

    async def go():
        async with demo_daemon() as (_rt, base):
            proc = subprocess.Popen(  # its own process group: its helpers end with it
                [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={user_dir}",
                 "--remote-debugging-port=0", "about:blank"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                url = await _devtools(user_dir, proc)
                async with aiohttp.ClientSession() as s, \
                        s.ws_connect(url, max_msg_size=0) as cdp:
                    n = 0

                    async def call(method, **params):
                        nonlocal n
                        n += 1
                        await cdp.send_json({"id": n, "method": method, "params": params})
                        while True:
                            m = await cdp.receive_json(timeout=30)
                            if m.get("id") == n:
                                assert "error" not in m, m
                                return m["result"]

                    await call("Page.navigate", url=base + "/dashboard")
                    for _ in range(600):
                        r = await call("Runtime.evaluate", expression=READ_PAGE)
                        page = json.loads(r["result"].get("value") or "{}")
                        if page.get("rows", 0) >= 3 and any(page.get("points", [])):
                            break
                        await asyncio.sleep(0.1)
                    return page
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()

    page = asyncio.run(go())
    assert page["pipeline"] == "demo" and page["health"] == "healthy"
    assert page["components"] == 5
    assert page["rows"] >= 3 and set(page["labels"]) <= LABELS and page["labels"]
    assert len(page["points"]) == 1 and page["points"][0] > 0
