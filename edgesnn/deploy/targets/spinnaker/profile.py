"""SpiNNaker 1/2 profiles: the shared schema of core-mapped chips (`PROFILE_SCHEMA`) and the
cross-field rules of the ``spinnaker_if_curr_exp`` family."""

from __future__ import annotations

from typing import Any

from edgesnn.deploy.profile import PROFILE_SCHEMA, Profile, validate_core_profile
from edgesnn.errors import Problem

FAMILY = "spinnaker_if_curr_exp"
SCHEMA = PROFILE_SCHEMA


def semantic(d: dict[str, Any]) -> list[Problem]:
    """What a spinnaker_if_curr_exp profile must hold beyond the schema."""
    out: list[Problem] = []
    fam = FAMILY
    if d["weights"]["sign"] != "separate_types":
        out.append(Problem("weights.sign", f'family {fam} needs "separate_types"'))
    if d["decay"]["representation"] != "u0.32_s16.15":
        out.append(Problem("decay.representation", f'family {fam} needs "u0.32_s16.15"'))
    if d["state"]["ring_bits"] <= 0:
        out.append(Problem("state.ring_bits", f"family {fam} needs ring-buffer bits"))
    if d["state"]["frac_bits"] <= 0:
        out.append(Problem("state.frac_bits", f"family {fam} needs fraction bits (s16.15)"))
    if d["weights"]["exp_min"] < 0:
        out.append(Problem("weights.exp_min", "a ring-buffer left shift cannot be negative"))
    return out


def load(raw: dict[str, Any], text: str, path: str = "") -> Profile:
    """Validate a parsed spinnaker_if_curr_exp profile; ConfigError lists every problem."""
    return validate_core_profile(raw, text, path, semantic)
