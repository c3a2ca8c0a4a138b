"""A .nir model runs as a pipeline network (`type = "snn"`, `model = "x.nir"`)."""

from __future__ import annotations

import numpy as np
import pytest

from edgesnn.components import BuildContext, lookup
from edgesnn.events import SpikeRaster

from .test_nir_golden import NIR_DATA as NIR_DIR


@pytest.mark.parametrize("name,exporter", [("snntorch_leaky_mlp", "snntorch"),
                                           ("norse_lifbox_mlp", "norse")])
def test_snn_component_runs_a_nir_model(name, exporter):
    folder = NIR_DIR / name
    if not folder.is_dir():
        pytest.skip(f"NIR golden data not found at {folder}")
    gold = np.load(folder / "golden.npz", allow_pickle=False)
    cls = lookup("network", "snn")
    problems: list = []
    params = cls.schema.validate(
        {"model": str(folder / "model.nir"), "nir_exporter": exporter}, "networks.n", problems)
    assert not problems
    net = cls("n", params, BuildContext(dt_us=1000))
    x = gold["input_spikes"].astype(bool)
    hops = 2
    pad = np.zeros((hops, x.shape[1]), bool)
    out = net.process(SpikeRaster.from_dense(np.vstack([x, pad]), dt_us=1000))
    got = out.to_dense()[hops:]
    np.testing.assert_array_equal(got, gold["output_spikes"].astype(bool))
    assert got.sum() > 0
