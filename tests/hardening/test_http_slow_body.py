"""Slowloris on the request body (raw sockets on loopback): a POST whose body trickles in is cut
after `[http] body_timeout_s` and counted; whole bodies, pipelined requests and WebSockets are
not."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from conftest import activity_pipeline, free_port

from edgesnn.config import pipeline as pl
from edgesnn.errors import ConfigError
from edgesnn.runtime.http import HttpApi
from edgesnn.runtime.runner import Runtime

TIMEOUT_S = 0.4
TOKEN = "t0k"


def api_for(tmp_path) -> HttpApi:
    extra = (f"\n[http]\nenabled = true\nport = {free_port()}\nbody_timeout_s = {TIMEOUT_S}\n"
             f"header_timeout_s = {TIMEOUT_S}\nkeepalive_timeout_s = 30\n")
    cfg = pl.loads(activity_pipeline("slowbody", free_port(), extra=extra),
                   str(tmp_path / "slowbody.toml"))
    assert cfg.http["body_timeout_s"] == TIMEOUT_S
    return HttpApi(Runtime(cfg), cfg.http, token=TOKEN)


def _post_head(length: int | None, path: str = "/control/r/reset") -> bytes:
    size = "Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}"
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\n{size}\r\n\r\n").encode()


async def _trickle(w: asyncio.StreamWriter, r: asyncio.StreamReader, pieces: list[bytes],
                   gap_s: float) -> tuple[int, bytes]:
    """Send the pieces `gap_s` apart until the server closes; (pieces sent, what it said)."""
    sent = 0
    for p in pieces:
        try:
            w.write(p)
            await w.drain()
        except (ConnectionError, OSError):
            break
        sent += 1
        try:
            got = await asyncio.wait_for(r.read(), gap_s)
        except TimeoutError:
            continue
        return sent, got  # the server closed (read() returns at end of stream)
    return sent, await asyncio.wait_for(r.read(), 30)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_trickling_body_is_cut_and_counted(tmp_path, chunked):
    api = api_for(tmp_path)
    body = b'{"unused": 1}' + b" " * 187  # 200 bytes, one every 0.1 s: 20 s if never cut
    if chunked:
        pieces = [b"%x\r\n%s\r\n" % (1, body[i:i + 1]) for i in range(len(body))] + [b"0\r\n\r\n"]
    else:
        pieces = [body[i:i + 1] for i in range(len(body))]

    async def go():
        await api.start()
        try:
            r, w = await asyncio.open_connection("127.0.0.1", api.port)
            w.write(_post_head(None if chunked else len(body)))
            await w.drain()
            sent, said = await _trickle(w, r, pieces, 0.1)
            w.close()
            # cut long before the body was complete, without an answer, and counted
            assert sent < len(pieces) // 2, sent
            assert b"HTTP/1.1 200" not in said
            assert api.guard.body_timed_out == 1 and api.guard.timed_out == 0
            assert await _status_http(api.port) == {"open": 1, "rejected": 0, "timed_out": 0,
                                                     "body_timed_out": 1, "accept_errors": 0,
                                                     "server_errors": 0}
            async with aiohttp.ClientSession() as s, s.get(
                    f"http://127.0.0.1:{api.port}/metrics") as resp:
                text = await resp.text()
            assert "edgesnn_http_body_timed_out_total 1.0" in text.splitlines(), text
            assert "edgesnn_http_timed_out_total 0.0" in text.splitlines()
        finally:
            await api.stop()

    asyncio.run(go())


async def _response(r: asyncio.StreamReader) -> bytes:
    """One whole response's head (its body, by Content-Length, is read and dropped)."""
    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 30)
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            await asyncio.wait_for(r.readexactly(int(line.split(b":")[1])), 30)
    return head


async def _status_http(port: int) -> dict:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/status") as r:
        return (await r.json())["http"]


def test_whole_bodies_pipelined_requests_and_websockets_are_not_cut(tmp_path):
    api = api_for(tmp_path)

    async def go():
        await api.start()
        try:
            # two POSTs with bodies and a GET, pipelined on one connection, then idle for more
            # than both timeouts: all three answered, nothing counted
            r, w = await asyncio.open_connection("127.0.0.1", api.port)
            body = b"{}"
            w.write(_post_head(len(body)) + body + _post_head(None) + b"2\r\n{}\r\n0\r\n\r\n"
                    + b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            await w.drain()
            heads = [await _response(r) for _ in range(3)]
            assert all(h.startswith(b"HTTP/1.1 200") for h in heads), heads
            await asyncio.sleep(3 * TIMEOUT_S)
            assert api.guard.body_timed_out == 0 and api.guard.timed_out == 0
            w.close()
            # a body sent in two parts inside the timeout is fine too
            r, w = await asyncio.open_connection("127.0.0.1", api.port)
            w.write(_post_head(2) + b"{")
            await w.drain()
            await asyncio.sleep(0.02)
            w.write(b"}")
            await w.drain()
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 30)
            assert head.startswith(b"HTTP/1.1 200"), head
            w.close()
            # a dashboard WebSocket lives on past both timeouts
            async with aiohttp.ClientSession() as s, s.ws_connect(
                    f"http://127.0.0.1:{api.port}/ws") as ws:
                t_end = time.monotonic() + 3 * TIMEOUT_S
                n = 0
                while time.monotonic() < t_end:
                    msg = await asyncio.wait_for(ws.receive(), 30)
                    assert msg.type == aiohttp.WSMsgType.TEXT, msg
                    n += 1
                assert n >= 2 and not ws.closed
            assert api.guard.body_timed_out == 0 and api.guard.timed_out == 0
        finally:
            await api.stop()

    asyncio.run(go())


def test_body_timeout_is_validated():
    text = activity_pipeline("x", free_port(), extra="\n[http]\nbody_timeout_s = 0\n")
    with pytest.raises(ConfigError, match="http.body_timeout_s"):
        pl.loads(text)
