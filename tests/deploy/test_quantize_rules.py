"""Quantization error, float/quantized agreement, design rules and core mapping."""

from __future__ import annotations

import numpy as np
import pytest

from edgesnn.core import Network, NetworkSpec
from edgesnn.deploy import Emulator, FloatModel, check, load_profile, loads_profile, quantize
from edgesnn.deploy.profile import profiles_dir
from edgesnn.deploy.report import layer_agreement
from edgesnn.deploy.targets.loihi.quantize import loihi_weights

from .helpers import recording, small_net


def _spikes(run_rec, name):
    ptr, idx = run_rec[name]
    return [(k, int(i)) for k in range(len(ptr) - 1) for i in idx[ptr[k]:ptr[k + 1]]]


def _float_spikes(net, ptr, idx):
    out = {n: [] for n in net.layer_names}
    for k in range(len(ptr) - 1):
        net.step(idx[ptr[k]:ptr[k + 1]])
        for n in net.layer_names:
            out[n] += [(k, int(i)) for i in net.layer_spikes(n)]
    return out


@pytest.mark.parametrize("profile", ["loihi1", "loihi2", "spinnaker1", "spinnaker2"])
@pytest.mark.parametrize("model", ["lif", "cuba_lif"])
def test_quantized_agrees_with_float(profile, model):
    net = small_net(model)
    qm = quantize(net, load_profile(profile))
    violations, _ = check(qm, load_profile(profile))
    assert not [v for v in violations if v.severity == "error"], violations
    ptr, idx, _ = recording(steps=300)
    fl = _float_spikes(net, ptr, idx)
    rec = Emulator(qm).run(ptr, idx)
    for name, lay in (("hid", 16), ("out", 4)):
        a = layer_agreement(lay, fl[name], _spikes(rec, name), 2)
        assert a["float_spikes"] > 100
        assert a["count_error"] < 0.1, a
        assert a["timing_within_tol"] > 0.85, a


def test_loihi_weight_quantization_error_bound():
    prof = load_profile("loihi2")
    net = small_net("cuba_lif")
    qm = quantize(net, prof)
    for p in qm.projections:
        lay = qm.layer(p.target)
        s, kin = lay.info["scale"], 1 - np.exp(-1 / 10.0)
        # dequantization is exactly the documented effective weight
        assert np.allclose(p.w_deq, loihi_weights(p.w, p.exp, p.sign_mode).value / (kin * s))
        assert p.sign_mode == "mixed" and np.all(p.w % 2 == 0)
        assert p.w.min() >= -256 and p.w.max() <= 254
        # half a mantissa step (2) of 2^(6+exp) in float units
        half_step = 2.0 ** (6 + p.exp) / (kin * s)
        assert np.max(np.abs(p.w_deq - p.w_float)) <= half_step + 1e-12
        assert np.max(np.abs(p.w_float)) / half_step > 100  # at least ~7 bits used


def test_spinnaker_weight_quantization_error_bound():
    prof = load_profile("spinnaker1")
    net = small_net("lif")
    qm = quantize(net, prof)
    for p in qm.projections:
        lay = qm.layer(p.target)
        k_eff = lay.info["k_effective"]
        for c, key in ((0, "shift_e"), (1, "shift_i")):
            sel = p.ch == c
            step = 2.0 ** (lay.params[key] - 15) * k_eff / lay.info["mv_per_unit"]
            assert np.max(np.abs(p.w_deq[sel] - p.w_float[sel]), initial=0) <= step / 2 + 1e-12
        assert np.all((p.ch == 1) == (p.w_float < 0))
        assert p.w.max() < 65536 and p.w.min() >= 0


def test_threshold_is_exact_and_scale_documented():
    qm = quantize(small_net("lif"), load_profile("loihi1"))
    for lay in qm.layers[1:]:
        assert lay.info["threshold_effective"] == pytest.approx(1.0, rel=1e-12)
        assert lay.params["vth"] == lay.params["vth_mant"] << 6
        assert lay.params["decay_u"] == 4095  # delta synapses: u is this step's input


def _profile_with(base, **repl):
    text = (profiles_dir() / f"{base}.toml").read_text()
    for old, new in repl.items():
        assert old in text, old
        text = text.replace(old, new)
    return loads_profile(text)


@pytest.mark.parametrize("profile", ["loihi1", "loihi2", "spinnaker1", "spinnaker2"])
def test_subtractive_reset_is_a_reset_mode_violation_off_xylo(profile):
    """Loihi resets to rest and sPyNNaker to v_reset: a layer trained with reset = "subtract"
    would run differently there, and the rules say so."""
    spec = NetworkSpec(dt_us=1000)
    spec.add_layer("in", 8, "input")
    spec.add_layer("a", 4, "cuba_lif", reset="subtract", tau_syn_inh_ms=5.0)
    spec.add_layer("b", 4, "lif")
    spec.connect("in", "a", weight=0.5)
    spec.connect("in", "b", weight=0.5)
    prof = load_profile(profile)
    viol, _ = check(quantize(Network(spec), prof), prof)
    assert [(v.rule, v.layer, v.severity) for v in viol if v.rule == "reset_mode"] == [
        ("reset_mode", "a", "error")]


def test_all_rule_violations_listed_at_once():
    spec = NetworkSpec(dt_us=1000)
    spec.add_layer("in", 8, "input")
    spec.add_layer("a", 4, "izhikevich")
    spec.add_layer("b", 4, "lif", v_reset=-0.5, t_ref_ms=100.0)
    spec.add_layer("c", 4, "cuba_lif", tau_syn_exc_ms=5.0, tau_syn_inh_ms=10.0)
    spec.connect("in", "a", weight=0.5)
    spec.connect("in", "b", weight=0.5, delay_steps=63)
    spec.connect("in", "c", weight=0.5)
    spec.connect("b", "c", weight=-0.5, synapse="inh")
    net = Network(spec)
    prof = load_profile("loihi1")
    viol, mapping = check(quantize(net, prof), prof)
    got = {(v.rule, v.layer) for v in viol}
    assert {("neuron_model", "a"), ("reset_mode", "b"), ("refractory_range", "b"),
            ("delay_range", "b"), ("current_decays", "c")} <= got
    d = next(v for v in viol if v.rule == "delay_range")
    assert (d.value, d.limit) == (63, 62)
    r = next(v for v in viol if v.rule == "refractory_range")
    assert r.limit == "1..63" and r.value == 100  # 99 held steps + 1
    # the same delay fits Loihi 2 (0..63)
    prof2 = load_profile("loihi2")
    assert not [v for v in check(quantize(net, prof2), prof2)[0] if v.rule == "delay_range"]


def test_spinnaker_rules_timestep_synapse_types_and_shift():
    spec = NetworkSpec(dt_us=2000)
    spec.add_layer("in", 8, "input")
    spec.add_layer("c", 4, "cuba_lif", tau_syn_exc_ms=5.0, tau_syn_inh_ms=10.0)
    spec.connect("in", "c", weight=np.tile([[0.5, -0.5, 0.5, 0.5]], (8, 1)))
    net = Network(spec)
    prof = load_profile("spinnaker1")
    got = {v.rule for v in check(quantize(net, prof), prof)[0]}
    assert {"timestep", "synapse_types"} <= got
    small = _profile_with("spinnaker1", **{"exp_max = 15": "exp_max = 1"})
    viol = check(quantize(net, small), small)[0]
    assert any(v.rule == "weight_exponent" for v in viol)


def test_mapping_splits_layers_and_checks_memory_fan_in_out_and_cores():
    spec = NetworkSpec(dt_us=1000)
    spec.add_layer("in", 100, "input")
    spec.add_layer("big", 600, "lif")
    spec.connect("in", "big", weight=0.01)
    net = Network(spec)
    prof = load_profile("spinnaker1")
    viol, mp = check(quantize(net, prof), prof)
    big = next(m for m in mp.layers if m.layer == "big")
    assert (big.cores, big.neurons_per_core) == (3, 200)
    assert big.fan_in_axons_per_core == 100
    assert big.synapse_bits_per_core == 100 * (3 + 200) * 32
    assert mp.cores == 1 + 3  # the input population occupies a core on SpiNNaker
    assert not [v for v in viol if v.severity == "error"]
    # Loihi: memory forces more, smaller cores
    tight = _profile_with("loihi1", **{"synapse_memory_bits_per_core = 1048576":
                                       "synapse_memory_bits_per_core = 20000"})
    viol, mp = check(quantize(net, tight), tight)
    big = mp.layers[0]
    assert big.cores > 1 and big.synapse_bits_per_core <= 20000 and big.fits
    # nothing fits: one neuron needs more than the core has; fan-in, fan-out and cores too
    tiny = _profile_with("loihi1", **{"synapse_memory_bits_per_core = 1048576":
                                      "synapse_memory_bits_per_core = 100",
                                      "max_fan_in_axons_per_core = 4096":
                                      "max_fan_in_axons_per_core = 50",
                                      "max_fan_out_axons_per_core = 4096":
                                      "max_fan_out_axons_per_core = 1",
                                      "cores_per_chip = 128": "cores_per_chip = 2"})
    spec2 = NetworkSpec(dt_us=1000)
    spec2.add_layer("in", 100, "input")
    spec2.add_layer("h", 8, "lif")
    spec2.add_layer("o", 4, "lif")
    spec2.connect("in", "h", weight=0.01)
    spec2.connect("h", "o", weight=0.01)
    viol = check(quantize(Network(spec2), tiny), tiny)[0]
    rules = {v.rule for v in viol}
    assert {"synapse_memory", "fan_in", "fan_out", "cores"} <= rules


def test_float_model_synapses_match_the_core_propagation():
    """Each rule's synapse list equals what the core delivers for a single spike."""
    rng = np.random.default_rng(0)
    spec = NetworkSpec(dt_us=1000)
    spec.add_layer("img", 2 * 5 * 5, "input")
    big = {"v_th": 1e9, "tau_mem_ms": 1e9}
    spec.add_layer("conv", 3 * 5 * 5, "lif", **big)
    spec.add_layer("pool", 3 * 2 * 2, "lif", **big)
    spec.add_layer("one", 12, "lif", **big)
    spec.add_layer("wta", 12, "lif", **big)
    spec.connect("img", "conv", rule="conv2d", in_shape=[2, 5, 5],
                 kernel=rng.normal(size=(3, 2, 3, 3)), padding=1, gain=0.5)
    spec.connect("conv", "pool", rule="pool2d", in_shape=[3, 5, 5], size=2, weight=0.3)
    spec.connect("pool", "one", rule="one_to_one", weight=0.7)
    spec.connect("pool", "wta", rule="wta", weight=-0.2)
    net = Network(spec)
    fm = FloatModel.from_network(net)
    for pr in fm.projections:
        src, dst = fm.layer(pr.source), fm.layer(pr.target)
        W = np.zeros((src.n, dst.n))
        np.add.at(W, (pr.pre, pr.post), pr.w)
        for i in range(0, src.n, max(1, src.n // 7)):
            net.reset()
            if src.model == "input":
                net.step(np.array([i], np.int32))
            else:
                net.state[src.name]["v"][i] = 2e9  # make the pre neuron fire this step
                net.step(np.zeros(0, np.int32))
            net.step(np.zeros(0, np.int32))
            assert np.allclose(net.state[dst.name]["v"], W[i]), (pr.rule, i)


def test_conv_network_emulation_agrees():
    spec = NetworkSpec(dt_us=1000)
    spec.add_layer("img", 2 * 6 * 6, "input")
    spec.add_layer("conv", 3 * 6 * 6, "lif")
    rng = np.random.default_rng(0)
    spec.connect("img", "conv", rule="conv2d", in_shape=[2, 6, 6],
                 kernel=rng.normal(0.3, 0.5, size=(3, 2, 3, 3)), padding=1)
    net = Network(spec)
    ptr, idx, _ = recording(n_in=72, steps=150, p=0.15)
    fl = _float_spikes(net, ptr, idx)
    rec = Emulator(quantize(net, load_profile("loihi2"))).run(ptr, idx)
    a = layer_agreement(108, fl["conv"], _spikes(rec, "conv"), 2)
    assert a["float_spikes"] > 50 and a["timing_within_tol"] > 0.85


def test_every_named_rule_fires_on_its_limit():
    """Each rule of RULES reports (rule, layer, value, limit) when its limit is broken; the two
    per-core profile counts hold by construction (one layer per core) and 0 is rejected."""
    from edgesnn.deploy import RULES
    from edgesnn.errors import ConfigError

    seen: dict[str, object] = {}

    def run(net, prof, mapping=None):
        viol, mp = check(quantize(net, prof), prof, mapping)
        for v in viol:
            seen.setdefault(v.rule, (v.layer, v.value, v.limit))
        return mp

    spec = NetworkSpec(dt_us=1000)
    spec.add_layer("in", 8, "input")
    spec.add_layer("a", 4, "lif", tau_mem_ms=10.0, i_bias=0.9)
    spec.add_layer("z", 4, "lif", tau_mem_ms=10.0, v_th=0.0)
    spec.add_layer("b", 4, "cuba_lif", tau_syn_exc_ms=5000.0, tau_syn_inh_ms=5000.0)
    spec.add_layer("x", 4, "izhikevich")
    spec.add_layer("r", 4, "lif", v_reset=-0.5, t_ref_ms=100.0)
    spec.add_layer("c", 4, "cuba_lif", tau_syn_exc_ms=5.0, tau_syn_inh_ms=10.0)
    for t in "azbxc":
        spec.connect("in", t, weight=0.5)
    spec.connect("in", "r", weight=0.5, delay_steps=70)
    spec.connect("r", "c", weight=-0.5, synapse="inh")
    net = Network(spec)
    run(net, _profile_with("loihi1", **{"mant_bits = 13": "mant_bits = 2",
                                        "exp_bits = 3": "exp_bits = 0",
                                        "bits = 12": "bits = 4"}))
    assert seen["bias_range"][0] == "a" and seen["threshold_range"][:2] == ("z", 0.0)
    assert seen["decay_range"][0] == "b" and seen["delay_range"] == ("r", 70, 62)
    # SpiNNaker: time step, synapse types, ring shift
    spec2 = NetworkSpec(dt_us=2000)
    spec2.add_layer("in", 8, "input")
    spec2.add_layer("c", 4, "cuba_lif", tau_syn_exc_ms=5.0, tau_syn_inh_ms=10.0)
    spec2.connect("in", "c", weight=np.tile([[0.5, -0.5, 0.5, 0.5]], (8, 1)))
    run(Network(spec2), _profile_with("spinnaker1", **{"exp_max = 15": "exp_max = 1"}))
    # mapping limits
    tiny = _profile_with("loihi1", **{"synapse_memory_bits_per_core = 1048576":
                                      "synapse_memory_bits_per_core = 100",
                                      "max_fan_in_axons_per_core = 4096":
                                      "max_fan_in_axons_per_core = 50",
                                      "max_fan_out_axons_per_core = 4096":
                                      "max_fan_out_axons_per_core = 1",
                                      "cores_per_chip = 128": "cores_per_chip = 2"})
    spec3 = NetworkSpec(dt_us=1000)
    spec3.add_layer("in", 100, "input")
    spec3.add_layer("h", 8, "lif")
    spec3.add_layer("o", 4, "lif")
    spec3.connect("in", "h", weight=0.01)
    spec3.connect("h", "o", weight=0.01)
    net3 = Network(spec3)
    prof = load_profile("loihi1")
    mp = run(net3, tiny)
    # neurons per core holds by mapping; a mapping that breaks it is reported
    mp = check(quantize(net3, prof), prof)[1]
    mp.layers[0].neurons_per_core = 5000
    run(net3, prof, mp)
    assert seen["neurons_per_core"] == ("h", 5000, 1024)
    # plastic projection on a chip without on-chip learning
    spec4 = NetworkSpec(dt_us=1000)
    spec4.add_layer("in", 4, "input")
    spec4.add_layer("o", 2, "lif")
    spec4.connect("in", "o", weight=0.3, plasticity={"rule": "stdp"})
    run(Network(spec4), load_profile("spinnaker2"))
    by_construction = {"threshold_profiles", "compartment_profiles"}
    assert set(seen) | by_construction == set(RULES), set(RULES) - set(seen)
    for key in ("threshold_profiles_per_core = 8", "compartment_profiles_per_core = 32"):
        with pytest.raises(ConfigError, match="below the minimum 1"):
            _profile_with("loihi1", **{key: key.split("=")[0] + "= 0"})


@pytest.mark.parametrize("mode", ["half_even", "floor", "toward_zero", "half_away"])
def test_weights_round_as_the_profile_names(mode):
    """Mantissas are rnd(w / step) with the profile's rounding mode (step: the value of one
    mantissa unit, read back from the dequantized weights)."""
    net = small_net("cuba_lif", delays=False)
    prof = _profile_with("loihi2", **{'bits = 8\nsign = "sign_mode"\nexp_min = -7\nexp_max = 7\n'
                                      'rounding = "half_even"':
                                      'bits = 8\nsign = "sign_mode"\nexp_min = -7\nexp_max = 7\n'
                                      f'rounding = "{mode}"'})
    assert prof["weights"]["rounding"] == mode
    qm = quantize(net, prof)
    for p in qm.projections:
        nz = p.w != 0
        step = np.unique(np.round(p.w_deq[nz] / p.w[nz], 12))
        assert step.size == 1
        x = p.w_float / step[0]
        even = 2 if p.sign_mode == "mixed" else 1  # mixed sign mode: mantissas are even
        y = x / even
        ref = {"half_even": np.round(y), "floor": np.floor(y), "toward_zero": np.trunc(y),
               "half_away": np.sign(y) * np.floor(np.abs(y) + 0.5)}[mode] * even
        assert np.array_equal(p.w, np.clip(ref, -255, 255).astype(np.int64)), mode
