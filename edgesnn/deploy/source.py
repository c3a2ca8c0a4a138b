"""Input spikes for `edgesnn deploy --check-on` from a sensor recording or a pipeline's source.

A `PipelineSource` names a pipeline (TOML path or shipped name) and, optionally, a recording:
the pipeline's file-replay driver reads the recording (its `path` replaced, as for `edgesnn
replay`) or, without one, the pipeline's own driver runs. Either way it runs at speed "max"
with `loop = false`, and the encoder fed by that driver turns its batches into the spikes
(CSR over steps of the pipeline's dt) that the float and the quantized model both receive.

Unlike an `.npz` recording the models are not reset between samples: they run continuously,
as in the daemon, and the recording is cut into readout windows (by default the `window_ms`
of the pipeline's readout) for the readout agreement and the energy per inference.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.errors import ConfigError, FormatError, Problem


class SourceError(ConfigError):
    """The pipeline or the recording cannot feed the model (every problem listed)."""


@dataclass
class PipelineSource:
    """Where the check's input spikes come from: a pipeline's driver and encoder."""

    pipeline: str
    recording: str | None = None
    driver: str | None = None
    encoder: str | None = None
    overrides: list[str] = field(default_factory=list)
    max_steps: int | None = None
    window_ms: float | None = None

    def read(self, n_inputs: int, dt_us: int, progress: bool = True) -> Any:  # DeployRecording
        """Run driver and encoder over the whole source; the spikes as a DeployRecording."""
        from edgesnn.deploy.report import DeployRecording, _Progress

        cfg, drv_cfg, enc_cfg = self._configure()
        problems = []
        if cfg.settings["dt_us"] != dt_us:
            problems.append(Problem("pipeline.dt_us", f"the pipeline steps {cfg.settings['dt_us']}"
                                    f" us, the model {dt_us} us"))  # fmt: skip
        ctx = cfg.context()
        drv = drv_cfg.cls(drv_cfg.id, drv_cfg.params, ctx)
        enc = enc_cfg.cls(enc_cfg.id, enc_cfg.params, ctx)
        enc.check([drv])  # lets the encoder learn the sensor geometry, as at validation
        if enc.n_channels != n_inputs:
            problems.append(Problem(f"encoders.{enc_cfg.id}", f"gives {enc.n_channels} channels, "
                                    f"the model has {n_inputs} inputs"))  # fmt: skip
        if problems:
            raise SourceError([Problem(p.path, p.message, source=cfg.path) for p in problems])
        label = f"encode {Path(self.recording).name if self.recording else cfg.name}"
        bar = _Progress(self.max_steps, label, progress)
        ptr, idx, t0_us, dropped = asyncio.run(_collect(drv, enc, dt_us, self.max_steps,
                                                        bar.tick))  # fmt: skip
        bar.close()
        n_steps = ptr.size - 1
        what = self.recording or f"the {drv_cfg.id!r} driver of {cfg.path}"
        if n_steps == 0:
            raise FormatError(f"{enc_cfg.id!r} produced no input steps from {what}",
                              path=self.recording)  # fmt: skip
        window_ms = self.window_ms if self.window_ms else _readout_window_ms(cfg)
        if window_ms:
            w = max(1, round(window_ms * 1000 / dt_us))
            sp = np.append(np.arange(0, n_steps, w, dtype=np.int64), n_steps)
        else:
            sp = np.asarray([0, n_steps], np.int64)
        info = {
            "kind": "pipeline", "pipeline": cfg.path, "driver": drv_cfg.id,
            "driver_type": drv_cfg.cls.type_name, "encoder": enc_cfg.id,
            "encoder_type": enc_cfg.cls.type_name, "recording": self.recording,
            "input_spikes": int(idx.size), "t0_us": t0_us, "window_ms": window_ms or None,
            "reset_per_window": False, "steps_dropped": dropped,
            "truncated_at_max_steps": bool(self.max_steps and n_steps >= self.max_steps),
        }  # fmt: skip
        return DeployRecording(ptr, idx, sp, None, reset=False, source=info)

    def _configure(self) -> tuple[Any, Any, Any]:
        """The validated pipeline (path, speed and loop overridden), its driver and encoder."""
        from edgesnn.config.overrides import load_with_overrides
        from edgesnn.replay import ReplayDriver

        try:
            cfg = load_with_overrides(self.pipeline, list(self.overrides))
        except ConfigError as e:
            raise SourceError(e.problems) from None
        drivers = [c for c in cfg.components if c.kind == "driver"]
        files = [c for c in drivers if issubclass(c.cls, ReplayDriver)]
        pool = files if self.recording is not None else drivers
        what = "file drivers" if self.recording is not None else "drivers"
        if self.driver is not None:
            chosen = [c for c in pool if c.id == self.driver]
            if not chosen:
                raise SourceError([Problem("--driver", f"no {what[:-1]} {self.driver!r} in "
                                           f"{cfg.path}; {what}: "
                                           f"{', '.join(c.id for c in pool) or 'none'}")])
        elif len(pool) != 1:
            raise SourceError([Problem("--driver", f"{cfg.path} has {len(pool)} {what} ("
                                       f"{', '.join(c.id for c in pool)}); choose one with "
                                       "--driver")])  # fmt: skip
        else:
            chosen = pool
        drv = chosen[0]
        extra = []
        fields = drv.cls.schema.fields
        if self.recording is not None:
            if not os.path.isfile(self.recording):
                raise FileNotFoundError(f"recording {self.recording} not found")
            extra.append(f"drivers.{drv.id}.path={json.dumps(os.path.abspath(self.recording))}")
        if "speed" in fields:
            extra.append(f"drivers.{drv.id}.speed=\"max\"")
        if "loop" in fields:
            extra.append(f"drivers.{drv.id}.loop=false")
        try:
            cfg = load_with_overrides(self.pipeline, [*self.overrides, *extra])
        except ConfigError as e:
            raise SourceError(e.problems) from None
        drv = cfg.by_id()[drv.id]
        finite = issubclass(drv.cls, ReplayDriver) or float(drv.params.get("duration_s", 0)) > 0
        if not finite and not self.max_steps:
            raise SourceError([Problem(f"drivers.{drv.id}", f"{drv.cls.type_name} runs until "
                                       "stopped: give --max-steps N (or a duration, e.g. --set "
                                       f"drivers.{drv.id}.duration_s=5)")])  # fmt: skip
        encs = [c for c in cfg.components if c.kind == "encoder" and drv.id in c.inputs]
        if self.encoder is not None:
            encs = [c for c in encs if c.id == self.encoder]
            if not encs:
                raise SourceError([Problem("--encoder", f"no encoder {self.encoder!r} fed by "
                                           f"{drv.id!r} in {cfg.path}")])  # fmt: skip
        elif len(encs) != 1:
            raise SourceError([Problem("--encoder", f"{len(encs)} encoders take {drv.id!r} ("
                                       f"{', '.join(c.id for c in encs)}); choose one with "
                                       "--encoder")])  # fmt: skip
        return cfg, drv, encs[0]


def _readout_window_ms(cfg: Any) -> float | None:
    """The window of the pipeline's (first) windowed readout, if any."""
    for c in cfg.components:
        if c.kind == "readout" and c.params.get("window_ms"):
            return float(c.params["window_ms"])
    return None


async def _collect(drv: Any, enc: Any, dt_us: int, max_steps: int | None,
                   tick: Any) -> tuple[np.ndarray, np.ndarray, int, int]:  # fmt: skip
    """Driver -> encoder until the source ends (or max_steps): (ptr, idx, sensor time of
    step 0 in µs, steps dropped)."""
    counts: list[np.ndarray] = []
    idxs: list[np.ndarray] = []
    state = {"t0": None, "steps": 0, "dropped": 0}

    def add(r: Any) -> bool:
        """Place a raster on the step grid (gaps become empty steps); False when full."""
        if r is None or r.n_steps == 0:
            return True
        if r.dt_us != dt_us:
            raise FormatError(f"encoder {enc.id!r} steps {r.dt_us} us, the model {dt_us} us")
        if state["t0"] is None:
            state["t0"] = r.t0_us
        start = (r.t0_us - state["t0"]) // dt_us
        skip = max(0, state["steps"] - start)  # steps already covered (never expected)
        state["dropped"] += min(skip, r.n_steps)
        if start > state["steps"]:
            gap = start - state["steps"]
            if max_steps:
                gap = min(gap, max_steps - state["steps"])
            counts.append(np.zeros(gap, np.int64))
            state["steps"] += gap
            tick(gap)
        n = r.n_steps - skip
        if max_steps:
            n = min(n, max_steps - state["steps"])
        if n > 0:
            lo, hi = r.ptr[skip], r.ptr[skip + n]
            counts.append(np.diff(r.ptr[skip : skip + n + 1]).astype(np.int64))
            idxs.append(np.asarray(r.idx[lo:hi], np.int32))
            state["steps"] += n
            tick(n)
        return not (max_steps and state["steps"] >= max_steps)

    await drv.start()
    await enc.start()
    try:
        full = False
        async with contextlib.aclosing(drv.batches()) as batches:
            async for batch in batches:
                if not add(enc.encode(batch)):
                    full = True
                    break
        if not full:
            add(enc.flush())
    finally:
        await enc.stop()
        await drv.stop()
    ptr = np.zeros(state["steps"] + 1, np.int64)
    if counts:
        np.cumsum(np.concatenate(counts), out=ptr[1:])
    idx = np.concatenate(idxs) if idxs else np.zeros(0, np.int32)
    return ptr, idx, int(state["t0"] or 0), int(state["dropped"])
