"""`edgesnn subscribe` prints JSON lines from a running daemon; the stdout sink does too."""

from __future__ import annotations

import json
import signal
import subprocess

from conftest import activity_pipeline, edgesnn_cmd, free_port, subprocess_env


def test_subscribe_cli_prints_detections_and_heartbeats(tmp_path):
    port = free_port()
    path = tmp_path / "sub.toml"
    path.write_text(activity_pipeline(
        "sub", port, window_ms=100.0, heartbeat_s=0.3,
        extra='\n[sinks.out]\ntype = "stdout"\ninputs = ["r"]\n'))
    # the subscriber starts first: ZeroMQ connects whenever the publisher binds
    sub = subprocess.Popen(
        edgesnn_cmd("subscribe", f"tcp://127.0.0.1:{port}", "--heartbeats", "--count", "15",
                    "--timeout", "60"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
    daemon = subprocess.Popen(edgesnn_cmd("run", str(path)), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        out, err = sub.communicate(timeout=120)
    finally:
        daemon.send_signal(signal.SIGTERM)
        d_out, d_err = daemon.communicate(timeout=30)
    assert sub.returncode == 0, err
    msgs = [json.loads(line) for line in out.splitlines()]
    assert len(msgs) == 15
    kinds = {m["kind"] for m in msgs}
    assert kinds == {"det", "hb"}
    for m in msgs:
        assert m["v"] == 1 and m["pipeline"] == "sub"
        assert m["topic"] == ("hb.sub" if m["kind"] == "hb" else "det.sub.activity")
    # the stdout sink printed the same detections, one JSON object per line
    assert daemon.returncode == 0, d_err
    printed = [json.loads(line) for line in d_out.splitlines()]
    assert printed and all(p["kind"] == "det" and p["label"] == "activity" for p in printed)
    assert [p["seq"] for p in printed] == list(range(len(printed)))
    det_seqs = {m["seq"] for m in msgs if m["kind"] == "det"}
    assert det_seqs <= {p["seq"] for p in printed}


def test_subscribe_cli_topic_filter_and_timeout(tmp_path):
    """Nothing at all within --timeout (no daemon there): exit 3 with one line saying so."""
    port = free_port()
    res = subprocess.run(
        edgesnn_cmd("subscribe", f"tcp://127.0.0.1:{port}", "--topic", "det.nothing",
                    "--timeout", "0.5"),
        capture_output=True, text=True, timeout=60)
    assert res.returncode == 3 and res.stdout == ""
    assert res.stderr.strip().splitlines() == [
        f"subscribe: nothing received from tcp://127.0.0.1:{port} on det.nothing within 0.5 s "
        "(is a daemon publishing there?)"]


def test_subscribe_cli_bad_endpoint_is_one_line_exit_2():
    for endpoint, words in [("localhost:5556", "did you mean tcp://localhost:5556?"),
                            ("tcp://127.0.0.1:notaport", "port 'notaport' is not a number"),
                            ("tcp://*:5556", "a subscriber connects to the daemon's address")]:
        res = subprocess.run(edgesnn_cmd("subscribe", endpoint, "--timeout", "0.2"),
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 2, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("subscribe: ") and words in lines[0]
