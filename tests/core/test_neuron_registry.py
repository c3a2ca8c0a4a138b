"""The neuron-model registry: one module per model, the generated dispatch, the reference twins."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from edgesnn.core import Network, NetworkSpec, layout
from edgesnn.core import neurons as N
from edgesnn.core.models import MODELS, pack_params

from .reference import Reference

#: input weight and bias that make each model fire in a few steps (models not listed: 1.0, 0.0)
_DRIVE = {"izhikevich": (12.0, 4.0), "hh": (8.0, 5.0), "adex": (600.0, 900.0)}


def test_every_model_is_one_registered_module() -> None:
    assert list(MODELS) == ["input", "lif", "cuba_lif", "adaptive_lif", "if", "izhikevich",
                            "hh", "adex"]  # fmt: skip
    assert MODELS is N.REGISTRY
    codes = [m.code for m in MODELS.values()]
    assert len(set(codes)) == len(codes) and MODELS["input"].code == layout.MODEL_INPUT
    for name, m in MODELS.items():
        assert N.by_code(m.code) is m
        if name == "input":
            assert m.update is None and m.slots == ()
            continue
        assert len(set(m.slots)) == len(m.slots)
        head = pack_params(name, {**m.params, "i_bias": 0.0}, 3, 1000)
        assert head.size == len(m.slots) + 3, name  # the scalars, then i_bias per neuron
        assert m.reference is not None and inspect.getmodule(m.update.py_func) is \
            inspect.getmodule(m.reference)  # kernel and twin live in the model's module  # fmt: skip


def test_dispatch_is_generated_from_the_registry() -> None:
    src, names = N._dispatch_source()
    for m in MODELS.values():
        if m.update is not None:
            assert f"if model == {m.code}:" in src and names[f"_update_{m.name}"] is m.update
    assert src.index("cuba_lif") < src.index("# lif")  # the hot model is tested first
    assert N.update_layer.py_func.__module__ == "edgesnn.core.neurons"


def test_named_slots() -> None:
    assert MODELS["cuba_lif"].slot("d_exc") == 5 and MODELS["izhikevich"].slot("n_sub") == 6
    with pytest.raises(KeyError, match="packs no scalar 'tau'"):
        MODELS["lif"].slot("tau")


@pytest.mark.parametrize("model", [m for m in MODELS if m != "input"])
def test_kernel_equals_reference_twin(model: str) -> None:
    rng = np.random.default_rng(3)
    w, bias = _DRIVE.get(model, (1.0, 0.0))
    spec = NetworkSpec(dt_us=500, seed=1, max_delay_steps=3, dtype="float64")
    spec.add_layer("in", 6, "input")
    spec.add_layer("h", 4, model, i_bias=rng.uniform(0, bias, 4))
    spec.connect("in", "h", "dense", weight=rng.uniform(0, w, (6, 4)), delay_steps=1)
    net, ref = Network(spec), Reference(spec)
    fired = 0
    for k in range(80):
        idx = np.flatnonzero(rng.random(6) < 0.3)
        net.step(idx.astype(np.int32))
        want = ref.step([int(i) for i in idx])["h"]
        assert net.layer_spikes("h").tolist() == want, f"{model} step {k}"
        fired += len(want)
        for var, vals in net.state["h"].items():
            assert vals.tolist() == ref.state[1][var], f"{model} {var} step {k}"
    assert fired > 0, model
