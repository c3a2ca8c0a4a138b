"""Prometheus metrics of a running daemon, through `prometheus_client` (escaping, naming and
the text format are the library's, not hand-written).

Each daemon has its own `CollectorRegistry`: nothing lands in the process-global registry, so
two daemons (or tests) in one process never share series. Counters of the pipeline are read
from the runtime at scrape time (no cost on the data path); the detection latency histogram
is observed once per published detection.

Detection latency is host time at publish minus the host time at which the driver read the
batch carrying the detection's sensor time (`Runtime.arrivals`), so it is measured on one
clock whether the sensor stamps host time, its own clock, or replays a file.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edgesnn import wire

#: the Prometheus text exposition format this endpoint serves
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: latency buckets (seconds): 100 µs .. 10 s
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# what a component's `items` counter counts, by kind: events (drivers), spikes (encoders,
# networks), detections (readouts)
_ITEMS = {"driver": "events", "encoder": "spikes", "network": "spikes", "readout": "detections"}
#: guard and loss counters components report in their status (/status), exported by key:
#: (metric name without the edgesnn_component_ prefix, help); counters get `_total`
GUARD_COUNTERS = {
    "kernel_drops": ("kernel_drops", "Datagrams or frames the kernel dropped for the "
                     "component's socket (full receive buffer; /proc/net/udp, AF_PACKET "
                     "PACKET_STATISTICS)."),
    "overflow_dropped": ("overflow_dropped", "Events a live driver dropped because the "
                         "pipeline fell behind (its pending bound was full)."),
    "malformed": ("malformed", "Malformed input (datagram tails, frames) refused."),
    "out_of_range": ("out_of_range", "Events or points outside the sensor, refused."),
    "bad_datagrams": ("bad_datagrams", "Datagrams refused as not whole frames or bad headers."),
    "queue_overflows": ("queue_overflows", "Datagrams dropped because the driver's queue was "
                        "full."),
    "lost_frames": ("lost_frames", "Frames a sequence-numbered sender sent that never arrived."),
    "lost": ("sensor_lost", "Times a live sensor went silent or away (socket reopened)."),
    "reconnects": ("reconnects", "Times a lost device was reopened."),
    "time_jumps": ("time_jumps", "Time jumps of the stream's clock (re-anchored, no steps "
                   "allocated for the gap)."),
    "jump_discarded": ("jump_discarded", "Items held for the old time grid discarded by a "
                       "time jump."),
    "window_time_jumps": ("window_time_jumps", "Times the clock of a driver's or encoder's "
                          "record or flow windows went back (windows restarted there)."),
    "write_dropped": ("sink_write_dropped", "Messages a file or stdout sink dropped because "
                      "its reader did not keep up (write buffer full)."),
}
#: gauges of the same kind: status key -> (metric name, help)
GUARD_GAUGES = {
    "queue_bytes": ("queue_bytes", "Bytes of numpy payload waiting in the input channel."),
    "max_bytes": ("queue_max_bytes", "Byte bound of the input channel (buffer_bytes)."),
    "high_water_bytes": ("queue_high_water_bytes", "Most bytes the input channel has held."),
    "write_buffer_bytes": ("sink_write_buffer_bytes", "Bytes a file or stdout sink holds "
                           "waiting for its reader."),
}

_ITEM_HELP = {
    "events": "Sensor events read by the driver.",
    "spikes": "Spikes produced by the component.",
    "detections": "Detections produced by the readout.",
}


def build_versions() -> dict[str, str]:
    """Versions of edgesnn, Python and numba (the build_info labels)."""
    from edgesnn import __version__

    try:
        import numba

        nb = str(numba.__version__)
    except Exception:  # pragma: no cover - numba is a core dependency
        nb = "absent"
    return {"version": __version__, "python": platform.python_version(), "numba": nb}


def upstream_drivers(specs: dict[str, Any], cid: str) -> list[str]:
    """Ids of the drivers feeding component `cid` (walking `inputs` back), in config order."""
    out: list[str] = []
    todo, seen = [cid], set()
    while todo:
        c = todo.pop()
        if c in seen or c not in specs:
            continue
        seen.add(c)
        if specs[c].kind == "driver":
            out.append(c)
        todo.extend(specs[c].inputs)
    return sorted(out, key=list(specs).index)


class PipelineCollector(Collector):
    """Reads the runtime (via `get_runtime`) at scrape time and yields its metric families."""

    def __init__(self, get_runtime: Callable[[], Any], started_monotonic: float):
        self.get_runtime = get_runtime
        self.started = started_monotonic
        self.versions = build_versions()

    def collect(self) -> Iterator[Metric]:
        rt = self.get_runtime()
        pipe = str(rt.name)
        info = GaugeMetricFamily("edgesnn_build_info", "Versions of edgesnn, Python and numba.",
                                 labels=list(self.versions))
        info.add_metric(list(self.versions.values()), 1.0)
        yield info
        up = GaugeMetricFamily("edgesnn_uptime_seconds", "Seconds since the daemon started.",
                               labels=["pipeline"])
        up.add_metric([pipe], time.monotonic() - self.started)
        yield up
        state = GaugeMetricFamily("edgesnn_pipeline_state",
                                  "1 for the pipeline's current state, 0 for the others.",
                                  labels=["pipeline", "state"])
        for s in ("created", "running", "draining", "stopped"):
            state.add_metric([pipe, s], 1.0 if rt.state == s else 0.0)
        yield state
        healthy = GaugeMetricFamily("edgesnn_healthy", "1 unless a component has failed.",
                                    labels=["pipeline"])
        healthy.add_metric([pipe], 0.0 if rt.failure is not None else 1.0)
        yield healthy
        det = CounterMetricFamily("edgesnn_detections", "Detections published by the pipeline.",
                                  labels=["pipeline"])
        det.add_metric([pipe], float(rt.next_seq))
        yield det
        yield from self._components(rt, pipe)
        yield from self._guards(rt, pipe)
        yield from self._checkpoint(rt, pipe)

    def _components(self, rt: Any, pipe: str) -> Iterator[Metric]:
        counters = rt.counters()
        labels = ["pipeline", "component", "kind"]

        def fam(cls: type, name: str, help_: str) -> Any:
            return cls(name, help_, labels=labels)

        received = fam(CounterMetricFamily, "edgesnn_component_received",
                       "Items offered to the component's input channel.")
        emitted = fam(CounterMetricFamily, "edgesnn_component_emitted",
                      "Items (batches, rasters, detections, messages) the component produced.")
        dropped = fam(CounterMetricFamily, "edgesnn_component_dropped",
                      "Items dropped by the component's input channel (its when_full policy).")
        errors = fam(CounterMetricFamily, "edgesnn_component_errors",
                     "Errors raised by the component.")
        busy = fam(CounterMetricFamily, "edgesnn_component_busy_seconds",
                   "Seconds spent in the component's own work.")
        depth = fam(GaugeMetricFamily, "edgesnn_component_queue_depth",
                    "Items waiting in the component's input channel.")
        capacity = fam(GaugeMetricFamily, "edgesnn_component_queue_capacity",
                       "Capacity of the component's input channel (items).")
        items = {k: fam(CounterMetricFamily, f"edgesnn_component_{k}", h)
                 for k, h in _ITEM_HELP.items()}
        learning = GaugeMetricFamily("edgesnn_network_learning",
                                     "1 when the network applies plasticity, else 0.",
                                     labels=["pipeline", "component"])
        steps = CounterMetricFamily("edgesnn_network_steps", "Time steps the network has run.",
                                    labels=["pipeline", "component"])
        # network sinks with an outbox (mqtt): what waits for the broker, and what was lost
        sl = ["pipeline", "component"]
        ob_dropped = CounterMetricFamily(
            "edgesnn_sink_outbox_dropped",
            "Messages a sink dropped because its outbox was full (broker away too long).",
            labels=sl)
        ob_depth = GaugeMetricFamily("edgesnn_sink_outbox_depth",
                                     "Messages waiting in a sink's outbox for the broker.",
                                     labels=sl)
        ob_cap = GaugeMetricFamily("edgesnn_sink_outbox_capacity",
                                   "Most messages a sink's outbox holds.",
                                   labels=sl)
        connected = GaugeMetricFamily("edgesnn_sink_connected",
                                      "1 while the sink is connected to its broker, else 0.",
                                      labels=sl)
        for cid, row in counters.items():
            kind = str(row["kind"])
            lv = [pipe, str(cid), kind]
            received.add_metric(lv, float(row.get("received", 0)))
            emitted.add_metric(lv, float(row.get("emitted", 0)))
            dropped.add_metric(lv, float(row.get("dropped", 0)))
            errors.add_metric(lv, float(row.get("errors", 0)))
            busy.add_metric(lv, float(row.get("busy_s", 0.0)))
            ch = rt.inbox.get(cid)
            if ch is not None:
                depth.add_metric(lv, float(ch.depth))
                capacity.add_metric(lv, float(ch.capacity))
            what = _ITEMS.get(kind)
            if what is not None:
                items[what].add_metric(lv, float(row.get("items", 0)))
            if kind == "network":
                if "learning" in row:
                    learning.add_metric([pipe, str(cid)], 1.0 if row["learning"] else 0.0)
                if isinstance(row.get("steps"), int):
                    steps.add_metric([pipe, str(cid)], float(row["steps"]))
            if kind == "sink" and "outbox_depth" in row:
                ob_dropped.add_metric([pipe, str(cid)], float(row.get("outbox_dropped", 0)))
                ob_depth.add_metric([pipe, str(cid)], float(row["outbox_depth"]))
                ob_cap.add_metric([pipe, str(cid)], float(row.get("outbox_capacity", 0)))
                connected.add_metric([pipe, str(cid)], 1.0 if row.get("connected") else 0.0)
        for f in (received, emitted, dropped, errors, busy, depth, capacity, *items.values(),
                  learning, steps, ob_dropped, ob_depth, ob_cap, connected):
            if f.samples:
                yield f

    def _guards(self, rt: Any, pipe: str) -> Iterator[Metric]:
        """Loss, time-jump, byte-bound and connection counters from the components' status."""
        labels = ["pipeline", "component", "kind"]
        fams: list[tuple[str, Any]] = [
            (key, CounterMetricFamily(f"edgesnn_component_{name}", help_, labels=labels))
            for key, (name, help_) in GUARD_COUNTERS.items()]
        fams += [(key, GaugeMetricFamily(f"edgesnn_component_{name}", help_, labels=labels))
                 for key, (name, help_) in GUARD_GAUGES.items()]
        connected = GaugeMetricFamily(
            "edgesnn_component_connected",
            "1 while a sensor or broker connection is up, 0 while it is down.", labels=labels)
        for cid, row in rt.counters().items():
            lv = [pipe, str(cid), str(row["kind"])]
            for key, fam in fams:
                v = row.get(key)
                if isinstance(v, int | float) and not isinstance(v, bool):
                    fam.add_metric(lv, float(v))
            if isinstance(row.get("connected"), bool):
                connected.add_metric(lv, 1.0 if row["connected"] else 0.0)
        for _, fam in fams:
            if fam.samples:
                yield fam
        if connected.samples:
            yield connected

    def _checkpoint(self, rt: Any, pipe: str) -> Iterator[Metric]:
        status_fn = rt.extra_status.get("checkpoint")
        if status_fn is None:
            return
        try:
            st = status_fn()
        except Exception:  # status must never break a scrape
            return
        written = CounterMetricFamily("edgesnn_checkpoints_written",
                                      "Checkpoints written since start.", labels=["pipeline"])
        written.add_metric([pipe], float(st.get("written", 0)))
        failed = CounterMetricFamily("edgesnn_checkpoints_failed",
                                     "Checkpoints that failed to write.", labels=["pipeline"])
        failed.add_metric([pipe], float(st.get("failed", 0)))
        yield written
        yield failed
        for key, help_ in (("corrupt", "Checkpoints skipped at restore as damaged or invalid."),
                           ("unfit", "Checkpoints skipped at restore as not fitting the "
                                     "pipeline.")):
            fam = CounterMetricFamily(f"edgesnn_checkpoints_{key}", help_, labels=["pipeline"])
            fam.add_metric([pipe], float(st.get(key, 0) or 0))
            yield fam
        last = st.get("last_written_unix")
        if last:
            age = GaugeMetricFamily("edgesnn_checkpoint_age_seconds",
                                    "Seconds since the last checkpoint was written.",
                                    labels=["pipeline"])
            age.add_metric([pipe], max(0.0, time.time() - float(last)))
            yield age


class _HttpCollector(Collector):
    """The HTTP API's connection guard: open, refused and cut connections, accept() errors."""

    _FAMILIES = {
        "rejected": "Connections closed at once because [http] max_connections were open.",
        "timed_out": "Connections cut because a request head did not arrive in time.",
        "body_timed_out": "Connections cut because a request body did not arrive in time.",
        "accept_errors": "accept() failures (out of file descriptors).",
        "server_errors": "Requests answered 503 because the daemon failed (a checkpoint or "
                         "file that could not be written, a handler error).",
    }

    def __init__(self, owner: DaemonMetrics):
        self.owner = owner

    def collect(self) -> Iterator[Metric]:
        fn = self.owner.http_counters
        if fn is None:
            return
        try:
            c = fn()
        except Exception:  # never break a scrape
            return
        g = GaugeMetricFamily("edgesnn_http_connections_open", "Open HTTP connections.")
        g.add_metric([], float(c.get("open", 0)))
        yield g
        for key, help_ in self._FAMILIES.items():
            f = CounterMetricFamily(f"edgesnn_http_{key}", help_)
            f.add_metric([], float(c.get(key, 0)))
            yield f


class DaemonMetrics:
    """The registry of one daemon: pipeline collector plus the detection latency histogram."""

    def __init__(self, get_runtime: Callable[[], Any]):
        self.get_runtime = get_runtime
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(PipelineCollector(get_runtime, time.monotonic()))
        self.latency = Histogram(
            "edgesnn_detection_latency_seconds",
            "Host time from the arrival of a detection's sensor data to its publication.",
            labelnames=["pipeline", "readout"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.latency_unknown = Counter(
            "edgesnn_detection_latency_unknown",
            "Detections whose sensor data was no longer in the arrival ring (no latency).",
            labelnames=["pipeline", "readout"], registry=self.registry,
        )
        self._upstream: tuple[Any, dict[str, list[str]]] = (None, {})
        #: set by the listening HTTP API: its connection guard's counters
        self.http_counters: Callable[[], dict[str, int]] | None = None
        self.registry.register(_HttpCollector(self))

    def observe(self, msg: dict[str, Any]) -> float | None:
        """Record the latency of a just-published detection message; returns it (seconds)."""
        rt = self.get_runtime()
        src = str(msg.get("source", ""))
        t_sensor = int(msg.get("t_sensor_us", 0))
        if self._upstream[0] is not rt:  # the drivers behind each readout, per runtime
            self._upstream = (rt, {})
        drivers = self._upstream[1].get(src)
        if drivers is None:
            drivers = self._upstream[1][src] = upstream_drivers(rt.specs, src)
        arrival = None
        for d in drivers:
            clock = getattr(rt, "arrivals", {}).get(d)
            if clock is not None:
                arrival = clock.arrival_us(t_sensor)
                if arrival is not None:
                    break
        if arrival is None:
            self.latency_unknown.labels(str(rt.name), src).inc()
            return None
        lat = max(0.0, (wire.now_us() - arrival) / 1e6)
        self.latency.labels(str(rt.name), src).observe(lat)
        return lat

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (`CONTENT_TYPE`)."""
        return generate_latest(self.registry)
