"""Profiles: shipped ones valid and sourced; strict validation of users' profiles."""

from __future__ import annotations

import pytest

from edgesnn.deploy import load_profile, loads_profile, shipped_profiles
from edgesnn.deploy.profile import profiles_dir
from edgesnn.errors import ConfigError

REQUIRED = ("loihi1", "loihi2", "spinnaker1", "spinnaker2")


def test_shipped_profiles_load_and_every_figure_has_a_source():
    assert set(REQUIRED) <= set(shipped_profiles())
    for name in shipped_profiles():
        p = load_profile(name)
        assert p.name == name
        missing = [f for f in p.figures() if f not in p["sources"]]
        assert not missing, f"{name}: figures without a source: {missing}"
        if p.family != "xylo":  # no per-operation energy figure published for Xylo
            assert p["energy"]["synop_pj"] > 0 and p["energy"]["neuron_update_pj"] > 0


def test_conservative_values_where_sources_disagree():
    l1 = load_profile("loihi1")
    assert l1["chip"]["threshold_profiles_per_core"] == 8  # 8 vs 16
    assert l1["refractory"]["max_steps"] == 63  # 63 vs 64
    assert l1["weights"]["exp_min"] == -7  # -7 vs -8
    assert l1["delay"]["max_steps"] == 62 and load_profile("loihi2")["delay"]["max_steps"] == 63
    assert load_profile("spinnaker1")["threshold"]["compare"] == ">="


def test_user_profile_by_path(tmp_path):
    text = (profiles_dir() / "loihi1.toml").read_text().replace('name = "loihi1"',
                                                                'name = "mychip"')
    p = tmp_path / "mychip.toml"
    p.write_text(text.replace("neurons_per_core = 1024", "neurons_per_core = 64"))
    prof = load_profile(str(p))
    assert prof.name == "mychip" and prof["chip"]["neurons_per_core"] == 64


def test_every_problem_at_once_with_path_line_and_suggestion():
    text = (profiles_dir() / "spinnaker1.toml").read_text()
    text = text.replace("neurons_per_core = 255", "neuron_per_core = 255")
    text = text.replace('compare = ">="', 'compare = "=>"')
    text = text.replace("bits_v = 32", 'bits_v = "32"')
    text = text.replace('neuron_models = ["lif", "cuba_lif"]', 'neuron_models = ["lif", "izh"]')
    with pytest.raises(ConfigError) as e:
        loads_profile(text, "bad.toml")
    msgs = [str(p) for p in e.value.problems]
    paths = {p.path for p in e.value.problems}
    assert "chip.neuron_per_core" in paths and "chip.neurons_per_core" in paths
    assert "threshold.compare" in paths and "state.bits_v" in paths
    assert any('did you mean "neurons_per_core"' in m for m in msgs)
    assert all(p.line is not None for p in e.value.problems if p.path.startswith("chip."))
    # semantic problems are reported once the schema passes
    ok = (profiles_dir() / "loihi1.toml").read_text()
    with pytest.raises(ConfigError) as e:
        loads_profile(ok.replace('neuron_models = ["lif", "cuba_lif", "if"]',
                                 'neuron_models = ["lif", "izhikevich"]')
                      .replace("exp_min = -7", "exp_min = 9")
                      .replace('"weights.bits" =', '"weights.bitz" ='))
    paths = {p.path for p in e.value.problems}
    assert {"profile.neuron_models[1]", "weights.exp_min", "sources.weights.bitz"} <= paths


def test_unknown_profile_name_suggests():
    with pytest.raises(ConfigError, match='did you mean "loihi2"'):
        load_profile("loihi3")
