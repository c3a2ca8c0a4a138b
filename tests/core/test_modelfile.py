"""Model files: npz + JSON manifest, versioned, no pickle; save/load is bit-identical."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from edgesnn.core import MODEL_VERSION, Network
from edgesnn.errors import FormatError

from .test_reference import _inputs, random_spec


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
    assert manifest["format"] == "edgesnn-model" and manifest["version"] == MODEL_VERSION
    assert [m["name"] for m in manifest["layers"]] == [lay.name for lay in spec.layers]


def test_bad_model_files_raise_format_error(tmp_path) -> None:
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(FormatError):
        Network.load(tmp_path / "junk.npz")
    spec, _ = random_spec(5)
    good = tmp_path / "m.npz"
    Network(spec).save(good)
    with np.load(good) as z:
        data = {k: z[k] for k in z.files}
    manifest = json.loads(data["manifest"].tobytes())
    manifest["version"] = 999
    np.savez(
        tmp_path / "v.npz",
        **{**data, "manifest": np.frombuffer(json.dumps(manifest).encode(), np.uint8)},
    )
    with pytest.raises(FormatError, match="version 999"):
        Network.load(tmp_path / "v.npz")
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


def _rewrite_manifest(src, dst, edit) -> None:
    with np.load(src) as z:
        data = {k: z[k] for k in z.files}
    manifest = json.loads(data["manifest"].tobytes())
    edit(manifest)
    np.savez(dst, **{**data, "manifest": np.frombuffer(json.dumps(manifest).encode(), np.uint8)})


def test_manifest_records_the_packed_layout(tmp_path) -> None:
    from edgesnn.core import layout

    spec, _ = random_spec(4)
    Network(spec).save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as z:
        manifest = json.loads(z["manifest"].tobytes())
    sig = manifest["layout"]
    assert sig == layout.signature()
    assert sig["LR"] == layout.LR and sig["PR"] == layout.PR and len(sig["hash"]) == 16


def test_layout_hash_follows_the_constants(monkeypatch) -> None:
    from edgesnn.core import layout

    before = layout.signature()["hash"]
    monkeypatch.setattr(layout, "L_NSPK", layout.L_NSPK + 100)
    assert layout.signature()["hash"] != before


@pytest.mark.parametrize(
    "sig",
    [
        {"version": 999, "LR": 13, "PR": 30, "H_SIZE": 9, "hash": "0" * 16},
        {"version": 1, "LR": 14, "PR": 30, "H_SIZE": 9, "hash": "deadbeefdeadbeef"},
    ],
)
def test_model_from_another_layout_is_refused_naming_both(tmp_path, sig) -> None:
    from edgesnn.core import layout

    spec, _ = random_spec(6)
    Network(spec).save(tmp_path / "m.npz")

    def edit(m):
        m["layout"] = sig

    _rewrite_manifest(tmp_path / "m.npz", tmp_path / "other.npz", edit)
    here = layout.signature()
    with pytest.raises(FormatError) as err:
        Network.load(tmp_path / "other.npz")
    text = str(err.value)
    assert f"layout {sig['version']} ({sig['hash']})" in text
    assert f"this is layout {here['version']} ({here['hash']})" in text
    assert "re-save" in text


def test_model_without_layout_entry_is_read_as_the_first_layout(tmp_path) -> None:
    """Files from before manifests carried the layout load while the layout is unchanged."""
    from edgesnn.core import layout

    spec, n_in = random_spec(7)
    net = Network(spec)
    net.save(tmp_path / "m.npz")
    _rewrite_manifest(tmp_path / "m.npz", tmp_path / "old.npz", lambda m: m.pop("layout"))
    if layout.signature()["hash"] != "1540476681799d92" or layout.LAYOUT_VERSION != 1:
        with pytest.raises(FormatError, match="re-save"):
            Network.load(tmp_path / "old.npz")
        return
    old = Network.load(tmp_path / "old.npz")
    for inp in _inputs(7, n_in, 30):
        assert net.step(np.asarray(inp, np.int32)).tolist() == old.step(
            np.asarray(inp, np.int32)
        ).tolist()
    old.save(tmp_path / "resaved.npz")  # re-saving records the layout
    with np.load(tmp_path / "resaved.npz", allow_pickle=False) as z:
        assert json.loads(z["manifest"].tobytes())["layout"] == layout.signature()
