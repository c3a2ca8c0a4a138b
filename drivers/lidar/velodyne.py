"""Velodyne VLP-16 and HDL-32E: data-packet decoding, live UDP and pcap replay.

A data packet (1206-byte UDP payload, port 2368) holds 12 blocks of {0xFFEE flag, azimuth in
0.01 deg, 32 x (distance in 2 mm, reflectivity)}, a device timestamp (µs past the hour), the
return mode (0x37 strongest, 0x38 last, 0x39 dual: blocks in pairs, last return first) and a
product id. The product id is not trusted alone: the model is decided from the spacing of the
device timestamps (VLP-16 packets are 1327 µs apart, HDL-32E 553 µs; half that in dual mode)
and a disagreeing product id is counted. Each firing's azimuth is interpolated between its
block's azimuth and the next block's by its firing time. Position packets (512 bytes, port
8308) are skipped and counted. Points: x = r cos(el) sin(az), y = r cos(el) cos(az), z = r
sin(el), sine tables at 0.01 deg.

`velodyne_udp` hands the points of every wake-up's packets over at once (no sensor-time
windows, no guard delay) and maps the host clock to device time, so the runtime closes steps
on the host clock (see `VelodyneUdpDriver` and `ArrivalOffset`); `velodyne_pcap` replays a
capture in `batch_us` windows of sensor time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from edgesnn_drivers.arrival import ArrivalOffset, mono_us
from edgesnn_drivers.network.pcap import classify_capture, iter_packets, sniff
from edgesnn_drivers.network.windows import TimeWindows
from edgesnn_drivers.udpsock import bind_udp, recv_waiting
from numba import njit

from edgesnn.backoff import Backoff, pause
from edgesnn.components import Driver, port_claim, register
from edgesnn.config.schema import Field, Schema
from edgesnn.errors import FormatError
from edgesnn.events import LIDAR_POINT, MAX_GAP_US, EventBatch
from edgesnn.replay import REPLAY_SCHEMA, ReplayDriver

log = logging.getLogger(__name__)

PACKET_BYTES = 1206
POSITION_BYTES = 512
DATA_PORT = 2368
POSITION_PORT = 8308
HOUR_US = 3_600_000_000
MODE_STRONGEST, MODE_LAST, MODE_DUAL = 0x37, 0x38, 0x39
RETURN_MODES = {MODE_STRONGEST: "strongest", MODE_LAST: "last", MODE_DUAL: "dual"}
PRODUCT_IDS = {0x21: "HDL-32E", 0x22: "VLP-16", 0x24: "Puck Hi-Res", 0x28: "VLP-32C",
               0x31: "Velarray", 0xA1: "VLS-128"}

VLP16_ELEVATION_DEG = (-15.0, 1.0, -13.0, 3.0, -11.0, 5.0, -9.0, 7.0,
                       -7.0, 9.0, -5.0, 11.0, -3.0, 13.0, -1.0, 15.0)
HDL32E_ELEVATION_DEG = (-30.67, -9.33, -29.33, -8.00, -28.00, -6.67, -26.67, -5.33,
                        -25.33, -4.00, -24.00, -2.67, -22.67, -1.33, -21.33, 0.00,
                        -20.00, 1.33, -18.67, 2.67, -17.33, 4.00, -16.00, 5.33,
                        -14.67, 6.67, -13.33, 8.00, -12.00, 9.33, -10.67, 10.67)


@dataclass(frozen=True)
class Model:
    """Per-model firing layout: which laser fires in block channel c and when (µs)."""

    name: str
    elevation_deg: tuple[float, ...]
    block_us: float
    ch_laser: np.ndarray
    ch_dt_us: np.ndarray

    @property
    def n_lasers(self) -> int:
        return len(self.elevation_deg)

    def packet_period_us(self, dual: bool) -> float:
        """Device-time spacing of consecutive data packets."""
        return (6 if dual else 12) * self.block_us

    @property
    def ring_of_laser(self) -> np.ndarray:
        """Ring (0 = lowest elevation) of each laser id."""
        order = np.argsort(np.asarray(self.elevation_deg), kind="stable")
        ring = np.empty(len(order), np.uint8)
        ring[order] = np.arange(len(order))
        return ring


_c = np.arange(32)
VLP16 = Model("VLP-16", VLP16_ELEVATION_DEG, 110.592, (_c % 16).astype(np.int64),
              (_c // 16) * 55.296 + (_c % 16) * 2.304)
HDL32E = Model("HDL-32E", HDL32E_ELEVATION_DEG, 46.08, _c.astype(np.int64), _c * 1.152)
MODELS = {"vlp16": VLP16, "hdl32e": HDL32E}
MODEL_OF_PRODUCT = {0x21: "hdl32e", 0x22: "vlp16", 0x24: "vlp16"}

_az = np.arange(36000) * (np.pi / 18000.0)
_SIN_AZ = np.sin(_az)
_COS_AZ = np.cos(_az)


@njit(cache=True, nogil=True)
def decode_velodyne(
    pay: np.ndarray,
    base_t: np.ndarray,
    ch_laser: np.ndarray,
    ch_dt_us: np.ndarray,
    block_us: float,
    elev_deg: np.ndarray,
    ring: np.ndarray,
    sin_az: np.ndarray,
    cos_az: np.ndarray,
    keep_zero: bool,
    out: np.ndarray,
) -> tuple[int, int]:
    """Decode data packets `pay` (n x 1206) into `out` (n x 384 capacity): (points, bad blocks).

    `base_t[i]` is packet i's time (µs) of its first firing. Blocks without the 0xFFEE flag or
    with an azimuth over 35999 are skipped and counted.
    """
    n_las = elev_deg.shape[0]
    cos_el = np.empty(n_las)
    sin_el = np.empty(n_las)
    for k in range(n_las):
        e = elev_deg[k] * (np.pi / 180.0)
        cos_el[k] = np.cos(e)
        sin_el[k] = np.sin(e)
    az = np.empty(12, np.int64)
    ok = np.empty(12, np.bool_)
    daz = np.empty(12, np.float64)
    m = 0
    bad = 0
    for p in range(pay.shape[0]):
        dual = pay[p, 1204] == 0x39
        step = 2 if dual else 1
        for b in range(12):
            o = b * 100
            az[b] = np.int64(pay[p, o + 2]) | (np.int64(pay[p, o + 3]) << 8)
            ok[b] = pay[p, o] == 0xFF and pay[p, o + 1] == 0xEE and az[b] < 36000
        for b in range(12):
            nb = b + step
            d = -1.0
            if nb < 12 and ok[b] and ok[nb]:
                d = float((az[nb] - az[b] + 36000) % 36000)
            elif b - step >= 0:
                d = daz[b - step]
            if d < 0.0 or d > 1000.0:  # no usable neighbour or a jump over 10 deg
                d = 0.0
            daz[b] = d
        for b in range(12):
            if not ok[b]:
                bad += 1
                continue
            o = b * 100
            tb = (b // step) * block_us
            ridx = 1 if (dual and b % 2 == 0) else 0
            for c in range(32):
                q = o + 4 + 3 * c
                raw = np.int64(pay[p, q]) | (np.int64(pay[p, q + 1]) << 8)
                if raw == 0 and not keep_zero:
                    continue
                las = ch_laser[c]
                dt = ch_dt_us[c]
                a = az[b] + daz[b] * dt / block_us
                ai = np.int64(a + 0.5) % 36000
                r = raw * 0.002
                pt = out[m]
                pt.t = base_t[p] + np.int64(tb + dt)
                pt.x = r * cos_el[las] * sin_az[ai]
                pt.y = r * cos_el[las] * cos_az[ai]
                pt.z = r * sin_el[las]
                pt.distance_m = r
                pt.azimuth_deg = ai * 0.01
                pt.elevation_deg = elev_deg[las]
                pt.intensity = pay[p, q + 2]
                pt.ring = ring[las]
                pt.return_idx = ridx
                m += 1
    return m, bad


def device_time_us(dev_us: np.ndarray, ref_us: np.ndarray | int) -> np.ndarray:
    """Absolute µs from µs-past-the-hour, using the nearest hour to a reference clock."""
    dev = np.asarray(dev_us, np.int64)
    ref = np.asarray(ref_us, np.int64)
    t = ref - ref % HOUR_US + dev
    t = np.where(t - ref > HOUR_US // 2, t - HOUR_US, t)
    return np.where(ref - t > HOUR_US // 2, t + HOUR_US, t)


def decode_packets(pay: np.ndarray, base_t_us: np.ndarray, model: Model,
                   keep_zero: bool = False) -> tuple[np.ndarray, int]:
    """(LIDAR_POINT records, bad blocks) for data packets `pay` (n x 1206 uint8)."""
    pay = np.ascontiguousarray(pay, np.uint8).reshape(-1, PACKET_BYTES)
    out = np.empty(len(pay) * 384, LIDAR_POINT)
    elev = np.asarray(model.elevation_deg, np.float64)
    n, bad = decode_velodyne(pay, np.ascontiguousarray(base_t_us, np.int64), model.ch_laser,
                             model.ch_dt_us, model.block_us, elev, model.ring_of_laser,
                             _SIN_AZ, _COS_AZ, keep_zero, out)
    return out[:n], bad


def timing_model(dev_us: np.ndarray, modes: np.ndarray) -> str | None:
    """Model whose packet spacing matches the device timestamps (within 10 %), or None."""
    if len(dev_us) < 2:
        return None
    d = np.diff(np.asarray(dev_us, np.int64)) % HOUR_US
    d = d[(d > 0) & (d < 10_000)]
    if not len(d):
        return None
    period = float(np.median(d))
    dual = bool(np.mean(np.asarray(modes) == MODE_DUAL) > 0.5)
    best, err = None, 0.1
    for key, m in MODELS.items():
        e = abs(math.log(period / m.packet_period_us(dual)))
        if e < err:
            best, err = key, e
    return best


class VelodyneStream:
    """Turns data-packet payloads into points: model detection, timing, counters.

    `model` "auto" decides from packet timing (and the product id only when timing cannot
    tell); "vlp16"/"hdl32e" force a model. Packets are held back until the model is known
    (at most `detect_packets`), so every point is decoded with the right layout.
    """

    def __init__(self, model: str = "auto", keep_zero: bool = False,
                 time_source: str = "device", detect_packets: int = 8):
        self.forced = model
        self.keep_zero = keep_zero
        self.time_source = time_source
        self.detect_packets = detect_packets
        self.model: Model | None = None if model == "auto" else MODELS[model]
        self.model_reason = "configured" if self.model else ""
        self.data_packets = 0
        self.position_packets = 0
        self.other_packets = 0
        self.bad_blocks = 0
        self.points = 0
        self.product_ids: dict[int, int] = {}
        self.return_modes: dict[str, int] = {}
        self.product_id_mismatch = 0
        self.first_dev_us: int | None = None
        self.last_dev_us: int | None = None
        self._pend_pay: list[np.ndarray] = []
        self._pend_ref: list[np.ndarray] = []

    def push(self, pay: np.ndarray, ref_us: np.ndarray) -> np.ndarray:
        """Decode data packets (n x 1206) received at `ref_us` (capture/host clock, µs)."""
        pay = np.asarray(pay, np.uint8).reshape(-1, PACKET_BYTES)
        if not len(pay):
            return np.zeros(0, LIDAR_POINT)
        self.data_packets += len(pay)
        for v, c in zip(*np.unique(pay[:, 1205], return_counts=True)):
            self.product_ids[int(v)] = self.product_ids.get(int(v), 0) + int(c)
        for v, c in zip(*np.unique(pay[:, 1204], return_counts=True)):
            name = RETURN_MODES.get(int(v), f"0x{int(v):02x}")
            self.return_modes[name] = self.return_modes.get(name, 0) + int(c)
        dev = pay[:, 1200:1204].copy().view("<u4").ravel()
        if self.first_dev_us is None:
            self.first_dev_us = int(dev[0])
        self.last_dev_us = int(dev[-1])
        self._pend_pay.append(pay)
        self._pend_ref.append(np.asarray(ref_us, np.int64).reshape(-1))
        if self.model is None and sum(len(x) for x in self._pend_pay) < self.detect_packets:
            return np.zeros(0, LIDAR_POINT)
        return self._drain()

    def holding(self) -> bool:
        """Packets are held back until the model is known."""
        return bool(self._pend_pay)

    def finish(self) -> np.ndarray:
        """Decode whatever is held back (end of a file or stream)."""
        return self._drain() if self._pend_pay else np.zeros(0, LIDAR_POINT)

    def _drain(self) -> np.ndarray:
        pay = np.concatenate(self._pend_pay)
        ref = np.concatenate(self._pend_ref)
        self._pend_pay, self._pend_ref = [], []
        dev = pay[:, 1200:1204].copy().view("<u4").ravel().astype(np.int64)
        if self.model is None:
            self._decide(dev, pay[:, 1204], pay[:, 1205])
        assert self.model is not None
        base = ref if self.time_source == "capture" else device_time_us(dev, ref)
        pts, bad = decode_packets(pay, base, self.model, self.keep_zero)
        self.bad_blocks += bad
        self.points += len(pts)
        return pts

    def _decide(self, dev: np.ndarray, modes: np.ndarray, pids: np.ndarray) -> None:
        by_time = timing_model(dev, modes)
        vals, counts = np.unique(pids, return_counts=True)
        pid = int(vals[np.argmax(counts)])
        by_pid = MODEL_OF_PRODUCT.get(pid)
        if by_time is not None:
            key, self.model_reason = by_time, "packet timing"
            if by_pid is not None and by_pid != by_time:
                self.product_id_mismatch = int(np.count_nonzero(pids == pid))
                log.warning("Velodyne product id 0x%02x says %s but packet timing says %s; "
                            "using the timing", pid, MODELS[by_pid].name, MODELS[key].name)
        elif by_pid is not None:
            key, self.model_reason = by_pid, f"product id 0x{pid:02x}"
        else:
            raise FormatError(f"cannot tell the Velodyne model: product id 0x{pid:02x} "
                              f"({PRODUCT_IDS.get(pid, 'unknown')}) and no usable packet "
                              "timing; set model = \"vlp16\" or \"hdl32e\"")
        self.model = MODELS[key]

    def status(self) -> dict[str, Any]:
        return {
            "model": self.model.name if self.model else None,
            "model_reason": self.model_reason,
            "data_packets": self.data_packets,
            "position_packets": self.position_packets,
            "other_packets": self.other_packets,
            "bad_blocks": self.bad_blocks,
            "points": self.points,
            "product_ids": {f"0x{k:02x}": v for k, v in self.product_ids.items()},
            "product_id_mismatch": self.product_id_mismatch,
            "return_modes": dict(self.return_modes),
        }


@njit(cache=True, nogil=True)
def _gather(buf: np.ndarray, off: np.ndarray, out: np.ndarray) -> None:
    w = out.shape[1]
    for i in range(off.shape[0]):
        o = off[i]
        for k in range(w):
            out[i, k] = buf[o + k]


def gather_rows(buf: np.ndarray, off: np.ndarray, width: int) -> np.ndarray:
    """Rows `buf[off[i]:off[i] + width]` as an (n, width) array."""
    out = np.empty((len(off), width), np.uint8)
    if len(off):
        _gather(buf, np.ascontiguousarray(off, np.int64), out)
    return out


@dataclass
class PcapPayloads:
    """UDP payloads of one pcap chunk, split into sensor data and position packets."""

    data: np.ndarray  # n x 1206
    data_t_us: np.ndarray
    position: np.ndarray  # k x 512
    other: int


def iter_pcap_payloads(path: str | Path, data_port: int = DATA_PORT,
                       position_port: int = POSITION_PORT) -> Iterator[PcapPayloads]:
    """Velodyne data and position payloads of a pcap/pcapng capture, chunk by chunk."""
    for ch in iter_packets(path):
        pk, po, pl = ch.packets, ch.pay_off, ch.pay_len
        udp = (pk["proto"] == 17) & (po >= 0)
        dport = pk["dport"]
        data = udp & (pl == PACKET_BYTES) & ((dport == data_port) | (data_port == 0))
        pos = udp & ~data & ((pl == POSITION_BYTES) | (dport == position_port))
        buf = ch.raw.buf
        pay = gather_rows(buf, po[data], PACKET_BYTES)
        ppay = gather_rows(buf, po[pos & (pl >= POSITION_BYTES)], POSITION_BYTES)
        yield PcapPayloads(pay, pk["t"][data], ppay,
                           int(len(pk) - np.count_nonzero(data) - np.count_nonzero(pos)))


def position_nmea(pos: np.ndarray) -> str:
    """The NMEA sentence of a position packet ('' when the sensor has no GPS fix)."""
    raw = bytes(np.asarray(pos, np.uint8)[206:])
    return raw.split(b"\x00", 1)[0].split(b"\r", 1)[0].split(b"\n", 1)[0].decode(
        "ascii", "replace")


def read_points(path: str | Path, model: str = "auto", keep_zero: bool = False,
                time_source: str = "device") -> tuple[np.ndarray, VelodyneStream]:
    """All points of a Velodyne pcap (for small files and tests) and the decoder's counters."""
    vs = VelodyneStream(model, keep_zero, time_source)
    parts = []
    for chunk in iter_pcap_payloads(path):
        vs.position_packets += len(chunk.position)
        vs.other_packets += chunk.other
        parts.append(vs.push(chunk.data, chunk.data_t_us))
    parts.append(vs.finish())
    parts = [x for x in parts if len(x)]
    if len(parts) == 1:
        return parts[0], vs
    return (np.concatenate(parts) if parts else np.zeros(0, LIDAR_POINT)), vs


# --- drivers ------------------------------------------------------------------------------

VELODYNE_SCHEMA = Schema({
    "model": Field(str, default="auto", choices=("auto", "vlp16", "hdl32e"),
                   doc="Sensor model; auto decides from packet timing, not the product id."),
    "keep_zero": Field(bool, default=False, doc="Also emit channels with no return (0 m)."),
})


@register
class VelodynePcapDriver(ReplayDriver):
    """Replays a Velodyne pcap/pcapng capture as LIDAR_POINT batches."""

    type_name = "velodyne_pcap"
    batch_kind = "lidar"
    summary = "Velodyne VLP-16 / HDL-32E points from a pcap or pcapng capture."
    schema = REPLAY_SCHEMA | VELODYNE_SCHEMA | Schema({
        "data_port": Field(int, default=DATA_PORT, min=0, max=65535,
                           doc="UDP port of data packets (0: any port)."),
        "position_port": Field(int, default=POSITION_PORT, min=0, max=65535,
                               doc="UDP port of position packets (skipped, counted)."),
        "time_source": Field(str, default="device", choices=("device", "capture"),
                             doc="Point times from the sensor clock or the capture clock."),
    })

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self.stream: VelodyneStream | None = None

    def iter_batches(self) -> Iterator[EventBatch]:
        p = self.params
        vs = self.stream = VelodyneStream(p["model"], p["keep_zero"], p["time_source"])
        win = TimeWindows(self.id, "lidar", LIDAR_POINT, p["batch_us"], guard_us=3000)
        for chunk in iter_pcap_payloads(self.resolve_path(), p["data_port"], p["position_port"]):
            vs.position_packets += len(chunk.position)
            vs.other_packets += chunk.other
            yield from self._with_meta(win.add(vs.push(chunk.data, chunk.data_t_us)))
        yield from self._with_meta(win.add(vs.finish()))
        yield from self._with_meta(win.flush())

    def _with_meta(self, batches: Iterator[EventBatch]) -> Iterator[EventBatch]:
        for b in batches:
            b.meta = self._meta()
            yield b

    def _meta(self) -> dict[str, Any]:
        m = self.stream.model if self.stream else None
        return {"sensor": m.name if m else "Velodyne", "rings": m.n_lasers if m else 0}

    def status(self) -> dict[str, Any]:
        return self.stream.status() if self.stream else {}


LIVE_UDP_SCHEMA = Schema({
    "host": Field(str, default="127.0.0.1",
                  doc="Address to listen on (0.0.0.0 for a sensor on the network)."),
    "batch_us": Field(int, default=0, min=0,
                      doc="Wall time to gather packets before handing a batch over (µs); 0: "
                      "hand over what arrived at once."),
    "max_queue": Field(int, default=20_000, min=1,
                       doc="Datagrams held before new ones are dropped (counted)."),
    "rcvbuf_bytes": Field(int, default=4 << 20, min=0,
                          doc="Socket receive buffer asked for (bursts wait there; the kernel "
                          "may cap it); 0 keeps the system default."),
    "lost_after_s": Field(float, default=1.0, min=0.01,
                          doc="Silence after which the sensor counts as lost and the socket "
                          "is reopened after a backoff (it stays open until then, so nothing "
                          "sent meanwhile is lost)."),
    "reconnect_max_s": Field(float, default=5.0, min=0.01, doc="Longest reopen delay."),
    "max_reconnects": Field(int, default=-1,
                            doc="Give up after this many failed opens in a row (-1: never)."),
})


class LiveUdpLidar(Driver):
    """Shared live-UDP machinery: bind with backoff, drain the socket whenever it is readable,
    detect silence, reopen, count."""

    batch_kind = "lidar"

    @classmethod
    def claims(cls, params: dict[str, Any], base_dir: str) -> list[Any]:
        """The UDP port it binds."""
        return port_claim("udp", params["host"], params["port"])

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self._tr: socket.socket | None = None  # the bound socket while open
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[bytes] = []  # received, not yet taken by the batch loop
        self._pending_wall: list[int] = []  # host wall clock µs of each one's arrival
        self._recv_mono = 0  # monotonic µs of the newest datagram's arrival
        self._wake = asyncio.Event()
        self.open_failures = 0
        self.lost = 0
        self.reopens = 0
        self.dropped = 0  # datagrams dropped because `max_queue` were waiting
        self._dropped_reported = 0
        self.datagrams = 0
        self.socket_errors = 0
        self.rcvbuf_bytes = 0
        self.last_error = ""
        self._closing = False
        self._finished = False  # shutdown: no more reading; batches() ends once empty
        #: None until the first packet; False from `lost_after_s` of silence to the next one
        self.connected: bool | None = None

    def _bind(self, addr: Any, fam: int) -> socket.socket:
        sock, self.rcvbuf_bytes = bind_udp(addr, fam, self.params["rcvbuf_bytes"])
        return sock

    async def _open(self) -> None:
        """Bind the socket (retried with backoff while it cannot be) and read it whenever it
        is readable."""
        loop = asyncio.get_running_loop()
        backoff = Backoff(0.05, self.params["reconnect_max_s"])
        failures = 0
        host, port = self.params["host"], self.params["port"]
        while True:
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
                fam, _, _, _, addr = infos[0]
                sock = self._bind(addr, fam)
                break
            except OSError as e:
                failures += 1
                self.open_failures += 1
                self.last_error = str(e)
                limit = self.params["max_reconnects"]
                if 0 <= limit < failures:
                    raise ConnectionError(
                        f"UDP {host}:{port}: gave up after {failures} attempts: {e}") from e
                delay = backoff.next_delay()
                log.warning("cannot listen on UDP %s:%s (%s); retrying in %.2f s",
                            host, port, e, delay)
                await pause(delay, lambda: self._finished)
                if self._finished:
                    return
        if self._finished:  # finish() came while opening: nothing more is read
            sock.close()
            return
        self._tr, self._loop = sock, loop
        loop.add_reader(sock.fileno(), self._drain)

    async def start(self) -> None:
        if self._tr is None:
            await self._open()

    def _close(self) -> None:
        sock, self._tr = self._tr, None
        if sock is not None:
            if self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(sock.fileno())
            sock.close()

    async def stop(self) -> None:
        self._closing = True
        self._close()
        self._wake.set()

    def finish(self) -> bool:
        """Read what the socket holds now, stop reading, and let `batches` hand all of it over
        and end."""
        if not self._finished:
            self._drain()
            self._finished = True
            sock = self._tr
            if sock is not None and self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(sock.fileno())
            self._wake.set()
        return True

    def _drain(self) -> None:
        """Read every datagram waiting on the socket (at most DRAIN_MAX per call), stamped
        with this moment; beyond `max_queue` waiting, new ones are dropped and counted."""
        sock = self._tr
        if sock is None or self._finished:
            return
        got, error = recv_waiting(sock)
        self.socket_errors += error
        n = min(len(got), max(0, self.params["max_queue"] - len(self._pending)))
        self._pending.extend(got[:n])
        self.dropped += len(got) - n
        if n:
            self._pending_wall.extend([time.time_ns() // 1000] * n)
            self._recv_mono = mono_us()
            self.datagrams += n
            self.connected = True
            self._wake.set()

    def take_dropped(self) -> int:
        """Datagrams dropped since the last call (for the next batch's `dropped_before`)."""
        n = self.dropped - self._dropped_reported
        self._dropped_reported = self.dropped
        return n

    async def datagrams_in(self) -> AsyncIterator[tuple[list[bytes], list[int], int]]:
        """What each wake-up received: (payloads, host wall µs of each one's arrival,
        monotonic µs of the newest's); `batch_us` > 0 gathers that long first. After
        `lost_after_s` of silence the sensor counts as lost and the socket is reopened."""
        if self._tr is None:
            await self._open()
        backoff = Backoff(0.05, self.params["reconnect_max_s"])
        period = self.params["batch_us"] / 1e6
        while not self._closing:
            if self._finished and not self._pending:
                return  # handed everything over after finish()
            if not self._pending:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.params["lost_after_s"])
                except TimeoutError:
                    if self._closing or self._finished:
                        return
                    self.lost += 1
                    self.connected = False
                    log.warning("no LiDAR packets on UDP %s:%s for %.2f s; reopening",
                                self.params["host"], self.params["port"],
                                self.params["lost_after_s"])
                    # the socket stays open through the backoff: a sensor that comes back
                    # meanwhile loses nothing (closing first lost what came during the wait)
                    await backoff.sleep(lambda: self._finished or self._closing)
                    if self._finished or self._closing:
                        return
                    self._drain()
                    if self._pending:  # it came back: no reopen
                        continue
                    self._close()
                    await self._open()
                    self.reopens += 1
                    continue
                if not self._pending:  # stopped
                    continue
            backoff.reset()
            if period and not self._finished:
                await asyncio.sleep(period)
            self._wake.clear()
            datas, walls = self._pending, self._pending_wall
            self._pending, self._pending_wall = [], []
            yield datas, walls, self._recv_mono


@register
class VelodyneUdpDriver(LiveUdpLidar):
    """Live Velodyne data packets over UDP (default 127.0.0.1:2368) as LIDAR_POINT batches.

    Every wake-up of the event loop with packets waiting drains the socket and hands their
    points over as one batch (`batch_us` = 0, the default; a positive `batch_us` gathers that
    long first). Batches follow one another in time: each starts where the previous ended and
    ends just past its newest point, so no later batch holds earlier points of an in-order
    stream (a reordered packet's older points are handed over and counted in `late_points`).
    Device times leaping more than MAX_GAP_US from the previous batch start a new time base
    (a jump back is counted in `window_time_jumps`). `sensor_now_us` maps the host clock to
    device time (see `ArrivalOffset`), so the runtime closes steps on the host clock.
    """

    in_order = True  # one device's packets in order: a batch is complete to its end
    type_name = "velodyne_udp"
    summary = "Live Velodyne VLP-16 / HDL-32E points from UDP data packets."
    schema = LIVE_UDP_SCHEMA | VELODYNE_SCHEMA | Schema({
        "port": Field(int, default=DATA_PORT, min=1, max=65535, doc="UDP port of data packets."),
    })

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self.stream = VelodyneStream(params["model"], params["keep_zero"], "device")
        self.bad_size = 0
        self.time_jumps = 0  # the device clock went back by more than MAX_GAP_US
        self.late_points = 0  # points older than the previous batch's end (reordered packets)
        self.clock = ArrivalOffset()
        self._t_end: int | None = None
        self._seq = 0

    def holds_data(self) -> bool:
        """Data packets received but not handed over (the socket is read first), or held by
        the decoder until the model is known."""
        self._drain()
        return any(len(d) == PACKET_BYTES for d in self._pending) or self.stream.holding()

    def sensor_now_us(self) -> int | None:
        """The device time of this moment (None before the first points)."""
        return self.clock.now_us()

    def _cut(self, pts: np.ndarray, start_us: int, recv_mono: int) -> EventBatch:
        """The batch of these points: from the previous batch's end to just past the newest."""
        t = pts["t"]
        t_min, t_max = int(t.min()), int(t.max())
        if self._t_end is not None and not (self._t_end - MAX_GAP_US <= t_min
                                            and t_max <= self._t_end + MAX_GAP_US):
            if t_min < self._t_end - MAX_GAP_US:
                self.time_jumps += 1
            self._t_end = None
            self.clock.reset()  # a new time base: a new offset to the host clock
        self.clock.track(start_us, recv_mono)
        t_start = t_min if self._t_end is None else self._t_end
        if t_min < t_start:
            self.late_points += int(np.count_nonzero(t < t_start))
        self._t_end = max(t_start + 1, t_max + 1)
        vs = self.stream
        b = EventBatch(self.id, self._seq, t_start, self._t_end, pts, "lidar",
                       self.take_dropped(),
                       {"sensor": vs.model.name if vs.model else "Velodyne"})
        self._seq += 1
        return b

    async def batches(self) -> AsyncIterator[EventBatch]:
        vs = self.stream
        last_start, last_mono = 0, 0  # the newest packet's start and arrival
        async for datas, walls, recv_mono in self.datagrams_in():
            good = [i for i, d in enumerate(datas) if len(d) == PACKET_BYTES]
            npos = sum(1 for d in datas if len(d) == POSITION_BYTES)
            vs.position_packets += npos
            self.bad_size += len(datas) - len(good) - npos
            if not good:
                continue
            pay = np.frombuffer(b"".join([datas[i] for i in good]), np.uint8).reshape(
                -1, PACKET_BYTES)
            ref = np.asarray([walls[i] for i in good], np.int64)
            start = device_time_us(pay[:, 1200:1204].copy().view("<u4").ravel(), ref)
            # a device clock jump inside this wake-up's packets starts a new batch there
            cuts = (np.flatnonzero(np.abs(np.diff(start)) > MAX_GAP_US) + 1).tolist()
            for lo, hi in zip([0, *cuts], [*cuts, len(pay)], strict=True):
                try:
                    pts = vs.push(pay[lo:hi], ref[lo:hi])
                except FormatError as e:
                    self.last_error = str(e)
                    raise
                last_start, last_mono = int(start[lo:hi].max()), recv_mono
                if len(pts):
                    yield self._cut(pts, last_start, recv_mono)
        if self._finished and vs.holding():  # after finish(): what waits for the model too
            try:
                pts = vs.finish()
            except FormatError as e:
                self.last_error = str(e)
                raise
            if len(pts):
                yield self._cut(pts, last_start, last_mono)

    def status(self) -> dict[str, Any]:
        return {**self.stream.status(), "datagrams": self.datagrams, "bad_size": self.bad_size,
                "dropped": self.dropped, "lost": self.lost, "reopens": self.reopens,
                "connected": self.connected, "rcvbuf_bytes": self.rcvbuf_bytes,
                "socket_errors": self.socket_errors,
                "window_time_jumps": self.time_jumps, "late_points": self.late_points,
                "open_failures": self.open_failures, "last_error": self.last_error}


# --- edgesnn info and bench io ------------------------------------------------------------


def probe_file(path: str, head: bytes) -> str | None:
    """"velodyne-pcap" when a pcap/pcapng capture holds Velodyne packets."""
    if sniff(head) is None:
        return None
    return "velodyne-pcap" if classify_capture(path) == "velodyne" else None


def info_file(path: str, fmt: str) -> dict[str, Any]:
    """Model, data and position packets, returns and non-zero returns of a Velodyne capture."""
    vs = VelodyneStream("auto", keep_zero=True)
    nonzero = returns = 0
    max_m = 0.0
    nmea = ""
    first_t = last_t = None
    for chunk in iter_pcap_payloads(path):
        vs.position_packets += len(chunk.position)
        vs.other_packets += chunk.other
        if not nmea:
            for p in chunk.position:
                nmea = position_nmea(p)
                if nmea:
                    break
        for pts in (vs.push(chunk.data, chunk.data_t_us),):
            returns += len(pts)
            nz = pts["distance_m"] > 0
            nonzero += int(nz.sum())
            if nz.any():
                max_m = max(max_m, float(pts["distance_m"][nz].max()))
        if len(chunk.data_t_us):
            first_t = int(chunk.data_t_us[0]) if first_t is None else first_t
            last_t = int(chunk.data_t_us[-1])
    pts = vs.finish()
    returns += len(pts)
    nz = pts["distance_m"] > 0
    nonzero += int(nz.sum())
    if nz.any():
        max_m = max(max_m, float(pts["distance_m"][nz].max()))
    st = vs.status()
    return {
        "format": fmt,
        "sensor": "Velodyne",
        "model": st["model"],
        "model_reason": st["model_reason"],
        "product_ids": st["product_ids"],
        "product_id_mismatch": st["product_id_mismatch"],
        "return_modes": st["return_modes"],
        "data_packets": st["data_packets"],
        "position_packets": st["position_packets"],
        "other_packets": st["other_packets"],
        "returns": returns,
        "nonzero_returns": nonzero,
        "bad_blocks": st["bad_blocks"],
        "max_range_m": round(max_m, 3),
        "device_t_first_us": vs.first_dev_us,
        "device_t_last_us": vs.last_dev_us,
        "first_t_us": first_t,
        "last_t_us": last_t,
        "nmea": nmea,
    }


def bench_io_cases(data_dir: Path) -> list[dict[str, Any]]:
    """Velodyne pcap decoding to LIDAR_POINT records (VLP-16 and HDL-32E captures)."""
    cases = []
    for name, rate in (("velodyne_vlp16_example.pcap", 754.0),
                       ("velodyne_hdl32e_short.pcap", 1808.0)):
        p = Path(data_dir) / "lidar" / name
        if p.exists():
            def run(q: str = str(p)) -> int:
                _, vs = read_points(q)
                return vs.data_packets
            cases.append({"format": "velodyne-pcap", "file": str(p), "unit": "packets",
                          "run": run, "realtime_items_per_s": rate,
                          # target: >= 50 000 VLP-16 packets/s decoded to points, one core
                          "target": {"items_per_s": 50_000} if rate == 754.0 else None})
    return cases
