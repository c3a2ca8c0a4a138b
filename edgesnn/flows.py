"""Flow aggregation: packets grouped by 5-tuple, and sliding-window `FLOW_FEATURES`.

Shared by the packet drivers (`pcap_replay` with `flows = true`) and the `network_flow`
encoder, so it lives beside the event types rather than in either.

`flow_table` groups packets by (src, dst, sport, dport, proto) into per-flow totals.
`FlowWindows` computes, for windows of `window_us` ending every `hop_us` (ends on a grid of
hop_us), the features an intrusion detector needs:

- packets_per_s, bytes_per_s: packets and wire bytes in the window / window length;
- syn_ratio: TCP packets with SYN and not ACK / TCP packets (scans, floods push it to 1);
- synack_ratio: TCP packets with SYN and ACK / TCP packets (answered handshakes);
- distinct_dports: distinct destination ports of TCP/UDP/SCTP packets (port scans);
- distinct_hosts: distinct addresses among sources and destinations (sweeps, DDoS).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgesnn.events import FLOW_FEATURES, MAX_GAP_US, PACKET

FLOW = np.dtype([
    ("src", "u1", (16,)), ("dst", "u1", (16,)), ("sport", "<u2"), ("dport", "<u2"),
    ("proto", "u1"), ("packets", "<i8"), ("bytes", "<i8"), ("first_t", "<i8"),
    ("last_t", "<i8"), ("syn", "<i4"), ("synack", "<i4"), ("fin", "<i4"), ("rst", "<i4"),
])


def _key(pk: np.ndarray) -> np.ndarray:
    """One 40-byte void key per packet: src, dst, sport, dport, proto."""
    k = np.zeros((len(pk), 40), np.uint8)
    k[:, 0:16] = pk["src"]
    k[:, 16:32] = pk["dst"]
    k[:, 32:34] = pk["sport"].astype("<u2").view(np.uint8).reshape(-1, 2)
    k[:, 34:36] = pk["dport"].astype("<u2").view(np.uint8).reshape(-1, 2)
    k[:, 36] = pk["proto"]
    k[:, 37] = pk["ip_version"]
    return k.view(np.dtype((np.void, 40))).ravel()


def flow_table(pk: np.ndarray) -> np.ndarray:
    """Per-5-tuple totals (FLOW records) of IP packets, in order of first appearance."""
    pk = pk[pk["ip_version"] > 0]
    if not len(pk):
        return np.zeros(0, FLOW)
    keys = _key(pk)
    _, first, inv = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    g = rank[inv]
    n = len(order)
    out = np.zeros(n, FLOW)
    fi = first[order]
    for f in ("src", "dst", "sport", "dport", "proto"):
        out[f] = pk[f][fi]
    out["packets"] = np.bincount(g, minlength=n)
    out["bytes"] = np.bincount(g, weights=pk["length"].astype(np.float64), minlength=n)
    out["first_t"] = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(out["first_t"], g, pk["t"])
    out["last_t"] = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(out["last_t"], g, pk["t"])
    fl = pk["tcp_flags"]
    tcp = pk["proto"] == 6
    out["syn"] = np.bincount(g, weights=tcp & ((fl & 0x12) == 0x02), minlength=n)
    out["synack"] = np.bincount(g, weights=tcp & ((fl & 0x12) == 0x12), minlength=n)
    out["fin"] = np.bincount(g, weights=tcp & ((fl & 0x01) != 0), minlength=n)
    out["rst"] = np.bincount(g, weights=tcp & ((fl & 0x04) != 0), minlength=n)
    return out


def window_features(pk: np.ndarray, t_end_us: int, window_us: int) -> np.ndarray:
    """One FLOW_FEATURES record for the packets with t in [t_end - window, t_end)."""
    sel = pk[(pk["t"] >= t_end_us - window_us) & (pk["t"] < t_end_us)]
    out = np.zeros(1, FLOW_FEATURES)
    out["t"] = t_end_us
    if not len(sel):
        return out
    w_s = window_us / 1e6
    out["packets_per_s"] = len(sel) / w_s
    out["bytes_per_s"] = float(sel["length"].sum()) / w_s
    tcp = (sel["ip_version"] > 0) & (sel["proto"] == 6)
    n_tcp = int(tcp.sum())
    if n_tcp:
        fl = sel["tcp_flags"][tcp]
        out["syn_ratio"] = np.count_nonzero((fl & 0x12) == 0x02) / n_tcp
        out["synack_ratio"] = np.count_nonzero((fl & 0x12) == 0x12) / n_tcp
    ported = (sel["ip_version"] > 0) & np.isin(sel["proto"], (6, 17, 132))
    out["distinct_dports"] = len(np.unique(sel["dport"][ported]))
    hosts = (sel["ip_version"] > 0) | (sel["arp_op"] > 0)
    if hosts.any():
        a = np.concatenate([sel["src"][hosts], sel["dst"][hosts]])
        a = np.ascontiguousarray(a).view(np.dtype((np.void, 16))).ravel()
        out["distinct_hosts"] = len(np.unique(a))
    return out


class FlowWindows:
    """Sliding windows over a packet stream; state is carried across `add` calls.

    A window is emitted once the stream has passed its end (a packet, or `t_until_us`, at or
    after it). Windows holding no packet are skipped, except the first one after activity (a
    zero record, so consumers see traffic stop); idle hours cost nothing.
    """

    def __init__(self, window_us: int, hop_us: int):
        if window_us <= 0 or hop_us <= 0:
            raise ValueError("window_us and hop_us must be positive")
        self.window_us = int(window_us)
        self.hop_us = int(hop_us)
        self._held = np.zeros(0, PACKET)
        self._next_end: int | None = None
        self._last_packet_t: int | None = None
        self._prev_busy = False
        self.late = 0  # packets older than an already emitted window's start: counted, dropped
        self.time_jumps = 0  # the clock went back by more than MAX_GAP_US: restarted there

    def add(self, pk: np.ndarray, t_until_us: int | None = None) -> np.ndarray:
        """Take packets; return FLOW_FEATURES of windows ending at or before the stream time.
        Packets more than `MAX_GAP_US` older than the open window are a time jump back (a clock
        reset): the open windows are emitted and the grid restarts at the new packets."""
        first = np.zeros(0, FLOW_FEATURES)
        if len(pk) and self._next_end is not None and (
                int(pk["t"].max()) < self._next_end - self.window_us - MAX_GAP_US):
            self.time_jumps += 1
            first = self.flush()
            self._held, self._next_end = self._held[:0], None
            self._last_packet_t, self._prev_busy = None, False
        out = self._add(pk, t_until_us)
        return np.concatenate([first, out]) if len(first) else out

    def _add(self, pk: np.ndarray, t_until_us: int | None) -> np.ndarray:
        if len(pk):
            if self._next_end is None:
                t0 = int(pk["t"].min())
                self._next_end = t0 - t0 % self.hop_us + self.hop_us
            lo = self._next_end - self.window_us
            late = pk["t"] < lo
            if late.any():
                self.late += int(late.sum())
                pk = pk[~late]
            self._held = np.concatenate([self._held, pk]) if len(self._held) else pk.copy()
            if len(pk):
                t = int(pk["t"].max())
                self._last_packet_t = max(t, self._last_packet_t or t)
        now = self._last_packet_t
        if t_until_us is not None and (now is None or t_until_us > now):
            now = t_until_us
        if self._next_end is None or now is None:
            return np.zeros(0, FLOW_FEATURES)
        return self._emit_until(now)

    def flush(self) -> np.ndarray:
        """Windows still open at the end of the stream (up to the last packet's windows)."""
        if self._next_end is None or self._last_packet_t is None:
            return np.zeros(0, FLOW_FEATURES)
        return self._emit_until(self._last_packet_t + self.window_us + self.hop_us)

    def _emit_until(self, now: int) -> np.ndarray:
        out = []
        while self._next_end is not None and self._next_end <= now:
            e = self._next_end
            held = self._held
            if len(held):
                held = self._held = held[held["t"] >= e - self.window_us]
            if len(held) and (held["t"] < e).any():
                out.append(window_features(held, e, self.window_us))
                self._prev_busy = True
                self._next_end = e + self.hop_us
            elif self._prev_busy:  # one empty window marks the end of activity
                out.append(window_features(held[:0], e, self.window_us))
                self._prev_busy = False
                self._next_end = e + self.hop_us
            elif len(held):  # silent stretch: jump to the first window of the next packet
                t = int(held["t"].min())
                self._next_end = max(e + self.hop_us, t - t % self.hop_us + self.hop_us)
            else:
                self._next_end = None  # nothing held: restart the grid at the next packet
        return np.concatenate(out) if out else np.zeros(0, FLOW_FEATURES)

    def status(self) -> dict[str, Any]:
        return {"held_packets": int(len(self._held)), "late_packets": self.late,
                "window_time_jumps": self.time_jumps}
