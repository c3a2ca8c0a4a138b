"""Fuzz the file readers with mutants of the real recordings: every outcome is counted.

    python tools/fuzz_readers.py --n 2000 --seed 1 [--formats aedat2,pcap] [--timeout 20]

Each mutant (bit flips, truncations and field edits of a real recording from
../shared/data; structured edits for JSON metadata) is read in a forked child under a memory
cap (RLIMIT_AS: what the child inherits plus --mem-mb) and a timeout. A reader may accept a
mutant or reject it with `FormatError`; anything else is a crash (another exception, a signal,
the memory cap) and a child still running at the timeout is a hang. Prints, per format:
mutants, rejected cleanly, accepted, crashes, hangs, and the first few crash reasons; exit 1
when there was any crash or hang.

The test suite (tests/hardening/test_fuzz_readers.py) runs the same targets in-process on a few
dozen mutants per format; this command is the long version.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import struct
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from forked_child import run_forked as _run_forked  # noqa: E402

DATA = REPO.parent / "shared" / "data"

_DIGITS = re.compile(rb"[0-9]+")
INTERESTING = (
    b"\x00", b"\xff", b"\x7f", b"\x80", b"\x00\x00", b"\xff\xff", b"\xff\x7f", b"\x00\x80",
    b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80",
    b"\xff\xff\xff\xff\xff\xff\xff\xff", b"\xff\xff\xff\xff\xff\xff\xff\x7f",
    b"\x00\x00\x00\x00\x00\x00\x00\x80", b"\x01", b"\x10\x00\x00\x00",
)


def _pos(rng: random.Random, size: int, head: int) -> int:
    """A byte position, biased to the first `head` bytes where the headers live."""
    if size <= 0:
        return 0
    if rng.random() < 0.6:
        return rng.randrange(min(size, head))
    return rng.randrange(size)


def mutate_bytes(data: bytes, rng: random.Random, head: int = 4096) -> tuple[bytes, str]:
    """One mutant of `data`: bit flips, a truncation, a field edit or a chunk edit."""
    b = bytearray(data)
    kind = rng.choice(("flip", "flip", "truncate", "field", "field", "chunk", "digits"))
    if kind == "digits":
        runs = [m for m in _DIGITS.finditer(data, 0, min(len(data), head))]
        if runs:
            m = rng.choice(runs)
            n = m.end() - m.start()
            v = rng.choice((b"9" * n, b"-" + b"9" * (n - 1), b"x" * n, b"9" * 25,
                            b"18446744073709551616", b"-1", b"0", b"", "\u0663".encode() * n))
            return data[: m.start()] + v + data[m.end() :], f"digits@{m.start()}"
        kind = "flip"
    if kind == "flip" or not b:
        n = rng.choice((1, 1, 2, 4, 8))
        for _ in range(n):
            if b:
                p = _pos(rng, len(b), head)
                b[p] ^= 1 << rng.randrange(8)
        return bytes(b), f"flip{n}"
    if kind == "truncate":
        cut = rng.choice((rng.randrange(len(b)), _pos(rng, len(b), head),
                          len(b) - rng.randrange(1, 17)))
        return bytes(b[: max(0, cut)]), f"truncate@{cut}"
    if kind == "field":
        p = _pos(rng, len(b), head)
        v = rng.choice(INTERESTING) if rng.random() < 0.8 else bytes(
            rng.randrange(256) for _ in range(rng.choice((1, 2, 4, 8))))
        if rng.random() < 0.5:
            v = v[::-1]
        b[p : p + len(v)] = v
        return bytes(b[: len(data)] if len(b) > len(data) else b), f"field@{p}"
    # chunk: delete, duplicate or zero a span
    p = _pos(rng, len(b), head)
    n = rng.choice((1, 2, 4, 8, 16, 64, 512))
    op = rng.choice(("delete", "dup", "zero"))
    if op == "delete":
        del b[p : p + n]
    elif op == "dup":
        b[p:p] = b[p : p + n]
    else:
        b[p : p + n] = bytes(len(b[p : p + n]))
    return bytes(b), f"{op}{n}@{p}"


_JSON_VALUES: tuple[Any, ...] = (
    None, True, 0, -1, 1, 2**31, 2**63, 10**400, 1e308, -1e308, 1.5, "", "x", "1024x10",
    "0x0", "x", "1024x", "-5x-5", "99999999999999999999x1", [], [1], ["a", "b"], [[1, 2]],
    {}, {"a": 1}, [None], [1e308] * 64, list(range(200)), "LEGACY", "RNG19_RFL8_SIG16_NIR16",
)


def mutate_json(text: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Structured edits of a JSON document (a value replaced, a key dropped), else byte edits."""
    if rng.random() < 0.3:
        return mutate_bytes(text, rng, head=len(text))
    try:
        doc = json.loads(text)
    except ValueError:
        return mutate_bytes(text, rng, head=len(text))
    paths: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append((node, k))
                walk(v)
        elif isinstance(node, list):
            for i, v in enumerate(node[:8]):
                paths.append((node, i))
                walk(v)

    walk(doc)
    if not paths:
        return mutate_bytes(text, rng, head=len(text))
    parent, key = rng.choice(paths)
    op = rng.choice(("replace", "replace", "replace", "drop", "nan"))
    if op == "drop":
        del parent[key]
    elif op == "nan":
        parent[key] = float(rng.choice(("nan", "inf", "-inf")))
    else:
        parent[key] = rng.choice(_JSON_VALUES)
    try:
        out = json.dumps(doc, allow_nan=True).encode()
    except (ValueError, OverflowError):
        out = text
    return out, f"json-{op}:{key}"


def mutate_csv(text: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Value edits of a numeric CSV (nan, inf, huge, junk, empty fields), else byte edits."""
    if rng.random() < 0.4:
        return mutate_bytes(text, rng, head=len(text))
    lines = text.split(b"\n")
    i = rng.randrange(len(lines))
    fields = lines[i].split(b",")
    j = rng.randrange(len(fields))
    fields[j] = rng.choice((b"nan", b"NaN", b"inf", b"-inf", b"1e400", b"-1e400", b"", b"x",
                            b"0x10", b"1_0", b"\xff", b"1,2", b'"3"', b" ", b"1e-400"))
    lines[i] = b",".join(fields)
    return b"\n".join(lines), f"csv-field{i}.{j}"


# --- targets: the reader run on a mutant, in-process --------------------------------------


@dataclass
class Target:
    """A format: its base files (real recordings), how to mutate and how to read a mutant."""

    name: str
    bases: list[Path]
    read: Callable[[Path], Any]
    mutate: Callable[[bytes, random.Random], tuple[bytes, str]] = mutate_bytes
    suffix: str = ""
    beside: Callable[[Path, Path], None] | None = None  # extra files next to the mutant


def _read_info(path: Path) -> Any:
    """The `edgesnn info` path: detection from content, then the matching reader."""
    from edgesnn_drivers.info import info

    return info(str(path))


def _read_dvs(fmt: str) -> Callable[[Path], Any]:
    def read(path: Path) -> Any:
        from edgesnn_drivers.dvs import open_reader, stream_stats

        _read_info(path)
        r = open_reader(path, fmt)  # the replay path: the format given, not detected
        for _ in r.iter_batches(5_000):
            pass
        return stream_stats(r)

    return read


def _read_pcap(path: Path) -> Any:
    from edgesnn_drivers.network.pcap import read_packets

    _read_info(path)
    return len(read_packets(path))


def _read_velodyne(path: Path) -> Any:
    from edgesnn_drivers.lidar.velodyne import read_points

    _read_info(path)
    return len(read_points(path)[0])


def _read_ouster_json(path: Path) -> Any:
    """A mutated metadata JSON beside the real Ouster capture (cut to a few packets): the
    metadata loader and `edgesnn info` on the capture must both fail cleanly or succeed."""
    from edgesnn_drivers.lidar.ouster import load_metadata

    from edgesnn.errors import FormatError

    err: FormatError | None = None
    try:
        load_metadata(path)
    except FormatError as e:
        err = e
    out = _read_info(path.with_suffix(".pcap"))
    if err is not None:
        raise err
    return out


def _ouster_pcap_beside(mutant: Path, base: Path) -> None:
    dst = mutant.with_suffix(".pcap")
    if not dst.exists():
        src = _small_ouster_pcap()
        with contextlib.suppress(OSError):
            os.symlink(src, dst)


_SMALL: dict[str, Path] = {}


def _workdir() -> Path:
    if "dir" not in _SMALL:
        _SMALL["dir"] = Path(tempfile.mkdtemp(prefix="edgesnn-fuzz-base-"))
    return _SMALL["dir"]


def _small_ouster_pcap() -> Path:
    """The first 12 packets of the real Ouster capture (a classic pcap: header + records)."""
    if "ouster" not in _SMALL:
        raw = (DATA / "lidar" / "ouster_os1_64_legacy_1024x10.pcap").read_bytes()
        e = "<" if raw[:4] == b"\xd4\xc3\xb2\xa1" else ">"
        pos, n = 24, 0
        while n < 12 and pos + 16 <= len(raw):
            (incl,) = struct.unpack_from(e + "I", raw, pos + 8)
            pos += 16 + incl
            n += 1
        p = _workdir() / "ouster_cut.pcap"
        p.write_bytes(raw[:pos])
        _SMALL["ouster"] = p
    return _SMALL["ouster"]


def _read_spikes(path: Path) -> Any:
    from edgesnn_drivers.spikes import load_spike_file

    _read_info(path)
    sf = load_spike_file(path)
    return sf.n_spikes


def _spike_bases() -> list[Path]:
    """Spike files made from a real DVS recording: stored and deflated npz members."""
    if "spikes" not in _SMALL:
        import numpy as np
        from edgesnn_drivers.dvs import read_events

        ev = read_events(DATA / "dvs" / "aedat2_dvs128_alex_walking_again.aedat")[:4000]
        step = (ev["t"] - ev["t"][0]) // 1000
        ch = (ev["y"].astype(np.int64) // 16) * 8 + ev["x"] // 16
        key = np.unique(step * 64 + ch)
        steps, chans = key // 64, (key % 64).astype(np.int32)
        ptr = np.zeros(int(steps.max()) + 2, np.int64)
        np.cumsum(np.bincount(steps, minlength=len(ptr) - 1), out=ptr[1:])
        d = _workdir()
        arrays = {"in_ptr": ptr, "in_idx": chans, "dt_us": np.array(1000, np.int64),
                  "n_inputs": np.array(64, np.int64), "format": np.array("edgesnn-spikes")}
        np.savez(d / "spikes_stored.npz", **arrays)
        np.savez_compressed(d / "spikes_deflated.npz", **arrays)
        _SMALL["spikes"] = d
    d = _SMALL["spikes"]
    return [d / "spikes_stored.npz", d / "spikes_deflated.npz"]


def _read_mat(path: Path) -> Any:
    from edgesnn_drivers.vibration.mat5 import MatFile
    from edgesnn_drivers.vibration.replay import mat_columns

    out = _read_info(path)
    m = MatFile(path)
    for v in mat_columns(m, []):
        for _ in m.iter_chunks(v.name, 1 << 16):
            pass
    return out


def _read_csv(path: Path) -> Any:
    from edgesnn_drivers.vibration.replay import CsvSamples

    out = _read_info(path)
    c = CsvSamples(str(path))
    for _ in c.blocks(4096):
        pass
    json.dumps(out, allow_nan=False)  # info --json must stay standard JSON
    return out


def _csv_bases() -> list[Path]:
    """A CSV of the first samples of a real CWRU recording (drive end and fan end)."""
    if "csv" not in _SMALL:
        import numpy as np
        from edgesnn_drivers.vibration.mat5 import MatFile

        m = MatFile(DATA / "vibration" / "cwru" / "cwru_12k_de_ball_007_0hp_B007_0.mat")
        de = np.asarray(m.read(m.variable("_DE_time").name)).reshape(-1)[:400]
        fe = np.asarray(m.read(m.variable("_FE_time").name)).reshape(-1)[:400]
        p = _workdir() / "cwru_cut.csv"
        p.write_text("de,fe\n" + "".join(f"{a:.6f},{b:.6f}\n" for a, b in zip(de, fe)))
        _SMALL["csv"] = p
    return [_SMALL["csv"]]


def _small_mat() -> list[Path]:
    return [DATA / "vibration" / "cwru" / "cwru_12k_de_ball_007_0hp_B007_0.mat"]


def targets() -> dict[str, Target]:
    """Every fuzzed format with its base recordings (those missing are left out)."""
    dvs, net, lid = DATA / "dvs", DATA / "network" / "pcap", DATA / "lidar"
    t = [
        Target("aedat2", [dvs / "aedat2_dvs128_alex_walking_again.aedat",
                          dvs / "aedat2_davis346red_header_only.aedat"], _read_dvs("aedat2")),
        Target("aedat4", [dvs / "aedat4_davis346_aestream_davis.aedat4"], _read_dvs("aedat4")),
        Target("evt2", [dvs / "evt2_gen3_vga_sample.raw"], _read_dvs("evt2")),
        Target("evt3", [dvs / "evt3_gen41_hd_pedestrians.raw"], _read_dvs("evt3")),
        Target("dat", [dvs / "dat_ncars_obj_004397_td.dat"], _read_dvs("dat")),
        Target("pcap", [net / "normal_http_google.pcap", net / "attack_portscan.pcap",
                        net / "normal_dns_query_response.pcap"], _read_pcap),
        Target("pcapng", [net / "normal_http_google.pcapng"], _read_pcap),
        Target("velodyne", [lid / "velodyne_vlp16_example.pcap"], _read_velodyne),
        Target("ouster_json", [lid / "ouster_os1_64_legacy_1024x10.json"], _read_ouster_json,
               mutate=mutate_json, suffix=".json", beside=_ouster_pcap_beside),
    ]
    out = {x.name: x for x in t if all(p.exists() for p in x.bases)}
    if (dvs / "aedat2_dvs128_alex_walking_again.aedat").exists():
        out["spikes"] = Target("spikes", [], _read_spikes, suffix=".npz")
    if _small_mat()[0].exists():
        out["mat"] = Target("mat", _small_mat(), _read_mat, suffix=".mat")
        out["csv"] = Target("csv", [], _read_csv, mutate=mutate_csv, suffix=".csv")
    return out


def base_files(t: Target) -> list[Path]:
    """The target's base files (made on first use for the derived formats)."""
    if t.name == "spikes":
        return _spike_bases()
    if t.name == "csv":
        return _csv_bases()
    return t.bases


def make_mutant(t: Target, bases: list[bytes], rng: random.Random, out_dir: Path, i: int
                ) -> tuple[Path, str]:
    """Write mutant i of target t into out_dir; (path, description)."""
    k = rng.randrange(len(bases))
    data, how = t.mutate(bases[k], rng)
    suffix = t.suffix or base_files(t)[k].suffix
    p = out_dir / f"{t.name}-{i}{suffix}"
    p.write_bytes(data)
    if t.beside is not None:
        t.beside(p, base_files(t)[k])
    return p, f"base {k} {how}"


def run_one(t: Target, path: Path) -> tuple[str, str]:
    """("accepted" | "rejected" | "crash", detail) for one mutant, in this process."""
    from edgesnn.errors import FormatError

    try:
        t.read(path)
    except FormatError as e:
        return "rejected", str(e)[:200]
    except Exception as e:  # every other exception is a bug in the reader
        tb = traceback.extract_tb(e.__traceback__)
        where = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"
        return "crash", f"{type(e).__name__} at {where}: {str(e)[:160]}"
    return "accepted", ""


# --- forked runner ------------------------------------------------------------------------


def run_forked(t: Target, path: Path, timeout_s: float, mem_bytes: int) -> tuple[str, str]:
    """run_one in a forked child under a timeout and a memory cap; adds "hang"."""
    return _run_forked(lambda: run_one(t, path), timeout_s, mem_bytes)


def warm_up(ts: dict[str, Target]) -> None:
    """Read each base once in this process (numba kernels compiled or loaded from cache)."""
    for t in ts.values():
        for p in base_files(t):
            m = p
            if t.beside is not None:
                m = _workdir() / f"warm-{t.name}{p.suffix}"
                shutil.copyfile(p, m)
                t.beside(m, p)
            kind, detail = run_one(t, m)
            if kind == "crash":
                print(f"warning: {t.name} base {p.name} does not read: {detail}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="mutants per format")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--formats", default="", help="comma-separated subset (default: all)")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per mutant")
    ap.add_argument("--mem-mb", type=int, default=2048,
                    help="address space a child may map beyond what it inherits (MiB)")
    ap.add_argument("--show", type=int, default=5, help="crash reasons printed per format")
    ap.add_argument("--keep", default="", help="copy crashing / hanging mutants here")
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"real recordings not found at {DATA}", file=sys.stderr)
        return 2
    ts = targets()
    if args.formats:
        want = args.formats.split(",")
        unknown = [w for w in want if w not in ts]
        if unknown:
            print(f"unknown formats {unknown}; known: {', '.join(ts)}", file=sys.stderr)
            return 2
        ts = {k: ts[k] for k in want}
    warm_up(ts)
    keep = Path(args.keep) if args.keep else None
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
    bad_total = 0
    print(f"{'format':<12}{'mutants':>8}{'rejected':>10}{'accepted':>10}{'crashes':>9}"
          f"{'hangs':>7}{'s':>8}", flush=True)
    for name, t in ts.items():
        rng = random.Random(f"{args.seed}:{name}")
        bases = [p.read_bytes() for p in base_files(t)]
        counts = {"rejected": 0, "accepted": 0, "crash": 0, "hang": 0}
        reasons: dict[str, int] = {}
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"edgesnn-fuzz-{name}-") as td:
            for i in range(args.n):
                p, how = make_mutant(t, bases, rng, Path(td), i)
                kind, detail = run_forked(t, p, args.timeout, args.mem_mb << 20)
                counts[kind] += 1
                if kind in ("crash", "hang"):
                    key = detail.split(":", 2)[0] + ": " + detail.split(":", 2)[-1][:80] \
                        if kind == "crash" else detail
                    reasons[key] = reasons.get(key, 0) + 1
                    if keep:
                        shutil.copyfile(p, keep / p.name)
                    if len(reasons) <= args.show and reasons[key] == 1:
                        print(f"  {kind}: {name} #{i} ({how}): {detail}", file=sys.stderr)
                with contextlib.suppress(OSError):
                    p.unlink()
                    if t.beside is not None:
                        p.with_suffix(".pcap").unlink()
        dt = time.monotonic() - t0
        bad_total += counts["crash"] + counts["hang"]
        print(f"{name:<12}{args.n:>8}{counts['rejected']:>10}{counts['accepted']:>10}"
              f"{counts['crash']:>9}{counts['hang']:>7}{dt:>8.1f}", flush=True)
    shutil.rmtree(_workdir(), ignore_errors=True)
    return 1 if bad_total else 0


if __name__ == "__main__":
    raise SystemExit(main())
