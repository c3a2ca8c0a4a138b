"""Checkpoints: atomic files, checksum-verified restore with fallback, pruning, and a daemon
that survives SIGKILL (state equals the last checkpoint) and a full or read-only disk."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import edgesnn_cmd, free_port, subprocess_env

from edgesnn.learning.control import add_reward
from edgesnn.runtime.checkpoint import Checkpointer

DEMO = "learning_demo"


def _components(**overrides):
    """The shipped learning pipeline's components (built, not started)."""
    from edgesnn.commands.run import load_with_overrides

    cfg = load_with_overrides(DEMO, [f"{k}={v}" for k, v in overrides.items()])
    return cfg.build()


def _learn(comp, steps: int = 400, seed: int = 0) -> None:
    """Feed the snn component random input spikes through its process() (learning on)."""
    from edgesnn.events import SpikeRaster

    rng = np.random.default_rng(seed)
    n = comp.n_inputs
    per = [np.flatnonzero(rng.random(n) < 0.05).astype(np.int32) for _ in range(steps)]
    ptr = np.zeros(steps + 1, np.int64)
    ptr[1:] = np.cumsum([p.size for p in per])
    comp.process(SpikeRaster("s", 0, 0, 1000, n, ptr, np.concatenate(per), 0, {}))


def test_save_restore_roundtrip_and_keep_last_n(tmp_path):
    comps = _components()
    net = comps["learner"]
    ck = Checkpointer({"dir": str(tmp_path), "interval_s": 1.0, "keep": 2}, "t")
    saved = []
    for k in range(4):
        _learn(net, seed=k)
        saved.append((net.net.w.copy(), net.net.fs.copy(), net.net.ii.copy(), net.steps))
        assert ck.save(comps) is not None
    assert [s for s, _ in ck.checkpoints()] == [4, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ckpt-0000000003.json", "ckpt-0000000003.npz", "ckpt-0000000004.json",
        "ckpt-0000000004.npz",
    ]
    fresh = _components()
    assert not np.array_equal(fresh["learner"].net.w, saved[-1][0])
    assert ck.restore(fresh).name == "ckpt-0000000004.json"
    w, fs, ii, steps = saved[-1]
    got = fresh["learner"]
    np.testing.assert_array_equal(got.net.w, w)
    np.testing.assert_array_equal(got.net.fs, fs)
    np.testing.assert_array_equal(got.net.ii, ii)
    assert got.steps == steps and got.net.t_steps == 4 * 400
    rec = json.loads((tmp_path / "ckpt-0000000004.json").read_text())
    assert rec["components"]["learner"]["manifest"]["format"] == "edgesnn-model"


@pytest.mark.parametrize("damage", ["truncate", "flip_byte", "bad_json", "missing_npz"])
def test_damaged_newest_checkpoint_falls_back_to_the_previous(tmp_path, damage, caplog):
    comps = _components()
    net = comps["learner"]
    ck = Checkpointer({"dir": str(tmp_path), "keep": 3}, "t")
    _learn(net, seed=1)
    ck.save(comps)
    w_prev = net.net.w.copy()
    _learn(net, seed=2)
    ck.save(comps)
    assert not np.array_equal(net.net.w, w_prev)
    npz = tmp_path / "ckpt-0000000002.npz"
    if damage == "truncate":
        data = npz.read_bytes()
        npz.write_bytes(data[: len(data) // 2])
    elif damage == "flip_byte":
        data = bytearray(npz.read_bytes())
        data[len(data) // 2] ^= 0xFF
        npz.write_bytes(bytes(data))
    elif damage == "bad_json":
        (tmp_path / "ckpt-0000000002.json").write_text('{"format": "edgesnn-ch')
    else:
        npz.unlink()
    fresh = _components()
    ck2 = Checkpointer({"dir": str(tmp_path)}, "t")
    with caplog.at_level("ERROR", logger="edgesnn.checkpoint"):
        assert ck2.restore(fresh).name == "ckpt-0000000001.json"
    assert ck2.corrupt == 1
    assert "ckpt-0000000002.json is damaged" in caplog.text
    np.testing.assert_array_equal(fresh["learner"].net.w, w_prev)


def test_checkpoint_of_another_network_is_refused(tmp_path, caplog):
    comps = _components()
    _learn(comps["learner"])
    Checkpointer({"dir": str(tmp_path)}, "t").save(comps)
    other = _components()
    other["learner"].net.manifest = dict(other["learner"].net.manifest, dt_us=500)
    w0 = other["learner"].net.w.copy()
    with caplog.at_level("ERROR", logger="edgesnn.checkpoint"):
        Checkpointer({"dir": str(tmp_path)}, "t").restore(other)
    assert "does not fit" in caplog.text
    np.testing.assert_array_equal(other["learner"].net.w, w0)


def test_a_float64_checkpoint_restores_into_the_float32_default(tmp_path, caplog):
    """Checkpoints written while float64 was the default still restore after the upgrade: the
    learned state is converted, not thrown away."""
    old = _components(**{"networks.learner.dtype": "float64"})
    assert old["learner"].net.fs.dtype == np.float64
    _learn(old["learner"])
    Checkpointer({"dir": str(tmp_path)}, "t").save(old)
    new = _components()
    assert new["learner"].net.fs.dtype == np.float32
    assert not np.array_equal(new["learner"].net.w, old["learner"].net.w.astype(np.float32))
    with caplog.at_level("WARNING", logger="edgesnn.learning"):
        assert Checkpointer({"dir": str(tmp_path)}, "t").restore(new) is not None
    assert "converted" in caplog.text
    np.testing.assert_array_equal(new["learner"].net.w, old["learner"].net.w.astype(np.float32))
    np.testing.assert_array_equal(new["learner"].net.fs, old["learner"].net.fs.astype(np.float32))
    np.testing.assert_array_equal(new["learner"].net.ii, old["learner"].net.ii)


def test_directory_blocked_by_a_file_is_reported_not_raised(tmp_path, caplog):
    blocker = tmp_path / "ck"
    blocker.write_text("not a directory")
    comps = _components()
    ck = Checkpointer({"dir": str(blocker / "sub")}, "t")
    with caplog.at_level("ERROR", logger="edgesnn.checkpoint"):
        assert ck.save(comps) is None
    assert ck.failed == 1 and ck.written == 0 and "still serving" in caplog.text
    assert "NotADirectoryError" in ck.last_error or "FileExistsError" in ck.last_error


def test_rewards_survive_in_eligibility_and_are_checkpointed(tmp_path):
    """rstdp state (eligibility, dopamine, reward counter) is part of the checkpoint."""
    from edgesnn.core import Network
    from tests.learning.reference import teacher_spec

    spec = teacher_spec(4, 2, {"rule": "rstdp", "tau_dopa_ms": 50.0}, w0=0.5)
    net = Network(spec)
    rng = np.random.default_rng(0)
    for t in range(200):
        net.step(np.flatnonzero(rng.random(6) < 0.2).astype(np.int32))
        if t % 50 == 49:
            add_reward(net, 1.0)
    from edgesnn.learning.control import LearningControl

    class Holder:
        def __init__(self, n):
            self.ctl = LearningControl(n)

        def checkpoint_state(self):
            return self.ctl.capture()

        def restore_state(self, a, m):
            self.ctl.restore(a, m)

    ck = Checkpointer({"dir": str(tmp_path)}, "t")
    ck.save({"n": Holder(net)})
    other = Network(spec)
    ck.restore({"n": Holder(other)})
    np.testing.assert_array_equal(other.fs, net.fs)
    assert Holder(other).ctl.learning_status()["plasticity"]["pre->post"]["rewards_applied"] == 3


# --- the daemon ------------------------------------------------------------------------------


def _start(ck_dir: Path, port: int, *extra: str) -> subprocess.Popen:
    env = subprocess_env()
    env["EDGESNN_TOKEN"] = "secret"
    args = edgesnn_cmd(
        "run", DEMO,
        "--set", f"checkpoint.dir={ck_dir}",
        "--set", "checkpoint.interval_s=0.3",
        "--set", "drivers.camera.speed=4",
        "--set", f"sinks.zmq.endpoint=tcp://127.0.0.1:{free_port()}",
        "--set", "http.enabled=true",
        "--set", f"http.port={port}",
        *extra,
    )
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def _status(port: int, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as r:
                return json.loads(r.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _wait(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.stderr.read() if proc.stderr else ""


def test_sigkill_while_learning_then_restart_restores_the_last_checkpoint(tmp_path):
    ck_dir = tmp_path / "ck"
    port = free_port()
    proc = _start(ck_dir, port)
    try:
        _status(port)
        reader = Checkpointer({"dir": str(ck_dir)}, "x")
        def learned() -> bool:
            # three checkpoints or more, the newest after some learning (on a loaded machine
            # the first checkpoints may come before the learner's first step)
            cks = reader.checkpoints()
            if len(cks) < 3 or cks[0][0] < 4:
                return False
            rec, _ = reader.load(cks[0][1])
            return rec["components"]["learner"]["t_steps"] > 0

        _wait(learned, 120, "checkpoints after learning")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # the newest committed checkpoint at the moment of the kill
    last_seq, last_path = reader.checkpoints()[0]
    record, arrays = reader.load(last_path)
    before = arrays["learner"]
    t_ck = record["components"]["learner"]["t_steps"]
    assert t_ck > 0
    first = Checkpointer({"dir": str(ck_dir)}, "x").load(reader.checkpoints()[-1][1])[1]
    assert not np.array_equal(first["learner"]["w"], before["w"]), "nothing was learned"
    # restart with learning off: the weights it serves with are exactly the checkpoint's
    port2 = free_port()
    proc2 = _start(ck_dir, port2, "--set", "networks.learner.learning=false")
    try:
        # /status answers as soon as the HTTP API is up; the restore happens just after
        st = _wait(lambda: (s := _status(port2)).get("state") == "running" and s, 60,
                   "the restarted daemon to restore and run")
        assert st["checkpoint"]["restored"] == last_path.name
        _wait(lambda: _status(port2)["counters"]["learner"]["steps"] > record["components"][
            "learner"]["counters"]["steps"] + 200, 60, "the restarted daemon to run")
    finally:
        log = _stop(proc2)
    assert f"restored checkpoint {last_path.name}" in log
    newest_seq, newest = reader.checkpoints()[0]
    assert newest_seq > last_seq
    rec2, after = reader.load(newest)
    np.testing.assert_array_equal(after["learner"]["w"], before["w"])
    assert rec2["components"]["learner"]["t_steps"] > t_ck  # the step counter went on


def _mount_tmpfs(path: Path, opts: str) -> None:
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or 'not permitted'}); "
                    "the blocked-directory test covers the reporting path")


@pytest.mark.parametrize("disk", ["read_only", "full"])
def test_daemon_keeps_serving_when_the_checkpoint_disk_fails(tmp_path, disk):
    mnt = tmp_path / "mnt"
    _mount_tmpfs(mnt, "ro,size=1m" if disk == "read_only" else "size=8k")
    port = free_port()
    proc = _start(mnt / "ck" if disk == "full" else mnt, port)
    try:
        st = _wait(
            lambda: (s := _status(port)).get("checkpoint", {}).get("failed", 0) >= 2 and s,
            60, "failed checkpoints")
        steps = st["counters"]["learner"]["steps"]
        st2 = _wait(lambda: (s := _status(port))["counters"]["learner"]["steps"] > steps + 300
                    and s, 30, "the pipeline to keep running")
        assert st2["state"] == "running" and st2["checkpoint"]["written"] == 0
        err = st2["checkpoint"]["last_error"]
        assert ("Read-only" in err) if disk == "read_only" else ("No space" in err), err
    finally:
        log = _stop(proc)
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
    assert proc.returncode == 0, log
    assert "still serving" in log
