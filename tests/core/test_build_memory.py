"""Building a network casts its weights once, into the network's own buffer: no float64 or
other whole copy of them is made on the way (at most 2x the float32 weight bytes)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from edgesnn.core import Network, NetworkSpec


def _built(W: np.ndarray, **connect: object) -> tuple[Network, int, int]:
    """A float32 network input -> cuba_lif with W as a dense projection, and the bytes
    tracemalloc saw kept and at most while building it."""
    spec = NetworkSpec(dt_us=1000, dtype="float32", max_delay_steps=16)
    spec.add_layer("in", W.shape[0], "input")
    spec.add_layer("out", W.shape[1], "cuba_lif")
    spec.connect("in", "out", "dense", weight=W, **connect)
    tracemalloc.start()
    try:
        net = Network(spec)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return net, kept, peak


@pytest.mark.parametrize("given", [np.float32, np.float64])
@pytest.mark.parametrize("synapse", ["auto", "inh"])
def test_building_needs_at_most_twice_the_float32_weights(given: type, synapse: str) -> None:
    W = np.random.default_rng(0).uniform(-0.1, 1.0, (2000, 500)).astype(given)
    net, _, peak = _built(W, synapse=synapse)
    assert peak <= 2 * W.size * 4
    expect = W.astype(np.float32)
    assert np.array_equal(net.weights(0), -np.abs(expect) if synapse == "inh" else expect)


def test_building_with_per_synapse_delays_needs_at_most_twice_what_it_keeps() -> None:
    rng = np.random.default_rng(1)
    W = rng.random((1000, 400), dtype=np.float32)
    D = rng.integers(1, 17, W.shape).astype(np.int32)
    net, kept, peak = _built(W, delay_steps=D)
    assert peak <= 2 * kept  # weights, targets, delays and ring offsets, no sorting copies
    rec = net.projection_record(0)
    assert np.array_equal(rec.weights, W.ravel()) and np.array_equal(rec.delays, D.ravel())


@pytest.mark.parametrize("given", [np.uint8, np.int8, np.int32])
def test_building_with_dense_per_synapse_delays_needs_at_most_twice_the_float32_weights(
    given: type,
) -> None:
    """Delays below 256 are packed as bytes straight from the given matrix: no targets, ring
    offsets or whole int32 copy of the delays (those took 7x the weight bytes)."""
    rng = np.random.default_rng(2)
    W = rng.random((2000, 500), dtype=np.float32)
    D = rng.integers(1, 17, W.shape).astype(given)
    net, _, peak = _built(W, delay_steps=D)
    assert peak <= 2 * W.size * 4
    rec = net.projection_record(0)
    assert np.array_equal(rec.weights, W.ravel()) and np.array_equal(rec.delays, D.ravel())
