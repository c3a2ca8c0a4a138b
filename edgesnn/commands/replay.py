"""`edgesnn replay FILE --pipeline P`: run a pipeline on a recording instead of its own source."""

from __future__ import annotations

import argparse
import sys

from edgesnn.runtime import eventloop


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="run a pipeline on a recording (replacing its file driver's path)",
        description="Run PIPELINE with the path of its file-replay driver replaced by FILE, "
        "paced by the recording's timestamps (--speed realtime, the default), a multiple of "
        "real time, or as fast as possible (--speed max). Exits when the recording ends.",
    )
    p.add_argument("file", help="the recording to replay")
    p.add_argument("--pipeline", required=True, help="pipeline file or shipped name")
    p.add_argument("--driver", help="id of the driver to feed (default: the only file driver)")
    p.add_argument("--speed", default="realtime", help='"realtime", "max" or a number')
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="further overrides, as for `run`")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import os

    from edgesnn.commands.run import load_with_overrides, print_problems
    from edgesnn.errors import ConfigError
    from edgesnn.replay import ReplayDriver
    from edgesnn.runtime.daemon import run_daemon

    try:
        cfg = load_with_overrides(args.pipeline, args.set)
    except ConfigError as e:
        return print_problems(args.pipeline, e)
    file_drivers = [c.id for c in cfg.components if issubclass(c.cls, ReplayDriver)]
    target = args.driver
    if target is None:
        if len(file_drivers) != 1:
            print(f"{args.pipeline}: {len(file_drivers)} file drivers ({', '.join(file_drivers)})"
                  "; choose one with --driver", file=sys.stderr)
            return 2
        target = file_drivers[0]
    elif target not in file_drivers:
        print(f"{args.pipeline}: no file driver {target!r}; file drivers: "
              f"{', '.join(file_drivers) or 'none'}", file=sys.stderr)
        return 2
    overrides = [*args.set, f"drivers.{target}.path={json.dumps(os.path.abspath(args.file))}",
                 f"drivers.{target}.speed={args.speed}"]
    try:
        cfg = load_with_overrides(args.pipeline, overrides)
    except ConfigError as e:
        return print_problems(args.pipeline, e)
    return eventloop.run(run_daemon(cfg))
