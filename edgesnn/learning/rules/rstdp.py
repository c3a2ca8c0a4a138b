"""``rstdp``: reward-modulated STDP with eligibility traces (Izhikevich 2007).

The pair rule's ``dw`` goes into the eligibility c of the synapse (decaying with
``tau_elig_ms``), the weight follows ``dw/dt = eta c d`` with the dopamine d decaying with
``tau_dopa_ms`` (0: a reward acts for one step); rewards arrive at run time. Defaults:
eligibility 1 s, dopamine 0.2 s. Kernel: `edgesnn.learning.kernels` (code ``PLAST_RSTDP``);
the pair parameters are `stdp`'s.
"""

from __future__ import annotations

import math
from typing import Any

from edgesnn.config.schema import Field
from edgesnn.core import layout as L

NAME = "rstdp"
CODE = L.PLAST_RSTDP

#: R-STDP defaults (Izhikevich 2007: eligibility 1 s, dopamine 0.2 s).
DEFAULTS = {"tau_elig_ms": 1000.0, "tau_dopa_ms": 200.0, "eta": 0.01}

FIELDS = {
    "tau_elig_ms": Field(float, default=DEFAULTS["tau_elig_ms"], min=1e-6,
                         doc="R-STDP: eligibility."),
    "tau_dopa_ms": Field(float, default=DEFAULTS["tau_dopa_ms"], min=0.0,
                         doc="R-STDP: dopamine (0: a pulse)."),
    "eta": Field(float, default=DEFAULTS["eta"], min=0.0, doc="R-STDP: dw/dt = eta*c*d per ms."),
}  # fmt: skip


def params(pl: dict[str, Any], get: Any, dt_us: int) -> dict[str, float]:
    """tau_elig_ms, tau_dopa_ms, eta and the weight change per unit c*d, ``gain = eta * dt_ms /
    (1 - d_elig * d_dopa)`` (the sum of both decays over all later steps)."""
    out = {k: float(get(pl, k, v)) for k, v in DEFAULTS.items()}
    dt_ms = dt_us / 1000.0
    d_e = math.exp(-dt_ms / out["tau_elig_ms"])
    d_d = math.exp(-dt_ms / out["tau_dopa_ms"]) if out["tau_dopa_ms"] > 0 else 0.0
    out["gain"] = out["eta"] * dt_ms / (1.0 - d_e * d_d)
    return out
