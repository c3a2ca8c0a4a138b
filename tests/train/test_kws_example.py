"""A tiny run of examples/keyword_spotting.py on the real FSDD recordings: the --json schema."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FSDD = REPO.parent / "shared" / "data" / "audio" / "fsdd"


def _example():
    spec = importlib.util.spec_from_file_location("keyword_spotting",
                                                  REPO / "examples" / "keyword_spotting.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(not FSDD.is_dir(), reason=f"FSDD recordings not found at {FSDD}")
def test_tiny_run_prints_one_json_object(tmp_path, capsys) -> None:
    res = _example().main([
        "--train", f"{FSDD}/*_george_[5-9].wav", f"{FSDD}/*_jackson_[5-9].wav",
        "--test", f"{FSDD}/*_george_[0-1].wav", "--seeds", "2", "--epochs", "1",
        "--hidden", "16", "--json", "--save-model", str(tmp_path / "kws.npz")])
    cap = capsys.readouterr()
    out = json.loads(cap.out)  # exactly one JSON object on stdout, progress on stderr
    assert out == json.loads(json.dumps(res))
    assert "epoch   1/1" in cap.err and "\n" not in cap.out.strip()
    assert out["task"] == "keyword_spotting" and out["split"].startswith("by recording")
    assert (out["n_train"], out["n_test"]) == (100, 20) and out["train_s"] > 0
    snn = out["snn"]
    for key in ("accuracy_mean", "accuracy_sd", "accuracies", "undecided", "per_class_recall",
                "confusion", "labels"):
        assert key in snn
    assert len(snn["accuracies"]) == 2 and all(0 <= a <= 1 for a in snn["accuracies"])
    assert snn["labels"][:10] == [str(d) for d in range(10)]
    assert sum(map(sum, snn["confusion"])) == 2 * 20  # both seeds, every test file once
    assert snn["core_matches_trainer"] == ["20/20", "20/20"]
    assert out["baseline"]["name"].startswith("SVM") and out["baseline"]["accuracy"] > 0.5
    assert out["recipe"]["encoder"]["type"] == "logmel"
    assert (tmp_path / "kws.npz").stat().st_size > 0


def test_overlapping_split_and_missing_data_are_refused(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        _example().main(["--data", str(tmp_path / "nowhere")])
    assert e.value.code == 2
    assert "no FSDD recordings" in capsys.readouterr().out
    if FSDD.is_dir():
        one = str(FSDD / "3_theo_7.wav")
        with pytest.raises(SystemExit) as e:
            _example().main(["--train", one, "--test", one, "--json"])
        assert e.value.code == 2
        assert "overlaps the training recording" in capsys.readouterr().err
