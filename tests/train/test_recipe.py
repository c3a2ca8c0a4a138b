"""The training recipe in model files, chip profiles applied to training, trainer options."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_apply_profile_takes_the_chips_reset_and_decays() -> None:
    import math

    from edgesnn.deploy import load_profile

    for name in ("xylo_imu", "xylo_audio2"):  # reset.mode = "subtract": v -= threshold
        cfg, _, notes = apply_profile(kws_config(), 5000, load_profile(name))
        assert cfg.reset == "subtract" and any("reset zero -> subtract" in n for n in notes)
        assert all(lay.params["reset"] == "subtract" for lay in cfg.layer_defs(10))
        # 20 ms at 5 ms steps: the chip decays by x >> 2, i.e. exp(-5 / tau) = 3/4
        for tau in (cfg.tau_mem_ms, cfg.tau_syn_ms, cfg.tau_syn_inh_ms):
            assert math.isclose(math.exp(-5.0 / tau), 0.75, rel_tol=1e-12)
        assert any(n.startswith("tau_mem_ms 20.0 -> 17.3803") for n in notes)
    cfg, _, notes = apply_profile(kws_config(reset="subtract"), 5000, load_profile("loihi2"))
    assert cfg.reset == "zero" and any("reset subtract -> zero" in n for n in notes)
    assert "reset" not in cfg.layer_defs(10)[0].params  # the default: model files unchanged
    assert cfg.tau_mem_ms == 20.0 and cfg.tau_syn_ms == 20.0  # Loihi's decays are not shifts


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


FSDD = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "audio" / "fsdd"


@pytest.mark.skipif(not FSDD.is_dir(), reason=f"FSDD recordings not found at {FSDD}")
def test_train_command_on_wav_recordings_holds_out_whole_recordings(tmp_path, capsys) -> None:
    files = [str(FSDD / f"{d}_theo_{i}.wav") for d in (1, 7) for i in range(5)]
    rc = main(["train", "--recordings", *files, "--out", str(tmp_path / "m.npz"),
               "--hidden", "8", "--epochs", "1", "--val-fraction", "0.4",
               "--save-dataset", str(tmp_path / "enc.npz")])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    rec = read_recipe(tmp_path / "m.npz")
    assert rec["encoder"] == {**KWS_ENCODER} and rec["augment"]["copies"] == 2
    assert rec["labels"] == ["1", "7"] and rec["dt_us"] == 5000
    rep = json.loads((tmp_path / "m.npz.report.json").read_text())
    # 2 of the 5 recordings of each digit held out; the other 3 and 2 altered copies of each
    assert rep["validation"]["samples"] == 4 and rep["dataset"]["samples"] == 6 * 3
    assert "confusion on the validation set" in cap.out


@pytest.mark.skipif(not FSDD.is_dir(), reason=f"FSDD recordings not found at {FSDD}")
def test_cepstra_output_is_fitted_on_training_recordings() -> None:
    from edgesnn.train.recipe import encode_wav, fit_cepstra

    files = sorted(FSDD.glob("*_george_[0-2].wav"))
    enc = fit_cepstra(files, {"type": "logmel", "bands": 26, "cepstra": 13,
                              "output": "cepstra"}, 5000)
    assert len(enc["cep_mean"]) == len(enc["cep_scale"]) == 13
    assert all(s > 0 for s in enc["cep_scale"])
    ptr, idx, n_ch = encode_wav(files[0], enc, 5000)
    assert n_ch == 13 * 8 and idx.size > 0 and idx.max() < n_ch
    # coefficients 1..12 are standardised: their levels centre on the middle of the ladder
    steps = np.repeat(np.arange(ptr.size - 1), np.diff(ptr))
    coef, lvl = np.divmod(idx, 8)
    top = np.zeros((ptr.size - 1, 13))
    np.maximum.at(top, (steps, coef), lvl + 1)
    sounding = top[:, 0] > 0
    assert 2.0 < top[sounding, 1:].mean() < 6.0
    assert fit_cepstra(files, KWS_ENCODER, 5000) == KWS_ENCODER  # bands: nothing to fit


def test_max_bias_keeps_a_trained_network_silent_without_input() -> None:
    ds = synthetic(30, 4)
    cfg = TrainConfig(hidden=[12], epochs=3, batch_size=10, lr=0.05, train_bias=True)
    free = train(ds, None, cfg, log=None).model
    assert max(float(b.max()) for b in free.biases) > 0.1  # uncapped, some biases grow
    cfg.max_bias = 0.05
    model = train(ds, None, cfg, log=None).model
    assert max(float(b.max()) for b in model.biases) == 0.05  # capped, and the cap is reached
    net = model.to_network()
    net.reset()
    rec = net.run(np.zeros(301, np.int64), np.zeros(0, np.int32))
    assert rec.idx.size == 0  # 300 silent steps: no output spike


def test_profile_keeps_input_taps_the_chip_can_delay_and_drops_the_others() -> None:
    """Taps are durations: at SpiNNaker's 1 ms step the 80 ms tap is 80 steps, within its
    delay extensions (144); Loihi delays up to 63 steps; Xylo has no synaptic delays."""
    from edgesnn.deploy import load_profile

    cfg0 = kws_config(input_delays_ms=[0.0, 40.0, 80.0])
    cfg, dt, notes = apply_profile(cfg0, 5000, load_profile("spinnaker2"))
    assert dt == 1000 and cfg.input_taps(dt) == [0, 40, 80]
    cfg, dt, _ = apply_profile(cfg0, 5000, load_profile("loihi2"))
    assert cfg.input_taps(dt) == [0, 8, 16]
    cfg, dt, notes = apply_profile(kws_config(input_delays_ms=[0.0, 400.0]), 5000,
                                   load_profile("loihi2"))
    assert cfg.input_delays_ms == [] and any("delays at most 63" in n for n in notes)
    cfg, _, notes = apply_profile(cfg0, 5000, load_profile("xylo_audio2"))
    assert cfg.input_delays_ms == [] and any("input_delays_ms" in n for n in notes)


def test_profile_treats_layer_taps_like_input_taps() -> None:
    from edgesnn.deploy import load_profile

    cfg0 = kws_config(input_delays_ms=[0.0, 40.0], layer_delays_ms=[0.0, 30.0, 400.0])
    cfg, dt, notes = apply_profile(cfg0, 5000, load_profile("loihi2"))
    assert cfg.input_taps(dt) == [0, 8] and cfg.layer_delays_ms == []
    assert any(n.startswith("layer_delays_ms") and "at most 63" in n for n in notes)
    cfg, dt, _ = apply_profile(kws_config(layer_delays_ms=[0.0, 30.0]), 5000,
                               load_profile("spinnaker2"))
    assert cfg.layer_taps(dt) == [0, 30]


def test_equaliser_augmentation_is_a_smooth_gain_within_its_bound() -> None:
    """eq_db: the variant's spectrum is the recording's times a gain of at most +-eq_db that
    changes smoothly with frequency (a microphone or room, not noise)."""
    from edgesnn.train.recipe import augment_wave

    x = np.random.default_rng(0).standard_normal(4000)
    y = augment_wave(x, np.random.default_rng(3), eq_db=6.0)
    g = 20 * np.log10(np.abs(np.fft.rfft(y)) / np.abs(np.fft.rfft(x)))
    assert y.shape == x.shape and np.abs(g).max() <= 6.0 + 1e-9
    assert np.abs(g).max() > 5.9  # scaled to reach the bound
    assert np.abs(np.diff(g)).max() < 0.05  # smooth over 2001 bins
    assert np.array_equal(augment_wave(x, np.random.default_rng(3)), x)  # off by default


@pytest.mark.skipif(not FSDD.is_dir(), reason=f"FSDD recordings not found at {FSDD}")
def test_warp_augmentation_encodes_copies_through_a_warped_filterbank() -> None:
    """augment["warp"]: each copy is encoded as by another vocal tract (filterbank warped by a
    factor in 1 +- warp); without it, the same random stream gives the same copies."""
    from edgesnn.train.recipe import KWS_DT_US, KWS_ENCODER, encode_wavs

    files = [str(FSDD / "3_jackson_0.wav")]
    base = {"copies": 1, "seed": 5}
    plain = encode_wavs(files, [3], ["3"], KWS_ENCODER, KWS_DT_US, augment=base)
    again = encode_wavs(files, [3], ["3"], KWS_ENCODER, KWS_DT_US, augment=base)
    warped = encode_wavs(files, [3], ["3"], KWS_ENCODER, KWS_DT_US,
                         augment={**base, "warp": 0.1})
    assert np.array_equal(plain.sample(1)[1], again.sample(1)[1])
    assert np.array_equal(plain.sample(0)[1], warped.sample(0)[1])  # the recording itself
    assert not np.array_equal(plain.sample(1)[1], warped.sample(1)[1])  # its copy: warped


def test_channel_and_time_masks_silence_one_block_each() -> None:
    """channel_mask / time_mask_steps: a sample loses its spikes in one block of adjacent
    channels per mask and one block of adjacent steps, and nothing else."""
    from edgesnn.train import SpikeDataset

    t, n = 30, 12
    full = (np.arange(t + 1, dtype=np.int64) * n, np.tile(np.arange(n, dtype=np.int32), t))
    ds = SpikeDataset.from_samples([full], [0], n, 1000, ["a"])
    cfg = TrainConfig(channel_mask=5, time_mask_steps=8)
    widths = set()
    for seed in range(20):
        y = make_batch(ds, np.array([0]), 0, cfg, np.random.default_rng(seed)).s_in
        rows = np.flatnonzero(y.sum(axis=1) == 0)  # silenced steps
        cols = np.flatnonzero(y.sum(axis=0) == 0)  # silenced channels
        for v, limit in ((rows, 8), (cols, 5)):
            assert v.size <= limit and np.all(np.diff(v) == 1)  # one block, within bound
        expect = np.ones((t, n))
        expect[rows] = 0
        expect[:, cols] = 0
        assert np.array_equal(y, expect)  # nothing else lost
        widths.add((rows.size, cols.size))
    assert len(widths) > 5  # random widths and positions
    two = make_batch(ds, np.array([0]), 0, TrainConfig(channel_mask=2, channel_masks=3),
                     np.random.default_rng(2)).s_in
    assert 0 < int((two.sum(axis=0) == 0).sum()) <= 6
    assert np.array_equal(make_batch(ds, np.array([0]), 0, TrainConfig(),
                                     np.random.default_rng(1)).s_in, np.ones((t, n)))
    with pytest.raises(ValueError, match="channel_mask"):
        TrainConfig(channel_mask=-1).check()
