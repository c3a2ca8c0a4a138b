"""edgesnn's own NIR export read back by its importer runs the same spikes (IF layer)."""

from __future__ import annotations

import numpy as np
import pytest

from edgesnn.core import Network, NetworkSpec
from edgesnn.deploy import deploy
from edgesnn.nir import import_nir


def _dense(rec, n_steps: int, n: int) -> np.ndarray:
    out = np.zeros((n_steps, n), bool)
    out[np.repeat(np.arange(n_steps), np.diff(rec.ptr)), rec.idx] = True
    return out



@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_if_model_round_trips_through_nir(tmp_path, reset):
    rng = np.random.default_rng(0)
    spec = NetworkSpec(dt_us=1000)
    spec.add_layer("in", 20, "input")
    spec.add_layer("out", 8, "if", v_th=1.0, reset=reset)  # subtract: kept in metadata
    spec.connect("in", "out", "dense", weight=rng.uniform(0, 0.6, (20, 8)))
    net = Network(spec)
    net.save(tmp_path / "m.npz")
    deploy(tmp_path / "m.npz", "loihi2", tmp_path / "o", progress=False)
    imp = import_nir(tmp_path / "o" / "model.nir", exporter="edgesnn")
    back = Network(imp.spec)
    steps = 300
    x = rng.random((steps, 20)) < 0.1
    ptr = np.concatenate([[0], np.cumsum(x.sum(1))]).astype(np.int64)
    idx = np.nonzero(x)[1].astype(np.int32)
    a = _dense(net.run(ptr, idx, steps), steps, 8)
    pad = np.concatenate([ptr, np.full(2, ptr[-1])])
    b = _dense(back.run(pad, idx, steps + 2), steps + 2, 8)
    # the file says every hop costs one step (as in the core), so no shift is added back
    assert imp.hop_delay == "native"
    shift = imp.shift_steps("out")
    assert a.sum() > 50
    np.testing.assert_array_equal(a, b[shift:shift + steps])


@pytest.mark.parametrize("model", ["lif", "cuba_lif"])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_lif_family_reset_kept_in_nir_metadata(tmp_path, model, reset):
    """NIR's LIF and CubaLIF reset to v_reset; edgesnn's export keeps reset = "subtract" in the
    node's metadata and its importer restores it."""
    rng = np.random.default_rng(1)
    spec = NetworkSpec(dt_us=1000)
    spec.add_layer("in", 6, "input")
    spec.add_layer("out", 4, model, reset=reset)
    spec.connect("in", "out", "dense", weight=rng.uniform(0, 0.6, (6, 4)))
    Network(spec).save(tmp_path / "m.npz")
    deploy(tmp_path / "m.npz", "loihi2", tmp_path / "o", progress=False)
    imp = import_nir(tmp_path / "o" / "model.nir", exporter="edgesnn")
    params = next(lay for lay in imp.spec.layers if lay.name == "out").params
    assert params.get("reset", "zero") == reset
