"""The UDP socket of the live UDP drivers (`dvs_udp`, `pcm_udp`, `velodyne_udp`)."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import socket
import sys
from typing import Any

import numpy as np


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


def _recvmmsg() -> Any:
    """libc's recvmmsg(2) through ctypes (Linux, little-endian 64-bit), or None."""
    if not sys.platform.startswith("linux") or sys.byteorder != "little" \
            or ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).recvmmsg
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
    fn.restype = ctypes.c_int
    return fn


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    # glibc's layout; musl's int msg_iovlen / msg_controllen with a zero pad after them read
    # the same on little-endian 64-bit for the small values written here
    _fields_ = [("msg_name", ctypes.c_void_p), ("msg_namelen", ctypes.c_uint32),
                ("msg_iov", ctypes.POINTER(_Iovec)), ("msg_iovlen", ctypes.c_size_t),
                ("msg_control", ctypes.c_void_p), ("msg_controllen", ctypes.c_size_t),
                ("msg_flags", ctypes.c_int)]  # fmt: skip


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


_MSG_DONTWAIT = 0x40
_RETRY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)


class DatagramReader:
    """Reads the datagrams waiting on a non-blocking UDP socket into one reusable buffer, a
    slot of MAX_DATAGRAM bytes each: up to `batch` of them in one recvmmsg(2) call on Linux (one
    system call and one release of the GIL, where `recv` costs both per datagram), one
    `recv_into` each elsewhere. After `read`, datagram k is buf[k * slot : k * slot + sizes[k]].
    """

    slot = MAX_DATAGRAM

    def __init__(self, sock: socket.socket, batch: int = 64, use_recvmmsg: bool = True):
        self.sock = sock
        self.batch = int(batch)
        self.buf = np.empty(self.batch * self.slot, np.uint8)  # pages are touched as used
        self.sizes = np.zeros(self.batch, np.int64)
        #: the buffer as little-endian uint32 words (slots start on a word)
        self.words = self.buf.view("<u4")
        self.starts = np.arange(self.batch, dtype=np.int64) * self.slot
        self._fn = _recvmmsg() if use_recvmmsg else None
        self._views = [memoryview(self.buf)[k * self.slot : (k + 1) * self.slot]
                       for k in range(self.batch)]  # fmt: skip
        if self._fn is not None:
            self._iov = (_Iovec * self.batch)()
            self._msgs = (_Mmsghdr * self.batch)()
            base = self.buf.ctypes.data
            for k in range(self.batch):
                self._iov[k].iov_base = base + k * self.slot
                self._iov[k].iov_len = self.slot
                self._msgs[k].msg_hdr.msg_iov = ctypes.pointer(self._iov[k])
                self._msgs[k].msg_hdr.msg_iovlen = 1
            raw = (ctypes.c_char * ctypes.sizeof(self._msgs)).from_address(
                ctypes.addressof(self._msgs))
            stride = ctypes.sizeof(_Mmsghdr) // 4
            self._lens = np.frombuffer(raw, np.uint32).reshape(self.batch, stride)[
                :, _Mmsghdr.msg_len.offset // 4]
            self._addr = ctypes.addressof(self._msgs)

    @property
    def batched(self) -> bool:
        """Whether reads go through recvmmsg(2)."""
        return self._fn is not None

    def read(self) -> tuple[int, bool]:
        """Datagrams read (at most `batch`; their sizes in `sizes[:n]`), and whether the read
        ended on a socket error other than "nothing waiting" (the caller counts it)."""
        if self._fn is not None:
            n = self._fn(self.sock.fileno(), self._addr, self.batch, _MSG_DONTWAIT, None)
            if n < 0:
                return 0, ctypes.get_errno() not in _RETRY
            self.sizes[:n] = self._lens[:n]
            return n, False
        n = 0
        recv_into = self.sock.recv_into
        for view in self._views:
            try:
                self.sizes[n] = recv_into(view)
            except (BlockingIOError, InterruptedError):
                return n, False
            except OSError:
                return n, True
            n += 1
        return n, False

    def datagrams(self, n: int) -> list[bytes]:
        """The first n datagrams of the last read, as bytes."""
        return [bytes(self._views[k][: int(self.sizes[k])]) for k in range(n)]
