"""SpiNNaker 1/2 emulation: sPyNNaker's integer neuron and ring-buffer kernels (numba, pure, no
allocation) and how the generic `edgesnn.deploy.emulator.Emulator` calls them.

``spinnaker_if_curr_exp`` (sPyNNaker IF_curr_exp / IF_curr_delta in s16.15, hardware.md 3.3)::

    in_x = ring_x << shift_x                                  # 16-bit entry -> s16.15
    I_x  = in_x (delta)  or  mul_u032(I_x, decay_x) + mul_u032(in_x, init_x)
    if refract_timer <= 0:
        I     = I_exc - I_inh + i_offset
        alpha = mul_rn(I, R) + V_rest
        V     = alpha - mul_rn(exp_TC, alpha - V)
    else: refract_timer -= 1
    spike = V >= V_thresh (or >);  on spike: V = V_reset, refract_timer = T_refract
    mul_u032(x, d) = (x * d) >> 32  (floor);  mul_rn(a, b) = (a * b + 2^14) >> 15

A spike adds its 16-bit weight into the entry of its arrival slot and synapse type, which
saturates at 2^ring_bits - 1 (counted).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from edgesnn.deploy.emulator import Emulator, LayerKernels
from edgesnn.deploy.kernels import (
    KERNEL_OPTS,
    NST,
    ST_NEURON_UPDATES,
    ST_RING_SATURATED,
    ST_U_OVERFLOW,
    ST_V_OVERFLOW,
    fit,
)

_OPTS = KERNEL_OPTS
__all__ = ["KERNELS", "NSP", "NST", "PARAM_ORDER", "emulator", "mul_rn", "mul_u032",
           "spinnaker_propagate", "spinnaker_update"]

# --- parameter slots of a SpiNNaker layer ----------------------------------------------------
SP_V_REST = 0
SP_V_RESET = 1
SP_V_THRESH = 2
SP_EXP_TC = 3  # s16.15
SP_R = 4  # s16.15
SP_DEC_E = 5  # u0.32
SP_DEC_I = 6
SP_INIT_E = 7  # u0.32
SP_INIT_I = 8
SP_DELTA = 9  # 1: delta synapses (current of one step)
SP_T_REFRACT = 10
SP_SHIFT_E = 11
SP_SHIFT_I = 12
SP_BITS_V = 13
SP_WRAP_V = 14
SP_GE = 15  # 1: spike when V >= V_thresh
NSP = 16

@njit(**_OPTS)
def mul_u032(x: int, d: int) -> int:
    """x (s16.15) times an unsigned 0.32 fraction, floored: (x * d) >> 32."""
    return (x * d) >> 32


@njit(**_OPTS)
def mul_rn(a: int, b: int) -> int:
    """Product of two s16.15 values rounded to nearest (ties up): (a*b + 2^14) >> 15."""
    return (a * b + 16384) >> 15


@njit(**_OPTS)
def spinnaker_update(v, ie, ih, ref, ring_e, ring_i, ioff, p, spk, stats):
    """One step of a layer of SpiNNaker IF_curr_exp (or IF_curr_delta) neurons; the ring
    entries of this step (ring_e, ring_i) are consumed and cleared. Returns spike count."""
    v_rest, v_reset, thr = p[SP_V_REST], p[SP_V_RESET], p[SP_V_THRESH]
    exp_tc, r = p[SP_EXP_TC], p[SP_R]
    dec_e, dec_i, init_e, init_i = p[SP_DEC_E], p[SP_DEC_I], p[SP_INIT_E], p[SP_INIT_I]
    delta = p[SP_DELTA] != 0
    t_ref = p[SP_T_REFRACT]
    sh_e, sh_i = p[SP_SHIFT_E], p[SP_SHIFT_I]
    bits, wrap = p[SP_BITS_V], p[SP_WRAP_V]
    ge = p[SP_GE] != 0
    ns = 0
    n = v.shape[0]
    for i in range(n):
        in_e = ring_e[i] << sh_e
        in_i = ring_i[i] << sh_i
        ring_e[i] = 0
        ring_i[i] = 0
        if delta:
            a = in_e
            b = in_i
        else:
            a = mul_u032(ie[i], dec_e) + mul_u032(in_e, init_e)
            b = mul_u032(ih[i], dec_i) + mul_u032(in_i, init_i)
        a, o1 = fit(a, bits, wrap)
        b, o2 = fit(b, bits, wrap)
        stats[ST_U_OVERFLOW] += o1 + o2
        ie[i] = a
        ih[i] = b
        vi = v[i]
        if ref[i] <= 0:
            cur = a - b + ioff[i]
            alpha = mul_rn(cur, r) + v_rest
            vi, o = fit(alpha - mul_rn(exp_tc, alpha - vi), bits, wrap)
            stats[ST_V_OVERFLOW] += o
        else:
            ref[i] -= 1
        fire = vi >= thr if ge else vi > thr
        if fire:
            vi = v_reset
            ref[i] = t_ref
            spk[ns] = i
            ns += 1
        v[i] = vi
    stats[ST_NEURON_UPDATES] += n
    return ns


@njit(**_OPTS)
def spinnaker_propagate(spk, nspk, ptr, post, w, ch, delay, ring, t_arrive, ring_max, stats):
    """Add each synapse's 16-bit weight into ring[slot, type, post] at slot (t_arrive + delay)
    mod nslot, saturating at ring_max (counted); returns synaptic operations."""
    nslot = ring.shape[0]
    nev = 0
    for s in range(nspk):
        i = spk[s]
        for k in range(ptr[i], ptr[i + 1]):
            sl = (t_arrive + delay[k]) % nslot
            x = ring[sl, ch[k], post[k]] + w[k]
            if x > ring_max:
                x = ring_max
                stats[ST_RING_SATURATED] += 1
            ring[sl, ch[k], post[k]] = x
        nev += ptr[i + 1] - ptr[i]
    return nev


#: Slots of a layer's parameter array by the quantizer's parameter names.
PARAM_ORDER = {
    "v_rest": SP_V_REST, "v_reset": SP_V_RESET, "v_thresh": SP_V_THRESH, "exp_tc": SP_EXP_TC,
    "r": SP_R, "dec_e": SP_DEC_E, "dec_i": SP_DEC_I, "init_e": SP_INIT_E, "init_i": SP_INIT_I,
    "delta": SP_DELTA, "t_refract": SP_T_REFRACT, "shift_e": SP_SHIFT_E,
    "shift_i": SP_SHIFT_I, "bits_v": SP_BITS_V, "wrap_v": SP_WRAP_V, "ge": SP_GE,
}  # fmt: skip


class SpinnakerKernels(LayerKernels):
    """SpiNNaker layers for the generic emulator: V, both synaptic currents and refractory
    timers, a ring buffer of 16-bit entries per arrival step and synapse type."""

    nparam = NSP
    param_order = PARAM_ORDER

    def synapses(self, pr: Any) -> tuple[np.ndarray, int]:
        return pr.w.astype(np.int64), 0

    def v_start(self, lay: Any) -> int:
        return int(lay.params.get("v_rest", 0))

    def ring_shape(self, nslot: int, n: int) -> tuple[int, ...]:
        return (nslot, 2, n)

    def update(self, em: Emulator, i: int, lay: Any, slot: int) -> int:
        ring = em.ring[i]
        return spinnaker_update(em.v[i], em.u[i], em.ih[i], em.ref[i], ring[slot, 0],
                                ring[slot, 1], lay.bias, em.params[i], em.spk[i],
                                em.stats)  # fmt: skip

    def propagate(self, em: Emulator, j: int, p: Any, ns: int, t: int, ring_max: int) -> int:
        return spinnaker_propagate(em.spk[p.pre], ns, p.ptr, p.idx, p.w, p.ch, p.delay,
                                   em.ring[p.post], t, ring_max, em.stats)  # fmt: skip


KERNELS = SpinnakerKernels()


def emulator(qm: Any, profile: Any = None) -> Emulator:
    """A step-by-step emulator of a quantized SpiNNaker model."""
    return Emulator(qm, KERNELS)
