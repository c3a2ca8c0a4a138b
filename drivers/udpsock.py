"""The UDP socket of the live UDP drivers (`dvs_udp`, `pcm_udp`, `velodyne_udp`)."""

from __future__ import annotations

import contextlib
import socket
from typing import Any


def bind_udp(addr: Any, family: int, rcvbuf_bytes: int = 0,
             reuse: bool = False) -> tuple[socket.socket, int]:  # fmt: skip
    """A non-blocking UDP socket bound to `addr`, with a receive buffer of `rcvbuf_bytes`
    asked for (bursts wait there; 0 keeps the system's) and SO_REUSEADDR when `reuse`; returns
    it and the buffer size the kernel granted (0 when it cannot say). The socket is closed if
    binding fails."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if reuse:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setblocking(False)
        if rcvbuf_bytes:
            with contextlib.suppress(OSError):  # the kernel may refuse or cap it
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf_bytes)
        sock.bind(addr)
    except BaseException:
        sock.close()
        raise
    granted = 0
    with contextlib.suppress(OSError):
        granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    return sock, granted


#: datagrams read per wake-up of the event loop at most (the rest wait for the next one)
DRAIN_MAX = 512
#: the largest UDP payload
MAX_DATAGRAM = 65536


def recv_waiting(sock: socket.socket, limit: int = DRAIN_MAX) -> tuple[list[bytes], bool]:
    """The datagrams waiting on non-blocking `sock` (at most `limit`), and whether the read
    ended on a socket error (the caller counts it)."""
    got: list[bytes] = []
    for _ in range(limit):
        try:
            got.append(sock.recv(MAX_DATAGRAM))
        except (BlockingIOError, InterruptedError):
            return got, False
        except OSError:
            return got, True
    return got, False
