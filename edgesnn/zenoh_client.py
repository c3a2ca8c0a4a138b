"""Receive detections from daemons that publish through Zenoh (the `zenoh` sink).

    from edgesnn.zenoh_client import ZenohSubscriber

    with ZenohSubscriber(["tcp/cam-07.lan:7447"], timeout_ms=5000) as sub:
        for msg in sub:                    # decoded maps of the wire schema, plus "topic"
            print(msg["topic"], msg["label"], msg["score"])
    print(sub.gaps)

The session is a peer that connects to the given endpoints (a daemon's `listen` endpoint or a
router), multicast scouting off. Gaps in seq are counted per device and pipeline; a daemon
restart (seq back to 0) is not a gap. `edgesnn subscribe --zenoh ENDPOINT` prints them as JSON
lines. Needs eclipse-zenoh (`pip install 'edgesnn[zenoh]'`).
"""

from __future__ import annotations

import json
import queue
import sys
from collections.abc import Callable, Iterator
from typing import Any

from edgesnn.mqtt_client import decode

GapCallback = Callable[[str, int, int], None]


class ZenohSubscriber:
    """Blocking subscriber to edgesnn key expressions: iterate for decoded messages."""

    def __init__(
        self,
        connect: list[str],
        keys: list[str] | None = None,
        heartbeats: bool = False,
        on_gap: GapCallback | None = None,
        timeout_ms: int | None = None,
        prefix: str = "edgesnn",
    ):
        import zenoh

        from edgesnn.sinks.zenoh_pub import check_locator

        for ep in connect:
            problem = check_locator(ep)
            if problem:
                raise ValueError(problem)
        self.keys = list(keys) if keys else [f"{prefix}/*/*/det/**"]
        if heartbeats:
            self.keys.append(f"{prefix}/*/*/hb")
        self.on_gap = on_gap
        self.timeout_s = timeout_ms / 1000 if timeout_ms is not None else None
        self.gaps = self.restarts = self.bad = self.received = 0
        self.last: dict[tuple[str, str], int] = {}
        self._q: queue.Queue[tuple[str, bytes]] = queue.Queue()
        c = zenoh.Config()
        c.insert_json5("mode", '"peer"')
        c.insert_json5("scouting/multicast/enabled", "false")
        c.insert_json5("connect/endpoints", json.dumps(connect))
        self._session = zenoh.open(c)
        try:
            self._subs = [self._session.declare_subscriber(
                k, lambda s: self._q.put((str(s.key_expr), s.payload.to_bytes())))
                for k in self.keys]
        except Exception as e:  # a malformed key expression
            self._session.close()
            raise ValueError(f"bad key expression in {self.keys}: "
                             f"{str(e).split(' at /')[0]}") from None

    def _see(self, key: str, msg: dict[str, Any]) -> None:
        if msg.get("kind") != "det":
            return
        parts = key.split("/")  # <prefix...>/<device>/<pipeline>/det/<label>
        src = (parts[-4] if len(parts) >= 4 else "", str(msg.get("pipeline", "")))
        seq = int(msg.get("seq", -1))
        prev = self.last.get(src)
        if prev is not None:
            if seq == 0 and prev > 0:
                self.restarts += 1
            elif seq > prev + 1:
                self.gaps += seq - prev - 1
                if self.on_gap is not None:
                    self.on_gap(f"{src[0]}/{src[1]}", prev + 1, seq)
        self.last[src] = seq
        self.received += 1

    def recv(self) -> dict[str, Any]:
        """Next message (with its "topic", the key expression); TimeoutError after timeout_ms
        without one."""
        while True:
            try:
                key, payload = self._q.get(timeout=self.timeout_s)
            except queue.Empty:
                raise TimeoutError("no message from the Zenoh network") from None
            msg = decode(payload)
            if msg is None:
                self.bad += 1
                continue
            self._see(key, msg)
            return {"topic": key, **msg}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            try:
                yield self.recv()
            except TimeoutError:
                return

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> ZenohSubscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_cli(connect: list[str], keys: list[str] | None, heartbeats: bool, count: int,
            timeout: float) -> int:
    """`edgesnn subscribe --zenoh ENDPOINT`: JSON lines on stdout, gaps and errors on stderr;
    exit codes as for ZeroMQ (0 done, 2 bad endpoint, 3 nothing within timeout)."""

    def say(text: str) -> None:
        print(f"subscribe: {text}", file=sys.stderr, flush=True)

    if count < 0 or timeout < 0:
        say("--count and --timeout must not be negative")
        return 2
    try:
        import zenoh  # noqa: F401
    except ImportError:
        say("--zenoh needs eclipse-zenoh: pip install 'edgesnn[zenoh]'")
        return 2

    def gap(src: str, expected: int, got: int) -> None:
        print(f"edgesnn: {src}: {got - expected} message(s) lost (seq {expected}..{got - 1})",
              file=sys.stderr, flush=True)

    try:
        sub = ZenohSubscriber(connect, keys, heartbeats, gap,
                              int(timeout * 1000) if timeout > 0 else None)
    except ValueError as e:
        say(str(e))
        return 2
    except Exception as e:  # zenoh.ZError: the session cannot open
        say(f"cannot open a Zenoh session to {', '.join(connect)}: {str(e).split(' at /')[0]}")
        return 2
    n = 0
    with sub:
        for msg in sub:
            sys.stdout.write(json.dumps(msg, separators=(",", ":"), default=str) + "\n")
            sys.stdout.flush()
            n += 1
            if count and n >= count:
                break
    if n == 0 and timeout > 0:
        say(f"nothing received from {', '.join(connect)} on {', '.join(sub.keys)} within "
            f"{timeout:g} s (is a daemon publishing there?)")
        return 3
    return 0
