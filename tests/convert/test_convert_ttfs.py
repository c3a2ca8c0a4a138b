"""Time-to-first-spike conversion: one spike per neuron, its time coding the ReLU activation,
the core spike for spike equal to a numpy simulation, accuracy close to the ANN on digits."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from edgesnn.convert import ReluMLP, convert_mlp, evaluate, normalised_ann, simulate
from edgesnn.convert.ttfs import clock_steps, encode_latency
from edgesnn.core import Network

from .reference import simulate_chain

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def deep(digits) -> tuple[ReluMLP, np.ndarray, np.ndarray]:
    """A 64-32-16-10 MLP on the digits' training part (two hidden layers: two forced windows)."""
    from sklearn.neural_network import MLPClassifier

    _, x_tr, y_tr, x_te, y_te = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier((32, 16), activation="relu", max_iter=150, random_state=0)
        clf.fit(x_tr, y_tr)
    return ReluMLP.from_sklearn(clf), x_tr, x_te


def test_ttfs_accuracy_close_to_the_ann(digits) -> None:
    ann, x_tr, _, x_te, y_te = digits
    conv = convert_mlp(ann, x_tr[:500], coding="ttfs", steps=32)
    r = evaluate(ann, conv, x_te, y_te)
    row = r["per_steps"][-1]
    assert row["steps"] == conv.default_steps() == 2 * 32 + 32 + 2
    assert row["accuracy"] >= r["ann_accuracy"] - 0.02
    assert row["agreement"] > 0.97
    # sparse: about one synaptic event per weight (each neuron spikes once), unlike rate coding
    assert r["synaptic_events_per_input"] < 2.5 * ann.macs
    assert 2 * 32 <= r["first_output_spike_step_mean"] < 3 * 32 + 2


def test_core_matches_numpy_reference_spike_for_spike(deep) -> None:
    ann, x_tr, x_te = deep
    conv = convert_mlp(ann, x_tr[:300], coding="ttfs", steps=10)
    spikes = conv.encode(x_te[:5])
    for layer in ("hidden1", "hidden2", "out", "latch"):
        conv.spec.outputs = [layer]
        sim = simulate(Network(conv.spec), spikes)
        for i in range(5):
            np.testing.assert_array_equal(sim.out[i].astype(bool),
                                          simulate_chain(conv.spec, spikes[i]), err_msg=layer)


def test_every_hidden_neuron_spikes_once_at_its_coded_time(deep) -> None:
    ann, x_tr, x_te = deep
    T = 16
    conv = convert_mlp(ann, x_tr[:500], coding="ttfs", steps=T)
    x = x_te[:40]
    spikes = conv.encode(x)
    conv.spec.outputs = ["hidden1"]
    out = simulate(Network(conv.spec), spikes).out
    assert np.all(out.sum(axis=1) == 1)  # once each, the silent ones forced at the window end
    step = np.argmax(out, axis=1)  # (n, 32)
    assert step.max() == 2 * T
    n_coded = 2 * T - step  # the activation, in 1/T, that the spike time codes
    norm = normalised_ann(ann, conv.lo, conv.hi)
    a = norm.activations(conv.normalise(x))[0] / conv.scales[0]
    inside = (a > 0) & (a < 1)
    err = np.abs(n_coded[inside] - T * a[inside])
    assert np.mean(err <= 1.5) > 0.95  # rounding of inputs and of the neuron: about a step
    assert np.all(n_coded[a <= 0] <= 1)


def test_latency_encoding_and_clocks() -> None:
    s = encode_latency(np.array([[1.0, 0.5, 0.0, 0.26]]), 8, 12)[0]
    assert s.sum(axis=0).tolist() == [1, 1, 1, 1]
    assert np.argmax(s, axis=0).tolist() == [0, 4, 8, 6]
    assert encode_latency(np.array([[0.0]]), 8, 8).sum() == 0  # step 8 is past the end
    assert clock_steps(3, 10) == [0, 10, 20, 30, 19, 29]
    with pytest.raises(ValueError, match="ttfs coding takes latency"):
        convert_mlp(ReluMLP([np.ones((2, 2))], [np.zeros(2)]), coding="ttfs",
                    input_coding="poisson")
