"""Daemon wiring: the runtime plus the optional HTTP API, start-up messages, SIGHUP reload.

SIGHUP re-reads the pipeline file and validates it; when valid, the running pipeline is
drained and stopped and the new one started in the same process (sockets are re-bound, the
HTTP API stays up). When invalid, every problem is logged and the old pipeline keeps running.

Under systemd (`Type=notify`, see `edgesnn service install`) the daemon reports through
`$NOTIFY_SOCKET` (edgesnn.runtime.notify): STATUS while it compiles, READY=1 once the pipeline
runs, WATCHDOG=1 at half of `$WATCHDOG_USEC` while healthy, RELOADING=1 on SIGHUP and
STOPPING=1 when it drains. A cold kernel cache is announced at once, before anything is built.
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
from edgesnn.runtime import kernelcache
from edgesnn.runtime.notify import Notifier
from edgesnn.runtime.runner import Runtime

log = logging.getLogger("edgesnn")

Reloader = Callable[[], PipelineConfig]


#: seconds after a pipeline starts running when the kernels it compiled are recorded
RECORD_AFTER_S = 2.0


class _Service:
    """systemd notifications and the warm-start record for the runtime in use."""

    def __init__(self, notifier: Notifier, rt: Runtime, cfg: PipelineConfig, cold: bool):
        self.n = notifier
        self.rt = rt
        self.cfg = cfg
        self.cold = cold
        self.reloading = False
        self.running_since: float | None = None
        self.recorded = False

    def attach(self, rt: Runtime, cfg: PipelineConfig) -> None:
        self.rt, self.cfg, self.running_since, self.recorded = rt, cfg, None, False
        rt.on_state.append(self.on_state)

    def on_state(self, state: str) -> None:
        if state == "running":
            self.running_since = time.monotonic()
            self.cold = False
            self.reloading = False
            self.n.ready(self.running_status())
        elif state == "stopping":
            if self.reloading:
                self.n.status("reloading: draining the running pipeline")
            else:
                self.n.stopping(f"draining pipeline {self.cfg.name!r}")

    def running_status(self) -> str:
        n = self.rt.next_seq
        return f"running {self.cfg.name!r}: {n} detection{'s' if n != 1 else ''}"

    def remember(self) -> None:
        self.recorded = True
        try:
            kernelcache.remember(self.cfg)
        except Exception as e:  # a record is a convenience, never a failure
            log.debug("cannot record compiled kernels: %s", e)

    async def loop(self) -> None:
        """Watchdog pings, status lines and the warm-start record, until cancelled."""
        period = self.n.watchdog_s / 2 if self.n.watchdog_s else 2.0
        period = min(period, RECORD_AFTER_S)
        while True:
            rt = self.rt
            if rt.failure is None:  # healthy: the loop runs and no component failed
                self.n.watchdog()
            if rt.state == "running":
                self.n.status(self.running_status())
                if (not self.recorded and self.running_since is not None
                        and time.monotonic() - self.running_since >= RECORD_AFTER_S):
                    await asyncio.to_thread(self.remember)
            elif rt.state == "created" and self.cold:
                self.n.extend_timeout(max(60.0, 4 * period))  # a cold compile takes minutes
            await asyncio.sleep(period)


async def run_daemon(
    cfg: PipelineConfig, runtime: Runtime | None = None, reload: Reloader | None = None,
    notifier: Notifier | None = None,
) -> int:
    """Run `cfg` (and its reloads) with its HTTP API until it ends; returns the exit code."""
    t0 = time.monotonic()
    n = notifier or Notifier()
    # a stop may arrive while the pipeline is built (Runtime.run installs its own handlers)
    loop = asyncio.get_running_loop()
    made: list[Runtime] = []
    early: list[bool] = []

    def stop_early() -> None:
        if made:
            made[0].request_stop()
        else:
            early.append(True)

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop_early)
    cold = _announce_compile(cfg, n)
    rt = runtime or Runtime(cfg)
    made.append(rt)
    if early:
        rt.request_stop()
    svc = _Service(n, rt, cfg, cold)
    svc.attach(rt, cfg)
    svc_task = asyncio.create_task(svc.loop(), name="service")
    try:
        return await _run(cfg, rt, reload, svc, t0)
    finally:
        svc_task.cancel()
        await asyncio.gather(svc_task, return_exceptions=True)
        if svc.running_since is not None:  # it ran: record what it compiled for next time
            await asyncio.to_thread(svc.remember)
        n.close()


def _announce_compile(cfg: PipelineConfig, n: Notifier) -> bool:
    """Say at once when this start will compile kernels (cold cache); True when it will."""
    try:
        cold = kernelcache.is_cold(cfg)
    except Exception as e:  # never let the check stop a start
        log.debug("kernel cache check failed: %s", e)
        cold = True
    if cold:
        log.warning("compiling kernels (first start of pipeline %r; cached for later starts, "
                    "`edgesnn warmup` does it ahead)…", cfg.name)
        n.status("compiling kernels (first start)")
    else:
        n.status("starting")
    return cold


async def _run(
    cfg: PipelineConfig, rt: Runtime, reload: Reloader | None, svc: _Service, t0: float
) -> int:
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
                svc.reloading = True
                svc.n.reloading()
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
                svc.n.stopping(f"failed: component {cid!r}: {exc}")
                return code
            if not pending:
                log.info("pipeline %r stopped after %.1f s", cfg.name, time.monotonic() - t0)
                return code
            old, cfg = rt, pending[-1]
            t0 = time.monotonic()
            if svc.running_since is not None:
                await asyncio.to_thread(svc.remember)
            rt = Runtime(cfg)
            if cfg.name == old.name:  # subscribers see one gap-free stream across reloads
                rt.next_seq = old.next_seq
            svc.attach(rt, cfg)
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
