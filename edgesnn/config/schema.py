"""A small declarative schema for TOML tables.

Every component declares its parameters as a `Schema` of `Field`s. Validation is strict (unknown
keys are errors with a "did you mean"), reports every problem at once with its dotted path, and
fills in defaults, so components receive a complete, typed parameter dict.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edgesnn.errors import Problem


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' (did you mean "x"?)' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


_TYPE_NAMES = {int: "integer", float: "number", bool: "boolean", str: "string", dict: "table"}


def _type_name(t: Any) -> str:
    if isinstance(t, tuple) and t and t[0] == "list":
        return f"list of {_type_name(t[1])}s"
    if isinstance(t, Schema):
        return "table"
    if t is Any:
        return "any"
    return _TYPE_NAMES.get(t, getattr(t, "__name__", str(t)))


def _check_scalar(value: Any, t: Any) -> bool:
    if t is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if t is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if t is Any:
        return True
    return isinstance(value, t)


@dataclass
class Field:
    """One parameter: its type, default (REQUIRED when none), and constraints.

    `type` is int, float, bool, str, dict, Any, a nested `Schema`, or ("list", T) for a list
    of T (T may be a Schema for an array of tables).
    """

    type: Any
    default: Any = REQUIRED
    doc: str = ""
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    length: int | None = None  # exact length for lists
    check: Callable[[Any], str | None] | None = None  # extra rule: returns a message or None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass
class Schema:
    """An ordered set of fields for one TOML table."""

    fields: dict[str, Field] = field(default_factory=dict)
    doc: str = ""
    allow_extra: bool = False

    def __or__(self, other: Schema) -> Schema:
        return Schema({**self.fields, **other.fields}, self.doc or other.doc, self.allow_extra)

    def validate(self, data: Any, path: str, problems: list[Problem]) -> dict[str, Any]:
        """Check `data` against the schema, append problems, return it with defaults filled."""
        if not isinstance(data, Mapping):
            problems.append(Problem(path, f"expected a table, got {type(data).__name__}"))
            return {}
        out: dict[str, Any] = {}
        for key, value in data.items():
            sub = f"{path}.{key}" if path else key
            f = self.fields.get(key)
            if f is None:
                if self.allow_extra:
                    out[key] = value
                    continue
                problems.append(
                    Problem(sub, f'unknown key "{key}"' + did_you_mean(key, self.fields))
                )
                continue
            out[key] = self._validate_value(value, f, sub, problems)
        for key, f in self.fields.items():
            if key in out:
                continue
            if f.required:
                sub = f"{path}.{key}" if path else key
                problems.append(Problem(sub, f"missing required key ({_type_name(f.type)})"))
            else:
                out[key] = _copy_default(f.default)
        return out

    def _validate_value(self, value: Any, f: Field, path: str, problems: list[Problem]) -> Any:
        t = f.type
        if isinstance(t, Schema):
            return t.validate(value, path, problems)
        if isinstance(t, tuple) and t and t[0] == "list":
            if not isinstance(value, list):
                problems.append(
                    Problem(path, f"expected {_type_name(t)}, got {type(value).__name__}")
                )
                return value
            if f.length is not None and len(value) != f.length:
                problems.append(Problem(path, f"expected {f.length} items, got {len(value)}"))
            elem = t[1]
            result = []
            n_before = len(problems)
            for i, v in enumerate(value):
                if isinstance(elem, Schema):
                    result.append(elem.validate(v, f"{path}[{i}]", problems))
                elif not _check_scalar(v, elem):
                    problems.append(
                        Problem(
                            f"{path}[{i}]",
                            f"expected {_type_name(elem)}, got {type(v).__name__} {v!r}",
                        )
                    )
                else:
                    result.append(float(v) if elem is float else v)
                    self._bounds(v, f, f"{path}[{i}]", problems)
            if len(problems) == n_before:
                self._extra(result, f, path, problems)
            return result
        if not _check_scalar(value, t):
            problems.append(
                Problem(path, f"expected {_type_name(t)}, got {type(value).__name__} {value!r}")
            )
            return value
        if f.choices is not None and value not in f.choices:
            opts = ", ".join(repr(c) for c in f.choices)
            hint = did_you_mean(value, map(str, f.choices)) if isinstance(value, str) else ""
            problems.append(Problem(path, f"{value!r} is not one of {opts}{hint}"))
        self._bounds(value, f, path, problems)
        self._extra(value, f, path, problems)
        return float(value) if t is float else value

    @staticmethod
    def _bounds(value: Any, f: Field, path: str, problems: list[Problem]) -> None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return
        if f.min is not None and value < f.min:
            problems.append(Problem(path, f"{value} is below the minimum {f.min}"))
        if f.max is not None and value > f.max:
            problems.append(Problem(path, f"{value} is above the maximum {f.max}"))

    @staticmethod
    def _extra(value: Any, f: Field, path: str, problems: list[Problem]) -> None:
        if f.check is not None:
            msg = f.check(value)
            if msg:
                problems.append(Problem(path, msg))

    def describe(self) -> list[tuple[str, str, str, str]]:
        """(key, type, default, doc) rows for docs and `--help` output."""
        rows = []
        for k, f in self.fields.items():
            d = "required" if f.required else repr(f.default)
            doc = f.doc
            if f.choices:
                doc = f"{doc} One of {', '.join(map(repr, f.choices))}.".strip()
            rows.append((k, _type_name(f.type), d, doc))
        return rows


def non_finite(data: Any, path: str = "") -> list[Problem]:
    """A problem for every nan or inf number anywhere in `data` (TOML allows them; nothing
    here has a use for them, and they fail far from the file when they get through)."""
    out: list[Problem] = []
    if isinstance(data, float) and not math.isfinite(data):
        out.append(Problem(path, f"{data} is not a finite number"))
    elif isinstance(data, Mapping):
        for k, v in data.items():
            out.extend(non_finite(v, f"{path}.{k}" if path else str(k)))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out.extend(non_finite(v, f"{path}[{i}]"))
    return out


_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def check_name(value: str) -> str | None:
    """Names that become part of topics and file names: letters, digits, '_' and '-'."""
    if _NAME.match(value):
        return None
    bad = sorted({c for c in value if not (c.isascii() and (c.isalnum() or c in "_-"))})
    shown = ", ".join(repr(c) for c in bad) if bad else "nothing"
    return (f"{value!r} may hold only letters, digits, '_' and '-' (found {shown})"
            if value else "must not be empty")


_TCP = re.compile(r"^tcp://(?P<host>\[[0-9A-Fa-f:.]+\]|[^:/\s\[\]]+):(?P<port>[^:/\s]*)$")


def check_zmq_endpoint(value: str) -> str | None:
    """A ZeroMQ endpoint: tcp://HOST:PORT (PORT 1-65535, or * / 0 for any free port when
    binding), ipc://PATH or inproc://NAME; returns what is wrong, or None."""
    hint = ("expected tcp://HOST:PORT (port 1-65535 or *), ipc://PATH or inproc://NAME")
    if "://" not in value:
        guess = f" (did you mean tcp://{value}?)" if ":" in value else ""
        return f"{value!r} is not a ZeroMQ endpoint: {hint}{guess}"
    scheme, _, rest = value.partition("://")
    if scheme == "tcp":
        m = _TCP.match(value)
        if m is None:
            return f"{value!r}: {hint}"
        port = m.group("port")
        if port == "*":
            return None
        if not port.isdigit() or not 0 <= int(port) <= 65535:
            return f"{value!r}: port {port!r} is not a number from 1 to 65535 (or * / 0: any)"
        return None
    if scheme in ("ipc", "inproc"):
        return None if rest.strip() else f"{value!r}: {scheme}:// needs a name"
    return f"{value!r}: unknown transport {scheme!r}; {hint}"


def _copy_default(value: Any) -> Any:
    if isinstance(value, list | dict):
        import copy

        return copy.deepcopy(value)
    return value
