"""Error types shared across edgesnn."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One configuration problem at a dotted path (and TOML line when known)."""

    path: str
    message: str
    line: int | None = None
    source: str | None = None

    def __str__(self) -> str:
        where = self.source or ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        prefix = f"{where}: " if where else ""
        return f"{prefix}{self.path}: {self.message}" if self.path else f"{prefix}{self.message}"


class ConfigError(Exception):
    """A pipeline, network or profile description is invalid; carries every problem at once."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems) or "invalid configuration")


class FormatError(ValueError):
    """A file or packet does not follow its format; names the byte offset where it broke."""

    def __init__(self, message: str, *, offset: int | None = None, path: str | None = None):
        self.offset = offset
        self.path = path
        where = []
        if path:
            where.append(str(path))
        if offset is not None:
            where.append(f"byte {offset}")
        super().__init__(f"{': '.join(where)}: {message}" if where else message)


class ComponentError(RuntimeError):
    """A pipeline component failed while running; names the component."""

    def __init__(self, component_id: str, message: str):
        self.component_id = component_id
        super().__init__(f"component {component_id!r}: {message}")
