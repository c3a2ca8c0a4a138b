"""Plasticity rules plug into the core through its registry (edgesnn.core.plasticity): the core
loads them by name, the step kernel's dispatch is generated from them, and pair STDP's weight
update exists once (edgesnn.learning.kernels.pair_rows / pair_cols)."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap

import pytest

from edgesnn.core import kernels as K
from edgesnn.core import layout as L
from edgesnn.core import plasticity
from edgesnn.core.spec import PLASTICITY_SCHEMA
from edgesnn.learning import kernels as LK
from edgesnn.learning import rules as R
from tests.conftest import REPO, subprocess_env


def test_the_rule_modules_are_registered_in_the_core() -> None:
    rules = plasticity.rules()
    assert tuple(rules) == tuple(R.RULES) == ("stdp", "triplet", "rstdp")
    assert plasticity.codes() == (L.PLAST_STDP, L.PLAST_PAIR, L.PLAST_TRIPLET, L.PLAST_RSTDP)
    assert plasticity.by_code(L.PLAST_STDP) is plasticity.by_code(L.PLAST_PAIR) is rules["stdp"]
    assert rules["stdp"].kernels[L.PLAST_STDP] is LK.stdp_fused
    assert all(rules[n].kernels[R.RULES[n].CODE] is LK.learning_step for n in rules)
    assert plasticity.rule_of({}) is rules["stdp"]  # the default rule
    # the schema's keys are the rules' keys, with the rule modules' defaults
    assert set(PLASTICITY_SCHEMA.fields) == {"rule", *R.PLASTICITY_FIELDS}
    for r in rules.values():
        assert set(r.fields) <= set(PLASTICITY_SCHEMA.fields)


def test_the_step_dispatch_is_generated_from_the_registry() -> None:
    src, names = plasticity._dispatch_source()
    assert K._plasticity is plasticity.dispatch()
    kernels = {id(k) for r in plasticity.rules().values() for k in r.kernels.values()}
    assert {id(f) for f in names.values()} == kernels  # one branch per kernel
    for c in plasticity.codes():
        assert f"code == {c}" in src
    with pytest.raises(RuntimeError, match="after the step kernels were generated"):
        plasticity.register(plasticity.PlasticityRule(
            name="late", fields={}, kernels={9: LK.stdp_fused}, code=lambda pl: 9,
            pack=lambda *a: (0, 0),
        ))  # fmt: skip
    assert "late" not in plasticity.rules()


def test_pair_stdp_is_implemented_once() -> None:
    """The fused kernel (W2) and the event-driven pair/triplet kernel both update weights with
    pair_rows / pair_cols; the core keeps no STDP kernel of its own."""
    for fn in (LK.stdp_fused, LK._stdp):
        body = inspect.getsource(fn.py_func)
        assert "pair_rows(" in body and "pair_cols(" in body, fn
        assert "min(max(" not in body, fn  # no weight update of its own
    core = inspect.getsource(K)
    assert "_stdp" not in core and "S_APLUS" not in core


def test_the_core_alone_builds_runs_saves_and_loads_a_learning_network(tmp_path) -> None:
    """Only edgesnn.core is imported: the rules are loaded by the core itself."""
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        from edgesnn.core import Network, NetworkSpec
        spec = NetworkSpec(dt_us=1000)
        spec.add_layer("a", 6, "input")
        spec.add_layer("b", 3, "lif", v_th=0.4)
        spec.connect("a", "b", "dense", weight=0.3, plasticity={{"rule": "triplet"}})
        spec.connect("a", "b", "random", p=0.5, seed=1, weight=0.2,
                     plasticity={{"rule": "stdp"}})
        net = Network(spec)
        for t in range(30):
            net.step(np.array([t % 6, (t + 2) % 6], np.int32))
        net.save({str(tmp_path / "m.npz")!r})
        back = Network.load({str(tmp_path / "m.npz")!r})
        assert np.array_equal(back.weights(0), net.weights(0))
        assert "edgesnn.learning.rules" in sys.modules
        print("learned", float(np.abs(net.weights(0) - 0.3).sum()) > 0)
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=subprocess_env(),
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("learned True")
