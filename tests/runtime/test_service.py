"""Running as a service: sd_notify over a real datagram socket, a service user without a
writable HOME, timestamped and JSON logs, and the systemd unit."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from conftest import REPO, activity_pipeline, edgesnn_cmd, free_port, subprocess_env

from edgesnn.runtime.notify import Notifier


def _pipeline(tmp_path: Path, **kw) -> Path:
    path = tmp_path / "svc.toml"
    path.write_text(activity_pipeline("svc", free_port(), **kw))
    return path


class NotifySocket:
    """A bound AF_UNIX datagram socket standing in for systemd's notification socket."""

    def __init__(self, abstract: bool = False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"edgesnn-test-{os.getpid()}-{time.monotonic_ns()}"
            self.sock.bind("\0" + name)
            self.env_value = "@" + name
        else:
            self.dir = tempfile.mkdtemp(prefix="sdn-")  # short: socket paths are <= 107 bytes
            path = os.path.join(self.dir, "notify")
            self.sock.bind(path)
            self.env_value = path
        self.messages: list[str] = []

    def wait_for(self, field: str, timeout: float = 60.0) -> list[str]:
        """Read datagrams until one holds the line `field`; returns the new messages."""
        deadline = time.monotonic() + timeout
        new = []
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                msg = self.sock.recv(4096).decode()
            except TimeoutError:
                break
            self.messages.append(msg)
            new.append(msg)
            if field in msg.split("\n"):
                return new
        raise AssertionError(f"no {field!r} within {timeout} s; got {self.messages}")

    def close(self) -> None:
        self.sock.close()
        if hasattr(self, "dir"):
            shutil.rmtree(self.dir, ignore_errors=True)


def test_daemon_speaks_sd_notify(tmp_path):
    path = _pipeline(tmp_path, speed=1.0, window_ms=50.0)
    ns = NotifySocket()
    env = subprocess_env() | {"NOTIFY_SOCKET": ns.env_value, "WATCHDOG_USEC": "300000"}
    proc = subprocess.Popen(edgesnn_cmd("run", str(path)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = ns.wait_for("READY=1")
        assert any(line.startswith("STATUS=") for m in first for line in m.split("\n"))
        # watchdog pings at half of WATCHDOG_USEC, with the running status
        ns.wait_for("WATCHDOG=1")
        ns.wait_for("WATCHDOG=1")
        running = [m for m in ns.messages if "STATUS=running 'svc'" in m]
        assert running and "detection" in running[-1]
        proc.send_signal(signal.SIGHUP)  # valid file: drain, reload, ready again
        reload_msgs = ns.wait_for("READY=1")
        assert any("RELOADING=1" in m.split("\n") for m in reload_msgs)
        reloading = next(m for m in reload_msgs if "RELOADING=1" in m)
        assert any(line.startswith("MONOTONIC_USEC=") for line in reloading.split("\n"))
        proc.send_signal(signal.SIGTERM)
        stop_msgs = ns.wait_for("STOPPING=1")
        assert any("STATUS=draining" in m for m in stop_msgs)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        ns.close()


def test_sd_notify_abstract_socket(tmp_path):
    path = _pipeline(tmp_path, speed='"max"', duration_s=0.5)
    ns = NotifySocket(abstract=True)
    env = subprocess_env() | {"NOTIFY_SOCKET": ns.env_value}
    try:
        proc = subprocess.run(edgesnn_cmd("run", str(path)), capture_output=True, text=True,
                              env=env, timeout=60)
        assert proc.returncode == 0, proc.stderr
        ns.wait_for("READY=1", timeout=5)
    finally:
        ns.close()


def test_notifier_outside_systemd_is_a_no_op():
    n = Notifier({})
    assert not n.enabled and n.watchdog_s is None
    assert n.ready() is False and n.watchdog() is False
    bad = Notifier({"NOTIFY_SOCKET": "relative/path", "WATCHDOG_USEC": "0"})
    assert not bad.enabled and bad.watchdog_s is None
    # the watchdog belongs to another process: not ours to ping
    other = Notifier({"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_s is None
    mine = Notifier({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1000000",
                     "WATCHDOG_PID": str(os.getpid())})
    assert mine.enabled and mine.watchdog_s == 1.0


# --- a service user without a writable HOME -----------------------------------------------


def _as_nobody() -> list[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root to run a command as the unprivileged user 'nobody'")
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    return [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def _nobody_env() -> dict[str, str]:
    env = subprocess_env()
    env.pop("NUMBA_CACHE_DIR", None)
    env.pop("XDG_CACHE_HOME", None)
    env["HOME"] = "/nonexistent"
    return env


def test_service_user_without_writable_home():
    """Root-owned checkout, user 'nobody', HOME=/nonexistent: numba cannot cache beside the
    package nor in ~/.cache; the CLI falls back to a private folder with one warning."""
    pre = _as_nobody()
    tmp_path = Path(tempfile.mkdtemp(prefix="edgesnn-nobody-"))  # pytest's is root-only
    try:
        os.chmod(tmp_path, 0o777)
        _nobody_runs(pre, tmp_path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _nobody_runs(pre: list[str], tmp_path: Path) -> None:
    env = _nobody_env()
    res = subprocess.run(pre + edgesnn_cmd("validate", "demo"), capture_output=True, text=True,
                         env=env, timeout=120, cwd=tmp_path)
    if "Permission denied" in res.stderr and "edgesnn" not in res.stdout:
        pytest.skip(f"the checkout is not readable by 'nobody': {res.stderr.strip()[:200]}")
    assert res.returncode == 0, res.stderr
    assert "cannot cache" not in res.stderr and "Traceback" not in res.stderr
    warnings = [ln for ln in res.stderr.splitlines() if "caching compiled kernels in" in ln]
    assert len(warnings) == 1, res.stderr
    path = _pipeline(tmp_path, speed='"max"', duration_s=0.3)
    os.chmod(path, 0o644)
    run = subprocess.run(pre + edgesnn_cmd("run", str(path)), capture_output=True, text=True,
                         env=env, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    # a command that compiles (and caches) a kernel: recording the synthetic camera to EVT 3.0
    out = tmp_path / "x.raw"
    rec = subprocess.run(pre + edgesnn_cmd("record", "synthetic_dvs", "-p", "speed='max'",
                                           "-p", "duration_s=0.2", "-o", str(out)),
                         capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert rec.returncode == 0, rec.stderr
    assert out.stat().st_size > 0


def test_unwritable_numba_cache_dir_falls_back_with_one_warning(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")  # a folder cannot be created inside a file, not even by root
    env = subprocess_env() | {"NUMBA_CACHE_DIR": str(blocker / "cache"),
                              "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    res = subprocess.run(edgesnn_cmd("validate", "demo"), capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if "WARNING" in ln]
    assert len(lines) == 1 and "is not writable" in lines[0], res.stderr
    assert str(tmp_path / "xdg" / "edgesnn") in lines[0]


# --- logs ------------------------------------------------------------------------------------


def test_logs_are_timestamped_and_json_on_request(tmp_path):
    path = _pipeline(tmp_path, speed='"max"', duration_s=0.3)
    text = subprocess.run(edgesnn_cmd("run", str(path)), capture_output=True, text=True,
                          env=subprocess_env(), timeout=60)
    assert text.returncode == 0, text.stderr
    info = [ln for ln in text.stderr.splitlines() if " INFO " in ln]
    assert info and all(ln[:4].isdigit() and ln[10] == "T" and ln[23] == "Z" for ln in info)
    js = subprocess.run(edgesnn_cmd("--log-format", "json", "-v", "run", str(path)),
                        capture_output=True, text=True, env=subprocess_env(), timeout=60)
    assert js.returncode == 0, js.stderr
    rows = [json.loads(ln) for ln in js.stderr.splitlines()]
    assert rows and all(set(r) >= {"ts", "level", "logger", "msg"} for r in rows)
    assert {"DEBUG", "INFO"} <= {r["level"] for r in rows}  # -v gives DEBUG
    quiet = subprocess.run(edgesnn_cmd("-q", "run", str(path)), capture_output=True, text=True,
                           env=subprocess_env(), timeout=60)
    assert quiet.returncode == 0 and " INFO " not in quiet.stderr, quiet.stderr
    # the same options after the subcommand (as a unit's ExecStart line may have them)
    after = subprocess.run(edgesnn_cmd("run", str(path), "--log-format", "json", "-q"),
                           capture_output=True, text=True, env=subprocess_env(), timeout=60)
    assert after.returncode == 0, after.stderr
    assert all(json.loads(ln)["level"] in ("WARNING", "ERROR")
               for ln in after.stderr.splitlines())


# --- the systemd unit ------------------------------------------------------------------------

REQUIRED_LINES = ["Type=notify", "WatchdogSec=30", "StateDirectory=edgesnn",
                  "CacheDirectory=edgesnn", "Environment=NUMBA_CACHE_DIR=%C/edgesnn/numba",
                  "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure"]


def test_service_install_prints_a_notify_unit(tmp_path):
    res = subprocess.run(edgesnn_cmd("service", "install", "demo"), capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    for want in REQUIRED_LINES + ["DynamicUser=yes"]:
        assert want in lines, want
    start = next(ln for ln in lines if ln.startswith("ExecStart="))
    assert start.endswith(" run demo") and start.split("=", 1)[1].startswith("/")
    # a file pipeline is named by its absolute path; a named user replaces DynamicUser
    path = _pipeline(tmp_path)
    out = tmp_path / "edgesnn-svc.service"
    res = subprocess.run(edgesnn_cmd("service", "install", str(path), "--user", "edge",
                                     "--output", str(out)),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    unit = out.read_text().splitlines()
    assert "User=edge" in unit and "DynamicUser=yes" not in unit
    assert any(ln.startswith("ExecStart=") and ln.endswith(f" run {path}") for ln in unit)
    analyze = shutil.which("systemd-analyze")
    if analyze:  # systemd's own parser accepts the unit
        chk = subprocess.run([analyze, "verify", str(out)], capture_output=True, text=True,
                             timeout=60)
        assert chk.returncode == 0, chk.stdout + chk.stderr


def test_service_install_refuses_an_invalid_pipeline(tmp_path):
    bad = REPO / "tests" / "runtime" / "broken" / "unknown_keys.toml"
    res = subprocess.run(edgesnn_cmd("service", "install", str(bad)), capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 2 and res.stdout == ""
    assert 'did you mean "width"' in res.stderr


def test_shipped_template_unit_is_current():
    from edgesnn.commands.service import template_text

    shipped = (REPO / "tools" / "edgesnn@.service").read_text()
    assert shipped == template_text(), "regenerate tools/edgesnn@.service (see its header)"
    for want in REQUIRED_LINES + ["DynamicUser=yes", "ExecStart=/usr/local/bin/edgesnn run %i"]:
        assert want in shipped.splitlines(), want


# --- warm-up and the cold-start notice ------------------------------------------------------


def test_warmup_records_kernels_so_the_next_start_is_known_warm(tmp_path):
    path = _pipeline(tmp_path, speed=1.0, duration_s=0.3)
    env = subprocess_env() | {"NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    first = subprocess.run(edgesnn_cmd("run", str(path), "--set", "drivers.cam.speed=max"),
                           capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "compiling" not in first.stderr  # no SNN: nothing long to compile
    warm = subprocess.run(edgesnn_cmd("warmup", str(path)), capture_output=True, text=True,
                          env=env, timeout=120)
    assert warm.returncode == 0, warm.stderr
    lines = [ln for ln in warm.stderr.splitlines() if ln.startswith("warmup: [")]
    assert [ln.split("]")[0] for ln in lines] == ["warmup: [1/3", "warmup: [2/3", "warmup: [3/3"]
    assert "driver 'cam' (synthetic_dvs)" in lines[0] and "3 batches" in lines[0]
    assert "kernels are in the cache" in warm.stderr
    again = subprocess.run(edgesnn_cmd("run", str(path), "--set", "drivers.cam.speed=max"),
                           capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 0 and "compiling" not in again.stderr, again.stderr


def test_cold_start_is_announced_at_once(tmp_path):
    """A fresh kernel cache: the first log line says it compiles, before anything is built;
    a stop during that compile ends the daemon promptly and cleanly."""
    env = subprocess_env() | {"NUMBA_CACHE_DIR": str(tmp_path / "fresh")}
    proc = subprocess.Popen(edgesnn_cmd("run", "demo", "--set",
                                        "sinks.zmq.endpoint=tcp://127.0.0.1:0"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = proc.stderr.readline()
        assert "WARNING edgesnn: compiling kernels (first start of pipeline 'demo'" in first
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_warmup_demo_compiles_the_network_kernels():
    """The demo's SNN kernels (loaded from the shared cache when the suite compiled them)."""
    res = subprocess.run(edgesnn_cmd("warmup", "demo"), capture_output=True, text=True,
                         env=subprocess_env(), timeout=600)
    assert res.returncode == 0, res.stderr
    net = next(ln for ln in res.stderr.splitlines() if "network 'motion' (snn)" in ln)
    n = int(net.split(" s, ")[1].split(" kernel")[0])
    assert n >= 2  # the single-step and the batch kernel at least
    assert "[4/4] readout 'direction'" in res.stderr


def test_warmup_of_an_invalid_pipeline_exits_2():
    bad = REPO / "tests" / "runtime" / "broken" / "unknown_keys.toml"
    res = subprocess.run(edgesnn_cmd("warmup", str(bad)), capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2 and 'did you mean "width"' in res.stderr
