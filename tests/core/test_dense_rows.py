"""Sparse projections dense enough (`DENSE_ROWS_DENSITY`) are also stored as dense rows, which
the step delivers at dense speed with exactly the sums of the synapse-by-synapse loop."""

from __future__ import annotations

import numpy as np
import pytest

from edgesnn.core import Network, NetworkSpec
from edgesnn.core import network as core_network


def _spec(density: float, gain: float, synapse: str, delay: int, seed: int) -> NetworkSpec:
    rng = np.random.default_rng(seed)
    a, b = np.nonzero(rng.random((60, 30)) < density)
    spec = NetworkSpec(dt_us=1000, dtype="float32")
    spec.add_layer("in", 60, "input")
    spec.add_layer("hid", 30, "cuba_lif", tau_mem_ms=8.0, t_ref_ms=2.0, i_bias=1.2)
    spec.add_layer("out", 30, "lif", tau_mem_ms=5.0)
    w = rng.uniform(-0.5, 1.5, a.size)
    w[::7] = 0.0  # present synapses of weight zero stay what they are
    spec.connect("in", "hid", "sparse", pre=a, post=b, weight=w, gain=gain, synapse=synapse,
                 delay_steps=delay)  # fmt: skip
    spec.connect("hid", "out", "random", p=0.5, weight=0.8, gain=-gain)
    spec.outputs = ["hid", "out"]
    return spec


def _run(spec: NetworkSpec) -> tuple[bytes, bytes, int, bytes, list[int]]:
    rng = np.random.default_rng(1)
    n = 150
    per = [np.flatnonzero(rng.random(60) < 0.3).astype(np.int32) for _ in range(n)]
    ptr = np.zeros(n + 1, np.int64)
    ptr[1:] = np.cumsum([p.size for p in per])
    net = Network(spec)
    rec = net.run(ptr, np.concatenate(per))
    streamed = Network(spec)
    counts = [streamed.step(p).size for p in per]
    return rec.idx.tobytes(), net.fs.tobytes(), rec.syn_events, streamed.fs.tobytes(), counts


@pytest.mark.parametrize("density", [0.15, 0.6, 1.0])
@pytest.mark.parametrize(("gain", "synapse", "delay"),
                         [(1.5, "exc", 0), (-2.0, "auto", 0), (0.0, "exc", 0), (3.0, "inh", 2)])
def test_dense_rows_give_the_sums_of_sparse_rows_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch, density: float, gain: float, synapse: str, delay: int
) -> None:
    spec = _spec(density, gain, synapse, delay, seed=int(density * 100))
    dense = _run(spec)
    assert not Network(spec).weights(0).flags.writeable  # stored as dense rows
    monkeypatch.setattr(core_network, "DENSE_ROWS_DENSITY", float("inf"))
    assert Network(spec).weights(0).flags.writeable  # sparse rows only
    assert _run(spec) == dense
    assert dense[1] != Network(spec).fs.tobytes()  # the input moved the state
    if gain > 0 and synapse == "exc":
        assert sum(dense[4]) > 0


def test_plastic_repeated_or_sparse_enough_projections_stay_sparse() -> None:
    spec = _spec(0.5, 1.0, "exc", 0, seed=2)
    spec.projections[0].params["plasticity"] = {"rule": "stdp"}
    assert Network(spec).weights(0).flags.writeable  # plasticity must not grow absent synapses
    spec = _spec(0.02, 1.0, "exc", 0, seed=2)
    assert Network(spec).weights(0).flags.writeable
    spec = NetworkSpec(dt_us=1000)
    spec.add_layer("in", 2, "input")
    spec.add_layer("out", 2, "if")
    spec.connect("in", "out", "sparse", pre=[0, 0, 1], post=[1, 1, 0], weight=[0.5, 0.25, 1.0])
    assert Network(spec).weights(0).flags.writeable  # a repeated pair has no single dense cell


def test_weights_of_dense_rows_read_as_sparse_and_survive_a_model_file(tmp_path) -> None:
    spec = _spec(0.3, 1.5, "exc", 0, seed=4)
    net = Network(spec)
    w = net.weights(0)
    rec = net.projection_record(0)
    assert rec.rule == "sparse" and rec.weights.size == rec.targets.size == w.size
    with pytest.raises(ValueError):
        w[0] = 1.0  # the step reads the dense-row copy: a write would not reach it
    net.save(tmp_path / "m.npz")
    back = Network.load(tmp_path / "m.npz")
    assert np.array_equal(back.w, net.w) and np.array_equal(back.ij, net.ij)


def test_tables_with_dense_rows_outside_w_are_refused() -> None:
    from edgesnn.core import layout as L
    from edgesnn.core.network import _check_tables
    from edgesnn.errors import FormatError

    net = Network(_spec(0.3, 1.5, "exc", 0, seed=4))
    arrays = {k: getattr(net, k).copy() for k in ("fs", "fp", "w", "ii", "ij")}
    _check_tables(arrays, net.manifest, "net")
    arrays["ii"][int(net.ii[L.H_PTAB]) + L.P_DWOFF] = net.w.size - 5
    with pytest.raises(FormatError, match="P_DWOFF"):
        _check_tables(arrays, net.manifest, "net")
