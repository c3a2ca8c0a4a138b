"""`type = "edvs_serial"`: an eDVS (embedded DVS128) streaming binary events over a serial port.

On every (re)connect the driver sends `E-` (stop), `!E<n>` (event format) and `E+` (start),
each ending in a newline. Events are `1yyyyyyy pxxxxxxx` followed by the timestamp of the
chosen format; a byte meant to start an event with its MSB clear means the stream is out of
sync, so it is skipped and counted (`resync_bytes`), which also swallows the board's ASCII
command echoes. Timestamp formats, by firmware numbering (formats.md §3):

    firmware "edvs4337" (eDVS4337, mini-eDVS): E0 none, E1 delta 1-4 bytes, E2 16-bit,
                                               E3 24-bit, E4 32-bit absolute (big-endian)
    firmware "edvs128"  (older eDVS128, edvstools): E0 none, E1 16-bit, E2 24-bit, E3 32-bit

Events without a timestamp get the receive time. The polarity is the bit sent by the board
(`invert_polarity` flips it). Lost or missing ports are retried with backoff by SerialSource.

Latency: the events of every read from the port are handed over at once as one batch
(`batch_us = 0`, the default; a positive `batch_us` gathers that long of wall time first).
Batches follow one another in time (each starts where the previous ended and ends at its
newest event's µs, whose events the next read may still bring more of, or just past it when
events are stamped on arrival), and one board's byte stream is in order, so a batch is
complete up to its end (`in_order`). `sensor_now_us` maps the host clock to the board's
(`ArrivalOffset`: the first event of each read against its arrival; events without a
timestamp are on the host clock already), so the runtime closes steps on the host clock when
the board is quiet; a leap of the board clock by more than `MAX_GAP_US` starts a new offset.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from edgesnn_drivers.arrival import ArrivalOffset, mono_us
from edgesnn_drivers.serial_port import SERIAL_SCHEMA, SerialSource

from edgesnn.components import Driver, register
from edgesnn.config.schema import Field, Schema
from edgesnn.events import DVS_EVENT, MAX_GAP_US, EventBatch

from . import _kernels as K

#: firmware -> event format number -> timestamp mode (0 none, 1 delta, 2/3/4 absolute bytes)
TS_MODES = {"edvs4337": {0: 0, 1: 1, 2: 2, 3: 3, 4: 4}, "edvs128": {0: 0, 1: 2, 2: 3, 3: 4}}


class EDVSParser:
    """Incremental eDVS byte-stream parser keeping partial events between chunks."""

    def __init__(self, ts_mode: int, invert_polarity: bool = False):
        if ts_mode not in (0, 1, 2, 3, 4):
            raise ValueError(f"timestamp mode {ts_mode} is not 0..4")
        self.ts_mode = ts_mode
        self.invert = int(bool(invert_polarity))
        self.state = np.zeros(4, np.int64)
        self.counts = np.zeros(K.N_COUNTS, np.int64)
        self._tail = b""
        self.events = 0

    @property
    def resync_bytes(self) -> int:
        """Bytes skipped to regain sync (garbage, echoes)."""
        return int(self.counts[K.C_INVALID])

    def feed(self, data: bytes, t_now_us: int = 0) -> np.ndarray:
        """Events completed by `data` (a DVS_EVENT array)."""
        buf = np.frombuffer(self._tail + data, np.uint8)
        out = np.empty(len(buf) // 2 + 1, DVS_EVENT)
        used, n = K.edvs_decode(buf, out, self.state, self.counts, self.ts_mode, t_now_us,
                                self.invert)
        self._tail = bytes(buf[used:])
        if len(self._tail) > 8:  # cannot happen with a valid mode; keep memory bounded anyway
            self.counts[K.C_INVALID] += len(self._tail) - 8
            self._tail = self._tail[-8:]
        self.events += int(n)
        return out[:n]


def encode_edvs(events: np.ndarray, ts_mode: int, invert_polarity: bool = False) -> bytes:
    """DVS_EVENT (x, y < 128) -> eDVS bytes in timestamp mode `ts_mode` (for peers and tests)."""
    out = bytearray()
    prev = None
    for t, x, y, p in events[["t", "x", "y", "p"]].tolist():
        out += bytes([0x80 | (y & 0x7F), ((int(p) ^ int(invert_polarity)) << 7) | (x & 0x7F)])
        if ts_mode == 1:
            d = 0 if prev is None else t - prev
            prev = t
            groups = [d & 0x7F]
            d >>= 7
            while d and len(groups) < 4:
                groups.append(d & 0x7F)
                d >>= 7
            groups.reverse()
            groups[-1] |= 0x80
            out += bytes(groups)
        elif ts_mode >= 2:
            out += (t & ((1 << (8 * ts_mode)) - 1)).to_bytes(ts_mode, "big")
    return bytes(out)


class _EDVSSource(SerialSource):
    """SerialSource that enables RTS/CTS flow control when asked (eDVS boards need it) and
    notes bytes read that may hold events but are not yet parsed (`unparsed`, cleared by the
    driver; ASCII such as command echoes has no byte with the MSB set an event starts with)."""

    unparsed = False

    def _open(self) -> Any:
        ser = super()._open()
        if self.params.get("rtscts"):
            ser.rtscts = True
        return ser

    def _read(self) -> bytes:
        data = super()._read()
        if data and max(data) & 0x80:
            self.unparsed = True
        return data

    def waiting(self) -> bool:
        """Bytes wait in the port's receive buffer."""
        ser = self._ser
        try:
            return ser is not None and bool(ser.in_waiting)
        except Exception:  # closed or lost under us
            return False


@register
class EDVSSerialDriver(Driver):
    """Live eDVS128 events over a serial port (see module docstring)."""

    in_order = True  # one board's byte stream: a batch is complete to its end
    type_name = "edvs_serial"
    summary = "eDVS (embedded DVS128) over a serial port: E0-E4 formats, resync, reconnect."
    batch_kind = "dvs"
    schema = SERIAL_SCHEMA | Schema(
        {
            "baudrate": Field(int, default=4_000_000, min=1,
                              doc="eDVS4337 613xx: 4000000; 126xx and mini-eDVS: 12000000."),
            "rtscts": Field(bool, default=True, doc="RTS/CTS hardware flow control."),
            "event_format": Field(int, default=4, min=0, max=4,
                                  doc="Timestamp format number sent as !E<n>."),
            "firmware": Field(str, default="edvs4337", choices=tuple(TS_MODES),
                              doc="Which firmware numbering of the !E formats applies."),
            "invert_polarity": Field(bool, default=False, doc="Flip the polarity bit."),
            "batch_us": Field(int, default=0, min=0,
                              doc="Wall time to gather events before handing a batch over "
                              "(µs); 0: hand over what arrived at once."),
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        modes = TS_MODES[params["firmware"]]
        if params["event_format"] not in modes:
            raise ValueError(
                f"firmware {params['firmware']} has no format E{params['event_format']}")
        self.parser = EDVSParser(modes[params["event_format"]], params["invert_polarity"])
        self.source = _EDVSSource(params, on_connect=self._on_connect)
        self.events_out = 0
        self._t0_us = mono_us()
        self.host_clock = ArrivalOffset()
        self._pend = 0  # parsed events not yet handed over
        #: a batch ends this far past its newest event: 0 with board timestamps (more events
        #: of that µs may come in the next read), 1 when events are stamped on arrival
        self._past_newest = 0 if modes[params["event_format"]] else 1

    def _on_connect(self, ser: Any) -> None:
        n = self.params["event_format"]
        ser.write(b"E-\n")
        ser.write(f"!E{n}\n".encode())
        ser.write(b"E+\n")
        ser.flush()

    def sensor_shape(self) -> tuple[int, ...]:
        return (128, 128)

    def holds_data(self) -> bool:
        """Events parsed or bytes read (or waiting in the port) but not handed over."""
        return bool(self._pend) or self.source.unparsed or self.source.waiting()

    def sensor_now_us(self) -> int | None:
        """The board time of this moment (None before the first event)."""
        return self.host_clock.now_us()

    def _parse(self, chunk: bytes, t_end: int | None) -> np.ndarray:
        """Events of one read; their first relates the board clock to the host clock."""
        recv = mono_us()
        ev = self.parser.feed(chunk, recv - self._t0_us)
        self.source.unparsed = False
        if len(ev):
            t0 = int(ev["t"][0])
            if t_end is not None and abs(t0 - t_end) > MAX_GAP_US:
                self.host_clock.reset()  # the board clock leapt: a new offset
            self.host_clock.track(t0, recv)
        return ev

    async def batches(self) -> AsyncIterator[EventBatch]:
        """One batch per read with events (`batch_us` = 0), or what arrived in `batch_us` of
        wall time after the first pending event."""
        meta = {"width": 128, "height": 128, "sensor": "eDVS128"}
        period = self.params["batch_us"] / 1e6
        pend: list[np.ndarray] = []
        seq = 0
        t_end = None
        first_wall = 0.0
        dropped_reported = 0
        chunks = self.source.chunks().__aiter__()
        nxt: asyncio.Future[bytes] | None = None
        ended = False
        try:
            while not ended:
                if nxt is None:
                    nxt = asyncio.ensure_future(chunks.__anext__())
                # with events pending, wake up when they are due even if no byte arrives
                wait_s = (max(0.0, period - (time.monotonic() - first_wall)) if self._pend
                          else None)
                done, _ = await asyncio.wait({nxt}, timeout=wait_s)
                if done:
                    fut, nxt = nxt, None
                    try:
                        chunk = fut.result()
                    except StopAsyncIteration:
                        ended = True
                        chunk = b""
                    ev = self._parse(chunk, t_end) if chunk else ()
                    if len(ev):
                        if not self._pend:
                            first_wall = time.monotonic()
                        pend.append(ev)
                        self._pend += len(ev)
                if not self._pend:
                    continue
                if not ended and period and time.monotonic() - first_wall < period:
                    continue
                evs = np.concatenate(pend) if len(pend) > 1 else pend[0]
                pend = []
                t_start = int(evs["t"][0]) if t_end is None else t_end
                # board time: the next read may bring more events of the newest µs, so the
                # batch ends at it (they are held with it); stamped on arrival, or all at one
                # µs (so that a leap of the board clock still has data before the end): past it
                newest = int(evs["t"].max())
                if self._past_newest or int(evs["t"].min()) == newest:
                    t_end = max(t_start + 1, newest + 1)
                else:
                    t_end = max(t_start, newest)
                d = self.parser.resync_bytes
                self.events_out += len(evs)
                self._pend = 0
                yield EventBatch(self.id, seq, t_start, t_end, evs, "dvs", d - dropped_reported,
                                 meta)
                dropped_reported = d
                seq += 1
        finally:
            if nxt is not None:  # a read still in flight: stop it with the generator
                nxt.cancel()

    def finish(self) -> bool:
        """Read the bytes waiting in the port now (and no more), hand over every event, end."""
        self.source.finish()
        return True

    async def stop(self) -> None:
        self.source.close()

    def status(self) -> dict[str, Any]:
        return {**self.source.status(), "events": self.events_out,
                "resync_bytes": self.parser.resync_bytes,
                "wraps": int(self.parser.counts[K.C_WRAPS])}
