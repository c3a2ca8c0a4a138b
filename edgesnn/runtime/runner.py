"""The asyncio pipeline runtime: one task per component, bounded channels between them.

Data flows one way: drivers -> encoders -> networks -> readouts -> sinks. Compute stages
(encoders, networks, readouts) run in worker threads so the event loop never stalls on a
kernel (a pool of the runtime's own, or the one a daemon running several pipelines shares),
but for the short jobs of a chain (below); each component sees one call at a time. Detections
get a gap-free per-pipeline `seq` here, in one place, before they fan out to the sinks.

Latency: an encoder whose spikes go to one network (and on to one readout, each fed by nothing
else, through "block" channels) runs with them as one chain: one worker-thread job per batch
does encode -> process -> update, with no asyncio round trip between the stages (the results are
those of separate stages). Once a chain's jobs are known to be short (a running average under
`inline_job_us`, after `INLINE_AFTER_JOBS` jobs with data in a worker), they run on the event
loop's thread: the hand-off to a worker and back cost more than such a job (measured at 1 M
events/s: p50 1.59-1.74 -> 1.09-1.23 ms, event to subscriber). For live sources (drivers with
`sensor_now_us`), steps close on the host clock: a batch closes steps only up to `lateness_us`
before now (later events stay held, so data out of order by less than that is kept), and when no
data came by `lateness_us` after a step's end, the runtime hands the encoders an empty batch
reaching that step's end, so the step (and the readout window ending with it) is processed;
events for a closed step are counted as late by the encoder. It keeps doing so for `IDLE_STEPS`
steps after the last data, then waits for the next event. Drivers whose batches are complete up
to their end (`Driver.in_order`: `pcm_udp`, `velodyne_udp`) are not held back by `lateness_us`:
every step a batch covers is processed at once. A network fed by a live source runs one step
ahead unless its `lookahead` says otherwise: the output of step k + 1 as soon as step k's input
has run. A live driver hands its next batch to "block" outputs only once their consumers are
done with the last one and wait again: what arrives meanwhile is gathered by the driver and
handed over as one batch (the consumer could not have started on it sooner), so a busy pipeline
runs one job per batch, not one per datagram (measured: the encoder's time per job at 1 M
events/s went from 0.5-0.7 ms, shared with the event loop's per-datagram work, to 0.12 ms).
Replays keep sensor time. `latency_budget_ms` sheds a chain's input (the events of a batch,
keeping its time span; counted in `shed_events` / `shed_batches`, health degraded) when the
batch would finish later than the budget after its oldest data arrived (`t_recv_us`, or its
hand-over where the driver does not say). `trace = true` adds host timestamps (µs) of each stage
to the detections' `extra["trace"]`.

Shutdown (SIGINT/SIGTERM or `request_stop()`): drivers stop reading (a live driver with
`finish()` first hands over what it received), everything in flight is drained through the
pipeline and published, sockets close, and `run()` returns 0 — within
`drain_timeout_s`, after which whatever is left is cancelled (and counted). A component that
raises stops the pipeline; `run()` reports it by id and returns 1. Nothing hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

import numpy as np

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
from edgesnn.events import MAX_GAP_US, Detection, EventBatch
from edgesnn.runtime.channel import Channel, Closed
from edgesnn.runtime.ring import ArrivalClock

log = logging.getLogger("edgesnn.runtime")

#: steps a live source keeps closing on the host clock after its last data
IDLE_STEPS = 100
#: jobs of a branch run in a worker thread before it may run them inline (`inline_job_us`)
INLINE_AFTER_JOBS = 8


def _now_us() -> int:
    return time.time_ns() // 1000


def _merge(*batches: EventBatch) -> EventBatch:
    """Consecutive batches of one live stream as one, their events copied once: the newest
    batch's meta with the oldest trace marks, the newest sequence number."""
    a, last = batches[0], batches[-1]
    for b in batches[1:]:
        if b.stream != a.stream or b.kind != a.kind or b.kind == "samples":
            raise ValueError(f"cannot merge batches of {a.stream!r} and {b.stream!r}")
    full = [b.events for b in batches if len(b)]
    ev = a.events if not full else full[0] if len(full) == 1 else np.concatenate(full)
    meta = dict(last.meta)
    for k in ("t_recv_us", "t_handover_us"):
        v = next((b.meta[k] for b in batches if b.meta.get(k) is not None), None)
        if v is not None:
            meta[k] = v
    seq = next((b.seq for b in reversed(batches) if b.seq >= 0), a.seq)
    return EventBatch(a.stream, seq, min(b.t_start_us for b in batches),
                      max(b.t_end_us for b in batches), ev, a.kind,
                      sum(b.dropped_before for b in batches), meta)


class Stats:
    """Per-component counters beyond those of its input channel."""

    __slots__ = ("emitted", "items", "busy_s", "errors", "shed_events", "shed_batches",
                 "ticks", "jobs", "inline_jobs")

    def __init__(self) -> None:
        self.emitted = 0  # items (batches, rasters, detections, messages) produced
        self.items = 0  # events / spikes / detections carried by them
        self.busy_s = 0.0  # time spent in the component's own work
        self.errors = 0
        self.shed_events = 0  # events shed to keep the latency budget (chain heads)
        self.shed_batches = 0
        self.ticks = 0  # steps closed on the host clock (live drivers)
        self.jobs = 0  # jobs of the branch it heads (chain heads)
        self.inline_jobs = 0  # ... of which ran on the event loop's thread (`inline_job_us`)


class _Reported(Exception):
    """A failure already recorded (`Runtime.failure`) for the component where it happened."""


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
        #: inboxes of sinks whose `send` never waits (`Sink.sends_at_once`): a message for an
        #: idle one is sent by the task that publishes it (`_publish`)
        self._at_once: dict[Channel[Any], tuple[str, Sink]] = {
            self.inbox[c.id]: (c.id, comp) for c in cfg.components
            if isinstance(comp := self.components[c.id], Sink) and comp.sends_at_once
            and c.id in self.inbox}
        #: a live driver's outputs that pace it (see `_until_taken`)
        self._paced = {cid: [ch for ch in chans if ch.when_full == "block"]
                       for cid, chans in self.outputs.items()}  # fmt: skip
        #: encoder id -> the components run with it as one job per batch (see module doc)
        self.chains = self._find_chains()
        self._chained = {m for ch in self.chains.values() for m in ch[1:]}
        st = cfg.settings
        self._trace = bool(st.get("trace", False))
        self._budget_us = int(float(st.get("latency_budget_ms", 0.0)) * 1000)
        self._stamp = self._trace or self._budget_us > 0
        #: drivers that close steps on the host clock (their batches may be coalesced)
        self._live = {cid for cid, comp in self.components.items() if isinstance(comp, Driver)
                      and type(comp).sensor_now_us is not Driver.sensor_now_us}
        # a network fed by a live source runs one step ahead unless its `lookahead` says
        # otherwise (`SNNNetwork.set_lookahead`): its detections come a step sooner
        ups = {c.id: list(c.inputs) for c in cfg.components}
        for cid, comp in self.components.items():
            pick = getattr(comp, "set_lookahead", None)
            if pick is not None:
                pick(self._fed_by_live(cid, ups))
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

    def _fed_by_live(self, cid: str, ups: dict[str, list[str]]) -> bool:
        """Whether a live driver (`self._live`) is upstream of component `cid`."""
        seen, todo = set(), list(ups.get(cid, []))
        while todo:
            c = todo.pop()
            if c in self._live:
                return True
            if c not in seen:
                seen.add(c)
                todo += ups.get(c, [])
        return False

    def _find_chains(self) -> dict[str, list[str]]:
        """Encoder -> [encoder, network..., readout?]: each later member is fed only by the
        one before, which feeds nothing else, through a "block" channel (no drop policy lost)."""
        consumers: dict[str, list[str]] = {c.id: [] for c in self.cfg.components}
        for c in self.cfg.components:
            for i in c.inputs:
                consumers[i].append(c.id)
        chains: dict[str, list[str]] = {}
        for c in self.cfg.components:
            if c.kind != "encoder":
                continue
            chain, cur = [c.id], c.id
            while len(consumers[cur]) == 1:
                nxt = self.specs[consumers[cur][0]]
                if (nxt.kind not in ("network", "readout") or len(nxt.inputs) != 1
                        or nxt.when_full != "block"):
                    break
                chain.append(nxt.id)
                cur = nxt.id
                if nxt.kind == "readout":
                    break
            if len(chain) > 1:
                chains[c.id] = chain
        return chains

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
            if cid in self.chains and self._budget_us:
                row.update(shed_events=st.shed_events, shed_batches=st.shed_batches)
            if cid in self.chains:
                row.update(jobs=st.jobs, inline_jobs=st.inline_jobs)
            if st.ticks:
                row["host_clock_steps"] = st.ticks
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
            if c.id in self._chained:
                continue  # runs inside its chain's job
            if isinstance(comp, Driver):
                coro = self._driver_task(c.id, comp)
            elif c.id in self.chains:
                coro = self._chain_task(self.chains[c.id])
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
                comp = self.components[cid]
                assert isinstance(comp, Driver)
                if not comp.finish():  # live ones hand over what they received, then end
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
        except _Reported:
            pass  # another component's failure, recorded as its own where it happened
        except Exception as e:
            self._failed(cid, e)

    def _failed(self, cid: str, e: Exception) -> None:
        """Count component `cid`'s exception; the first of a run stops the pipeline."""
        self.stats[cid].errors += 1
        if self.failure is None:
            self.failure = (cid, e)
        log.debug("component %r raised", cid, exc_info=True)

    async def _forward(self, cid: str, item: Any) -> None:
        for ch in self.outputs[cid]:
            await ch.put(item)

    async def _until_taken(self, cid: str) -> None:
        """Wait until a consumer behind a live driver's "block" outputs is done with what it
        was given and waits for more: the driver meanwhile gathers what arrives, and the next
        batch holds all of it (one job for it, not one per datagram). The consumer would not
        have started on it sooner; the CPU saved goes to the job. With several such outputs
        the first to be free sets the pace (a slower one merges what queues for it)."""
        chans = self._paced[cid]
        if not chans or any(ch.idle.is_set() for ch in chans):
            return
        if len(chans) == 1:
            await chans[0].idle.wait()
            return
        waits = [asyncio.ensure_future(ch.idle.wait()) for ch in chans]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    def _close_outputs(self, cid: str) -> None:
        for ch in self.outputs[cid]:
            ch.close()

    async def _driver_task(self, cid: str, driver: Driver) -> None:
        st = self.stats[cid]
        clock = self.arrivals[cid]
        gen = driver.batches()
        live = type(driver).sensor_now_us is not Driver.sensor_now_us
        in_order = live and type(driver).in_order
        dt = int(self.cfg.settings["dt_us"])
        late = int(self.cfg.settings.get("lateness_us", 0))
        nxt: asyncio.Future[EventBatch] | None = None
        closed: int | None = None  # sensor time handed over so far (batches and ticks)
        data_end = 0  # end of the last batch with data
        last: EventBatch | None = None
        try:
            if not live:  # replays and sources on their own clock: sensor time only
                async for batch in gen:
                    clock.note(batch.t_end_us)
                    st.emitted += 1
                    st.items += len(batch)
                    if self._stamp:
                        batch.meta = {**batch.meta, "t_handover_us": _now_us()}
                    await self._forward(cid, batch)
                    # the consumers start on it before the driver reads or renders the next one
                    # (synchronous work that would otherwise make this batch wait)
                    await asyncio.sleep(0)
                return
            while True:
                if nxt is None:
                    nxt = asyncio.ensure_future(gen.__anext__())
                timeout = None
                if live and closed is not None and closed < data_end + IDLE_STEPS * dt:
                    now = driver.sensor_now_us()
                    if now is not None:  # the next step's end, plus the lateness allowance
                        timeout = max(0.0, ((closed // dt + 1) * dt + late - now) / 1e6)
                if timeout is None:
                    await asyncio.wait({nxt})
                elif not nxt.done():
                    await asyncio.wait({nxt}, timeout=timeout)
                if nxt.done():
                    try:
                        batch = nxt.result()
                    except StopAsyncIteration:
                        break
                    nxt = None
                    clock.note(batch.t_end_us)
                    st.emitted += 1
                    st.items += len(batch)
                    if self._stamp:
                        batch.meta = {**batch.meta, "t_handover_us": _now_us()}
                    if closed is not None and abs(batch.t_end_us - closed) > MAX_GAP_US:
                        closed, data_end = None, batch.t_end_us  # the sensor clock jumped
                    if len(batch):
                        last = batch
                        data_end = max(data_end, batch.t_end_us)
                    now = None if in_order else driver.sensor_now_us()
                    if now is not None:  # close steps only up to lateness_us ago
                        if closed is None:
                            batch.t_start_us = min(batch.t_start_us, now - late)
                        lo = batch.t_start_us if closed is None else closed
                        batch.t_end_us = max(lo, min(batch.t_end_us, now - late))
                    elif closed is not None:  # complete up to its end: no hold
                        batch.t_end_us = max(closed, batch.t_end_us)
                    closed = batch.t_end_us if closed is None else max(closed, batch.t_end_us)
                    await self._forward(cid, batch)
                    await self._until_taken(cid)
                elif last is not None and closed is not None:
                    now = driver.sensor_now_us()
                    if now is None or driver.holds_data():
                        await asyncio.wait({nxt})  # its batch is on the way
                        continue
                    t_end = max((closed // dt + 1) * dt, (now - late) // dt * dt)
                    t_end = min(t_end, data_end + IDLE_STEPS * dt)
                    if t_end <= closed:
                        continue
                    meta = dict(last.meta)  # t_recv_us: the newest data's arrival
                    if self._stamp:
                        meta["t_handover_us"] = _now_us()
                    tick = EventBatch(cid, -1, closed, t_end, last.events[:0], last.kind, 0,
                                      meta)
                    closed = t_end
                    st.ticks += 1
                    await self._forward(cid, tick)
        finally:
            if nxt is not None and not nxt.done():
                nxt.cancel()
                with contextlib.suppress(BaseException):
                    await nxt
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

    async def _chain_task(self, chain: list[str]) -> None:
        """Encoder -> network(s) -> readout as one worker-thread job per batch."""
        head = chain[0]
        inbox = self.inbox[head]
        loop = asyncio.get_running_loop()
        comps = [self.components[m] for m in chain]
        stats = [self.stats[m] for m in chain]
        chans = [self.inbox[m] for m in chain]
        ends_in_readout = isinstance(comps[-1], Readout)
        tail = chain[-1]
        trace, budget = self._trace, self._budget_us
        est_us = 0.0  # running estimate of one job's time (µs), for the latency budget
        job_us = 0.0  # ... of its compute alone (jobs with data), for `inline_job_us`
        measured = 0  # jobs with data timed so far
        inline_us = float(self.cfg.settings.get("inline_job_us", 0.0))

        def timed_run(item: Any) -> tuple[Any, list[tuple[str, int]], float]:
            t1 = time.perf_counter()
            out, marks = run(item, False)
            return out, marks, (time.perf_counter() - t1) * 1e6

        def run(item: Any, flush: bool) -> tuple[Any, list[tuple[str, int]]]:
            marks: list[tuple[str, int]] = [("start", _now_us())] if trace else []
            out = item
            for i, (m, comp, st) in enumerate(zip(chain, comps, stats, strict=True)):
                if i > 0:
                    if out is None:
                        if not flush or isinstance(comp, Network):
                            continue  # nothing to pass on (a network has no flush)
                    else:
                        chans[i].received += 1
                        chans[i].delivered += 1
                t = time.perf_counter()
                try:
                    if isinstance(comp, Encoder):
                        out = comp.flush() if flush else comp.encode(out)
                    elif isinstance(comp, Network):
                        out = comp.process(out)
                    else:  # the readout ends the chain
                        assert isinstance(comp, Readout)
                        dets = comp.update(out) if out is not None else []
                        if flush:
                            dets = list(dets) + list(comp.flush())
                        out = dets
                finally:
                    st.busy_s += time.perf_counter() - t
                if trace:
                    marks.append((m, _now_us()))
                if out is None or isinstance(comp, Readout):
                    continue
                if i < len(chain) - 1 or not ends_in_readout:
                    st.emitted += 1
                    st.items += getattr(out, "n_spikes", 0)
                if isinstance(comp, Network) and self.first_step_s is None and out.n_steps:
                    self._first_step(m)
            return out, marks

        async def emit(out: Any, marks: list[tuple[str, int]], item: Any) -> None:
            if out is None:
                return
            if not ends_in_readout:
                await self._forward(tail, out)
                return
            for det in out:
                if trace:
                    tr = {k: v for k in ("t_recv_us", "t_handover_us")
                          if (v := (item.meta.get(k) if item is not None else None))}
                    tr.update({f"t_{k}_us": v for k, v in marks})
                    det.extra = {**det.extra, "trace": tr}
                await self._publish(tail, det)

        try:
            while True:
                try:
                    item = await inbox.get()
                except Closed:
                    break
                waiting = [item]
                while (item.stream in self._live and item.kind != "samples"
                       and (nxt := inbox.peek()) is not None and nxt.stream == item.stream
                       and nxt.kind == item.kind):  # fallen behind: one job for what waits
                    waiting.append(await inbox.get())
                if len(waiting) > 1:
                    item = _merge(*waiting)
                if budget and len(item) and item.kind != "samples":
                    # from the arrival of its oldest data: it may have waited in the driver
                    # while the branch was busy (see `_until_taken`)
                    since = item.meta.get("t_recv_us") or item.meta.get("t_handover_us")
                    age = _now_us() - int(since or _now_us())
                    if age + est_us > budget:
                        stats[0].shed_events += len(item)
                        stats[0].shed_batches += 1
                        item = dataclasses.replace(item, events=item.events[:0])
                t = time.perf_counter()
                if measured >= INLINE_AFTER_JOBS and job_us < inline_us:
                    out, marks, took = timed_run(item)  # on this thread: no hand-offs
                    stats[0].inline_jobs += 1
                else:
                    out, marks, took = await loop.run_in_executor(self._executor, timed_run,
                                                                  item)  # fmt: skip
                if len(item):  # jobs with data set the pace (a host-clock step costs little)
                    job_us = 0.8 * job_us + 0.2 * took
                    measured += 1
                stats[0].jobs += 1
                est_us = 0.8 * est_us + 0.2 * (time.perf_counter() - t) * 1e6
                await emit(out, marks, item)
            out, marks = await loop.run_in_executor(self._executor, run, None, True)
            await emit(out, marks, None)
        finally:
            self._close_outputs(tail)

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
        for ch in self.outputs[cid]:
            at_once = self._at_once.get(ch)
            if at_once is not None and not ch.depth and ch.idle.is_set() and not ch.closed:
                await self._send_at_once(ch, *at_once, msg)
            else:
                await ch.put(msg)

    async def _send_at_once(self, ch: Channel[Any], cid: str, sink: Sink,
                            msg: dict[str, Any]) -> None:
        """What `_sink_task` does with a message, done here: the sink waits on an empty
        inbox and its `send` never waits, so order and counters stay those of the queue."""
        ch.received += 1
        ch.delivered += 1
        try:
            await self._deliver(cid, sink, msg)
        except Exception as e:
            self._failed(cid, e)
            raise _Reported from e

    async def _deliver(self, cid: str, sink: Sink, msg: dict[str, Any]) -> None:
        """Hand a message to a sink, stamped with its emission time."""
        out = dict(msg)
        out["t_emit_us"] = wire.now_us()
        await sink.send(out)
        self.stats[cid].emitted += 1

    async def _sink_task(self, cid: str, sink: Sink) -> None:
        inbox = self.inbox[cid]
        while True:
            try:
                msg = await inbox.get()
            except Closed:
                return
            await self._deliver(cid, sink, msg)

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
