"""`edgesnn record SOURCE -o FILE`: write a live DVS source to AEDAT 4.0 or EVT 3.0.

SOURCE is any registered DVS driver type (`dvs_udp`, `edvs_serial`, `synthetic_dvs`,
`dvs_file`, ...) with its parameters given as `-p key=value` (values in TOML syntax; a bare
word is a string). Every batch is appended and flushed, so an interrupted recording keeps
what arrived; the file replays exactly with `type = "dvs_file"`. Once the source has started
(for `dvs_udp`: its socket is bound) a line `record: SOURCE started {status JSON}` goes to
stderr, so scripts know when to start sending (with `-p port=0` the status names the port).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import signal
import sys
import time
import tomllib
from collections.abc import Callable
from typing import Any

import numpy as np

from edgesnn.errors import ConfigError, Problem


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "record",
        help="record a live DVS source to AEDAT 4.0 or EVT 3.0",
        description="Record any DVS driver (e.g. dvs_udp, edvs_serial, synthetic_dvs) to a "
        "file that replays exactly. Stops after --duration seconds, --max-events events, at "
        "the end of the source, or on Ctrl-C / SIGTERM; the file is valid at every point.",
    )
    p.add_argument("source", help="driver type, e.g. dvs_udp or edvs_serial")
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                   help="driver parameter (TOML value), repeatable, e.g. -p port=3333")
    p.add_argument("-o", "--output", required=True, help="file to write")
    p.add_argument("--format", choices=("aedat4", "evt3"), default=None,
                   help="file format (default: from the extension, .raw -> evt3, else aedat4)")
    p.add_argument("--compression", default="lz4",
                   choices=("none", "lz4", "lz4_high", "zstd", "zstd_high"),
                   help="AEDAT 4.0 packet compression (default lz4)")
    p.add_argument("--duration", type=float, default=0.0,
                   help="stop after this many wall-clock seconds (0: no limit)")
    p.add_argument("--max-events", type=int, default=0, help="stop after this many events")
    p.set_defaults(func=run)


def parse_params(items: list[str]) -> dict[str, Any]:
    """`key=value` strings -> dict, values parsed as TOML (bare words stay strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError([Problem(item, "expected KEY=VALUE")])
        try:
            out[key.strip()] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = raw
    return out


def build_driver(source: str, params: dict[str, Any]) -> Any:
    """A DVS driver of type `source` with validated parameters."""
    from edgesnn.components import BuildContext, lookup

    cls = lookup("driver", source)
    if cls is None:
        raise ConfigError([Problem("source", f"unknown driver type {source!r}")])
    if getattr(cls, "batch_kind", "dvs") != "dvs":
        raise ConfigError([Problem("source", f"{source!r} is not a DVS driver")])
    problems: list[Problem] = []
    full = cls.schema.validate(params, source, problems)
    if problems:
        raise ConfigError(problems)
    return cls("record", full, BuildContext(pipeline="record"))


class TimeOrder:
    """Makes a live stream's times non-decreasing for formats that need it (EVT 3.0).

    Sensors and UDP senders may deliver a batch unsorted or a little behind the previous one;
    a batch is sorted (stable) and an event earlier than the last one written gets that time.
    `fixed` counts the events whose time was raised; nothing is dropped."""

    def __init__(self) -> None:
        self.last = np.iinfo(np.int64).min
        self.fixed = 0

    def __call__(self, ev: np.ndarray) -> np.ndarray:
        if not len(ev):
            return ev
        t = ev["t"]
        if np.any(t[1:] < t[:-1]) or int(t[0]) < self.last:
            ev = ev[np.argsort(t, kind="stable")]
            behind = ev["t"] < self.last
            n = int(behind.sum())
            if n:
                ev = ev.copy()
                ev["t"][behind] = self.last
                self.fixed += n
        self.last = int(ev["t"][-1])
        return ev


async def record(driver: Any, writer: Any, duration_s: float = 0.0, max_events: int = 0,
                 stop: asyncio.Event | None = None,
                 on_started: Callable[[Any], None] | None = None,
                 order: Callable[[np.ndarray], np.ndarray] | None = None) -> int:
    """Pump batches from `driver` into `writer` until a limit, the end, or `stop`; events.

    `on_started(driver)` is called once the driver has started (e.g. its socket is bound);
    `order` (e.g. a TimeOrder) adjusts each batch before it is written.
    """
    n = 0
    stop = stop or asyncio.Event()
    await driver.start()
    if on_started is not None:
        on_started(driver)
    t_end = time.monotonic() + duration_s if duration_s > 0 else None
    it = driver.batches().__aiter__()
    try:
        while not stop.is_set():
            timeout = None if t_end is None else max(0.0, t_end - time.monotonic())
            nxt = asyncio.ensure_future(it.__anext__())
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({nxt, stopper}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if nxt not in done:
                nxt.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await nxt
                break
            try:
                batch = nxt.result()
            except StopAsyncIteration:
                break
            ev = batch.events
            if max_events and n + len(ev) > max_events:
                ev = ev[: max_events - n]
            if order is not None:
                ev = order(ev)
            writer.write(ev)
            n += len(ev)
            if max_events and n >= max_events:
                break
    finally:
        with contextlib.suppress(Exception):
            await it.aclose()
        await driver.stop()
    return n


def _announce(source: str, driver: Any) -> None:
    """Print the readiness line once the source is live (with e.g. the bound UDP port)."""
    status = driver.status() if hasattr(driver, "status") else {}
    print(f"record: {source} started {json.dumps(status, default=str)}", file=sys.stderr,
          flush=True)


def _compression_missing(compression: str) -> str | None:
    """A one-line error when the compressor a --compression needs is not installed."""
    from edgesnn.components import install_hint

    module = {"lz4": "lz4.frame", "zstd": "zstandard"}.get(compression.split("_")[0])
    if module is None:
        return None
    try:
        importlib.import_module(module)
    except ImportError as e:
        return (f"--compression {compression} needs {module.split('.')[0]}: {install_hint(e)} "
                "(or --compression none)")
    return None


def run(args: argparse.Namespace) -> int:
    from edgesnn_drivers.dvs.writers import open_writer

    from edgesnn.components import failure_hint

    try:
        driver = build_driver(args.source, parse_params(args.param))
    except ConfigError as e:
        for p in e.problems:
            print(f"record: {p}", file=sys.stderr)
        return 2
    fmt = args.format or ("evt3" if args.output.lower().endswith(".raw") else "aedat4")
    shape = driver.sensor_shape()
    if len(shape) < 2:
        print(f"record: {args.source} does not report a sensor size", file=sys.stderr)
        return 2
    w, h = int(shape[0]), int(shape[1])
    opts = {"compression": args.compression} if fmt == "aedat4" else {}
    if fmt == "aedat4" and (missing := _compression_missing(args.compression)):
        print(f"record: {missing}", file=sys.stderr)
        return 2
    try:
        writer = open_writer(args.output, fmt, w, h, sensor=args.source, **opts)
    except (OSError, ValueError) as e:
        print(f"record: cannot write {args.output}: {e}", file=sys.stderr)
        return 2
    # EVT 3.0 stores time deltas: a live source's late or unsorted events are put in order
    order = TimeOrder() if fmt == "evt3" else None

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        return await record(driver, writer, args.duration, args.max_events, stop,
                            on_started=lambda d: _announce(args.source, d), order=order)

    try:
        n = asyncio.run(main())
    except Exception as e:  # a source that fails (port in use, device gone): one line
        print(f"record: {args.source} failed: {e}{failure_hint(e)}; the file keeps what "
              f"arrived before", file=sys.stderr)
        return 1
    finally:
        writer.close()
    print(f"record: {n} events from {args.source} ({w}x{h}) -> {args.output} ({fmt})",
          file=sys.stderr)
    if order is not None and order.fixed:
        print(f"record: {order.fixed} late events were given the time of the event before "
              "them (EVT 3.0 needs non-decreasing times)", file=sys.stderr)
    return 0
