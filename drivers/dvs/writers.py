"""Writers of DVS recordings: AEDAT 4.0 (LZ4, ZSTD or uncompressed) and Prophesee EVT 3.0.

Both are streaming (each `write` appends and flushes, so an interrupted recording keeps what was
written) and round-trip exactly through the readers of this package: same t, x, y, p and the
same sensor geometry. EVT 3.0 keeps 24-bit time plus wrap-arounds; when the first timestamp is
beyond 2^34 µs (Unix-epoch clocks) the writer stores `% edgesnn_t0_us <t0>` in the header and
writes times relative to it, and the reader adds it back.
"""

from __future__ import annotations

import os
from typing import IO, Any

import numpy as np

from edgesnn.events import DVS_EVENT

from . import _flatbuf as fb
from . import _kernels as K
from .readers import AEDAT4_EVENT

AEDAT4_PACKET_EVENTS = 1 << 15
_COMP = {"none": 0, "lz4": 1, "lz4_high": 2, "zstd": 3, "zstd_high": 4}
_INFO_XML = """<dv version="2.0">
    <node name="outInfo" path="/mainloop/Recorder/outInfo/">
        <node name="0" path="/mainloop/Recorder/outInfo/0/">
            <attr key="compression" type="string">{comp}</attr>
            <attr key="originalModuleName" type="string">edgesnn</attr>
            <attr key="originalOutputName" type="string">events</attr>
            <attr key="typeDescription" type="string">Array of events (polarity ON/OFF).</attr>
            <attr key="typeIdentifier" type="string">EVTS</attr>
            <node name="info" path="/mainloop/Recorder/outInfo/0/info/">
                <attr key="sizeX" type="int">{w}</attr>
                <attr key="sizeY" type="int">{h}</attr>
                <attr key="source" type="string">{source}</attr>
                <attr key="tsOffset" type="long">0</attr>
            </node>
        </node>
    </node>
</dv>
"""


def _check(ev: np.ndarray, width: int, height: int, limit: int) -> np.ndarray:
    ev = np.asarray(ev)
    if ev.dtype != DVS_EVENT:
        raise TypeError(f"expected a DVS_EVENT array, got dtype {ev.dtype}")
    if len(ev) and (int(ev["x"].max()) >= min(width, limit)
                    or int(ev["y"].max()) >= min(height, limit) or int(ev["p"].max()) > 1):
        raise ValueError(f"events outside the {width}x{height} sensor (or polarity > 1)")
    return ev


class AEDAT4Writer:
    """Appends DVS_EVENT arrays to an AEDAT 4.0 file, one EVTS packet per 32768 events."""

    def __init__(self, path: str | os.PathLike[str], width: int, height: int,
                 sensor: str = "edgesnn", compression: str = "lz4"):
        if compression not in _COMP:
            raise ValueError(f"compression must be one of {', '.join(_COMP)}")
        self.path = os.fspath(path)
        self.width, self.height, self.compression = int(width), int(height), compression
        self.events_written = 0
        xml = _INFO_XML.format(comp=compression.split("_")[0].upper(), w=width, h=height,
                               source=_xml_escape(sensor))
        head = fb.io_header(_COMP[compression], -1, xml)
        self._f: IO[bytes] = open(self.path, "wb")  # noqa: SIM115 (closed by close())
        self._f.write(b"#!AER-DAT4.0\r\n" + len(head).to_bytes(4, "little") + head)
        self._f.flush()

    def _compress(self, data: bytes) -> bytes:
        if self.compression == "none":
            return data
        if self.compression.startswith("lz4"):
            import lz4.frame

            level = 9 if self.compression == "lz4_high" else 0
            return lz4.frame.compress(data, compression_level=level, store_size=True)
        import zstandard

        level = 19 if self.compression == "zstd_high" else 3
        return zstandard.ZstdCompressor(level=level, write_content_size=True).compress(data)

    def write(self, events: np.ndarray) -> None:
        """Append events (any order; AEDAT 4.0 keeps them as given)."""
        ev = _check(events, self.width, self.height, 1 << 15)
        for i in range(0, len(ev), AEDAT4_PACKET_EVENTS):
            part = ev[i : i + AEDAT4_PACKET_EVENTS]
            rec = np.zeros(len(part), AEDAT4_EVENT)
            rec["t"], rec["x"], rec["y"], rec["p"] = part["t"], part["x"], part["y"], part["p"]
            payload = self._compress(fb.event_packet(rec.tobytes(), len(part)))
            self._f.write(np.array([0, len(payload)], "<i4").tobytes() + payload)
        self.events_written += len(ev)
        self._f.flush()

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> AEDAT4Writer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class EVT3Writer:
    """Appends time-sorted DVS_EVENT arrays to a Prophesee EVT 3.0 RAW file."""

    def __init__(self, path: str | os.PathLike[str], width: int, height: int,
                 sensor: str = "edgesnn"):
        if width > 2048 or height > 2048:
            raise ValueError("EVT 3.0 addresses are 11 bits: width and height must be <= 2048")
        self.path = os.fspath(path)
        self.width, self.height, self.sensor = int(width), int(height), sensor
        self.events_written = 0
        self.t0_us: int | None = None
        self._state = np.zeros(5, np.int64)
        self._f: IO[bytes] = open(self.path, "wb")  # noqa: SIM115 (closed by close())

    def _header(self, t0: int) -> None:
        lines = ["% evt 3.0", f"% format EVT3;height={self.height};width={self.width}",
                 f"% geometry {self.width}x{self.height}", f"% sensor {self.sensor}"]
        if t0:
            lines.append(f"% edgesnn_t0_us {t0}")
        lines.append("% end")
        self._f.write(("\n".join(lines) + "\n").encode())

    def write(self, events: np.ndarray) -> None:
        """Append events; times must not decrease (within and across calls) and be >= 0."""
        ev = _check(events, self.width, self.height, 2048)
        if self.t0_us is None:
            if not len(ev):
                return
            first = int(ev["t"][0])
            self.t0_us = first if first >= (1 << 34) else 0
            self._header(self.t0_us)
        if not len(ev):
            return
        if self.t0_us:
            ev = ev.copy()
            ev["t"] -= self.t0_us
        if int(ev["t"].min()) < 0:
            raise ValueError("EVT 3.0 times must be >= the first time of the recording")
        wraps = int(ev["t"].max()) >> 24
        crossings = wraps - int(self._state[2])
        if crossings > (1 << 22):
            raise ValueError("time jumps by more than 19 hours within one write")
        out = np.empty(8 + 4 * len(ev) + 2 * max(0, crossings), np.uint16)
        k = K.evt3_encode(ev, out, self._state)
        if k < 0:
            raise ValueError(f"event {-1 - k} goes back in time; EVT 3.0 needs sorted times")
        self._f.write(out[:k].tobytes())
        self._f.flush()
        self.events_written += len(ev)

    def close(self) -> None:
        if self.t0_us is None:
            self._header(0)
        self._f.close()

    def __enter__(self) -> EVT3Writer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _xml_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


WRITERS = {"aedat4": AEDAT4Writer, "evt3": EVT3Writer}


def open_writer(path: str | os.PathLike[str], fmt: str, width: int, height: int,
                sensor: str = "edgesnn", **options: Any) -> AEDAT4Writer | EVT3Writer:
    """A writer of `fmt` ("aedat4" or "evt3") for a width x height sensor."""
    if fmt not in WRITERS:
        raise ValueError(f"cannot write {fmt!r}; writable formats: {', '.join(WRITERS)}")
    return WRITERS[fmt](path, width, height, sensor, **options)
