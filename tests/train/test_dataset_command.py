"""The dataset file format (round trip, every rule enforced) and the `edgesnn train` command."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from edgesnn.cli import main
from edgesnn.core import Network
from edgesnn.errors import FormatError
from edgesnn.train import SpikeDataset

from .test_train import synthetic


def test_dataset_round_trip(tmp_path) -> None:
    ds = synthetic(7, 1)
    ds.save(tmp_path / "d.npz")
    back = SpikeDataset.load(tmp_path / "d.npz")
    for k in ("in_ptr", "in_idx", "sample_ptr", "labels"):
        assert np.array_equal(getattr(ds, k), getattr(back, k))
    assert (back.n_inputs, back.dt_us, back.label_names) == (18, 1000, ["a", "b", "c"])
    for i in range(len(ds)):
        a, b = ds.sample(i), back.sample(i)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    tr, va = ds.split(0.3, seed=0)
    assert len(tr) + len(va) == len(ds) and len(va) == 3


def _arrays() -> dict[str, np.ndarray]:
    return {"in_ptr": np.array([0, 2, 2, 3], np.int64), "in_idx": np.array([3, 1, 0], np.int32),
            "sample_ptr": np.array([0, 1, 3], np.int64), "labels": np.array([0, 1], np.int64),
            "n_inputs": np.array(4)}


@pytest.mark.parametrize(
    "change,message",
    [
        ({"in_ptr": None}, "lacks in_ptr"),
        ({"in_ptr": np.array([0, 2, 1, 3])}, "in_ptr decreases at element 2"),
        ({"in_ptr": np.array([0, 2, 2, 4])}, "in_idx has 3 entries"),
        ({"in_idx": np.array([3, 4, 0])}, "in_idx[1] = 4 is not a channel 0..3"),
        ({"in_idx": np.array([1, 1, 0])}, "channel 1 spikes twice in step 0 (sample 0)"),
        ({"in_idx": np.array([0.5, 1, 0])}, "in_idx must hold integers"),
        ({"sample_ptr": np.array([0, 3, 3])}, "sample 1 has no steps"),
        ({"sample_ptr": np.array([0, 2])}, "sample_ptr must run from 0"),
        ({"labels": np.array([0])}, "labels has 1 entries for 2 samples"),
        ({"labels": np.array([0, -1])}, "labels[1] is negative"),
        ({"format": np.array("other")}, "format 'other'"),
    ],
)
def test_bad_datasets_are_refused_clearly(tmp_path, change, message) -> None:
    arrays = _arrays()
    for k, v in change.items():
        if v is None:
            del arrays[k]
        else:
            arrays[k] = v
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(FormatError) as e:
        SpikeDataset.load(tmp_path / "bad.npz")
    assert message in str(e.value) and "bad.npz" in str(e.value)


def test_unsorted_step_is_sorted_and_not_a_file_is_refused(tmp_path) -> None:
    ds = SpikeDataset.from_arrays(_arrays())
    assert ds.in_idx.tolist() == [1, 3, 0]
    (tmp_path / "x.npz").write_bytes(b"not a zip")
    with pytest.raises(FormatError, match="not an .npz dataset"):
        SpikeDataset.load(tmp_path / "x.npz")
    with pytest.raises(FormatError, match="no such file"):
        SpikeDataset.load(tmp_path / "missing.npz")


def test_train_command_writes_model_and_report(tmp_path, capsys) -> None:
    synthetic(60, 2).save(tmp_path / "tr.npz")
    synthetic(15, 3).save(tmp_path / "va.npz")
    rc = main(["train", str(tmp_path / "tr.npz"), "--val", str(tmp_path / "va.npz"),
               "--out", str(tmp_path / "m.npz"), "--hidden", "12", "--epochs", "6",
               "--batch-size", "10", "--lr", "0.02", "--train-bias"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "epoch   6/6" in out and "val acc" in out
    rep = json.loads((tmp_path / "m.npz.report.json").read_text())
    assert len(rep["history"]) == 6 and rep["validation"]["accuracy"] > 0.5
    assert rep["core_check"]["identical_output_spikes"] == rep["core_check"]["samples"]
    net = Network.load(tmp_path / "m.npz")
    # the recipe's ensemble of 3: 3 output neurons per label
    assert (net.n_inputs, net.n_outputs, net.dt_us) == (18, 9, 1000)
    assert net.manifest["recipe"]["neurons_per_label"] == 3


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--out", "m.npz"], "give a DATASET file or --recordings"),
        (["missing.npz", "--out", "m.npz"], "no such file"),
        (["tr.npz", "--out", "m.npz", "--val-fraction", "1.5"], "--val-fraction"),
        (["tr.npz", "--out", "m.npz", "--epochs", "0"], "epochs must be positive"),
        (["one.npz", "--out", "m.npz"], "at least two classes"),
        (["--pipeline", "p.toml", "--out", "m.npz"], "--pipeline needs --recordings"),
    ],
)
def test_train_command_bad_input(tmp_path, monkeypatch, capsys, argv, message) -> None:
    monkeypatch.chdir(tmp_path)
    synthetic(9, 2).save(tmp_path / "tr.npz")
    synthetic(1, 2).save(tmp_path / "one.npz")
    assert main(["train", *argv]) == 2
    assert message in capsys.readouterr().err


def _tone(path: Path, f_hz: float, seconds: float = 0.25, rate: int = 8000) -> None:
    t = np.arange(int(seconds * rate)) / rate
    x = (0.3 * np.sin(2 * np.pi * f_hz * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(x.tobytes())


def test_train_command_encodes_recordings_with_a_pipeline(tmp_path, capsys) -> None:
    files = []
    for k in range(6):
        for label, f in (("low", 300.0), ("high", 2000.0)):
            p = tmp_path / f"{label}_{k}.wav"
            _tone(p, f * (1 + 0.02 * k))
            files.append(str(p))
    (tmp_path / "p.toml").write_text(
        '[pipeline]\nname = "tones"\ndt_us = 4000\n'
        '[drivers.mic]\ntype = "wav"\npath = "none.wav"\n'
        '[encoders.cochlea]\ntype = "cochlea"\ninputs = ["mic"]\nbands = 8\n'
    )
    rc = main(["train", "--pipeline", str(tmp_path / "p.toml"), "--recordings", *files,
               "--out", str(tmp_path / "m.npz"), "--hidden", "8", "--epochs", "15", "--batch-size", "4",
               "--val-fraction", "0", "--lr", "0.02", "--train-bias", "--init-gain", "3",
               "--save-dataset", str(tmp_path / "enc.npz")])
    out = capsys.readouterr().out
    assert rc == 0, out
    ds = SpikeDataset.load(tmp_path / "enc.npz")
    assert (len(ds), ds.n_inputs, ds.dt_us) == (12, 16, 4000)
    assert ds.label_names == ["low", "high"] or ds.label_names == ["high", "low"]
    rep = json.loads((tmp_path / "m.npz.report.json").read_text())
    assert rep["history"][-1]["train_acc"] > 0.5  # chance is 0.5 with ties counted wrong


def test_train_command_input_taps_and_plot(tmp_path, capsys) -> None:
    """--input-delays-ms makes one delayed input projection per tap (checked by the core
    agreement on the validation set); --plot writes the learning curve and confusion PNG."""
    pytest.importorskip("matplotlib", reason="--plot needs the [plot] extra")
    synthetic(60, 4).save(tmp_path / "tr.npz")
    synthetic(15, 5).save(tmp_path / "va.npz")
    rc = main(["train", str(tmp_path / "tr.npz"), "--val", str(tmp_path / "va.npz"),
               "--out", str(tmp_path / "m.npz"), "--hidden", "12", "--epochs", "3",
               "--batch-size", "10", "--input-delays-ms", "0", "3", "--tail-steps", "4",
               "--layer-delays-ms", "2", "--average-epochs", "2",
               "--plot", str(tmp_path / "curve.png")])
    out = capsys.readouterr().out
    assert rc == 0, out
    net = Network.load(tmp_path / "m.npz")
    assert [net.delay_steps(i) for i in range(len(net.projection_names))] == [0, 3, 0, 2]
    rep = json.loads((tmp_path / "m.npz.report.json").read_text())
    assert rep["recipe"]["train"]["input_delays_ms"] == [0.0, 3.0]
    assert rep["recipe"]["train"]["layer_delays_ms"] == [2.0]
    assert rep["recipe"]["train"]["average_epochs"] == 2
    assert rep["core_check"]["identical_output_spikes"] == rep["core_check"]["samples"]
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
