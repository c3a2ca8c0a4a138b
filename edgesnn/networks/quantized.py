"""`type = "quantized_snn"`: run a model live in a chip's bit-accurate integer arithmetic.

    [networks.chip]
    type = "quantized_snn"
    inputs = ["pooled"]
    model = "motion.npz"        # a float model file (quantized on load) ...
    profile = "loihi2"          # ... to this profile (name or TOML path)
    # model = "out/quantized.npz"  # or a quantized model written by `edgesnn deploy`

The emulator is the one `edgesnn deploy` checks with, so the daemon shows what the chip would
detect. Weights are frozen (no on-chip learning is emulated).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.components import BuildContext, Component, Network, register
from edgesnn.config.schema import Field, Schema
from edgesnn.errors import ConfigError, FormatError, Problem
from edgesnn.events import SpikeRaster


@register
class QuantizedSNN(Network):
    """A quantized model on the profile's emulator kernel."""

    type_name = "quantized_snn"
    summary = "SNN run bit-accurately in a chip profile's integer arithmetic (Loihi, SpiNNaker)"
    schema = Schema(
        {
            "model": Field(str, doc="Float model file (Network.save) or quantized model file "
                                    "(quantized.npz of `edgesnn deploy`); relative to the "
                                    "pipeline file."),
            "profile": Field(str, default="", doc="Profile name or TOML path; required for a "
                                                  "float model, checked against a quantized "
                                                  "one."),
        },
        doc="Bit-accurate emulation of a deployed model.",
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: BuildContext):
        super().__init__(id, params, ctx)
        from edgesnn.core import Network as CoreNetwork
        from edgesnn.deploy import Emulator, is_quantized_file, load_profile, quantize
        from edgesnn.deploy.quantize import QuantizedModel
        from edgesnn.deploy.targets import target

        path = Path(params["model"])
        if not path.is_absolute():
            path = Path(ctx.base_dir) / path
        where = f"networks.{id}"
        try:
            if is_quantized_file(path):
                qm = QuantizedModel.load(path)
                if params["profile"]:
                    prof = load_profile(params["profile"])
                    if prof.name != qm.profile:
                        raise ConfigError([Problem(f"{where}.profile", f'the model was '
                                                   f'quantized for "{qm.profile}", not '
                                                   f'"{prof.name}"')])  # fmt: skip
            else:
                if not params["profile"]:
                    raise ConfigError([Problem(f"{where}.profile",
                                               "a float model needs a profile to quantize to")])
                prof = load_profile(params["profile"])
                if not hasattr(target(prof.family).module("emulate"), "KERNELS"):
                    raise ConfigError([Problem(f"{where}.profile", f"{prof.name} (family "
                                               f"{prof.family}) is not a chip of neuron cores "
                                               "that quantized_snn emulates (Loihi, SpiNNaker); "
                                               "check it with `edgesnn deploy`")])  # fmt: skip
                qm = quantize(CoreNetwork.load(path), prof)
        except FormatError as e:
            raise ConfigError([Problem(f"{where}.model", str(e))]) from None
        except ConfigError as e:
            raise ConfigError([Problem(p.path or f"{where}.profile", p.message)
                               for p in e.problems]) from None  # fmt: skip
        self.qm = qm
        self.emulator = Emulator(qm)
        self._seq = 0
        from edgesnn.runtime.ring import SpikeRing

        self.recent_spikes = SpikeRing(self.n_outputs)  # the dashboard's raster

    @property
    def n_inputs(self) -> int:
        return self.emulator.n_inputs

    @property
    def n_outputs(self) -> int:
        return self.emulator.n_outputs

    def check(self, inputs: list[Component]) -> list[str]:
        out = []
        if self.ctx.dt_us != self.qm.dt_us:
            out.append(f"the model steps {self.qm.dt_us} us, the pipeline {self.ctx.dt_us} us")
        for c in inputs:
            n = getattr(c, "n_channels", None) if c.kind == "encoder" else \
                getattr(c, "n_outputs", None)  # fmt: skip
            if isinstance(n, int) and n != self.n_inputs:
                out.append(f'"{c.id}" gives {n} channels, the model has {self.n_inputs} inputs')
        return out

    def process(self, raster: SpikeRaster) -> SpikeRaster:
        """Run every step of the raster; returns the output spikes over the same steps."""
        em = self.emulator
        steps = []
        for k in range(raster.n_steps):
            steps.append(em.step(raster.step_spikes(k)).copy())
        ptr = np.zeros(len(steps) + 1, np.int64)
        np.cumsum([s.size for s in steps], out=ptr[1:])
        idx = np.concatenate(steps).astype(np.int32) if steps else np.zeros(0, np.int32)
        self._seq += 1
        self.recent_spikes.push(raster.t0_us, raster.dt_us, ptr, idx)
        return SpikeRaster(self.id, self._seq, raster.t0_us, raster.dt_us, self.n_outputs,
                           ptr, idx, raster.dropped_before)  # fmt: skip

    def status(self) -> dict[str, Any]:
        return {"profile": self.qm.profile, "family": self.qm.family, "steps": self.emulator.t,
                **self.emulator.counters}  # fmt: skip

    def control(self, command: str, **kwargs: Any) -> Any:
        if command == "reset":
            self.emulator.reset()
            return {"reset": True}
        raise KeyError(command)
