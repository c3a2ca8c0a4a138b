"""Live capture on Linux through an AF_PACKET raw socket, decoded into PACKET batches.

Opening the socket needs CAP_NET_RAW; without it the driver fails at start with a message that
says so and how to grant it (no retry: waiting does not help). A capture thread reads frames
into a bounded queue (overflow is counted and reported as `dropped_before`); the pipeline side
decodes each batch with the numba frame decoder. When the interface goes away the socket is
reopened with backoff. On the loopback interface every frame is seen twice (outgoing and
incoming); a socket filter refuses the outgoing copy in the kernel (skipped in Python where the
filter cannot be attached).

Loss: frames the kernel drops because the capture thread cannot keep up (full receive buffer)
are read from the socket's PACKET_STATISTICS by the capture thread (before each hand-over, every
`STATS_EVERY_US` while frames come, when idle and before the socket is closed; the kernel resets
them on each read, so they are summed) and counted in `kernel_drops`; `kernel_frames` counts
every frame the socket saw, dropped ones included. Frames still unread in a socket when it is
closed (reopen, stop) are counted in `unread_at_close`, so `kernel_frames = frames +
skipped_outgoing + kernel_drops + unread_at_close`. Each batch's `dropped_before` carries what
was lost since the previous batch: queue overflow (`dropped`), kernel drops and unread frames.
The totals live on the driver: they survive reopens, stop and a new start.

Latency: frames are stamped with the host clock (µs of `time.time_ns()`) as they are read, and
the capture thread wakes the event loop when it queues frames into an empty queue (once per
hand-over, not once per frame, so a flood does not flood the loop). What arrived is handed over
at once (`batch_us = 0`, the default; a positive `batch_us` gathers that long after the first
frame, for fewer, bigger batches) as one batch reaching just past its newest frame; batches are
contiguous (one starts where the previous ended; only a host clock stepped back by more than
`MAX_GAP_US` starts a new time base, counted in `time_jumps`). `sensor_now_us` is the host
clock, so the runtime closes steps on it when no frame comes; no empty batches are sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import queue
import socket
import struct
import sys
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from edgesnn_drivers.network.decode import decode

from edgesnn.backoff import Backoff
from edgesnn.components import Driver, register
from edgesnn.config.schema import Field, Schema
from edgesnn.events import MAX_GAP_US, EventBatch

log = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
ARPHRD_ETHER, ARPHRD_LOOPBACK, ARPHRD_NONE = 1, 772, 65534
#: hardware type of the interface -> pcap link type of its frames
LINKTYPE_OF_HATYPE = {ARPHRD_ETHER: 1, ARPHRD_LOOPBACK: 1, ARPHRD_NONE: 101, 776: 101}
SOL_PACKET, PACKET_STATISTICS, SO_ATTACH_FILTER = 263, 6, 26  # <linux/if_packet.h>, <socket.h>
#: struct tpacket_stats { unsigned int tp_packets; unsigned int tp_drops; }
TPACKET_STATS = struct.Struct("II")
#: how often (µs of host time) the capture thread reads the socket's statistics while frames come
STATS_EVERY_US = 200_000
_SKF_AD_OFF, _SKF_AD_PKTTYPE, _SKF_AD_HATYPE = -0x1000, 4, 28
#: classic BPF (code, jt, jf, k): refuse outgoing frames of loopback devices, keep all else whole
LOOPBACK_OUTGOING_FILTER = (
    (0x20, 0, 0, (_SKF_AD_OFF + _SKF_AD_HATYPE) & 0xFFFFFFFF),  # ld hatype
    (0x15, 0, 3, ARPHRD_LOOPBACK),  # jeq #772 ? next : keep
    (0x20, 0, 0, (_SKF_AD_OFF + _SKF_AD_PKTTYPE) & 0xFFFFFFFF),  # ld pkttype
    (0x15, 0, 1, PACKET_OUTGOING),  # jeq #4 ? refuse : keep
    (0x06, 0, 0, 0),  # ret #0: refuse
    (0x06, 0, 0, 0xFFFFFFFF),  # ret: keep the whole frame
)


class CapturePermissionError(PermissionError):
    """Raised when the process may not open a raw socket (no CAP_NET_RAW)."""


def permission_message(interface: str) -> str:
    """What to do when a raw socket may not be opened."""
    return (
        f"live capture on interface {interface!r} needs the CAP_NET_RAW capability "
        "(raw AF_PACKET socket) and this process does not have it. Run as root, or grant it "
        f"to the interpreter once: sudo setcap cap_net_raw+ep {sys.executable} "
        "(or replay a pcap file with the 'pcap' driver instead)."
    )


def attach_filter(s: socket.socket,
                  program: tuple[tuple[int, int, int, int], ...] = LOOPBACK_OUTGOING_FILTER
                  ) -> None:
    """Attach a classic BPF socket filter (replacing any other); by default the one that makes
    the kernel refuse the outgoing copy of loopback frames (seen twice otherwise), so neither
    the capture thread nor the socket's statistics count them."""
    prog = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *ins) for ins in program))
    fprog = struct.pack("HL", len(program), ctypes.addressof(prog))  # struct sock_fprog
    s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def packet_stats(s: socket.socket) -> tuple[int, int]:
    """(frames seen, frames dropped) by an AF_PACKET socket since the previous call (the kernel
    resets both on each read); frames seen include the dropped ones."""
    p, d = TPACKET_STATS.unpack(s.getsockopt(SOL_PACKET, PACKET_STATISTICS, TPACKET_STATS.size))
    return p, d


def open_af_packet(interface: str, timeout_s: float = 0.1) -> socket.socket:
    """A raw AF_PACKET socket bound to `interface`; CapturePermissionError without rights."""
    if not hasattr(socket, "AF_PACKET"):
        raise OSError("AF_PACKET live capture is only available on Linux")
    try:  # protocol 0: no frame comes before the bind, so the statistics are this interface's
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    except PermissionError as e:
        raise CapturePermissionError(permission_message(interface)) from e
    try:
        s.settimeout(timeout_s)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        try:
            attach_filter(s)
        except OSError as e:  # the capture thread skips the outgoing copies instead
            log.debug("no loopback socket filter on %s (%s)", interface, e)
        s.bind((interface, ETH_P_ALL))
    except BaseException:
        s.close()
        raise
    return s


class CaptureCounts:
    """Totals over every capture socket of a driver (kept across reopens, stop and start);
    written by the capture thread only."""

    __slots__ = ("frames", "skipped_outgoing", "dropped", "kernel_frames", "kernel_drops",
                 "unread_at_close", "reopens", "open_failures", "last_error")

    def __init__(self) -> None:
        self.frames = 0  # frames read and kept (queued or dropped on a full queue)
        self.skipped_outgoing = 0  # outgoing loopback copies read and skipped (no filter)
        self.dropped = 0  # frames dropped on a full queue
        self.kernel_frames = 0  # PACKET_STATISTICS tp_packets: frames the sockets saw
        self.kernel_drops = 0  # PACKET_STATISTICS tp_drops: frames the kernel dropped
        self.unread_at_close = 0  # frames left unread in a socket when it was closed
        self.reopens = 0
        self.open_failures = 0
        self.last_error = ""

    def lost(self) -> int:
        """Every frame lost so far: full queue, kernel drops, unread at close."""
        return self.dropped + self.kernel_drops + self.unread_at_close


class _Capture(threading.Thread):
    """Reads frames into a bounded queue of (t_us, linktype, frame, orig_len); wakes the event
    loop's `wake` event (set with `attach`) when frames come into an empty queue, when it fails
    and when it ends. Counts into `counts` (the driver's totals; its own when none is given)."""

    def __init__(self, interface: str, snaplen: int, max_queue: int, reconnect_max_s: float,
                 counts: CaptureCounts | None = None):
        super().__init__(name=f"af_packet:{interface}", daemon=True)
        self.interface = interface
        self.snaplen = snaplen
        self.q: queue.Queue[tuple[int, int, bytes, int]] = queue.Queue(max_queue)
        self.reconnect_max_s = reconnect_max_s
        self.counts = counts if counts is not None else CaptureCounts()
        self.stop_flag = threading.Event()
        #: shutdown: read the frames waiting on the socket then, and end (see `finish_reading`)
        self.finish_flag = threading.Event()
        #: set with either flag: cuts a reopen backoff short
        self.cut = threading.Event()
        self.error: BaseException | None = None
        self._sock: socket.socket | None = None
        # of the current socket: frames read, and its statistics so far
        self._sock_read = self._sock_seen = self._sock_drops = 0
        self._stats_t_us = 0  # host time (µs) of the last statistics read
        self.finished = False  # run() has returned (stopped or failed)
        self.signalled = False  # a wake-up is on its way; the consumer resets it as it drains
        self.stamping = False  # a frame is stamped but not yet queued
        self.t_started_us = 0  # host time (µs) before the first frame was read
        self._loop: asyncio.AbstractEventLoop | None = None
        self.wake: asyncio.Event | None = None

    @property
    def sock(self) -> socket.socket | None:
        """The capture socket (None while closed)."""
        return self._sock

    @sock.setter
    def sock(self, s: socket.socket | None) -> None:
        self._sock = s
        self._sock_read = self._sock_seen = self._sock_drops = 0

    @property
    def dropped(self) -> int:
        return self.counts.dropped

    @property
    def frames(self) -> int:
        return self.counts.frames

    @property
    def reopens(self) -> int:
        return self.counts.reopens

    @property
    def open_failures(self) -> int:
        return self.counts.open_failures

    @property
    def last_error(self) -> str:
        return self.counts.last_error

    def attach(self, loop: asyncio.AbstractEventLoop, wake: asyncio.Event) -> None:
        """Wake `wake` on `loop` when frames are waiting, on failure and at the end."""
        self._loop, self.wake = loop, wake

    def notify(self, force: bool = False) -> None:
        """Set the consumer's event from this thread, unless a wake-up is already on its way."""
        if self.signalled and not force:
            return
        self.signalled = True
        loop, wake = self._loop, self.wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
                loop.call_soon_threadsafe(wake.set)

    def run(self) -> None:
        try:
            self._read()
        except BaseException as e:  # an unexpected failure reaches batches(), not just a log
            self.error = e
        finally:
            self._close()
            self.finished = True
            self.notify(force=True)

    def poll_stats(self) -> bool:
        """Add the socket's PACKET_STATISTICS since the last read to the totals (capture thread
        only: the kernel resets them on each read); False when they cannot be read."""
        s = self._sock
        if s is None:
            return False
        try:
            seen, drops = packet_stats(s)
        except OSError:  # closed under us
            return False
        self._stats_t_us = time.time_ns() // 1000
        self._sock_seen += seen
        self._sock_drops += drops
        c = self.counts
        c.kernel_frames += seen
        c.kernel_drops += drops
        return True

    def request_finish(self) -> None:
        """Read the frames waiting now and end (cutting a reopen backoff short)."""
        self.finish_flag.set()
        self.cut.set()

    def request_stop(self) -> None:
        """End without reading more (cutting a reopen backoff short)."""
        self.stop_flag.set()
        self.cut.set()

    def _read(self) -> None:
        backoff = Backoff(0.05, self.reconnect_max_s)
        c = self.counts
        snaplen = self.snaplen
        while not self.stop_flag.is_set():
            if self.finish_flag.is_set():
                self.finish_reading()
                return
            if self._sock is None:
                try:
                    self.sock = open_af_packet(self.interface)
                    backoff.reset()
                except CapturePermissionError as e:
                    self.error = e
                    return
                except OSError as e:
                    c.open_failures += 1
                    c.last_error = str(e)
                    d = backoff.next_delay()
                    log.warning("cannot capture on %s (%s); retrying in %.2f s",
                                self.interface, e, d)
                    self.cut.wait(d)  # a stop or finish does not wait it out
                    continue
            try:
                data, addr = self._sock.recvfrom(snaplen + 1)
            except TimeoutError:
                self.poll_stats()  # idle: drops of the last burst are counted soon after it
                continue
            except OSError as e:  # interface down or removed
                c.last_error = str(e)
                log.warning("capture on %s failed (%s); reopening", self.interface, e)
                self._close()
                c.reopens += 1
                continue
            self._take(data, addr)

    def finish_reading(self) -> None:
        """Read the frames waiting on the socket now (its statistics tell how many), without
        waiting for more."""
        s = self._sock
        if s is None or not self.poll_stats():
            return
        for _ in range(max(0, self._sock_seen - self._sock_drops - self._sock_read)):
            try:
                data, addr = s.recvfrom(self.snaplen + 1, socket.MSG_DONTWAIT)
            except OSError:  # nothing more waits after all (BlockingIOError), or closed
                break
            self._take(data, addr)

    def _take(self, data: bytes, addr: Any) -> None:
        """Queue one frame read from the socket (outgoing copies on lo skipped)."""
        c = self.counts
        snaplen = self.snaplen
        self._sock_read += 1
        hatype, pkttype = addr[3], addr[2]
        if hatype == ARPHRD_LOOPBACK and pkttype == PACKET_OUTGOING:
            c.skipped_outgoing += 1
            return
        # from the time stamp to the queue (the GIL may pass to other threads in between)
        # holds_data() is true, so the runtime does not close a step on the host clock
        # past a frame not yet queued
        self.stamping = True
        t_us = time.time_ns() // 1000
        if not self.signalled or not 0 <= t_us - self._stats_t_us < STATS_EVERY_US:
            self.poll_stats()  # before a hand-over: its batch carries the drops
        c.frames += 1
        orig = len(data)
        if orig > snaplen:
            data = data[:snaplen]
        try:
            self.q.put_nowait((t_us, LINKTYPE_OF_HATYPE.get(hatype, 1), data, orig))
        except queue.Full:
            c.dropped += 1
        self.stamping = False
        if not self.signalled:
            self.notify()

    def _close(self) -> None:
        """Close the socket, its statistics read a last time and what it still held counted."""
        s = self._sock
        if s is None:
            return
        if self.poll_stats():
            unread = self._sock_seen - self._sock_drops - self._sock_read
            self.counts.unread_at_close += max(0, unread)
        s.close()
        self.sock = None


@register
class AfPacketDriver(Driver):
    """Live packets from a Linux network interface (AF_PACKET raw socket, needs CAP_NET_RAW)."""

    type_name = "af_packet"
    batch_kind = "packets"
    summary = "Live network capture on Linux (AF_PACKET); needs CAP_NET_RAW."
    schema = Schema({
        "interface": Field(str, doc="Interface to capture on, e.g. eth0 or lo."),
        "batch_us": Field(int, default=0, min=0,
                          doc="Wall time to gather frames after the first one before handing a "
                          "batch over (µs); 0: hand over what arrived at once."),
        "snaplen": Field(int, default=65535, min=64, max=262144, doc="Bytes kept per frame."),
        "max_queue": Field(int, default=100_000, min=1,
                           doc="Frames held before new ones are dropped (counted)."),
        "reconnect_max_s": Field(float, default=5.0, min=0.01, doc="Longest reopen delay."),
    })

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self._cap: _Capture | None = None
        self.counts = CaptureCounts()  # totals of every capture, kept after stop()
        self._lost_reported = 0  # of counts.lost(), what batches have carried so far
        self.packets = 0
        self.truncated = 0
        self.time_jumps = 0

    def sensor_now_us(self) -> int | None:
        """The frames' clock: host time in µs."""
        return time.time_ns() // 1000

    def holds_data(self) -> bool:
        """Frames are queued (or one is being stamped and queued) but not yet handed over."""
        c = self._cap
        return c is not None and (c.stamping or not c.q.empty())

    async def start(self) -> None:
        # open once here so a missing permission fails the pipeline at start, clearly
        s = await asyncio.to_thread(open_af_packet, self.params["interface"])
        # load (or compile) the decoder now, not at the first frames: off the event loop, and
        # before a process that drops privileges can no longer read numba's modules
        await asyncio.to_thread(self._decode, [])
        cap = _Capture(self.params["interface"], self.params["snaplen"],
                       self.params["max_queue"], self.params["reconnect_max_s"], self.counts)
        cap.sock = s
        cap.attach(asyncio.get_running_loop(), asyncio.Event())
        cap.t_started_us = time.time_ns() // 1000  # the first batch starts here
        cap.start()
        self._cap = cap

    def finish(self) -> bool:
        """The capture thread reads the frames waiting on its socket and ends; `batches`
        hands over everything queued and ends (within the socket's 0.1 s read timeout)."""
        cap = self._cap
        if cap is None:
            return False
        cap.request_finish()
        return True

    async def stop(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.request_stop()
            if cap.wake is not None:
                cap.wake.set()  # a waiting batches() hands over what is queued and ends
            await asyncio.to_thread(cap.join, 2.0)

    async def batches(self) -> AsyncIterator[EventBatch]:
        """Batches of what arrived, handed over as it arrives (see the module docstring); ends
        when the driver stops, raises what made the capture thread fail."""
        if self._cap is None:
            await self.start()
        cap = self._cap
        assert cap is not None and cap.wake is not None
        wake = cap.wake
        period = self.params["batch_us"] / 1e6
        t_start = cap.t_started_us
        seq = 0
        meta = {"interface": self.params["interface"]}
        while True:
            await wake.wait()
            if period and cap.error is None and not cap.stop_flag.is_set() \
                    and not cap.finish_flag.is_set():
                await asyncio.sleep(period)  # gather for fewer, bigger batches
            wake.clear()
            cap.signalled = False  # frames queued from now on wake us again
            frames: list[tuple[int, int, bytes, int]] = []
            for _ in range(cap.q.qsize()):  # what is queued now (later frames wake us again)
                try:
                    frames.append(cap.q.get_nowait())
                except queue.Empty:
                    break
            if frames:
                newest = max(f[0] for f in frames)
                if newest < t_start - MAX_GAP_US:  # the host clock stepped back: a new base
                    self.time_jumps += 1
                    t_start = min(f[0] for f in frames)
                t_end = max(t_start + 1, newest + 1)  # every frame is before t_end
                pk = self._decode(frames)
                lost = self.counts.lost()  # full queue, kernel drops, unread at a reopen
                dropped, self._lost_reported = lost - self._lost_reported, lost
                self.packets += len(pk)
                yield EventBatch(self.id, seq, t_start, t_end, pk, "packets", dropped,
                                 {**meta, "t_recv_us": frames[0][0]})
                seq += 1
                t_start = t_end
            if cap.error is not None:
                raise cap.error
            if cap.stop_flag.is_set() or cap.finished:
                if cap.q.empty():
                    return
                wake.set()  # queued while the last batch was handed over: one more

    def _decode(self, frames: list[tuple[int, int, bytes, int]]) -> np.ndarray:
        n = len(frames)
        lens = np.fromiter((len(f[2]) for f in frames), np.int64, n)
        off = np.zeros(n, np.int64)
        if n > 1:
            np.cumsum(lens[:-1], out=off[1:])
        buf = np.frombuffer(b"".join(f[2] for f in frames), np.uint8) if n else \
            np.zeros(0, np.uint8)
        ts = np.fromiter((f[0] for f in frames), np.int64, n)
        lt = np.fromiter((f[1] for f in frames), np.int32, n)
        orig = np.fromiter((f[3] for f in frames), np.int64, n)
        pk, _, _, bad = decode(buf, off, lens, orig, ts, lt)
        self.truncated += bad
        return pk

    def status(self) -> dict[str, Any]:
        c = self.counts
        return {
            "packets": self.packets,
            "truncated_frames": self.truncated,
            "frames": c.frames,
            "dropped": c.dropped,
            "kernel_frames": c.kernel_frames,
            "kernel_drops": c.kernel_drops,
            "unread_at_close": c.unread_at_close,
            "skipped_outgoing": c.skipped_outgoing,
            "reopens": c.reopens,
            "open_failures": c.open_failures,
            "last_error": c.last_error,
            "time_jumps": self.time_jumps,
        }
