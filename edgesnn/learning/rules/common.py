"""Keys every plasticity rule takes: weight bounds, trace pairing, bounds type, homeostasis."""

from __future__ import annotations

from edgesnn.config.schema import Field

PAIRINGS = ("all_to_all", "nearest")
BOUNDS = ("additive", "multiplicative")

#: the defaults of the keys every rule takes (one place)
DEFAULTS = {
    "w_min": 0.0,
    "w_max": 1.0,
    "pairing": "all_to_all",
    "bounds": "additive",
    "theta_plus": 0.0,
    "norm_total": 0.0,
    "norm_interval_steps": 0,
}

WEIGHT_FIELDS = {
    "w_min": Field(float, default=DEFAULTS["w_min"], doc="Lower weight bound."),
    "w_max": Field(float, default=DEFAULTS["w_max"], doc="Upper weight bound."),
}
PAIRING_FIELDS = {
    "pairing": Field(str, default=DEFAULTS["pairing"], choices=PAIRINGS, doc="Trace pairing."),
    "bounds": Field(str, default=DEFAULTS["bounds"], choices=BOUNDS, doc="Weight bounds."),
}
HOMEOSTASIS_FIELDS = {
    "theta_plus": Field(
        float, default=DEFAULTS["theta_plus"], min=0.0,
        doc="Threshold increase per post spike (adaptive_lif).",
    ),
    "norm_total": Field(
        float, default=DEFAULTS["norm_total"], min=0.0, doc="Sum of each post neuron's weights."
    ),
    "norm_interval_steps": Field(
        int, default=DEFAULTS["norm_interval_steps"], min=0,
        doc="0: normalise spiking columns; N: all columns every N.",
    ),
}  # fmt: skip
