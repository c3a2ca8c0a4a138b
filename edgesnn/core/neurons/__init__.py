"""Every neuron model, registered in one place; the kernels' layer dispatch is generated here.

One module per model (`input`, `lif`, `cuba_lif`, `adaptive_lif`, `if_`, `izhikevich`, `hh`,
`adex`) defines ``MODEL``, a `NeuronModel` (see `edgesnn.core.neurons._base`): parameters with
units in their names, state variables, packed scalars, the numba update kernel and its slow
reference twin. Adding a model is one new module and its name in `_MODULES`.

`update_layer(rec, fs, fp, ii, slot)` is the dispatch the step kernel calls for every
non-input layer: an if-chain over the registered codes, generated from the registry at import
(its source is compiled under this file's name, so numba caches it like any other kernel).
"""

from __future__ import annotations

from importlib import import_module

from numba import njit

from edgesnn.core.layout import L_MODEL, MODEL_INPUT  # noqa: F401 - L_MODEL: generated code
from edgesnn.core.neurons._base import OPTS, NeuronModel, RefEnv

__all__ = ["REGISTRY", "NeuronModel", "RefEnv", "by_code", "update_layer"]

#: the model modules, in the order models are listed (schema choices, documentation)
_MODULES = ("input", "lif", "cuba_lif", "adaptive_lif", "if_", "izhikevich", "hh", "adex")
#: tested first by the dispatch: the model of the shipped pipelines and the benchmarks
_HOT = ("cuba_lif",)


def _load() -> dict[str, NeuronModel]:
    out: dict[str, NeuronModel] = {}
    codes: dict[int, str] = {}
    for mod in _MODULES:
        m: NeuronModel = import_module(f"{__name__}.{mod}").MODEL
        if m.name in out or m.code in codes:
            raise RuntimeError(f"neuron model {mod}: name {m.name!r} or code {m.code} is taken")
        if (m.code == MODEL_INPUT) != (m.update is None):
            raise RuntimeError(f"neuron model {mod}: only the input model has no update kernel")
        out[m.name] = m
        codes[m.code] = m.name
    return out


#: every neuron model by name
REGISTRY: dict[str, NeuronModel] = _load()


def by_code(code: int) -> NeuronModel:
    """The model of a layer record's code."""
    for m in REGISTRY.values():
        if m.code == code:
            return m
    raise KeyError(f"no neuron model has code {code}")


def _dispatch_source() -> tuple[str, dict[str, object]]:
    """The source of `update_layer` and the kernels it names."""
    order = sorted((m for m in REGISTRY.values() if m.update is not None),
                   key=lambda m: m.name not in _HOT)  # fmt: skip
    lines = [
        "def update_layer(rec, fs, fp, ii, slot):",
        '    """Advance one non-input layer: the update kernel of its model code."""',
        "    model = ii[rec + L_MODEL]",
    ]
    names: dict[str, object] = {}
    for m in order:
        fn = f"_update_{m.name}"
        names[fn] = m.update
        lines += [f"    if model == {m.code}:  # {m.name}",
                  f"        return {fn}(rec, fs, fp, ii, slot)"]  # fmt: skip
    lines.append("    return 0")
    return "\n".join(lines) + "\n", names


def _generate():  # noqa: ANN202 - a numba dispatcher
    src, names = _dispatch_source()
    globals().update(names)
    scope: dict[str, object] = {}
    exec(compile(src, __file__, "exec"), globals(), scope)  # noqa: S102 - our own template
    fn = scope["update_layer"]
    fn.__module__ = __name__
    # inlined into the step: with the hot model's own inlined test (see `cuba_lif.update`),
    # the commonest layer costs one call per step
    return njit(**OPTS, inline="always")(fn)


update_layer = _generate()
