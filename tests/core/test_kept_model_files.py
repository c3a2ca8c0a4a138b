"""Model files users keep stay readable: files written by earlier releases, kept here for good,
load in this one and spike exactly as they did when they were written.

One file (at least) of every model file format is kept. ``<file>.golden.npz`` beside a file holds
what the release that wrote it observed with `_observe` (output spikes, synaptic events, spikes
per layer, weights after the run (plastic ones learn), state at the end): the same call here must
give the same arrays, bit for bit.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgesnn.core import Network, NetworkSpec
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


#: file -> (steps, seed) of the `_observe` call its golden outputs were recorded with
GOLDEN = {
    # format 1 (packed arrays, layout 1), written 2026-12-05 by the release that wrote it
    "kws_model_v1_2026-12-05.npz": (150, 7),  # pipelines/keyword_spotting.npz (input delay taps)
    "tiny_model_v1_2026-12-05.npz": (300, 11),  # every rule, delays, stdp + rstdp, izh, hh
    "tiny32_model_v1_2026-12-05.npz": (300, 12),  # the same in float32
    # format 2 (network description + named arrays), after some learning, with a recipe
    "tiny_model_v2_2026-12-05.npz": (300, 13),
}


def _observe(net: Network, steps: int, seed: int) -> dict[str, np.ndarray]:
    """Run a seeded random input through `net`; what the golden files hold."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, max(2, net.n_inputs // 4), steps)
    ptr = np.concatenate([[0], np.cumsum(counts)])
    idx = np.concatenate(
        [np.sort(rng.choice(net.n_inputs, c, replace=False)) for c in counts]
    ).astype(np.int32)
    rec = net.run(ptr, idx)
    out = {"out_ptr": rec.ptr, "out_idx": rec.idx, "syn_events": np.asarray(rec.syn_events)}
    for name, c in net.layer_spike_counts().items():
        out[f"count/{name}"] = np.asarray(c)
    for i in range(len(net.projection_names)):
        out[f"w/{i}"] = np.asarray(net.weights(i)).ravel().copy()
    for name, st in net.state.items():
        for var, a in st.items():
            out[f"state/{name}/{var}"] = a.copy()
    return out


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_kept_model_file_gives_its_golden_outputs(name: str) -> None:
    steps, seed = GOLDEN[name]
    got = _observe(Network.load(DATA / name), steps, seed)
    with np.load(DATA / name.replace(".npz", ".golden.npz")) as z:
        assert z.files and set(z.files) <= set(got)
        for key in z.files:
            assert z[key].dtype == got[key].dtype and np.array_equal(z[key], got[key]), key


def test_kept_keyword_model_keeps_its_recipe_and_trains_on() -> None:
    v1 = Network.load(DATA / "kws_model_v1_2026-12-05.npz")
    assert v1.manifest["recipe"]["train"]["input_delays_ms"] == [0.0, 40.0, 80.0]
    assert [v1.delay_steps(i) for i in range(3)] == [0, 8, 16]
    assert FeedforwardSNN.from_network(v1).input_delays == [0, 8, 16]


@pytest.mark.parametrize("name", ["kws_model_v1_2026-12-05.npz", "tiny_model_v1_2026-12-05.npz"])
def test_format_1_file_resaved_as_format_2_spikes_the_same(tmp_path, name: str) -> None:
    steps, seed = GOLDEN[name]
    v1 = Network.load(DATA / name)
    v1.save(tmp_path / "v2.npz")
    v2 = Network.load(tmp_path / "v2.npz")
    assert v2.manifest.get("recipe") == v1.manifest.get("recipe")
    got = _observe(v2, steps, seed)
    with np.load(DATA / name.replace(".npz", ".golden.npz")) as z:
        for key in z.files:
            assert np.array_equal(z[key], got[key]), key


def test_kept_format_2_file_is_what_this_release_writes(tmp_path) -> None:
    """Re-saving the kept format-2 file gives the same manifest and arrays (format 2 is
    stable: a change to what save writes is a new format version)."""
    src = DATA / "tiny_model_v2_2026-12-05.npz"
    net = Network.load(src)
    assert net.manifest["recipe"]["labels"] == ["a", "b", "c"]
    assert isinstance(net.spec, NetworkSpec) and net.spec.dtype == "float32"
    net.save(tmp_path / "again.npz")
    with np.load(src) as a, np.load(tmp_path / "again.npz") as b:
        assert a.files == b.files
        assert json.loads(a["manifest"].tobytes()) == json.loads(b["manifest"].tobytes())
        for k in a.files:
            assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
