"""Small CNNs (conv2d + average pooling + dense) converted with rate coding: the numpy forward
pass against plain loops, the core against the slow reference simulator of tests/core, and the
accuracy on digits against the CNN's own."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from core.reference import Reference

from edgesnn.convert import (
    AvgPool2d,
    Conv2d,
    Dense,
    ReluCNN,
    convert_cnn,
    evaluate,
    simulate,
)
from edgesnn.convert.ann import avgpool_forward, conv2d_forward

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ann_to_snn.py"


def _example():
    spec = importlib.util.spec_from_file_location("ann_to_snn", EXAMPLE)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def cnn(digits) -> tuple[ReluCNN, np.ndarray, np.ndarray, np.ndarray]:
    pytest.importorskip("sklearn")
    _, x_tr, y_tr, x_te, y_te = digits
    return _example().train_small_cnn(x_tr, y_tr, channels=4, seed=0, epochs=30), x_tr, x_te, y_te


def test_conv_and_pool_forward_match_plain_loops() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 7, 6))
    lay = Conv2d(rng.normal(size=(4, 3, 3, 2)), rng.normal(size=4), stride=2, padding=1)
    got = conv2d_forward(x, lay)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    want = np.zeros((2, 4, 4, 4))
    for n in range(2):
        for co in range(4):
            for oy in range(4):
                for ox in range(4):
                    patch = xp[n, :, 2 * oy : 2 * oy + 3, 2 * ox : 2 * ox + 2]
                    want[n, co, oy, ox] = np.sum(patch * lay.kernel[co]) + lay.bias[co]
    np.testing.assert_allclose(got, want, atol=1e-12)
    pooled = avgpool_forward(x, AvgPool2d(2))
    assert pooled.shape == (2, 3, 3, 3)
    assert pooled[1, 2, 1, 2] == pytest.approx(x[1, 2, 2:4, 4:6].mean())


def test_cnn_snn_accuracy_close_to_the_cnn(cnn) -> None:
    net, x_tr, x_te, y_te = cnn
    conv = convert_cnn(net, x_tr[:400], steps=100)
    assert [lay.name for lay in conv.spec.layers] == ["in", "conv1", "pool1", "out"]
    r = evaluate(net, conv, x_te, y_te)
    assert r["ann_accuracy"] > 0.9
    assert r["per_steps"][-1]["accuracy"] >= r["ann_accuracy"] - 0.02


def test_cnn_core_matches_slow_reference(cnn) -> None:
    net, x_tr, x_te, _ = cnn
    conv = convert_cnn(net, x_tr[:400], steps=25, input_coding="poisson")
    conv.spec.outputs = ["pool1"]  # hidden maps too: compare every layer below
    spikes = conv.encode(x_te[:2], seed=5)
    sim = simulate(conv.network(), spikes)
    for i in range(2):
        ref = Reference(conv.spec)
        layers = {"conv1": 0, "pool1": 0, "out": 0}
        for t in range(spikes.shape[1]):
            got = ref.step(np.flatnonzero(spikes[i, t]).tolist())
            want = np.zeros(conv.spec.layer("pool1").n, bool)
            want[got["pool1"]] = True
            np.testing.assert_array_equal(sim.out[i, t].astype(bool), want)
            for name in layers:
                layers[name] += len(got[name])
        assert all(v > 0 for v in layers.values()), layers


def test_cnn_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match="not \\(C_out, 1, kh, kw\\)"):
        ReluCNN((1, 8, 8), [Conv2d(np.zeros((4, 2, 3, 3)), np.zeros(4)), Dense(np.zeros((1, 2)),
                                                                             np.zeros(2))])
    with pytest.raises(ValueError, match="do not fit 16 inputs"):
        ReluCNN((1, 8, 8), [AvgPool2d(2), Dense(np.zeros((64, 2)), np.zeros(2))])
    ok = ReluCNN((1, 8, 8), [AvgPool2d(2), Dense(np.ones((16, 2)), np.zeros(2))])
    with pytest.raises(ValueError, match="must not be negative"):
        convert_cnn(ok, -np.ones((3, 64)))


def test_cnn_file_round_trip_and_command(cnn, tmp_path, capsys) -> None:
    from edgesnn.cli import build_parser
    from edgesnn.commands.convert import run
    from edgesnn.convert import load_ann
    from edgesnn.core import Network
    from edgesnn.errors import FormatError

    net, x_tr, x_te, y_te = cnn
    net.save(tmp_path / "cnn.npz")
    back = load_ann(tmp_path / "cnn.npz")
    assert isinstance(back, ReluCNN) and back.shapes() == net.shapes()
    np.testing.assert_array_equal(back.logits(x_te[:20]), net.logits(x_te[:20]))
    np.savez(tmp_path / "cal.npz", x=x_tr[:300])
    np.savez(tmp_path / "test.npz", x=x_te[:150], y=y_te[:150])
    args = ["convert", str(tmp_path / "cnn.npz"), "--calibration", str(tmp_path / "cal.npz"),
            "--test", str(tmp_path / "test.npz"), "--steps", "50", "--out",
            str(tmp_path / "snn.npz")]
    assert run(build_parser().parse_args(args)) == 0
    text = capsys.readouterr().out
    assert "64-256-64-10" in text and "SNN    50 steps: accuracy" in text
    assert Network.load(tmp_path / "snn.npz").manifest["conversion"]["architecture"] == "cnn"
    assert run(build_parser().parse_args([*args, "--coding", "ttfs", "--steps", "16"])) == 0
    text = capsys.readouterr().out
    assert "ttfs coding" in text and "SNN    66 steps: accuracy" in text
    np.savez(tmp_path / "bad.npz", input_shape=np.array([1, 8, 8]), conv0_kernal=np.zeros(3))
    with pytest.raises(FormatError, match="unknown array 'conv0_kernal'"):
        load_ann(tmp_path / "bad.npz")


def test_cnn_ttfs_spikes_once_and_matches_slow_reference(cnn) -> None:
    net, x_tr, x_te, y_te = cnn
    conv = convert_cnn(net, x_tr[:400], coding="ttfs", steps=16)
    r = evaluate(net, conv, x_te, y_te)
    assert r["per_steps"][-1]["accuracy"] >= r["ann_accuracy"] - 0.03
    small = convert_cnn(net, x_tr[:400], coding="ttfs", steps=4)
    spikes = small.encode(x_te[:1])
    small.spec.outputs = ["pool1"]
    sim = simulate(small.network(), spikes)
    ref = Reference(small.spec)
    seen = {"conv1": 0, "pool1": 0, "out": 0, "latch": 0}
    for t in range(spikes.shape[1]):
        got = ref.step(np.flatnonzero(spikes[0, t]).tolist())
        want = np.zeros(small.spec.layer("pool1").n, bool)
        want[got["pool1"]] = True
        np.testing.assert_array_equal(sim.out[0, t].astype(bool), want)
        for name in seen:
            seen[name] += len(got[name])
    assert seen["conv1"] == small.spec.layer("conv1").n  # once each (forced at the window end)
    assert seen["pool1"] == small.spec.layer("pool1").n
    assert seen["latch"] > 0
