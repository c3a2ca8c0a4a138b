"""Plasticity kernels: pair and triplet STDP, reward-modulated STDP, homeostasis.

Pair STDP's weight update is implemented once, `pair_rows` (a pre spike: its row) and
`pair_cols` (a post spike: its column), and used by both kernels that run it:

- `stdp_fused` (code ``PLAST_STDP``: ``stdp`` with all-to-all pairing, additive bounds and no
  homeostasis, the W2 workload) keeps its traces decayed every step, as the rule states;
- `learning_step` (codes ``PLAST_PAIR`` and higher) runs the other variants and rules
  event-driven: it touches only the rows of the pre neurons and the columns of the post
  neurons that spiked in this step (plus every synapse once per delivered reward, and every
  column once per normalisation period). Traces are decayed lazily from the step at which they
  were last written (`edgesnn.learning.layout`); the decay factors of a step come from a small
  table built in the half of the step's scratch that is not in use at that moment
  (`_decay_table`), with exp only for gaps beyond it. Lazily and eagerly decayed traces round
  differently, which is why the two trace schemes stay (W2's spikes depend on the eager one).

Both are called by the core's step kernel, after propagation, for every plastic projection
with learning on.

In one step, in this order (the reference implementations in the tests follow it line by line):

1. rstdp only: a pending reward r brings every synapse up to date: ``w += gain * r * c``, and
   the dopamine level d grows by r;
2. for each pre spike i, for every synapse (i, j): depression with the post traces as they were
   before this step's post spikes, then the pre traces of i are bumped (``+= 1``, or ``= 1``
   for nearest-spike pairing);
3. for each post spike j, for every synapse (i, j): potentiation with the pre traces (including
   this step's pre spikes), then the post traces of j are bumped;
4. homeostasis: theta_j += theta_plus for each post spike j, then synaptic normalisation.

Pair rule:     pre: ``dw = -A- x_post``;              post: ``dw = A+ x_pre``.
Triplet rule:  pre: ``dw = -o1 (A2- + A3- r2(t-))``;  post: ``dw = r1 (A2+ + A3+ o2(t-))``
(Pfister & Gerstner 2006; ``(t-)``: the trace before this spike's own bump).
Bounds: additive ``w = clip(w + dw, w_min, w_max)``; multiplicative scales potentiation by
``(w_max - w)`` and depression by ``(w - w_min)``.
R-STDP (Izhikevich 2007): the pair rule's ``dw`` goes into the eligibility c of the synapse
(decaying with tau_elig), the weight follows ``dw/dt = eta c d`` with the dopamine d decaying
with tau_dopa. Between events both are exponentials, so the whole future contribution of an
event is known when it happens and is applied then: a reward r adds ``gain * r * c`` to every
synapse, an eligibility change dc adds ``gain * d * dc``, with
``gain = eta * dt_ms / (1 - exp(-dt/tau_elig) * exp(-dt/tau_dopa))`` (the sum of the product
of the two decays over all later steps).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from edgesnn.core.layout import (
    H_LTAB,
    H_T,
    L_N,
    L_NSPK,
    L_SPKOFF,
    LR,
    P_CIDXOFF,
    P_CPTROFF,
    P_IDXOFF,
    P_LREC,
    P_MODOFF,
    P_PLAST,
    P_POST,
    P_PPOFF,
    P_PRE,
    P_PTROFF,
    P_RULE,
    P_TPOST,
    P_TPRE,
    P_WOFF,
    PLAST_RSTDP,
    PLAST_TRIPLET,
    RULE_DENSE,
    S_AMINUS,
    S_APLUS,
    S_DPOST,
    S_DPRE,
    S_WMAX,
    S_WMIN,
)
from edgesnn.core.tiny import zero_tiny
from edgesnn.learning.layout import (
    F_A3MINUS,
    F_A3PLUS,
    F_AMINUS,
    F_APLUS,
    F_GAIN,
    F_L1POST,
    F_L1PRE,
    F_L2POST,
    F_L2PRE,
    F_LDOPA,
    F_LELIG,
    F_NORM,
    F_THETA,
    F_WMAX,
    F_WMIN,
    G_BOUNDS,
    G_DOPA,
    G_ELIG,
    G_NORM_EVERY,
    G_NREWARD,
    G_PAIRING,
    G_PAR,
    G_SCRATCH,
    G_TD,
    G_TG,
    G_THETA,
    G_TPOST,
    G_TPRE,
    G_X1POST,
    G_X1PRE,
    G_X2POST,
    G_X2PRE,
)

_OPTS = {"cache": True, "nogil": True, "error_model": "numpy"}

#: Decay factors below this are taken as 0: a trace that old is nothing, and float32 state would
#: otherwise carry subnormal values, which make every multiply that touches them very slow.
_TINY = 1e-30


@njit(**_OPTS)
def decayed(x, t_last, t, lam):
    """Value at step t of a trace written with value x at step t_last (log decay lam/step)."""
    k = t - t_last
    if k <= 0:
        return x
    return x * math.exp(k * lam)


@njit(**_OPTS)
def _bump(fs, ii, xoff, toff, i, t, lam, nearest):
    """Add a spike of neuron i at step t to the trace at fs[xoff:] (stamps at ii[toff:])."""
    if nearest:
        fs[xoff + i] = 1.0
    else:
        fs[xoff + i] = decayed(fs[xoff + i], ii[toff + i], t, lam) + 1.0


@njit(**_OPTS)
def _decay_table(fs, tab, size, lam):
    """Write exp(r lam) for r < K and exp(K m lam) for m < K at fs[tab:tab + 2K] (K a power of
    two, 2K <= size, K <= 64) so that exp(k lam) = low[k % K] * high[k // K] for k < K*K;
    returns log2(K), or -1 when size < 2. Two lookups replace one exp per trace read."""
    if size < 2:
        return -1
    kb = 0
    while kb < 6 and (4 << kb) <= size:
        kb += 1
    n = 1 << kb
    d = math.exp(lam)
    p = 1.0
    for r in range(n):
        fs[tab + r] = p if p >= _TINY else 0.0
        p *= d
    dn = math.exp(n * lam)
    p = 1.0
    for m in range(n):
        fs[tab + n + m] = p if p >= _TINY else 0.0
        p *= dn
    return kb


@njit(**_OPTS)
def _fill_current(fs, ii, xoff, toff, n, t, lam, out, tab, tab_size):
    """fs[out:out+n] = the traces at fs[xoff:] as they are at step t. fs[tab:tab + tab_size]
    is free scratch (the other half of the step's scratch) used for a decay table."""
    kb = _decay_table(fs, tab, tab_size, lam)
    if kb < 0:
        for i in range(n):
            fs[out + i] = decayed(fs[xoff + i], ii[toff + i], t, lam)
        return
    k_n = 1 << kb
    mask = k_n - 1
    hi = tab + k_n
    lim = k_n * k_n
    for i in range(n):
        k = t - ii[toff + i]
        x = fs[xoff + i]
        if k <= 0:
            fs[out + i] = x
        elif k < lim:
            fs[out + i] = x * (fs[tab + (k & mask)] * fs[hi + (k >> kb)])
        else:
            f = math.exp(k * lam)
            fs[out + i] = x * f if f >= _TINY else 0.0


@njit(inline="always", **_OPTS)
def pair_rows(w, woff, ii, ij, dense, n_post, ptr, idx, i, amp, xs, w_min, w_max, mult):
    """Pair STDP at a spike of pre neuron i, the one implementation of every kernel: each
    synapse (i, j) is depressed by ``amp * xs[j]`` (xs: the post traces as of this step),
    clipped to [w_min, w_max] (additive) or scaled by ``w - w_min`` (multiplicative; then the
    row's weights too small to matter become 0, `edgesnn.core.tiny`: repeated depression to
    w_min = 0 would otherwise leave them subnormal, slowing every spike over them). Dense
    rows are contiguous; sparse rows are CSR rows (pointers at ii[ptr:], targets at ij[idx:])."""
    if dense:
        # views (not offset arithmetic) and the bounds branch outside: the loop vectorises
        wr = w[woff + i * n_post : woff + (i + 1) * n_post]
        if mult:
            for j in range(n_post):
                x = wr[j]
                x = x - (amp * xs[j]) * (x - w_min)
                wr[j] = min(max(x, w_min), w_max)
            zero_tiny(wr)  # depression is geometric: towards w_min = 0 it would go subnormal
        else:
            for j in range(n_post):
                x = wr[j] - amp * xs[j]
                wr[j] = min(max(x, w_min), w_max)
    elif mult:
        for q in range(ii[ptr + i], ii[ptr + i + 1]):
            x = w[woff + q]
            x = x - (amp * xs[ij[idx + q]]) * (x - w_min)
            w[woff + q] = min(max(x, w_min), w_max)
        zero_tiny(w[woff + ii[ptr + i] : woff + ii[ptr + i + 1]])
    else:
        for q in range(ii[ptr + i], ii[ptr + i + 1]):
            x = w[woff + q] - amp * xs[ij[idx + q]]
            w[woff + q] = min(max(x, w_min), w_max)


@njit(inline="always", **_OPTS)
def pair_cols(w, woff, ii, ij, dense, n_pre, n_post, cptr, cidx, j, amp, xs, w_min, w_max, mult):
    """Pair STDP at a spike of post neuron j: each synapse (i, j) is potentiated by
    ``amp * xs[i]`` (xs: the pre traces, this step's pre spikes included), clipped (additive)
    or scaled by ``w_max - w`` (multiplicative). Dense columns are strided; sparse columns are
    the (synapse, pre) pairs at ij[cidx:] between the column pointers at ii[cptr:]."""
    if dense:
        wv = w[woff : woff + n_pre * n_post]
        if mult:
            for i in range(n_pre):
                q = np.uint64(i * n_post + j)
                x = wv[q]
                x = x + (amp * xs[i]) * (w_max - x)
                wv[q] = min(max(x, w_min), w_max)
        else:
            for i in range(n_pre):
                q = np.uint64(i * n_post + j)
                x = wv[q] + amp * xs[i]
                wv[q] = min(max(x, w_min), w_max)
    elif mult:
        for c in range(ii[cptr + j], ii[cptr + j + 1]):
            q = ij[cidx + 2 * c]
            i = ij[cidx + 2 * c + 1]
            x = w[woff + q]
            x = x + (amp * xs[i]) * (w_max - x)
            w[woff + q] = min(max(x, w_min), w_max)
    else:
        for c in range(ii[cptr + j], ii[cptr + j + 1]):
            q = ij[cidx + 2 * c]
            i = ij[cidx + 2 * c + 1]
            x = w[woff + q] + amp * xs[i]
            w[woff + q] = min(max(x, w_min), w_max)


@njit(**_OPTS)
def stdp_fused(prec, fs, fp, w, ii, ij):
    """Pair STDP with all-to-all traces and additive bounds (``stdp`` at its defaults, code
    ``PLAST_STDP``, the W2 workload): the traces (``P_TPRE`` / ``P_TPOST``) decay every step by
    ``exp(-dt/tau)`` and grow by 1 per spike; the weight updates are `pair_rows` / `pair_cols`."""
    ltab = ii[H_LTAB]
    pre = ltab + ii[prec + P_PRE] * LR
    post = ltab + ii[prec + P_POST] * LR
    n_pre = ii[pre + L_N]
    n_post = ii[post + L_N]
    pp = ii[prec + P_PPOFF]
    d_pre = fp[pp + S_DPRE]
    d_post = fp[pp + S_DPOST]
    xpre = ii[prec + P_TPRE]
    xpost = ii[prec + P_TPOST]
    xa = fs[xpre : xpre + n_pre]
    for i in range(n_pre):
        xa[i] *= d_pre
    xb = fs[xpost : xpost + n_post]
    for j in range(n_post):
        xb[j] *= d_post
    a_plus = fp[pp + S_APLUS]
    a_minus = fp[pp + S_AMINUS]
    w_min = fp[pp + S_WMIN]
    w_max = fp[pp + S_WMAX]
    mod = fs[ii[prec + P_MODOFF]]
    am = a_minus * mod
    ap = a_plus * mod
    woff = ii[prec + P_WOFF]
    dense = ii[prec + P_RULE] == RULE_DENSE
    ptr = ii[prec + P_PTROFF]
    idx = ii[prec + P_IDXOFF]
    cptr = ii[prec + P_CPTROFF]
    cidx = ii[prec + P_CIDXOFF]
    pre_spk = ii[pre + L_SPKOFF]
    post_spk = ii[post + L_SPKOFF]
    # literal flags: `pair_rows` / `pair_cols` are inlined with their branches folded
    if dense:
        for s in range(ii[pre + L_NSPK]):
            i = ii[pre_spk + s]
            xa[i] += 1
            pair_rows(w, woff, ii, ij, True, n_post, 0, 0, i, am, xb, w_min, w_max, False)
        for s in range(ii[post + L_NSPK]):
            j = ii[post_spk + s]
            xb[j] += 1
            pair_cols(w, woff, ii, ij, True, n_pre, n_post, 0, 0, j, ap, xa, w_min, w_max, False)
    else:
        for s in range(ii[pre + L_NSPK]):
            i = ii[pre_spk + s]
            xa[i] += 1
            pair_rows(w, woff, ii, ij, False, n_post, ptr, idx, i, am, xb, w_min, w_max, False)
        for s in range(ii[post + L_NSPK]):
            j = ii[post_spk + s]
            xb[j] += 1
            pair_cols(w, woff, ii, ij, False, n_pre, n_post, cptr, cidx, j, ap, xa, w_min, w_max,
                      False)


@njit(**_OPTS)
def _stdp(g, prec, fs, fp, w, ii, ij, t, n_pre, n_post, pre_spk, n_ps, post_spk, n_qs, triplet):
    """Pair or triplet STDP with lazily decayed traces: `pair_rows` for the pre spikes with
    the post traces of this step, then `pair_cols` for the post spikes with the pre traces."""
    par = ii[g + G_PAR]
    mod = fs[ii[prec + P_MODOFF]]
    a2p = fp[par + F_APLUS] * mod
    a2m = fp[par + F_AMINUS] * mod
    a3p = fp[par + F_A3PLUS] * mod
    a3m = fp[par + F_A3MINUS] * mod
    l1pre = fp[par + F_L1PRE]
    l2pre = fp[par + F_L2PRE]
    l1post = fp[par + F_L1POST]
    l2post = fp[par + F_L2POST]
    w_min = fp[par + F_WMIN]
    w_max = fp[par + F_WMAX]
    mult = ii[g + G_BOUNDS] != 0
    nearest = ii[g + G_PAIRING] != 0
    x1pre = ii[g + G_X1PRE]
    x2pre = ii[g + G_X2PRE]
    x1post = ii[g + G_X1POST]
    x2post = ii[g + G_X2POST]
    tpre = ii[g + G_TPRE]
    tpost = ii[g + G_TPOST]
    spre = ii[g + G_SCRATCH]
    spost = spre + n_pre
    woff = ii[prec + P_WOFF]
    dense = ii[prec + P_RULE] == RULE_DENSE
    ptr = ii[prec + P_PTROFF]
    idx = ii[prec + P_IDXOFF]
    cptr = ii[prec + P_CPTROFF]
    cidx = ii[prec + P_CIDXOFF]
    if n_ps > 0:
        _fill_current(fs, ii, x1post, tpost, n_post, t, l1post, spost, spre, n_pre)
        xs = fs[spost : spost + n_post]
        for s in range(n_ps):
            i = ii[pre_spk + s]
            amp = a2m
            if triplet:
                # in the state's precision: float32 state keeps float32 (vectorised) weight loops
                amp = w.dtype.type(a2m + a3m * decayed(fs[x2pre + i], ii[tpre + i], t, l2pre))
            pair_rows(w, woff, ii, ij, dense, n_post, ptr, idx, i, amp, xs, w_min, w_max, mult)
            _bump(fs, ii, x1pre, tpre, i, t, l1pre, nearest)
            if triplet:
                _bump(fs, ii, x2pre, tpre, i, t, l2pre, nearest)
            ii[tpre + i] = t
    if n_qs > 0:
        _fill_current(fs, ii, x1pre, tpre, n_pre, t, l1pre, spre, spost, n_post)
        xs = fs[spre : spre + n_pre]
        for s in range(n_qs):
            j = ii[post_spk + s]
            amp = a2p
            if triplet:
                amp = w.dtype.type(a2p + a3p * decayed(fs[x2post + j], ii[tpost + j], t, l2post))
            pair_cols(w, woff, ii, ij, dense, n_pre, n_post, cptr, cidx, j, amp, xs, w_min,
                      w_max, mult)
            _bump(fs, ii, x1post, tpost, j, t, l1post, nearest)
            if triplet:
                _bump(fs, ii, x2post, tpost, j, t, l2post, nearest)
            ii[tpost + j] = t


@njit(**_OPTS)
def _decay_factor(fs, tab, kb, k, lam):
    """exp(k lam) for k steps, from the table `_decay_table` wrote at fs[tab:] (kb >= 0) when
    k is in its range, else by exp (factors below _TINY are 0)."""
    if k <= 0:
        return 1.0
    if kb >= 0:
        n = 1 << kb
        if k < n * n:
            return float(fs[tab + (k & (n - 1))]) * float(fs[tab + n + (k >> kb)])
    f = math.exp(k * lam)
    return f if f >= _TINY else 0.0


@njit(**_OPTS)
def _elig_touch(fs, w, q, e, t_syn, t, lelig, dc, kd, w_min, w_max, tab, kb):
    """Bring the eligibility of synapse q up to step t, add dc, and apply kd * dc to w (decay
    factors from the table at fs[tab:] of log2 size kb, see `_decay_factor`)."""
    c = fs[e + q] * _decay_factor(fs, tab, kb, t - t_syn, lelig) + dc
    fs[e + q] = c
    if kd != 0.0:
        x = w[q] + kd * dc
        w[q] = min(max(x, w_min), w_max)


@njit(**_OPTS)
def _rstdp(g, prec, fs, fp, w, ii, ij, t, n_pre, n_post, pre_spk, n_ps, post_spk, n_qs):
    """Reward-modulated pair STDP with eligibility traces and a dopamine level."""
    par = ii[g + G_PAR]
    mod = fs[ii[prec + P_MODOFF]]
    ap = fp[par + F_APLUS] * mod
    am = fp[par + F_AMINUS] * mod
    l1pre = fp[par + F_L1PRE]
    l1post = fp[par + F_L1POST]
    lelig = fp[par + F_LELIG]
    ldopa = fp[par + F_LDOPA]
    w_min = fp[par + F_WMIN]
    w_max = fp[par + F_WMAX]
    gain = fp[par + F_GAIN]
    mult = ii[g + G_BOUNDS] != 0
    nearest = ii[g + G_PAIRING] != 0
    x1pre = ii[g + G_X1PRE]
    x1post = ii[g + G_X1POST]
    tpre = ii[g + G_TPRE]
    tpost = ii[g + G_TPOST]
    spre = ii[g + G_SCRATCH]
    spost = spre + n_pre
    e = ii[g + G_ELIG]
    dop = ii[g + G_DOPA]
    woff = ii[prec + P_WOFF]
    wv = w[woff:]
    dense = ii[prec + P_RULE] == RULE_DENSE
    ptr = ii[prec + P_PTROFF]
    idx = ii[prec + P_IDXOFF]
    cptr = ii[prec + P_CPTROFF]
    cidx = ii[prec + P_CIDXOFF]
    tg = ii[g + G_TG]
    # 1. a pending reward reaches every synapse
    r = fs[dop + 1]
    if r != 0.0:
        k = gain * r
        kb = _decay_table(fs, spre, n_pre + n_post, lelig)  # the scratch is free here
        for i in range(n_pre):
            ti = max(ii[tpre + i], tg)
            if dense:
                for j in range(n_post):
                    q = i * n_post + j
                    c = fs[e + q] * _decay_factor(fs, spre, kb, t - max(ti, ii[tpost + j]), lelig)
                    fs[e + q] = c
                    wv[q] = min(max(wv[q] + k * c, w_min), w_max)
            else:
                for q in range(ii[ptr + i], ii[ptr + i + 1]):
                    j = ij[idx + q]
                    c = fs[e + q] * _decay_factor(fs, spre, kb, t - max(ti, ii[tpost + j]), lelig)
                    fs[e + q] = c
                    wv[q] = min(max(wv[q] + k * c, w_min), w_max)
        fs[dop] = decayed(fs[dop], ii[g + G_TD], t, ldopa) + r
        ii[g + G_TD] = t
        fs[dop + 1] = 0.0
        ii[g + G_TG] = t
        ii[g + G_NREWARD] += 1
        tg = t
    kd = gain * decayed(fs[dop], ii[g + G_TD], t, ldopa)
    # 2. rows of the pre spikes: depression into the eligibility
    if n_ps > 0:
        _fill_current(fs, ii, x1post, tpost, n_post, t, l1post, spost, spre, n_pre)
        kb = _decay_table(fs, spre, n_pre, lelig)  # spre is free until step 3
        for s in range(n_ps):
            i = ii[pre_spk + s]
            ti = max(ii[tpre + i], tg)
            if dense:
                for j in range(n_post):
                    q = i * n_post + j
                    dc = -am * fs[spost + j]
                    if mult:
                        dc = dc * (wv[q] - w_min)
                    _elig_touch(fs, wv, q, e, max(ti, ii[tpost + j]), t, lelig, dc, kd,
                                w_min, w_max, spre, kb)
            else:
                for q in range(ii[ptr + i], ii[ptr + i + 1]):
                    j = ij[idx + q]
                    dc = -am * fs[spost + j]
                    if mult:
                        dc = dc * (wv[q] - w_min)
                    _elig_touch(fs, wv, q, e, max(ti, ii[tpost + j]), t, lelig, dc, kd,
                                w_min, w_max, spre, kb)
            _bump(fs, ii, x1pre, tpre, i, t, l1pre, nearest)
            ii[tpre + i] = t
    # 3. columns of the post spikes: potentiation into the eligibility
    if n_qs > 0:
        _fill_current(fs, ii, x1pre, tpre, n_pre, t, l1pre, spre, spost, n_post)
        kb = _decay_table(fs, spost, n_post, lelig)  # spost is no longer needed
        for s in range(n_qs):
            j = ii[post_spk + s]
            tj = max(ii[tpost + j], tg)
            if dense:
                for i in range(n_pre):
                    q = i * n_post + j
                    dc = ap * fs[spre + i]
                    if mult:
                        dc = dc * (w_max - wv[q])
                    _elig_touch(fs, wv, q, e, max(tj, ii[tpre + i]), t, lelig, dc, kd,
                                w_min, w_max, spost, kb)
            else:
                for c in range(ii[cptr + j], ii[cptr + j + 1]):
                    q = ij[cidx + 2 * c]
                    i = ij[cidx + 2 * c + 1]
                    dc = ap * fs[spre + i]
                    if mult:
                        dc = dc * (w_max - wv[q])
                    _elig_touch(fs, wv, q, e, max(tj, ii[tpre + i]), t, lelig, dc, kd,
                                w_min, w_max, spost, kb)
            _bump(fs, ii, x1post, tpost, j, t, l1post, nearest)
            ii[tpost + j] = t


@njit(**_OPTS)
def _normalise_column(fs, w, ii, ij, prec, j, n_pre, n_post, total, dense):
    """Scale the incoming weights of post neuron j so that they sum to `total`."""
    woff = ii[prec + P_WOFF]
    s = 0.0
    if dense:
        for i in range(n_pre):
            s += w[woff + i * n_post + j]
    else:
        cptr = ii[prec + P_CPTROFF]
        cidx = ii[prec + P_CIDXOFF]
        for c in range(ii[cptr + j], ii[cptr + j + 1]):
            s += w[woff + ij[cidx + 2 * c]]
    if s <= 0.0:
        return
    f = total / s
    if dense:
        for i in range(n_pre):
            w[woff + i * n_post + j] *= f
    else:
        cptr = ii[prec + P_CPTROFF]
        cidx = ii[prec + P_CIDXOFF]
        for c in range(ii[cptr + j], ii[cptr + j + 1]):
            w[woff + ij[cidx + 2 * c]] *= f


@njit(**_OPTS)
def _homeostasis(g, prec, fs, fp, w, ii, ij, t, n_pre, n_post, post_spk, n_qs):
    """Adaptive thresholds (theta += theta_plus per post spike) and weight normalisation."""
    par = ii[g + G_PAR]
    th = ii[g + G_THETA]
    th_plus = fp[par + F_THETA]
    if th >= 0 and th_plus != 0.0:
        for s in range(n_qs):
            fs[th + ii[post_spk + s]] += th_plus
    total = fp[par + F_NORM]
    if total > 0.0:
        dense = ii[prec + P_RULE] == RULE_DENSE
        every = ii[g + G_NORM_EVERY]
        if every == 0:
            for s in range(n_qs):
                _normalise_column(fs, w, ii, ij, prec, ii[post_spk + s], n_pre, n_post, total,
                                  dense)
        elif (t + 1) % every == 0:
            for j in range(n_post):
                _normalise_column(fs, w, ii, ij, prec, j, n_pre, n_post, total, dense)


@njit(**_OPTS)
def learning_step(prec, fs, fp, w, ii, ij):
    """The plasticity of one projection (code >= PLAST_PAIR) for the current step."""
    g = ii[prec + P_LREC]
    code = ii[prec + P_PLAST]
    t = ii[H_T]
    ltab = ii[H_LTAB]
    pre = ltab + ii[prec + P_PRE] * LR
    post = ltab + ii[prec + P_POST] * LR
    n_pre = ii[pre + L_N]
    n_post = ii[post + L_N]
    pre_spk = ii[pre + L_SPKOFF]
    n_ps = ii[pre + L_NSPK]
    post_spk = ii[post + L_SPKOFF]
    n_qs = ii[post + L_NSPK]
    if code == PLAST_RSTDP:
        _rstdp(g, prec, fs, fp, w, ii, ij, t, n_pre, n_post, pre_spk, n_ps, post_spk, n_qs)
    else:
        _stdp(g, prec, fs, fp, w, ii, ij, t, n_pre, n_post, pre_spk, n_ps, post_spk, n_qs,
              code == PLAST_TRIPLET)
    _homeostasis(g, prec, fs, fp, w, ii, ij, t, n_pre, n_post, post_spk, n_qs)
