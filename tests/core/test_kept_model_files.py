"""Model files users keep stay readable: files written by earlier releases, kept here for good,
load in this one and spike exactly as they did when they were written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgesnn.core import Network
from edgesnn.train import FeedforwardSNN

DATA = Path(__file__).parent / "data"

#: file -> (output spike counts per neuron, synaptic events, spikes per layer) on the input below,
#: recorded by the release that wrote the file
KEPT = {
    # the shipped spoken-digit model of 2026-12-04 (160-512-10 cuba_lif, no input delay taps)
    "kws_model_2026-12-04.npz": ([0, 0, 116, 65, 6, 7, 0, 0, 41, 0], 1286112,
                                 {"in": 2451, "h1": 3120, "out": 235}),
}


def _input(n_in: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    counts = rng.integers(0, 40, 120)
    ptr = np.concatenate([[0], np.cumsum(counts)])
    idx = np.concatenate([np.sort(rng.choice(n_in, c, replace=False)) for c in counts])
    return ptr, idx.astype(np.int32)


@pytest.mark.parametrize("name", sorted(KEPT))
def test_kept_model_file_loads_and_spikes_as_when_written(name: str) -> None:
    out, syn, layers = KEPT[name]
    net = Network.load(DATA / name)
    rec = net.run(*_input(net.n_inputs))
    assert np.bincount(rec.idx, minlength=net.n_outputs).tolist() == out
    assert rec.syn_events == syn
    assert net.layer_spike_counts() == layers
    # and it is still a trainable feedforward model (fine-tuning an old file)
    assert FeedforwardSNN.from_network(net).input_delays == [0]
