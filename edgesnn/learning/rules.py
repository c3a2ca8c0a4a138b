"""The plasticity rules a projection can use, their TOML keys, defaults and packing.

``plasticity.rule`` of a projection is one of:

- ``"stdp"``: pair-based trace STDP. With its defaults (all-to-all pairing, additive bounds,
  no homeostasis) it runs on the core's fused kernel; any of ``pairing = "nearest"``,
  ``bounds = "multiplicative"``, ``theta_plus`` or ``norm_total`` selects the event-driven
  kernel of `edgesnn.learning.kernels` (same rule, lazily decayed traces).
- ``"triplet"``: Pfister & Gerstner (2006) triplet rule; the defaults are the published
  minimal all-to-all model fitted to visual cortex data (tau+ 16.8 ms, tau- 33.7 ms,
  tau_y 125 ms, A2+ 5e-10, A3+ 6.2e-3, A2- 7e-3, A3- 0).
- ``"rstdp"``: reward-modulated STDP with eligibility traces (Izhikevich 2007): tau_elig_ms
  (1000), tau_dopa_ms (200), eta; rewards arrive at run time.

Every rule takes ``w_min`` / ``w_max`` and ``bounds`` (additive clipping or multiplicative soft
bounds), ``pairing`` (all-to-all or nearest spike), and the homeostasis keys: ``theta_plus``
(threshold increase per post spike while learning, Diehl & Cook 2015; the target layer must be
``adaptive_lif``) and ``norm_total`` (fixed sum of every post neuron's incoming weights, applied
to the columns of the post neurons that spiked, or to all columns every
``norm_interval_steps`` steps).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from edgesnn.config.schema import Field
from edgesnn.core import layout as L
from edgesnn.errors import Problem
from edgesnn.learning import layout as G

#: Rules added to the core's "stdp".
LEARNING_RULES = ("triplet", "rstdp")
PAIRINGS = ("all_to_all", "nearest")
BOUNDS = ("additive", "multiplicative")

#: Published minimal all-to-all triplet model, visual cortex (Pfister & Gerstner 2006, table 4).
TRIPLET_DEFAULTS = {
    "tau_plus_ms": 16.8,
    "tau_minus_ms": 33.7,
    "tau_x_ms": 101.0,
    "tau_y_ms": 125.0,
    "a2_plus": 5e-10,
    "a3_plus": 6.2e-3,
    "a2_minus": 7e-3,
    "a3_minus": 0.0,
}

#: R-STDP defaults (Izhikevich 2007: eligibility 1 s, dopamine 0.2 s).
RSTDP_DEFAULTS = {"tau_elig_ms": 1000.0, "tau_dopa_ms": 200.0, "eta": 0.01}

#: Keys added to the plasticity table.
LEARNING_FIELDS: dict[str, Field] = {
    "pairing": Field(str, default="all_to_all", choices=PAIRINGS, doc="Trace pairing."),
    "bounds": Field(str, default="additive", choices=BOUNDS, doc="Weight bounds."),
    "a2_plus": Field(float, default=5e-10, min=0.0, doc="Triplet: pair potentiation A2+."),
    "a3_plus": Field(float, default=6.2e-3, min=0.0, doc="Triplet: triplet potentiation A3+."),
    "a2_minus": Field(float, default=7e-3, min=0.0, doc="Triplet: pair depression A2-."),
    "a3_minus": Field(float, default=0.0, min=0.0, doc="Triplet: triplet depression A3-."),
    "tau_plus_ms": Field(float, default=16.8, min=1e-6, doc="Triplet: r1 time constant."),
    "tau_minus_ms": Field(float, default=33.7, min=1e-6, doc="Triplet: o1 time constant."),
    "tau_x_ms": Field(float, default=101.0, min=1e-6, doc="Triplet: r2 time constant."),
    "tau_y_ms": Field(float, default=125.0, min=1e-6, doc="Triplet: o2 time constant."),
    "tau_elig_ms": Field(float, default=1000.0, min=1e-6, doc="R-STDP: eligibility."),
    "tau_dopa_ms": Field(float, default=200.0, min=0.0, doc="R-STDP: dopamine (0: a pulse)."),
    "eta": Field(float, default=0.01, min=0.0, doc="R-STDP: dw/dt = eta*c*d per ms."),
    "theta_plus": Field(
        float, default=0.0, min=0.0, doc="Threshold increase per post spike (adaptive_lif)."
    ),
    "norm_total": Field(float, default=0.0, min=0.0, doc="Sum of each post neuron's weights."),
    "norm_interval_steps": Field(
        int, default=0, min=0, doc="0: normalise spiking columns; N: all columns every N."
    ),
}


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
    return (
        _get(pl, "pairing", "all_to_all") != "all_to_all"
        or _get(pl, "bounds", "additive") != "additive"
        or float(_get(pl, "theta_plus", 0.0)) != 0.0
        or float(_get(pl, "norm_total", 0.0)) != 0.0
    )


def plasticity_code(pl: dict[str, Any]) -> int:
    """The kernel code of a plasticity table."""
    if not is_learning_rule(pl):
        return L.PLAST_STDP
    return {"stdp": L.PLAST_PAIR, "triplet": L.PLAST_TRIPLET, "rstdp": L.PLAST_RSTDP}[
        _get(pl, "rule", "stdp")
    ]


def rule_params(pl: dict[str, Any], dt_us: int) -> dict[str, float]:
    """Every parameter of the rule with its default filled in (time constants in ms)."""
    rule = _get(pl, "rule", "stdp")
    out: dict[str, Any] = {
        "rule": rule,
        "pairing": _get(pl, "pairing", "all_to_all"),
        "bounds": _get(pl, "bounds", "additive"),
        "w_min": float(_get(pl, "w_min", 0.0)),
        "w_max": float(_get(pl, "w_max", 1.0)),
        "theta_plus": float(_get(pl, "theta_plus", 0.0)),
        "norm_total": float(_get(pl, "norm_total", 0.0)),
        "norm_interval_steps": int(_get(pl, "norm_interval_steps", 0)),
    }
    if rule == "triplet":
        for k, v in TRIPLET_DEFAULTS.items():
            out[k] = float(_get(pl, k, v))
    else:
        out["a2_plus"] = float(_get(pl, "a_plus", 0.01))
        out["a2_minus"] = float(_get(pl, "a_minus", 0.0105))
        out["a3_plus"] = out["a3_minus"] = 0.0
        out["tau_plus_ms"] = float(_get(pl, "tau_pre_ms", 20.0))
        out["tau_minus_ms"] = float(_get(pl, "tau_post_ms", 20.0))
        out["tau_x_ms"] = out["tau_y_ms"] = 1.0
    for k, v in RSTDP_DEFAULTS.items():
        out[k] = float(_get(pl, k, v))
    dt_ms = dt_us / 1000.0
    d_e = math.exp(-dt_ms / out["tau_elig_ms"])
    d_d = math.exp(-dt_ms / out["tau_dopa_ms"]) if out["tau_dopa_ms"] > 0 else 0.0
    out["gain"] = out["eta"] * dt_ms / (1.0 - d_e * d_d)
    return out


def validate_plasticity(
    pl: dict[str, Any], path: str, target_model: str | None
) -> list[Problem]:
    """Rule-specific checks of a plasticity table (beyond its schema)."""
    problems: list[Problem] = []
    if not isinstance(pl, dict):
        return problems
    rule = _get(pl, "rule", "stdp")
    for only, defaults in (("triplet", TRIPLET_DEFAULTS), ("rstdp", RSTDP_DEFAULTS)):
        if rule == only:
            continue
        for k, v in defaults.items():
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
    w_min, w_max = _get(pl, "w_min", 0.0), _get(pl, "w_max", 1.0)
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
