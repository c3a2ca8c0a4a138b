"""`type = "dvs_file"`: replay any supported DVS recording (format detected from its content)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from edgesnn.components import register
from edgesnn.config.schema import Field, Schema
from edgesnn.errors import FormatError
from edgesnn.events import EventBatch
from edgesnn.replay import REPLAY_SCHEMA, ReplayDriver

from .formats import FORMATS
from .readers import MAX_CHUNK_EVENTS, DVSReader, detect_file, open_reader


@register
class DVSFileDriver(ReplayDriver):
    """Replays an AEDAT 2/3.1/4, EVT 2.0/3.0, DAT or N-MNIST recording, as recorded or faster."""

    type_name = "dvs_file"
    summary = ("DVS recording replay (AEDAT 2/3.1/4, EVT 2.0/3.0, DAT, N-MNIST; format from "
               "content).")
    batch_kind = "dvs"
    schema = REPLAY_SCHEMA | Schema(
        {
            "format": Field(str, default="auto", choices=("auto", *FORMATS),
                            doc='File format; "auto" detects it from the content.'),
            "sensor": Field(("list", int), default=[0, 0], length=2,
                            doc="Override [width, height]; [0, 0] uses the file's geometry "
                            "(N-MNIST files: 34x34; N-Caltech101 needs its size here)."),
            "dvs128_polarity": Field(str, default="inivation", choices=("inivation", "jaer"),
                                     doc='AEDAT 2 DVS128: ON when bit 0 is 1 ("inivation") '
                                     'or 0 ("jaer").'),
            "dvs128_x": Field(str, default="inivation", choices=("inivation", "jaer"),
                              doc='AEDAT 2 DVS128: x = X ("inivation") or 127 - X ("jaer").'),
            "davis_flip": Field(bool, default=True,
                                doc="AEDAT 2 DAVIS: flip both axes as jAER does."),
            "max_batch_events": Field(int, default=MAX_CHUNK_EVENTS, min=1,
                                      doc="Split a batch holding more events than this."),
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self._reader: DVSReader | None = None
        self.events_out = 0

    def reader(self) -> DVSReader:
        """The file reader (header parsed on first use)."""
        if self._reader is None:
            p = self.params
            path = self.require_file()
            fmt = None if p["format"] == "auto" else p["format"]
            fmt = fmt or detect_file(path)
            opts: dict[str, Any] = {"width": p["sensor"][0], "height": p["sensor"][1]}
            if fmt == "aedat2":
                opts.update(dvs128_polarity=p["dvs128_polarity"], dvs128_x=p["dvs128_x"],
                            davis_flip=p["davis_flip"])
            if fmt == "aedat4":
                opts["count_samples"] = False
            self._reader = open_reader(path, fmt, **opts)
        return self._reader

    def sensor_shape(self) -> tuple[int, ...]:
        w, h = self.params["sensor"]
        if self._reader is None and not os.path.exists(self.resolve_path()):
            return (w, h) if w and h else ()  # missing until run time: what the config says
        try:
            r = self.reader()
        except (OSError, FormatError):  # reported by check() and when the driver starts
            return (w, h) if w and h else ()
        return (r.width, r.height)

    def check(self, inputs: list[Any]) -> list[str]:
        """A recording that exists but cannot be read (damaged, a FIFO) is a problem."""
        if self._reader is None and not os.path.exists(self.resolve_path()):
            if all(self.params["sensor"]):
                return []  # a template given its file at run time (--set); an error at start
            # without the file nothing knows the sensor size: name the real cause
            return [f"no such file: {self.resolve_path()} (path = {self.params['path']!r}; "
                    "or set sensor = [width, height] to give the file at run time)"]
        try:
            self.reader()
        except (OSError, FormatError) as e:
            return [str(e)]
        return []

    def iter_batches(self) -> Iterator[EventBatch]:
        r = self.reader()
        for b in r.iter_batches(self.params["batch_us"], self.params["max_batch_events"],
                                stream=self.id):
            self.events_out += len(b)
            yield b

    def status(self) -> dict[str, Any]:
        r = self._reader
        out: dict[str, Any] = {"events": self.events_out}
        if r is not None:
            out.update(format=r.format, dropped=r.dropped, **r.counters)
        return out
