"""Slow, obvious pure-Python twins of the network kernels, and capture writers for tests."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

FIELDS = ("t", "length", "caplen", "ethertype", "vlan", "ip_version", "proto", "sport",
          "dport", "tcp_flags", "icmp_type", "ttl", "arp_op")


def ref_decode(frame: bytes, linktype: int = 1) -> dict:
    """Decode one frame with struct, field by field, as the spec reads."""
    d = dict(ethertype=0, vlan=0, ip_version=0, proto=0, sport=0, dport=0, tcp_flags=0,
             icmp_type=0, ttl=0, arp_op=0, src=bytes(16), dst=bytes(16), truncated=False)
    n = len(frame)
    et, p = 0, 0
    if linktype == 1:
        if n < 14:
            d["truncated"] = True
            return d
        et = struct.unpack(">H", frame[12:14])[0]
        p = 14
        tags = 0
        while et in (0x8100, 0x88A8, 0x9100) and tags < 4:
            if p + 4 > n:
                d["ethertype"] = et
                d["truncated"] = True
                return d
            tci, et = struct.unpack(">HH", frame[p:p + 4])
            if tags == 0:
                d["vlan"] = tci & 0xFFF
            p += 4
            tags += 1
    elif linktype in (0, 108):
        if n < 4:
            d["truncated"] = True
            return d
        fam = struct.unpack("<I", frame[:4])[0]
        if linktype == 108 or fam > 0xFFFF:
            fam = struct.unpack(">I", frame[:4])[0]
        p = 4
        et = 0x0800 if fam == 2 else (0x86DD if fam in (10, 24, 28, 30) else 0)
    elif linktype in (101, 228, 229):
        if n < 1:
            d["truncated"] = True
            return d
        v = frame[0] >> 4
        et = 0x0800 if v == 4 else (0x86DD if v == 6 else 0)
    elif linktype == 113:
        if n < 16:
            d["truncated"] = True
            return d
        et = struct.unpack(">H", frame[14:16])[0]
        p = 16
    elif linktype == 276:
        if n < 20:
            d["truncated"] = True
            return d
        et = struct.unpack(">H", frame[0:2])[0]
        p = 20
    d["ethertype"] = et
    l4 = None
    l4end = n
    proto = 0
    if et == 0x0800:
        if p + 20 > n or frame[p] >> 4 != 4:
            d["truncated"] = True
            return d
        ihl = (frame[p] & 15) * 4
        d["ip_version"] = 4
        proto = frame[p + 9]
        d["proto"] = proto
        d["ttl"] = frame[p + 8]
        d["src"] = b"\0" * 10 + b"\xff\xff" + frame[p + 12:p + 16]
        d["dst"] = b"\0" * 10 + b"\xff\xff" + frame[p + 16:p + 20]
        total = struct.unpack(">H", frame[p + 2:p + 4])[0]
        if total >= ihl and p + total < l4end:
            l4end = p + total
        frag = struct.unpack(">H", frame[p + 6:p + 8])[0] & 0x1FFF
        if ihl >= 20 and frag == 0:
            l4 = p + ihl
    elif et == 0x86DD:
        if p + 40 > n:
            d["truncated"] = True
            return d
        d["ip_version"] = 6
        nh = frame[p + 6]
        d["ttl"] = frame[p + 7]
        d["src"] = frame[p + 8:p + 24]
        d["dst"] = frame[p + 24:p + 40]
        plen = struct.unpack(">H", frame[p + 4:p + 6])[0]
        q = p + 40
        if plen > 0 and q + plen < l4end:
            l4end = q + plen
        fragmented = False
        for _ in range(8):
            if nh not in (0, 43, 60, 44, 51, 135, 139, 140):
                break
            if q + 8 > l4end:
                d["proto"] = nh
                d["truncated"] = True
                return d
            nxt = frame[q]
            if nh == 44:
                fragmented = fragmented or (struct.unpack(">H", frame[q + 2:q + 4])[0] >> 3) != 0
                hl = 8
            elif nh == 51:
                hl = (frame[q + 1] + 2) * 4
            else:
                hl = (frame[q + 1] + 1) * 8
            nh = nxt
            q += hl
        proto = nh
        d["proto"] = nh
        if not fragmented:
            l4 = q
    elif et == 0x0806:
        if p + 8 > n:
            d["truncated"] = True
            return d
        d["arp_op"] = struct.unpack(">H", frame[p + 6:p + 8])[0]
        hlen = frame[p + 4]
        if struct.unpack(">H", frame[p + 2:p + 4])[0] == 0x0800 and frame[p + 5] == 4:
            spa, tpa = p + 8 + hlen, p + 8 + 2 * hlen + 4
            if tpa + 4 <= n:
                d["src"] = b"\0" * 10 + b"\xff\xff" + frame[spa:spa + 4]
                d["dst"] = b"\0" * 10 + b"\xff\xff" + frame[tpa:tpa + 4]
            else:
                d["truncated"] = True
        return d
    else:
        return d
    if l4 is None:
        return d
    if proto == 6:
        if l4 + 14 > l4end:
            d["truncated"] = True
            return d
        d["sport"], d["dport"] = struct.unpack(">HH", frame[l4:l4 + 4])
        d["tcp_flags"] = frame[l4 + 13]
    elif proto in (17, 136):
        if l4 + 8 > l4end:
            d["truncated"] = True
            return d
        d["sport"], d["dport"] = struct.unpack(">HH", frame[l4:l4 + 4])
    elif proto == 132:
        if l4 + 4 > l4end:
            d["truncated"] = True
            return d
        d["sport"], d["dport"] = struct.unpack(">HH", frame[l4:l4 + 4])
    elif proto in (1, 58):
        if l4 + 1 > l4end:
            d["truncated"] = True
            return d
        d["icmp_type"] = frame[l4]
    return d


def assert_matches_reference(rec: np.void, frame: bytes, linktype: int) -> None:
    """One decoded PACKET record equals the reference decoding of its frame."""
    ref = ref_decode(frame, linktype)
    for f in FIELDS[3:]:
        assert int(rec[f]) == ref[f], (f, int(rec[f]), ref[f], frame.hex())
    assert bytes(rec["src"]) == ref["src"]
    assert bytes(rec["dst"]) == ref["dst"]


def ref_read_pcap(path: str | Path) -> tuple[int, list[tuple[int, bytes, int]]]:
    """(linktype, [(t_us, frame, orig_len)]) of a classic pcap, read with struct."""
    data = Path(path).read_bytes()
    magic = data[:4]
    e = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    nanos = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    lt = struct.unpack(e + "I", data[20:24])[0] & 0x0FFFFFFF
    out = []
    p = 24
    while p + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack(e + "IIII", data[p:p + 16])
        frame = data[p + 16:p + 16 + incl]
        out.append((sec * 1_000_000 + (frac // 1000 if nanos else frac), frame, orig))
        p += 16 + incl
    return lt, out


def write_pcapng(path: str | Path, records: list[tuple[int, bytes, int]], *, big: bool = False,
                 tsresol: int = 6, base2: bool = False, linktype: int = 1,
                 simple: tuple[int, ...] = (), iface_of: list[int] | None = None,
                 n_ifaces: int = 1, extra_blocks: bool = True) -> None:
    """A pcapng section: SHB, n_ifaces IDBs with if_tsresol, an NRB, then EPBs (or SPBs for
    the indices in `simple`), records given as (t_us, frame, orig_len)."""
    e = ">" if big else "<"

    def block(btype: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        n = len(body) + 12
        return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)

    out = [block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))]
    code = (0x80 | tsresol) if base2 else tsresol
    for _ in range(n_ifaces):
        opts = struct.pack(e + "HH", 9, 1) + bytes([code, 0, 0, 0]) + struct.pack(e + "HH", 0, 0)
        out.append(block(1, struct.pack(e + "HHI", linktype, 0, 65535) + opts))
    if extra_blocks:
        out.append(block(4, struct.pack(e + "HH", 0, 0)))  # empty name resolution block
    for i, (t_us, frame, orig) in enumerate(records):
        if i in simple:
            out.append(block(3, struct.pack(e + "I", orig) + frame))
            continue
        units = (t_us * (1 << tsresol)) // 1_000_000 if base2 else (
            t_us * 10 ** tsresol // 1_000_000 if tsresol >= 6 else t_us // 10 ** (6 - tsresol))
        ifc = iface_of[i] if iface_of else 0
        out.append(block(6, struct.pack(e + "IIIII", ifc, units >> 32, units & 0xFFFFFFFF,
                                        len(frame), orig) + frame))
    Path(path).write_bytes(b"".join(out))
