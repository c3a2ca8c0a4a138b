"""Flow aggregation (5-tuple, sliding windows), NSL-KDD records and the replay drivers."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path

import numpy as np
import pytest
from edgesnn_drivers.info import info
from edgesnn_drivers.network import nslkdd, pcap
from edgesnn_drivers.network.replay import PcapDriver, PcapFlowDriver
from hypothesis import given, settings
from hypothesis import strategies as st

from edgesnn.components import BuildContext
from edgesnn.encoders.generic import built
from edgesnn.errors import FormatError
from edgesnn.events import FLOW_FEATURES
from edgesnn.flows import FlowWindows, flow_table


@pytest.fixture
def synscan(data_dir: Path) -> np.ndarray:
    p = data_dir / "network" / "pcap" / "attack_synscan.pcap"
    if not p.exists():
        pytest.skip(f"{p} missing")
    return pcap.read_packets(p)


def ref_window(pk: np.ndarray, end: int, window: int) -> tuple:
    """Window features by plain loops over the packets."""
    n = byts = tcp = syn = synack = 0
    ports, hosts = set(), set()
    for r in pk:
        t = int(r["t"])
        if not end - window <= t < end:
            continue
        n += 1
        byts += int(r["length"])
        ip = int(r["ip_version"]) > 0
        if ip and int(r["proto"]) == 6:
            tcp += 1
            f = int(r["tcp_flags"])
            syn += (f & 0x12) == 0x02
            synack += (f & 0x12) == 0x12
        if ip and int(r["proto"]) in (6, 17, 132):
            ports.add(int(r["dport"]))
        if ip or int(r["arp_op"]):
            hosts.add(bytes(r["src"]))
            hosts.add(bytes(r["dst"]))
    w = window / 1e6
    return (end, n / w, byts / w, syn / tcp if tcp else 0.0, synack / tcp if tcp else 0.0,
            float(len(ports)), float(len(hosts)))


def ref_windows(pk: np.ndarray, window: int, hop: int) -> list[tuple]:
    """Every grid window with packets, plus the first empty one after each busy one."""
    t0 = int(pk["t"].min())
    last = int(pk["t"].max())
    end = t0 - t0 % hop + hop
    out = []
    busy = False
    while end - window <= last + hop:
        w = ref_window(pk, end, window)
        if w[1] > 0 or busy:
            out.append(w)
        busy = w[1] > 0
        end += hop
    return out


def as_tuples(rec: np.ndarray) -> list[tuple]:
    return [tuple(float(r[f]) if f != "t" else int(r[f]) for f in FLOW_FEATURES.names)
            for r in rec]


def test_windows_match_reference(synscan: np.ndarray) -> None:
    fw = FlowWindows(1_000_000, 250_000)
    got = np.concatenate([fw.add(synscan), fw.flush()])
    want = ref_windows(synscan, 1_000_000, 250_000)
    assert len(got) == len(want)
    np.testing.assert_allclose(np.array(as_tuples(got), float), np.array(want, float),
                               rtol=1e-6)
    # a SYN scan: nearly every TCP packet is a bare SYN, many ports, two hosts
    busy = got[got["packets_per_s"] > 100]
    assert (busy["syn_ratio"] > 0.9).all() and busy["distinct_dports"].max() > 100
    assert busy["distinct_hosts"].max() == 2


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 2010), max_size=6))
def test_windows_do_not_depend_on_chunking(cuts: list[int]) -> None:
    from conftest import DATA

    p = DATA / "network" / "pcap" / "attack_synscan.pcap"
    if not p.exists():
        return
    pk = _cached(p)
    edges = [0, *sorted(set(cuts)), len(pk)]
    fw = FlowWindows(500_000, 100_000)
    parts = [fw.add(pk[a:b]) for a, b in zip(edges[:-1], edges[1:])] + [fw.flush()]
    whole = FlowWindows(500_000, 100_000)
    ref = np.concatenate([whole.add(pk), whole.flush()])
    assert np.concatenate(parts).tobytes() == ref.tobytes()


_CACHE: dict[Path, np.ndarray] = {}


def _cached(p: Path) -> np.ndarray:
    if p not in _CACHE:
        _CACHE[p] = pcap.read_packets(p)
    return _CACHE[p]


def test_silence_costs_no_windows() -> None:
    from edgesnn_drivers.network.decode import decode_bytes

    frame = bytes(12) + b"\x08\x00" + bytes([0x45]) + bytes(19)
    pk, _ = decode_bytes([frame, frame])
    pk["t"] = [1_000_000, 3_600_000_000 + 1_000_000]  # an hour apart
    fw = FlowWindows(1_000_000, 500_000)
    got = np.concatenate([fw.add(pk), fw.flush()])
    assert len(got) == 2 * 3  # two windows per packet and one empty after each, not 7200
    assert (got["packets_per_s"] > 0).sum() == 4
    assert list(got["t"][:3]) == [1_500_000, 2_000_000, 2_500_000]


def test_flow_table_matches_reference(data_dir: Path) -> None:
    pk = pcap.read_packets(data_dir / "network" / "pcap" / "attack_arppoison.pcap")
    ft = flow_table(pk)
    ref: dict[tuple, list[int]] = {}
    for r in pk:
        if not int(r["ip_version"]):
            continue
        k = (bytes(r["src"]), bytes(r["dst"]), int(r["sport"]), int(r["dport"]),
             int(r["proto"]))
        e = ref.setdefault(k, [0, 0, 0])
        e[0] += 1
        e[1] += int(r["length"])
        e[2] += int(r["proto"]) == 6 and (int(r["tcp_flags"]) & 0x12) == 0x02
    assert len(ft) == len(ref)
    assert list(ref) == [(bytes(f["src"]), bytes(f["dst"]), int(f["sport"]), int(f["dport"]),
                          int(f["proto"])) for f in ft]
    for f, v in zip(ft, ref.values()):
        assert [int(f["packets"]), int(f["bytes"]), int(f["syn"])] == v
    assert int(ft["packets"].sum()) == 161  # 165 packets minus 4 ARP


# --- NSL-KDD ------------------------------------------------------------------------------


@pytest.fixture
def kdd(data_dir: Path) -> Path:
    p = data_dir / "network" / "nsl_kdd" / "KDDTrain+_20Percent.txt.gz"
    if not p.exists():
        pytest.skip(f"{p} missing")
    return p


def test_nslkdd_expected_counts(kdd: Path) -> None:
    rec, labels = nslkdd.read_records(kdd)
    assert len(rec) == 25_192
    assert int((rec["attack"] == 0).sum()) == 13_449 and int(rec["attack"].sum()) == 11_743
    assert len(np.unique(rec["label"])) == 22
    # categories through the dataset's own attack_types.csv (old-Mac CR line endings)
    cat_file = kdd.parent / "attack_types.csv"
    cats = dict(line.split(",") for line in cat_file.read_text().replace("\r", "\n").split()
                if "," in line)
    by_cat: dict[str, int] = {}
    for code, n in zip(*np.unique(rec["label"], return_counts=True)):
        c = cats[labels[int(code)]]
        by_cat[c] = by_cat.get(c, 0) + int(n)
    assert by_cat == {"normal": 13_449, "dos": 9_234, "probe": 2_289, "r2l": 209, "u2r": 11}
    first = rec[0]
    assert float(first["src_bytes"]) == 491 and labels[int(first["label"])] == "normal"
    assert nslkdd.PROTOCOLS[int(first["protocol_type"])] == "tcp"
    assert nslkdd.SERVICES[int(first["service"])] == "ftp_data"
    assert nslkdd.FLAGS[int(first["flag"])] == "SF" and int(first["difficulty"]) == 20
    names = [ln.split(",")[0] for ln in
             (kdd.parent / "field_names.csv").read_text().replace("\r", "\n").split()]
    assert tuple(names) == nslkdd.FEATURES


def test_nslkdd_matches_csv_reference(kdd: Path) -> None:
    import csv

    rec, labels = nslkdd.read_records(kdd)
    with gzip.open(kdd, "rt") as f:
        for i, row in enumerate(csv.reader(f)):
            if i % 997:
                continue
            r = rec[i]
            assert labels[int(r["label"])] == row[41]
            assert float(r["dst_bytes"]) == np.float32(float(row[5]))
            assert float(r["serror_rate"]) == np.float32(float(row[24]))


def test_nslkdd_info_and_probe(kdd: Path, tmp_path: Path) -> None:
    d = info(str(kdd))
    assert d["format"] == "nsl-kdd"
    assert (d["rows"], d["normal"], d["attack"], d["distinct_labels"]) == (
        25_192, 13_449, 11_743, 22)
    assert d["labels"]["neptune"] == 8_282
    plain = tmp_path / "records.dat"  # uncompressed, odd name: still recognised by content
    with gzip.open(kdd, "rb") as g:
        plain.write_bytes(b"".join(g.readline() for _ in range(50)))
    assert info(str(plain))["rows"] == 50


def test_nslkdd_bad_lines(tmp_path: Path, kdd: Path) -> None:
    with gzip.open(kdd, "rt") as g:
        good = [g.readline() for _ in range(3)]
    p = tmp_path / "bad.txt"
    p.write_text(good[0] + good[1] + "1,2,3\n")
    with pytest.raises(FormatError, match="line 3") as ei:
        nslkdd.read_records(p)
    assert ei.value.offset == len(good[0]) + len(good[1])
    cut = tmp_path / "cut.gz"
    cut.write_bytes(kdd.read_bytes()[:20_000])
    with pytest.raises(FormatError, match="compressed"):
        nslkdd.read_records(cut)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_nslkdd_lines(text: str) -> None:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write(text)
    try:
        rec, _ = nslkdd.read_records(f.name)
        assert len(rec) <= text.count("\n") + text.count("\r") + 1
    except FormatError as e:
        assert e.offset is not None
    finally:
        Path(f.name).unlink()


# --- replay drivers -----------------------------------------------------------------------


def collect(drv: object) -> list:
    async def go() -> list:
        return [b async for b in drv.batches()]  # type: ignore[attr-defined]
    return asyncio.run(go())


def test_pcap_driver_batches(data_dir: Path) -> None:
    path = data_dir / "network" / "pcap" / "attack_arppoison.pcap"
    d = built(PcapDriver, {"path": str(path), "speed": "max", "batch_us": 100_000},
              BuildContext(), "net")
    batches = collect(d)
    pk = np.concatenate([b.events for b in batches])
    assert pk.tobytes() == pcap.read_packets(path).tobytes()
    for b in batches:
        assert b.kind == "packets" and len(b) > 0
        assert (b.events["t"] >= b.t_start_us).all() and (b.events["t"] < b.t_end_us).all()
    assert [b.seq for b in batches] == list(range(len(batches)))
    assert d.status()["packets"] == 165


def test_pcap_flow_driver_matches_windows(synscan: np.ndarray, data_dir: Path) -> None:
    path = data_dir / "network" / "pcap" / "attack_synscan.pcap"
    d = built(PcapFlowDriver, {"path": str(path), "speed": "max", "window_us": 1_000_000,
                               "hop_us": 250_000}, BuildContext(), "flows")
    rec = np.concatenate([b.events for b in collect(d)])
    fw = FlowWindows(1_000_000, 250_000)
    assert rec.tobytes() == np.concatenate([fw.add(synscan), fw.flush()]).tobytes()


def test_nslkdd_driver(kdd: Path, tmp_path: Path) -> None:
    p = tmp_path / "small.txt"
    with gzip.open(kdd, "rt") as g:
        p.write_text("".join(g.readline() for _ in range(300)))
    d = built(nslkdd.NslKddDriver, {"path": str(p), "speed": "max", "batch_us": 50_000,
                                    "row_interval_us": 1000}, BuildContext(), "kdd")
    batches = collect(d)
    rec = np.concatenate([b.events for b in batches])
    assert len(rec) == 300 and (np.diff(rec["t"]) == 1000).all()
    assert all(len(b) == 50 for b in batches)
    assert batches[0].meta["labels"][0] == "normal"
