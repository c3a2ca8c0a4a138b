"""Daemon wiring: the runtime plus the optional HTTP API, start-up and shutdown messages."""

from __future__ import annotations

import logging
import os
import time

from edgesnn.config.pipeline import PipelineConfig
from edgesnn.runtime.runner import Runtime

log = logging.getLogger("edgesnn")


async def run_daemon(cfg: PipelineConfig, runtime: Runtime | None = None) -> int:
    """Run `cfg` with its HTTP API (when enabled) until it ends; returns the exit code."""
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
    sinks = [c.params.get("endpoint") for c in cfg.components if c.kind == "sink"]
    log.info(
        "pipeline %r: %d components, dt %d µs%s (ready in %.2f s)",
        cfg.name, len(cfg.components), cfg.settings["dt_us"],
        "; publishing on " + ", ".join(s for s in sinks if s) if any(sinks) else "",
        time.monotonic() - t0,
    )
    try:
        code = await rt.run()
    finally:
        if http is not None:
            await http.stop()
    if rt.failure is not None:
        cid, exc = rt.failure
        log.error("pipeline %r stopped: component %r failed: %s", cfg.name, cid, exc)
    else:
        log.info("pipeline %r stopped after %.1f s", cfg.name, time.monotonic() - t0)
    return code
