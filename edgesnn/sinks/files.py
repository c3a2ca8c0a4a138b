"""File and stdout sinks: one JSON object per line.

A write to a pipe, FIFO, socket or terminal blocks while its reader does not read; done on
the event loop it would freeze the whole daemon (HTTP included). Those targets are written by
a `LineWriter`: a thread of the sink's own that does the blocking writes, fed through a buffer
bounded by bytes (`backlog_bytes`). When the buffer is full a new line is dropped whole and
counted (`write_dropped`, in /status and /metrics, and a /health degraded reason); the bytes
waiting are `write_buffer_bytes`. A write error (the reader closed the pipe, a full disk) fails
the sink at its next message, as a synchronous write would. Regular files and devices such as
/dev/null are written synchronously: they never wait for a reader. A FIFO is opened
non-blocking, so one without a reader is refused at start instead of hanging it.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import json
import os
import stat
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

from edgesnn.components import Sink, register
from edgesnn.config.schema import Field, Schema

#: default bound of the bytes waiting for a slow reader
DEFAULT_BUFFER_BYTES = 1 << 20
#: seconds a stopping sink waits for its reader to take what is buffered
DRAIN_TIMEOUT_S = 2.0

BACKLOG_FIELD = Field(int, default=DEFAULT_BUFFER_BYTES, min=4096, max=1 << 30,
                     doc="Most bytes held for a pipe, FIFO or terminal that does not keep up; "
                         "lines beyond are dropped and counted (write_dropped).")


def to_json(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), default=str)


def may_block(fd: int) -> bool:
    """Whether a write to `fd` can wait for a reader (pipe, FIFO, socket, terminal)."""
    m = os.fstat(fd).st_mode
    return stat.S_ISFIFO(m) or stat.S_ISSOCK(m) or os.isatty(fd)


def fd_writer(fd: int) -> Callable[[bytes], None]:
    """A blocking write of all of `data` to `fd`."""

    def write(data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]

    return write


class LineWriter:
    """Writes lines from its own thread through a byte-bounded buffer; `put` never blocks."""

    def __init__(self, write: Callable[[bytes], None], name: str,
                 max_bytes: int = DEFAULT_BUFFER_BYTES,
                 on_exit: Callable[[], None] | None = None):
        self._write = write
        self._on_exit = on_exit  # e.g. close the descriptor: only once no write can use it
        self.max_bytes = int(max_bytes)
        self._lines: collections.deque[bytes] = collections.deque()
        self.buffered = 0  # bytes waiting
        self.dropped = 0  # lines dropped because the buffer was full
        self.written = 0  # lines written
        self.error: OSError | None = None
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"sink-writer:{name}",
                                        daemon=True)
        self._thread.start()

    def put(self, line: bytes) -> bool:
        """Queue a line (False: dropped, the buffer is full); raises the writer's error."""
        if self.error is not None:
            e = self.error
            raise OSError(e.errno, f"writing failed: {e.strerror or e}")
        with self._cond:
            if self.buffered and self.buffered + len(line) > self.max_bytes:
                self.dropped += 1
                return False
            self._lines.append(line)
            self.buffered += len(line)
            self._cond.notify()
        return True

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            if self._on_exit is not None:
                self._on_exit()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._lines and not self._closing:
                    self._cond.wait()
                if not self._lines:
                    return
                batch = []
                while self._lines and len(batch) < 256:
                    batch.append(self._lines.popleft())
            data = b"".join(batch)
            try:
                self._write(data)
            except OSError as e:
                with self._cond:
                    self.error = e
                    self.dropped += len(batch) + len(self._lines)
                    self._lines.clear()
                    self.buffered = 0
                return
            with self._cond:
                self.buffered -= len(data)
                self.written += len(batch)

    async def close(self, timeout_s: float = DRAIN_TIMEOUT_S) -> None:
        """Let the reader take what is buffered (up to `timeout_s`); the rest is dropped."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        await asyncio.to_thread(self._thread.join, timeout_s)
        if self._thread.is_alive():  # still blocked on a reader that does not read
            with self._cond:
                self.dropped += len(self._lines)
                self._lines.clear()
                self.buffered = 0

    def status(self) -> dict[str, Any]:
        return {"write_dropped": self.dropped, "write_buffer_bytes": self.buffered}


@register
class JsonlFileSink(Sink):
    """Appends detections (and optionally heartbeats) to a JSON-lines file."""

    type_name = "file"
    summary = "Append messages to a JSON-lines file."
    schema = Schema(
        {
            "path": Field(str, doc="Output file (relative paths are to the pipeline file)."),
            "heartbeats": Field(bool, default=False, doc="Also write heartbeats."),
            "fsync": Field(bool, default=False, doc="fsync after every line (durable, slower)."),
            "backlog_bytes": BACKLOG_FIELD,
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self._f: IO[str] | None = None
        self._fd: int | None = None  # a FIFO, socket or terminal, written by `_lines`
        self._lines: LineWriter | None = None
        self.written = 0

    async def start(self) -> None:
        p = self.params["path"]
        if not os.path.isabs(p):
            p = os.path.join(self.ctx.base_dir, p)
        os.makedirs(os.path.dirname(os.path.abspath(p)), exist_ok=True)
        try:
            is_fifo = stat.S_ISFIFO(os.stat(p).st_mode)
        except FileNotFoundError:
            is_fifo = False
        if is_fifo:  # non-blocking open: no reader is an error now, not a hang
            try:
                fd = os.open(p, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as e:
                if e.errno == errno.ENXIO:
                    raise OSError(e.errno, f"{p} is a FIFO with no reader") from None
                raise
            os.set_blocking(fd, True)  # the writer thread waits for the reader
            self._fd = fd
        else:
            self._f = open(p, "a", encoding="utf-8")  # noqa: SIM115 - held open for the run
            if may_block(self._f.fileno()):  # a terminal
                self._fd = os.dup(self._f.fileno())
                self._f.close()
                self._f = None
        if self._fd is not None:
            self._lines = LineWriter(fd_writer(self._fd), self.id, self.params["backlog_bytes"],
                                     on_exit=lambda fd=self._fd: os.close(fd))

    def _write(self, message: dict[str, Any]) -> None:
        line = to_json(message) + "\n"
        if self._lines is not None:
            self._lines.put(line.encode())
            return
        assert self._f is not None, "sink not started"
        self._f.write(line)
        self._f.flush()
        if self.params["fsync"]:
            os.fsync(self._f.fileno())
        self.written += 1

    async def send(self, message: dict[str, Any]) -> None:
        self._write(message)

    async def heartbeat(self, message: dict[str, Any]) -> None:
        if self.params["heartbeats"]:
            self._write(message)

    async def stop(self) -> None:
        if self._lines is not None:
            await self._lines.close()  # its thread closes the descriptor when it ends
        self._fd = None
        if self._f is not None:
            self._f.close()
            self._f = None

    def status(self) -> dict[str, Any]:
        if self._lines is not None:
            return {"written": self._lines.written, **self._lines.status()}
        return {"written": self.written, "write_dropped": 0, "write_buffer_bytes": 0}


@register
class StdoutSink(Sink):
    """Prints detections as JSON lines on standard output."""

    type_name = "stdout"
    summary = "Print messages as JSON lines on stdout."
    schema = Schema({"heartbeats": Field(bool, default=False, doc="Also print heartbeats."),
                     "backlog_bytes": BACKLOG_FIELD})

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self._lines: LineWriter | None = None

    async def start(self) -> None:
        sys.stdout.flush()  # what was printed before comes first
        try:
            write = fd_writer(sys.stdout.fileno())
        except (AttributeError, OSError, ValueError):  # a stdout without a descriptor

            def write(data: bytes) -> None:
                sys.stdout.write(data.decode())
                sys.stdout.flush()

        self._lines = LineWriter(write, self.id, self.params["backlog_bytes"])

    async def send(self, message: dict[str, Any]) -> None:
        assert self._lines is not None, "sink not started"
        self._lines.put((to_json(message) + "\n").encode())

    async def heartbeat(self, message: dict[str, Any]) -> None:
        if self.params["heartbeats"]:
            await self.send(message)

    async def stop(self) -> None:
        if self._lines is not None:
            await self._lines.close()

    def status(self) -> dict[str, Any]:
        if self._lines is None:
            return {"written": 0, "write_dropped": 0, "write_buffer_bytes": 0}
        return {"written": self._lines.written, **self._lines.status()}
