"""Xylo: profiles, hand-computed neuron arithmetic, quantization and design rules, export, and
spike-for-spike agreement with Rockpool's XyloSim (skipped when rockpool/xylosim are absent)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgesnn.core import Network
from edgesnn.deploy import load_profile, loads_profile
from edgesnn.deploy.profile import profiles_dir
from edgesnn.deploy.targets.xylo import (
    XyloEmulator,
    XyloSpec,
    check_xylo,
    emulator_for,
    quantize_xylo,
    rockpool_xylosim,
)
from edgesnn.errors import ConfigError, FormatError

from .helpers import recording

REPO = Path(__file__).resolve().parents[2]


def xnet(n_in=12, n_hid=10, n_out=3, seed=1, t_ref_ms=0.0, delay=0, reset=None):
    """A small cuba_lif network as Xylo can hold it (no refractory period, no delays)."""
    from edgesnn.core import NetworkSpec

    rng = np.random.default_rng(seed)
    spec = NetworkSpec(dt_us=1000)
    spec.add_layer("in", n_in, "input")
    kw = {"tau_mem_ms": 8.0, "tau_syn_exc_ms": 4.0, "tau_syn_inh_ms": 4.0, "t_ref_ms": t_ref_ms}
    if reset is not None:
        kw["reset"] = reset
    spec.add_layer("hid", n_hid, "cuba_lif", **kw)
    spec.add_layer("out", n_out, "cuba_lif", **kw)
    spec.connect("in", "hid", weight=rng.normal(0.6, 0.8, (n_in, n_hid)), delay_steps=delay)
    spec.connect("hid", "out", weight=rng.normal(0.5, 0.6, (n_hid, n_out)))
    return Network(spec)


def spec1(w_in=100, shift=0, dash_syn=1, dash_mem=1, th=30000, bias=0, n_out=1, w_out=0,
          th_out=30000, dash_out=1, n_in=1):
    """One hidden neuron (and n_out readout neurons) with scalar parameters."""
    wi = np.zeros((n_in, 1, 2), np.int64)
    wi[:, 0, 0] = w_in
    return XyloSpec(wi, np.zeros((1, 1, 2), np.int64), np.full((1, n_out), w_out, np.int64),
                    np.array([dash_mem]), np.array([dash_syn]), np.array([dash_syn]),
                    np.full(n_out, dash_out), np.full(n_out, dash_out), np.array([th]),
                    np.full(n_out, th_out), np.array([bias]), np.zeros(n_out, np.int64),
                    shift, 0, 0)


def run1(spec, inp, **kw):
    em = XyloEmulator(spec, **kw)
    return em, em.run(np.asarray(inp).reshape(len(inp), -1), record=True)


# --- profiles --------------------------------------------------------------------------------


def test_xylo_profiles_load_with_every_figure_sourced():
    for name, hidden, outs, syn in (("xylo_audio2", 1000, 8, 2), ("xylo_imu", 496, 16, 1)):
        p = load_profile(name)
        assert p.family == "xylo" and p.name == name
        ch = p["chip"]
        assert (ch["inputs"], ch["hidden_neurons"], ch["output_neurons"],
                ch["synapses_hidden"]) == (16, hidden, outs, syn)
        assert p["weights"]["bits"] == 8 and p["state"]["bits"] == 16
        assert p["decay"]["dash_bits"] == 4 and p["reset"]["mode"] == "subtract"
        missing = [f for f in p.figures() if f not in p["sources"]]
        assert not missing, f"{name}: figures without a source: {missing}"


def test_bad_xylo_profile_lists_every_problem_with_line():
    text = (profiles_dir() / "xylo_audio2.toml").read_text()
    bad = (text.replace("hidden_neurons = 1000", "hidden_neuron = 1000")
           .replace("dash_bits = 4", 'dash_bits = "4"')
           .replace('compare = ">="', 'compare = ">"'))
    with pytest.raises(ConfigError) as e:
        loads_profile(bad, "bad.toml")
    paths = {p.path for p in e.value.problems}
    assert {"chip.hidden_neuron", "chip.hidden_neurons", "decay.dash_bits",
            "threshold.compare"} <= paths
    assert any('did you mean "hidden_neurons"' in str(p) for p in e.value.problems)
    assert all(p.line is not None for p in e.value.problems if p.path.startswith("chip."))
    with pytest.raises(ConfigError, match="input_targets"):
        loads_profile(text.replace("input_targets = 1000", "input_targets = 2000"))


# --- the neuron, computed by hand (xylosim v2 XyloIAFNeuron::evolve) ---------------------------


def test_bitshift_decay_by_hand():
    # step 1: i = 100 - (100 >> 1) = 50; v = 0 - 0 + 50 = 50
    # step 2: i = 50 - 25 = 25;  v = 50 - (50 >> 1) + 25 = 50
    # step 3: i = 25 - 12 = 13;  v = 50 - 25 + 13 = 38
    # step 4: i = 13 - 6 = 7;    v = 38 - 19 + 7 = 26
    _, r = run1(spec1(), [1, 0, 0, 0])
    assert r["isyn"][:, 0].tolist() == [50, 25, 13, 7]
    assert r["v"][:, 0].tolist() == [50, 50, 38, 26]
    assert r["hidden"].sum() == 0


def test_small_values_decay_by_at_least_one_and_negatives_floor():
    # positive 3 >> 4 = 0 -> decays by 1 each step: 3, 2, 1, 0 (input 3 is added, then decayed)
    _, r = run1(spec1(w_in=3, dash_syn=4, dash_mem=15), [1, 0, 0, 0])
    assert r["isyn"][:, 0].tolist() == [2, 1, 0, 0]
    # negative: -5 >> 2 = -2 (floor), so -5 -> -3; -3 >> 2 = -1 -> -2; -2 -> -1; -1 -> 0
    _, r = run1(spec1(w_in=-5, dash_syn=2, dash_mem=15), [1, 0, 0, 0])
    assert r["isyn"][:, 0].tolist() == [-3, -2, -1, 0]
    # dash 0 empties a state in its own step: the input never reaches v
    _, r = run1(spec1(w_in=100, dash_syn=0), [1, 1])
    assert r["isyn"][:, 0].tolist() == [0, 0] and r["v"][:, 0].tolist() == [0, 0]


def test_subtractive_reset_several_spikes_per_step_capped_at_31():
    # bias 100 each step, threshold 30, no leak worth speaking of (dash 15):
    # step 1: v = 100 -> 3 spikes, v = 10; step 2: v = 10 - 1 + 100 = 109 -> 3 spikes, v = 19
    _, r = run1(spec1(w_in=0, dash_mem=15, th=30, bias=100), [0, 0])
    assert r["hidden"][:, 0].tolist() == [3, 3] and r["v"][:, 0].tolist() == [10, 19]
    _, r = run1(spec1(w_in=0, dash_mem=15, th=1, bias=32000), [0])
    assert r["hidden"][0, 0] == 31 and r["v"][0, 0] == 32000 - 31
    # v >= threshold spikes (not only >)
    _, r = run1(spec1(w_in=0, dash_mem=15, th=100, bias=100), [0])
    assert r["hidden"][0, 0] == 1 and r["v"][0, 0] == 0


def test_states_saturate_at_16_bits_and_input_events_cap_at_15():
    # 127 << 7 = 16256 per event: 16256, 32512, then 32767 (saturated), decayed after
    em, r = run1(spec1(w_in=127, shift=7, dash_syn=15, dash_mem=15), [3])
    assert r["isyn"][0, 0] == 32767 - 1  # 32767 >> 15 = 0 -> decays by 1
    assert em.counters["isyn_saturated"] == 1
    # 20 events arrive as 15: 15 * 10 = 150, then 150 - (150 >> 1) = 75
    _, r = run1(spec1(w_in=10), [20])
    assert r["isyn"][0, 0] == 75


def test_readout_one_step_later_one_spike_per_step():
    # hidden fires 3 spikes at step 1 (bias 100, threshold 30); each is delivered to the readout
    # at step 2: i_out = 3 * 50 = 150 -> 75 after decay; v_out = 75 >= 10 -> one spike only
    sp = spec1(w_in=0, dash_mem=15, th=30, bias=100, w_out=50, th_out=10)
    _, r = run1(sp, [0, 0, 0])
    assert r["out"][:, 0].tolist() == [0, 1, 1]
    assert r["isyn_out"][1, 0] == 75 and r["v_out"][1, 0] == 75 - 10


def test_weight_shift_wraps_like_the_int16_conversion():
    # -128 << 8 = -32768 fits; 127 << 9 = 65024 wraps to -512 as in xylosim's int16_t weight
    _, r = run1(spec1(w_in=127, shift=9, dash_syn=15, dash_mem=15), [1])
    assert r["isyn"][0, 0] == -512 + 1  # -512 >> 15 = -1


# --- quantization and design rules -------------------------------------------------------------


def test_keyword_model_does_not_fit_and_drc_says_why():
    net = Network.load(REPO / "pipelines" / "keyword_spotting.npz")
    prof = load_profile("xylo_audio2")
    xm = quantize_xylo(net, prof)
    v = {x.rule: x for x in check_xylo(xm, prof)}
    # an ensemble of 3 folded into one: 3 x 512 hidden neurons, 3 output neurons per label
    k = int(net.manifest["recipe"]["neurons_per_label"])
    assert k == 3
    assert v["inputs"].value == 160 and v["inputs"].limit == 16
    assert v["output_neurons"].value == 10 * k and v["output_neurons"].limit == 8
    assert v["hidden_neurons"].value == 512 * k and v["hidden_neurons"].limit == 1000
    assert v["reset_mode"].severity == "warning"
    # the recipe's input delay taps (0, 40, 80 ms = 0, 8, 16 steps): Xylo has no delays
    delays = [net.delay_steps(i) for i in range(len(net.projection_names))]
    if max(delays) > 0:
        assert v["delay"].value == max(delays) and v["delay"].limit == 0
    sp = xm.spec
    assert sp.weights_in.shape == (160, 512 * k, 2) and sp.weights_out.shape == (512 * k, 10 * k)
    for w in (sp.weights_in, sp.weights_out):  # int8
        assert w.min() >= -128 and w.max() <= 127
    assert sp.threshold.max() <= 1 << 14  # one bit of headroom
    # tau 20 ms at dt 5 ms: dash round(log2(tau / dt)) = 2 for the membrane and the synapse
    assert set(sp.dash_mem.tolist()) == {2} and set(sp.dash_syn.tolist()) == {2}
    v_imu = {x.rule for x in check_xylo(quantize_xylo(net, load_profile("xylo_imu")),
                                        load_profile("xylo_imu"))}
    assert {"inputs", "hidden_neurons", "input_targets", "output_sources"} <= v_imu


def test_small_model_maps_and_rules_name_topology_delays_refractory():
    prof = load_profile("xylo_audio2")
    xm = quantize_xylo(xnet(t_ref_ms=2.0, delay=2), prof)
    rules = {x.rule for x in check_xylo(xm, prof) if x.severity == "error"}
    assert rules == {"delay", "refractory"}
    xm = quantize_xylo(xnet(), prof)
    assert not [x for x in check_xylo(xm, prof) if x.severity == "error"]
    # the threshold is float v_th = 1 times the scale, made '>' on a '>=' chip
    info = xm.spec.info["hid"]
    assert info["threshold_int"] == int(np.floor(info["scale"])) + 1
    dw = xm.weights[0]
    rel = np.sqrt(np.mean((dw["w_deq"] - dw["w_float"]) ** 2)) / np.sqrt(np.mean(dw["w_float"]**2))
    assert rel < 0.01  # int8 with the full mantissa range used


def test_spec_round_trip_and_bad_file(tmp_path):
    prof = load_profile("xylo_audio2")
    sp = quantize_xylo(xnet(), prof).spec
    sp.save(tmp_path / "spec.npz")
    back = XyloSpec.load(tmp_path / "spec.npz")
    for k in XyloSpec.ARRAYS:
        assert np.array_equal(getattr(back, k), getattr(sp, k)), k
    assert back.layers == sp.layers and back.weight_shift_in == sp.weight_shift_in
    with np.load(tmp_path / "spec.npz", allow_pickle=False) as z:
        assert z["weights_in"].dtype == np.int64 and "dt" in z.files
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(FormatError, match="not a Xylo specification"):
        XyloSpec.load(tmp_path / "bad.npz")


def test_deploy_writes_report_and_rockpool_spec(tmp_path):
    from edgesnn.deploy.floatmodel import FloatModel
    from edgesnn.deploy.targets.xylo import deploy_xylo
    from edgesnn.deploy.targets.xylo import summary_json as xsummary

    net = xnet()
    ptr, idx, sp = recording(n_in=12, steps=120)
    np.savez(tmp_path / "rec.npz", in_ptr=ptr, in_idx=idx, sample_ptr=sp,
             labels=np.array([0, 1]))
    out = tmp_path / "out"
    prof = load_profile("xylo_audio2")
    rep = deploy_xylo(net, FloatModel.from_network(net), prof, out, tmp_path / "rec.npz",
                      progress=False)  # fmt: skip
    summ = xsummary(rep)
    assert summ["fits"] and summ["family"] == "xylo" and summ["verdict"].startswith("FITS")
    assert {f["family"] for f in summ["rule_families"]} >= {"size", "connectivity"}
    rep = json.loads((out / "report.json").read_text())
    assert rep["check"]["samples"] == 2 and "quantized_accuracy" in rep["check"]["readout"]
    assert rep["check"]["layers"]["hid"]["float_spikes"] > 0
    assert (out / "xylo" / "spec.npz").is_file() and (out / "summary.txt").is_file()
    assert "verdict: FITS xylo_audio2" in (out / "summary.txt").read_text()
    rep2 = deploy_xylo(net, FloatModel.from_network(net), load_profile("xylo_imu"),
                       tmp_path / "o2", progress=False)  # fmt: skip
    assert rep2["fits"] and rep2["xylo"]["hidden"] == 10 and "check" not in rep2


# --- Rockpool's XyloSim ------------------------------------------------------------------------


def _sim(n_syn):
    cls = rockpool_xylosim(n_syn)
    if cls is None:
        pytest.skip("rockpool and xylosim are not installed (pip install 'edgesnn[xylo]')")
    return cls


def _random_spec(rng, n_in, n_h, n_out, n_syn):
    wi = rng.integers(-128, 128, (n_in, n_h, 2)) * (rng.random((n_in, n_h, 2)) < 0.5)
    wr = rng.integers(-128, 128, (n_h, n_h, 2)) * (rng.random((n_h, n_h, 2)) < 0.25)
    if n_syn == 1:
        wi[:, :, 1] = 0
        wr[:, :, 1] = 0
    wo = rng.integers(-128, 128, (n_h, n_out)) * (rng.random((n_h, n_out)) < 0.6)
    return XyloSpec(wi, wr, wo, rng.integers(0, 16, n_h), rng.integers(0, 16, n_h),
                    rng.integers(0, 16, n_h), rng.integers(0, 16, n_out),
                    rng.integers(0, 16, n_out), rng.integers(1, 3000, n_h),
                    rng.integers(1, 3000, n_out), rng.integers(-500, 500, n_h),
                    rng.integers(-500, 500, n_out), *(int(x) for x in rng.integers(0, 8, 3)))


@pytest.mark.parametrize("n_syn", [2, 1])
def test_random_networks_identical_to_xylosim(n_syn):
    sim = _sim(n_syn)
    rng = np.random.default_rng(10 + n_syn)
    for trial in range(4):
        sp = _random_spec(rng, 6, 14, 4, n_syn)
        inp = rng.integers(0, 18 if trial % 2 else 3, (100, 6))
        r = XyloEmulator(sp, n_syn=n_syn).run(inp, record=True)
        out, _, rec = sim.from_specification(**sp.rockpool_kwargs(n_syn)).evolve(inp,
                                                                                 record=True)
        assert np.array_equal(out, r["out"]), trial
        assert np.array_equal(rec["Spikes"], r["hidden"]), trial
        assert np.array_equal(rec["Vmem"], r["v"]) and np.array_equal(rec["Isyn"], r["isyn"])
        assert np.array_equal(rec["Vmem_out"], r["v_out"])
        if n_syn == 2:
            assert np.array_equal(rec["Isyn2"], r["isyn2"])


def test_quantized_model_identical_to_xylosim_from_exported_file(tmp_path):
    sim = _sim(2)
    prof = load_profile("xylo_audio2")
    xm = quantize_xylo(xnet(n_hid=20), prof)
    xm.spec.save(tmp_path / "spec.npz")
    spec = XyloSpec.load(tmp_path / "spec.npz")
    ptr, idx, _ = recording(n_in=12, steps=150, p=0.3)
    from edgesnn.deploy.targets.xylo import raster

    inp = raster(ptr, idx, 12)
    r = emulator_for(xm.spec, prof).run(inp)
    out, _, rec = sim.from_specification(**spec.rockpool_kwargs()).evolve(inp, record=True)
    assert r["hidden"].sum() > 50 and r["out"].sum() > 5
    assert np.array_equal(out, r["out"]) and np.array_equal(rec["Spikes"], r["hidden"])


def test_subtractive_reset_model_deploys_to_xylo_imu_identical_to_xylosim(tmp_path, capsys):
    """A model trained with the chip's reset (reset = "subtract") passes the reset rule; the
    quantizer maps it as any other (the chip always subtracts), and XyloSim runs it as the
    emulation does."""
    from edgesnn.cli import main
    from edgesnn.deploy.targets.xylo import raster

    prof = load_profile("xylo_imu")
    sub, zero = xnet(n_hid=20, reset="subtract"), xnet(n_hid=20)
    xs, xz = quantize_xylo(sub, prof), quantize_xylo(zero, prof)
    assert not check_xylo(xs, prof)  # every rule passes, reset_mode included
    assert [v.rule for v in check_xylo(xz, prof)] == ["reset_mode", "reset_mode"]
    assert all(v.severity == "warning" for v in check_xylo(xz, prof))
    assert any("fires up to 31 times per step" in n for n in xs.notes)
    for k, v in vars(xs.spec).items():  # the same chip configuration
        if isinstance(v, np.ndarray):
            assert np.array_equal(v, getattr(xz.spec, k)), k
    sub.save(tmp_path / "sub.npz")
    rc = main(["deploy", str(tmp_path / "sub.npz"), "--profile", "xylo_imu", "--out",
               str(tmp_path / "d"), "--no-progress", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert rc == 0 and summary["fits"] and summary["violations"] == []
    ptr, idx, _ = recording(n_in=12, steps=150, p=0.3)
    inp = raster(ptr, idx, 12)
    r = emulator_for(xs.spec, prof).run(inp)
    assert r["hidden"].sum() > 50 and r["out"].sum() > 5
    sim = _sim(int(prof["chip"]["synapses_hidden"]))
    spec = XyloSpec.load(tmp_path / "d" / "xylo" / "spec.npz")
    out, _, rec = sim.from_specification(**spec.rockpool_kwargs(1)).evolve(inp, record=True)
    assert np.array_equal(out, r["out"]) and np.array_equal(rec["Spikes"], r["hidden"])


def test_class_votes_follow_the_recordings_output_owners():
    from types import SimpleNamespace

    from edgesnn.deploy.targets.xylo.report import _votes

    counts = np.array([[3, 0, 2, 2], [0, 1, 0, 0]])
    assert _votes(counts, SimpleNamespace()).tolist() == counts.tolist()
    rec = SimpleNamespace(owner=np.array([0, 1, 1, -1]), label_names=["a", "b"])
    assert _votes(counts, rec).tolist() == [[3, 2], [0, 1]]


def test_train_and_deploy_commands_with_a_xylo_profile(tmp_path, capsys):
    from edgesnn.cli import main

    fsdd = REPO.parent / "shared" / "data" / "audio" / "fsdd"
    if not fsdd.is_dir():
        pytest.skip(f"FSDD recordings not found at {fsdd}")
    wavs = [str(fsdd / f"{d}_jackson_{i}.wav") for d in (0, 1) for i in (0, 1)]
    model = tmp_path / "m.npz"
    rc = main(["train", "--recordings", *wavs, "--out", str(model), "--hidden", "8",
               "--epochs", "1", "--batch-size", "4", "--profile", "xylo_imu",
               "--input-delays-ms", "0", "--progress-every-s", "0"])  # Xylo has no delays
    out = capsys.readouterr().out
    # the recipe's encoder makes 160 channels: the chip's 16 inputs say no, by name
    assert rc == 1 and "profile xylo_imu: the trained model breaks" in out
    check = json.loads((tmp_path / "m.npz.report.json").read_text())["profile_check"]
    assert [v["rule"] for v in check["violations"]] == ["inputs"]
    assert Network.load(model).manifest["layers"][1]["params"]["t_ref_ms"] == 0.0
    rc = main(["deploy", str(model), "--profile", "xylo_imu", "--out", str(tmp_path / "d"),
               "--recordings", *wavs, "--no-progress", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert rc == 1 and summary["family"] == "xylo" and not summary["fits"]
    assert summary["verdict"].startswith("DOES NOT FIT xylo_imu: 1 violation(s) of inputs")
    c = summary["check"]
    assert c["samples"] == 4 and c["accuracy_loss_points"] == pytest.approx(
        100 * (c["float_accuracy"] - c["quantized_accuracy"]))
    assert (tmp_path / "d" / "xylo" / "spec.npz").is_file()


def test_imu_readout_reads_only_the_last_hidden_neurons():
    prof = load_profile("xylo_imu")
    sp = spec1()
    n_h = 200
    sp.weights_rec = np.zeros((n_h, n_h, 2), np.int64)
    for k in ("dash_mem", "dash_syn", "dash_syn_2", "threshold", "bias"):
        setattr(sp, k, np.resize(getattr(sp, k), n_h))
    from edgesnn.deploy.targets.xylo import XyloModel

    for first, bad in ((n_h - 128, False), (n_h - 129, True)):
        sp.weights_out = np.zeros((n_h, 1), np.int64)
        sp.weights_out[first:, 0] = 5
        sp.weights_in = np.zeros((1, n_h, 2), np.int64)
        sp.weights_in[0, :128, 0] = 5
        rules = {v.rule: v for v in check_xylo(XyloModel(sp), prof)}
        assert ("output_sources" in rules) == bad
        assert "input_targets" not in rules
    assert rules["output_sources"].value == 129
