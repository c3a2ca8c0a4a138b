"""MQTT sink: detections and heartbeats to a broker (Mosquitto, EMQX, cloud IoT hubs).

Topics (the prefix is `topic_prefix`, "edgesnn" by default):
    edgesnn/<device>/<pipeline>/det/<label>   one message per detection (the wire map)
    edgesnn/<device>/<pipeline>/hb            heartbeats, QoS 0, only while connected
    edgesnn/<device>/<pipeline>/status        retained {"state": "online" | "offline", ...};
                                              "offline" is also the last will, so the broker
                                              announces a daemon that died or lost its network
Payloads are the msgpack map of edgesnn.wire (as on ZeroMQ) or the same map as JSON.

Delivery: every detection goes into a bounded outbox (in memory, or journaled under the state
folder) and leaves it only when the broker confirmed it (QoS 1 PUBACK) or it was written to the
socket (QoS 0). While the broker is away the outbox fills; past `outbox` messages the oldest
is dropped and counted (`outbox_dropped` in the status). A QoS 1 message whose PUBACK was lost
with the connection is sent again after reconnecting: receivers dedupe by (`seq`, `t_emit_us`).
paho-mqtt's network thread reconnects with exponential backoff (`reconnect_min_s` doubling up
to `reconnect_max_s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import time
from collections import deque
from typing import Any

from edgesnn import wire
from edgesnn.components import Sink, install_hint, register
from edgesnn.config.schema import Field, Schema
from edgesnn.sinks._outbox import Outbox
from edgesnn.sinks.files import to_json

log = logging.getLogger(__name__)

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DEVICE = re.compile(r"^[A-Za-z0-9_.-]+$")
_TOPIC_BAD = re.compile(r"[/+#\x00]")


def default_device() -> str:
    """The host name, with anything a topic level cannot hold replaced by '_'."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname() or "")
    return name or "edgesnn"


def _check_env_name(value: str) -> str | None:
    if value == "" or _ENV_NAME.match(value):
        return None
    return (f"{value!r} is not an environment variable name (letters, digits, '_'); put the "
            "NAME of the variable here and the secret in the environment, never the secret")


def _check_device(value: str) -> str | None:
    if value == "" or _DEVICE.match(value):
        return None
    return f"{value!r} may hold only letters, digits, '_', '-' and '.' (it is a topic level)"


def _check_prefix(value: str) -> str | None:
    if not value or value.startswith("/") or value.endswith("/") or "//" in value:
        return f"{value!r}: expected topic levels like 'edgesnn' or 'site1/edgesnn'"
    if any(c in value for c in "+#\x00"):
        return f"{value!r} must not contain MQTT wildcards (+, #)"
    return None


def topic_level(text: str) -> str:
    """A label as one topic level: '/', '+', '#' become '_'."""
    return _TOPIC_BAD.sub("_", text) or "_"


@register
class MqttSink(Sink):
    """Publishes detections and heartbeats to an MQTT broker, keeping them through outages."""

    type_name = "mqtt"
    summary = ("MQTT broker: <prefix>/<device>/<pipeline>/det/<label>, .../hb, retained .../status "
               "with a last will; bounded outbox across outages (needs edgesnn[mqtt]).")
    schema = Schema(
        {
            "host": Field(str, default="127.0.0.1", doc="Broker host name or address."),
            "port": Field(int, default=1883, min=1, max=65535,
                          doc="Broker port (8883 is the usual one for TLS)."),
            "device": Field(str, default="", check=_check_device,
                            doc="Device name in the topics ('' = this host's name)."),
            "topic_prefix": Field(str, default="edgesnn", check=_check_prefix,
                                  doc="First topic level(s)."),
            "client_id": Field(str, default="",
                               doc="MQTT client id ('' = edgesnn-<device>-<pipeline>-<sink id>); "
                               "must be unique per broker."),
            "payload": Field(str, default="msgpack", choices=("msgpack", "json"),
                             doc="Payload encoding of detections, heartbeats and status."),
            "qos": Field(int, default=1, choices=(0, 1),
                         doc="Detection QoS: 1 = broker acknowledges each (none lost while "
                         "within the outbox), 0 = fire and forget."),
            "keepalive_s": Field(int, default=15, min=2, max=3600,
                                 doc="MQTT keep-alive; a silent device is declared offline "
                                 "(last will) after 1.5 times this."),
            "outbox": Field(int, default=10_000, min=1, max=10_000_000,
                            doc="Detections kept while the broker is unreachable; past this "
                            "the oldest is dropped and counted."),
            "outbox_disk": Field(bool, default=False,
                                 doc="Journal the outbox under the state folder ([checkpoint] "
                                 "dir) so undelivered detections survive a restart or crash."),
            "max_inflight": Field(int, default=100, min=1, max=65_000,
                                  doc="Messages sent but not yet acknowledged at once."),
            "reconnect_min_s": Field(float, default=0.5, min=0.01, max=60.0,
                                     doc="First reconnect delay; doubles after each failure."),
            "reconnect_max_s": Field(float, default=10.0, min=0.01, max=600.0,
                                     doc="Longest reconnect delay."),
            "drain_s": Field(float, default=2.0, min=0.0, max=600.0,
                             doc="On stop, how long to wait for the outbox to empty."),
            "tls": Field(bool, default=False, doc="Connect with TLS."),
            "tls_ca_file": Field(str, default="",
                                 doc="CA certificates (PEM) to verify the broker ('' = system)."),
            "tls_cert_file": Field(str, default="",
                                   doc="Client certificate (PEM) for brokers that require one."),
            "tls_key_file": Field(str, default="", doc="Key of tls_cert_file (PEM)."),
            "tls_insecure": Field(bool, default=False,
                                  doc="Skip the broker host name check (testing only)."),
            "username_env": Field(str, default="EDGESNN_MQTT_USERNAME", check=_check_env_name,
                                  doc="Environment variable holding the user name (unset or "
                                  "empty: no authentication)."),
            "password_env": Field(str, default="EDGESNN_MQTT_PASSWORD", check=_check_env_name,
                                  doc="Environment variable holding the password."),
        }
    )

    @classmethod
    def claims(cls, params: dict[str, Any], base_dir: str
               ) -> list[tuple[tuple[str, str, str], str, str]]:
        """An explicit `client_id` on its broker: a broker drops the older of two sessions with
        one id, so two pipelines sharing it would take turns being disconnected. The default
        id holds the pipeline's name, unique within a daemon."""
        cid = params.get("client_id")
        if not cid:
            return []
        broker = f"{str(params['host']).lower()}:{params['port']}"
        return [(("mqtt-client", broker, cid), "client_id",
                 f"MQTT client id {cid!r} on broker {broker}")]

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        p = params
        self.device = p["device"] or default_device()
        base = f"{p['topic_prefix']}/{self.device}/{topic_level(ctx.pipeline)}"
        self.det_base = f"{base}/det/"
        self.hb_topic = f"{base}/hb"
        self.status_topic = f"{base}/status"
        self.client_id = p["client_id"] or f"edgesnn-{self.device}-{ctx.pipeline}-{id}"
        self._pack = wire.pack if p["payload"] == "msgpack" else (
            lambda m: to_json(m).encode())
        self._topics: dict[str, str] = {}
        self.outbox: Outbox | None = None
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: paho message id -> (outbox id, qos) of messages handed to paho, not yet confirmed
        self._handed: dict[int, tuple[int, int]] = {}
        self.connected = False
        self._closing = False
        self.queued = 0
        self.delivered = 0
        self.heartbeats = 0
        self.heartbeats_skipped = 0
        self.connects = 0
        self.connect_failures = 0
        self.last_error = ""
        #: set by the daemon when a reload hands this sink to the next pipeline (see adopt)
        self.keep_open = False
        self._successor: MqttSink | None = None  # the sink that adopted this one
        self._retired: MqttSink | None = None  # adopted sink whose connection start() closes
        self._moved: Outbox | None = None  # adopted outbox whose messages start() takes over
        self._stopped = False

    # ------------------------------------------------------------------ config
    def _path(self, p: str) -> str:
        return p if os.path.isabs(p) else os.path.join(self.ctx.base_dir, p)

    def outbox_path(self) -> str | None:
        """Journal file of the on-disk outbox, or None when the outbox is in memory."""
        if not self.params["outbox_disk"] or not self.ctx.state_dir:
            return None
        d = self._path(self.ctx.state_dir)
        return os.path.join(d, "mqtt-outbox", f"{topic_level(self.ctx.pipeline)}-{self.id}.log")

    def check(self, inputs: list[Any]) -> list[str]:
        out = []
        try:
            import paho.mqtt.client  # noqa: F401
        except ImportError as e:
            out.append(f"the mqtt sink needs paho-mqtt: {install_hint(e)}")
        p = self.params
        for key in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
            if p[key] and not os.path.isfile(self._path(p[key])):
                out.append(f"{key}: no such file: {self._path(p[key])}")
        if (p["tls_cert_file"] == "") != (p["tls_key_file"] == ""):
            out.append("tls_cert_file and tls_key_file go together")
        if not p["tls"] and any(p[k] for k in ("tls_ca_file", "tls_cert_file", "tls_key_file")):
            out.append("TLS files are set but tls = false")
        if p["outbox_disk"] and not self.ctx.state_dir:
            out.append("outbox_disk = true needs a state folder: set [checkpoint] dir")
        if p["max_inflight"] > p["outbox"]:
            out.append(f"max_inflight ({p['max_inflight']}) must not exceed outbox "
                       f"({p['outbox']})")
        if p["reconnect_max_s"] < p["reconnect_min_s"]:
            out.append("reconnect_max_s must be at least reconnect_min_s")
        return out

    def _status_payload(self, state: str, reason: str) -> bytes:
        return self._pack({"v": wire.SCHEMA_VERSION, "kind": "status", "device": self.device,
                           "pipeline": self.ctx.pipeline, "state": state, "reason": reason,
                           "t_emit_us": wire.now_us()})

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        import paho.mqtt.client as mqtt

        p = self.params
        self._loop = asyncio.get_running_loop()
        if self.outbox is None:
            self.outbox = self._take_over(self._moved)
            self._moved = None
        if self._client is not None:  # adopted on a reload: same broker, same connection
            # (paho keeps its in-flight window while connected; _fill applies max_inflight)
            self._client.reconnect_delay_set(p["reconnect_min_s"], p["reconnect_max_s"])
            log.info("still publishing to mqtt://%s:%d as %s", p["host"], p["port"],
                     self.client_id)
            self._fill()
            return
        if self._retired is not None:  # adopted, but the broker settings changed
            await self._retired._close_client()
            self._retired = None
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                        clean_session=True, protocol=mqtt.MQTTv311)
        self._client = c
        c.max_inflight_messages_set(p["max_inflight"] + 4)  # + status/heartbeat headroom
        c.reconnect_delay_set(p["reconnect_min_s"], p["reconnect_max_s"])  # type: ignore[arg-type]
        if p["tls"]:
            c.tls_set(ca_certs=self._path(p["tls_ca_file"]) if p["tls_ca_file"] else None,
                      certfile=self._path(p["tls_cert_file"]) if p["tls_cert_file"] else None,
                      keyfile=self._path(p["tls_key_file"]) if p["tls_key_file"] else None)
            if p["tls_insecure"]:
                c.tls_insecure_set(True)
        user = os.environ.get(p["username_env"]) if p["username_env"] else None
        password = os.environ.get(p["password_env"]) if p["password_env"] else None
        if user:
            c.username_pw_set(user, password or None)
        elif password:
            log.warning("%s is set but %s is not: connecting without authentication",
                        p["password_env"], p["username_env"] or "username_env")
        c.will_set(self.status_topic, self._status_payload("offline", "lost"), qos=1,
                   retain=True)
        c.on_connect = self._cb_connect
        c.on_disconnect = self._cb_disconnect
        c.on_publish = self._cb_publish
        c.on_connect_fail = self._cb_connect_fail
        c.connect_async(p["host"], p["port"], keepalive=p["keepalive_s"])
        c.loop_start()  # paho's network thread: connects, reconnects with backoff, pings
        log.info("publishing to mqtt://%s:%d as %s (topics %s...)", p["host"], p["port"],
                 self.client_id, self.det_base)

    def _take_over(self, moved: Outbox | None) -> Outbox:
        """This sink's outbox, holding what an adopted outbox still had to deliver; messages
        the adopted connection has in flight stay in flight (never handed out twice)."""
        path, cap = self.outbox_path(), self.params["outbox"]
        if moved is None:
            return Outbox(cap, path)
        if moved.path == path and moved.capacity == cap:
            return moved  # the same outbox: ids, in-flight state and journal carry over
        in_flight = {i for i, _ in self._handed.values()}
        if moved.path is not None and moved.path == path:
            moved.close()  # the same journal with another bound: reopening replays it
            box = Outbox(cap, path)
            new_id = {i: i for i in box.entries}
        else:
            box = Outbox(cap, path)
            new_id = {}
            for i, e in list(moved.entries.items()):
                new_id[i] = box.next_id
                box.add(*e)
            moved.close()
            if moved.path is not None:  # now held by this outbox; never sent twice
                with contextlib.suppress(OSError):
                    os.remove(moved.path)
        box.dropped += moved.dropped
        still = {new_id[i] for i in in_flight if new_id.get(i) in box.entries}
        box.pending = deque(i for i in box.pending if i not in still)
        self._handed = {mid: (new_id[i], q) for mid, (i, q) in self._handed.items()
                        if new_id.get(i) in box.entries}
        return box

    def _conn_key(self) -> tuple[Any, ...]:
        """What the connection depends on: a reload that keeps all of it keeps the connection."""
        p = self.params
        files = tuple(self._path(p[k]) if p[k] else "" for k in
                      ("tls_ca_file", "tls_cert_file", "tls_key_file"))
        return (p["host"], p["port"], p["tls"], p["tls_insecure"], files, p["username_env"],
                p["password_env"], p["keepalive_s"], p["payload"], self.client_id,
                self.status_topic)

    def adopt(self, old: MqttSink) -> None:
        """Take over `old`'s outbox and, when the broker settings are unchanged, its live
        connection: a reload neither loses what waits for the broker nor flaps the status."""
        old.keep_open = False
        self._loop = old._loop  # the daemon's loop: paho's callbacks keep arriving there
        same_conn = old._client is not None and old._conn_key() == self._conn_key()
        if not same_conn and old.outbox is not None:  # its connection goes: resend in-flight
            old.outbox.requeue([i for i, _ in old._handed.values()])
            old._handed = {}
        self._moved, old.outbox = old.outbox, None
        if same_conn:
            old._successor = self  # its callbacks already queued on the loop come here
            c = self._client = old._client
            self._handed, self.connected = old._handed, old.connected
            c.on_connect, c.on_disconnect = self._cb_connect, self._cb_disconnect
            c.on_publish, c.on_connect_fail = self._cb_publish, self._cb_connect_fail
            old._client, old._handed = None, {}
        else:
            self._retired = old
        self.queued, self.delivered, self.connects = old.queued, old.delivered, old.connects
        self.heartbeats, self.connect_failures = old.heartbeats, old.connect_failures

    async def _close_client(self) -> None:
        """Announce a clean stop on the status topic and disconnect (no last will)."""
        c = self._client
        if c is None:
            return
        self._closing = True
        if self.connected:
            with contextlib.suppress(Exception):
                info = c.publish(self.status_topic, self._status_payload("offline", "stopped"),
                                 qos=1, retain=True)
                await asyncio.to_thread(info.wait_for_publish, 1.0)
        with contextlib.suppress(Exception):
            c.disconnect()  # a clean disconnect: the broker does not send the last will
        await asyncio.to_thread(c.loop_stop)
        self._client = None
        self.connected = False

    async def stop(self) -> None:
        if self.keep_open:  # handed to the next pipeline of a reload (see adopt)
            return
        if self._retired is not None:  # adopted but never started
            await self._retired._close_client()
            self._retired = None
        if self.outbox is None:  # adopted but never started: what it holds is counted below
            self.outbox, self._moved = self._moved, None
        box = self.outbox
        if box is None or self._stopped:
            return
        self._stopped = True
        self._closing = True
        deadline = time.monotonic() + self.params["drain_s"]
        while self._client is not None and len(box) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await self._close_client()
        left = len(box)
        if left and box.path is not None:
            log.info("%d undelivered detections kept in %s for the next start", left, box.path)
        elif left:
            box.dropped += left
            log.warning("%d undelivered detections dropped on stop (broker unreachable; "
                        "outbox_disk = true keeps them)", left)
        box.close()

    # ------------------------------------------------------------------ paho thread -> loop
    def _soon(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed while paho was stopping
            loop.call_soon_threadsafe(fn, *args)

    def _cb_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self._soon(self._on_connect, rc)

    def _cb_disconnect(self, client: Any, userdata: Any, flags: Any, rc: Any,
                       props: Any) -> None:
        self._soon(self._on_disconnect, rc)

    def _cb_publish(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        self._soon(self._on_publish, mid)

    def _cb_connect_fail(self, client: Any, userdata: Any) -> None:
        self._soon(self._on_connect_fail)

    # ------------------------------------------------------------------ on the loop
    def _on_connect(self, rc: Any) -> None:
        if self._successor is not None:  # queued before a reload handed the client on
            return self._successor._on_connect(rc)
        if getattr(rc, "is_failure", False):
            self.connect_failures += 1
            self.last_error = f"broker refused the connection: {rc}"
            log.warning("mqtt %s:%d: %s", self.params["host"], self.params["port"], rc)
            return
        self.connected = True
        self.connects += 1
        log.info("connected to mqtt://%s:%d%s", self.params["host"], self.params["port"],
                 f" (reconnect {self.connects - 1})" if self.connects > 1 else "")
        if self._client is not None:
            self._client.publish(self.status_topic,
                                 self._status_payload("online", "connected"), qos=1, retain=True)
        self._fill()

    def _on_disconnect(self, rc: Any) -> None:
        if self._successor is not None:  # queued before a reload handed the client on
            return self._successor._on_disconnect(rc)
        was = self.connected
        self.connected = False
        # paho resends unacknowledged QoS 1 messages after reconnecting; QoS 0 ones not yet
        # written are gone from paho, so they go back to the front of the outbox
        lost = [(mid, i) for mid, (i, qos) in self._handed.items() if qos == 0]
        for mid, _ in lost:
            del self._handed[mid]
        if lost and self.outbox is not None:
            self.outbox.requeue([i for _, i in lost])
        if was and not self._closing:
            self.last_error = f"connection lost: {rc}"
            log.warning("mqtt %s:%d: connection lost (%s); outbox holds %d, reconnecting",
                        self.params["host"], self.params["port"], rc,
                        len(self.outbox) if self.outbox is not None else 0)

    def _on_connect_fail(self) -> None:
        if self._successor is not None:  # queued before a reload handed the client on
            return self._successor._on_connect_fail()
        self.connect_failures += 1
        why = "unreachable or TLS handshake failed" if self.params["tls"] else "unreachable"
        if self.connect_failures == 1 or self.connect_failures % 50 == 0:
            log.warning("mqtt %s:%d %s (%d attempts so far); retrying with backoff",
                        self.params["host"], self.params["port"], why, self.connect_failures)
        self.last_error = f"broker {why}"

    def _on_publish(self, mid: int) -> None:
        if self._successor is not None:  # queued before a reload handed the client on
            return self._successor._on_publish(mid)
        h = self._handed.pop(mid, None)
        if h is None:  # status or heartbeat
            return
        box = self.outbox if self.outbox is not None else self._moved  # (adopted, not started)
        if box is not None:
            box.done(h[0])
        self.delivered += 1
        self._fill()

    def _fill(self) -> None:
        """Hand pending outbox messages to paho while connected, up to max_inflight."""
        box, c = self.outbox, self._client
        if box is None or c is None or not self.connected:
            return
        limit = self.params["max_inflight"]
        while len(self._handed) < limit:
            item = box.take()
            if item is None:
                return
            i, (topic, payload, qos) = item
            try:
                info = c.publish(topic, payload, qos=qos)
            except Exception as e:  # e.g. the socket closed under us; the message waits
                box.requeue([i])
                self.last_error = f"publish failed: {e}"
                return
            if qos == 0 and info.rc != 0:  # not connected after all: paho did not keep it
                box.requeue([i])
                return
            self._handed[info.mid] = (i, qos)

    # ------------------------------------------------------------------ Sink API
    async def send(self, message: dict[str, Any]) -> None:
        box = self.outbox
        if box is None:
            raise RuntimeError(f"sink {self.id!r} is not started")
        label = str(message.get("label", ""))
        topic = self._topics.get(label)
        if topic is None:
            topic = self._topics[label] = self.det_base + topic_level(label)
        box.add(topic, self._pack(message), self.params["qos"])
        self.queued += 1
        self._fill()

    async def heartbeat(self, message: dict[str, Any]) -> None:
        c = self._client
        if c is None or not self.connected:
            self.heartbeats_skipped += 1
            return
        c.publish(self.hb_topic, self._pack(message), qos=0)
        self.heartbeats += 1

    def status(self) -> dict[str, Any]:
        box = self.outbox
        return {
            "broker": f"{self.params['host']}:{self.params['port']}",
            "device": self.device,
            "connected": self.connected,
            "queued": self.queued,
            "delivered": self.delivered,
            "in_flight": len(self._handed),
            "outbox_depth": len(box) if box is not None else 0,
            "outbox_capacity": self.params["outbox"],
            "outbox_dropped": box.dropped if box is not None else 0,
            "outbox_recovered": box.recovered if box is not None else 0,
            "connects": self.connects,
            "connect_failures": self.connect_failures,
            "heartbeats": self.heartbeats,
            "heartbeats_skipped": self.heartbeats_skipped,
            "last_error": self.last_error,
        }
