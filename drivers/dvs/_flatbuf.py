"""The few FlatBuffer shapes of AEDAT 4.0, read and written by hand (no flatbuffers dependency).

Reading follows the FlatBuffers wire rules: a root uoffset, a table's soffset to its vtable,
vtable slots of uint16 field offsets. Every offset is bounds-checked so a corrupt buffer gives
a FormatError naming the byte, never an IndexError or a runaway read.
"""

from __future__ import annotations

import struct

from edgesnn.errors import FormatError


class FlatTable:
    """A table inside `buf` at `pos`; `base` is the file offset of buf[0] (for error messages)."""

    __slots__ = ("buf", "pos", "base", "_vt", "_vtlen")

    def __init__(self, buf: bytes | memoryview, pos: int, base: int = 0):
        self.buf = buf
        self.pos = pos
        self.base = base
        _need(buf, pos, 4, base, "table")
        vt = pos - struct.unpack_from("<i", buf, pos)[0]
        _need(buf, vt, 4, base, "vtable")
        vtlen = struct.unpack_from("<H", buf, vt)[0]
        if vtlen < 4 or vtlen % 2:
            raise FormatError(f"bad vtable length {vtlen}", offset=base + vt)
        _need(buf, vt, vtlen, base, "vtable")
        self._vt = vt
        self._vtlen = vtlen

    def _field(self, i: int) -> int:
        slot = 4 + 2 * i
        if slot + 2 > self._vtlen:
            return 0
        return struct.unpack_from("<H", self.buf, self._vt + slot)[0]

    def scalar(self, i: int, fmt: str, default: int) -> int:
        off = self._field(i)
        if not off:
            return default
        _need(self.buf, self.pos + off, struct.calcsize(fmt), self.base, "field")
        return struct.unpack_from(fmt, self.buf, self.pos + off)[0]

    def _indirect(self, i: int) -> int | None:
        off = self._field(i)
        if not off:
            return None
        p = self.pos + off
        _need(self.buf, p, 4, self.base, "offset")
        return p + struct.unpack_from("<I", self.buf, p)[0]

    def string(self, i: int) -> str | None:
        p = self._indirect(i)
        if p is None:
            return None
        _need(self.buf, p, 4, self.base, "string")
        n = struct.unpack_from("<I", self.buf, p)[0]
        _need(self.buf, p + 4, n, self.base, "string")
        return bytes(self.buf[p + 4 : p + 4 + n]).decode("utf-8", "replace")

    def vector(self, i: int, elem_size: int) -> tuple[int, int]:
        """(byte position of the first element, count) of vector field i; (0, 0) when absent."""
        p = self._indirect(i)
        if p is None:
            return 0, 0
        _need(self.buf, p, 4, self.base, "vector")
        n = struct.unpack_from("<I", self.buf, p)[0]
        _need(self.buf, p + 4, n * elem_size, self.base, "vector")
        return p + 4, n


def _need(buf: bytes | memoryview, pos: int, n: int, base: int, what: str) -> None:
    if pos < 0 or n < 0 or pos + n > len(buf):
        raise FormatError(f"flatbuffer {what} out of bounds", offset=base + max(pos, 0))


def root(buf: bytes | memoryview, ident: bytes | None, base: int = 0) -> FlatTable:
    """Root table of a (not size-prefixed) flatbuffer, checking its 4-byte identifier."""
    _need(buf, 0, 8, base, "header")
    if ident is not None and bytes(buf[4:8]) != ident:
        raise FormatError(
            f"flatbuffer identifier {bytes(buf[4:8])!r}, expected {ident!r}", offset=base + 4
        )
    return FlatTable(buf, struct.unpack_from("<I", buf, 0)[0], base)


def io_header(compression: int, data_table_position: int, info_xml: str) -> bytes:
    """The IOHeader flatbuffer (identifier IOHE) as DV lays it out."""
    s = info_xml.encode()
    # root(4) ident(4) pad(6) vtable(10) table(24): compression@+4 info@+8 position@+12
    out = bytearray()
    out += struct.pack("<I", 24) + b"IOHE" + bytes(6)
    out += struct.pack("<5H", 10, 24, 4, 12, 8)
    table = len(out)
    assert table == 24
    out += struct.pack("<iiIqi", 10, compression, 48 - (table + 8), data_table_position, 0)
    out += struct.pack("<I", len(s)) + s + b"\0"
    out += bytes(-len(out) % 4)
    return bytes(out)


def event_packet(elements: bytes, count: int) -> bytes:
    """A size-prefixed EventPacket flatbuffer (identifier EVTS) holding `count` 16-byte structs."""
    body = bytearray()
    body += struct.pack("<I", 16) + b"EVTS" + bytes(2)  # root -> table at 16 (after prefix: 20)
    body += struct.pack("<3H", 6, 8, 4)
    body += struct.pack("<iI", 6, 4)  # table: soffset to vtable, field 0 -> vector 4 bytes on
    body += struct.pack("<I", count)
    body += elements
    return struct.pack("<I", len(body)) + bytes(body)
