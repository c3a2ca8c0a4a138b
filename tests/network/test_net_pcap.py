"""pcap / pcapng readers against the real captures and their expected values."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from edgesnn_drivers.info import detect, info
from edgesnn_drivers.network import pcap
from edgesnn_drivers.network.decode import protocol_counts, syn_counts
from net_reference import assert_matches_reference, ref_read_pcap, write_pcapng

from edgesnn.errors import FormatError

# file: (packets, first ts, last ts, protocols, syn, synack) from shared/data/README.md
EXPECTED = {
    "attack_synscan.pcap": (2011, "1278275056.274870", "1278275079.360213", {"TCP": 2011},
                            1994, 12),
    "attack_synscan.pcapng": (2011, "1278275056.274870", "1278275079.360213", {"TCP": 2011},
                              1994, 12),
    "attack_portscan.pcap": (29, "1156430125.417872", "1156430128.237462", {"TCP": 29}, 29, 0),
    "attack_dosattack.pcap": (100, "1135111180.527349", "1135111180.543564", {"TCP": 100},
                              100, 0),
    "attack_arppoison.pcap": (165, "1279251572.730147", "1279251587.122706",
                              {"TCP": 107, "UDP": 54, "ARP": 4}, 2, 2),
    "normal_http_google.pcap": (12, "1265678319.618072", "1265678319.752467", {"TCP": 12}, 1, 1),
    "normal_http_google.pcapng": (12, "1265678319.618072", "1265678319.752467", {"TCP": 12},
                                  1, 1),
    "normal_tcp_handshake.pcap": (3, "1262893114.341715", "1262893114.474483", {"TCP": 3}, 1, 1),
    "normal_dns_query_response.pcap": (2, "1166293367.202144", "1166293367.293308", {"UDP": 2},
                                       0, 0),
    "normal_icmp_echo.pcap": (8, "1246563718.226354", "1246563721.230146", {"ICMP": 8}, 0, 0),
}


# file sizes in bytes, from the same README table
BYTES = {
    "attack_synscan.pcap": 148_872, "attack_synscan.pcapng": 185_072,
    "attack_portscan.pcap": 2_228, "attack_dosattack.pcap": 7_024,
    "attack_arppoison.pcap": 64_897, "normal_http_google.pcap": 6_378,
    "normal_http_google.pcapng": 6_608, "normal_tcp_handshake.pcap": 258,
    "normal_dns_query_response.pcap": 218, "normal_icmp_echo.pcap": 744,
}


def us(s: str) -> int:
    sec, frac = s.split(".")
    return int(sec) * 1_000_000 + int(frac)


@pytest.fixture
def pcap_dir(data_dir: Path) -> Path:
    d = data_dir / "network" / "pcap"
    if not d.is_dir():
        pytest.skip(f"network captures not found at {d}")
    return d


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_expected_values(pcap_dir: Path, name: str) -> None:
    n, first, last, protos, syn, synack = EXPECTED[name]
    pk = pcap.read_packets(pcap_dir / name)
    assert len(pk) == n
    assert int(pk["t"][0]) == us(first) and int(pk["t"][-1]) == us(last)
    assert protocol_counts(pk) == protos
    assert syn_counts(pk) == (syn, synack)
    assert (pk["caplen"] <= pk["length"]).all()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_info_reports_expected_values(pcap_dir: Path, name: str) -> None:
    n, first, last, protos, syn, synack = EXPECTED[name]
    d = info(str(pcap_dir / name))
    assert d["format"] == ("pcapng" if name.endswith("pcapng") else "pcap")
    assert d["linktype"] == 1 and d["linktype_name"] == "EN10MB"
    assert d["packets"] == n
    assert (d["first_t_us"], d["last_t_us"]) == (us(first), us(last))
    assert d["protocols"] == protos
    assert (d["syn"], d["synack"]) == (syn, synack)
    p = pcap_dir / name
    assert p.stat().st_size == BYTES[name]
    assert d["byte_order"] == "little"
    if name.endswith(".pcapng"):  # 1 SHB, 1 IDB, EPBs with if_tsresol 10^-6
        assert p.read_bytes()[:4] == bytes.fromhex("0a0d0d0a")
        assert (d["sections"], d["interfaces"]) == (1, 1)
        assert d["timestamp_resolution"] == ["10^-6"]
    else:  # magic d4c3b2a1: little-endian, microsecond timestamps
        assert p.read_bytes()[:4] == bytes.fromhex("d4c3b2a1")
        assert d["timestamp_resolution"] == "us"


@pytest.mark.parametrize("stem", ["attack_synscan", "normal_http_google"])
def test_pcap_and_pcapng_give_identical_packets(pcap_dir: Path, stem: str) -> None:
    a = pcap.read_packets(pcap_dir / f"{stem}.pcap")
    b = pcap.read_packets(pcap_dir / f"{stem}.pcapng")
    assert len(a) == len(b) > 0
    assert a.tobytes() == b.tobytes()


def test_decoder_matches_reference_on_every_real_packet(pcap_dir: Path) -> None:
    checked = 0
    for f in sorted(pcap_dir.glob("*.pcap")):
        lt, recs = ref_read_pcap(f)
        pk = pcap.read_packets(f)
        assert len(pk) == len(recs)
        for rec, (t, frame, orig) in zip(pk, recs):
            assert int(rec["t"]) == t and int(rec["length"]) == orig
            assert int(rec["caplen"]) == len(frame)
            assert_matches_reference(rec, frame, lt)
            checked += 1
    assert checked == sum(v[0] for k, v in EXPECTED.items() if k.endswith(".pcap"))


@pytest.mark.parametrize("big,nanos", [(True, False), (False, True), (True, True)])
def test_byte_orders_and_nanosecond_files(pcap_dir: Path, tmp_path: Path, big: bool,
                                          nanos: bool) -> None:
    src = pcap_dir / "attack_arppoison.pcap"
    lt, recs = ref_read_pcap(src)
    out = tmp_path / "variant.cap"
    pcap.write_pcap(out, recs, linktype=lt, big_endian=big, nanos=nanos)
    head = out.read_bytes()[:4]
    assert head == {(True, False): b"\xa1\xb2\xc3\xd4", (False, True): b"\x4d\x3c\xb2\xa1",
                    (True, True): b"\xa1\xb2\x3c\x4d"}[(big, nanos)]
    assert pcap.read_packets(out).tobytes() == pcap.read_packets(src).tobytes()
    d = info(str(out))
    assert d["byte_order"] == ("big" if big else "little")
    assert d["timestamp_resolution"] == ("ns" if nanos else "us")


def test_nanosecond_fractions_are_truncated_to_us(tmp_path: Path) -> None:
    frame = bytes(14)
    p = tmp_path / "ns.pcap"
    with open(p, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1))
        f.write(struct.pack("<IIII", 7, 123_456_789, len(frame), len(frame)) + frame)
    assert int(pcap.read_packets(p)["t"][0]) == 7_123_456


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("tsresol,base2", [(6, False), (9, False), (3, False), (20, True)])
def test_pcapng_variants(pcap_dir: Path, tmp_path: Path, big: bool, tsresol: int,
                         base2: bool) -> None:
    lt, recs = ref_read_pcap(pcap_dir / "normal_http_google.pcap")
    p = tmp_path / "v.bin"
    write_pcapng(p, recs, big=big, tsresol=tsresol, base2=base2)
    got = pcap.read_packets(p)
    want = pcap.read_packets(pcap_dir / "normal_http_google.pcap")
    step = {3: 1000, 6: 1, 9: 1}.get(tsresol, 1) if not base2 else 1
    if base2:  # 2^-20 s units: within one unit (< 1 µs) after the round trip
        assert np.abs(got["t"] - want["t"]).max() <= 1
    else:
        assert (got["t"] == want["t"] // step * step).all()
    for f in ("length", "caplen", "src", "dst", "sport", "dport", "tcp_flags"):
        assert (got[f] == want[f]).all()


def test_pcapng_simple_packet_blocks_and_interfaces(pcap_dir: Path, tmp_path: Path) -> None:
    lt, recs = ref_read_pcap(pcap_dir / "normal_tcp_handshake.pcap")
    p = tmp_path / "spb.bin"
    write_pcapng(p, recs, simple=(1,), n_ifaces=2, iface_of=[1, 0, 1])
    got = pcap.read_packets(p)
    assert len(got) == 3
    assert int(got["t"][1]) == recs[0][0]  # an SPB has no time: the previous packet's
    assert (got["sport"] == pcap.read_packets(pcap_dir / "normal_tcp_handshake.pcap")["sport"]
            ).all()
    bad = tmp_path / "badif.bin"
    write_pcapng(bad, recs, iface_of=[0, 5, 0])
    with pytest.raises(FormatError, match="interface 5"):
        pcap.read_packets(bad)


def test_detected_by_magic_not_extension(pcap_dir: Path, tmp_path: Path) -> None:
    a = tmp_path / "capture.pcapng"  # really a classic pcap
    shutil.copyfile(pcap_dir / "normal_icmp_echo.pcap", a)
    b = tmp_path / "capture.txt"  # really a pcapng
    shutil.copyfile(pcap_dir / "normal_http_google.pcapng", b)
    assert detect(str(a))[0] == "pcap"
    assert detect(str(b))[0] == "pcapng"
    assert len(pcap.read_packets(a)) == 8 and len(pcap.read_packets(b)) == 12


def test_not_a_capture(tmp_path: Path) -> None:
    p = tmp_path / "x.pcap"
    p.write_bytes(b"hello world, this is text and not a capture")
    with pytest.raises(FormatError, match="byte 0"):
        pcap.open_capture(p)


def test_truncated_record_names_its_offset(pcap_dir: Path, tmp_path: Path) -> None:
    src = (pcap_dir / "normal_icmp_echo.pcap").read_bytes()
    p = tmp_path / "cut.pcap"
    p.write_bytes(src[:-10])
    # the last record starts at 24 + 7 * (16 + 74) for this file of 74-byte frames
    lt, recs = ref_read_pcap(pcap_dir / "normal_icmp_echo.pcap")
    last_at = 24 + sum(16 + len(f) for _, f, _ in recs[:-1])
    got = []
    with pytest.raises(FormatError) as ei:
        for ch in pcap.iter_packets(p):
            got.append(ch.packets)
    assert ei.value.offset == last_at
    assert sum(len(g) for g in got) == 7  # the complete packets came first


def test_corrupt_length_names_its_offset(pcap_dir: Path, tmp_path: Path) -> None:
    src = bytearray((pcap_dir / "normal_dns_query_response.pcap").read_bytes())
    struct.pack_into("<I", src, 24 + 8, 0x7FFFFFFF)
    p = tmp_path / "bad.pcap"
    p.write_bytes(bytes(src))
    with pytest.raises(FormatError, match="byte 24") as ei:
        pcap.read_packets(p)
    assert ei.value.offset == 24


def test_small_chunks_give_the_same_packets(pcap_dir: Path) -> None:
    f = pcap_dir / "attack_arppoison.pcap"
    whole = pcap.read_packets(f)
    parts = np.concatenate([c.packets for c in pcap.iter_packets(f, max_packets=7)])
    assert parts.tobytes() == whole.tobytes()


def test_lidar_captures_are_not_claimed_as_traffic(data_dir: Path) -> None:
    lidar = data_dir / "lidar"
    for name, fmt in (("velodyne_vlp16_example.pcap", "velodyne-pcap"),
                      ("velodyne_hdl32e_short.pcap", "velodyne-pcap"),
                      ("ouster_os1_64_legacy_1024x10.pcap", "ouster-pcap")):
        if not (lidar / name).exists():
            pytest.skip("lidar captures missing")
        head = (lidar / name).read_bytes()[:4096]
        assert pcap.probe_file(str(lidar / name), head) is None
        assert detect(str(lidar / name))[0] == fmt


def test_bench_cases_run(data_dir: Path) -> None:
    cases = pcap.bench_io_cases(data_dir)
    assert {c["format"] for c in cases} == {"pcap", "pcapng"}
    for c in cases:
        assert c["run"]() == 2011


def test_pcapng_sections_of_both_byte_orders(pcap_dir: Path, tmp_path: Path) -> None:
    lt, recs = ref_read_pcap(pcap_dir / "normal_http_google.pcap")
    a, b = tmp_path / "a", tmp_path / "b"
    write_pcapng(a, recs[:5], big=False, tsresol=9)
    write_pcapng(b, recs[5:], big=True, tsresol=6)
    both = tmp_path / "two_sections.bin"
    both.write_bytes(a.read_bytes() + b.read_bytes())
    got = pcap.read_packets(both)
    want = pcap.read_packets(pcap_dir / "normal_http_google.pcap")
    assert got.tobytes() == want.tobytes()
    assert info(str(both))["sections"] == 2
