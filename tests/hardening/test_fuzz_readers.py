"""Seeded fuzzing of every file reader with mutants of the real recordings, in-process.

Each format's reader (through `edgesnn info` detection and its own replay path) reads a few
dozen bit-flipped, truncated and field-edited mutants of the real recordings in ../shared/data.
A mutant may be read or refused with `FormatError` (the documented error of every reader);
any other exception fails the test with the mutant's recipe. `tools/fuzz_readers.py` runs the
same targets on thousands of mutants in forked children under a memory cap and a timeout.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest
from conftest import DATA, REPO


def _fuzz_module():
    spec = importlib.util.spec_from_file_location("fuzz_readers", REPO / "tools" / "fuzz_readers.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fuzz_readers", mod)
    spec.loader.exec_module(mod)
    return mod


FUZZ = _fuzz_module()


@pytest.fixture(scope="module", autouse=True)
def _clean_bases():
    """Remove the derived base files (spike npz, CSV cut, Ouster capture cut) afterwards."""
    yield
    import shutil

    if "dir" in FUZZ._SMALL:
        shutil.rmtree(FUZZ._SMALL.pop("dir"), ignore_errors=True)
        FUZZ._SMALL.clear()

#: mutants per format in the suite (the MAT base is a 2.9 MB recording: fewer of those)
PER_FORMAT = {"mat": 20}
DEFAULT_N = 40
FORMATS = ("aedat2", "aedat4", "evt2", "evt3", "dat", "pcap", "pcapng", "velodyne",
           "ouster_json", "spikes", "mat", "csv")


@pytest.mark.parametrize("fmt", FORMATS)
def test_mutants_are_read_or_refused_with_format_error(fmt, tmp_path):
    if not DATA.is_dir():
        pytest.skip(f"real recordings not found at {DATA}")
    targets = FUZZ.targets()
    if fmt not in targets:
        pytest.skip(f"base recordings of {fmt} not found under {DATA}")
    t = targets[fmt]
    bases = [p.read_bytes() for p in FUZZ.base_files(t)]
    for p in FUZZ.base_files(t):  # the unmutated recordings read cleanly
        m = p
        if t.beside is not None:
            m = tmp_path / f"base{p.suffix}"
            m.write_bytes(p.read_bytes())
            t.beside(m, p)
        assert FUZZ.run_one(t, m)[0] == "accepted", FUZZ.run_one(t, m)
    rng = random.Random(f"suite:{fmt}")
    outcomes = {"accepted": 0, "rejected": 0, "crash": 0}
    crashes = []
    for i in range(PER_FORMAT.get(fmt, DEFAULT_N)):
        path, how = FUZZ.make_mutant(t, bases, rng, tmp_path, i)
        kind, detail = FUZZ.run_one(t, path)
        outcomes[kind] += 1
        if kind == "crash":
            crashes.append(f"mutant {i} ({how}): {detail}")
        path.unlink()
    assert not crashes, "\n".join(crashes)
    assert outcomes["rejected"] > 0, outcomes  # the mutations do reach the checks


def test_mutations_are_deterministic_for_a_seed():
    data = bytes(range(256)) * 20
    a = [FUZZ.mutate_bytes(data, random.Random(7)) for _ in range(3)]
    b = [FUZZ.mutate_bytes(data, random.Random(7)) for _ in range(3)]
    assert a == b
    assert any(m != data for m, _ in a)


def test_forked_runner_reports_crashes_and_hangs(tmp_path):
    """The long runner's accounting: a clean refusal, a crash, a memory blow-up, a hang."""
    from edgesnn.errors import FormatError

    def refuse(path: Path) -> None:
        raise FormatError("bad", path=str(path))

    def crash(path: Path) -> None:
        raise KeyError("boom")

    def hog(path: Path) -> None:
        bytearray(1 << 40)

    def hang(path: Path) -> None:
        import time

        time.sleep(60)

    p = tmp_path / "x"
    p.write_bytes(b"x")
    got = {name: FUZZ.run_forked(FUZZ.Target(name, [], fn), p, 2.0, 512 << 20)[0]
           for name, fn in (("refuse", refuse), ("crash", crash), ("hog", hog), ("hang", hang))}
    assert got == {"refuse": "rejected", "crash": "crash", "hog": "crash", "hang": "hang"}
