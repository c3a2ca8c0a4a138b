"""Signals against a real `edgesnn run` subprocess: storms never kill it, reloads lose nothing."""

from __future__ import annotations

import signal
import subprocess
import time

import msgpack
import pytest
import zmq
from conftest import activity_pipeline, edgesnn_cmd, free_port, subprocess_env


@pytest.fixture
def ctx():
    c = zmq.Context()
    yield c
    c.term()


def _sub(ctx: zmq.Context, port: int) -> zmq.Socket:
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"det.")
    sock.connect(f"tcp://127.0.0.1:{port}")
    return sock


def _dets(sock: zmq.Socket, n: int, timeout: float, label: str | None = None) -> list[dict]:
    """Detections until `n` (with `label`, when given) arrived or `timeout` seconds passed."""
    out: list[dict] = []
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if sock.poll(100):
            out.append(msgpack.unpackb(sock.recv_multipart()[1], raw=False))
            if sum(label is None or m["label"] == label for m in out) >= n:
                break
    return out


def _start(path) -> subprocess.Popen:
    return subprocess.Popen(edgesnn_cmd("run", str(path)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=subprocess_env())


def _stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    return rc, proc.stderr.read()


def _gaps(seqs: list[int]) -> int:
    return sum(b - a - 1 for a, b in zip(seqs, seqs[1:]) if b != a + 1)


@pytest.mark.parametrize("mix", [False, True], ids=["100-sighup", "mixed"])
def test_signal_storm_never_kills_the_daemon(tmp_path, ctx, mix):
    port = free_port()
    path = tmp_path / "storm.toml"
    path.write_text(activity_pipeline("storm", port, label="a", join_wait_ms=300))
    sock = _sub(ctx, port)
    proc = _start(path)
    try:
        assert len(_dets(sock, 3, 60)) >= 3, proc.stderr.read() if proc.poll() is not None else ""
        for i in range(100):  # 100 signals within about a second
            if mix and i % 10 == 0:  # the file changes under the storm, valid and invalid
                text = activity_pipeline("storm", port, label=f"m{i}")
                path.write_text(text.replace("window_ms", "windw_ms") if i % 20 else text)
            proc.send_signal(signal.SIGHUP)
            time.sleep(0.01)
        time.sleep(0.5)
        assert proc.poll() is None, proc.stderr.read()
        path.write_text(activity_pipeline("storm", port, label="final"))
        proc.send_signal(signal.SIGHUP)
        after = _dets(sock, 3, 60, label="final")
        assert proc.poll() is None, proc.stderr.read()
    finally:
        rc, err = _stop(proc)
        sock.close()
    assert rc == 0, err
    assert sum(m["label"] == "final" for m in after) >= 3, err
    seqs = [m["seq"] for m in after]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_valid_reloads_lose_no_detection(tmp_path, ctx):
    """A SUB socket on loopback sees gap-free seq across three reloads (join_wait_ms = 0)."""
    port = free_port()
    path = tmp_path / "gapless.toml"
    path.write_text(activity_pipeline("gapless", port, label="r0", join_wait_ms=300))
    sock = _sub(ctx, port)
    proc = _start(path)
    seen: list[dict] = []
    try:
        seen += _dets(sock, 5, 60)
        for k in range(1, 4):
            path.write_text(activity_pipeline("gapless", port, label=f"r{k}"))
            proc.send_signal(signal.SIGHUP)
            seen += _dets(sock, 5, 60, label=f"r{k}")
            assert proc.poll() is None, proc.stderr.read()
    finally:
        rc, err = _stop(proc)
        seen += _dets(sock, 10_000, 0.3)
        sock.close()
    assert rc == 0, err
    labels = [m["label"] for m in seen]
    assert all(labels.count(f"r{k}") >= 5 for k in range(4)), labels
    seqs = [m["seq"] for m in seen]
    assert _gaps(seqs) == 0 and seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


def test_sigterm_during_a_reload_drains_and_exits_0(tmp_path, ctx):
    port = free_port()
    path = tmp_path / "abandon.toml"
    path.write_text(activity_pipeline("abandon", port, label="a", join_wait_ms=300))
    sock = _sub(ctx, port)
    proc = _start(path)
    try:
        assert len(_dets(sock, 3, 60)) >= 3
        path.write_text(activity_pipeline("abandon", port, label="b"))
        for _ in range(5):  # a reload under way, more SIGHUPs, then SIGTERM in the middle
            proc.send_signal(signal.SIGHUP)
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGHUP)
        rc = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
    err = proc.stderr.read()
    assert rc == 0, err
    assert "stopped after" in err, err
