"""Every event and batch type of edgesnn, defined once.

Time is int64 microseconds everywhere. Stages exchange numpy batches, never per-event Python
objects: an `EventBatch` travels from a driver to an encoder, a `SpikeRaster` from an encoder
to a network and on to a readout, and a `Detection` from a readout to the sinks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# --- structured dtypes (packed; field order is part of the on-disk/record formats) ----------

#: One address-event of a DVS / event camera. p is 1 for ON (brighter), 0 for OFF.
DVS_EVENT = np.dtype([("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")])

#: One decoded network packet (Ethernet/VLAN/IPv4/IPv6/TCP/UDP/ICMP/ARP).
#: Addresses are 16 bytes; IPv4 addresses use the IPv4-mapped IPv6 form (::ffff:a.b.c.d).
PACKET = np.dtype(
    [
        ("t", "<i8"),
        ("length", "<u4"),  # original length on the wire, bytes
        ("caplen", "<u4"),  # captured bytes
        ("ethertype", "<u2"),
        ("vlan", "<u2"),  # 0 when untagged
        ("ip_version", "u1"),  # 0 (not IP), 4 or 6
        ("proto", "u1"),  # IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6); 0 otherwise
        ("src", "u1", (16,)),
        ("dst", "u1", (16,)),
        ("sport", "<u2"),
        ("dport", "<u2"),
        ("tcp_flags", "u1"),  # FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10 URG 0x20
        ("icmp_type", "u1"),
        ("ttl", "u1"),
        ("arp_op", "<u2"),  # 1 request, 2 reply; 0 when not ARP
    ]
)

#: One LiDAR return in the sensor frame (metres, degrees).
LIDAR_POINT = np.dtype(
    [
        ("t", "<i8"),
        ("x", "<f4"),
        ("y", "<f4"),
        ("z", "<f4"),
        ("distance_m", "<f4"),
        ("azimuth_deg", "<f4"),
        ("elevation_deg", "<f4"),
        ("intensity", "u1"),
        ("ring", "u1"),  # laser / beam index sorted by elevation (0 = lowest)
        ("return_idx", "u1"),  # 0 strongest/only, 1 last (dual return mode)
    ]
)

#: One flow-window feature record (network encoder input).
FLOW_FEATURES = np.dtype(
    [
        ("t", "<i8"),  # window end
        ("packets_per_s", "<f4"),
        ("bytes_per_s", "<f4"),
        ("syn_ratio", "<f4"),
        ("synack_ratio", "<f4"),
        ("distinct_dports", "<f4"),
        ("distinct_hosts", "<f4"),
    ]
)

#: One spike: step-aligned time and the channel (neuron) index.
SPIKE = np.dtype([("t", "<i8"), ("channel", "<i4")])

#: Batch kinds: what `EventBatch.events` holds.
#:  "dvs"     structured DVS_EVENT array
#:  "samples" 2-D float32 array (frames x channels), uniformly sampled at meta["sample_rate_hz"]
#:  "packets" structured PACKET array
#:  "lidar"   structured LIDAR_POINT array
#:  "records" structured array of any dtype with a "t" field (e.g. FLOW_FEATURES, NSL-KDD rows)
BATCH_KINDS = ("dvs", "samples", "packets", "lidar", "records")

#: A batch ending further than this from a stream's step or window grid is a time jump (a clock
#: reset or wrap), not a gap to fill: every binner, flow window and live driver uses this bound.
MAX_GAP_US = 10_000_000


@dataclass(slots=True)
class EventBatch:
    """A contiguous slice of one sensor stream covering [t_start_us, t_end_us).

    `dropped_before` counts events lost (overload, corrupt input) between the previous batch of
    the stream and this one, so that loss is visible downstream rather than silent.
    """

    stream: str
    seq: int
    t_start_us: int
    t_end_us: int
    events: np.ndarray
    kind: str = "dvs"
    dropped_before: int = 0
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.events.shape[0])

    @property
    def sample_t_us(self) -> np.ndarray:
        """Timestamps of a "samples" batch (one per frame)."""
        rate = float(self.meta["sample_rate_hz"])
        n = self.events.shape[0]
        return self.t_start_us + (np.arange(n, dtype=np.int64) * 1_000_000 / rate).astype(np.int64)


@dataclass(slots=True)
class SpikeRaster:
    """Spikes of `n_channels` channels over `n_steps` steps of `dt_us`, starting at `t0_us`.

    Stored like CSR over steps: the channels that spiked at step k are
    `idx[ptr[k]:ptr[k+1]]` (sorted, unique). This is also the input format of the SNN core.
    """

    stream: str
    seq: int
    t0_us: int
    dt_us: int
    n_channels: int
    ptr: np.ndarray  # int64, n_steps + 1
    idx: np.ndarray  # int32
    dropped_before: int = 0
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n_steps(self) -> int:
        return int(self.ptr.shape[0] - 1)

    @property
    def t_end_us(self) -> int:
        return self.t0_us + self.n_steps * self.dt_us

    @property
    def n_spikes(self) -> int:
        return int(self.ptr[-1] - self.ptr[0])

    def step_spikes(self, k: int) -> np.ndarray:
        return self.idx[self.ptr[k] : self.ptr[k + 1]]

    def to_dense(self) -> np.ndarray:
        """Bool matrix (n_steps, n_channels); for tests and small rasters."""
        out = np.zeros((self.n_steps, self.n_channels), dtype=bool)
        steps = np.repeat(np.arange(self.n_steps), np.diff(self.ptr))
        out[steps, self.idx[self.ptr[0] : self.ptr[-1]]] = True
        return out

    def counts(self) -> np.ndarray:
        """Spike count per channel over the whole raster."""
        return np.bincount(self.idx[self.ptr[0] : self.ptr[-1]], minlength=self.n_channels)

    @classmethod
    def from_dense(
        cls, spikes: np.ndarray, *, stream: str = "", seq: int = 0, t0_us: int = 0, dt_us: int
    ) -> SpikeRaster:
        spikes = np.asarray(spikes, dtype=bool)
        steps, chans = np.nonzero(spikes)
        ptr = np.zeros(spikes.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(steps, minlength=spikes.shape[0]), out=ptr[1:])
        return cls(stream, seq, t0_us, dt_us, spikes.shape[1], ptr, chans.astype(np.int32))

    @classmethod
    def empty(
        cls, n_channels: int, *, stream: str = "", seq: int = 0, t0_us: int = 0, dt_us: int
    ) -> SpikeRaster:
        return cls(
            stream, seq, t0_us, dt_us, n_channels, np.zeros(1, np.int64), np.zeros(0, np.int32)
        )


@dataclass(slots=True)
class Detection:
    """What a readout concluded: a label, a score, and the sensor time of the evidence."""

    label: str
    score: float
    t_sensor_us: int
    extra: dict[str, Any] = field(default_factory=dict)
