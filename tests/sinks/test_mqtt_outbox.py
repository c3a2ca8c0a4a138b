"""The bounded outbox behind the MQTT sink: overflow counting and the on-disk journal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgesnn.components import BuildContext
from edgesnn.config.pipeline import loads
from edgesnn.sinks._outbox import Outbox


def test_overflow_drops_the_oldest_pending_and_counts_it() -> None:
    box = Outbox(3)
    for i in range(3):
        assert box.add(f"t/{i}", bytes([i]), 1)
    taken = box.take()
    assert taken is not None and taken[0] == 0  # handed to the transport: never dropped
    assert box.add("t/3", b"\x03", 1)  # drops message 1, the oldest still pending
    assert box.add("t/4", b"\x04", 1)  # drops message 2
    assert box.dropped == 2 and sorted(box.entries) == [0, 3, 4]
    box.take()
    box.take()
    assert not box.add("t/5", b"\x05", 1)  # all three in flight: the new one is dropped
    assert box.dropped == 3
    box.requeue([4, 3])  # a lost connection: they go out again first, in order
    assert [box.take()[0], box.take()[0]] == [3, 4]  # type: ignore[index]
    for i in (0, 3, 4):
        box.done(i)
    assert len(box) == 0 and box.take() is None


def test_journal_replays_undelivered_messages_after_a_crash(tmp_path: Path) -> None:
    path = str(tmp_path / "out" / "box.log")
    box = Outbox(100, path)
    for i in range(10):
        box.add(f"a/{i}", b"x" * i, 1)
    for i in range(4):
        box.done(i)
    # no close(): as after SIGKILL; a torn record at the end as after a power cut
    with open(path, "ab") as f:
        f.write(b"A\x00\x01")
    again = Outbox(100, path)
    assert again.recovered == 6
    assert [again.take() for _ in range(6)] == [(i, (f"a/{i}", b"x" * i, 1))
                                                 for i in range(4, 10)]
    assert again.add("a/10", b"y", 0) and 10 in again.entries  # ids go on, never reused
    for i in range(4, 11):
        again.done(i)
    assert Path(path).stat().st_size == 0  # empty outbox, empty journal
    again.close()
    assert Outbox(100, path).recovered == 0


def test_journal_keeps_the_newest_when_it_holds_more_than_the_bound(tmp_path: Path) -> None:
    path = str(tmp_path / "box.log")
    box = Outbox(50, path)
    for i in range(50):
        box.add("t", str(i).encode(), 1)
    box.close()
    smaller = Outbox(20, path)
    assert smaller.recovered == 20 and smaller.dropped == 30
    assert smaller.take() == (30, ("t", b"30", 1))


def test_journal_is_compacted_when_it_grows(tmp_path: Path) -> None:
    path = tmp_path / "box.log"
    box = Outbox(10, str(path))
    box.add("keep", b"k", 1)
    for i in range(30_000):  # one message stays; 30 000 come and go
        box.add("t", b"p" * 40, 1)
        box.done(i + 1)
    assert path.stat().st_size < 2 << 20
    box.close()
    assert Outbox(10, str(path)).recovered == 1


PIPE = """
[pipeline]
name = "p"
[checkpoint]
dir = "{state}"
[drivers.cam]
type = "synthetic_dvs"
[encoders.enc]
type = "dvs_pool"
inputs = ["cam"]
grid = [1, 1]
polarity = "merge"
[readouts.r]
type = "spike_count"
inputs = ["enc"]
labels = ["x"]
[sinks.mq]
type = "mqtt"
inputs = ["r"]
{extra}
"""


def problems(tmp_path: Path, extra: str, state: str = "") -> list[str]:
    from edgesnn.errors import ConfigError

    try:
        loads(PIPE.format(extra=extra, state=state), str(tmp_path / "p.toml"))
    except ConfigError as e:
        return [str(p) for p in e.problems]
    return []


def test_pipeline_validation_names_each_mqtt_mistake(tmp_path: Path) -> None:
    pytest.importorskip("paho.mqtt.client", reason="paho-mqtt not installed (edgesnn[mqtt])")
    assert problems(tmp_path, "") == []
    got = problems(tmp_path, 'password_env = "hunter2!"\noutbox_disk = true\n'
                             'tls_ca_file = "ca.pem"\nqos = 2\ndevice = "a/b"')
    text = "\n".join(got)
    assert "sinks.mq.password_env" in text and "never the secret" in text
    assert "sinks.mq.qos" in text and "sinks.mq.device" in text
    got = problems(tmp_path, 'outbox_disk = true\ntls_ca_file = "ca.pem"\nmax_inflight = 50\n'
                             'outbox = 10')
    text = "\n".join(got)
    assert "needs a state folder" in text and "no such file" in text
    assert "TLS files are set but tls = false" in text and "must not exceed outbox" in text
    assert problems(tmp_path, "outbox_disk = true", state=str(tmp_path / "st")) == []


def test_device_defaults_to_the_host_name_as_one_topic_level() -> None:
    import socket

    from edgesnn.sinks.mqtt import MqttSink, default_device

    problems_: list[Any] = []
    params = MqttSink.schema.validate({}, "sinks.mq", problems_)
    sink = MqttSink("mq", params, BuildContext(pipeline="demo"))
    assert sink.device == default_device()
    assert "/" not in sink.device and sink.device
    if "/" not in socket.gethostname() and socket.gethostname():
        assert sink.device == socket.gethostname()
    assert sink.det_base == f"edgesnn/{sink.device}/demo/det/"
    assert sink.client_id == f"edgesnn-{sink.device}-demo-mq"


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["add", "add", "take", "done", "requeue"]),
                              st.integers(0, 1_000)), max_size=120),
       capacity=st.integers(1, 12), compact_often=st.booleans())
def test_journal_always_replays_to_the_live_outbox(tmp_path_factory: Any, ops: list,
                                                   capacity: int, compact_often: bool) -> None:
    """Any sequence of adds, hand-offs, confirmations and requeues (with compaction rare or
    forced often): a fresh outbox read from the journal holds exactly the live undelivered messages,
    oldest first, and the live outbox never exceeds its bound."""
    import edgesnn.sinks._outbox as ob

    path = str(tmp_path_factory.mktemp("j") / "box.log")
    old = ob._COMPACT_MIN_BYTES
    if compact_often:
        ob._COMPACT_MIN_BYTES = 0
    try:
        box = Outbox(capacity, path)
        handed: list[int] = []
        for op, x in ops:
            if op == "add":
                box.add(f"t/{x % 3}", bytes([x % 256]) * (x % 7), x % 2)
            elif op == "take":
                got = box.take()
                if got is not None:
                    handed.append(got[0])
            elif op == "done" and handed:
                box.done(handed.pop(x % len(handed)))
            elif op == "requeue" and handed:
                back = handed[: x % len(handed) + 1]
                handed = handed[len(back):]
                box.requeue(back)
            assert len(box) <= capacity
        again = Outbox(capacity, path)
        assert list(again.entries.items()) == sorted(box.entries.items())
        assert again.next_id >= (max(box.entries) + 1 if box.entries else 0)
        box.close()
        again.close()  # reopening rewrote the journal: a third reader sees the same
        assert list(Outbox(capacity, path).entries.items()) == sorted(box.entries.items())
    finally:
        ob._COMPACT_MIN_BYTES = old
