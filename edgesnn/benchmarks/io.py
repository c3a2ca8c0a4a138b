"""`edgesnn bench io`: decoding throughput per format on the real recordings.

Every case decodes one file in one pass; passes repeat until `--seconds` of work, and the table
shows items/s and, where the recording's own rate is known, the multiple of real time. Cases
come from `bench_io_cases(data_dir)` functions defined at module level in edgesnn_drivers
modules (the DVS formats are one of them); a case with an "encode" spec instead of "run" names
an encoder type, which is built here (drivers never build encoders). Reference decoders
(`aedat`, `dv-processing`, `expelliarmus`) are measured on the same files when they are
installed. `--replay` measures the live path of the demo at 1 M events/s: reader -> dvs_pool
encoder -> motion network.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pathlib
import pkgutil
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

DEFAULT_DATA = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data"


def discover_cases(data_dir: pathlib.Path) -> list[dict[str, Any]]:
    """Every `bench_io_cases(data_dir)` case of the edgesnn_drivers modules."""
    import edgesnn_drivers

    cases: list[dict[str, Any]] = []
    for mod in pkgutil.walk_packages(edgesnn_drivers.__path__, "edgesnn_drivers."):
        if mod.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        try:
            m = importlib.import_module(mod.name)
        except ImportError as e:
            print(f"bench io: skipping {mod.name}: {e}", file=sys.stderr)
            continue
        fn = getattr(m, "bench_io_cases", None)
        if not callable(fn) or getattr(fn, "__module__", mod.name) != mod.name:
            continue
        try:
            for c in fn(data_dir):
                if "run" not in c and "encode" in c:
                    c["run"] = encode_run(c["encode"])
                c.setdefault("decoder", "edgesnn")
                c.setdefault("unit", "items")
                c.setdefault("realtime_items_per_s", None)
                cases.append(c)
        except Exception as e:  # one broken module must not hide the others
            print(f"bench io: {mod.name}.bench_io_cases failed: {e}", file=sys.stderr)
    return cases


def encode_run(spec: dict[str, Any]) -> Callable[[], int]:
    """The pass of a driver's "decode + encode" case: a fresh encoder of type
    ``spec["encoder"]`` (built here, so that drivers never build encoders) encodes
    ``spec["batches"]`` and flushes; returns ``spec["items"]``."""
    from edgesnn.components import BuildContext, lookup
    from edgesnn.encoders.generic import built

    cls = lookup("encoder", spec["encoder"])
    if cls is None:
        raise ValueError(f"no encoder type {spec['encoder']!r}")
    batches = spec["batches"]

    def run() -> int:
        enc = built(cls, dict(spec.get("params", {})), BuildContext(dt_us=int(spec["dt_us"])),
                    id="bench")  # fmt: skip
        for b in batches:
            enc.encode(b)
        enc.flush()
        return int(spec["items"])

    return run


def reference_cases(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cases for the reference decoders that import, on the DVS files of `cases`."""
    out: list[dict[str, Any]] = []
    for c in cases:
        if c.get("unit") != "events" or "path" not in c:
            continue
        path, fmt = c["path"], c["format"]
        for name, make in (("aedat", _ref_aedat), ("dv-processing", _ref_dv),
                           ("expelliarmus", _ref_expelliarmus)):
            try:
                run = make(path, fmt)
            except Exception:  # not installed, or does not read this format
                run = None
            if run is not None:
                out.append({**c, "decoder": name, "run": run})
    return out


def _ref_aedat(path: str, fmt: str) -> Callable[[], int] | None:
    if fmt != "aedat4":
        return None
    import aedat

    def run() -> int:
        return sum(len(p["events"]) for p in aedat.Decoder(path) if "events" in p)

    return run


def _ref_dv(path: str, fmt: str) -> Callable[[], int] | None:
    if fmt != "aedat4":
        return None
    import dv_processing as dv

    def run() -> int:
        rec = dv.io.MonoCameraRecording(path)
        n = 0
        while rec.isRunning():
            b = rec.getNextEventBatch()
            if b is not None:
                n += b.size()
        return n

    return run


def _ref_expelliarmus(path: str, fmt: str) -> Callable[[], int] | None:
    enc = {"evt2": "evt2", "evt3": "evt3", "dat": "dat"}.get(fmt)
    if enc is None:
        return None
    from expelliarmus import Wizard

    w = Wizard(encoding=enc)

    def run() -> int:
        return len(w.read(path))

    return run


def measure(run: Callable[[], int], seconds: float) -> tuple[int, int, float]:
    """(items per pass, passes, seconds) after one warm-up pass."""
    items = int(run())
    passes, t0 = 0, time.perf_counter()
    while True:
        run()
        passes += 1
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return items, passes, dt


def replay_check(data_dir: pathlib.Path, rate_eps: float = 1e6, seconds: float = 3.0,
                 batch_us: int = 10_000, dt_us: int = 1000, queue: int = 16) -> dict[str, Any]:
    """A 1 M events/s stream (the EVT 2.0 recording slowed to that rate, looped to `seconds`
    of sensor time) through reader + dvs_pool + motion network, paced as in real time.

    Batches arrive at their sensor time; the pipeline serves them in order; a batch arriving
    when `queue` batches wait is dropped. Reports the real-time factor, worst lag and drops.
    """
    from edgesnn_drivers.dvs import open_reader, open_writer

    from edgesnn.components import BuildContext
    from edgesnn.encoders.dvs import DVSPoolEncoder

    src = open_reader(data_dir / "dvs" / "evt2_gen3_vga_sample.raw")
    ev = src.read_all()
    span = int(ev["t"][-1] - ev["t"][0]) + 1
    stretch = len(ev) / rate_eps * 1e6 / span
    base = ((ev["t"] - ev["t"][0]) * stretch).astype(np.int64)
    period = int(base[-1]) + 1
    net = None
    note = ""
    try:
        from edgesnn.core.network import Network
        from edgesnn.models.motion import build

        net = Network(build(dt_us=dt_us, grid=[16, 16]))
        net.warm_up()
    except Exception as e:  # the motion model or the core is not available
        note = f"network not measured ({type(e).__name__}: {e})"
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "stream.raw"
        with open_writer(path, "evt3", src.width, src.height, src.sensor) as w:
            loops = max(1, int(np.ceil(seconds * 1e6 / period)))
            for k in range(loops):
                part = ev.copy()
                part["t"] = base + k * period
                w.write(part)
        reader = open_reader(path)
        enc = DVSPoolEncoder("pool", DVSPoolEncoder.schema.validate({"grid": [16, 16]}, "", []),
                             BuildContext(dt_us=dt_us))
        enc.width, enc.height = reader.width, reader.height
        t_first = None
        free_at = 0.0
        busy = 0.0
        max_lag = 0.0
        waiting: list[float] = []
        drops = events = spikes = 0
        wall0 = time.perf_counter()
        for b in reader.iter_batches(batch_us):
            t_read = time.perf_counter()
            if t_first is None:
                t_first = b.t_start_us
            arrival = (b.t_end_us - t_first) / 1e6
            waiting = [f for f in waiting if f > arrival]
            if len(waiting) >= queue:
                drops += len(b)
                continue
            raster = enc.encode(b)
            if raster is not None and net is not None:
                rec = net.run(raster.ptr, raster.idx, raster.n_steps)
                spikes += int(rec.ptr[-1]) if hasattr(rec, "ptr") else 0
            cost = time.perf_counter() - t_read
            busy += cost
            start = max(arrival, free_at)
            free_at = start + cost
            waiting.append(free_at)
            max_lag = max(max_lag, free_at - arrival)
            events += len(b)
        total = time.perf_counter() - wall0
    sensor_s = loops * period / 1e6
    return {"format": "replay", "file": "evt2_gen3_vga_sample.raw@1Meps", "events": events,
            "events_per_s": events / total if total else 0.0, "sensor_s": sensor_s,
            "stream_events_per_s": events / sensor_s, "x_realtime": sensor_s / total,
            "max_lag_ms": max_lag * 1e3, "dropped": drops,
            "stages": "reader+dvs_pool" + ("+motion_direction" if net is not None else ""),
            "note": note}


def _target(spec: dict[str, float] | None, row: dict[str, Any]) -> tuple[str, bool]:
    """A case's declared target ({"items_per_s": n} or {"x_realtime": n}) and whether the
    measured row meets it; ("", True) without one."""
    if not spec:
        return "", True
    if "items_per_s" in spec:
        n = spec["items_per_s"]
        return f">= {n:g} {row['unit']}/s", row["items_per_s"] >= n
    n = spec["x_realtime"]
    return f">= {n:g}x real time", (row["x_realtime"] or 0.0) >= n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="edgesnn bench io",
                                description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--format", action="append", default=[], metavar="F",
                   help="only these formats (repeatable), e.g. --format evt3; a format also "
                   "selects its encoder rows (--format wav includes wav+cochlea)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--seconds", type=float, default=1.0, help="work per case (default 1 s)")
    p.add_argument("--data", type=pathlib.Path, default=DEFAULT_DATA,
                   help="folder of the real recordings (default ../shared/data)")
    p.add_argument("--no-reference", action="store_true", help="skip the reference decoders")
    p.add_argument("--no-replay", action="store_true", help="skip the 1 M events/s replay")
    args = p.parse_args(argv)
    if not args.data.is_dir():
        print(f"bench io: data folder {args.data} not found", file=sys.stderr)
        return 2
    cases = discover_cases(args.data)
    if args.format:
        cases = [c for c in cases
                 if any(c["format"] == f or c["format"].startswith(f + "+") for f in args.format)]
    if not args.no_reference:
        cases = cases + reference_cases(cases)
        cases.sort(key=lambda c: (c["format"], c["file"], c["decoder"] != "edgesnn"))
    if not args.json:
        print(f"{'format':<14} {'file':<40} {'decoder':<14} {'items':>9} {'unit':<7} "
              f"{'M items/s':>10} {'x realtime':>11}  target")
    for c in cases:
        try:
            items, passes, dt = measure(c["run"], args.seconds)
        except Exception as e:
            print(f"bench io: {c['format']} {c['file']} ({c['decoder']}) failed: {e}",
                  file=sys.stderr)
            continue
        rate = items * passes / dt
        rt = c.get("realtime_items_per_s")
        row = {"format": c["format"], "file": c["file"], "decoder": c["decoder"],
               "unit": c["unit"], "items": items, "items_per_s": rate,
               "x_realtime": rate / rt if rt else None}
        if c["unit"] == "events":
            row.update(events=items, events_per_s=rate)
        target, met = _target(c.get("target"), row)
        if target:
            row.update(target=target, target_met=met)
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            xr = f"{row['x_realtime']:.0f}" if row["x_realtime"] else "-"
            fname = pathlib.Path(c["file"]).name[:40]
            tgt = f"  {target} {'met' if met else 'MISSED'}" if target else ""
            print(f"{c['format'][:14]:<14} {fname:<40} {c['decoder']:<14} {items:>9} "
                  f"{c['unit']:<7} {rate / 1e6:>10.3g} {xr:>11}{tgt}", flush=True)
    if not args.no_replay and (not args.format or "replay" in args.format
                               or "evt2" in args.format):
        r = replay_check(args.data)
        if args.json:
            print(json.dumps(r), flush=True)
        else:
            print(f"\nreplay at {r['stream_events_per_s'] / 1e6:.2f} M events/s through "
                  f"{r['stages']}: {r['x_realtime']:.1f}x real time, worst lag "
                  f"{r['max_lag_ms']:.1f} ms, {r['dropped']} events dropped"
                  + (f"\n  {r['note']}" if r["note"] else ""), flush=True)
    return 0
