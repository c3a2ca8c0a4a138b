"""A real `edgesnn run` subprocess with its HTTP API on loopback, for the hardening tests."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from conftest import subprocess_env

from edgesnn.runtime.metrics import CONTENT_TYPE


class Daemon:
    """`edgesnn run PATH` (stderr to a file, so a chatty log never blocks it)."""

    def __init__(self, path: Path, http_port: int):
        self.path = Path(path)
        self.base = f"http://127.0.0.1:{http_port}"
        self.log = self.path.with_suffix(".log")
        self._err = open(self.log, "w", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edgesnn", "run", str(self.path)],
            stdout=subprocess.DEVNULL, stderr=self._err, env=subprocess_env())

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def get(self, path: str) -> tuple[int, bytes, str]:
        """(status, body, content type) of a GET."""
        try:
            with urllib.request.urlopen(self.base + path, timeout=30) as r:
                return r.status, r.read(), r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            return e.code, e.read(), e.headers.get("Content-Type", "")

    def json(self, path: str) -> tuple[int, Any]:
        code, body, _ = self.get(path)
        return code, json.loads(body)

    def health(self) -> tuple[int, dict[str, Any]]:
        return self.json("/health")

    def status(self) -> dict[str, Any]:
        return self.json("/status")[1]

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of /metrics, by (name, sorted labels)."""
        from prometheus_client.parser import text_string_to_metric_families

        code, body, ctype = self.get("/metrics")
        assert code == 200 and ctype == CONTENT_TYPE, (code, ctype)
        out = {}
        for fam in text_string_to_metric_families(body.decode()):
            for s in fam.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def wait_running(self, timeout_s: float = 240.0) -> None:
        """Until /health says running (a cold numba cache compiles for a while)."""
        until = time.monotonic() + timeout_s
        while time.monotonic() < until:
            assert self.proc.poll() is None, f"daemon exited {self.proc.returncode}:\n" \
                                             f"{self.stderr()}"
            try:
                if self.health()[1].get("state") == "running":
                    return
            except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
                pass
            time.sleep(0.05)
        raise AssertionError(f"daemon not running after {timeout_s} s:\n{self.stderr()}")

    def rss_kb(self) -> int:
        """Resident set size of the daemon now (kB, /proc)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def stop(self) -> int:
        """SIGTERM, wait; the exit code (killed after 30 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._err.close()
        return self.proc.returncode


def wait_for(pred: Any, timeout_s: float = 30.0, every_s: float = 0.05) -> Any:
    """Poll `pred()` until it returns something truthy; that value (AssertionError on time)."""
    until = time.monotonic() + timeout_s
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > until:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(every_s)
