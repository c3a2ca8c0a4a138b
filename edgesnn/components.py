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
import re
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
        "buffer_bytes": Field(
            int, default=64 << 20, min=4096, max=1 << 40,
            doc="Input channel bound in bytes of queued numpy payload, besides `buffer` items "
                "(an empty channel still admits one larger item); `when_full` applies.",
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


#: an exclusive resource: (protocol, host or path, port or id), e.g. ("tcp", "127.0.0.1", "7447")
ClaimKey = tuple[str, str, str]


def port_claim(proto: str, host: str, port: int, param: str = "port"
               ) -> list[tuple[ClaimKey, str, str]]:
    """The claim of a socket bound at host:port ("tcp" or "udp"); port 0 (any free one): none."""
    if not port:
        return []
    return [((proto, str(host), str(port)), param, f"{proto} {host}:{port}")]


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

    @classmethod
    def claims(cls, params: dict[str, Any], base_dir: str) -> list[tuple[ClaimKey, str, str]]:
        """Exclusive resources these (validated) params take, as (key, parameter, what), so
        that two pipelines of one daemon never share one (edgesnn.runtime.pipeset); relative
        paths are to `base_dir`, the pipeline file's folder. A key is (protocol, host or path,
        port or id); "tcp"/"udp" keys also meet on a wildcard host (see `port_claim`)."""
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

    #: live sources whose batches are complete up to their end when handed over (samples
    #: placed by arrival, packets of one device in order): the runtime processes every step a
    #: batch covers at once, with no `lateness_us` hold; others keep data newer than
    #: `sensor_now_us() - lateness_us` for a later batch, in case older data is still on its way
    in_order: ClassVar[bool] = False

    def batches(self) -> AsyncIterator[EventBatch]:
        raise NotImplementedError

    def sensor_shape(self) -> tuple[int, ...]:
        """(width, height) for DVS, (channels,) for samples; () when not meaningful."""
        return ()

    def sensor_now_us(self) -> int | None:
        """Live sources: the sensor time of this moment on the host clock, so the runtime can
        close steps whose end has passed although no later event came; None (the default,
        and every replay) keeps sensor time only: a step closes when later data arrives."""
        return None

    def holds_data(self) -> bool:
        """Live sources: data received but not yet handed over (the runtime then waits for
        its batch rather than closing steps on the host clock)."""
        return False

    def finish(self) -> bool:
        """Shutdown of a live source: stop reading, and let `batches` hand over what was
        received (read from the socket at this moment included) and then end; True when the
        driver does so. False (the default) and the runtime cancels it: what it held is lost."""
        return False


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
    #: `send` never waits (it hands the message to a non-blocking socket): while nothing is
    #: queued for the sink, the runtime calls it from the task that publishes the message,
    #: sparing the message a pass through the event loop on its way out
    sends_at_once: ClassVar[bool] = False

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


#: the kind of component each discovered package holds
PACKAGE_KINDS = dict(zip(DISCOVER_PACKAGES, KINDS, strict=True))

#: optional packages -> the edgesnn extra that installs them
EXTRAS = {
    "lz4": "formats",
    "zstandard": "formats",
    "sklearn": "examples",
    "aedat": "bench",
    "dv_processing": "bench",
    "expelliarmus": "bench",
    "zenoh": "zenoh",
    "paho": "mqtt",
}
#: import name -> distribution name, where they differ
PIP_NAMES = {"zmq": "pyzmq", "serial": "pyserial", "sklearn": "scikit-learn",
             "dv_processing": "dv-processing", "prometheus_client": "prometheus-client",
             "zenoh": "eclipse-zenoh"}
#: import names of the core dependencies (a fresh `pip install edgesnn` has them)
CORE = {"numpy", "numba", "llvmlite", "aiohttp", "zmq", "msgpack", "serial", "h5py",
        "prometheus_client"}

#: (kind, type name) -> why the module declaring it cannot be imported
_UNAVAILABLE: dict[tuple[str, str], str] = {}
_TYPE_NAME = re.compile(r"""^\s+type_name\s*=\s*["']([^"']+)["']""", re.MULTILINE)


def install_hint(exc: ImportError) -> str:
    """What to install for a failed import: `pip install 'edgesnn[formats]'` for lz4, ..."""
    name = (getattr(exc, "name", None) or "").split(".")[0]
    if not name:
        m = re.search(r"No module named '([^'.]+)", str(exc))
        name = m.group(1) if m else ""
    pip = PIP_NAMES.get(name, name)
    if name in EXTRAS:
        return f"pip install 'edgesnn[{EXTRAS[name]}]'"
    if name in CORE:
        return (f"{pip} is a core dependency of edgesnn: reinstall it "
                "(pip install --force-reinstall edgesnn)")
    return f"pip install {pip}" if name else "check the installation"


def failure_hint(exc: BaseException) -> str:
    """'; pip install ...' when an ImportError caused `exc` (e.g. a compressed file read
    without lz4), else ''."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, ImportError):
            return f"; {install_hint(e)}"
        e = e.__cause__ or e.__context__
    return ""


def describe_import_error(module: str, exc: ImportError) -> str:
    """One line naming the module, the ImportError and what to install."""
    return f"module {module} cannot be imported ({exc}); {install_hint(exc)}"


def _declared_types(module: str) -> list[str]:
    """type_name values declared in a module's source (read, not imported)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return []
        with open(spec.origin, encoding="utf-8") as f:
            return _TYPE_NAME.findall(f.read())
    except (ImportError, OSError, ValueError):
        return []


def _failed(module: str, kind: str, exc: ImportError) -> None:
    msg = describe_import_error(module, exc)
    _IMPORT_ERRORS[module] = msg
    for t in _declared_types(module):
        _UNAVAILABLE.setdefault((kind, t), msg)


def discover() -> None:
    """Import every built-in component module once so their @register calls run.

    A module that fails to import does not hide the others: its error is kept (with what to
    install), and the component types it declares are reported as unavailable, not unknown.
    """
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    for pkg_name in DISCOVER_PACKAGES:
        kind = PACKAGE_KINDS[pkg_name]
        try:
            pkg = importlib.import_module(pkg_name)
        except ImportError as e:  # a missing optional package must not break the others
            _IMPORT_ERRORS[pkg_name] = describe_import_error(pkg_name, e)
            continue
        for mod in pkgutil.walk_packages(pkg.__path__, pkg_name + "."):
            if mod.name.rsplit(".", 1)[-1].startswith("_"):
                continue
            try:
                importlib.import_module(mod.name)
            except ImportError as e:
                _failed(mod.name, kind, e)


def unavailable_type(kind: str, type_name: str) -> str | None:
    """Why a component type that exists cannot be used here (its module failed to import),
    or None."""
    discover()
    if type_name in _REGISTRY[kind]:
        return None
    return _UNAVAILABLE.get((kind, type_name))


def lookup(kind: str, type_name: str) -> type[Component] | None:
    discover()
    return _REGISTRY[kind].get(type_name)


def available(kind: str) -> dict[str, type[Component]]:
    discover()
    return dict(sorted(_REGISTRY[kind].items()))


def import_errors() -> dict[str, str]:
    discover()
    return dict(_IMPORT_ERRORS)
