"""Live DVS sources on real transports: UDP on loopback, eDVS over a pseudo-terminal."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
import tty
from typing import Any

import numpy as np
import pytest
from conftest import HeldBranch
from edgesnn_drivers.dvs import read_events
from edgesnn_drivers.dvs.edvs import EDVSParser, EDVSSerialDriver, encode_edvs
from edgesnn_drivers.dvs.udp import DVSUdpDriver, encode_aestream

from edgesnn.components import BuildContext
from edgesnn.events import DVS_EVENT

from .test_readers import need


def make(cls: type, **params: Any) -> Any:
    problems: list[Any] = []
    full = cls.schema.validate(params, cls.type_name, problems)
    assert not problems, problems
    return cls("cam", full, BuildContext())


async def _collect(drv: Any, n_events: int, timeout_s: float = 10.0) -> list[Any]:
    out: list[Any] = []
    got = 0

    async def pump() -> None:
        nonlocal got
        async for b in drv.batches():
            out.append(b)
            got += len(b)
            if got >= n_events:
                return

    try:
        await asyncio.wait_for(pump(), timeout_s)
    finally:
        await drv.stop()
    return out


def test_udp_receiver_aestream_layout() -> None:
    ev = read_events(need("aedat2_dvs128_alex_walking_again.aedat"))[:3000]

    async def main() -> tuple[list[Any], Any]:
        drv = make(DVSUdpDriver, port=0, sensor=[128, 128], batch_us=2000)
        await drv.start()
        assert drv.bound_port > 0
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dgs = encode_aestream(ev, timestamps=True)
        dgs.insert(3, b"\x01\x02\x03")  # malformed: 3 bytes
        dgs.insert(5, encode_aestream(ev[:1])[0][:4])  # event word without its timestamp
        no_ts = encode_aestream(ev[:10], timestamps=False)

        async def send() -> None:
            for g in dgs + no_ts:
                sock.sendto(g, ("127.0.0.1", drv.bound_port))
                await asyncio.sleep(0)
            sock.close()

        task = asyncio.ensure_future(send())
        batches = await _collect(drv, len(ev) + 10)
        await task
        return batches, drv

    batches, drv = asyncio.run(main())
    got = np.concatenate([b.events for b in batches])
    assert np.array_equal(got[: len(ev)], ev)  # timestamps carried exactly
    assert np.array_equal(got[len(ev):][["x", "y", "p"]], ev[:10][["x", "y", "p"]])
    assert drv.status()["malformed"] == 2
    assert sum(b.dropped_before for b in batches) == 2
    assert all(b.meta["width"] == 128 for b in batches)
    for a, b in zip(batches, batches[1:]):
        assert a.t_end_us <= b.t_start_us


def test_udp_default_bind_is_loopback() -> None:
    drv = make(DVSUdpDriver)
    assert drv.params["host"] == "127.0.0.1" and drv.params["port"] == 3333


@pytest.mark.parametrize("fmt,firmware,mode", [(4, "edvs4337", 4), (2, "edvs4337", 2),
                                               (1, "edvs4337", 1), (1, "edvs128", 2),
                                               (3, "edvs4337", 3)])
def test_edvs_parser_formats(fmt: int, firmware: str, mode: int) -> None:
    ev = read_events(need("aedat2_dvs128_neal_walking.aedat"))[:4000].copy()
    ev["t"] -= ev["t"][0]
    data = b"garbage\n" + encode_edvs(ev[:2000], mode) + b"E+\n" + encode_edvs(ev[2000:], mode)
    if mode == 1:  # deltas restart after the echo: the second half continues from the first
        pass
    p = EDVSParser(mode)
    parts = [p.feed(data[i : i + 97], 7) for i in range(0, len(data), 97)]
    got = np.concatenate(parts)
    assert len(got) == len(ev)
    assert np.array_equal(got[["x", "y", "p"]], ev[["x", "y", "p"]])
    assert p.resync_bytes == len(b"garbage\n") + len(b"E+\n")
    if mode == 0:
        assert (got["t"] == 7).all()
    elif mode == 4 or mode == 3:
        assert np.array_equal(got["t"], ev["t"])
    elif mode == 1:
        # delta of the first event of the second half is encoded as 0 (encoder restarted)
        d = np.diff(got["t"])
        e = np.diff(ev["t"])
        assert np.array_equal(np.delete(d, 1999), np.delete(e, 1999))
    else:  # 16-bit absolute: unwrapped
        assert np.array_equal(np.diff(got["t"]), np.diff(ev["t"]))


def _peer(master: int, payload: bytes, seen: list[bytes], stop: threading.Event) -> None:
    buf = b""
    deadline = time.monotonic() + 10
    while b"E+\n" not in buf and time.monotonic() < deadline:
        try:
            buf += os.read(master, 1024)
        except OSError:
            return
    seen.append(buf)
    for i in range(0, len(payload), 512):
        os.write(master, payload[i : i + 512])
    stop.wait(10)


def test_edvs_serial_driver_over_pty() -> None:
    ev = read_events(need("aedat2_dvs128_alex_walking_again.aedat"))[:3000]
    master, slave = os.openpty()
    tty.setraw(slave)
    name = os.ttyname(slave)
    payload = b"\x05\x06" + encode_edvs(ev, 4)  # two garbage bytes first
    seen: list[bytes] = []
    stop = threading.Event()
    th = threading.Thread(target=_peer, args=(master, payload, seen, stop), daemon=True)
    th.start()
    try:
        drv = make(EDVSSerialDriver, port=name, baudrate=115200, rtscts=False, event_format=4,
                   batch_us=5000)
        batches = asyncio.run(_collect(drv, len(ev)))
    finally:
        stop.set()
        th.join(5)
        os.close(master)
        os.close(slave)
    assert seen and b"!E4\n" in seen[0] and seen[0].endswith(b"E+\n")
    got = np.concatenate([b.events for b in batches])
    assert got.dtype == DVS_EVENT
    assert np.array_equal(got, ev)
    assert drv.status()["resync_bytes"] == 2
    assert batches[0].meta == {"width": 128, "height": 128, "sensor": "eDVS128"}


def test_edvs_missing_port_retries_with_backoff() -> None:
    drv = make(EDVSSerialDriver, port="/dev/does-not-exist-edvs", reconnect_max_s=0.02,
               max_reconnects=3)

    async def main() -> None:
        async for _ in drv.batches():
            pass

    with pytest.raises(ConnectionError):
        asyncio.run(main())
    assert drv.status()["open_failures"] == 4
    assert "does-not-exist" in drv.status()["last_error"]


def test_edvs_finish_does_not_wait_out_the_reconnect_backoff() -> None:
    """A stop while the port is missing ends the driver at once, not after the reconnect
    delay (up to `reconnect_max_s`) it was waiting out."""
    drv = make(EDVSSerialDriver, port="/dev/does-not-exist-edvs", reconnect_max_s=30.0)

    async def main() -> float:
        async def drain() -> None:
            async for _ in drv.batches():
                pass

        task = asyncio.ensure_future(drain())
        await _until(lambda: drv.status()["open_failures"] >= 5, "five failed opens")
        t0 = time.monotonic()
        assert drv.finish()
        await asyncio.wait_for(task, 10.0)
        return time.monotonic() - t0

    # the delay being waited out is 0.8 s (+-jitter) and more, doubling per failure
    assert asyncio.run(main()) < 0.4


async def _until(cond: Any, what: str, timeout_s: float = 60.0) -> None:
    """Poll `cond()` until true; fail naming `what` after a generous timeout."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.01)


def test_edvs_lost_device_reconnects() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    name = os.ttyname(slave)
    ev = read_events(need("aedat2_dvs128_alex_walking_again.aedat"))[:500]

    async def main() -> Any:
        drv = make(EDVSSerialDriver, port=name, baudrate=115200, rtscts=False,
                   event_format=4, batch_us=1000, reconnect_max_s=0.05, max_reconnects=5)
        got = 0

        async def pump() -> None:
            nonlocal got
            async for b in drv.batches():
                got += len(b)

        task = asyncio.ensure_future(pump())
        # wait for real states, not fixed delays: the port is open, then every event arrived
        await _until(lambda: drv.source.connected, "the driver opened the port")
        os.write(master, encode_edvs(ev, 4))
        await _until(lambda: got >= len(ev), "every event was delivered")
        os.close(master)  # the device disappears: reads fail, reopening fails
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(task, 10)
        return drv, got

    try:
        drv, got = asyncio.run(main())
    finally:
        os.close(slave)
    s = drv.status()
    assert got == len(ev)
    assert s["reconnects"] >= 1 or s["open_failures"] >= 1


def test_edvs_quiet_board_flushes_pending_events() -> None:
    # three events within one batch span (1 s) and then silence: they come out after 1 s of
    # wall time instead of waiting for more bytes
    master, slave = os.openpty()
    tty.setraw(slave)
    name = os.ttyname(slave)
    ev = np.zeros(3, DVS_EVENT)
    ev["t"] = [100, 150, 200]
    ev["x"], ev["y"], ev["p"] = [1, 2, 3], [4, 5, 6], [1, 0, 1]

    async def main() -> tuple[Any, list[Any]]:
        drv = make(EDVSSerialDriver, port=name, baudrate=115200, rtscts=False, event_format=4,
                   batch_us=1_000_000)
        got: list[Any] = []

        async def pump() -> None:
            async for b in drv.batches():
                got.append(b)

        task = asyncio.ensure_future(pump())
        try:
            await _until(lambda: drv.source.connected, "the driver opened the port")
            os.write(master, encode_edvs(ev, 4))
            await _until(lambda: sum(len(b) for b in got) >= len(ev), "the events came out")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await drv.stop()
        return drv, got

    try:
        drv, batches = asyncio.run(main())
    finally:
        os.close(master)
        os.close(slave)
    assert len(batches) == 1 and np.array_equal(batches[0].events, ev)
    assert batches[0].t_start_us == 100 and batches[0].t_end_us == 200  # its newest µs


def test_udp_kernel_drops_counted_under_flood() -> None:
    """A flood into a small receive buffer: the kernel's drops for the socket are counted."""
    if not os.path.exists("/proc/net/udp"):
        pytest.skip("kernel drop counts come from /proc/net/udp (Linux only)")
    ev = np.zeros(64, DVS_EVENT)
    ev["x"], ev["y"], ev["t"] = np.arange(64) % 128, 5, np.arange(64) * 10
    dg = encode_aestream(ev, timestamps=True)[0]
    n_sent = 3000

    async def main() -> Any:
        drv = make(DVSUdpDriver, port=0, sensor=[128, 128], rcvbuf_bytes=4096,
                   max_pending_events=1 << 30)
        await drv.start()
        assert drv.status()["kernel_drops"] == 0
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(n_sent):  # the loop does not run meanwhile: the socket cannot be read
            sock.sendto(dg, ("127.0.0.1", drv.bound_port))
        sock.close()
        last = -1
        while drv.decoder.datagrams != last:  # drain what the kernel kept
            last = drv.decoder.datagrams
            await asyncio.sleep(0.05)
        st = drv.status()
        await drv.stop()
        return st

    st = asyncio.run(main())
    lost = n_sent - st["datagrams"]
    assert lost > n_sent // 2, st  # the flood did overflow the buffer
    assert abs(st["kernel_drops"] - lost) <= 0.01 * n_sent, (st, lost)


def test_udp_time_jump_restarts_time_base_and_encoder_stays_small() -> None:
    """Datagrams leaping 2^31 µs forward then back: counted, and rasters stay a few steps long."""
    from edgesnn.encoders.dvs import DVSPoolEncoder

    ev = np.zeros(200, DVS_EVENT)
    ev["x"], ev["y"] = np.arange(200) % 128, 7
    ev["t"] = np.arange(200) * 50
    jumps = [0, 1 << 31, 1000, 1 << 31]  # forward, back, forward again

    async def main() -> tuple[list[Any], Any]:
        drv = make(DVSUdpDriver, port=0, sensor=[128, 128], batch_us=1000)
        await drv.start()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        out: list[Any] = []
        it = drv.batches().__aiter__()
        for off in jumps:
            seg = ev.copy()
            seg["t"] += off
            for g in encode_aestream(seg, timestamps=True):
                sock.sendto(g, ("127.0.0.1", drv.bound_port))
            got = 0
            while got < len(seg):
                b = await asyncio.wait_for(it.__anext__(), 10)
                out.append(b)
                got += len(b)
        sock.close()
        await drv.stop()
        return out, drv

    batches, drv = asyncio.run(main())
    assert drv.status()["time_jumps"] == 3
    assert all(b.t_end_us - b.t_start_us < 1_000_000 for b in batches)
    enc = make(DVSPoolEncoder, sensor=[128, 128])
    steps = 0
    for b in batches:
        r = enc.encode(b)
        if r is not None:
            assert r.n_steps < 100 and len(r.ptr) < 101
            steps += r.n_steps
    assert enc.status()["time_jumps"] == 3
    assert steps > 0  # spikes keep flowing after every jump


def _edvs_burst(k: int, n: int = 200) -> np.ndarray:
    """n events of burst k, board timestamps advancing 10 µs apart from k * 100 ms."""
    ev = np.zeros(n, DVS_EVENT)
    ev["t"] = 5_000_000 + k * 100_000 + np.arange(n) * 10
    ev["x"], ev["y"], ev["p"] = np.arange(n) % 128, (np.arange(n) * 7 + k) % 128, np.arange(n) % 2
    return ev


def test_edvs_hands_each_burst_over_at_once() -> None:
    """Bursts written to a pty at the default `batch_us`: what each read brings is handed over
    at once (a timeout is the failure), every event once and in order, batches contiguous,
    nothing left over; the host clock maps to board time once events came."""
    master, slave = os.openpty()
    tty.setraw(slave)
    name = os.ttyname(slave)
    bursts = [_edvs_burst(k) for k in range(3)]

    async def main() -> tuple[Any, list[list[Any]], list[int]]:
        drv = make(EDVSSerialDriver, port=name, baudrate=115200, rtscts=False, event_format=4)
        assert drv.params["batch_us"] == 0 and type(drv).in_order
        assert drv.sensor_now_us() is None and not drv.holds_data()
        it = drv.batches().__aiter__()
        nxt = asyncio.ensure_future(it.__anext__())
        await _until(lambda: drv.source.connected, "the driver opened the port")
        got: list[list[Any]] = []
        nows: list[int] = []
        try:
            for ev in bursts:
                os.write(master, encode_edvs(ev, 4))
                mine: list[Any] = []
                while sum(len(b) for b in mine) < len(ev):
                    mine.append(await asyncio.wait_for(nxt, 5))
                    nxt = asyncio.ensure_future(it.__anext__())
                got.append(mine)
                nows.append(drv.sensor_now_us())
                assert not drv.holds_data()
            await asyncio.sleep(0.05)
            assert not nxt.done()  # nothing left over
        finally:
            nxt.cancel()
            await asyncio.gather(nxt, return_exceptions=True)
            await drv.stop()
        return drv, got, nows

    try:
        drv, got, nows = asyncio.run(main())
    finally:
        os.close(master)
        os.close(slave)
    flat = [b for bs in got for b in bs]
    for ev, bs in zip(bursts, got, strict=True):
        assert np.array_equal(np.concatenate([b.events for b in bs]), ev)  # once, in order
    for a, b in zip(flat, flat[1:]):
        assert b.t_start_us == a.t_end_us and b.seq == a.seq + 1
    assert flat[0].t_start_us == bursts[0]["t"][0]
    assert flat[-1].t_end_us == bursts[-1]["t"][-1]  # its µs may bring more in the next read
    for now in nows:  # board time: never before the first event
        assert now >= bursts[0]["t"][0]
    s = drv.status()
    assert s["events"] == 600 and s["resync_bytes"] == 0


EDVS_PIPELINE = """
[pipeline]
name = "live_edvs"
dt_us = 1000
drain_timeout_s = 120  # a cold kernel cache compiles the encoder during the drain
{settings}
[drivers.cam]
type = "edvs_serial"
port = "{port}"
baudrate = 115200
rtscts = false
event_format = {fmt}

[encoders.pool]
type = "dvs_pool"
inputs = ["cam"]
grid = [2, 2]
polarity = "merge"

[readouts.r]
type = "spike_count"
inputs = ["pool"]
labels = ["a", "b", "c", "d"]

[sinks.out]
type = "file"
inputs = ["r"]
path = "{out}"
"""


def _live_edvs(tmp_path: Any, fmt: int, settings: str, ev: np.ndarray,
               done: Any) -> tuple[dict, dict]:  # fmt: skip
    """Run EDVS_PIPELINE on a pty, write `ev` at once once the port is open, wait until
    `done(counters)` (a timeout of 2 min is the failure), stop; counters then and after."""
    return _live_edvs_writes(tmp_path, fmt, settings, [(ev, done)])


def _live_edvs_writes(tmp_path: Any, fmt: int, settings: str,
                      writes: list[tuple[np.ndarray, Any]]) -> tuple[dict, ...]:  # fmt: skip
    """`_live_edvs` with several writes, each once the last one's `done(counters)` held;
    the counters after each write's `done`, then after the stop."""
    from edgesnn.config import pipeline as pl
    from edgesnn.runtime.runner import Runtime

    master, slave = os.openpty()
    tty.setraw(slave)
    cfg = tmp_path / "edvs.toml"
    cfg.write_text(EDVS_PIPELINE.format(port=os.ttyname(slave), fmt=fmt, settings=settings,
                                        out=tmp_path / "det.jsonl"), encoding="utf-8")
    rt = Runtime(pl.load(str(cfg)))

    async def go() -> tuple[dict, ...]:
        task = asyncio.create_task(rt.run(install_signals=False))
        seen = []
        try:
            await _until(lambda: rt.state == "running" and rt.components["cam"].source.connected,
                         "the pipeline opened the port", 120)
            for ev, done in writes:
                os.write(master, encode_edvs(ev, 4 if fmt == 4 else 0))
                await _until(lambda d=done: d(rt.counters()),
                             "the pipeline processed the events", 120)
                seen.append(rt.counters())
        finally:
            rt.request_stop()
            assert await asyncio.wait_for(task, 130) == 0
        return (*seen, rt.counters())

    try:
        return asyncio.run(go())
    finally:
        os.close(master)
        os.close(slave)


def test_edvs_finish_ends_a_quiet_port_and_hands_over_what_waits() -> None:
    """finish() while a read waits on a quiet port: the events of the bytes waiting then are
    handed over, later bytes are not read, and the stream ends (no hang)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    name = os.ttyname(slave)

    async def main() -> list[Any]:
        drv = make(EDVSSerialDriver, port=name, baudrate=115200, rtscts=False, event_format=4)
        it = drv.batches().__aiter__()
        nxt = asyncio.ensure_future(it.__anext__())
        await _until(lambda: drv.source.connected, "the driver opened the port")
        await asyncio.sleep(0.1)  # a read waits on the quiet port
        assert not nxt.done()
        raw = encode_edvs(_edvs_burst(0, 50), 4)
        os.write(master, raw)
        await _until(lambda: drv.source.bytes_read or drv.source._ser.in_waiting == len(raw),
                     "the bytes came")
        assert drv.finish()
        os.write(master, encode_edvs(_edvs_burst(1, 50), 4))  # after finish(): not read
        got = []
        try:
            while True:
                got.append(await asyncio.wait_for(nxt, 5))
                nxt = asyncio.ensure_future(it.__anext__())
        except StopAsyncIteration:
            pass
        finally:
            await drv.stop()
        return got

    try:
        got = asyncio.run(main())
    finally:
        os.close(master)
        os.close(slave)
    assert np.array_equal(np.concatenate([b.events for b in got]), _edvs_burst(0, 50))


def test_edvs_a_stop_hands_over_what_waits_in_the_port(tmp_path: Any) -> None:
    """A stop while the branch is busy: edvs_serial reads the bytes waiting in its port then,
    hands their events over and ends; the branch drains all of it before the runtime
    returns 0."""

    from edgesnn.config import pipeline as pl

    master, slave = os.openpty()
    tty.setraw(slave)
    cfg = tmp_path / "edvs.toml"
    cfg.write_text(EDVS_PIPELINE.format(port=os.ttyname(slave), fmt=4, settings="",
                                        out=tmp_path / "det.jsonl"), encoding="utf-8")
    held = HeldBranch(pl.load(str(cfg)))
    rt = held.rt
    bursts = [_edvs_burst(k, 100) for k in range(5)]

    async def go() -> None:
        cam = rt.components["cam"]
        await _until(lambda: rt.state == "running" and cam.source.connected,
                     "the pipeline opened the port", 120)
        os.write(master, encode_edvs(bursts[0], 4))
        await _until(lambda: rt.counters()["pool"].get("events_in", 0) == 100,
                     "the pipeline processed the first events", 120)
        held.hold()  # the branch's worker is busy from here
        os.write(master, encode_edvs(bursts[1], 4))
        await _until(lambda: rt.counters()["cam"]["items"] == 200,
                     "the driver handed the second burst over")
        rest = b"".join(encode_edvs(ev, 4) for ev in bursts[2:])
        os.write(master, rest)  # waits in the port
        await _until(lambda: cam.source._ser.in_waiting == len(rest),
                     "the bytes wait in the port")
        rt.request_stop()
        await asyncio.sleep(0.02)

    try:
        assert held.run(go) == 0
    finally:
        os.close(master)
        os.close(slave)
    c = rt.counters()
    assert c["cam"]["events"] == 500 and c["cam"]["resync_bytes"] == 0
    assert c["pool"]["events_in"] == 500


@pytest.mark.parametrize("fmt", [4, 0])
def test_edvs_pipeline_closes_steps_on_the_host_clock(tmp_path: Any, fmt: int) -> None:
    """edvs_serial in a running pipeline (board timestamps, or none: stamped on arrival): one
    burst, then a quiet board; the runtime closes the steps after the last event on the host
    clock and no event is late."""
    ev = _edvs_burst(0, 300)
    _, c = _live_edvs(tmp_path, fmt, "", ev,
                      lambda c: c["pool"].get("events_in", 0) >= len(ev)
                      and c["cam"].get("host_clock_steps", 0) >= 3)
    assert c["cam"]["events"] == len(ev) and c["pool"]["events_in"] == len(ev)
    assert c["cam"]["host_clock_steps"] >= 3 and c["pool"]["late_events"] == 0


def test_edvs_steps_are_processed_when_their_events_arrive(tmp_path: Any) -> None:
    """edvs_serial is `in_order`: the steps a batch covers are processed at once, not held
    back by `lateness_us` (here 10 s, so a host-clock step could not have closed them)."""
    ev = _edvs_burst(0, 300)  # 3 ms of board time: steps 5000-5002 complete in the batch
    before, after = _live_edvs(tmp_path, 4, "lateness_us = 10000000\n", ev,
                               lambda c: c["pool"].get("emitted", 0) >= 1)
    assert before["pool"]["emitted"] >= 1
    assert before["cam"].get("host_clock_steps", 0) == 0
    assert after["pool"]["late_events"] == 0 and after["cam"]["events"] == len(ev)


def test_edvs_events_of_one_microsecond_split_across_reads_are_not_late(tmp_path: Any) -> None:
    """Board timestamps: a read ends with events at the last µs of a step and the next read
    brings more events of that µs. The first batch ends at that µs (not past it), so the step
    stays open for them: every event is counted in, none late (before, the step closed with
    the first read and the 3 later events of its last µs were late)."""
    a = _edvs_burst(0, 100)
    a["t"] = 5_000_000 + np.arange(100) * 9 + (999 - 99 * 9)  # ends at 5_000_999
    b = _edvs_burst(1, 100)
    b["t"] = np.concatenate([[5_000_999] * 3, 5_001_000 + np.arange(97) * 30])
    first, _, c = _live_edvs_writes(
        tmp_path, 4, "lateness_us = 10000000\n",
        [(a, lambda c: c["pool"].get("events_in", 0) >= len(a)),
         (b, lambda c: c["pool"].get("events_in", 0) >= len(a) + len(b))])
    assert first["pool"]["events_in"] == len(a)
    assert c["pool"]["events_in"] == len(a) + len(b) and c["pool"]["late_events"] == 0
    assert c["pool"]["emitted"] >= 1


def test_edvs_a_read_at_one_microsecond_ends_past_it() -> None:
    """A read whose events all carry one board time (a single event after a leap of the board
    clock, say) ends just past it, so the encoder sees data before the batch's end and
    re-anchors its steps there; a read spanning several µs ends at its newest."""
    master, slave = os.openpty()
    tty.setraw(slave)
    name = os.ttyname(slave)
    first = _edvs_burst(0, 50)
    leap = _edvs_burst(1, 1)
    leap["t"] = first["t"][-1] + 99_000_000

    async def main() -> list[Any]:
        drv = make(EDVSSerialDriver, port=name, baudrate=115200, rtscts=False, event_format=4)
        it = drv.batches().__aiter__()
        nxt = asyncio.ensure_future(it.__anext__())
        await _until(lambda: drv.source.connected, "the driver opened the port")
        got: list[Any] = []
        try:
            for ev in (first, leap):
                os.write(master, encode_edvs(ev, 4))
                while sum(len(b) for b in got) < len(first) + (len(ev) if ev is leap else 0):
                    got.append(await asyncio.wait_for(nxt, 5))
                    nxt = asyncio.ensure_future(it.__anext__())
        finally:
            nxt.cancel()
            await asyncio.gather(nxt, return_exceptions=True)
            await drv.stop()
        return got

    try:
        got = asyncio.run(main())
    finally:
        os.close(master)
        os.close(slave)
    last_of_first = [b for b in got if len(b) and b.events["t"][-1] == first["t"][-1]]
    assert last_of_first[0].t_end_us == first["t"][-1]
    assert got[-1].t_end_us == leap["t"][0] + 1 and len(got[-1]) == 1
