"""DVS recording formats: detection from content, header parsing and sensor geometry.

Format names: "aedat2", "aedat3", "aedat4", "evt2", "evt3", "dat", "nmnist". Detection looks
at the first bytes and the file size only (never the file name): the `#!AER-DATx.y` version line
of the AEDAT family, or the `% ...` header of Prophesee RAW (`% evt 2.0`, `% evt 3.0`,
`% format EVT3;...`) and DAT (`% Data file containing ...`) files. N-MNIST files have no header
or magic, so they are recognised from their content, conservatively (see `looks_nmnist`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import IO, Any

from edgesnn.errors import FormatError

FORMATS = ("aedat2", "aedat3", "aedat4", "evt2", "evt3", "dat", "nmnist")
MAX_HEADER_BYTES = 16 << 20  # a header larger than this is not a header
MAX_SENSOR_SIDE = 1 << 16  # a sensor side (pixels) larger than this is a broken header


def header_int(text: str, what: str, lo: int = 0, hi: int = MAX_SENSOR_SIDE,
               offset: int | None = None) -> int:
    """An integer header field in [lo, hi]; FormatError naming `what` otherwise."""
    t = text.strip()
    digits = t.lstrip("+-")
    if not (digits.isascii() and digits.isdigit()) or len(t) > 20 or not lo <= int(t) <= hi:
        raise FormatError(f"{what} {t[:40]!r} is not an integer in {lo}..{hi}", offset=offset)
    return int(t)

#: AEDAT 2.0 AEChip class (lower-case substring) -> (sensor, width, height, layout)
AECHIPS: tuple[tuple[str, str, int, int, str], ...] = (
    ("davis346", "DAVIS346", 346, 260, "davis"),
    ("davis240", "DAVIS240", 240, 180, "davis"),
    ("davis640", "DAVIS640", 640, 480, "davis"),
    ("davis128", "DAVIS128", 128, 128, "davis"),
    ("dvs128", "DVS128", 128, 128, "dvs128"),
)
#: AEDAT 3.1 `#Source` device name prefix -> (width, height)
AEDAT3_SOURCES: tuple[tuple[str, int, int], ...] = (
    ("DVS128", 128, 128),
    ("DAVIS240", 240, 180),
    ("DAVIS346", 346, 260),
    ("DAVIS640", 640, 480),
    ("DAVIS128", 128, 128),
    ("DVXPLORER_LITE", 320, 240),
    ("DVXPLORER", 640, 480),
)
#: Prophesee plugin_name substring -> (sensor, width, height)
PSEE_PLUGINS: tuple[tuple[str, str, int, int], ...] = (
    ("gen41", "Prophesee Gen4.1", 1280, 720),
    ("imx636", "Sony IMX636", 1280, 720),
    ("gen4", "Prophesee Gen4", 1280, 720),
    ("gen31", "Prophesee Gen3.1 VGA", 640, 480),
    ("gen3", "Prophesee Gen3 VGA", 640, 480),
    ("genx320", "Prophesee GenX320", 320, 320),
    ("imx8", "Sony IMX636", 1280, 720),
)
#: Prophesee system_ID -> (sensor, width, height), for files without a plugin_name
PSEE_SYSTEM_IDS = {21: ("Prophesee Gen3 VGA", 640, 480), 48: ("Prophesee Gen4.1", 1280, 720)}


@dataclass
class Header:
    """What a file header says: format, where the data starts, sensor and geometry."""

    format: str
    data_offset: int
    width: int = 0
    height: int = 0
    sensor: str = "unknown"
    fields: dict[str, Any] = field(default_factory=dict)


#: N-MNIST: sensor crop, fewest records a detection looks at, overflow-record y (tonic)
NMNIST_WIDTH = NMNIST_HEIGHT = 34
NMNIST_MIN_RECORDS = 16
NMNIST_OVERFLOW_Y = 240


def looks_nmnist(head: bytes, size: int | None) -> bool:
    """Whether `head` (the first bytes of a `size`-byte file) reads as N-MNIST 5-byte records.

    The format has no header or magic, so every record of the head must be plausible: the
    file size is a multiple of 5, x and y are inside the 34x34 crop (or y is the overflow
    marker 240), the 23-bit timestamps with tonic's overflow convention never go back and do
    advance, and there are at least 16 events over at least 2 columns and 2 rows. Random bytes
    pass with a probability below 1e-14; headers of the other formats fail at their first byte.
    """
    if size is not None and (size <= 0 or size % 5):
        return False
    n = len(head) // 5 if size is None else min(len(head), size) // 5
    ovf = events = 0
    last = -1
    advanced = False
    xs: set[int] = set()
    ys: set[int] = set()
    for k in range(0, 5 * n, 5):
        x, y, b2, b3, b4 = head[k : k + 5]
        if y == NMNIST_OVERFLOW_Y:
            ovf += 1 << 13
            continue
        if x >= NMNIST_WIDTH or y >= NMNIST_HEIGHT:
            return False
        t = ovf + (((b2 & 0x7F) << 16) | (b3 << 8) | b4)
        if t < last:
            return False
        advanced = advanced or (last >= 0 and t > last)
        last = t
        events += 1
        xs.add(x)
        ys.add(y)
    return events >= NMNIST_MIN_RECORDS and advanced and len(xs) >= 2 and len(ys) >= 2


def detect(head: bytes, size: int | None = None) -> str | None:
    """Format name of a recording from its first bytes (about 4 KiB) and size, or None.

    Without `size` a headerless N-MNIST file is still recognised from `head`, but the
    multiple-of-5 size check is skipped, so callers that know the size should pass it.
    """
    if head.startswith(b"#!AER-DAT2."):
        return "aedat2"
    if head.startswith(b"#!AER-DAT3."):
        return "aedat3"
    if head.startswith(b"#!AER-DAT4.0"):
        return "aedat4"
    if head.startswith(b"% "):
        for line in head.split(b"\n")[:200]:
            if not line.startswith(b"%"):
                break
            low = line.strip().lower()
            if re.match(rb"% evt 2\.0$", low) or low.startswith(b"% format evt2"):
                return "evt2"
            if re.match(rb"% evt 3\.0$", low) or low.startswith(b"% format evt3"):
                return "evt3"
            if low.startswith(b"% data file containing"):
                return "dat"
        return None
    if looks_nmnist(head, size):
        return "nmnist"
    return None


def _read_lines(f: IO[bytes], marker: bytes, end: bytes | None) -> tuple[list[bytes], int]:
    """Header lines starting with `marker` (to `end` inclusive); returns (lines, data offset)."""
    lines: list[bytes] = []
    total = 0
    while True:
        pos = f.tell()
        c = f.read(1)
        if c != marker:
            f.seek(pos)
            return lines, pos
        line = c + f.readline(MAX_HEADER_BYTES)
        total += len(line)
        if total > MAX_HEADER_BYTES:
            raise FormatError("header too large", offset=pos)
        if not line.endswith(b"\n"):
            raise FormatError("header line not terminated", offset=pos)
        lines.append(line)
        if end is not None and line.rstrip(b"\r\n") == end:
            return lines, f.tell()


def _text(line: bytes) -> str:
    return line.rstrip(b"\r\n").decode("latin-1")


def read_header(f: IO[bytes], fmt: str, path: str | None = None) -> Header:
    """Parse the header of a `fmt` file open at byte 0; leaves `f` at the first data byte."""
    f.seek(0)
    if fmt == "aedat2":
        return _aedat2(f)
    if fmt == "aedat3":
        return _aedat3(f)
    if fmt in ("evt2", "evt3"):
        return _psee_raw(f, fmt)
    if fmt == "dat":
        return _dat(f)
    if fmt == "aedat4":
        return Header("aedat4", 0)  # parsed by the AEDAT 4 reader itself
    if fmt == "nmnist":  # headerless: the ATIS crop of N-MNIST unless the caller says otherwise
        return Header("nmnist", 0, NMNIST_WIDTH, NMNIST_HEIGHT, "ATIS (N-MNIST crop)",
                      {"record_bytes": 5})
    raise FormatError(f"unknown DVS format {fmt!r}", path=path)


def _aedat2(f: IO[bytes]) -> Header:
    lines, off = _read_lines(f, b"#", None)
    if not lines or not lines[0].startswith(b"#!AER-DAT2."):
        raise FormatError("missing #!AER-DAT2.x version line", offset=0)
    version = _text(lines[0]).split("DAT", 1)[1]
    h = Header("aedat2", off, 128, 128, "DVS128", {"version": version, "header_bytes": off})
    h.fields["line_endings"] = "CRLF" if lines[0].endswith(b"\r\n") else "LF"
    h.fields["header_lines"] = len(lines)
    layout = "dvs128"
    for raw in lines:
        s = _text(raw)
        if s.startswith("# AEChip:"):
            chip = s.split(":", 1)[1].strip()
            h.fields["aechip"] = chip
            for key, sensor, w, hh, lay in AECHIPS:
                if key in chip.lower():
                    h.sensor, h.width, h.height, layout = sensor, w, hh, lay
                    break
        elif s.startswith("# HardwareInterface:"):
            h.fields["hardware_interface"] = s.split(":", 1)[1].strip()
        elif "Creation time: System.currentTimeMillis()" in s:
            stamp = s.rsplit(" ", 1)[1].strip()
            # informative only: kept as a number when it reads as one
            if stamp.isascii() and stamp.isdigit() and len(stamp) <= 19:
                h.fields["creation_time_ms"] = int(stamp)
            else:
                h.fields["creation_time"] = stamp[:64]
    h.fields["layout"] = layout
    return h


def _aedat3(f: IO[bytes]) -> Header:
    lines, off = _read_lines(f, b"#", b"#!END-HEADER")
    version = _text(lines[0]).split("DAT", 1)[1]
    h = Header("aedat3", off, 0, 0, "unknown", {"version": version, "header_bytes": off})
    for raw in lines:
        s = _text(raw)
        m = re.match(r"#Source (-?\d{1,9}): (.+)", s)
        if m:
            dev = m.group(2).strip()
            h.fields.setdefault("sources", {})[int(m.group(1))] = dev
            if h.width == 0:
                for key, w, hh in AEDAT3_SOURCES:
                    if dev.upper().replace(" ", "_").startswith(key):
                        h.sensor, h.width, h.height = dev, w, hh
                        break
        elif s.startswith("#Start-Time:"):
            h.fields["start_time"] = s.split(":", 1)[1].strip()
    return h


def _psee_raw(f: IO[bytes], fmt: str) -> Header:
    lines, off = _read_lines(f, b"%", b"% end")
    h = Header(fmt, off)
    for raw in lines:
        s = _text(raw)[1:].strip()
        if not s or s == "end":
            continue
        key, _, value = s.partition(" ")
        h.fields[key] = value.strip()
    fmtline = h.fields.get("format", "")
    m_w = re.search(r"width=(\d+)", fmtline)
    m_h = re.search(r"height=(\d+)", fmtline)
    m_g = re.match(r"(\d+)x(\d+)", h.fields.get("geometry", ""))
    if m_w and m_h:
        h.width = header_int(m_w.group(1), "format width", 1)
        h.height = header_int(m_h.group(1), "format height", 1)
    elif m_g:
        h.width = header_int(m_g.group(1), "geometry width", 1)
        h.height = header_int(m_g.group(2), "geometry height", 1)
    plugin = h.fields.get("plugin_name", "").lower()
    for key, sensor, w, hh in PSEE_PLUGINS:
        if key in plugin:
            h.sensor = sensor
            if not h.width:
                h.width, h.height = w, hh
            break
    else:
        sid = h.fields.get("system_ID", "")
        if sid.isascii() and sid.isdigit() and len(sid) < 10 and int(sid) in PSEE_SYSTEM_IDS:
            sensor, w, hh = PSEE_SYSTEM_IDS[int(sid)]
            h.sensor = sensor
            if not h.width:
                h.width, h.height = w, hh
    if "sensor" in h.fields:
        h.sensor = h.fields["sensor"]
    if not h.width:  # unknown camera: the full 11-bit address space
        h.width = h.height = 2048
    return h


def _dat(f: IO[bytes]) -> Header:
    lines, off = _read_lines(f, b"%", None)
    h = Header("dat", off + 2)
    for raw in lines:
        s = _text(raw)[1:].strip()
        key, _, value = s.partition(" ")
        h.fields[key.lower()] = value.strip()
    tb = f.read(2)
    if len(tb) < 2:
        raise FormatError("missing DAT event type and size bytes", offset=off)
    etype, esize = tb[0], tb[1]
    h.fields["event_type"] = etype
    if esize != 8:
        raise FormatError(f"DAT event size {esize}, expected 8", offset=off + 1)
    if etype not in (0, 12, 14):
        raise FormatError(f"DAT event type {etype} not supported (0, 12, 14)", offset=off)
    desc = h.fields.get("data", "")
    if "width" in h.fields and "height" in h.fields:
        h.width = header_int(h.fields["width"], "DAT width", 1)
        h.height = header_int(h.fields["height"], "DAT height", 1)
        h.sensor = "Prophesee"
    elif "Event2d" in desc or "ATIS" in desc.upper():
        h.width, h.height, h.sensor = 304, 240, "ATIS"
    else:
        h.width = h.height = 16384
    return h
