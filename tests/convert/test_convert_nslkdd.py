"""Conversion on a real task: NSL-KDD normal vs attack, tested on attack types never seen in
training (satan, smurf, back, warezclient), with the split of examples/ann_to_snn.py."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from edgesnn.convert import ReluMLP, convert_mlp, evaluate, simulate

from .reference import simulate_if_chain

REPO_EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DATA = REPO_EXAMPLES.parent.parent / "shared" / "data" / "network" / "nsl_kdd"

pytest.importorskip("sklearn")
needs_data = pytest.mark.skipif(not (DATA / "KDDTrain+_20Percent.txt.gz").is_file(),
                                reason=f"NSL-KDD training file not found in {DATA}")


def _example():
    spec = importlib.util.spec_from_file_location("ann_to_snn", REPO_EXAMPLES / "ann_to_snn.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def kdd():
    ex = _example()
    x_tr, y_tr, x_te, y_te, desc = ex.nslkdd_split(DATA, max_train=3000, max_test=600, seed=0)
    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier((32,), activation="relu", max_iter=60, random_state=0)
        clf.fit(x_tr, y_tr)
    return ex, ex._binary_as_two_logits(clf), clf, x_tr, y_tr, x_te, y_te, desc


@needs_data
def test_split_is_by_attack_type(kdd) -> None:
    ex, *_ = kdd
    from edgesnn_drivers.network.nslkdd import read_records

    rec, labels = read_records(DATA / ex.RECORDS_FILE)
    name = np.asarray(labels)[rec["label"]]
    held = np.isin(name, ex.TEST_ATTACKS)
    assert held.sum() > 1000 and set(name[held]) == set(ex.TEST_ATTACKS)
    x_tr, y_tr, x_te, y_te, _ = ex.nslkdd_split(DATA)
    assert len(x_tr) + len(x_te) == len(rec)
    assert int(y_te.sum()) == int(held.sum())  # every test attack is a held-out type


@needs_data
def test_snn_matches_the_ann_on_held_out_attack_types(kdd) -> None:
    _, ann, clf, x_tr, _, x_te, y_te, _ = kdd
    assert np.array_equal(ann.predict(x_te), clf.predict(x_te))  # two logits, same decisions
    conv = convert_mlp(ann, x_tr[:500], percentile=99.9, steps=50)
    r = evaluate(ann, conv, x_te, y_te)
    last = r["per_steps"][-1]
    assert r["ann_accuracy"] > 0.6  # unseen attack types: far from perfect, still informative
    assert last["accuracy"] >= r["ann_accuracy"] - 0.02
    assert last["agreement"] > 0.97
    conv_p = convert_mlp(ann, x_tr[:500], steps=50, input_coding="poisson")
    rp = evaluate(ann, conv_p, x_te[:300], y_te[:300], seed=2)
    assert rp["per_steps"][-1]["agreement"] > 0.95


@needs_data
def test_core_matches_numpy_reference_on_records(kdd) -> None:
    _, ann, _, x_tr, _, x_te, _, _ = kdd
    conv = convert_mlp(ann, x_tr[:500], steps=40)
    spikes = conv.encode(x_te[:4])
    sim = simulate(conv.network(), spikes)
    for i in range(4):
        np.testing.assert_array_equal(sim.out[i].astype(bool),
                                      simulate_if_chain(conv.spec, spikes[i]))
    assert sim.out.sum() > 4 * 5


def test_relu_mlp_rejects_what_it_cannot_convert() -> None:
    from sklearn.neural_network import MLPClassifier

    x = np.random.default_rng(0).random((40, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tanh = MLPClassifier((4,), activation="tanh", max_iter=5).fit(x, np.arange(40) % 3)
        binary = MLPClassifier((4,), max_iter=5).fit(x, np.arange(40) % 2)
    with pytest.raises(ValueError, match="needs 'relu'"):
        ReluMLP.from_sklearn(tanh)
    with pytest.raises(ValueError, match="binary"):
        ReluMLP.from_sklearn(binary)


def test_example_reports_with_the_shared_harness(capsys) -> None:
    """examples/ann_to_snn.py on the digits, tiny: one JSON object in the shared report form."""
    import json

    _example().main(["--task", "digits", "--seeds", "2", "--max-iter", "20", "--steps", "20",
                     "--calibration", "200", "--ttfs", "--ttfs-window", "8", "--json"])
    r = json.loads(capsys.readouterr().out)["digits"]
    assert r["split"].startswith("digits: stratified") and r["n_test"] == 540
    assert len(r["snn"]["accuracies"]) == 2 and r["baseline"]["accuracy"] > 0.8
    assert set(r["codings"]) == {"current", "poisson", "lif", "ttfs"}
    assert r["codings"]["lif"]["per_steps"][-1]["stream_accuracy_mean"] > 0.5
    assert [q["steps"] for q in r["codings"]["current"]["per_steps"]] == [10, 20]
    assert r["codings"]["ttfs"]["per_steps"][0]["steps"] == 3 * 8 + 2
    assert r["snn"]["accuracy_mean"] == r["codings"]["current"]["per_steps"][-1]["accuracy_mean"]
