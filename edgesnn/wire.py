"""The detection wire schema (ZeroMQ multipart [topic, msgpack payload]), version 1.

Detection, topic `det.<pipeline>.<label>`:
    v            int   schema version (1)
    kind         str   "det"
    pipeline     str   pipeline name
    seq          int   gap-free per pipeline, from 0; a gap means messages were lost
    t_sensor_us  int   sensor time of the evidence (µs, the sensor's clock)
    t_emit_us    int   host wall-clock time at publish (µs since the Unix epoch)
    label        str   what was detected
    score        float confidence in [0, 1] or a readout-specific score
    source       str   id of the readout that produced it
    extra        map   readout-specific details (counts, window, ...)

Heartbeat, topic `hb.<pipeline>`, every `heartbeat_s`:
    v, kind = "hb", pipeline, t_emit_us, uptime_s, last_seq (seq of the last detection or -1),
    state ("running" | "draining"), counters: {component id: {received, emitted, dropped,
    queue_depth, ...}}
"""

from __future__ import annotations

import time
from typing import Any

import msgpack

SCHEMA_VERSION = 1
DET_PREFIX = "det."
HB_PREFIX = "hb."


def now_us() -> int:
    """Host wall-clock time in µs since the Unix epoch."""
    return time.time_ns() // 1000


def det_topic(pipeline: str, label: str) -> str:
    return f"{DET_PREFIX}{pipeline}.{label}"


def hb_topic(pipeline: str) -> str:
    return f"{HB_PREFIX}{pipeline}"


def topic_of(message: dict[str, Any]) -> str:
    if message.get("kind") == "hb":
        return hb_topic(message["pipeline"])
    return det_topic(message["pipeline"], message["label"])


def pack(message: dict[str, Any]) -> bytes:
    return msgpack.packb(message, use_bin_type=True)


def unpack(payload: bytes) -> dict[str, Any]:
    msg = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    if not isinstance(msg, dict) or "v" not in msg:
        raise ValueError("not an edgesnn message (no schema version)")
    return msg


def frames(message: dict[str, Any]) -> list[bytes]:
    """Multipart frames [topic, payload] of a message."""
    return [topic_of(message).encode(), pack(message)]
