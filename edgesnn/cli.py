"""The `edgesnn` command line: run, validate, subscribe, demo, and the other subcommands.

Every module in edgesnn.commands contributes one subcommand (see that package's docstring).
"""

from __future__ import annotations

import argparse
import atexit
import copy
import importlib
import json
import logging
import logging.handlers
import os
import pkgutil
import queue
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


class _BackgroundHandler(logging.handlers.QueueHandler):
    """Hands log records to a writer thread through a bounded queue, so a slow or blocked
    stderr (a paused terminal, a backed-up journal) never stalls the daemon's event loop;
    records that find the queue full are dropped and counted, and the count is logged once
    there is room again."""

    def __init__(self, q: queue.Queue[logging.LogRecord], out: logging.Formatter) -> None:
        super().__init__(q)
        self.out = out  # the writer's formatter (a forked child formats with it directly)
        self.dropped = 0
        self._reported = 0

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # an in-process queue: keep exc_info for the formatter (the base class strips it
        # for pickling), fix the message now (its arguments may change after the call)
        record = copy.copy(record)
        record.msg, record.args = record.getMessage(), None
        return record

    def report_drops(self, timeout: float | None = 0.0) -> None:
        """Queue one warning with the count of lines dropped since the last one (waiting up to
        `timeout` s for room; queue.Full when there is none)."""
        n = self.dropped - self._reported
        if n > 0:
            note = logging.LogRecord("edgesnn.log", logging.WARNING, __file__, 0,
                                     f"{n} log line(s) dropped: stderr was not keeping up",
                                     None, None)  # fmt: skip
            if timeout == 0.0:
                self.queue.put_nowait(note)
            else:
                self.queue.put(note, timeout=timeout)
            self._reported = self.dropped

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.report_drops()
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1


#: log records held for the writer thread before new ones are dropped (counted)
LOG_QUEUE = 10_000
#: at exit, how long the writer may take to write what is queued (a stderr blocked for good
#: must not keep the process from ending; what is left then is lost)
EXIT_FLUSH_S = 10.0


def setup_logging(verbose: int, quiet: bool, fmt: str = "text",
                  background: bool = False) -> None:  # fmt: skip
    """Log to stderr: INFO by default, DEBUG with -v, WARNING with -q; text or JSON lines.
    background=True (the daemon) writes from a thread (`_BackgroundHandler`); everything
    queued is written before the process exits, and a forked child logs directly again."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 0 else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        if isinstance(h, _BackgroundHandler):
            _stop_listener()
    if background:
        q: queue.Queue[logging.LogRecord] = queue.Queue(LOG_QUEUE)
        listener = logging.handlers.QueueListener(q, handler)
        listener.start()
        _LISTENER[:] = [listener]
        if not _HOOKED:
            atexit.register(_stop_listener)
            os.register_at_fork(after_in_child=_direct_in_child)
            _HOOKED.append(True)
        root.addHandler(_BackgroundHandler(q, handler.formatter or TextFormatter()))
    else:
        root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # Python warnings become log lines (JSON too)
    if verbose < 2:
        logging.getLogger("numba").setLevel(logging.WARNING)


_LISTENER: list[logging.handlers.QueueListener] = []
_HOOKED: list[bool] = []


def _stop_listener() -> None:
    """Write what is queued (and the count of lines dropped) and stop the writer thread, within
    EXIT_FLUSH_S: the queue may be full, so the end marker waits for room (`QueueListener.stop`
    would raise queue.Full and leave the lines unwritten)."""
    if not _LISTENER:
        return
    listener = _LISTENER.pop()
    deadline = time.monotonic() + EXIT_FLUSH_S
    try:
        for h in logging.getLogger().handlers:
            if isinstance(h, _BackgroundHandler):
                h.report_drops(timeout=EXIT_FLUSH_S)
        listener.queue.put(listener._sentinel, timeout=max(0.0, deadline - time.monotonic()))
    except queue.Full:
        return  # stderr blocked for good: the writer thread (a daemon) ends with the process
    thread = listener._thread
    if thread is not None:
        thread.join(max(0.0, deadline - time.monotonic()))
        listener._thread = None


def _direct_in_child() -> None:
    """After a fork: the writer thread is not in the child, so log straight to stderr."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if isinstance(h, _BackgroundHandler):
            root.removeHandler(h)
            _LISTENER.clear()
            direct = logging.StreamHandler(sys.stderr)
            direct.setFormatter(h.out)
            root.addHandler(direct)


def main(argv: list[str] | None = None) -> int:
    from edgesnn.runtime import kernelcache

    # first of all: a subcommand's module may import kernels (numba) while the parser is built
    warning = kernelcache.configure()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    setup_logging(args.verbose, args.quiet, args.log_format,
                  background=getattr(args, "background_logging", False))
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
