"""Named Python builders of networks: `builder = "name"` in a pipeline's network table.

A builder is a function `(dt_us: int, seed: int, **params) -> NetworkSpec` registered with
`@register_builder("name")`. Modules under `edgesnn.models` are imported on the first lookup,
so a builder defined there is found without further wiring.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from edgesnn.core.spec import NetworkSpec

Builder = Callable[..., NetworkSpec]
_BUILDERS: dict[str, Builder] = {}
_IMPORT_ERRORS: dict[str, str] = {}
_DISCOVERED = False


def register_builder(name: str) -> Callable[[Builder], Builder]:
    """Decorator: make `fn(dt_us, seed, **params) -> NetworkSpec` available as `name`."""

    def deco(fn: Builder) -> Builder:
        existing = _BUILDERS.get(name)
        if existing is not None and existing is not fn:
            raise TypeError(
                f"network builder {name!r} registered twice ({existing.__module__} "
                f"and {fn.__module__})"
            )
        _BUILDERS[name] = fn
        return fn

    return deco


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    try:
        pkg = importlib.import_module("edgesnn.models")
    except ImportError as e:
        _IMPORT_ERRORS["edgesnn.models"] = str(e)
        return
    for mod in pkgutil.walk_packages(pkg.__path__, "edgesnn.models."):
        if mod.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        try:
            importlib.import_module(mod.name)
        except ImportError as e:
            _IMPORT_ERRORS[mod.name] = str(e)


def get_builder(name: str) -> Builder:
    """The builder registered as `name`; KeyError (with the known names) when there is none."""
    _discover()
    try:
        return _BUILDERS[name]
    except KeyError:
        raise KeyError(name) from None


def available_builders() -> list[str]:
    """Names of every registered builder."""
    _discover()
    return sorted(_BUILDERS)


def build(name: str, dt_us: int, seed: int, params: dict[str, Any]) -> NetworkSpec:
    """Run builder `name` and return its spec."""
    return get_builder(name)(dt_us=dt_us, seed=seed, **params)


def builder_import_errors() -> dict[str, str]:
    """Modules under edgesnn.models that failed to import (for `edgesnn components`)."""
    _discover()
    return dict(_IMPORT_ERRORS)
