"""Plasticity rules plug into the core here: a registry the rule modules fill, and the dispatch
the step kernel calls, generated from it.

The core owns the plasticity hook of a projection (its traces at ``P_TPRE`` / ``P_TPOST``, the
modulator, the CSC index of a sparse projection, the learning switch) but no rule. A rule is a
`PlasticityRule` that a plugin module registers with `register` when it is imported: its name
(``plasticity.rule`` of the network description), its TOML keys, its numba kernels by code and
the functions that choose the code, pack the rule's parameters and state, validate a table
and check a packed record. The plugins are listed in `PLUGINS` (the built-in rules are
`edgesnn.learning.rules`); `load()` imports them by name the first time the core needs its
rules, so ``from edgesnn.core import Network`` is enough to build and load networks that
learn, while the core never imports the learning package itself (learning depends on the
core, not the other way round).

`dispatch()` generates ``plasticity_step(prec, fs, fp, w, ii, ij)``, the function the step
kernel calls for every plastic projection with learning on: an if-chain over the registered
codes calling each code's kernel, compiled under this file's name so numba caches it like any
other kernel (as `edgesnn.core.neurons` does for the neuron models). Rules must be registered
before it is generated (when `edgesnn.core.kernels` is imported); the plugin list is fixed in
the source so that a cached step kernel always holds the same rules.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
from numba import njit

from edgesnn.config.schema import Field
from edgesnn.core.layout import P_PLAST  # noqa: F401 - generated code
from edgesnn.errors import Problem

__all__ = ["PLUGINS", "PlasticityRule", "RecordError", "by_code", "codes", "dispatch", "fields",
           "layouts", "load", "names", "register", "rule_of", "rules", "validate"]  # fmt: skip

#: modules that register the rules when imported (by name: the core does not import them)
PLUGINS = ("edgesnn.learning.rules",)

_OPTS = {"cache": True, "nogil": True, "error_model": "numpy"}


class RecordError(ValueError):
    """A packed plasticity record a rule refuses (`PlasticityRule.check`): which field, its
    value and why."""

    def __init__(self, field: str, value: Any, why: str) -> None:
        super().__init__(f"{field} = {value}: {why}")
        self.field, self.value, self.why = field, value, why


def _no_problems(pl: dict[str, Any], path: str, target_model: str | None) -> list[Problem]:
    return []


def _no_regions(ii: np.ndarray, fs_size: int, fp_size: int,
                prec: int) -> list[tuple[int, int, str]]:  # fmt: skip
    return []


@dataclass(frozen=True)
class PlasticityRule:
    """One plasticity rule as the core sees it."""

    #: ``plasticity.rule`` of a projection
    name: str
    #: the keys of the plasticity table this rule reads (besides ``rule``)
    fields: Mapping[str, Field]
    #: kernel code (``ii[prec + P_PLAST]``) -> numba kernel ``(prec, fs, fp, w, ii, ij)``
    kernels: Mapping[int, Any]
    #: the plasticity table -> the code of the kernel that runs it
    code: Callable[[dict[str, Any]], int]
    #: (table, put, n_pre, n_post, n_syn, dt_us, theta_off) -> (P_PPOFF, P_LREC): packs the
    #: parameters and state with the packer's allocator ``put(array name, values) -> offset``;
    #: theta_off is the fs offset of an adaptive_lif target's thresholds, else -1
    pack: Callable[..., tuple[int, int]]
    #: rule-specific checks of a table beyond its schema -> problems
    validate: Callable[[dict[str, Any], str, str | None], list[Problem]] = _no_problems
    #: (ii, fs size, fp size, projection record) -> the ii regions (offset, length, field) the
    #: kernels write; raises `RecordError` for a record pointing outside its arrays
    check: Callable[[np.ndarray, int, int, int], list[tuple[int, int, str]]] = _no_regions
    #: a module of integer constants the packed records follow (in the layout signature)
    layout: ModuleType | None = None
    doc: str = ""


_RULES: dict[str, PlasticityRule] = {}
_LOADED = False
_DISPATCH: Any = None


def register(rule: PlasticityRule) -> PlasticityRule:
    """Add a rule (a plugin module calls this when imported); returns it."""
    if _DISPATCH is not None:
        raise RuntimeError(f"plasticity rule {rule.name!r}: registered after the step kernels "
                           "were generated (register from a module listed in "
                           "edgesnn.core.plasticity.PLUGINS)")  # fmt: skip
    if rule.name in _RULES:
        raise RuntimeError(f"plasticity rule {rule.name!r} is registered twice")
    for other in _RULES.values():
        for c in set(rule.kernels) & set(other.kernels):
            if rule.kernels[c] is not other.kernels[c]:
                raise RuntimeError(f"plasticity rule {rule.name!r}: code {c} already runs "
                                   f"another kernel (rule {other.name!r})")  # fmt: skip
    if 0 in rule.kernels:
        raise RuntimeError(f"plasticity rule {rule.name!r}: code 0 means no plasticity")
    _RULES[rule.name] = rule
    return rule


def load() -> None:
    """Import the plugin modules once (they register their rules)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True  # first: a plugin importing the core while loading does not re-enter
    for name in PLUGINS:
        importlib.import_module(name)


def rules() -> dict[str, PlasticityRule]:
    """Every registered rule by name, in registration order (the first is the default)."""
    load()
    return dict(_RULES)


def names() -> tuple[str, ...]:
    """The rule names, the default first."""
    return tuple(rules())


def fields() -> dict[str, Field]:
    """Every key of a plasticity table but ``rule``: the union of the rules' keys."""
    out: dict[str, Field] = {}
    for r in rules().values():
        for k, f in r.fields.items():
            out.setdefault(k, f)
    return out


def rule_of(pl: dict[str, Any]) -> PlasticityRule:
    """The rule of a plasticity table (``rule`` missing or None: the default rule)."""
    rs = rules()
    name = pl.get("rule")
    if name is None:
        name = next(iter(rs))
    try:
        return rs[name]
    except KeyError:
        raise KeyError(f"no plasticity rule {name!r} (registered: {', '.join(rs)})") from None


def codes() -> tuple[int, ...]:
    """Every registered kernel code, ascending."""
    return tuple(sorted({c for r in rules().values() for c in r.kernels}))


def by_code(code: int) -> PlasticityRule:
    """The (first registered) rule that runs kernel code `code`."""
    for r in rules().values():
        if code in r.kernels:
            return r
    raise KeyError(f"no plasticity rule has kernel code {code}")


def layouts() -> list[ModuleType]:
    """The record layouts of the registered rules, each once."""
    out: list[ModuleType] = []
    for r in rules().values():
        if r.layout is not None and r.layout not in out:
            out.append(r.layout)
    return out


def validate(pl: Any, path: str, target_model: str | None) -> list[Problem]:
    """Rule-specific problems of a plasticity table (an unknown rule is the schema's to report)."""
    if not isinstance(pl, dict):
        return []
    name = pl.get("rule")
    rs = rules()
    rule = rs.get(next(iter(rs), "") if name is None else name)
    return [] if rule is None else rule.validate(pl, path, target_model)


def _dispatch_source() -> tuple[str, dict[str, Any]]:
    """The source of `plasticity_step` and the kernels it names (one branch per kernel)."""
    groups: list[tuple[Any, list[int], list[str]]] = []
    for r in rules().values():
        for c, k in sorted(r.kernels.items()):
            for fn, cs, ns in groups:
                if fn is k:
                    if c not in cs:
                        cs.append(c)
                    if r.name not in ns:
                        ns.append(r.name)
                    break
            else:
                groups.append((k, [c], [r.name]))
    lines = [
        "def plasticity_step(prec, fs, fp, w, ii, ij):",
        '    """The plasticity of one projection this step: the kernel of its rule code."""',
        "    code = ii[prec + P_PLAST]",
    ]
    names_: dict[str, Any] = {}
    for n, (fn, cs, ns) in enumerate(groups):
        var = f"_kernel_{n}_{getattr(fn, '__name__', 'rule')}"
        names_[var] = fn
        cond = " or ".join(f"code == {c}" for c in sorted(cs))
        lines += [f"    if {cond}:  # {', '.join(ns)}",
                  f"        {var}(prec, fs, fp, w, ii, ij)",
                  "        return"]  # fmt: skip
    lines.append("    return")
    return "\n".join(lines) + "\n", names_


def dispatch() -> Any:
    """The generated ``plasticity_step`` (generated and compiled lazily once; after this no
    rule can be registered)."""
    global _DISPATCH
    if _DISPATCH is None:
        src, kernels = _dispatch_source()
        globals().update(kernels)
        scope: dict[str, Any] = {}
        exec(compile(src, __file__, "exec"), globals(), scope)  # noqa: S102 - our own template
        fn = scope["plasticity_step"]
        fn.__module__ = __name__
        _DISPATCH = njit(**_OPTS)(fn)
    return _DISPATCH
