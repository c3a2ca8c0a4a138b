"""Dense projections with per-synapse delays keep the delays as bytes and no targets (P_DMODE 2):
spikes, state and synaptic events are those of the same synapses packed as every pair of a
sparse projection (P_DMODE 1) bit for bit, and model files are written as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgesnn.core import Network, NetworkSpec
from edgesnn.core import layout as L
from edgesnn.core import network as core_network

N_IN, N_HID, N_OUT = 40, 25, 12


def _spec(dtype: str, lo: int, hi: int, as_sparse: bool) -> tuple[NetworkSpec, np.ndarray]:
    """in -> hid with delays in lo..hi (dense, or the same pairs listed as sparse), hid also fed
    over a uniform delay of 3 steps, hid -> out dense with per-synapse delays 0..2."""
    rng = np.random.default_rng(lo * 1000 + hi)
    w = rng.uniform(-0.2, 0.6, (N_IN, N_HID))
    d = rng.integers(lo, hi + 1, w.shape).astype(np.uint8)
    spec = NetworkSpec(dt_us=1000, dtype=dtype, max_delay_steps=max(hi, 3))
    spec.add_layer("in", N_IN, "input")
    spec.add_layer("hid", N_HID, "cuba_lif", tau_mem_ms=8.0, tau_syn_exc_ms=4.0, v_th=0.4)
    spec.add_layer("out", N_OUT, "lif", tau_mem_ms=5.0, v_th=0.3)
    if as_sparse:
        pre, post = np.repeat(np.arange(N_IN), N_HID), np.tile(np.arange(N_HID), N_IN)
        spec.connect("in", "hid", "sparse", pre=pre, post=post, weight=w.ravel(),
                     delay_steps=d.ravel().astype(np.int64), gain=1.5)  # fmt: skip
    else:
        spec.connect("in", "hid", "dense", weight=w, delay_steps=d, gain=1.5)
    spec.connect("in", "hid", "dense", weight=rng.uniform(0, 0.3, (N_IN, N_HID)), delay_steps=3)
    spec.connect("hid", "out", "dense", weight=rng.uniform(0, 0.8, (N_HID, N_OUT)),
                 delay_steps=rng.integers(0, 3, (N_HID, N_OUT)).astype(np.int32))  # fmt: skip
    spec.outputs = ["hid", "out"]
    return spec, d


def _inputs(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(4)
    return [np.flatnonzero(rng.random(N_IN) < 0.25).astype(np.int32) for _ in range(n)]


def _dmodes(net: Network) -> list[int]:
    ptab = int(net.ii[L.H_PTAB])
    return [int(net.ii[ptab + k * L.PR + L.P_DMODE]) for k in range(len(net.projection_names))]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("lo", "hi"), [(0, 1), (1, 16), (0, 255), (250, 255)])
def test_delays_as_bytes_give_the_sums_of_every_pair_bit_for_bit(dtype: str, lo: int, hi: int
                                                                 ) -> None:  # fmt: skip
    n = hi + 60  # long enough for the longest delays to land
    per = _inputs(n)
    ptr = np.concatenate([[0], np.cumsum([p.size for p in per])]).astype(np.int64)
    idx = np.concatenate(per)
    results = []
    for as_sparse in (False, True):
        spec, d = _spec(dtype, lo, hi, as_sparse)
        net = Network(spec)
        assert _dmodes(net) == ([1, 0, 2] if as_sparse else [2, 0, 2])
        rec = net.run(ptr, idx)
        streamed = Network(spec)
        trace = b"".join(streamed.step(p).tobytes() + streamed.fs.tobytes() for p in per)
        assert streamed.fs.tobytes() == net.fs.tobytes()
        results.append((rec.idx.tobytes(), rec.ptr.tobytes(), rec.syn_events,
                        net.fs.tobytes(), trace, net.layer_spike_counts()))  # fmt: skip
        rp = net.projection_record(0)
        assert np.array_equal(rp.delays, d.ravel()) and rp.delays.dtype == np.int32
        assert np.array_equal(rp.targets, np.tile(np.arange(N_HID), N_IN))
    assert results[0] == results[1]
    assert results[0][5]["hid"] > 0 and results[0][5]["out"] > 0  # the delays were exercised


def test_model_files_hold_the_arrays_of_every_pair_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, _ = _spec("float32", 0, 255, as_sparse=False)
    per = _inputs(80)
    net = Network(spec)
    for p in per[:40]:
        net.step(p)
    net.save(tmp_path / "bytes.npz")
    back = Network.load(tmp_path / "bytes.npz")
    assert _dmodes(back) == [2, 0, 2]
    net.reset()  # a model file holds the state after reset
    assert [back.step(p).tobytes() for p in per] == [net.step(p).tobytes() for p in per]
    assert back.fs.tobytes() == net.fs.tobytes()
    monkeypatch.setattr(core_network, "DELAY_BYTES", False)
    old = Network(spec)
    assert _dmodes(old) == [1, 0, 1]
    for p in per[:40]:
        old.step(p)
    old.save(tmp_path / "pairs.npz")
    with np.load(tmp_path / "bytes.npz") as a, np.load(tmp_path / "pairs.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for k in a.files:
            assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k


def test_plastic_or_long_delays_keep_every_pair_form() -> None:
    rng = np.random.default_rng(2)
    spec = NetworkSpec(dt_us=1000, max_delay_steps=300)
    spec.add_layer("in", 6, "input")
    spec.add_layer("out", 4, "lif")
    spec.connect("in", "out", "dense", weight=rng.random((6, 4)),
                 delay_steps=rng.integers(0, 301, (6, 4)))  # fmt: skip
    spec.connect("in", "out", "dense", weight=rng.random((6, 4)),
                 delay_steps=rng.integers(0, 3, (6, 4)), plasticity={})  # fmt: skip
    assert _dmodes(Network(spec)) == [1, 1]


def test_packed_delay_bytes_outside_the_ring_are_refused() -> None:
    from edgesnn.core.network import _check_tables
    from edgesnn.errors import FormatError

    spec, _ = _spec("float64", 1, 16, as_sparse=False)
    net = Network(spec)
    arrays = {k: getattr(net, k).copy() for k in ("fs", "fp", "w", "ii", "ij")}
    _check_tables(arrays, net.manifest, "net")
    r = int(net.ii[L.H_PTAB])
    arrays["ij"][int(net.ii[r + L.P_DOFF])] = -1  # four delays of 255 > 16
    with pytest.raises(FormatError, match="delays outside"):
        _check_tables(arrays, net.manifest, "net")
