"""Batch runs on two threads: the dense rows split by columns give the one-thread results bit
for bit, and the split is used only where it pays and is safe."""

from __future__ import annotations

import numpy as np
import pytest

from edgesnn.core import Network, NetworkSpec
from edgesnn.core import network as core_network


def _mixed(dtype: str) -> NetworkSpec:
    """Dense, delayed dense, sparse stored as dense rows (inhibitory) and a WTA rule writing
    into the same inhibitory buffer: every kind of hand-over between the threads."""
    rng = np.random.default_rng(1)
    s = NetworkSpec(dt_us=1000, seed=2, dtype=dtype, max_delay_steps=4)
    s.add_layer("in", 1100, "input")
    s.add_layer("h", 1000, "cuba_lif", tau_mem_ms=10.0, tau_syn_exc_ms=5.0, v_th=1.0)
    s.add_layer("o", 600, "lif", tau_mem_ms=10.0, v_th=1.0, t_ref_ms=2.0)
    s.connect("in", "h", "dense", weight=rng.uniform(0, 1, (1100, 1000)), gain=0.05)
    s.connect("h", "o", "dense", weight=rng.uniform(-0.5, 1, (1000, 600)), gain=0.05,
              delay_steps=2)
    a, b = np.nonzero(rng.random((1000, 600)) < 0.2)
    s.connect("h", "o", "sparse", pre=a, post=b, weight=rng.uniform(0, 1, a.size), gain=0.02,
              synapse="inh")
    s.connect("o", "o", "wta", weight=0.05, synapse="inh")
    s.outputs = ["h", "o"]
    return s


def _input(n_in: int, steps: int, p: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    spk = [np.flatnonzero(rng.random(n_in) < p).astype(np.int32) for _ in range(steps)]
    ptr = np.zeros(steps + 1, np.int64)
    ptr[1:] = np.cumsum([x.size for x in spk])
    return ptr, np.concatenate(spk)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_two_threads_give_the_one_thread_results_bit_for_bit(dtype: str) -> None:
    spec = _mixed(dtype)
    one, two = Network(spec), Network(spec)
    one.threads, two.threads = 1, 2
    steps = 150
    ptr, idx = _input(1100, steps, 0.05)
    assert two._two_threads(steps) and not one._two_threads(steps)
    a = one.run(ptr, idx)
    b = two.run(ptr[:61], idx[: ptr[60]], 60)  # two calls: the run resumes where it stopped
    c = two.run(ptr[60:] - ptr[60], idx[ptr[60]:])
    # far more output spikes than the first output buffer holds: the threads stop and resume
    assert a.idx.size > 4 * max(1024, 4 * steps, 2 * one.n_outputs)
    assert np.array_equal(a.ptr[:61], b.ptr)
    assert np.array_equal(a.ptr[60:] - a.ptr[60], c.ptr)
    assert np.array_equal(a.idx, np.concatenate([b.idx, c.idx]))
    assert a.syn_events == b.syn_events + c.syn_events
    assert np.array_equal(one.fs, two.fs) and np.array_equal(one.ii, two.ii)
    assert np.array_equal(one.fs.view(np.uint8), two.fs.view(np.uint8))  # -0.0 too


def test_the_split_is_used_only_for_big_static_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    big = Network(_mixed("float32"))
    big.threads = 2
    assert big._mt_synapses >= core_network.MT_MIN_SYNAPSES
    assert big._two_threads(core_network.MT_MIN_STEPS)
    assert not big._two_threads(core_network.MT_MIN_STEPS - 1)  # a short run: one thread
    small = NetworkSpec(dt_us=1000)
    small.add_layer("in", 100, "input")
    small.add_layer("o", 100, "lif")
    small.connect("in", "o", "dense", weight=np.ones((100, 100)))
    net = Network(small)
    net.threads = 2
    assert not net._two_threads(1000)
    plastic = NetworkSpec(dt_us=1000)
    plastic.add_layer("in", 1100, "input")
    plastic.add_layer("o", 1000, "lif")
    plastic.connect("in", "o", "dense", weight=np.full((1100, 1000), 0.1),
                    plasticity={"rule": "stdp"})
    learner = Network(plastic)
    learner.threads = 2
    assert learner._mt_synapses >= core_network.MT_MIN_SYNAPSES
    assert not learner._two_threads(1000)  # plasticity: one thread
    learner.learning = False
    assert learner._two_threads(1000)
    mostly_other = NetworkSpec(dt_us=1000)  # a WTA of 1500 x 1500 outweighs 1.1 M dense rows
    mostly_other.add_layer("in", 1100, "input")
    mostly_other.add_layer("o", 1500, "lif")
    mostly_other.connect("in", "o", "dense", weight=np.full((1100, 1500), 0.1))
    mostly_other.connect("o", "o", "wta", weight=0.1, synapse="inh")
    net = Network(mostly_other)
    net.threads = 2
    assert not net._two_threads(1000)
    monkeypatch.setenv("EDGESNN_THREADS", "1")
    assert Network(_mixed("float32")).threads == 1


def test_the_snn_component_runs_on_one_thread_unless_told(tmp_path) -> None:
    """In the daemon a network leaves the second core to the rest of the pipeline unless its
    `threads = 2` asks for it."""
    from edgesnn.components import BuildContext
    from edgesnn.networks.snn import SNNNetwork

    Network(_mixed("float32")).save(tmp_path / "big.npz")
    ctx = BuildContext(dt_us=1000, base_dir=str(tmp_path))
    comp = SNNNetwork("snn", SNNNetwork.schema.validate({"model": "big.npz"}, "", []), ctx)
    assert comp.net.threads == 1
    two = SNNNetwork("snn", SNNNetwork.schema.validate({"model": "big.npz", "threads": 2}, "",
                                                       []), ctx)
    assert two.net.threads == min(2, core_network._cores())
