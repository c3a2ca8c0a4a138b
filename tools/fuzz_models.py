"""Fuzz `Network.load` with mutants of small real model files: every outcome is counted.

    python tools/fuzz_models.py --n 10000 --seed 1 [--timeout 20] [--mem-mb 512] [--steps 5]

Bases: pipelines/keyword_spotting.npz, a tiny network (every rule, delays, both plasticity
kernels, Izhikevich and HH layers) saved with `Network.save` (format 2) in float32 and float64,
and the same network in format 1 (packed tables, kept in tests/core/data). Each
mutant (byte flips / truncations / garbage of the file, or structured edits of one or more
table entries, arrays, dtypes, shapes or manifest fields, re-saved as a valid npz) is loaded and
stepped a few times in a forked child under a memory cap (RLIMIT_AS: what the child inherits
plus --mem-mb) and a timeout. Outcomes: rejected cleanly (a one-line FormatError), accepted and
ran, crash (a signal, or the memory cap), hang (no answer by the timeout), other exception
(anything else, including a multi-line FormatError). Exit 1 unless crashes, hangs and other
exceptions are all zero.

tests/hardening/test_model_file_validation.py runs the same mutants in-process (a few hundred);
this command is the long version.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import tempfile
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from forked_child import run_forked as _run_forked  # noqa: E402

sys.path.insert(0, str(REPO))

from edgesnn.core import Network, NetworkSpec  # noqa: E402
from edgesnn.core import fileformat_v1 as L  # noqa: E402  (the tables of format-1 files)
from edgesnn.errors import FormatError  # noqa: E402

KEYWORD = REPO / "pipelines" / "keyword_spotting.npz"
KEPT_V1 = REPO / "tests" / "core" / "data" / "tiny_model_v1_2026-12-05.npz"
_INTS = (
    0,
    1,
    -1,
    2,
    -2,
    15,
    16,
    17,
    2**31 - 1,
    -(2**31),
    2**31,
    2**32,
    2**62,
    -(2**62),
    2**63 - 1,
    -(2**63),
)


def tiny_spec(dtype: str = "float64") -> NetworkSpec:
    """A small network touching every rule and kernel family (used as a fuzz base)."""
    rng = np.random.default_rng(0)
    spec = NetworkSpec(dt_us=1000, dtype=dtype, seed=0, max_delay_steps=4)
    spec.add_layer("in", 12, "input")
    spec.add_layer("teach", 3, "input")
    spec.add_layer("conv", 2, "lif", tau_mem_ms=10.0)
    spec.connect(
        "in",
        "conv",
        "conv2d",
        in_shape=[3, 2, 2],
        kernel=rng.uniform(-0.5, 1.0, (2, 3, 2, 2)),
        stride=1,
        padding=0,
        delay_steps=1,
    )
    spec.add_layer("pool", 2, "if")
    spec.connect("conv", "pool", "pool2d", in_shape=[2, 1, 1], size=1, weight=0.6)
    spec.add_layer("izh", 5, "izhikevich")
    spec.connect(
        "in",
        "izh",
        "sparse",
        pre=rng.integers(0, 12, 20),
        post=rng.integers(0, 5, 20),
        weight=rng.uniform(0, 20, 20),
        delay_steps=rng.integers(0, 4, 20),
    )
    spec.add_layer("hh", 3, "hh")
    spec.connect("izh", "hh", "dense", weight=rng.uniform(0, 5, (5, 3)))
    spec.add_layer("post", 3, "lif", v_th=0.5)
    spec.connect("teach", "post", "one_to_one", weight=100.0)
    spec.connect("in", "post", "dense", weight=0.3, gain=0.5, plasticity={"rule": "stdp"})
    spec.connect(
        "in",
        "post",
        "sparse",
        pre=np.arange(12),
        post=np.arange(12) % 3,
        weight=0.4,
        plasticity={"rule": "rstdp", "tau_elig_ms": 200.0, "eta": 0.05},
    )
    spec.connect("post", "post", "wta", weight=-0.3, synapse="inh")
    spec.outputs = ["post", "pool"]
    return spec


def base_files(workdir: Path) -> list[Path]:
    """The model files mutants are made of (the tiny ones written into `workdir`)."""
    out = [p for p in (KEYWORD, KEPT_V1) if p.exists()]
    for dt in ("float64", "float32"):
        p = workdir / f"tiny-{dt}.npz"
        if not p.exists():
            Network(tiny_spec(dt)).save(p)
        out.append(p)
    return out


def _arrays(raw: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(raw), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _save(arrays: dict[str, np.ndarray]) -> bytes:
    b = io.BytesIO()
    np.savez(b, **arrays)
    return b.getvalue()


def _table_fields(ii: np.ndarray) -> list[int]:
    """Positions of header, layer and projection table entries (where offsets live)."""
    pos = list(range(L.H_SIZE))
    nl, npj, lt, pt = (int(ii[k]) for k in (L.H_NL, L.H_NP, L.H_LTAB, L.H_PTAB))
    pos += range(lt, min(lt + nl * L.LR, ii.size))
    pos += range(pt, min(pt + npj * L.PR, ii.size))
    return pos


def _int_value(rng: random.Random, old: int, sizes: list[int]) -> int:
    k = rng.random()
    if k < 0.35:
        return rng.choice(_INTS)
    if k < 0.6:
        return old + rng.choice((-1, 1, -16, 16, -old - 1, -old, old))
    if k < 0.85:
        s = rng.choice(sizes)
        return rng.choice((s, s - 1, s + 1, -s, s // 2, s - 16))
    return rng.randrange(-(2**20), 2**20)


def _edit_arrays(a: dict[str, np.ndarray], rng: random.Random) -> str:
    """Apply one structured edit to the arrays; returns its recipe."""
    sizes = [v.size for v in a.values()]
    kind = rng.choice(
        ("table",) * 6
        + ("ii", "ij", "ij", "fp", "manifest", "manifest", "dtype", "shape", "cut", "drop")
    )
    if "ii" not in a and kind in ("table", "ii", "ij", "fp"):  # format 2: named arrays
        named = sorted(k for k in a if k != "manifest")
        k = rng.choice(named)
        arr = a[k].copy()
        p = rng.randrange(arr.size)
        if arr.dtype.kind == "f":
            arr[p] = rng.choice((np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0, -1.0, 1e9, 2.0**63))
        else:
            arr = arr.astype(np.int64)
            arr[p] = _int_value(rng, int(arr[p]), sizes)
            arr = arr.astype(a[k].dtype) if rng.random() < 0.5 else arr
        a[k] = arr
        return f"{k}[{p}]={arr[p]}"
    if kind in ("table", "ii"):
        ii = a["ii"].copy()
        pos = _table_fields(ii) if kind == "table" else range(ii.size)
        p = rng.choice(list(pos))
        ii[p] = np.int64(_int_value(rng, int(ii[p]), sizes))
        a["ii"] = ii
        return f"{kind}[{p}]={ii[p]}"
    if kind == "ij":
        ij = a["ij"].astype(np.int64)
        p = rng.randrange(ij.size)
        ij[p] = _int_value(rng, int(ij[p]), sizes)
        a["ij"] = ij.astype(np.int32) if rng.random() < 0.7 else ij
        return f"ij[{p}]={ij[p]}"
    if kind == "fp":
        fp = a["fp"].copy()
        p = rng.randrange(fp.size)
        fp[p] = rng.choice((np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0, -1.0, 1e9, 2.0**63))
        a["fp"] = fp
        return f"fp[{p}]={fp[p]}"
    if kind == "manifest":
        m = json.loads(a["manifest"].tobytes())
        paths: list[tuple[Any, Any]] = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                for k, v in node.items():
                    paths.append((node, k))
                    walk(v)
            elif isinstance(node, list):
                for i, v in enumerate(node[:6]):
                    paths.append((node, i))
                    walk(v)

        walk(m)
        parent, key = rng.choice(paths)
        v = rng.choice(
            (
                None,
                0,
                -1,
                10**30,
                "x",
                "float16",
                "float32",
                "float64",
                "lif",
                "hh",
                "input",
                [],
                {},
                1.5,
                True,
            )
        )
        if rng.random() < 0.2:
            del parent[key]
        else:
            parent[key] = v
        a["manifest"] = np.frombuffer(json.dumps(m).encode(), np.uint8)
        return f"manifest[{key!r}]={v!r}"
    name = rng.choice(sorted(a))
    arr = a[name]
    if kind == "dtype":
        dt = rng.choice(
            (
                np.float32,
                np.float64,
                np.int64,
                np.int32,
                np.uint8,
                np.complex64,
                bool,
                "U3",
                np.int8,
            )
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # complex -> real casts say so
            a[name] = arr.astype(dt) if np.dtype(dt).kind != "U" else arr.astype(str).astype("U3")
        return f"dtype {name} {np.dtype(dt)}"
    if kind == "shape":
        if arr.size % 2 == 0:
            a[name] = arr.reshape(2, -1)
        else:
            a[name] = arr[None, :]
        return f"shape {name}"
    if kind == "cut":
        a[name] = arr[: rng.randrange(arr.size + 1)]
        return f"cut {name} to {a[name].size}"
    del a[name]
    return f"drop {name}"


def mutate(base: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One mutant of the model file bytes `base`, with its recipe."""
    k = rng.random()
    if k < 0.75:
        a = _arrays(base)
        recipe = []
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            try:
                recipe.append(_edit_arrays(a, rng))
            except (KeyError, ValueError, TypeError, IndexError, OverflowError):
                recipe.append("skipped")  # an earlier edit dropped or retyped what this needs
        return _save(a), "; ".join(recipe)
    b = bytearray(base)
    if k < 0.85:
        for _ in range(rng.choice((1, 2, 8))):
            p = rng.randrange(len(b))
            b[p] ^= 1 << rng.randrange(8)
        return bytes(b), "bitflip"
    if k < 0.95:
        cut = rng.randrange(len(b))
        return bytes(b[:cut]), f"truncate@{cut}"
    p = rng.randrange(len(b))
    n = rng.choice((1, 8, 64, 4096))
    b[p : p + n] = bytes(rng.randrange(256) for _ in range(min(n, len(b) - p)))
    return bytes(b), f"garbage{n}@{p}"


def run_one(path: Path, steps: int = 5, seed: int = 0) -> tuple[str, str]:
    """Load and step a model file: ("rejected", msg), ("accepted", ""), or ("other", why)."""
    try:
        net = Network.load(path)
    except FormatError as e:
        msg = str(e)
        if "\n" in msg:
            return "other", f"multi-line FormatError: {msg[:200]!r}"
        return "rejected", msg[:300]
    except Exception as e:  # noqa: BLE001 - every other exception is a finding
        return "other", f"{type(e).__name__} in load: {e}"[:300]
    rng = np.random.default_rng(seed)
    try:
        for _ in range(steps):
            k = max(net.n_inputs, 1)
            net.step(rng.integers(-2, k + 2, 6).astype(np.int32))
        net.run(np.array([0, 3, 5], np.int64), rng.integers(0, k, 5).astype(np.int32))
        net.reset()
    except Exception as e:  # noqa: BLE001
        return "other", f"{type(e).__name__} while stepping: {e}"[:300]
    return "accepted", ""


def run_forked(path: Path, timeout_s: float, mem_bytes: int, steps: int) -> tuple[str, str]:
    """run_one in a forked child (RLIMIT_AS cap, timeout); adds "crash" and "hang"."""
    return _run_forked(lambda: run_one(path, steps), timeout_s, mem_bytes)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="mutants in all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per mutant")
    ap.add_argument("--mem-mb", type=int, default=512, help="memory cap above the inherited")
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="fuzz-models-") as tmp:
        work = Path(tmp)
        bases = [(p, p.read_bytes()) for p in base_files(work)]
        for p, _ in bases:  # compile / load the kernels once here: children inherit them
            kind, detail = run_one(p, args.steps)
            if kind != "accepted":
                print(f"base {p.name} does not run: {detail}", file=sys.stderr)
                return 2
        counts: Counter[str] = Counter()
        examples: dict[str, list[str]] = {}
        target = work / "mutant.npz"
        for i in range(args.n):
            p, raw = bases[i % len(bases)]
            data, recipe = mutate(raw, rng)
            target.write_bytes(data)
            kind, detail = run_forked(target, args.timeout, args.mem_mb << 20, args.steps)
            counts[kind] += 1
            if kind in ("crash", "hang", "other"):
                ex = examples.setdefault(kind, [])
                if len(ex) < 10:
                    ex.append(f"#{i} {p.name} [{recipe}] {detail}")
                    crash = work.parent / f"fuzz-models-{kind}-{args.seed}-{i}.npz"
                    crash.write_bytes(data)
    print(f"mutants:                    {args.n}")
    print(f"rejected cleanly (1 line):  {counts['rejected']}")
    print(f"accepted and ran:           {counts['accepted']}")
    print(f"crashes (signals/mem cap):  {counts['crash']}")
    print(f"hangs:                      {counts['hang']}")
    print(f"other exceptions:           {counts['other']}")
    for kind, ex in examples.items():
        print(f"{kind}:")
        for line in ex:
            print(f"  {line}")
    return 0 if counts["crash"] + counts["hang"] + counts["other"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
