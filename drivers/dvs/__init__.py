"""Event cameras (DVS): file readers, writers, replay, live UDP and eDVS serial drivers.

Formats: AEDAT 2.0 (DVS128 and DAVIS), AEDAT 3.1, AEDAT 4.0 (LZ4/ZSTD), Prophesee EVT 2.0,
EVT 3.0 and DAT, and the headerless N-MNIST / N-Caltech101 ATIS records, detected from their
content. Readers stream in bounded chunks and yield
`edgesnn.events.DVS_EVENT` arrays; see `readers` for the conventions and options.
This module also provides the `edgesnn info` hooks and the `edgesnn bench io` cases.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np

from .formats import FORMATS, detect
from .readers import DVSReader, open_reader, read_events, rebatch
from .writers import AEDAT4Writer, EVT3Writer, open_writer

__all__ = [
    "FORMATS", "DVSReader", "open_reader", "read_events", "rebatch", "open_writer",
    "AEDAT4Writer", "EVT3Writer", "probe_file", "info_file", "stream_stats", "bench_io_cases",
]


def probe_file(path: str, head: bytes) -> str | None:
    """`edgesnn info` hook: the DVS format of a file from its first bytes and size, or None."""
    try:
        size: int | None = os.path.getsize(path)
    except OSError:
        size = None
    return detect(head, size)


def stream_stats(reader: DVSReader) -> dict[str, Any]:
    """Count, first/last event, time span, x/y ranges and polarity counts in one pass."""
    n = p1 = 0
    first = last = None
    xmin = ymin = 1 << 30
    xmax = ymax = -1
    monotonic = True
    prev_t = None
    for ev in reader.iter_chunks(reuse=True):
        if not len(ev):
            continue
        t = ev["t"]
        if first is None:
            first = ev[0].tolist()
        last = ev[-1].tolist()
        if monotonic and ((prev_t is not None and t[0] < prev_t) or bool(np.any(t[1:] < t[:-1]))):
            monotonic = False
        prev_t = int(t[-1])
        n += len(ev)
        p1 += int(np.count_nonzero(ev["p"]))
        xmin, xmax = min(xmin, int(ev["x"].min())), max(xmax, int(ev["x"].max()))
        ymin, ymax = min(ymin, int(ev["y"].min())), max(ymax, int(ev["y"].max()))
    out: dict[str, Any] = {"events": n, "p1": p1, "p0": n - p1, "monotonic": monotonic}
    if n:
        out.update(t_first_us=first[0], t_last_us=last[0], duration_us=last[0] - first[0],
                   x_range=[xmin, xmax], y_range=[ymin, ymax],
                   first_event=list(first), last_event=list(last))
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, str | int | float | bool) or v is None:
        return v
    return str(v)


def info_file(path: str, fmt: str) -> dict[str, Any]:
    """`edgesnn info` hook: format, sensor, geometry and event statistics of a DVS recording."""
    r = open_reader(path, fmt)
    out: dict[str, Any] = {"format": fmt, "file": path, "sensor": r.sensor,
                           "width": r.width, "height": r.height}
    out.update(stream_stats(r))
    out["dropped"] = r.dropped
    out["counters"] = {k: v for k, v in r.counters.items() if v}
    hdr = {k: v for k, v in r.header.fields.items() if k != "streams"}
    out["header"] = _jsonable(hdr)
    if fmt == "aedat4":
        out["streams"] = _jsonable(r.header.fields["streams"])
        out["packets"] = _jsonable(r.packets)  # type: ignore[attr-defined]
        out["samples"] = dict(r.samples)  # type: ignore[attr-defined]
    if fmt == "aedat3":
        out["skipped_packets"] = _jsonable(r.skipped_packets)  # type: ignore[attr-defined]
    return out


def bench_io_cases(data_dir: pathlib.Path) -> list[dict[str, Any]]:
    """`edgesnn bench io` cases: one per DVS recording found under data_dir/dvs."""
    cases: list[dict[str, Any]] = []
    d = pathlib.Path(data_dir) / "dvs"
    if not d.is_dir():
        return cases
    for p in sorted(d.iterdir()):
        fmt = None
        try:
            with open(p, "rb") as f:
                fmt = detect(f.read(4096), os.fstat(f.fileno()).st_size)
        except OSError:
            continue
        if fmt is None:
            continue
        reader = open_reader(p, fmt)
        if fmt == "aedat4":
            reader.count_samples = False  # type: ignore[attr-defined]

        def run(r: DVSReader = reader) -> int:
            return sum(len(ev) for ev in r.iter_chunks(reuse=True))

        stats = stream_stats(reader)
        dur = stats.get("duration_us", 0)
        if not stats["events"]:
            continue
        rt = stats["events"] / (dur / 1e6) if dur else None
        cases.append({"format": fmt, "file": p.name, "unit": "events", "run": run,
                      "realtime_items_per_s": rt, "path": str(p)})
    return cases
