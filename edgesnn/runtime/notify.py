"""systemd service notifications (sd_notify) without a dependency.

Under systemd with `Type=notify` the service manager passes `$NOTIFY_SOCKET`, an AF_UNIX
datagram socket (a path, or an abstract name written with a leading '@'), and with
`WatchdogSec=` also `$WATCHDOG_USEC` (and `$WATCHDOG_PID`). The daemon sends `READY=1` once its
pipeline runs, `WATCHDOG=1` at half the watchdog period while healthy, `STATUS=...` lines,
`RELOADING=1` on SIGHUP and `STOPPING=1` when it drains. Outside systemd every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger("edgesnn.notify")


class Notifier:
    """Sends sd_notify messages to `$NOTIFY_SOCKET` (no-op when it is unset)."""

    def __init__(self, env: dict[str, str] | None = None):
        env = dict(os.environ) if env is None else env
        addr = env.get("NOTIFY_SOCKET", "")
        self.address: str | bytes | None = None
        if addr.startswith("@"):
            self.address = b"\0" + addr[1:].encode()  # abstract socket name
        elif addr.startswith("/"):
            self.address = addr
        elif addr:
            log.warning("NOTIFY_SOCKET=%r is not a socket path or @name; not notifying", addr)
        self.watchdog_s: float | None = None
        usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_s = int(usec) / 1e6
        self._sock: socket.socket | None = None
        self.failed = 0

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send one datagram of `KEY=VALUE` lines; False when not under systemd or it failed."""
        if self.address is None:
            return False
        msg = "\n".join(f.replace("\n", " ") for f in fields).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(msg, self.address)
        except OSError as e:
            self.failed += 1
            if self.failed == 1:
                log.warning("cannot notify systemd on %r: %s", self.address, e)
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def reloading(self) -> bool:
        # MONOTONIC_USEC lets Type=notify-reload (systemd >= 253) match the reload to this message
        return self.send("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}",
                         "STATUS=reloading the pipeline")

    def stopping(self, status: str = "draining") -> bool:
        return self.send("STOPPING=1", f"STATUS={status}")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more start-up time (a cold compile on a slow board takes minutes)."""
        return self.send(f"EXTEND_TIMEOUT_USEC={int(seconds * 1e6)}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
