"""Ouster OS-1 legacy UDP lidar packets (port 7502) with the sensor's metadata JSON.

A packet holds 16 columns ("azimuth blocks") of {uint64 timestamp ns, uint16 measurement id,
uint16 frame id, uint32 encoder count (90112 per turn), beams x {uint32 range (low 20 bits,
mm), uint16 reflectivity, uint16 signal, uint16 noise, uint16 unused}, uint32 status}. A column
whose status is not 0xFFFFFFFF is skipped and counted. The beam altitude and azimuth angles
come from the metadata JSON (`beam_altitude_angles`, `beam_azimuth_angles`, `lidar_mode`), as
the sensor's TCP API or the file saved beside a pcap gives them. Points follow the legacy user
guide: theta = 2 pi (1 - encoder / 90112) - 2 pi beam_azimuth / 360, phi = beam altitude,
x = r cos(theta) cos(phi), y = r sin(theta) cos(phi), z = r sin(phi).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from edgesnn_drivers.lidar.velodyne import gather_rows
from edgesnn_drivers.network.pcap import classify_capture, iter_packets, sniff
from edgesnn_drivers.network.windows import TimeWindows
from numba import njit

from edgesnn.components import register
from edgesnn.config.schema import Field, Schema
from edgesnn.errors import FormatError
from edgesnn.events import LIDAR_POINT, EventBatch
from edgesnn.replay import REPLAY_SCHEMA, ReplayDriver, regular_file

LIDAR_PORT = 7502
ENCODER_TICKS = 90112
COLUMNS_PER_PACKET = 16
STATUS_VALID = 0xFFFFFFFF
COLUMN_INFO = np.dtype([("t_ns", "<u8"), ("measurement_id", "<u2"), ("frame_id", "<u2"),
                        ("encoder", "<u4"), ("status", "<u4")])


def packet_bytes(beams: int) -> int:
    """Legacy lidar packet size for a sensor with `beams` beams (12608 for 64)."""
    return COLUMNS_PER_PACKET * (16 + 12 * beams + 4)


@dataclass(frozen=True)
class Metadata:
    """What the legacy decoder needs from the metadata JSON."""

    altitude_deg: np.ndarray
    azimuth_deg: np.ndarray
    columns_per_frame: int
    frames_per_s: int
    lidar_mode: str

    @property
    def beams(self) -> int:
        return int(len(self.altitude_deg))

    @property
    def ring_of_beam(self) -> np.ndarray:
        order = np.argsort(self.altitude_deg, kind="stable")
        ring = np.empty(len(order), np.uint8)
        ring[order] = np.arange(len(order))
        return ring


MAX_METADATA_BYTES = 16 << 20


def load_metadata(path: str | Path) -> Metadata:
    """Read the sensor metadata JSON; `FormatError` (a ValueError) naming what is missing or
    wrong, OSError when it cannot be read."""
    p = str(path)
    regular_file(p)
    with open(path, "rb") as f:
        raw = f.read(MAX_METADATA_BYTES + 1)
    if len(raw) > MAX_METADATA_BYTES:
        raise FormatError(f"metadata larger than {MAX_METADATA_BYTES} bytes", path=p)
    try:
        d = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise FormatError(f"metadata is not UTF-8 ({e.reason})", offset=e.start, path=p) from None
    except json.JSONDecodeError as e:
        raise FormatError(f"metadata is not JSON ({e.msg}, line {e.lineno} column {e.colno})",
                          offset=e.pos, path=p) from None
    except (ValueError, RecursionError) as e:
        raise FormatError(f"metadata is not JSON ({e})", path=p) from None
    if not isinstance(d, dict):
        raise FormatError("metadata is not a JSON object", path=p)
    if "udp_profile_lidar" in d and d["udp_profile_lidar"] not in ("LEGACY", None):
        raise FormatError(f"udp_profile_lidar {str(d['udp_profile_lidar'])[:40]!r} is not the "
                          "legacy packet format this driver reads", path=p)
    tables = []
    for key in ("beam_altitude_angles", "beam_azimuth_angles"):
        if key not in d:
            raise FormatError(f"metadata lacks {key}", path=p)
        v = d[key]
        if not isinstance(v, list) or not all(
                isinstance(x, int | float) and not isinstance(x, bool) for x in v):
            raise FormatError(f"{key} is not a list of numbers", path=p)
        try:
            a = np.asarray(v, np.float64) if v else np.zeros(0)
        except OverflowError:
            raise FormatError(f"{key} holds a number beyond the float range", path=p) from None
        if not np.all(np.isfinite(a)) or np.any(np.abs(a) > 360.0):
            raise FormatError(f"{key} holds angles outside -360..360 degrees", path=p)
        tables.append(a)
    alt, az = tables
    if alt.shape != az.shape or not 1 <= len(alt) <= 128:
        raise FormatError("beam angle tables must be two lists of the same length (1 to 128 "
                          f"beams), not {len(alt)} and {len(az)}", path=p)
    mode = d.get("lidar_mode", "1024x10")
    parts = mode.split("x") if isinstance(mode, str) else []
    if len(parts) != 2 or not all(x.isascii() and x.isdigit() and len(x) <= 6 for x in parts) \
            or not (int(parts[0]) > 0 and int(parts[1]) > 0):
        raise FormatError(f"lidar_mode {str(mode)[:40]!r} is not like '1024x10'", path=p)
    return Metadata(alt, az, int(parts[0]), int(parts[1]), mode)


@njit(cache=True, nogil=True)
def decode_ouster(
    pay: np.ndarray,
    alt_deg: np.ndarray,
    az_deg: np.ndarray,
    ring: np.ndarray,
    keep_zero: bool,
    out: np.ndarray,
    cols: np.ndarray,
) -> tuple[int, int]:
    """Decode legacy packets `pay` (n x packet bytes) into points `out` and column headers
    `cols` (n*16 x 5 int64: t_ns, measurement id, frame id, encoder, status).

    Returns (points, invalid columns); invalid columns give no points.
    """
    beams = alt_deg.shape[0]
    col_bytes = 16 + 12 * beams + 4
    cos_alt = np.cos(alt_deg * (np.pi / 180.0))
    sin_alt = np.sin(alt_deg * (np.pi / 180.0))
    az_rad = -az_deg * (np.pi / 180.0)
    m = 0
    bad = 0
    k = 0
    for p in range(pay.shape[0]):
        for c in range(COLUMNS_PER_PACKET):
            o = c * col_bytes
            t_ns = np.int64(0)
            for j in range(8):
                t_ns |= np.int64(pay[p, o + j]) << (8 * j)
            mid = np.int64(pay[p, o + 8]) | (np.int64(pay[p, o + 9]) << 8)
            fid = np.int64(pay[p, o + 10]) | (np.int64(pay[p, o + 11]) << 8)
            enc = np.int64(0)
            st = np.int64(0)
            so = o + 16 + 12 * beams
            for j in range(4):
                enc |= np.int64(pay[p, o + 12 + j]) << (8 * j)
                st |= np.int64(pay[p, so + j]) << (8 * j)
            cols[k, 0] = t_ns
            cols[k, 1] = mid
            cols[k, 2] = fid
            cols[k, 3] = enc
            cols[k, 4] = st
            k += 1
            if st != 0xFFFFFFFF or enc >= 90112:
                bad += 1
                continue
            th_enc = 2.0 * np.pi * (1.0 - enc / 90112.0)
            t_us = t_ns // 1000
            for b in range(beams):
                q = o + 16 + 12 * b
                rng = (np.int64(pay[p, q]) | (np.int64(pay[p, q + 1]) << 8)
                       | (np.int64(pay[p, q + 2]) << 16)) & 0xFFFFF
                if rng == 0 and not keep_zero:
                    continue
                refl = np.int64(pay[p, q + 4]) | (np.int64(pay[p, q + 5]) << 8)
                r = rng * 0.001
                th = th_enc + az_rad[b]
                pt = out[m]
                pt.t = t_us
                pt.x = r * np.cos(th) * cos_alt[b]
                pt.y = r * np.sin(th) * cos_alt[b]
                pt.z = r * sin_alt[b]
                pt.distance_m = r
                deg = (th * (180.0 / np.pi)) % 360.0
                pt.azimuth_deg = deg
                pt.elevation_deg = alt_deg[b]
                pt.intensity = refl if refl < 255 else 255
                pt.ring = ring[b]
                pt.return_idx = 0
                m += 1
    return m, bad


def decode_packets(pay: np.ndarray, meta: Metadata, keep_zero: bool = False
                   ) -> tuple[np.ndarray, np.ndarray, int]:
    """(points, column headers as COLUMN_INFO, invalid columns) for legacy packets."""
    size = packet_bytes(meta.beams)
    pay = np.ascontiguousarray(pay, np.uint8).reshape(-1, size)
    out = np.empty(len(pay) * COLUMNS_PER_PACKET * meta.beams, LIDAR_POINT)
    cols = np.empty((len(pay) * COLUMNS_PER_PACKET, 5), np.int64)
    n, bad = decode_ouster(pay, meta.altitude_deg, meta.azimuth_deg, meta.ring_of_beam,
                           keep_zero, out, cols)
    info = np.empty(len(cols), COLUMN_INFO)
    for i, name in enumerate(COLUMN_INFO.names):  # type: ignore[arg-type]
        info[name] = cols[:, i]
    return out[:n], info, bad


def metadata_beside(path: str | Path) -> Path:
    """The metadata JSON saved next to a capture: same name with .json."""
    return Path(path).with_suffix(".json")


def iter_pcap_packets(path: str | Path, beams: int, port: int = LIDAR_PORT
                      ) -> Iterator[tuple[np.ndarray, int]]:
    """(lidar payloads n x bytes, other packets) per pcap chunk."""
    size = packet_bytes(beams)
    for ch in iter_packets(path):
        pk, po, pl = ch.packets, ch.pay_off, ch.pay_len
        sel = (pk["proto"] == 17) & (po >= 0) & (pl == size) & (
            (pk["dport"] == port) | (port == 0))
        yield gather_rows(ch.raw.buf, po[sel], size), int(len(pk) - np.count_nonzero(sel))


def read_points(path: str | Path, metadata: str | Path | None = None, keep_zero: bool = False
                ) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """All points and column headers of an Ouster pcap (small files, tests) and counters."""
    return _read_all(path, load_metadata(metadata or metadata_beside(path)), keep_zero)


def _read_all(path: str | Path, meta: Metadata, keep_zero: bool
              ) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    pts, cols = [], []
    counts = {"packets": 0, "other_packets": 0, "invalid_columns": 0}
    for pay, other in iter_pcap_packets(path, meta.beams):
        p, c, bad = decode_packets(pay, meta, keep_zero)
        pts.append(p)
        cols.append(c)
        counts["packets"] += len(pay)
        counts["other_packets"] += other
        counts["invalid_columns"] += bad
    if not pts:
        return np.zeros(0, LIDAR_POINT), np.zeros(0, COLUMN_INFO), counts
    return np.concatenate(pts), np.concatenate(cols), counts


@register
class OusterPcapDriver(ReplayDriver):
    """Replays an Ouster legacy pcap (with its metadata JSON) as LIDAR_POINT batches."""

    type_name = "ouster_pcap"
    batch_kind = "lidar"
    summary = "Ouster OS-1 legacy lidar packets from a pcap, with the metadata JSON."
    schema = REPLAY_SCHEMA | Schema({
        "metadata": Field(str, default="",
                          doc="Metadata JSON; empty: the capture's name with .json."),
        "port": Field(int, default=LIDAR_PORT, min=0, max=65535,
                      doc="UDP port of lidar packets (0: any)."),
        "keep_zero": Field(bool, default=False, doc="Also emit pixels with no return."),
    })

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self.counts = {"packets": 0, "other_packets": 0, "invalid_columns": 0, "points": 0}

    def _metadata(self) -> Metadata:
        m = self.params["metadata"]
        if m:
            path = Path(m) if Path(m).is_absolute() else Path(self.ctx.base_dir) / m
        else:
            path = metadata_beside(self.resolve_path())
        try:
            return load_metadata(path)
        except FormatError as e:
            raise FormatError(f"Ouster metadata: {e}") from e
        except OSError as e:
            raise FormatError(f"Ouster metadata: {e.strerror or e}", path=str(path)) from e

    def iter_batches(self) -> Iterator[EventBatch]:
        meta = self._metadata()
        win = TimeWindows(self.id, "lidar", LIDAR_POINT, self.params["batch_us"], guard_us=0,
                          meta={"sensor": "Ouster", "rings": meta.beams,
                                "lidar_mode": meta.lidar_mode})
        for pay, other in iter_pcap_packets(self.resolve_path(), meta.beams, self.params["port"]):
            pts, _, bad = decode_packets(pay, meta, self.params["keep_zero"])
            self.counts["packets"] += len(pay)
            self.counts["other_packets"] += other
            self.counts["invalid_columns"] += bad
            self.counts["points"] += len(pts)
            yield from win.add(pts)
        yield from win.flush()

    def status(self) -> dict[str, Any]:
        return dict(self.counts)


def probe_file(path: str, head: bytes) -> str | None:
    """"ouster-pcap" when a capture holds Ouster lidar packets."""
    if sniff(head) is None:
        return None
    return "ouster-pcap" if classify_capture(path) == "ouster" else None


def info_file(path: str, fmt: str) -> dict[str, Any]:
    """Packets, columns, frames, pixels and non-zero returns of an Ouster legacy capture."""
    mpath = metadata_beside(path)
    out: dict[str, Any] = {"format": fmt, "sensor": "Ouster", "model": "OS-1 (legacy UDP)"}
    try:
        meta = load_metadata(mpath)
    except (OSError, ValueError) as e:
        out["metadata"] = f"unavailable ({e}); assuming 64 beams"
        meta = Metadata(np.zeros(64), np.zeros(64), 1024, 10, "unknown")
    else:
        out["metadata"] = str(mpath)
        out["lidar_mode"] = meta.lidar_mode
    pts, cols, counts = _read_all(path, meta, keep_zero=True)
    nz = pts["distance_m"] > 0
    out.update(
        beams=meta.beams,
        data_packets=counts["packets"],
        other_packets=counts["other_packets"],
        columns=int(len(cols)),
        invalid_columns=counts["invalid_columns"],
        frame_ids=sorted({int(x) for x in np.unique(cols["frame_id"])}) if len(cols) else [],
        measurement_id_first=int(cols["measurement_id"][0]) if len(cols) else None,
        measurement_id_last=int(cols["measurement_id"][-1]) if len(cols) else None,
        pixels=int(len(pts)),
        nonzero_returns=int(nz.sum()),
        max_range_m=round(float(pts["distance_m"].max()), 3) if len(pts) else 0.0,
        first_t_ns=int(cols["t_ns"][0]) if len(cols) else None,
        last_t_ns=int(cols["t_ns"][-1]) if len(cols) else None,
    )
    return out


def bench_io_cases(data_dir: Path) -> list[dict[str, Any]]:
    """Ouster legacy pcap decoding to LIDAR_POINT records."""
    p = Path(data_dir) / "lidar" / "ouster_os1_64_legacy_1024x10.pcap"
    if not p.exists() or not metadata_beside(p).exists():
        return []

    def run(q: str = str(p)) -> int:
        return read_points(q)[2]["packets"]

    # 1024 columns x 10 Hz / 16 columns per packet = 640 packets/s
    return [{"format": "ouster-pcap", "file": str(p), "unit": "packets", "run": run,
             "realtime_items_per_s": 640.0}]
