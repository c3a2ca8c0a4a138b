"""A reduced run of examples/bearing_fault.py on the real CWRU recordings."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
CWRU = REPO.parent / "shared" / "data" / "vibration" / "cwru"


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
def test_reduced_bearing_fault_beats_chance(tmp_path, capsys) -> None:
    res = _example().main(["--window-ms", "50", "--max-windows", "40", "--epochs", "10",
                           "--hidden", "32", "--save-model", str(tmp_path / "bearing.npz")])
    out = capsys.readouterr().out
    assert "SNN (core)" in out and "epoch  10/10" in out
    # validation: 10 % of the shortest recording (121 265 samples) holds 20 windows of 600
    assert res["n_train"] == res["n_test"] == 4 * 40 and res["n_val"] == 4 * 20
    assert res["snn"]["accuracy"] > 0.6 and res["ann"]["accuracy"] > 0.6  # chance: 0.25
    assert res["snn"]["synaptic_ops_per_window"] > 0
    assert res["snn"]["core_spike_check"] == "30/30 windows identical"
    assert (tmp_path / "bearing.npz").stat().st_size > 0


@needs_data
def test_drive_end_signal_matches_the_data_readme() -> None:
    ex = _example()
    x = ex.read_drive_end(CWRU / ex.RECORDINGS["normal"])
    assert x.size == 243938 and x[0] == pytest.approx(0.05319692307692307)
    assert np.sqrt(np.mean(x**2)) == pytest.approx(0.073764, abs=1e-6)


def test_windows_stay_inside_their_part() -> None:
    ex = _example()
    starts = ex.window_starts(100, 1000, 300, 150)
    assert starts == [100, 250, 400, 550, 700]
    assert all(s >= 100 and s + 300 <= 1000 for s in starts)
    assert ex.window_starts(0, 299, 300, 150) == []


def test_example_exits_clearly_without_data(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        _example().main(["--data", str(tmp_path / "nowhere")])
    assert e.value.code == 2
    assert "CWRU recordings missing" in capsys.readouterr().out
