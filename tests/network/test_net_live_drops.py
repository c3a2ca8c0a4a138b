"""The af_packet driver counts what the kernel drops (real AF_PACKET sockets on lo; needs
CAP_NET_RAW): PACKET_STATISTICS summed across a reopen, nothing counted twice; a flood from
another process while batches() is consumed slowly comes out as frames plus counted drops, the
drops carried by the batches; status() keeps its counts after stop(). No wall-clock assertions:
timeouts only guard against hangs."""

from __future__ import annotations

import asyncio
import socket
import sys
import textwrap
import time
from typing import Any

import pytest
from edgesnn_drivers.network.live import (
    _SKF_AD_OFF,
    _SKF_AD_PKTTYPE,
    PACKET_OUTGOING,
    AfPacketDriver,
    _Capture,
    attach_filter,
    open_af_packet,
    packet_stats,
)
from test_net_live_arrival import UDP_HEADERS, _can_capture, _udp_pair

from edgesnn.components import BuildContext
from edgesnn.encoders.generic import built

pytestmark = pytest.mark.skipif(
    not _can_capture(),
    reason="needs Linux AF_PACKET and CAP_NET_RAW (root, or setcap cap_net_raw+ep on the "
    "interpreter) to open a raw socket on lo")


def _only_udp_to(port: int) -> tuple[tuple[int, int, int, int], ...]:
    """Classic BPF: incoming IPv4 UDP frames to `port` on lo (Ethernet header), nothing else,
    so the socket's statistics count our packets alone whatever else runs on lo."""
    return (
        (0x20, 0, 0, (_SKF_AD_OFF + _SKF_AD_PKTTYPE) & 0xFFFFFFFF),  # ld pkttype
        (0x15, 7, 0, PACKET_OUTGOING),  # outgoing copy: refuse
        (0x28, 0, 0, 12),  # ldh ethertype
        (0x15, 0, 5, 0x0800),
        (0x30, 0, 0, 23),  # ldb IP protocol
        (0x15, 0, 3, 17),
        (0x28, 0, 0, 36),  # ldh UDP destination port (IHL 5)
        (0x15, 0, 1, port),
        (0x06, 0, 0, 0xFFFFFFFF),
        (0x06, 0, 0, 0),
    )


def _socket_for(port: int) -> socket.socket:
    """A capture socket on lo that sees only our packets from now on, with the smallest receive
    buffer (a few frames), its statistics and queue emptied of what came before the filter."""
    s = open_af_packet("lo")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    attach_filter(s, _only_udp_to(port))
    s.setblocking(False)
    while True:
        try:
            s.recv(65536)
        except BlockingIOError:
            break
    packet_stats(s)  # reset: the counts start with the filter
    return s


def _seen(cap: _Capture, n: int) -> bool:
    """Read the statistics until the socket has seen `n` frames in all (loopback delivery may
    be deferred to a softirq thread on a busy machine); False if it has not after 5 s."""
    for _ in range(500):
        cap.poll_stats()
        if cap.counts.kernel_frames >= n:
            return True
        time.sleep(0.01)
    return False


def test_statistics_are_summed_across_a_reopen_and_none_counted_twice() -> None:
    rx, tx = _udp_pair()
    dst = rx.getsockname()
    cap = _Capture("lo", 65535, 10, 0.1)  # its socket handled here, no thread
    c = cap.counts
    try:
        cap.sock = _socket_for(dst[1])
        for _ in range(200):
            tx.sendto(b"a", dst)
        assert _seen(cap, 200)
        mid = (c.kernel_frames, c.kernel_drops)
        assert cap.poll_stats() and (c.kernel_frames, c.kernel_drops) == mid  # reset on read
        for _ in range(100):
            tx.sendto(b"b", dst)
        assert _seen(cap, 300)
        cap._close()  # statistics read a last time, unread frames counted
        first = (c.kernel_frames, c.kernel_drops, c.unread_at_close)
        assert first[0] == 300 and first[1] > 200  # a buffer of a few frames
        assert first[1] + first[2] == 300  # none read: each dropped or left unread

        cap.sock = _socket_for(dst[1])  # the reopen starts from zero in the kernel
        assert cap.poll_stats() and c.kernel_frames == 300
        for _ in range(150):
            tx.sendto(b"c", dst)
        assert _seen(cap, 450)
        cap._close()
        assert cap.sock is None and not cap.poll_stats()
    finally:
        if cap.sock is not None:
            cap.sock.close()
        rx.close()
        tx.close()
    assert c.kernel_frames == 450 and c.kernel_drops > first[1] + 100
    assert c.kernel_drops + c.unread_at_close == 450
    assert c.frames == c.dropped == c.skipped_outgoing == 0


FLOOD = textwrap.dedent("""
    import socket, sys
    port, n = int(sys.argv[1]), int(sys.argv[2])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(n):
        s.sendto(b"flood-00", ("127.0.0.1", port))
""")
N_FLOOD = 100_000


def test_a_flood_comes_out_as_frames_plus_counted_kernel_drops() -> None:
    """100 000 packets from another process while batches() is consumed slowly: the kernel
    drops frames; every one of ours that does not come out is counted in the batches'
    `dropped_before`, and the socket's statistics balance exactly with what was read."""

    async def go() -> tuple[dict[str, Any], dict[str, Any], int, int, int]:
        d = built(AfPacketDriver, {"interface": "lo"}, BuildContext(), "lo")
        await d.start()
        rx, tx = _udp_pair()
        port = rx.getsockname()[1]
        got = carried = 0
        gen = d.batches()
        try:
            flood = await asyncio.create_subprocess_exec(sys.executable, "-c", FLOOD, str(port),
                                                         str(N_FLOOD))

            async def trickle() -> None:  # after the flood: markers until all is handed over
                await flood.wait()
                while True:
                    tx.sendto(b"m", rx.getsockname())
                    await asyncio.sleep(0.02)

            async def consume() -> None:
                nonlocal got, carried
                marker_seen = False
                async for b in gen:
                    ev = b.events
                    ours = ev[(ev["proto"] == 17) & (ev["dport"] == port)]
                    got += int((ours["length"] == UDP_HEADERS + 8).sum())
                    marker_seen |= bool((ours["length"] == UDP_HEADERS + 1).any())
                    carried += b.dropped_before
                    # the flood's frames are all read or dropped once a later marker comes;
                    # its drops are in the batches once they carry every loss counted so far
                    if marker_seen and carried == d.counts.lost():
                        return
                    await asyncio.sleep(0.005)  # a slow pipeline
                raise AssertionError("batches() ended")

            sender = asyncio.create_task(trickle())
            try:
                await asyncio.wait_for(consume(), 30.0)
            finally:
                sender.cancel()
            assert await flood.wait() == 0
            before = d.status()
        finally:
            await d.stop()
            rx.close()
            tx.close()
        return before, d.status(), got, carried, d.packets

    before, after, got, carried, packets = asyncio.run(go())
    print(f"flood {N_FLOOD}: ours out {got}, kernel_drops {after['kernel_drops']}, "
          f"queue dropped {after['dropped']}, kernel_frames {after['kernel_frames']}, "
          f"frames read {after['frames']}, unread at close {after['unread_at_close']}")
    assert after["kernel_drops"] > 0 and got < N_FLOOD
    # nothing of ours lost without a count (others' frames on lo may be dropped too)
    assert N_FLOOD - got <= carried
    assert carried <= after["dropped"] + after["kernel_drops"] + after["unread_at_close"]
    # the socket's statistics balance with what was read, dropped and left at close
    assert after["kernel_frames"] == (after["frames"] + after["skipped_outgoing"]
                                      + after["kernel_drops"] + after["unread_at_close"])
    # status() keeps its counts after stop()
    assert after["packets"] == packets == before["packets"] > 0
    for k in ("frames", "kernel_frames", "kernel_drops", "dropped"):
        assert after[k] >= before[k]
