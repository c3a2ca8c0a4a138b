"""Loihi 1/2 emulation: the CUBA compartment's integer kernels (numba, pure, no allocation) and
how the generic `edgesnn.deploy.emulator.Emulator` calls them.

``loihi_cuba`` (Loihi 1/2 CUBA compartment, hardware.md 1.3), one step per neuron::

    q   = wrap_or_sat(q, bits_q)                              # synaptic input accumulator
                                                              # (or unlimited, only counted)
    u   = fit(decay(u, decay_u + offset_u) + q, bits_u)       # wrap (Loihi) or saturate
    v   = fit(decay(v, decay_v) + u + bias, bits_v)           # saturate (Loihi) or wrap
    v   = 0 if refractory > 0                                 # held at 0 while refractory
    spike = v > vth (or >=);  on spike: v = 0, refractory = refract_delay
    refractory = max(refractory - 1, 0)
    decay(x, d) = sign(x) * ((|x| * (2^bits - d)) >> bits)    # rounds toward zero

with ``vth = vth_mant << threshold_shift`` and ``bias = bias_mant << bias_exp`` (given already
shifted). The input of a step is, per projection (and per delay slot), as lava's
``PyDenseModelBitAcc``/``PyDelayDenseModelBitAcc`` compute it::

    q += shift(sum of the mantissas of the synapses whose spikes arrive now, exp) << 6

where shift is ``<< exp`` for exp >= 0 and an arithmetic ``>> -exp`` (floor) otherwise: with
exp < 0 the floor applies once to the neuron's sum, not to each synapse
(`loihi_propagate_shifted`); with exp >= 0 the two are the same and each synapse adds
``mant << (exp + 6)`` (`loihi_propagate`).

A wrapping u takes one of two ranges (``LP_U_LAVA``): two's complement [-2^(b-1), 2^(b-1))
(nengo-loihi ``overflow_signed``), or lava's (-2^(b-1), 2^(b-1)] with one fold (lava-nc 0.10.0
``AbstractPyLifModelFixed.subthr_dynamics``: ``u - 2^b if u > 2^(b-1)``, ``u + 2^b if u <=
-2^(b-1)``). They differ only for a u of exactly +-2^(b-1), which is counted
(``ST_U_EDGE``) whichever range is used. An input accumulator limit of ``LP_WRAP_Q = 2``
changes nothing and only counts inputs wider than ``bits_q`` (lava has no limit).
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
    ST_Q_OVERFLOW,
    ST_U_EDGE,
    ST_U_OVERFLOW,
    ST_V_OVERFLOW,
    fit,
)

_OPTS = KERNEL_OPTS
__all__ = ["KERNELS", "NLP", "NST", "PARAM_ORDER", "emulator", "loihi_cuba_update",
           "loihi_propagate", "loihi_propagate_shifted"]

# --- parameter slots of a Loihi layer (int64 array) -----------------------------------------
LP_DECAY_U = 0
LP_DECAY_V = 1
LP_VTH = 2  # already shifted: vth_mant << threshold_shift
LP_REFRACT = 3  # counter value set on a spike (held steps + 1)
LP_BITS_U = 4
LP_WRAP_U = 5
LP_BITS_V = 6
LP_WRAP_V = 7
LP_BITS_Q = 8  # 0: no accumulator limit
LP_WRAP_Q = 9
LP_OFFSET_U = 10
LP_DECAY_BITS = 11
LP_GE = 12  # 1: spike when v >= vth
LP_U_LAVA = 13  # 1: a wrapping u lies in lava's (-2^(b-1), 2^(b-1)] (one fold); 0: two's compl.
NLP = 14

#: LP_WRAP_Q values: saturate, wrap, or unlimited (only counted)
Q_SATURATE, Q_WRAP, Q_UNLIMITED = 0, 1, 2

@njit(**_OPTS)
def loihi_decay(x: int, d: int, bits: int) -> int:
    """sign(x) * ((|x| * (2^bits - d)) >> bits): the chip's decay, rounding toward zero."""
    full = np.int64(1) << bits
    if x >= 0:
        return (x * (full - d)) >> bits
    return -(((-x) * (full - d)) >> bits)


@njit(**_OPTS)
def loihi_cuba_update(u, v, ref, q, bias, p, spk, stats):
    """One step of a layer of Loihi CUBA compartments; q (the input that arrived for this
    step) is consumed and cleared. Writes the spiking neurons into spk; returns how many."""
    du = p[LP_DECAY_U] + p[LP_OFFSET_U]
    dv = p[LP_DECAY_V]
    vth = p[LP_VTH]
    rd = p[LP_REFRACT]
    bits_u, wrap_u = p[LP_BITS_U], p[LP_WRAP_U]
    bits_v, wrap_v = p[LP_BITS_V], p[LP_WRAP_V]
    bits_q, wrap_q = p[LP_BITS_Q], p[LP_WRAP_Q]
    db = p[LP_DECAY_BITS]
    ge = p[LP_GE] != 0
    u_lava = p[LP_U_LAVA] != 0 and wrap_u != 0
    edge = np.int64(1) << (bits_u - 1)
    ns = 0
    n = u.shape[0]
    for i in range(n):
        qi = q[i]
        q[i] = 0
        if bits_q > 0:
            if wrap_q == Q_UNLIMITED:
                _, o = fit(qi, bits_q, Q_WRAP)
            else:
                qi, o = fit(qi, bits_q, wrap_q)
            stats[ST_Q_OVERFLOW] += o
        x = loihi_decay(u[i], du, db) + qi
        if x == edge or x == -edge:
            stats[ST_U_EDGE] += 1
        if u_lava:
            o = 1
            if x > edge:
                x -= edge << 1
            elif x <= -edge:
                x += edge << 1
            else:
                o = 0
        else:
            x, o = fit(x, bits_u, wrap_u)
        stats[ST_U_OVERFLOW] += o
        u[i] = x
        y, o = fit(loihi_decay(v[i], dv, db) + x + bias[i], bits_v, wrap_v)
        stats[ST_V_OVERFLOW] += o
        r = ref[i]
        if r > 0:
            y = 0
        fire = y >= vth if ge else y > vth
        if fire:
            y = 0
            r = rd
            spk[ns] = i
            ns += 1
        ref[i] = r - 1 if r > 0 else 0
        v[i] = y
    stats[ST_NEURON_UPDATES] += n
    return ns


@njit(**_OPTS)
def loihi_propagate(spk, nspk, ptr, post, weff, delay, ring, t_arrive):
    """Add the effective weight of every synapse of the spiking neurons into the input ring
    (ring[slot, post]) at slot (t_arrive + delay) mod nslot; returns synaptic operations."""
    nslot = ring.shape[0]
    nev = 0
    for s in range(nspk):
        i = spk[s]
        for k in range(ptr[i], ptr[i + 1]):
            ring[(t_arrive + delay[k]) % nslot, post[k]] += weff[k]
        nev += ptr[i + 1] - ptr[i]
    return nev


@njit(**_OPTS)
def loihi_propagate_shifted(spk, nspk, ptr, post, mant, delay, acc, ring, t_arrive, rshift):
    """As `loihi_propagate` for a negative weight exponent: the mantissas of the spiking
    neurons' synapses are summed per (arrival slot, post) in acc, and each sum adds
    (sum >> rshift) << 6 (floored once per neuron and delay slot, as lava) to the ring; acc is
    left zero. Returns synaptic operations."""
    nslot = ring.shape[0]
    nev = 0
    for s in range(nspk):
        i = spk[s]
        for k in range(ptr[i], ptr[i + 1]):
            acc[(t_arrive + delay[k]) % nslot, post[k]] += mant[k]
        nev += ptr[i + 1] - ptr[i]
    for s in range(nspk):
        i = spk[s]
        for k in range(ptr[i], ptr[i + 1]):
            sl = (t_arrive + delay[k]) % nslot
            j = post[k]
            x = acc[sl, j]
            if x != 0:
                ring[sl, j] += (x >> rshift) << 6
                acc[sl, j] = 0
    return nev


#: Slots of a layer's parameter array by the quantizer's parameter names.
PARAM_ORDER = {
    "decay_u": LP_DECAY_U, "decay_v": LP_DECAY_V, "vth": LP_VTH, "refract_delay": LP_REFRACT,
    "bits_u": LP_BITS_U, "wrap_u": LP_WRAP_U, "bits_v": LP_BITS_V, "wrap_v": LP_WRAP_V,
    "bits_q": LP_BITS_Q, "wrap_q": LP_WRAP_Q, "offset_u": LP_OFFSET_U,
    "decay_bits": LP_DECAY_BITS, "ge": LP_GE, "u_lava": LP_U_LAVA,
}  # fmt: skip


class LoihiKernels(LayerKernels):
    """Loihi layers for the generic emulator: u, v and refractory counters, one input slot
    per arrival step, lava's effective weights (per-step sum floored for a negative exponent).
    """

    nparam = NLP
    param_order = PARAM_ORDER

    def synapses(self, pr: Any) -> tuple[np.ndarray, int]:
        from edgesnn.deploy.targets.loihi.quantize import loihi_weights

        lw = loihi_weights(pr.w, pr.exp, pr.sign_mode, pr.num_weight_bits)
        rshift = lw.rshift
        return (lw.addend if rshift else lw.addend << 6), rshift  # exp >= 0: exact per synapse

    def v_start(self, lay: Any) -> int:
        return 0

    def ring_shape(self, nslot: int, n: int) -> tuple[int, ...]:
        return (nslot, n)

    def update(self, em: Emulator, i: int, lay: Any, slot: int) -> int:
        return loihi_cuba_update(em.u[i], em.v[i], em.ref[i], em.ring[i][slot], lay.bias,
                                 em.params[i], em.spk[i], em.stats)  # fmt: skip

    def propagate(self, em: Emulator, j: int, p: Any, ns: int, t: int, ring_max: int) -> int:
        if p.rshift:
            return loihi_propagate_shifted(em.spk[p.pre], ns, p.ptr, p.idx, p.w, p.delay,
                                           em.acc[j], em.ring[p.post], t, p.rshift)  # fmt: skip
        return loihi_propagate(em.spk[p.pre], ns, p.ptr, p.idx, p.w, p.delay, em.ring[p.post],
                               t)  # fmt: skip


KERNELS = LoihiKernels()


def emulator(qm: Any, profile: Any = None) -> Emulator:
    """A step-by-step emulator of a quantized Loihi model."""
    return Emulator(qm, KERNELS)
