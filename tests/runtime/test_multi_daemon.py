"""Several pipelines in one `edgesnn run` subprocess: real ZeroMQ subscribers, real HTTP, signals.

One pipeline failing again and again is restarted with a growing backoff while the other
publishes gap-free; SIGHUP reloads only the file that changed (the other's seq runs on), keeps
the running version of an invalid file, starts a file added to the folder and drains a removed
one.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request

import msgpack
import pytest
import zmq
from conftest import activity_pipeline, edgesnn_cmd, free_port, subprocess_env

FAIL_SINK = '\n[sinks.bad]\ntype = "file"\ninputs = ["r"]\npath = "/dev/full"\n'


@pytest.fixture
def ctx():
    c = zmq.Context()
    yield c
    c.term()


def _http(port: int) -> str:
    return f"\n[http]\nenabled = true\nport = {port}\n"


def _pipeline(name: str, port: int, http: int, label: str, extra: str = "") -> str:
    return activity_pipeline(name, port, label=label, join_wait_ms=300, extra=extra) + _http(http)


class Subs:
    """One SUB socket per pipeline; detections by pipeline name."""

    def __init__(self, ctx: zmq.Context, ports: dict[str, int]):
        self.socks = {}
        self.poller = zmq.Poller()
        for name, port in ports.items():
            s = ctx.socket(zmq.SUB)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.SUBSCRIBE, b"det.")
            s.connect(f"tcp://127.0.0.1:{port}")
            self.socks[name] = s
            self.poller.register(s, zmq.POLLIN)
        self.got: dict[str, list[dict]] = {n: [] for n in ports}

    def pump(self, seconds: float, until=None) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for s, _ in self.poller.poll(50):
                m = msgpack.unpackb(s.recv_multipart()[1], raw=False)
                self.got[m["pipeline"]].append(m)
            if until is not None and until(self.got):
                return

    def close(self) -> None:
        for s in self.socks.values():
            s.close()


def _get(http: int, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http}{path}", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _start(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(edgesnn_cmd("run", *args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env or subprocess_env())


def _stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    return rc, proc.stderr.read()


def _contiguous(msgs: list[dict]) -> bool:
    seqs = [m["seq"] for m in msgs]
    return bool(seqs) and seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def _labels(msgs: list[dict], label: str) -> int:
    return sum(m["label"] == label for m in msgs)


def test_failing_pipeline_restarts_with_backoff_while_the_other_publishes(tmp_path, ctx):
    pa, pb, http = free_port(), free_port(), free_port()
    (tmp_path / "a.toml").write_text(_pipeline("a", pa, http, "la"))
    (tmp_path / "b.toml").write_text(_pipeline("b", pb, http, "lb", extra=FAIL_SINK))
    subs = Subs(ctx, {"a": pa, "b": pb})
    proc = _start(str(tmp_path / "a.toml"), str(tmp_path / "b.toml"),
                  "--restart-min-s", "0.1", "--restart-max-s", "0.8")
    try:
        subs.pump(60, until=lambda g: len(g["a"]) >= 3)
        assert proc.poll() is None, proc.stderr.read()
        b = {}
        for _ in range(100):  # until b failed 5 times (delays 0.1, 0.2, 0.4, 0.8, 0.8 s)
            subs.pump(0.3)
            code, st = _get(http, "/status")
            b = st["pipelines"]["b"]
            if b["failures"] >= 5:
                break
        health_code, health = _get(http, "/health")
        _, b_alone = _get(http, "/status/b")
        _, a_health = _get(http, "/health/a")
        subs.pump(0.5)
    finally:
        rc, err = _stop(proc)
        subs.pump(0.3)
        subs.close()
    assert rc == 0, err
    a_status = st["pipelines"]["a"]
    assert a_status["state"] == "running" and a_status["restarts"] == 0, st
    assert b["failures"] >= 5 and b["restarts"] >= 4, b
    assert "component 'bad'" in b["last_failure"], b
    delays = b["restart_delays_s"]
    # exponential: each delay about twice the one before (±10 % jitter) up to the cap
    for d0, d1 in zip(delays, delays[1:4]):
        assert 1.5 * d0 < d1 < 2.5 * d0, delays
    assert all(d <= 0.8 * 1.1 for d in delays), delays
    assert health_code == 503 and health["status"] == "degraded", health
    assert any(r.startswith("b: ") for r in health["reasons"]), health
    assert health["pipelines"]["a"]["status"] == "ok", health
    assert a_health["status"] == "ok"
    assert b_alone["pipeline"] == "b" and b_alone["supervisor"]["restarts"] >= 4
    assert "pipeline 'b' failed: component 'bad'" in err and "restarting in" in err
    # the healthy pipeline published all along without a single gap
    assert len(subs.got["a"]) >= 20 and _contiguous(subs.got["a"]), [
        m["seq"] for m in subs.got["a"]]
    # the failing one's seq counts on across its restarts (never repeats)
    seqs_b = [m["seq"] for m in subs.got["b"]]
    assert seqs_b == sorted(set(seqs_b)), seqs_b


def test_sighup_reloads_only_the_changed_file_and_keeps_an_invalid_one(tmp_path, ctx):
    pa, pb, http = free_port(), free_port(), free_port()
    fa, fb = tmp_path / "a.toml", tmp_path / "b.toml"
    fa.write_text(_pipeline("a", pa, http, "la"))
    fb.write_text(_pipeline("b", pb, http, "lb0"))
    subs = Subs(ctx, {"a": pa, "b": pb})
    proc = _start(str(fa), str(fb))
    try:
        subs.pump(60, until=lambda g: len(g["a"]) >= 3 and len(g["b"]) >= 3)
        assert proc.poll() is None, proc.stderr.read()
        fb.write_text(_pipeline("b", pb, http, "lb1"))
        proc.send_signal(signal.SIGHUP)
        subs.pump(30, until=lambda g: _labels(g["b"], "lb1") >= 5)
        n_a = len(subs.got["a"])
        subs.pump(30, until=lambda g: len(g["a"]) >= n_a + 5)
        # an invalid edit of a: refused, a's running version goes on
        fa.write_text(_pipeline("a", pa, http, "la2").replace("window_ms", "windw_ms"))
        proc.send_signal(signal.SIGHUP)
        st = {}
        for _ in range(100):
            subs.pump(0.1)
            _, st = _get(http, "/status")
            if st["pipelines"]["a"]["config_error"]:
                break
        health_code, health = _get(http, "/health")
        n_a = len(subs.got["a"])
        subs.pump(30, until=lambda g: len(g["a"]) >= n_a + 5)
        assert proc.poll() is None, proc.stderr.read()
    finally:
        rc, err = _stop(proc)
        subs.pump(0.3)
        subs.close()
    assert rc == 0, err
    a, b = subs.got["a"], subs.got["b"]
    assert {m["label"] for m in a} == {"la"}, "a was reloaded though invalid"
    assert _labels(b, "lb0") >= 3 and _labels(b, "lb1") >= 5
    # the untouched pipeline never paused its stream; the reloaded one kept its socket and seq
    assert _contiguous(a), [m["seq"] for m in a]
    assert _contiguous(b), [m["seq"] for m in b]
    assert "reloading pipeline 'b'" in err and "reloading pipeline 'a'" not in err, err
    pa_st, pb_st = st["pipelines"]["a"], st["pipelines"]["b"]
    assert pa_st["reloads"] == 0 and pb_st["reloads"] == 1, st
    assert 'unknown key "windw_ms"' in pa_st["config_error"][0], pa_st
    assert health_code == 503 and any("a.toml is invalid" in r for r in health["reasons"])
    assert "pipeline 'a' keeps running its previous version" in err


def test_folder_added_file_starts_removed_file_drains(tmp_path, ctx):
    """...and systemd hears READY=1 once both run, RELOADING=1/READY=1 around the reload."""
    from test_service import NotifySocket

    ns = NotifySocket()
    pa, pb, pc, http = free_port(), free_port(), free_port(), free_port()
    d = tmp_path / "pipelines"
    d.mkdir()
    (d / "a.toml").write_text(_pipeline("a", pa, http, "la"))
    (d / "b.toml").write_text(_pipeline("b", pb, http, "lb"))
    (d / "notes.txt").write_text("not a pipeline")
    subs = Subs(ctx, {"a": pa, "b": pb, "c": pc})
    proc = _start(str(d), env=subprocess_env() | {"NOTIFY_SOCKET": ns.env_value})
    try:
        ready = ns.wait_for("READY=1")
        subs.pump(60, until=lambda g: len(g["a"]) >= 3 and len(g["b"]) >= 3)
        assert proc.poll() is None, proc.stderr.read()
        (d / "b.toml").unlink()
        (d / "c.toml").write_text(_pipeline("c", pc, http, "lc"))
        (d / "a.toml").rename(d / "a_renamed.toml")  # same pipeline, same endpoint
        proc.send_signal(signal.SIGHUP)
        n_a = len(subs.got["a"])
        subs.pump(30, until=lambda g: len(g["c"]) >= 3 and len(g["a"]) >= n_a + 3)
        reload_msgs = ns.wait_for("READY=1")
        st = {}
        for _ in range(50):
            _, st = _get(http, "/status")
            if "b" not in st["pipelines"]:
                break
            subs.pump(0.1)
        n_b = len(subs.got["b"])
        subs.pump(0.5)
        assert proc.poll() is None, proc.stderr.read()
    finally:
        rc, err = _stop(proc)
        subs.pump(0.3)
        subs.close()
    try:
        stopping = ns.wait_for("STOPPING=1", timeout=5)
    finally:
        ns.close()
    assert rc == 0, err
    assert "STATUS=2 pipelines: 2 running" in ready[-1], ready
    assert any("RELOADING=1" in m.split("\n") for m in reload_msgs), reload_msgs
    assert "STATUS=draining 2 pipelines" in stopping[-1], stopping
    assert sorted(st["pipelines"]) == ["a", "c"], st
    assert st["pipelines"]["a"]["file"].endswith("a_renamed.toml"), st
    # the renamed file's pipeline started afresh yet continues its stream's seq
    seqs_a = [m["seq"] for m in subs.got["a"]]
    assert seqs_a == sorted(set(seqs_a)) and seqs_a[n_a] > seqs_a[n_a - 1], seqs_a
    assert len(subs.got["c"]) >= 3 and _contiguous(subs.got["c"])
    assert len(subs.got["b"]) == n_b, "b published after it was removed"
    assert _contiguous(subs.got["b"])
    assert "b.toml was removed: draining and stopping pipeline 'b'" in err, err
    assert "starting pipeline 'c' from c.toml" in err, err


def test_sighup_storm_then_sigterm_during_a_reload(tmp_path, ctx):
    """50 SIGHUPs while one file flips between valid and invalid versions never kill the
    daemon or pause the other pipeline; a SIGTERM in the middle of a reload drains, exit 0."""
    pa, pb, http = free_port(), free_port(), free_port()
    fa, fb = tmp_path / "a.toml", tmp_path / "b.toml"
    fa.write_text(_pipeline("a", pa, http, "la"))
    fb.write_text(_pipeline("b", pb, http, "lb"))
    subs = Subs(ctx, {"a": pa, "b": pb})
    proc = _start(str(fa), str(fb))
    try:
        subs.pump(60, until=lambda g: len(g["a"]) >= 3 and len(g["b"]) >= 3)
        for i in range(50):
            if i % 10 == 0:
                text = _pipeline("b", pb, http, f"m{i}")
                fb.write_text(text.replace("window_ms", "windw_ms") if i % 20 else text)
            proc.send_signal(signal.SIGHUP)
            subs.pump(0.01)
        fb.write_text(_pipeline("b", pb, http, "final"))
        proc.send_signal(signal.SIGHUP)
        subs.pump(30, until=lambda g: _labels(g["b"], "final") >= 3)
        assert proc.poll() is None, proc.stderr.read()
        fb.write_text(_pipeline("b", pb, http, "never"))
        proc.send_signal(signal.SIGHUP)
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGHUP)
        rc = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
        subs.pump(0.3)
        subs.close()
    err = proc.stderr.read()
    assert rc == 0, err
    assert "2 pipelines stopped after" in err, err
    assert _labels(subs.got["b"], "final") >= 3, err
    assert _contiguous(subs.got["a"]), [m["seq"] for m in subs.got["a"]]
    assert _contiguous(subs.got["b"]), [m["seq"] for m in subs.got["b"]]
    assert {m["label"] for m in subs.got["a"]} == {"la"}
