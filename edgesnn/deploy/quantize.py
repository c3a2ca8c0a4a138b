"""Quantization of a float model to a profile's integer parameters: the quantized model of the
core-mapped chip targets, its file format, and the helpers their quantizers share.

`quantize(model, profile)` maps every layer and projection of a `FloatModel` (or a core
`Network`) onto the profile's family, through that family's chip target
(``edgesnn/deploy/targets/<chip>/quantize.py``). The core-mapped targets share this module's
`QuantizedModel` and `quantize_layers` loop and add one ``quantize_layer`` each (Loihi's
per-layer scale, weight exponents and sign modes in edgesnn.deploy.targets.loihi.quantize;
SpiNNaker's mV mapping, s16.15 / u0.32 formats and ring-buffer shifts in
edgesnn.deploy.targets.spinnaker.quantize).

Everything that did not fit (a clipped exponent, bias, decay, delay, ...) is recorded in
``QuantizedModel.clipped`` for the design-rule checks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.core import Network
from edgesnn.deploy.floatmodel import FloatLayer, FloatModel
from edgesnn.deploy.profile import Profile
from edgesnn.errors import FormatError

QMODEL_FORMAT = "edgesnn-quantized"
QMODEL_VERSION = 1


def rnd(x: Any, mode: str) -> np.ndarray:
    """Round to integers (int64) as a profile names it."""
    a = np.asarray(x, dtype=np.float64)
    if mode == "half_even":
        r = np.round(a)
    elif mode == "half_away":
        r = np.sign(a) * np.floor(np.abs(a) + 0.5)
    elif mode == "floor":
        r = np.floor(a)
    elif mode == "toward_zero":
        r = np.trunc(a)
    else:
        raise ValueError(f"unknown rounding {mode!r}")
    return r.astype(np.int64)


def rnd_int(x: float, mode: str) -> int:
    """One value rounded as the profile names it, as a Python int."""
    return int(rnd(x, mode))


@dataclass
class QLayer:
    """A quantized layer: integer parameters of its family, per-neuron bias."""

    name: str
    n: int
    model: str
    params: dict[str, int] = field(default_factory=dict)
    bias: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # effective
    bias_mant: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    bias_exp: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def is_input(self) -> bool:
        return self.model == "input"


@dataclass
class QProjection:
    """A quantized projection as synapses: stored integer weight, chip delay, synapse type."""

    name: str
    source: str
    target: str
    pre: np.ndarray
    post: np.ndarray
    w: np.ndarray  # int64: Loihi mantissa, SpiNNaker 16-bit magnitude
    delay: np.ndarray  # int32: chip delay (edgesnn delay + profile delay offset)
    ch: np.ndarray  # int8: SpiNNaker synapse type (0 exc, 1 inh); Loihi 0
    w_float: np.ndarray  # the float weights (with gain)
    w_deq: np.ndarray  # the quantized weights in float units
    exp: int = 0  # Loihi weight exponent
    sign_mode: str = ""
    plasticity: dict[str, Any] | None = None
    num_weight_bits: int = 8  # Loihi: lava's num_weight_bits (mantissa bits the chip keeps)


@dataclass
class QuantizedModel:
    """A model in a profile's integer parameters; `save`/`load` as npz + JSON manifest."""

    profile: str
    family: str
    dt_us: int
    layers: list[QLayer]
    projections: list[QProjection]
    inputs: list[str]
    outputs: list[str]
    delay_offset: int = 0
    ring_bits: int = 0
    clipped: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def layer(self, name: str) -> QLayer:
        for lay in self.layers:
            if lay.name == name:
                return lay
        raise KeyError(name)

    def save(self, path: str | Path) -> None:
        """Write an npz (arrays) with a JSON manifest (everything else), atomically."""
        path = Path(path)
        arrays: dict[str, np.ndarray] = {}
        man: dict[str, Any] = {
            "format": QMODEL_FORMAT, "version": QMODEL_VERSION, "profile": self.profile,
            "family": self.family, "dt_us": self.dt_us, "inputs": self.inputs,
            "outputs": self.outputs, "delay_offset": self.delay_offset,
            "ring_bits": self.ring_bits, "clipped": self.clipped, "notes": self.notes,
            "layers": [], "projections": [],
        }  # fmt: skip
        for i, lay in enumerate(self.layers):
            man["layers"].append({"name": lay.name, "n": lay.n, "model": lay.model,
                                  "params": lay.params, "info": lay.info})  # fmt: skip
            for k in ("bias", "bias_mant", "bias_exp"):
                arrays[f"L{i}_{k}"] = getattr(lay, k)
        for j, p in enumerate(self.projections):
            man["projections"].append({"name": p.name, "source": p.source, "target": p.target,
                                       "exp": p.exp, "sign_mode": p.sign_mode,
                                       "num_weight_bits": p.num_weight_bits,
                                       "plasticity": p.plasticity})  # fmt: skip
            for k in ("pre", "post", "w", "delay", "ch", "w_float", "w_deq"):
                arrays[f"P{j}_{k}"] = getattr(p, k)
        save_manifest_npz(path, arrays, man)

    @classmethod
    def load(cls, path: str | Path) -> QuantizedModel:
        """Read a file written by `save`; FormatError when it is not one."""
        data, man = load_manifest_npz(path, "quantized edgesnn model", QMODEL_FORMAT,
                                      QMODEL_VERSION)  # fmt: skip
        try:
            layers = [QLayer(m["name"], int(m["n"]), m["model"], dict(m["params"]),
                             data[f"L{i}_bias"], data[f"L{i}_bias_mant"], data[f"L{i}_bias_exp"],
                             m.get("info", {})) for i, m in enumerate(man["layers"])]  # fmt: skip
            projs = [QProjection(m["name"], m["source"], m["target"],
                                 *(data[f"P{j}_{k}"] for k in ("pre", "post", "w", "delay", "ch",
                                                               "w_float", "w_deq")),
                                 exp=int(m["exp"]), sign_mode=m["sign_mode"],
                                 plasticity=m.get("plasticity"),
                                 num_weight_bits=int(m.get("num_weight_bits", 8)))
                     for j, m in enumerate(man["projections"])]  # fmt: skip
        except KeyError as e:
            raise FormatError(f"quantized model lacks {e}", path=str(path)) from None
        names = {lay.name for lay in layers}
        for p in projs:
            if p.source not in names or p.target not in names:
                raise FormatError(f"projection {p.name} names an unknown layer", path=str(path))
            n_pre, n_post = (next(x.n for x in layers if x.name == nm) for nm in
                             (p.source, p.target))  # fmt: skip
            if p.pre.size and (p.pre.min() < 0 or p.pre.max() >= n_pre or p.post.min() < 0
                               or p.post.max() >= n_post or p.delay.min() < 0):  # fmt: skip
                raise FormatError(f"projection {p.name} points outside its layers",
                                  path=str(path))  # fmt: skip
        return cls(man["profile"], man["family"], int(man["dt_us"]), layers, projs,
                   man["inputs"], man["outputs"], int(man.get("delay_offset", 0)),
                   int(man.get("ring_bits", 0)), man.get("clipped", []),
                   man.get("notes", []))  # fmt: skip


def save_manifest_npz(path: Path, arrays: dict[str, np.ndarray], man: dict[str, Any], *,
                      default: Callable[[Any], Any] | None = None) -> None:
    """Write `arrays` and `man` (JSON bytes as the "manifest" array) to an npz, atomically
    (a temporary file, then a rename); the one writer of the deploy targets' files."""
    arrays["manifest"] = np.frombuffer(json.dumps(man, default=default).encode(), dtype=np.uint8)
    tmp = path.with_name(path.name + ".tmp.npz")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    tmp.replace(path)


def load_manifest_npz(path: str | Path, what: str, fmt: str,
                      version: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, manifest) of a file written by `save_manifest_npz`; FormatError naming `what`
    when it is not one, or not format `fmt` version `version`."""
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        man = json.loads(data["manifest"].tobytes().decode())
    except (OSError, ValueError, KeyError, UnicodeDecodeError) as e:
        raise FormatError(f"not a {what} ({e})", path=str(path)) from None
    if man.get("format") != fmt or man.get("version") != version:
        raise FormatError(f"format {man.get('format')!r} v{man.get('version')} is not "
                          f"{fmt!r} v{version}", path=str(path))  # fmt: skip
    return data, man


def is_quantized_file(path: str | Path) -> bool:
    """True when `path` is a quantized model (not a float model file)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if "manifest" not in z.files:
                return False
            man = json.loads(z["manifest"].tobytes().decode())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return man.get("format") == QMODEL_FORMAT


# --- helpers on float layers ------------------------------------------------------------------


def layer_factors(lay: FloatLayer, dt_us: int) -> dict[str, float]:
    """Float per-step factors of a layer: k (membrane), d_exc, d_inh, n_ref (held steps);
    as the core packed them when known."""
    if lay.factors:
        return dict(lay.factors)
    p = lay.params
    dt_ms = dt_us / 1000.0
    out: dict[str, float] = {"k": 0.0, "d_exc": 0.0, "d_inh": 0.0, "n_ref": 0}
    if lay.model in ("lif", "cuba_lif", "adaptive_lif"):
        euler = p.get("integration") == "euler"

        def f(tau: float) -> tuple[float, float]:
            return (dt_ms / tau, 1 - dt_ms / tau) if euler else (
                1 - math.exp(-dt_ms / tau), math.exp(-dt_ms / tau))

        out["k"] = f(p["tau_mem_ms"])[0]
        if lay.model == "cuba_lif":
            out["d_exc"] = f(p["tau_syn_exc_ms"])[1]
            out["d_inh"] = f(p["tau_syn_inh_ms"])[1]
        out["n_ref"] = int(round(p.get("t_ref_ms", 0.0) * 1000.0 / dt_us))
    return out


def add_clip(q: QuantizedModel, rule: str, layer: str, value: Any, limit: Any, msg: str) -> None:
    """Record something that did not fit (the design rules report it)."""
    q.clipped.append({"rule": rule, "layer": layer, "value": value, "limit": limit,
                      "message": msg})  # fmt: skip


# --- the entry point --------------------------------------------------------------------------

#: One layer of a core-mapped target's quantizer: (float model, layer, profile, the quantized
#: model so far) -> appends the layer, its incoming projections and what did not fit.
LayerQuantizer = Callable[[FloatModel, FloatLayer, Profile, "QuantizedModel"], None]


def quantize(model: FloatModel | Network, profile: Profile) -> Any:
    """Map `model` onto `profile`'s integer parameters through the profile family's chip target
    (a `QuantizedModel` for the core-mapped targets; see the module docstring)."""
    from edgesnn.deploy.targets import target

    fm = FloatModel.from_network(model) if isinstance(model, Network) else model
    return target(profile.family).quantize(fm, profile)


def quantize_layers(fm: FloatModel, profile: Profile, quantize_layer: LayerQuantizer
                    ) -> QuantizedModel:  # fmt: skip
    """The quantization loop of the core-mapped targets: input layers as they are, every
    other layer (a default lif where the chip cannot run its model) by `quantize_layer`."""
    fam = profile.family
    st = profile["state"]
    q = QuantizedModel(profile.name, fam, fm.dt_us, [], [], fm.inputs, fm.outputs,
                       delay_offset=int(profile["delay"]["offset"]),
                       ring_bits=int(st["ring_bits"]))  # fmt: skip
    for lay in fm.layers:
        if lay.model == "input":
            q.layers.append(QLayer(lay.name, lay.n, "input", bias=np.zeros(lay.n, np.int64),
                                   bias_mant=np.zeros(lay.n, np.int64),
                                   bias_exp=np.zeros(lay.n, np.int64)))  # fmt: skip
            continue
        if lay.model not in profile["profile"]["neuron_models"]:
            add_clip(q, "neuron_model", lay.name, lay.model,
                     ", ".join(profile["profile"]["neuron_models"]),
                     f"model {lay.model} cannot run on {profile.name}; emulated as a default lif")
            from edgesnn.core.models import MODELS

            lay = FloatLayer(lay.name, lay.n, "lif", dict(MODELS["lif"].params),
                             np.zeros(lay.n))  # fmt: skip
        quantize_layer(fm, lay, profile, q)
    if any(p.plasticity for p in fm.projections):
        q.notes.append("plastic projections are deployed with their current (learned) weights")
    return q


def threshold_distance(lay: FloatLayer) -> tuple[float, str]:
    """(threshold above rest in float units, the float comparison)."""
    p = lay.params
    if lay.model == "if":
        return float(p["v_th"]), ">="
    return float(p["v_th"]) - float(p.get("v_rest", 0.0)), ">"
