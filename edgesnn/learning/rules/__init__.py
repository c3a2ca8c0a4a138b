"""The plasticity rules a projection can use: one module per rule, registered here.

``plasticity.rule`` of a projection is one of the modules of this package, each with its
defaults in one place (``DEFAULTS``), its TOML keys (``FIELDS``) and its kernel parameters:

- `stdp`: pair-based trace STDP. With its defaults (all-to-all pairing, additive bounds,
  no homeostasis) it runs on the core's fused kernel; any of ``pairing = "nearest"``,
  ``bounds = "multiplicative"``, ``theta_plus`` or ``norm_total`` selects the event-driven
  kernel of `edgesnn.learning.kernels` (same rule, lazily decayed traces).
- `triplet`: Pfister & Gerstner (2006) triplet rule; the defaults are the published
  minimal all-to-all model fitted to visual cortex data (tau+ 16.8 ms, tau- 33.7 ms,
  tau_y 125 ms, A2+ 5e-10, A3+ 6.2e-3, A2- 7e-3, A3- 0).
- `rstdp`: reward-modulated STDP with eligibility traces (Izhikevich 2007): tau_elig_ms
  (1000), tau_dopa_ms (200), eta; rewards arrive at run time.

Every rule takes the keys of `common`: ``w_min`` / ``w_max`` and ``bounds`` (additive clipping
or multiplicative soft bounds), ``pairing`` (all-to-all or nearest spike), and the homeostasis
keys: ``theta_plus`` (threshold increase per post spike while learning, Diehl & Cook 2015; the
target layer must be ``adaptive_lif``) and ``norm_total`` (fixed sum of every post neuron's
incoming weights, applied to the columns of the post neurons that spiked, or to all columns
every ``norm_interval_steps`` steps).

Importing this package registers every rule in the core's registry (`edgesnn.core.plasticity`,
which imports it by name when the core first needs its rules): name, TOML keys, kernels by
code (`edgesnn.learning.kernels`), packing, validation and the check of a packed record.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from edgesnn.config.schema import Field
from edgesnn.core import layout as L
from edgesnn.core import plasticity as core_plasticity
from edgesnn.errors import Problem
from edgesnn.learning import kernels as K
from edgesnn.learning import layout as G
from edgesnn.learning.rules import common, rstdp, stdp, triplet
from edgesnn.learning.rules.common import BOUNDS, PAIRINGS

#: every plasticity rule by name (one module each)
RULES: dict[str, ModuleType] = {m.NAME: m for m in (stdp, triplet, rstdp)}
#: Rules added to the core's "stdp".
LEARNING_RULES = tuple(n for n in RULES if n != "stdp")
TRIPLET_DEFAULTS = triplet.DEFAULTS
RSTDP_DEFAULTS = rstdp.DEFAULTS

#: Every key of a plasticity table but "rule", in documentation order.
PLASTICITY_FIELDS: dict[str, Field] = {
    **stdp.FIELDS,
    **common.WEIGHT_FIELDS,
    **common.PAIRING_FIELDS,
    **triplet.FIELDS,
    **rstdp.FIELDS,
    **common.HOMEOSTASIS_FIELDS,
}
#: Keys added to the plasticity table beyond the fused stdp rule's.
LEARNING_FIELDS: dict[str, Field] = {
    k: f for k, f in PLASTICITY_FIELDS.items() if k not in stdp.FIELDS and
    k not in common.WEIGHT_FIELDS
}  # fmt: skip

__all__ = ["BOUNDS", "LEARNING_FIELDS", "LEARNING_RULES", "PAIRINGS", "PLASTICITY_FIELDS",
           "RSTDP_DEFAULTS", "RULES", "TRIPLET_DEFAULTS", "check", "check_record",
           "is_learning_rule", "pack", "pack_learning", "plasticity_code", "rule_params",
           "validate_plasticity"]  # fmt: skip


def _get(pl: dict[str, Any], key: str, default: Any) -> Any:
    v = pl.get(key)
    return default if v is None else v


def is_learning_rule(pl: dict[str, Any] | None) -> bool:
    """Whether this plasticity table runs on the event-driven learning kernels."""
    if pl is None:
        return False
    rule = _get(pl, "rule", "stdp")
    if rule != "stdp":
        return True
    d = common.DEFAULTS
    return (
        _get(pl, "pairing", d["pairing"]) != d["pairing"]
        or _get(pl, "bounds", d["bounds"]) != d["bounds"]
        or float(_get(pl, "theta_plus", d["theta_plus"])) != d["theta_plus"]
        or float(_get(pl, "norm_total", d["norm_total"])) != d["norm_total"]
    )


def plasticity_code(pl: dict[str, Any]) -> int:
    """The kernel code of a plasticity table."""
    if not is_learning_rule(pl):
        return stdp.FUSED_CODE
    return int(RULES[_get(pl, "rule", "stdp")].CODE)


def rule_params(pl: dict[str, Any], dt_us: int) -> dict[str, float]:
    """Every parameter of the rule with its default filled in (time constants in ms)."""
    rule = _get(pl, "rule", "stdp")
    d = common.DEFAULTS
    out: dict[str, Any] = {
        "rule": rule,
        "pairing": _get(pl, "pairing", d["pairing"]),
        "bounds": _get(pl, "bounds", d["bounds"]),
        "w_min": float(_get(pl, "w_min", d["w_min"])),
        "w_max": float(_get(pl, "w_max", d["w_max"])),
        "theta_plus": float(_get(pl, "theta_plus", d["theta_plus"])),
        "norm_total": float(_get(pl, "norm_total", d["norm_total"])),
        "norm_interval_steps": int(_get(pl, "norm_interval_steps", d["norm_interval_steps"])),
    }
    # the triplet kernel runs the pair rule too (triplet terms 0): rstdp's pairs are stdp's
    out.update((triplet if rule == "triplet" else stdp).params(pl, _get))
    out.update(rstdp.params(pl, _get, dt_us))
    return out


def validate_plasticity(
    pl: dict[str, Any], path: str, target_model: str | None
) -> list[Problem]:
    """Rule-specific checks of a plasticity table (beyond its schema)."""
    problems: list[Problem] = []
    if not isinstance(pl, dict):
        return problems
    rule = _get(pl, "rule", "stdp")
    for only, mod in RULES.items():
        if rule == only or only == "stdp":
            continue
        for k, v in mod.DEFAULTS.items():
            if pl.get(k) is not None and pl[k] != v:
                problems.append(Problem(f"{path}.{k}", f'only used by rule "{only}", not "{rule}"'))
    theta = pl.get("theta_plus")
    if theta and target_model is not None and target_model != "adaptive_lif":
        problems.append(
            Problem(
                f"{path}.theta_plus",
                f"adaptive thresholds need an adaptive_lif target layer, not {target_model}",
            )
        )
    w_min = _get(pl, "w_min", common.DEFAULTS["w_min"])
    w_max = _get(pl, "w_max", common.DEFAULTS["w_max"])
    if isinstance(w_min, int | float) and isinstance(w_max, int | float) and w_min > w_max:
        problems.append(Problem(f"{path}.w_max", f"w_max ({w_max}) is below w_min ({w_min})"))
    return problems


def pack_learning(
    pl: dict[str, Any],
    put: Callable[[str, np.ndarray], int],
    n_pre: int,
    n_post: int,
    n_syn: int,
    dt_us: int,
    theta_off: int,
) -> int:
    """Allocate the traces, stamps and parameters of one projection's rule with `put`
    (the packer's allocator) and return the ii offset of its learning record."""
    p = rule_params(pl, dt_us)
    dt_ms = dt_us / 1000.0

    def lam(tau_ms: float) -> float:
        return -dt_ms / tau_ms if tau_ms > 0 else -math.inf

    par = np.zeros(G.NF)
    par[G.F_APLUS], par[G.F_AMINUS] = p["a2_plus"], p["a2_minus"]
    par[G.F_A3PLUS], par[G.F_A3MINUS] = p["a3_plus"], p["a3_minus"]
    par[G.F_L1PRE], par[G.F_L2PRE] = lam(p["tau_plus_ms"]), lam(p["tau_x_ms"])
    par[G.F_L1POST], par[G.F_L2POST] = lam(p["tau_minus_ms"]), lam(p["tau_y_ms"])
    par[G.F_LELIG], par[G.F_LDOPA] = lam(p["tau_elig_ms"]), lam(p["tau_dopa_ms"])
    par[G.F_WMIN], par[G.F_WMAX] = p["w_min"], p["w_max"]
    par[G.F_THETA] = p["theta_plus"]
    par[G.F_NORM] = p["norm_total"]
    par[G.F_GAIN] = p["gain"]
    rec = np.zeros(G.GR, np.int64)
    rec[G.G_PAIRING] = 1 if p["pairing"] == "nearest" else 0
    rec[G.G_BOUNDS] = 1 if p["bounds"] == "multiplicative" else 0
    rec[G.G_PAR] = put("fp", par)
    rec[G.G_X1PRE] = put("fs", np.zeros(n_pre))
    rec[G.G_X2PRE] = put("fs", np.zeros(n_pre))
    rec[G.G_X1POST] = put("fs", np.zeros(n_post))
    rec[G.G_X2POST] = put("fs", np.zeros(n_post))
    rec[G.G_TPRE] = put("ii", np.zeros(n_pre, np.int64))
    rec[G.G_TPOST] = put("ii", np.zeros(n_post, np.int64))
    rec[G.G_SCRATCH] = put("fs", np.zeros(n_pre + n_post))
    rec[G.G_ELIG] = put("fs", np.zeros(n_syn if p["rule"] == "rstdp" else 0))
    rec[G.G_DOPA] = put("fs", np.zeros(2))
    rec[G.G_THETA] = theta_off
    rec[G.G_NORM_EVERY] = p["norm_interval_steps"]
    rec[G.G_NSYN] = n_syn
    return put("ii", rec)


def check_record(ii: np.ndarray, fs_size: int, fp_size: int, prec: int) -> bool:
    """Whether the learning record of projection record `prec` stays inside the arrays."""
    code = int(ii[prec + L.P_PLAST])
    if code < L.PLAST_PAIR:
        return True
    if code > L.PLAST_RSTDP:
        return False
    g = int(ii[prec + L.P_LREC])
    if g < 0 or g + G.GR > ii.size:
        return False
    ltab = int(ii[L.H_LTAB])
    n_pre = int(ii[ltab + int(ii[prec + L.P_PRE]) * L.LR + L.L_N])
    n_post = int(ii[ltab + int(ii[prec + L.P_POST]) * L.LR + L.L_N])
    n_syn = int(ii[g + G.G_NSYN])
    spans = [
        (G.G_X1PRE, n_pre, fs_size),
        (G.G_X2PRE, n_pre, fs_size),
        (G.G_X1POST, n_post, fs_size),
        (G.G_X2POST, n_post, fs_size),
        (G.G_SCRATCH, n_pre + n_post, fs_size),
        (G.G_DOPA, 2, fs_size),
        (G.G_TPRE, n_pre, ii.size),
        (G.G_TPOST, n_post, ii.size),
        (G.G_PAR, G.NF, fp_size),
    ]
    if code == L.PLAST_RSTDP:
        spans.append((G.G_ELIG, n_syn, fs_size))
    if int(ii[g + G.G_THETA]) >= 0:
        spans.append((G.G_THETA, n_post, fs_size))
    return n_syn == int(ii[prec + L.P_NW]) and all(
        int(ii[g + k]) >= 0 and int(ii[g + k]) + n <= size for k, n, size in spans
    )


def pack(
    pl: dict[str, Any],
    put: Callable[[str, np.ndarray], int],
    n_pre: int,
    n_post: int,
    n_syn: int,
    dt_us: int,
    theta_off: int,
) -> tuple[int, int]:
    """The offsets (P_PPOFF, P_LREC) of a projection's rule parameters and learning record
    (the fused kernel's parameters for every rule; the record for the event-driven ones)."""
    ppoff = put("fp", stdp.fused_params(pl, dt_us))
    if plasticity_code(pl) < L.PLAST_PAIR:
        return ppoff, 0
    return ppoff, pack_learning(pl, put, n_pre, n_post, n_syn, dt_us, theta_off)


def check(ii: np.ndarray, fs_size: int, fp_size: int, prec: int) -> list[tuple[int, int, str]]:
    """The ii regions the kernels of projection record `prec` write (learning record, spike
    steps); `edgesnn.core.plasticity.RecordError` when the record leaves its arrays."""
    if int(ii[prec + L.P_PLAST]) < L.PLAST_PAIR:
        return []
    g = int(ii[prec + L.P_LREC])
    if not check_record(ii, fs_size, fp_size, prec):
        raise core_plasticity.RecordError("P_LREC", g, "learning record points outside the arrays")
    ltab = int(ii[L.H_LTAB])
    n_pre = int(ii[ltab + int(ii[prec + L.P_PRE]) * L.LR + L.L_N])
    n_post = int(ii[ltab + int(ii[prec + L.P_POST]) * L.LR + L.L_N])
    regions = [(g, G.GR, "P_LREC"), (int(ii[g + G.G_TPRE]), n_pre, "G_TPRE"),
               (int(ii[g + G.G_TPOST]), n_post, "G_TPOST")]  # fmt: skip
    for name, k, hi in (("G_PAIRING", G.G_PAIRING, 1), ("G_BOUNDS", G.G_BOUNDS, 1),
                        ("G_NORM_EVERY", G.G_NORM_EVERY, 1 << 40)):  # fmt: skip
        v = int(ii[g + k])
        if not 0 <= v <= hi:
            raise core_plasticity.RecordError(name, v, f"not in [0, {hi}]")
    return regions


def _register() -> None:
    """Every rule into the core's registry, the default (``stdp``) first."""
    common_fields = {**common.WEIGHT_FIELDS, **common.PAIRING_FIELDS,
                     **common.HOMEOSTASIS_FIELDS}  # fmt: skip
    own = {"stdp": stdp.FIELDS, "triplet": triplet.FIELDS, "rstdp": {**rstdp.FIELDS, **stdp.FIELDS}}
    for name, mod in RULES.items():
        kernels = {mod.CODE: K.learning_step}
        if mod is stdp:
            kernels = {stdp.FUSED_CODE: K.stdp_fused, **kernels}
        core_plasticity.register(core_plasticity.PlasticityRule(
            name=name,
            fields={**own[name], **common_fields},
            kernels=kernels,
            code=plasticity_code,
            pack=pack,
            validate=validate_plasticity,
            check=check,
            layout=G,
            doc=(mod.__doc__ or "").strip().splitlines()[0],
        ))  # fmt: skip


_register()
