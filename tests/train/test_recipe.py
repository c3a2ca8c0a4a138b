"""The training recipe in model files, chip profiles applied to training, trainer options."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgesnn.cli import main
from edgesnn.core import Network
from edgesnn.train import TrainConfig, make_batch, train
from edgesnn.train.recipe import (
    KWS_ENCODER,
    apply_profile,
    config_from_recipe,
    kws_config,
    make_recipe,
    read_recipe,
    resample,
    save_model,
)
from edgesnn.train.trainer import balanced_order

from .test_train import synthetic


def test_recipe_round_trip_through_the_model_file(tmp_path) -> None:
    ds = synthetic(30, 1)
    cfg = TrainConfig(hidden=[8], epochs=1, batch_size=10, stretch=0.1, balanced=True,
                      keep_last=True, seed=4)
    res = train(ds, None, cfg, log=None)
    recipe = make_recipe(cfg, dt_us=ds.dt_us, labels=ds.label_names, encoder=KWS_ENCODER,
                         extra={"train_s": 1.5})
    save_model(res.model, tmp_path / "m.npz", recipe)
    back = read_recipe(tmp_path / "m.npz")
    assert back == recipe
    assert back["train"]["stretch"] == 0.1 and back["encoder"]["type"] == "logmel"
    assert back["tail_steps"] == cfg.tail_steps and back["decision"]["ties"] == "no decision"
    assert config_from_recipe(back) == cfg
    net = Network.load(tmp_path / "m.npz")  # still an ordinary model file
    assert net.manifest["recipe"]["labels"] == ["a", "b", "c"]
    # a file written without a recipe loads and says so
    res.model.save(tmp_path / "plain.npz")
    assert read_recipe(tmp_path / "plain.npz") is None
    assert Network.load(tmp_path / "plain.npz").n_outputs == 3


def test_train_command_stores_its_recipe_and_ends_with_a_confusion_matrix(tmp_path,
                                                                          capsys) -> None:
    synthetic(30, 2).save(tmp_path / "tr.npz")
    rc = main(["train", str(tmp_path / "tr.npz"), "--out", str(tmp_path / "m.npz"),
               "--hidden", "8", "--epochs", "2", "--batch-size", "10", "--val-fraction", "0.2",
               "--progress-every-s", "0"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "confusion on the validation set" in cap.out and "trained in" in cap.out
    assert "epoch 1/2:" in cap.err and "samples, loss" in cap.err  # progress within epochs
    rec = read_recipe(tmp_path / "m.npz")
    assert rec is not None and rec["profile"] is None and rec["encoder"] is None
    want = kws_config(hidden=[8], epochs=2, batch_size=10)
    assert config_from_recipe(rec) == want  # the other defaults are the recipe's
    rep = json.loads((tmp_path / "m.npz.report.json").read_text())
    assert rep["recipe"] == rec and rep["train_s"] > 0


def test_profile_sets_time_step_and_one_synapse_time_constant() -> None:
    from edgesnn.deploy import load_profile

    spin = load_profile("spinnaker2")
    cfg, dt, notes = apply_profile(kws_config(), 10_000, spin)
    assert dt == 1000 and any("dt 10000 -> 1000" in n for n in notes)
    assert cfg.tau_syn_inh_ms == cfg.tau_syn_ms
    lay = cfg.layer_defs(10)[0]
    assert lay.params["tau_syn_inh_ms"] == lay.params["tau_syn_exc_ms"]
    cfg2, dt2, _ = apply_profile(kws_config(), 10_000, load_profile("loihi2"))
    assert dt2 == 10_000 and cfg2.tau_syn_inh_ms is None  # Loihi: one current, exc only


def test_resample_keeps_spikes_on_the_first_fine_step() -> None:
    ds = synthetic(3, 5)
    ds.dt_us = 4000
    fine = resample(ds, 1000)
    assert fine.dt_us == 1000 and np.array_equal(fine.steps(), 4 * ds.steps())
    for i in range(len(ds)):
        p, q = ds.sample(i), fine.sample(i)
        assert np.array_equal(q[1], p[1])
        assert np.array_equal(q[0][::4], p[0])
    with pytest.raises(ValueError, match="divisor"):
        resample(ds, 3000)


def test_train_with_profile_gives_a_model_the_chip_rules_accept(tmp_path, capsys) -> None:
    from edgesnn.deploy import check, load_profile, quantize

    ds = synthetic(20, 3, steps=10)
    ds.dt_us = 4000  # too coarse for SpiNNaker (at most 1 ms)
    ds.save(tmp_path / "tr.npz")
    rc = main(["train", str(tmp_path / "tr.npz"), "--out", str(tmp_path / "m.npz"),
               "--hidden", "6", "--epochs", "1", "--batch-size", "10", "--tail-steps", "2",
               "--profile", "spinnaker2"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "profile spinnaker2: dt 4000 -> 1000 us" in out
    net = Network.load(tmp_path / "m.npz")
    assert net.dt_us == 1000 and net.manifest["recipe"]["profile"] == "spinnaker2"
    for lay in net.manifest["layers"][1:]:
        assert lay["params"]["tau_syn_inh_ms"] == lay["params"]["tau_syn_exc_ms"]
    prof = load_profile("spinnaker2")
    names = {v.rule for v in check(quantize(net, prof), prof)[0]}
    assert not names & {"timestep", "synapse_types", "current_decays", "neuron_model"}
    # without the profile the same training breaks the chip's rules
    assert main(["train", str(tmp_path / "tr.npz"), "--out", str(tmp_path / "free.npz"),
                 "--hidden", "6", "--epochs", "1", "--batch-size", "10"]) == 0
    free = Network.load(tmp_path / "free.npz")
    names = {v.rule for v in check(quantize(free, prof), prof)[0]}
    assert {"timestep", "synapse_types"} <= names


def test_balanced_order_and_augmented_batches() -> None:
    labels = np.array([0] * 6 + [1] * 3 + [2] * 3)
    order = balanced_order(labels, np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(12))
    for a in range(0, 9, 3):  # while every class has samples left, runs of 3 hold one each
        assert sorted(labels[order[a : a + 3]].tolist()) == [0, 1, 2]
    ds = synthetic(4, 2)
    plain = make_batch(ds, np.arange(4), 2)
    cfg = TrainConfig(stretch=0.3, shift_steps=3, input_dropout=0.2)
    aug = make_batch(ds, np.arange(4), 2, cfg, np.random.default_rng(1))
    assert aug.s_in.sum() < plain.s_in.sum()  # dropout
    assert not np.array_equal(np.diff(aug.seg), np.diff(plain.seg))  # stretched and shifted
    same = make_batch(ds, np.arange(4), 2, TrainConfig(), np.random.default_rng(1))
    assert np.array_equal(same.s_in, plain.s_in)  # no augmentation configured: unchanged
