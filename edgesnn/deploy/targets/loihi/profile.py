"""Loihi 1/2 profiles: the shared schema of core-mapped chips (`PROFILE_SCHEMA`) and the
cross-field rules of the ``loihi_cuba`` family."""

from __future__ import annotations

from typing import Any

from edgesnn.deploy.profile import PROFILE_SCHEMA, Profile, validate_core_profile
from edgesnn.errors import Problem

FAMILY = "loihi_cuba"
SCHEMA = PROFILE_SCHEMA


def semantic(d: dict[str, Any]) -> list[Problem]:
    """What a loihi_cuba profile must hold beyond the schema."""
    out: list[Problem] = []
    if d["weights"]["sign"] != "sign_mode":
        out.append(Problem("weights.sign", 'family loihi_cuba needs "sign_mode"'))
    if d["decay"]["representation"] != "int12_offset":
        out.append(Problem("decay.representation", 'family loihi_cuba needs "int12_offset"'))
    if d["state"]["frac_bits"] != 0:
        out.append(Problem("state.frac_bits", "family loihi_cuba has integer states (0)"))
    if d["reset"]["mode"] != "zero":
        out.append(Problem("reset.mode", 'family loihi_cuba resets to "zero"'))
    if d["weights"]["bits"] > 8:
        out.append(Problem("weights.bits", "family loihi_cuba keeps at most the 8 bits of "
                           "its mantissa (lava num_weight_bits 1..8)"))  # fmt: skip
    return out


def load(raw: dict[str, Any], text: str, path: str = "") -> Profile:
    """Validate a parsed loihi_cuba profile; ConfigError lists every problem."""
    return validate_core_profile(raw, text, path, semantic)
