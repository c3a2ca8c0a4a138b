"""Replay drivers for pcap/pcapng captures: decoded packets, or sliding-window flow features."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from edgesnn_drivers.network.pcap import iter_packets
from edgesnn_drivers.network.windows import TimeWindows

from edgesnn.components import register
from edgesnn.config.schema import Field, Schema
from edgesnn.events import FLOW_FEATURES, PACKET, EventBatch
from edgesnn.flows import FlowWindows
from edgesnn.replay import REPLAY_SCHEMA, ReplayDriver


@register
class PcapDriver(ReplayDriver):
    """Replays a pcap or pcapng capture (recognised by magic number) as PACKET batches."""

    type_name = "pcap"
    batch_kind = "packets"
    summary = "Network packets from a pcap/pcapng capture (Ethernet/VLAN/IP/TCP/UDP/ICMP/ARP)."
    schema = REPLAY_SCHEMA

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self.packets = 0
        self.truncated = 0
        self.time_jumps = 0  # of the windows of earlier replays (a looped replay restarts)
        self.win: TimeWindows | None = None

    def iter_batches(self) -> Iterator[EventBatch]:
        if self.win is not None:
            self.time_jumps += self.win.time_jumps
        win = self.win = TimeWindows(self.id, "packets", PACKET, self.params["batch_us"],
                                     guard_us=0)
        for ch in iter_packets(self.resolve_path()):
            self.packets += len(ch.packets)
            self.truncated += ch.truncated
            yield from win.add(ch.packets)
        yield from win.flush()

    def status(self) -> dict[str, Any]:
        jumps = self.time_jumps + (self.win.time_jumps if self.win else 0)
        return {"packets": self.packets, "truncated_frames": self.truncated,
                "window_time_jumps": jumps}


FLOW_SCHEMA = Schema({
    "window_us": Field(int, default=1_000_000, min=1, doc="Length of each flow window (µs)."),
    "hop_us": Field(int, default=100_000, min=1, doc="A window ends every hop_us (µs)."),
})


@register
class PcapFlowDriver(ReplayDriver):
    """Replays a capture as sliding-window FLOW_FEATURES records."""

    type_name = "pcap_flows"
    batch_kind = "records"
    summary = "Sliding-window flow features (rates, SYN ratios, ports, hosts) from a capture."
    schema = REPLAY_SCHEMA | FLOW_SCHEMA

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self.packets = 0
        self.windows = 0
        self.time_jumps = 0  # of the flow windows of earlier replays (a looped replay restarts)
        self.fw: FlowWindows | None = None

    def iter_batches(self) -> Iterator[EventBatch]:
        if self.fw is not None:
            self.time_jumps += self.fw.time_jumps
        fw = self.fw = FlowWindows(self.params["window_us"], self.params["hop_us"])
        win = TimeWindows(self.id, "records", FLOW_FEATURES, self.params["batch_us"])
        for ch in iter_packets(self.resolve_path()):
            self.packets += len(ch.packets)
            rec = fw.add(ch.packets)
            self.windows += len(rec)
            yield from win.add(rec)
        rec = fw.flush()
        self.windows += len(rec)
        yield from win.add(rec)
        yield from win.flush()

    def status(self) -> dict[str, Any]:
        jumps = self.time_jumps + (self.fw.time_jumps if self.fw else 0)
        return {"packets": self.packets, "windows": self.windows, "window_time_jumps": jumps}
