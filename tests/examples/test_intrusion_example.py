"""examples/intrusion_detection.py on the real NSL-KDD records: its split and its report."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
NSL_KDD = REPO.parent / "shared" / "data" / "network" / "nsl_kdd"
RECORDS = NSL_KDD / "KDDTrain+_20Percent.txt.gz"


def _example():
    spec = importlib.util.spec_from_file_location("intrusion_detection",
                                                  REPO / "examples" / "intrusion_detection.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


needs_data = pytest.mark.skipif(not RECORDS.is_file(),
                                reason=f"NSL-KDD records not found at {RECORDS}")


@needs_data
def test_default_split_holds_attack_types_out_of_training() -> None:
    ex = _example()
    train, test, tr_rows, te_rows = ex.default_split(RECORDS)
    n = 25192  # rows of the file (data README)
    assert np.intersect1d(tr_rows, te_rows).size == 0
    assert len(train) + len(test) == n  # every row is on exactly one side
    held = set(ex.HELD_OUT_TYPES)
    assert not held & set(train.types)  # no held-out type in training
    assert set(test.types) - {"normal"} == held  # the test's attacks: only held-out types
    normal_tr = tr_rows[train.types == "normal"]
    normal_te = te_rows[test.types == "normal"]
    assert normal_tr.max() < normal_te.min()  # normal rows @0:0.8 train, @0.8:1 test
    assert normal_tr.max() < round(0.8 * n) <= normal_te.min()
    assert len(normal_tr) + len(normal_te) == 13449
    # the rows really are those of the file: labels read again agree
    everything = ex.read_recording(ex.Recording(RECORDS))
    assert (everything.types[te_rows] == test.types).all()
    assert (everything.types[tr_rows] == train.types).all()


@needs_data
def test_tiny_run_prints_one_json_report(capsys) -> None:
    f = str(RECORDS)
    res = _example().main(["--train", f"{f}@0:0.1", "--test", f"{f}@0.9:1", f"{f}@0.85:0.9",
                           "--seeds", "2", "--records", "1200", "--epochs", "20",
                           "--members", "1", "--hidden", "16", "--steps", "20", "--json"])
    out = capsys.readouterr().out
    d = json.loads(out)  # one JSON object, nothing else on stdout
    assert d == json.loads(json.dumps(res))
    assert d["task"].startswith("intrusion detection")
    assert d["n_train"] > 1000 and d["n_test"] > 0 and d["train_s"] > 0
    s = d["snn"]
    for key in ("accuracy_mean", "accuracy_sd", "accuracies", "undecided", "per_class_recall",
                "confusion", "labels", "detection_rate", "false_positive_rate"):
        assert key in s, key
    assert len(s["accuracies"]) == 2 and s["labels"] == ["normal", "attack", "(undecided)"]
    assert np.sum(s["confusion"]) == 2 * d["n_test"]
    b = d["baseline"]
    assert b["name"] == "decision tree (scikit-learn)"
    for key in ("accuracy", "detection_rate", "false_positive_rate"):
        assert 0.0 <= b[key] <= 1.0, key
    # each test file reported on its own, and the combined figure covers both
    assert [t["n_test"] for t in d["tests"]] and sum(t["n_test"] for t in d["tests"]) == d["n_test"]
    assert [t["file"].rsplit("@", 1)[1] for t in d["tests"]] == ["0.85:0.9", "0.9:1"]
    # rows like the training rows: both models find the attacks
    assert s["accuracy_mean"] > 0.8 and b["accuracy"] > 0.8


@needs_data
def test_overlapping_split_is_refused(capsys) -> None:
    f = str(RECORDS)
    with pytest.raises(SystemExit) as e:
        _example().main(["--train", f"{f}@0:0.5", "--test", f"{f}@0.4:1"])
    assert e.value.code == 2
    assert "overlaps the training recording" in capsys.readouterr().out


def test_example_exits_clearly_without_data(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        _example().main(["--train", str(tmp_path / "nowhere.txt"), "--test",
                         str(tmp_path / "neither.txt")])
    assert e.value.code == 2
    assert "no recording" in capsys.readouterr().out


@needs_data
def test_validation_holds_each_attack_type_out_in_turn(capsys) -> None:
    ex = _example()
    res = ex.main(["--validate", "--train", str(RECORDS), "--records", "2000", "--seeds", "1",
                   "--members", "1", "--hidden", "16", "--epochs", "10", "--steps", "20",
                   "--json"])
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(res))
    rows = ex.read_recording(ex.Recording(RECORDS))
    rows = rows.take(np.arange(0, len(rows), len(rows) // 2000))
    folds = res["folds"]
    present = [t for t in ex.VALIDATION_TYPES if t in set(rows.types)]
    assert [f["held_out"] for f in folds] == present and len(present) >= 6
    n_normal = int(np.sum(rows.y == 0))
    for f in folds:  # all rows of the held-out type, and a fifth of the normal rows
        assert f["n_attack"] == int(np.sum(rows.types == f["held_out"]))
        assert abs(f["n_normal"] - n_normal / 5) <= 1
        for key in ("snn", "baseline"):
            assert 0.0 <= f[key]["detection_rate"] <= 1.0
    for key in ("snn", "baseline"):
        assert 0.0 <= res[key]["balanced_accuracy"] <= 1.0
