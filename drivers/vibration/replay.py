"""Vibration recordings: `vibration_mat` and `vibration_csv` replay drivers, `edgesnn info`.

`vibration_mat` replays float vectors of a MATLAB v5 MAT-file, e.g. the CWRU bearing files,
whose variables are `X<nnn>_DE_time` / `_FE_time` / `_BA_time` column vectors at 12 kHz;
`variables` picks them by exact name or by a unique suffix (default: every numeric vector of
the most common length). `vibration_csv` replays numeric columns of a CSV file: the delimiter
(comma, semicolon, tab or spaces) is detected, a first line that is not numeric is the header,
lines starting with `#` are comments. Both give "samples" batches (float32 frames x columns)
at the configured `sample_rate_hz`, read in bounded chunks.

A CSV row with the wrong number of fields or a non-numeric value is a `FormatError` naming its
line and byte offset, unless `skip_bad_rows = true`, which drops it and counts it in `status()`.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from edgesnn_drivers.vibration.mat5 import MatFile, MatVariable

from edgesnn.components import register
from edgesnn.config.schema import Field, Schema
from edgesnn.errors import FormatError
from edgesnn.events import EventBatch
from edgesnn.replay import REPLAY_SCHEMA, ReplayDriver, regular_file

_SPLIT_WS = re.compile(rb"[ \t]+")


def _frame_us(frame: int, rate: int) -> int:
    return (frame * 1_000_000) // rate


def mat_columns(m: MatFile, wanted: list[str]) -> list[MatVariable]:
    """The vectors to replay: by exact name or unique suffix, or all of the commonest length."""
    if wanted:
        try:
            out = [m.variable(w) for w in wanted]
        except KeyError as e:
            raise FormatError(str(e.args[0]), path=m.path) from None
    else:
        vec = [v for v in m.variables if v.numeric and not v.complex and v.size > 1
               and max(v.dims) == v.size]
        if not vec:
            raise FormatError("no numeric vector variables", path=m.path)
        common = Counter(v.size for v in vec).most_common(1)[0][0]
        out = [v for v in vec if v.size == common]
    sizes = {v.size for v in out}
    if len(sizes) > 1:
        raise FormatError(f"variables {[v.name for v in out]} differ in length {sorted(sizes)}",
                          path=m.path)
    return out


class _SamplesReplay(ReplayDriver):
    batch_kind = "samples"

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self.frames_read = 0
        self._n_cols: int | None = None

    def sensor_shape(self) -> tuple[int, ...]:
        if self._n_cols is None:
            try:
                self._n_cols = len(self.column_names())
            except (OSError, FormatError):
                return ()
        return (self._n_cols,)

    def column_names(self) -> list[str]:
        raise NotImplementedError

    def check(self, inputs: list[Any]) -> list[str]:
        if not os.path.exists(self.resolve_path()):
            return []  # may be given at run time (--set); a clear error at start
        try:
            self.column_names()
        except (OSError, FormatError) as e:
            return [str(e)]
        return []

    def _blocks(self, per: int) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def iter_batches(self) -> Iterator[EventBatch]:
        rate = self.params["sample_rate_hz"]
        per = max(1, -(-rate * int(self.params["batch_us"]) // 1_000_000))
        names = self.column_names()
        meta = {"sample_rate_hz": rate, "channels": len(names), "columns": names,
                "source": self.resolve_path()}
        frame = 0
        for block in self._blocks(per):
            n = block.shape[0]
            yield EventBatch(self.id, 0, _frame_us(frame, rate), _frame_us(frame + n, rate),
                             block, "samples", 0, meta)
            frame += n
            self.frames_read += n

    def status(self) -> dict[str, Any]:
        return {"frames_read": self.frames_read}


RATE_FIELD = Field(int, min=1, max=100_000_000, doc="Samples per second (CWRU: 12000 or 48000).")


@register
class VibrationMatDriver(_SamplesReplay):
    """Replays float vectors of a MAT v5 file (CWRU bearing data) as samples."""

    type_name = "vibration_mat"
    summary = "MATLAB v5 .mat vibration replay (e.g. CWRU bearing recordings)."
    schema = REPLAY_SCHEMA | Schema(
        {
            "sample_rate_hz": RATE_FIELD,
            "variables": Field(("list", str), default=[],
                               doc='Names or unique suffixes, e.g. ["_DE_time"]; [] = all.'),
        }
    )

    def column_names(self) -> list[str]:
        return [v.name for v in mat_columns(MatFile(self.resolve_path()),
                                            self.params["variables"])]

    def _blocks(self, per: int) -> Iterator[np.ndarray]:
        m = MatFile(self.resolve_path())
        cols = mat_columns(m, self.params["variables"])
        its = [m.iter_chunks(v.name, per) for v in cols]
        for parts in zip(*its):
            yield np.stack([np.asarray(p, np.float32) for p in parts], axis=1)


def _sniff_delimiter(line: bytes) -> bytes | None:
    for d in (b",", b";", b"\t"):
        if d in line:
            return d
    return None  # whitespace


def _split(line: bytes, delim: bytes | None) -> list[bytes]:
    if delim is None:
        return _SPLIT_WS.split(line.strip())
    return [f.strip() for f in line.split(delim)]


def _numeric(fields: list[bytes]) -> bool:
    try:
        for f in fields:
            float(f)
    except ValueError:
        return False
    return bool(fields)


class CsvSamples:
    """A numeric CSV file read in blocks of rows: `names`, `blocks(n)`, `bad_rows`."""

    def __init__(self, path: str, *, skip_bad_rows: bool = False, max_line_bytes: int = 65536):
        self.path = path
        self.skip_bad_rows = skip_bad_rows
        self.max_line_bytes = max_line_bytes
        self.bad_rows = 0
        self.delim: bytes | None = b","
        self.names: list[str] = []
        self.data_offset = 0
        self.first_line = 1
        self.has_header = False
        self._read_head()

    def _lines(self, start: int = 0) -> Iterator[tuple[int, int, bytes]]:
        """(line number, byte offset, line without its end) from byte `start`."""
        regular_file(self.path)
        with open(self.path, "rb") as f:
            f.seek(start)
            off = start
            no = 0
            while True:
                raw = f.readline(self.max_line_bytes + 1)
                if not raw:
                    return
                no += 1
                if len(raw) > self.max_line_bytes and not raw.endswith(b"\n"):
                    raise FormatError(f"line {no} is longer than {self.max_line_bytes} bytes",
                                      offset=off, path=self.path)
                yield no, off, raw.rstrip(b"\r\n")
                off += len(raw)

    def _read_head(self) -> None:
        for no, off, line in self._lines():
            if not line.strip() or line.lstrip().startswith(b"#"):
                continue
            self.delim = _sniff_delimiter(line)
            fields = _split(line, self.delim)
            if _numeric(fields):
                self.names = [str(i) for i in range(len(fields))]
                self.data_offset, self.first_line = off, no
            else:
                try:
                    self.names = [f.decode("utf-8").strip().strip('"') for f in fields]
                except UnicodeDecodeError:
                    raise FormatError("header line is not UTF-8 text", offset=off,
                                      path=self.path) from None
                self.has_header = True
                self.first_line = no + 1
                with open(self.path, "rb") as f:  # offset past the line end, CR LF or LF
                    f.seek(off)
                    self.data_offset = off + len(f.readline())
            return
        raise FormatError("no data rows", offset=0, path=self.path)

    def select(self, columns: list[str]) -> list[int]:
        """Indices of the named (or numbered) columns; [] selects all."""
        if not columns:
            return list(range(len(self.names)))
        out = []
        for c in columns:
            if c in self.names:
                out.append(self.names.index(c))
            elif c.isdigit() and int(c) < len(self.names):
                out.append(int(c))
            else:
                raise FormatError(f"no column {c!r} (columns: {', '.join(self.names)})",
                                  path=self.path)
        return out

    def blocks(self, rows: int, cols: list[int] | None = None) -> Iterator[np.ndarray]:
        """float64 arrays of up to `rows` rows of the selected columns."""
        width = len(self.names)
        sel = cols if cols is not None else list(range(width))
        buf: list[list[float]] = []
        for no, off, line in self._lines(self.data_offset):
            if not line.strip() or line.lstrip().startswith(b"#"):
                continue
            fields = _split(line, self.delim)
            try:
                if len(fields) != width:
                    raise ValueError(f"{len(fields)} fields, expected {width}")
                buf.append([float(fields[i]) for i in sel])
            except ValueError as e:
                if self.skip_bad_rows:
                    self.bad_rows += 1
                    continue
                raise FormatError(f"line {no + self.first_line - 1}: {e}", offset=off,
                                  path=self.path) from None
            if len(buf) >= rows:
                yield np.array(buf, np.float64).reshape(-1, len(sel))
                buf = []
        if buf:
            yield np.array(buf, np.float64).reshape(-1, len(sel))


@register
class VibrationCsvDriver(_SamplesReplay):
    """Replays numeric columns of a CSV file as samples."""

    type_name = "vibration_csv"
    summary = "CSV vibration replay (numeric columns, optional header)."
    schema = REPLAY_SCHEMA | Schema(
        {
            "sample_rate_hz": RATE_FIELD,
            "columns": Field(("list", str), default=[],
                             doc="Header names or 0-based indices to keep; [] keeps all."),
            "skip_bad_rows": Field(bool, default=False,
                                   doc="Drop (and count) malformed rows instead of failing."),
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self.bad_rows = 0

    def column_names(self) -> list[str]:
        c = CsvSamples(self.resolve_path())
        return [c.names[i] for i in c.select(self.params["columns"])]

    def _blocks(self, per: int) -> Iterator[np.ndarray]:
        c = CsvSamples(self.resolve_path(), skip_bad_rows=self.params["skip_bad_rows"])
        cols = c.select(self.params["columns"])
        for b in c.blocks(per, cols):
            self.bad_rows = c.bad_rows
            yield b.astype(np.float32)
        self.bad_rows = c.bad_rows

    def status(self) -> dict[str, Any]:
        return {"frames_read": self.frames_read, "bad_rows": self.bad_rows}


# --- edgesnn info ------------------------------------------------------------------------------


def _probe_csv(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    text = head[: head.rfind(b"\n") + 1] if len(head) >= 4096 else head
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        return False
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith(b"#")]
    if len(lines) < 2:
        return False
    delim = _sniff_delimiter(lines[0])
    rows = [_split(ln, delim) for ln in lines]
    body = rows[1:] if not _numeric(rows[0]) else rows
    width = len(rows[0])
    return (len(body) >= 1 and all(len(r) == width and _numeric(r) for r in body)
            and width <= 1024)


def probe_file(path: str, head: bytes) -> str | None:
    """"mat" for MAT v5 files (by header), "csv" for numeric CSV text."""
    if len(head) >= 128 and head[126:128] in (b"IM", b"MI") and head.startswith(b"MATLAB"):
        return "mat"
    if head.startswith(b"MATLAB 7.3"):
        return "mat"
    if _probe_csv(head):
        return "csv"
    return None


class _Stats:
    """Streaming length, first value, RMS, min and max of one vector, over its finite values
    (NaN and ±inf are counted in `nonfinite`, so the result is always standard JSON)."""

    def __init__(self) -> None:
        self.n = 0
        self.finite = 0
        self.scale = 0.0  # largest |value| so far; ss is the sum of (value / scale)^2
        self.ss = 0.0
        self.first: float | None = None
        self.lo, self.hi = np.inf, -np.inf

    def add(self, c: np.ndarray) -> None:
        if not c.size:
            return
        c = c.astype(np.float64)
        self.n += c.size
        c = c[np.isfinite(c)]
        if not c.size:
            return
        if self.first is None:
            self.first = float(c[0])
        self.finite += c.size
        lo, hi = float(c.min()), float(c.max())
        self.lo, self.hi = min(self.lo, lo), max(self.hi, hi)
        big = max(abs(lo), abs(hi))
        if big > self.scale:  # rescale what was summed so far (no overflow near 1e308)
            self.ss *= (self.scale / big) ** 2
            self.scale = big
        if self.scale > 0:
            u = c / self.scale
            self.ss += float(np.dot(u, u))

    def result(self) -> dict[str, Any]:
        k = self.finite
        rms = self.scale * (self.ss / k) ** 0.5 if k else None
        out = {"length": self.n, "first": self.first, "rms": rms,
               "min": self.lo if k else None, "max": self.hi if k else None}
        if self.n != k:
            out["nonfinite"] = self.n - k
        return out


def info_file(path: str, fmt: str) -> dict[str, Any]:
    """Variables (MAT) or columns (CSV) with their lengths, first values and RMS."""
    if fmt == "mat":
        m = MatFile(path)
        out = []
        for v in m.variables:
            d: dict[str, Any] = {"name": v.name, "class": v.mclass, "dims": list(v.dims),
                                 "length": v.size, "compressed": v.compressed}
            if v.numeric and not v.complex:
                if v.size == 1:
                    a = m.read(v.name)
                    assert isinstance(a, np.ndarray)
                    d["value"] = a.item() if a.dtype.kind == "f" else int(a.item())
                elif v.size:
                    st = _Stats()
                    for chunk in m.iter_chunks(v.name):
                        st.add(chunk.reshape(-1))
                    d.update(st.result())
            out.append(d)
        return {"format": "mat", "header": m.header_text,
                "byte_order": "little" if m.endian == "<" else "big", "variables": out}
    c = CsvSamples(path)
    stats = [_Stats() for _ in c.names]
    rows = 0
    for b in c.blocks(65536):
        rows += b.shape[0]
        for i, st in enumerate(stats):
            st.add(b[:, i])
    return {"format": "csv", "delimiter": (c.delim or b" ").decode(), "rows": rows,
            "header": c.names if c.has_header else None,
            "variables": [{"name": n, **st.result()} for n, st in zip(c.names, stats)]}


# --- edgesnn bench io --------------------------------------------------------------------------


def bench_io_cases(data_dir: Path) -> list[dict[str, Any]]:
    """MAT v5 decoding of a CWRU recording (12 kHz drive-end accelerometer)."""
    files = sorted((Path(data_dir) / "vibration" / "cwru").glob("*Normal*.mat"))
    if not files:
        return []
    path = str(files[0])

    def run() -> int:
        m = MatFile(path)
        return sum(c.size for v in mat_columns(m, []) for c in m.iter_chunks(v.name, 12000))

    cases: list[dict[str, Any]] = [
        {"format": "mat", "file": f"vibration/cwru/{files[0].name}", "unit": "samples",
         "run": run, "realtime_items_per_s": 2 * 12000.0},
    ]
    data = np.asarray(MatFile(path).read(mat_columns(MatFile(path), ["_DE_time"])[0].name),
                      np.float32).reshape(-1, 1)

    per = 120  # 10 ms at 12 kHz
    batches = [EventBatch("bench", 0, _frame_us(i, 12000),
                          _frame_us(i + data[i:i + per].shape[0], 12000), data[i:i + per],
                          "samples", 0, {"sample_rate_hz": 12000})
               for i in range(0, data.shape[0], per)]  # fmt: skip
    # the encoder is built by edgesnn bench io (edgesnn.benchmarks.io), not by this driver
    cases.append({"format": "mat+band_energy", "file": "cwru DE, 8 bands, hop 5 ms",
                  "unit": "samples", "realtime_items_per_s": 12000.0,
                  "encode": {"encoder": "band_energy", "params": {}, "dt_us": 1000,
                             "batches": batches, "items": int(data.shape[0])}})
    return cases
