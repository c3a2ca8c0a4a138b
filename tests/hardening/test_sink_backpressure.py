"""A reader that stops reading never freezes the daemon: a stdout sink into a pipe nobody reads
and a file sink into a FIFO whose reader is idle keep the event loop (and HTTP) answering, and
the lines they cannot hold are dropped, counted (/status, /metrics) and make /health degraded.
A FIFO without a reader is refused at start instead of hanging it."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

from _daemon import Daemon, wait_for
from conftest import activity_pipeline, edgesnn_cmd, free_port, subprocess_env


class PipedDaemon(Daemon):
    """`edgesnn run PATH` whose stdout is a pipe this test never reads."""

    def __init__(self, path, http_port: int):  # noqa: ANN001
        self.path = path
        self.base = f"http://127.0.0.1:{http_port}"
        self.log = self.path.with_suffix(".log")
        self._err = open(self.log, "w", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edgesnn", "run", str(self.path)],
            stdout=subprocess.PIPE, stderr=self._err, env=subprocess_env())


def _quick(base: str, path: str) -> int:
    """Status code of a GET that must come back within 1 s (a frozen loop never answers)."""
    try:
        with urllib.request.urlopen(base + path, timeout=1.0) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_unread_stdout_pipe_and_idle_fifo_reader_never_freeze_the_daemon(tmp_path):
    fifo = tmp_path / "dets.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # open, but never reads
    http = free_port()
    extra = (f"\n[sinks.out]\ntype = \"stdout\"\ninputs = [\"r\"]\nheartbeats = true\n"
             f"backlog_bytes = 4096\n"
             f"\n[sinks.fifo]\ntype = \"file\"\ninputs = [\"r\"]\npath = \"{fifo}\"\n"
             f"backlog_bytes = 4096\n"
             f"\n[http]\nenabled = true\nport = {http}\nhealth_window_s = 60.0\n")
    path = tmp_path / "piped.toml"
    path.write_text(activity_pipeline("piped", free_port(), window_ms=2.0, speed=4.0,
                                      heartbeat_s=0.05, extra=extra), encoding="utf-8")
    d = PipedDaemon(path, http)
    try:
        d.wait_running()
        # both pipes fill (64 KiB each), then each sink's 4 KiB buffer, then lines are dropped
        counters = wait_for(lambda: (c := d.status()["counters"])["out"]["write_dropped"] > 0
                            and c["fifo"]["write_dropped"] > 0 and c, 60)
        seq0 = d.status()["last_seq"]
        for _ in range(10):
            assert _quick(d.base, "/health") == 503
            assert _quick(d.base, "/status") == 200
        for sink in ("out", "fifo"):
            assert counters[sink]["write_buffer_bytes"] <= 4096 + 1024, counters[sink]
        # detections keep flowing through the pipeline while its sinks drop
        wait_for(lambda: d.status()["last_seq"] > seq0, 30)
        code, health = d.health()
        assert code == 503 and health["status"] == "degraded"
        for sink in ("out", "fifo"):
            assert any(r.startswith(f"{sink}: write_dropped grew to ")
                       for r in health["reasons"]), health
        m = d.metrics()
        for sink in ("out", "fifo"):
            got = [v for (n, labels), v in m.items()
                   if n == "edgesnn_component_sink_write_dropped_total"
                   and ("component", sink) in labels]
            assert got and got[0] > 0, (sink, got)
        assert d.stop() == 0, d.stderr()  # stops although nobody reads (bounded drain wait)
    finally:
        d.stop()
        os.close(reader)
        if d.proc.stdout is not None:
            d.proc.stdout.close()


def test_file_sink_into_a_fifo_without_reader_is_refused_at_start(tmp_path):
    fifo = tmp_path / "nobody.fifo"
    os.mkfifo(fifo)
    path = tmp_path / "fifo.toml"
    path.write_text(activity_pipeline("fifo", free_port(), extra=(
        f"\n[sinks.fifo]\ntype = \"file\"\ninputs = [\"r\"]\npath = \"{fifo}\"\n")),
        encoding="utf-8")
    proc = subprocess.run(edgesnn_cmd("run", str(path)), capture_output=True, text=True,
                          timeout=120, env=subprocess_env())
    assert proc.returncode == 1, proc.stderr
    assert "component 'fifo'" in proc.stderr and "FIFO with no reader" in proc.stderr, \
        proc.stderr
