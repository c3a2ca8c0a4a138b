"""Serial accelerometer driver (`accel_serial`): CSV text lines or binary frames over pyserial.

The port is opened through `SerialSource`, which retries a missing or vanished device with
exponential backoff. Samples become "samples" batches (float32 frames x `channels`, times
`scale`), timed by the sample clock: wall-clock µs of the first sample plus frames received x
1e6 / `sample_rate_hz`; after a reconnect the clock is moved forward to the wall clock if it
fell behind, never backwards.

Text format (`format = "csv"`): one frame per line, `channels` numbers separated by commas,
semicolons, tabs or spaces, ended by LF or CR LF. A line with the wrong number of fields or a
non-number, or longer than `max_line_bytes`, is dropped and counted (`bad_lines`, and one lost
frame in `dropped_before` of the next batch).

Binary format (`format = "binary"`): frames of::

    offset size field
    0      2    sync word 0xA5 0x5A
    2      1    version, 1
    3      1    sample type: 1 int16, 2 int32, 3 float32 (little-endian)
    4      1    channels (1..32)
    5      1    flags, 0 (reserved)
    6      2    seq, uint16 LE, +1 per frame (wraps at 65536)
    8      2    L, payload bytes, uint16 LE; 0 < L <= 4096, a whole number of frames
    10     L    samples, interleaved by frame (frame 0: ch 0, ch 1, ..., frame 1: ...)
    10+L   2    CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xor-out)
                of bytes 2 .. 10+L-1, uint16 LE

The parser looks for the sync word, checks the header fields and the CRC, and on any failure
counts a bad frame and searches again from the byte after that sync word, so it
resynchronises after garbage, a cut frame or a corrupt one. Bytes skipped while searching are
counted (`garbage_bytes`); a frame for a different channel count is counted as bad. A jump in
`seq` counts the missing frames (`lost_frames`) and their samples, estimated from the frame
that follows, in `dropped_before`. The buffer never holds more than one maximal frame.
"""

from __future__ import annotations

import binascii
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from edgesnn_drivers.serial_port import SERIAL_SCHEMA, SerialSource

from edgesnn.components import Driver, register
from edgesnn.config.schema import Field, Schema
from edgesnn.events import EventBatch

SYNC = b"\xa5\x5a"
VERSION = 1
HEADER = struct.Struct("<2sBBBBHH")  # sync, version, type, channels, flags, seq, length
MAX_PAYLOAD = 4096
SAMPLE_TYPES = {1: np.dtype("<i2"), 2: np.dtype("<i4"), 3: np.dtype("<f4")}
TYPE_CODES = {"int16": 1, "int32": 2, "float32": 3}


def crc16_ccitt(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/CCITT-FALSE of data (check value of b"123456789": 0x29B1)."""
    return binascii.crc_hqx(bytes(data), 0xFFFF)


def encode_frame(seq: int, samples: np.ndarray, sample_type: str = "int16") -> bytes:
    """One binary frame of samples (frames, channels) as a device sends it."""
    code = TYPE_CODES[sample_type]
    samples = np.atleast_2d(samples)
    payload = np.ascontiguousarray(samples, SAMPLE_TYPES[code]).tobytes()
    head = HEADER.pack(SYNC, VERSION, code, samples.shape[1], 0, seq & 0xFFFF, len(payload))
    body = head[2:] + payload
    return SYNC + body + struct.pack("<H", crc16_ccitt(body))


class FrameParser:
    """Incremental parser of the binary frame format; see the module docstring."""

    def __init__(self, channels: int):
        self.channels = channels
        self.buf = bytearray()
        self.frames = 0
        self.bad_frames = 0
        self.garbage_bytes = 0
        self.lost_frames = 0
        self.lost_samples = 0  # sample frames (rows) in the frames lost, estimated
        self._next_seq: int | None = None

    def reset(self) -> None:
        """Forget partial input and the sequence (after a reconnect)."""
        self.garbage_bytes += len(self.buf)
        self.buf.clear()
        self._next_seq = None

    def feed(self, data: bytes) -> list[np.ndarray]:
        """Arrays (frames, channels) float64 of every complete valid frame in data so far."""
        buf = self.buf
        buf += data
        out: list[np.ndarray] = []
        pos = 0
        while True:
            i = buf.find(SYNC, pos)
            if i < 0:
                keep = 1 if buf.endswith(SYNC[:1]) else 0  # a sync word may straddle chunks
                self.garbage_bytes += len(buf) - pos - keep
                del buf[: len(buf) - keep]
                return out
            self.garbage_bytes += i - pos
            pos = i
            if len(buf) - i < HEADER.size:
                break
            _, ver, typ, ch, flags, seq, n = HEADER.unpack_from(buf, i)
            dt = SAMPLE_TYPES.get(typ)
            if (ver != VERSION or dt is None or not 1 <= ch <= 32 or flags != 0
                    or not 0 < n <= MAX_PAYLOAD or n % (ch * dt.itemsize)):
                self.bad_frames += 1
                pos = i + 1
                continue
            end = i + HEADER.size + n + 2
            if len(buf) < end:
                break
            (crc,) = struct.unpack_from("<H", buf, end - 2)
            if crc != crc16_ccitt(memoryview(buf)[i + 2: end - 2]):
                self.bad_frames += 1
                pos = i + 1
                continue
            pos = end
            if ch != self.channels:
                self.bad_frames += 1
                continue
            rows = n // (ch * dt.itemsize)
            if self._next_seq is not None and seq != self._next_seq:
                gap = (seq - self._next_seq) & 0xFFFF
                if gap < 0x8000:  # else a restart or a stale frame: not counted as loss
                    self.lost_frames += gap
                    self.lost_samples += gap * rows
            self._next_seq = (seq + 1) & 0xFFFF
            self.frames += 1
            a = np.frombuffer(bytes(buf[i + HEADER.size: end - 2]), dt).reshape(rows, ch)
            out.append(a.astype(np.float64))
        del buf[:pos]
        return out


class LineParser:
    """Incremental parser of numeric text lines with `channels` fields each."""

    def __init__(self, channels: int, max_line_bytes: int = 256):
        self.channels = channels
        self.max_line_bytes = max_line_bytes
        self.buf = bytearray()
        self.lines = 0
        self.bad_lines = 0
        self._skipping = False  # inside an overlong line: drop until its end

    def reset(self) -> None:
        if self.buf or self._skipping:
            self.bad_lines += 1
        self.buf.clear()
        self._skipping = False

    def feed(self, data: bytes) -> list[np.ndarray]:
        """Arrays (frames, channels) float64 of the complete lines in data so far."""
        self.buf += data
        rows: list[list[float]] = []
        start = 0
        buf = self.buf
        while True:
            j = buf.find(b"\n", start)
            if j < 0:
                break
            line = bytes(buf[start:j])
            start = j + 1
            if self._skipping:
                self._skipping = False
                continue
            self._line(line, rows)
        del buf[:start]
        if len(buf) > self.max_line_bytes:
            self.bad_lines += 0 if self._skipping else 1
            self._skipping = True
            buf.clear()
        return [np.array(rows, np.float64).reshape(-1, self.channels)] if rows else []

    def _line(self, line: bytes, rows: list[list[float]]) -> None:
        s = line.strip()
        if not s:
            return
        if len(line) > self.max_line_bytes:
            self.bad_lines += 1
            return
        for d in (b",", b";", b"\t"):
            s = s.replace(d, b" ")
        fields = s.split()
        if len(fields) != self.channels:
            self.bad_lines += 1
            return
        try:
            row = [float(f) for f in fields]
        except ValueError:
            self.bad_lines += 1
            return
        self.lines += 1
        rows.append(row)


@register
class AccelSerialDriver(Driver):
    """Live accelerometer samples over a serial port, CSV lines or binary frames."""

    type_name = "accel_serial"
    batch_kind = "samples"
    summary = "Serial accelerometer (CSV lines or CRC-checked binary frames), with reconnect."
    schema = SERIAL_SCHEMA | Schema(
        {
            "format": Field(str, default="csv", choices=("csv", "binary"),
                            doc="Line-based text or the binary frame format."),
            "channels": Field(int, default=3, min=1, max=32, doc="Axes per sample frame."),
            "sample_rate_hz": Field(int, min=1, max=10_000_000, doc="Nominal sample rate."),
            "scale": Field(float, default=1.0, doc="Multiplier to physical units (e.g. g)."),
            "max_line_bytes": Field(int, default=256, min=8, doc="Longest text line accepted."),
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self.source = SerialSource(params, on_connect=self._connected)
        self.channels = params["channels"]
        self.rate = params["sample_rate_hz"]
        self.parser: FrameParser | LineParser = (
            FrameParser(self.channels) if params["format"] == "binary"
            else LineParser(self.channels, params["max_line_bytes"])
        )
        self.frames_in = 0
        self.batches_out = 0
        self._origin_us: int | None = None
        self._reconnected = False
        self._connects = 0
        self._lost_seen = 0

    def _connected(self, ser: Any) -> None:
        self._connects += 1
        if self._connects > 1:
            self._reconnected = True

    def sensor_shape(self) -> tuple[int, ...]:
        return (self.channels,)

    def finish(self) -> bool:
        """Read the bytes waiting in the port now (and no more), hand over their samples, end."""
        self.source.finish()
        return True

    async def stop(self) -> None:
        self.source.close()

    def _lost(self) -> int:
        p = self.parser
        total = p.lost_samples if isinstance(p, FrameParser) else p.bad_lines
        new = total - self._lost_seen
        self._lost_seen = total
        return new

    async def batches(self) -> AsyncIterator[EventBatch]:
        scale = self.params["scale"]
        meta = {"sample_rate_hz": self.rate, "channels": self.channels,
                "port": self.params["port"]}
        async for chunk in self.source.chunks():
            if self._reconnected:
                self._reconnected = False
                self.parser.reset()
                self._resync_clock()
            parts = self.parser.feed(chunk)
            if not parts:
                continue
            x = np.concatenate(parts) if len(parts) > 1 else parts[0]
            x = (x * scale if scale != 1.0 else x).astype(np.float32)
            lost = self._lost()
            if self._origin_us is None:
                self._origin_us = time.time_ns() // 1000
            elif lost:  # keep the sample clock on time across lost frames
                self.frames_in += lost if isinstance(self.parser, FrameParser) else 0
            f0 = self.frames_in
            self.frames_in += x.shape[0]
            t0 = self._origin_us + f0 * 1_000_000 // self.rate
            t1 = self._origin_us + self.frames_in * 1_000_000 // self.rate
            yield EventBatch(self.id, self.batches_out, t0, t1, x, "samples", lost, meta)
            self.batches_out += 1

    def _resync_clock(self) -> None:
        if self._origin_us is None:
            return
        now = time.time_ns() // 1000
        t_next = self._origin_us + self.frames_in * 1_000_000 // self.rate
        if now > t_next:
            self._origin_us += now - t_next

    def status(self) -> dict[str, Any]:
        p = self.parser
        s = dict(self.source.status(), frames_in=self.frames_in, batches=self.batches_out)
        if isinstance(p, FrameParser):
            s.update(frames=p.frames, bad_frames=p.bad_frames, garbage_bytes=p.garbage_bytes,
                     lost_frames=p.lost_frames)
        else:
            s.update(lines=p.lines, bad_lines=p.bad_lines)
        return s
