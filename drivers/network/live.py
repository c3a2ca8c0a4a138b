"""Live capture on Linux through an AF_PACKET raw socket, decoded into PACKET batches.

Opening the socket needs CAP_NET_RAW; without it the driver fails at start with a message that
says so and how to grant it (no retry: waiting does not help). A capture thread reads frames
into a bounded queue (overflow is counted and reported as `dropped_before`); the pipeline side
decodes each batch with the numba frame decoder. When the interface goes away the socket is
reopened with backoff. On the loopback interface every frame is seen twice (outgoing and
incoming); the outgoing copy is skipped.

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
import logging
import queue
import socket
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


def open_af_packet(interface: str, timeout_s: float = 0.1) -> socket.socket:
    """A raw AF_PACKET socket bound to `interface`; CapturePermissionError without rights."""
    if not hasattr(socket, "AF_PACKET"):
        raise OSError("AF_PACKET live capture is only available on Linux")
    try:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    except PermissionError as e:
        raise CapturePermissionError(permission_message(interface)) from e
    try:
        s.bind((interface, 0))
        s.settimeout(timeout_s)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    except BaseException:
        s.close()
        raise
    return s


class _Capture(threading.Thread):
    """Reads frames into a bounded queue of (t_us, linktype, frame, orig_len); wakes the event
    loop's `wake` event (set with `attach`) when frames come into an empty queue, when it fails
    and when it ends."""

    def __init__(self, interface: str, snaplen: int, max_queue: int, reconnect_max_s: float):
        super().__init__(name=f"af_packet:{interface}", daemon=True)
        self.interface = interface
        self.snaplen = snaplen
        self.q: queue.Queue[tuple[int, int, bytes, int]] = queue.Queue(max_queue)
        self.reconnect_max_s = reconnect_max_s
        self.stop_flag = threading.Event()
        self.dropped = 0
        self.frames = 0
        self.reopens = 0
        self.open_failures = 0
        self.error: BaseException | None = None
        self.last_error = ""
        self.sock: socket.socket | None = None
        self.finished = False  # run() has returned (stopped or failed)
        self.signalled = False  # a wake-up is on its way; the consumer resets it as it drains
        self.stamping = False  # a frame is stamped but not yet queued
        self.t_started_us = 0  # host time (µs) before the first frame was read
        self._loop: asyncio.AbstractEventLoop | None = None
        self.wake: asyncio.Event | None = None

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

    def _read(self) -> None:
        backoff = Backoff(0.05, self.reconnect_max_s)
        while not self.stop_flag.is_set():
            if self.sock is None:
                try:
                    self.sock = open_af_packet(self.interface)
                    backoff.reset()
                except CapturePermissionError as e:
                    self.error = e
                    return
                except OSError as e:
                    self.open_failures += 1
                    self.last_error = str(e)
                    d = backoff.next_delay()
                    log.warning("cannot capture on %s (%s); retrying in %.2f s",
                                self.interface, e, d)
                    self.stop_flag.wait(d)
                    continue
            try:
                data, addr = self.sock.recvfrom(self.snaplen + 1)
            except TimeoutError:
                continue
            except OSError as e:  # interface down or removed
                self.last_error = str(e)
                log.warning("capture on %s failed (%s); reopening", self.interface, e)
                self._close()
                self.reopens += 1
                continue
            hatype, pkttype = addr[3], addr[2]
            if hatype == ARPHRD_LOOPBACK and pkttype == PACKET_OUTGOING:
                continue
            # from the time stamp to the queue (the GIL may pass to other threads in between)
            # holds_data() is true, so the runtime does not close a step on the host clock
            # past a frame not yet queued
            self.stamping = True
            t_us = time.time_ns() // 1000
            self.frames += 1
            orig = len(data)
            if orig > self.snaplen:
                data = data[: self.snaplen]
            try:
                self.q.put_nowait((t_us, LINKTYPE_OF_HATYPE.get(hatype, 1), data, orig))
            except queue.Full:
                self.dropped += 1
            self.stamping = False
            if not self.signalled:
                self.notify()

    def _close(self) -> None:
        if self.sock is not None:
            self.sock.close()
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
        cap = _Capture(self.params["interface"], self.params["snaplen"],
                       self.params["max_queue"], self.params["reconnect_max_s"])
        cap.sock = s
        cap.attach(asyncio.get_running_loop(), asyncio.Event())
        cap.t_started_us = time.time_ns() // 1000  # the first batch starts here
        cap.start()
        self._cap = cap

    async def stop(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.stop_flag.set()
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
        dropped_seen = 0
        meta = {"interface": self.params["interface"]}
        while True:
            await wake.wait()
            if period and cap.error is None and not cap.stop_flag.is_set():
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
                dropped = cap.dropped - dropped_seen
                dropped_seen = cap.dropped
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
        c = self._cap
        return {
            "packets": self.packets,
            "truncated_frames": self.truncated,
            "frames": c.frames if c else 0,
            "dropped": c.dropped if c else 0,
            "reopens": c.reopens if c else 0,
            "open_failures": c.open_failures if c else 0,
            "last_error": c.last_error if c else "",
            "time_jumps": self.time_jumps,
        }
