"""``triplet``: Pfister & Gerstner (2006) triplet STDP.

Pre spike: ``dw = -o1 (A2- + A3- r2(t-))``; post spike: ``dw = r1 (A2+ + A3+ o2(t-))``. The
defaults are the published minimal all-to-all model fitted to visual cortex data (table 4:
tau+ 16.8 ms, tau- 33.7 ms, tau_x 101 ms, tau_y 125 ms, A2+ 5e-10, A3+ 6.2e-3, A2- 7e-3,
A3- 0). Kernel: `edgesnn.learning.kernels` (code ``PLAST_TRIPLET``).
"""

from __future__ import annotations

from typing import Any

from edgesnn.config.schema import Field
from edgesnn.core import layout as L

NAME = "triplet"
CODE = L.PLAST_TRIPLET

#: Published minimal all-to-all triplet model, visual cortex (Pfister & Gerstner 2006, table 4).
DEFAULTS = {
    "tau_plus_ms": 16.8,
    "tau_minus_ms": 33.7,
    "tau_x_ms": 101.0,
    "tau_y_ms": 125.0,
    "a2_plus": 5e-10,
    "a3_plus": 6.2e-3,
    "a2_minus": 7e-3,
    "a3_minus": 0.0,
}

_D = DEFAULTS
FIELDS = {
    "a2_plus": Field(float, default=_D["a2_plus"], min=0.0, doc="Triplet: pair potentiation A2+."),
    "a3_plus": Field(float, default=_D["a3_plus"], min=0.0,
                     doc="Triplet: triplet potentiation A3+."),
    "a2_minus": Field(float, default=_D["a2_minus"], min=0.0, doc="Triplet: pair depression A2-."),
    "a3_minus": Field(float, default=_D["a3_minus"], min=0.0,
                      doc="Triplet: triplet depression A3-."),
    "tau_plus_ms": Field(float, default=_D["tau_plus_ms"], min=1e-6,
                         doc="Triplet: r1 time constant."),
    "tau_minus_ms": Field(float, default=_D["tau_minus_ms"], min=1e-6,
                          doc="Triplet: o1 time constant."),
    "tau_x_ms": Field(float, default=_D["tau_x_ms"], min=1e-6, doc="Triplet: r2 time constant."),
    "tau_y_ms": Field(float, default=_D["tau_y_ms"], min=1e-6, doc="Triplet: o2 time constant."),
}  # fmt: skip


def params(pl: dict[str, Any], get: Any) -> dict[str, float]:
    """The kernel's parameters, defaults filled in (time constants in ms)."""
    return {k: float(get(pl, k, v)) for k, v in DEFAULTS.items()}
