"""A bounded outbox of messages awaiting delivery, optionally journaled to disk.

Used by network sinks (MQTT) so that a broker outage loses nothing up to a bound: a message
stays here from `add` until the transport confirms it (`done`). Past `capacity` the oldest
message not yet handed to the transport is dropped and counted. Everything runs on the event
loop's thread (no locks).

The on-disk journal is an append-only file of records
    b"A" id:u64 qos:u8 topic_len:u16 payload_len:u32 topic payload   (added)
    b"D" id:u64                                                   (delivered or dropped)
flushed to the OS after every record, so a crashed or killed daemon resends on its next start
what it had not delivered. It is truncated whenever the outbox empties and rewritten when it
grows past four times its live content. A torn last record (power loss) is ignored.
"""

from __future__ import annotations

import logging
import os
import struct
from collections import deque
from typing import IO

log = logging.getLogger(__name__)

_ADD = struct.Struct("<cQBHI")
_DONE = struct.Struct("<cQ")
_COMPACT_MIN_BYTES = 1 << 20


class Outbox:
    """Messages (topic, payload, qos) by id, oldest first; `pending` are not yet handed off."""

    def __init__(self, capacity: int, path: str | None = None):
        if capacity < 1:
            raise ValueError("outbox capacity must be at least 1")
        self.capacity = capacity
        self.path = path
        self.entries: dict[int, tuple[str, bytes, int]] = {}
        self.pending: deque[int] = deque()
        self.next_id = 0
        self.dropped = 0
        self.recovered = 0
        self._live_bytes = 0
        self._file_bytes = 0
        self._f: IO[bytes] | None = None
        if path is not None:
            self._open(path)

    def __len__(self) -> int:
        return len(self.entries)

    # ------------------------------------------------------------------ queue
    def add(self, topic: str, payload: bytes, qos: int) -> bool:
        """Queue a message; False when it was dropped because everything queued is in flight."""
        if len(self.entries) >= self.capacity and not self._drop_oldest_pending():
            self.dropped += 1
            return False
        i = self.next_id
        self.next_id += 1
        self.entries[i] = (topic, payload, qos)
        self.pending.append(i)
        if self._f is not None:
            self._write_add(i, topic, payload, qos)
        return True

    def _drop_oldest_pending(self) -> bool:
        while self.pending:
            i = self.pending.popleft()
            if i in self.entries:
                self._forget(i)
                self.dropped += 1
                return True
        return False

    def take(self) -> tuple[int, tuple[str, bytes, int]] | None:
        """The oldest pending message, now counted as handed to the transport."""
        while self.pending:
            i = self.pending.popleft()
            e = self.entries.get(i)
            if e is not None:
                return i, e
        return None

    def requeue(self, ids: list[int]) -> None:
        """Hand these (in their order) out again before anything else: the transport lost them."""
        for i in sorted(ids, reverse=True):
            if i in self.entries:
                self.pending.appendleft(i)

    def done(self, i: int) -> None:
        """The transport confirmed delivery of message `i`."""
        if i in self.entries:
            self._forget(i)

    def _forget(self, i: int) -> None:
        topic, payload, _ = self.entries.pop(i)
        if self._f is None:
            return
        self._live_bytes -= _ADD.size + len(topic.encode()) + len(payload)
        if not self.entries:  # the common case while connected: the journal starts over
            self._f.seek(0)
            self._f.truncate()
            self._f.flush()
            self._file_bytes = self._live_bytes = 0
            return
        self._f.write(_DONE.pack(b"D", i))
        self._f.flush()
        self._file_bytes += _DONE.size
        if self._file_bytes > max(_COMPACT_MIN_BYTES, 4 * self._live_bytes):
            self._rewrite()

    # ------------------------------------------------------------------ journal
    def _write_add(self, i: int, topic: str, payload: bytes, qos: int) -> None:
        assert self._f is not None
        t = topic.encode()
        rec = _ADD.pack(b"A", i, qos, len(t), len(payload)) + t + payload
        self._f.write(rec)
        self._f.flush()
        self._file_bytes += len(rec)
        self._live_bytes += len(rec)

    def _open(self, path: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        if os.path.exists(path):
            with open(path, "rb") as f:
                data = f.read()
            self._replay(data)
        self._rewrite()
        self.recovered = len(self.entries)
        if self.recovered:
            log.info("outbox %s: %d undelivered messages from the last run", path,
                     self.recovered)

    def _replay(self, data: bytes) -> None:
        pos, n = 0, len(data)
        found: dict[int, tuple[str, bytes, int]] = {}
        while pos < n:
            tag = data[pos:pos + 1]
            if tag == b"A" and pos + _ADD.size <= n:
                _, i, qos, tl, pl = _ADD.unpack_from(data, pos)
                end = pos + _ADD.size + tl + pl
                if end > n:
                    break  # torn last record
                t0 = pos + _ADD.size
                try:
                    topic = data[t0:t0 + tl].decode()
                except UnicodeDecodeError:
                    break
                found[i] = (topic, data[t0 + tl:end], qos)
                pos = end
            elif tag == b"D" and pos + _DONE.size <= n:
                found.pop(_DONE.unpack_from(data, pos)[1], None)
                pos += _DONE.size
            else:
                if pos < n:
                    log.warning("outbox %s: unreadable data at byte %d of %d ignored",
                                self.path, pos, n)
                break
        # oldest first, the newest `capacity` kept
        ids = sorted(found)
        over = len(ids) - self.capacity
        if over > 0:
            self.dropped += over
            ids = ids[over:]
        for i in ids:
            self.entries[i] = found[i]
            self.pending.append(i)
        self.next_id = (ids[-1] + 1) if ids else 0

    def _rewrite(self) -> None:
        """Write the live entries to a fresh journal (atomically replacing the old one)."""
        assert self.path is not None
        if self._f is not None:
            self._f.close()
        tmp = self.path + ".tmp"
        self._file_bytes = self._live_bytes = 0
        with open(tmp, "wb") as f:
            self._f = f
            for i, (topic, payload, qos) in self.entries.items():
                self._write_add(i, topic, payload, qos)
        os.replace(tmp, self.path)
        self._f = open(self.path, "ab")  # noqa: SIM115 - held open for the sink's life

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
