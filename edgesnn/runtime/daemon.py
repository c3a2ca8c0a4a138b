"""Daemon wiring: the runtime plus the optional HTTP API, start-up messages, SIGHUP reload.

SIGHUP re-reads the pipeline file and validates it; when valid, the running pipeline is
drained and stopped and the new one started in the same process (the HTTP API stays up, a
ZeroMQ publisher whose endpoint is unchanged is handed over bound, so subscribers see one
gap-free `seq`). When invalid, every problem is logged and the old pipeline keeps running.

SIGINT, SIGTERM and SIGHUP handlers are installed once and stay for the life of the daemon: a
SIGHUP during a reload is coalesced into one more reload after it, a SIGTERM during a reload
abandons it and stops cleanly (drain, final checkpoint, exit 0).

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


class _Control:
    """The daemon's signal handlers, installed once; they act on the runtime in use."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.rt: Runtime | None = None
        self.stopping = False
        self.hup_again = False
        self.on_hup: Callable[[], None] | None = None
        self.svc: _Service | None = None
        for sig, cb in ((signal.SIGINT, self.stop), (signal.SIGTERM, self.stop),
                        (signal.SIGHUP, self.hup)):
            with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
                loop.add_signal_handler(sig, cb)

    def stop(self) -> None:
        if self.svc is not None and self.svc.reloading and not self.stopping:
            self.svc.reloading = False  # the reload is abandoned: systemd hears STOPPING=1
            self.svc.n.stopping("stop requested during a reload")
        self.stopping = True
        if self.rt is not None:
            self.rt.request_stop()

    def hup(self) -> None:
        if self.on_hup is None:
            log.info("SIGHUP before the pipeline is set up: ignored")
        else:
            self.on_hup()


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
    # handlers for the whole life of the daemon: a stop may arrive while the pipeline is built
    ctl = _Control(asyncio.get_running_loop())
    cold = _announce_compile(cfg, n)
    rt = runtime or Runtime(cfg)
    ctl.rt = rt
    if ctl.stopping:
        rt.request_stop()
    svc = _Service(n, rt, cfg, cold)
    svc.attach(rt, cfg)
    ctl.svc = svc
    svc_task = asyncio.create_task(svc.loop(), name="service")
    try:
        return await _run(cfg, rt, reload, svc, t0, ctl)
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


def _handover(old: Runtime, new: PipelineConfig) -> dict[str, Any]:
    """Sinks of `old` whose bound socket the reloaded pipeline can keep (same type, endpoint)."""
    kept: dict[str, Any] = {}
    before = old.specs
    for c in new.components:
        prev = before.get(c.id)
        comp = old.components.get(c.id)
        if (c.kind == "sink" and prev is not None and prev.cls is c.cls
                and hasattr(comp, "adopt") and hasattr(comp, "keep_open")
                and prev.params.get("endpoint") == c.params.get("endpoint")):
            kept[c.id] = comp
    return kept


async def _release(kept: dict[str, Any]) -> None:
    """Close sockets kept for a reload that did not happen (stopped or failed meanwhile)."""
    for comp in kept.values():
        comp.keep_open = False
        try:
            await comp.stop()
        except Exception as e:
            log.warning("component %r did not stop cleanly: %s", comp.id, e)
    kept.clear()


async def _run(
    cfg: PipelineConfig, rt: Runtime, reload: Reloader | None, svc: _Service, t0: float,
    ctl: _Control,
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
    pending: list[PipelineConfig] = []
    kept: dict[str, Any] = {}

    def on_hup() -> None:
        if reload is None:
            log.warning("SIGHUP: this daemon has no pipeline file to reload")
            return
        if ctl.stopping:
            log.info("SIGHUP while stopping: ignored")
            return
        if svc.reloading:  # coalesced: one more reload once this one runs
            if not ctl.hup_again:
                log.info("SIGHUP during a reload: reloading once more after it")
            ctl.hup_again = True
            return
        try:
            new = reload()
        except ConfigError as e:
            log.error("SIGHUP: new pipeline is invalid, keeping the running one:\n  %s",
                      "\n  ".join(str(p) for p in e.problems))
            return
        except Exception as e:  # a reload must never take the daemon down
            log.error("SIGHUP: cannot read the pipeline, keeping the running one: %s", e)
            return
        log.info("SIGHUP: pipeline valid; draining and reloading")
        cur = svc.rt
        pending.append(new)
        for comp in _handover(cur, new).values():
            comp.keep_open = True
            kept[comp.id] = comp
        svc.reloading = True
        svc.n.reloading()
        cur.request_stop()

    def again(state: str) -> None:
        if state == "running" and ctl.hup_again:
            ctl.hup_again = False
            loop.call_soon(ctl.hup)

    ctl.on_hup = on_hup
    try:
        while True:
            rt.on_state.append(again)
            _announce(cfg, t0)
            periodic = await _attach_learning(rt, ckpt, reward)
            if http is not None and ckpt is not None:
                http.checkpoint = lambda rt=rt: ckpt.save(rt.components)
            code = await rt.run(install_signals=False)
            await _detach_learning(rt, ckpt, periodic)
            if rt.failure is not None:
                cid, exc = rt.failure
                log.error("pipeline %r stopped: component %r failed: %s", cfg.name, cid, exc)
                svc.n.stopping(f"failed: component {cid!r}: {exc}")
                return code
            if not pending or ctl.stopping:
                if pending:
                    log.info("stop requested during the reload: not starting the new pipeline")
                log.info("pipeline %r stopped after %.1f s", cfg.name, time.monotonic() - t0)
                return code
            old, cfg = rt, pending[-1]
            pending.clear()
            t0 = time.monotonic()
            if svc.running_since is not None:
                await asyncio.to_thread(svc.remember)
            components = cfg.build()
            for cid, prev in kept.items():  # same endpoint: keep the bound socket
                components[cid].adopt(prev)  # type: ignore[attr-defined]
            kept.clear()
            rt = Runtime(cfg, components)
            ctl.rt = rt
            if ctl.stopping:
                rt.request_stop()
            if cfg.name == old.name:  # subscribers see one gap-free stream across reloads
                rt.next_seq = old.next_seq
            svc.attach(rt, cfg)
            if http is not None:
                http.attach(rt)
    finally:
        ctl.on_hup = None
        await _release(kept)
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

        reward = RewardServer(settings["endpoint"], settings.get("component", ""),
                              curve_secret_key=settings["curve_secret_key"],
                              curve_allowed_keys=settings["curve_allowed_keys"],
                              base_dir=Path(cfg.path).parent if cfg.path else None)
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
