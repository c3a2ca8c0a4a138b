"""AdEx (edgesnn.core.neurons.adex) against Brian2 and against its reference twin.

The golden file tests/core/data/adex_brian2.npz holds the inputs and the Brian2 spike times of
three cells (regular spiking, tonic, bursting) under a current step and under Poisson input
(Brian2 2.9.0, rk4 at 1 µs; `tools/adex_brian2.py` regenerates it). Here the core replays the
same inputs at dt = 1 ms: every spike must fall in the same step as Brian2's or next to it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgesnn.core import Network, NetworkSpec
from edgesnn.core.models import MODELS

from .reference import Reference

GOLDEN = Path(__file__).parent / "data" / "adex_brian2.npz"


def _spec(meta: dict, w: np.ndarray, bias: np.ndarray, dtype: str = "float64") -> NetworkSpec:
    """One input layer feeding one single-neuron AdEx layer per cell (weights in pA)."""
    spec = NetworkSpec(dt_us=meta["dt_us"], dtype=dtype)
    spec.add_layer("in", w.shape[0], "input")
    for k, (name, params) in enumerate(meta["cells"].items()):
        spec.add_layer(name, 1, "adex", **params, i_bias=float(bias[k]))
        spec.connect("in", name, "dense", weight=w[:, k : k + 1])
    spec.outputs = list(meta["cells"])
    return spec


def _run(net: Network, spikes: np.ndarray, names: list[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {n: [] for n in names}
    for k in range(spikes.shape[0]):
        net.step(np.flatnonzero(spikes[k]).astype(np.int32))
        for n in names:
            if net.layer_spikes(n).size:
                out[n].append(k)
    return out


@pytest.mark.parametrize("case", ["step", "poisson"])
def test_adex_matches_brian2_within_one_step(case: str) -> None:
    g = np.load(GOLDEN)
    meta = json.loads(str(g["meta"]))
    names = list(meta["cells"])
    net = Network(_spec(meta, g[f"{case}_w"], g[f"{case}_bias"]))
    got = _run(net, g[f"{case}_spikes"], names)
    total = 0
    for name in names:
        want = np.floor(g[f"{case}/{name}"] + 1e-9).astype(int)  # the step of each Brian2 spike
        have = np.asarray(got[name])
        assert have.size == want.size, f"{case} {name}: {have.size} spikes, Brian2 {want.size}"
        assert np.all(np.abs(have - want) <= 1), f"{case} {name}: {have} vs Brian2 {want}"
        total += want.size
    assert total >= 30  # the cells really fire


def test_adex_kernel_equals_its_reference_twin() -> None:
    g = np.load(GOLDEN)
    meta = json.loads(str(g["meta"]))
    names = list(meta["cells"])
    spec = _spec(meta, g["poisson_w"], g["poisson_bias"])
    net, ref = Network(spec), Reference(spec)
    spikes = g["poisson_spikes"][:300]
    n_fired = 0
    for k in range(spikes.shape[0]):
        idx = np.flatnonzero(spikes[k])
        net.step(idx.astype(np.int32))
        want = ref.step([int(i) for i in idx])
        for li, name in enumerate(names):
            assert net.layer_spikes(name).tolist() == want[name], f"step {k} {name}"
            n_fired += len(want[name])
            st = net.state[name]
            rs = ref.state[li + 1]
            assert st["v"][0] == rs["v"][0] and st["w"][0] == rs["w"][0], f"step {k} {name}"
    assert n_fired > 5


def test_adex_float32_runs_and_defaults_are_documented() -> None:
    md = MODELS["adex"]
    assert md.params["max_substep_ms"] == 0.1 and md.state == ("v", "w")
    g = np.load(GOLDEN)
    meta = json.loads(str(g["meta"]))
    net = Network(_spec(meta, g["step_w"], g["step_bias"], dtype="float32"))
    got = _run(net, g["step_spikes"], list(meta["cells"]))
    for name, steps in got.items():
        want = np.floor(g[f"step/{name}"] + 1e-9).astype(int)
        assert abs(len(steps) - want.size) <= 1, name
