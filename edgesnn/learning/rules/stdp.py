"""``stdp``: pair-based trace STDP (all-to-all or nearest-spike pairing).

``x_pre`` and ``x_post`` decay with ``tau_pre_ms`` / ``tau_post_ms`` and grow at each spike; a
pre spike depresses by ``a_minus * x_post``, a post spike potentiates by ``a_plus * x_pre``.
With the common keys at their defaults (all-to-all, additive, no homeostasis) it runs on the
fused kernel (`edgesnn.learning.kernels.stdp_fused`, traces decayed every step); otherwise on
the event-driven kernel of `edgesnn.learning.kernels` (lazily decayed traces: the same rule,
rounded differently). Both update weights with the same `pair_rows` / `pair_cols`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgesnn.config.schema import Field
from edgesnn.core import layout as L

NAME = "stdp"
CODE = L.PLAST_PAIR  # event-driven kernel
FUSED_CODE = L.PLAST_STDP  # the core's fused kernel

#: the defaults of the rule's own keys (one place)
DEFAULTS = {"a_plus": 0.01, "a_minus": 0.0105, "tau_pre_ms": 20.0, "tau_post_ms": 20.0}

FIELDS = {
    "a_plus": Field(float, default=DEFAULTS["a_plus"],
                    doc="Potentiation per post spike times x_pre."),
    "a_minus": Field(float, default=DEFAULTS["a_minus"],
                     doc="Depression per pre spike times x_post."),
    "tau_pre_ms": Field(float, default=DEFAULTS["tau_pre_ms"], min=1e-6,
                        doc="Pre trace time constant."),
    "tau_post_ms": Field(float, default=DEFAULTS["tau_post_ms"], min=1e-6,
                         doc="Post trace time constant."),
}  # fmt: skip


def params(pl: dict[str, Any], get: Any) -> dict[str, float]:
    """The event-driven kernel's pair parameters (as the triplet kernel's, without triplets)."""
    return {
        "a2_plus": float(get(pl, "a_plus", DEFAULTS["a_plus"])),
        "a2_minus": float(get(pl, "a_minus", DEFAULTS["a_minus"])),
        "a3_plus": 0.0,
        "a3_minus": 0.0,
        "tau_plus_ms": float(get(pl, "tau_pre_ms", DEFAULTS["tau_pre_ms"])),
        "tau_minus_ms": float(get(pl, "tau_post_ms", DEFAULTS["tau_post_ms"])),
        "tau_x_ms": 1.0,
        "tau_y_ms": 1.0,
    }


def fused_params(pl: dict[str, Any], dt_us: int) -> np.ndarray:
    """The fused kernel's parameters (`layout.S_*` slots), float64."""
    dt_ms = dt_us / 1000.0
    par = np.zeros(L.NS_STDP)
    par[L.S_APLUS] = pl.get("a_plus", DEFAULTS["a_plus"])
    par[L.S_AMINUS] = pl.get("a_minus", DEFAULTS["a_minus"])
    par[L.S_DPRE] = np.exp(-dt_ms / pl.get("tau_pre_ms", DEFAULTS["tau_pre_ms"]))
    par[L.S_DPOST] = np.exp(-dt_ms / pl.get("tau_post_ms", DEFAULTS["tau_post_ms"]))
    par[L.S_WMIN] = pl.get("w_min", 0.0)
    par[L.S_WMAX] = pl.get("w_max", 1.0)
    return par
