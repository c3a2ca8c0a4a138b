"""Ensembles folded into one network: spike for spike the members side by side."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgesnn.train import TrainConfig, evaluate, train
from edgesnn.train.ensemble import fold, label_scores
from edgesnn.train.model import FeedforwardSNN, LayerDef
from edgesnn.train.recipe import make_recipe, save_model

from .test_train import synthetic


def member(seed: int, hidden: tuple[int, ...] = (6, 5)) -> FeedforwardSNN:
    p = {"tau_mem_ms": 10.0, "tau_syn_exc_ms": 4.0}
    layers = [LayerDef(f"h{i + 1}", n, "cuba_lif", dict(p)) for i, n in enumerate(hidden)]
    layers.append(LayerDef("out", 3, "cuba_lif", dict(p)))
    m = FeedforwardSNN(18, layers, 1000, seed=seed, init_gain=3.0, input_delays=[0, 2],
                       layer_delays=[0, 1])
    rng = np.random.default_rng(seed + 100)
    m.biases = [rng.normal(0.05, 0.05, lay.n) for lay in layers]
    return m


def core_counts(model: FeedforwardSNN, ds, n_steps_tail: int = 5) -> np.ndarray:
    """Per output neuron spike counts of the core network, each sample from reset."""
    net = model.to_network()
    out = np.zeros((len(ds), model.n_outputs), np.int64)
    for i in range(len(ds)):
        ptr, idx = ds.sample(i)
        ptr = np.concatenate([ptr, np.full(n_steps_tail, ptr[-1])])
        net.reset()
        rec = net.run(ptr, idx)
        out[i] = np.bincount(rec.idx, minlength=model.n_outputs)[: model.n_outputs]
    return out


def test_folded_network_counts_are_the_members_counts() -> None:
    ds = synthetic(9, 3)
    members = [member(s) for s in (1, 2, 3)]
    one = [core_counts(m, ds) for m in members]
    assert all(c.sum() > 0 for c in one)  # every member speaks: the check means something
    folded = fold(members)
    assert folded.neurons_per_label == 3 and folded.n_outputs == 9
    assert [lay.n for lay in folded.layers] == [18, 15, 9]
    both = core_counts(folded, ds)
    for m in range(3):  # label-major: neuron l*3 + m is member m's neuron l
        assert np.array_equal(both[:, m::3], one[m])
    assert np.array_equal(label_scores(both, 3), sum(one))
    # the trainer's forward pass of the folded model agrees with the core's
    ev = evaluate(folded, ds, TrainConfig(tail_steps=5))
    assert ev.scores.shape == (9, 3) and np.array_equal(ev.scores, sum(one))


def test_fold_refuses_members_of_different_shape() -> None:
    with pytest.raises(ValueError, match="one architecture"):
        fold([member(1), member(2, hidden=(6, 4))])
    assert fold([member(1)]).neurons_per_label == 1
    with pytest.raises(ValueError, match="neurons per label"):
        label_scores(np.zeros((2, 7)), 3)


def test_train_with_ensemble_folds_members_and_the_file_keeps_the_grouping(tmp_path) -> None:
    ds = synthetic(12, 5)
    cfg = TrainConfig(hidden=[6], epochs=2, ensemble=2, seed=2, tail_steps=3)
    res = train(ds, None, cfg, log=None)
    model = res.model
    assert model.neurons_per_label == 2 and model.n_outputs == 6
    assert len(res.history) == 2
    # member 2 is the single network trained from seed 2 * 2 + 1
    alone = train(ds, None, TrainConfig(hidden=[6], epochs=2, seed=5, tail_steps=3),
                  log=None).model
    assert np.array_equal(model.weights[1][6:, 1::2], alone.weights[1])
    path = tmp_path / "ens.npz"
    save_model(model, path, make_recipe(cfg, dt_us=ds.dt_us, labels=ds.label_names))
    from edgesnn.core import Network

    back = FeedforwardSNN.from_network(Network.load(path))
    assert back.neurons_per_label == 2
    assert np.array_equal(evaluate(back, ds, cfg).scores, evaluate(model, ds, cfg).scores)
    with pytest.raises(ValueError, match="ensemble"):
        TrainConfig(ensemble=0).check()


FSDD = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "audio" / "fsdd"


@pytest.mark.skipif(not FSDD.is_dir(), reason=f"FSDD recordings not found at {FSDD}")
def test_train_command_writes_a_folded_ensemble(tmp_path, capsys) -> None:
    from edgesnn.cli import main
    from edgesnn.core import Network

    files = [str(FSDD / f"{d}_theo_{i}.wav") for d in (1, 7) for i in range(3)]
    out = tmp_path / "ens.npz"
    rc = main(["train", "--recordings", *files, "--out", str(out), "--hidden", "8",
               "--epochs", "1", "--ensemble", "2"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "ensemble of 2 members" in text and "[member 2/2]" in text
    net = Network.load(out)
    assert net.n_outputs == 4 and net.manifest["recipe"]["neurons_per_label"] == 2
    assert FeedforwardSNN.from_network(net).neurons_per_label == 2


def test_members_in_one_process_give_the_same_network_as_in_workers() -> None:
    from edgesnn.train.ensemble import train_members

    ds = synthetic(9, 6)
    cfg = TrainConfig(hidden=[5], epochs=1, ensemble=2, seed=1)
    lines: list[str] = []
    here, _, _ = train_members(ds, None, cfg, lines.append, workers=1)
    there, hist, _ = train_members(ds, None, cfg, lines.append, workers=2)
    assert all(np.array_equal(a, b) for a, b in zip(here.weights, there.weights))
    assert sum("[member 2/2] epoch" in x for x in lines) == 2  # once per run, from each way
    assert len(hist) == 1 and set(hist[0]) >= {"loss", "train_acc"}
