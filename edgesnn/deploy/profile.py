"""Chip profiles: one TOML per chip in `firmware_profiles/`, validated strictly by the chip
target its ``[profile] family`` names (edgesnn.deploy.targets).

A profile is data: core and chip resources, number formats and their overflow behaviour, the
update family its emulator kernel implements, energy figures, on-chip learning, and a
`[sources]` table that names where every figure comes from. `load_profile("loihi2")` reads a
shipped profile; `load_profile("my/chip.toml")` reads a user's. Every problem is reported at
once with its dotted path and line (unknown keys get a "did you mean").
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgesnn.config.schema import Field, Schema, did_you_mean
from edgesnn.errors import ConfigError, Problem

#: A chip target's own cross-field checks of a validated profile (its ``profile.semantic``).
FamilyChecks = Callable[[dict[str, Any]], list[Problem]]
#: Float neuron models of the core a profile may accept.
MAPPABLE_MODELS = ("lif", "cuba_lif", "if")
ROUNDING = ("half_even", "half_away", "floor", "toward_zero")
OVERFLOW = ("wrap", "saturate")


def _nonempty(v: Any) -> str | None:
    return None if v else "must not be empty"


PROFILE_SCHEMA = Schema(
    {
        "profile": Field(Schema({
            "name": Field(str, doc="Profile name (the file stem by convention)."),
            "description": Field(str, default="", doc="One line about the target."),
            "family": Field(str, doc="Chip target family (edgesnn.deploy.targets): "
                                     "loihi_cuba, spinnaker_if_curr_exp, xylo, ..."),
            "neuron_models": Field(("list", str), check=_nonempty,
                                   doc="Core neuron models this target can run."),
        })),
        "chip": Field(Schema({
            "neurons_per_core": Field(int, min=1, doc="Neurons (compartments) per core."),
            "cores_per_chip": Field(int, min=1, doc="Neuron cores per chip."),
            "chips": Field(int, default=1, min=1, doc="Chips available to one model."),
            "max_fan_in_axons_per_core": Field(int, min=1,
                                               doc="Distinct source neurons into one core."),
            "max_fan_out_axons_per_core": Field(int, min=1,
                                                doc="Output axons (neuron x target core)."),
            "synapse_memory_bits_per_core": Field(int, min=1, doc="Synapse memory per core."),
            "synapse_cost": Field(str, choices=("loihi", "spinnaker"),
                                  doc="Synapse memory cost model."),
            "threshold_profiles_per_core": Field(int, default=1_000_000, min=1),
            "compartment_profiles_per_core": Field(int, default=1_000_000, min=1),
            "input_layers_use_cores": Field(bool, default=False,
                                            doc="Input layers occupy neuron cores."),
        })),
        "weights": Field(Schema({
            "bits": Field(int, min=1, max=32, doc="Stored weight bits (mantissa or magnitude)."),
            "sign": Field(str, choices=("sign_mode", "separate_types"),
                          doc="sign_mode: per projection excitatory/inhibitory/mixed (mixed "
                              "costs one bit); separate_types: unsigned per synapse type."),
            "exp_min": Field(int, doc="Lowest weight exponent / ring-buffer shift."),
            "exp_max": Field(int, doc="Highest weight exponent / ring-buffer shift."),
            "rounding": Field(str, choices=ROUNDING, doc="Rounding of weights."),
            "ring_shift_policy": Field(str, default="sum", choices=("sum", "max_weight"),
                                       doc="separate_types: largest input per step estimate."),
        })),
        "state": Field(Schema({
            "bits_u": Field(int, min=2, max=62, doc="Synaptic current state bits (signed)."),
            "bits_v": Field(int, min=2, max=62, doc="Membrane state bits (signed)."),
            "frac_bits": Field(int, default=0, min=0, max=31, doc="Fixed-point fraction bits."),
            "overflow_u": Field(str, choices=OVERFLOW),
            "u_wrap_range": Field(str, default="twos_complement",
                                  choices=("twos_complement", "lava"),
                                  doc="Where a wrapping u lies: twos_complement "
                                      "[-2^(b-1), 2^(b-1)); lava (-2^(b-1), 2^(b-1)] with one "
                                      "fold, as lava-nc's bit-accurate LIF. They differ only "
                                      "at exactly +-2^(b-1), which the report counts."),
            "overflow_v": Field(str, choices=OVERFLOW),
            "bits_q": Field(int, default=0, min=0, max=62,
                            doc="Synaptic input accumulator bits incl. sign (0: none)."),
            "overflow_q": Field(str, default="wrap", choices=(*OVERFLOW, "unlimited"),
                                doc="unlimited: inputs wider than bits_q pass unchanged and "
                                    "are counted (lava has no accumulator limit)."),
            "ring_bits": Field(int, default=0, min=0, max=32,
                               doc="Unsigned ring-buffer entry bits (0: none)."),
            "overflow_ring": Field(str, default="saturate", choices=OVERFLOW),
        })),
        "decay": Field(Schema({
            "representation": Field(str, choices=("int12_offset", "u0.32_s16.15"),
                                    doc="int12_offset: Loihi decayU/decayV; u0.32_s16.15: "
                                        "SpiNNaker synapse decays (u0.32), exp_TC (s16.15)."),
            "bits": Field(int, min=1, max=32),
            "offset_u": Field(int, default=0, min=0, max=1, doc="Added to the current decay."),
            "rounding": Field(str, choices=ROUNDING),
        })),
        "threshold": Field(Schema({
            "mant_bits": Field(int, min=1, max=32),
            "shift": Field(int, default=0, min=0, max=31, doc="Threshold = mantissa << shift."),
            "compare": Field(str, choices=(">", ">="), doc="Spike when v > or >= threshold."),
        })),
        "bias": Field(Schema({
            "mant_bits": Field(int, min=2, max=32, doc="Signed bias mantissa bits."),
            "exp_bits": Field(int, default=0, min=0, max=8, doc="Unsigned bias exponent bits."),
        })),
        "reset": Field(Schema({
            "mode": Field(str, choices=("zero", "v_reset", "subtract")),
        })),
        "refractory": Field(Schema({
            "min_steps": Field(int, min=0),
            "max_steps": Field(int, min=0),
            "offset": Field(int, default=0, min=0, max=1,
                            doc="Chip counter = held steps + offset."),
        })),
        "delay": Field(Schema({
            "min_steps": Field(int, min=0, doc="Smallest chip delay (steps)."),
            "max_steps": Field(int, min=0, doc="Largest chip delay incl. extensions."),
            "native_max_steps": Field(int, min=0, doc="Largest delay without extensions."),
            "offset": Field(int, default=0, min=0, max=1,
                            doc="Chip delay = edgesnn delay_steps + offset."),
            "extension_neurons_per_core": Field(int, default=0, min=0,
                                                doc="Delay-extension cores (0: none)."),
        })),
        "timestep": Field(Schema({
            "min_us": Field(int, min=1),
            "max_us": Field(int, min=1),
            "default_us": Field(int, min=1),
        })),
        "energy": Field(Schema({
            "synop_pj": Field(float, min=0.0, doc="Energy per synaptic operation."),
            "neuron_update_pj": Field(float, min=0.0, doc="Energy per neuron update."),
            "confirmed": Field(bool, default=False, doc="Figures read in a primary source."),
        })),
        "learning": Field(Schema({
            "on_chip": Field(bool, doc="The chip can run the model's plasticity rule."),
            "rules": Field(("list", str), default=[], doc="Core plasticity rules it can run."),
            "note": Field(str, default=""),
        })),
        "quantization": Field(Schema({
            "state_headroom_bits": Field(int, default=2, min=0, max=16,
                                         doc="Keep the threshold this many bits below the "
                                             "state range."),
            "v_rest_mv": Field(float, default=-65.0, doc="s16.15 targets: rest potential."),
            "v_span_mv": Field(float, default=15.0, min=1e-6,
                               doc="s16.15 targets: threshold minus rest in mV."),
        }), default={}),
        "sources": Field(Schema({}, allow_extra=True), default={},
                         doc="Dotted field name -> where the figure comes from."),
    },
    doc="A chip profile.",
)


@dataclass
class Profile:
    """A validated chip profile (sections as dicts, defaults filled in)."""

    name: str
    path: str
    data: dict[str, Any] = field(default_factory=dict)
    given: set[str] = field(default_factory=set)

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.data[section]

    @property
    def family(self) -> str:
        return str(self.data["profile"]["family"])

    def figures(self) -> list[str]:
        """Dotted names of every figure written in the file (numbers and formats; for the
        check that each has a source)."""
        out = []
        for sec, vals in self.data.items():
            if sec in ("profile", "sources") or not isinstance(vals, dict):
                continue
            for k, v in vals.items():
                if f"{sec}.{k}" in self.given and isinstance(v, int | float | str) \
                        and not isinstance(v, bool) and k not in ("note", "synapse_cost"):
                    out.append(f"{sec}.{k}")
        return out


def profiles_dir() -> Path:
    """The shipped `firmware_profiles/` folder (source checkout or installed wheel)."""
    from edgesnn.config.pipeline import shipped_dir

    return shipped_dir("firmware_profiles")


def shipped_profiles() -> list[str]:
    """Names of the shipped profiles."""
    return sorted(p.stem for p in profiles_dir().glob("*.toml"))


def resolve_profile(name_or_path: str) -> Path:
    """A profile path: an existing file, or the name of a shipped profile."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    cand = profiles_dir() / (name_or_path if name_or_path.endswith(".toml")
                             else name_or_path + ".toml")  # fmt: skip
    if cand.is_file():
        return cand
    names = shipped_profiles()
    raise ConfigError([Problem("", f"no such profile file or shipped profile: {name_or_path}"
                               f"{did_you_mean(p.stem, names)}; shipped: {', '.join(names)}")])


def load_profile(name_or_path: str | Path) -> Profile:
    """Read and validate a profile (shipped name or path); ConfigError lists every problem."""
    path = resolve_profile(str(name_or_path))
    return loads_profile(path.read_text(encoding="utf-8"), str(path))


def loads_profile(text: str, path: str = "") -> Profile:
    """Validate profile TOML text against its family's chip target (the ``[profile] family``,
    see edgesnn.deploy.targets); ConfigError lists every problem with path and line."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([Problem("", f"TOML syntax error: {e}", source=path or None)]) from None
    from edgesnn.deploy.targets import families, target

    fam = raw["profile"].get("family") if isinstance(raw.get("profile"), dict) else None
    if isinstance(fam, str) and fam in families():
        return target(fam).load_profile(raw, text, path)
    known = families()
    bad = [] if fam is None else [Problem("profile.family", f'"{fam}" is not a chip target '
                                          f"family{did_you_mean(str(fam), known)}; targets: "
                                          f"{', '.join(known)}")]  # fmt: skip
    return validate_core_profile(raw, text, path, lambda d: [], bad)


def validate_core_profile(raw: dict[str, Any], text: str, path: str,
                          family_checks: FamilyChecks, problems: list[Problem] | None = None
                          ) -> Profile:  # fmt: skip
    """A parsed profile of a core-mapped chip (`PROFILE_SCHEMA`, the shared cross-field rules
    and the target's `family_checks`); ConfigError lists every problem with path and line."""
    from edgesnn.config.pipeline import LineFinder

    src = path or None
    problems = list(problems or [])
    data = PROFILE_SCHEMA.validate(raw, "", problems)
    if not problems:
        problems += _semantic(data, family_checks)
    if problems:
        lf = LineFinder(text)
        raise ConfigError([Problem(p.path, p.message, lf.find(p.path), src) for p in problems])
    name = data["profile"]["name"]
    given = {f"{sec}.{k}" for sec, vals in raw.items() if isinstance(vals, dict) for k in vals}
    return Profile(name=name, path=path, data=data, given=given)


def _semantic(d: dict[str, Any], family_checks: FamilyChecks) -> list[Problem]:
    """Cross-field rules the schema cannot express (the family's own from its target)."""
    out: list[Problem] = []
    for i, m in enumerate(d["profile"]["neuron_models"]):
        if m not in MAPPABLE_MODELS:
            out.append(Problem(f"profile.neuron_models[{i}]", f'"{m}" cannot be mapped to a '
                               f"chip{did_you_mean(m, MAPPABLE_MODELS)}; mappable: "
                               f"{', '.join(MAPPABLE_MODELS)}"))  # fmt: skip
    for sec, lo, hi in (("weights", "exp_min", "exp_max"), ("refractory", "min_steps", "max_steps"),
                        ("delay", "min_steps", "max_steps"), ("timestep", "min_us", "max_us")):
        if d[sec][lo] > d[sec][hi]:
            out.append(Problem(f"{sec}.{lo}", f"{d[sec][lo]} is above {sec}.{hi} = {d[sec][hi]}"))
    if d["delay"]["native_max_steps"] > d["delay"]["max_steps"]:
        out.append(Problem("delay.native_max_steps", "is above delay.max_steps"))
    ts = d["timestep"]
    if not ts["min_us"] <= ts["default_us"] <= ts["max_us"]:
        out.append(Problem("timestep.default_us", "is outside min_us..max_us"))
    out += family_checks(d)
    srcs = d.get("sources", {})
    for key, val in srcs.items():
        if not isinstance(val, str) or not val:
            out.append(Problem(f"sources.{key}", "expected a non-empty string"))
            continue
        sec, _, k = key.partition(".")
        if sec not in PROFILE_SCHEMA.fields or sec in ("sources",):
            out.append(Problem(f"sources.{key}", f'unknown section "{sec}"'
                               + did_you_mean(sec, PROFILE_SCHEMA.fields)))  # fmt: skip
            continue
        sub = PROFILE_SCHEMA.fields[sec].type
        if k and isinstance(sub, Schema) and k not in sub.fields:
            out.append(Problem(f"sources.{key}", f'unknown field "{k}" of [{sec}]'
                               + did_you_mean(k, sub.fields)))  # fmt: skip
    return out
