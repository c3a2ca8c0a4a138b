"""Receive detections from daemons that publish to an MQTT broker (the `mqtt` sink).

    from edgesnn.mqtt_client import MqttSubscriber

    with MqttSubscriber("broker.lan", 1883, timeout_ms=5000) as sub:
        for msg in sub:                    # decoded maps of the wire schema, plus "topic"
            print(msg["topic"], msg["label"], msg["score"])
    print(sub.gaps, sub.duplicates)

QoS 1 duplicates (a message resent after its acknowledgement was lost with the connection) are
dropped: a resent message is byte for byte the original, so it is neither newer in `seq` nor in
`t_emit_us` than what was already seen from its device and pipeline; a restarted daemon starts
again from seq 0 with newer `t_emit_us`. Gaps in seq are counted per device and pipeline.
`edgesnn subscribe --mqtt HOST[:PORT]` prints them as JSON lines. Needs paho-mqtt
(`pip install 'edgesnn[mqtt]'`).
"""

from __future__ import annotations

import json
import os
import queue
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import msgpack

GapCallback = Callable[[str, int, int], None]
_HOST_PORT = re.compile(r"^(?:mqtts?://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^:/\s\[\]]+)"
                        r"(?::(?P<port>\d+))?/?$")


def parse_broker(text: str) -> tuple[str, int, bool]:
    """'host', 'host:port', 'mqtt://host:port' or 'mqtts://host' -> (host, port, tls)."""
    m = _HOST_PORT.match(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not a broker address: expected HOST[:PORT] or "
                         "mqtt://HOST[:PORT] (mqtts:// for TLS)")
    tls = text.strip().startswith("mqtts://")
    port = int(m.group("port")) if m.group("port") else (8883 if tls else 1883)
    if not 1 <= port <= 65535:
        raise ValueError(f"{text!r}: port {port} is not from 1 to 65535")
    return m.group("host").strip("[]"), port, tls


def decode(payload: bytes) -> dict[str, Any] | None:
    """A message map from a msgpack or JSON payload, or None when it is neither."""
    try:
        msg = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception:
        try:
            msg = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            return None
    return msg if isinstance(msg, dict) and "v" in msg else None


class MqttSubscriber:
    """Blocking subscriber to edgesnn topics at a broker: iterate for decoded messages."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        topics: list[str] | None = None,
        heartbeats: bool = False,
        on_gap: GapCallback | None = None,
        timeout_ms: int | None = None,
        tls: bool = False,
        ca_file: str | None = None,
        username_env: str = "EDGESNN_MQTT_USERNAME",
        password_env: str = "EDGESNN_MQTT_PASSWORD",
        prefix: str = "edgesnn",
    ):
        import paho.mqtt.client as mqtt

        self.topics = list(topics) if topics else [f"{prefix}/+/+/det/#"]
        if heartbeats:
            self.topics += [f"{prefix}/+/+/hb", f"{prefix}/+/+/status"]
        self.on_gap = on_gap
        self.timeout_s = timeout_ms / 1000 if timeout_ms is not None else None
        self.gaps = self.duplicates = self.bad = self.received = 0
        #: (device, pipeline) -> (seq, t_emit_us) of the newest detection seen
        self.newest: dict[tuple[str, str], tuple[int, int]] = {}
        self._q: queue.Queue[tuple[str, bytes] | BaseException] = queue.Queue()
        self.subscribed = threading.Event()
        c = self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        if tls:
            c.tls_set(ca_certs=ca_file)
        user = os.environ.get(username_env) if username_env else None
        if user:
            c.username_pw_set(user, (os.environ.get(password_env) if password_env else None)
                              or None)
        c.on_connect = self._on_connect
        c.on_subscribe = lambda *a: self.subscribed.set()
        c.on_message = lambda cl, ud, m: self._q.put((m.topic, bytes(m.payload)))
        c.reconnect_delay_set(1, 10)
        c.connect(host, port, keepalive=30)  # raises OSError when nobody listens there
        c.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if getattr(rc, "is_failure", False):
            self._q.put(ConnectionError(f"broker refused the connection: {rc}"))
            return
        client.subscribe([(t, 1) for t in self.topics])

    def _accept(self, topic: str, msg: dict[str, Any]) -> bool:
        """False for a duplicate; counts gaps."""
        if msg.get("kind") != "det":
            return True
        parts = topic.split("/")  # <prefix...>/<device>/<pipeline>/det/<label>
        key = (parts[-4] if len(parts) >= 4 else "", str(msg.get("pipeline", "")))
        seq, t = int(msg.get("seq", -1)), int(msg.get("t_emit_us", 0))
        prev = self.newest.get(key)
        if prev is not None and seq <= prev[0] and t <= prev[1]:
            self.duplicates += 1
            return False
        if prev is not None and seq > prev[0] + 1:
            self.gaps += seq - prev[0] - 1
            if self.on_gap is not None:
                self.on_gap(f"{key[0]}/{key[1]}", prev[0] + 1, seq)
        self.newest[key] = (seq, t)
        self.received += 1
        return True

    def recv(self) -> dict[str, Any]:
        """Next message (with its "topic"); TimeoutError when timeout_ms passes without one."""
        while True:
            try:
                item = self._q.get(timeout=self.timeout_s)
            except queue.Empty:
                raise TimeoutError("no message from the broker") from None
            if isinstance(item, BaseException):
                raise item
            topic, payload = item
            msg = decode(payload)
            if msg is None:
                self.bad += 1
                continue
            if self._accept(topic, msg):
                return {"topic": topic, **msg}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            try:
                yield self.recv()
            except TimeoutError:
                return

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> MqttSubscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_cli(broker: str, topics: list[str] | None, heartbeats: bool, count: int,
            timeout: float, ca_file: str | None = None) -> int:
    """`edgesnn subscribe --mqtt BROKER`: JSON lines on stdout, gaps and errors on stderr;
    exit codes as for ZeroMQ (0 done, 2 bad address or no broker, 3 nothing within timeout)."""
    import sys

    def say(text: str) -> None:
        print(f"subscribe: {text}", file=sys.stderr, flush=True)

    if count < 0 or timeout < 0:
        say("--count and --timeout must not be negative")
        return 2
    try:
        host, port, tls = parse_broker(broker)
    except ValueError as e:
        say(str(e))
        return 2
    try:
        import paho.mqtt.client  # noqa: F401
    except ImportError:
        say("--mqtt needs paho-mqtt: pip install 'edgesnn[mqtt]'")
        return 2

    def gap(key: str, expected: int, got: int) -> None:
        print(f"edgesnn: {key}: {got - expected} message(s) lost (seq {expected}..{got - 1})",
              file=sys.stderr, flush=True)

    try:
        sub = MqttSubscriber(host, port, topics, heartbeats, gap,
                             int(timeout * 1000) if timeout > 0 else None, tls=tls or bool(ca_file),
                             ca_file=ca_file)
    except (OSError, ValueError) as e:
        say(f"cannot connect to the broker {host}:{port}: {e}")
        return 2
    n = 0
    with sub:
        if sub.subscribed.wait(10):
            say(f"listening on mqtt{'s' if tls else ''}://{host}:{port} for "
                + ", ".join(sub.topics))
        try:
            for msg in sub:
                sys.stdout.write(json.dumps(msg, separators=(",", ":"), default=str) + "\n")
                sys.stdout.flush()
                n += 1
                if count and n >= count:
                    break
        except ConnectionError as e:
            say(str(e))
            return 2
    if n == 0 and timeout > 0:
        say(f"nothing received from {host}:{port} on {', '.join(sub.topics)} within "
            f"{timeout:g} s (is a daemon publishing there?)")
        return 3
    return 0
