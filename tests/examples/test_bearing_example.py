"""examples/bearing_fault.py on the real CWRU recordings: a tiny split by recording, its JSON."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
CWRU = REPO.parent / "shared" / "data" / "vibration" / "cwru"
NORMAL = CWRU / "cwru_12k_normal_0hp_Normal_0.mat"


def _example():
    spec = importlib.util.spec_from_file_location("bearing_fault",
                                                  REPO / "examples" / "bearing_fault.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


needs_data = pytest.mark.skipif(not CWRU.is_dir(), reason=f"CWRU recordings not found at {CWRU}")


@needs_data
def test_tiny_split_by_recording_prints_one_json_object() -> None:
    args = [sys.executable, str(REPO / "examples" / "bearing_fault.py"),
            "--train", f"{NORMAL}@0:0.5", str(CWRU / "*007*_0hp_*.mat"),
            "--test", f"{NORMAL}@0.5:1", str(CWRU / "*007*_1hp_*.mat"),
            "--seeds", "2", "--epochs", "2", "--hidden", "16", "--max-per-recording", "3",
            "--json"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1  # progress goes to stderr
    res = json.loads(lines[0])
    assert res["task"] == "bearing_fault"
    assert res["n_train"] == res["n_test"] == 4 * 3  # 4 recordings, 3 samples each
    assert res["train_s"] > 0
    snn, base = res["snn"], res["baseline"]
    for key in ("accuracy_mean", "accuracy_sd", "accuracies", "undecided", "per_class_recall",
                "confusion", "labels", "detection_rate", "false_positive_rate"):
        assert key in snn, key
    assert len(snn["accuracies"]) == 2 and all(0 <= a <= 1 for a in snn["accuracies"])
    assert snn["labels"] == ["normal", "ball", "inner_race", "outer_race", "(undecided)"]
    conf = np.array(snn["confusion"])
    assert conf.shape == (4, 5) and conf.sum() == 2 * 12 and (conf.sum(axis=1) == 2 * 3).all()
    assert "random forest" in base["name"] and 0 <= base["accuracy"] <= 1
    assert "detection_rate" in base and "false_positive_rate" in base
    assert any(r.endswith("Normal_0.mat@0:0.5") for r in res["train_recordings"])
    assert any(r.endswith("Normal_0.mat@0.5:1") for r in res["test_recordings"])


@needs_data
def test_overlapping_split_is_refused(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        _example().main(["--train", f"{NORMAL}@0:0.7", "--test", f"{NORMAL}@0.6:1"])
    assert e.value.code == 2
    assert "overlaps the training recording" in capsys.readouterr().out


@needs_data
def test_recording_reader_gives_signal_and_speed() -> None:
    x, rpm, known = _example().read_recording(NORMAL)
    assert x.size == 243938 and x[0] == pytest.approx(0.05319692307692307)
    assert np.sqrt(np.mean(x**2)) == pytest.approx(0.073764, abs=1e-6)
    assert rpm == 1796.0 and known


@needs_data
def test_cross_validation_folds_are_by_recording() -> None:
    ex = _example()
    recs = ex.expand_recordings([CWRU], (".mat",))
    for key in ("load", "size"):
        folds = ex.folds(recs, key)
        assert len(folds) == 3
        for v, tr, te in folds:
            ex.check_disjoint(tr, te)
            held = [r for r in te if ex.cwru_label(r.path)["label"] != "normal"]
            assert held and all(ex.cwru_label(r.path)[key] == v for r in held)
            assert all(ex.cwru_label(r.path)[key] != v for r in tr
                       if ex.cwru_label(r.path)["label"] != "normal")


def test_balanced_repeats_the_rarer_classes() -> None:
    idx = _example().balanced(np.array([0, 1, 1, 1, 2, 2]), seed=0)
    assert np.bincount(np.array([0, 1, 1, 1, 2, 2])[idx]).tolist() == [3, 3, 3]


def test_example_exits_clearly_without_data(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        _example().main(["--data", str(tmp_path / "nowhere")])
    assert e.value.code == 2
    assert "no CWRU recordings" in capsys.readouterr().out
