"""`edgesnn eval`: the shipped keyword-spotting model on real FSDD recordings, and its errors.

The recordings go through pipelines/keyword_spotting.toml's WAV driver and cochlea encoder into
pipelines/keyword_spotting.npz, one whole recording at a time (reset before each); the decision
is the runtime's rule over the output spike counts, whatever the readout's window.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgesnn.cli import main
from edgesnn.evaluation import decide

REPO = Path(__file__).resolve().parents[2]
FSDD = REPO.parent / "shared" / "data" / "audio" / "fsdd"
MODEL = REPO / "pipelines" / "keyword_spotting.npz"
PIPELINE = REPO / "pipelines" / "keyword_spotting.toml"


def files() -> list[Path]:
    """Two recordings of every digit by two speakers (index 0: FSDD's test split)."""
    out = [FSDD / f"{d}_{s}_0.wav" for d in range(10) for s in ("jackson", "george")]
    missing = [p for p in out if not p.exists()]
    if missing:
        pytest.skip(f"FSDD recordings not present in {FSDD} (../shared/data beside the repo)")
    return out


def test_eval_keyword_spotting_on_fsdd_files() -> None:
    recs = files()
    r = subprocess.run([sys.executable, "-m", "edgesnn", "eval", str(MODEL), "--pipeline",
                        str(PIPELINE), "--recordings", *map(str, recs), "--json"],
                       capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout)
    snn = res["snn"]
    for key in ("accuracy_mean", "undecided", "per_class_recall", "confusion", "labels"):
        assert key in snn
    assert res["n_test"] == 20 and snn["labels"] == [str(d) for d in range(10)] + ["(undecided)"]
    conf = np.asarray(snn["confusion"])
    assert conf.shape == (10, 11) and conf.sum() == 20 and (conf.sum(1) == 2).all()
    # every recording is decided by the one rule over its output counts, label from its name
    right = 0
    for row in res["recordings"]:
        name = Path(row["recording"]).name
        assert row["label"] == name[0]
        p = int(decide(np.asarray(row["counts"])))
        assert row["decided"] == (str(p) if p >= 0 else None)
        right += row["decided"] == row["label"]
        assert row["steps"] > 50  # the whole recording (4 ms steps), not one readout window
    assert snn["accuracy_mean"] == right / 20
    assert snn["undecided"] == sum(row["decided"] is None for row in res["recordings"])
    assert snn["accuracy_mean"] >= 0.5  # chance is 0.1


def test_eval_tail_steps_flag_runs_silent_steps_after_each_recording(capsys) -> None:
    rec = files()[0]
    assert main(["eval", str(MODEL), "--pipeline", str(PIPELINE), "--recordings", str(rec),
                 "--json", "--tail-steps", "0"]) == 0
    base = json.loads(capsys.readouterr().out)
    assert main(["eval", str(MODEL), "--pipeline", str(PIPELINE), "--recordings", str(rec),
                 "--json", "--tail-steps", "25"]) == 0
    tail = json.loads(capsys.readouterr().out)
    assert tail["tail_steps"] == 25
    assert tail["recordings"][0]["steps"] == base["recordings"][0]["steps"] + 25
    assert sum(tail["recordings"][0]["counts"]) >= sum(base["recordings"][0]["counts"])


def _err(capsys, *argv: str) -> str:
    assert main(["eval", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("edgesnn eval: ") and "\n" not in err and "Traceback" not in err
    return err


def test_eval_errors_are_one_line_exit_2(tmp_path: Path, capsys) -> None:
    rec = files()[0]
    err = _err(capsys, str(tmp_path / "none.npz"), "--pipeline", str(PIPELINE),
               "--recordings", str(rec))
    assert "model file" in err and "none.npz not found" in err
    err = _err(capsys, str(MODEL), "--pipeline", "dvs_motion", "--recordings", str(rec))
    assert "dvs_file" in err and rec.name in err  # a DVS pipeline cannot read a WAV file
    odd = tmp_path / "hello.wav"
    shutil.copy(rec, odd)
    err = _err(capsys, str(MODEL), "--pipeline", str(PIPELINE), "--recordings", str(odd))
    assert "hello.wav: no label in the file name" in err
    err = _err(capsys, str(MODEL), "--pipeline", str(PIPELINE), "--recordings",
               str(tmp_path / "nothing_*.wav"))
    assert "no recording" in err


def test_eval_takes_labels_and_tail_steps_from_the_model_recipe(tmp_path: Path, capsys) -> None:
    from edgesnn.core import Network

    rec = files()[2]
    net = Network.load(MODEL)
    net.manifest.pop("recipe", None)
    net.save(tmp_path / "plain.npz")
    group = net.n_outputs // 10  # the shipped model: an ensemble with 3 neurons per label
    net.manifest["recipe"] = {"tail_steps": 7, "labels": [str(d) for d in range(10)],
                              "neurons_per_label": group}
    net.save(tmp_path / "m.npz")
    assert main(["eval", str(tmp_path / "m.npz"), "--pipeline", str(PIPELINE),
                 "--recordings", str(rec), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["tail_steps"] == 7 and res["labels_from"] == "model recipe"
    assert main(["eval", str(tmp_path / "plain.npz"), "--pipeline", str(PIPELINE),
                 "--recordings", str(rec), "--json"]) == 0
    base = json.loads(capsys.readouterr().out)
    assert base["tail_steps"] == 0 and base["labels_from"].startswith("readouts.")
    assert res["recordings"][0]["steps"] == base["recordings"][0]["steps"] + 7


def test_cwru_and_fsdd_names_map_to_labels() -> None:
    from edgesnn.commands.eval import EvalError, _label_of

    cwru = ["normal", "ball", "inner_race", "outer_race"]
    assert _label_of(Path("IR014_2.mat"), cwru) == 2
    assert _label_of(Path("cwru_12k_de_B007_0.mat"), cwru) == 1
    assert _label_of(Path("Normal_0.mat"), cwru) == 0
    assert _label_of(Path("7_theo_3.wav"), [str(d) for d in range(10)]) == 7
    with pytest.raises(EvalError, match="not among"):
        _label_of(Path("OR007@6_0.mat"), ["normal", "ball"])
