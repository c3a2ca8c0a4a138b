"""Checkpoints under attack: concurrent writers, crafted records, non-fitting and full disks."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from edgesnn.runtime.checkpoint import Checkpointer, record_digest

DEMO = "learning_demo"


def _components(**overrides):
    """The shipped learning pipeline's components (built, not started)."""
    from edgesnn.commands.run import load_with_overrides

    return load_with_overrides(DEMO, [f"{k}={v}" for k, v in overrides.items()]).build()


def _learn(comp, steps: int = 200, seed: int = 0) -> None:
    """Feed the snn component random input spikes (learning on) so its weights move."""
    from edgesnn.events import SpikeRaster

    rng = np.random.default_rng(seed)
    n = comp.n_inputs
    per = [np.flatnonzero(rng.random(n) < 0.05).astype(np.int32) for _ in range(steps)]
    ptr = np.zeros(steps + 1, np.int64)
    ptr[1:] = np.cumsum([p.size for p in per])
    comp.process(SpikeRaster("s", 0, 0, 1000, n, ptr, np.concatenate(per), 0, {}))


def _rewrite(path: Path, edit, *, resign: bool = True) -> None:
    """Apply `edit(record)` to a commit record; re-sign it as a forger who knows the scheme."""
    rec = json.loads(path.read_text())
    edit(rec)
    if resign and isinstance(rec, dict):
        rec["record_sha256"] = record_digest(rec)
    path.write_text(json.dumps(rec))


# --- concurrent writers ----------------------------------------------------------------------


def test_concurrent_writers_from_threads_all_succeed_and_the_newest_verifies(tmp_path):
    comps = _components()
    _learn(comps["learner"])
    ck = Checkpointer({"dir": str(tmp_path), "keep": 3}, "t")
    results: list[Path | None] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def writer() -> None:
        try:
            start.wait()
            for _ in range(4):
                results.append(ck.save(comps))
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 32 and all(r is not None for r in results), ck.last_error
    assert ck.failed == 0 and ck.written == 32
    assert len({r.name for r in results}) == 32  # every writer got its own sequence number
    listed = ck.checkpoints()
    assert [s for s, _ in listed] == [32, 31, 30]
    for _, path in listed:
        ck.load(path)  # record and arrays match their checksums
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    fresh = _components()
    assert Checkpointer({"dir": str(tmp_path)}, "t").restore(fresh).name == listed[0][1].name
    np.testing.assert_array_equal(fresh["learner"].net.w, comps["learner"].net.w)


# --- crafted records -------------------------------------------------------------------------

CRAFTED = {
    "components_list": lambda r: r.__setitem__("components", []),
    "component_meta_list": lambda r: r["components"].__setitem__("learner", []),
    "seq_string": lambda r: r.__setitem__("seq", "2"),
    "size_string": lambda r: r.__setitem__("size", "20000"),
    "npz_dev_zero": lambda r: r.__setitem__("npz", "/dev/zero"),
    "npz_parent": lambda r: r.__setitem__("npz", "../ckpt-0000000002.npz"),
    "npz_other_checkpoint": lambda r: r.__setitem__("npz", "ckpt-0000000001.npz"),
    "size_huge": lambda r: r.__setitem__("size", 1 << 62),
    "sha_not_hex": lambda r: r.__setitem__("sha256", "z" * 64),
    "record_is_list": None,
    "unsigned_edit": None,
}


@pytest.mark.parametrize("craft", sorted(CRAFTED))
def test_crafted_newest_record_falls_back_to_the_previous_checkpoint(tmp_path, craft, caplog):
    comps = _components()
    net = comps["learner"]
    ck = Checkpointer({"dir": str(tmp_path), "keep": 3}, "t")
    _learn(net, seed=1)
    ck.save(comps)
    w_good = net.net.w.copy()
    _learn(net, seed=2)
    ck.save(comps)
    rec2 = tmp_path / "ckpt-0000000002.json"
    if craft == "record_is_list":
        rec2.write_text("[1, 2, 3]")
    elif craft == "unsigned_edit":  # a bit of the meta changed without re-signing the record
        _rewrite(rec2, lambda r: r["components"]["learner"].__setitem__("t_steps", 1),
                 resign=False)
    else:
        _rewrite(rec2, CRAFTED[craft])
    fresh = _components()
    ck2 = Checkpointer({"dir": str(tmp_path)}, "t")
    with caplog.at_level("ERROR", logger="edgesnn.checkpoint"):
        got = ck2.restore(fresh)
    assert got is not None and got.name == "ckpt-0000000001.json"
    assert ck2.restored == "ckpt-0000000001.json" and ck2.corrupt == 1
    assert "ckpt-0000000002.json is damaged" in caplog.text
    np.testing.assert_array_equal(fresh["learner"].net.w, w_good)


def test_npz_symlink_out_of_the_folder_is_refused(tmp_path):
    comps = _components()
    ck = Checkpointer({"dir": str(tmp_path / "ck")}, "t")
    ck.save(comps)
    npz = tmp_path / "ck" / "ckpt-0000000001.npz"
    outside = tmp_path / "elsewhere.npz"
    npz.rename(outside)
    npz.symlink_to(outside)
    with pytest.raises(ValueError, match="not a regular file"):
        ck.load(tmp_path / "ck" / "ckpt-0000000001.json")


def test_oversized_arrays_file_is_refused_before_reading(tmp_path):
    comps = _components()
    ck = Checkpointer({"dir": str(tmp_path)}, "t")
    path = ck.save(comps)
    small = Checkpointer({"dir": str(tmp_path), "max_bytes": 1000}, "t")
    with pytest.raises(ValueError, match="exceeds 1000"):
        small.load(path)


def test_version_1_records_without_their_own_checksum_still_restore(tmp_path):
    comps = _components()
    _learn(comps["learner"], seed=3)
    ck = Checkpointer({"dir": str(tmp_path)}, "t")
    path = ck.save(comps)
    rec = json.loads(path.read_text())
    del rec["record_sha256"]
    rec["version"] = 1
    path.write_text(json.dumps(rec))
    fresh = _components()
    assert Checkpointer({"dir": str(tmp_path)}, "t").restore(fresh) == path
    np.testing.assert_array_equal(fresh["learner"].net.w, comps["learner"].net.w)


# --- checkpoints that do not fit -------------------------------------------------------------


def test_non_fitting_newest_falls_back_to_the_newest_that_fits_and_says_so(tmp_path, caplog):
    comps = _components()
    _learn(comps["learner"], seed=4)
    ck = Checkpointer({"dir": str(tmp_path), "keep": 3}, "t")
    ck.save(comps)
    w_good = comps["learner"].net.w.copy()
    other = _components()  # another network (different dt) checkpointed into the same folder
    other["learner"].net.manifest = dict(other["learner"].net.manifest, dt_us=500)
    ck.save(other)
    fresh = _components()
    ck2 = Checkpointer({"dir": str(tmp_path), "keep": 1}, "t")
    with caplog.at_level("ERROR", logger="edgesnn.checkpoint"):
        got = ck2.restore(fresh)
    assert got is not None and got.name == "ckpt-0000000001.json"
    assert ck2.status()["restored"] == "ckpt-0000000001.json"
    assert ck2.unfit == 1 and "ckpt-0000000002.json does not fit" in caplog.text
    np.testing.assert_array_equal(fresh["learner"].net.w, w_good)
    # the next save continues from the restored state and the good one is never lost
    assert ck2.save(fresh) is not None
    newest = ck2.checkpoints()[0][1]
    np.testing.assert_array_equal(ck2.load(newest)[1]["learner"]["w"], w_good)


def test_nothing_fits_starts_fresh_and_reports_no_restore(tmp_path):
    other = _components()
    other["learner"].net.manifest = dict(other["learner"].net.manifest, dt_us=500)
    Checkpointer({"dir": str(tmp_path)}, "t").save(other)
    fresh = _components()
    w0 = fresh["learner"].net.w.copy()
    ck = Checkpointer({"dir": str(tmp_path)}, "t")
    assert ck.restore(fresh) is None
    assert ck.restored is None and ck.unfit == 1
    np.testing.assert_array_equal(fresh["learner"].net.w, w0)


def test_pruning_never_deletes_the_only_good_checkpoint(tmp_path):
    comps = _components()
    ck = Checkpointer({"dir": str(tmp_path), "keep": 1}, "t")
    ck.save(comps)
    # two newer records whose arrays were damaged afterwards
    for seq in (2, 3):
        for suffix in (".json", ".npz"):
            src = tmp_path / f"ckpt-0000000001{suffix}"
            (tmp_path / f"ckpt-{seq:010d}{suffix}").write_bytes(src.read_bytes())
        _rewrite(tmp_path / f"ckpt-{seq:010d}.json",
                 lambda r, s=seq: r.update(seq=s, npz=f"ckpt-{s:010d}.npz"))
        (tmp_path / f"ckpt-{seq:010d}.npz").write_bytes(b"PK damaged")
    ck._prune(ck.keep)
    assert (tmp_path / "ckpt-0000000001.json").exists()
    fresh = _components()
    assert Checkpointer({"dir": str(tmp_path)}, "t").restore(fresh).name == "ckpt-0000000001.json"


# --- a full disk -----------------------------------------------------------------------------


@pytest.fixture
def small_tmpfs(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a 200 KiB tmpfs here ({r.stderr.strip() or 'not root'})")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(mnt: Path) -> Path:
    """Fill the file system with a ballast file until it is full."""
    ballast = mnt / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        while True:
            os.write(fd, b"\0" * 1024)
    except OSError:
        pass
    finally:
        os.close(fd)
    return ballast


def test_full_disk_prunes_before_writing_so_checkpoints_keep_coming(small_tmpfs):
    comps = _components()
    ck = Checkpointer({"dir": str(small_tmpfs / "ck"), "keep": 3}, "t")
    for _ in range(3):
        assert ck.save(comps) is not None
    _fill(small_tmpfs)
    for k in range(4):
        _learn(comps["learner"], seed=10 + k)
        assert ck.save(comps) is not None, ck.last_error
    assert ck.failed == 0
    listed = ck.checkpoints()
    assert [s for s, _ in listed][0] == 7 and len(listed) >= 1
    np.testing.assert_array_equal(ck.load(listed[0][1])[1]["learner"]["w"],
                                  comps["learner"].net.w)


def test_full_disk_with_keep_1_fails_cleanly_and_keeps_the_good_one(small_tmpfs):
    comps = _components()
    ck = Checkpointer({"dir": str(small_tmpfs / "ck"), "keep": 1}, "t")
    first = ck.save(comps)
    ballast = _fill(small_tmpfs)
    assert ck.save(comps) is None and ck.failed == 1
    assert "No space left" in ck.last_error or "ENOSPC" in ck.last_error
    assert [p for _, p in ck.checkpoints()] == [first]
    ck.load(first)
    assert not [n for n in os.listdir(small_tmpfs / "ck") if n.endswith(".tmp")]
    ballast.unlink()
    assert ck.save(comps) is not None


def test_a_fifo_or_directory_in_place_of_the_newest_record_is_skipped(tmp_path):
    comps = _components()
    ck = Checkpointer({"dir": str(tmp_path)}, "t")
    first = ck.save(comps)
    os.mkfifo(tmp_path / "ckpt-0000000003.json")  # opening it to read would block forever
    (tmp_path / "ckpt-0000000002.json").mkdir()
    ck2 = Checkpointer({"dir": str(tmp_path)}, "t")
    assert ck2.restore(_components()) == first
    assert ck2.corrupt == 2


# --- the daemon: concurrent POST /checkpoint --------------------------------------------------


def test_concurrent_post_checkpoint_requests_all_succeed(tmp_path):
    import signal
    import time
    import urllib.error
    import urllib.request

    from conftest import edgesnn_cmd, free_port, subprocess_env

    ck_dir, port = tmp_path / "ck", free_port()
    env = subprocess_env()
    env["EDGESNN_TOKEN"] = "secret"
    log = open(tmp_path / "daemon.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(edgesnn_cmd(
        "run", DEMO, "--set", f"checkpoint.dir={ck_dir}", "--set", "checkpoint.interval_s=0.5",
        "--set", "checkpoint.keep=3", "--set", "drivers.camera.speed=4",
        "--set", f"sinks.zmq.endpoint=tcp://127.0.0.1:{free_port()}",
        "--set", "http.enabled=true", "--set", f"http.port={port}"),
        stdout=subprocess.DEVNULL, stderr=log, env=env)

    def call(method: str, path: str) -> tuple[int, dict]:
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     headers={"Authorization": "Bearer secret"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if call("GET", "/status")[1].get("state") == "running":
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the daemon did not start"
            time.sleep(0.2)
        results: list[tuple[int, dict]] = []
        start = threading.Barrier(8)

        def poster() -> None:
            start.wait()
            for _ in range(4):
                results.append(call("POST", "/checkpoint"))

        threads = [threading.Thread(target=poster) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [code for code, _ in results] == [200] * 32, results
        assert len({body["path"] for _, body in results}) == 32
        status = call("GET", "/status")[1]["checkpoint"]
        assert status["failed"] == 0, status
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    reader = Checkpointer({"dir": str(ck_dir)}, "x")
    listed = reader.checkpoints()
    assert 1 <= len(listed) <= 3
    for _, path in listed:
        reader.load(path)  # the newest (the final one at SIGTERM) and the rest verify


def test_fuzzed_records_and_arrays_never_escape_restore(tmp_path):
    """Seeded mutants of the newest record (re-signed, as a forger would) and of its arrays:
    restore always ends on the good older checkpoint, never with an exception."""
    import hashlib
    import importlib.util
    import random
    import shutil
    import sys

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("fuzz_readers_ck",
                                                  REPO / "tools" / "fuzz_readers.py")
    fz = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fuzz_readers_ck", fz)  # its dataclasses look their module up
    spec.loader.exec_module(fz)
    comps = _components()
    _learn(comps["learner"], seed=5)
    good = tmp_path / "good"
    ck = Checkpointer({"dir": str(good), "keep": 3}, "t")
    ck.save(comps)
    _learn(comps["learner"], seed=6)
    ck.save(comps)
    rec, npz = good / "ckpt-0000000002.json", good / "ckpt-0000000002.npz"
    rng = random.Random(11)
    target = _components()
    seen: dict[str, int] = {}
    for i in range(40):
        d = tmp_path / f"m{i}"
        shutil.copytree(good, d)
        if i % 2:
            data, how = fz.mutate_json(rec.read_bytes(), rng)
            try:
                doc = json.loads(data)
                if isinstance(doc, dict):
                    doc["record_sha256"] = record_digest(doc)
                data = json.dumps(doc).encode()
            except (ValueError, TypeError, RecursionError):
                pass
            (d / rec.name).write_bytes(data)
        else:
            data, how = fz.mutate_bytes(npz.read_bytes(), rng)
            (d / npz.name).write_bytes(data)
            _rewrite(d / rec.name, lambda r, b=data: r.update(
                size=len(b), sha256=hashlib.sha256(b).hexdigest()))
        got = Checkpointer({"dir": str(d)}, "t").restore(target)
        assert got is not None, how
        assert got.name in ("ckpt-0000000001.json", "ckpt-0000000002.json"), how
        seen[got.name] = seen.get(got.name, 0) + 1
        shutil.rmtree(d)
    assert seen.get("ckpt-0000000001.json", 0) >= 10, seen  # the mutants reach the checks
