"""`edgesnn convert` end to end: npz ANN and data files in, a model file Network.load runs out."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from conftest import edgesnn_cmd, subprocess_env

from edgesnn.convert import MANIFEST_KEY, ReluMLP, load_npz
from edgesnn.core import Network
from edgesnn.errors import FormatError

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A digits MLP as W0/b0/W1/b1, calibration inputs and a labelled test set (held out)."""
    import warnings

    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    d = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(d.data, d.target, test_size=0.2,
                                              stratify=d.target, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier((32,), activation="relu", max_iter=120, random_state=1)
        clf.fit(x_tr / 16.0, y_tr)
    tmp = tmp_path_factory.mktemp("convert")
    ReluMLP.from_sklearn(clf).save(tmp / "mlp.npz")
    np.savez(tmp / "cal.npz", x=x_tr / 16.0)
    np.savez(tmp / "test.npz", x=x_te / 16.0, y=y_te)
    return tmp


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(edgesnn_cmd("convert", *args), capture_output=True, text=True,
                          env=subprocess_env(), timeout=120)


def test_convert_command_json(files) -> None:
    out = files / "snn.npz"
    p = _run(str(files / "mlp.npz"), "--calibration", str(files / "cal.npz"), "--test",
             str(files / "test.npz"), "--steps", "60", "--out", str(out), "--json",
             "--neuron", "lif", "--stream")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    ev = r["evaluation"]
    assert r["layers"] == [64, 32, 10] and r["conversion"]["coding"] == "rate"
    assert [row["steps"] for row in ev["per_steps"]] == [10, 20, 50, 60]
    assert ev["per_steps"][-1]["accuracy"] >= ev["ann_accuracy"] - 0.03
    assert r["conversion"]["neuron"] == "lif" and r["evaluation_stream"]["stream"]
    assert r["evaluation_stream"]["per_steps"][-1]["accuracy"] >= ev["ann_accuracy"] - 0.05
    net = Network.load(out)
    assert net.manifest[MANIFEST_KEY]["percentile"] == 99.9
    assert net.n_inputs == 64 and net.n_outputs == 10


def _code(*args: str) -> int:
    from edgesnn.cli import build_parser
    from edgesnn.commands.convert import run

    return run(build_parser().parse_args(["convert", *args]))


def test_convert_command_text_and_torch_layout(files, capsys) -> None:
    with np.load(files / "mlp.npz") as z:
        torch_style = {"weight0": z["W0"].T, "bias0": z["b0"], "weight1": z["W1"].T,
                       "bias1": z["b1"]}
    np.savez(files / "torch.npz", **torch_style)
    a, b = load_npz(files / "torch.npz"), load_npz(files / "mlp.npz")
    np.testing.assert_array_equal(a.weights[1], b.weights[1])
    assert _code(str(files / "torch.npz"), "--calibration", str(files / "cal.npz"), "--out",
                 str(files / "t.npz"), "--percentile", "100") == 0
    text = capsys.readouterr().out
    assert "layer scales (percentile 100)" in text
    assert "agreement" in text and "calibration inputs" in text


def test_convert_command_bad_input(files, capsys) -> None:
    from edgesnn.cli import build_parser
    from edgesnn.commands.convert import run

    def code(*args: str) -> int:
        return run(build_parser().parse_args(["convert", *args]))

    np.savez(files / "nothing.npz", a=np.zeros(3))
    assert code(str(files / "nothing.npz"), "--out", str(files / "x.npz")) == 2
    assert "no weight arrays" in capsys.readouterr().err
    np.savez(files / "narrow.npz", x=np.zeros((5, 7)))
    assert code(str(files / "mlp.npz"), "--calibration", str(files / "narrow.npz"), "--out",
                str(files / "x.npz")) == 2
    assert "has 7 features, the ANN takes 64" in capsys.readouterr().err
    assert code(str(files / "missing.npz"), "--out", str(files / "x.npz")) == 2
    assert "no such file" in capsys.readouterr().err
    assert code(str(files / "mlp.npz"), "--calibration", str(files / "cal.npz"), "--percentile",
                "0", "--out", str(files / "x.npz")) == 2
    assert "percentile 0.0 is outside" in capsys.readouterr().err
    assert not (files / "x.npz").exists()


def test_npz_loader_errors(tmp_path) -> None:
    np.savez(tmp_path / "gap.npz", W0=np.zeros((3, 4)), W2=np.zeros((4, 2)))
    with pytest.raises(FormatError, match="numbered 0..1"):
        load_npz(tmp_path / "gap.npz")
    np.savez(tmp_path / "chain.npz", W0=np.zeros((3, 4)), W1=np.zeros((5, 2)))
    with pytest.raises(FormatError, match="do not chain"):
        load_npz(tmp_path / "chain.npz")
    np.savez(tmp_path / "bias.npz", W0=np.zeros((3, 4)), b0=np.zeros(5))
    with pytest.raises(FormatError, match="b0 has 5 values"):
        load_npz(tmp_path / "bias.npz")
    np.savez(tmp_path / "nobias.npz", W0=np.ones((3, 4)))
    assert load_npz(tmp_path / "nobias.npz").biases[0].tolist() == [0.0] * 4


def test_onnx_is_optional(tmp_path, monkeypatch) -> None:
    """Without the onnx package an .onnx file gets the install hint (npz needs nothing)."""
    import sys

    from edgesnn.convert import load_ann

    monkeypatch.setitem(sys.modules, "onnx", None)  # as if not installed: import fails
    (tmp_path / "m.onnx").write_bytes(b"\x00")
    with pytest.raises(ImportError, match="pip install onnx"):
        load_ann(tmp_path / "m.onnx")
