"""File and stdout sinks: one JSON object per line."""

from __future__ import annotations

import json
import os
import sys
from typing import IO, Any

from edgesnn.components import Sink, register
from edgesnn.config.schema import Field, Schema


def to_json(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), default=str)


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
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self._f: IO[str] | None = None
        self.written = 0

    async def start(self) -> None:
        p = self.params["path"]
        if not os.path.isabs(p):
            p = os.path.join(self.ctx.base_dir, p)
        os.makedirs(os.path.dirname(os.path.abspath(p)), exist_ok=True)
        self._f = open(p, "a", encoding="utf-8")  # noqa: SIM115 - held open for the run

    def _write(self, message: dict[str, Any]) -> None:
        assert self._f is not None, "sink not started"
        self._f.write(to_json(message) + "\n")
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
        if self._f is not None:
            self._f.close()
            self._f = None

    def status(self) -> dict[str, Any]:
        return {"written": self.written}


@register
class StdoutSink(Sink):
    """Prints detections as JSON lines on standard output."""

    type_name = "stdout"
    summary = "Print messages as JSON lines on stdout."
    schema = Schema({"heartbeats": Field(bool, default=False, doc="Also print heartbeats.")})

    async def send(self, message: dict[str, Any]) -> None:
        sys.stdout.write(to_json(message) + "\n")
        sys.stdout.flush()

    async def heartbeat(self, message: dict[str, Any]) -> None:
        if self.params["heartbeats"]:
            await self.send(message)
