"""Frame decoding (link layer to transport) into `PACKET` records, as one numba kernel.

Link types: Ethernet (1) with up to four 802.1Q/802.1ad tags, BSD loopback (0, 108), raw IP
(101, 228, 229), Linux cooked capture (113 SLL, 276 SLL2). Network: IPv4 (options, fragments),
IPv6 (extension headers), ARP. Transport: TCP, UDP, SCTP ports, ICMP/ICMPv6 type. A frame cut
short keeps what was decoded before the cut and is counted as truncated, never read past.
IPv4 addresses are stored IPv4-mapped (::ffff:a.b.c.d).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgesnn.events import PACKET

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
#: Link types the decoder understands (others give ethertype 0).
LINKTYPES = {
    LINKTYPE_NULL: "NULL",
    LINKTYPE_ETHERNET: "EN10MB",
    LINKTYPE_RAW: "RAW",
    LINKTYPE_LOOP: "LOOP",
    LINKTYPE_LINUX_SLL: "LINUX_SLL",
    LINKTYPE_IPV4: "IPV4",
    LINKTYPE_IPV6: "IPV6",
    LINKTYPE_LINUX_SLL2: "LINUX_SLL2",
}

ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
ETH_IPV6 = 0x86DD
TCP, UDP, ICMP, ICMPV6, SCTP = 6, 17, 1, 58, 132

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20


@njit(cache=True, nogil=True, inline="always")
def _be16(buf: np.ndarray, p: int) -> int:
    return (np.int64(buf[p]) << 8) | np.int64(buf[p + 1])


@njit(cache=True, nogil=True, inline="always")
def _le32(buf: np.ndarray, p: int) -> int:
    return (
        np.int64(buf[p])
        | (np.int64(buf[p + 1]) << 8)
        | (np.int64(buf[p + 2]) << 16)
        | (np.int64(buf[p + 3]) << 24)
    )


@njit(cache=True, nogil=True)
def decode_frames(
    buf: np.ndarray,
    off: np.ndarray,
    caplen: np.ndarray,
    origlen: np.ndarray,
    ts_us: np.ndarray,
    linktype: np.ndarray,
    out: np.ndarray,
    pay_off: np.ndarray,
    pay_len: np.ndarray,
) -> int:
    """Decode frame i (`buf[off[i]:off[i]+caplen[i]]`) into `out[i]`; returns frames truncated.

    `out` must be zeroed PACKET records. `pay_off[i]`/`pay_len[i]` receive the transport payload
    (absolute offset in `buf`, -1 when there is none) so UDP sensor payloads can be read on.
    """
    truncated = 0
    for i in range(off.shape[0]):
        o = np.int64(off[i])
        end = o + np.int64(caplen[i])
        r = out[i]
        r.t = ts_us[i]
        r.length = origlen[i]
        r.caplen = caplen[i]
        pay_off[i] = -1
        pay_len[i] = 0
        lt = linktype[i]
        et = np.int64(0)
        p = o
        short = False
        if lt == LINKTYPE_ETHERNET:
            if end - o < 14:
                truncated += 1
                continue
            et = _be16(buf, o + 12)
            p = o + 14
            k = 0
            while (et == 0x8100 or et == 0x88A8 or et == 0x9100) and k < 4:
                if p + 4 > end:
                    short = True
                    break
                if k == 0:
                    r.vlan = _be16(buf, p) & 0x0FFF
                et = _be16(buf, p + 2)
                p += 4
                k += 1
        elif lt == LINKTYPE_NULL or lt == LINKTYPE_LOOP:  # noqa: SIM109  # noqa: SIM109 (numba)
            if end - o < 4:
                truncated += 1
                continue
            fam = _le32(buf, o)
            if lt == LINKTYPE_LOOP or fam > 0xFFFF:
                fam = (fam >> 24) | ((fam >> 8) & 0xFF00)
            p = o + 4
            if fam == 2:
                et = ETH_IPV4
            elif fam == 24 or fam == 28 or fam == 30 or fam == 10:
                et = ETH_IPV6
        elif lt == LINKTYPE_RAW or lt == LINKTYPE_IPV4 or lt == LINKTYPE_IPV6:  # noqa: SIM109  # noqa: SIM109
            if end - o < 1:
                truncated += 1
                continue
            v = buf[o] >> 4
            et = ETH_IPV4 if v == 4 else (ETH_IPV6 if v == 6 else 0)
        elif lt == LINKTYPE_LINUX_SLL:
            if end - o < 16:
                truncated += 1
                continue
            et = _be16(buf, o + 14)
            p = o + 16
        elif lt == LINKTYPE_LINUX_SLL2:
            if end - o < 20:
                truncated += 1
                continue
            et = _be16(buf, o)
            p = o + 20
        r.ethertype = et
        if short:
            truncated += 1
            continue

        l4 = np.int64(-1)
        l4end = end
        proto = np.int64(0)
        if et == ETH_IPV4:
            if p + 20 > end or (buf[p] >> 4) != 4:
                truncated += 1
                continue
            ihl = np.int64(buf[p] & 15) * 4
            r.ip_version = 4
            proto = np.int64(buf[p + 9])
            r.proto = proto
            r.ttl = buf[p + 8]
            r.src[10] = 0xFF
            r.src[11] = 0xFF
            r.dst[10] = 0xFF
            r.dst[11] = 0xFF
            for k in range(4):
                r.src[12 + k] = buf[p + 12 + k]
                r.dst[12 + k] = buf[p + 16 + k]
            total = _be16(buf, p + 2)
            if total >= ihl and p + total < l4end:
                l4end = p + total
            frag = _be16(buf, p + 6) & 0x1FFF
            if ihl >= 20 and frag == 0:
                l4 = p + ihl
        elif et == ETH_IPV6:
            if p + 40 > end:
                truncated += 1
                continue
            r.ip_version = 6
            nh = np.int64(buf[p + 6])
            r.ttl = buf[p + 7]
            for k in range(16):
                r.src[k] = buf[p + 8 + k]
                r.dst[k] = buf[p + 24 + k]
            plen = _be16(buf, p + 4)
            q = p + 40
            if plen > 0 and q + plen < l4end:
                l4end = q + plen
            fragmented = False
            k = 0
            while k < 8 and (nh == 0 or nh == 43 or nh == 60 or nh == 44 or nh == 51
                             or nh == 135 or nh == 139 or nh == 140):
                if q + 8 > l4end:
                    short = True
                    break
                nxt = np.int64(buf[q])
                if nh == 44:
                    if (_be16(buf, q + 2) >> 3) != 0:
                        fragmented = True
                    hl = np.int64(8)
                elif nh == 51:
                    hl = (np.int64(buf[q + 1]) + 2) * 4
                else:
                    hl = (np.int64(buf[q + 1]) + 1) * 8
                nh = nxt
                q += hl
                k += 1
            proto = nh
            r.proto = nh
            if short:
                truncated += 1
                continue
            if not fragmented:
                l4 = q
        elif et == ETH_ARP:
            if p + 8 > end:
                truncated += 1
                continue
            r.arp_op = _be16(buf, p + 6)
            hlen = np.int64(buf[p + 4])
            if _be16(buf, p + 2) == ETH_IPV4 and buf[p + 5] == 4:
                spa = p + 8 + hlen
                tpa = p + 8 + 2 * hlen + 4
                if tpa + 4 <= end:
                    r.src[10] = 0xFF
                    r.src[11] = 0xFF
                    r.dst[10] = 0xFF
                    r.dst[11] = 0xFF
                    for k in range(4):
                        r.src[12 + k] = buf[spa + k]
                        r.dst[12 + k] = buf[tpa + k]
                else:
                    truncated += 1
            continue
        else:
            continue

        if l4 < 0:
            continue
        if proto == TCP:
            if l4 + 14 > l4end:
                truncated += 1
                continue
            r.sport = _be16(buf, l4)
            r.dport = _be16(buf, l4 + 2)
            r.tcp_flags = buf[l4 + 13]
            doff = np.int64(buf[l4 + 12] >> 4) * 4
            if doff >= 20 and l4 + doff <= l4end:
                pay_off[i] = l4 + doff
                pay_len[i] = l4end - l4 - doff
        elif proto == UDP or proto == 136:
            if l4 + 8 > l4end:
                truncated += 1
                continue
            r.sport = _be16(buf, l4)
            r.dport = _be16(buf, l4 + 2)
            ulen = _be16(buf, l4 + 4)
            n = l4end - l4 - 8
            if ulen >= 8 and ulen - 8 < n:
                n = ulen - 8
            pay_off[i] = l4 + 8
            pay_len[i] = n
        elif proto == SCTP:
            if l4 + 4 > l4end:
                truncated += 1
                continue
            r.sport = _be16(buf, l4)
            r.dport = _be16(buf, l4 + 2)
        elif proto == ICMP or proto == ICMPV6:  # noqa: SIM109  # noqa: SIM109 (numba)
            if l4 + 1 > l4end:
                truncated += 1
                continue
            r.icmp_type = buf[l4]
    return truncated


def decode(
    buf: np.ndarray,
    off: np.ndarray,
    caplen: np.ndarray,
    origlen: np.ndarray,
    ts_us: np.ndarray,
    linktype: np.ndarray | int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(PACKET records, payload offsets, payload lengths, truncated frames) for the frames."""
    n = len(off)
    lt = np.asarray(linktype, dtype=np.int32)
    if lt.ndim == 0:
        lt = np.full(n, int(lt), np.int32)
    out = np.zeros(n, PACKET)
    pay_off = np.empty(n, np.int64)
    pay_len = np.empty(n, np.int64)
    if n == 0:
        return out, pay_off, pay_len, 0
    bad = decode_frames(
        buf,
        np.ascontiguousarray(off, np.int64),
        np.ascontiguousarray(caplen, np.uint32),
        np.ascontiguousarray(origlen, np.uint32),
        np.ascontiguousarray(ts_us, np.int64),
        lt,
        out,
        pay_off,
        pay_len,
    )
    return out, pay_off, pay_len, int(bad)


def decode_bytes(frames: list[bytes], linktype: int = LINKTYPE_ETHERNET, t0_us: int = 0
                 ) -> tuple[np.ndarray, int]:
    """Decode a list of raw frames (live capture, tests); timestamps t0_us, t0_us+1, ..."""
    lens = np.fromiter((len(f) for f in frames), np.int64, len(frames))
    off = np.zeros(len(frames), np.int64)
    if len(frames) > 1:
        np.cumsum(lens[:-1], out=off[1:])
    buf = np.frombuffer(b"".join(frames), np.uint8) if frames else np.zeros(0, np.uint8)
    ts = t0_us + np.arange(len(frames), dtype=np.int64)
    pk, _, _, bad = decode(buf, off, lens, lens, ts, linktype)
    return pk, bad


def ip_string(addr: np.ndarray) -> str:
    """Printable address of a PACKET src/dst field (dotted quad for IPv4-mapped)."""
    import ipaddress

    a = ipaddress.IPv6Address(bytes(np.asarray(addr, np.uint8)))
    return str(a.ipv4_mapped) if a.ipv4_mapped is not None else str(a)


def protocol_counts(pk: np.ndarray) -> dict[str, int]:
    """Counts by protocol name: TCP, UDP, ICMP, ICMPv6, ARP, other IP, non-IP."""
    out: dict[str, int] = {}
    ip = pk["ip_version"] > 0
    names = {TCP: "TCP", UDP: "UDP", ICMP: "ICMP", ICMPV6: "ICMPv6", SCTP: "SCTP"}
    for num, name in names.items():
        c = int(np.count_nonzero(ip & (pk["proto"] == num)))
        if c:
            out[name] = c
    other = int(np.count_nonzero(ip & ~np.isin(pk["proto"], list(names))))
    if other:
        out["other IP"] = other
    arp = int(np.count_nonzero(pk["ethertype"] == ETH_ARP))
    if arp:
        out["ARP"] = arp
    rest = int(np.count_nonzero(~ip & (pk["ethertype"] != ETH_ARP)))
    if rest:
        out["non-IP"] = rest
    return out


def syn_counts(pk: np.ndarray) -> tuple[int, int]:
    """(SYN without ACK, SYN+ACK) TCP packet counts."""
    tcp = (pk["ip_version"] > 0) & (pk["proto"] == TCP)
    f = pk["tcp_flags"]
    syn = int(np.count_nonzero(tcp & ((f & (TCP_SYN | TCP_ACK)) == TCP_SYN)))
    synack = int(np.count_nonzero(tcp & ((f & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK))))
    return syn, synack
