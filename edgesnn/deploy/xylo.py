"""SynSense Xylo deployment: profile, quantization, design rules, bit-exact emulation, export.

Xylo (Xylo Audio 2 = SYNS61201, Xylo IMU = SYNS63300) is one digital integer LIF core: up to 16
input channels, one hidden population (1000 or 496 neurons) with recurrent weights, and a few
readout neurons. Every weight is int8 left-shifted by one shift per matrix (input, recurrent,
readout); states are 16-bit and saturate; decays are bit shifts ("dash"); reset subtracts the
threshold and a hidden neuron may fire several times per step. An edgesnn model maps onto it as

- the model's input layers (concatenated) -> the input channels,
- every other non-output layer (concatenated) -> the hidden population; hidden->hidden
  projections become recurrent weights (one step per hop, as in edgesnn),
- the model's output layers (concatenated) -> the readout neurons.

Projections on the excitatory current (channel 0) use the hidden neurons' first synapse, those
on the inhibitory current (channel 1) the second. Integer scale per target layer: ``s`` units per
float unit of v, the largest for which the threshold stays ``state_headroom_bits`` below the
16-bit range and the largest weight of every incoming matrix fills int8 at the matrix's shift.
Weights are matched on their integral (DC gain): a spike's total effect on v in the chip's
bit-shift dynamics equals the float model's. Dashes are ``round(log2(1 / k))`` (membrane) and
``round(log2(1 / (1 - d)))`` (synapse), as Rockpool's ``round(log2(tau / dt))``.

The emulator reproduces XyloSim (xylosim 0.1.3, ``src/v2/cpp/XyloIAFNeuron.cpp`` and
``XyloLayer.cpp``) bit for bit, including its order of saturating additions. Per step:

    for each input channel, then each synapse in (synapse 1 by target, synapse 2 by target)
    order, for each of its events (<= 15):  i_syn[post] = sat16(i_syn[post] + w_in)
    same for the hidden spike counts of the last step (<= 31 each) into the hidden neurons
    (w_rec) and then into the readout neurons (w_out)
    every neuron:  i_syn -= dec(i_syn, dash_syn)                 # each synapse
                   dv = sat16(-dec(v, dash_mem) + sum(i_syn)); dv = sat16(dv + bias)
                   v = sat16(v + dv)
                   while v >= threshold and n < max_spikes: n += 1; v -= threshold
    dec(x, dash) = x >> dash (floor), but +-1 when that is 0 and x != 0

with ``w = int16(mant << shift)``. Input events act in the same step (edgesnn: next step), so
chip outputs lead the float model's by one step. The export is the Rockpool specification
(``XyloSim.from_specification(**spec)``, ``config_from_specification``) as an npz of integer
arrays (no pickle).
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

from edgesnn.config.schema import Field, Schema, did_you_mean
from edgesnn.core import Network
from edgesnn.deploy.floatmodel import FloatLayer, FloatModel
from edgesnn.deploy.profile import Profile
from edgesnn.errors import ConfigError, FormatError, Problem

FAMILY = "xylo"
SPEC_FORMAT = "edgesnn-xylo-spec"
SPEC_VERSION = 1
REPORT_FORMAT = "edgesnn-xylo-report"
REPORT_VERSION = 1
ROUNDING = ("half_even", "half_away", "floor", "toward_zero")
#: Float neuron models with a Xylo counterpart.
MAPPABLE = ("lif", "cuba_lif")


def _nonempty(v: Any) -> str | None:
    return None if v else "must not be empty"


XYLO_SCHEMA = Schema(
    {
        "profile": Field(Schema({
            "name": Field(str, doc="Profile name (the file stem by convention)."),
            "description": Field(str, default="", doc="One line about the target."),
            "family": Field(str, choices=(FAMILY,), doc="xylo: the Xylo integer LIF core."),
            "device": Field(str, default="", doc="SynSense part number."),
            "neuron_models": Field(("list", str), check=_nonempty,
                                   doc="Core neuron models this target can run."),
        })),
        "chip": Field(Schema({
            "inputs": Field(int, min=1, doc="SNN input channels."),
            "hidden_neurons": Field(int, min=1, doc="Hidden (reservoir) neurons."),
            "output_neurons": Field(int, min=1, doc="Readout neurons."),
            "synapses_hidden": Field(int, min=1, max=2, doc="Synaptic states per hidden neuron."),
            "synapses_output": Field(int, min=1, max=1, doc="Synaptic states per readout neuron."),
            "input_targets": Field(int, min=1, doc="Hidden neurons (the first N) input weights "
                                                   "can reach."),
            "output_sources": Field(int, min=1, doc="Hidden neurons (the last N) readout "
                                                    "weights can read."),
            "max_fan_out": Field(int, min=1, doc="Recurrent weights from one hidden neuron."),
            "max_fan_in": Field(int, default=0, min=0,
                                doc="Recurrent weights into one hidden neuron (0: no limit)."),
            "recurrent_weights": Field(int, min=1, doc="Recurrent weights in total."),
            "input_events_per_step": Field(int, min=1, doc="Events per input channel per step."),
            "hidden_spikes_per_step": Field(int, min=1, doc="Spikes per hidden neuron per step."),
            "output_spikes_per_step": Field(int, min=1, doc="Spikes per readout neuron per step."),
        })),
        "weights": Field(Schema({
            "bits": Field(int, min=2, max=16, doc="Signed weight bits."),
            "shift_max": Field(int, min=0, max=15, doc="Largest left shift of a weight matrix."),
            "rounding": Field(str, choices=ROUNDING, doc="Rounding of weights."),
        })),
        "state": Field(Schema({
            "bits": Field(int, min=4, max=32, doc="Signed bits of i_syn and v_mem."),
            "overflow": Field(str, choices=("saturate",), doc="States saturate."),
        })),
        "decay": Field(Schema({
            "dash_bits": Field(int, min=1, max=8, doc="Bits of a bit-shift decay parameter."),
        })),
        "threshold": Field(Schema({
            "bits": Field(int, min=2, max=32, doc="Signed threshold bits."),
            "compare": Field(str, choices=(">=",), doc="Spike when v >= threshold."),
        })),
        "bias": Field(Schema({"bits": Field(int, min=2, max=32, doc="Signed bias bits.")})),
        "reset": Field(Schema({"mode": Field(str, choices=("subtract",))})),
        "refractory": Field(Schema({
            "min_steps": Field(int, min=0, max=0, doc="Xylo has no refractory period."),
            "max_steps": Field(int, min=0, max=0, doc="Xylo has no refractory period."),
        })),
        "timestep": Field(Schema({
            "min_us": Field(int, min=1),
            "max_us": Field(int, min=1),
            "default_us": Field(int, min=1),
        })),
        "quantization": Field(Schema({
            "state_headroom_bits": Field(int, default=2, min=0, max=12,
                                         doc="Keep thresholds this many bits below the state "
                                             "range."),
        }), default={}),
        "sources": Field(Schema({}, allow_extra=True), default={},
                         doc="Dotted field name -> where the figure comes from."),
    },
    doc="A Xylo chip profile.",
)


def loads_xylo_profile(raw: dict[str, Any], text: str, path: str = "") -> Profile:
    """Validate a parsed Xylo profile; ConfigError lists every problem with path and line."""
    from edgesnn.config.pipeline import LineFinder

    problems: list[Problem] = []
    data = XYLO_SCHEMA.validate(raw, "", problems)
    if not problems:
        problems += _semantic(data)
    if problems:
        lf = LineFinder(text)
        src = path or None
        raise ConfigError([Problem(p.path, p.message, lf.find(p.path), src) for p in problems])
    given = {f"{sec}.{k}" for sec, vals in raw.items() if isinstance(vals, dict) for k in vals}
    return Profile(name=data["profile"]["name"], path=path, data=data, given=given)


def load_xylo_profile(path: str | Path) -> Profile:
    """Read a Xylo profile TOML file (or a shipped one through `load_profile`)."""
    from edgesnn.deploy.profile import load_profile

    prof = load_profile(path)
    if prof.family != FAMILY:
        raise ConfigError([Problem("profile.family", f'"{prof.family}" is not "{FAMILY}"',
                                   source=str(path))])  # fmt: skip
    return prof


def _semantic(d: dict[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    for i, m in enumerate(d["profile"]["neuron_models"]):
        if m not in MAPPABLE:
            out.append(Problem(f"profile.neuron_models[{i}]", f'"{m}" has no Xylo counterpart'
                               f"{did_you_mean(m, MAPPABLE)}; mappable: {', '.join(MAPPABLE)}"))
    ch = d["chip"]
    for key in ("input_targets", "output_sources"):
        if ch[key] > ch["hidden_neurons"]:
            out.append(Problem(f"chip.{key}", f"{ch[key]} is above chip.hidden_neurons"))
    ts = d["timestep"]
    if not ts["min_us"] <= ts["default_us"] <= ts["max_us"]:
        out.append(Problem("timestep.default_us", "is outside min_us..max_us"))
    for key, val in d.get("sources", {}).items():
        if not isinstance(val, str) or not val:
            out.append(Problem(f"sources.{key}", "expected a non-empty string"))
            continue
        sec, _, k = key.partition(".")
        sub = XYLO_SCHEMA.fields.get(sec)
        if sub is None or sec == "sources":
            out.append(Problem(f"sources.{key}", f'unknown section "{sec}"'
                               + did_you_mean(sec, XYLO_SCHEMA.fields)))  # fmt: skip
        elif k and isinstance(sub.type, Schema) and k not in sub.type.fields:
            out.append(Problem(f"sources.{key}", f'unknown field "{k}" of [{sec}]'
                               + did_you_mean(k, sub.type.fields)))  # fmt: skip
    return out


def is_xylo_text(text: str) -> bool:
    """True when a profile TOML names the xylo family (cheap pre-check for dispatch)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return False
    prof = raw.get("profile")
    return isinstance(prof, dict) and prof.get("family") == FAMILY


# --- the quantized network -------------------------------------------------------------------


@dataclass
class XyloSpec:
    """A network in Xylo's integer parameters, named as Rockpool's specification."""

    weights_in: np.ndarray  # (n_in, n_hidden, 2) int8 mantissas
    weights_rec: np.ndarray  # (n_hidden, n_hidden, 2) int8
    weights_out: np.ndarray  # (n_hidden, n_out) int8
    dash_mem: np.ndarray  # (n_hidden,)
    dash_syn: np.ndarray
    dash_syn_2: np.ndarray
    dash_mem_out: np.ndarray  # (n_out,)
    dash_syn_out: np.ndarray
    threshold: np.ndarray  # (n_hidden,) int
    threshold_out: np.ndarray  # (n_out,)
    bias: np.ndarray  # (n_hidden,) int
    bias_out: np.ndarray  # (n_out,)
    weight_shift_in: int = 0
    weight_shift_rec: int = 0
    weight_shift_out: int = 0
    dt: float = 1e-3
    #: edgesnn layers behind the index ranges: name -> (role, offset, n)
    layers: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    profile: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    ARRAYS = ("weights_in", "weights_rec", "weights_out", "dash_mem", "dash_syn", "dash_syn_2",
              "dash_mem_out", "dash_syn_out", "threshold", "threshold_out", "bias", "bias_out")

    @property
    def n_in(self) -> int:
        return int(self.weights_in.shape[0])

    @property
    def n_hidden(self) -> int:
        return int(self.weights_rec.shape[0])

    @property
    def n_out(self) -> int:
        return int(self.weights_out.shape[1])

    def rockpool_kwargs(self, n_syn: int = 2, for_config: bool = False) -> dict[str, Any]:
        """Keyword arguments for ``XyloSim.from_specification`` (``for_config``: for
        ``config_from_specification``, which names the hidden bias ``bias_hidden``)."""
        kw: dict[str, Any] = {k: np.asarray(getattr(self, k)) for k in self.ARRAYS}
        kw["weights_in"] = kw["weights_in"][:, :, :n_syn]
        kw["weights_rec"] = kw["weights_rec"][:, :, :n_syn]
        kw.update(weight_shift_in=int(self.weight_shift_in),
                  weight_shift_rec=int(self.weight_shift_rec),
                  weight_shift_out=int(self.weight_shift_out), dt=float(self.dt))  # fmt: skip
        if for_config:
            kw["bias_hidden"] = kw.pop("bias")
            kw.pop("dt")
        return kw

    def save(self, path: str | Path) -> None:
        """Write an npz whose integer arrays are Rockpool's keyword arguments, plus a JSON
        manifest (edgesnn layer ranges, profile, quantization info), atomically."""
        path = Path(path)
        arrays = {k: np.asarray(getattr(self, k)).astype(np.int64) for k in self.ARRAYS}
        for k in ("weight_shift_in", "weight_shift_rec", "weight_shift_out"):
            arrays[k] = np.asarray(int(getattr(self, k)), np.int64)
        arrays["dt"] = np.asarray(float(self.dt))
        man = {"format": SPEC_FORMAT, "version": SPEC_VERSION, "profile": self.profile,
               "layers": {k: list(v) for k, v in self.layers.items()}, "info": self.info}
        arrays["manifest"] = np.frombuffer(json.dumps(man, default=_jsonable).encode(),
                                           dtype=np.uint8)  # fmt: skip
        tmp = path.with_name(path.name + ".tmp.npz")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> XyloSpec:
        """Read a file written by `save`; FormatError when it is not one."""
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
            man = json.loads(data.pop("manifest").tobytes().decode())
        except (OSError, ValueError, KeyError, UnicodeDecodeError) as e:
            raise FormatError(f"not a Xylo specification ({e})", path=str(path)) from None
        if man.get("format") != SPEC_FORMAT or man.get("version") != SPEC_VERSION:
            raise FormatError(f"format {man.get('format')!r} v{man.get('version')} is not "
                              f"{SPEC_FORMAT!r} v{SPEC_VERSION}", path=str(path))  # fmt: skip
        try:
            arrs = {k: data[k] for k in cls.ARRAYS}
            spec = cls(**arrs, weight_shift_in=int(data["weight_shift_in"]),
                       weight_shift_rec=int(data["weight_shift_rec"]),
                       weight_shift_out=int(data["weight_shift_out"]), dt=float(data["dt"]),
                       layers={k: (v[0], int(v[1]), int(v[2]))
                               for k, v in man.get("layers", {}).items()},
                       profile=man.get("profile", ""), info=man.get("info", {}))  # fmt: skip
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError(f"Xylo specification lacks {e}", path=str(path)) from None
        nh, ni, no = spec.n_hidden, spec.n_in, spec.n_out
        shapes = {"weights_in": (ni, nh, 2), "weights_rec": (nh, nh, 2), "weights_out": (nh, no)}
        for k, shp in shapes.items():
            if getattr(spec, k).shape != shp:
                raise FormatError(f"{k} has shape {getattr(spec, k).shape}, expected {shp}",
                                  path=str(path))  # fmt: skip
        return spec


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(type(v).__name__)


@dataclass
class XyloViolation:
    """One broken Xylo limit (the fields of `edgesnn.deploy.rules.Violation`)."""

    rule: str
    layer: str
    value: Any
    limit: Any
    message: str = ""
    severity: str = "error"

    def __str__(self) -> str:
        return (f"{self.rule}: {self.layer}: {self.value} (limit {self.limit})"
                + (f" - {self.message}" if self.message else ""))  # fmt: skip


@dataclass
class XyloModel:
    """The outcome of `quantize_xylo`: the specification and what did not fit."""

    spec: XyloSpec
    issues: list[XyloViolation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: float per-synapse weights and their dequantized chip values, per projection
    weights: list[dict[str, Any]] = field(default_factory=list)
    #: structure figures the design rules read
    figures: dict[str, Any] = field(default_factory=dict)


def _rnd(x: Any, mode: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if mode == "half_even":
        r = np.round(a)
    elif mode == "half_away":
        r = np.sign(a) * np.floor(np.abs(a) + 0.5)
    elif mode == "floor":
        r = np.floor(a)
    else:
        r = np.trunc(a)
    return r.astype(np.int64)


def _factors(lay: FloatLayer, dt_us: int) -> dict[str, float]:
    """k (membrane), d_exc, d_inh per step, as the core packed them."""
    from edgesnn.deploy.quantize import layer_factors

    return layer_factors(lay, dt_us)


def _dash(x: float, lo: int, hi: int) -> int:
    """round(log2(1 / x)) clipped to lo..hi (x: the fraction lost per step)."""
    if not x > 0:
        return hi
    if x >= 1:
        return lo
    return int(min(max(round(math.log2(1.0 / x)), lo), hi))


def _mix(d_float: float, dash: int) -> tuple[float, float]:
    """(float gain 1/(1-d), chip gain (1-a)/a) of one synapse: v per unit weight per step at
    steady state, before the membrane."""
    a = 2.0**-dash
    return 1.0 / max(1.0 - d_float, 1e-12), (1.0 - a) / a


def quantize_xylo(model: FloatModel | Network, profile: Profile) -> XyloModel:
    """Map `model` onto Xylo (see the module docstring); limits that do not hold are returned
    as issues (the emulation still runs what could be mapped)."""
    fm = FloatModel.from_network(model) if isinstance(model, Network) else model
    ch, wq = profile["chip"], profile["weights"]
    dash_max = (1 << int(profile["decay"]["dash_bits"])) - 1
    st_max = (1 << (int(profile["state"]["bits"]) - 1)) - 1
    th_max = (1 << (int(profile["threshold"]["bits"]) - 1)) - 1
    b_max = (1 << (int(profile["bias"]["bits"]) - 1)) - 1
    w_hi = (1 << (int(wq["bits"]) - 1)) - 1
    w_lo = -w_hi - 1
    head = int(profile["quantization"].get("state_headroom_bits", 2))
    t_cap = min(th_max, (st_max + 1) >> head)
    issues: list[XyloViolation] = []
    notes: list[str] = []

    def issue(rule: str, layer: str, value: Any, limit: Any, msg: str,
              sev: str = "error") -> None:  # fmt: skip
        issues.append(XyloViolation(rule, layer, value, limit, msg, sev))

    by_name = {lay.name: lay for lay in fm.layers}
    inputs = [n for n in fm.inputs if by_name[n].model == "input"]
    outputs = [n for n in fm.outputs if by_name[n].model != "input"]
    hidden = [lay.name for lay in fm.layers if lay.model != "input" and lay.name not in outputs]
    for lay in fm.layers:
        if lay.model == "input" and lay.name not in inputs:
            inputs.append(lay.name)
    role: dict[str, tuple[str, int, int]] = {}
    for r, names in (("input", inputs), ("hidden", hidden), ("output", outputs)):
        off = 0
        for n in names:
            role[n] = (r, off, by_name[n].n)
            off += by_name[n].n
    n_in = sum(by_name[n].n for n in inputs)
    n_h = sum(by_name[n].n for n in hidden)
    n_o = sum(by_name[n].n for n in outputs)
    if not outputs:
        issue("topology", "-", "no output layer", "1..", "the model names no neuron output layer")
    # --- per neuron layer: dashes, gains, scale bound ------------------------------------------
    par: dict[str, dict[str, Any]] = {}
    for n in hidden + outputs:
        lay = by_name[n]
        if lay.model not in profile["profile"]["neuron_models"]:
            issue("neuron_model", n, lay.model, ", ".join(profile["profile"]["neuron_models"]),
                  "no Xylo counterpart; mapped as a lif with its time constant")
        f = _factors(lay, fm.dt_us)
        k = float(f.get("k", 0.0)) if lay.model != "if" else 0.0
        dm = _dash(k, 0, dash_max) if k > 0 else dash_max
        if k <= 0:
            issue("membrane_decay", n, "no leak", f"dash <= {dash_max}",
                  f"an integrator; the chip leaks with dash {dash_max}")
        cuba = lay.model == "cuba_lif"
        syn = []
        for key in ("d_exc", "d_inh"):
            d = float(f.get(key, 0.0)) if cuba else 0.0
            ds = _dash(1.0 - d, 1, dash_max) if cuba else 1
            syn.append((d, ds))
        b_frac = 2.0**-dm
        # float v per unit weight per step at steady state: cuba 1/(1-d); lif: 1/k
        gains = {}
        for c in (0, 1):
            d, ds = syn[c]
            g_chip = _mix(d, ds)[1] / b_frac
            g_float = (1.0 / max(1.0 - d, 1e-12)) if cuba else (1.0 / k if k > 0 else 1.0)
            gains[c] = g_float / g_chip
        p = lay.params
        theta = float(p["v_th"]) - float(p.get("v_rest", 0.0))
        if not theta > 0:
            issue("threshold_range", n, theta, "> 0", "the threshold must lie above rest")
            theta = 1.0
        issue("reset_mode", n, "to v_reset", "subtract",
              "the chip subtracts the threshold (and may fire several times per step); the "
              "float model resets to v_reset", "warning")
        if cuba and p.get("tau_syn_inh_ms") != p.get("tau_syn_exc_ms") and \
                role[n][0] == "output" and any(pr.channel == 1 for pr in fm.incoming(n)):
            issue("output_synapses", n, 2, 1, "readout neurons have one synapse: inhibitory "
                  "inputs take the excitatory time constant")  # fmt: skip
        rmax = int(profile["refractory"]["max_steps"])
        if int(f.get("n_ref", 0)) > rmax:
            issue("refractory", n, f"{int(f['n_ref'])} steps", rmax,
                  "Xylo has no refractory period")
        if p.get("v_init") is not None:
            notes.append(f"{n}: v_init is not deployed (the chip starts at 0)")
        par[n] = {"dm": dm, "syn": syn, "gain": gains, "theta": theta, "k": k,
                  "s_max": t_cap / theta, "bias": lay.bias, "cuba": cuba}
    # --- projections into matrices --------------------------------------------------------------
    mats: dict[str, list[tuple[Any, str, str]]] = {"in": [], "rec": [], "out": []}
    for pr in fm.projections:
        rs, rt = role.get(pr.source, ("?",))[0], role.get(pr.target, ("?",))[0]
        if pr.delay.size and int(pr.delay.max()) > 0:
            issue("delay", pr.target, int(pr.delay.max()), 0,
                  f"{pr.name}: Xylo has no synaptic delays; deployed without")
        if pr.plasticity:
            notes.append(f"{pr.name}: plastic; deployed with its current weights (no learning "
                         "on Xylo)")
        if rs == "input" and rt == "hidden":
            mats["in"].append((pr, pr.source, pr.target))
        elif rs == "hidden" and rt == "hidden":
            mats["rec"].append((pr, pr.source, pr.target))
        elif rs == "hidden" and rt == "output":
            mats["out"].append((pr, pr.source, pr.target))
        else:
            issue("topology", pr.target, f"{pr.name}: {rs} -> {rt}",
                  "input -> hidden -> (hidden ->) output",
                  "Xylo has input, recurrent and readout weights only; projection dropped")
    # --- shifts and scales ----------------------------------------------------------------------
    def wmax(m: str, target: str) -> float:
        g = par[target]["gain"]
        return max((float(np.max(np.abs(pr.w))) * g[int(pr.channel)]
                    for pr, _, t in mats[m] if t == target and pr.w.size), default=0.0)

    shifts: dict[str, int] = {}
    for m in ("in", "rec", "out"):
        cands = [par[t]["s_max"] * wmax(m, t) / w_hi for t in {t for _, _, t in mats[m]}
                 if wmax(m, t) > 0]  # fmt: skip
        if not cands:
            shifts[m] = 0
            continue
        sh = int(math.floor(math.log2(min(cands)))) if min(cands) > 0 else 0
        if sh > int(wq["shift_max"]):
            sh = int(wq["shift_max"])
        shifts[m] = max(sh, 0)
    for n in hidden + outputs:
        s = par[n]["s_max"]
        limiter = "threshold"
        for m in ("in", "rec", "out"):
            wm = wmax(m, n)
            if wm > 0 and w_hi * 2.0 ** shifts[m] / wm < s:
                s, limiter = w_hi * 2.0 ** shifts[m] / wm, f"weights_{m}"
        bmax = float(np.max(np.abs(par[n]["bias"]))) if par[n]["bias"].size else 0.0
        bb = bmax * 2.0 ** -par[n]["dm"]
        if bb > 0 and b_max / bb < s:
            s, limiter = b_max / bb, "bias"
        par[n]["s"], par[n]["limiter"] = s, limiter
    # --- integers ---------------------------------------------------------------------------------
    rmode = wq["rounding"]
    w_in = np.zeros((n_in, n_h, 2), np.int64)
    w_rec = np.zeros((n_h, n_h, 2), np.int64)
    w_out = np.zeros((n_h, max(n_o, 0)), np.int64)
    weights = []
    for m, arr in (("in", w_in), ("rec", w_rec), ("out", w_out)):
        for pr, src, tgt in mats[m]:
            c = int(pr.channel) if m != "out" else 0
            if m != "out" and c == 1 and int(ch["synapses_hidden"]) < 2:
                issue("synapses", tgt, 2, 1, f"{pr.name}: one synapse per hidden neuron; the "
                      "inhibitory current shares the first")  # fmt: skip
                c = 0
            g = par[tgt]["gain"][int(pr.channel)]
            real = pr.w * g * par[tgt]["s"] / 2.0 ** shifts[m]
            mant = _rnd(real, rmode)
            if mant.size and (mant.max() > w_hi or mant.min() < w_lo):
                issue("weight_range", tgt, int(np.max(np.abs(mant))), w_hi,
                      f"{pr.name}: weights clipped to int{wq['bits']}")  # fmt: skip
            mant = np.clip(mant, w_lo, w_hi)
            pre = pr.pre.astype(np.int64) + role[src][1]
            post = pr.post.astype(np.int64) + role[tgt][1]
            if m == "out":
                np.add.at(arr, (pre, post), mant)
            else:
                np.add.at(arr[:, :, c], (pre, post), mant)
            deq = mant * 2.0 ** shifts[m] / (g * par[tgt]["s"])
            weights.append({"projection": pr.name, "matrix": m, "w_float": pr.w, "w_deq": deq})
    for m, arr in (("in", w_in), ("rec", w_rec), ("out", w_out)):
        if arr.size and (arr.max() > w_hi or arr.min() < w_lo):
            issue("weight_range", m, int(np.max(np.abs(arr))), w_hi,
                  f"weights_{m}: projections onto the same synapse add up beyond int"
                  f"{wq['bits']}; clipped")  # fmt: skip
            np.clip(arr, w_lo, w_hi, out=arr)

    def per_neuron(names: list[str]) -> dict[str, np.ndarray]:
        cols: dict[str, list[np.ndarray]] = {k: [] for k in ("dm", "ds", "ds2", "th", "b")}
        for n in names:
            q, nn = par[n], by_name[n].n
            th = int(math.floor(q["s"] * q["theta"])) + 1  # float '>' as integer '>='
            if th > th_max:
                issue("threshold_range", n, th, th_max, "threshold clipped")
                th = th_max
            b = _rnd(q["bias"] * q["s"] * 2.0 ** -q["dm"], rmode)
            if b.size and np.max(np.abs(b)) > b_max:
                issue("bias_range", n, int(np.max(np.abs(b))), b_max, "bias clipped")
                b = np.clip(b, -b_max, b_max)
            cols["dm"].append(np.full(nn, q["dm"]))
            cols["ds"].append(np.full(nn, q["syn"][0][1]))
            cols["ds2"].append(np.full(nn, q["syn"][1][1]))
            cols["th"].append(np.full(nn, th))
            cols["b"].append(b.astype(np.int64))
            q["threshold_int"] = th
        return {k: (np.concatenate(v).astype(np.int64) if v else np.zeros(0, np.int64))
                for k, v in cols.items()}

    hp, op = per_neuron(hidden), per_neuron(outputs)
    spec = XyloSpec(w_in, w_rec, w_out, hp["dm"], hp["ds"], hp["ds2"], op["dm"], op["ds"],
                    hp["th"], op["th"], hp["b"], op["b"], shifts["in"], shifts["rec"],
                    shifts["out"], fm.dt_us * 1e-6, role, profile.name)  # fmt: skip
    spec.info = {n: {"scale": par[n]["s"], "scale_limited_by": par[n]["limiter"],
                     "threshold_float": par[n]["theta"], "threshold_int": par[n]["threshold_int"],
                     "k_float": par[n]["k"], "k_effective": 2.0 ** -par[n]["dm"],
                     "dash_mem": par[n]["dm"],
                     "d_syn_float": [par[n]["syn"][c][0] for c in (0, 1)],
                     "d_syn_effective": [1 - 2.0 ** -par[n]["syn"][c][1] for c in (0, 1)],
                     "dash_syn": [par[n]["syn"][c][1] for c in (0, 1)],
                     "weight_gain": [par[n]["gain"][c] for c in (0, 1)]}
                 for n in hidden + outputs}  # fmt: skip
    figures = {"inputs": n_in, "hidden": n_h, "outputs": n_o,
               "input_layers": inputs, "hidden_layers": hidden, "output_layers": outputs}
    return XyloModel(spec, issues, notes, weights, figures)


# --- design rules ----------------------------------------------------------------------------


def check_xylo(xm: XyloModel, profile: Profile) -> list[XyloViolation]:
    """Every Xylo limit that the quantized model breaks (plus quantization issues), at once."""
    ch = profile["chip"]
    sp = xm.spec
    out = list(xm.issues)

    def lim(rule: str, where: str, value: int, limit: int, msg: str) -> None:
        if limit and value > limit:
            out.append(XyloViolation(rule, where, value, limit, msg))

    lim("inputs", "input", sp.n_in, ch["inputs"], "more input channels than the chip has")
    lim("hidden_neurons", "hidden", sp.n_hidden, ch["hidden_neurons"],
        "more hidden neurons than the chip has")
    lim("output_neurons", "output", sp.n_out, ch["output_neurons"],
        "more readout neurons than the chip has")
    nz_in = np.any(sp.weights_in != 0, axis=(0, 2))
    reach = int(np.nonzero(nz_in)[0].max()) + 1 if nz_in.any() else 0
    lim("input_targets", "hidden", reach, ch["input_targets"],
        f"input weights reach hidden neuron {reach - 1}; only the first "
        f"{ch['input_targets']} can be reached")
    nz_out = np.nonzero(np.any(sp.weights_out != 0, axis=1))[0]
    span = sp.n_hidden - int(nz_out.min()) if nz_out.size else 0
    lim("output_sources", "hidden", span, ch["output_sources"],
        f"readout weights read hidden neuron {sp.n_hidden - span}; only the last "
        f"{ch['output_sources']} can be read")
    rec = sp.weights_rec != 0
    fan_out = rec.sum(axis=(1, 2))
    fan_in = rec.sum(axis=(0, 2))
    if fan_out.size:
        lim("fan_out", "hidden", int(fan_out.max()), ch["max_fan_out"],
            "recurrent weights from one hidden neuron")
        lim("fan_in", "hidden", int(fan_in.max()), ch["max_fan_in"],
            "recurrent weights into one hidden neuron")
    lim("recurrent_weights", "hidden", int(rec.sum()), ch["recurrent_weights"],
        "recurrent weights in total")
    if ch["synapses_hidden"] < 2 and (np.any(sp.weights_in[:, :, 1])
                                      or np.any(sp.weights_rec[:, :, 1])):
        out.append(XyloViolation("synapses", "hidden", 2, 1, "one synapse per hidden neuron"))
    shift_max = int(profile["weights"]["shift_max"])
    for k in ("in", "rec", "out"):
        lim("weight_shift", k, int(getattr(sp, f"weight_shift_{k}")), shift_max,
            f"weights_{k} shift")
    dash_max = (1 << int(profile["decay"]["dash_bits"])) - 1
    for k in ("dash_mem", "dash_syn", "dash_syn_2", "dash_mem_out", "dash_syn_out"):
        a = getattr(sp, k)
        if a.size:
            lim("dash_range", k, int(a.max()), dash_max, f"{k} above {dash_max}")
    tus = int(round(sp.dt * 1e6))
    ts = profile["timestep"]
    if not ts["min_us"] <= tus <= ts["max_us"]:
        out.append(XyloViolation("timestep", "-", tus, f"{ts['min_us']}..{ts['max_us']}",
                                 "time step out of range"))
    return out


#: Rule families reported one line each (rule names per family).
RULE_FAMILIES = {
    "size": ("inputs", "hidden_neurons", "output_neurons", "input_targets", "output_sources"),
    "connectivity": ("fan_out", "fan_in", "recurrent_weights", "synapses", "topology", "delay",
                     "output_synapses"),
    "number_formats": ("weight_range", "weight_shift", "threshold_range", "bias_range",
                       "dash_range", "membrane_decay"),
    "neuron_model": ("neuron_model", "reset_mode", "refractory"),
    "timestep": ("timestep",),
}


# --- the emulator ----------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _sat(x: int, hi: int) -> int:
    if x > hi:
        return hi
    if x < -hi - 1:
        return -hi - 1
    return x


@njit(cache=True, nogil=True)
def _dec(x: int, dash: int) -> int:
    d = x >> dash
    if d == 0:
        if x > 0:
            return 1
        if x < 0:
            return -1
    return d


@njit(cache=True, nogil=True)
def _deliver(counts, cap, ptr, post, syn, w, isyn, hi, stats):
    """Add every synapse's weight once per event (<= cap) in XyloSim's order, saturating."""
    for pre in range(counts.shape[0]):
        c = counts[pre]
        if c > cap:
            c = cap
        if c <= 0:
            continue
        for j in range(ptr[pre], ptr[pre + 1]):
            t = post[j]
            s = syn[j]
            for _ in range(c):
                x = isyn[t, s] + w[j]
                y = _sat(x, hi)
                if y != x:
                    stats[0] += 1
                isyn[t, s] = y
            stats[2] += c


@njit(cache=True, nogil=True)
def _evolve(isyn, v, dash_syn, nsyn, dash_mem, th, bias, max_spk, hi, out, stats):
    """One step of a population of Xylo neurons (XyloIAFNeuron::evolve); spike counts to out."""
    for i in range(v.shape[0]):
        tot = 0
        for s in range(nsyn):
            x = isyn[i, s]
            isyn[i, s] = x - _dec(x, dash_syn[i, s])
            tot += isyn[i, s]
        dv = -_dec(v[i], dash_mem[i])
        if dv > hi:  # int16(-(-32768)) wraps
            dv -= 2 * (hi + 1)
        x = dv + tot
        dv = _sat(x, hi)
        x2 = dv + bias[i]
        dv2 = _sat(x2, hi)
        x3 = v[i] + dv2
        vi = _sat(x3, hi)
        if x != dv or x2 != dv2 or x3 != vi:
            stats[1] += 1
        n = 0
        while vi >= th[i] and n < max_spk:
            n += 1
            vi -= th[i]
        v[i] = vi
        out[i] = n
        stats[3] += 1


def _csr(w: np.ndarray, shift: int, n_syn: int) -> tuple[np.ndarray, ...]:
    """Synapses of a (pre, post[, syn]) matrix in XyloSim's order: per pre, synapse 1 targets
    ascending, then synapse 2; weights int16(mant << shift)."""
    w3 = w if w.ndim == 3 else w[:, :, None]
    w3 = w3[:, :, :n_syn]
    ptr = np.zeros(w3.shape[0] + 1, np.int64)
    posts, syns, ws = [], [], []
    for pre in range(w3.shape[0]):
        for s in range(w3.shape[2]):
            nz = np.nonzero(w3[pre, :, s])[0]
            posts.append(nz)
            syns.append(np.full(nz.size, s))
            ws.append(w3[pre, nz, s])
        ptr[pre + 1] = ptr[pre] + sum(a.size for a in posts[-w3.shape[2]:])
    def cat(a: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(a).astype(np.int64) if a else np.zeros(0, np.int64)

    wv = cat(ws) << int(shift)
    wv = ((wv + 32768) % 65536) - 32768  # the C++ int8 << shift -> int16_t conversion
    return ptr, cat(posts), cat(syns), wv


class XyloEmulator:
    """Runs a `XyloSpec` step by step, bit-exact with XyloSim (see the module docstring)."""

    def __init__(self, spec: XyloSpec, n_syn: int = 2, state_bits: int = 16,
                 input_events: int = 15, hidden_spikes: int = 31, output_spikes: int = 1):
        self.spec = spec
        self.n_syn = int(n_syn)
        self.hi = (1 << (state_bits - 1)) - 1
        self.caps = (int(input_events), int(hidden_spikes), int(output_spikes))
        self.cin = _csr(np.asarray(spec.weights_in, np.int64), spec.weight_shift_in, n_syn)
        self.crec = _csr(np.asarray(spec.weights_rec, np.int64), spec.weight_shift_rec, n_syn)
        self.cout = _csr(np.asarray(spec.weights_out, np.int64), spec.weight_shift_out, 1)
        nh, no = spec.n_hidden, spec.n_out
        self.dash_syn = np.stack([spec.dash_syn, spec.dash_syn_2], axis=1).astype(np.int64)
        self.dash_syn_out = np.asarray(spec.dash_syn_out, np.int64).reshape(no, 1)
        self.dash_mem = np.asarray(spec.dash_mem, np.int64)
        self.dash_mem_out = np.asarray(spec.dash_mem_out, np.int64)
        self.th = np.asarray(spec.threshold, np.int64)
        self.th_out = np.asarray(spec.threshold_out, np.int64)
        self.bias = np.asarray(spec.bias, np.int64)
        self.bias_out = np.asarray(spec.bias_out, np.int64)
        self.isyn = np.zeros((nh, 2), np.int64)
        self.isyn_out = np.zeros((no, 1), np.int64)
        self.v = np.zeros(nh, np.int64)
        self.v_out = np.zeros(no, np.int64)
        self.spk = np.zeros(nh, np.int64)
        self.spk_out = np.zeros(no, np.int64)
        #: saturated additions into i_syn, saturated membrane updates, synaptic events, updates
        self.stats = np.zeros(4, np.int64)

    def reset(self) -> None:
        """States, spikes in flight and counters back to zero."""
        for a in (self.isyn, self.isyn_out, self.v, self.v_out, self.spk, self.spk_out,
                  self.stats):
            a[:] = 0

    def step(self, counts: np.ndarray) -> np.ndarray:
        """One step with `counts` input events per channel; returns the readout spikes."""
        cin = np.asarray(counts, np.int64)
        hi = self.hi
        _deliver(cin, self.caps[0], *self.cin, self.isyn, hi, self.stats)
        _deliver(self.spk, self.caps[1], *self.crec, self.isyn, hi, self.stats)
        _deliver(self.spk, self.caps[1], *self.cout, self.isyn_out, hi, self.stats)
        _evolve(self.isyn, self.v, self.dash_syn, self.n_syn, self.dash_mem, self.th,
                self.bias, self.caps[1], hi, self.spk, self.stats)  # fmt: skip
        _evolve(self.isyn_out, self.v_out, self.dash_syn_out, 1, self.dash_mem_out,
                self.th_out, self.bias_out, self.caps[2], hi, self.spk_out,
                self.stats)  # fmt: skip
        return self.spk_out.copy()

    def run(self, raster: np.ndarray, record: bool = False) -> dict[str, np.ndarray]:
        """Run a (T, n_in) raster of event counts; returns per step `out` (T, n_out), `hidden`
        spike counts (T, n_hidden) and with `record` the states after each step."""
        raster = np.asarray(raster, np.int64)
        T = raster.shape[0]
        res = {"out": np.zeros((T, self.spec.n_out), np.int64),
               "hidden": np.zeros((T, self.spec.n_hidden), np.int64)}  # fmt: skip
        if record:
            for k, n in (("v", self.spec.n_hidden), ("isyn", self.spec.n_hidden),
                         ("isyn2", self.spec.n_hidden), ("v_out", self.spec.n_out),
                         ("isyn_out", self.spec.n_out)):
                res[k] = np.zeros((T, n), np.int64)
        for t in range(T):
            res["out"][t] = self.step(raster[t])
            res["hidden"][t] = self.spk
            if record:
                res["v"][t], res["v_out"][t] = self.v, self.v_out
                res["isyn"][t], res["isyn2"][t] = self.isyn[:, 0], self.isyn[:, 1]
                res["isyn_out"][t] = self.isyn_out[:, 0]
        return res

    @property
    def counters(self) -> dict[str, int]:
        """Saturations and operation counts since the last reset."""
        names = ("isyn_saturated", "v_saturated", "synaptic_events", "neuron_updates")
        return {n: int(self.stats[i]) for i, n in enumerate(names)}


def emulator_for(spec: XyloSpec, profile: Profile) -> XyloEmulator:
    """An emulator with the profile's synapse count, state width and per-step event caps."""
    ch = profile["chip"]
    return XyloEmulator(spec, int(ch["synapses_hidden"]), int(profile["state"]["bits"]),
                        int(ch["input_events_per_step"]), int(ch["hidden_spikes_per_step"]),
                        int(ch["output_spikes_per_step"]))  # fmt: skip


def raster(ptr: np.ndarray, idx: np.ndarray, n_in: int, a: int = 0, b: int | None = None
           ) -> np.ndarray:  # fmt: skip
    """Event counts (steps, n_in) of CSR input spikes over steps a..b (edgesnn input indices are
    the concatenated input layers, as are Xylo's input channels)."""
    b = len(ptr) - 1 if b is None else b
    out = np.zeros((b - a, n_in), np.int64)
    for k in range(a, b):
        sel = np.asarray(idx[ptr[k] : ptr[k + 1]], np.int64)
        sel = np.unique(sel[(sel >= 0) & (sel < n_in)])
        out[k - a, sel] = 1
    return out


# --- Rockpool's XyloSim (optional) ------------------------------------------------------------


def rockpool_xylosim(n_syn: int = 2) -> Any:
    """Rockpool's ``XyloSim`` class (Xylo Audio 2 for two synapses, Xylo IMU for one), or None
    when rockpool or xylosim is not installed. ``rockpool.devices.xylo`` imports samna (a
    binary SynSense ships outside PyPI) in its package ``__init__``; when that fails the
    simulator modules, which need only xylosim, are loaded without those ``__init__`` files."""
    import importlib
    import importlib.util
    import sys
    import types

    if importlib.util.find_spec("rockpool") is None or importlib.util.find_spec("xylosim") is None:
        return None
    sub = "syns61201" if n_syn == 2 else "syns63300"
    if importlib.util.find_spec("samna") is not None:
        try:
            return importlib.import_module(f"rockpool.devices.xylo.{sub}.xylo_sim").XyloSim
        except ImportError:
            pass
    import rockpool.devices as dev

    base = Path(dev.__file__).parent / "xylo"
    for k in list(sys.modules):
        if k.startswith("rockpool.devices.xylo"):
            del sys.modules[k]
    for name, path in (("rockpool.devices.xylo", base), ("rockpool.devices.xylo.syns61300",
                       base / "syns61300"), (f"rockpool.devices.xylo.{sub}", base / sub)):
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(path)]
        sys.modules[name] = pkg
    try:
        return importlib.import_module(f"rockpool.devices.xylo.{sub}.xylo_sim").XyloSim
    except ImportError:
        return None


# --- deploy: report, summary, export ----------------------------------------------------------


def weight_errors(xm: XyloModel) -> list[dict[str, Any]]:
    """Per projection: float vs dequantized chip weights (float units)."""
    out = []
    for w in xm.weights:
        wf, wd = np.asarray(w["w_float"], float), np.asarray(w["w_deq"], float)
        err = wd - wf
        rms = float(np.sqrt(np.mean(err**2))) if err.size else 0.0
        ref = float(np.sqrt(np.mean(wf**2))) if wf.size else 0.0
        out.append({"projection": w["projection"], "matrix": w["matrix"], "synapses": int(wf.size),
                    "max_abs_weight": float(np.max(np.abs(wf))) if wf.size else 0.0,
                    "rms_error": rms, "relative_rms_error": rms / ref if ref > 0 else 0.0,
                    "max_abs_error": float(np.max(np.abs(err))) if err.size else 0.0,
                    "zeroed": int(np.sum((wd == 0) & (wf != 0))),
                    "shift": int(getattr(xm.spec, f"weight_shift_{w['matrix']}"))})  # fmt: skip
    return out


def rule_families(violations: list[XyloViolation]) -> list[dict[str, Any]]:
    """One entry per rule family checked (rules, error and warning counts, status)."""
    fams = {f: {"family": f, "rules": list(r), "violations": 0, "warnings": 0, "broken": []}
            for f, r in RULE_FAMILIES.items()}  # fmt: skip
    which = {r: f for f, rules in RULE_FAMILIES.items() for r in rules}
    for v in violations:
        f = fams[which.get(v.rule, "connectivity")]
        f["violations" if v.severity == "error" else "warnings"] += 1
        if v.rule not in f["broken"]:
            f["broken"].append(v.rule)
    for f in fams.values():
        f["status"] = "fail" if f["violations"] else "warn" if f["warnings"] else "pass"
    return list(fams.values())


def _run_xylo(em: XyloEmulator, xm: XyloModel, rec: Any) -> tuple[dict[str, list], np.ndarray,
                                                                  dict[str, int]]:
    """Per edgesnn layer the emulated spikes as (step, neuron) pairs (Xylo step + 1: aligned
    to the float model's one step per hop), per sample the readout counts, and counters."""
    sp = xm.spec
    spikes: dict[str, list[tuple[int, int]]] = {n: [] for n, r in sp.layers.items()
                                                if r[0] != "input"}  # fmt: skip
    counts = np.zeros((rec.n_samples, sp.n_out), np.int64)
    totals: dict[str, int] = {}
    for s in range(rec.n_samples):
        a, b = int(rec.sample_ptr[s]), int(rec.sample_ptr[s + 1])
        if s == 0 or rec.reset:
            em.reset()
        res = em.run(raster(rec.in_ptr, rec.in_idx, sp.n_in, a, b))
        counts[s] = res["out"].sum(axis=0)
        for n, (role, off, size) in sp.layers.items():
            if role == "input":
                continue
            block = res["hidden" if role == "hidden" else "out"][:, off : off + size]
            t, i = np.nonzero(block)
            spikes[n] += [(a + int(x) + 1, int(y)) for x, y in zip(t, i)]
        if rec.reset or s == rec.n_samples - 1:
            for k, v in em.counters.items():
                totals[k] = totals.get(k, 0) + v
    return spikes, counts, totals


def _votes(counts: np.ndarray, rec: Any) -> np.ndarray:
    """Spike counts per class: summed over the output neurons a recording's `owner` gives each
    class (recordings that name one), else one output neuron per class."""
    owner = getattr(rec, "owner", None)
    if owner is None:
        return counts
    owner = np.asarray(owner, np.int64)
    names = getattr(rec, "label_names", None)
    n_cls = len(names) if names else int(owner.max(initial=-1)) + 1
    votes = np.zeros((counts.shape[0], n_cls), np.int64)
    for j in np.flatnonzero(owner >= 0):
        votes[:, owner[j]] += counts[:, j]
    return votes


def build_report(net: Network, xm: XyloModel, profile: Profile,
                 violations: list[XyloViolation], rec: Any = None, *, tol_steps: int = 2,
                 progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """Everything `edgesnn deploy` reports for a Xylo profile, as a JSON-able dict."""
    from edgesnn.deploy import report as R
    from edgesnn.evaluation import decide

    sp = xm.spec
    errors = [v for v in violations if v.severity == "error"]
    rep: dict[str, Any] = {
        "format": R.REPORT_FORMAT, "schema_version": R.REPORT_SCHEMA_VERSION,
        "profile": profile.name, "family": FAMILY, "device": profile["profile"]["device"],
        "dt_us": int(round(sp.dt * 1e6)), "fits": not errors,
        "rule_families": rule_families(violations),
        "violations": [{"rule": v.rule, "layer": v.layer, "value": R._j(v.value),
                        "limit": R._j(v.limit), "message": v.message, "severity": v.severity}
                       for v in violations],
        "xylo": {"inputs": sp.n_in, "hidden": sp.n_hidden, "outputs": sp.n_out,
                 "weight_shift": {"in": sp.weight_shift_in, "rec": sp.weight_shift_rec,
                                  "out": sp.weight_shift_out},
                 "layers": {k: list(v) for k, v in sp.layers.items()}},
        "weights": weight_errors(xm),
        "layers": [{"layer": n, **info} for n, info in sp.info.items()],
        "notes": list(xm.notes),
        "learning": {"plastic_projections": [], "can_learn_on_chip": False,
                     "message": "Xylo has no on-chip learning; weights are deployed frozen"},
    }  # fmt: skip
    if rec is not None:
        bar = R._Progress(rec.n_steps, "float", progress)
        fsp = R._run_float(net, rec, bar.tick)
        bar.close()
        em = emulator_for(sp, profile)
        xsp, xcounts, counters = _run_xylo(em, xm, rec)
        sizes = {lay: sp.layers[lay][2] for lay in sp.layers}
        layers = {n: R.layer_agreement(sizes[n], fsp.get(n, []), xsp[n], tol_steps)
                  for n in xsp}  # fmt: skip
        fm_counts = np.zeros_like(xcounts)
        for n in xm.figures["output_layers"]:
            off = sp.layers[n][1]
            for t, i in fsp.get(n, []):
                s = int(np.searchsorted(rec.sample_ptr, t, side="right") - 1)
                fm_counts[s, off + i] += 1
        cf = np.asarray(decide(_votes(fm_counts, rec)), np.int64).reshape(rec.n_samples)
        cq = np.asarray(decide(_votes(xcounts, rec)), np.int64).reshape(rec.n_samples)
        ro = R.readout_summary(cf, cq, rec)
        rep["check"] = {
            "steps": rec.n_steps, "samples": rec.n_samples, "reset_per_sample": rec.reset,
            "tail_steps": rec.tail_steps, "source": rec.source or {"kind": "spikes"},
            "timing": "Xylo input events act in their own step; emulated spikes are compared "
                      "one step later, aligned with the float model's one step per hop",
            "layers": layers, "counters": counters, "readout": ro,
        }  # fmt: skip
    errs = sorted({v.rule for v in errors})
    warns = sorted({v.rule for v in violations if v.severity != "error"})
    w = f"; warnings: {', '.join(warns)}" if warns else ""
    rep["verdict"] = (f"DOES NOT FIT {profile.name}: {len(errors)} violation(s) of "
                      f"{', '.join(errs)}{w}" if errors else f"FITS {profile.name}{w}")
    return rep


def summary_text(rep: dict[str, Any]) -> str:
    """The human summary of a Xylo deploy report."""
    x = rep["xylo"]
    lines = [f"edgesnn deploy: profile {rep['profile']} ({rep['family']}, {rep['device']}), "
             f"dt {rep['dt_us']} us",
             f"fits: {'yes' if rep['fits'] else 'NO'}; {x['inputs']} inputs, {x['hidden']} "
             f"hidden, {x['outputs']} readout neurons; weight shifts in {x['weight_shift']['in']}"
             f", rec {x['weight_shift']['rec']}, out {x['weight_shift']['out']}", ""]
    errs = [v for v in rep["violations"] if v["severity"] == "error"]
    lines.append(f"design rules: {len(errs)} violation(s), "
                 f"{len(rep['violations']) - len(errs)} warning(s)")
    for f in rep["rule_families"]:
        what = {"pass": "ok", "warn": f"{f['warnings']} warning(s)",
                "fail": f"{f['violations']} violation(s)"}[f["status"]]
        broken = f" ({', '.join(f['broken'])})" if f["broken"] else ""
        lines.append(f"  check {f['family']:18s} {what}{broken}  [{', '.join(f['rules'])}]")
    for v in rep["violations"]:
        lines.append(f"  {v['severity']:7s} {v['rule']:18s} {v['layer']:>12s}  value {v['value']}"
                     f"  limit {v['limit']}  {v['message']}")  # fmt: skip
    lines += ["", "weight quantization (float units):"]
    for w in rep["weights"]:
        lines.append(f"  {w['projection']:>20s}: {w['synapses']} syn, weights_{w['matrix']}, "
                     f"max |w| {w['max_abs_weight']:.4g}, rms err {w['rms_error']:.3g} "
                     f"({100 * w['relative_rms_error']:.2f}%), shift {w['shift']}")
    lines += ["", "layer parameters (float -> chip):"]
    for lay in rep["layers"]:
        lines.append(f"  {lay['layer']:>12s}: threshold {lay['threshold_int']} (scale "
                     f"{lay['scale']:.5g}, limited by {lay['scale_limited_by']}), k "
                     f"{lay['k_float']:.4g} -> {lay['k_effective']:.4g} (dash {lay['dash_mem']}),"
                     f" d_syn {lay['d_syn_float'][0]:.4g} -> {lay['d_syn_effective'][0]:.4g} "
                     f"(dash {lay['dash_syn'][0]})")  # fmt: skip
    if "check" in rep:
        c = rep["check"]
        src = c.get("source") or {}
        what = {"pipeline": f"{src.get('recording') or 'its own source'} through "
                            f"{src.get('pipeline')} (no reset between windows)",
                "recordings": f"{src.get('recordings')} labelled recordings"}.get(
            src.get("kind", ""), "recording")  # fmt: skip
        lines += ["", f"check on {what}: {c['steps']} steps, {c['samples']} sample(s)"
                  + (f", {c['tail_steps']} silent tail steps after each" if c["tail_steps"]
                     else "")]  # fmt: skip
        for name, a in c["layers"].items():
            lines.append(f"  {name:>12s}: spiking neuron-steps {a['float_spikes']} float / "
                         f"{a['quantized_spikes']} Xylo; same count "
                         f"{100 * a['neurons_same_count']:.1f}% of neurons; timing exact "
                         f"{100 * a['timing_exact']:.1f}%, within {a['tolerance_steps']} steps "
                         f"{100 * a['timing_within_tol']:.1f}%")  # fmt: skip
        ro = c["readout"]
        line = f"  readout agreement {100 * ro['agreement']:.1f}%"
        if "float_accuracy" in ro:
            line += (f"; accuracy float {100 * ro['float_accuracy']:.1f}%, Xylo "
                     f"{100 * ro['quantized_accuracy']:.1f}%")  # fmt: skip
        line += (f"; undecided (tie or silence) float {ro['float_undecided']}, Xylo "
                 f"{ro['quantized_undecided']}")  # fmt: skip
        lines.append(line)
        k = c["counters"]
        lines.append(f"  saturated: i_syn additions {k.get('isyn_saturated', 0)}, membrane "
                     f"updates {k.get('v_saturated', 0)}; synaptic events "
                     f"{k.get('synaptic_events', 0)}")  # fmt: skip
    lines += ["", f"learning: {rep['learning']['message']}"]
    for n in rep["notes"]:
        lines.append(f"note: {n}")
    lines += ["", f"verdict: {rep['verdict']}"]
    return "\n".join(lines) + "\n"


def summary_json(rep: dict[str, Any]) -> dict[str, Any]:
    """The summary for scripts (`edgesnn deploy --json`) of a Xylo report."""
    from edgesnn.deploy import report as R

    out: dict[str, Any] = {
        "format": R.SUMMARY_FORMAT, "schema_version": R.REPORT_SCHEMA_VERSION,
        "profile": rep["profile"], "family": rep["family"], "fits": rep["fits"],
        "verdict": rep["verdict"], "xylo": rep["xylo"],
        "rule_families": [{k: f[k] for k in ("family", "status", "violations", "warnings",
                                              "broken")} for f in rep["rule_families"]],
        "violations": rep["violations"],
        "weights_max_relative_rms_error": max((w["relative_rms_error"] for w in rep["weights"]),
                                              default=0.0),
        "files": rep.get("files", []),
    }  # fmt: skip
    if "check" in rep:
        ro = rep["check"]["readout"]
        out["check"] = {"steps": rep["check"]["steps"], "samples": rep["check"]["samples"],
                        "readout_agreement": ro["agreement"], "counters": rep["check"]["counters"],
                        **{k: ro[k] for k in ("float_accuracy", "quantized_accuracy",
                                              "accuracy_loss_points", "float_undecided",
                                              "quantized_undecided") if k in ro}}  # fmt: skip
    return out


RUN_SCRIPT = '''"""Run the exported Xylo network in Rockpool's XyloSim (needs rockpool and xylosim).

    python run_xylosim.py [RASTER.npy]     # RASTER: (steps, {n_in}) input event counts

Without samna, rockpool.devices.xylo cannot be imported as a package; edgesnn's loader
(edgesnn.deploy.xylo.rockpool_xylosim) imports the simulator module alone. With samna:
    from rockpool.devices.xylo.syns61201 import XyloSim, config_from_specification
"""
import sys
from pathlib import Path

import numpy as np

from edgesnn.deploy.xylo import XyloSpec, rockpool_xylosim

spec = XyloSpec.load(Path(__file__).with_name("spec.npz"))
XyloSim = rockpool_xylosim({n_syn})
if XyloSim is None:
    sys.exit("rockpool and xylosim are needed: pip install 'edgesnn[xylo]'")
mod = XyloSim.from_specification(**spec.rockpool_kwargs({n_syn}))
raster = (np.load(sys.argv[1]) if len(sys.argv) > 1
          else np.zeros((100, spec.n_in), np.int64))
out, _, rec = mod.evolve(raster.astype(int), record=True)
print("readout spikes per neuron:", np.asarray(out).sum(axis=0).tolist())
print("hidden spikes:", int(np.asarray(rec["Spikes"]).sum()))
'''


def write_export(xm: XyloModel, profile: Profile, out: Path) -> list[str]:
    """xylo/spec.npz (Rockpool's specification, integer arrays) and xylo/run_xylosim.py."""
    d = out / "xylo"
    d.mkdir(parents=True, exist_ok=True)
    xm.spec.save(d / "spec.npz")
    n_syn = int(profile["chip"]["synapses_hidden"])
    (d / "run_xylosim.py").write_text(RUN_SCRIPT.replace("{n_in}", str(xm.spec.n_in))
                                      .replace("{n_syn}", str(n_syn)), encoding="utf-8")
    return ["xylo/spec.npz", "xylo/run_xylosim.py"]


def deploy_xylo(net: Network, fm: FloatModel, profile: Profile, out_dir: str | Path,
                recording: Any = None, *, tol_steps: int = 2, progress: bool = True,
                tail_steps: int | None = None) -> dict[str, Any]:  # fmt: skip
    """`edgesnn.deploy.deploy` for a Xylo profile: quantize, check, compare on a recording,
    write xylo/spec.npz, xylo/run_xylosim.py, report.json and summary.txt into out_dir."""
    from edgesnn.deploy import report as R
    from edgesnn.evaluation import model_tail_steps

    xm = quantize_xylo(fm, profile)
    violations = check_xylo(xm, profile)
    rec = recording
    if isinstance(rec, R.PipelineSource):
        rec = rec.read(net.n_inputs, net.dt_us, progress)
    elif rec is not None and not isinstance(rec, R.DeployRecording):
        rec = R.load_recording(rec, net.n_inputs)
    if rec is not None:
        if tail_steps is None:
            tail_steps = model_tail_steps(net.manifest) or 0
        rec = R.with_tail(rec, tail_steps)
    rep = build_report(net, xm, profile, violations, rec, tol_steps=tol_steps,
                       progress=progress)  # fmt: skip
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rep["files"] = [*write_export(xm, profile, out), "report.json", "summary.txt"]
    (out / "report.json").write_text(json.dumps(rep, indent=1, default=_jsonable),
                                     encoding="utf-8")  # fmt: skip
    (out / "summary.txt").write_text(summary_text(rep), encoding="utf-8")
    return rep
