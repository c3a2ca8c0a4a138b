"""MAT v5 reader: the CWRU recordings, scipy-written files, hand-built big-endian files, fuzz."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from edgesnn_drivers.vibration.mat5 import MatFile, loadmat
from edgesnn_drivers.vibration.replay import info_file, probe_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgesnn.errors import FormatError

CWRU = Path(__file__).parents[1].parent.parent / "shared" / "data" / "vibration" / "cwru"

# file, number, variables with length, rpm, DE first sample, DE RMS (shared/data/README.md)
CWRU_TABLE = [
    ("cwru_12k_normal_0hp_Normal_0.mat", "097", ["DE", "FE"], 243_938, 1796,
     0.05319692307692307, 0.073764),
    ("cwru_12k_de_inner_race_007_0hp_IR007_0.mat", "105", ["DE", "FE", "BA"], 121_265, 1797,
     -0.08300435129740519, 0.291526),
    ("cwru_12k_de_ball_007_0hp_B007_0.mat", "118", ["DE", "FE", "BA"], 122_571, 1796,
     -0.0027613972055888225, 0.139234),
    ("cwru_12k_de_outer_race_007_at6_0hp_OR007at6_0.mat", "130", ["DE", "FE", "BA"], 121_991,
     1796, 0.008527844311377245, 0.669506),
]


def cwru(name: str) -> Path:
    p = CWRU / name
    if not p.exists():
        pytest.skip(f"CWRU recording {p} not present (../shared/data beside the repo)")
    return p


@pytest.mark.parametrize("row", CWRU_TABLE, ids=[r[0] for r in CWRU_TABLE])
def test_cwru_expected_values(row: tuple) -> None:
    name, num, axes, length, rpm, first, rms = row
    p = cwru(name)
    m = MatFile(p)
    assert m.header_text.startswith("MATLAB 5.0 MAT-file, Platform: PCWIN")
    names = [v.name for v in m.variables]
    assert names == [f"X{num}_{a}_time" for a in axes] + [f"X{num}RPM"]
    for v in m.variables[:-1]:
        assert v.mclass == "double" and v.dims == (length, 1) and not v.compressed
    de = m.read("_DE_time")
    assert de.shape == (length, 1) and de.dtype == np.float64
    assert de[0, 0] == first  # exact, as stored
    assert float(np.sqrt(np.mean(de**2))) == pytest.approx(rms, abs=5e-7)
    assert m.read(f"X{num}RPM")[0, 0] == rpm
    streamed = np.concatenate(list(m.iter_chunks(f"X{num}_DE_time", 10_000)))
    np.testing.assert_array_equal(streamed, de[:, 0])
    # same numbers as scipy for every variable (class types, as mat_dtype=True gives)
    ref = scipy.io.loadmat(p, mat_dtype=True)
    for k, v in loadmat(p).items():
        np.testing.assert_array_equal(v, ref[k])
        assert v.dtype == ref[k].dtype


def test_cwru_info() -> None:
    p = cwru(CWRU_TABLE[1][0])
    assert probe_file(str(p), p.read_bytes()[:4096]) == "mat"
    info = info_file(str(p), "mat")
    v = {d["name"]: d for d in info["variables"]}
    assert v["X105_DE_time"]["length"] == 121_265
    assert v["X105_DE_time"]["first"] == -0.08300435129740519
    assert v["X105_DE_time"]["rms"] == pytest.approx(0.291526, abs=5e-7)
    assert v["X105RPM"]["value"] == 1797 and v["X105RPM"]["length"] == 1
    assert info["byte_order"] == "little"


def test_cwru_normal_has_no_ba_channel() -> None:
    m = MatFile(cwru(CWRU_TABLE[0][0]))
    with pytest.raises(KeyError, match="no variable"):
        m.variable("_BA_time")
    with pytest.raises(KeyError, match="several"):
        m.variable("_time")


SCIPY_DATA = {
    "a": np.arange(12.0).reshape(3, 4),
    "b": np.array([[1, -2, 3]], np.int16),
    "u8": np.array([200, 3], np.uint8),
    "u16": np.array([60000], np.uint16),
    "i32": np.array([-(2**31), 2**31 - 1], np.int32),
    "u32": np.array([2**32 - 1], np.uint32),
    "i64": np.array([2**40, -5], np.int64),
    "u64": np.array([2**63 + 5], np.uint64),
    "i8": np.array([-128, 127], np.int8),
    "f": np.float32([1.5, 2.5, -3.25]),
    "whole": np.array([1.0, 2.0, 255.0]),  # MATLAB-style narrow storage is not what scipy does
    "e": np.zeros((0, 0)),
    "cube": np.arange(24.0).reshape(2, 3, 4),
    "s": "hello",
    "L": np.array([True, False, True]),
    "st": {"x": 1.0},
    "cell": np.array([1, "a"], dtype=object),
}


@pytest.mark.parametrize("compress", [False, True])
def test_against_scipy_written_files(tmp_path: Path, compress: bool) -> None:
    p = tmp_path / "s.mat"
    scipy.io.savemat(p, SCIPY_DATA, do_compression=compress)
    m = MatFile(p)
    kinds = {v.name: v.mclass for v in m.variables}
    assert kinds["st"] == "struct" and kinds["cell"] == "cell" and kinds["s"] == "char"
    assert all(v.compressed == compress for v in m.variables)
    ref = scipy.io.loadmat(p, mat_dtype=True)
    mine = loadmat(p)
    assert set(mine) == set(SCIPY_DATA) - {"st", "cell"}
    for k, v in mine.items():
        if k == "s":
            assert v == "hello" and ref[k][0] == "hello"
            continue
        r = ref[k]
        np.testing.assert_array_equal(v, r.astype(v.dtype) if k == "L" else r)
        if k != "L":
            assert v.dtype == r.dtype and v.shape == r.shape, k
        chunks = list(m.iter_chunks(k, 5))
        flat = np.concatenate(chunks) if chunks else np.zeros(0)
        np.testing.assert_array_equal(flat, np.asarray(v).reshape(-1, order="F"))
    with pytest.raises(FormatError, match="struct"):
        m.read("st")


def test_complex_against_scipy(tmp_path: Path) -> None:
    p = tmp_path / "c.mat"
    c = np.array([[1 + 2j, 3 - 1j], [0.5j, -2 + 0j]])
    for compress in (False, True):
        scipy.io.savemat(p, {"c": c}, do_compression=compress)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = scipy.io.loadmat(p)["c"]
        np.testing.assert_array_equal(loadmat(p)["c"], ref)
        np.testing.assert_array_equal(loadmat(p)["c"], c)


# --- a tiny independent MAT writer for what scipy cannot write ----------------------------------


def element(typ: int, data: bytes, e: str, small: bool = True) -> bytes:
    if small and len(data) <= 4:  # small element: {nbytes << 16 | type} and 4 data bytes
        return struct.pack(e + "I", (len(data) << 16) | typ) + data.ljust(4, b"\x00")
    pad = (8 - len(data) % 8) % 8
    return struct.pack(e + "II", typ, len(data)) + data + b"\x00" * pad


def matrix(name: str, values: np.ndarray, stored: str, cls: int, e: str) -> bytes:
    mi = {"f8": 9, "u1": 2, "i2": 3, "f4": 7}[stored]
    flat = np.asarray(values).reshape(-1, order="F").astype(e + stored)
    body = (element(6, struct.pack(e + "II", cls, 0), e, small=False)
            + element(5, struct.pack(f"{e}{values.ndim}i", *values.shape), e)
            + element(1, name.encode(), e)
            + element(mi, flat.tobytes(), e))
    return struct.pack(e + "II", 14, len(body)) + body


def mat_file(elements: list[bytes], e: str = "<") -> bytes:
    text = b"MATLAB 5.0 MAT-file, written by a test".ljust(116, b" ")
    return text + b"\x00" * 8 + struct.pack(e + "H", 0x0100) + (b"IM" if e == "<" else b"MI") \
        + b"".join(elements)


@pytest.mark.parametrize("e", ["<", ">"])
def test_big_endian_small_elements_and_narrow_storage(tmp_path: Path, e: str) -> None:
    vec = np.array([[0.5], [-1.25], [3.0]])
    whole = np.array([[1.0, 2.0, 250.0]])
    p = tmp_path / "h.mat"
    p.write_bytes(mat_file([
        matrix("x", vec, "f8", 6, e),
        matrix("rpm", whole, "u1", 6, e),  # doubles stored as uint8, as MATLAB does
        matrix("h", np.array([[-3, 7]]), "i2", 10, e),
        matrix("g", np.array([[1.5, 2.0]]), "f4", 7, e),
    ], e))
    m = MatFile(p)
    assert m.endian == e
    got = loadmat(p)
    np.testing.assert_array_equal(got["x"], vec)
    assert got["rpm"].dtype == np.float64 and got["rpm"].tolist() == [[1.0, 2.0, 250.0]]
    assert got["h"].dtype == np.int16 and got["h"].tolist() == [[-3, 7]]
    assert got["g"].dtype == np.float32
    assert np.concatenate(list(m.iter_chunks("x", 2))).tolist() == [0.5, -1.25, 3.0]
    ref = scipy.io.loadmat(p, mat_dtype=True)
    for k in got:
        np.testing.assert_array_equal(got[k], ref[k])


def test_compressed_by_hand(tmp_path: Path) -> None:
    inner = matrix("z", np.arange(5.0).reshape(5, 1), "f8", 6, "<")
    comp = zlib.compress(inner)
    p = tmp_path / "z.mat"
    p.write_bytes(mat_file([struct.pack("<II", 15, len(comp)) + comp]))
    assert MatFile(p).variables[0].compressed
    assert loadmat(p)["z"][:, 0].tolist() == [0, 1, 2, 3, 4]


# --- bad input ------------------------------------------------------------------------------------


def small_file() -> bytes:
    return mat_file([matrix("x", np.arange(6.0).reshape(6, 1), "f8", 6, "<"),
                     matrix("y", np.array([[7.0]]), "u1", 6, "<")])


def test_every_truncation_fails_cleanly(tmp_path: Path) -> None:
    good = small_file()
    first = len(matrix("x", np.arange(6.0).reshape(6, 1), "f8", 6, "<"))
    whole = {128: [], 128 + first: ["x"]}  # cuts between elements leave valid, shorter files
    p = tmp_path / "t.mat"
    for n in range(len(good)):
        p.write_bytes(good[:n])
        if n in whole:
            assert list(loadmat(p)) == whole[n]
            continue
        with pytest.raises(FormatError) as e:
            loadmat(p)
        assert e.value.offset is not None and 0 <= e.value.offset <= len(good), n


def test_v73_and_bad_headers(tmp_path: Path) -> None:
    p = tmp_path / "v.mat"
    p.write_bytes(b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(512, b" "))
    with pytest.raises(FormatError, match="HDF5"):
        MatFile(p)
    b = bytearray(small_file())
    b[126:128] = b"XX"
    p.write_bytes(bytes(b))
    with pytest.raises(FormatError, match="endian") as e:
        MatFile(p)
    assert e.value.offset == 126


def test_corrupt_compressed_element(tmp_path: Path) -> None:
    p = tmp_path / "c.mat"
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"a": np.arange(100.0)}, do_compression=True)
    b = bytearray(buf.getvalue())
    b[140:150] = b"\xff" * 10
    p.write_bytes(bytes(b))
    with pytest.raises(FormatError):
        loadmat(p)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 300), st.integers(0, 255)), max_size=5),
       cut=st.integers(100, 400), compress=st.booleans())
def test_fuzz_mutated_files(tmp_path: Path, edits: list, cut: int, compress: bool) -> None:
    if compress:
        inner = matrix("x", np.arange(6.0).reshape(6, 1), "f8", 6, "<")
        c = zlib.compress(inner)
        b = bytearray(mat_file([struct.pack("<II", 15, len(c)) + c]))
    else:
        b = bytearray(small_file())
    for i, v in edits:
        if i < len(b):
            b[i] = v
    p = tmp_path / "f.mat"
    p.write_bytes(bytes(b[:cut]))
    try:
        m = MatFile(p)
        for v in m.variables:
            if v.numeric:
                m.read(v.name)
                for _ in m.iter_chunks(v.name, 3):
                    pass
    except FormatError:
        pass
