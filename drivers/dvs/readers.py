"""Streaming readers of DVS recordings: bounded-memory chunks of DVS_EVENT, then time batches.

`open_reader(path)` detects the format from the content and returns a reader whose
`iter_chunks()` yields DVS_EVENT arrays decoded from fixed-size byte chunks (so memory does not
grow with the file) and whose `iter_batches(batch_us)` regroups them into `EventBatch`es of
`batch_us` sensor time with the sensor's "width", "height" and "sensor" in `meta`.

Bad input raises `FormatError` naming the byte offset (reserved word types, truncated records,
impossible packet sizes); events outside the sensor are dropped and counted in `counters` and
in the next batch's `dropped_before`.

DVS128 conventions (AEDAT 2.0): the address holds X (bits 7-1), Y (bits 14-8) and a polarity
bit. By default the reader follows iniVation's published table: x = X, y = Y, ON when bit 0 is
1. `dvs128_polarity="jaer"` makes bit 0 = 0 ON and `dvs128_x="jaer"` gives x = 127 - X, as
jAER's own extractor does. DAVIS addresses are flipped on both axes as jAER and tonic do, or
kept raw with `davis_flip=False`.

N-MNIST / N-Caltech101 (ATIS, headerless 5-byte records): the geometry is N-MNIST's 34x34 crop
unless `width`/`height` are given (N-Caltech101 needs them); records with y == 240 are
timestamp overflows adding 2^13 µs to later times, as tonic's `read_mnist_file` does.
"""

from __future__ import annotations

import io
import os
import struct
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from edgesnn.errors import FormatError
from edgesnn.events import DVS_EVENT, EventBatch
from edgesnn.replay import regular_file

from . import _flatbuf as fb
from . import _kernels as K
from .formats import MAX_SENSOR_SIDE, Header, detect, read_header

CHUNK_BYTES = 1 << 20  # bytes read per step
MAX_CHUNK_EVENTS = 1 << 18  # events per decoded chunk
MAX_PACKET_BYTES = 256 << 20  # largest AEDAT 3.1 / 4.0 packet (compressed or not) accepted

COUNTER_NAMES = (
    "out_of_range", "before_time_reference", "triggers", "other", "backwards", "invalid", "wraps",
)
#: AEDAT 4.0 event struct (int64 t, int16 x, int16 y, uint8 polarity, 3 bytes padding)
AEDAT4_EVENT = np.dtype(
    {"names": ["t", "x", "y", "p"], "formats": ["<i8", "<i2", "<i2", "u1"],
     "offsets": [0, 8, 10, 12], "itemsize": 16}
)
AEDAT4_COMPRESSION = {0: "none", 1: "lz4", 2: "lz4_high", 3: "zstd", 4: "zstd_high"}


class DVSReader:
    """Base of the DVS file readers; see the module docstring."""

    format: ClassVar[str] = ""

    def __init__(self, path: str | os.PathLike[str], *, width: int = 0, height: int = 0,
                 chunk_bytes: int = CHUNK_BYTES, header: Header | None = None):
        self.path = os.fspath(path)
        self.chunk_bytes = max(64, int(chunk_bytes))
        if header is None:
            regular_file(self.path)
            with open(self.path, "rb") as f:
                header = self._read_header(f)
        self.header = header
        self.width = int(width or header.width)
        self.height = int(height or header.height)
        for side, v in (("width", self.width), ("height", self.height)):
            if not 0 <= v <= MAX_SENSOR_SIDE:
                raise FormatError(f"sensor {side} {v} is outside 0..{MAX_SENSOR_SIDE}",
                                  path=self.path)
        self.sensor = header.sensor
        self.counts = np.zeros(K.N_COUNTS, np.int64)

    def _read_header(self, f: Any) -> Header:
        return read_header(f, self.format, self.path)

    @property
    def meta(self) -> dict[str, Any]:
        """Batch metadata: sensor geometry and name, and the file format."""
        return {"width": self.width, "height": self.height, "sensor": self.sensor,
                "format": self.format}

    @property
    def counters(self) -> dict[str, int]:
        """Counts of dropped / skipped items of the last (or current) pass."""
        return {k: int(v) for k, v in zip(COUNTER_NAMES, self.counts)}

    @property
    def dropped(self) -> int:
        """Events lost to bad coordinates, missing time reference or invalid flags."""
        c = self.counts
        return int(c[K.C_OUT_OF_RANGE] + c[K.C_BEFORE_TIME] + c[K.C_INVALID])

    def iter_chunks(self, reuse: bool = False) -> Iterator[np.ndarray]:
        """DVS_EVENT arrays in file order; with `reuse` the same buffer is refilled each time."""
        raise NotImplementedError

    def read_all(self) -> np.ndarray:
        """Every event of the file (for tests and small files)."""
        parts = list(self.iter_chunks())
        return np.concatenate(parts) if parts else np.empty(0, DVS_EVENT)

    def iter_batches(self, batch_us: int = 10_000, max_events: int = MAX_CHUNK_EVENTS,
                     stream: str = "dvs") -> Iterator[EventBatch]:
        """EventBatches of `batch_us` sensor time (split when over `max_events`)."""
        return rebatch(self.iter_chunks(), batch_us, max_events, stream, self.meta,
                       lambda: self.dropped)


def rebatch(chunks: Iterator[np.ndarray], batch_us: int, max_events: int, stream: str,
            meta: dict[str, Any], dropped: Any = None) -> Iterator[EventBatch]:
    """Regroup event chunks into EventBatches covering [t_start, t_end) windows of `batch_us`.

    Windows without events are skipped; a window with more than `max_events` events is split
    at an event time. Events are kept in their original order; a timestamp that went backwards
    stays in the batch being filled.
    """
    batch_us = max(1, int(batch_us))
    max_events = max(1, int(max_events))
    pend: list[np.ndarray] = []
    npend = 0
    ws = we = 0
    started = False
    seq = 0
    last_dropped = 0

    def emit(t_end: int) -> EventBatch:
        nonlocal pend, npend, seq, last_dropped
        ev = np.concatenate(pend) if len(pend) > 1 else pend[0]
        d = int(dropped()) if dropped is not None else 0
        b = EventBatch(stream, seq, ws, t_end, ev, "dvs", d - last_dropped, meta)
        last_dropped = d
        seq += 1
        pend, npend = [], 0
        return b

    for ev in chunks:
        n = len(ev)
        if n == 0:
            continue
        t = ev["t"]
        if not started:
            t0 = int(t[0])
            ws, we, started = t0 - t0 % batch_us, t0 - t0 % batch_us + batch_us, True
        i = 0
        while i < n:
            ti = int(t[i])
            if ti >= we:
                if npend:
                    yield emit(we)
                ws = we if ti < we + batch_us else ti - (ti - we) % batch_us
                we = ws + batch_us
                continue
            j = i + int(np.searchsorted(t[i:], we, "left"))
            j = min(max(j, i + 1), i + max_events - npend)
            pend.append(ev[i:j])
            npend += j - i
            i = j
            if npend >= max_events:
                t_split = int(t[i]) if i < n else int(t[i - 1]) + 1
                t_split = min(max(t_split, ws + 1), we)
                yield emit(t_split)
                ws = t_split
    if npend:
        yield emit(we)


# --- word streams: AEDAT 2.0, EVT 2.0, EVT 3.0, DAT ---------------------------------------


class _WordReader(DVSReader):
    """Fixed-size records decoded by one numba kernel over chunks of the file."""

    word_dtype: ClassVar[str] = "<u4"
    record_bytes: ClassVar[int] = 4
    n_state: ClassVar[int] = 4
    #: (chunk bytes, chunk events, read buffer, event buffer) kept between passes
    _buffers: tuple[int, int, bytearray, np.ndarray] | None = None

    def _decode(self, words: np.ndarray, start: int, out: np.ndarray,
                st: np.ndarray) -> tuple[int, int, int]:
        raise NotImplementedError

    def iter_chunks(self, reuse: bool = False) -> Iterator[np.ndarray]:
        """DVS_EVENT arrays in file order; with `reuse` the same buffer is refilled each time
        (also by the next pass over the file)."""
        self.counts[:] = 0
        st = np.zeros(self.n_state, np.int64)
        wsize = np.dtype(self.word_dtype).itemsize
        rec = self.record_bytes
        # few system calls per pass (open, fstat, one positioned read per chunk, close) and
        # buffers kept for the next pass: on a small file these costs rival the decoding
        fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            body = max(0, os.fstat(fd).st_size - self.header.data_offset)
            size = min(self.chunk_bytes, body + rec)  # small files get small buffers
            size = max(rec, size - size % rec)
            cap = max(64, min(MAX_CHUNK_EVENTS, size // wsize))
            bufs, self._buffers = self._buffers, None  # a concurrent pass gets its own
            if bufs is None or bufs[0] != size or bufs[1] != cap:
                bufs = (size, cap, bytearray(size + rec), np.empty(cap, DVS_EVENT))
            buf, out = bufs[2], bufs[3]
            b8 = np.frombuffer(buf, np.uint8)
            mv = memoryview(buf)
            pos = self.header.data_offset  # file offset of buf[0]
            rem = 0
            while True:
                got = _pread_into(fd, mv[rem : rem + size], pos + rem)
                total = rem + got
                if got == 0:
                    if rem:
                        raise FormatError(
                            f"truncated record: {rem} trailing bytes of a {rec}-byte record",
                            offset=pos, path=self.path,
                        )
                    break
                usable = total - total % rec
                words = np.frombuffer(buf, self.word_dtype, usable // wsize)
                nrec = usable // rec
                i = 0
                while i < nrec:
                    i, n, err = self._decode(words, i, out, st)
                    if err >= 0:
                        raise FormatError(
                            f"reserved word type 0x{int(words[err]) >> (wsize * 8 - 4):X} "
                            f"(word 0x{int(words[err]):0{wsize * 2}X})",
                            offset=pos + err * wsize, path=self.path,
                        )
                    if n:
                        if reuse:
                            yield out[:n]
                        elif n < cap // 2:
                            yield out[:n].copy()
                        else:
                            yield out[:n]
                            out = np.empty(cap, DVS_EVENT)
                rem = total - usable
                if rem:
                    b8[:rem] = b8[usable:total].copy()
                pos += usable
            self._buffers = (size, cap, buf, out)
        finally:
            os.close(fd)


def _pread_into(fd: int, view: memoryview, offset: int) -> int:
    """Read into `view` from file offset `offset`; returns the bytes read (0 at end of file)."""
    if _HAVE_PREADV:
        return os.preadv(fd, [view], offset)
    os.lseek(fd, offset, os.SEEK_SET)
    data = os.read(fd, len(view))
    view[: len(data)] = data
    return len(data)


_HAVE_PREADV = hasattr(os, "preadv")


class EVT2Reader(_WordReader):
    """Prophesee EVT 2.0 RAW files (32-bit words)."""

    format = "evt2"
    word_dtype = "<u4"
    record_bytes = 4

    def _decode(self, words, start, out, st):  # noqa: ANN001, ANN202
        return K.evt2_decode(words, start, out, st, self.counts, self.width, self.height)


class EVT3Reader(_WordReader):
    """Prophesee EVT 3.0 RAW files (16-bit words, stateful, vector words)."""

    format = "evt3"
    word_dtype = "<u2"
    record_bytes = 2
    n_state = 8

    def __init__(self, path: str | os.PathLike[str], **kw: Any):
        super().__init__(path, **kw)
        self.t_offset_us = int(self.header.fields.get("edgesnn_t0_us", 0) or 0)

    def _decode(self, words, start, out, st):  # noqa: ANN001, ANN202
        return K.evt3_decode(words, start, out, st, self.counts, self.width, self.height,
                             self.t_offset_us)


class AEDAT2Reader(_WordReader):
    """jAER AEDAT 2.0 files: 8-byte big-endian records, DVS128 or DAVIS address layout."""

    format = "aedat2"
    word_dtype = "<u4"
    record_bytes = 8
    n_state = 3

    def __init__(self, path: str | os.PathLike[str], *, dvs128_polarity: str = "inivation",
                 dvs128_x: str = "inivation", davis_flip: bool = True, **kw: Any):
        super().__init__(path, **kw)
        for name, v in (("dvs128_polarity", dvs128_polarity), ("dvs128_x", dvs128_x)):
            if v not in ("inivation", "jaer"):
                raise ValueError(f'{name} must be "inivation" or "jaer", not {v!r}')
        self.layout = 1 if self.header.fields.get("layout") == "davis" else 0
        if self.layout == 0:
            self.opts = (dvs128_polarity == "jaer") | ((dvs128_x == "jaer") << 1)
        else:
            self.opts = 0 if davis_flip else 1

    def _decode(self, words, start, out, st):  # noqa: ANN001, ANN202
        return K.aedat2_decode(words, start, out, st, self.counts, self.width, self.height,
                               self.layout, self.opts)


class DATReader(_WordReader):
    """Prophesee DAT files (8-byte records: uint32 t, packed x/y/p)."""

    format = "dat"
    word_dtype = "<u4"
    record_bytes = 8
    n_state = 3

    def iter_chunks(self, reuse: bool = False) -> Iterator[np.ndarray]:
        if self.header.fields.get("event_type") == 14:  # trigger-only file: nothing to decode
            self.counts[:] = 0
            return iter(())
        return super().iter_chunks(reuse)

    def _decode(self, words, start, out, st):  # noqa: ANN001, ANN202
        return K.dat_decode(words, start, out, st, self.counts, self.width, self.height)


class NMNISTReader(_WordReader):
    """N-MNIST / N-Caltech101 ATIS files: headerless 5-byte records (x, y, p + 23-bit time)."""

    format = "nmnist"
    word_dtype = "u1"
    record_bytes = 5
    n_state = 3

    def _decode(self, words, start, out, st):  # noqa: ANN001, ANN202
        return K.nmnist_decode(words, start, out, st, self.counts, self.width, self.height)


# --- packet streams: AEDAT 3.1 and 4.0 ----------------------------------------------------


class AEDAT3Reader(DVSReader):
    """cAER AEDAT 3.x files: polarity packets decoded, other packet types skipped and counted."""

    format = "aedat3"

    def __init__(self, path: str | os.PathLike[str], **kw: Any):
        super().__init__(path, **kw)
        if not self.width:
            self.width = self.height = 32768  # unknown device: the 15-bit address space
        self.skipped_packets: dict[int, int] = {}
        self.skipped_events: dict[int, int] = {}

    def iter_chunks(self, reuse: bool = False) -> Iterator[np.ndarray]:
        self.counts[:] = 0
        self.skipped_packets, self.skipped_events = {}, {}
        size = os.path.getsize(self.path)
        st = np.zeros(3, np.int64)
        step = max(8, self.chunk_bytes - self.chunk_bytes % 8)
        with open(self.path, "rb") as f:
            pos = self.header.data_offset
            f.seek(pos)
            while True:
                hb = f.read(28)
                if not hb:
                    return
                if len(hb) < 28:
                    raise FormatError("truncated packet header", offset=pos, path=self.path)
                etype, _src, esize, tsoff, tsovf, ecap, enum, _valid = struct.unpack(
                    "<hhiiiiii", hb)
                if esize <= 0 or ecap < 0 or enum < 0 or enum > ecap or \
                        esize * ecap > MAX_PACKET_BYTES:
                    raise FormatError(
                        f"bad packet header (type {etype}, size {esize}, capacity {ecap}, "
                        f"number {enum})", offset=pos, path=self.path)
                nbytes = esize * ecap
                if pos + 28 + nbytes > size:
                    raise FormatError(f"truncated packet: {nbytes} bytes announced",
                                      offset=pos, path=self.path)
                if etype == 1:
                    if esize != 8 or tsoff != 4:
                        raise FormatError(f"polarity packet with event size {esize}, "
                                          f"timestamp offset {tsoff}", offset=pos, path=self.path)
                    left = enum * 8
                    while left:
                        chunk = f.read(min(step, left))
                        left -= len(chunk)
                        words = np.frombuffer(chunk, "<u4")
                        out = np.empty(len(words) // 2, DVS_EVENT)
                        _, n, _ = K.aedat3_polarity_decode(words, 0, out, st, self.counts,
                                                           self.width, self.height, tsovf)
                        if n:
                            yield out[:n]
                    f.seek(nbytes - enum * 8, 1)
                else:
                    self.skipped_packets[etype] = self.skipped_packets.get(etype, 0) + 1
                    self.skipped_events[etype] = self.skipped_events.get(etype, 0) + enum
                    if etype in (0, 2, 3, 4):
                        self.counts[K.C_OTHER] += enum
                    f.seek(nbytes, 1)
                pos += 28 + nbytes


class AEDAT4Reader(DVSReader):
    """DV AEDAT 4.0 files: LZ4/ZSTD packets of flatbuffers; EVTS decoded, others counted.

    Frames are counted by packet without decompressing them; IMU and trigger packets are
    decompressed only to count their samples (`count_samples=False` skips that).
    """

    format = "aedat4"

    def __init__(self, path: str | os.PathLike[str], *, stream_id: int | None = None,
                 count_samples: bool = True, **kw: Any):
        self._stream_id = stream_id
        self.count_samples = count_samples
        super().__init__(path, **kw)
        self.packets: dict[int, int] = {}
        self.samples: dict[str, int] = {}

    def _read_header(self, f: Any) -> Header:
        line = f.read(14)
        if line != b"#!AER-DAT4.0\r\n":
            raise FormatError("missing #!AER-DAT4.0 version line", offset=0, path=self.path)
        nb = f.read(4)
        if len(nb) < 4:
            raise FormatError("truncated IOHeader size", offset=14, path=self.path)
        (n,) = struct.unpack("<I", nb)
        if n > MAX_PACKET_BYTES:
            raise FormatError(f"IOHeader of {n} bytes", offset=14, path=self.path)
        raw = f.read(n)
        if len(raw) < n:
            raise FormatError("truncated IOHeader", offset=18, path=self.path)
        t = fb.root(raw, b"IOHE", base=18)
        comp = t.scalar(0, "<i", 0)
        if comp not in AEDAT4_COMPRESSION:
            raise FormatError(f"unknown compression {comp}", offset=18, path=self.path)
        h = Header("aedat4", 18 + n)
        h.fields["compression"] = AEDAT4_COMPRESSION[comp]
        h.fields["data_table_position"] = t.scalar(1, "<q", -1)
        streams = _parse_info_xml(t.string(2) or "", 18)
        h.fields["streams"] = streams
        evts = [k for k, s in streams.items() if s.get("type") == "EVTS"]
        sid = self._stream_id if self._stream_id is not None else (evts[0] if evts else None)
        if sid is not None and sid in streams:
            s = streams[sid]
            h.width, h.height = int(s.get("sizeX", 0)), int(s.get("sizeY", 0))
            h.sensor = s.get("source", "unknown")
        h.fields["event_stream"] = sid
        return h

    def _decompress(self, payload: bytes, pos: int) -> bytes:
        comp = self.header.fields["compression"]
        try:
            if comp == "none":
                return payload
            if comp.startswith("lz4"):
                import lz4.frame

                d = lz4.frame.LZ4FrameDecompressor()
                out = d.decompress(payload, max_length=MAX_PACKET_BYTES)
                if not d.eof:
                    raise FormatError("incomplete or oversized LZ4 frame", offset=pos,
                                      path=self.path)
                return out
            import zstandard

            dctx = zstandard.ZstdDecompressor()
            csize = zstandard.frame_content_size(payload)
            if 0 <= csize <= MAX_PACKET_BYTES:
                return dctx.decompress(payload)
            if csize > MAX_PACKET_BYTES:
                raise FormatError(f"ZSTD frame of {csize} bytes", offset=pos, path=self.path)
            with dctx.stream_reader(io.BytesIO(payload)) as r:
                out = r.read(MAX_PACKET_BYTES + 1)
            if len(out) > MAX_PACKET_BYTES:
                raise FormatError("oversized ZSTD frame", offset=pos, path=self.path)
            return out
        except FormatError:
            raise
        except Exception as e:  # lz4 RuntimeError, zstandard.ZstdError
            raise FormatError(f"cannot decompress packet: {e}", offset=pos, path=self.path) from e

    def _flat(self, buf: bytes, ident: bytes, pos: int) -> fb.FlatTable:
        if len(buf) < 12:
            raise FormatError("packet too short for a flatbuffer", offset=pos, path=self.path)
        (n,) = struct.unpack_from("<I", buf, 0)
        if n + 4 > len(buf):
            raise FormatError("flatbuffer size prefix beyond the packet", offset=pos,
                              path=self.path)
        return fb.root(memoryview(buf)[4 : 4 + n], ident, base=pos)

    def iter_chunks(self, reuse: bool = False) -> Iterator[np.ndarray]:
        self.counts[:] = 0
        self.packets, self.samples = {}, {"frames": 0, "imu": 0, "triggers": 0}
        streams = self.header.fields["streams"]
        sid_ev = self.header.fields["event_stream"]
        dtp = self.header.fields["data_table_position"]
        size = os.path.getsize(self.path)
        end = dtp if 0 <= dtp <= size else size
        with open(self.path, "rb") as f:
            pos = self.header.data_offset
            f.seek(pos)
            while pos < end:
                hb = f.read(8)
                if len(hb) < 8:
                    raise FormatError("truncated packet header", offset=pos, path=self.path)
                sid, psize = struct.unpack("<ii", hb)
                if sid not in streams:
                    raise FormatError(f"packet of unknown stream {sid}", offset=pos,
                                      path=self.path)
                if psize < 0 or psize > MAX_PACKET_BYTES or pos + 8 + psize > end:
                    raise FormatError(f"bad packet size {psize}", offset=pos + 4, path=self.path)
                self.packets[sid] = self.packets.get(sid, 0) + 1
                typ = streams[sid].get("type")
                if sid == sid_ev:
                    payload = f.read(psize)
                    buf = self._decompress(payload, pos + 8)
                    t = self._flat(buf, b"EVTS", pos + 8)
                    p0, cnt = t.vector(0, 16)
                    src = np.frombuffer(buf, AEDAT4_EVENT, cnt, 4 + p0)
                    out = np.empty(cnt, DVS_EVENT)
                    n = K.aedat4_copy(src, out, self.counts, self.width, self.height)
                    if n:
                        yield out[:n]
                elif typ == "FRME":
                    self.samples["frames"] += 1
                    f.seek(psize, 1)
                elif typ in ("IMUS", "TRIG") and self.count_samples:
                    buf = self._decompress(f.read(psize), pos + 8)
                    t = self._flat(buf, typ.encode(), pos + 8)
                    esize = 48 if typ == "IMUS" else 16  # int64 t + 10 float32; int64 t + int8
                    _, cnt = t.vector(0, esize)
                    self.samples["imu" if typ == "IMUS" else "triggers"] += cnt
                else:
                    f.seek(psize, 1)
                pos += 8 + psize


def _parse_info_xml(text: str, offset: int) -> dict[int, dict[str, Any]]:
    """Stream id -> {type, name, compression, sizeX, sizeY, source} from the IOHeader XML."""
    streams: dict[int, dict[str, Any]] = {}
    if not text.strip():
        return streams
    try:
        root = ET.fromstring(text.rstrip("\0"))
    except ET.ParseError as e:
        raise FormatError(f"IOHeader infoNode is not XML: {e}", offset=offset) from e
    for node in root.iter("node"):
        name = node.get("name", "")
        numbered = name.isascii() and name.isdigit() and len(name) <= 9
        if not numbered or node.find("attr[@key='typeIdentifier']") is None:
            continue
        s: dict[str, Any] = {}
        for a in node.iter("attr"):
            key, val = a.get("key"), (a.text or "")
            if key == "typeIdentifier":
                s["type"] = val
            elif key == "originalOutputName":
                s["name"] = val
            elif key in ("sizeX", "sizeY"):
                v = val.strip()
                if v.isascii() and v.lstrip("-").isdigit():
                    if len(v) > 7 or not 0 <= int(v) <= MAX_SENSOR_SIDE:
                        raise FormatError(f"stream {name} {key} {v[:24]} is outside "
                                          f"0..{MAX_SENSOR_SIDE}", offset=offset)
                    s[key] = int(v)
                else:
                    s[key] = 0  # unknown: events are then counted out of range
            elif key in ("compression", "source", "tsOffset"):
                s[key] = val
        streams[int(name)] = s
    return streams


READERS: dict[str, type[DVSReader]] = {
    "aedat2": AEDAT2Reader, "aedat3": AEDAT3Reader, "aedat4": AEDAT4Reader,
    "evt2": EVT2Reader, "evt3": EVT3Reader, "dat": DATReader, "nmnist": NMNISTReader,
}


def detect_file(path: str | os.PathLike[str]) -> str | None:
    """Format name of the file at `path` from its content, or None."""
    regular_file(path)
    with open(path, "rb") as f:
        return detect(f.read(4096), os.fstat(f.fileno()).st_size)


def open_reader(path: str | os.PathLike[str], fmt: str | None = None, **options: Any) -> DVSReader:
    """A reader for `path` (format detected from content unless `fmt` is given)."""
    fmt = fmt or detect_file(path)
    if fmt is None:
        raise FormatError("not a supported DVS recording", offset=0, path=os.fspath(path))
    if fmt not in READERS:
        raise ValueError(f"unknown DVS format {fmt!r}; known: {', '.join(READERS)}")
    return READERS[fmt](path, **options)


def read_events(path: str | os.PathLike[str], fmt: str | None = None, **options: Any) -> np.ndarray:
    """All events of a recording as one DVS_EVENT array (for small files and tests)."""
    return open_reader(path, fmt, **options).read_all()
