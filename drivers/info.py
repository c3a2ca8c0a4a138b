"""`edgesnn info`: detect a recording's format from its content and describe it.

Format modules contribute by defining, at module level:

    def probe_file(path: str, head: bytes) -> str | None
        # the format name when `head` (the first 4096 bytes) is this module's format, else None
    def info_file(path: str, fmt: str) -> dict
        # a streaming pass over the file: a JSON-able dict (format, sensor, counts, ranges ...)

Every module under edgesnn_drivers is asked in turn; the first that recognises the file wins.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from edgesnn.errors import FormatError

Prober = tuple[Callable[[str, bytes], str | None], Callable[[str, str], dict[str, Any]]]


def probers() -> list[Prober]:
    import edgesnn_drivers

    found: list[Prober] = []
    for mod in pkgutil.walk_packages(edgesnn_drivers.__path__, "edgesnn_drivers."):
        if mod.name.rsplit(".", 1)[-1].startswith("_") or mod.name == __name__:
            continue
        try:
            m = importlib.import_module(mod.name)
        except ImportError:
            continue
        probe = getattr(m, "probe_file", None)
        info = getattr(m, "info_file", None)
        if callable(probe) and callable(info):
            found.append((probe, info))
    return found


def detect(path: str) -> tuple[str, Callable[[str, str], dict[str, Any]]]:
    """(format name, info function) for the file at `path`; FormatError when unknown."""
    with open(path, "rb") as f:
        head = f.read(4096)
    for probe, info in probers():
        fmt = probe(path, head)
        if fmt:
            return fmt, info
    raise FormatError("unrecognised recording format", path=path, offset=0)


def info(path: str) -> dict[str, Any]:
    fmt, fn = detect(path)
    out = fn(path, fmt)
    out.setdefault("format", fmt)
    out.setdefault("file", path)
    return out
