"""`edgesnn info FILE [--json]`: an ffprobe for sensor recordings.

The format is detected from the content by the `probe_file` hooks of the driver modules (see
edgesnn_drivers.info); the matching `info_file` hook reads the file in one streaming pass.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from edgesnn.errors import FormatError

_ORDER = ("file", "format", "sensor", "width", "height", "events", "t_first_us", "t_last_us",
          "duration_us", "x_range", "y_range", "p1", "p0", "monotonic", "dropped")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="describe a sensor recording (format, sensor, counts, ranges)",
        description="Detect the format of each recording from its content and describe it: "
        "for DVS files the sensor and resolution, event count, first and last timestamps, x/y "
        "ranges and polarity counts, read in one streaming pass. Exit 0 when every file was "
        "understood, 2 otherwise.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="recordings to describe")
    p.add_argument("--json", action="store_true", help="one JSON object per file and line")
    p.set_defaults(func=run)


def _fmt(v: Any) -> str:
    if isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) for x in v):
        return f"{v[0]}..{v[1]}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}".replace(",", " ")
    if isinstance(v, dict | list):
        return json.dumps(v)
    return str(v)


def describe(d: dict[str, Any]) -> str:
    """Human-readable `key: value` lines of an info dict (main keys first)."""
    keys = [k for k in _ORDER if k in d] + sorted(k for k in d if k not in _ORDER)
    width = max(len(k) for k in keys)
    return "\n".join(f"{k:<{width}}  {_fmt(d[k])}" for k in keys)


def finite_json(v: Any) -> Any:
    """v with NaN and infinities replaced by None, so `--json` is standard JSON."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: finite_json(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [finite_json(x) for x in v]
    return v


def run(args: argparse.Namespace) -> int:
    from edgesnn_drivers.info import info

    from edgesnn.replay import regular_file

    status = 0
    for i, path in enumerate(args.files):
        try:
            regular_file(path)
            d = info(path)
        except (FormatError, OSError) as e:
            if isinstance(e, FormatError) and e.path:
                msg = str(e)
            elif isinstance(e, OSError) and e.strerror:
                msg = f"{path}: {e.strerror}"
            elif isinstance(e, OSError):
                msg = str(e)
            else:
                msg = f"{path}: {e}"
            print(msg, file=sys.stderr)
            status = 2
            continue
        if args.json:
            print(json.dumps(finite_json(d), allow_nan=False), flush=True)
        else:
            if i:
                print()
            print(describe(d), flush=True)
    return status
