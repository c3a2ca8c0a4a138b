"""Serial accelerometer: frame and line parsers, and the driver on a pseudo-terminal peer."""

from __future__ import annotations

import asyncio
import os
import struct
import tty
from pathlib import Path

import numpy as np
import pytest
from edgesnn_drivers.vibration.serial_accel import (
    MAX_PAYLOAD,
    AccelSerialDriver,
    FrameParser,
    LineParser,
    crc16_ccitt,
    encode_frame,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from edgesnn.encoders.generic import built


def ref_crc(data: bytes) -> int:
    """Bit-by-bit CRC-16/CCITT-FALSE."""
    crc = 0xFFFF
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


@given(st.binary(max_size=64))
@settings(max_examples=100, deadline=None)
def test_crc_matches_bitwise_reference(data: bytes) -> None:
    assert crc16_ccitt(data) == ref_crc(data)


def test_crc_check_value_and_frame_layout() -> None:
    assert crc16_ccitt(b"123456789") == 0x29B1
    f = encode_frame(0x1234, np.array([[1, -2, 3]]), "int16")
    assert f[:2] == b"\xa5\x5a" and f[2] == 1 and f[3] == 1 and f[4] == 3 and f[5] == 0
    assert struct.unpack_from("<HH", f, 6) == (0x1234, 6)
    assert struct.unpack_from("<3h", f, 10) == (1, -2, 3)
    assert struct.unpack_from("<H", f, 16)[0] == ref_crc(f[2:16]) and len(f) == 18


def frames(n: int, ch: int = 3, rows: int = 4, typ: str = "int16", seq0: int = 0
           ) -> tuple[list[bytes], np.ndarray]:
    rng = np.random.default_rng(n)
    vals = rng.integers(-1000, 1000, size=(n, rows, ch))
    return [encode_frame(seq0 + i, vals[i], typ) for i in range(n)], vals.reshape(-1, ch)


@pytest.mark.parametrize("typ", ["int16", "int32", "float32"])
def test_frames_in_any_chunking(typ: str) -> None:
    fs, vals = frames(20, typ=typ)
    stream = b"".join(fs)
    for step in (1, 3, 17, len(stream)):
        p = FrameParser(3)
        out = [a for i in range(0, len(stream), step) for a in p.feed(stream[i:i + step])]
        np.testing.assert_array_equal(np.concatenate(out), vals)
        assert (p.frames, p.bad_frames, p.garbage_bytes, p.lost_frames) == (20, 0, 0, 0)


def test_resync_after_garbage_and_corruption() -> None:
    fs, vals = frames(6)
    bad = bytearray(fs[2])
    bad[12] ^= 0x40  # a payload bit flip: CRC fails
    cut = fs[4][:9]  # a frame cut short by a reconnect
    stream = b"\x00\xa5garbage\xa5\x5a\x07" + fs[0] + fs[1] + bytes(bad) + b"\xa5" + fs[3] \
        + cut + fs[5]
    p = FrameParser(3)
    out = np.concatenate(p.feed(stream))
    np.testing.assert_array_equal(out, np.concatenate([vals[0:8], vals[12:16], vals[20:24]]))
    assert p.frames == 4
    assert p.bad_frames >= 3  # the fake header, the corrupt frame, the cut one
    assert p.lost_frames == 2 and p.lost_samples == 8  # seq 2 and 4 missing
    assert p.garbage_bytes > 0


def test_channel_mismatch_and_seq_wrap() -> None:
    p = FrameParser(2)
    a = encode_frame(65535, np.ones((1, 2)))
    b = encode_frame(0, np.ones((1, 2)))  # wraps: not a loss
    c = encode_frame(1, np.ones((1, 3)))  # three channels: counted as bad
    assert len(p.feed(a + b + c)) == 2
    assert p.lost_frames == 0 and p.bad_frames == 1


@settings(max_examples=150, deadline=None)
@given(garbage=st.lists(st.binary(max_size=40), min_size=7, max_size=7),
       chunk=st.integers(1, 64))
def test_fuzz_frames_between_garbage_are_all_recovered(garbage: list[bytes], chunk: int
                                                       ) -> None:
    fs, vals = frames(6)
    stream = b"".join(g + f for g, f in zip(garbage, fs)) + garbage[6]
    stream += b"\x00" * (MAX_PAYLOAD + 16)  # lets any fake header in the garbage run out
    p = FrameParser(3)
    out = []
    for i in range(0, len(stream), chunk):
        out += p.feed(stream[i:i + chunk])
        assert len(p.buf) <= MAX_PAYLOAD + 12 + chunk
    got = np.concatenate(out) if out else np.zeros((0, 3))
    # random garbage could carry a frame with a valid CRC only by design, which it does not
    np.testing.assert_array_equal(got, vals)


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=600))
def test_fuzz_random_bytes(data: bytes) -> None:
    p = FrameParser(3)
    for a in p.feed(data):
        assert a.shape[1] == 3
    assert len(p.buf) <= len(data) and len(p.buf) <= MAX_PAYLOAD + 12


def test_line_parser() -> None:
    p = LineParser(3, max_line_bytes=40)
    text = b"0.1,0.2,0.3\r\n1 2 3\n\n4;5;6\nbad,line,x\n7,8\n" + b"9" * 100 + b"\n10\t11\t12\n"
    out = [a for i in range(0, len(text), 5) for a in p.feed(text[i:i + 5])]
    np.testing.assert_allclose(np.concatenate(out),
                               [[0.1, 0.2, 0.3], [1, 2, 3], [4, 5, 6], [10, 11, 12]])
    assert p.lines == 4 and p.bad_lines == 3


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=400), chunk=st.integers(1, 50))
def test_fuzz_lines(data: bytes, chunk: int) -> None:
    p = LineParser(2, max_line_bytes=32)
    for i in range(0, len(data), chunk):
        for a in p.feed(data[i:i + chunk]):
            assert a.shape[1] == 2
        assert len(p.buf) <= 32 + chunk


# --- the driver on a pseudo-terminal --------------------------------------------------------------


def open_pty() -> tuple[int, int, str]:
    master, slave = os.openpty()
    tty.setraw(slave)  # binary-clean, as a USB serial adapter
    return master, slave, os.ttyname(slave)


async def collect(d: AccelSerialDriver, want: int, writer, timeout: float = 10.0  # noqa: ANN001
                  ) -> list:
    got: list = []

    async def consume() -> None:
        n = 0
        async for b in d.batches():
            got.append(b)
            n += len(b)
            if n >= want:
                return

    task = asyncio.create_task(consume())
    await writer()
    try:
        await asyncio.wait_for(task, timeout)
    finally:
        await d.stop()
    return got


def test_csv_over_a_pty() -> None:
    master, slave, port = open_pty()
    d = built(AccelSerialDriver, {"port": port, "sample_rate_hz": 1000, "channels": 3,
                                  "scale": 0.5})
    lines = b"".join(b"%d,%d,%d\n" % (i, -i, 2 * i) for i in range(200))

    async def writer() -> None:
        await asyncio.sleep(0.2)
        for i in range(0, len(lines), 97):
            os.write(master, lines[i:i + 97])
            await asyncio.sleep(0.002)
        os.write(master, b"oops\n")

    try:
        got = asyncio.run(collect(d, 200, writer))
    finally:
        os.close(master)
        os.close(slave)
    x = np.concatenate([b.events for b in got])
    i = np.arange(200)
    np.testing.assert_allclose(x, np.stack([i, -i, 2 * i], axis=1) * 0.5)
    assert all(b.kind == "samples" and b.meta["sample_rate_hz"] == 1000 for b in got)
    for a, b in zip(got, got[1:]):
        assert a.t_end_us == b.t_start_us
    assert got[-1].t_end_us - got[0].t_start_us == 200_000
    assert d.status()["lines"] == 200


def test_finish_hands_over_what_waits_in_the_port_and_ends() -> None:
    """At a stop: the lines waiting in the port then are read and handed over, and `batches`
    ends (without finish it would wait for more)."""
    master, slave, port = open_pty()
    d = built(AccelSerialDriver, {"port": port, "sample_rate_hz": 1000, "channels": 3})
    lines = [b"%d,%d,%d\n" % (i, -i, 2 * i) for i in range(300)]

    async def go() -> list:
        it = d.batches().__aiter__()
        nxt = asyncio.ensure_future(it.__anext__())
        for _ in range(2000):  # the port is open
            if d.source.connected:
                break
            await asyncio.sleep(0.005)
        os.write(master, b"".join(lines[:100]))
        got = [await asyncio.wait_for(nxt, 10)]
        n = len(got[0])
        while n < 100:
            got.append(await asyncio.wait_for(it.__anext__(), 10))
            n += len(got[-1])
        rest = b"".join(lines[100:])
        os.write(master, rest)  # nobody asks for a batch: it waits in the port
        for _ in range(1000):
            if d.source._ser.in_waiting == len(rest):
                break
            await asyncio.sleep(0.005)
        assert d.finish()
        try:
            while True:
                got.append(await asyncio.wait_for(it.__anext__(), 10))
        except StopAsyncIteration:
            pass
        await d.stop()
        return got

    try:
        got = asyncio.run(go())
    finally:
        os.close(master)
        os.close(slave)
    x = np.concatenate([b.events for b in got])
    i = np.arange(300)
    np.testing.assert_allclose(x, np.stack([i, -i, 2 * i], axis=1))


def test_binary_frames_over_a_pty_with_garbage() -> None:
    master, slave, port = open_pty()
    fs, vals = frames(30, ch=3, rows=8)
    del fs[10]  # one frame lost on the wire
    stream = b"\xff\x00noise" + b"".join(f + (b"\x13\x11\r\n" if i % 7 == 0 else b"")
                                         for i, f in enumerate(fs))
    d = built(AccelSerialDriver, {"port": port, "sample_rate_hz": 800, "format": "binary"})

    async def writer() -> None:
        await asyncio.sleep(0.2)
        for i in range(0, len(stream), 101):
            os.write(master, stream[i:i + 101])
            await asyncio.sleep(0.001)

    try:
        got = asyncio.run(collect(d, 29 * 8, writer))
    finally:
        os.close(master)
        os.close(slave)
    x = np.concatenate([b.events for b in got])
    np.testing.assert_array_equal(x, np.delete(vals, range(80, 88), axis=0))
    assert sum(b.dropped_before for b in got) == 8
    s = d.status()
    assert s["lost_frames"] == 1 and s["frames"] == 29 and s["garbage_bytes"] >= 7
    # the sample clock skips the lost frame's 8 samples (10 ms at 800 Hz)
    assert got[-1].t_end_us - got[0].t_start_us == 30 * 8 * 1_000_000 // 800


def test_missing_device_is_retried_until_it_appears(tmp_path: Path) -> None:
    link = tmp_path / "ttyACCEL"
    master, slave, port = open_pty()
    d = built(AccelSerialDriver, {"port": str(link), "sample_rate_hz": 100, "channels": 1,
                                  "reconnect_max_s": 0.1})

    async def writer() -> None:
        await asyncio.sleep(0.5)  # the device is absent for a while
        assert d.status()["open_failures"] >= 2 and not d.status()["connected"]
        os.symlink(port, link)
        await asyncio.sleep(0.5)
        assert d.status()["connected"]
        os.write(master, b"1\n2\n3\n")

    try:
        got = asyncio.run(collect(d, 3, writer))
    finally:
        os.close(master)
        os.close(slave)
    assert np.concatenate([b.events for b in got])[:, 0].tolist() == [1, 2, 3]


def test_max_reconnects_gives_up(tmp_path: Path) -> None:
    d = built(AccelSerialDriver, {"port": str(tmp_path / "absent"), "sample_rate_hz": 100,
                                  "max_reconnects": 2, "reconnect_max_s": 0.05})

    async def run() -> None:
        async for _ in d.batches():
            pass

    with pytest.raises(ConnectionError, match="gave up after 3"):
        asyncio.run(asyncio.wait_for(run(), 10))
    assert d.status()["open_failures"] == 3


def test_device_that_vanishes_mid_stream_is_reopened(tmp_path: Path) -> None:
    link = tmp_path / "ttyACCEL"
    m1, s1, p1 = open_pty()
    m2, s2, p2 = open_pty()
    os.symlink(p1, link)
    d = built(AccelSerialDriver, {"port": str(link), "sample_rate_hz": 100, "channels": 1,
                                  "reconnect_max_s": 0.1})

    async def writer() -> None:
        await asyncio.sleep(0.3)
        os.write(m1, b"1\n2\n")
        await asyncio.sleep(0.3)
        os.close(m1)  # the adapter is unplugged ...
        os.close(s1)
        os.unlink(link)
        os.symlink(p2, link)  # ... and comes back as another device node
        await asyncio.sleep(0.6)
        os.write(m2, b"3\n4\n")

    try:
        got = asyncio.run(collect(d, 4, writer))
    finally:
        os.close(m2)
        os.close(s2)
    assert np.concatenate([b.events for b in got])[:, 0].tolist() == [1, 2, 3, 4]
    assert d.status()["reconnects"] >= 1
    # after the reconnect the sample clock jumps forward to the wall clock, never back
    assert got[-1].t_start_us - got[0].t_end_us >= 300_000
