#!/usr/bin/env python3
"""Regenerate examples/images/dashboard.png: run the demo with its HTTP API, open the dashboard
in headless Chromium, wait, capture the page and save it as a small palette PNG.

    .venv/bin/python tools/dashboard_screenshot.py [--out examples/images/dashboard.png] [--wait 30]

Needs `chromium` on PATH (Debian: apt-get install chromium) and Pillow (a matplotlib
dependency: pip install 'edgesnn[plot]').
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-port=0"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def capture(url: str, wait_s: float, width: int, height: int) -> bytes:
    """PNG bytes of `url` after `wait_s` seconds in a headless Chromium of the given size."""
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("chromium not found (Debian: apt-get install chromium)")
    user_dir = Path(tempfile.mkdtemp(prefix="edgesnn-chromium-"))
    proc = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={user_dir}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        port_file = user_dir / "DevToolsActivePort"
        for _ in range(600):
            if port_file.exists() and port_file.read_text().strip():
                break
            await asyncio.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{port}/json/list") as r:
                page = next(t for t in await r.json() if t["type"] == "page")
            async with s.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as cdp:
                n = 0

                async def call(method: str, **params: object) -> dict:
                    nonlocal n
                    n += 1
                    await cdp.send_json({"id": n, "method": method, "params": params})
                    while True:
                        m = await cdp.receive_json(timeout=60)
                        if m.get("id") == n:
                            return m["result"]

                await call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                           deviceScaleFactor=1, mobile=False)
                await call("Page.navigate", url=url)
                await asyncio.sleep(wait_s)
                shot = await call("Page.captureScreenshot", format="png")
                return base64.b64decode(shot["data"])
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
        shutil.rmtree(user_dir, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(REPO / "examples" / "images" / "dashboard.png"))
    ap.add_argument("--wait", type=float, default=30.0, help="seconds the page runs first")
    ap.add_argument("--size", default="1280x610", help="viewport WIDTHxHEIGHT")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    http = free_port()
    daemon = subprocess.Popen(
        [sys.executable, "-m", "edgesnn", "-q", "run", "demo", "--set", "http.enabled=true",
         "--set", f"http.port={http}", "--set",
         f"sinks.zmq.endpoint=tcp://127.0.0.1:{free_port()}"], cwd=REPO)
    try:
        png = asyncio.run(capture(f"http://127.0.0.1:{http}/dashboard", args.wait, width,
                                  height))
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    img = img.quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    img.save(args.out, optimize=True)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
