"""`edgesnn validate FILE|DIR...`: strict validation of each file and of the files as the set
one daemon would run (edgesnn.runtime.pipeset); exit 0 when all valid, 2 otherwise."""

from __future__ import annotations

import argparse

from edgesnn.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="check pipeline files and list every problem",
        description="Validate pipeline TOML files (or shipped pipeline names) without running "
        "them: unknown keys and types (with a suggestion), wrong types, missing inputs, cycles "
        "and shape mismatches, each with its dotted path and line. Several files or a folder "
        "(every *.toml in it) are also checked as the set one `edgesnn run` would run: unique "
        "pipeline names, no endpoint, port, device or folder claimed twice, one HTTP API. One "
        "line per file; exit 0 when every file is valid, 2 otherwise.",
    )
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="pipeline files, folders of them, or shipped names")
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="override a value before validating (as for `run`)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edgesnn.commands.run import load_with_overrides, print_problems
    from edgesnn.config import pipeline as pl
    from edgesnn.errors import Problem
    from edgesnn.runtime import pipeset

    # (name to print, file, why it cannot be read); each file once, in the order given
    entries: list[tuple[str, Path | None, ConfigError | None]] = []
    seen: set[Path] = set()
    for f in args.files:
        if Path(f).is_dir():
            found = pipeset.listing([], [Path(f).resolve()])
            if not found:
                entries.append((f, None, ConfigError([Problem(
                    "", "no pipeline files (*.toml) in this folder", None, f)])))
            entries += [(str(x), x, None) for x in found if x not in seen]
            seen.update(found)
            continue
        try:
            path = pl.resolve(f).resolve()
        except ConfigError as e:
            entries.append((f, None, e))
            continue
        if path not in seen:
            seen.add(path)
            entries.append((f, path, None))
    cfgs = {}
    errors: dict[str, list[Problem]] = {}
    for name, path, error in entries:
        if error is None:
            try:
                cfgs[name] = load_with_overrides(str(path), args.set)
                continue
            except ConfigError as e:
                error = e
        errors[name] = list(error.problems)
    # the valid files as one daemon's set: each problem belongs to the later of two files
    by_file = {str(Path(c.path).resolve()): n for n, c in cfgs.items() if c.path}
    for problem in pipeset.check_set(list(cfgs.values())):
        name = by_file.get(str(Path(problem.source).resolve()) if problem.source else "", "")
        errors.setdefault(name or "pipelines of one daemon", []).append(problem)
    bad = bool(errors)
    for name, _, _ in entries:
        if name in errors:
            print_problems(name, ConfigError(errors.pop(name)))
            continue
        cfg = cfgs[name]
        kinds = [c.kind for c in cfg.components]
        summary = ", ".join(f"{kinds.count(k)} {k}{'s' if kinds.count(k) != 1 else ''}"
                            for k in ("driver", "encoder", "network", "readout", "sink")
                            if k in kinds)
        print(f"{name}: ok (pipeline {cfg.name!r}: {summary})")
    for name, problems in errors.items():  # a set problem no file could be named for
        print_problems(name, ConfigError(problems))
    return 2 if bad else 0
