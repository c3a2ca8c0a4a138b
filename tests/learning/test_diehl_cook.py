"""The Diehl & Cook example, at a smaller and faster size with its own threshold: 100 neurons,
one pass over 600 training images, scored on the 450 held-out digits (chance: 10 %)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn", reason="scikit-learn (test dependency) provides the digits")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "diehl_cook_digits.py"


def _example():
    spec = importlib.util.spec_from_file_location("diehl_cook_digits", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_unsupervised_stdp_network_classifies_held_out_digits():
    dc = _example()
    cfg = dc.Config(neurons=100, epochs=1, present_ms=100, max_train=600, eval_repeats=1)
    lines: list[str] = []
    r = dc.run(cfg, log=lines.append)
    assert r["n_test"] == 450 and r["n_train"] == 600
    assert any("labelled pass" in s for s in lines)
    assert r["accuracy"] >= 0.75, r


def test_labels_and_votes():
    """Assignment by highest mean response; silent neurons do not vote."""
    import numpy as np

    dc = _example()
    resp = np.array([[5, 0, 0], [0, 3, 0], [4, 1, 0]], float)
    labels = dc.assign_labels(resp, np.array([0, 1, 0]))
    assert labels.tolist() == [0, 1, -1]
    assert dc.classify(np.array([0, 2, 9]), labels) == 1
