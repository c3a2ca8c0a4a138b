"""A reduced run of examples/keyword_spotting.py on the real FSDD recordings."""

from __future__ import annotations

import importlib.util
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
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(not FSDD.is_dir(), reason=f"FSDD recordings not found at {FSDD}")
def test_reduced_keyword_spotting_beats_chance(tmp_path, capsys) -> None:
    res = _example().main(["--per-digit-speaker", "2", "--epochs", "10", "--hidden", "64",
                           "--batch-size", "8", "--lr", "5e-3",
                           "--save-model", str(tmp_path / "kws.npz")])
    out = capsys.readouterr().out
    assert "SNN (core)" in out and "epoch  10/10" in out
    assert res["n_test"] == 120 and res["n_train"] + res["n_val"] == 120
    assert res["snn"]["accuracy"] > 0.25 and res["ann"]["accuracy"] > 0.25  # chance: 0.10
    assert res["snn"]["synaptic_ops_per_utterance"] > 0
    assert res["snn"]["core_spike_check"] == "30/30 utterances identical"
    assert (tmp_path / "kws.npz").stat().st_size > 0


def test_example_exits_clearly_without_data(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        _example().main(["--data", str(tmp_path / "nowhere")])
    assert e.value.code == 2
    assert "no FSDD recordings" in capsys.readouterr().out
