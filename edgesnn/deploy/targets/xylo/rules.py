"""Xylo design rules: every limit of the one core the quantized model breaks, at once, in rule
families reported one line each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgesnn.deploy.profile import Profile
from edgesnn.deploy.rules import tally_families
from edgesnn.deploy.targets.xylo.quantize import XyloModel, XyloViolation

__all__ = ["EXTRA", "RULE_FAMILIES", "XyloMapping", "XyloViolation", "check", "check_xylo",
           "report_extras", "rule_families"]


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


def rule_families(violations: list[XyloViolation]) -> list[dict[str, Any]]:
    """One entry per rule family checked (rules, error and warning counts, status)."""
    which = {r: f for f, rules in RULE_FAMILIES.items() for r in rules}
    return tally_families(violations, RULE_FAMILIES, lambda r: which.get(r, "connectivity"))


@dataclass
class XyloMapping:
    """Where the model goes: Xylo is one core, so everything maps onto it."""

    cores: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"cores": self.cores}


#: Checks added to a shared rule of the same name (Xylo has no shared rules: none).
EXTRA: dict[str, Any] = {}


def check(xm: XyloModel, profile: Profile) -> tuple[list[XyloViolation], XyloMapping]:
    """Every Xylo design rule: (violations, the one-core mapping)."""
    return check_xylo(xm, profile), XyloMapping()


def report_extras(xm: XyloModel, profile: Profile,
                  counters: dict[str, int] | None) -> dict[str, Any]:  # fmt: skip
    """Nothing beyond the Xylo report."""
    return {}
