"""`edgesnn run PIPELINE`: run a pipeline as a daemon until its sources end or a signal."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tomllib
from typing import Any

from edgesnn.errors import ConfigError, Problem

log = logging.getLogger("edgesnn")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run a pipeline (a TOML file or a shipped name such as 'demo')",
        description="Run a pipeline until its sources end or SIGINT/SIGTERM arrives. On a "
        "signal it stops reading, drains and publishes what is in flight, closes its sockets "
        "and exits 0. SIGHUP re-reads and validates the file, then reloads it (an invalid "
        "file is reported and the running pipeline kept). A failing component is named and "
        "the exit code is 1; an invalid pipeline exits 2 with every problem listed.",
    )
    p.add_argument("pipeline", help="pipeline TOML file, or the name of a shipped pipeline")
    p.add_argument(
        "--set", action="append", default=[], metavar="PATH=VALUE",
        help="override a value, e.g. --set sinks.zmq.endpoint=tcp://127.0.0.1:6000 "
        "(VALUE is read as TOML, else as a string); repeatable",
    )
    p.set_defaults(func=run)


def parse_value(text: str) -> Any:
    """A TOML value ("3", "true", "[1, 2]", '"x"'); bare words are strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> list[Problem]:
    problems = []
    for item in overrides:
        path, sep, value = item.partition("=")
        if not sep or not path.strip():
            problems.append(Problem("--set", f"expected PATH=VALUE, got {item!r}"))
            continue
        keys = path.strip().split(".")
        node = raw
        for k in keys[:-1]:
            nxt = node.setdefault(k, {})
            if not isinstance(nxt, dict):
                problems.append(Problem(path, f"{k!r} is not a table"))
                break
            node = nxt
        else:
            node[keys[-1]] = parse_value(value.strip())
    return problems


def load_with_overrides(name: str, overrides: list[str]):  # -> PipelineConfig
    """Load and validate a pipeline after applying --set overrides."""
    from edgesnn.config import pipeline as pl

    if not overrides:
        return pl.load(name)
    path = pl.resolve(name)
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return pl.loads(text, str(path))  # reports the syntax error
    problems = apply_overrides(raw, overrides)
    if problems:
        raise ConfigError(problems)
    return pl.loads_raw(raw, text, str(path))


def print_problems(name: str, err: ConfigError) -> int:
    """Print every problem of an invalid pipeline to stderr; returns exit code 2."""
    n = len(err.problems)
    print(f"{name}: invalid ({n} problem{'s' if n != 1 else ''})", file=sys.stderr)
    for p in err.problems:
        print(f"  {p}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from edgesnn.runtime.daemon import run_daemon

    try:
        cfg = load_with_overrides(args.pipeline, args.set)
    except ConfigError as e:
        return print_problems(args.pipeline, e)
    return asyncio.run(run_daemon(cfg, reload=lambda: load_with_overrides(args.pipeline, args.set)))
