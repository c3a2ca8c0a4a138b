"""`edgesnn deploy` end to end, exports, maximum delays, STDP models, the pipeline component."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgesnn.components import BuildContext
from edgesnn.core import Network, NetworkSpec
from edgesnn.deploy import Emulator, QuantizedModel, load_profile, quantize, read_nir
from edgesnn.errors import ConfigError
from edgesnn.events import SpikeRaster

from .helpers import recording, small_net


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "edgesnn", "deploy", *args],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def model_and_recording(tmp_path):
    net = small_net("cuba_lif")
    net.save(tmp_path / "model.npz")
    ptr, idx, sp = recording(steps=200, samples=4)
    np.savez(tmp_path / "rec.npz", in_ptr=ptr, in_idx=idx, sample_ptr=sp,
             labels=np.array([0, 1, 2, 3]))
    return tmp_path


@pytest.mark.parametrize("profile", ["loihi2", "spinnaker1"])
def test_cli_deploy_end_to_end(model_and_recording, profile):
    d = model_and_recording
    out = d / f"out_{profile}"
    r = _cli(str(d / "model.npz"), "--profile", profile, "--check-on", str(d / "rec.npz"),
             "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "readout agreement" in r.stdout and "energy per inference" in r.stdout
    rep = json.loads((out / "report.json").read_text())
    assert rep["fits"] and rep["profile"] == profile and rep["cores_used"] >= 2
    assert {w["projection"] for w in rep["weights"]} == {"in->hid", "hid->out"}
    assert all(w["relative_rms_error"] < 0.01 for w in rep["weights"])
    hid = rep["check"]["layers"]["hid"]
    assert hid["float_spikes"] > 0 and len(hid["float_counts"]) == 16
    assert rep["check"]["readout"]["agreement"] >= 0.75
    assert len(rep["check"]["readout"]["quantized_classes"]) == 4
    assert "quantized_accuracy" in rep["check"]["readout"]
    e = rep["energy_per_inference"]
    prof = load_profile(profile)
    assert e["joules"] == pytest.approx((e["synops"] * prof["energy"]["synop_pj"]
                                         + e["neuron_updates"] * prof["energy"]["neuron_update_pj"]) * 1e-12)
    for f in rep["files"]:
        assert (out / f).is_file(), f
    # the quantized model file reloads and emulates identically
    qm = QuantizedModel.load(out / "quantized.npz")
    ptr, idx, _ = recording(steps=50)
    a = Emulator(qm).run(ptr, idx)
    b = Emulator(quantize(Network.load(d / "model.npz"), prof)).run(ptr, idx)
    assert all(np.array_equal(a[k][1], b[k][1]) for k in a)


def test_cli_exit_codes(model_and_recording, tmp_path):
    d = model_and_recording
    r = _cli(str(d / "model.npz"), "--profile", "nochip", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "shipped" in r.stderr
    bad = tmp_path / "bad.npz"
    np.savez(bad, in_ptr=np.array([0, 5]), in_idx=np.array([1, 2]))
    r = _cli(str(d / "model.npz"), "--profile", "loihi1", "--check-on", str(bad),
             "--out", str(tmp_path / "y"))
    assert r.returncode == 2 and "in_ptr" in r.stderr
    # a violation: exit 1, report still written
    spec = NetworkSpec(dt_us=1000)
    spec.add_layer("in", 4, "input")
    spec.add_layer("o", 2, "lif")
    spec.connect("in", "o", weight=0.5, delay_steps=70)
    Network(spec).save(tmp_path / "long.npz")
    r = _cli(str(tmp_path / "long.npz"), "--profile", "loihi1", "--out", str(tmp_path / "z"))
    assert r.returncode == 1 and "delay_range" in r.stdout
    rep = json.loads((tmp_path / "z" / "report.json").read_text())
    v = [x for x in rep["violations"] if x["rule"] == "delay_range"][0]
    assert (v["value"], v["limit"], v["layer"]) == (70, 62, "o")


@pytest.mark.parametrize("profile,delay", [("loihi1", 62), ("loihi2", 63), ("spinnaker1", 143)])
def test_maximum_delay_arrives_on_time(profile, delay):
    """A spike at step 0 over a synapse of the largest delay acts at step 1 + delay."""
    spec = NetworkSpec(dt_us=1000)
    spec.add_layer("in", 1, "input")
    spec.add_layer("o", 1, "lif", tau_mem_ms=5.0)
    spec.connect("in", "o", weight=2.0, delay_steps=delay)
    prof = load_profile(profile)
    qm = quantize(Network(spec), prof)
    from edgesnn.deploy import check

    assert not [v for v in check(qm, prof)[0] if v.rule == "delay_range"]
    assert int(qm.projections[0].delay[0]) == delay + prof["delay"]["offset"]
    em = Emulator(qm)
    fired = [k for k in range(delay + 4) if em.step(np.array([0] if k == 0 else [])).size]
    assert fired == [1 + delay]


def test_nir_export_round_trip(model_and_recording):
    d = model_and_recording
    from edgesnn.deploy import deploy

    deploy(d / "model.npz", "loihi2", d / "o", progress=False)
    g = read_nir(d / "o" / "model.nir")
    assert g["version"] == "1.0.7" and g["node"]["type"] == "NIRGraph"
    nodes = g["node"]["nodes"]
    assert nodes["in"]["type"] == "Input" and nodes["hid"]["type"] == "CubaLIF"
    assert nodes["output_out"]["type"] == "Output"
    net = Network.load(d / "model.npz")
    W = np.asarray(net.weights("hid->out"))
    aff = [n for k, n in nodes.items() if n["type"] == "Affine"
           and n["metadata"]["edgesnn_projection"] == "hid->out"]
    assert len(aff) == 1 and np.allclose(aff[0]["weight"], W.T, atol=1e-6)
    # in->hid has per-synapse delays: one Affine (and Delay) per delay value; they sum to W
    parts = [n for n in nodes.values() if n["type"] == "Affine"
             and n["metadata"]["edgesnn_projection"] == "in->hid"]
    W0 = np.asarray(net.weights(0)).reshape(20, 16)  # sparse CSR order = row-major here
    assert np.allclose(sum(p["weight"] for p in parts), W0.T, atol=1e-6)
    assert any(n["type"] == "Delay" for n in nodes.values())
    edges = {tuple(e) for e in g["node"]["edges"]}
    name = next(k for k, n in nodes.items() if n is aff[0])
    assert ("hid", name) in edges and (name, "out") in edges
    # Euler reading: tau_syn = dt/(1-d), w_in = tau_syn/dt, r = 1
    d_syn = np.exp(-1 / 5.0)
    assert np.allclose(nodes["hid"]["tau_syn"], 1e-3 / (1 - d_syn), rtol=1e-6)
    assert np.allclose(nodes["hid"]["w_in"], 1 / (1 - d_syn), rtol=1e-6)
    q = json.loads(nodes["hid"]["metadata"]["quantized"])
    side = json.loads((d / "o" / "model.nir.quant.json").read_text())
    assert q["params"] == side["layers"]["hid"]["params"]
    assert g["node"]["metadata"]["per_hop_delay_steps"] == 1


def test_toolchain_files(model_and_recording):
    d = model_and_recording
    from edgesnn.deploy import deploy

    deploy(d / "model.npz", "loihi1", d / "l", progress=False)
    doc = json.loads((d / "l" / "loihi" / "network.json").read_text())
    qm = QuantizedModel.load(d / "l" / "quantized.npz")
    hid = next(x for x in doc["layers"] if x["name"] == "hid")
    assert hid["du"] == qm.layer("hid").params["decay_u"] and hid["vth"] > 0
    with np.load(d / "l" / "loihi" / "weights.npz") as z:
        Wm = z["in->hid.weights"]
        assert Wm.shape == (16, 20)
        p = qm.projections[0]
        assert np.array_equal(Wm[p.post, p.pre], p.w)
    pr = doc["projections"][0]
    assert pr["process"] == "DelayDense" and pr["sign_mode"] in (1, 2, 3)
    deploy(d / "model.npz", "spinnaker1", d / "s", progress=False)
    doc = json.loads((d / "s" / "pynn" / "network.json").read_text())
    pops = {p["label"]: p for p in doc["populations"]}
    assert pops["in"]["cellclass"] == "SpikeSourceArray"
    assert pops["hid"]["cellclass"] == "IF_curr_exp"
    cp = pops["hid"]["cellparams"]
    assert cp["v_rest"] == -65.0 and cp["v_thresh"] > -50.0 and cp["tau_refrac"] == 1.0
    assert cp["tau_syn_E"] == pytest.approx(5.0)
    conns = [c for p in doc["projections"] if p["name"] == "in->hid" for c in p["connections"]]
    assert len(conns) == 320 and min(c[3] for c in conns) >= 1.0  # delay + 1 step, ms
    assert (d / "s" / "pynn" / "build_pynn.py").read_text().startswith('"""Build')


def _stdp_net():
    rng = np.random.default_rng(3)
    spec = NetworkSpec(dt_us=1000)
    spec.add_layer("in", 12, "input")
    spec.add_layer("out", 3, "lif", tau_mem_ms=10.0)
    spec.connect("in", "out", weight=rng.uniform(0.2, 0.5, (12, 3)),
                 plasticity={"rule": "stdp", "a_plus": 0.05, "a_minus": 0.04, "w_max": 1.0})
    net = Network(spec)
    ptr, idx, _ = recording(n_in=12, steps=300, p=0.3)
    w0 = np.asarray(net.weights(0)).copy()
    net.run(ptr, idx)
    assert not np.allclose(w0, net.weights(0))  # it learned
    return net


@pytest.mark.parametrize("profile,can", [("loihi2", True), ("spinnaker1", True),
                                         ("spinnaker2", False)])
def test_stdp_model_deploys_and_report_says_if_it_can_learn(tmp_path, profile, can):
    net = _stdp_net()
    net.save(tmp_path / "stdp.npz")
    r = _cli(str(tmp_path / "stdp.npz"), "--profile", profile, "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stdout + r.stderr  # learning is a warning, not a violation
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    assert rep["learning"]["plastic_projections"] == ["in->out"]
    assert rep["learning"]["can_learn_on_chip"] is can
    warn = [v for v in rep["violations"] if v["rule"] == "on_chip_learning"]
    if can:
        assert not warn
    else:
        assert warn and warn[0]["severity"] == "warning"
        assert "cannot learn on chip" in r.stdout
    qm = QuantizedModel.load(tmp_path / "o" / "quantized.npz")
    loaded = Network.load(tmp_path / "stdp.npz")
    assert np.allclose(qm.projections[0].w_float, np.asarray(loaded.weights(0)).ravel())


def test_pipeline_component_runs_live(model_and_recording, tmp_path):
    from edgesnn.components import lookup

    cls = lookup("network", "quantized_snn")
    d = model_and_recording
    ctx = BuildContext(dt_us=1000, base_dir=str(d))
    comp = cls("chip", {"model": "model.npz", "profile": "loihi2"}, ctx)
    assert comp.n_inputs == 20 and comp.n_outputs == 4
    ptr, idx, _ = recording(steps=100)
    ras = SpikeRaster("enc", 0, 0, 1000, 20, ptr, idx)
    out = comp.process(ras)
    em = Emulator(quantize(Network.load(d / "model.npz"), load_profile("loihi2")))
    ref = [em.step(idx[ptr[k]:ptr[k + 1]]) for k in range(100)]
    assert out.n_steps == 100 and out.n_channels == 4
    assert np.array_equal(out.idx, np.concatenate(ref))
    assert comp.status()["steps"] == 100
    # a quantized file works too; wrong profile / missing profile are config errors
    from edgesnn.deploy import deploy

    deploy(d / "model.npz", "loihi2", d / "q", progress=False)
    comp2 = cls("chip", {"model": "q/quantized.npz", "profile": ""}, ctx)
    assert np.array_equal(comp2.process(ras).idx, out.idx)
    with pytest.raises(ConfigError, match="quantized for"):
        cls("chip", {"model": "q/quantized.npz", "profile": "spinnaker1"}, ctx)
    with pytest.raises(ConfigError, match="needs a profile"):
        cls("chip", {"model": "model.npz", "profile": ""}, ctx)
    with pytest.raises(ConfigError, match="networks.chip.model"):
        cls("chip", {"model": "missing.npz", "profile": "loihi1"}, ctx)
    assert comp.check([]) == [] and cls("c", {"model": "model.npz", "profile": "loihi1"},
                                        BuildContext(dt_us=500, base_dir=str(d))).check([])
