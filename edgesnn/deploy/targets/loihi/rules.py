"""Loihi design rules: the shared core-mapped rules (`edgesnn.deploy.rules`) plus the checks
only Loihi has, and what the report says about behaviour lava does not settle."""

from __future__ import annotations

from typing import Any

from edgesnn.deploy.profile import Profile
from edgesnn.deploy.quantize import QuantizedModel
from edgesnn.deploy.rules import RULE_FAMILIES, Mapping, Rule, RuleContext, Violation
from edgesnn.deploy.rules import check as check_rules

__all__ = ["EXTRA", "RULE_FAMILIES", "check", "report_extras", "threshold_mantissa"]


def threshold_mantissa(ctx: RuleContext) -> list[Violation]:
    """Every layer's threshold fits the threshold mantissa << shift (part of threshold_range)."""
    th = ctx.profile["threshold"]
    cap = ((1 << int(th["mant_bits"])) - 1) << int(th["shift"])
    return [Violation("threshold_range", lay.name, lay.params["vth"], cap)
            for lay in ctx.qm.layers if not lay.is_input and lay.params["vth"] > cap]  # fmt: skip


#: Checks run right after the shared rule of the same name.
EXTRA: dict[str, Rule] = {"threshold_range": threshold_mantissa}


def check(qm: QuantizedModel, profile: Profile) -> tuple[list[Violation], Mapping]:
    """Every design rule on a quantized Loihi model: (violations, the layer-to-core mapping)."""
    return check_rules(qm, profile, extra=EXTRA)


def report_extras(qm: QuantizedModel, profile: Profile,
                  counters: dict[str, int] | None) -> dict[str, Any]:  # fmt: skip
    """The report's ``unsettled``: Loihi behaviour lava does not settle, the profile's choice,
    its source, and how often the check met it (None without a check)."""
    st, src = profile["state"], profile["sources"]
    c = counters or {}
    return {"unsettled": {
        "input_accumulator": {
            "bits": st["bits_q"], "overflow": st["overflow_q"],
            "source": src.get("state.overflow_q", src.get("state.bits_q", "")),
            "occurrences": c.get("q_overflow") if counters is not None else None,
            "meaning": f"inputs of a step wider than {st['bits_q']} bits (wrapped, saturated "
                       "or, when unlimited, only counted)"},
        "u_edge": {
            "range": st["u_wrap_range"], "source": src.get("state.u_wrap_range", ""),
            "occurrences": c.get("u_edge") if counters is not None else None,
            "meaning": f"u of exactly +-2^{st['bits_u'] - 1} before wrapping, where two's "
                       "complement and lava differ"},
    }}  # fmt: skip
