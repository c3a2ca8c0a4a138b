"""Chip targets: one package per chip family, all of one shape, found by one registry.

Every folder here is a target package with the same modules:

- ``profile.py``  the profile schema and its cross-field checks: ``load(raw, text, path)``
  validates a parsed profile TOML of the target's family into a `Profile`;
- ``quantize.py`` ``quantize(model, profile)``: a `FloatModel` in the chip's integers;
- ``emulate.py``  the bit-accurate integer kernels and ``emulator(model, profile)``;
- ``rules.py``    the design rules: ``check(model, profile)`` -> (violations, mapping);
- ``export.py``   ``export(model, profile, out_dir)``: the chip toolchain's files;

and an ``__init__.py`` that builds one `Target` from them and registers it. `edgesnn deploy`,
`edgesnn train --profile`, the quantized-network component and the library functions of
`edgesnn.deploy` look a profile's ``[profile] family`` up here instead of branching on it, so a
new chip is a new folder here plus its profile TOML in ``firmware_profiles/``.

    from edgesnn.deploy.targets import target, targets
    t = target("loihi_cuba")               # the Loihi package's Target
    qm = t.quantize(float_model, profile)
    violations, mapping = t.check(qm, profile)
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from edgesnn.config.schema import did_you_mean

#: The modules every target package has (see the module docstring).
MODULES = ("profile", "quantize", "emulate", "rules", "export")


@dataclass(frozen=True)
class Target:
    """One chip family: its profile schema and the four steps of a deployment."""

    #: the package name (``edgesnn.deploy.targets.<name>``)
    name: str
    #: the ``[profile] family`` its profiles name
    family: str
    #: one line about the chip(s)
    description: str
    #: profile.py: validate a parsed profile TOML (raw dict, its text, its path) -> Profile
    load_profile: Callable[[dict[str, Any], str, str], Any]
    #: quantize.py: (FloatModel, Profile) -> the model in the chip's integers
    quantize: Callable[[Any, Any], Any]
    #: emulate.py: (quantized model, Profile) -> a step-by-step bit-accurate emulator
    emulator: Callable[[Any, Any], Any]
    #: rules.py: (quantized model, Profile) -> (violations, mapping with ``.cores``)
    check: Callable[[Any, Any], tuple[list[Any], Any]]
    #: rules.py: rule family -> its rule names, in report order
    rule_families: dict[str, Any]
    #: export.py: (quantized model, Profile, out dir) -> relative names of the files written
    export: Callable[[Any, Any, Path], list[str]]
    #: the whole `edgesnn deploy`: (network, FloatModel, Profile, out dir, recording, *,
    #: tol_steps, progress, tail_steps) -> the report dict
    deploy: Callable[..., dict[str, Any]]
    #: the human summary and the script summary of a report
    summary_text: Callable[[dict[str, Any]], str]
    summary_json: Callable[[dict[str, Any]], dict[str, Any]]

    def module(self, part: str) -> ModuleType:
        """One of the package's modules by name (`MODULES`), e.g. ``t.module("emulate")``."""
        if part not in MODULES:
            raise ValueError(f"{part!r} is not a target module; one of {', '.join(MODULES)}")
        return importlib.import_module(f"{__name__}.{self.name}.{part}")


_TARGETS: dict[str, Target] = {}
_LOADED = False


def register(t: Target) -> Target:
    """Make `t` the target of its family (a package's ``__init__`` calls this once)."""
    have = _TARGETS.get(t.family)
    if have is not None and have.name != t.name:
        raise TypeError(f"family {t.family!r} registered twice ({have.name} and {t.name})")
    _TARGETS[t.family] = t
    return t


def _load() -> None:
    """Import every target package in this folder once (each registers itself)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for mod in pkgutil.iter_modules(__path__, __name__ + "."):
        if mod.ispkg and not mod.name.rsplit(".", 1)[-1].startswith("_"):
            importlib.import_module(mod.name)


def targets() -> dict[str, Target]:
    """Every registered target by family, sorted by family."""
    _load()
    return dict(sorted(_TARGETS.items()))


def families() -> tuple[str, ...]:
    """The profile families a target exists for."""
    return tuple(targets())


def target(family: str) -> Target:
    """The target of a profile family; ValueError naming the known ones."""
    _load()
    t = _TARGETS.get(family)
    if t is None:
        names = sorted(_TARGETS)
        raise ValueError(f"no chip target for family {family!r}"
                         f"{did_you_mean(family, names)}; targets: {', '.join(names)}")
    return t
