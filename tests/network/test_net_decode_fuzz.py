"""Frame decoder on hand-built frames of every layer, and hypothesis fuzzing of all parsers."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from edgesnn_drivers.network import pcap
from edgesnn_drivers.network.decode import decode_bytes, ip_string
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from net_reference import assert_matches_reference, ref_read_pcap, write_pcapng

from edgesnn.errors import FormatError

MAC = bytes.fromhex("001122334455") + bytes.fromhex("66778899aabb")


def ipv4(proto: int, payload: bytes, src: str = "10.0.0.1", dst: str = "10.0.0.2",
         ttl: int = 64, frag: int = 0) -> bytes:
    s = bytes(int(x) for x in src.split("."))
    d = bytes(int(x) for x in dst.split("."))
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, frag, ttl, proto, 0, s,
                       d) + payload


def tcp(sport: int, dport: int, flags: int) -> bytes:
    return struct.pack(">HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 1024, 0, 0)


def udp(sport: int, dport: int, data: bytes = b"") -> bytes:
    return struct.pack(">HHHH", sport, dport, 8 + len(data), 0) + data


def eth(et: int, payload: bytes, vlans: tuple[int, ...] = ()) -> bytes:
    out = MAC
    for v in vlans:
        out += struct.pack(">HH", 0x8100, v)
    return out + struct.pack(">H", et) + payload


def ipv6(nh: int, payload: bytes, hop: int = 9) -> bytes:
    src = bytes(range(16))
    dst = bytes(range(16, 32))
    return struct.pack(">IHBB", 6 << 28, len(payload), nh, hop) + src + dst + payload


def test_layers_decode() -> None:
    frames = [
        eth(0x0800, ipv4(6, tcp(1234, 80, 0x02))),
        eth(0x0800, ipv4(17, udp(5353, 53, b"q")), vlans=(100, 200)),
        eth(0x0800, ipv4(1, bytes([8, 0, 0, 0]))),
        eth(0x86DD, ipv6(17, udp(1, 2))),
        eth(0x86DD, ipv6(0, bytes([6, 0]) + bytes(6) + tcp(10, 20, 0x12))),  # hop-by-hop
        eth(0x86DD, ipv6(58, bytes([128, 0, 0, 0]))),
        eth(0x0806, struct.pack(">HHBBH", 1, 0x0800, 6, 4, 2) + MAC[:6]
            + bytes([192, 168, 0, 1]) + MAC[6:] + bytes([192, 168, 0, 2])),
        eth(0x0800, ipv4(6, tcp(1, 2, 0x10), frag=5)),  # later fragment: no ports
    ]
    pk, bad = decode_bytes(frames)
    assert bad == 0
    assert (int(pk["sport"][0]), int(pk["dport"][0]), int(pk["tcp_flags"][0])) == (1234, 80, 2)
    assert ip_string(pk["src"][0]) == "10.0.0.1" and int(pk["ttl"][0]) == 64
    assert int(pk["vlan"][1]) == 100 and int(pk["dport"][1]) == 53 and int(pk["proto"][1]) == 17
    assert int(pk["icmp_type"][2]) == 8
    assert int(pk["ip_version"][3]) == 6 and int(pk["ttl"][3]) == 9 and int(pk["dport"][3]) == 2
    assert int(pk["proto"][4]) == 6 and int(pk["tcp_flags"][4]) == 0x12
    assert int(pk["proto"][5]) == 58 and int(pk["icmp_type"][5]) == 128
    assert int(pk["arp_op"][6]) == 2 and ip_string(pk["dst"][6]) == "192.168.0.2"
    assert int(pk["sport"][7]) == 0 and int(pk["proto"][7]) == 6
    for rec, f in zip(pk, frames):
        assert_matches_reference(rec, f, 1)


@pytest.mark.parametrize("linktype,prefix", [
    (0, struct.pack("<I", 2)), (108, struct.pack(">I", 2)), (101, b""), (228, b""),
    (113, bytes(14) + struct.pack(">H", 0x0800)), (276, struct.pack(">H", 0x0800) + bytes(18)),
])
def test_other_link_types(linktype: int, prefix: bytes) -> None:
    frame = prefix + ipv4(6, tcp(7, 8, 0x02))
    pk, bad = decode_bytes([frame], linktype)
    assert bad == 0 and int(pk["dport"][0]) == 8 and int(pk["ethertype"][0]) == 0x0800
    assert_matches_reference(pk[0], frame, linktype)


def test_truncated_frames_are_counted_not_read_past() -> None:
    full = eth(0x0800, ipv4(6, tcp(1, 2, 0x02)))
    frames = [full[:k] for k in (0, 5, 13, 20, 33, 40, 47)]
    pk, bad = decode_bytes(frames)
    assert bad == len(frames)
    for rec, f in zip(pk, frames):
        assert_matches_reference(rec, f, 1)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(min_size=0, max_size=120), min_size=1, max_size=8),
       st.sampled_from([0, 1, 101, 108, 113, 228, 229, 276, 147]))
def test_fuzz_frames_match_reference(frames: list[bytes], linktype: int) -> None:
    pk, _ = decode_bytes(frames, linktype)
    for rec, f in zip(pk, frames):
        assert_matches_reference(rec, f, linktype)


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=0, max_size=60), st.sampled_from([0x0800, 0x86DD, 0x0806, 0x8100]))
def test_fuzz_structured_frames(payload: bytes, et: int) -> None:
    f = eth(et, payload)
    pk, _ = decode_bytes([f])
    assert_matches_reference(pk[0], f, 1)


def _read_all(p: Path) -> int:
    n = 0
    for ch in pcap.iter_packets(p):
        n += len(ch.packets)
    return n


@pytest.fixture(scope="module")
def seed_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    from conftest import DATA

    src = DATA / "network" / "pcap"
    if not src.is_dir():
        pytest.skip(f"network captures not found at {src}")
    lt, recs = ref_read_pcap(src / "normal_tcp_handshake.pcap")
    tmp = tmp_path_factory.mktemp("ng")
    write_pcapng(tmp / "a.pcapng", recs, simple=(1,))
    return {
        "pcap": (src / "normal_http_google.pcap").read_bytes()[:1500],
        "pcapng": (src / "normal_http_google.pcapng").read_bytes()[:1500],
        "pcapng2": (tmp / "a.pcapng").read_bytes(),
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(which=st.sampled_from(["pcap", "pcapng", "pcapng2"]),
       cut=st.integers(0, 1500), flips=st.lists(st.tuples(st.integers(0, 1499),
                                                          st.integers(0, 255)), max_size=6))
def test_fuzz_containers(tmp_path: Path, seed_files: dict[str, bytes], which: str, cut: int,
                         flips: list[tuple[int, int]]) -> None:
    data = bytearray(seed_files[which][:cut])
    for pos, val in flips:
        if pos < len(data):
            data[pos] = val
    p = tmp_path / f"fz_{which}.bin"
    p.write_bytes(bytes(data))
    try:
        n = _read_all(p)
    except FormatError as e:
        assert e.offset is not None and 0 <= e.offset <= len(data)
    else:
        assert n >= 0


@settings(max_examples=100, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture])
@given(st.binary(min_size=0, max_size=300))
def test_fuzz_random_files(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "rand.bin"
    for head in (b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00", b"\x0a\x0d\x0d\x0a"):
        p.write_bytes(head + data)
        try:
            _read_all(p)
        except FormatError as e:
            assert e.offset is not None


def test_fuzzed_reading_never_exceeds_the_file(tmp_path: Path) -> None:
    # a record header claiming a huge length at the end of a file: error, no big allocation
    p = tmp_path / "huge.pcap"
    for incl, msg in ((50_000_000, "truncated record"), (200_000_000, "corrupt record")):
        p.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 0x7FFFFFFF, 1)
                      + struct.pack("<IIII", 0, 0, incl, incl))
        with pytest.raises(FormatError, match=msg) as ei:
            _read_all(p)
        assert ei.value.offset == 24
