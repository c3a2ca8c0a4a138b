"""AF_PACKET live capture (permission message, real loopback capture) and the flow encoder."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from edgesnn_drivers.network import pcap
from edgesnn_drivers.network.live import AfPacketDriver, CapturePermissionError, open_af_packet

from edgesnn.components import BuildContext
from edgesnn.encoders.generic import built
from edgesnn.encoders.network import NetworkFlowEncoder, normalise
from edgesnn.events import EventBatch
from edgesnn.flows import FlowWindows

linux_only = pytest.mark.skipif(not hasattr(socket, "AF_PACKET"), reason="AF_PACKET is Linux")


@linux_only
def test_permission_message_without_cap_net_raw() -> None:
    code = (
        "import os\n"
        "from edgesnn_drivers.network.live import open_af_packet, CapturePermissionError\n"
        "if os.getuid() == 0:  # drop to nobody after the imports (files stay loaded)\n"
        "    os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
        "try:\n"
        "    open_af_packet('lo')\n"
        "except CapturePermissionError as e:\n"
        "    print('MESSAGE:', e)\n"
        "else:\n"
        "    print('OPENED')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       cwd="/")
    if "OPENED" in r.stdout:
        pytest.skip("this unprivileged user may open raw sockets here (capability granted)")
    assert "MESSAGE:" in r.stdout, r.stderr
    assert "CAP_NET_RAW" in r.stdout and "'lo'" in r.stdout and "setcap" in r.stdout


def _can_capture() -> bool:
    try:
        open_af_packet("lo").close()
        return True
    except (CapturePermissionError, OSError):
        return False


async def first_with(d: AfPacketDriver, tx: socket.socket, port: int, marker: bytes,
                     tries: int = 100) -> tuple[np.ndarray, int]:
    """The first captured UDP packet to `port` of the marker's length, sending the marker every
    50 ms meanwhile (batches come only when frames do; the caller's timeout fails the test when
    it never comes); and how many were sent."""
    sent = 0

    async def send() -> None:
        nonlocal sent
        while sent < tries:
            tx.sendto(marker, ("127.0.0.1", port))
            sent += 1
            await asyncio.sleep(0.05)

    sender = asyncio.create_task(send())
    try:
        async for b in d.batches():
            assert b.kind == "packets"
            hit = b.events[(b.events["dport"] == port) & (b.events["proto"] == 17)
                           & (b.events["length"] == 42 + len(marker))]
            if len(hit):
                return hit[0], sent
        raise AssertionError("batches() ended")
    finally:
        sender.cancel()


@linux_only
def test_live_capture_on_loopback() -> None:
    if not _can_capture():
        pytest.skip("no CAP_NET_RAW here: cannot open a raw socket on lo")
    marker = os.urandom(16)

    async def go() -> tuple[np.ndarray, int]:
        # batch_us: frames gathered 20 ms after the first one before they are handed over
        d = built(AfPacketDriver, {"interface": "lo", "batch_us": 20_000}, BuildContext(), "lo")
        await d.start()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            rx.bind(("127.0.0.1", 0))  # a port of ours: nobody else's socket gets the marker
            port = rx.getsockname()[1]
            try:
                return (await first_with(d, tx, port, marker))[0], port
            finally:
                await d.stop()

    r, port = asyncio.run(asyncio.wait_for(go(), 30))
    assert int(r["ip_version"]) == 4 and int(r["dport"]) == port
    assert bytes(r["dst"])[12:] == bytes([127, 0, 0, 1])
    assert int(r["length"]) == 14 + 20 + 8 + len(marker)


@linux_only
def test_driver_start_fails_clearly_on_missing_interface() -> None:
    d = built(AfPacketDriver, {"interface": "nosuchif0"}, BuildContext(), "x")
    with pytest.raises(OSError):
        asyncio.run(d.start())


@linux_only
def test_lost_capture_socket_is_reopened_with_backoff() -> None:
    """The socket dies under the capture thread: it is reopened and capture goes on."""
    if not _can_capture():
        pytest.skip("no CAP_NET_RAW here: cannot open a raw socket on lo")

    async def go() -> dict:
        d = built(AfPacketDriver, {"interface": "lo", "batch_us": 20_000,
                                   "reconnect_max_s": 0.1}, BuildContext(), "lo")
        await d.start()
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("127.0.0.1", 0))
        port = rx.getsockname()[1]
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            await first_with(d, tx, port, b"before")
            cap = d._cap
            assert cap is not None and cap.sock is not None
            cap.sock.close()  # the descriptor dies under the reading thread
            while cap.reopens < 1:
                await asyncio.sleep(0.02)
            await first_with(d, tx, port, b"after-reopen")
            return d.status()
        finally:
            tx.close()
            rx.close()
            await d.stop()

    st_ = asyncio.run(asyncio.wait_for(go(), 30))
    assert st_["reopens"] >= 1 and st_["last_error"]


@linux_only
def test_missing_interface_is_retried_with_backoff() -> None:
    """An interface that goes away is retried (not a crash); each failed open is counted."""
    import time

    if not _can_capture():  # without CAP_NET_RAW the open fails on permission, not on the name
        pytest.skip("no CAP_NET_RAW here: cannot open a raw socket")
    from edgesnn_drivers.network.live import _Capture

    cap = _Capture("nosuchif0", 65535, 10, 0.1)
    cap.start()
    try:
        time.sleep(0.5)
        assert cap.is_alive() and cap.error is None
    finally:
        cap.stop_flag.set()
        cap.join(2.0)
    assert cap.open_failures >= 3 and "No such device" in cap.last_error
    assert not cap.is_alive()


@linux_only
def test_a_finish_cuts_the_reopen_backoff_short() -> None:
    """finish() while the capture waits out a reopen delay (here 0.8 s and more) ends the
    thread at once."""
    import time

    if not _can_capture():
        pytest.skip("no CAP_NET_RAW here: cannot open a raw socket")
    from edgesnn_drivers.network.live import _Capture

    cap = _Capture("nosuchif0", 65535, 10, 30.0)
    cap.start()
    try:
        deadline = time.monotonic() + 30
        while cap.open_failures < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cap.open_failures >= 5
        t0 = time.monotonic()
        cap.request_finish()
        cap.join(5.0)
        assert not cap.is_alive() and time.monotonic() - t0 < 0.4
    finally:
        cap.request_stop()


# --- flow encoder ---------------------------------------------------------------------------


def ref_population(x: float, n: int, width: float, p_max: float, steps: int) -> np.ndarray:
    """Spike counts of n Gaussian fields driven by a constant x for `steps` regular steps."""
    centres = [i / (n - 1) for i in range(n)]
    sigma = width / (n - 1)
    counts = []
    for mu in centres:
        p = min(1.0, float(np.exp(-((x - mu) ** 2) / (2 * sigma * sigma))) * p_max)
        phase, c = 0.0, 0
        for _ in range(steps):
            phase += p
            if phase >= 1.0:
                phase -= 1.0
                c += 1
        counts.append(c)
    return np.array(counts)


def test_population_coding_of_a_constant_feature() -> None:
    ctx = BuildContext(dt_us=1000)
    enc = built(NetworkFlowEncoder, {"features": ["syn_ratio"], "neurons": 5, "width": 0.5,
                                     "max_rate_hz": 500.0}, ctx, "enc")
    rec = np.zeros(1, [("t", "<i8"), ("syn_ratio", "<f4")])
    rec["t"] = 0
    rec["syn_ratio"] = 0.75
    b = EventBatch("s", 0, 0, 200_000, rec, "records")
    r = enc.encode(b)
    assert r is not None and r.n_steps == 200
    counts = r.counts()
    want = ref_population(0.75, 5, 0.5, 0.5, 200)
    assert (counts == want).all()
    assert int(np.argmax(counts)) == 3  # the field centred on 0.75 fires most
    assert counts[3] > counts[2] > counts[1] and counts[3] > counts[4] > counts[0]


def test_encoder_from_packets_equals_encoder_from_flow_records(data_dir: Path) -> None:
    pk = pcap.read_packets(data_dir / "network" / "pcap" / "attack_synscan.pcap")
    ctx = BuildContext(dt_us=1000)
    params = {"window_us": 500_000, "hop_us": 100_000}
    e1 = built(NetworkFlowEncoder, params, ctx, "a")
    e2 = built(NetworkFlowEncoder, params, ctx, "b")
    t0 = int(pk["t"][0])
    t_last = int(pk["t"][-1])
    fw = FlowWindows(500_000, 100_000)
    c1 = np.zeros(e1.n_channels, np.int64)
    c2 = np.zeros(e2.n_channels, np.int64)
    edges = list(range(t0, t_last + 700_000, 100_000))
    for a, b in zip(edges[:-1], edges[1:]):
        sel = pk[(pk["t"] >= a) & (pk["t"] < b)]
        r1 = e1.encode(EventBatch("p", 0, a, b, sel, "packets"))
        rec = fw.add(sel, b)
        r2 = e2.encode(EventBatch("f", 0, a, b, rec, "records"))
        for r, c in ((r1, c1), (r2, c2)):
            if r is not None:
                c += r.counts()
    assert (c1 == c2).all() and c1.sum() > 0
    assert e1.n_channels == 6 * 8


def test_normalise_log_and_linear() -> None:
    v = np.array([[0.0, 0.5], [10_000.0, 2.0], [10.0, -1.0]])
    x = normalise(v, np.array([0.0, 0.0]), np.array([10_000.0, 1.0]), np.array([True, False]))
    assert x[0, 0] == 0 and x[1, 0] == pytest.approx(1.0) and 0.05 < x[2, 0] < 0.15
    assert list(x[:, 1]) == [0.5, 1.0, 0.0]


def test_flows_encoder_needs_ranges_for_unknown_features() -> None:
    with pytest.raises(ValueError, match="no range"):
        built(NetworkFlowEncoder, {"features": ["count"]}, BuildContext(), "e")
    e = built(NetworkFlowEncoder, {"features": ["count"], "ranges": {"count": [0, 511]}},
              BuildContext(), "e")
    with pytest.raises(ValueError, match="lack fields"):
        e.encode(EventBatch("s", 0, 0, 1000, np.zeros(1, [("t", "<i8"), ("x", "<f4")]),
                            "records"))
