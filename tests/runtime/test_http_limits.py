"""HTTP API under idle and slow clients (real sockets on loopback): connection limit, header
timeout, and accept() errors logged once per interval instead of flooding the log."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging

import aiohttp
import pytest
from conftest import activity_pipeline, free_port

from edgesnn.config import pipeline as pl
from edgesnn.errors import ConfigError
from edgesnn.runtime.connguard import AcceptErrorLimiter
from edgesnn.runtime.http import HttpApi
from edgesnn.runtime.runner import Runtime

LIMIT = 64
TIMEOUT_S = 0.4


def api_for(tmp_path) -> HttpApi:
    extra = (f"\n[http]\nenabled = true\nport = {free_port()}\nmax_connections = {LIMIT}\n"
             f"header_timeout_s = {TIMEOUT_S}\nkeepalive_timeout_s = {2 * TIMEOUT_S}\n")
    text = activity_pipeline("limits", free_port(), duration_s=1.0, extra=extra)
    cfg = pl.loads(text, str(tmp_path / "limits.toml"))
    assert cfg.http["max_connections"] == LIMIT and cfg.http["header_timeout_s"] == TIMEOUT_S
    return HttpApi(Runtime(cfg), cfg.http, token=None)


async def _health(port: int) -> int:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/health") as r:
        return r.status


async def _eof(reader: asyncio.StreamReader) -> bytes:
    """What the server sends before closing (b"" when it closes without answering)."""
    return await asyncio.wait_for(reader.read(), timeout=30)


def test_idle_connections_are_refused_beyond_the_limit_then_dropped(tmp_path):
    api = api_for(tmp_path)

    async def go():
        await api.start()
        try:
            conns = [await asyncio.open_connection("127.0.0.1", api.port) for _ in range(300)]
            g = api.guard
            for _ in range(1000):  # the server accepts them all, keeps LIMIT, refuses the rest
                if g.open + g.rejected + g.timed_out >= 300:
                    break
                await asyncio.sleep(0.01)
            # (on a slow machine the first ones may time out before the last are accepted)
            assert g.open + g.rejected + g.timed_out == 300
            assert g.open <= LIMIT and g.rejected >= 300 - LIMIT - g.timed_out > 0
            refused = g.rejected
            # a new client gets an answer once the idle ones are cut by the header timeout
            status = None
            for _ in range(300):
                try:
                    status = await _health(api.port)
                    break
                except (aiohttp.ClientConnectionError, aiohttp.ServerDisconnectedError):
                    await asyncio.sleep(0.05)
            assert status == 200
            # every idle socket was closed by the server without an answer: refused at once
            # or cut by the header timeout (which comes before aiohttp's keep-alive one)
            outs = await asyncio.gather(*(_eof(r) for r, _ in conns))
            assert set(outs) == {b""}
            assert g.timed_out == 300 - refused  # (the new client's early tries were refused)
            for _, w in conns:
                w.close()
            for _ in range(200):
                if api.guard.open == 0:
                    break
                await asyncio.sleep(0.01)
            assert api.guard.open == 0
        finally:
            await api.stop()

    asyncio.run(go())


def test_partial_headers_are_cut_and_whole_requests_answered(tmp_path):
    api = api_for(tmp_path)

    async def go():
        await api.start()
        try:
            r, w = await asyncio.open_connection("127.0.0.1", api.port)
            w.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # never finished
            await w.drain()
            assert await _eof(r) == b""
            assert api.guard.timed_out == 1
            w.close()
            # a whole request in time is answered, then the idle keep-alive connection closes
            r, w = await asyncio.open_connection("127.0.0.1", api.port)
            w.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            await w.drain()
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), timeout=30)
            assert head.startswith(b"HTTP/1.1 200")
            await _eof(r)
            assert api.guard.timed_out == 1  # closed by the keep-alive timeout, not ours
            w.close()
            # a second request that stalls half way on a kept-alive connection is cut too
            r, w = await asyncio.open_connection("127.0.0.1", api.port)
            w.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            await w.drain()
            await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), timeout=30)
            w.write(b"GET /health HTTP/1.1\r\nHo")
            await w.drain()
            rest = await _eof(r)
            assert rest.count(b"HTTP/1.1 ") == 0
            w.close()
            assert await _health(api.port) == 200
        finally:
            await api.stop()

    asyncio.run(go())


def test_accept_errors_are_logged_once_per_interval(caplog):
    """The loop reports EMFILE from accept() once per failed turn: one line, with the count."""

    async def go():
        loop = asyncio.get_running_loop()
        seen: list[dict] = []
        loop.set_exception_handler(lambda _loop, ctx: seen.append(ctx))
        lim = AcceptErrorLimiter(interval_s=3600)
        lim.install(loop)
        exc = OSError(errno.EMFILE, "Too many open files")
        with caplog.at_level(logging.ERROR, logger="edgesnn.http"):
            for _ in range(10_000):
                loop.call_exception_handler(
                    {"message": "socket.accept() out of system resource", "exception": exc})
            loop.call_exception_handler({"message": "something else"})
        lim.uninstall()
        loop.call_exception_handler({"message": "after"})
        return lim, seen

    lim, seen = asyncio.run(go())
    lines = [r for r in caplog.records if "accept() failed" in r.getMessage()]
    assert len(lines) == 1 and lim.count == 10_000
    assert "Too many open files" in lines[0].getMessage()
    # other errors still reach the previous handler, which is restored afterwards
    assert [c["message"] for c in seen] == ["something else", "after"]


@pytest.mark.parametrize("bad", ["max_connections = 0", "header_timeout_s = -1"])
def test_limits_are_validated(bad):
    text = activity_pipeline("limits", free_port(), extra=f"\n[http]\n{bad}\n")
    with pytest.raises(ConfigError, match="http."):
        pl.loads(text)


CHILD = r'''
import asyncio, logging, os, resource, sys
sys.path.insert(0, sys.argv[1])
from conftest import activity_pipeline, free_port
from edgesnn.config import pipeline as pl
from edgesnn.runtime.http import HttpApi
from edgesnn.runtime.runner import Runtime
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
cfg = pl.loads(activity_pipeline("x", free_port(), extra=f"\n[http]\nenabled = true\n"
               f"port = {free_port()}\nmax_connections = 5000\nerror_log_interval_s = 3600\n"))
async def go():
    api = HttpApi(Runtime(cfg), cfg.http, None)
    await api.start()
    n = len(os.listdir("/proc/self/fd"))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (n + 20, hard))
    print(api.port, flush=True)
    for _ in range(1000):  # until accept() has failed repeatedly
        if api.accept_errors.count >= 20:
            break
        await asyncio.sleep(0.01)
    print(api.accept_errors.count, flush=True)
    await api.stop()
asyncio.run(go())
'''


def test_real_emfile_is_logged_once(tmp_path):
    """A process out of descriptors (low RLIMIT_NOFILE) under 100 connections: accept() fails
    over and over, the log gets one line."""
    import socket
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("resource")
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd to count open descriptors")
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    p = subprocess.Popen([sys.executable, str(script), str(Path(__file__).parents[1])],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    socks = []
    try:
        port = int(p.stdout.readline())
        for _ in range(100):
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
            socks.append(s)
        out, err = p.communicate(timeout=120)
    finally:
        for s in socks:
            s.close()
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert int(out.split()[-1]) >= 20
    lines = [ln for ln in err.splitlines() if "accept()" in ln]
    assert len(lines) == 1 and "Too many open files" in lines[0], err
    assert "Traceback" not in err
