"""The `edgesnn` command line: run, validate, subscribe, demo, and the other subcommands.

Every module in edgesnn.commands contributes one subcommand (see that package's docstring).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import pkgutil
import sys
import time

import edgesnn.commands

EPILOG = """\
examples:
  edgesnn demo                                   watch the synthetic DVS demo detect motion
  edgesnn run demo                               run a shipped pipeline (or a TOML file)
  edgesnn run my.toml --set sinks.zmq.endpoint=tcp://0.0.0.0:5556
  edgesnn validate pipelines/*.toml              check pipelines, listing every problem
  edgesnn subscribe tcp://127.0.0.1:5556         print detections as JSON lines
  edgesnn components                             list component types and their parameters
  edgesnn convert mlp.npz --calibration x.npz --out snn.npz   convert a trained ReLU MLP
  edgesnn plot dvs rec.aedat4 -o frame.png       PNG plots (raster, dvs, training, confusion)
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
    _log_options(p, top=True)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for mod in sorted(pkgutil.iter_modules(edgesnn.commands.__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        m = importlib.import_module(f"edgesnn.commands.{mod.name}")
        reg = getattr(m, "register", None)
        if callable(reg):
            reg(sub)
    _log_options_everywhere(p)
    return p


def _log_options(p: argparse.ArgumentParser, top: bool = False) -> None:
    """-v, -q and --log-format; a subcommand takes them too (`edgesnn run X --log-format
    json`), without overriding the ones given before it unless repeated there."""
    default = (lambda v: v) if top else (lambda v: argparse.SUPPRESS)
    g = p.add_argument_group("logging") if not top else p
    g.add_argument(
        "-v", "--verbose", action="count", default=default(0),
        help="debug log output (-vv also shows numba's own debug lines)",
    )
    g.add_argument("-q", "--quiet", action="store_true", default=default(False),
                   help="only warnings and errors")
    g.add_argument(
        "--log-format", choices=("text", "json"), default=default("text"),
        help="log lines on stderr: text (timestamped, default) or json (one object per line: "
        "ts, level, logger, msg)",
    )


def _log_options_everywhere(p: argparse.ArgumentParser) -> None:
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sp in action.choices.values():
                taken = {o for a in sp._actions for o in a.option_strings}
                if not taken & {"-v", "--verbose", "-q", "--quiet", "--log-format"}:
                    _log_options(sp)
                _log_options_everywhere(sp)


class JsonFormatter(logging.Formatter):
    """One JSON object per log line: ts (UTC, ISO 8601 with ms), level, logger, msg (+ exc)."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`2026-01-31T12:00:00.123Z edgesnn INFO logger: message` (UTC timestamps)."""

    def __init__(self) -> None:
        super().__init__("edgesnn %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return f"{_utc(record.created)} {super().format(record)}"


def _utc(t: float) -> str:
    ms = int(t * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{ms:03d}Z"


def setup_logging(verbose: int, quiet: bool, fmt: str = "text") -> None:
    """Log to stderr: INFO by default, DEBUG with -v, WARNING with -q; text or JSON lines."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 0 else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # Python warnings become log lines (JSON too)
    if verbose < 2:
        logging.getLogger("numba").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    from edgesnn.runtime import kernelcache

    # first of all: a subcommand's module may import kernels (numba) while the parser is built
    warning = kernelcache.configure()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    setup_logging(args.verbose, args.quiet, args.log_format)
    if warning:
        logging.getLogger("edgesnn").warning("%s", warning)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
