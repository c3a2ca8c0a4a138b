"""ReLU MLPs from ONNX files (the optional `onnx` package): Gemm and MatMul + Add layers."""

from __future__ import annotations

import numpy as np
import pytest

from edgesnn.convert import convert_mlp, evaluate, load_ann
from edgesnn.errors import FormatError

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _save(tmp_path, nodes, inits, name="m.onnx"):
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 10])],
        [numpy_helper.from_array(a.astype(np.float32), k) for k, a in inits.items()])
    path = tmp_path / name
    onnx.save(helper.make_model(graph), str(path))
    return path


def test_onnx_gemm_and_matmul_mlp_converts(digits, tmp_path) -> None:
    ann, x_tr, _, x_te, y_te = digits
    w0, b0, w1, b1 = (a.astype(np.float32) for a in (ann.weights[0], ann.biases[0],
                                                      ann.weights[1], ann.biases[1]))
    nodes = [  # torch.onnx style: Gemm with transB=1, then MatMul + Add
        helper.make_node("Gemm", ["x", "W0", "b0"], ["h"], transB=1, name="fc0"),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "W1"], ["z"], name="fc1"),
        helper.make_node("Add", ["z", "b1"], ["y"]),
    ]
    path = _save(tmp_path, nodes, {"W0": w0.T, "b0": b0, "W1": w1, "b1": b1})
    got = load_ann(path)
    assert got.sizes == ann.sizes
    np.testing.assert_allclose(got.weights[0], w0, rtol=0, atol=0)
    np.testing.assert_array_equal(got.predict(x_te), ann.predict(x_te.astype(np.float32)))
    r = evaluate(got, convert_mlp(got, x_tr[:300], steps=60), x_te[:200], y_te[:200])
    assert r["per_steps"][-1]["accuracy"] >= r["ann_accuracy"] - 0.03


def test_onnx_graphs_that_are_not_relu_mlps(tmp_path) -> None:
    w = {"W0": np.ones((64, 10))}
    sig = [helper.make_node("MatMul", ["x", "W0"], ["z"]), helper.make_node("Sigmoid", ["z"],
                                                                             ["y"])]
    with pytest.raises(FormatError, match="Sigmoid"):
        load_ann(_save(tmp_path, sig, w, "sig.onnx"))
    relu_last = [helper.make_node("MatMul", ["x", "W0"], ["z"]), helper.make_node("Relu", ["z"],
                                                                                ["y"])]
    with pytest.raises(FormatError, match="the last by none"):
        load_ann(_save(tmp_path, relu_last, w, "relu.onnx"))
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(FormatError, match="not a readable ONNX model"):
        load_ann(tmp_path / "junk.onnx")
