"""`edgesnn relay --http`: a monitor reads the relay's message counts from /status and
/metrics, and they agree with what really went through."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import zmq
from conftest import edgesnn_cmd, free_port, subprocess_env

from edgesnn.commands.relay import http_address


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _wait_status(base: str, proc: subprocess.Popen) -> dict:
    for _ in range(300):
        try:
            return json.loads(_get(f"{base}/status")[1])
        except (urllib.error.URLError, ConnectionError):
            assert proc.poll() is None, proc.communicate()[1]
            time.sleep(0.1)
    pytest.fail("relay HTTP did not come up")


def test_relay_http_status_and_metrics_count_messages():
    up, down, http = free_port(), free_port(), free_port()
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind(f"tcp://127.0.0.1:{up}")
    relay = subprocess.Popen(edgesnn_cmd("relay", "--sub", f"tcp://127.0.0.1:{up}", "--pub",
                                         f"tcp://127.0.0.1:{down}", "--http", str(http)),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             env=subprocess_env())
    mon = ctx.socket(zmq.SUB)
    mon.setsockopt(zmq.LINGER, 0)
    try:
        base = f"http://127.0.0.1:{http}"
        st = _wait_status(base, relay)
        assert st["running"] is True and st["subs"] == [f"tcp://127.0.0.1:{up}"]
        mon.setsockopt(zmq.SUBSCRIBE, b"det")
        mon.connect(f"tcp://127.0.0.1:{down}")
        got = 0
        for _ in range(500):  # until the subscription has reached the publisher
            pub.send_multipart([b"det", b"probe"])
            if mon.poll(20):
                mon.recv_multipart()
                got += 1
                break
        assert got == 1, "no message through the relay"
        while mon.poll(200):  # probes still in flight
            mon.recv_multipart()
            got += 1
        for i in range(50):
            pub.send_multipart([b"det", str(i).encode()])
            pub.send_multipart([b"other", b"not subscribed"])  # filtered at the publisher
        while mon.poll(500):
            mon.recv_multipart()
            got += 1
        st = json.loads(_get(f"{base}/status")[1])
        # libzmq counts frames: two per message (topic, payload)
        assert st["messages_relayed"] == got, (st, got)
        assert st["back_msgs_out"] == 2 * got and st["front_msgs_in"] == 2 * got, (st, got)
        code, text = _get(f"{base}/metrics")
        assert code == 200
        assert f"edgesnn_relay_messages_total {got}\n" in text
        assert f'edgesnn_relay_frames_total{{socket="xpub",direction="out"}} {2 * got}' in text
        assert f'edgesnn_relay_frames_total{{socket="xsub",direction="in"}} {2 * got}' in text
        assert "edgesnn_relay_up 1" in text and "edgesnn_relay_publishers 1" in text
        assert "# TYPE edgesnn_relay_bytes_total counter" in text
        assert _get(f"{base}/other")[0] == 404
    finally:
        relay.send_signal(signal.SIGTERM)
        _, err = relay.communicate(timeout=30)
        mon.close()
        pub.close()
        ctx.term()
    assert relay.returncode == 0, err
    assert "relay counts on http://127.0.0.1" in err


def test_http_address_and_a_taken_port():
    assert http_address("9100") == ("127.0.0.1", 9100)
    assert http_address("0.0.0.0:9100") == ("0.0.0.0", 9100)
    assert http_address("[::1]:9100") == ("::1", 9100)
    assert http_address("host:") is None and http_address("70000") is None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        res = subprocess.run(edgesnn_cmd("relay", "--sub", "tcp://127.0.0.1:1", "--pub",
                                         f"tcp://127.0.0.1:{free_port()}", "--http",
                                         f"127.0.0.1:{taken}"),
                             capture_output=True, text=True, timeout=60, env=subprocess_env())
    assert res.returncode == 2 and "cannot serve HTTP" in res.stderr, res.stderr
