"""pcap and pcapng readers: magic-number detection, chunked record walking, packet decoding.

Classic pcap in both byte orders with µs or ns timestamps, and pcapng (SHB/IDB/EPB/SPB and the
obsolete PB, any number of sections and interfaces, `if_tsresol` and `if_tsoffset`). Records
are walked by numba kernels over bounded chunks of the file, so memory stays bounded and a
corrupt record is reported with its byte offset (`FormatError`). `probe_file`/`info_file`
describe captures for `edgesnn info`; a capture of LiDAR packets is left to the LiDAR drivers.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from edgesnn_drivers.network.decode import (
    LINKTYPES,
    _le32,
    decode,
    protocol_counts,
    syn_counts,
)
from numba import njit

from edgesnn.errors import FormatError
from edgesnn.replay import regular_file

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", False),
    b"\xa1\xb2\xc3\xd4": (">", False),
    b"\x4d\x3c\xb2\xa1": ("<", True),
    b"\xa1\xb2\x3c\x4d": (">", True),
}
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
#: Largest record accepted when the snaplen is smaller (libpcap's own limit).
MAX_RECORD = 262_144
#: Largest record or block accepted at all (bounds memory whatever a header claims).
MAX_BLOCK = 64 << 20
CHUNK_BYTES = 1 << 22
#: Largest |if_tsoffset| accepted (about 31 700 years: µs times stay within int64).
MAX_TSOFFSET_S = 10**12
MAX_PACKETS_PER_CHUNK = 65_536


def sniff(head: bytes) -> str | None:
    """"pcap", "pcapng" or None from the first bytes of a file."""
    if head[:4] in PCAP_MAGICS and len(head) >= 24:
        return "pcap"
    if head[:4] == PCAPNG_SHB and len(head) >= 12 and head[8:12] in (
        b"\x4d\x3c\x2b\x1a",
        b"\x1a\x2b\x3c\x4d",
    ):
        return "pcapng"
    return None


@dataclass
class RawChunk:
    """Packets of one chunk: frame i is `buf[off[i]:off[i] + caplen[i]]`."""

    buf: np.ndarray
    off: np.ndarray
    caplen: np.ndarray
    origlen: np.ndarray
    ts_us: np.ndarray
    linktype: np.ndarray
    file_offset: int  # file offset of buf[0]

    def __len__(self) -> int:
        return int(self.off.shape[0])


# --- classic pcap -------------------------------------------------------------------------


@njit(cache=True, nogil=True, inline="always")
def _u32(buf: np.ndarray, p: int, big: bool) -> int:
    if big:
        return (
            (np.int64(buf[p]) << 24)
            | (np.int64(buf[p + 1]) << 16)
            | (np.int64(buf[p + 2]) << 8)
            | np.int64(buf[p + 3])
        )
    return _le32(buf, p)


@njit(cache=True, nogil=True)
def walk_pcap(
    buf: np.ndarray,
    pos: int,
    limit: int,
    big: bool,
    nanos: bool,
    max_len: int,
    off: np.ndarray,
    caplen: np.ndarray,
    origlen: np.ndarray,
    ts_us: np.ndarray,
) -> tuple[int, int, int]:
    """Walk classic pcap records in buf[pos:limit]: (records, next pos, 1 if corrupt else 0)."""
    n = 0
    cap = off.shape[0]
    while n < cap:
        if pos + 16 > limit:
            return n, pos, 0
        sec = _u32(buf, pos, big)
        frac = _u32(buf, pos + 4, big)
        incl = _u32(buf, pos + 8, big)
        orig = _u32(buf, pos + 12, big)
        if incl > max_len:
            return n, pos, 1
        if pos + 16 + incl > limit:
            return n, pos, 0
        off[n] = pos + 16
        caplen[n] = incl
        origlen[n] = orig
        ts_us[n] = sec * 1_000_000 + (frac // 1000 if nanos else frac)
        pos += 16 + incl
        n += 1
    return n, pos, 0


# --- pcapng -------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def walk_pcapng(
    buf: np.ndarray,
    pos: int,
    limit: int,
    big: bool,
    snap0: int,
    off: np.ndarray,
    caplen: np.ndarray,
    origlen: np.ndarray,
    ts_raw: np.ndarray,
    iface: np.ndarray,
) -> tuple[int, int, int]:
    """Walk packet blocks (EPB, SPB, PB) in buf[pos:limit] until another block type.

    Returns (packets, next pos, status): status 0 = need more data or output space,
    1 = corrupt block at pos, 2 = a non-packet block starts at pos (for the caller).
    SPB timestamps are set to -1 (the caller carries the previous one forward).
    """
    n = 0
    cap = off.shape[0]
    while n < cap:
        if pos + 12 > limit:
            return n, pos, 0
        btype = _u32(buf, pos, big)
        if btype != 6 and btype != 3 and btype != 2:
            return n, pos, 2
        blen = _u32(buf, pos + 4, big)
        if blen < 12 or blen % 4 != 0:
            return n, pos, 1
        if pos + blen > limit:
            return n, pos, 0
        if _u32(buf, pos + blen - 4, big) != blen:
            return n, pos, 1
        if btype == 6 or btype == 2:
            if blen < 32:
                return n, pos, 1
            if btype == 6:
                ifc = _u32(buf, pos + 8, big)
            else:
                ifc = _u32(buf, pos + 8, big) & 0xFFFF  # PB: uint16 interface, uint16 drops
            hi = _u32(buf, pos + 12, big)
            lo = _u32(buf, pos + 16, big)
            cl = _u32(buf, pos + 20, big)
            ol = _u32(buf, pos + 24, big)
            if 28 + cl + 4 > blen:
                return n, pos, 1
            off[n] = pos + 28
            caplen[n] = cl
            origlen[n] = ol
            ts_raw[n] = (hi << 32) | lo
            iface[n] = ifc
        else:
            if blen < 16:
                return n, pos, 1
            ol = _u32(buf, pos + 8, big)
            cl = min(ol, blen - 16)
            if snap0 > 0 and cl > snap0:
                cl = snap0
            off[n] = pos + 12
            caplen[n] = cl
            origlen[n] = ol
            ts_raw[n] = -1
            iface[n] = 0
        pos += blen
        n += 1
    return n, pos, 0


@dataclass
class Interface:
    """One pcapng interface (IDB): link type, snaplen, timestamp units."""

    linktype: int
    snaplen: int
    tsresol: int = 6  # exponent
    base2: bool = False
    tsoffset_s: int = 0
    name: str = ""

    def to_us(self, raw: np.ndarray) -> np.ndarray:
        """Raw timestamps (uint64 count of units) to int64 µs since the epoch."""
        raw = raw.astype(np.uint64)
        e = self.tsresol
        if self.base2:
            whole = (raw >> np.uint64(e)).astype(np.int64) * 1_000_000
            frac = raw & np.uint64((1 << e) - 1)
            if e <= 44:
                part = ((frac * np.uint64(1_000_000)) >> np.uint64(e)).astype(np.int64)
            else:
                part = (frac.astype(np.float64) * (1_000_000 / 2.0**e)).astype(np.int64)
            t = whole + part
        elif e == 6:
            t = raw.astype(np.int64)
        elif e < 6:
            t = raw.astype(np.int64) * 10 ** (6 - e)
        else:
            t = (raw // np.uint64(10 ** (e - 6))).astype(np.int64)
        return t + self.tsoffset_s * 1_000_000


def _options(body: bytes, endian: str) -> Iterator[tuple[int, bytes]]:
    p = 0
    while p + 4 <= len(body):
        code, ln = struct.unpack_from(endian + "HH", body, p)
        if code == 0:
            return
        val = body[p + 4 : p + 4 + ln]
        yield code, val
        p += 4 + ((ln + 3) & ~3)


# --- reader -------------------------------------------------------------------------------


@dataclass
class Capture:
    """An open capture file; `chunks()` walks its packets. Use as a context manager."""

    path: str
    container: str = ""
    endian: str = "<"
    nanos: bool = False
    linktype: int = 1
    snaplen: int = 0
    interfaces: list[Interface] = field(default_factory=list)
    sections: int = 0
    _f: BinaryIO | None = None

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    @property
    def linktype_name(self) -> str:
        return LINKTYPES.get(self.linktype, f"LINKTYPE_{self.linktype}")

    def chunks(self, max_packets: int = MAX_PACKETS_PER_CHUNK) -> Iterator[RawChunk]:
        """RawChunks in file order; FormatError (with offset) at the first corrupt record."""
        if self.container == "pcap":
            yield from self._pcap_chunks(max_packets)
        else:
            yield from self._pcapng_chunks(max_packets)

    # buffered reading: `_buf[_pos:_lim]` is unread data starting at file offset `_base + _pos`
    def _refill(self, need: int) -> bool:
        """Make at least `need` unread bytes available; False when the file ends first."""
        assert self._f is not None
        have = self._lim - self._pos
        if have >= need:
            return True
        size = max(CHUNK_BYTES, need)
        nb = np.empty(size, np.uint8)
        nb[:have] = self._buf[self._pos : self._lim]
        total = have
        view = memoryview(nb)  # type: ignore[arg-type]
        while total < size:
            got = self._f.readinto(view[total:])
            if not got:
                break
            total += got
        self._base += self._pos
        self._buf, self._pos, self._lim = nb, 0, total
        return total >= need

    def _remaining(self) -> int:
        """Unread bytes from the current position to the end of the file."""
        import os

        assert self._f is not None
        return os.fstat(self._f.fileno()).st_size - (self._base + self._pos)

    def _start_buffer(self, pos: int) -> None:
        assert self._f is not None
        self._f.seek(pos)
        self._buf = np.zeros(0, np.uint8)
        self._base, self._pos, self._lim = pos, 0, 0

    def _pcap_chunks(self, max_packets: int) -> Iterator[RawChunk]:
        self._start_buffer(24)
        big = self.endian == ">"
        max_len = min(max(self.snaplen, MAX_RECORD), MAX_BLOCK)
        while True:
            more = self._refill(16)
            if self._lim - self._pos == 0:
                return
            if not more:
                raise FormatError(
                    f"truncated record header ({self._lim - self._pos} of 16 bytes)",
                    offset=self._base + self._pos, path=self.path,
                )
            cap = max(1, min(max_packets, (self._lim - self._pos) // 16 + 1))
            off = np.empty(cap, np.int64)
            cl = np.empty(cap, np.uint32)
            ol = np.empty(cap, np.uint32)
            ts = np.empty(cap, np.int64)
            n, pos, bad = walk_pcap(self._buf, self._pos, self._lim, big, self.nanos, max_len,
                                    off, cl, ol, ts)
            if n:
                yield RawChunk(self._buf, off[:n], cl[:n], ol[:n], ts[:n],
                               np.full(n, self.linktype, np.int32), self._base)
            self._pos = pos
            if bad:
                hdr = bytes(self._buf[pos : pos + 16])
                incl = struct.unpack(self.endian + "I", hdr[8:12])[0]
                raise FormatError(
                    f"corrupt record: captured length {incl} exceeds {max_len}",
                    offset=self._base + pos, path=self.path,
                )
            if n == 0:
                incl = struct.unpack(self.endian + "I",
                                     bytes(self._buf[pos + 8 : pos + 12]))[0]
                if self._remaining() < 16 + incl or not self._refill(16 + incl):
                    raise FormatError(
                        f"truncated record: header says {incl} bytes, "
                        f"{self._lim - self._pos - 16} remain",
                        offset=self._base + self._pos, path=self.path,
                    )

    def _pcapng_chunks(self, max_packets: int) -> Iterator[RawChunk]:
        self._start_buffer(0)
        big = False
        max_block = MAX_BLOCK
        while True:
            if not self._refill(12):
                if self._lim - self._pos == 0:
                    return
                raise FormatError("truncated block header", offset=self._base + self._pos,
                                  path=self.path)
            if bytes(self._buf[self._pos : self._pos + 4]) == PCAPNG_SHB:
                self._read_shb()
                big = self.endian == ">"
                continue
            cap = max(1, min(max_packets, (self._lim - self._pos) // 32 + 1))
            off = np.empty(cap, np.int64)
            cl = np.empty(cap, np.uint32)
            ol = np.empty(cap, np.uint32)
            raw = np.empty(cap, np.int64)
            ifc = np.empty(cap, np.int64)
            snap0 = self.interfaces[0].snaplen if self.interfaces else 0
            n, pos, status = walk_pcapng(self._buf, self._pos, self._lim, big, snap0,
                                         off, cl, ol, raw, ifc)
            if n:
                yield self._ng_chunk(off[:n], cl[:n], ol[:n], raw[:n], ifc[:n], self._pos)
            self._pos = pos
            if status == 1:
                raise FormatError("corrupt pcapng block (bad length or trailer)",
                                  offset=self._base + pos, path=self.path)
            if status == 2:
                self._refill(12)
                if bytes(self._buf[self._pos : self._pos + 4]) != PCAPNG_SHB:
                    self._read_block()  # a new section is read at the top of the loop
            elif n == 0:
                blen = struct.unpack(self.endian + "I",
                                     bytes(self._buf[pos + 4 : pos + 8]))[0]
                if blen > max_block:
                    raise FormatError(f"block length {blen} too large",
                                      offset=self._base + pos, path=self.path)
                if self._remaining() < blen or not self._refill(blen):
                    raise FormatError(
                        f"truncated block: length {blen}, {self._remaining()} bytes remain",
                        offset=self._base + self._pos, path=self.path,
                    )

    _last_ts = 0

    def _ng_chunk(self, off: np.ndarray, cl: np.ndarray, ol: np.ndarray, raw: np.ndarray,
                  ifc: np.ndarray, pos0: int) -> RawChunk:
        n = len(off)
        ts = np.empty(n, np.int64)
        lt = np.empty(n, np.int32)
        bad = ifc >= len(self.interfaces)
        if bad.any():
            i = int(np.argmax(bad))
            raise FormatError(f"packet refers to interface {int(ifc[i])}, "
                              f"only {len(self.interfaces)} defined",
                              offset=self._base + int(off[i]) - 28, path=self.path)
        for k, itf in enumerate(self.interfaces):
            m = ifc == k
            if m.any():
                ts[m] = itf.to_us(raw[m])
                lt[m] = itf.linktype
        spb = raw < 0
        if spb.any():  # simple packet blocks carry no time: keep the previous packet's
            prev = self._last_ts
            for i in range(n):
                if spb[i]:
                    ts[i] = prev
                prev = ts[i]
        self._last_ts = int(ts[-1])
        return RawChunk(self._buf, off, cl, ol, ts, lt, self._base)

    def _block_bytes(self) -> tuple[int, bytes]:
        e = self.endian
        blen = struct.unpack(e + "I", bytes(self._buf[self._pos + 4 : self._pos + 8]))[0]
        at = self._base + self._pos
        if blen < 12 or blen % 4 or blen > MAX_BLOCK:
            raise FormatError(f"corrupt block length {blen}", offset=at, path=self.path)
        if self._remaining() < blen or not self._refill(blen):
            raise FormatError(f"truncated block: length {blen}", offset=at, path=self.path)
        blk = bytes(self._buf[self._pos : self._pos + blen])
        if struct.unpack(e + "I", blk[-4:])[0] != blen:
            raise FormatError("block trailer length does not match", offset=at, path=self.path)
        self._pos += blen
        return at, blk

    def _read_shb(self) -> None:
        at = self._base + self._pos
        if not self._refill(28):
            raise FormatError("truncated section header block", offset=at, path=self.path)
        bom = bytes(self._buf[self._pos + 8 : self._pos + 12])
        if bom == b"\x4d\x3c\x2b\x1a":
            self.endian = "<"
        elif bom == b"\x1a\x2b\x3c\x4d":
            self.endian = ">"
        else:
            raise FormatError("bad byte-order magic in section header", offset=at + 8,
                              path=self.path)
        _, blk = self._block_bytes()
        major = struct.unpack(self.endian + "H", blk[12:14])[0]
        if major != 1:
            raise FormatError(f"unsupported pcapng version {major}", offset=at + 12,
                              path=self.path)
        self.interfaces = []
        self.sections += 1

    def _read_block(self) -> None:
        at, blk = self._block_bytes()
        e = self.endian
        btype = struct.unpack(e + "I", blk[:4])[0]
        if btype == 1:  # IDB
            if len(blk) < 20:
                raise FormatError("interface block too short", offset=at, path=self.path)
            lt, _, snap = struct.unpack(e + "HHI", blk[8:16])
            itf = Interface(lt, snap)
            for code, val in _options(blk[16:-4], e):
                if code == 9 and len(val) >= 1:
                    itf.tsresol, itf.base2 = val[0] & 0x7F, bool(val[0] & 0x80)
                elif code == 14 and len(val) >= 8:
                    itf.tsoffset_s = struct.unpack(e + "q", val[:8])[0]
                    if abs(itf.tsoffset_s) > MAX_TSOFFSET_S:
                        raise FormatError(f"if_tsoffset {itf.tsoffset_s} s is beyond "
                                          f"±{MAX_TSOFFSET_S} s", offset=at, path=self.path)
                elif code == 2:
                    itf.name = val.decode("utf-8", "replace")
            if itf.tsresol > 18 and not itf.base2:
                raise FormatError(f"if_tsresol 10^-{itf.tsresol} out of range",
                                  offset=at, path=self.path)
            if itf.base2 and itf.tsresol > 63:
                raise FormatError(f"if_tsresol 2^-{itf.tsresol} out of range",
                                  offset=at, path=self.path)
            self.interfaces.append(itf)
            if len(self.interfaces) == 1:
                self.linktype, self.snaplen = lt, snap
        # NRB, ISB, DSB, custom and unknown blocks carry no packets: skipped


def open_capture(path: str | Path) -> Capture:
    """Open a pcap or pcapng file, recognised by its magic number; FormatError otherwise."""
    path = str(path)
    regular_file(path)
    f = open(path, "rb")  # noqa: SIM115 (owned by the returned Capture)
    try:
        head = f.read(24)
        kind = sniff(head)
        if kind is None:
            if head[:4] == PCAPNG_SHB and len(head) < 12:
                raise FormatError(f"truncated pcapng section header ({len(head)} bytes)",
                                  offset=len(head), path=path)
            if head[:4] == PCAPNG_SHB:
                raise FormatError("pcapng section header with a bad byte-order magic",
                                  offset=8, path=path)
            if len(head) < 24 and head[:4] in PCAP_MAGICS:
                raise FormatError(f"truncated pcap header ({len(head)} of 24 bytes)",
                                  offset=len(head), path=path)
            raise FormatError(f"not a pcap or pcapng file (magic {head[:4].hex()})",
                              offset=0, path=path)
        cap = Capture(path, kind, _f=f)
        if kind == "pcap":
            endian, nanos = PCAP_MAGICS[head[:4]]
            major, minor, _, _, snap, lt = struct.unpack(endian + "HHiIII", head[4:24])
            if major != 2:
                raise FormatError(f"unsupported pcap version {major}.{minor}", offset=4,
                                  path=path)
            cap.endian, cap.nanos, cap.snaplen = endian, nanos, snap
            cap.linktype = lt & 0x0FFFFFFF  # top bits may hold the FCS length
        return cap
    except BaseException:
        f.close()
        raise


@dataclass
class PacketChunk:
    """Decoded packets of one chunk, with transport payload positions into `raw.buf`."""

    packets: np.ndarray
    pay_off: np.ndarray
    pay_len: np.ndarray
    truncated: int
    raw: RawChunk


def iter_packets(path: str | Path, max_packets: int = MAX_PACKETS_PER_CHUNK
                 ) -> Iterator[PacketChunk]:
    """Decoded PACKET chunks of a pcap/pcapng file, in file order."""
    with open_capture(path) as cap:
        for ch in cap.chunks(max_packets):
            pk, po, pl, bad = decode(ch.buf, ch.off, ch.caplen, ch.origlen, ch.ts_us,
                                     ch.linktype)
            yield PacketChunk(pk, po, pl, bad, ch)


def read_packets(path: str | Path) -> np.ndarray:
    """All packets of a capture as one PACKET array (for small files and tests)."""
    parts = [c.packets for c in iter_packets(path)]
    from edgesnn.events import PACKET

    return np.concatenate(parts) if parts else np.zeros(0, PACKET)


def count_packets(path: str | Path) -> int:
    """Decode every packet of a capture once; returns how many (the io benchmark's pass)."""
    return sum(len(c.packets) for c in iter_packets(path))


def write_pcap(path: str | Path, frames: list[tuple[int, bytes]] | list[tuple[int, bytes, int]],
               linktype: int = 1, big_endian: bool = False, nanos: bool = False,
               snaplen: int = 65535) -> None:
    """Write (t_us, frame[, orig_len]) records as classic pcap (µs or ns, either byte order)."""
    e = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    with open(path, "wb") as f:
        f.write(struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        for rec in frames:
            t, data = int(rec[0]), rec[1]
            orig = int(rec[2]) if len(rec) > 2 else len(data)  # type: ignore[misc]
            sec, us = divmod(t, 1_000_000)
            frac = us * 1000 if nanos else us
            f.write(struct.pack(e + "IIII", sec, frac, len(data), orig))
            f.write(data)


# --- classification of captures (network traffic or a LiDAR recording) --------------------

VELODYNE_PORTS = (2368, 8308)
OUSTER_PORTS = (7502, 7503)
#: legacy lidar packet sizes: 16 columns x (20 + 12 x beams) for 16/32/64/128 beams
OUSTER_LEGACY_SIZES = tuple(16 * (20 + 12 * b) for b in (16, 32, 64, 128))


def classify_capture(path: str | Path, max_packets: int = 256) -> str | None:
    """"velodyne", "ouster" or None (plain traffic) from the first packets of a capture.

    A capture is a LiDAR recording when at least 90 % of its first packets are UDP datagrams
    that look like sensor packets: Velodyne data (1206 bytes, 0xFFEE block flags) or position
    packets (512 bytes, port 8308), or Ouster lidar/IMU packets (ports 7502/7503 or the
    legacy lidar packet sizes). Both the network and the LiDAR probers use this one decision.
    """
    try:
        with open_capture(path) as cap:
            it = cap.chunks(max_packets)
            ch = next(it, None)
            if ch is None:
                return None
            pk, po, pl, _ = decode(ch.buf, ch.off, ch.caplen, ch.origlen, ch.ts_us, ch.linktype)
            velo = ouster = 0
            for i in range(len(pk)):
                if pk["proto"][i] != 17 or po[i] < 0:
                    continue
                n, o = int(pl[i]), int(po[i])
                dport = int(pk["dport"][i])
                is_data = n == 1206 and ch.buf[o] == 0xFF and ch.buf[o + 1] == 0xEE
                if is_data or (n == 512 and dport == 8308):
                    velo += 1
                elif dport in OUSTER_PORTS or n in OUSTER_LEGACY_SIZES:
                    ouster += 1
            total = len(pk)
    except FormatError:
        return None
    if total and velo >= 0.9 * total:
        return "velodyne"
    if total and ouster >= 0.9 * total:
        return "ouster"
    return None


# --- edgesnn info ------------------------------------------------------------------------


def probe_file(path: str, head: bytes) -> str | None:
    """"pcap" or "pcapng" for a network capture (LiDAR captures are described elsewhere)."""
    kind = sniff(head)
    if kind is None:
        return None
    return None if classify_capture(path) else kind


def info_file(path: str, fmt: str) -> dict[str, Any]:
    """Link type, packets, first/last timestamps, protocol and SYN/SYN-ACK counts."""
    protos: dict[str, int] = {}
    syn = synack = n = truncated = 0
    first = last = None
    with open_capture(path) as cap:
        for ch in cap.chunks():
            pk, _, _, bad = decode(ch.buf, ch.off, ch.caplen, ch.origlen, ch.ts_us,
                                   ch.linktype)
            n += len(pk)
            truncated += bad
            for k, v in protocol_counts(pk).items():
                protos[k] = protos.get(k, 0) + v
            s, sa = syn_counts(pk)
            syn += s
            synack += sa
            if len(pk):
                first = int(pk["t"][0]) if first is None else first
                last = int(pk["t"][-1])
        out: dict[str, Any] = {
            "format": fmt,
            "container": cap.container,
            "byte_order": "big" if cap.endian == ">" else "little",
            "linktype": cap.linktype,
            "linktype_name": cap.linktype_name,
            "snaplen": cap.snaplen,
        }
        if cap.container == "pcap":
            out["timestamp_resolution"] = "ns" if cap.nanos else "us"
        else:
            out["sections"] = cap.sections
            out["interfaces"] = len(cap.interfaces)
            out["timestamp_resolution"] = [
                f"{2 if i.base2 else 10}^-{i.tsresol}" for i in cap.interfaces]
    out.update(
        packets=n,
        first_t_us=first,
        last_t_us=last,
        duration_s=(last - first) / 1e6 if n else 0.0,
        protocols=protos,
        syn=syn,
        synack=synack,
        truncated_frames=truncated,
    )
    return out


# --- edgesnn bench io --------------------------------------------------------------------


def bench_io_cases(data_dir: Path) -> list[dict[str, Any]]:
    """pcap and pcapng decoding to PACKET records over the real captures in data_dir."""
    cases = []
    for name, fmt in (("attack_synscan.pcap", "pcap"), ("attack_synscan.pcapng", "pcapng")):
        p = Path(data_dir) / "network" / "pcap" / name
        if p.exists():
            cases.append({
                "format": fmt,
                "file": str(p),
                "unit": "packets",
                "run": (lambda q=str(p): count_packets(q)),
                "realtime_items_per_s": None,
                # issue target: >= 5 M packets/s decoded to PACKET on one core
                "target": {"items_per_s": 5e6} if fmt == "pcap" else None,
            })
    return cases
