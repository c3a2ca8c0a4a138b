"""SpiNNaker design rules: the shared core-mapped rules (`edgesnn.deploy.rules`); the synapse
types' time constants and the ring-buffer shifts are checked there from what the quantizer
could not fit."""

from __future__ import annotations

from typing import Any

from edgesnn.deploy.profile import Profile
from edgesnn.deploy.quantize import QuantizedModel
from edgesnn.deploy.rules import RULE_FAMILIES, Mapping, Rule, Violation
from edgesnn.deploy.rules import check as check_rules

__all__ = ["EXTRA", "RULE_FAMILIES", "check", "report_extras"]

#: Checks run right after the shared rule of the same name (none beyond the shared ones).
EXTRA: dict[str, Rule] = {}


def check(qm: QuantizedModel, profile: Profile) -> tuple[list[Violation], Mapping]:
    """Every design rule on a quantized SpiNNaker model: (violations, the core mapping)."""
    return check_rules(qm, profile, extra=EXTRA)


def report_extras(qm: QuantizedModel, profile: Profile,
                  counters: dict[str, int] | None) -> dict[str, Any]:  # fmt: skip
    """Nothing beyond the shared report."""
    return {}
