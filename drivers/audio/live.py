"""Live PCM audio: `pcm_udp` (datagrams on a UDP port) and `pcm_stdin` (a byte stream on a file
descriptor, by default standard input).

Both deliver "samples" batches: float32 (frames x channels) scaled to [-1, 1), with
`meta["sample_rate_hz"]`. Samples are stored as one of the ALSA/arecord formats (`U8`, `S8`,
`S16_LE`, `S16_BE`, `S24_3LE`, `S24_3BE`, `S32_LE`, `S32_BE`, `FLOAT_LE`, `FLOAT64_LE`, `A_LAW`,
`MU_LAW`), interleaved by frame. Time is the sample clock: the wall-clock time (Unix µs) of
the first data received, plus frames received x 1e6 / sample_rate_hz, so timestamps have no
network or scheduling jitter.

Standard input, e.g.::

    arecord -t raw -f S16_LE -r 16000 -c 1 | edgesnn run pipelines/keywords_live.toml

with ``type = "pcm_stdin"``, ``sample_rate_hz = 16000``. The stream ends at end of file; a
trailing partial frame is counted in `status()["trailing_bytes"]`. With ``path`` set (a named
pipe such as ``mkfifo /run/mic.pcm; arecord -t raw ... > /run/mic.pcm``, or a device file) the
source is opened by name instead: a path that cannot be opened is retried with backoff, and
when the writer goes away (end of file) the path is reopened with backoff and waits for the
next writer, counted in `lost` (``reopen = false`` ends the stream there instead).

Latency (`pcm_stdin`): every byte waiting when the source becomes readable (up to `READ_MAX`
per wake-up) is handed over at once as one batch of whole frames (`batch_us = 0`, the default;
a positive `batch_us` gathers that long after the first bytes); a partial frame waits for its
rest. `sensor_now_us` maps the host clock to the sample clock (`ArrivalOffset`: the start of
each read's frames against its arrival), so the runtime closes steps on the host clock when
the writer pauses; a reopened source starts a new offset.

`pcm_udp` listens on 127.0.0.1 by default, like every network-facing default of edgesnn; set
``host = "0.0.0.0"`` (or one interface's address) to accept audio from other machines.

UDP datagram layout (``header = "none"``, the default): the payload is whole interleaved frames
and nothing else, e.g. ``arecord -t raw -f S16_LE -r 16000 | socat -b 640 - udp:host:5005``
(the block size must be a multiple of the frame size). A datagram whose length is not a whole
number of frames is dropped and counted (`bad_datagrams`). Lost datagrams cannot be detected.

UDP datagram layout (``header = "epcm"``): a 16-byte little-endian header, then whole frames::

    offset size field
    0      4    magic  b"EPCM"
    4      8    uint64 first_frame   index of the payload's first frame since the sender started
    12     2    uint16 channels      must equal the configured channels
    14     2    uint16 sample_bytes  bytes per sample, must match sample_format
    16     ...  payload: frames x channels x sample_bytes, interleaved

With the header, lost datagrams are counted as dropped frames (`dropped_before` of the next
batch) and time skips over them; a datagram older than the last one (reordered or duplicated)
is dropped and counted (`late_datagrams`); a sender restart (first_frame going back by more
than one second of frames) starts a new frame count without a time jump backwards.

A port that cannot be bound (in use, address not yet configured) is retried with backoff;
when no datagram arrives for `lost_after_s` the sender counts as lost (`lost`; `connected` is
false until the next datagram, and /health reports it), the socket is reopened with backoff
and the sample clock restarts from the wall clock at the next datagram (never going
backwards).

Latency (`pcm_udp`): the socket is drained whenever it is readable (every waiting datagram, up
to `DRAIN_MAX` per wake-up) and what arrived is handed over at once as one batch (`batch_us =
0`, the default; a positive `batch_us` gathers that long first); only a gap of lost frames
(`epcm`) splits it, as time must stay uniform within a batch. `sensor_now_us` maps the host
clock to the sample clock (`ArrivalOffset`: the start of each datagram's frames against its
arrival), so the runtime closes steps on the host clock when no datagram comes; a sender
restart or a loss of more than `MAX_GAP_US` of frames starts a new offset.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import logging
import os
import select
import socket
import struct
import termios
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from edgesnn_drivers.arrival import ArrivalOffset, mono_us
from edgesnn_drivers.audio.pcm import ALSA_FORMATS, PcmFormat, decode
from edgesnn_drivers.dvs.udp import udp_kernel_drops
from edgesnn_drivers.udpsock import bind_udp, recv_waiting

from edgesnn.backoff import Backoff, pause
from edgesnn.components import Driver, port_claim, register
from edgesnn.config.schema import Field, Schema
from edgesnn.events import MAX_GAP_US, EventBatch

log = logging.getLogger(__name__)

EPCM_MAGIC = b"EPCM"
EPCM_HEADER = struct.Struct("<4sQHH")  # 16 bytes
#: pcm_stdin: bytes asked for per read, and taken per wake-up at most
READ_CHUNK = 1 << 16
READ_MAX = 1 << 20

PCM_SCHEMA = Schema(
    {
        "sample_rate_hz": Field(int, min=1, max=10_000_000, doc="Frames per second."),
        "channels": Field(int, default=1, min=1, max=256, doc="Interleaved channels per frame."),
        "sample_format": Field(str, default="S16_LE", choices=tuple(ALSA_FORMATS),
                               doc="Sample storage (arecord -f names)."),
        "batch_us": Field(int, default=0, min=0,
                          doc="Wall time to gather frames after the first ones before handing "
                          "a batch over (µs); 0: hand over what arrived at once."),
        "reconnect_max_s": Field(float, default=5.0, min=0.01, doc="Longest reopen delay."),
        "max_reconnects": Field(int, default=-1,
                                doc="Give up after this many failed opens in a row (-1: never)."),
    }
)


def epcm_datagram(first_frame: int, channels: int, sample_bytes: int, payload: bytes) -> bytes:
    """One `epcm` datagram (header + payload), as a sender builds it."""
    return EPCM_HEADER.pack(EPCM_MAGIC, first_frame, channels, sample_bytes) + payload


class _SampleClock:
    """Frame counter -> sensor time: the wall-clock µs of the first frame + frames / rate."""

    def __init__(self, rate_hz: int):
        self.rate_hz = rate_hz
        self.origin_us: int | None = None
        self.frames = 0
        self._floor_us = -(1 << 62)  # the end of the frames before a rebase

    def span(self, n: int, now_us: int | None = None) -> tuple[int, int]:
        """Sensor time of the next n frames; the first frames after a start or a rebase
        begin at `now_us` (their arrival on the wall clock; default: this moment)."""
        if self.origin_us is None:
            now = time.time_ns() // 1000 if now_us is None else now_us
            self.origin_us = max(now, self._floor_us)
        f0 = self.frames
        self.frames += n
        return self.at(f0), self.at(self.frames)

    def at(self, frame: int) -> int:
        """Sensor time of a frame of the current count (after the first `span`)."""
        assert self.origin_us is not None
        return self.origin_us + frame * 1_000_000 // self.rate_hz

    def rebase(self) -> None:
        """Restart from the wall clock at the next frame, never before the last end."""
        if self.origin_us is not None:
            self._floor_us = self.at(self.frames)
            self.origin_us = None
        self.frames = 0


class _PcmDriver(Driver):
    batch_kind = "samples"

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self.fmt: PcmFormat = ALSA_FORMATS[params["sample_format"]]
        self.channels = int(params["channels"])
        self.rate = int(params["sample_rate_hz"])
        self.frame_bytes = self.fmt.container_bytes * self.channels
        self.clock = _SampleClock(self.rate)
        self.frames_in = 0
        self.batches_out = 0
        self._meta = {"sample_rate_hz": self.rate, "channels": self.channels}
        self.open_failures = 0
        self.lost = 0
        self.reopens = 0
        self.last_error = ""
        #: host clock -> sample clock: the start of each read's frames against its arrival
        self.host_clock = ArrivalOffset()

    def sensor_now_us(self) -> int | None:
        """The sample-clock time of this moment (None before the first frames)."""
        return self.host_clock.now_us()

    def _open_failed(self, what: str, e: BaseException, failures: int, backoff: Backoff
                     ) -> float:
        """Count a failed open; the delay before the next try (ConnectionError at the limit)."""
        self.open_failures += 1
        self.last_error = str(e)
        limit = self.params["max_reconnects"]
        if 0 <= limit < failures:
            raise ConnectionError(f"{what}: gave up after {failures} attempts: {e}") from e
        delay = backoff.next_delay()
        log.warning("%s unavailable (%s); retrying in %.2f s", what, e, delay)
        return delay

    def sensor_shape(self) -> tuple[int, ...]:
        return (self.channels,)

    def _batch(self, raw: bytes, dropped: int = 0, now_us: int | None = None,
               meta: dict[str, Any] | None = None) -> EventBatch:
        x = decode(raw, self.fmt, self.channels)
        t0, t1 = self.clock.span(x.shape[0], now_us)
        self.frames_in += x.shape[0]
        b = EventBatch(self.id, self.batches_out, t0, t1, x, "samples", dropped,
                       self._meta if meta is None else meta)
        self.batches_out += 1
        return b


@register
class PcmUdpDriver(_PcmDriver):
    """Live PCM frames from UDP datagrams (raw, or with the `epcm` header for loss counting)."""

    in_order = True  # samples are placed by arrival: a batch is complete to its end
    type_name = "pcm_udp"
    summary = "Live PCM audio over UDP (raw frames or EPCM-framed datagrams)."

    @classmethod
    def claims(cls, params: dict[str, Any], base_dir: str) -> list[Any]:
        """The UDP port it binds."""
        return port_claim("udp", params["host"], params["port"])
    schema = PCM_SCHEMA | Schema(
        {
            "batch_us": Field(int, default=0, min=0,
                              doc="Wall time to gather datagrams before handing a batch over "
                              "(µs); 0: hand over what arrived at once."),
            "host": Field(str, default="127.0.0.1",
                          doc="Address to listen on (loopback by default; 0.0.0.0 accepts "
                          "datagrams from the network)."),
            "port": Field(int, min=0, max=65535, doc="UDP port to listen on (0: any free)."),
            "header": Field(str, default="none", choices=("none", "epcm"),
                            doc="Datagram layout (see the driver documentation)."),
            "queue_datagrams": Field(int, default=4096, min=1,
                                     doc="Datagrams held before new ones are dropped."),
            "rcvbuf_bytes": Field(int, default=1 << 20, min=0,
                                  doc="Socket receive buffer (SO_RCVBUF); 0 keeps the default."),
            "lost_after_s": Field(float, default=2.0, min=0.01,
                                  doc="Silence after which the sender counts as lost and the "
                                  "socket is reopened after a backoff (it stays open until "
                                  "then, so nothing sent meanwhile is lost)."),
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self.datagrams = 0
        self.bad_datagrams = 0
        self.late_datagrams = 0
        self.queue_overflows = 0
        self.lost_frames = 0
        self.restarts = 0
        self.socket_errors = 0
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[bytes] = []  # received, not yet taken by the batch loop
        self._first_wall = 0  # wall clock µs of the first pending datagram's arrival
        self._recv_mono = 0  # monotonic µs of the newest datagram's arrival
        self._wake = asyncio.Event()
        self._next_frame: int | None = None  # expected first_frame of the next epcm datagram
        self._pending_drop = 0
        self._kdrops = (0, -1, 0)  # (drops of closed sockets, inode, drops of the current one)
        self.bound_port: int | None = None
        self._closing = False
        self._finished = False  # shutdown: no more reading; batches() ends once empty
        #: None until the first datagram; False from `lost_after_s` of silence to the next one
        self.connected: bool | None = None

    def _bind(self) -> socket.socket:
        # the first bind keeps its port when reopening a port-0 socket
        sock, _ = bind_udp((self.params["host"], self.bound_port or self.params["port"]),
                           socket.AF_INET6 if ":" in self.params["host"] else socket.AF_INET,
                           self.params["rcvbuf_bytes"], reuse=True)
        return sock

    async def _open(self) -> None:
        """Bind the socket, retrying with backoff while the port cannot be bound, and read it
        whenever it is readable."""
        backoff = Backoff(0.05, self.params["reconnect_max_s"])
        failures = 0
        what = f"UDP {self.params['host']}:{self.params['port']}"
        while True:
            try:
                sock = self._bind()
                break
            except OSError as e:
                failures += 1
                await pause(self._open_failed(what, e, failures, backoff),
                            lambda: self._finished)
                if self._finished:
                    return
        if self._finished:  # finish() came while opening: nothing more is read
            sock.close()
            return
        self.bound_port = sock.getsockname()[1]
        self._loop = asyncio.get_running_loop()
        self._sock = sock
        self._loop.add_reader(sock.fileno(), self._drain)

    def _close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            if self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(sock.fileno())
            self._note_kernel_drops(sock)
            sock.close()

    async def start(self) -> None:
        if self._sock is None:
            await self._open()

    async def stop(self) -> None:
        self._closing = True
        self._close()
        self._wake.set()

    def finish(self) -> bool:
        """Read what the socket holds now, stop reading, and let `batches` hand all of it over
        and end."""
        if not self._finished:
            self._drain()
            self._finished = True
            sock = self._sock
            if sock is not None and self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(sock.fileno())
            self._wake.set()
        return True

    def _drain(self) -> None:
        """Read every datagram waiting on the socket (at most DRAIN_MAX per call); beyond
        `queue_datagrams` waiting, new ones are dropped and counted."""
        sock = self._sock
        if sock is None or self._finished:
            return
        got, error = recv_waiting(sock)
        self.socket_errors += error
        n = len(got)
        for d in got:
            if len(self._pending) >= self.params["queue_datagrams"]:
                self.queue_overflows += 1
                continue
            if not self._pending:
                self._first_wall = time.time_ns() // 1000
            self._pending.append(d)
        if n:
            self.datagrams += n
            self.connected = True
            self._recv_mono = time.monotonic_ns() // 1000
            self._wake.set()

    def holds_data(self) -> bool:
        """Datagrams of whole frames received but not handed over (the socket is read first)."""
        self._drain()
        head = EPCM_HEADER.size if self.params["header"] == "epcm" else 0
        fb = self.frame_bytes
        return any(len(d) > head and (len(d) - head) % fb == 0 for d in self._pending)

    async def _silence(self, backoff: Backoff) -> bool:
        """Wait for datagrams; after `lost_after_s` of silence count the loss and reopen.
        False when there is nothing to take (lost, or stopped)."""
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), self.params["lost_after_s"])
        except TimeoutError:
            if self._closing or self._finished:
                return False
            self.lost += 1
            self.connected = False
            log.warning("no PCM datagrams on UDP %s:%s for %.2f s; reopening",
                        self.params["host"], self.bound_port, self.params["lost_after_s"])
            # the socket stays open through the backoff: a sender that comes back meanwhile
            # loses nothing (closing first lost what came during the wait)
            await backoff.sleep(lambda: self._finished or self._closing)
            if self._finished or self._closing:
                return False
            self._drain()
            if self._pending:  # it came back: no reopen
                return True
            self._close()
            await self._open()
            self.reopens += 1
            self.clock.rebase()
            self.host_clock.reset()  # the sample clock restarts at the next datagram
            self._next_frame = None
            return False
        return bool(self._pending)

    def _payload(self, d: bytes) -> tuple[bytes | None, int]:
        """(frames bytes or None when dropped, frames lost before it)."""
        if self.params["header"] == "none":
            if not d or len(d) % self.frame_bytes:
                self.bad_datagrams += 1
                return None, 0
            return d, 0
        if len(d) < EPCM_HEADER.size:
            self.bad_datagrams += 1
            return None, 0
        magic, first, ch, sb = EPCM_HEADER.unpack_from(d)
        body = d[EPCM_HEADER.size:]
        if (magic != EPCM_MAGIC or ch != self.channels or sb != self.fmt.container_bytes
                or not body or len(body) % self.frame_bytes):
            self.bad_datagrams += 1
            return None, 0
        n = len(body) // self.frame_bytes
        lost = 0
        if self._next_frame is not None:
            if first > self._next_frame:
                lost = first - self._next_frame
            elif first < self._next_frame:
                if self._next_frame - first > self.rate:  # sender restarted its count
                    self.restarts += 1
                else:
                    self.late_datagrams += 1
                    return None, 0
        self._next_frame = first + n
        return body, lost

    def _handover(self, parts: list[bytes], dropped: int, last_frames: int, recv_wall: int,
                  recv_mono: int) -> EventBatch:
        """One batch of contiguous frames; the start of its last datagram's frames, received
        at `recv_mono`, relates the sample clock to the host clock."""
        b = self._batch(b"".join(parts), dropped, recv_wall,
                        {**self._meta, "t_recv_us": recv_wall})
        self.host_clock.track(self.clock.at(self.clock.frames - last_frames), recv_mono)
        return b

    async def batches(self) -> AsyncIterator[EventBatch]:
        if self._sock is None:
            await self.start()
        backoff = Backoff(0.05, self.params["reconnect_max_s"])
        period = self.params["batch_us"] / 1e6
        while not self._closing:
            if self._finished and not self._pending:
                return  # handed everything over after finish()
            if not self._pending and not await self._silence(backoff):
                continue
            backoff.reset()
            if period and not self._finished:
                await asyncio.sleep(period)
            self._wake.clear()
            datas, self._pending = self._pending, []
            recv_wall, recv_mono = self._first_wall, self._recv_mono
            parts: list[bytes] = []
            last = 0
            dropped = self._pending_drop
            self._pending_drop = 0
            for d in datas:
                body, lost = self._payload(d)
                if body is None:
                    continue
                if lost and parts:  # a gap ends the batch: time must stay uniform in it
                    yield self._handover(parts, dropped, last, recv_wall, recv_mono)
                    parts, dropped = [], 0
                if lost:
                    self.lost_frames += lost
                    if lost * 1_000_000 // self.rate > MAX_GAP_US:
                        self.host_clock.reset()  # a new time base: a new offset
                    self.clock.frames += lost
                    dropped += lost
                parts.append(body)
                last = len(body) // self.frame_bytes
            if parts:
                yield self._handover(parts, dropped, last, recv_wall, recv_mono)
            else:
                self._pending_drop += dropped

    def _note_kernel_drops(self, sock: socket.socket) -> int | None:
        """Kernel drops over every socket opened so far, this one's read now."""
        base, inode, cur = self._kdrops
        if sock.fileno() >= 0:
            n = udp_kernel_drops(sock)
            if n is not None:
                ino = os.fstat(sock.fileno()).st_ino
                if ino != inode:  # a reopened socket counts from zero
                    base, inode = base + cur, ino
                self._kdrops = (base, inode, n)
                return base + n
        return None

    def kernel_drops(self) -> int | None:
        """Datagrams the kernel dropped (full receive buffer) over every socket opened so far."""
        if self._sock is not None:
            n = self._note_kernel_drops(self._sock)
            if n is not None:
                return n
        base, inode, cur = self._kdrops
        return base + cur if inode >= 0 else None

    def status(self) -> dict[str, Any]:
        return {
            "kernel_drops": self.kernel_drops(),
            "datagrams": self.datagrams, "bad_datagrams": self.bad_datagrams,
            "late_datagrams": self.late_datagrams, "queue_overflows": self.queue_overflows,
            "lost_frames": self.lost_frames, "restarts": self.restarts,
            "frames_in": self.frames_in, "port": self.bound_port, "lost": self.lost,
            "connected": self.connected, "socket_errors": self.socket_errors,
            "pending_datagrams": len(self._pending),
            "reopens": self.reopens, "open_failures": self.open_failures,
            "last_error": self.last_error,
        }


@register
class PcmStdinDriver(_PcmDriver):
    """Live PCM frames from standard input (or another descriptor, or a named pipe by path)."""

    type_name = "pcm_stdin"
    summary = "Live PCM audio from standard input (arecord -t raw ... | edgesnn run ...)."

    @classmethod
    def claims(cls, params: dict[str, Any], base_dir: str) -> list[Any]:
        """Its named pipe, else its descriptor (standard input): one reader each."""
        if params["path"]:
            path = os.path.realpath(os.path.join(base_dir, os.path.expanduser(params["path"])))
            return [(("file", path, ""), "path", f"named pipe {params['path']}")]
        fd = params["fd"]
        return [(("fd", "", str(fd)), "type" if fd == 0 else "fd",
                 "standard input" if fd == 0 else f"file descriptor {fd}")]
    schema = PCM_SCHEMA | Schema(
        {
            "fd": Field(int, default=0, min=0, doc="File descriptor to read (0: standard input)."),
            "path": Field(str, default="",
                          doc="Read this named pipe or device instead of fd; it is (re)opened "
                          "with backoff when missing or when its writer goes away."),
            "reopen": Field(bool, default=True,
                            doc="With path: wait for the next writer at end of file (false: "
                            "end the stream)."),
        }
    )

    in_order = True  # samples are placed by arrival: a batch is complete to its end

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self.bytes_in = 0
        self.trailing_bytes = 0
        self._stop = False
        self._own_fd: int | None = None
        self._fd: int | None = None  # the descriptor being read
        self._read_pending = False  # whole frames read by the reader thread, not yet taken
        self._carry = 0  # bytes of a partial frame held for its rest
        #: after finish(): bytes still to read (those waiting then); the stream ends after them
        self._finish_left: int | None = None
        self._read_lock = threading.Lock()  # a read and finish()'s count of waiting bytes

    def _waiting_bytes(self) -> int:
        """Bytes waiting to be read on the source (FIONREAD; 0 when not known)."""
        fd = self._fd
        if fd is None:
            return 0
        buf = array.array("i", [0])
        try:
            fcntl.ioctl(fd, termios.FIONREAD, buf, True)
        except (OSError, ValueError):
            return 0
        return max(0, buf[0])

    def holds_data(self) -> bool:
        """Bytes read but not handed over, or a whole frame waiting on the source."""
        return self._read_pending or self._carry + self._waiting_bytes() >= self.frame_bytes

    async def stop(self) -> None:
        self._stop = True

    def finish(self) -> bool:
        """Read the bytes waiting on the source now (and no more), hand over all that was
        read, and end: the reader thread stops waiting within its poll interval."""
        with self._read_lock:  # no read between the count and the budget
            if self._finish_left is None:
                self._finish_left = self._waiting_bytes()
        return True

    def _read_now(self, fd: int, n: int) -> bytes | None:
        """os.read of up to n readable bytes; after finish() only of those waiting then (None
        when they are all read)."""
        with self._read_lock:
            left = self._finish_left
            if left is None:
                return os.read(fd, n)
            if left <= 0:
                return None
            d = os.read(fd, min(n, left))
            self._finish_left = left - len(d)
            return d

    def _take(self, fd: int, period_s: float) -> tuple[bytes | None, int, int]:
        """(what arrived, wall µs, monotonic µs of its first bytes): waits for bytes, then
        takes every byte waiting (up to READ_MAX) and, with `period_s`, what comes within that
        long; b"" at end of file (reported by the next call when bytes came first), None
        when stopped."""
        first = self._read(fd, READ_CHUNK)
        recv_wall, recv_mono = time.time_ns() // 1000, mono_us()
        if not first:
            return first, recv_wall, recv_mono
        if self._carry + len(first) >= self.frame_bytes:  # a whole frame to hand over
            self._read_pending = True
        parts, n = [first], len(first)
        deadline = time.monotonic() + period_s
        while n < READ_MAX and not self._stop:
            try:
                finishing = self._finish_left is not None  # then: only what waits now
                r, _, _ = select.select([fd], [], [], 0.0 if finishing
                                        else max(0.0, deadline - time.monotonic()))
                if not r:
                    break
                d = self._read_now(fd, min(READ_CHUNK, READ_MAX - n))
            except (OSError, ValueError):  # not readable after all, or closed: next call
                break
            if not d:  # end of file (the next call sees it), or all read after finish()
                break
            parts.append(d)
            n += len(d)
            if self._carry + n >= self.frame_bytes:
                self._read_pending = True
        return b"".join(parts), recv_wall, recv_mono

    def _read(self, fd: int, n: int) -> bytes | None:
        """Up to n bytes, b"" at end of file, None when stopped (or finished: after the bytes
        waiting at finish()); polls so stop() and finish() are honoured."""
        while not self._stop:
            left = self._finish_left
            finishing = left is not None
            if left is not None and left <= 0:
                return None
            try:
                r, _, _ = select.select([fd], [], [], 0.0 if finishing else 0.1)
            except (OSError, ValueError):  # fd closed under us
                return b""
            if r:
                try:
                    return self._read_now(fd, n)
                except BlockingIOError:
                    continue
                except OSError as e:  # device gone
                    self.last_error = str(e)
                    return b""
            if finishing:  # nothing more waits
                return None
        return None

    def _path(self) -> str:
        p = self.params["path"]
        return p if os.path.isabs(p) else os.path.join(self.ctx.base_dir, p)

    async def _open_path(self) -> int | None:
        """Open `path` (non-blocking, so a pipe without writer does not block), with backoff."""
        backoff = Backoff(0.05, self.params["reconnect_max_s"])
        failures = 0
        path = self._path()
        while not self._stop and self._finish_left is None:
            try:
                return os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            except OSError as e:
                failures += 1
                await pause(self._open_failed(f"PCM source {path}", e, failures, backoff),
                            lambda: self._stop or self._finish_left is not None)
        return None

    def _close_own(self) -> None:
        if self._own_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._own_fd)
            self._own_fd = None

    async def batches(self) -> AsyncIterator[EventBatch]:
        by_path = bool(self.params["path"])
        period = self.params["batch_us"] / 1e6
        carry = b""
        backoff = Backoff(0.05, self.params["reconnect_max_s"])
        try:
            if by_path:
                self._own_fd = await self._open_path()
                if self._own_fd is None:
                    return
            fd = self._own_fd if by_path else self.params["fd"]
            while True:
                assert fd is not None
                self._fd = fd
                data, recv_wall, recv_mono = await asyncio.to_thread(self._take, fd, period)
                if data is None:  # stopped
                    self.trailing_bytes = len(carry)
                    return
                if not data:  # end of file: the writer (or device) went away
                    self.trailing_bytes += len(carry)
                    carry = b""
                    self._carry = 0
                    if not by_path or not self.params["reopen"] or self._finish_left is not None:
                        return
                    self.lost += 1
                    log.warning("PCM source %s ended; reopening", self._path())
                    self._fd = None
                    # the old descriptor stays open until the new one is: bytes a next writer
                    # puts into a named pipe meanwhile stay in the pipe
                    old, self._own_fd = self._own_fd, None
                    try:
                        await backoff.sleep()
                        new = await self._open_path()
                    finally:
                        if old is not None:
                            with contextlib.suppress(OSError):
                                os.close(old)
                    if new is None:
                        return
                    self._own_fd = fd = new
                    self.reopens += 1
                    self.clock.rebase()
                    self.host_clock.reset()  # the sample clock restarts at the next frames
                    continue
                backoff.reset()
                self.bytes_in += len(data)
                data = carry + data
                whole = len(data) - len(data) % self.frame_bytes
                carry = data[whole:]
                self._carry = len(carry)
                self._read_pending = False
                if whole:
                    b = self._batch(data[:whole], 0, recv_wall,
                                    {**self._meta, "t_recv_us": recv_wall})
                    self.host_clock.track(b.t_start_us, recv_mono)
                    yield b
        finally:
            self._fd = None
            self._close_own()

    def status(self) -> dict[str, Any]:
        return {"bytes_in": self.bytes_in, "frames_in": self.frames_in,
                "trailing_bytes": self.trailing_bytes, "lost": self.lost,
                "reopens": self.reopens, "open_failures": self.open_failures,
                "last_error": self.last_error}


def raw_frames(x: np.ndarray, sample_format: str = "S16_LE") -> bytes:
    """Encode float frames in [-1, 1) as interleaved PCM bytes (for senders and tests)."""
    fmt = ALSA_FORMATS[sample_format]
    x = np.asarray(x, np.float64)
    if fmt.kind == "float":
        return x.astype(f"{'>' if fmt.big_endian else '<'}f{fmt.container_bytes}").tobytes()
    if fmt.kind not in ("int", "uint"):
        raise ValueError(f"cannot encode {sample_format}")
    bits = 8 * fmt.container_bytes
    half = 1 << (bits - 1)
    v = np.clip(np.round(x * half), -half, half - 1).astype(np.int64)
    if fmt.kind == "uint":
        v = v + half
    b = v.astype("<u8").view(np.uint8).reshape(*v.shape, 8)
    b = b[..., : fmt.container_bytes]
    if fmt.big_endian:
        b = b[..., ::-1]
    return np.ascontiguousarray(b).tobytes()
