"""The shipped keyword models on every shipped chip profile, and deploy's decision over groups
of output neurons.

The spoken-digit model of the 5 ms recipe (pipelines/keyword_spotting.npz) fits the Loihi
profiles; SpiNNaker steps at most 1 ms and has one synaptic time constant per synapse type, so
pipelines/keyword_spotting_spinnaker.npz is the same recipe trained with `--profile
spinnaker2` (1 ms). On a few shared FSDD recordings the emulation must fit and lose at most
one point of accuracy against the float model, decided by the runtime's rule (most spikes; a
tie or silence is no decision) after the model's tail steps. The full measurement (all 600
shared recordings and held-out ones) is in README.md, "Deploying to neuromorphic chips".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgesnn.core import Network, NetworkSpec
from edgesnn.deploy import deploy
from edgesnn.deploy.recordings import labelled_recording, output_groups
from edgesnn.deploy.report import DeployRecording
from edgesnn.evaluation import decide

REPO = Path(__file__).resolve().parents[2]
FSDD = REPO.parent / "shared" / "data" / "audio" / "fsdd"
#: the shipped keyword model for each shipped chip profile
KEYWORD_MODELS = {
    "loihi1": "keyword_spotting.npz",
    "loihi2": "keyword_spotting.npz",
    "spinnaker1": "keyword_spotting_spinnaker.npz",
    "spinnaker2": "keyword_spotting_spinnaker.npz",
}
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


@pytest.mark.parametrize("profile", sorted(KEYWORD_MODELS))
def test_shipped_keyword_model_loses_at_most_a_point_on_chip(profile: str,
                                                             tmp_path: Path) -> None:
    if not FSDD.is_dir():
        pytest.skip(f"FSDD recordings not found at {FSDD}")
    # one recording of every digit, by each speaker in turn, indices 0-9 (shared data)
    wavs = [str(FSDD / f"{d}_{SPEAKERS[d % 6]}_{(3 * d) % 10}.wav") for d in range(10)]
    net = Network.load(REPO / "pipelines" / KEYWORD_MODELS[profile])
    rec = labelled_recording(net, wavs)
    assert rec.n_samples == 10 and rec.labels.tolist() == list(range(10))
    rep = deploy(net, profile, tmp_path / "d", rec, progress=False)
    assert rep["fits"], rep["violations"]
    ro = rep["check"]["readout"]
    assert rep["check"]["tail_steps"] == net.manifest["recipe"]["tail_steps"]
    assert ro["float_accuracy"] >= 0.8  # a working model (these are training recordings)
    assert ro["accuracy_loss_points"] <= 1.0, ro
    assert ro["agreement"] >= 0.9


def test_spinnaker_keyword_model_is_the_recipe_at_one_millisecond() -> None:
    net = Network.load(REPO / "pipelines" / "keyword_spotting_spinnaker.npz")
    free = Network.load(REPO / "pipelines" / "keyword_spotting.npz")
    rec, ref = net.manifest["recipe"], free.manifest["recipe"]
    assert rec["profile"] == "spinnaker2" and net.dt_us == 1000
    assert rec["encoder"] == ref["encoder"] and rec["labels"] == ref["labels"]
    assert rec["tail_steps"] * net.dt_us == ref["tail_steps"] * free.dt_us  # 100 ms both
    assert net.n_inputs == free.n_inputs
    per_label = [m.manifest["recipe"].get("neurons_per_label") or 1 for m in (net, free)]
    assert [m.n_outputs // k for m, k in zip((net, free), per_label)] == [10, 10]


def grouped_model() -> Network:
    """4 inputs -> 4 outputs in label groups a = (0, 1), b = (2, 3): input 0 drives output 0
    alone, input 1 drives outputs 2 and 3 together, input 2 drives outputs 1 and 2."""
    spec = NetworkSpec(dt_us=1000)
    spec.add_layer("in", 4, "input")
    spec.add_layer("out", 4, "lif", tau_mem_ms=20.0, v_th=1.0, t_ref_ms=0.0)
    w = np.zeros((4, 4))
    w[0, 0] = 1.5
    w[1, 2] = w[1, 3] = 1.5
    w[2, 1] = w[2, 2] = 1.5
    spec.connect("in", "out", weight=w)
    net = Network(spec)
    net.manifest["recipe"] = {"labels": ["a", "b"], "tail_steps": 2}
    return net


def test_deploy_decides_over_groups_of_output_neurons(tmp_path: Path) -> None:
    net = grouped_model()
    labels, owner, where = output_groups(net.manifest, net.n_outputs)
    assert labels == ["a", "b"] and owner.tolist() == [0, 0, 1, 1] and where == "model recipe"
    # samples of 12 steps: input 0 three times as often as input 1 (one neuron of a outspikes
    # each neuron of b, but b's two neurons together spike more), input 0 alone, input 2 alone
    plan = [({0: 3, 1: 4}, 1), ({0: 2}, 0), ({2: 2}, 0)]
    rows: list[list[int]] = []
    for rates, _ in plan:
        rows += [[ch for ch, every in rates.items() if k % every == 0] for k in range(12)]
    ptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    idx = np.asarray([c for r in rows for c in r], np.int32)
    sp = np.arange(0, 12 * len(plan) + 1, 12, dtype=np.int64)
    y = np.asarray([lab for _, lab in plan], np.int64)
    rec = DeployRecording(ptr, idx, sp, y, label_names=labels, owner=owner)
    # what the runtime's spike_count readout (neurons_per_label = 2) decides, by hand
    want, per_neuron = [], []
    for s in range(len(plan)):
        a, b = int(sp[s]), int(sp[s + 1])
        net.reset()
        run = net.run(np.concatenate([ptr[a : b + 1] - ptr[a], np.full(2, ptr[b] - ptr[a])]),
                      idx[ptr[a] : ptr[b]])
        c = np.bincount(run.idx, minlength=4)
        want.append(int(decide(c.reshape(2, 2).sum(axis=1))))
        per_neuron.append(int(decide(c)))
    assert want == [1, 0, -1]  # b by its group; a; a tie between the groups: no decision
    assert per_neuron[0] == 0  # one neuron per class would have said a
    rep = deploy(net, "loihi2", tmp_path / "d", rec, progress=False)
    ro = rep["check"]["readout"]
    assert ro["float_classes"] == want and ro["labels"] == ["a", "b"]
    assert ro["float_accuracy"] == pytest.approx(2 / 3) and ro["float_undecided"] == 1
