"""`edgesnn components [TYPE]`: the component types a pipeline can use, and their parameters."""

from __future__ import annotations

import argparse

from edgesnn.components import COMMON, KINDS, available, import_errors


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "components",
        help="list component types (or one type's parameters)",
        description="List the driver, encoder, network, readout and sink types available in "
        "pipelines; with a TYPE name, print its parameters, types, defaults and meaning.",
    )
    p.add_argument("type", nargs="?", help="a component type name, e.g. dvs_pool")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.type:
        found = [(k, c) for k in KINDS for n, c in available(k).items() if n == args.type]
        if not found:
            print(f"no component type {args.type!r}; run `edgesnn components` for the list")
            return 2
        for kind, cls in found:
            print(f"{kind} {cls.type_name}: {cls.summary or (cls.__doc__ or '').strip()}")
            rows = (COMMON.describe() if kind != "driver" else COMMON.describe()[:1])
            rows += cls.schema.describe()
            w = max(len(r[0]) for r in rows)
            for key, typ, default, doc in rows:
                print(f"  {key:<{w}}  {typ:<16} {default:<14} {doc}")
        return 0
    for kind in KINDS:
        print(f"{kind}s:")
        for name, cls in available(kind).items():
            print(f"  {name:<20} {cls.summary or (cls.__doc__ or '').strip().splitlines()[0]}")
    errs = import_errors()
    if errs:
        print("unavailable (missing packages):")
        for mod, e in errs.items():
            print(f"  {mod}: {e}")
    return 0
