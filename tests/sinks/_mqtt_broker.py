"""A real Mosquitto broker on a free loopback port, and a collecting MQTT subscriber."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

MOSQUITTO = "/usr/sbin/mosquitto"


def need_mosquitto() -> None:
    if not os.access(MOSQUITTO, os.X_OK):
        pytest.skip(f"{MOSQUITTO} not found (Debian: apt-get install mosquitto; .ci/run does)")
    pytest.importorskip("paho.mqtt.client", reason="paho-mqtt not installed (edgesnn[mqtt])")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Broker:
    """Mosquitto on 127.0.0.1:port, persistence in `folder` so a restart keeps sessions."""

    def __init__(self, folder: Path, port: int, extra: tuple[str, ...] = ()):
        self.folder, self.port = folder, port
        self.conf = folder / "mosquitto.conf"
        lines = [
            f"listener {port} 127.0.0.1",
            *extra,
            *([] if any(x.startswith("allow_anonymous") for x in extra)
              else ["allow_anonymous true"]),
            "persistence true",
            f"persistence_location {folder}/",
            "max_queued_messages 0",  # offline persistent subscribers lose nothing
            "log_type error",
            "log_type warning",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # keep the rights on the temporary folder
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = folder / "mosquitto.log"

    def start(self, timeout: float = 10.0) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=log,
                                         stderr=subprocess.STDOUT)
        end = time.monotonic() + timeout
        while not _port_open(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log.read_text()[-2000:]}")
            if time.monotonic() > end:
                raise RuntimeError("mosquitto did not listen in time")
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM: mosquitto saves its sessions and queued messages, then exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


class Collector:
    """A paho subscriber in its own thread; keeps (topic, payload, retain) of every message."""

    def __init__(self, port: int, topics: list[str], client_id: str = "",
                 persistent: bool = False, ca_file: str | None = None,
                 auth: tuple[str, str] | None = None):
        import paho.mqtt.client as mqtt

        self.topics = topics
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        c = self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                      clean_session=not persistent)
        c.reconnect_delay_set(0.05, 0.2)  # type: ignore[arg-type]
        if ca_file:
            c.tls_set(ca_certs=ca_file)
        if auth:
            c.username_pw_set(*auth)
        c.on_connect = self._on_connect
        c.on_subscribe = lambda *a: self.subscribed.set()
        c.on_message = self._on_message
        c.connect("127.0.0.1", port, keepalive=10)
        c.loop_start()
        if not self.subscribed.wait(5):
            raise RuntimeError("subscriber did not subscribe in time")

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if not getattr(flags, "session_present", False):
            client.subscribe([(t, 1) for t in self.topics])
        else:
            self.subscribed.set()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def snapshot(self) -> list[tuple[str, bytes, bool]]:
        with self.lock:
            return list(self.messages)

    def wait_for(self, pred: Any, timeout: float = 10.0) -> list[tuple[str, bytes, bool]]:
        end = time.monotonic() + timeout
        while True:
            snap = self.snapshot()
            if pred(snap) or time.monotonic() > end:
                return snap
            time.sleep(0.02)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
