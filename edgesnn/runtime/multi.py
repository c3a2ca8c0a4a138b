"""Several pipelines in one daemon: each isolated, restarted with backoff, reloaded file by file.

`edgesnn run a.toml b.toml …` or `edgesnn run DIR/` (files and checks: edgesnn.runtime.pipeset)
runs every pipeline in this one process: one event loop, one pool of compute threads shared by
all of them (threads are made only while every existing one is busy, and each compute stage has
at most one call in flight, so no pipeline waits for another's thread), and one HTTP API
(edgesnn.runtime.multi_http).

Each pipeline lives in a `Slot`:

- A failure — a component raising, a source crashing, a start that fails — ends only that
  pipeline's runtime. It is logged, shown in /status and makes /health degraded with the reason,
  and the pipeline is started again after an exponential backoff (`restart_min_s`, doubling up
  to `restart_max_s`, ±10 % jitter; back to the start once a run lasted `STABLE_S`). The other
  pipelines run on untouched. A restarted pipeline keeps its ZeroMQ sockets bound (except the
  one of a failed sink) and its `seq` counting, so subscribers stay connected.
- SIGHUP lists the files again and reads them: a file whose bytes changed is validated, alone
  and against the pipelines that stay; when valid, only its pipeline is drained and started in
  the new version (bound sockets with an unchanged endpoint are handed over, as a single
  daemon's reload does); when invalid, the old version runs on and the problems are logged and
  reported (/status `config_error`, /health degraded). A new file in a folder starts, a removed
  one is drained and stopped.
- SIGTERM/SIGINT drain every pipeline at once (final checkpoints included); exit 0. The daemon
  also ends, with 0, once the sources of every pipeline have ended.

Under systemd: READY=1 once every pipeline ran (or failed) once, STATUS=<summary>, WATCHDOG=1
while the event loop runs (failed pipelines are restarted here, not by systemd), RELOADING=1 and
READY=1 around a reload, STOPPING=1 when it drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from edgesnn.backoff import Backoff
from edgesnn.config.pipeline import PipelineConfig
from edgesnn.runtime import kernelcache
from edgesnn.runtime.daemon import (
    RECORD_AFTER_S,
    _announce,
    _announce_compile,
    _attach_learning,
    _detach_learning,
    _handover,
    _learning_services,
    _release,
)
from edgesnn.runtime.notify import Notifier
from edgesnn.runtime.pipeset import Loaded, check_set, http_settings, listing, load
from edgesnn.runtime.runner import Runtime

log = logging.getLogger("edgesnn")

#: a run that lasted this long before failing starts the backoff again from its first delay
STABLE_S = 30.0
#: most compute threads of the shared pool (made on demand; see the module docstring)
MAX_COMPUTE_THREADS = 256


def _problems_text(problems: list[Any]) -> list[str]:
    return [str(p) for p in problems]


class Slot:
    """One pipeline file of the daemon and the runtime currently running it."""

    def __init__(self, daemon: MultiDaemon, loaded: Loaded):
        assert loaded.cfg is not None
        self.d = daemon
        self.path = loaded.path
        self.digest = loaded.digest
        self.cfg: PipelineConfig = loaded.cfg
        self.rt: Runtime | None = None
        #: this pipeline's part of the HTTP API (an HttpApi that is not listening itself)
        self.view: Any = None
        self.state = "starting"
        self.started = time.monotonic()
        self.restarts = 0
        self.reloads = 0
        self.failures = 0
        self.failure: str | None = None
        self.failed_at: float | None = None
        self.restart_at: float | None = None
        self.delays: list[float] = []
        #: problems of a newer version of the file that is not running (invalid or refused)
        self.config_error: list[str] | None = None
        self.bad_digest: str | None = None
        self.pending: PipelineConfig | None = None
        self.stopping = False
        self.wake = asyncio.Event()
        #: set once the current version ran (or failed, or stopped): READY=1 waits for it
        self.ran = asyncio.Event()
        self.running_since: float | None = None
        self.recorded = False
        self.backoff = Backoff(daemon.restart_min_s, daemon.restart_max_s)
        self.task: asyncio.Task[None] | None = None
        self.ckpt: Any = None
        self.reward: Any = None
        self._svc_key: Any = None
        #: where `seq` starts (a file renamed in the folder continues the stream it had)
        self.seq_from = 0

    @property
    def name(self) -> str:
        return self.cfg.name

    # ------------------------------------------------------------------ requests
    def request_stop(self) -> None:
        """Drain and stop for good (SIGTERM, or the file was removed)."""
        self.stopping = True
        self.wake.set()
        if self.rt is not None and self.rt.state != "stopped":
            self.rt.request_stop()

    def reload(self, cfg: PipelineConfig, digest: str) -> None:
        """Drain the running version and start `cfg` (already validated)."""
        self.pending, self.digest = cfg, digest
        self.config_error, self.bad_digest = None, None
        self.ran.clear()
        self.wake.set()
        if self.rt is not None and self.rt.state != "stopped":
            self.rt.request_stop()

    # ------------------------------------------------------------------ status
    def restart_in_s(self) -> float | None:
        if self.restart_at is None:
            return None
        return round(max(0.0, self.restart_at - time.monotonic()), 3)

    def overview(self) -> dict[str, Any]:
        """What /status says of this pipeline besides its own heartbeat."""
        rt = self.rt
        return {
            "pipeline": self.name,
            "file": str(self.path),
            "state": self.state,
            "last_seq": (rt.next_seq - 1) if rt is not None else -1,
            "restarts": self.restarts,
            "reloads": self.reloads,
            "failures": self.failures,
            "last_failure": self.failure,
            "last_failure_age_s": (None if self.failed_at is None
                                   else round(time.monotonic() - self.failed_at, 3)),
            "restart_in_s": self.restart_in_s(),
            "restart_delays_s": [round(d, 3) for d in self.delays[-10:]],
            "config_error": self.config_error,
        }

    def trouble(self, window_s: float) -> list[str]:
        """Why this pipeline is not healthy, beyond its components' own reasons ([]: none)."""
        out = []
        if self.state == "restarting":
            out.append(f"failed ({self.failure}); restart {self.restarts + 1} in "
                       f"{self.restart_in_s() or 0.0:.1f} s")
        elif self.failed_at is not None and time.monotonic() - self.failed_at <= window_s:
            out.append(f"restarted {time.monotonic() - self.failed_at:.0f} s ago after a "
                       f"failure ({self.failure})")
        if self.config_error:
            out.append(f"{self.path.name} is invalid, the previous version runs: "
                       f"{self.config_error[0]}"
                       + (f" (+{len(self.config_error) - 1} more)"
                          if len(self.config_error) > 1 else ""))
        return out

    def _on_state(self, state: str) -> None:
        if state == "running":
            self.running_since = time.monotonic()
            self.state = "running"
            self.ran.set()
        elif state == "stopping":
            self.state = ("stopping" if self.stopping
                          else "reloading" if self.pending is not None else "draining")

    # ------------------------------------------------------------------ the loop
    async def _services(self, cfg: PipelineConfig) -> None:
        """Checkpointer and reward socket for `cfg` (kept across restarts and reloads that do
        not change [checkpoint] or [reward])."""
        key = (repr(sorted(cfg.checkpoint.items())), repr(cfg.raw.get("reward")), cfg.name)
        if key == self._svc_key:
            return
        if self.reward is not None:
            await self.reward.stop()
        self.ckpt, self.reward = await _learning_services(cfg)
        self._svc_key = key

    def _attach_view(self, rt: Runtime) -> None:
        if self.d.http is None:
            return
        if self.view is None:
            self.view = self.d.http.view(rt)
        else:
            self.view.attach(rt)
        ckpt = self.ckpt
        self.view.checkpoint = (None if ckpt is None
                                else (lambda rt=rt: ckpt.save(rt.components)))

    async def run(self) -> None:
        """Run, restart after failures, reload when asked, until stopped or the sources end."""
        prev: Runtime | None = None
        kept: dict[str, Any] = {}
        try:
            while not self.stopping:
                self.wake.clear()
                cfg = self.cfg
                rt: Runtime | None = None
                components: dict[str, Any] = {}
                failure: tuple[str, BaseException] | None = None
                self.running_since = None
                try:
                    await self._services(cfg)
                    t0 = time.monotonic()
                    components = cfg.build()
                    for cid, old in kept.items():  # same endpoint: keep the bound socket
                        components[cid].adopt(old)  # type: ignore[attr-defined]
                    kept.clear()
                    for comp in components.values():  # held bound for a restart; see below
                        if hasattr(comp, "adopt") and hasattr(comp, "keep_open"):
                            comp.keep_open = True
                    rt = Runtime(cfg, components, executor=self.d.executor)
                    if prev is not None and prev.name == rt.name:
                        rt.next_seq = prev.next_seq  # one gap-free stream across restarts
                    elif prev is None:
                        rt.next_seq = self.seq_from
                    rt.on_state.append(self._on_state)
                    self.rt = rt
                    self._attach_view(rt)
                    if self.stopping or self.pending is not None:  # asked while it was built
                        rt.request_stop()
                    _announce(cfg, t0)
                    periodic = await _attach_learning(rt, self.ckpt, self.reward)
                    try:
                        await rt.run(install_signals=False)
                    finally:
                        await _detach_learning(rt, self.ckpt, periodic)
                    failure = rt.failure
                except Exception as e:  # never let one pipeline take the daemon down
                    log.error("pipeline %r: %s: %s", cfg.name, type(e).__name__, e,
                              exc_info=log.isEnabledFor(logging.DEBUG))
                    failure = ("", e)
                if rt is not None:
                    prev = rt
                    nxt = self.pending or cfg
                    keep = {} if self.stopping else _handover(rt, nxt)
                    if failure is not None:
                        keep.pop(failure[0], None)  # a failed sink starts afresh
                    await _release({cid: c for cid, c in rt.components.items()
                                    if getattr(c, "keep_open", False) and cid not in keep})
                    kept = keep
                else:  # it failed before it had a runtime: close what it took over
                    await _release({cid: c for cid, c in components.items()
                                    if getattr(c, "keep_open", False)})
                if self.stopping:
                    break
                if failure is not None:
                    await self._after_failure(failure)
                    if self.stopping:
                        break
                    if self.pending is None:
                        self.restarts += 1
                        log.info("pipeline %r: restart %d", self.name, self.restarts)
                        continue
                if self.pending is not None:
                    self.cfg, self.pending = self.pending, None
                    self.reloads += 1
                    self.recorded = False  # the new version's kernels are recorded once it ran
                    self.state = "starting"
                    log.info("pipeline %r: starting the new version of %s", self.name,
                             self.path.name)
                    continue
                self.state = "finished"
                log.info("pipeline %r: its sources ended", self.name)
                return
        finally:
            await _release(kept)
            if self.reward is not None:
                with contextlib.suppress(Exception):
                    await self.reward.stop()
            if self.state != "finished":
                self.state = "stopped"
            self.restart_at = None
            self.ran.set()

    async def _after_failure(self, failure: tuple[str, BaseException]) -> None:
        """Report the failure, then wait out the backoff (or a stop or a reload)."""
        cid, exc = failure
        now = time.monotonic()
        if self.running_since is not None and now - self.running_since >= STABLE_S:
            self.backoff.reset()
        where = f"component {cid!r}: " if cid else ""
        self.failure = f"{where}{type(exc).__name__}: {exc}"[:500]
        self.failed_at = now
        self.failures += 1
        delay = self.backoff.next_delay()
        self.delays.append(delay)
        del self.delays[:-100]
        self.restart_at = now + delay
        self.state = "restarting"
        self.ran.set()
        log.error("pipeline %r failed: %s; restarting in %.2f s (others keep running)",
                  self.name, self.failure, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), delay)
        self.restart_at = None


class MultiDaemon:
    """The pipelines of one daemon, their HTTP API, signals and systemd notifications."""

    def __init__(
        self, files: list[Path], folders: list[Path], overrides: list[str],
        loaded: list[Loaded], notifier: Notifier | None = None,
        restart_min_s: float = 0.5, restart_max_s: float = 60.0,
    ):
        self.files, self.folders, self.overrides = files, folders, overrides
        self.initial = loaded
        self.n = notifier or Notifier()
        self.restart_min_s, self.restart_max_s = restart_min_s, restart_max_s
        self.executor = ThreadPoolExecutor(MAX_COMPUTE_THREADS,
                                           thread_name_prefix="edgesnn-compute")
        self.slots: dict[Path, Slot] = {}
        #: files found invalid that run no pipeline: path -> (digest, problems)
        self.invalid: dict[Path, tuple[str, list[str]]] = {}
        self.http: Any = None
        self.stopping = False
        self.reloading = False
        self.hup_again = False
        self.started = time.monotonic()
        self.changed = asyncio.Event()
        self._bg: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ signals
    def stop(self) -> None:
        if not self.stopping:
            log.info("stopping: draining %d pipeline%s", len(self.slots),
                     "s" if len(self.slots) != 1 else "")
            self.n.stopping(f"draining {len(self.slots)} pipelines")
        self.stopping = True
        for s in self.slots.values():
            s.request_stop()
        self.changed.set()

    def hup(self) -> None:
        if self.stopping:
            log.info("SIGHUP while stopping: ignored")
            return
        if self.reloading:
            if not self.hup_again:
                log.info("SIGHUP during a reload: reloading once more after it")
            self.hup_again = True
            return
        self.reloading = True
        self._spawn(self._reload(), "reload")

    def _spawn(self, coro: Any, name: str) -> None:
        t = asyncio.create_task(coro, name=name)
        self._bg.add(t)
        t.add_done_callback(self._bg.discard)

    # ------------------------------------------------------------------ slots
    def _start_slot(self, loaded: Loaded) -> Slot:
        slot = Slot(self, loaded)
        self.slots[loaded.path] = slot
        self.invalid.pop(loaded.path, None)
        slot.task = asyncio.create_task(slot.run(), name=f"pipeline:{slot.name}")
        slot.task.add_done_callback(self._ended)
        if self.stopping:
            slot.request_stop()
        return slot

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s ended with an error: %r", task.get_name(), task.exception())
        self.changed.set()

    def summary(self) -> str:
        by: dict[str, list[str]] = {}
        for s in self.slots.values():
            by.setdefault(s.state, []).append(s.name)
        n = sum(s.rt.next_seq for s in self.slots.values() if s.rt is not None)
        parts = [f"{len(v)} {k}" + (f" ({', '.join(v)})" if k != "running" else "")
                 for k, v in sorted(by.items(), key=lambda kv: kv[0] != "running")]
        bad = f"; {len(self.invalid)} invalid file(s)" if self.invalid else ""
        return f"{len(self.slots)} pipelines: {', '.join(parts) or 'none'}; {n} detections{bad}"

    async def _ready_after(self, slots: list[Slot]) -> None:
        """READY=1 once each of `slots` ran (or failed, or stopped) once."""
        await asyncio.gather(*(s.ran.wait() for s in slots))
        if not self.stopping:
            self.n.ready(self.summary())

    async def _service(self) -> None:
        """Watchdog pings, status lines and the warm-start records, until cancelled."""
        period = min(self.n.watchdog_s / 2 if self.n.watchdog_s else 2.0, RECORD_AFTER_S)
        while True:
            self.n.watchdog()
            if not self.reloading and not self.stopping:
                self.n.status(self.summary())
            now = time.monotonic()
            for s in list(self.slots.values()):
                if (s.state == "running" and not s.recorded and s.running_since is not None
                        and now - s.running_since >= RECORD_AFTER_S):
                    s.recorded = True
                    try:
                        await asyncio.to_thread(kernelcache.remember, s.cfg)
                    except Exception as e:  # a record is a convenience, never a failure
                        log.debug("cannot record compiled kernels: %s", e)
            await asyncio.sleep(period)

    # ------------------------------------------------------------------ reload
    async def _reload(self) -> None:
        """SIGHUP: validate what changed, then reload, start and stop only those pipelines."""
        self.n.reloading()
        try:
            await self._apply_changes()
        except Exception as e:  # a reload must never take the daemon down
            log.error("SIGHUP: reload failed, everything keeps running: %s", e)
        finally:
            self.reloading = False
            if not self.stopping:
                self.n.ready(self.summary())
            if self.hup_again and not self.stopping:
                self.hup_again = False
                asyncio.get_running_loop().call_soon(self.hup)

    async def _apply_changes(self) -> None:
        paths = listing(self.files, self.folders)
        changed: list[Loaded] = []
        for p in paths:
            try:
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
            except OSError:
                digest = ""
            slot = self.slots.get(p)
            if slot is not None and digest in (slot.digest, slot.bad_digest):
                continue  # unchanged (a finished pipeline stays finished)
            if slot is None and p in self.invalid and self.invalid[p][0] == digest:
                continue
            changed.append(await asyncio.to_thread(load, p, self.overrides))
        if self.stopping:
            return
        removed = [p for p in self.slots if p not in paths]
        for p in [p for p in self.invalid if p not in paths]:
            del self.invalid[p]
        if not changed and not removed:
            log.info("SIGHUP: no pipeline file changed")
            return
        valid = [c for c in changed if c.cfg is not None]
        # what keeps running: the slots not removed and not replaced by a valid new version
        staying = [s.cfg for p, s in self.slots.items()
                   if p not in removed and s.task is not None and not s.task.done()
                   and all(c.path != p for c in valid)]
        set_problems = check_set([c.cfg for c in valid if c.cfg is not None], staying)
        accepted: list[Loaded] = []
        for c in changed:
            problems = (_problems_text(c.error.problems) if c.error is not None
                        else [str(p) for p in set_problems if p.source == str(c.path)])
            if problems:
                self._refuse(c, problems)
            else:
                accepted.append(c)
                self._http_unchanged(c)
        gone = [self.slots[p] for p in removed]
        for slot in gone:
            log.info("SIGHUP: %s was removed: draining and stopping pipeline %r",
                     slot.path.name, slot.name)
            slot.request_stop()
        # drained first: a new or changed file may take over what a removed one held (the
        # same endpoint under a new file name); wait, never cancel: a SIGTERM meanwhile must
        # not cut a drain short
        draining = [s.task for s in gone if s.task is not None]
        if draining:
            await asyncio.wait(draining)
        seq_of = {s.name: s.rt.next_seq for s in gone if s.rt is not None}
        for slot in gone:
            await self._forget(slot)
        if self.stopping:
            return
        waits: list[Slot] = []
        for c in accepted:
            assert c.cfg is not None
            slot = self.slots.get(c.path)
            if slot is not None and slot.task is not None and not slot.task.done():
                log.info("SIGHUP: %s changed and is valid: reloading pipeline %r", c.path.name,
                         c.cfg.name)
                slot.reload(c.cfg, c.digest)
                waits.append(slot)
            else:
                log.info("SIGHUP: starting pipeline %r from %s", c.cfg.name, c.path.name)
                _announce_compile(c.cfg, self.n)
                if slot is not None:
                    await self._forget(slot)
                new = self._start_slot(c)
                new.seq_from = seq_of.get(new.name, 0)  # a renamed file: its stream goes on
                waits.append(new)
        await asyncio.gather(*(s.ran.wait() for s in waits))

    def _http_unchanged(self, c: Loaded) -> None:
        """Warn when a new version asks for another HTTP API than the one serving (it is
        started with the daemon; the pipeline itself reloads)."""
        assert c.cfg is not None
        want = dict(c.cfg.http) if c.cfg.http.get("enabled") else None
        have = None if self.http is None else self.http.settings
        if want is not None and want != have:
            log.warning("%s: its [http] table differs from the HTTP API this daemon serves "
                        "(%s); the API changes when the daemon restarts", c.path.name,
                        "none" if have is None else f"{have['host']}:{have['port']}")

    def _refuse(self, c: Loaded, problems: list[str]) -> None:
        slot = self.slots.get(c.path)
        running = slot is not None and not slot.task.done()
        log.error("SIGHUP: %s is invalid; %s:\n  %s", c.path.name,
                  f"pipeline {slot.name!r} keeps running its previous version" if running
                  else "not started", "\n  ".join(problems))
        if running:
            assert slot is not None
            slot.config_error, slot.bad_digest = problems, c.digest
        else:
            self.invalid[c.path] = (c.digest, problems)

    async def _forget(self, slot: Slot) -> None:
        if self.slots.get(slot.path) is slot:
            del self.slots[slot.path]
        if self.http is not None and slot.view is not None:
            await self.http.drop_view(slot.view)

    # ------------------------------------------------------------------ main
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig, cb in ((signal.SIGINT, self.stop), (signal.SIGTERM, self.stop),
                        (signal.SIGHUP, self.hup)):
            with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
                loop.add_signal_handler(sig, cb)
        cfgs = [c.cfg for c in self.initial if c.cfg is not None]
        for cfg in cfgs:
            _announce_compile(cfg, self.n)
        settings = http_settings(cfgs)
        svc = asyncio.create_task(self._service(), name="service")
        try:
            if settings is not None:
                from edgesnn.runtime.multi_http import MultiHttpApi

                self.http = MultiHttpApi(self, settings,
                                         token=os.environ.get(settings["token_env"]) or None)
                try:
                    await self.http.start()
                except OSError as e:
                    log.error("HTTP API cannot listen on %s:%s: %s", settings["host"],
                              settings["port"], e)
                    self.http = None
                    return 1
            first = [self._start_slot(c) for c in self.initial if c.cfg is not None]
            log.info("running %d pipelines in one process: %s", len(first),
                     ", ".join(s.name for s in first))
            self._spawn(self._ready_after(first), "ready")
            if self.stopping:
                self.stop()
            while not self.stopping:
                self.changed.clear()
                live = [s for s in self.slots.values() if s.task is not None]
                if live and all(s.task.done() for s in live) and not self.reloading:
                    log.info("every pipeline's sources ended")
                    break
                await self.changed.wait()
            n = len(self.slots)
            while True:  # drain all (a reload under way may still add one)
                tasks = [s.task for s in self.slots.values()
                         if s.task is not None and not s.task.done()]
                if not tasks:
                    break
                for s in self.slots.values():
                    s.request_stop()
                await asyncio.wait(tasks)
            log.info("%d pipelines stopped after %.1f s", n, time.monotonic() - self.started)
            return 0
        finally:
            for t in list(self._bg) + [svc]:
                t.cancel()
            await asyncio.gather(*self._bg, svc, return_exceptions=True)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
                    loop.remove_signal_handler(sig)
            if self.http is not None:
                await self.http.stop()
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.n.close()


async def run_pipelines(
    files: list[Path], folders: list[Path], overrides: list[str], loaded: list[Loaded],
    *, restart_min_s: float = 0.5, restart_max_s: float = 60.0,
    notifier: Notifier | None = None,
) -> int:
    """Run the validated pipelines `loaded` (from `files` and `folders`) until stopped."""
    d = MultiDaemon(files, folders, overrides, loaded, notifier, restart_min_s, restart_max_s)
    return await d.run()
