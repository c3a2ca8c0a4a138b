"""Xylo profiles: their own schema (one core: channels, hidden and readout neurons, bit-shift
decays) and cross-field rules."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from edgesnn.config.schema import Field, Schema, did_you_mean
from edgesnn.deploy.profile import Profile
from edgesnn.errors import ConfigError, Problem

FAMILY = "xylo"
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


#: The target's schema, cross-field rules and loader under the names every target uses.
SCHEMA = XYLO_SCHEMA
semantic = _semantic
load = loads_xylo_profile
