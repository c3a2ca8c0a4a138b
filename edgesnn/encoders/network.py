"""Network traffic encoder: per-window flow features, population (Gaussian receptive field) coded.

Input is either "packets" batches (aggregated here into sliding windows of `window_us` ending
every `hop_us`: packet and byte rates, SYN and SYN-ACK ratios, distinct destination ports and
hosts; see `edgesnn.flows`) or "records" batches that already carry the
listed `features` as fields (FLOW_FEATURES from the `pcap_flows` driver, NSL-KDD rows).

Each feature is normalised to x in [0, 1] with its `ranges` entry (log1p scale for the
features in `log_features`, which span orders of magnitude), held from one window to the
next, and coded by `neurons` Gaussian receptive fields (the generic population kernel): field
i of feature f (output channel f * neurons + i) fires at exp(-(x - mu_i)^2 / (2 sigma^2)) x
max_rate_hz. Spikes are binned at the pipeline's dt; a partial last step waits for `flush()`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgesnn.components import BuildContext, Encoder, register
from edgesnn.config.schema import Field, Schema
from edgesnn.encoders.generic import (
    StepValues,
    population_kernel,
    population_schema,
    receptive_fields,
)
from edgesnn.events import FLOW_FEATURES, EventBatch, SpikeRaster

FLOW_FIELDS = [n for n in FLOW_FEATURES.names if n != "t"]  # type: ignore[union-attr]
DEFAULT_RANGES: dict[str, list[float]] = {
    "packets_per_s": [0.0, 10_000.0],
    "bytes_per_s": [0.0, 10_000_000.0],
    "syn_ratio": [0.0, 1.0],
    "synack_ratio": [0.0, 1.0],
    "distinct_dports": [0.0, 1000.0],
    "distinct_hosts": [0.0, 1000.0],
}
DEFAULT_LOG = ["packets_per_s", "bytes_per_s", "distinct_dports", "distinct_hosts"]


def _ranges_check(v: Any) -> str | None:
    for k, r in v.items():
        if (not isinstance(r, list) or len(r) != 2
                or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in r)
                or not r[1] > r[0]):
            return f"ranges.{k} must be [lo, hi] with hi > lo"
    return None


def normalise(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, log: np.ndarray
              ) -> np.ndarray:
    """Features (n, F) to [0, 1]: linear, or log1p-scaled where `log` is set."""
    v = np.clip(values - lo, 0.0, None) / (hi - lo)
    scaled = np.log1p(v * 1000.0) / np.log1p(1000.0)  # log over three decades of the range
    return np.clip(np.where(log, scaled, v), 0.0, 1.0)


@register
class NetworkFlowEncoder(Encoder):
    """Flow features of packet windows (or feature records) to population-coded spikes."""

    type_name = "network_flow"
    summary = "Packets or flow records -> windowed flow features -> Gaussian population spikes."
    schema = Schema({
        "features": Field(("list", str), default=list(FLOW_FIELDS),
                          doc="Fields to code (FLOW_FEATURES names, or record fields)."),
        "ranges": Field(dict, default={}, check=_ranges_check,
                        doc="Per feature [lo, hi]; flow features have defaults."),
        "log_features": Field(("list", str), default=list(DEFAULT_LOG),
                              doc="Features normalised on a log scale."),
        "window_us": Field(int, default=1_000_000, min=1,
                           doc="Flow window length when the input is packets (µs)."),
        "hop_us": Field(int, default=100_000, min=1,
                        doc="A flow window ends every hop_us when the input is packets (µs)."),
    }) | population_schema(1024, "feature")

    def __init__(self, id: str, params: dict[str, Any], ctx: BuildContext):
        super().__init__(id, params, ctx)
        from edgesnn.flows import FlowWindows

        feats = params["features"]
        if not feats:
            raise ValueError("features must not be empty")
        missing = [f for f in feats if f not in params["ranges"] and f not in DEFAULT_RANGES]
        if missing:
            raise ValueError(f"no range for features {missing}: add them to ranges")
        rng = [params["ranges"].get(f, DEFAULT_RANGES.get(f)) for f in feats]
        self.lo = np.array([r[0] for r in rng], np.float64)  # type: ignore[index]
        self.hi = np.array([r[1] for r in rng], np.float64)  # type: ignore[index]
        self.log = np.array([f in params["log_features"] for f in feats])
        self.centres, self.sigma = receptive_fields(params["neurons"], params["width"])
        self.p_max = params["max_rate_hz"] * ctx.dt_us * 1e-6
        self._phase = np.zeros(len(feats) * params["neurons"])
        self.steps = StepValues(ctx.dt_us, len(feats))
        self.windows = FlowWindows(params["window_us"], params["hop_us"])
        seed = params["seed"]
        self._rng = np.random.default_rng(ctx.seed if seed < 0 else seed)
        self._seq = 0
        self._dropped = 0
        self.records_in = 0
        self.packets_in = 0

    @property
    def n_channels(self) -> int:
        return len(self.params["features"]) * self.params["neurons"]

    def _records(self, batch: EventBatch) -> np.ndarray:
        if batch.kind == "packets":
            self.packets_in += len(batch.events)
            return self.windows.add(batch.events, batch.t_end_us)
        return batch.events

    def _values(self, rec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        names = rec.dtype.names or ()
        missing = [f for f in self.params["features"] if f not in names]
        if missing:
            raise ValueError(f"input records lack fields {missing} (they have {list(names)})")
        v = np.empty((len(rec), len(self.params["features"])))
        for i, f in enumerate(self.params["features"]):
            v[:, i] = rec[f]
        return np.asarray(rec["t"], np.int64), normalise(v, self.lo, self.hi, self.log)

    def encode(self, batch: EventBatch) -> SpikeRaster | None:
        rec = self._records(batch)
        self.records_in += len(rec)
        t, x = self._values(rec)
        t0, vals = self.steps.push(batch.t_start_us, batch.t_end_us, t, x)
        self._dropped += batch.dropped_before
        return self._raster(t0, vals)

    def flush(self) -> SpikeRaster | None:
        rec = self.windows.flush()
        r1 = None
        if len(rec) and self.steps.clock.t0_us is not None:
            t, x = self._values(rec)
            end = int(t.max()) + 1
            t0, vals = self.steps.push(self.steps.clock.t0_us, end, t, x)
            r1 = self._raster(t0, vals)
        t0, vals = self.steps.flush()
        r2 = self._raster(t0, vals)
        if r1 is None or r2 is None:
            return r1 or r2
        return _join(r1, r2)

    def _raster(self, t0: int, x: np.ndarray) -> SpikeRaster | None:
        if x.shape[0] == 0:
            return None
        out = np.zeros((x.shape[0], self.n_channels), bool)
        uni = (self._rng.random((x.shape[0], self.n_channels))
               if self.params["mode"] == "poisson" else np.zeros((0, self.n_channels)))
        population_kernel(np.ascontiguousarray(x), self.centres, self.sigma, self.p_max, uni,
                          self._phase, out)
        r = SpikeRaster.from_dense(out, stream=self.id, seq=self._seq, t0_us=t0,
                                   dt_us=self.ctx.dt_us)
        r.dropped_before = self._dropped
        self._dropped = 0
        self._seq += 1
        return r

    def status(self) -> dict[str, Any]:
        return {"records_in": self.records_in, "packets_in": self.packets_in,
                "time_jumps": self.steps.clock.time_jumps,
                "jump_discarded": self.steps.jump_discarded, **self.windows.status()}


def _join(a: SpikeRaster, b: SpikeRaster) -> SpikeRaster:
    """Two consecutive rasters as one (b starts where a ends)."""
    ptr = np.concatenate([a.ptr, b.ptr[1:] - b.ptr[0] + a.ptr[-1]])
    idx = np.concatenate([a.idx[a.ptr[0]:a.ptr[-1]], b.idx[b.ptr[0]:b.ptr[-1]]])
    return SpikeRaster(a.stream, a.seq, a.t0_us, a.dt_us, a.n_channels, ptr, idx,
                       a.dropped_before + b.dropped_before)
