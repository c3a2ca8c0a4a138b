"""Design-rule checks and the layer-to-core mapping of the core-mapped chip targets.

Every limit of a profile is one small named rule function in `RULES`; `check(qm, profile)` runs
them all and returns every violation at once (rule, layer, value, limit), together with the
mapping of layers to cores (neurons per core, synapse memory and fan-in per core). A chip
target adds its own checks to a rule of the same name in its ``rules.EXTRA`` (Loihi: the
threshold mantissa). Rules with severity "warning" (on-chip learning) do not make a model unfit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgesnn.deploy.profile import Profile
from edgesnn.deploy.quantize import QuantizedModel


@dataclass
class Violation:
    """One broken limit."""

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
class LayerMap:
    """Where one layer goes: cores, neurons per core, worst-case per-core figures."""

    layer: str
    n: int
    cores: int
    neurons_per_core: int
    synapse_bits_per_core: int
    fan_in_axons_per_core: int
    fan_out_axons_per_core: int = 0
    fits: bool = True


@dataclass
class Mapping:
    """Layers to cores for one profile."""

    layers: list[LayerMap] = field(default_factory=list)
    extension_cores: int = 0

    @property
    def cores(self) -> int:
        return sum(m.cores for m in self.layers) + self.extension_cores

    def to_dict(self) -> dict[str, Any]:
        return {"cores": self.cores, "extension_cores": self.extension_cores,
                "layers": [asdict(m) for m in self.layers]}  # fmt: skip


@dataclass
class RuleContext:
    """What rules may read."""

    qm: QuantizedModel
    profile: Profile
    mapping: Mapping


# --- mapping ---------------------------------------------------------------------------------


def _entry_bits(qm: QuantizedModel, prof: Profile, pr: Any, m: int) -> int:
    """Bits of one synapse entry (Loihi cost model of nengo-loihi, hardware.md 1.1)."""
    wb = int(prof["weights"]["bits"])
    dmax = int(pr.delay.max()) if pr.delay.size else 0
    db = int(math.ceil(math.log2(dmax + 1))) if dmax > 0 else 0
    ib = min(12, max(6, int(math.ceil(math.log2(max(m, 2))))))
    return wb + db + ib


def _core_figures(qm: QuantizedModel, prof: Profile, name: str, n: int, m: int
                  ) -> tuple[int, int]:  # fmt: skip
    """(worst synapse bits per core, worst fan-in axons per core) with m neurons per core."""
    cost = prof["chip"]["synapse_cost"]
    n_cores = -(-n // m)
    bits = np.zeros(n_cores, np.int64)
    axons = np.zeros(n_cores, np.int64)
    for pr in qm.projections:
        if pr.target != name or pr.pre.size == 0:
            continue
        core = pr.post.astype(np.int64) // m
        key = pr.pre.astype(np.int64) * n_cores + core
        groups, counts = np.unique(key, return_counts=True)
        gcore = groups % n_cores
        if cost == "loihi":
            e = _entry_bits(qm, prof, pr, m)
            g_bits = np.ceil((10 * np.ceil(counts / 63) + counts * e) / 64) * 64
        else:  # spinnaker: a row of 3 header words plus one 32-bit word per synapse
            g_bits = (3 + counts) * 32
        np.add.at(bits, gcore, g_bits.astype(np.int64))
        np.add.at(axons, gcore, 1)
    return int(bits.max()) if n_cores else 0, int(axons.max()) if n_cores else 0


def map_cores(qm: QuantizedModel, prof: Profile) -> Mapping:
    """Split every layer into the fewest equal blocks of neurons whose synapse memory and
    fan-in fit a core (marked not fitting when even one neuron per core does not fit)."""
    chip = prof["chip"]
    npc = int(chip["neurons_per_core"])
    mp = Mapping()
    for lay in qm.layers:
        if lay.is_input and not chip["input_layers_use_cores"]:
            continue
        c = -(-lay.n // npc)
        while True:
            m = -(-lay.n // c)
            bits, axons = _core_figures(qm, prof, lay.name, lay.n, m)
            ok = (bits <= chip["synapse_memory_bits_per_core"]
                  and axons <= chip["max_fan_in_axons_per_core"])  # fmt: skip
            if ok or m == 1:
                break
            c = min(lay.n, max(c + 1, int(c * 1.25)))
        mp.layers.append(LayerMap(lay.name, lay.n, -(-lay.n // m), m, bits, axons, 0, ok))
    # fan-out: per source core, distinct (target layer, target core) per neuron
    per = {lm.layer: lm for lm in mp.layers}
    for lm in mp.layers:
        total = np.zeros(lm.n, np.int64)
        for pr in qm.projections:
            if pr.source != lm.layer or pr.target not in per or pr.pre.size == 0:
                continue
            tm = per[pr.target].neurons_per_core
            key = np.unique(pr.pre.astype(np.int64) * (1 << 32) + pr.post // tm)
            np.add.at(total, key >> 32, 1)
        blocks = -(-lm.n // lm.neurons_per_core)
        padded = np.zeros(blocks * lm.neurons_per_core, np.int64)
        padded[: lm.n] = total
        lm.fan_out_axons_per_core = int(padded.reshape(blocks, -1).sum(1).max()) if lm.n else 0
    # delay extensions (SpiNNaker): one set of cores per source layer with long delays
    dl = prof["delay"]
    if dl["extension_neurons_per_core"] > 0:
        for lay in qm.layers:
            long = any(pr.source == lay.name and pr.delay.size
                       and int(pr.delay.max()) > dl["native_max_steps"]
                       for pr in qm.projections)  # fmt: skip
            if long:
                mp.extension_cores += -(-lay.n // int(dl["extension_neurons_per_core"]))
    return mp


# --- rules -------------------------------------------------------------------------------------

Rule = Callable[[RuleContext], list[Violation]]
RULES: dict[str, Rule] = {}
#: Rule families (what `edgesnn deploy` prints one line for), in order: family -> rule names.
RULE_FAMILIES: dict[str, list[str]] = {}


def rule(name: str, family: str | None = None) -> Callable[[Rule], Rule]:
    """Register a rule under `name` in `family` (default: a family of its own)."""

    def deco(fn: Rule) -> Rule:
        RULES[name] = fn
        fam = RULE_FAMILIES.setdefault(family or name, [])
        if name not in fam:
            fam.append(name)
        return fn

    return deco


def family_of(rule_name: str) -> str:
    """The family a rule belongs to (its own name when it is not registered)."""
    for fam, names in RULE_FAMILIES.items():
        if rule_name in names:
            return fam
    return rule_name


def tally_families(violations: list[Violation], families: dict[str, Any],
                   family: Callable[[str], str]) -> list[dict[str, Any]]:
    """One entry per rule family of `families` (name -> rule names), plus any `family(rule)`
    names of broken rules outside them: its rules, error and warning counts, broken rules and
    status ("pass", "warn" or "fail"); shared by every target's report."""
    fams: dict[str, dict[str, Any]] = {
        f: {"family": f, "rules": list(names), "violations": 0, "warnings": 0, "broken": []}
        for f, names in families.items()}  # fmt: skip
    for v in violations:
        f = fams.setdefault(family(v.rule), {"family": family(v.rule), "rules": [v.rule],
                                             "violations": 0, "warnings": 0, "broken": []})
        f["violations" if v.severity == "error" else "warnings"] += 1
        if v.rule not in f["broken"]:
            f["broken"].append(v.rule)
    for f in fams.values():
        f["status"] = "fail" if f["violations"] else "warn" if f["warnings"] else "pass"
    return list(fams.values())


def _from_clipped(ctx: RuleContext, name: str) -> list[Violation]:
    return [Violation(c["rule"], c["layer"], c["value"], c["limit"], c.get("message", ""))
            for c in ctx.qm.clipped if c["rule"] == name]  # fmt: skip


@rule("neuron_model", "neuron model")
def neuron_model(ctx: RuleContext) -> list[Violation]:
    """Every layer's model is one the chip runs."""
    return _from_clipped(ctx, "neuron_model")


@rule("reset_mode", "neuron model")
def reset_mode(ctx: RuleContext) -> list[Violation]:
    """The layer's reset is the chip's (Loihi: to 0 = rest)."""
    return _from_clipped(ctx, "reset_mode")


@rule("threshold_range", "number formats")
def threshold_range(ctx: RuleContext) -> list[Violation]:
    """The threshold lies above rest and fits the threshold mantissa."""
    return _from_clipped(ctx, "threshold_range")


@rule("current_decays", "neuron model")
def current_decays(ctx: RuleContext) -> list[Violation]:
    """One synaptic current decay per compartment (Loihi)."""
    return _from_clipped(ctx, "current_decays")


@rule("synapse_types", "neuron model")
def synapse_types(ctx: RuleContext) -> list[Violation]:
    """Each synapse type (excitatory, inhibitory) has one time constant (SpiNNaker)."""
    return _from_clipped(ctx, "synapse_types")


@rule("decay_range", "number formats")
def decay_range(ctx: RuleContext) -> list[Violation]:
    """Decays fit their integer format."""
    return _from_clipped(ctx, "decay_range")


@rule("bias_range", "number formats")
def bias_range(ctx: RuleContext) -> list[Violation]:
    """Biases fit mantissa << exponent."""
    return _from_clipped(ctx, "bias_range")


@rule("weight_exponent", "number formats")
def weight_exponent(ctx: RuleContext) -> list[Violation]:
    """Weights fit the mantissa with an exponent (or ring shift) in range."""
    return _from_clipped(ctx, "weight_exponent")


@rule("refractory_range", "number formats")
def refractory_range(ctx: RuleContext) -> list[Violation]:
    """Refractory periods fit the chip's counter."""
    return _from_clipped(ctx, "refractory_range")


@rule("delay_range", "delays")
def delay_range(ctx: RuleContext) -> list[Violation]:
    """Synaptic delays (chip steps) within the profile's range."""
    dl = ctx.profile["delay"]
    out = []
    for pr in ctx.qm.projections:
        if not pr.delay.size:
            continue
        lo, hi = int(pr.delay.min()), int(pr.delay.max())
        if hi > dl["max_steps"]:
            out.append(Violation("delay_range", pr.target, hi, dl["max_steps"],
                                 f"{pr.name}: delay of {hi} chip steps"))  # fmt: skip
        if lo < dl["min_steps"]:
            out.append(Violation("delay_range", pr.target, lo, dl["min_steps"],
                                 f"{pr.name}: delay of {lo} chip steps"))  # fmt: skip
    return out


@rule("timestep", "time step")
def timestep(ctx: RuleContext) -> list[Violation]:
    """The model's dt is a time step the chip can run."""
    ts = ctx.profile["timestep"]
    dt = ctx.qm.dt_us
    if not ts["min_us"] <= dt <= ts["max_us"]:
        return [Violation("timestep", "*", f"{dt} us", f"{ts['min_us']}..{ts['max_us']} us")]
    return []


@rule("neurons_per_core", "core resources")
def neurons_per_core(ctx: RuleContext) -> list[Violation]:
    """No core holds more neurons than the chip allows (it always holds, by mapping)."""
    lim = ctx.profile["chip"]["neurons_per_core"]
    return [Violation("neurons_per_core", m.layer, m.neurons_per_core, lim)
            for m in ctx.mapping.layers if m.neurons_per_core > lim]  # fmt: skip


@rule("synapse_memory", "core resources")
def synapse_memory(ctx: RuleContext) -> list[Violation]:
    """Synapse memory per core, even with one neuron per core."""
    lim = ctx.profile["chip"]["synapse_memory_bits_per_core"]
    return [Violation("synapse_memory", m.layer, m.synapse_bits_per_core, lim, "bits per core")
            for m in ctx.mapping.layers if m.synapse_bits_per_core > lim]  # fmt: skip


@rule("fan_in", "core resources")
def fan_in(ctx: RuleContext) -> list[Violation]:
    """Distinct source neurons (input axons) per core."""
    lim = ctx.profile["chip"]["max_fan_in_axons_per_core"]
    return [Violation("fan_in", m.layer, m.fan_in_axons_per_core, lim, "input axons per core")
            for m in ctx.mapping.layers if m.fan_in_axons_per_core > lim]  # fmt: skip


@rule("fan_out", "core resources")
def fan_out(ctx: RuleContext) -> list[Violation]:
    """Output axons (neuron x destination core) per core."""
    lim = ctx.profile["chip"]["max_fan_out_axons_per_core"]
    return [Violation("fan_out", m.layer, m.fan_out_axons_per_core, lim, "output axons per core")
            for m in ctx.mapping.layers if m.fan_out_axons_per_core > lim]  # fmt: skip


@rule("threshold_profiles", "core resources")
def threshold_profiles(ctx: RuleContext) -> list[Violation]:
    """Distinct thresholds per core (one layer per core: one)."""
    lim = ctx.profile["chip"]["threshold_profiles_per_core"]
    return [] if lim >= 1 else [Violation("threshold_profiles", "*", 1, lim)]


@rule("compartment_profiles", "core resources")
def compartment_profiles(ctx: RuleContext) -> list[Violation]:
    """Distinct compartment configurations per core (one layer per core: one)."""
    lim = ctx.profile["chip"]["compartment_profiles_per_core"]
    return [] if lim >= 1 else [Violation("compartment_profiles", "*", 1, lim)]


@rule("cores", "chip size")
def cores(ctx: RuleContext) -> list[Violation]:
    """All cores of the mapping fit the chips available."""
    chip = ctx.profile["chip"]
    lim = int(chip["cores_per_chip"]) * int(chip["chips"])
    used = ctx.mapping.cores
    return [Violation("cores", "*", used, lim, "cores needed")] if used > lim else []


@rule("on_chip_learning", "on-chip learning")
def on_chip_learning(ctx: RuleContext) -> list[Violation]:
    """Plastic projections: whether the chip can keep learning (a warning: the learned weights
    deploy frozen)."""
    lr = ctx.profile["learning"]
    out = []
    for pr in ctx.qm.projections:
        if not pr.plasticity:
            continue
        r = pr.plasticity.get("rule", "stdp")
        if not lr["on_chip"] or r not in lr["rules"]:
            out.append(Violation("on_chip_learning", pr.target, r,
                                 ", ".join(lr["rules"]) or "none",
                                 f"{pr.name}: {ctx.profile.name} cannot learn on chip; the "
                                 "learned weights are deployed frozen", "warning"))  # fmt: skip
    return out


def check(qm: QuantizedModel, profile: Profile, mapping: Mapping | None = None,
          extra: dict[str, Rule] | None = None) -> tuple[list[Violation], Mapping]:  # fmt: skip
    """Run every rule, each followed by the chip target's own check of the same name (its
    ``rules.EXTRA``; `extra` when given); returns (all violations, the mapping)."""
    if extra is None:
        from edgesnn.deploy.targets import target

        extra = target(qm.family).module("rules").EXTRA
    mp = mapping or map_cores(qm, profile)
    ctx = RuleContext(qm, profile, mp)
    out: list[Violation] = []
    for name, fn in RULES.items():
        out += fn(ctx)
        more = extra.get(name)
        if more is not None:
            out += more(ctx)
    return out, mp
