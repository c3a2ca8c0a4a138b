"""Live PCM drivers against real loopback UDP sockets and real pipes; PCM decoding."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import HeldBranch
from edgesnn_drivers.audio.live import (
    PcmStdinDriver,
    PcmUdpDriver,
    epcm_datagram,
    raw_frames,
)
from edgesnn_drivers.audio.pcm import ALSA_FORMATS, decode, decode_native
from hypothesis import given, settings
from hypothesis import strategies as st

from edgesnn.encoders.generic import built

REPO = Path(__file__).parents[2]


def ref_sample(b: bytes, name: str) -> float:
    """Obvious decoding of one sample by format name."""
    if name == "U8":
        return (b[0] - 128) / 128
    if name in ("FLOAT_LE", "FLOAT64_LE"):
        return struct.unpack("<f" if len(b) == 4 else "<d", b)[0]
    big = name.endswith("BE")
    return int.from_bytes(b, "big" if big else "little", signed=True) / 2 ** (8 * len(b) - 1)


@pytest.mark.parametrize("name", [n for n in ALSA_FORMATS if "LAW" not in n])
def test_decode_matches_reference_and_roundtrips(name: str) -> None:
    fmt = ALSA_FORMATS[name]
    rng = np.random.default_rng(len(name))
    x = rng.uniform(-1, 1, size=(50, 3))
    raw = raw_frames(x, name)
    assert len(raw) == 150 * fmt.container_bytes
    y = decode(raw, fmt, 3)
    w = fmt.container_bytes
    ref = [ref_sample(raw[i:i + w], name) for i in range(0, len(raw), w)]
    np.testing.assert_allclose(y.ravel(), ref, rtol=1e-6, atol=1e-7)
    tol = 1.0 / 2 ** (8 * w - 1) if fmt.kind != "float" else 1e-6
    np.testing.assert_allclose(y, x, atol=tol)


def test_g711_against_audioop_when_available() -> None:
    audioop = pytest.importorskip("audioop", reason="audioop left the standard library in 3.13")
    codes = bytes(range(256))
    a = decode_native(codes, ALSA_FORMATS["A_LAW"], 1)[:, 0]
    u = decode_native(codes, ALSA_FORMATS["MU_LAW"], 1)[:, 0]
    np.testing.assert_array_equal(a, np.frombuffer(audioop.alaw2lin(codes, 2), "<i2"))
    np.testing.assert_array_equal(u, np.frombuffer(audioop.ulaw2lin(codes, 2), "<i2"))


# --- UDP ----------------------------------------------------------------------------------------


async def _udp_session(params: dict, datagrams: list[bytes], want_frames: int
                       ) -> tuple[PcmUdpDriver, list]:
    d = built(PcmUdpDriver, dict(params, host="127.0.0.1", port=0))
    await d.start()
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    got: list = []

    async def consume() -> None:
        frames = 0
        async for b in d.batches():
            got.append(b)
            frames += len(b)
            if frames >= want_frames:
                return

    task = asyncio.create_task(consume())
    for g in datagrams:
        tx.sendto(g, ("127.0.0.1", d.bound_port))
        await asyncio.sleep(0.001)
    try:
        await asyncio.wait_for(task, 5.0)
    finally:
        tx.close()
        await d.stop()
    return d, got


def test_udp_raw_frames_loopback() -> None:
    x = (np.arange(800, dtype=np.float64).reshape(400, 2) % 200 - 100) / 128
    raw = raw_frames(x, "S16_LE")
    grams = [raw[i:i + 160] for i in range(0, len(raw), 160)]  # 40 frames each
    grams.insert(3, b"\x01\x02\x03")  # not a whole frame: dropped, counted
    d, got = asyncio.run(_udp_session(
        {"sample_rate_hz": 16000, "channels": 2, "sample_format": "S16_LE"}, grams, 400))
    y = np.concatenate([b.events for b in got])
    np.testing.assert_allclose(y, x, atol=1 / 32768)
    assert d.status()["bad_datagrams"] == 1 and d.status()["datagrams"] == 11
    for a, b in zip(got, got[1:]):
        assert b.t_start_us == a.t_end_us  # the sample clock has no gaps
    assert got[-1].t_end_us - got[0].t_start_us == 400 * 1_000_000 // 16000
    assert all(b.meta["sample_rate_hz"] == 16000 and b.kind == "samples" for b in got)


def test_udp_epcm_counts_loss_late_and_bad() -> None:
    rate = 8000
    frames = [np.full((80, 1), i / 64) for i in range(6)]

    def gram(i: int, first: int | None = None) -> bytes:
        return epcm_datagram(80 * i if first is None else first, 1, 2,
                             raw_frames(frames[i], "S16_LE"))

    grams = [gram(0), gram(1), gram(3),  # datagram 2 lost
             gram(1),  # late duplicate: dropped
             b"EPCM" + b"\x00" * 8,  # too short a payload
             epcm_datagram(0, 2, 2, b"\x00" * 8),  # wrong channel count
             gram(4), gram(5)]
    d, got = asyncio.run(_udp_session({"sample_rate_hz": rate, "header": "epcm"}, grams, 400))
    s = d.status()
    assert s["lost_frames"] == 80 and s["late_datagrams"] == 1 and s["bad_datagrams"] == 2
    assert sum(b.dropped_before for b in got) == 80
    values = np.concatenate([b.events[:, 0] for b in got])
    np.testing.assert_allclose(np.unique(values), [0, 1 / 64, 3 / 64, 4 / 64, 5 / 64])
    # time skips the lost datagram: the batch holding datagram 3 starts 240 frames in
    first3 = next(b for b in got if b.events[0, 0] == pytest.approx(3 / 64))
    assert first3.t_start_us - got[0].t_start_us == 240 * 1_000_000 // rate


# --- lost senders and busy ports: retried with backoff ----------------------------------------


def _busy_udp_port() -> socket.socket:
    """A UDP socket holding a port without SO_REUSEADDR, so nobody else can bind it."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def test_udp_busy_port_is_retried_until_free() -> None:
    blocker = _busy_udp_port()
    port = blocker.getsockname()[1]
    x = np.linspace(-0.5, 0.5, 80)[:, None]

    async def go() -> tuple[PcmUdpDriver, list]:
        d = built(PcmUdpDriver, {"host": "127.0.0.1", "port": port, "sample_rate_hz": 8000,
                                 "reconnect_max_s": 0.1})
        start = asyncio.create_task(d.start())
        await asyncio.sleep(0.4)
        assert not start.done() and d.open_failures >= 2  # still retrying, not failed
        blocker.close()
        await asyncio.wait_for(start, 5.0)
        got: list = []
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx.sendto(raw_frames(x), ("127.0.0.1", port))
        async for b in d.batches():
            got.append(b)
            if sum(len(g) for g in got) >= 80:
                break
        tx.close()
        await d.stop()
        return d, got

    d, got = asyncio.run(asyncio.wait_for(go(), 20))
    np.testing.assert_allclose(np.concatenate([b.events for b in got]), x, atol=1 / 32768)
    st_ = d.status()
    assert st_["port"] == port and st_["open_failures"] >= 2 and "in use" in st_["last_error"]


def test_udp_gives_up_when_told() -> None:
    blocker = _busy_udp_port()
    d = built(PcmUdpDriver, {"host": "127.0.0.1", "port": blocker.getsockname()[1],
                             "sample_rate_hz": 8000, "max_reconnects": 2,
                             "reconnect_max_s": 0.05})
    try:
        with pytest.raises(ConnectionError, match="gave up after 3 attempts"):
            asyncio.run(asyncio.wait_for(d.start(), 10))
    finally:
        blocker.close()
    assert d.open_failures == 3


def test_udp_silent_sender_is_counted_lost_and_the_socket_reopened() -> None:
    x = np.linspace(-0.5, 0.5, 160).reshape(80, 2)
    raw = raw_frames(x)

    async def go() -> tuple[PcmUdpDriver, list]:
        d = built(PcmUdpDriver, {"host": "127.0.0.1", "port": 0, "sample_rate_hz": 8000,
                                 "channels": 2, "lost_after_s": 0.15,
                                 "reconnect_max_s": 0.05})
        await d.start()
        port = d.bound_port
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        got: list = []
        it = d.batches().__aiter__()
        tx.sendto(raw[:160], ("127.0.0.1", port))  # 40 frames
        got.append(await asyncio.wait_for(it.__anext__(), 5))
        nxt = asyncio.create_task(it.__anext__())
        while d.reopens < 1:  # silence: the sender is lost, the socket reopened
            await asyncio.sleep(0.05)
        assert d.bound_port == port  # reopened on the same port
        tx.sendto(raw[160:], ("127.0.0.1", port))
        got.append(await asyncio.wait_for(nxt, 5))
        tx.close()
        await d.stop()
        return d, got

    d, got = asyncio.run(asyncio.wait_for(go(), 20))
    np.testing.assert_allclose(np.concatenate([b.events for b in got]), x, atol=1 / 32768)
    assert d.status()["lost"] >= 1 and d.status()["reopens"] >= 1
    # the clock restarts from the wall clock after a loss, never going backwards
    assert got[1].t_start_us >= got[0].t_end_us + 100_000


# --- stdin / pipes ------------------------------------------------------------------------------


def test_pcm_stdin_reads_a_real_pipe_to_eof() -> None:
    x = np.sin(np.arange(3000) / 5.0)[:, None] * 0.5
    raw = raw_frames(x, "S16_LE") + b"\x07"  # a trailing half frame
    r, w = os.pipe()

    def writer() -> None:
        for i in range(0, len(raw), 333):  # pieces that split frames
            os.write(w, raw[i:i + 333])
        os.close(w)

    threading.Thread(target=writer, daemon=True).start()
    d = built(PcmStdinDriver, {"fd": r, "sample_rate_hz": 16000})

    async def run() -> list:
        return [b async for b in d.batches()]

    try:
        got = asyncio.run(asyncio.wait_for(run(), 10))
    finally:
        os.close(r)
    y = np.concatenate([b.events for b in got])
    np.testing.assert_allclose(y, x, atol=1 / 32768)
    assert d.status()["trailing_bytes"] == 1 and d.status()["frames_in"] == 3000
    for a, b in zip(got, got[1:]):
        assert b.t_start_us == a.t_end_us


def test_pcm_stdin_stop_does_not_hang_on_a_silent_pipe() -> None:
    r, w = os.pipe()
    d = built(PcmStdinDriver, {"fd": r, "sample_rate_hz": 8000})

    async def run() -> None:
        it = d.batches().__aiter__()
        task = asyncio.create_task(it.__anext__())
        await asyncio.sleep(0.2)
        await d.stop()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(task, 2.0)

    try:
        asyncio.run(run())
    finally:
        os.close(r)
        os.close(w)


def test_pcm_named_pipe_reopens_for_the_next_writer_and_waits_for_a_missing_path(
        tmp_path: Path) -> None:
    fifo = tmp_path / "mic.pcm"
    x = np.sin(np.arange(1200) / 7.0)[:, None] * 0.5
    raw = raw_frames(x, "S16_LE")

    def writer(piece: bytes) -> None:
        with open(fifo, "wb") as f:  # blocks until the driver has the pipe open
            f.write(piece)

    async def go() -> tuple[PcmStdinDriver, list]:
        d = built(PcmStdinDriver, {"path": str(fifo), "sample_rate_hz": 8000,
                                   "reconnect_max_s": 0.05})
        got: list = []
        frames = 0

        async def consume() -> None:
            nonlocal frames
            async for b in d.batches():
                got.append(b)
                frames += len(b)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.3)  # the path does not exist yet: retried with backoff
        assert d.open_failures >= 2 and not task.done()
        os.mkfifo(fifo)
        await asyncio.to_thread(writer, raw[:1200])  # first writer: 600 frames, then gone
        while frames < 600:
            await asyncio.sleep(0.02)
        await asyncio.to_thread(writer, raw[1200:])  # the next writer is picked up
        while frames < 1200:
            await asyncio.sleep(0.02)
        await d.stop()
        await asyncio.wait_for(task, 5)
        return d, got

    d, got = asyncio.run(asyncio.wait_for(go(), 30))
    np.testing.assert_allclose(np.concatenate([b.events for b in got]), x, atol=1 / 32768)
    st_ = d.status()
    assert st_["lost"] >= 1 and st_["reopens"] >= 1 and st_["open_failures"] >= 2
    assert all(b.t_start_us >= a.t_end_us for a, b in zip(got, got[1:]))


def test_pcm_path_without_reopen_ends_at_end_of_file(tmp_path: Path) -> None:
    p = tmp_path / "take.raw"
    x = np.linspace(-0.25, 0.25, 500)[:, None]
    p.write_bytes(raw_frames(x))
    d = built(PcmStdinDriver, {"path": str(p), "sample_rate_hz": 8000, "reopen": False})

    async def run() -> list:
        return [b async for b in d.batches()]

    got = asyncio.run(asyncio.wait_for(run(), 10))
    np.testing.assert_allclose(np.concatenate([b.events for b in got]), x, atol=1 / 32768)
    assert d.status()["lost"] == 0


SCRIPT = """
import asyncio, sys
from edgesnn.encoders.generic import built
from edgesnn_drivers.audio.live import PcmStdinDriver
d = built(PcmStdinDriver, {"sample_rate_hz": 16000, "sample_format": "S16_LE"})
async def main():
    n = 0
    peak = 0.0
    async for b in d.batches():
        n += len(b)
        peak = max(peak, float(abs(b.events).max()))
    print(n, round(peak, 4))
asyncio.run(main())
"""


def test_standard_input_of_a_process() -> None:
    x = np.linspace(-0.5, 0.5, 16000)[:, None]
    out = subprocess.run([sys.executable, "-c", SCRIPT], input=raw_frames(x, "S16_LE"),
                         capture_output=True, timeout=60, cwd=REPO, check=True)
    n, peak = out.stdout.split()
    assert int(n) == 16000 and float(peak) == pytest.approx(0.5, abs=1e-4)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=200), header=st.sampled_from(["none", "epcm"]),
       name=st.sampled_from(sorted(ALSA_FORMATS)))
def test_fuzz_datagram_payloads(data: bytes, header: str, name: str) -> None:
    d = built(PcmUdpDriver, {"port": 0, "sample_rate_hz": 8000, "channels": 2,
                             "header": header, "sample_format": name})
    body, lost = d._payload(data)
    if body is not None:
        x = decode(body, ALSA_FORMATS[name], 2)
        assert x.shape[1] == 2 and lost >= 0
    else:
        assert d.bad_datagrams + d.late_datagrams == 1


def test_udp_kernel_drops_counted_under_flood() -> None:
    """A flood into a small receive buffer: the datagrams the kernel dropped are counted."""
    if not os.path.exists("/proc/net/udp"):
        pytest.skip("kernel drop counts come from /proc/net/udp (Linux only)")
    n_sent = 3000

    async def go() -> dict:
        d = built(PcmUdpDriver, {"host": "127.0.0.1", "port": 0, "sample_rate_hz": 8000,
                                 "rcvbuf_bytes": 4096, "queue_datagrams": 10_000})
        await d.start()
        assert d.status()["kernel_drops"] == 0
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(n_sent):  # the loop does not run meanwhile: the socket cannot be read
            tx.sendto(b"\x00\x01" * 80, ("127.0.0.1", d.bound_port))
        tx.close()
        last = -1
        while d.datagrams != last:  # drain what the kernel kept
            last = d.datagrams
            await asyncio.sleep(0.05)
        st = d.status()
        await d.stop()
        return st

    st = asyncio.run(go())
    lost = n_sent - st["datagrams"]
    assert lost > n_sent // 2, st
    assert abs(st["kernel_drops"] - lost) <= 0.01 * n_sent, (st, lost)


# --- hand-over on arrival, the host clock ----------------------------------------------------


def _ramp(n: int, start: int = 0) -> np.ndarray:
    """n mono frames whose values tell their position (exact in S16_LE)."""
    return (((np.arange(start, start + n) % 20000) - 10000) / 32768.0)[:, None]


def test_udp_hands_each_burst_over_at_once_in_one_batch() -> None:
    """Bursts of 20 datagrams sent while the event loop cannot run: each wake-up hands all of
    them over as one batch at the default `batch_us` (a timeout is the failure), every frame
    once and in order, batches contiguous on the sample clock, which the host clock maps to."""
    rate, per, bursts = 16000, 160, 3
    x = _ramp(bursts * 20 * per)
    raw = raw_frames(x)
    grams = [raw[i:i + 2 * per] for i in range(0, len(raw), 2 * per)]

    async def go() -> tuple[PcmUdpDriver, list, list[int]]:
        d = built(PcmUdpDriver, {"host": "127.0.0.1", "port": 0, "sample_rate_hz": rate})
        await d.start()
        assert d.sensor_now_us() is None and not d.holds_data()
        it = d.batches().__aiter__()
        got: list = []
        nows: list[int] = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            tx.sendto(b"\x01\x02\x03", ("127.0.0.1", d.bound_port))  # no whole frame
            assert not d.holds_data() and d.datagrams == 1  # received, but no data to wait for
            for k in range(0, len(grams), 20):
                for g in grams[k:k + 20]:
                    tx.sendto(g, ("127.0.0.1", d.bound_port))
                assert d.holds_data()  # read off the socket, not handed over yet
                got.append(await asyncio.wait_for(it.__anext__(), 5))
                assert not d.holds_data()
                nows.append(d.sensor_now_us())
        nxt = asyncio.ensure_future(it.__anext__())
        await asyncio.sleep(0.05)
        assert not nxt.done()  # nothing left over
        nxt.cancel()
        await d.stop()
        return d, got, nows

    d, got, nows = asyncio.run(go())
    assert [len(b) for b in got] == [20 * per] * bursts
    np.testing.assert_array_equal(np.concatenate([b.events for b in got]),
                                  x.astype(np.float32))
    for a, b in zip(got, got[1:]):
        assert b.t_start_us == a.t_end_us
    for b, now in zip(got, nows, strict=True):
        assert b.t_end_us - b.t_start_us == 20 * per * 1_000_000 // rate
        assert b.meta["t_recv_us"] > 0
        # on the sample clock: never before the last datagram of the first burst began
        assert now >= got[0].t_end_us - per * 1_000_000 // rate
    st_ = d.status()
    assert st_["datagrams"] == len(grams) + 1 and st_["bad_datagrams"] == 1
    assert st_["frames_in"] == len(x)


def test_udp_epcm_burst_splits_only_at_a_gap() -> None:
    """An epcm burst with one datagram lost: two batches, the second starting after the lost
    frames; the loss is counted once."""
    rate, per = 8000, 80
    x = _ramp(8 * per)
    grams = [epcm_datagram(i * per, 1, 2, raw_frames(x[i * per:(i + 1) * per]))
             for i in range(8) if i != 3]

    async def go() -> tuple[PcmUdpDriver, list]:
        d = built(PcmUdpDriver, {"host": "127.0.0.1", "port": 0, "sample_rate_hz": rate,
                                 "header": "epcm"})
        await d.start()
        it = d.batches().__aiter__()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for g in grams:
                tx.sendto(g, ("127.0.0.1", d.bound_port))
            got = [await asyncio.wait_for(it.__anext__(), 5) for _ in range(2)]
        await d.stop()
        return d, got

    d, got = asyncio.run(go())
    assert [len(b) for b in got] == [3 * per, 4 * per]
    assert got[1].dropped_before == per and d.status()["lost_frames"] == per
    assert got[1].t_start_us == got[0].t_end_us + per * 1_000_000 // rate
    np.testing.assert_array_equal(got[1].events, x[4 * per:].astype(np.float32))


def test_udp_epcm_jump_forward_starts_a_new_host_clock_offset() -> None:
    """Frames lost for longer than MAX_GAP_US (an epcm first_frame far ahead): the sample clock
    skips over them and the host clock maps to the new time base at once, not to the old one."""
    rate, per = 8000, 80
    x = _ramp(2 * per)
    skip = 20 * rate  # 20 s of frames never sent

    async def go() -> tuple[list, list]:
        d = built(PcmUdpDriver, {"host": "127.0.0.1", "port": 0, "sample_rate_hz": rate,
                                 "header": "epcm"})
        await d.start()
        it = d.batches().__aiter__()
        got, nows = [], []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for first, chunk in ((0, x[:per]), (per + skip, x[per:])):
                tx.sendto(epcm_datagram(first, 1, 2, raw_frames(chunk)),
                          ("127.0.0.1", d.bound_port))
                got.append(await asyncio.wait_for(it.__anext__(), 5))
                nows.append(d.sensor_now_us())
        await d.stop()
        return got, nows

    got, nows = asyncio.run(go())
    assert got[1].dropped_before == skip
    assert got[1].t_start_us == got[0].t_end_us + skip * 1_000_000 // rate
    assert nows[0] >= got[0].t_start_us and nows[1] >= got[1].t_start_us


def test_udp_positive_batch_us_still_gathers() -> None:
    """A configured `batch_us` (as older pipelines set it) gathers what arrives meanwhile."""
    x = _ramp(320)
    raw = raw_frames(x)

    async def go() -> list:
        d = built(PcmUdpDriver, {"host": "127.0.0.1", "port": 0, "sample_rate_hz": 8000,
                                 "batch_us": 300_000})
        await d.start()
        it = d.batches().__aiter__()
        nxt = asyncio.ensure_future(it.__anext__())
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            tx.sendto(raw[:320], ("127.0.0.1", d.bound_port))
            while not d.datagrams:  # the first is in; the driver gathers now
                await asyncio.sleep(0.001)
            tx.sendto(raw[320:], ("127.0.0.1", d.bound_port))
            got = [await asyncio.wait_for(nxt, 5)]
        await d.stop()
        return got

    got = asyncio.run(go())
    assert len(got[0]) == 320
    np.testing.assert_array_equal(got[0].events, x.astype(np.float32))


LIVE_PCM = """
[pipeline]
name = "live_pcm"
dt_us = 1000
drain_timeout_s = 120  # a cold kernel cache compiles the cochlea during the drain

[drivers.mic]
type = "pcm_udp"
port = {port}
sample_rate_hz = 16000

[encoders.coch]
type = "cochlea"
inputs = ["mic"]
bands = 4

[readouts.r]
type = "spike_count"
inputs = ["coch"]
labels = ["a", "b", "c", "d", "e", "f", "g", "h"]

[sinks.out]
type = "file"
inputs = ["r"]
path = "{out}"
"""


def _live_pcm(tmp_path: Path, seed: int, settings: str,
              done: Callable[[dict], bool]) -> tuple[dict, dict]:  # fmt: skip
    """Run the LIVE_PCM pipeline (plus `settings` in [pipeline]), send it 0.3 s of noise in one
    burst of 10 ms datagrams, wait until `done(counters)` (a timeout of 2 min is the failure:
    a cold kernel cache compiles the encoder first), stop it; returns the counters then and
    after the drain."""
    from conftest import free_port

    from edgesnn.config import pipeline as pl
    from edgesnn.runtime.runner import Runtime

    port = free_port()
    raw = raw_frames(np.random.default_rng(seed).uniform(-0.5, 0.5, (4800, 1)))
    cfg = tmp_path / "pcm.toml"
    text = LIVE_PCM.format(port=port, out=tmp_path / "det.jsonl")
    cfg.write_text(text.replace("dt_us = 1000\n", "dt_us = 1000\n" + settings, 1),
                   encoding="utf-8")
    rt = Runtime(pl.load(str(cfg)))

    async def go() -> tuple[dict, dict]:
        task = asyncio.create_task(rt.run(install_signals=False))
        try:
            for _ in range(3000):
                if rt.state == "running" and rt.components["mic"]._sock is not None:
                    break
                await asyncio.sleep(0.01)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                for i in range(0, len(raw), 320):
                    tx.sendto(raw[i:i + 320], ("127.0.0.1", port))
            for _ in range(12000):
                if done(rt.counters()):
                    break
                await asyncio.sleep(0.01)
            before = rt.counters()
        finally:
            rt.request_stop()
            assert await asyncio.wait_for(task, 130) == 0
        return before, rt.counters()  # after: drained, everything handed over went through

    return asyncio.run(go())


def test_udp_pipeline_closes_steps_on_the_host_clock(tmp_path: Path) -> None:
    """pcm_udp in a running pipeline: 0.3 s of noise in one burst, then silence; the runtime
    closes the steps after the last frames on the host clock and no spike is late."""
    _, c = _live_pcm(tmp_path, 3, "", lambda c: c["coch"]["samples_in"] >= 4800
                     and c["coch"]["spikes"] > 0 and c["mic"].get("host_clock_steps", 0) >= 1)
    assert c["coch"]["samples_in"] == 4800 and c["coch"]["spikes"] > 0
    assert c["mic"]["host_clock_steps"] >= 1 and c["mic"]["frames_in"] == 4800
    assert c["coch"]["late_spikes"] == 0


def test_udp_steps_are_processed_when_their_samples_arrive(tmp_path: Path) -> None:
    """pcm_udp is `in_order`: the steps a batch of samples covers are processed at once, not
    held back by `lateness_us` (here 10 s, so a host-clock step could not have closed them)."""
    before, after = _live_pcm(tmp_path, 4, "lateness_us = 10000000\n",
                              lambda c: c["coch"]["spikes"] > 0)
    assert before["coch"]["spikes"] > 0
    assert before["mic"].get("host_clock_steps", 0) == 0  # no step closed on the host clock
    assert after["coch"]["late_spikes"] == 0 and after["mic"]["frames_in"] == 4800


def test_udp_a_stop_hands_over_what_the_driver_received(tmp_path: Path) -> None:
    """A stop while the branch is busy: pcm_udp reads what waits on its socket, hands it over
    with what it holds, and the branch drains all of it before the runtime returns 0."""

    from conftest import free_port

    from edgesnn.config import pipeline as pl

    port = free_port()
    raw = raw_frames(np.random.default_rng(7).uniform(-0.5, 0.5, (4800, 1)))
    cfg = tmp_path / "pcm.toml"
    cfg.write_text(LIVE_PCM.format(port=port, out=tmp_path / "det.jsonl"), encoding="utf-8")
    held = HeldBranch(pl.load(str(cfg)))
    rt = held.rt

    async def go() -> None:
        mic = rt.components["mic"]
        for _ in range(3000):
            if rt.state == "running" and mic._sock is not None:
                break
            await asyncio.sleep(0.01)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            tx.sendto(raw[:640], ("127.0.0.1", port))
            for _ in range(12000):  # through (a cold cache compiles the cochlea first)
                if rt.counters()["coch"]["samples_in"] == 320:
                    break
                await asyncio.sleep(0.01)
            held.hold()  # the branch's worker is busy from here
            tx.sendto(raw[640:1280], ("127.0.0.1", port))
            for _ in range(500):  # handed over: the driver waits for the branch
                if rt.counters()["mic"]["items"] == 640:
                    break
                await asyncio.sleep(0.002)
            for i in range(1280, len(raw), 640):
                tx.sendto(raw[i:i + 640], ("127.0.0.1", port))
            rt.request_stop()  # finish() reads what the socket still holds
            await asyncio.sleep(0.02)

    assert held.run(go) == 0
    c = rt.counters()
    assert c["mic"]["frames_in"] == 4800 and c["mic"]["queue_overflows"] == 0
    assert c["coch"]["samples_in"] == 4800


# --- pcm_stdin: hand-over on arrival, host clock ------------------------------------------------


def test_pcm_stdin_hands_each_burst_over_at_once_in_one_batch() -> None:
    """Bursts written into a real pipe before the driver looks: each wake-up hands everything
    over as one batch at the default `batch_us` (a timeout is the failure), every frame once
    and in order, a split frame waiting for its rest (no data to wait for), batches contiguous
    on the sample clock, which the host clock maps to."""
    rate, n, bursts = 16000, 1600, 3
    x = _ramp(bursts * n)
    raw = raw_frames(x)
    r, w = os.pipe()

    async def go() -> tuple[PcmStdinDriver, list, list[int]]:
        d = built(PcmStdinDriver, {"fd": r, "sample_rate_hz": rate})
        assert d.sensor_now_us() is None and not d.holds_data()
        it = d.batches().__aiter__()
        got: list = []
        nows: list[int] = []
        for k in range(bursts):
            piece = raw[2 * n * k:2 * n * (k + 1)]
            if k == 0:
                piece += raw[2 * n:2 * n + 1]  # half of the next burst's first frame
            elif k == 1:
                piece = piece[1:]
            os.write(w, piece)
            assert d.holds_data() == (k > 0)  # frames wait in the pipe (once it is known)
            got.append(await asyncio.wait_for(it.__anext__(), 5))
            assert not d.holds_data()  # the half frame is no data to wait for
            nows.append(d.sensor_now_us())
        nxt = asyncio.ensure_future(it.__anext__())
        await asyncio.sleep(0.05)
        assert not nxt.done()  # nothing left over
        await d.stop()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(nxt, 5)
        return d, got, nows

    try:
        d, got, nows = asyncio.run(go())
    finally:
        os.close(r)
        os.close(w)
    assert [len(b) for b in got] == [n] * bursts
    np.testing.assert_array_equal(np.concatenate([b.events for b in got]),
                                  x.astype(np.float32))
    for a, b in zip(got, got[1:]):
        assert b.t_start_us == a.t_end_us
    for b, now in zip(got, nows, strict=True):
        assert b.t_end_us - b.t_start_us == n * 1_000_000 // rate
        assert b.meta["t_recv_us"] > 0 and b.meta["sample_rate_hz"] == rate
        # on the sample clock: never before the first batch began
        assert now >= got[0].t_start_us
    st_ = d.status()
    assert st_["frames_in"] == len(x) and st_["bytes_in"] == len(raw)


def test_pcm_stdin_positive_batch_us_still_gathers() -> None:
    """A configured `batch_us` (as older pipelines set it) gathers what arrives meanwhile."""
    x = _ramp(320)
    raw = raw_frames(x)
    r, w = os.pipe()

    async def go() -> list:
        d = built(PcmStdinDriver, {"fd": r, "sample_rate_hz": 8000, "batch_us": 300_000})
        it = d.batches().__aiter__()
        nxt = asyncio.ensure_future(it.__anext__())
        os.write(w, raw[:320])
        while not d._read_pending:  # the first bytes are in; the driver gathers now
            await asyncio.sleep(0.001)
        os.write(w, raw[320:])
        got = [await asyncio.wait_for(nxt, 5)]
        await d.stop()
        return got

    try:
        got = asyncio.run(go())
    finally:
        os.close(r)
        os.close(w)
    assert len(got[0]) == 320
    np.testing.assert_array_equal(got[0].events, x.astype(np.float32))


LIVE_STDIN = LIVE_PCM.replace('type = "pcm_udp"\nport = {port}\n', 'type = "pcm_stdin"\npath = "{fifo}"\n')


def _live_stdin(tmp_path: Path, seed: int, settings: str,
                done: Callable[[dict], bool]) -> tuple[dict, dict]:  # fmt: skip
    """LIVE_PCM with pcm_stdin reading a named pipe: 0.3 s of noise written at once by a
    writer that stays connected; wait until `done(counters)` (a timeout of 2 min is the
    failure), stop; the counters then and after the drain."""
    from edgesnn.config import pipeline as pl
    from edgesnn.runtime.runner import Runtime

    fifo = tmp_path / "mic.pcm"
    os.mkfifo(fifo)
    raw = raw_frames(np.random.default_rng(seed).uniform(-0.5, 0.5, (4800, 1)))
    cfg = tmp_path / "pcm.toml"
    text = LIVE_STDIN.format(fifo=fifo, out=tmp_path / "det.jsonl")
    assert 'type = "pcm_stdin"' in text
    cfg.write_text(text.replace("dt_us = 1000\n", "dt_us = 1000\n" + settings, 1),
                   encoding="utf-8")
    rt = Runtime(pl.load(str(cfg)))
    release = threading.Event()

    def writer() -> None:
        with open(fifo, "wb", buffering=0) as f:  # blocks until the driver has it open
            f.write(raw)
            release.wait(180)

    async def go() -> tuple[dict, dict]:
        task = asyncio.create_task(rt.run(install_signals=False))
        th = threading.Thread(target=writer, daemon=True)
        th.start()
        try:
            for _ in range(12000):
                if done(rt.counters()):
                    break
                await asyncio.sleep(0.01)
            before = rt.counters()
        finally:
            rt.request_stop()
            assert await asyncio.wait_for(task, 130) == 0
            release.set()
            th.join(5)
        return before, rt.counters()

    return asyncio.run(go())


def test_stdin_pipeline_closes_steps_on_the_host_clock(tmp_path: Path) -> None:
    """pcm_stdin in a running pipeline: 0.3 s of noise at once, then the writer pauses; the
    runtime closes the steps after the last frames on the host clock and no spike is late."""
    _, c = _live_stdin(tmp_path, 5, "", lambda c: c["coch"]["samples_in"] >= 4800
                       and c["coch"]["spikes"] > 0 and c["mic"].get("host_clock_steps", 0) >= 1)
    assert c["coch"]["samples_in"] == 4800 and c["coch"]["spikes"] > 0
    assert c["mic"]["host_clock_steps"] >= 1 and c["mic"]["frames_in"] == 4800
    assert c["coch"]["late_spikes"] == 0 and c["mic"]["lost"] == 0


def test_stdin_steps_are_processed_when_their_samples_arrive(tmp_path: Path) -> None:
    """pcm_stdin is `in_order`: the steps a batch covers are processed at once, not held back
    by `lateness_us` (here 10 s, so a host-clock step could not have closed them)."""
    before, after = _live_stdin(tmp_path, 6, "lateness_us = 10000000\n",
                                lambda c: c["coch"]["spikes"] > 0)
    assert before["coch"]["spikes"] > 0
    assert before["mic"].get("host_clock_steps", 0) == 0
    assert after["coch"]["late_spikes"] == 0 and after["mic"]["frames_in"] == 4800


def test_stdin_a_stop_hands_over_what_waits_in_the_pipe(tmp_path: Path) -> None:
    """A stop while the branch is busy and the writer still connected: pcm_stdin reads the
    bytes waiting in its named pipe then (and no more), hands them over, and ends; the branch
    drains all of it before the runtime returns 0."""
    import errno

    from edgesnn.config import pipeline as pl

    fifo = tmp_path / "mic.pcm"
    os.mkfifo(fifo)
    raw = raw_frames(np.random.default_rng(8).uniform(-0.5, 0.5, (4800, 1)))
    cfg = tmp_path / "pcm.toml"
    cfg.write_text(LIVE_STDIN.format(fifo=fifo, out=tmp_path / "det.jsonl"), encoding="utf-8")
    held = HeldBranch(pl.load(str(cfg)))
    rt = held.rt
    w: int | None = None

    async def go() -> None:
        nonlocal w
        for _ in range(3000):  # the driver has its end of the pipe open
            try:
                w = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as e:
                assert e.errno == errno.ENXIO
                await asyncio.sleep(0.01)
        assert w is not None
        os.write(w, raw[:640])
        for _ in range(12000):  # through (a cold cache compiles the cochlea first)
            if rt.counters()["coch"]["samples_in"] == 320:
                break
            await asyncio.sleep(0.01)
        held.hold()  # the branch's worker is busy from here
        os.write(w, raw[640:1280])
        for _ in range(500):  # handed over: the driver waits for the branch
            if rt.counters()["mic"]["items"] == 640:
                break
            await asyncio.sleep(0.002)
        os.write(w, raw[1280:])  # waits in the pipe
        rt.request_stop()
        await asyncio.sleep(0.02)

    try:
        assert held.run(go) == 0
    finally:
        if w is not None:
            os.close(w)
    c = rt.counters()
    assert c["mic"]["frames_in"] == 4800 and c["coch"]["samples_in"] == 4800


def test_pcm_stdin_finish_ends_a_silent_stream_at_once() -> None:
    """finish() while the reader thread waits on a silent pipe (the writer connected): the
    stream ends without waiting for the writer, after the bytes waiting then."""
    raw = raw_frames(_ramp(400))
    r, w = os.pipe()

    async def go() -> list:
        d = built(PcmStdinDriver, {"fd": r, "sample_rate_hz": 8000})
        it = d.batches().__aiter__()
        os.write(w, raw[:400])
        got = [await asyncio.wait_for(it.__anext__(), 5)]
        nxt = asyncio.ensure_future(it.__anext__())
        await asyncio.sleep(0.05)  # the reader thread waits for bytes
        assert not nxt.done()
        os.write(w, raw[400:])
        assert d.finish()
        got.append(await asyncio.wait_for(nxt, 5))
        os.write(w, raw[:400])  # after finish(): not read
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(it.__anext__(), 5)
        return got

    try:
        got = asyncio.run(go())
    finally:
        os.close(r)
        os.close(w)
    assert sum(len(b) for b in got) == 400
    np.testing.assert_array_equal(np.concatenate([b.events for b in got]),
                                  _ramp(400).astype(np.float32))
