"""Golden vectors for the chip kernels, computed by hand from the documented integer equations
(edgesnn/deploy/targets/{loihi,spinnaker}/emulate.py, hardware.md 1.3 and 3.3), and a slow
reference twin of each."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edgesnn.deploy import kernels as K
from edgesnn.deploy.targets.loihi import emulate as LK
from edgesnn.deploy.targets.spinnaker import emulate as SK


def loihi_params(du=4095, dv=0, vth=64, refract=1, bits_u=24, wrap_u=1, bits_v=24, wrap_v=0,
                 bits_q=22, wrap_q=1, offset_u=1, ge=0, u_lava=0):
    p = np.zeros(LK.NLP, np.int64)
    p[LK.LP_U_LAVA] = u_lava
    p[LK.LP_DECAY_U], p[LK.LP_DECAY_V], p[LK.LP_VTH], p[LK.LP_REFRACT] = du, dv, vth, refract
    p[LK.LP_BITS_U], p[LK.LP_WRAP_U], p[LK.LP_BITS_V], p[LK.LP_WRAP_V] = bits_u, wrap_u, bits_v, wrap_v
    p[LK.LP_BITS_Q], p[LK.LP_WRAP_Q], p[LK.LP_OFFSET_U] = bits_q, wrap_q, offset_u
    p[LK.LP_DECAY_BITS], p[LK.LP_GE] = 12, ge
    return p


def run_loihi(p, qs, u0=0, v0=0, bias=0):
    """One neuron; returns (u, v, spiked) after each step and the counters."""
    u = np.array([u0], np.int64)
    v = np.array([v0], np.int64)
    ref = np.zeros(1, np.int64)
    spk = np.zeros(1, np.int64)
    stats = np.zeros(K.NST, np.int64)
    out = []
    for qv in qs:
        q = np.array([qv], np.int64)
        ns = LK.loihi_cuba_update(u, v, ref, q, np.array([bias], np.int64), p, spk, stats)
        out.append((int(u[0]), int(v[0]), int(ns)))
    return out, stats


def test_loihi_basic_and_threshold_equality():
    # du=4095 (+1 offset): u = q each step; dv=2048: v halves (toward zero); vth = 1 << 6.
    out, _ = run_loihi(loihi_params(dv=2048), [100, 0, 40, 40, 0, 64])
    # t0: u=100, v=100 > 64 spikes -> 0; t1: u=0, v=0; t2: u=40, v=40; t3: v=(40*2048)>>12=20
    # +40=60; t4: u=0, v=30; t5: u=64, v=15+64=79 > 64 spikes
    assert out == [(100, 0, 1), (0, 0, 0), (40, 40, 0), (40, 60, 0), (0, 30, 0), (64, 0, 1)]
    # equality: v == vth does not spike with '>', does with '>='
    assert run_loihi(loihi_params(), [64])[0] == [(64, 64, 0)]
    assert run_loihi(loihi_params(ge=1), [64])[0] == [(64, 0, 1)]


def test_loihi_decay_rounds_toward_zero():
    # v0 = -3, dv = 2048: -((3*2048) >> 12) = -1 (floor would give -2)
    assert run_loihi(loihi_params(dv=2048), [0], v0=-3)[0] == [(0, -1, 0)]
    # du = 0 (+1): u*(4095/4096): 5000*4095 >> 12 = 20475000 >> 12 = 4998
    assert run_loihi(loihi_params(du=0, vth=1 << 22), [0], u0=5000)[0][0][0] == 4998
    # negative: -(5000*4095 >> 12) = -4998
    assert run_loihi(loihi_params(du=0, vth=1 << 22), [0], u0=-5000)[0][0][0] == -4998


def test_loihi_u_wraps_at_24_bits():
    # u0 = 2^23 - 10 = 8388598, du=0: 8388598*4095 = 34351308810, >> 12 = 8386550; + q 5000
    # = 8391550 > 2^23 - 1: wraps to 8391550 - 2^24 = -8385666
    out, stats = run_loihi(loihi_params(du=0, vth=131071 << 6), [5000], u0=8388598)
    assert out[0][0] == -8385666
    assert stats[K.ST_U_OVERFLOW] == 1


def test_loihi_v_saturates_at_24_bits():
    # v0 = -8388000, dv=0 keeps it; u = q = 0; bias -1000: -8389000 clips to -(2^23 - 1)
    out, stats = run_loihi(loihi_params(), [0], v0=-8388000, bias=-1000)
    assert out[0][1] == -8388607
    assert stats[K.ST_V_OVERFLOW] == 1


def test_loihi_input_accumulator_wraps():
    # q = 2^21 + 5 does not fit 22 bits (21 + sign): 2097157 - 2^22 = -2097147
    out, stats = run_loihi(loihi_params(vth=1 << 22), [2097157])
    assert out[0][0] == -2097147 and stats[K.ST_Q_OVERFLOW] == 1


def test_loihi_u_edge_two_ranges_and_counted():
    # du = 4095 (+1): u is the input of the step. Two's complement: +2^23 wraps to -2^23 and
    # -2^23 stays; lava: +2^23 stays and -2^23 folds to +2^23. Both count each edge value.
    big = 131071 << 6
    edge = 1 << 23
    out, st = run_loihi(loihi_params(vth=big, bits_q=0), [edge, -edge, edge - 1, edge + 1])
    assert [u for u, _, _ in out] == [-edge, -edge, edge - 1, -edge + 1]
    assert st[K.ST_U_EDGE] == 2 and st[K.ST_U_OVERFLOW] == 2
    out, st = run_loihi(loihi_params(vth=big, bits_q=0, u_lava=1), [edge, -edge, edge - 1, edge + 1])
    assert [u for u, _, _ in out] == [edge, edge, edge - 1, -edge + 1]
    assert st[K.ST_U_EDGE] == 2 and st[K.ST_U_OVERFLOW] == 2
    # lava folds once (u - 2^24), it does not reduce modulo 2^24
    out, _ = run_loihi(loihi_params(vth=big, bits_q=0, u_lava=1), [3 * edge + 5])
    assert out[0][0] == edge + 5


def test_loihi_unlimited_input_accumulator_counts_only():
    # wrap_q = 2 (unlimited): 2^21 + 5 passes unchanged into u and is counted once
    out, stats = run_loihi(loihi_params(vth=1 << 22, wrap_q=LK.Q_UNLIMITED), [2097157, 100])
    assert out[0][0] == 2097157 and out[1][0] == 100 and stats[K.ST_Q_OVERFLOW] == 1


def test_loihi_refractory_holds_v_at_zero():
    # refract_delay 3: the counter is 3 at the spike, decremented the same step (2), so v is
    # held at 0 for 2 steps; constant input 100 > 64 spikes at t = 0, 3, 6
    out, _ = run_loihi(loihi_params(refract=3), [100] * 7)
    assert [s for _, _, s in out] == [1, 0, 0, 1, 0, 0, 1]
    assert [v for _, v, _ in out] == [0, 0, 0, 0, 0, 0, 0]


def sp_params(v_rest=0, v_reset=0, thr=32768, exp_tc=16384, r=32768, dec=0, init=0, delta=1,
              t_ref=0, sh_e=0, sh_i=0, ge=1):
    p = np.zeros(SK.NSP, np.int64)
    p[SK.SP_V_REST], p[SK.SP_V_RESET], p[SK.SP_V_THRESH] = v_rest, v_reset, thr
    p[SK.SP_EXP_TC], p[SK.SP_R] = exp_tc, r
    p[SK.SP_DEC_E] = p[SK.SP_DEC_I] = dec
    p[SK.SP_INIT_E] = p[SK.SP_INIT_I] = init
    p[SK.SP_DELTA], p[SK.SP_T_REFRACT] = delta, t_ref
    p[SK.SP_SHIFT_E], p[SK.SP_SHIFT_I], p[SK.SP_BITS_V], p[SK.SP_WRAP_V], p[SK.SP_GE] = \
        sh_e, sh_i, 32, 1, ge
    return p


def run_sp(p, ring_e, ring_i=None, v0=0, ioff=0):
    v = np.array([v0], np.int64)
    ie = np.zeros(1, np.int64)
    ih = np.zeros(1, np.int64)
    ref = np.zeros(1, np.int64)
    spk = np.zeros(1, np.int64)
    stats = np.zeros(K.NST, np.int64)
    out = []
    ring_i = ring_i or [0] * len(ring_e)
    for a, b in zip(ring_e, ring_i):
        re, ri = np.array([a], np.int64), np.array([b], np.int64)
        ns = SK.spinnaker_update(v, ie, ih, ref, re, ri, np.array([ioff], np.int64), p, spk,
                                stats)
        assert re[0] == 0 and ri[0] == 0  # consumed
        out.append((int(v[0]), int(ie[0]), int(ns)))
    return out, stats


def test_spinnaker_closed_form_and_rounding():
    # delta synapse, entry 32768 = 1.0 (shift 0), R = 1.0, exp_TC = 0.5, V_rest = 0.
    # t0: alpha = (32768*32768 + 16384) >> 15 = 32768; V = 32768 - ((16384*32768 + 16384) >> 15)
    #     = 32768 - 16384 = 16384
    # t1: V = 32768 - ((16384*16384 + 16384) >> 15) = 32768 - 8192 = 24576
    # t2: V = 32768 - ((16384*8192 + 16384) >> 15) = 32768 - 4096 = 28672
    out, _ = run_sp(sp_params(thr=40000), [32768] * 3)
    assert [v for v, _, _ in out] == [16384, 24576, 28672]
    assert SK.mul_rn(1, 16384) == 1 and SK.mul_rn(-1, 16384) == 0  # ties round up
    assert SK.mul_u032(-3, 1 << 31) == -2  # floor


def test_spinnaker_threshold_equality_spikes():
    # V reaches exactly 24576 at t1: '>=' spikes and resets to V_reset
    out, _ = run_sp(sp_params(thr=24576, v_reset=-100), [32768] * 2)
    assert out[1] == (-100, 32768, 1)
    out, _ = run_sp(sp_params(thr=24576, ge=0), [32768] * 2)
    assert out[1][2] == 0


def test_spinnaker_exp_synapse_and_shift():
    # decay 0.5 and init 0.5 (u0.32 = 2^31); entry 8192 << shift 2 = 32768;
    # I0 = (0*2^31 >> 32) + (32768*2^31 >> 32) = 16384; I1 = 16384*2^31 >> 32 = 8192
    out, _ = run_sp(sp_params(delta=0, dec=1 << 31, init=1 << 31, sh_e=2, thr=1 << 30),
                    [8192, 0])
    assert [i for _, i, _ in out] == [16384, 8192]


def test_spinnaker_refractory_holds_v():
    # t_refract 2: spike at t0, V held at V_reset for t1, t2 (timer 2 -> 1 -> 0), update at t3
    out, _ = run_sp(sp_params(thr=10000, t_ref=2, exp_tc=0), [32768] * 4)
    assert [s for _, _, s in out] == [1, 0, 0, 1]
    assert [v for v, _, _ in out][:3] == [0, 0, 0]


def test_spinnaker_v_wraps_at_32_bits():
    # V_rest = 2^31 - 100, exp_TC = 0, i_offset 200: V = alpha = 2^31 + 100 -> -2^31 + 100
    out, stats = run_sp(sp_params(v_rest=(1 << 31) - 100, exp_tc=0, thr=(1 << 31) - 1),
                        [0], ioff=200)
    assert out[0][0] == -(1 << 31) + 100 and stats[K.ST_V_OVERFLOW] == 1


def test_spinnaker_ring_saturates():
    # two synapses of 40000 into one entry: min(80000, 65535)
    ring = np.zeros((3, 2, 1), np.int64)
    stats = np.zeros(K.NST, np.int64)
    ptr = np.array([0, 1, 2])
    nev = SK.spinnaker_propagate(np.array([0, 1]), 2, ptr, np.array([0, 0]),
                                np.array([40000, 40000]), np.array([0, 0]), np.array([1, 1]),
                                ring, 0, 65535, stats)
    assert nev == 2 and ring[1, 0, 0] == 65535 and stats[K.ST_RING_SATURATED] == 1


# --- slow reference twins ---------------------------------------------------------------------


def ref_fit(x, bits, wrap):
    hi = (1 << (bits - 1)) - 1
    if -hi <= x <= hi or (wrap and x == -hi - 1):
        return x
    if wrap:
        return ((x + hi + 1) % (1 << bits)) - hi - 1
    return hi if x > 0 else -hi


def ref_decay(x, d):
    mag = (abs(x) * (4096 - d)) // 4096
    return mag if x >= 0 else -mag


def ref_loihi(du, dv, vth, rd, bias, qs, ge):
    u = v = ref = 0
    out = []
    for q in qs:
        q = ref_fit(q, 22, True)
        u = ref_fit(ref_decay(u, du + 1) + q, 24, True)
        v = ref_fit(ref_decay(v, dv) + u + bias, 24, False)
        if ref > 0:
            v = 0
        s = v >= vth if ge else v > vth
        if s:
            v, ref = 0, rd
        ref = max(ref - 1, 0)
        out.append((u, v, int(s)))
    return out


@settings(max_examples=80, deadline=None)
@given(du=st.integers(0, 4095), dv=st.integers(0, 4095), vth=st.integers(0, 131071),
       rd=st.integers(1, 63), bias=st.integers(-4095 << 7, 4095 << 7), ge=st.booleans(),
       qs=st.lists(st.integers(-(1 << 22), 1 << 22), min_size=1, max_size=30))
def test_loihi_kernel_matches_reference(du, dv, vth, rd, bias, ge, qs):
    p = loihi_params(du=du, dv=dv, vth=vth << 6, refract=rd, ge=int(ge))
    got, _ = run_loihi(p, qs, bias=bias)
    assert got == ref_loihi(du, dv, vth << 6, rd, bias, qs, ge)


def ref_sp(p, ring_e, ring_i, ioff):
    def rn(a, b):
        return (a * b + 16384) // 32768

    v, ie, ih, ref = 0, 0, 0, 0
    out = []
    for a, b in zip(ring_e, ring_i):
        xe, xi = a << p[SK.SP_SHIFT_E], b << p[SK.SP_SHIFT_I]
        if p[SK.SP_DELTA]:
            ie, ih = xe, xi
        else:
            ie = (ie * p[SK.SP_DEC_E]) // (1 << 32) + (xe * p[SK.SP_INIT_E]) // (1 << 32)
            ih = (ih * p[SK.SP_DEC_I]) // (1 << 32) + (xi * p[SK.SP_INIT_I]) // (1 << 32)
        ie, ih = ref_fit(ie, 32, True), ref_fit(ih, 32, True)
        if ref <= 0:
            alpha = rn(ie - ih + ioff, p[SK.SP_R]) + p[SK.SP_V_REST]
            v = ref_fit(alpha - rn(p[SK.SP_EXP_TC], alpha - v), 32, True)
        else:
            ref -= 1
        s = v >= p[SK.SP_V_THRESH]
        if s:
            v, ref = p[SK.SP_V_RESET], p[SK.SP_T_REFRACT]
        out.append((v, ie, int(s)))
    return out


@settings(max_examples=80, deadline=None)
@given(exp_tc=st.integers(0, 32768), dec=st.integers(0, (1 << 32) - 1),
       init=st.integers(0, (1 << 32) - 1), delta=st.booleans(), t_ref=st.integers(0, 5),
       sh=st.integers(0, 15), ioff=st.integers(-(1 << 20), 1 << 20),
       ring=st.lists(st.tuples(st.integers(0, 65535), st.integers(0, 65535)), min_size=1,
                     max_size=25))
def test_spinnaker_kernel_matches_reference(exp_tc, dec, init, delta, t_ref, sh, ioff, ring):
    p = sp_params(v_rest=-65 << 15, v_reset=-70 << 15, thr=-50 << 15, exp_tc=exp_tc, dec=dec,
                  init=init, delta=int(delta), t_ref=t_ref, sh_e=sh, sh_i=max(sh - 1, 0))
    re = [a for a, _ in ring]
    ri = [b for _, b in ring]
    got, _ = run_sp(p, re, ri, v0=0, ioff=ioff)
    p2 = [int(x) for x in p]
    assert got == ref_sp(p2, re, ri, ioff)
