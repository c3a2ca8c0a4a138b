"""ANN-to-SNN conversion on scikit-learn's digits (8x8, shipped with scikit-learn): a ReLU MLP
becomes an IF network that the core runs, close to the ANN's accuracy, spike for spike equal to
a plain numpy simulation."""

from __future__ import annotations

import numpy as np
import pytest

from edgesnn.convert import (
    MANIFEST_KEY,
    ReluMLP,
    convert_mlp,
    data_scales,
    encode_rate,
    evaluate,
    model_scales,
    normalised_ann,
    simulate,
)
from edgesnn.core import Network

from .reference import simulate_if_chain

pytest.importorskip("sklearn")


def test_snn_accuracy_within_two_points_of_the_ann(digits) -> None:
    ann, x_tr, _, x_te, y_te = digits
    conv = convert_mlp(ann, x_tr[:300], percentile=99.9, steps=100)
    r = evaluate(ann, conv, x_te, y_te)
    acc = {row["steps"]: row["accuracy"] for row in r["per_steps"]}
    assert r["ann_accuracy"] > 0.93
    assert set(acc) == {10, 20, 50, 100}
    assert acc[100] >= r["ann_accuracy"] - 0.02
    assert acc[10] <= acc[100]  # fewer steps, coarser rates
    agree = {row["steps"]: row["agreement"] for row in r["per_steps"]}
    assert agree[100] > 0.95
    assert r["steps_to_ann_accuracy"] is not None and r["steps_to_ann_accuracy"] <= 100


def test_poisson_inputs_also_convert(digits) -> None:
    ann, x_tr, _, x_te, y_te = digits
    conv = convert_mlp(ann, x_tr[:300], steps=100, input_coding="poisson")
    r = evaluate(ann, conv, x_te[:200], y_te[:200], seed=1)
    assert r["per_steps"][-1]["accuracy"] >= r["ann_accuracy"] - 0.05


@pytest.mark.parametrize("coding", ["current", "poisson"])
def test_core_matches_numpy_reference_spike_for_spike(digits, coding: str) -> None:
    ann, x_tr, _, x_te, _ = digits
    conv = convert_mlp(ann, x_tr[:300], steps=60, input_coding=coding)
    spikes = conv.encode(x_te[:6], seed=3)
    sim = simulate(conv.network(), spikes)
    total = 0
    for i in range(6):
        ref = simulate_if_chain(conv.spec, spikes[i])
        np.testing.assert_array_equal(sim.out[i].astype(bool), ref)
        total += int(ref.sum())
    assert total > 6 * 20  # the outputs really spike


def test_model_file_round_trip(digits, tmp_path) -> None:
    ann, x_tr, _, x_te, _ = digits
    conv = convert_mlp(ann, x_tr[:300], steps=40)
    path = tmp_path / "digits_snn.npz"
    conv.save(path)
    net = Network.load(path)
    rec = net.manifest[MANIFEST_KEY]
    assert rec["coding"] == "rate" and rec["input_coding"] == "current" and rec["steps"] == 40
    np.testing.assert_allclose(rec["input_hi"], conv.hi)
    spikes = conv.encode(x_te[:5])
    a, b = simulate(net, spikes), simulate(conv.network(), spikes)
    np.testing.assert_array_equal(a.out, b.out)


def test_rates_follow_balanced_activations(digits) -> None:
    """Hidden IF rates over many steps approach relu(a) / lambda, clipped at 1."""
    ann, x_tr, _, x_te, _ = digits
    conv = convert_mlp(ann, x_tr[:300], percentile=99.0, steps=400)
    norm = normalised_ann(ann, conv.lo, conv.hi)
    x = x_te[:4]
    want = np.clip(norm.activations(conv.normalise(x))[0] / conv.scales[0], 0.0, 1.0)
    conv.spec.outputs = ["hidden1"]
    sim = simulate(Network(conv.spec), conv.encode(x, 400))
    rate = sim.out[:, 1:].mean(axis=1)  # hidden1 hears the input from step 1 on
    assert np.max(np.abs(rate - want)) < 0.03
    assert want.max() > 0.5


def test_balancing_scales(digits) -> None:
    ann, x_tr, *_ = digits
    top = data_scales(ann, x_tr, 100.0)
    assert top == [float(a.max()) for a in ann.activations(x_tr)]
    assert all(a <= b for a, b in zip(data_scales(ann, x_tr, 99.0), top, strict=True))
    # inputs lie in [0, 1]: the model-based bound is never below the data
    assert all(m >= t for m, t in zip(model_scales(ann), top, strict=True))
    with pytest.raises(ValueError, match="percentile"):
        data_scales(ann, x_tr, 0.0)


def test_model_based_balancing_without_data(digits) -> None:
    ann, _, _, x_te, y_te = digits
    conv = convert_mlp(ann, None, steps=300, input_range=(0.0, 1.0))
    assert conv.percentile is None
    r = evaluate(ann, conv, x_te[:150], y_te[:150])
    # safe but slow: few spikes early, close to the ANN given enough steps
    assert r["per_steps"][-1]["accuracy"] >= r["ann_accuracy"] - 0.1


def test_input_normalisation_is_folded_exactly(digits) -> None:
    ann, x_tr, *_ = digits
    x = x_tr[:50] * 16.0 - 3.0  # another input range: the folded ANN computes the same logits
    shifted = ReluMLP([ann.weights[0] / 16.0, *ann.weights[1:]],
                      [ann.biases[0] + 3.0 / 16.0 * ann.weights[0].sum(0), *ann.biases[1:]])
    np.testing.assert_allclose(shifted.logits(x), ann.logits(x_tr[:50]), atol=1e-9)
    conv = convert_mlp(shifted, x)
    norm = normalised_ann(shifted, conv.lo, conv.hi)
    np.testing.assert_allclose(norm.logits(conv.normalise(x)), shifted.logits(x), atol=1e-9)


def test_rate_encoder_matches_its_definition() -> None:
    x = np.array([[0.0, 0.25, 0.5, 1.0]])
    s = encode_rate(x, 8, "current")[0]
    assert s.sum(axis=0).tolist() == [0, 2, 4, 8]
    assert np.flatnonzero(s[:, 1]).tolist() == [3, 7]
    p = encode_rate(np.full((1, 2000), 0.3), 50, "poisson", seed=0)
    assert abs(p.mean() - 0.3) < 0.01
    with pytest.raises(ValueError, match="input coding"):
        encode_rate(x, 8, "burst")


def test_current_coding_is_the_pipeline_rate_encoder_in_regular_mode() -> None:
    """A pipeline feeds a converted model with the `rate` encoder (mode regular, one spike per
    step at x = 1): its kernel makes the same spikes as encode_rate(..., "current")."""
    from edgesnn.encoders.generic import rate_kernel

    x = np.random.default_rng(4).random((1, 37))
    x[0, :3] = [0.0, 1.0, 0.5]
    ours = encode_rate(x, 40, "current")[0]
    theirs = np.zeros((40, 37), bool)
    rate_kernel(np.repeat(x, 40, axis=0), 1.0, np.zeros((0, 37)), np.zeros(37), theirs)
    np.testing.assert_array_equal(ours, theirs)


def test_leaky_conversion_survives_a_stream_without_resets(digits) -> None:
    """IF layers carry each input's negative membranes into the next and fall silent when
    nothing resets them; lif layers forget and keep the accuracy."""
    ann, x_tr, _, x_te, y_te = digits
    x, y = x_te[:150], y_te[:150]
    exact = convert_mlp(ann, x_tr[:300], steps=100)
    leaky = convert_mlp(ann, x_tr[:300], steps=100, neuron="lif", tau_mem_ms=20.0)
    assert leaky.record()["neuron"] == "lif" and leaky.record()["tau_mem_ms"] == 20.0
    ann_acc = float(np.mean(ann.predict(x) == y))
    offline = evaluate(ann, leaky, x, y)["per_steps"][-1]["accuracy"]
    assert offline >= ann_acc - 0.03
    net = exact.network()
    net.reset()
    acc_if = np.mean(simulate(net, exact.encode(x), reset=False).decisions(100) == y)
    acc_lif = evaluate(ann, leaky, x, y, stream=True)["per_steps"][-1]["accuracy"]
    assert acc_lif >= ann_acc - 0.03
    assert acc_if < 0.5  # the measured failure this option exists for


def test_leaky_core_matches_numpy_reference(digits) -> None:
    from .reference import simulate_chain

    ann, x_tr, _, x_te, _ = digits
    conv = convert_mlp(ann, x_tr[:300], steps=50, neuron="lif", tau_mem_ms=15.0)
    spikes = conv.encode(x_te[:4])
    sim = simulate(conv.network(), spikes)
    for i in range(4):
        np.testing.assert_array_equal(sim.out[i].astype(bool), simulate_chain(conv.spec, spikes[i]))
    assert sim.out.sum() > 4 * 10
