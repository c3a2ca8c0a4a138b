"""The shared evaluation harness: recording arguments, labels, the decision rule, the report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgesnn.evaluation import (
    SplitError,
    check_disjoint,
    cwru_label,
    decide,
    expand_recordings,
    fsdd_label,
    report,
    seed_summary,
)


def test_decide_ties_and_silence_are_no_decision():
    s = np.array([[1, 2, 2], [0, 0, 0], [3, 1, 0], [0, 0, 1]])
    assert decide(s).tolist() == [-1, -1, 0, 2]
    assert int(decide(np.array([1.0, 3.0]))) == 1


def test_labels_from_file_names():
    assert cwru_label("cwru_12k_de_ball_007_0hp_B007_0.mat") == {"label": "ball", "size": 7, "load": 0}
    assert cwru_label("IR014_2.mat") == {"label": "inner_race", "size": 14, "load": 2}
    assert cwru_label("OR021@6_3.mat")["label"] == "outer_race"
    assert cwru_label("Normal_1.mat") == {"label": "normal", "size": 0, "load": 1}
    with pytest.raises(SplitError, match="no CWRU class code"):
        cwru_label("vibration.mat")
    assert fsdd_label("7_theo_42.wav") == (7, "theo", 42)
    with pytest.raises(SplitError, match="FSDD"):
        fsdd_label("seven.wav")


def test_recording_arguments(tmp_path):
    for n in ("a_1.mat", "a_2.mat", "b.txt"):
        (tmp_path / n).write_bytes(b"x")
    recs = expand_recordings([str(tmp_path)], suffixes=(".mat",))
    assert [r.name for r in recs] == ["a_1.mat", "a_2.mat"]
    recs = expand_recordings([f"{tmp_path}/a_*.mat@0:0.7"])
    assert [(r.lo, r.hi) for r in recs] == [(0.0, 0.7), (0.0, 0.7)]
    assert recs[0].part(100) == slice(0, 70)
    tail = expand_recordings([f"{tmp_path / 'a_1.mat'}@0.7:"])
    check_disjoint(recs, tail)  # 0..0.7 and 0.7..1 do not overlap
    with pytest.raises(SplitError, match="overlaps"):
        check_disjoint(recs, expand_recordings([f"{tmp_path / 'a_1.mat'}@0.5:1"]))
    with pytest.raises(SplitError, match="no recording"):
        expand_recordings([str(tmp_path / "missing*.mat")])
    with pytest.raises(SplitError, match="empty fraction"):
        expand_recordings([f"{tmp_path / 'a_1.mat'}@0.7:0.2"])
    with pytest.raises(SplitError, match="outside"):
        expand_recordings([f"{tmp_path / 'a_1.mat'}@0:2"])


def test_summary_and_strict_json_report():
    y = np.array([0, 1, 1, 0])
    s = seed_summary(y, [np.array([0, 1, -1, 1]), np.array([0, 1, 1, 0])], ["normal", "attack"],
                     normal=0)
    assert s["accuracies"] == [0.5, 1.0]
    assert s["accuracy_sd"] == pytest.approx(np.std([0.5, 1.0], ddof=1))
    assert s["undecided"] == 0.5
    assert s["confusion"] == [[3, 1, 0], [0, 3, 1]]
    assert s["per_class_recall"] == {"normal": 0.75, "attack": 0.75}
    assert s["detection_rate"] == pytest.approx(0.75)
    assert s["false_positive_rate"] == pytest.approx(0.25)
    out = report("t", n_train=1, n_test=4, train_s=0.1, snn=s,
                 baseline={"name": "tree", "accuracy": float("nan")}, split="by recording")
    text = json.dumps(out, allow_nan=False)
    assert json.loads(text)["baseline"]["accuracy"] is None


def test_baseline_summary_and_plot_of_a_result(tmp_path):
    """--plot draws the learning curve beside the SNN's and the baseline's confusion matrices."""
    pytest.importorskip("matplotlib", reason="plots need the [plot] extra")
    from edgesnn.evaluation import baseline_summary, plot_result

    y = np.array([0, 1, 2, 2])
    b = baseline_summary("svm", y, np.array([0, 2, 2, 2]), ["a", "b", "c"])
    assert b["accuracy"] == 0.75 and b["confusion"][1] == [0, 0, 1, 0]
    snn = seed_summary(y, [np.array([0, 1, -1, 2])], ["a", "b", "c"])
    out = report("t", n_train=3, n_test=4, train_s=1.0, snn=snn, baseline=b, split="s",
                 extra={"learning_curve": [{"epoch": 1, "loss": 1.0, "train_acc": 0.5},
                                           {"epoch": 2, "loss": 0.5, "train_acc": 0.9}]})
    png = plot_result(tmp_path / "r.png", out)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    # four panels (loss, accuracy, two confusions) make a wider picture than one confusion
    import struct
    width = struct.unpack(">I", data[16:20])[0]
    alone = plot_result(tmp_path / "c.png", {"task": "t", "split": "s", "snn": snn})
    assert width > 2 * struct.unpack(">I", alone.read_bytes()[16:20])[0]
