"""A small reader for MATLAB level-5 MAT-files (the subset used for sensor recordings).

Layout: a 128-byte header (116 bytes of text, an 8-byte subsystem offset, a uint16 version
0x0100 and the endian indicator "IM" for little-endian or "MI" for big-endian), then tagged
data elements. A tag is {uint32 type, uint32 nbytes} followed by the data padded to 8 bytes,
or, when the upper 16 bits of the first word are non-zero, a "small element" packing
{uint16 nbytes, uint16 type} and up to 4 data bytes into 8 bytes. A variable is a miMATRIX
element (type 14) holding: array flags (class in the low byte; complex 0x800, logical 0x200),
dimensions (miINT32), the name (miINT8), the real part and optionally the imaginary part, in
column-major order. The stored numeric type may be narrower than the class (MATLAB saves
whole-valued doubles as miUINT8 etc.); values are converted to the class's type. A
miCOMPRESSED element (type 15) is a zlib stream holding one complete element.

Supported: numeric classes (double, single, int8..uint64, complex, logical) and char arrays.
Cell, struct, object, sparse and function classes are listed (with their class) but not read.
MAT v7.3 files (HDF5) and v4 files raise `FormatError`. Uncompressed variables are read by
seeking, in bounded chunks, so a long recording is streamed rather than loaded.
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from edgesnn.errors import FormatError
from edgesnn.replay import regular_file

MI_INT8, MI_UINT8, MI_INT16, MI_UINT16, MI_INT32, MI_UINT32 = 1, 2, 3, 4, 5, 6
MI_SINGLE, MI_DOUBLE, MI_INT64, MI_UINT64 = 7, 9, 12, 13
MI_MATRIX, MI_COMPRESSED, MI_UTF8, MI_UTF16, MI_UTF32 = 14, 15, 16, 17, 18

MI_DTYPES = {
    MI_INT8: "i1", MI_UINT8: "u1", MI_INT16: "i2", MI_UINT16: "u2", MI_INT32: "i4",
    MI_UINT32: "u4", MI_SINGLE: "f4", MI_DOUBLE: "f8", MI_INT64: "i8", MI_UINT64: "u8",
    MI_UTF8: "u1", MI_UTF16: "u2", MI_UTF32: "u4",
}
CLASS_NAMES = {
    1: "cell", 2: "struct", 3: "object", 4: "char", 5: "sparse", 6: "double", 7: "single",
    8: "int8", 9: "uint8", 10: "int16", 11: "uint16", 12: "int32", 13: "uint32", 14: "int64",
    15: "uint64", 16: "function", 17: "opaque",
}
CLASS_DTYPES = {
    6: "f8", 7: "f4", 8: "i1", 9: "u1", 10: "i2", 11: "u2", 12: "i4", 13: "u4", 14: "i8", 15: "u8",
}
class _Bad(Exception):
    """A format problem found by the helpers; MatFile turns it into a FormatError."""

    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.message, self.offset = message, offset


#: decompressed bytes read to list a compressed variable's flags, dims and name
_PEEK = 512
_MAX_ELEMENTS = 100_000


@dataclass
class MatVariable:
    """One top-level variable: where it is and what it holds (no data loaded)."""

    name: str
    mclass: str
    dims: tuple[int, ...]
    complex: bool
    logical: bool
    element_offset: int  # file offset of the top-level element tag
    element_bytes: int  # bytes of the element (compressed size for miCOMPRESSED)
    compressed: bool
    real_offset: int = -1  # file offset of the real part's data (uncompressed only)
    real_type: int = 0  # miXXX type of the stored real part (uncompressed only)

    @property
    def size(self) -> int:
        n = 1
        for d in self.dims:
            n *= d
        return n

    @property
    def numeric(self) -> bool:
        return self.mclass in {CLASS_NAMES[c] for c in CLASS_DTYPES}


def _tag(buf: bytes | memoryview, pos: int, e: str, base: int = 0) -> tuple[int, int, int]:
    """(type, nbytes, data start) of the tag at buf[pos]; small elements put data at pos + 4."""
    if pos + 4 > len(buf):
        raise _Bad("data element tag cut short", base + pos)
    (w0,) = struct.unpack_from(e + "I", buf, pos)
    if w0 >> 16:
        return w0 & 0xFFFF, w0 >> 16, pos + 4
    if pos + 8 > len(buf):
        raise _Bad("data element tag cut short", base + pos)
    (n,) = struct.unpack_from(e + "I", buf, pos + 4)
    return w0, n, pos + 8


def _next(pos: int, typ_small: bool, n: int) -> int:
    return pos + 8 if typ_small else pos + 8 + ((n + 7) & ~7)


def _parse_matrix_head(buf: bytes | memoryview, e: str, base: int
                       ) -> tuple[dict[str, Any], int]:
    """Flags, dims and name of a miMATRIX body in buf; returns them and the offset after."""
    typ, n, d = _tag(buf, 0, e, base)
    if typ != MI_UINT32 or n != 8 or d + 8 > len(buf):
        raise _Bad("miMATRIX without an 8-byte array-flags element", base)
    flags, _nz = struct.unpack_from(e + "II", buf, d)
    pos = _next(0, d == 4, n)
    typ, n, d = _tag(buf, pos, e, base)
    if typ != MI_INT32 or n % 4 or n < 8 or d + n > len(buf):
        raise _Bad("miMATRIX without a valid dimensions element", base + pos)
    dims = struct.unpack_from(f"{e}{n // 4}i", buf, d)
    if any(x < 0 for x in dims):
        raise _Bad(f"negative dimension in {dims}", base + d)
    pos = _next(pos, d == pos + 4, n)
    typ, n, d = _tag(buf, pos, e, base)
    if typ != MI_INT8 or d + n > len(buf):
        raise _Bad("miMATRIX without an array-name element", base + pos)
    name = bytes(buf[d:d + n]).decode("latin-1")
    pos = _next(pos, d == pos + 4, n)
    cls = flags & 0xFF
    head = dict(name=name, mclass=CLASS_NAMES.get(cls, f"class{cls}"), cls=cls,
                dims=tuple(int(x) for x in dims), complex=bool(flags & 0x800),
                logical=bool(flags & 0x200))
    return head, pos


class MatFile:
    """A MAT v5 file: `variables` (listed at open), `read(name)`, `iter_chunks(name, n)`."""

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int = 1 << 30):
        self.path = str(path)
        self.max_bytes = max_bytes  # largest decompressed variable accepted
        regular_file(self.path)
        with open(self.path, "rb") as f, self._errors():
            self.header_text, self.endian = self._read_header(f)
            self.variables = self._walk(f)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Report helper and decoding failures on corrupt input as FormatError with the path."""
        try:
            yield
        except _Bad as err:
            raise FormatError(err.message, offset=err.offset, path=self.path) from None
        except (struct.error, ValueError, IndexError, OverflowError) as err:
            if isinstance(err, FormatError):
                raise
            raise FormatError(f"corrupt MAT-file ({err})", path=self.path) from None

    def _read_header(self, f: BinaryIO) -> tuple[str, str]:
        h = f.read(128)
        if h[:19] == b"MATLAB 7.3 MAT-file" or h[:8] == b"\x89HDF\r\n\x1a\n":
            raise FormatError("MAT v7.3 (HDF5) files are not supported; save with -v7",
                              offset=0, path=self.path)
        if len(h) < 128:
            raise FormatError(f"file of {len(h)} bytes is too short for a MAT v5 header",
                              offset=len(h), path=self.path)
        ind = h[126:128]
        if ind == b"IM":
            e = "<"
        elif ind == b"MI":
            e = ">"
        else:
            raise FormatError(f"no MAT v5 endian indicator (got {ind!r}); not a level-5 "
                              "MAT-file", offset=126, path=self.path)
        (ver,) = struct.unpack_from(e + "H", h, 124)
        if ver != 0x0100:
            raise FormatError(f"MAT version 0x{ver:04x} is not 0x0100", offset=124,
                              path=self.path)
        return h[:116].rstrip(b" \x00").decode("latin-1", "replace"), e

    def _walk(self, f: BinaryIO) -> list[MatVariable]:
        e = self.endian
        f.seek(0, os.SEEK_END)
        size = f.tell()
        pos = 128
        out: list[MatVariable] = []
        while pos < size and len(out) < _MAX_ELEMENTS:
            f.seek(pos)
            tag = f.read(8)
            if len(tag) < 8:
                if not tag.strip(b"\x00"):
                    break  # zero padding at the end
                raise FormatError("data element tag cut short", offset=pos, path=self.path)
            typ, n, d = _tag(tag, 0, e, pos)
            body = pos + d
            pad = 0 if typ in (MI_MATRIX, MI_COMPRESSED) else (8 - n % 8) % 8
            nxt = pos + 8 if d == 4 else body + n + pad
            if d == 8 and body + n > size:
                raise FormatError(f"element of {n} bytes runs past the end of the file "
                                  f"({size} bytes)", offset=pos, path=self.path)
            if typ == MI_MATRIX and n:
                head_bytes = f.read(min(n, 4096))
                head, after = _parse_matrix_head(head_bytes, e, body)
                v = MatVariable(head["name"], head["mclass"], head["dims"], head["complex"],
                                head["logical"], pos, n, False)
                if v.numeric or v.mclass == "char":
                    rt, rn, rd = (_tag(head_bytes, after, e, body) if after + 4 <= len(head_bytes)
                                  else (0, 0, 0))
                    if rt == 0 and v.size:
                        raise _Bad(f"variable {v.name!r} has no data element", body + after)
                    if rt:
                        self._check_real(v, rt, rn, body + after)
                        if body + rd + rn > size:
                            raise _Bad(f"variable {v.name!r} runs past the end of the file",
                                       body + after)
                    v.real_type, v.real_offset = rt, body + rd
                out.append(v)
            elif typ == MI_COMPRESSED:
                out.append(self._peek_compressed(f, pos, body, n))
            pos = nxt
        return out

    def _check_real(self, v: MatVariable, rt: int, rn: int, off: int) -> None:
        if rt not in MI_DTYPES:
            raise _Bad(f"variable {v.name!r}: unknown data type {rt}", off)
        need = v.size * np.dtype(MI_DTYPES[rt]).itemsize
        if rn != need:
            raise _Bad(f"variable {v.name!r}: {rn} data bytes for dims {v.dims} "
                       f"({need} expected)", off)

    def _peek_compressed(self, f: BinaryIO, pos: int, body: int, n: int) -> MatVariable:
        f.seek(body)
        z = zlib.decompressobj()
        out = b""
        left = n
        try:
            while len(out) < _PEEK and left > 0 and not z.eof:
                chunk = f.read(min(left, 4096))
                left -= len(chunk)
                out += z.decompress(chunk, _PEEK - len(out))
                if z.unconsumed_tail:
                    break
        except zlib.error as err:
            raise _Bad(f"corrupt compressed element ({err})", pos) from None
        e = self.endian
        typ, inner_n, d = _tag(out, 0, e, body)
        if typ != MI_MATRIX:
            return MatVariable("", f"mi{typ}", (), False, False, pos, n, True)
        head, _ = _parse_matrix_head(memoryview(out)[d:], e, body)
        return MatVariable(head["name"], head["mclass"], head["dims"], head["complex"],
                           head["logical"], pos, n, True)

    # --- reading ---------------------------------------------------------------------------

    def variable(self, name: str) -> MatVariable:
        """The variable called `name`, or the only one whose name ends with `name`."""
        exact = [v for v in self.variables if v.name == name]
        if exact:
            return exact[0]
        ends = [v for v in self.variables if v.name.endswith(name)]
        if len(ends) == 1:
            return ends[0]
        names = ", ".join(v.name for v in self.variables)
        what = "several variables end with" if ends else "no variable"
        raise KeyError(f"{what} {name!r} in {self.path} (variables: {names})")

    def _element(self, v: MatVariable) -> tuple[bytes, int]:
        """The decoded miMATRIX body of v and the file offset to report errors at."""
        with open(self.path, "rb") as f:
            f.seek(v.element_offset)
            raw = f.read(8 + v.element_bytes)
        if len(raw) < 8 + v.element_bytes:
            raise FormatError("variable cut short", offset=v.element_offset + len(raw),
                              path=self.path)
        e = self.endian
        if not v.compressed:
            _, n, d = _tag(raw, 0, e, v.element_offset)
            return raw[d:d + n], v.element_offset + d
        expect = 8 + v.size * 16 + 1024  # ample for flags, dims, name and both parts
        if expect > self.max_bytes:
            raise _Bad(f"variable {v.name!r} of dims {v.dims} is larger than max_bytes "
                       f"({self.max_bytes})", v.element_offset)
        z = zlib.decompressobj()
        try:
            out = z.decompress(raw[8:], expect)
        except zlib.error as err:
            raise _Bad(f"corrupt compressed element ({err})", v.element_offset) from None
        typ, n, d = _tag(out, 0, e, v.element_offset)
        if typ != MI_MATRIX or d + n > len(out):
            raise _Bad("compressed element does not hold a whole miMATRIX", v.element_offset)
        return out[d:d + n], v.element_offset

    def read(self, name: str) -> np.ndarray | str:
        """The whole variable: a numpy array shaped like MATLAB's dims, or a str for char."""
        with self._errors():
            return self._read(self.variable(name))

    def _read(self, v: MatVariable) -> np.ndarray | str:
        if not (v.numeric or v.mclass == "char"):
            raise FormatError(f"variable {v.name!r} is a {v.mclass}, which is not supported",
                              offset=v.element_offset, path=self.path)
        body, base = self._element(v)
        e = self.endian
        _, pos = _parse_matrix_head(body, e, base)
        parts = []
        for _ in range(2 if v.complex else 1):
            typ, n, d = _tag(body, pos, e, base)
            if typ not in MI_DTYPES:
                raise FormatError(f"variable {v.name!r}: unknown data type {typ}",
                                  offset=base + pos, path=self.path)
            dt = np.dtype(MI_DTYPES[typ]).newbyteorder(e)
            if n != v.size * dt.itemsize or d + n > len(body):
                raise FormatError(f"variable {v.name!r}: {n} data bytes for dims {v.dims}",
                                  offset=base + pos, path=self.path)
            parts.append(np.frombuffer(body, dt, v.size, d))
            pos = _next(pos, d == pos + 4, n)
        if v.mclass == "char":
            codes = parts[0].astype(np.uint32).reshape(v.dims, order="F")
            rows = codes.reshape(v.dims[0], -1) if len(v.dims) else codes.reshape(1, -1)
            return "\n".join("".join(map(chr, r)) for r in rows)
        out_dt = np.dtype("u1") if v.logical else np.dtype(CLASS_DTYPES[_cls(v)])
        real = parts[0].astype(out_dt)
        if v.complex:
            real = real + 1j * parts[1].astype(out_dt)
        return real.reshape(v.dims, order="F")

    def iter_chunks(self, name: str, n: int = 65536) -> Iterator[np.ndarray]:
        """The variable's values in column-major order, n at a time (seeks when uncompressed)."""
        v = self.variable(name)
        if v.compressed or not v.numeric or v.complex:
            a = self.read(v.name)
            assert isinstance(a, np.ndarray)
            flat = a.reshape(-1, order="F")
            for i in range(0, flat.size, n):
                yield flat[i:i + n]
            return
        dt = np.dtype(MI_DTYPES[v.real_type]).newbyteorder(self.endian)
        out_dt = np.dtype("u1") if v.logical else np.dtype(CLASS_DTYPES[_cls(v)])
        with open(self.path, "rb") as f:
            for i in range(0, v.size, n):
                k = min(n, v.size - i)
                f.seek(v.real_offset + i * dt.itemsize)
                raw = f.read(k * dt.itemsize)
                if len(raw) < k * dt.itemsize:
                    raise FormatError("file ends inside the data", offset=v.real_offset
                                      + i * dt.itemsize + len(raw), path=self.path)
                yield np.frombuffer(raw, dt).astype(out_dt)


def _cls(v: MatVariable) -> int:
    for k, name in CLASS_NAMES.items():
        if name == v.mclass:
            return k
    raise KeyError(v.mclass)


def loadmat(path: str | os.PathLike[str]) -> dict[str, np.ndarray | str]:
    """Every supported variable of a MAT v5 file by name (like scipy.io.loadmat, subset)."""
    m = MatFile(path)
    return {v.name: m.read(v.name) for v in m.variables if v.numeric or v.mclass == "char"}
