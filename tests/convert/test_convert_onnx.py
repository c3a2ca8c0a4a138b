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


def test_onnx_cnn_converts(digits, tmp_path) -> None:
    """Conv + Relu + AveragePool + Flatten + Gemm, as torch.onnx writes a small CNN."""
    import importlib.util
    import sys
    from pathlib import Path

    from edgesnn.convert import ReluCNN, convert_cnn

    path = Path(__file__).resolve().parents[2] / "examples" / "ann_to_snn.py"
    spec = importlib.util.spec_from_file_location("ann_to_snn", path)
    assert spec is not None and spec.loader is not None
    ex = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = ex
    spec.loader.exec_module(ex)
    _, x_tr, y_tr, x_te, y_te = digits
    cnn = ex.train_small_cnn(x_tr, y_tr, channels=4, seed=1, epochs=20)
    conv, pool, dense = cnn.layers
    nodes = [
        helper.make_node("Conv", ["x", "K", "kb"], ["c"], pads=[1, 1, 1, 1], strides=[1, 1],
                         kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("AveragePool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "W", "b"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 10])],
        [numpy_helper.from_array(a.astype(np.float32), k) for k, a in
         {"K": conv.kernel, "kb": conv.bias, "W": dense.weight.T, "b": dense.bias}.items()])
    onnx.save(helper.make_model(graph), str(tmp_path / "cnn.onnx"))
    got = load_ann(tmp_path / "cnn.onnx")
    assert isinstance(got, ReluCNN) and got.shapes() == cnn.shapes()
    np.testing.assert_allclose(got.logits(x_te[:50]), cnn.logits(x_te[:50]), atol=1e-4)
    r = evaluate(got, convert_cnn(got, x_tr[:300], steps=60), x_te[:150], y_te[:150])
    assert r["per_steps"][-1]["accuracy"] >= r["ann_accuracy"] - 0.04
