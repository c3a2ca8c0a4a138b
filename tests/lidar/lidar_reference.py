"""Slow, obvious pure-Python twins of the LiDAR kernels."""

from __future__ import annotations

import math
import struct

VLP16_EL = [-15, 1, -13, 3, -11, 5, -9, 7, -7, 9, -5, 11, -3, 13, -1, 15]
HDL32_EL = [-30.67, -9.33, -29.33, -8.00, -28.00, -6.67, -26.67, -5.33, -25.33, -4.00, -24.00,
            -2.67, -22.67, -1.33, -21.33, 0.00, -20.00, 1.33, -18.67, 2.67, -17.33, 4.00,
            -16.00, 5.33, -14.67, 6.67, -13.33, 8.00, -12.00, 9.33, -10.67, 10.67]


def rings_of(el: list[float]) -> list[int]:
    order = sorted(range(len(el)), key=lambda i: (el[i], i))
    ring = [0] * len(el)
    for r, i in enumerate(order):
        ring[i] = r
    return ring


def ref_velodyne(pay: bytes, base_t: int, model: str, keep_zero: bool = False) -> list[tuple]:
    """Points of one 1206-byte data packet: (t, x, y, z, r, az, el, intensity, ring, ret)."""
    if model == "vlp16":
        el, block_us = VLP16_EL, 110.592

        def firing(c: int) -> tuple[int, float]:
            return c % 16, (c // 16) * 55.296 + (c % 16) * 2.304
    else:
        el, block_us = HDL32_EL, 46.08

        def firing(c: int) -> tuple[int, float]:
            return c, c * 1.152
    ring = rings_of(el)
    dual = pay[1204] == 0x39
    step = 2 if dual else 1
    flags = [pay[b * 100:b * 100 + 2] == b"\xff\xee" for b in range(12)]
    az = [struct.unpack("<H", pay[b * 100 + 2:b * 100 + 4])[0] for b in range(12)]
    ok = [flags[b] and az[b] < 36000 for b in range(12)]
    daz = [0.0] * 12
    for b in range(12):
        nb = b + step
        if nb < 12 and ok[b] and ok[nb]:
            d = float((az[nb] - az[b]) % 36000)
        elif b - step >= 0:
            d = daz[b - step]
        else:
            d = -1.0
        daz[b] = d if 0.0 <= d <= 1000.0 else 0.0
    out = []
    for b in range(12):
        if not ok[b]:
            continue
        tb = (b // step) * block_us
        for c in range(32):
            q = b * 100 + 4 + 3 * c
            raw = pay[q] | (pay[q + 1] << 8)
            if raw == 0 and not keep_zero:
                continue
            las, dt = firing(c)
            a = az[b] + daz[b] * dt / block_us
            ai = int(a + 0.5) % 36000
            r = raw * 0.002
            om = math.radians(el[las])
            al = math.radians(ai / 100)
            out.append((base_t + int(tb + dt), r * math.cos(om) * math.sin(al),
                        r * math.cos(om) * math.cos(al), r * math.sin(om), r, ai / 100, el[las],
                        pay[q + 2], ring[las], 1 if (dual and b % 2 == 0) else 0))
    return out


def ref_ouster(pay: bytes, alt: list[float], azc: list[float]) -> tuple[list[tuple], list]:
    """(points (t_us, x, y, z, r, ring), column headers) of one legacy packet."""
    beams = len(alt)
    ring = rings_of(alt)
    cb = 16 + 12 * beams + 4
    pts, cols = [], []
    for c in range(16):
        o = c * cb
        t_ns, mid, fid, enc = struct.unpack("<QHHI", pay[o:o + 16])
        st = struct.unpack("<I", pay[o + 16 + 12 * beams:o + cb])[0]
        cols.append((t_ns, mid, fid, enc, st))
        if st != 0xFFFFFFFF or enc >= 90112:
            continue
        for b in range(beams):
            rng = struct.unpack("<I", pay[o + 16 + 12 * b:o + 20 + 12 * b])[0] & 0xFFFFF
            if rng == 0:
                continue
            r = rng / 1000
            th = 2 * math.pi * (1 - enc / 90112) - 2 * math.pi * azc[b] / 360
            ph = 2 * math.pi * alt[b] / 360
            pts.append((t_ns // 1000, r * math.cos(th) * math.cos(ph),
                        r * math.sin(th) * math.cos(ph), r * math.sin(ph), r, ring[b]))
    return pts, cols


class RefRangeChange:
    """The range-change encoder written with dicts and loops."""

    def __init__(self, rings: int, sectors: int, thr: float, rel: float, z_lo: float,
                 z_hi: float):
        self.S, self.thr, self.rel, self.z = sectors, thr, rel, (z_lo, z_hi)
        self.cur: dict[int, list] = {}  # ring -> [sector, min, band_min]
        self.ref: dict[tuple[int, int], float] = {}
        self.band: dict[tuple[int, int], float] = {}
        self.R = rings
        self.spikes: list[tuple[int, int]] = []

    def _close(self, r: int, t: int) -> None:
        s, v, bv = self.cur[r]
        self.band[(r, s)] = bv
        cell = r * self.S + s
        if (r, s) not in self.ref:
            self.ref[(r, s)] = v
            return
        ref = self.ref[(r, s)]
        th = max(self.thr, self.rel * ref)
        if v < ref - th:
            self.spikes.append((t, cell))
            self.ref[(r, s)] = v
        elif v > ref + th:
            self.spikes.append((t, self.R * self.S + cell))
            self.ref[(r, s)] = v

    def feed(self, pts: list[tuple[int, int, float, float, float]]) -> None:
        """Points as (t, ring, azimuth_deg, distance, z)."""
        for t, r, a, d, z in pts:
            s = min(int((a % 360.0) * self.S / 360.0), self.S - 1)
            if r in self.cur and self.cur[r][0] != s:
                self._close(r, t)
                del self.cur[r]
            if r not in self.cur:
                self.cur[r] = [s, math.inf, math.inf]
            c = self.cur[r]
            c[1] = min(c[1], d)
            if self.z[0] <= z <= self.z[1]:
                c[2] = min(c[2], d)

    def finish(self, t: int) -> None:
        """Close every open cell (end of stream) at time t."""
        for r in sorted(self.cur):
            self._close(r, t)
        self.cur.clear()

    def nearest(self) -> list[float]:
        out = [math.inf] * self.S
        for (_, s), v in self.band.items():
            out[s] = min(out[s], v)
        return out
