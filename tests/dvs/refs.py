"""Slow, obvious pure-Python reference decoders and encoders for the DVS tests."""

from __future__ import annotations

import struct

import numpy as np

from edgesnn.events import DVS_EVENT


def to_events(rows: list[tuple[int, int, int, int]]) -> np.ndarray:
    out = np.empty(len(rows), DVS_EVENT)
    for i, (t, x, y, p) in enumerate(rows):
        out[i] = (t, x, y, p)
    return out


def header_end(data: bytes, marker: bytes, end_line: bytes | None = None) -> int:
    pos = 0
    while pos < len(data) and data[pos : pos + 1] == marker:
        nl = data.index(b"\n", pos) + 1
        line = data[pos:nl].rstrip(b"\r\n")
        pos = nl
        if end_line is not None and line == end_line:
            break
    return pos


def evt2(data: bytes) -> list[tuple[int, int, int, int]]:
    pos = header_end(data, b"%")
    out = []
    th = None
    wraps = 0
    for (w,) in struct.iter_unpack("<I", data[pos:]):
        typ = w >> 28
        if typ in (0, 1) and th is not None:
            out.append((wraps * 2**34 + th * 64 + ((w >> 22) & 63), (w >> 11) & 0x7FF,
                        w & 0x7FF, typ))
        elif typ == 8:
            new = w & 0xFFFFFFF
            if th is not None and new < th:
                wraps += 1
            th = new
    return out


def evt3(data: bytes) -> list[tuple[int, int, int, int]]:
    pos = header_end(data, b"%", b"% end")
    out = []
    y = None
    th = None
    tl = 0
    wraps = 0
    base_x = 0
    vpol = 0
    for (w,) in struct.iter_unpack("<H", data[pos:]):
        typ = w >> 12
        t = None if th is None else wraps * 2**24 + th * 4096 + tl
        if typ == 0:
            y = w & 0x7FF
        elif typ == 2:
            if t is not None and y is not None:
                out.append((t, w & 0x7FF, y, (w >> 11) & 1))
        elif typ == 3:
            base_x = w & 0x7FF
            vpol = (w >> 11) & 1
        elif typ in (4, 5):
            nbits = 12 if typ == 4 else 8
            for b in range(nbits):
                if (w >> b) & 1 and t is not None and y is not None:
                    out.append((t, base_x + b, y, vpol))
            base_x += nbits
        elif typ == 6:
            tl = w & 0xFFF
        elif typ == 8:
            new = w & 0xFFF
            if th is not None and new < th:
                wraps += 1
            th = new
    return out


def aedat2_dvs128(data: bytes) -> list[tuple[int, int, int, int]]:
    pos = header_end(data, b"#")
    out = []
    for a, t in struct.iter_unpack(">II", data[pos:]):
        out.append((t, (a >> 1) & 0x7F, (a >> 8) & 0x7F, a & 1))
    return out


def dat(data: bytes) -> list[tuple[int, int, int, int]]:
    pos = header_end(data, b"%") + 2
    return [(t, w & 0x3FFF, (w >> 14) & 0x3FFF, w >> 28)
            for t, w in struct.iter_unpack("<II", data[pos:])]


def aedat4(data: bytes) -> list[tuple[int, int, int, int]]:
    """Walks packets with struct; decompresses LZ4 with the one-shot API."""
    import re

    import lz4.frame

    n = struct.unpack_from("<I", data, 14)[0]
    hdr = data[18 : 18 + n]
    table = struct.unpack_from("<I", hdr, 0)[0]
    vt = table - struct.unpack_from("<i", hdr, table)[0]
    f1 = struct.unpack_from("<H", hdr, vt + 6)[0]
    end = struct.unpack_from("<q", hdr, table + f1)[0] if f1 else len(data)
    xml = hdr.decode("latin-1")
    ev_ids = [int(m) for m in re.findall(
        r'<node name="(\d+)"[^>]*>(?:(?!</node>).)*?typeIdentifier" type="string">EVTS',
        xml, re.S)]
    pos = 18 + n
    out = []
    while pos < (end if end > 0 else len(data)):
        sid, size = struct.unpack_from("<ii", data, pos)
        if sid in ev_ids:
            buf = lz4.frame.decompress(data[pos + 8 : pos + 8 + size])[4:]
            root = struct.unpack_from("<I", buf, 0)[0]
            vt = root - struct.unpack_from("<i", buf, root)[0]
            f0 = struct.unpack_from("<H", buf, vt + 4)[0]
            vec = root + f0 + struct.unpack_from("<I", buf, root + f0)[0]
            cnt = struct.unpack_from("<I", buf, vec)[0]
            for k in range(cnt):
                t, x, y, p = struct.unpack_from("<qhhB", buf, vec + 4 + 16 * k)
                out.append((t, x, y, p))
        pos += 8 + size
    return out


def write_aedat3(events: np.ndarray, source: str = "DVS128", per_packet: int = 1000,
                 extra_packets: bool = True) -> bytes:
    """An AEDAT 3.1 file of polarity packets (plus special and IMU packets to skip)."""
    head = (b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: " + source.encode()
            + b"\r\n#Start-Time: 2020-01-01 00:00:00 (TZ+0000)\r\n#!END-HEADER\r\n")
    body = bytearray()
    parts = []
    for i in range(0, len(events), per_packet):
        part = events[i : i + per_packet]
        o = part["t"] >> 31
        parts += [part[o == v] for v in np.unique(o)]  # one overflow value per packet
    for part in parts:
        ovf = int(part["t"][0]) >> 31
        payload = bytearray()
        for t, x, y, p in part[["t", "x", "y", "p"]].tolist():
            data = (x << 17) | (y << 2) | (p << 1) | 1
            payload += struct.pack("<Ii", data, t - (ovf << 31))
        # an invalid event (valid bit 0) that must be skipped
        payload += struct.pack("<Ii", (5 << 17) | (5 << 2), 0)
        n = len(part) + 1
        body += struct.pack("<hhiiiiii", 1, 1, 8, 4, ovf, n, n, n) + payload
        if extra_packets:
            body += struct.pack("<hhiiiiii", 0, 1, 8, 4, ovf, 2, 2, 2) + bytes(16)
            body += struct.pack("<hhiiiiii", 3, 1, 36, 4, ovf, 1, 1, 1) + bytes(36)
    return head + bytes(body)


def write_aedat2_davis(events: np.ndarray, width: int, height: int) -> bytes:
    """An AEDAT 2.0 DAVIS346 file with jAER's flipped axes, plus an APS sample and an IMU word."""
    head = (b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n"
            b"# AEChip: eu.seebetter.ini.chips.davis.Davis346B\r\n")
    body = bytearray()
    for t, x, y, p in events[["t", "x", "y", "p"]].tolist():
        a = ((height - 1 - y) << 22) | ((width - 1 - x) << 12) | (p << 11)
        body += struct.pack(">II", a, t)
    body += struct.pack(">II", (1 << 31) | (3 << 10), 0)
    body += struct.pack(">II", (1 << 31) | (5 << 22) | (9 << 12) | 77, 0)
    return head + bytes(body)


def nmnist(data: bytes) -> tuple[list[tuple[int, int, int, int]], int]:
    """N-MNIST 5-byte records as tonic's read_mnist_file reads them: (events, overflow records).

    Events are not range-checked; a record with y == 240 adds 2^13 to later timestamps.
    """
    out = []
    offset = 0
    overflows = 0
    for k in range(0, len(data) - len(data) % 5, 5):
        x, y, b2, b3, b4 = data[k : k + 5]
        if y == 240:
            offset += 2**13
            overflows += 1
            continue
        t = (b2 & 0x7F) * 65536 + b3 * 256 + b4
        out.append((offset + t, x, y, b2 // 128))
    return out, overflows


def write_nmnist(rows: list[tuple[int, int, int, int]]) -> bytes:
    """5-byte N-MNIST records of (t, x, y, p) rows; t < 2^23, x and y < 256."""
    return b"".join(bytes([x, y, (p << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF])
                    for t, x, y, p in rows)
