"""The shipped demo pipeline as a running daemon on free loopback ports, for HTTP tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from conftest import free_port

from edgesnn.commands.run import load_with_overrides
from edgesnn.runtime.daemon import run_daemon
from edgesnn.runtime.runner import Runtime


@contextlib.asynccontextmanager
async def demo_daemon(
    speed: str = "max", extra: tuple[str, ...] = (), name: str | None = None
) -> AsyncIterator[tuple[Runtime, str]]:
    """Run `demo` (HTTP on, free ports, `speed`, `extra` --set overrides) until the block
    ends; yields the runtime and the HTTP base URL once it is running. `name` replaces the
    pipeline's name inside the runtime (labels that need escaping)."""
    http_port = free_port()
    cfg = load_with_overrides("demo", [
        "http.enabled=true", f"http.port={http_port}",
        f"sinks.zmq.endpoint=tcp://127.0.0.1:{free_port()}",
        f"drivers.camera.speed={speed}", *extra,
    ])
    rt = Runtime(cfg)
    if name is not None:
        rt.name = name
    task = asyncio.create_task(run_daemon(cfg, rt))
    base = f"http://127.0.0.1:{http_port}"
    try:
        async with aiohttp.ClientSession() as s:
            for _ in range(1200):  # a cold numba cache compiles for a while
                assert not task.done(), f"daemon ended early with {task.result()}"
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with s.get(f"{base}/health") as r:
                        if (await r.json())["state"] == "running":
                            break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("daemon did not reach the running state")
        yield rt, base
    finally:
        rt.request_stop()
        code = await asyncio.wait_for(task, 30)
    assert code == 0
