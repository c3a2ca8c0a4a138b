"""``lif``: leaky integrate-and-fire with delta synapses and a refractory period.

``v += k*(v_rest + i_bias - v) + x`` (x = input of the step) unless refractory; ``v > v_th``
spikes, ``v = v_reset`` (``reset = "subtract"``: ``v -= v_th``, as chips that reset by subtraction
do; one spike per step) and the neuron is refractory: it integrates again ``t_ref_ms`` after its
spike, i.e. v is held for ``round(t_ref/dt) - 1`` steps (the rule of W3 and Brian2; the input of
held steps is discarded). The scalars and `reference_lif_like` are shared by ``cuba_lif`` and
``adaptive_lif``.
"""

from __future__ import annotations

from typing import Any

from numba import njit

from edgesnn.core.layout import F_ONE, F_ZERO, L_POFF
from edgesnn.core.neurons._base import OPTS, NeuronModel, RefEnv, factors, scan_mask, vector
from edgesnn.core.neurons._base import views as _views

CODE = 1
# packed scalars (fp offsets from the layer's parameters), shared by the LIF family
K, V_REST, V_TH, V_RESET, N_REF = range(5)
COMMON_SLOTS = ("k", "v_rest", "v_th", "v_reset", "n_ref")
SUBTRACT = 5  # lif's own: 1.0 resets by subtracting v_th, 0.0 to v_reset
SLOTS = (*COMMON_SLOTS, "subtract")
NQ = len(SLOTS)  # i_bias follows

LIF_PARAMS = {
    "tau_mem_ms": 20.0,
    "v_rest": 0.0,
    "v_th": 1.0,
    "v_reset": 0.0,
    "t_ref_ms": 0.0,
    "i_bias": 0.0,
    "v_init": None,  # default v_rest
    "integration": "exact",
}
INTEGRATION = {"integration": ("exact", "euler")}
#: the reset rule of lif and cuba_lif: to v_reset, or v -= v_th (Xylo's rule)
RESET = {"reset": ("zero", "subtract")}


def subtract_flag(p: dict[str, Any]) -> float:
    """The packed reset rule: 1.0 for ``reset = "subtract"``, else 0.0."""
    return 1.0 if p.get("reset", "zero") == "subtract" else 0.0


def pack_lif(p: dict[str, Any], dt_us: int) -> list[float]:
    """k, v_rest, v_th, v_reset and the held steps after a spike."""
    k, _ = factors(dt_us / 1000.0, p["tau_mem_ms"], p["integration"])
    # held steps: the neuron integrates again t_ref after its spike (W3 / Brian2 rule)
    n_ref = max(int(round(p["t_ref_ms"] * 1000.0 / dt_us)) - 1, 0)
    return [k, p["v_rest"], p["v_th"], p["v_reset"], float(n_ref)]


def pack(p: dict[str, Any], dt_us: int) -> list[float]:
    """The LIF scalars and the reset rule."""
    return pack_lif(p, dt_us) + [subtract_flag(p)]


@njit(**OPTS)
def update(rec, fs, fp, ii, slot):
    """LIF with delta synapses: unless refractory v += k*(v_rest + i_bias - v) + input (input
    during the refractory period is lost); v > v_th spikes, resets (to v_reset or by
    subtraction), starts the refractory period."""
    n, xe, xi, ref, spk, soff = _views(rec, fs, ii, slot)
    poff = ii[rec + L_POFF]
    zero = fp[F_ZERO]
    one = fp[F_ONE]
    v = fs[soff : soff + n]
    bias = fp[poff + NQ : poff + NQ + n]
    k = fp[poff + K]
    v_rest = fp[poff + V_REST]
    v_th = fp[poff + V_TH]
    cnt = 0
    for i in range(n):
        vi = v[i]
        r = ref[i]
        vn = vi + k * (v_rest + bias[i] - vi) + (xe[i] + xi[i])
        vn = vn if r == zero else vi
        v[i] = vn
        ref[i] = max(r - one, zero)
        cnt += vn > v_th
        xe[i] = zero
        xi[i] = zero
    return scan_mask(v, v_th, ref, spk, n, cnt, fp[poff + V_RESET], fp[poff + N_REF],
                     fp[poff + SUBTRACT] != zero)


def reference_lif_like(
    p: dict[str, Any],
    st: dict[str, list[float]],
    xe: list[float],
    xi: list[float],
    env: RefEnv,
    kind: str,
) -> list[int]:
    """The reference of lif, cuba_lif and adaptive_lif (`kind`: lif, cuba, adaptive)."""
    n = len(st["v"])
    k, _ = factors(env.dt_ms, p["tau_mem_ms"], p["integration"])
    bias = vector(p["i_bias"], n)
    held = float(max(int(round(p["t_ref_ms"] * 1000.0 / env.dt_us)) - 1, 0))
    fired = []
    if kind == "cuba":
        _, de = factors(env.dt_ms, p["tau_syn_exc_ms"], p["integration"])
        _, di = factors(env.dt_ms, p["tau_syn_inh_ms"], p["integration"])
    if kind == "adaptive":
        _, da = factors(env.dt_ms, p["tau_adapt_ms"], p["integration"])
    for i in range(n):
        v = st["v"][i]
        if kind == "cuba":
            ie = st["i_exc"][i] + xe[i] if not env.direct else st["i_exc"][i]
            ih = st["i_inh"][i] + xi[i] if not env.direct else st["i_inh"][i]
            vn = v + k * (p["v_rest"] + bias[i] + (ie + ih) - v)
            st["i_exc"][i] = ie * de
            st["i_inh"][i] = ih * di
        else:
            vn = v + k * (p["v_rest"] + bias[i] - v) + (xe[i] + xi[i])
        if st["ref"][i] == 0:
            v = vn
        st["ref"][i] = max(st["ref"][i] - 1, 0)
        th = p["v_th"]
        if kind == "adaptive":
            st["theta"][i] *= da
            th = p["v_th"] + st["theta"][i]
        if v > th:
            v = v - th if p.get("reset") == "subtract" else p["v_reset"]
            st["ref"][i] = held
            fired.append(i)
            if kind == "adaptive":
                st["theta"][i] += p["theta_plus"]
        st["v"][i] = v
    return fired


def reference(p: dict[str, Any], st: dict[str, list[float]], xe: list[float],
              xi: list[float], env: RefEnv) -> list[int]:  # fmt: skip
    """The slow twin of `update`."""
    return reference_lif_like(p, st, xe, xi, env, "lif")


MODEL = NeuronModel(
    name="lif",
    code=CODE,
    params={**LIF_PARAMS, "reset": "zero"},
    state=("v",),
    doc="Leaky integrate-and-fire, delta synapses, refractory period.",
    choices={**INTEGRATION, **RESET},
    slots=SLOTS,
    pack=pack,
    update=update,
    reference=reference,
)
