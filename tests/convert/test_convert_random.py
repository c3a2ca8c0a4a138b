"""Random ReLU MLPs: the core runs every converted network spike for spike like the numpy
simulations (rate: IF or LIF chain; TTFS: ramps, clocks and latch), whatever the weights."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgesnn.convert import ReluMLP, convert_mlp, simulate

from .reference import simulate_chain, simulate_if_chain


def _mlp(seed: int, sizes: list[int]) -> tuple[ReluMLP, np.ndarray]:
    rng = np.random.default_rng(seed)
    ws = [rng.normal(0, 1.5 / np.sqrt(a), (a, b)) for a, b in zip(sizes, sizes[1:])]
    bs = [rng.normal(0, 0.3, b) for b in sizes[1:]]
    return ReluMLP(ws, bs), rng.normal(0.5, 0.7, (20, sizes[0]))


sizes_st = st.lists(st.integers(1, 9), min_size=2, max_size=4)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), sizes=sizes_st, pct=st.sampled_from([90.0, 99.9, 100.0]),
       coding=st.sampled_from(["current", "poisson"]), v_init=st.sampled_from([0.0, 0.5]),
       neuron=st.sampled_from(["if", "lif"]), tau=st.sampled_from([3.0, 20.0]))
def test_rate_core_equals_reference(seed, sizes, pct, coding, v_init, neuron, tau) -> None:
    ann, x = _mlp(seed, sizes)
    conv = convert_mlp(ann, x, percentile=pct, steps=30, input_coding=coding, v_init=v_init,
                       neuron=neuron, tau_mem_ms=tau)
    spikes = conv.encode(x[:3], seed=seed)
    sim = simulate(conv.network(), spikes)
    ref = simulate_if_chain if neuron == "if" else simulate_chain
    for i in range(3):
        np.testing.assert_array_equal(sim.out[i].astype(bool), ref(conv.spec, spikes[i]))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), sizes=sizes_st, window=st.integers(2, 9))
def test_ttfs_core_equals_reference(seed, sizes, window) -> None:
    ann, x = _mlp(seed, sizes)
    conv = convert_mlp(ann, x, coding="ttfs", steps=window)
    spikes = conv.encode(x[:3])
    for layer in [lay.name for lay in conv.spec.layers[2:]]:
        conv.spec.outputs = [layer]
        sim = simulate(conv.network(), spikes)
        for i in range(3):
            np.testing.assert_array_equal(sim.out[i].astype(bool),
                                          simulate_chain(conv.spec, spikes[i]), err_msg=layer)
