"""A reduced run of examples/intrusion_detection.py on the real NSL-KDD records."""

from __future__ import annotations

import importlib.util
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


needs_data = pytest.mark.skipif(not RECORDS.is_file(), reason=f"NSL-KDD records not found at {RECORDS}")


@needs_data
def test_reduced_intrusion_detection_beats_chance(tmp_path, capsys) -> None:
    res = _example().main(["--records", "1500", "--epochs", "4", "--hidden", "32",
                           "--batch-size", "32", "--lr", "1e-2", "--mlp-epochs", "150", "--save-model", str(tmp_path / "ids.npz")])
    out = capsys.readouterr().out
    assert "SNN (core)" in out and "epoch   4/4" in out
    assert res["n_train"] + res["n_val"] + res["n_test"] == 1500
    assert res["n_test"] == pytest.approx(300, abs=2)
    # the majority class (normal) is about 0.53 of the records
    assert res["majority_class_fraction"] < 0.6
    for m in ("snn", "ann"):
        assert res[m]["accuracy"] > 0.85, m
        assert res[m]["detection_rate"] > 0.75 and res[m]["false_alarm_rate"] < 0.25, m
    assert res["snn"]["synaptic_ops_per_record"] > 0
    assert res["snn"]["core_spike_check"] == "30/30 records identical"
    assert (tmp_path / "ids.npz").stat().st_size > 0


@needs_data
def test_split_is_disjoint_and_stratified() -> None:
    ex = _example()
    rec, y, names = ex.load(NSL_KDD, "category")
    assert names == ["normal", "dos", "probe", "r2l", "u2r"]
    assert np.bincount(y).tolist() == [13449, 9234, 2289, 209, 11]  # data README
    rng = np.random.default_rng(0)
    rest, test = ex.stratified_split(y, 0.2, rng)
    assert np.intersect1d(rest, test).size == 0 and rest.size + test.size == y.size
    for c in range(5):
        frac = np.mean(y[test] == c)
        assert abs(frac - np.mean(y == c)) < 0.01


def test_detection_rates_by_hand() -> None:
    ex = _example()
    y = np.array([0, 0, 0, 0, 1, 2, 1, 3])
    pred = np.array([0, 1, -1, 0, 2, 0, 1, -1])
    dr, far = ex.detection(pred, y)
    assert dr == 2 / 4 and far == 1 / 4


def test_example_exits_clearly_without_data(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        _example().main(["--data", str(tmp_path / "nowhere")])
    assert e.value.code == 2
    assert "no NSL-KDD records" in capsys.readouterr().out
