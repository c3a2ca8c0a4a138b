"""``adaptive_lif``: lif with threshold ``v_th + theta``; ``theta`` decays with
``tau_adapt_ms`` and grows by ``theta_plus`` at each spike."""

from __future__ import annotations

from typing import Any

from numba import njit

from edgesnn.core.layout import F_ONE, F_ZERO, L_POFF
from edgesnn.core.neurons._base import OPTS, NeuronModel, RefEnv, factors, scan
from edgesnn.core.neurons._base import views as _views
from edgesnn.core.neurons.lif import COMMON_SLOTS as LIF_SLOTS
from edgesnn.core.neurons.lif import (
    INTEGRATION,
    LIF_PARAMS,
    N_REF,
    V_RESET,
    V_REST,
    V_TH,
    K,
    pack_lif,
    reference_lif_like,
)

CODE = 3
D_ADAPT, TH_PLUS = 5, 6  # threshold adaptation decay per step, increase per spike
SLOTS = (*LIF_SLOTS, "d_adapt", "theta_plus")
NQ = len(SLOTS)


def pack(p: dict[str, Any], dt_us: int) -> list[float]:
    """The LIF scalars, the adaptation decay and the increase per spike."""
    d = factors(dt_us / 1000.0, p["tau_adapt_ms"], p["integration"])[1]
    return pack_lif(p, dt_us) + [d, p["theta_plus"]]


@njit(**OPTS)
def update(rec, fs, fp, ii, slot):
    """Adaptive-threshold LIF: the threshold is v_th + theta; theta decays every step and grows
    by theta_plus at each spike; otherwise as lif."""
    n, xe, xi, ref, spk, soff = _views(rec, fs, ii, slot)
    poff = ii[rec + L_POFF]
    zero = fp[F_ZERO]
    one = fp[F_ONE]
    v = fs[soff : soff + n]
    th = fs[soff + n : soff + 2 * n]
    bias = fp[poff + NQ : poff + NQ + n]
    k = fp[poff + K]
    v_rest = fp[poff + V_REST]
    v_th = fp[poff + V_TH]
    d_a = fp[poff + D_ADAPT]
    th_plus = fp[poff + TH_PLUS]
    cnt = 0
    for i in range(n):
        vi = v[i]
        r = ref[i]
        vn = vi + k * (v_rest + bias[i] - vi) + (xe[i] + xi[i])
        vn = vn if r == zero else vi
        v[i] = vn
        ref[i] = max(r - one, zero)
        a = th[i] * d_a
        th[i] = a
        cnt += vn > v_th + a
        xe[i] = zero
        xi[i] = zero
    ns = scan(v, v_th, th, ref, spk, n, cnt, fp[poff + V_RESET], fp[poff + N_REF])
    for s in range(ns):
        th[spk[s]] += th_plus
    return ns


def reference(p: dict[str, Any], st: dict[str, list[float]], xe: list[float],
              xi: list[float], env: RefEnv) -> list[int]:  # fmt: skip
    """The slow twin of `update`."""
    return reference_lif_like(p, st, xe, xi, env, "adaptive")


MODEL = NeuronModel(
    name="adaptive_lif",
    code=CODE,
    params={**LIF_PARAMS, "tau_adapt_ms": 100.0, "theta_plus": 0.05},
    state=("v", "theta"),
    doc="LIF with an adaptive threshold (v_th + theta).",
    choices=dict(INTEGRATION),
    slots=SLOTS,
    pack=pack,
    update=update,
    reference=reference,
)
