"""The daemon as a user runs it: a subprocess on the demo pipeline, a real ZeroMQ SUB socket."""

from __future__ import annotations

import signal
import subprocess
import time

import msgpack
import pytest
import zmq
from conftest import activity_pipeline, edgesnn_cmd, free_port, subprocess_env


def start_demo(port: int, *extra: str) -> subprocess.Popen:
    args = edgesnn_cmd(
        "run", "demo",
        "--set", f"sinks.zmq.endpoint=tcp://127.0.0.1:{port}",
        "--set", "sinks.zmq.join_wait_ms=500",
        *extra,
    )
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=subprocess_env())


def subscriber(port: int, ctx: zmq.Context, topics=(b"det.", b"hb.")) -> zmq.Socket:
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    for t in topics:
        sock.setsockopt(zmq.SUBSCRIBE, t)
    sock.connect(f"tcp://127.0.0.1:{port}")
    return sock


def collect(sock: zmq.Socket, until: float, stop_when=None, done=None) -> list[tuple[str, dict]]:
    """Messages until `until`, until stop_when(messages) holds, or until done() holds."""
    out = []
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    while time.monotonic() < until:
        if done is not None and done():
            break
        if poller.poll(100):
            topic, payload = sock.recv_multipart()
            out.append((topic.decode(), msgpack.unpackb(payload, raw=False)))
            if stop_when and stop_when(out):
                break
    return out


@pytest.fixture
def ctx():
    c = zmq.Context()
    yield c
    c.term()


def test_demo_detections_heartbeats_and_sigterm(ctx):
    from edgesnn.models.motion import DIRECTIONS
    port = free_port()
    sock = subscriber(port, ctx)
    proc = start_demo(port, "--set", "drivers.camera.speed=2")
    try:
        msgs = collect(
            sock, time.monotonic() + 90,
            stop_when=lambda m: sum(t.startswith("hb.") for t, _ in m) >= 3
            and sum(t.startswith("det.") for t, _ in m) >= 10,
        )
        assert proc.poll() is None, proc.stderr.read()
        t_sig = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=10)
        elapsed = time.monotonic() - t_sig
        # what was in flight at SIGTERM is still published
        msgs += collect(sock, time.monotonic() + 0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
    assert rc == 0, proc.stderr.read()
    assert elapsed < 2.0, f"SIGTERM took {elapsed:.2f} s"

    dets = [m for t, m in msgs if t.startswith("det.")]
    hbs = [m for t, m in msgs if t.startswith("hb.")]
    assert len(dets) >= 10 and len(hbs) >= 3
    for t, m in msgs:
        if t.startswith("det."):
            assert t == f"det.demo.{m['label']}"
            assert m["label"] in DIRECTIONS
            assert m["v"] == 1 and m["pipeline"] == "demo"
            assert isinstance(m["t_sensor_us"], int) and m["t_emit_us"] > 1_600_000_000_000_000
            assert 0.0 <= m["score"] <= 1.0
    seqs = [m["seq"] for m in dets]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "seq has gaps"
    assert seqs[0] == 0
    # heartbeats about once a second, with the counters of every component
    running = [h for h in hbs if h["state"] == "running"]
    gaps = [b["t_emit_us"] - a["t_emit_us"] for a, b in zip(running, running[1:])]
    assert gaps and all(0.7e6 < g < 1.6e6 for g in gaps), gaps
    for h in hbs:
        assert set(h["counters"]) == {"camera", "pooled", "motion", "direction", "zmq"}
        for row in h["counters"].values():
            assert {"received", "emitted", "dropped", "queue_depth"} <= set(row)
    assert hbs[-1]["counters"]["camera"]["emitted"] > 0


def test_demo_accuracy_on_ground_truth(ctx):
    """The demo detects the direction of motion right >= 95 % of the time (and sees most)."""
    from edgesnn.commands.run import load_with_overrides
    from edgesnn.models.motion import evaluate

    duration = 40.0
    port = free_port()
    sock = subscriber(port, ctx, topics=(b"det.",))
    proc = start_demo(port, "--set", "drivers.camera.speed=max",
                      "--set", f"drivers.camera.duration_s={duration}")
    try:
        msgs = collect(sock, time.monotonic() + 120, done=lambda: proc.poll() is not None)
        rc = proc.wait(timeout=30)
        msgs += collect(sock, time.monotonic() + 0.3)
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
    assert rc == 0, proc.stderr.read()
    dets = [m for _, m in msgs]
    cfg = load_with_overrides("demo", [f"drivers.camera.duration_s={duration}"])
    driver = cfg.build()["camera"]
    segments = list(driver.schedule(int(duration * 1e6)))
    score = evaluate(dets, segments)
    assert [m["seq"] for m in dets] == list(range(len(dets)))
    assert score["accuracy"] >= 0.95, score
    assert score["coverage"] >= 0.8, score


@pytest.mark.parametrize("target", ["/dev/full", "/proc/edgesnn-cannot-write/x"],
                         ids=["fails-while-running", "fails-to-start"])
def test_crashing_component_is_named_and_exit_nonzero(tmp_path, target):
    bad = tmp_path / "crash.toml"
    bad.write_text(
        '[pipeline]\nname = "crash"\n\n'
        '[drivers.cam]\ntype = "synthetic_dvs"\nspeed = "max"\nduration_s = 1.0\n\n'
        '[encoders.enc]\ntype = "dvs_pool"\ninputs = ["cam"]\ngrid = [1, 1]\npolarity = "merge"\n\n'
        '[readouts.r]\ntype = "spike_count"\ninputs = ["enc"]\nlabels = ["a"]\n\n'
        '[sinks.out]\ntype = "file"\ninputs = ["r"]\npath = "' + target + '"\n'
    )
    proc = subprocess.run(edgesnn_cmd("run", str(bad)), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "component 'out'" in proc.stderr


def test_readout_shape_error_exits_2(tmp_path):
    proc = subprocess.run(edgesnn_cmd("run", "demo", "--set", "readouts.direction.labels=[\"a\"]"),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "readouts.direction: expects 1 input neurons" in proc.stderr





def test_sighup_reloads_valid_file_and_keeps_running_on_invalid(tmp_path, ctx):
    port = free_port()
    path = tmp_path / "hup.toml"
    path.write_text(activity_pipeline("hup", port, label="before", join_wait_ms=300))
    sock = subscriber(port, ctx, topics=(b"det.",))
    proc = subprocess.Popen(edgesnn_cmd("run", str(path)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        first = collect(sock, time.monotonic() + 60, stop_when=lambda m: len(m) >= 3)
        assert {m["label"] for _, m in first} == {"before"}
        path.write_text(
            activity_pipeline("hup", port, label="after").replace("window_ms", "windw_ms"))
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert proc.poll() is None
        still = collect(sock, time.monotonic() + 10, stop_when=lambda m: len(m) >= 3)
        assert {m["label"] for _, m in still} == {"before"}
        path.write_text(activity_pipeline("hup", port, label="after", join_wait_ms=300))
        proc.send_signal(signal.SIGHUP)
        after = collect(sock, time.monotonic() + 30,
                        stop_when=lambda m: sum(x["label"] == "after" for _, x in m) >= 3)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
    err = proc.stderr.read()
    assert rc == 0, err
    assert 'unknown key "windw_ms" (did you mean "window_ms"?)' in err
    assert any(m["label"] == "after" for _, m in after)
    seqs = [m["seq"] for _, m in first + still + after]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # continues across the reload


def test_sigterm_during_a_cold_compile_exits_promptly(tmp_path):
    """A daemon stopped while it compiles its kernels (first start) exits at once, with 0."""
    env = subprocess_env()
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "empty-cache")  # force a cold compile
    proc = subprocess.Popen(edgesnn_cmd("run", "demo", "--set",
                                        f"sinks.zmq.endpoint=tcp://127.0.0.1:{free_port()}"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        err = ""
        while "compiling" not in err and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            err += line
        assert "compiling" in err, err
        t = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=10)
        elapsed = time.monotonic() - t
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 0
    assert elapsed < 2.0, f"took {elapsed:.2f} s to stop during compilation"
