"""Model files: npz of a versioned JSON manifest (the network description) and named arrays,
no pickle; save/load is bit-identical and independent of the packed layout."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgesnn.core import MODEL_VERSION, Network, NetworkSpec
from edgesnn.errors import FormatError

from .test_reference import _inputs, random_spec

DATA = Path(__file__).parent / "data"
V1_TINY = DATA / "tiny_model_v1_2026-12-05.npz"  # format 1: every rule, delays, plasticity


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_save_load_gives_bit_identical_outputs(tmp_path, seed: int) -> None:
    spec, n_in = random_spec(seed)
    spec.dtype = "float32" if seed == 2 else "float64"
    net = Network(spec)
    steps = _inputs(seed, n_in, 60)
    path = tmp_path / "m.npz"
    net.save(path)
    loaded = Network.load(path)
    assert loaded.layer_names == net.layer_names and loaded.n_inputs == net.n_inputs
    for inp in steps:
        a = net.step(np.asarray(inp, np.int32)).tolist()
        b = loaded.step(np.asarray(inp, np.int32)).tolist()
        assert a == b
        for name in net.layer_names:
            for var, arr in net.state[name].items():
                assert np.array_equal(arr, loaded.state[name][var]), (name, var)
    assert net.layer_spike_counts() == loaded.layer_spike_counts()


def test_learned_weights_are_saved(tmp_path) -> None:
    from edgesnn.core import NetworkSpec

    rng = np.random.default_rng(0)
    spec = NetworkSpec(dt_us=1000)
    spec.add_layer("in", 20, "input")
    spec.add_layer("out", 5, "cuba_lif", tau_mem_ms=10.0)
    spec.connect("in", "out", "dense", weight=rng.uniform(0.3, 1, (20, 5)), plasticity={})
    net = Network(spec)
    for inp in _inputs(0, 20, 100):
        net.step(np.asarray(inp, np.int32))
    learned = net.weights(0).copy()
    net.save(tmp_path / "m.npz")
    assert np.array_equal(Network.load(tmp_path / "m.npz").weights(0), learned)


def test_model_file_is_npz_with_a_versioned_manifest(tmp_path) -> None:
    spec, _ = random_spec(5)
    Network(spec).save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as z:
        manifest = json.loads(z["manifest"].tobytes())
        files = set(z.files)
    assert manifest["format"] == "edgesnn-model" and manifest["version"] == MODEL_VERSION == 2
    net = manifest["network"]
    assert [m["name"] for m in net["layers"]] == [lay.name for lay in spec.layers]
    assert "layout" not in manifest and not files & {"fs", "fp", "w", "ii", "ij"}
    # every array is named and referenced from the description or the state
    refs = {v["array"] for p in net["projections"] for v in p.values()
            if isinstance(v, dict) and "array" in v}  # fmt: skip
    refs |= {name for st in manifest["state"].values() for name in st.values()}
    assert files - {"manifest"} == refs
    assert all(r.startswith(("proj/", "layer/")) for r in refs)


def _rewrite_manifest(src, dst, edit) -> None:
    with np.load(src) as z:
        data = {k: z[k] for k in z.files}
    manifest = json.loads(data["manifest"].tobytes())
    edit(manifest)
    np.savez(dst, **{**data, "manifest": np.frombuffer(json.dumps(manifest).encode(), np.uint8)})


def test_bad_model_files_raise_format_error(tmp_path) -> None:
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(FormatError):
        Network.load(tmp_path / "junk.npz")
    spec, _ = random_spec(5)
    good = tmp_path / "m.npz"
    Network(spec).save(good)
    _rewrite_manifest(good, tmp_path / "v.npz", lambda m: m.update(version=999))
    with pytest.raises(FormatError, match="version 999"):
        Network.load(tmp_path / "v.npz")
    _rewrite_manifest(good, tmp_path / "v0.npz", lambda m: m.update(version=0))
    with pytest.raises(FormatError, match="version 0 is not supported"):
        Network.load(tmp_path / "v0.npz")
    # format 1: tables are checked before anything is read from them
    with np.load(V1_TINY) as z:
        data = {k: z[k] for k in z.files}
    ii = data["ii"].copy()
    ii[ii.size - 1] = 0
    ii[4] = ii.size  # layer table beyond the array
    np.savez(tmp_path / "t.npz", **{**data, "ii": ii})
    with pytest.raises(FormatError, match="tables"):
        Network.load(tmp_path / "t.npz")
    with zipfile.ZipFile(tmp_path / "nomanifest.npz", "w") as zf:
        zf.writestr("fs.npy", b"")
    with pytest.raises(FormatError):
        Network.load(tmp_path / "nomanifest.npz")


def test_newer_format_is_refused_naming_the_file_and_both_versions(tmp_path) -> None:
    spec, _ = random_spec(3)
    Network(spec).save(tmp_path / "m.npz")
    _rewrite_manifest(tmp_path / "m.npz", tmp_path / "new.npz", lambda m: m.update(version=3))
    with pytest.raises(FormatError) as err:
        Network.load(tmp_path / "new.npz")
    text = str(err.value)
    assert str(tmp_path / "new.npz") in text
    assert "version 3 is newer" in text and "versions 1 to 2" in text


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda m: m["network"]["layers"][2].update(n=10**9), "neurons"),
        (lambda m: m["network"]["layers"][2].update(model="no_such_model"), "unknown model"),
        (lambda m: m["network"]["projections"][0].update(source="nowhere"), "unknown layer"),
        (lambda m: m["network"]["projections"][0]["weight"].update(array="proj/x/w"),
         "no array 'proj/x/w'"),
        (lambda m: m["network"]["projections"][0]["weight"].update(shape=[3, 3]), "shape"),
        (lambda m: m["network"].update(inputs=["in"]), "input layers"),
        (lambda m: m["state"].update(nowhere={"v": "layer/h0/v"}), "unknown layer"),
        (lambda m: m.pop("network"), "'network'"),
        (lambda m: m["network"].update(max_delay_steps=1 << 20), "max_delay_steps"),
    ],
)
def test_bad_network_descriptions_are_refused(tmp_path, edit, words) -> None:
    spec, _ = random_spec(1)
    Network(spec).save(tmp_path / "m.npz")
    _rewrite_manifest(tmp_path / "m.npz", tmp_path / "bad.npz", edit)
    with pytest.raises(FormatError) as err:
        Network.load(tmp_path / "bad.npz")
    text = str(err.value)
    assert words in text and "\n" not in text and str(tmp_path / "bad.npz") in text


def test_layout_hash_follows_the_constants(monkeypatch) -> None:
    from edgesnn.core import layout

    before = layout.signature()["hash"]
    monkeypatch.setattr(layout, "L_NSPK", layout.L_NSPK + 100)
    assert layout.signature()["hash"] != before


def test_format_2_does_not_depend_on_the_running_layout(tmp_path, monkeypatch) -> None:
    """A changed layout signature (a field added to layout.py) no longer refuses a file."""
    from edgesnn.core import layout

    spec, n_in = random_spec(6)
    net = Network(spec)
    net.save(tmp_path / "m.npz")
    monkeypatch.setattr(layout, "signature", lambda: {"version": 2, "hash": "0" * 16})
    loaded = Network.load(tmp_path / "m.npz")
    for inp in _inputs(6, n_in, 40):
        a = net.step(np.asarray(inp, np.int32)).tolist()
        assert a == loaded.step(np.asarray(inp, np.int32)).tolist()


def test_frozen_format_1_layout_is_the_one_format_1_files_were_written_with() -> None:
    from edgesnn.core import fileformat_v1

    assert fileformat_v1.layout_hash() == fileformat_v1.LAYOUT_HASH == "1540476681799d92"


@pytest.mark.parametrize(
    "sig",
    [
        {"version": 999, "LR": 13, "PR": 30, "H_SIZE": 9, "hash": "0" * 16},
        {"version": 1, "LR": 14, "PR": 30, "H_SIZE": 9, "hash": "deadbeefdeadbeef"},
    ],
)
def test_format_1_file_of_another_layout_is_refused_naming_both(tmp_path, sig) -> None:
    _rewrite_manifest(V1_TINY, tmp_path / "other.npz", lambda m: m.update(layout=sig))
    with pytest.raises(FormatError) as err:
        Network.load(tmp_path / "other.npz")
    text = str(err.value)
    assert f"layout {sig['version']} ({sig['hash']})" in text
    assert "layout 1 (1540476681799d92)" in text and "re-save" in text


def test_format_1_file_without_layout_entry_is_read_as_layout_1(tmp_path) -> None:
    """Files from before manifests carried the layout are layout 1."""
    _rewrite_manifest(V1_TINY, tmp_path / "old.npz", lambda m: m.pop("layout"))
    ref, old = Network.load(V1_TINY), Network.load(tmp_path / "old.npz")
    for inp in _inputs(7, ref.n_inputs, 30):
        assert ref.step(np.asarray(inp, np.int32)).tolist() == old.step(
            np.asarray(inp, np.int32)
        ).tolist()
    old.save(tmp_path / "resaved.npz")  # re-saving writes format 2
    with np.load(tmp_path / "resaved.npz", allow_pickle=False) as z:
        assert json.loads(z["manifest"].tobytes())["version"] == 2


def _plastic_spec(dtype: str) -> NetworkSpec:
    """STDP (fused and event-driven kernels), R-STDP, triplet, homeostasis, sparse projections
    and per-synapse delays, recurrent inhibition: what learning keeps in a model file."""
    rng = np.random.default_rng(4)
    spec = NetworkSpec(dt_us=1000, dtype=dtype, seed=3, max_delay_steps=5)
    spec.add_layer("in", 24, "input")
    spec.add_layer("exc", 6, "adaptive_lif", tau_mem_ms=15.0, v_th=0.6,
                   i_bias=rng.uniform(0.0, 0.05, 6))  # fmt: skip
    spec.add_layer("out", 4, "cuba_lif", tau_mem_ms=10.0, v_th=0.4)
    spec.connect("in", "exc", "dense", weight=rng.uniform(0.1, 0.5, (24, 6)),
                 delay_steps=rng.integers(0, 5, (24, 6)),
                 plasticity={"rule": "stdp", "pairing": "nearest", "theta_plus": 0.02})  # fmt: skip
    spec.connect("in", "out", "sparse", pre=rng.integers(0, 24, 40), post=rng.integers(0, 4, 40),
                 weight=rng.uniform(0.1, 0.6, 40), delay_steps=rng.integers(0, 4, 40),
                 plasticity={"rule": "rstdp", "tau_elig_ms": 100.0, "eta": 0.2})  # fmt: skip
    spec.connect("exc", "out", "random", p=0.5, weight=0.3, delay_steps=2,
                 plasticity={"rule": "stdp"})  # fmt: skip
    spec.connect("exc", "out", "dense", weight=rng.uniform(0.0, 0.3, (6, 4)),
                 plasticity={"rule": "triplet", "w_max": 0.5})  # fmt: skip
    spec.connect("exc", "exc", "wta", weight=-0.2, synapse="inh")
    spec.connect("out", "exc", "dense", weight=-0.1, synapse="inh")
    return spec


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_roundtrip_keeps_learned_weights_and_learns_on_identically(tmp_path, dtype) -> None:
    from edgesnn.learning.control import add_reward

    net = Network(_plastic_spec(dtype))
    steps = _inputs(9, net.n_inputs, 400)
    for k, inp in enumerate(steps[:200]):
        net.step(np.asarray(inp, np.int32))
        if k % 40 == 39:
            add_reward(net, 1.0)
    before = [np.array(net.weights(i)) for i in range(len(net.projection_names))]
    assert not np.array_equal(before[0], Network(_plastic_spec(dtype)).weights(0))  # it learned
    net.save(tmp_path / "m.npz")
    loaded = Network.load(tmp_path / "m.npz")
    for i, w in enumerate(before):
        assert np.array_equal(loaded.weights(i), w) and loaded.weights(i).dtype == w.dtype, i
    net.reset()  # the file holds the state after reset (weights kept)
    for k, inp in enumerate(steps[200:]):
        a = net.step(np.asarray(inp, np.int32)).tolist()
        assert a == loaded.step(np.asarray(inp, np.int32)).tolist(), k
        if k % 40 == 39:
            assert add_reward(net, -0.5) == add_reward(loaded, -0.5) == 1
    assert net.layer_spike_counts() == loaded.layer_spike_counts()
    assert net.layer_spike_counts()["out"] > 0
    for i in range(len(before)):
        assert np.array_equal(net.weights(i), loaded.weights(i)), i
    for name in net.layer_names:
        for var, arr in net.state[name].items():
            assert np.array_equal(arr, loaded.state[name][var]), (name, var)


def test_inhibitory_projection_keeps_weights_of_either_sign(tmp_path) -> None:
    """Plastic weights of an inhibitory projection may be learned positive (default bounds
    [0, 1]); the file keeps them as they are, on the inhibitory channel."""
    spec = NetworkSpec(dt_us=1000)
    spec.add_layer("in", 6, "input")
    spec.add_layer("out", 3, "cuba_lif", i_bias=0.08)
    spec.connect("in", "out", "dense", weight=0.5, synapse="inh", plasticity={"rule": "stdp"})
    spec.connect("in", "out", "dense", weight=0.9)
    net = Network(spec)
    net.weights(0)[:] = np.linspace(-0.4, 0.6, 18).reshape(6, 3)
    net.save(tmp_path / "m.npz")
    loaded = Network.load(tmp_path / "m.npz")
    assert np.array_equal(loaded.weights(0), net.weights(0))
    for inp in _inputs(2, 6, 60):
        a = net.step(np.asarray(inp, np.int32)).tolist()
        assert a == loaded.step(np.asarray(inp, np.int32)).tolist()
    assert np.array_equal(loaded.weights(0), net.weights(0))
