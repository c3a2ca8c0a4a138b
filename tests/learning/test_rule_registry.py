"""Plasticity rules: one module per rule, registered in one place, defaults in one place."""

from __future__ import annotations

import math

import numpy as np

from edgesnn.core import layout as L
from edgesnn.core.spec import PLASTICITY_RULES, PLASTICITY_SCHEMA
from edgesnn.learning.rules import RULES, common, plasticity_code, rule_params, stdp


def test_every_rule_is_one_registered_module() -> None:
    assert tuple(RULES) == PLASTICITY_RULES == ("stdp", "triplet", "rstdp")
    codes = [m.CODE for m in RULES.values()] + [stdp.FUSED_CODE]
    assert len(set(codes)) == len(codes)
    for name, mod in RULES.items():
        assert name == mod.NAME and mod.DEFAULTS and mod.FIELDS
        assert plasticity_code({"rule": name, "pairing": "nearest"}) == mod.CODE
    assert plasticity_code({"rule": "stdp"}) == stdp.FUSED_CODE


def test_schema_defaults_come_from_the_rule_modules() -> None:
    fields = PLASTICITY_SCHEMA.fields
    for mod in (*RULES.values(), common):
        for key, value in mod.DEFAULTS.items():
            assert fields[key].default == value, key


def test_packed_parameters_use_the_same_defaults() -> None:
    d = {**stdp.DEFAULTS, **common.DEFAULTS}
    fused = stdp.fused_params({}, 1000)
    assert fused[L.S_APLUS] == d["a_plus"] and fused[L.S_AMINUS] == d["a_minus"]
    assert fused[L.S_DPRE] == np.exp(-1.0 / d["tau_pre_ms"])
    assert (fused[L.S_WMIN], fused[L.S_WMAX]) == (d["w_min"], d["w_max"])
    p = rule_params({"rule": "stdp"}, 1000)
    assert (p["a2_plus"], p["a2_minus"]) == (d["a_plus"], d["a_minus"])
    assert (p["tau_plus_ms"], p["tau_minus_ms"]) == (d["tau_pre_ms"], d["tau_post_ms"])
    t = rule_params({"rule": "triplet"}, 1000)
    assert all(t[k] == v for k, v in RULES["triplet"].DEFAULTS.items())
    r = rule_params({"rule": "rstdp"}, 500)
    rd = RULES["rstdp"].DEFAULTS
    de, dd = math.exp(-0.5 / rd["tau_elig_ms"]), math.exp(-0.5 / rd["tau_dopa_ms"])
    assert r["gain"] == rd["eta"] * 0.5 / (1.0 - de * dd)
