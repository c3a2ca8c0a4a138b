"""A serial byte source with reconnect: the shared transport of serial sensor drivers.

Opens the port with pyserial, reads in a worker thread (pyserial is blocking), and when the
device disappears or cannot be opened, reports it, counts it and retries with backoff instead
of failing the pipeline. Protocol parsing (eDVS, accelerometer frames) lives in the drivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from edgesnn.backoff import Backoff, pause
from edgesnn.config.schema import Field, Schema

log = logging.getLogger(__name__)

SERIAL_SCHEMA = Schema(
    {
        "port": Field(str, doc="Serial device, e.g. /dev/ttyUSB0 (a pty works too)."),
        "baudrate": Field(int, default=115200, min=1, doc="Line speed in baud."),
        "read_timeout_s": Field(float, default=0.05, min=0.0, doc="Blocking read slice."),
        "reconnect_max_s": Field(float, default=5.0, min=0.01, doc="Longest reconnect delay."),
        "max_reconnects": Field(
            int, default=-1, doc="Give up after this many failed reconnects (-1: never)."
        ),
    }
)


class SerialSource:
    """Yields raw byte chunks from a serial port, reconnecting with backoff.

    Counters: `reconnects`, `open_failures`, `bytes_read`. `on_connect(serial)` is called after
    every successful open, e.g. to send a device's start command.
    """

    def __init__(self, params: dict[str, Any], on_connect: Any = None, chunk: int = 4096):
        self.params = params
        self.on_connect = on_connect
        self.chunk = chunk
        self.reconnects = 0
        self.open_failures = 0
        self.bytes_read = 0
        self.connected = False
        self._stop = False
        self._ser: Any = None
        self.last_error = ""
        #: after finish(): bytes still to read (those waiting then); `chunks` ends after them
        self._finish_left: int | None = None

    def _open(self) -> Any:
        import serial  # pyserial

        ser = serial.Serial(
            self.params["port"],
            baudrate=self.params["baudrate"],
            timeout=self.params["read_timeout_s"],
        )
        if self.on_connect is not None:
            self.on_connect(ser)
        return ser

    def _read(self) -> bytes:
        ser = self._ser
        left = self._finish_left
        if left is None:
            n = max(1, min(self.chunk, ser.in_waiting or 1))
            return ser.read(n)
        n = min(self.chunk, ser.in_waiting, left)  # finishing: only what waits, no wait
        data = ser.read(n) if n > 0 else b""
        self._finish_left = left - len(data)
        return data

    def finish(self) -> None:
        """Shutdown: read the bytes waiting in the port now (and no more), then `chunks` ends;
        a read in flight ends within `read_timeout_s`."""
        if self._finish_left is None:
            try:
                self._finish_left = int(self._ser.in_waiting) if self._ser is not None else 0
            except Exception:  # closed or lost under us
                self._finish_left = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        backoff = Backoff(0.05, self.params["reconnect_max_s"])
        failures = 0
        while not self._stop:
            if self._finish_left is not None and (self._ser is None or self._finish_left <= 0):
                return  # finish(): everything waiting then was read
            if self._ser is None:
                try:
                    self._ser = await asyncio.to_thread(self._open)
                    self.connected = True
                    backoff.reset()
                    failures = 0
                except Exception as e:  # serial.SerialException, OSError
                    self.open_failures += 1
                    failures += 1
                    self.last_error = str(e)
                    limit = self.params["max_reconnects"]
                    if 0 <= limit < failures:
                        raise ConnectionError(
                            f"serial port {self.params['port']}: gave up after {failures} "
                            f"attempts: {e}"
                        ) from e
                    delay = backoff.next_delay()
                    log.warning(
                        "serial port %s unavailable (%s); retrying in %.2f s",
                        self.params["port"], e, delay,
                    )
                    await pause(delay, self._ending)
                    continue
            try:
                data = await asyncio.to_thread(self._read)
            except Exception as e:  # device unplugged: SerialException / OSError
                self.last_error = str(e)
                log.warning("serial port %s lost (%s); reconnecting", self.params["port"], e)
                self._close()
                self.reconnects += 1
                continue
            if data:
                self.bytes_read += len(data)
                yield data
            elif self._finish_left is not None:
                return  # finish(): nothing more waits

    def _ending(self) -> bool:
        """Whether finish() or close() was called (a reconnect delay then ends early)."""
        return self._stop or self._finish_left is not None

    def _close(self) -> None:
        self.connected = False
        if self._ser is not None:
            with contextlib.suppress(Exception):
                self._ser.close()
        self._ser = None

    def close(self) -> None:
        self._stop = True
        self._close()

    def status(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "reconnects": self.reconnects,
            "open_failures": self.open_failures,
            "bytes_read": self.bytes_read,
            "last_error": self.last_error,
        }
