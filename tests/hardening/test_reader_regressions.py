"""Damaged recordings that made readers leak exceptions: each is now a clean `FormatError` (or
read), and `edgesnn info` answers with one line and exit 2, never a traceback or a hang."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, edgesnn_cmd, subprocess_env

from edgesnn.errors import FormatError


def need(rel: str) -> Path:
    p = DATA / rel
    if not p.exists():
        pytest.skip(f"real recording {p} not found (../shared/data beside the repo)")
    return p


def info_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`edgesnn info ARGS` in a child process (exit code, stdout, stderr)."""
    return subprocess.run(edgesnn_cmd("info", *args), capture_output=True, text=True,
                          timeout=timeout, env=subprocess_env())


def info_here(*args: str) -> subprocess.CompletedProcess[str]:
    """`edgesnn info ARGS` run in this process (its argument parser and command function),
    much faster than a child; an exception escaping the command fails the test."""
    import contextlib
    import io

    from edgesnn.cli import build_parser

    ns = build_parser().parse_args(["info", *args])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = int(ns.func(ns) or 0)
    return subprocess.CompletedProcess(["edgesnn", "info", *args], code, out.getvalue(),
                                       err.getvalue())


def assert_one_line_error(r: subprocess.CompletedProcess[str], *words: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], lines[0]


# --- spike files: damaged deflated members ---------------------------------------------------


def _spike_file_from_dvs(path: Path, compressed: bool) -> None:
    from edgesnn_drivers.dvs import read_events

    ev = read_events(need("dvs/aedat2_dvs128_alex_walking_again.aedat"))[:3000]
    step = (ev["t"] - ev["t"][0]) // 1000
    key = np.unique(step * 64 + (ev["y"] // 16) * 8 + ev["x"] // 16)
    steps, chans = key // 64, (key % 64).astype(np.int32)
    ptr = np.zeros(int(steps.max()) + 2, np.int64)
    np.cumsum(np.bincount(steps, minlength=len(ptr) - 1), out=ptr[1:])
    save = np.savez_compressed if compressed else np.savez
    save(path, in_ptr=ptr, in_idx=chans, dt_us=np.array(1000, np.int64))


def test_damaged_deflated_spike_file_is_a_format_error_and_info_exits_2(tmp_path):
    from edgesnn_drivers.spikes import load_spike_file

    p = tmp_path / "spikes.npz"
    _spike_file_from_dvs(p, compressed=True)
    assert load_spike_file(p).n_spikes > 0
    with zipfile.ZipFile(p) as zf:
        info = zf.getinfo("in_idx.npy")
    data = bytearray(p.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for k in range(start + 40, start + 48):  # scramble the deflate stream of in_idx
        data[k] ^= 0x5A
    p.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="in_idx"):
        load_spike_file(p)
    assert_one_line_error(info_cli(str(p)), str(p), "in_idx")


def test_spike_file_header_claiming_a_huge_array_is_refused_unallocated(tmp_path):
    from edgesnn_drivers.spikes import load_spike_file

    p = tmp_path / "spikes.npz"
    _spike_file_from_dvs(p, compressed=False)
    data = p.read_bytes()
    i = data.index(b"{'descr'", data.index(b"in_idx.npy"))
    j = data.index(b"\n", i)  # the npy header dict, padded with spaces up to its newline
    fake = b"{'descr': '<i4', 'fortran_order': False, 'shape': (9999999999999,), }"
    assert len(fake) <= j - i
    p.write_bytes(data[:i] + fake.ljust(j - i, b" ") + data[j:])  # same length: zip intact
    with pytest.raises(FormatError, match="in_idx"):
        load_spike_file(p)


# --- AEDAT 2: the creation time header line --------------------------------------------------


@pytest.mark.parametrize("stamp", [b"yesterday", b"1695355587880x", b"9" * 40, "١٢٣".encode()])
def test_aedat2_unreadable_creation_time_is_kept_as_text_not_a_crash(tmp_path, stamp):
    from edgesnn_drivers.dvs import open_reader
    from edgesnn_drivers.info import info

    src = need("dvs/aedat2_davis346red_header_only.aedat").read_bytes()
    assert b"currentTimeMillis() 1695355587880" in src
    p = tmp_path / "davis.aedat"
    p.write_bytes(src.replace(b"1695355587880", stamp))
    d = info(str(p))
    assert "creation_time_ms" not in d["header"] and d["events"] == 0
    assert open_reader(p).read_all().size == 0  # the replay / validate path
    r = info_here(str(p), "--json")
    assert r.returncode == 0, r.stderr
    # and a readable one is still a number
    q = tmp_path / "ok.aedat"
    q.write_bytes(src)
    assert info(str(q))["header"]["creation_time_ms"] == 1695355587880


# --- huge sensor sizes: AEDAT 4 sizeX, DAT and EVT headers ----------------------------------


def _aedat4_with_size_x(dst: Path, size_x: str) -> None:
    """The real AEDAT 4 recording with its event stream's sizeX replaced (IOHeader rebuilt)."""
    from edgesnn_drivers.dvs import _flatbuf as fb

    raw = need("dvs/aedat4_davis346_aestream_davis.aedat4").read_bytes()
    (n,) = struct.unpack_from("<I", raw, 14)
    t = fb.root(raw[18 : 18 + n], b"IOHE", base=18)
    xml = t.string(2)
    old = '<attr key="sizeX" type="int">346</attr>'
    assert xml.count(old) >= 1
    xml = xml.replace(old, f'<attr key="sizeX" type="int">{size_x}</attr>')
    head = fb.io_header(t.scalar(0, "<i", 0), -1, xml)
    dst.write_bytes(raw[:14] + len(head).to_bytes(4, "little") + head
                    + raw[18 + n : t.scalar(1, "<q", -1)])


@pytest.mark.parametrize("size_x", ["99999999999999999999", "9223372036854775808", "70000"])
def test_aedat4_huge_size_x_is_a_format_error(tmp_path, size_x):
    from edgesnn_drivers.dvs import open_reader

    p = tmp_path / "big.aedat4"
    _aedat4_with_size_x(p, size_x)
    with pytest.raises(FormatError, match="sizeX|width"):
        open_reader(p).read_all()
    assert_one_line_error(info_here(str(p)), str(p))


def test_aedat4_rebuilt_header_still_reads_the_real_events(tmp_path):
    from edgesnn_drivers.dvs import read_events

    p = tmp_path / "same.aedat4"
    _aedat4_with_size_x(p, "346")
    assert len(read_events(p)) == 117_667


@pytest.mark.parametrize("line", [b"% Width 99999999999999999999999\n% Height 5\n",
                                  b"% Width 10\n% Height -7\n"])
def test_dat_huge_or_negative_geometry_is_a_format_error(tmp_path, line):
    from edgesnn_drivers.dvs import open_reader

    src = need("dvs/dat_ncars_obj_004397_td.dat").read_bytes()
    p = tmp_path / "bad.dat"
    p.write_bytes(line + src)
    with pytest.raises(FormatError, match="DAT (width|height)"):
        open_reader(p, "dat").read_all()


def test_evt3_huge_format_geometry_is_a_format_error(tmp_path):
    from edgesnn_drivers.dvs import open_reader

    src = need("dvs/evt3_gen41_hd_pedestrians.raw").read_bytes()
    p = tmp_path / "bad.raw"
    p.write_bytes(b"% format EVT3;height=720;width=9" + b"9" * 30 + b"\n" + src)
    with pytest.raises(FormatError, match="width"):
        open_reader(p, "evt3").read_all()


# --- pcapng if_tsoffset ------------------------------------------------------------------


def _pcapng_with_tsoffset(dst: Path, tsoffset: int) -> None:
    """An SHB, an IDB with if_tsoffset, and the frames of a real capture as EPBs."""
    from edgesnn_drivers.network.pcap import open_capture

    frames = []
    with open_capture(need("network/pcap/normal_http_google.pcap")) as cap:
        for ch in cap.chunks():
            for i in range(len(ch)):
                o, n = int(ch.off[i]), int(ch.caplen[i])
                frames.append((int(ch.ts_us[i]), bytes(ch.buf[o : o + n])))

    def block(btype: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        return struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)

    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))]
    opts = struct.pack("<HHq", 14, 8, tsoffset) + struct.pack("<HH", 0, 0)
    out.append(block(1, struct.pack("<HHI", 1, 0, 65535) + opts))
    for t, f in frames:
        out.append(block(6, struct.pack("<IIIII", 0, t >> 32, t & 0xFFFFFFFF, len(f), len(f)) + f))
    dst.write_bytes(b"".join(out))


def test_pcapng_huge_if_tsoffset_is_a_format_error(tmp_path):
    from edgesnn_drivers.network.pcap import read_packets

    ok = tmp_path / "ok.pcapng"
    _pcapng_with_tsoffset(ok, 3600)
    pk = read_packets(ok)
    assert len(pk) > 10 and int(pk["t"][0]) > 3600 * 1_000_000
    bad = tmp_path / "bad.pcapng"
    _pcapng_with_tsoffset(bad, 2**62)
    with pytest.raises(FormatError, match="if_tsoffset"):
        read_packets(bad)
    assert_one_line_error(info_here(str(bad)), str(bad), "if_tsoffset")


# --- Ouster metadata ------------------------------------------------------------------------

BAD_METADATA = {
    "truncated": lambda text: text[: len(text) // 2],
    "not_utf8": lambda text: "\udcff".join([text[:10], text[10:]]),
    "angles_strings": lambda text: json.dumps({**json.loads(text),
                                               "beam_altitude_angles": ["a"] * 64}),
    "angles_ragged": lambda text: json.dumps({**json.loads(text),
                                              "beam_altitude_angles": [[1, 2]] + [0.0] * 63}),
    "angles_object": lambda text: json.dumps({**json.loads(text), "beam_azimuth_angles": {}}),
    "angles_huge_int": lambda text: json.dumps({**json.loads(text),
                                                "beam_altitude_angles": [10**400] * 64}),
    "angles_nan": lambda text: json.dumps({**json.loads(text),
                                           "beam_azimuth_angles": [float("nan")] * 64}),
    "mode_number": lambda text: json.dumps({**json.loads(text), "lidar_mode": 1024}),
    "mode_zero": lambda text: json.dumps({**json.loads(text), "lidar_mode": "0x10"}),
    "deep": lambda text: "[" * 100_000 + "]" * 100_000,
}


@pytest.mark.parametrize("damage", sorted(BAD_METADATA))
def test_bad_ouster_metadata_is_a_format_error_and_info_still_describes_the_capture(
        tmp_path, damage):
    from edgesnn_drivers.lidar.ouster import load_metadata

    src = need("lidar/ouster_os1_64_legacy_1024x10.json").read_text()
    pcap = need("lidar/ouster_os1_64_legacy_1024x10.pcap")
    meta = tmp_path / "cap.json"
    meta.write_bytes(BAD_METADATA[damage](src).encode("utf-8", "surrogateescape"))
    with pytest.raises(FormatError):
        load_metadata(meta)
    (tmp_path / "cap.pcap").symlink_to(pcap)
    r = info_here(str(tmp_path / "cap.pcap"), "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    d = json.loads(r.stdout)
    assert d["format"] == "ouster-pcap" and d["metadata"].startswith("unavailable")
    assert d["data_packets"] > 0


# --- FIFOs, devices and directories ---------------------------------------------------------


def test_info_refuses_a_fifo_without_blocking(tmp_path):
    fifo = tmp_path / "rec.aedat"
    os.mkfifo(fifo)
    r = info_cli(str(fifo), "/dev/zero", str(tmp_path), timeout=60)  # a hang: TimeoutExpired
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 3, r.stderr
    assert str(fifo) in lines[0] and "FIFO" in lines[0]
    assert "/dev/zero" in lines[1] and "device" in lines[1]
    assert "directory" in lines[2]


def test_replay_drivers_refuse_a_fifo_up_front(tmp_path):
    from edgesnn_drivers.dvs.replay import DVSFileDriver

    from edgesnn.components import BuildContext

    fifo = tmp_path / "rec.aedat"
    os.mkfifo(fifo)
    done = threading.Event()

    def unblock() -> None:
        """Should a reader ever open the FIFO (and block), open its other end after a while,
        so the test fails instead of hanging; never blocks itself (O_NONBLOCK)."""
        if done.wait(5.0):
            return
        while not done.is_set():
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                return
            except OSError:
                time.sleep(0.05)

    guard = threading.Thread(target=unblock, daemon=True)
    guard.start()
    drv = DVSFileDriver("cam", {"path": str(fifo), "format": "auto", "sensor": [0, 0],
                                "dvs128_polarity": "inivation", "dvs128_x": "inivation",
                                "davis_flip": True, "max_batch_events": 1000, "speed": "max",
                                "loop": False, "batch_us": 1000},
                        BuildContext(base_dir=str(tmp_path)))
    try:
        with pytest.raises(OSError, match="FIFO, not a regular file"):
            drv.reader()
    finally:
        done.set()
        guard.join()


# --- vibration CSV with non-finite values ---------------------------------------------------


def test_vibration_csv_nan_gives_standard_json_and_finite_min_max(tmp_path):
    from edgesnn_drivers.vibration.mat5 import MatFile

    m = MatFile(need("vibration/cwru/cwru_12k_de_ball_007_0hp_B007_0.mat"))
    de = np.asarray(m.read(m.variable("_DE_time").name)).reshape(-1)[:200]
    rows = [f"{v:.6f}" for v in de]
    rows[0], rows[50], rows[51] = "nan", "inf", "-inf"
    p = tmp_path / "accel.csv"
    p.write_text("de\n" + "\n".join(rows) + "\n")
    r = info_here(str(p), "--json")
    assert r.returncode == 0, r.stderr

    def no_constants(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    d = json.loads(r.stdout, parse_constant=no_constants)
    v = d["variables"][0]
    finite = np.array([float(x) for x in rows if x not in ("nan", "inf", "-inf")])
    assert v["length"] == 200 and v["nonfinite"] == 3
    assert v["min"] == pytest.approx(finite.min()) and v["max"] == pytest.approx(finite.max())
    assert v["first"] == pytest.approx(finite[0])
    assert v["rms"] == pytest.approx(float(np.sqrt(np.mean(finite**2))))


def test_vibration_stats_do_not_overflow_near_the_float_limit(tmp_path):
    p = tmp_path / "big.csv"
    p.write_text("a\n1e300\n-1e300\n1e300\n")
    r = info_here(str(p), "--json")
    assert r.returncode == 0, r.stderr
    v = json.loads(r.stdout)["variables"][0]
    assert v["rms"] == pytest.approx(1e300)


def test_validate_reports_an_unreadable_recording_as_a_problem(tmp_path):
    from edgesnn.commands.run import load_with_overrides
    from edgesnn.errors import ConfigError

    bad = tmp_path / "big.aedat4"
    _aedat4_with_size_x(bad, "99999999999999999999")
    with pytest.raises(ConfigError, match="drivers.camera: .*sizeX"):
        load_with_overrides("dvs_motion", [f"drivers.camera.path={bad}"])
    src = need("dvs/aedat2_davis346red_header_only.aedat").read_bytes()
    odd = tmp_path / "odd.aedat"
    odd.write_bytes(src.replace(b"currentTimeMillis() 1695355587880",
                                b"currentTimeMillis() soon"))
    cfg = load_with_overrides("dvs_motion", [f"drivers.camera.path={odd}"])  # the text is kept
    assert cfg.build()["camera"].reader().header.fields["creation_time"] == "soon"


@pytest.mark.parametrize("sid", ["\u00b2".encode("latin-1"), b"9" * 40])
def test_evt2_odd_system_id_is_not_a_crash(tmp_path, sid):
    from edgesnn_drivers.dvs import open_reader

    src = need("dvs/evt2_gen3_vga_sample.raw").read_bytes()
    p = tmp_path / "odd.raw"
    p.write_bytes(src.replace(b"% system_ID 21", b"% system_ID " + sid)
                  .replace(b"% plugin_name hal_plugin_gen3_fx3", b"% plugin_name other"))
    r = open_reader(p)
    assert (r.width, r.sensor) == (2048, "unknown")  # unknown camera: the full address space


def test_spike_file_with_an_unterminated_npy_header_is_a_format_error(tmp_path):
    from edgesnn_drivers.spikes import load_spike_file

    p = tmp_path / "spikes.npz"
    _spike_file_from_dvs(p, compressed=False)
    data = p.read_bytes()
    i = data.index(b"{'descr'", data.index(b"in_idx.npy"))
    j = data.index(b"}", i)
    p.write_bytes(data[:j] + b" " + data[j + 1 :])  # numpy's header parser raised TokenError
    with pytest.raises(FormatError, match="in_idx"):
        load_spike_file(p)
