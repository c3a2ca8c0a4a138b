"""`edgesnn plot raster|dvs|training|confusion ... -o FILE.png`: PNG plots (edgesnn.plotting).

Needs matplotlib (`pip install 'edgesnn[plot]'`); without it every mode exits 2 saying so.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot",
        help="write PNG plots: spike rasters, DVS frames, training curves, confusion matrices",
        description="Write a PNG: the spike raster of a recording through a pipeline, an "
        "event-camera frame, training curves or confusion matrices from a JSON result. Needs "
        "matplotlib (pip install 'edgesnn[plot]'). Exit 0 on success, 2 on a usage or input "
        "error.",
    )
    modes = p.add_subparsers(dest="mode", metavar="MODE", required=True)

    r = modes.add_parser(
        "raster",
        help="spikes of a recording through a pipeline's encoder and network",
        description="Run the first --seconds of a recording (or of the pipeline's own source) "
        "through the pipeline's driver, encoder and network, as fast as possible, and plot "
        "the encoder's and the network's output spikes over sensor time.",
    )
    r.add_argument("file", nargs="?", help="recording for the pipeline's file driver "
                   "(default: the pipeline's own source)")
    r.add_argument("--pipeline", required=True, help="pipeline file or shipped name")
    r.add_argument("--network", help="network id (default: the only network)")
    r.add_argument("--driver", help="driver id to feed FILE (default: the network's driver)")
    r.add_argument("--seconds", type=float, default=2.0, help="sensor seconds to run (2)")
    r.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="pipeline overrides, as for `run`")
    r.set_defaults(plot=_raster)

    d = modes.add_parser(
        "dvs",
        help="event-camera frame: ON/OFF events of a DVS recording accumulated per pixel",
        description="Accumulate the events of a DVS recording (AEDAT 2/3.1/4, EVT 2/3, DAT, "
        "N-MNIST) over a time slice into an image: ON events orange, OFF events blue.",
    )
    d.add_argument("file", help="DVS recording")
    d.add_argument("--start", type=float, default=0.0, help="seconds after the first event (0)")
    d.add_argument("--seconds", type=float, default=0.0,
                   help="length of the slice in seconds (0: to the end)")
    d.set_defaults(plot=_dvs)

    t = modes.add_parser(
        "training",
        help="loss and accuracy per epoch from a JSON file with a `history` list",
        description="Plot loss and accuracy per epoch from the `history` list of a JSON file "
        "(a trainer's report; the last JSON line of a log also works).",
    )
    t.add_argument("file", help="JSON file")
    t.set_defaults(plot=_training)

    c = modes.add_parser(
        "confusion",
        help="confusion matrices from a JSON result (`confusion` and `labels`)",
        description="Plot every confusion matrix of a JSON result (each object with "
        "`confusion` and `labels`, e.g. the `snn` and `baseline` entries an example prints "
        "with --json), side by side.",
    )
    c.add_argument("file", help="JSON file")
    c.set_defaults(plot=_confusion)

    for m in (r, d, t, c):
        m.add_argument("-o", "--output", required=True, metavar="FILE.png", help="PNG to write")
        m.add_argument("--title", default="", help="figure title")
        m.add_argument("--dpi", type=int, default=100, help="resolution (100)")
    p.set_defaults(func=run)


class _Fail(Exception):
    """A usage or input error: printed, exit 2."""


def run(args: argparse.Namespace) -> int:
    from edgesnn.plotting import PlotUnavailable

    try:
        out = args.plot(args)
    except PlotUnavailable as e:
        print(f"edgesnn plot: {e}", file=sys.stderr)
        return 2
    except _Fail as e:
        print(f"edgesnn plot {args.mode}: {e}", file=sys.stderr)
        return 2
    print(out, flush=True)
    return 0


def _require_matplotlib() -> None:
    """Fail before any slow work when matplotlib is missing."""
    from edgesnn.plotting import _figure

    _figure(1, 1)


# ----------------------------------------------------------------------------- raster
def _raster(args: argparse.Namespace) -> Path:
    import asyncio
    import os

    from edgesnn.commands.run import load_with_overrides
    from edgesnn.errors import ConfigError
    from edgesnn.plotting import raster_png

    _require_matplotlib()
    if args.seconds <= 0:
        raise _Fail("--seconds must be positive")

    def load(extra: list[str]) -> Any:
        try:
            return load_with_overrides(args.pipeline, [*args.set, *extra])
        except ConfigError as e:
            raise _Fail(f"{args.pipeline}: invalid:\n  "
                        + "\n  ".join(map(str, e.problems))) from None
        except FileNotFoundError as e:
            raise _Fail(str(e)) from None

    cfg = load([])
    spec = cfg.by_id()
    nets = [c.id for c in cfg.components if c.kind == "network"]
    if args.network:
        if args.network not in nets:
            raise _Fail(f"no network {args.network!r}; networks: {', '.join(nets) or 'none'}")
        net_id: str | None = args.network
    elif len(nets) > 1:
        raise _Fail(f"{len(nets)} networks ({', '.join(nets)}); choose one with --network")
    else:
        net_id = nets[0] if nets else None
    if net_id is not None:
        encs = [i for i in spec[net_id].inputs if spec[i].kind == "encoder"]
        if len(encs) != 1:
            raise _Fail(f"network {net_id!r} must be fed by one encoder, not {encs or 'none'}")
        enc_id = encs[0]
    else:
        encs = [c.id for c in cfg.components if c.kind == "encoder"]
        if len(encs) != 1:
            raise _Fail(f"no network and {len(encs)} encoders; give a pipeline with a network")
        enc_id = encs[0]
    drvs = [i for i in spec[enc_id].inputs if spec[i].kind == "driver"]
    drv_id = args.driver or (drvs[0] if len(drvs) == 1 else None)
    if drv_id is None or drv_id not in drvs:
        raise _Fail(f"encoder {enc_id!r} is fed by drivers {drvs}; choose one with --driver")
    if args.file:
        if "path" not in spec[drv_id].params:
            raise _Fail(f"driver {drv_id!r} ({spec[drv_id].type}) reads no file")
        if not os.path.exists(args.file):
            raise _Fail(f"{args.file}: no such file")
        cfg = load([f"drivers.{drv_id}.path={json.dumps(os.path.abspath(args.file))}"])
    try:
        comps = cfg.build()
    except ConfigError as e:
        raise _Fail(f"{args.pipeline}: " + "; ".join(map(str, e.problems))) from None
    driver, enc = comps[drv_id], comps[enc_id]
    net = comps[net_id] if net_id else None
    if not hasattr(driver, "iter_batches"):
        raise _Fail(f"driver {drv_id!r} ({spec[drv_id].type}) has no file replay")
    used = [c for c in (driver, enc, net) if c is not None]
    enc_out, net_out = [], []

    async def lifecycle(start: bool) -> None:
        for c in used:
            await (c.start() if start else c.stop())

    asyncio.run(lifecycle(True))
    try:
        limit = int(args.seconds * 1e6)
        t_first = None

        def feed(raster: Any) -> None:
            if raster is None or raster.n_steps == 0:
                return
            enc_out.append(raster)
            if net is not None:
                net_out.append(net.process(raster))

        try:
            for batch in driver.iter_batches():
                if t_first is None:
                    t_first = batch.t_start_us
                if batch.t_start_us >= t_first + limit:
                    break
                feed(enc.encode(batch))
            feed(enc.flush())
        except (OSError, ValueError) as e:
            raise _Fail(str(e)) from None
    finally:
        asyncio.run(lifecycle(False))
    panels: dict[str, Any] = {f"encoder {enc_id}": enc_out}
    if net_id is not None:
        panels[f"network {net_id}"] = net_out
    what = os.path.basename(args.file) if args.file else f"driver {drv_id}"
    title = args.title or f"{cfg.name}: first {args.seconds:g} s of {what}"
    return raster_png(args.output, panels, title=title, dpi=args.dpi)


# ----------------------------------------------------------------------------- dvs
def _dvs(args: argparse.Namespace) -> Path:
    import numpy as np

    from edgesnn.errors import FormatError
    from edgesnn.events import DVS_EVENT
    from edgesnn.plotting import dvs_frame_png

    _require_matplotlib()
    from edgesnn_drivers.dvs.readers import open_reader

    try:
        reader = open_reader(args.file)
        parts = []
        t0 = None
        for chunk in reader.iter_chunks():
            if not len(chunk):
                continue
            if t0 is None:
                t0 = int(chunk["t"][0])
            lo = t0 + int(args.start * 1e6)
            hi = lo + int(args.seconds * 1e6) if args.seconds > 0 else None
            keep = chunk["t"] >= lo
            if hi is not None:
                keep &= chunk["t"] < hi
            parts.append(chunk[keep])
            if hi is not None and int(chunk["t"][-1]) >= hi:
                break
    except (FormatError, OSError, ValueError) as e:
        raise _Fail(str(e) if getattr(e, "path", None) else f"{args.file}: {e}") from None
    ev = np.concatenate(parts) if parts else np.zeros(0, DVS_EVENT)
    width = reader.width or (int(ev["x"].max()) + 1 if ev.size else 1)
    height = reader.height or (int(ev["y"].max()) + 1 if ev.size else 1)
    if ev.size == 0:
        raise _Fail(f"{args.file}: no events in the chosen slice")
    span = (int(ev["t"][-1]) - int(ev["t"][0])) / 1e6
    on = int(np.count_nonzero(ev["p"]))
    title = args.title or (f"{Path(args.file).name}\n{ev.size} events over {span:.3f} s: "
                           f"{on} ON (orange), {ev.size - on} OFF (blue)")
    return dvs_frame_png(args.output, ev, width, height, title=title, dpi=args.dpi)


# ----------------------------------------------------------------------------- JSON modes
def _load_json(path: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise _Fail(f"{path}: {e.strerror or e}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        lines = [ln for ln in text.splitlines() if ln.strip().startswith("{")]
        for ln in reversed(lines):  # a log whose last JSON line is the result
            try:
                return json.loads(ln)
            except json.JSONDecodeError:
                continue
    raise _Fail(f"{path}: not JSON (nor a log with a JSON line)")


def _training(args: argparse.Namespace) -> Path:
    from edgesnn.plotting import find_key, training_curve_png

    _require_matplotlib()
    doc = _load_json(args.file)
    found = [(w, m["history"]) for w, m in find_key(doc, "history")
             if isinstance(m["history"], list) and m["history"]
             and all(isinstance(r, dict) for r in m["history"])]
    if not found:
        raise _Fail(f"{args.file}: no non-empty `history` list of per-epoch objects")
    where, history = found[0]
    title = args.title or f"{Path(args.file).name}" + ("" if where == "(top)" else f" ({where})")
    try:
        return training_curve_png(args.output, history, title=title, dpi=args.dpi)
    except ValueError as e:
        raise _Fail(f"{args.file}: {e}") from None


def _confusion(args: argparse.Namespace) -> Path:
    from edgesnn.plotting import confusions_png, find_key

    _require_matplotlib()
    doc = _load_json(args.file)
    panels = {}
    for where, m in find_key(doc, "confusion"):
        conf = m["confusion"]
        labels = m.get("labels") or (doc.get("labels") if isinstance(doc, dict) else None)
        if not isinstance(labels, list):
            labels = [str(i) for i in range(len(conf))] if isinstance(conf, list) else []
        panels[where] = (conf, labels)
    if not panels:
        raise _Fail(f"{args.file}: no `confusion` matrix found")
    try:
        return confusions_png(args.output, panels, title=args.title, dpi=args.dpi)
    except ValueError as e:
        raise _Fail(f"{args.file}: {e}") from None
