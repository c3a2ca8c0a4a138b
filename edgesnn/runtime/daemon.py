"""Daemon wiring: the runtime plus the optional HTTP API, start-up messages, SIGHUP reload.

SIGHUP re-reads the pipeline file and validates it; when valid, the running pipeline is
drained and stopped and the new one started in the same process (sockets are re-bound, the
HTTP API stays up). When invalid, every problem is logged and the old pipeline keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgesnn.config.pipeline import PipelineConfig
from edgesnn.errors import ConfigError
from edgesnn.runtime.runner import Runtime

log = logging.getLogger("edgesnn")

Reloader = Callable[[], PipelineConfig]


async def run_daemon(
    cfg: PipelineConfig, runtime: Runtime | None = None, reload: Reloader | None = None
) -> int:
    """Run `cfg` (and its reloads) with its HTTP API until it ends; returns the exit code."""
    t0 = time.monotonic()
    rt = runtime or Runtime(cfg)
    http = None
    if cfg.http["enabled"]:
        from edgesnn.runtime.http import HttpApi

        http = HttpApi(rt, cfg.http, token=os.environ.get(cfg.http["token_env"]) or None)
        try:
            await http.start()
        except OSError as e:
            log.error("HTTP API cannot listen on %s:%s: %s", cfg.http["host"], cfg.http["port"], e)
            return 1
    ckpt, reward = await _learning_services(cfg)
    loop = asyncio.get_running_loop()
    try:
        while True:
            pending: list[PipelineConfig] = []

            def on_hup(rt: Runtime = rt, pending: list[PipelineConfig] = pending) -> None:
                if reload is None:
                    log.warning("SIGHUP: this daemon has no pipeline file to reload")
                    return
                try:
                    new = reload()
                except ConfigError as e:
                    log.error("SIGHUP: new pipeline is invalid, keeping the running one:\n  %s",
                              "\n  ".join(str(p) for p in e.problems))
                    return
                log.info("SIGHUP: pipeline valid; draining and reloading")
                pending.append(new)
                rt.request_stop()

            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGHUP, on_hup)
            _announce(cfg, t0)
            periodic = await _attach_learning(rt, ckpt, reward)
            if http is not None and ckpt is not None:
                http.checkpoint = lambda rt=rt: ckpt.save(rt.components)
            code = await rt.run()
            await _detach_learning(rt, ckpt, periodic)
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGHUP)
            if rt.failure is not None:
                cid, exc = rt.failure
                log.error("pipeline %r stopped: component %r failed: %s", cfg.name, cid, exc)
                return code
            if not pending:
                log.info("pipeline %r stopped after %.1f s", cfg.name, time.monotonic() - t0)
                return code
            old, cfg = rt, pending[-1]
            t0 = time.monotonic()
            rt = Runtime(cfg)
            if cfg.name == old.name:  # subscribers see one gap-free stream across reloads
                rt.next_seq = old.next_seq
            if http is not None:
                http.attach(rt)
    finally:
        if reward is not None:
            await reward.stop()
        if http is not None:
            await http.stop()


async def _learning_services(cfg: PipelineConfig) -> tuple[Any, Any]:
    """The checkpointer ([checkpoint] dir) and the bound reward socket ([reward] endpoint)."""
    from edgesnn.config.pipeline import REWARD_SCHEMA

    ckpt = None
    if cfg.checkpoint.get("dir"):
        from edgesnn.runtime.checkpoint import Checkpointer

        d = Path(cfg.checkpoint["dir"])
        if not d.is_absolute() and cfg.path:
            d = Path(cfg.path).parent / d
        ckpt = Checkpointer({**cfg.checkpoint, "dir": str(d)}, cfg.name)
    reward = None
    settings = REWARD_SCHEMA.validate(cfg.raw.get("reward", {}), "reward", [])
    if settings.get("endpoint"):
        from edgesnn.learning.reward import RewardServer

        reward = RewardServer(settings["endpoint"], settings.get("component", ""))
        try:
            await reward.start()
        except Exception as e:
            log.error("reward socket cannot bind %s: %s", settings["endpoint"], e)
            reward = None
    return ckpt, reward


async def _attach_learning(rt: Runtime, ckpt: Any, reward: Any) -> asyncio.Task[None] | None:
    """Restore the newest checkpoint into a runtime about to start; start its periodic task."""
    if reward is not None:
        reward.attach(rt.components)
        rt.extra_status["reward"] = reward.status
    if ckpt is None:
        return None
    await asyncio.to_thread(ckpt.restore, rt.components)
    rt.extra_status["checkpoint"] = ckpt.status
    return asyncio.create_task(ckpt.run(rt.components), name="checkpoint")


async def _detach_learning(rt: Runtime, ckpt: Any, periodic: asyncio.Task[None] | None) -> None:
    """Stop the periodic checkpoints and write the final one (after the drain)."""
    if periodic is not None:
        periodic.cancel()
        await asyncio.gather(periodic, return_exceptions=True)
    if ckpt is not None:
        try:
            await asyncio.to_thread(ckpt.save, rt.components)
        except Exception as e:
            log.error("final checkpoint failed: %s", e)


def _announce(cfg: PipelineConfig, t0: float) -> None:
    sinks = [c.params.get("endpoint") for c in cfg.components if c.kind == "sink"]
    log.info(
        "pipeline %r: %d components, dt %d µs%s (built in %.2f s)",
        cfg.name, len(cfg.components), cfg.settings["dt_us"],
        "; publishing on " + ", ".join(s for s in sinks if s) if any(sinks) else "",
        time.monotonic() - t0,
    )
