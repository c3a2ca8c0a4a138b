"""`edgesnn validate FILE...`: strict validation; exit 0 when all valid, 2 otherwise."""

from __future__ import annotations

import argparse

from edgesnn.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="check pipeline files and list every problem",
        description="Validate pipeline TOML files (or shipped pipeline names) without running "
        "them: unknown keys and types (with a suggestion), wrong types, missing inputs, cycles "
        "and shape mismatches, each with its dotted path and line. Exit 0 when every file is "
        "valid, 2 otherwise.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="pipeline files or shipped names")
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="override a value before validating (as for `run`)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgesnn.commands.run import load_with_overrides, print_problems

    bad = 0
    for f in args.files:
        try:
            cfg = load_with_overrides(f, args.set)
        except ConfigError as e:
            bad += 1
            print_problems(f, e)
            continue
        kinds = [c.kind for c in cfg.components]
        summary = ", ".join(f"{kinds.count(k)} {k}{'s' if kinds.count(k) != 1 else ''}"
                            for k in ("driver", "encoder", "network", "readout", "sink")
                            if k in kinds)
        print(f"{f}: ok (pipeline {cfg.name!r}: {summary})")
    return 2 if bad else 0
