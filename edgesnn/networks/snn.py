"""The `snn` network component: runs a `edgesnn.core.Network` inside a pipeline.

The network comes from exactly one of: inline `layers` / `projections` (the TOML form of
`NetworkSpec`), a model file (`model = "path.npz"`, relative to the pipeline file), or a named
builder (`builder = "name"`, `builder_params = {...}`; see `edgesnn.core.builders`). The step is
the pipeline's `dt_us`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.components import BuildContext, Component, Network, register
from edgesnn.config.schema import Field, Schema
from edgesnn.errors import ConfigError, Problem
from edgesnn.events import SpikeRaster

_SOURCES = ("layers", "model", "builder")


@register
class SNNNetwork(Network):
    """A spiking network run by the numba core; emits the spikes of its output layers."""

    type_name = "snn"
    summary = "Spiking network (layers, projections, delays, STDP) run by the numba core."
    schema = Schema(
        {
            "layers": Field(("list", dict), default=[], doc="[[networks.X.layers]] tables."),
            "projections": Field(
                ("list", dict), default=[], doc="[[networks.X.projections]] tables."
            ),
            "outputs": Field(("list", str), default=[], doc="Output layers (default: last)."),
            "model": Field(
                str, default="",
                doc="Model file: .npz written by Network.save, or a .nir graph (snnTorch, Norse, "
                "...; see nir_exporter / nir_dt).",
            ),
            "nir_exporter": Field(
                str, default="", choices=("", "snntorch", "norse", "edgesnn"),
                doc="Time conventions of the tool that wrote a .nir model ('' reads the file).",
            ),
            "nir_dt": Field(
                float, default=0.0, min=0.0,
                doc="Step of a .nir model in its own time unit (0: from nir_exporter/the file).",
            ),
            "builder": Field(str, default="", doc="Name of a registered network builder."),
            "builder_params": Field(dict, default={}, doc="Keyword arguments of the builder."),
            "seed": Field(int, default=None, doc="Seed (default: the pipeline's)."),
            "dtype": Field(str, default="float32", choices=("float32", "float64"),
                           doc="State precision of a network built here (tables, builder or "
                               ".nir); a .npz model keeps its own."),
            "max_delay_steps": Field(int, default=255, min=0, max=1_000_000),
            "learning": Field(bool, default=True, doc="Apply plasticity (when any)."),
            "lookahead": Field(bool, default=None,
                               doc="Emit each step's output as soon as it is known: a spike "
                                   "reaches the next layer one step later, so the output of "
                                   "step k + 1 is known once step k's input has run; live "
                                   "detections come one step (dt) sooner, with the same "
                                   "spikes. Output layers must not be input layers. Default: "
                                   "on when the network is fed by a live source (a driver "
                                   "closing steps on the host clock), off for replays (which "
                                   "would end one output step later)."),
            "threads": Field(int, default=1, min=1, max=2,
                             doc="2: batches of 32 steps or more of a network with at least "
                                 "1 M synapses in dense rows run on two cores (same results; "
                                 "less CPU left for the rest of the daemon)."),
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: BuildContext):
        super().__init__(id, params, ctx)
        from edgesnn.core import Network as CoreNetwork
        from edgesnn.core import NetworkSpec
        from edgesnn.core.builders import available_builders, build

        path = f"networks.{id}"
        given = [s for s in _SOURCES if params.get(s)]
        if len(given) != 1:
            what = "none" if not given else " and ".join(given)
            raise ConfigError(
                [
                    Problem(
                        path,
                        "give exactly one of layers (with projections), "
                        f"model or builder; got {what}",
                    )
                ]
            )
        seed = ctx.seed if params.get("seed") is None else params["seed"]
        if given[0] == "model":
            model = Path(params["model"])
            if not model.is_absolute():
                model = Path(ctx.base_dir) / model
            if model.suffix.lower() == ".nir":
                from edgesnn.nir import load_nir

                opts: dict[str, Any] = {"dt_us": ctx.dt_us, "dtype": params["dtype"]}
                if params["nir_exporter"]:
                    opts["exporter"] = params["nir_exporter"]
                if params["nir_dt"]:
                    opts["dt"] = params["nir_dt"]
                self.net = CoreNetwork(load_nir(model, **opts))
            else:
                self.net = CoreNetwork.load(model)
            if self.net.dt_us != ctx.dt_us:
                raise ConfigError(
                    [
                        Problem(
                            f"{path}.model",
                            f"model was built for dt_us = "
                            f"{self.net.dt_us}, the pipeline runs at {ctx.dt_us}",
                        )
                    ]
                )
        else:
            if given[0] == "builder":
                name = params["builder"]
                try:
                    spec = build(name, ctx.dt_us, seed, dict(params["builder_params"]))
                except KeyError:
                    from edgesnn.config.schema import did_you_mean

                    known = available_builders()
                    raise ConfigError(
                        [
                            Problem(
                                f"{path}.builder",
                                f'unknown builder "{name}"'
                                + did_you_mean(name, known)
                                + f"; available: {', '.join(known) or 'none'}",
                            )
                        ]
                    ) from None
                except TypeError as e:
                    raise ConfigError([Problem(f"{path}.builder_params", str(e))]) from None
                spec.dt_us = ctx.dt_us
                spec.dtype = params["dtype"]
            else:
                table = {
                    k: params[k]
                    for k in ("layers", "projections", "outputs", "dtype", "max_delay_steps")
                    if params.get(k)
                }
                table["seed"] = seed
                spec = NetworkSpec.from_dict(table, path, dt_us=ctx.dt_us)
            problems = spec.validate(path)
            if problems:
                raise ConfigError(problems)
            self.net = CoreNetwork(spec)
        #: True / False, or None until the runtime decides (`set_lookahead`): off meanwhile
        self.lookahead: bool | None = params.get("lookahead")
        self._primed = False  # lookahead: the layers are updated for the next step to run
        if self.lookahead and not self.net.can_run_ahead:
            raise ConfigError([Problem(f"{path}.lookahead", "running one step ahead needs "
                                       "output layers that are not input layers")])
        self.net.learning = bool(params.get("learning", True))
        self.net.threads = min(int(params.get("threads", 1)), self.net.threads)
        from edgesnn.learning.control import LearningControl

        self.learn = LearningControl(self.net)  # run-time learning switches, rewards, state
        self.steps = 0
        self._use_step = True  # False after a cold start: single steps go through run()
        self.spikes_out = 0
        self._t_next: int | None = None
        from edgesnn.runtime.ring import SpikeRing

        #: the last output spikes (t_us, neuron), shown by the dashboard's raster
        self.recent_spikes = SpikeRing(self.n_outputs)

    @property
    def n_inputs(self) -> int:
        return self.net.n_inputs

    @property
    def n_outputs(self) -> int:
        return self.net.n_outputs

    def check(self, inputs: list[Component]) -> list[str]:
        out = []
        for c in inputs:
            n = getattr(c, "n_channels", None)
            if n is None:
                n = getattr(c, "n_outputs", None)
            if isinstance(n, int) and n != self.n_inputs:
                out.append(f"expects {self.n_inputs} input channels but {c.id!r} produces {n}")
        return out

    def process(self, raster: SpikeRaster) -> SpikeRaster:
        """Run the raster's steps (one kernel call) and return the output spikes, aligned to
        the same steps."""
        with self.learn.lock:  # commands and checkpoints never see half a step
            self.learn.apply_pending()
            return self._process(raster)

    def _process(self, raster: SpikeRaster) -> SpikeRaster:
        if raster.dt_us != self.net.dt_us:
            raise ValueError(f"raster dt_us {raster.dt_us} != network dt_us {self.net.dt_us}")
        ptr = raster.ptr - raster.ptr[0] if raster.ptr[0] else raster.ptr
        idx = raster.idx[raster.ptr[0] : raster.ptr[-1]]
        t0 = raster.t0_us
        if self.lookahead:
            t0, out_ptr, out_idx = self._run_ahead(raster, ptr, idx)
        elif raster.n_steps == 1 and self._use_step:
            out_idx = self.net.step(np.ascontiguousarray(idx, dtype=np.int32)).copy()
            out_ptr = np.array([0, out_idx.size], np.int64)
        else:
            rec = self.net.run(ptr, idx, raster.n_steps)
            out_ptr, out_idx = rec.ptr, rec.idx
        self.steps += raster.n_steps
        self.spikes_out += int(out_idx.size)
        self.recent_spikes.push(t0, raster.dt_us, out_ptr, out_idx)
        return SpikeRaster(
            raster.stream,
            raster.seq,
            t0,
            raster.dt_us,
            self.n_outputs,
            out_ptr,
            out_idx,
            raster.dropped_before,
            dict(raster.meta),
        )

    def set_lookahead(self, on: bool) -> None:
        """The default the runtime picks when `lookahead` is not set (on for a network fed by
        a live source); stays off where it cannot apply (an output layer that is an input
        layer) or once data has flowed."""
        if self.lookahead is None:
            self.lookahead = on and self.steps == 0 and self.net.can_run_ahead

    def _run_ahead(self, raster: SpikeRaster, ptr: np.ndarray,
                   idx: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:  # fmt: skip
        """`lookahead`: (t0, CSR) of the output of the raster's steps shifted one step on (the
        first raster also carries the output of its first step, computed before any input)."""
        t0 = raster.t0_us + raster.dt_us
        head = None
        if not self._primed:
            head = self.net.prime_ahead()
            self._primed = True
            t0 = raster.t0_us
        if raster.n_steps == 1 and self._use_step:
            out_idx = self.net.step_ahead(idx)
            out_ptr = np.array([0, out_idx.size], np.int64)
        else:
            rec = self.net.run_ahead(ptr, idx, raster.n_steps)
            out_ptr, out_idx = rec.ptr, rec.idx
        if head is not None:
            out_ptr = np.concatenate(([0], out_ptr + head.size))
            out_idx = np.concatenate((head, out_idx))
        return t0, out_ptr, out_idx

    async def start(self) -> None:
        """Load (or compile, saying so) the kernels before data flows, off the event loop, so
        the first batch is not delayed by compilation and a stop request stays responsive.

        The work runs in a daemon thread: a daemon stopped during a first, cold compile exits
        at once instead of waiting for the compiler."""
        import threading

        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def work() -> None:
            try:
                # a cold cache: compile only the batch kernel (it runs single steps as well) so
                # a first start takes about two thirds of the time; `edgesnn warmup` (or a
                # later start with the step kernel cached) brings the streaming step kernel
                self._use_step = self.net.step_kernel_ready()
                self.net.warm_up(step=self._use_step, ahead=bool(self.lookahead))
            except BaseException as e:  # reported through the future
                err = e
                loop.call_soon_threadsafe(lambda: done.done() or done.set_exception(err))
            else:
                loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))

        threading.Thread(target=work, name=f"edgesnn-warmup-{self.id}", daemon=True).start()
        await done

    def warm_all_kernels(self) -> None:
        """Load or compile the streaming step kernel too (what `edgesnn warmup` does), and
        the run-ahead kernels when `lookahead` is on."""
        self.net.warm_up(step=True, ahead=bool(self.lookahead))
        self._use_step = True

    def control(self, command: str, **kwargs: Any) -> Any:
        """'reset' clears the state (weights kept); 'learning' (on=bool, projection=) switches
        plasticity; 'reward' (value=, projection=) feeds rstdp; 'save' (path=) writes the model
        file."""
        if command == "reset":
            with self.learn.lock:
                self.net.reset()
                self._primed = False
            return {"reset": True}
        if command in ("learning", "reward"):  # on=, projection=; value=: edgesnn.learning
            return self.learn.control(command, **kwargs)
        if command == "save":
            path = self._save_path(str(kwargs.get("path", "")))
            with self.learn.lock:
                self.net.save(path)
            return {"saved": path}
        raise KeyError(command)

    def _save_path(self, name: str) -> str:
        """Where a run-time 'save' may write: a plain file name inside the pipeline's state
        folder (checkpoint dir) or, without one, its own folder — never an arbitrary path."""
        import os

        if not isinstance(name, str) or not name or os.path.basename(name) != name \
                or name in (".", "..") or len(name) > 128:
            raise ValueError("path must be a plain file name, e.g. \"model.npz\"")
        if not name.endswith(".npz") or name.startswith(("ckpt-", ".ckpt-")):
            # never a pipeline file, a checkpoint or anything else the daemon keeps there
            raise ValueError(f"path must end in .npz and not name a checkpoint (got {name!r})")
        folder = self.ctx.state_dir or self.ctx.base_dir
        if not os.path.isabs(folder):
            folder = os.path.join(self.ctx.base_dir, folder) if self.ctx.state_dir else folder
        return os.path.join(folder, name)

    def status(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "spikes_out": self.spikes_out,
            "dropped_inputs": self.net.dropped_inputs,
            "learning": self.net.learning,
            "layer_spikes": self.net.layer_spike_counts(),
            **self.learn.status(),
        }

    def checkpoint_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The learned state for `edgesnn.runtime.checkpoint` (arrays, JSON-able meta)."""
        with self.learn.lock:
            arrays, meta = self.learn.capture()
            meta["counters"] = {"steps": self.steps, "spikes_out": self.spikes_out}
            meta["ahead"] = self._primed  # the layers already updated for the next step
        return arrays, meta

    def restore_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Put a checkpointed state back (ValueError when it is another network's, or was
        taken running one step ahead and this one does not)."""
        ahead = bool(meta.get("ahead", False))
        if ahead and not self.lookahead:
            raise ValueError("the checkpoint was taken running one step ahead (lookahead) and "
                             "this network runs without it")
        self.learn.restore(arrays, meta)
        self._primed = ahead
        c = meta.get("counters", {})
        self.steps, self.spikes_out = int(c.get("steps", 0)), int(c.get("spikes_out", 0))
