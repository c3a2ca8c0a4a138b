"""Model files are fully validated before any kernel runs: a bad one is a one-line FormatError.

Crafted files put each table offset below 0 (they used to load, then crash the process with
SIGSEGV or write outside the arrays silently), synapse targets outside their layer, broken CSR
pointers, overlapping spike lists, oversized array headers and truncated or garbage zips. A
seeded fuzz of a few hundred mutants (tools/fuzz_models.py, the long version) loads each one
in-process (pure Python and numpy: it cannot crash natively) and steps every accepted one in
a forked child, so a validation gap shows up as a failed test, not a dead test process.
Table edits are made to the kept format-1 file (its layout-1 tables, `fileformat_v1`); format-2
files (named arrays) are truncated, oversized and fuzzed too.
"""

from __future__ import annotations

import importlib.util
import io
import random
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from edgesnn.core import Network
from edgesnn.core import fileformat_v1 as L
from edgesnn.errors import FormatError


def _fuzz_module():
    spec = importlib.util.spec_from_file_location("fuzz_models", REPO / "tools" / "fuzz_models.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fuzz_models", mod)
    spec.loader.exec_module(mod)
    return mod


FUZZ = _fuzz_module()
SPARSE = 2  # in -> izh, sparse with per-synapse delays (tiny_spec)
IZH = 4


@pytest.fixture(scope="module")
def tiny() -> Path:
    """The tiny network in format 1 (packed tables), kept for good."""
    return FUZZ.KEPT_V1


@pytest.fixture(scope="module")
def tiny2(tmp_path_factory) -> Path:
    """The tiny network as this release saves it (format 2)."""
    p = tmp_path_factory.mktemp("models") / "tiny2.npz"
    Network(FUZZ.tiny_spec("float64")).save(p)
    return p


def _arrays(p: Path) -> dict[str, np.ndarray]:
    with np.load(p, allow_pickle=False) as z:
        return {k: z[k].copy() for k in z.files}


def _write(tmp: Path, a: dict[str, np.ndarray]) -> Path:
    out = tmp / "crafted.npz"
    np.savez(out, **a)
    return out


def _field(a: dict[str, np.ndarray], table: str, index: int, field: int) -> int:
    ii = a["ii"]
    if table == "layer":
        return int(ii[L.H_LTAB]) + index * L.LR + field
    return int(ii[L.H_PTAB]) + index * L.PR + field


def _refused(path: Path, *words: str) -> str:
    with pytest.raises(FormatError) as e:
        Network.load(path)
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 400, msg
    for w in words:
        assert w in msg, msg
    return msg


def test_the_bases_load_and_run(tiny, tiny2):
    for p in (tiny, tiny2, REPO / "pipelines" / "keyword_spotting.npz"):
        assert FUZZ.run_one(p) == ("accepted", "")


@pytest.mark.parametrize(
    ("table", "index", "field", "name"),
    [
        ("layer", IZH, L.L_SPKOFF, "L_SPKOFF"),
        ("layer", IZH, L.L_POFF, "L_POFF"),
        ("layer", IZH, L.L_SOFF, "L_SOFF"),
        ("layer", IZH, L.L_BOFF, "L_BOFF"),
        ("layer", IZH, L.L_ROFF, "L_ROFF"),
        ("proj", SPARSE, L.P_GOFF, "P_GOFF"),
        ("proj", SPARSE, L.P_WOFF, "P_WOFF"),
        ("proj", SPARSE, L.P_IDXOFF, "P_IDXOFF"),
        ("proj", SPARSE, L.P_PTROFF, "P_PTROFF"),
        ("proj", SPARSE, L.P_DOFF, "P_DOFF"),
        ("proj", 0, L.P_MODOFF, "P_MODOFF"),
    ],
)
@pytest.mark.parametrize("value", [-1, -16])
def test_negative_offsets_are_refused_naming_the_field(
    tiny, tmp_path, table, index, field, name, value
):
    a = _arrays(tiny)
    a["ii"][_field(a, table, index, field)] = value
    _refused(_write(tmp_path, a), name, str(value))


@pytest.mark.parametrize("target", [5, 6, 1000, -1, -(2**31)])
def test_synapse_targets_outside_their_layer_are_refused(tiny, tmp_path, target):
    a = _arrays(tiny)
    io_ = int(a["ii"][_field(a, "proj", SPARSE, L.P_IDXOFF)])
    a["ij"][io_ + 3] = target  # the izh layer has 5 neurons
    _refused(_write(tmp_path, a), "P_IDXOFF", "synapse targets outside [0, 5)")


def test_csr_pointers_must_be_monotone(tiny, tmp_path):
    a = _arrays(tiny)
    po = int(a["ii"][_field(a, "proj", SPARSE, L.P_PTROFF)])
    a["ii"][po + 4] = a["ii"][po + 5] + 1
    _refused(_write(tmp_path, a), "P_PTROFF", "monotone")


def test_spike_list_overlapping_the_layer_table_is_refused(tiny, tmp_path):
    a = _arrays(tiny)
    a["ii"][_field(a, "layer", IZH, L.L_SPKOFF)] = int(a["ii"][L.H_LTAB])
    _refused(_write(tmp_path, a), "overlaps")


def test_substep_count_is_bounded(tiny, tmp_path):
    a = _arrays(tiny)
    poff = int(a["ii"][_field(a, "layer", IZH, L.L_POFF)])
    a["fp"][poff + L.Q_IZ_NSUB] = 1e15  # an Izhikevich step of 10^15 sub-steps: a hang
    _refused(_write(tmp_path, a), "sub-steps")


@pytest.mark.parametrize("member", ["w", "proj/izh->hh/w"])
def test_oversized_array_header_is_refused_before_allocating(tiny, tiny2, tmp_path, member):
    src = tiny if member == "w" else tiny2
    raw = src.read_bytes()
    n = _arrays(src)[member].size
    # claim 2**40 weights in the npy header of w (same header length: padded with spaces)
    old = f"'shape': ({n},)".encode()
    new = f"'shape': ({2**40},)".encode()
    assert raw.count(old) >= 1
    buf = io.BytesIO(raw)
    with zipfile.ZipFile(buf) as zin:
        members = {i.filename: zin.read(i) for i in zin.infolist()}
    hdr = members[f"{member}.npy"].replace(old, new, 1)
    end = hdr.index(b"\n")
    pad = len(new) - len(old)
    assert hdr[end - pad : end] == b" " * pad
    members[f"{member}.npy"] = hdr[: end - pad] + hdr[end:]
    out = tmp_path / "big.npz"
    with zipfile.ZipFile(out, "w") as zout:
        for k, v in members.items():
            zout.writestr(k, v)
    _refused(out, f"array '{member}'")


@pytest.mark.parametrize("cut", [0, 10, 100, 1000, -200, -22, -1])
@pytest.mark.parametrize("fmt", [1, 2])
def test_truncated_files_are_refused(tiny, tiny2, tmp_path, cut, fmt):
    raw = (tiny if fmt == 1 else tiny2).read_bytes()
    p = tmp_path / "cut.npz"
    p.write_bytes(raw[:cut])
    _refused(p, str(p))


def test_garbage_and_corrupt_members_are_refused(tiny, tmp_path):
    p = tmp_path / "garbage.npz"
    p.write_bytes(bytes(random.Random(0).randrange(256) for _ in range(4096)))
    _refused(p, "not an edgesnn model file")
    # a flipped data byte inside a member: the zip CRC no longer matches
    raw = bytearray(tiny.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    p.write_bytes(bytes(raw))
    kind, detail = FUZZ.run_one(p)
    assert kind in ("rejected", "accepted"), detail


def test_wrong_dtype_and_shape_are_refused(tiny, tmp_path):
    a = _arrays(tiny)
    a["ii"] = a["ii"].astype(np.float64)
    _refused(_write(tmp_path, a), "array 'ii'", "dtype")
    a = _arrays(tiny)
    a["w"] = a["w"][None, :]
    _refused(_write(tmp_path, a), "array 'w'", "1-D")


def test_seeded_mutants_are_refused_cleanly_or_run(tiny, tiny2, tmp_path):
    """300 mutants: loaded in-process, every accepted one stepped in a forked child."""
    bases = [tiny.read_bytes(), (REPO / "pipelines" / "keyword_spotting.npz").read_bytes(),
             tiny2.read_bytes()]  # fmt: skip
    for b in bases:  # kernels compiled (or loaded from the cache) before forking
        p = tmp_path / "base.npz"
        p.write_bytes(b)
        Network.load(p).step(np.zeros(1, np.int32))
    rng = random.Random(20261205)
    counts = {"rejected": 0, "accepted": 0}
    bad = []
    for i in range(300):
        data, recipe = FUZZ.mutate(bases[i % 3], rng)
        p = tmp_path / "mutant.npz"
        p.write_bytes(data)
        try:
            Network.load(p)
        except FormatError as e:
            if "\n" in str(e):
                bad.append((i, recipe, f"multi-line: {e}"))
            counts["rejected"] += 1
            continue
        except Exception as e:  # noqa: BLE001 - any other exception is the finding
            bad.append((i, recipe, f"{type(e).__name__}: {e}"))
            continue
        kind, detail = FUZZ.run_forked(p, 60.0, 512 << 20, 5)
        if kind != "accepted":
            bad.append((i, recipe, f"{kind}: {detail}"))
        counts["accepted"] += 1
    assert not bad, bad[:5]
    assert counts["rejected"] > 100 and counts["accepted"] > 20, counts


def test_repeated_input_indices_never_overrun_the_spike_list():
    """More input spikes in one step than the input layer has neurons (repeated indices, e.g.
    from a faulty encoder) are dropped beyond the layer size instead of writing past it."""
    import tomllib

    import numpy as np

    from edgesnn.core import Network, NetworkSpec
    from tests.core.test_spec import TOML

    net = Network(NetworkSpec.from_dict(tomllib.loads(TOML)))
    before = net.dropped_inputs
    out = net.step(np.zeros(3000, np.int32))
    assert out.size <= net.n_outputs
    assert net.dropped_inputs - before >= 3000 - net.n_inputs
    rec = net.run(np.array([0, 3000], np.int64), np.zeros(3000, np.int32))
    assert rec.n_steps == 1
