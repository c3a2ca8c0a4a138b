"""``if``: non-leaky ``v += i_bias + x``; ``v >= v_th`` spikes; ``reset = "zero"`` sets
``v_reset``, ``"subtract"`` removes ``v_th`` (for converted networks)."""

from __future__ import annotations

from typing import Any

from numba import njit

from edgesnn.core.layout import L_POFF
from edgesnn.core.neurons._base import OPTS, NeuronModel, RefEnv, vector
from edgesnn.core.neurons._base import views as _views

CODE = 4
V_TH, V_RESET, SUBTRACT = range(3)  # SUBTRACT 1.0: reset by subtraction, 0.0: to v_reset
SLOTS = ("v_th", "v_reset", "subtract")
NQ = len(SLOTS)


def pack(p: dict[str, Any], dt_us: int) -> list[float]:
    """v_th, v_reset and the reset rule."""
    return [p["v_th"], p["v_reset"], 1.0 if p["reset"] == "subtract" else 0.0]


@njit(**OPTS)
def update(rec, fs, fp, ii, slot):
    """Non-leaky integrate-and-fire: v += i_bias + input; v >= v_th spikes and resets to v_reset
    or subtracts v_th."""
    n, xe, xi, _, spk, soff = _views(rec, fs, ii, slot)
    poff = ii[rec + L_POFF]
    v = fs[soff : soff + n]
    bias = fp[poff + NQ : poff + NQ + n]
    v_th = fp[poff + V_TH]
    v_reset = fp[poff + V_RESET]
    sub = fp[poff + SUBTRACT] != 0
    ns = 0
    for i in range(n):
        vi = v[i] + bias[i] + (xe[i] + xi[i])
        xe[i] = 0
        xi[i] = 0
        if vi >= v_th:
            if sub:
                vi = vi - v_th
            else:
                vi = v_reset
            spk[ns] = i
            ns += 1
        v[i] = vi
    return ns


def reference(p: dict[str, Any], st: dict[str, list[float]], xe: list[float],
              xi: list[float], env: RefEnv) -> list[int]:  # fmt: skip
    """The slow twin of `update`."""
    n = len(st["v"])
    bias = vector(p["i_bias"], n)
    fired = []
    for i in range(n):
        v = st["v"][i] + bias[i] + (xe[i] + xi[i])
        if v >= p["v_th"]:
            v = v - p["v_th"] if p["reset"] == "subtract" else p["v_reset"]
            fired.append(i)
        st["v"][i] = v
    return fired


MODEL = NeuronModel(
    name="if",
    code=CODE,
    params={"v_th": 1.0, "v_reset": 0.0, "reset": "subtract", "i_bias": 0.0, "v_init": None},
    state=("v",),
    doc="Non-leaky integrate-and-fire (converted networks).",
    choices={"reset": ("subtract", "zero")},
    slots=SLOTS,
    pack=pack,
    update=update,
    reference=reference,
)
