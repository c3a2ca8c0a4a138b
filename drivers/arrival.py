"""Host clock -> sensor time for live sources whose datagrams each span sensor time (a LiDAR
packet, a block of audio frames): the `sensor_now_us` of `velodyne_udp` and `pcm_udp`, which
lets the runtime close steps on the host clock without closing one whose data is on the way."""

from __future__ import annotations

import time

#: host µs over which the sensor clock offset is the smallest (packet start - receive) seen
OFFSET_WINDOW_US = 1_000_000


def mono_us() -> int:
    """The host's monotonic clock in µs."""
    return time.monotonic_ns() // 1000


class ArrivalOffset:
    """Sensor time of this moment on the host clock, for a source whose datagrams each span
    sensor time before they are sent (a LiDAR packet, a block of audio frames).

    The offset is the smallest (start of a datagram's data - its monotonic receive time) of
    the last 1-2 s, so the host clock mapped by it does not pass the start of the next
    datagram of a steady stream, and the runtime does not close steps whose data is still on
    the way (an offset from the newest data would run a whole datagram ahead between
    datagrams, and each next datagram would come late). A datagram more delayed than any of
    the last 1-2 s lowers it at once; an earlier one raises it only as the window moves on.
    """

    __slots__ = ("off", "off_prev", "since")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the offset (a new time base after a clock jump or a restarted sender)."""
        self.off: int | None = None
        self.off_prev: int | None = None
        self.since = 0

    def track(self, start_us: int, recv_mono_us: int) -> None:
        """A datagram whose data starts at `start_us` (sensor time) came at `recv_mono_us`."""
        off = start_us - recv_mono_us
        if self.off is None or recv_mono_us - self.since >= OFFSET_WINDOW_US:
            self.off_prev, self.off, self.since = self.off, off, recv_mono_us
        elif off < self.off:
            self.off = off

    def now_us(self) -> int | None:
        """Sensor time of this moment (None before the first datagram)."""
        off = self.off
        if off is None:
            return None
        if self.off_prev is not None:
            off = min(off, self.off_prev)
        return mono_us() + off
