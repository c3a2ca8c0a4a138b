"""Live latency on real sockets: steps close on the host clock, the lateness allowance, the
latency budget, the one-job chain, SIGTERM drain (edgesnn.runtime.runner; dvs_udp on
loopback, ZeroMQ subscriber). No wall-clock assertions: timeouts only guard against hangs."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import zmq
import zmq.asyncio
from conftest import free_port, in_worker

from edgesnn.benchmarks.latency import GRID, N_LABELS, PROBE_EVENTS, write_pipeline
from edgesnn.config import pipeline as pl
from edgesnn.runtime.health import HealthWatch
from edgesnn.runtime.runner import INLINE_AFTER_JOBS, Runtime

REPO = Path(__file__).resolve().parents[2]


def probe(k: int, t_us: int | None) -> bytes:
    """One AEStream datagram of PROBE_EVENTS ON events in the cell of label p<k> (with the
    timestamp t_us, or none: the driver stamps them on arrival)."""
    fx, fy = 64 // GRID[0], 64 // GRID[1]
    i = np.arange(PROBE_EVENTS)
    w = (((k * fx + i % fx).astype(np.uint32) << 16) | np.uint32(1 << 15)
         | ((i // fx) % fy).astype(np.uint32))
    if t_us is None:
        return (w | np.uint32(0x80000000)).astype("<u4").tobytes()
    rec = np.empty((PROBE_EVENTS, 2), "<u4")
    rec[:, 0], rec[:, 1] = w, t_us & 0xFFFFFFFF
    return rec.tobytes()


def config(tmp_path: Path, **kw: Any) -> tuple[pl.PipelineConfig, int]:
    zport = free_port()
    path = write_pipeline(tmp_path, dt_us=kw.pop("dt_us", 1000), udp_port=0, zmq_port=zport,
                          lateness_us=kw.pop("lateness_us", None),
                          budget_ms=kw.pop("budget_ms", 0.0), batch_us=None, **kw)
    return pl.load(str(path)), zport


async def _run(cfg: pl.PipelineConfig, zport: int, body: Any) -> Any:
    """Start the runtime and a subscriber, run body(rt, send, recv), stop, drain."""
    return await _run_with(cfg, zport, body)


async def _run_with(cfg: pl.PipelineConfig, zport: int, body: Any, executor: Any = None) -> Any:
    """`_run` with the runtime's compute jobs on `executor`."""
    rt = Runtime(cfg if executor is None else in_worker(cfg), executor=executor)
    task = asyncio.create_task(rt.run(install_signals=False))
    ctx = zmq.asyncio.Context()
    sub = ctx.socket(zmq.SUB)
    sub.connect(f"tcp://127.0.0.1:{zport}")
    sub.setsockopt(zmq.SUBSCRIBE, b"det.")
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _ in range(3000):  # started (the first start may compile kernels)
            if rt.state == "running" and rt.components["cam"].bound_port:
                break
            await asyncio.sleep(0.01)
        assert rt.state == "running"
        await asyncio.sleep(0.3)  # the subscription reaches the publisher
        port = rt.components["cam"].bound_port

        def send(data: bytes) -> None:
            tx.sendto(data, ("127.0.0.1", port))

        async def recv(timeout_s: float = 20.0) -> dict[str, Any]:
            frames = await asyncio.wait_for(sub.recv_multipart(), timeout_s)
            return msgpack.unpackb(frames[-1], raw=False)

        return await body(rt, send, recv)
    finally:
        rt.request_stop()
        code = await asyncio.wait_for(task, 30)
        assert code == 0
        tx.close()
        sub.close(0)
        ctx.term()


def test_a_step_closes_on_the_host_clock_without_a_later_event(tmp_path):
    cfg, zport = config(tmp_path, lateness_us=2000)
    assert "pooled" in Runtime(cfg).chains  # encoder -> network -> readout as one job

    async def body(rt, send, recv):
        send(probe(3, None))  # one datagram, then nothing: only the host clock closes steps
        det = await recv()
        return det, rt.counters()

    det, counters = asyncio.run(_run(cfg, zport, body))
    assert det["label"] == "p3"
    assert det["t_sensor_us"] > 0 and det["t_emit_us"] > 0
    tr = det["extra"]["trace"]  # [pipeline] trace = true: a host timestamp per stage
    assert tr["t_recv_us"] <= tr["t_handover_us"] <= tr["t_start_us"] <= tr["t_pooled_us"] \
        <= tr["t_net_us"] <= tr["t_probe_us"] <= det["t_emit_us"]
    assert counters["cam"]["host_clock_steps"] >= 1
    assert counters["pooled"]["late_events"] == 0
    # the chained members still count what passed through them
    assert counters["net"]["received"] == counters["pooled"]["emitted"] >= 1
    assert counters["probe"]["emitted"] >= 1


def test_an_event_late_within_the_allowance_is_kept_beyond_it_counted(tmp_path):
    cfg, zport = config(tmp_path, lateness_us=1_000_000)

    async def body(rt, send, recv):
        now = time.monotonic_ns() // 1000  # the sensor's clock here: any µs clock
        send(probe(1, now))
        send(probe(2, now - 100_000))  # out of order by 100 ms: within the 1 s allowance
        labels = {(await recv())["label"], (await recv())["label"]}
        late_before = rt.counters()["pooled"]["late_events"]
        send(probe(4, time.monotonic_ns() // 1000 - 5_000_000))  # its step closed long ago
        for _ in range(2000):
            if rt.counters()["pooled"]["late_events"]:
                break
            await asyncio.sleep(0.01)
        return labels, late_before, rt.counters()["pooled"]

    labels, late_before, enc = asyncio.run(_run(cfg, zport, body))
    assert labels == {"p1", "p2"}
    assert late_before == 0
    assert enc["late_events"] == PROBE_EVENTS
    assert enc["events_in"] == 3 * PROBE_EVENTS


def test_the_latency_budget_sheds_counts_and_degrades_health(tmp_path):
    cfg, zport = config(tmp_path, lateness_us=1000, budget_ms=0.001)  # 1 µs: always exceeded

    async def body(rt, send, recv):
        watch = HealthWatch(window_s=60)
        assert not any("shed" in r for r in watch.reasons(rt))
        for k in range(5):
            send(probe(k, None))
            await asyncio.sleep(0.02)
        for _ in range(2000):
            if rt.counters()["pooled"].get("shed_events", 0) >= 5 * PROBE_EVENTS:
                break
            await asyncio.sleep(0.01)
        return rt.counters()["pooled"], watch.reasons(rt)

    enc, reasons = asyncio.run(_run(cfg, zport, body))
    assert enc["shed_events"] == 5 * PROBE_EVENTS
    assert enc["shed_batches"] >= 1
    assert any("pooled: shed_events grew" in r for r in reasons), reasons


def test_a_busy_chain_gets_what_arrived_meanwhile_as_one_batch(tmp_path):
    """While the chain works on a batch, dvs_udp stops waking per datagram and gathers what
    arrives (draining the socket on a timer); when the chain waits again, all of it comes as
    one batch: nothing lost, one job instead of one per datagram."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    cfg, zport = config(tmp_path, lateness_us=1000)
    ex = ThreadPoolExecutor(1)
    gate = threading.Event()

    async def body(rt, send, recv):
        send(probe(1, None))
        assert (await recv())["label"] == "p1"  # running, kernels loaded
        cam, enc = rt.components["cam"], rt.counters
        before = rt.stats["cam"].emitted
        ex.submit(gate.wait, 30)  # the chain's next job waits for the gate
        send(probe(2, None))  # handed over and taken: the chain is busy with it
        for _ in range(500):
            if cam._paused is not None and rt.stats["cam"].emitted > before:
                break
            await asyncio.sleep(0.002)
        for k in range(99):
            send(probe(k % N_LABELS, None))
        await asyncio.sleep(0.05)  # several timer drains
        gathered = (cam._n_pending, cam._paused is not None)
        gate.set()
        for _ in range(2000):
            if enc()["pooled"]["events_in"] >= 101 * PROBE_EVENTS:
                break
            await asyncio.sleep(0.005)
        return gathered, rt.stats["cam"].emitted - before, enc()

    try:
        gathered, batches, counters = asyncio.run(
            _run_with(cfg, zport, body, executor=ex))
    finally:
        gate.set()
        ex.shutdown()
    assert gathered == (99 * PROBE_EVENTS, True)  # read by the timer, while paused
    assert batches == 2  # probe 2, then the 99 as one batch
    assert counters["pooled"]["events_in"] == 101 * PROBE_EVENTS
    assert counters["cam"]["dropped"] == 0


def test_a_stop_hands_over_what_the_live_driver_received(tmp_path):
    """A stop while the branch is busy: dvs_udp reads what waits on its socket, hands it over
    with what it gathered, and the branch drains all of it before the runtime returns 0."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    cfg, zport = config(tmp_path, lateness_us=1000)
    ex = ThreadPoolExecutor(1)
    gate = threading.Event()

    async def body(rt, send, recv):
        send(probe(1, None))
        assert (await recv())["label"] == "p1"
        ex.submit(gate.wait, 30)
        handed = rt.stats["cam"].emitted
        send(probe(2, None))
        for _ in range(500):  # handed over: the driver waits for the branch
            if rt.components["cam"]._paused is not None and rt.stats["cam"].emitted > handed:
                break
            await asyncio.sleep(0.002)
        for k in range(40):
            send(probe(k % N_LABELS, None))
        rt.request_stop()  # before the timer read them all: finish() reads the socket
        await asyncio.sleep(0.02)
        gate.set()
        return rt

    try:
        rt = asyncio.run(_run_with(cfg, zport, body, executor=ex))  # returns 0 (asserted)
    finally:
        gate.set()
        ex.shutdown()
    c = rt.counters()
    assert c["pooled"]["events_in"] == 42 * PROBE_EVENTS
    assert c["pooled"]["late_events"] == 0
    assert c["cam"]["dropped"] == 0


def test_a_live_driver_is_paced_by_its_first_free_branch(tmp_path):
    """With two branches behind one live driver, the next batch goes out as soon as either is
    done and waits again: a slow branch does not hold back a fast one."""
    path = write_pipeline(tmp_path, dt_us=1000, udp_port=0, zmq_port=free_port(),
                          lateness_us=None, budget_ms=0.0, batch_us=None)
    toml = path.read_text(encoding="utf-8")
    branch = toml[toml.index("[encoders.pooled]") : toml.index("[sinks.zmq]")]
    for a, b in (("pooled", "pooled2"), ("net]", "net2]"), ('["net"]', '["net2"]'),
                 ("probe]", "probe2]")):  # fmt: skip
        branch = branch.replace(a, b)
    toml = toml.replace("[sinks.zmq]", branch + "[sinks.zmq]")
    toml = toml.replace('inputs = ["probe"]', 'inputs = ["probe", "probe2"]')
    path.write_text(toml, encoding="utf-8")
    rt = Runtime(pl.load(str(path)))
    assert set(rt.chains) == {"pooled", "pooled2"}

    async def go() -> list[bool]:
        a, b = rt.inbox["pooled"], rt.inbox["pooled2"]
        assert rt._paced["cam"] == [a, b]
        seen = []
        for ch in (a, b):  # each got a batch and works on it
            await ch.put(1)
            await ch.get()
        waiting = asyncio.ensure_future(rt._until_taken("cam"))
        await asyncio.sleep(0.01)
        seen.append(waiting.done())  # both busy: the driver waits
        more = asyncio.ensure_future(b.get())  # the second branch is done and waits
        await asyncio.sleep(0.01)
        seen.append(waiting.done())
        seen.append(a.idle.is_set())  # the first one is still busy
        await asyncio.wait_for(rt._until_taken("cam"), 1)  # free at once now
        more.cancel()
        return seen

    assert asyncio.run(go()) == [False, True, False]


def test_the_budget_counts_the_time_data_waited_in_the_driver(tmp_path):
    """Data gathered by dvs_udp while the branch was busy is as old as its arrival, not its
    hand-over: past the budget it is shed (counted) when the branch is free again."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    # the held job's 0.3 s enters the job-time estimate as a fifth: 60 ms, under the budget
    cfg, zport = config(tmp_path, lateness_us=1000, budget_ms=100.0)
    ex = ThreadPoolExecutor(1)
    gate = threading.Event()

    async def body(rt, send, recv):
        send(probe(1, None))
        assert (await recv())["label"] == "p1"  # well within the budget: not shed
        shed_before = rt.counters()["pooled"].get("shed_events", 0)
        ex.submit(gate.wait, 30)
        handed = rt.stats["cam"].emitted
        send(probe(2, None))  # taken at once; its job waits behind the gate
        for _ in range(500):  # handed over: the driver waits for the branch
            if rt.components["cam"]._paused is not None and rt.stats["cam"].emitted > handed:
                break
            await asyncio.sleep(0.002)
        for k in range(10):
            send(probe(k % N_LABELS, None))  # gathered by the driver meanwhile
        await asyncio.sleep(0.3)  # far past the 100 ms budget
        gate.set()
        for _ in range(2000):
            c = rt.counters()["pooled"]
            if c["events_in"] + c.get("shed_events", 0) - shed_before >= 12 * PROBE_EVENTS:
                break
            await asyncio.sleep(0.005)
        return shed_before, rt.counters()["pooled"]

    try:
        shed_before, enc = asyncio.run(_run_with(cfg, zport, body, executor=ex))
    finally:
        gate.set()
        ex.shutdown()
    assert shed_before == 0
    assert enc["shed_events"] >= 10 * PROBE_EVENTS  # the ten that waited in the driver


def test_chained_and_separate_stages_give_the_same_detections(tmp_path):
    """The demo replayed as fast as possible: one job per batch in a worker thread, the same
    jobs on the event loop's thread (`inline_job_us`), or each stage on its own (a drop policy
    on the network's channel keeps it out of the chain)."""
    outs = []
    separate = 'when_full = "drop_oldest"\nbuffer = 100000'
    jobs = {}
    for name, extra, inline in (("chained", "", 0), ("inline", "", 1e9),
                                ("separate", separate, 0)):  # fmt: skip
        toml = (REPO / "pipelines" / "demo.toml").read_text(encoding="utf-8")
        toml = toml.replace("[pipeline]\n", f"[pipeline]\ninline_job_us = {inline}\n", 1)
        toml = toml.replace("duration_s = 0.0", "duration_s = 1.0")
        toml = toml.replace('speed = "realtime"', 'speed = "max"')
        toml = toml.replace('builder = "motion_direction"',
                            f'builder = "motion_direction"\n{extra}')
        toml = toml.replace('type = "zmq_pub"', 'type = "file"')
        toml = toml.replace('endpoint = "tcp://127.0.0.1:5556"', f'path = "{name}.jsonl"')
        p = tmp_path / f"{name}.toml"
        p.write_text(toml, encoding="utf-8")
        rt = Runtime(pl.load(str(p)))
        assert ("pooled" in rt.chains) == (name != "separate")
        assert asyncio.run(rt.run(install_signals=False)) == 0
        c = rt.counters()
        assert c["motion"]["dropped"] == 0
        if name != "separate":
            jobs[name] = (c["pooled"]["jobs"], c["pooled"]["inline_jobs"])
        outs.append([(d["label"], d["t_sensor_us"], d["score"])
                     for d in _lines(tmp_path / f"{name}.jsonl")])
    assert outs[0] == outs[1] == outs[2] and len(outs[0]) > 0
    assert jobs["chained"][1] == 0  # every job in a worker
    n = jobs["inline"][0]  # all but the first 8 on the event loop's thread
    assert n == jobs["chained"][0] > INLINE_AFTER_JOBS and jobs["inline"][1] == n - INLINE_AFTER_JOBS


def _lines(path: Path) -> list[dict[str, Any]]:
    import json

    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]


def test_sigterm_drains_a_live_pipeline_and_exits_0(tmp_path):
    zport = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        udp = s.getsockname()[1]
    path = write_pipeline(tmp_path, dt_us=1000, udp_port=udp, zmq_port=zport, lateness_us=1000,
                          budget_ms=0.0, batch_us=None)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "edgesnn", "run", str(path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.connect(f"tcp://127.0.0.1:{zport}")
    sub.setsockopt(zmq.SUBSCRIBE, b"det.")
    sub.setsockopt(zmq.RCVTIMEO, 500)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "listening on" in line:
                break
        # keep reading stderr so the daemon never blocks on a full pipe
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        got = None
        for k in range(60):  # until the subscription is through and a detection comes back
            tx.sendto(probe(k % N_LABELS, None), ("127.0.0.1", udp))
            try:
                got = msgpack.unpackb(sub.recv_multipart()[-1], raw=False)
                break
            except zmq.Again:
                continue
        assert got is not None and got["label"].startswith("p")
        tx.sendto(probe(5, None), ("127.0.0.1", udp))  # in flight when SIGTERM comes
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        tx.close()
        sub.close(0)
        ctx.term()


def test_sensor_clock_offset_follows_the_freshest_datagram():
    """dvs_udp maps the host clock to the sensor's: the largest (event - arrival) seen."""
    from edgesnn_drivers.dvs.udp import DVSUdpDriver

    from edgesnn.components import BuildContext

    params = DVSUdpDriver.schema.validate({"port": 0, "sensor": [64, 64]}, "d", [])
    drv = DVSUdpDriver("cam", params, BuildContext())
    assert drv.sensor_now_us() is None
    t_host = drv._now_us()
    drv._on_datagram(probe(0, 5_000_000 + t_host - 300), t_host)  # 300 µs on its way
    drv._on_datagram(probe(0, 5_000_000 + t_host - 900), t_host)  # a slower one
    assert drv.holds_data()
    before = drv._now_us()
    now = drv.sensor_now_us()
    after = drv._now_us()
    assert now is not None
    assert before + 5_000_000 - 300 <= now <= after + 5_000_000 - 300


def test_dvs_pool_empty_batches_take_the_short_path_with_the_same_rasters():
    """Steps closed on the host clock come as empty batches; dvs_pool answers them without
    binning, with the rasters binning gives."""
    from edgesnn.components import BuildContext
    from edgesnn.encoders.dvs import DVSPoolEncoder
    from edgesnn.events import DVS_EVENT, EventBatch

    params = DVSPoolEncoder.schema.validate({"sensor": [64, 64], "grid": [16, 8]}, "e", [])
    fast, slow = (DVSPoolEncoder("e", params, BuildContext(dt_us=100)) for _ in range(2))
    rng = np.random.default_rng(3)
    t, seq = 1_000_000, 0
    for i in range(300):
        n = 0 if i % 3 else int(rng.integers(0, 40))
        ev = np.zeros(n, DVS_EVENT)
        ev["t"] = t + np.sort(rng.integers(0, 250, n))
        ev["x"], ev["y"] = rng.integers(0, 64, n), rng.integers(0, 64, n)
        end = t + int(rng.integers(1, 400)) + (50_000_000 if i == 200 else 0)  # and a jump
        b = EventBatch("cam", seq, t, end, ev, "dvs", 0, {"width": 64, "height": 64})
        a = fast.encode(b)
        if n or len(slow.hold.t) or slow.clock.t0_us is None:
            r = slow.encode(b)
        else:  # the binning path, by hand
            tt, cc, t0, k = slow.hold.add(b.t_start_us, b.t_end_us, np.zeros(0, np.int64),
                                          np.zeros(0, np.int32))
            r = slow._emit(tt, cc, t0, k, 0)
        assert (a is None) == (r is None)
        if a is not None:
            assert (a.t0_us, a.n_steps, a.seq) == (r.t0_us, r.n_steps, r.seq)
            assert np.array_equal(a.ptr, r.ptr) and np.array_equal(a.idx, r.idx)
            assert a.ptr.dtype == r.ptr.dtype and a.idx.dtype == r.idx.dtype
        t, seq = end, seq + 1
    assert fast.status() == slow.status()


def test_batches_waiting_for_a_busy_chain_are_merged_into_one():
    from edgesnn.events import DVS_EVENT, EventBatch
    from edgesnn.runtime.runner import _merge

    ev = np.zeros(5, DVS_EVENT)
    ev["t"] = np.arange(5) + 100
    a = EventBatch("cam", 3, 100, 105, ev, "dvs", 2, {"t_recv_us": 1, "t_handover_us": 2})
    tick = EventBatch("cam", -1, 105, 200, ev[:0], "dvs", 0, {"t_handover_us": 9})
    b = EventBatch("cam", 4, 105, 260, ev.copy(), "dvs", 1, {"t_recv_us": 7, "t_handover_us": 8})
    m = _merge(_merge(a, tick), b)
    assert (m.seq, m.t_start_us, m.t_end_us, m.dropped_before) == (4, 100, 260, 3)
    assert len(m) == 10 and m.meta["t_recv_us"] == 1 and m.meta["t_handover_us"] == 2


def test_dvs_udp_bulk_reading_and_decoding_equals_one_datagram_at_a_time():
    """The datagrams waiting on a real socket, read in batches (recvmmsg, and one recv_into
    each) and decoded in one call per batch: every datagram whole and in order, and the same
    events, counters and unwrapping state as decoding them one by one (torn tails, out of
    range, wraps, an empty and a largest datagram)."""
    from edgesnn_drivers.dvs.udp import DatagramDecoder
    from edgesnn_drivers.udpsock import DatagramReader, bind_udp

    rng = np.random.default_rng(5)
    datas = []
    t = 0xFFFF_0000
    for i in range(200):
        n = int(rng.integers(0, 30))
        stamped = rng.random(n) < 0.7
        words: list[int] = []
        for s in stamped:
            w = (int(rng.integers(0, 80)) << 16) | (int(rng.integers(0, 2)) << 15) \
                | int(rng.integers(0, 70))
            if s:
                t = (t + int(rng.integers(0, 5000))) & 0xFFFFFFFF
                words += [w, t]
            else:
                words.append(w | 0x80000000)
        d = np.asarray(words, "<u4").tobytes()
        if i % 17 == 0 and len(d) >= 4:
            d = d[:-4]  # torn: may end in the middle of an event
        if i % 23 == 0:
            d += b"\x01\x02"  # not a whole word
        datas.append(d)
    datas += [b"", b"\x01", os.urandom(65507)]  # empty, a torn word, the largest payload
    for use_recvmmsg in (True, False):  # recvmmsg(2), and one recv_into each
        one, many = DatagramDecoder(64, 64), DatagramDecoder(64, 64)
        ref = [one.decode(d, 777) for d in datas]
        rx, _ = bind_udp(("127.0.0.1", 0), socket.AF_INET, 8 << 20)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            reader = DatagramReader(rx, batch=16, use_recvmmsg=use_recvmmsg)
            assert reader.batched == (use_recvmmsg and sys.platform.startswith("linux"))
            got, ends, raw = [], [], []
            for c in range(0, len(datas), 40):  # 40 at a time: no receive buffer overflows
                for d in datas[c : c + 40]:
                    tx.sendto(d, rx.getsockname())
                while True:
                    n, error = reader.read()
                    assert not error
                    raw += reader.datagrams(n)
                    if n:
                        ev, e = many.decode_slots(reader.words, reader.starts[:n],
                                                  reader.sizes[:n], 777)
                        ends += list(e + sum(len(g) for g in got))
                        got.append(ev)
                    if n < reader.batch:
                        break
        finally:
            rx.close()
            tx.close()
        assert raw == datas  # every datagram, whole and in order
        assert np.array_equal(np.concatenate(ref), np.concatenate(got))
        assert ends == list(np.cumsum([len(r) for r in ref]))
        assert (one.malformed, one.datagrams) == (many.malformed, many.datagrams)
        assert np.array_equal(one.counts, many.counts) and np.array_equal(one.state, many.state)


def test_the_binning_kernel_equals_its_numpy_reference():
    """dvs_pool bins with a numba kernel; binning.steps_to_csr is its slow, obvious twin."""
    from edgesnn.encoders._binning_kernels import steps_to_csr_kernel
    from edgesnn.encoders.binning import steps_to_csr

    rng = np.random.default_rng(11)
    for _ in range(200):
        n, ns = int(rng.integers(0, 2000)), int(rng.integers(1, 40))
        nc, mc = int(rng.integers(1, 300)), int(rng.integers(0, 4))
        s = rng.integers(0, ns, n).astype(np.int64)
        c = rng.integers(0, nc, n).astype(np.int32)
        ref, got = steps_to_csr(s, c, ns, nc, mc), steps_to_csr_kernel(s, c, ns, nc, mc)
        assert np.array_equal(ref[0], got[0]) and np.array_equal(ref[1], got[1])
        assert (ref[0].dtype, ref[1].dtype) == (got[0].dtype, got[1].dtype)


def test_networks_fed_by_a_live_source_run_one_step_ahead(tmp_path: Path) -> None:
    """`lookahead` unset: on for a network fed by a live driver (here dvs_udp), off for a
    source on its own clock (the synthetic camera); set, it is what it says."""
    pipe = write_pipeline(tmp_path, dt_us=1000, udp_port=0, zmq_port=free_port(),
                          lateness_us=None, budget_ms=0.0, batch_us=None)
    assert Runtime(pl.load(str(pipe))).components["net"].lookahead is True
    text = pipe.read_text(encoding="utf-8")
    off = tmp_path / "off.toml"
    off.write_text(text.replace('model = "model.npz"', 'model = "model.npz"\nlookahead = false'),
                   encoding="utf-8")
    assert Runtime(pl.load(str(off))).components["net"].lookahead is False
    own_clock = tmp_path / "synthetic.toml"
    head, tail = text.split("[encoders.pooled]")
    own_clock.write_text(head.split("[drivers.cam]")[0] + '[drivers.cam]\ntype = "synthetic_dvs"'
                         '\nwidth = 64\nheight = 64\n\n[encoders.pooled]' + tail,
                         encoding="utf-8")
    assert Runtime(pl.load(str(own_clock))).components["net"].lookahead is False


def test_bench_latency_floor_measures_the_platform_and_adds_it_up() -> None:
    """`edgesnn bench latency --floor`: real ZeroMQ messages reach the subscriber process, the
    event loop's timer is timed, and the no-processing figures add the step wait, lateness,
    a wake-up and a hop (so they exceed the mean wait and the hop's median)."""
    from edgesnn.benchmarks.latency import measure_floor

    r = measure_floor([1000, 100], 0.6, lateness_us=50)
    z, t = r["zmq_hop_ms"], r["timer_overshoot_ms"]
    assert z["n"] >= 30 and 0 < z["p50"] <= z["p99"] <= z["max"] < 1000
    assert t["n"] >= 100 and t["p50"] <= t["p99"] <= t["max"]
    rows = {(x["dt_us"], x["lateness_us"]): x for x in r["no_processing"]}
    assert set(rows) == {(1000, 50), (1000, 0), (100, 50), (100, 0)}
    for (dt, late), x in rows.items():
        assert x["p50_ms"] > dt / 2000 + late / 1000 + z["p50"] * 0.5
        assert x["p99_ms"] > 0.98 * dt / 1000 + late / 1000
        assert x["target_p99_ms"] == dt / 1000 + 0.5
    assert rows[(1000, 50)]["p99_ms"] > rows[(1000, 0)]["p99_ms"]


def test_an_idle_zmq_sink_is_sent_to_by_the_publishing_task(tmp_path):
    """`zmq_pub` never waits on a send (`Sink.sends_at_once`): a detection for it while its
    inbox is empty is sent by the job's task, not handed through the inbox to the sink's own
    task. Every detection arrives, in order, and the inbox counts each as received and
    delivered, as it would queued."""
    cfg, zport = config(tmp_path, lateness_us=500)

    async def body(rt, send, recv):
        sink = rt.components["zmq"]
        tasks: list[str] = []
        plain = sink.send

        async def noted(msg):
            tasks.append(asyncio.current_task().get_name())
            await plain(msg)

        sink.send = noted
        got = []
        for k in range(6):
            send(probe(k, None))
            got.append(await recv())
            await asyncio.sleep(0.02)
        return got, tasks, rt.counters(), rt.inbox["zmq"]

    got, tasks, counters, inbox = asyncio.run(_run(cfg, zport, body))
    assert [d["label"] for d in got] == [f"p{k}" for k in range(6)]
    assert [d["seq"] for d in got] == sorted(d["seq"] for d in got)
    assert len(tasks) == counters["zmq"]["emitted"] == counters["probe"]["emitted"] >= 6
    assert any(name != "zmq" for name in tasks)  # sent by the job's task
    assert inbox.received == inbox.delivered == len(tasks) and inbox.depth == 0


def test_a_sink_sending_at_once_that_raises_is_the_failed_component(tmp_path):
    """A send made by the publishing task that raises stops the pipeline with the sink, not
    the readout, as the failed component."""
    cfg, zport = config(tmp_path, lateness_us=500)
    rt = Runtime(cfg)

    async def go():
        task = asyncio.create_task(rt.run(install_signals=False))
        for _ in range(3000):
            if rt.state == "running" and rt.components["cam"].bound_port:
                break
            await asyncio.sleep(0.01)

        async def broken(msg):
            raise RuntimeError("socket gone")

        rt.components["zmq"].send = broken
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for k in range(20):
                if task.done():
                    break
                tx.sendto(probe(k, None), ("127.0.0.1", rt.components["cam"].bound_port))
                await asyncio.sleep(0.02)
            return await asyncio.wait_for(task, 30)
        finally:
            tx.close()

    assert asyncio.run(go()) == 1
    assert rt.failure is not None and rt.failure[0] == "zmq"
    assert rt.stats["zmq"].errors == 1 and rt.stats["pooled"].errors == 0
