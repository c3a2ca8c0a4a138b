"""Bit-accurate integer kernels of the chip families (numba, pure, no allocation).

Two neuron families, each with its propagation kernel; every value is an int64 holding the
chip's integer (states are wrapped or saturated to the chip's width after each operation).

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

import numpy as np
from numba import njit

_OPTS = {"cache": True, "nogil": True}

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

# --- counters (int64 array) --------------------------------------------------------------------
ST_U_OVERFLOW = 0  # u (Loihi) or I (SpiNNaker) left its range
ST_V_OVERFLOW = 1  # v left its range (saturated or wrapped)
ST_Q_OVERFLOW = 2  # Loihi input accumulator left its range
ST_RING_SATURATED = 3  # SpiNNaker ring-buffer entries that saturated
ST_SYNOPS = 4  # synaptic operations (spike x synapse)
ST_NEURON_UPDATES = 5
ST_U_EDGE = 6  # Loihi u of exactly +-2^(bits_u-1) before wrapping (the two ranges differ)
NST = 7


@njit(**_OPTS)
def fit(x: int, bits: int, wrap: int) -> tuple[int, int]:
    """(x fitted to a signed `bits`-bit integer, 1 when it did not fit). Wrap: modulo 2^bits;
    saturate: clip to +-(2^(bits-1) - 1)."""
    hi = (np.int64(1) << (bits - 1)) - 1
    if -hi - 1 <= x <= hi:
        if wrap == 0 and x == -hi - 1:
            return -hi, 1
        return x, 0
    if wrap != 0:
        m = np.int64(1) << bits
        y = (x + hi + 1) % m
        return y - hi - 1, 1
    return (hi if x > 0 else -hi), 1


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
