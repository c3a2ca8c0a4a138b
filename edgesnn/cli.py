"""The `edgesnn` command line: run, validate, subscribe, demo, and the other subcommands.

Every module in edgesnn.commands contributes one subcommand (see that package's docstring).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

import edgesnn.commands

EPILOG = """\
examples:
  edgesnn demo                                   watch the synthetic DVS demo detect motion
  edgesnn run demo                               run a shipped pipeline (or a TOML file)
  edgesnn run my.toml --set sinks.zmq.endpoint=tcp://0.0.0.0:5556
  edgesnn validate pipelines/*.toml              check pipelines, listing every problem
  edgesnn subscribe tcp://127.0.0.1:5556         print detections as JSON lines
  edgesnn components                             list component types and their parameters
  edgesnn eval model.npz --pipeline P --recordings DIR --json   accuracy on labelled files
"""


def build_parser() -> argparse.ArgumentParser:
    from edgesnn import __version__

    p = argparse.ArgumentParser(
        prog="edgesnn",
        description="edgesnn: a streaming edge runtime for live event sensors. Drivers read "
        "sensors, encoders make spikes, an SNN core infers and learns, readouts detect, and "
        "sinks publish detections over ZeroMQ.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"edgesnn {__version__}")
    p.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for mod in sorted(pkgutil.iter_modules(edgesnn.commands.__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        m = importlib.import_module(f"edgesnn.commands.{mod.name}")
        reg = getattr(m, "register", None)
        if callable(reg):
            reg(sub)
    return p


def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(
        level=level, format="edgesnn %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if verbose < 2:
        logging.getLogger("numba").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    setup_logging(args.verbose, args.quiet)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
