"""`type = "dvs_udp"`: live DVS events over UDP in the AEStream / SPIF datagram layout.

Datagram layout (all little-endian, as AEStream sends on x86 and ARM): a sequence of events,
each one 32-bit word

    bit 31      1 = no timestamp follows, 0 = a uint32 timestamp word (µs) follows
    bits 30-16  x (15 bits)
    bit 15      polarity (1 = ON)
    bits 14-0   y (15 bits)

optionally followed by its uint32 µs timestamp (unwrapped across 2^32). Events without a
timestamp are stamped with the receive time (µs of the monotonic clock). A datagram whose length
is not a multiple of 4, or that ends in the middle of an event, has its broken tail counted in
`malformed`; events outside the sensor are counted in `out_of_range`; when the consumer falls
behind by more than `max_pending_events`, whole datagrams are dropped and their events counted
(`overflow_dropped`, in events whether or not they carry timestamps). Datagrams
the kernel drops because the socket buffer was full are counted too (`kernel_drops`, the
socket's `drops` column of /proc/net/udp, Linux only; None elsewhere). A batch whose timestamps
leap more than `MAX_JUMP_US` from the previous batch end (either way) starts a new time base at
its first event and is counted in `time_jumps`. The socket
binds 127.0.0.1 by default; set `host = "0.0.0.0"` to accept datagrams from the network.

Latency: the socket is drained whenever it is readable (every waiting datagram, up to
`DRAIN_MAX` per wake-up so other work interleaves), and what arrived is handed over at once
(`batch_us = 0`, the default; a positive `batch_us` gathers that long first). Reads take up to
64 datagrams per system call (recvmmsg(2) on Linux, `udpsock.DatagramReader`). While the
pipeline is still busy with the last batch (the runtime has not asked for the next), the driver
stops waking per datagram and drains the socket every `PAUSED_DRAIN_S` (2 ms) instead; when it
is asked again it reads what waits and hands it all over at once (events without a timestamp,
stamped when read, then carry the time of that read). `sensor_now_us`
maps the host clock to the sensor's: the largest (event time - receive time) of the last 1-2 s
(events without timestamps are on the host clock already), so the runtime can close steps on
the host clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from edgesnn_drivers.udpsock import DRAIN_MAX, DatagramReader, bind_udp

from edgesnn.components import Driver, port_claim, register
from edgesnn.config.schema import Field, Schema
from edgesnn.events import DVS_EVENT, MAX_GAP_US, EventBatch

from . import _kernels as K

#: host µs over which the sensor clock offset is the largest (event - receive) seen
OFFSET_WINDOW_US = 1_000_000
#: while the pipeline is busy with the last batch, the socket is drained this often (s)
PAUSED_DRAIN_S = 0.002
MAX_JUMP_US = MAX_GAP_US  # the time-jump bound every binner uses
log = logging.getLogger(__name__)


def _sensor_check(v: Any) -> str | None:
    return None if len(v) == 2 and min(v) >= 1 and max(v) <= 32768 else (
        "expected [width, height], each 1..32768")


def encode_aestream(events: np.ndarray, timestamps: bool = True,
                    max_bytes: int = 512) -> list[bytes]:
    """DVS_EVENT array -> AEStream datagrams of at most `max_bytes` (for senders and tests)."""
    ev = np.asarray(events)
    w = ((ev["x"].astype(np.uint32) & 0x7FFF) << 16) | ((ev["p"].astype(np.uint32) & 1) << 15) \
        | (ev["y"].astype(np.uint32) & 0x7FFF)
    if timestamps:
        rec = np.empty((len(ev), 2), "<u4")
        rec[:, 0] = w
        rec[:, 1] = ev["t"].astype(np.int64) & 0xFFFFFFFF
        per = max(1, max_bytes // 8)
    else:
        rec = (w | np.uint32(0x80000000)).astype("<u4").reshape(-1, 1)
        per = max(1, max_bytes // 4)
    return [rec[i : i + per].tobytes() for i in range(0, len(ev), per)]


class DatagramDecoder:
    """Stateful decoder of AEStream datagrams with drop counters."""

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.state = np.zeros(3, np.int64)
        self.counts = np.zeros(K.N_COUNTS, np.int64)
        self.malformed = 0
        self.datagrams = 0

    def decode(self, data: bytes, t_now_us: int) -> np.ndarray:
        """Events of one datagram (malformed tails counted, never raised)."""
        self.datagrams += 1
        nbytes = len(data) - len(data) % 4
        if nbytes != len(data):
            self.malformed += 1
        words = np.frombuffer(data, "<u4", nbytes // 4)
        out = np.empty(len(words), DVS_EVENT)
        n, bad = K.aestream_decode(words, out, self.state, self.counts, self.width,
                                   self.height, t_now_us)
        self.malformed += int(bad)
        return out[:n]

    def decode_slots(self, words: np.ndarray, starts: np.ndarray, sizes: np.ndarray,
                     t_now_us: int) -> tuple[np.ndarray, np.ndarray]:
        """Events of the datagrams a `DatagramReader` read, in one kernel call, as `decode`
        gives them one by one (`words`: its buffer as uint32; `starts`: the datagrams' byte
        offsets; `sizes`: their lengths), and the number of events up to the end of each."""
        self.datagrams += len(sizes)
        self.malformed += int(np.count_nonzero(sizes % 4))
        nwords = sizes // 4
        out = np.empty(int(nwords.sum()), DVS_EVENT)
        ev_ends = np.empty(len(sizes), np.int64)
        n, bad = K.aestream_decode_slots(words, starts // 4, nwords, out, ev_ends, self.state,
                                         self.counts, self.width, self.height, t_now_us)
        self.malformed += int(bad)
        return out[:n], ev_ends


def udp_kernel_drops(sock: socket.socket) -> int | None:
    """Datagrams the kernel dropped for this socket (full receive buffer), from /proc/net/udp*."""
    try:
        inode = str(os.fstat(sock.fileno()).st_ino)
    except OSError:
        return None
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(name, encoding="ascii") as f:
                next(f, None)
                for line in f:
                    cols = line.split()
                    if len(cols) >= 13 and cols[9] == inode:
                        return int(cols[-1])
        except (OSError, ValueError):
            continue
    return None


@register
class DVSUdpDriver(Driver):
    """Receives AEStream-layout DVS datagrams on a UDP port (see module docstring)."""

    type_name = "dvs_udp"
    summary = "Live DVS events over UDP (AEStream/SPIF layout), 127.0.0.1:3333 by default."

    @classmethod
    def claims(cls, params: dict[str, Any], base_dir: str) -> list[Any]:
        """The UDP port it binds."""
        return port_claim("udp", params["host"], params["port"])
    batch_kind = "dvs"
    schema = Schema(
        {
            "host": Field(str, default="127.0.0.1", doc="Address to bind."),
            "port": Field(int, default=3333, min=0, max=65535, doc="UDP port (0: any free)."),
            "sensor": Field(("list", int), default=[640, 480], check=_sensor_check,
                            doc="Sensor [width, height]; events outside are dropped."),
            "batch_us": Field(int, default=0, min=0,
                              doc="Wall time to gather data before handing a batch over (µs); "
                              "0: hand over what arrived at once."),
            "max_pending_events": Field(int, default=1 << 20, min=1,
                                        doc="Events held before datagrams are dropped."),
            "rcvbuf_bytes": Field(int, default=4 << 20, min=0,
                                  doc="Socket receive buffer asked for (bursts wait there; "
                                  "the kernel may cap it); 0 keeps the system default."),
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self.width, self.height = params["sensor"]
        self.decoder = DatagramDecoder(self.width, self.height)
        self._pending: list[np.ndarray] = []
        self._n_pending = 0
        self.overflow_dropped = 0
        self.socket_errors = 0
        self.events_out = 0
        self._dropped_reported = 0
        self._transport: Any = None  # the bound socket while reading
        self._loop: asyncio.AbstractEventLoop | None = None
        self._t0 = time.monotonic()
        self._first_recv_us = 0  # host wall clock of the first datagram of the pending batch
        self._off: int | None = None  # sensor - host clock (µs): largest of this window
        self._off_prev: int | None = None  # ... and of the window before
        self._off_since = 0
        self._wake = asyncio.Event()
        self.bound_port = 0
        self.rcvbuf_bytes = 0
        self.time_jumps = 0
        self._sock: socket.socket | None = None
        self._reader: DatagramReader | None = None
        self._paused: asyncio.TimerHandle | None = None  # the drain timer while paused
        self._finished = False  # shutdown: no more reading; batches() ends once empty
        self._kernel_drops: int | None = None

    def sensor_shape(self) -> tuple[int, ...]:
        return (self.width, self.height)

    def _now_us(self) -> int:
        return int((time.monotonic() - self._t0) * 1e6)

    def holds_data(self) -> bool:
        """Received events wait to be handed over (the socket is read first, so a datagram
        that came in since the loop last looked counts)."""
        self._drain()
        return bool(self._pending)

    def sensor_now_us(self) -> int | None:
        """The sensor time of this moment (None before the first event)."""
        off = self._off
        if off is not None and self._off_prev is not None:
            off = max(off, self._off_prev)
        return None if off is None else self._now_us() + off

    def _track_offset(self, t_last: int, now: int) -> None:
        off = t_last - now
        if self._off is None or now - self._off_since >= OFFSET_WINDOW_US:
            self._off_prev, self._off, self._off_since = self._off, off, now
        elif off > self._off:
            self._off = off

    def _on_datagram(self, data: bytes, now: int | None = None) -> None:
        """Decode one datagram received at `now` and queue it (`_drain` does so for a read of
        many)."""
        now = self._now_us() if now is None else now
        ev = self.decoder.decode(data, now)  # (also to count a dropped one exactly)
        self._admit(ev, np.array([len(ev)], np.int64), now)

    def _drain(self) -> None:
        """Read every datagram waiting on the socket (at most DRAIN_MAX per call, in reads of
        up to `DatagramReader.batch`, each decoded in one kernel call); a datagram is admitted
        while fewer than `max_pending_events` wait, as one by one."""
        reader = self._reader
        if self._transport is None or reader is None or self._finished:
            return
        got = 0
        while got < DRAIN_MAX:
            n, error = reader.read()
            if error:
                self.socket_errors += 1
            if n:
                got += n
                now = self._now_us()
                ev, ev_ends = self.decoder.decode_slots(reader.words, reader.starts[:n],
                                                        reader.sizes[:n], now)  # fmt: skip
                self._admit(ev, ev_ends, now)
            if n < reader.batch or error:
                return

    def _admit(self, ev: np.ndarray, ev_ends: np.ndarray, now: int) -> None:
        """Queue the events of consecutive datagrams (datagram i's end at ev_ends[i]): the
        datagrams that start while fewer than `max_pending_events` wait."""
        room = self.params["max_pending_events"] - self._n_pending
        starts = np.concatenate(([0], ev_ends[:-1]))
        k = int(np.searchsorted(starts, room, side="left"))  # datagrams admitted
        keep = int(ev_ends[k - 1]) if k else 0
        self.overflow_dropped += len(ev) - keep
        if keep:
            ev = ev[:keep]
            self._track_offset(int(ev["t"].max()), now)
            if not self._pending:
                self._first_recv_us = time.time_ns() // 1000
            self._pending.append(ev)
            self._n_pending += keep
            self._wake.set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        host, port = self.params["host"], self.params["port"]
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        fam, _, _, _, addr = infos[0]
        sock, self.rcvbuf_bytes = bind_udp(addr, fam, self.params["rcvbuf_bytes"])
        self._transport = self._sock = sock
        self._reader = DatagramReader(sock)
        self._loop = loop
        self.bound_port = sock.getsockname()[1]
        loop.add_reader(sock.fileno(), self._drain)
        log.info("dvs_udp %s listening on %s:%d", self.id, host, self.bound_port)

    def _pause_reading(self) -> None:
        """While nobody asks for a batch (the pipeline is busy with the last one), stop waking
        for every datagram: the socket is drained every PAUSED_DRAIN_S instead, in reads of
        many datagrams, so the kernel's buffer never fills."""
        if self._transport is None or self._loop is None or self._paused is not None \
                or self._finished:
            return
        self._loop.remove_reader(self._transport.fileno())
        self._paused = self._loop.call_later(PAUSED_DRAIN_S, self._paused_drain)

    def _paused_drain(self) -> None:
        self._drain()
        if self._paused is not None and self._loop is not None:
            self._paused = self._loop.call_later(PAUSED_DRAIN_S, self._paused_drain)

    def _resume_reading(self) -> None:
        """Read what waits and wake on each datagram again."""
        if self._paused is None:
            return
        self._paused.cancel()
        self._paused = None
        if self._transport is not None and self._loop is not None and not self._finished:
            self._drain()
            self._loop.add_reader(self._transport.fileno(), self._drain)

    def finish(self) -> bool:
        """Read what the socket holds now, stop reading, and let `batches` hand all of it over
        and end."""
        if not self._finished:
            self._drain()
            self._finished = True
            if self._paused is not None:
                self._paused.cancel()
                self._paused = None
            elif self._transport is not None and self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(self._transport.fileno())
            self._wake.set()
        return True

    async def stop(self) -> None:
        if self._paused is not None:
            self._paused.cancel()
            self._paused = None
        sock, self._transport = self._transport, None
        if sock is not None:
            if self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(sock.fileno())
            sock.close()

    def kernel_drops(self) -> int | None:
        """Datagrams dropped by the kernel for this socket so far (None: not known here)."""
        if self._sock is not None and self._sock.fileno() >= 0:
            n = udp_kernel_drops(self._sock)
            if n is not None:
                self._kernel_drops = n
        return self._kernel_drops

    def dropped(self) -> int:
        """Every event lost so far: malformed tails, out of range, overflow (kernel drops are
        datagrams of unknown size, reported separately in `kernel_drops`)."""
        d = self.decoder
        return int(d.malformed + d.counts[K.C_OUT_OF_RANGE] + self.overflow_dropped)

    async def batches(self) -> AsyncIterator[EventBatch]:
        if self._transport is None:
            await self.start()
        seq = 0
        t_end = None
        meta = {"width": self.width, "height": self.height, "sensor": "udp"}
        period = self.params["batch_us"] / 1e6
        while True:
            if self._finished and not self._pending:
                return  # handed everything over after finish()
            await self._wake.wait()
            if period and not self._finished:
                await asyncio.sleep(period)
            self._wake.clear()
            parts, self._pending, self._n_pending = self._pending, [], 0
            if not parts:
                continue
            ev = np.concatenate(parts) if len(parts) > 1 else parts[0]
            if t_end is not None and not (t_end - MAX_JUMP_US <= int(ev["t"].min())
                                          and int(ev["t"].max()) <= t_end + MAX_JUMP_US):
                self.time_jumps += 1
                t_end = None
                self._off = self._off_prev = None  # a new time base: a new clock offset
                self._track_offset(int(ev["t"][-1]), self._now_us())
            t_start = int(ev["t"][0]) if t_end is None else t_end
            t_end = max(t_start + 1, int(ev["t"].max()) + 1)
            d = self.dropped()
            batch = EventBatch(self.id, seq, t_start, t_end, ev, "dvs", d - self._dropped_reported,
                               {**meta, "t_recv_us": self._first_recv_us})
            self._pause_reading()  # until the next batch is asked for
            try:
                yield batch
            finally:
                self._resume_reading()
            self._dropped_reported = d
            self.events_out += len(ev)
            seq += 1

    def status(self) -> dict[str, Any]:
        d = self.decoder
        return {"host": self.params["host"], "port": self.bound_port,
                "rcvbuf_bytes": self.rcvbuf_bytes, "datagrams": d.datagrams,
                "events": self.events_out,
                "malformed": d.malformed, "out_of_range": int(d.counts[K.C_OUT_OF_RANGE]),
                "overflow_dropped": self.overflow_dropped, "socket_errors": self.socket_errors,
                "kernel_drops": self.kernel_drops(), "time_jumps": self.time_jumps,
                "pending_events": self._n_pending}
