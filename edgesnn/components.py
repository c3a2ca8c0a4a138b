"""Component contracts and the registry that maps TOML `type = "..."` to classes.

A pipeline is a graph of components of five kinds — driver, encoder, network, readout, sink —
joined by `inputs = [...]`. Each concrete class declares its `type_name` and a `Schema` of
parameters, and registers itself with `@register`. Modules under `edgesnn_drivers`,
`edgesnn.encoders`, `edgesnn.networks`, `edgesnn.readouts` and `edgesnn.sinks` are discovered
automatically; a module must not do heavy work (I/O, compilation) at import time.

Threading: `Encoder.encode`, `Network.process` and `Readout.update` are synchronous and are
called from a worker thread, one call at a time per component, so they may hold state freely.
Drivers and sinks are asyncio-native.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from edgesnn.config.schema import Field, Schema
from edgesnn.events import Detection, EventBatch, SpikeRaster

KINDS = ("driver", "encoder", "network", "readout", "sink")
#: TOML section holding each kind, e.g. [drivers.cam]
SECTIONS = {
    "drivers": "driver",
    "encoders": "encoder",
    "networks": "network",
    "readouts": "readout",
    "sinks": "sink",
}
#: Which kinds may feed which.
ACCEPTS = {
    "driver": (),
    "encoder": ("driver",),
    "network": ("encoder", "network"),
    "readout": ("network", "encoder"),
    "sink": ("readout",),
}

WHEN_FULL = ("block", "drop_oldest", "drop_newest")

#: Keys every component table may have besides its own parameters.
COMMON = Schema(
    {
        "type": Field(str, doc="Which component (see `edgesnn components`)."),
        "inputs": Field(("list", str), default=[], doc="Ids of the components that feed this one."),
        "buffer": Field(int, default=16, min=1, max=1_000_000, doc="Input channel capacity."),
        "when_full": Field(
            str, default="block", choices=WHEN_FULL, doc="What the input channel does when full."
        ),
    }
)


@dataclass
class BuildContext:
    """What a component may know about the pipeline it is built into."""

    pipeline: str = "pipeline"
    dt_us: int = 1000
    base_dir: str = "."
    seed: int = 0
    state_dir: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Component:
    """Base of every pipeline component."""

    kind: ClassVar[str] = ""
    type_name: ClassVar[str] = ""
    schema: ClassVar[Schema] = Schema()
    summary: ClassVar[str] = ""

    def __init__(self, id: str, params: dict[str, Any], ctx: BuildContext):
        self.id = id
        self.params = params
        self.ctx = ctx

    def check(self, inputs: list[Component]) -> list[str]:
        """Shape / compatibility problems with the components feeding this one."""
        return []

    def status(self) -> dict[str, Any]:
        """Component-specific figures for the status endpoint and heartbeats."""
        return {}

    def control(self, command: str, **kwargs: Any) -> Any:
        """Run-time command (HTTP API, `edgesnn reward`, ...); unknown commands raise KeyError.

        Called from a worker thread; implementations keep it short and thread-safe.
        """
        raise KeyError(command)

    async def start(self) -> None:
        """Open resources (sockets, files, ports). Called once before data flows."""

    async def stop(self) -> None:
        """Release resources. Called once, also after failures."""


class Driver(Component):
    """Produces `EventBatch`es from a sensor, live or replayed."""

    kind = "driver"
    #: what the batches hold (see events.BATCH_KINDS)
    batch_kind: ClassVar[str] = "dvs"

    def batches(self) -> AsyncIterator[EventBatch]:
        raise NotImplementedError

    def sensor_shape(self) -> tuple[int, ...]:
        """(width, height) for DVS, (channels,) for samples; () when not meaningful."""
        return ()


class Encoder(Component):
    """Turns `EventBatch`es into `SpikeRaster`s aligned to the pipeline's dt."""

    kind = "encoder"

    @property
    def n_channels(self) -> int:
        raise NotImplementedError

    def encode(self, batch: EventBatch) -> SpikeRaster | None:
        raise NotImplementedError

    def flush(self) -> SpikeRaster | None:
        """Spikes of a partial final step when the stream ends."""
        return None


class Network(Component):
    """Runs spikes through an SNN; emits the spikes of its output layer."""

    kind = "network"

    @property
    def n_inputs(self) -> int:
        raise NotImplementedError

    @property
    def n_outputs(self) -> int:
        raise NotImplementedError

    def process(self, raster: SpikeRaster) -> SpikeRaster:
        raise NotImplementedError


class Readout(Component):
    """Turns output spikes into `Detection`s."""

    kind = "readout"

    @property
    def n_inputs(self) -> int | None:
        """Channels expected, or None when any size works."""
        return None

    def update(self, raster: SpikeRaster) -> list[Detection]:
        raise NotImplementedError

    def flush(self) -> list[Detection]:
        return []


class Sink(Component):
    """Delivers detection messages (dicts of the wire schema) somewhere."""

    kind = "sink"

    async def send(self, message: dict[str, Any]) -> None:
        raise NotImplementedError

    async def heartbeat(self, message: dict[str, Any]) -> None:
        """Liveness message with counters; sinks that do not carry heartbeats ignore it."""


# --- registry -----------------------------------------------------------------------------

_REGISTRY: dict[str, dict[str, type[Component]]] = {k: {} for k in KINDS}
_IMPORT_ERRORS: dict[str, str] = {}
_DISCOVERED = False
DISCOVER_PACKAGES = (
    "edgesnn_drivers",
    "edgesnn.encoders",
    "edgesnn.networks",
    "edgesnn.readouts",
    "edgesnn.sinks",
)


def register(cls: type[Component]) -> type[Component]:
    """Class decorator: make `cls` available as `type = cls.type_name` in its kind's section."""
    if cls.kind not in _REGISTRY or not cls.type_name:
        raise TypeError(f"{cls.__name__} needs a kind and a type_name to be registered")
    existing = _REGISTRY[cls.kind].get(cls.type_name)
    if existing is not None and existing is not cls:
        raise TypeError(
            f"{cls.kind} type {cls.type_name!r} registered twice "
            f"({existing.__module__} and {cls.__module__})"
        )
    _REGISTRY[cls.kind][cls.type_name] = cls
    return cls


def discover() -> None:
    """Import every built-in component module once so their @register calls run."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    for pkg_name in DISCOVER_PACKAGES:
        try:
            pkg = importlib.import_module(pkg_name)
        except ImportError as e:  # a missing optional package must not break the others
            _IMPORT_ERRORS[pkg_name] = str(e)
            continue
        for mod in pkgutil.walk_packages(pkg.__path__, pkg_name + "."):
            if mod.name.rsplit(".", 1)[-1].startswith("_"):
                continue
            try:
                importlib.import_module(mod.name)
            except ImportError as e:
                _IMPORT_ERRORS[mod.name] = str(e)


def lookup(kind: str, type_name: str) -> type[Component] | None:
    discover()
    return _REGISTRY[kind].get(type_name)


def available(kind: str) -> dict[str, type[Component]]:
    discover()
    return dict(sorted(_REGISTRY[kind].items()))


def import_errors() -> dict[str, str]:
    discover()
    return dict(_IMPORT_ERRORS)
