"""`edgesnn bench core|io|latency ...`: print benchmark tables (or JSON lines)."""

from __future__ import annotations

import argparse
import importlib


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="measure the SNN core (core), the decoders (io) or a live pipeline's "
        "event-to-subscriber latency (latency); prints a table",
        description="Benchmarks. `edgesnn bench core --help`, `edgesnn bench io --help` and "
        "`edgesnn bench latency --help` list their options. Figures are measured, never "
        "asserted; compare the ratios against the reference implementations measured in the "
        "same run.",
    )
    p.add_argument("suite", choices=["core", "io", "latency"], help="what to measure")
    p.add_argument("args", nargs=argparse.REMAINDER, help="options of the suite")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    mod = importlib.import_module(f"edgesnn.benchmarks.{args.suite}")
    return int(mod.main(args.args) or 0)
