"""`--set PATH=VALUE` overrides of a pipeline TOML, and loading a pipeline with them.

A library piece (the daemon's pipeline sets, `edgesnn deploy --check-on` and the CLI commands
all load pipelines this way), so that no library module needs the command-line package.
"""

from __future__ import annotations

import tomllib
from typing import Any

from edgesnn.errors import ConfigError, Problem


def parse_value(text: str) -> Any:
    """A TOML value ("3", "true", "[1, 2]", '"x"'); bare words are strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> list[Problem]:
    """Set each ``PATH=VALUE`` (dotted TOML path) in `raw`; returns the malformed ones."""
    problems = []
    for item in overrides:
        path, sep, value = item.partition("=")
        if not sep or not path.strip():
            problems.append(Problem("--set", f"expected PATH=VALUE, got {item!r}"))
            continue
        keys = path.strip().split(".")
        node = raw
        for k in keys[:-1]:
            nxt = node.setdefault(k, {})
            if not isinstance(nxt, dict):
                problems.append(Problem(path, f"{k!r} is not a table"))
                break
            node = nxt
        else:
            node[keys[-1]] = parse_value(value.strip())
    return problems


def load_with_overrides(name: str, overrides: list[str]):  # -> PipelineConfig
    """Load and validate a pipeline after applying --set overrides."""
    from edgesnn.config import pipeline as pl

    if not overrides:
        return pl.load(name)
    path = pl.resolve(name)
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return pl.loads(text, str(path))  # reports the syntax error
    problems = apply_overrides(raw, overrides)
    if problems:
        raise ConfigError(problems)
    return pl.loads_raw(raw, text, str(path))
