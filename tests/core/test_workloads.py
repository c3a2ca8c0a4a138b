"""W1, W2 and W3 of ../shared/bench on their exact inputs reproduce the published counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgesnn.benchmarks.core import cuba_spec, ff_spec
from edgesnn.core import Network

BENCH = Path(__file__).parents[2].parent / "shared" / "bench"


def _load(name: str) -> dict[str, np.ndarray]:
    path = BENCH / name
    if not path.exists():
        pytest.skip(f"{path} not found (canonical workloads live in ../shared/bench)")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_w1_feedforward_spike_count(dtype: str) -> None:
    d = _load("ff_1000x400.npz")
    net = Network(ff_spec(d["W"], dtype))
    rec = net.run(d["in_ptr"], d["in_idx"])
    assert rec.idx.size == 43_034
    assert net.layer_spike_counts() == {"in": d["in_idx"].size, "out": 43_034}


def test_d1_delays_core_equals_modulo_kernel_and_numpy() -> None:
    """D1 (W1 with per-synapse delays 1-16): the core gives the spikes of the benchmark's
    per-synapse-modulo kernel and of its numpy twin (first 2000 / 300 steps)."""
    from edgesnn.benchmarks.core import delay_modulo_rt, delay_spec, delays_d1, numpy_delay

    d = _load("ff_1000x400.npz")
    W, ptr, idx = d["W"], d["in_ptr"][:2001], d["in_idx"]
    D = delays_d1(W.shape)
    net = Network(delay_spec(W, D, "float32"))
    got = net.run(ptr, idx).idx.size
    assert got > 1000
    assert delay_modulo_rt(Network(delay_spec(W, D, "float32")), W, D, ptr, idx, 2.0, 1)[1] == got
    short = Network(delay_spec(W, D, "float32")).run(ptr[:301], idx).idx.size
    assert numpy_delay(W, D, ptr[:301], idx, []) == short


def test_w1_streaming_equals_batch() -> None:
    d = _load("ff_1000x400.npz")
    ptr, idx = d["in_ptr"], d["in_idx"]
    batch = Network(ff_spec(d["W"], "float32")).run(ptr, idx)
    net = Network(ff_spec(d["W"], "float32"))
    for k in range(2000):
        assert net.step(idx[ptr[k] : ptr[k + 1]]).tolist() == batch.step_spikes(k).tolist()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_w2_stdp_spike_count(dtype: str) -> None:
    d = _load("ff_1000x400.npz")
    net = Network(ff_spec(d["W"], dtype, stdp=True))
    rec = net.run(d["in_ptr"], d["in_idx"])
    assert rec.idx.size == 49_273
    w = net.weights(0)
    assert w.shape == (1000, 400) and w.min() >= 0.0 and w.max() <= 1.0
    assert not np.array_equal(w, d["W"])


def test_w2_learning_off_is_w1() -> None:
    d = _load("ff_1000x400.npz")
    net = Network(ff_spec(d["W"], "float32", stdp=True))
    net.learning = False
    assert net.run(d["in_ptr"], d["in_idx"]).idx.size == 43_034


def test_w3_recurrent_cuba_spike_count() -> None:
    d = _load("cuba_4000.npz")
    net = Network(cuba_spec(d, "float64"))
    rec = net.run(np.zeros(10_001, np.int64), np.zeros(0, np.int32))
    assert rec.idx.size == 20_876  # the README's count for this order of updates


def test_w3_float32_within_two_percent() -> None:
    d = _load("cuba_4000.npz")
    net = Network(cuba_spec(d, "float32"))
    rec = net.run(np.zeros(10_001, np.int64), np.zeros(0, np.int32))
    assert abs(rec.idx.size - 20_876) <= 0.02 * 20_876


def test_stream_floor_row_runs_the_step_kernel_itself() -> None:
    """`bench core`'s floor row: the compiled loop calls the same step kernel as
    `Network.step` (W1's exact spike count), and its figures are positive."""
    from edgesnn.benchmarks.core import stream_floor

    r = stream_floor("float32", 1)
    assert r["spikes"] == 43034
    assert 0 < r["clock_p50_us"] < r["empty_step_p50_us"]
    assert r["kernel_loop_us"] > 0
