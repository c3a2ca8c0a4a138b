"""Windowed spike-count readout: argmax over output neurons with a minimum evidence.

Output neurons are grouped by label (`neurons_per_label` consecutive neurons each), or, when
`assignments` is given, neuron i votes for label `assignments[i]` (-1: no vote) — the labels
assigned to neurons after unsupervised learning (Diehl & Cook 2015); they can be replaced at run
time (`control("assign", assignments=[...])`) and are saved in checkpoints. Every
`window_ms` of sensor time the spikes of each label are summed; when the total reaches
`min_spikes` and the winner leads by `margin` the label with the most spikes is detected, with
score = its share of the window's spikes. `t_sensor_us` is the time of the last spike counted.
A window closes as soon as a raster reaching its end has been counted.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from edgesnn.components import Readout, register
from edgesnn.config.schema import Field, Schema
from edgesnn.events import Detection, SpikeRaster


@register
class SpikeCountReadout(Readout):
    """Windowed spike counts with argmax and a minimum-evidence threshold."""

    type_name = "spike_count"
    summary = "Argmax of windowed spike counts per label, with a minimum evidence."
    schema = Schema(
        {
            "labels": Field(("list", str), doc="One label per output group, in neuron order."),
            "neurons_per_label": Field(int, default=1, min=1, doc="Output neurons per label."),
            "window_ms": Field(float, default=50.0, min=0.001, doc="Counting window (ms)."),
            "min_spikes": Field(int, default=1, min=1, doc="Evidence needed to detect."),
            "margin": Field(
                int, default=1, min=0, doc="Spikes the winner must lead the runner-up by."
            ),
            "assignments": Field(
                ("list", int), default=[],
                doc="Label index per output neuron (-1: none); [] groups neurons in order.",
            ),
            "emit_repeats": Field(
                bool, default=True,
                doc="Emit every window; false emits only when the label changes.",
            ),
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self.labels = list(params["labels"])
        self.group = params["neurons_per_label"]
        self.window_us = int(params["window_ms"] * 1000)
        self.counts = np.zeros(len(self.labels), np.int64)
        self._total = 0  # spikes counted in this window
        self.window_start: int | None = None
        self.last_spike_t = 0
        self.last_label: str | None = None
        self.windows = 0
        self._lock = threading.Lock()  # run-time assignment and checkpoints come from elsewhere
        self.assignments: np.ndarray | None = None
        if params["assignments"]:
            self._set_assignments(params["assignments"])

    def _set_assignments(self, values: Any) -> None:
        try:  # integers only: 0.7 is no label index, 10**30 no int64
            a = np.asarray(values)
            if a.dtype.kind not in "iu" and a.size:
                raise TypeError(f"not integers ({a.dtype})")
            a = a.astype(np.int64)
        except (TypeError, ValueError, OverflowError) as e:
            raise ValueError(f"assignments must be a list of label indices: {e}") from None
        if a.ndim != 1 or a.size == 0 or a.max() >= len(self.labels) or a.min() < -1:
            raise ValueError(
                f"assignments must be label indices in -1..{len(self.labels) - 1}, one per neuron"
            )
        self.assignments = a

    @property
    def n_inputs(self) -> int:
        if self.assignments is not None:
            return int(self.assignments.size)
        return len(self.labels) * self.group

    def check(self, inputs: list[Any]) -> list[str]:
        out = []
        for c in inputs:
            n = getattr(c, "n_outputs", None) or getattr(c, "n_channels", None)
            if isinstance(n, int) and n != self.n_inputs:
                out.append(
                    f"expects {self.n_inputs} input neurons ({len(self.labels)} labels x "
                    f"{self.group}) but {c.id!r} has {n} outputs"
                )
        return out

    def _close_window(self) -> list[Detection]:
        self.windows += 1
        c = self.counts
        if not self._total:  # nothing counted: nothing to detect, nothing to clear
            return []
        total = self._total
        dets: list[Detection] = []
        if total >= self.params["min_spikes"]:
            counts = c.tolist()
            best = max(counts)
            # the winner is the last label with the most spikes; a tie for the most leaves
            # no lead (as a stable argsort, reversed, has it)
            win = len(counts) - 1 - counts[::-1].index(best)
            if counts.count(best) > 1:
                lead = 0
            else:
                lead = best - max((v for v in counts if v < best), default=0)
            if lead >= self.params["margin"]:
                label = self.labels[win]
                if self.params["emit_repeats"] or label != self.last_label:
                    dets.append(
                        Detection(
                            label, float(best) / total, self.last_spike_t,
                            {"counts": counts, "window_us": self.window_us},
                        )
                    )
                self.last_label = label
        self.counts = np.zeros_like(c)
        self._total = 0
        return dets

    def update(self, raster: SpikeRaster) -> list[Detection]:
        with self._lock:
            return self._update(raster)

    def _votes(self, neurons: np.ndarray) -> None:
        n = len(self.labels)
        if self.assignments is None:
            lab = neurons // self.group
            lab = lab[lab < n]
        else:
            lab = self.assignments[neurons[neurons < self.assignments.size]]
            lab = lab[lab >= 0]
        self.counts += np.bincount(lab, minlength=n)
        self._total += int(lab.size)

    def _update(self, raster: SpikeRaster) -> list[Detection]:
        if self.window_start is None:
            self.window_start = raster.t0_us
        dets: list[Detection] = []
        dt = raster.dt_us
        ptr, idx = raster.ptr, raster.idx
        steps_per_window = max(1, self.window_us // dt)
        k = 0
        n = raster.n_steps
        while k < n:
            # steps remaining in the current window
            t_k = raster.t0_us + k * dt
            w_end = self.window_start + steps_per_window * dt
            if t_k >= w_end:
                dets += self._close_window()
                self.window_start = w_end
                continue
            k_end = min(n, k + (w_end - t_k + dt - 1) // dt)
            sl = idx[ptr[k] : ptr[k_end]]
            if len(sl):
                self._votes(sl)
                last_step = int(np.searchsorted(ptr, ptr[k_end] - 1, side="right") - 1)
                self.last_spike_t = raster.t0_us + last_step * dt
            k = k_end
        # a window ending with this raster closes now, not when the next step comes in
        while self.window_start + steps_per_window * dt <= raster.t0_us + n * dt:
            dets += self._close_window()
            self.window_start += steps_per_window * dt
        return dets

    def control(self, command: str, **kwargs: Any) -> Any:
        if command == "reset":
            with self._lock:
                self.counts[:] = 0
                self._total = 0
                self.last_label = None
            return {"reset": True}
        if command == "assign":
            values = kwargs.get("assignments")
            if values is None:
                raise ValueError('"assign" needs assignments=[label index per neuron]')
            n = self.n_inputs  # the neurons wired to this readout
            with self._lock:
                old = self.assignments
                self._set_assignments(values)
                if self.assignments.size != n:  # type: ignore[union-attr]
                    self.assignments = old
                    raise ValueError(f"assignments must give one label index per input "
                                     f"neuron ({n}), got {len(values)}")
            return {"assigned": int(self.assignments.size)}  # type: ignore[union-attr]
        raise KeyError(command)

    def checkpoint_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The neuron-to-label assignments (when set) for checkpoints."""
        with self._lock:
            arrays = {} if self.assignments is None else {"assignments": self.assignments.copy()}
            return arrays, {"labels": self.labels}

    def restore_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Put checkpointed assignments back (ValueError when the labels differ)."""
        if meta.get("labels", self.labels) != self.labels:
            raise ValueError(f"checkpoint labels {meta.get('labels')} differ from {self.labels}")
        a = arrays.get("assignments")
        if a is not None and (a.ndim != 1 or a.size != self.n_inputs):
            raise ValueError(f"checkpoint assignments cover {a.size} neurons, not the "
                             f"{self.n_inputs} this readout reads")
        with self._lock:
            if a is not None:
                self._set_assignments(a)

    def flush(self) -> list[Detection]:
        return self._close_window() if self._total else []

    def status(self) -> dict[str, Any]:
        return {"windows": self.windows}
