"""The asyncio pipeline runtime: one task per component, bounded channels between them.

Data flows one way: drivers -> encoders -> networks -> readouts -> sinks. Compute stages
(encoders, networks, readouts) run in worker threads so the event loop never stalls on a
kernel (a pool of the runtime's own, or the one a daemon running several pipelines shares);
each component sees one call at a time. Detections get a gap-free per-pipeline `seq`
here, in one place, before they fan out to the sinks.

Shutdown (SIGINT/SIGTERM or `request_stop()`): drivers stop reading, everything in flight is
drained through the pipeline and published, sockets close, and `run()` returns 0 — within
`drain_timeout_s`, after which whatever is left is cancelled (and counted). A component that
raises stops the pipeline; `run()` reports it by id and returns 1. Nothing hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from edgesnn import wire
from edgesnn.components import (
    Component,
    Driver,
    Encoder,
    Network,
    Readout,
    Sink,
    failure_hint,
)
from edgesnn.config.pipeline import ComponentConfig, PipelineConfig
from edgesnn.events import Detection
from edgesnn.runtime.channel import Channel, Closed
from edgesnn.runtime.ring import ArrivalClock

log = logging.getLogger("edgesnn.runtime")


class Stats:
    """Per-component counters beyond those of its input channel."""

    __slots__ = ("emitted", "items", "busy_s", "errors")

    def __init__(self) -> None:
        self.emitted = 0  # items (batches, rasters, detections, messages) produced
        self.items = 0  # events / spikes / detections carried by them
        self.busy_s = 0.0  # time spent in the component's own work
        self.errors = 0


class Runtime:
    """Runs one validated pipeline until its sources end or it is asked to stop."""

    def __init__(
        self, cfg: PipelineConfig, components: dict[str, Component] | None = None,
        executor: Executor | None = None,
    ):
        self.cfg = cfg
        self.name = cfg.name
        self.components = components if components is not None else cfg.build()
        self.specs: dict[str, ComponentConfig] = cfg.by_id()
        self.inbox: dict[str, Channel[Any]] = {}
        self.outputs: dict[str, list[Channel[Any]]] = {c.id: [] for c in cfg.components}
        for c in cfg.components:
            if c.inputs:
                ch: Channel[Any] = Channel(c.buffer, c.when_full, producers=len(c.inputs),
                                           max_bytes=c.buffer_bytes)
                self.inbox[c.id] = ch
                for i in c.inputs:
                    self.outputs[i].append(ch)
        self.stats = {c.id: Stats() for c in cfg.components}
        #: host arrival time of each driver's recent batches (detection latency in metrics)
        self.arrivals = {c.id: ArrivalClock() for c in cfg.components if c.kind == "driver"}
        self.next_seq = 0
        self.state = "created"
        self.started_at = time.monotonic()
        self.failure: tuple[str, BaseException] | None = None
        self._stop_requested: asyncio.Event | None = None
        self._stop_early = False
        self._tasks: dict[str, asyncio.Task[None]] = {}
        #: worker threads of the compute stages: the daemon's shared pool when several
        #: pipelines run in one process (left running at the end), else one of its own
        self._own_executor = executor is None
        self._executor: Executor = executor or ThreadPoolExecutor(
            max_workers=max(1, self.n_compute), thread_name_prefix="edgesnn-compute"
        )
        self.on_message: list[Callable[[dict[str, Any]], None]] = []
        #: daemon services reporting in heartbeats and /status (checkpoint, reward socket)
        self.extra_status: dict[str, Callable[[], dict[str, Any]]] = {}
        #: called with each new state ("running", "draining", "stopped") and with "stopping"
        #: when a stop is requested
        self.on_state: list[Callable[[str], None]] = []
        #: seconds from process start to the first network step processed (None: not yet)
        self.first_step_s: float | None = None
        self.extra_status["startup"] = lambda: {"first_step_s": self.first_step_s}

    # ------------------------------------------------------------------ public
    @property
    def n_compute(self) -> int:
        """Compute stages (encoders, networks, readouts): each has at most one call in flight."""
        return sum(1 for c in self.components.values() if not isinstance(c, Driver | Sink))

    def _set_state(self, state: str) -> None:
        self.state = state
        self._tell(state)

    def _tell(self, event: str) -> None:
        for cb in self.on_state:
            try:
                cb(event)
            except Exception as e:  # a listener must never take the pipeline down
                log.warning("state listener failed: %s", e)

    def request_stop(self) -> None:
        """Stop reading sensors and drain (safe to call from signal handlers)."""
        if self._stop_requested is None:  # before run(): it stops as soon as it starts
            self._stop_early = True
            return
        if not self._stop_requested.is_set():
            log.info("stopping: draining in-flight data")
            self._stop_requested.set()
            self._tell("stopping")

    def counters(self) -> dict[str, dict[str, Any]]:
        """received / emitted / dropped / queue_depth (and more) per component."""
        out: dict[str, dict[str, Any]] = {}
        for cid, st in self.stats.items():
            ch = self.inbox.get(cid)
            row: dict[str, Any] = {
                "kind": self.specs[cid].kind,
                "received": ch.received if ch else st.emitted,
                "emitted": st.emitted,
                "dropped": ch.dropped if ch else 0,
                "queue_depth": ch.depth if ch else 0,
                "items": st.items,
                "busy_s": round(st.busy_s, 6),
                "errors": st.errors,
            }
            if ch:  # the byte bound of the input channel (edgesnn.runtime.channel)
                row.update(queue_bytes=ch.bytes, max_bytes=ch.max_bytes,
                           high_water_bytes=ch.high_water_bytes)
            try:
                row.update(self.components[cid].status())
            except Exception as e:  # status must never take the daemon down
                row["status_error"] = str(e)
            out[cid] = row
        return out

    def heartbeat_message(self) -> dict[str, Any]:
        return {
            "v": wire.SCHEMA_VERSION,
            "kind": "hb",
            "pipeline": self.name,
            "t_emit_us": wire.now_us(),
            "uptime_s": round(time.monotonic() - self.started_at, 3),
            "last_seq": self.next_seq - 1,
            "state": self.state,
            "counters": self.counters(),
            **{k: f() for k, f in self.extra_status.items()},
        }

    async def run(self, install_signals: bool = True) -> int:
        """Run to completion; 0 on a clean end or stop, 1 when a component failed."""
        loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        self.started_at = time.monotonic()
        if self._stop_early:
            self.request_stop()
        if install_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.request_stop)
        started: list[Component] = []
        try:
            # sinks first so nothing is published into the void, drivers last
            order = sorted(
                self.cfg.components, key=lambda c: ["sink", "readout", "network", "encoder",
                                                    "driver"].index(c.kind)
            )
            for c in order:
                comp = self.components[c.id]
                starting = asyncio.create_task(comp.start())
                stop_wait = asyncio.create_task(self._stop_requested.wait())
                await asyncio.wait({starting, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                stop_wait.cancel()
                if not starting.done():  # stopped while starting (e.g. a first compile)
                    starting.cancel()
                    with contextlib.suppress(BaseException):
                        await starting
                    log.info("stopped while starting component %r", c.id)
                    started.append(comp)  # release what it opened so far (stop() tolerates it)
                    return 0
                try:
                    starting.result()
                except Exception as e:
                    self.failure = (c.id, e)
                    log.error("component %r failed to start: %s%s", c.id, e, failure_hint(e))
                    started.append(comp)  # release what it opened before failing
                    return 1
                started.append(comp)
            self._set_state("running")
            return await self._run_tasks()
        finally:
            self._set_state("stopped")
            await self._final_heartbeat()
            for comp in reversed(started):
                try:
                    await comp.stop()
                except Exception as e:
                    log.warning("component %r did not stop cleanly: %s", comp.id, e)
            if self._own_executor:
                self._executor.shutdown(wait=False, cancel_futures=True)
            if install_signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)

    # ------------------------------------------------------------------ tasks
    async def _run_tasks(self) -> int:
        assert self._stop_requested is not None
        for c in self.cfg.components:
            comp = self.components[c.id]
            if isinstance(comp, Driver):
                coro = self._driver_task(c.id, comp)
            elif isinstance(comp, Sink):
                coro = self._sink_task(c.id, comp)
            else:
                coro = self._compute_task(c.id, comp)
            self._tasks[c.id] = asyncio.create_task(self._guard(c.id, coro), name=c.id)
        hb = asyncio.create_task(self._heartbeat_task(), name="heartbeat")
        stop_wait = asyncio.create_task(self._stop_requested.wait())
        pending = set(self._tasks.values())
        try:
            while pending:
                done, pending = await asyncio.wait(
                    pending | {stop_wait}, return_when=asyncio.FIRST_COMPLETED
                )
                pending.discard(stop_wait)
                if self.failure is not None:
                    break
                if stop_wait in done:
                    await self._drain(pending)
                    break
            if self.failure is not None:
                cid, exc = self.failure
                log.error("component %r failed: %s: %s%s", cid, type(exc).__name__, exc,
                          failure_hint(exc))
                for t in self._tasks.values():
                    t.cancel()
                await asyncio.gather(*self._tasks.values(), return_exceptions=True)
                return 1
            return 0
        finally:
            hb.cancel()
            stop_wait.cancel()
            await asyncio.gather(hb, stop_wait, return_exceptions=True)

    async def _drain(self, pending: set[asyncio.Task[None]]) -> None:
        self._set_state("draining")
        for cid, t in self._tasks.items():
            if self.specs[cid].kind == "driver":
                t.cancel()
        timeout = self.cfg.settings["drain_timeout_s"]
        if pending:
            done, still = await asyncio.wait(pending, timeout=timeout)
            if still:
                names = ", ".join(t.get_name() for t in still)
                log.warning("drain timed out; cancelling %s", names)
                for t in still:
                    t.cancel()
                await asyncio.gather(*still, return_exceptions=True)

    async def _guard(self, cid: str, coro: Any) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.stats[cid].errors += 1
            if self.failure is None:
                self.failure = (cid, e)
            log.debug("component %r raised", cid, exc_info=True)

    async def _forward(self, cid: str, item: Any) -> None:
        for ch in self.outputs[cid]:
            await ch.put(item)

    def _close_outputs(self, cid: str) -> None:
        for ch in self.outputs[cid]:
            ch.close()

    async def _driver_task(self, cid: str, driver: Driver) -> None:
        st = self.stats[cid]
        clock = self.arrivals[cid]
        gen = driver.batches()
        try:
            async for batch in gen:
                clock.note(batch.t_end_us)
                st.emitted += 1
                st.items += len(batch)
                await self._forward(cid, batch)
        finally:
            self._close_outputs(cid)
            aclose = getattr(gen, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.shield(aclose())

    async def _compute_task(self, cid: str, comp: Component) -> None:
        st = self.stats[cid]
        inbox = self.inbox[cid]
        loop = asyncio.get_running_loop()
        if isinstance(comp, Encoder):
            fn, flush = comp.encode, comp.flush
        elif isinstance(comp, Network):
            fn, flush = comp.process, (lambda: None)
        elif isinstance(comp, Readout):
            fn, flush = comp.update, comp.flush
        else:  # pragma: no cover - the loader only builds known kinds
            raise TypeError(f"{cid}: unsupported component {type(comp).__name__}")
        is_readout = isinstance(comp, Readout)
        is_network = isinstance(comp, Network)

        def timed(f: Callable[..., Any], *a: Any) -> Any:
            t = time.perf_counter()
            try:
                return f(*a)
            finally:
                st.busy_s += time.perf_counter() - t

        async def emit(out: Any) -> None:
            if out is None:
                return
            if is_readout:
                for det in out:
                    await self._publish(cid, det)
                return
            st.emitted += 1
            st.items += getattr(out, "n_spikes", 0)
            if is_network and self.first_step_s is None and out.n_steps:
                self._first_step(cid)
            await self._forward(cid, out)

        try:
            while True:
                try:
                    item = await inbox.get()
                except Closed:
                    break
                await emit(await loop.run_in_executor(self._executor, timed, fn, item))
            await emit(await loop.run_in_executor(self._executor, timed, flush))
        finally:
            self._close_outputs(cid)

    def _first_step(self, cid: str) -> None:
        from edgesnn.runtime.startup import process_age_s

        self.first_step_s = round(process_age_s(), 3)
        log.info("first step processed by network %r, %.3f s after process start",
                 cid, self.first_step_s)  # fmt: skip

    async def _publish(self, cid: str, det: Detection) -> None:
        msg = {
            "v": wire.SCHEMA_VERSION,
            "kind": "det",
            "pipeline": self.name,
            "seq": self.next_seq,
            "t_sensor_us": int(det.t_sensor_us),
            "t_emit_us": 0,
            "label": det.label,
            "score": float(det.score),
            "source": cid,
            "extra": det.extra,
        }
        self.next_seq += 1
        st = self.stats[cid]
        st.emitted += 1
        st.items += 1
        for cb in self.on_message:
            cb(msg)
        await self._forward(cid, msg)

    async def _sink_task(self, cid: str, sink: Sink) -> None:
        st = self.stats[cid]
        inbox = self.inbox[cid]
        while True:
            try:
                msg = await inbox.get()
            except Closed:
                return
            out = dict(msg)
            out["t_emit_us"] = wire.now_us()
            await sink.send(out)
            st.emitted += 1

    async def _heartbeat_task(self) -> None:
        period = self.cfg.settings["heartbeat_s"]
        while True:
            await self._send_heartbeat()
            await asyncio.sleep(period)

    async def _send_heartbeat(self) -> None:
        msg = self.heartbeat_message()
        for cid, comp in self.components.items():
            if isinstance(comp, Sink):
                try:
                    await comp.heartbeat(msg)
                except Exception as e:
                    self.stats[cid].errors += 1
                    log.warning("heartbeat on %r failed: %s", cid, e)

    async def _final_heartbeat(self) -> None:
        with contextlib.suppress(Exception):  # sinks already log their failures
            await self._send_heartbeat()
