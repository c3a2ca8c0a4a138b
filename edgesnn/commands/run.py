"""`edgesnn run PIPELINE...`: run pipelines as a daemon until their sources end or a signal."""

from __future__ import annotations

import argparse
import logging
import sys

from edgesnn.config.overrides import apply_overrides, load_with_overrides, parse_value
from edgesnn.errors import ConfigError
from edgesnn.runtime import eventloop

log = logging.getLogger("edgesnn")

#: the CLI commands load pipelines through edgesnn.config.overrides
__all__ = ["apply_overrides", "load_with_overrides", "parse_value", "register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run pipelines (TOML files, a folder of them, or shipped names such as 'demo')",
        description="Run a pipeline until its sources end or SIGINT/SIGTERM arrives. On a "
        "signal it stops reading, drains and publishes what is in flight, closes its sockets "
        "and exits 0. SIGHUP re-reads and validates the file, then reloads it (an invalid "
        "file is reported and the running pipeline kept). A failing component is named and "
        "the exit code is 1; an invalid pipeline exits 2 with every problem listed. "
        "Several files, or a folder (every *.toml in it), run in one process with one HTTP "
        "API: a failing pipeline is restarted with backoff while the others run on, and "
        "SIGHUP reloads only the files that changed, starts new ones and stops removed ones.",
    )
    p.add_argument("pipelines", nargs="+", metavar="PIPELINE",
                   help="pipeline TOML file, folder of them, or the name of a shipped pipeline")
    p.add_argument(
        "--set", action="append", default=[], metavar="PATH=VALUE",
        help="override a value, e.g. --set sinks.zmq.endpoint=tcp://127.0.0.1:6000 "
        "(VALUE is read as TOML, else as a string); repeatable; with several pipelines it "
        "applies to each",
    )
    p.add_argument("--restart-min-s", type=float, default=0.5, metavar="S",
                   help="several pipelines: first delay before restarting a failed one "
                   "(doubling on each failure; default 0.5)")
    p.add_argument("--restart-max-s", type=float, default=60.0, metavar="S",
                   help="several pipelines: longest delay between restarts (default 60)")
    # the daemon writes log lines from a thread: a blocked stderr must not stall its loop
    p.set_defaults(func=run, background_logging=True)


def print_problems(name: str, err: ConfigError) -> int:
    """Print every problem of an invalid pipeline to stderr; returns exit code 2."""
    n = len(err.problems)
    print(f"{name}: invalid ({n} problem{'s' if n != 1 else ''})", file=sys.stderr)
    for p in err.problems:
        print(f"  {p}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    names = args.pipelines
    if len(names) > 1 or Path(names[0]).is_dir():
        return run_several(args)
    from edgesnn.runtime.daemon import run_daemon

    try:
        cfg = load_with_overrides(names[0], args.set)
    except ConfigError as e:
        return print_problems(names[0], e)
    return eventloop.run(run_daemon(cfg, reload=lambda: load_with_overrides(names[0], args.set)))


def run_several(args: argparse.Namespace) -> int:
    """Several pipelines (files, folders) in one daemon (edgesnn.runtime.multi)."""
    from edgesnn.runtime import pipeset
    from edgesnn.runtime.multi import run_pipelines

    if not 0 < args.restart_min_s <= args.restart_max_s:
        print("--restart-min-s must be > 0 and <= --restart-max-s", file=sys.stderr)
        return 2
    try:
        files, folders = pipeset.expand(args.pipelines)
    except ConfigError as e:
        return print_problems("edgesnn run", e)
    paths = pipeset.listing(files, folders)
    if not paths:
        where = ", ".join(str(d) for d in folders)
        print(f"{where}: no pipeline files (*.toml)", file=sys.stderr)
        return 2
    loaded = [pipeset.load(p, args.set) for p in paths]
    code = 0
    for item in loaded:
        if item.error is not None:
            code = print_problems(str(item.path), item.error)
    if code:
        return code
    problems = pipeset.check_set([item.cfg for item in loaded if item.cfg is not None])
    if problems:
        return print_problems("pipelines of one daemon", ConfigError(problems))
    return eventloop.run(run_pipelines(files, folders, args.set, loaded,
                                     restart_min_s=args.restart_min_s,
                                     restart_max_s=args.restart_max_s))
