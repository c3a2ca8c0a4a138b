"""The numba kernels of the core: the step, event-driven propagation, plasticity.

Every function here is pure: it reads and writes only the packed arrays described in
`edgesnn.core.layout` (and the caller's input/output buffers), allocates nothing but the small
ring-slot table of a projection with per-synapse byte delays (`_delay_byte_rows`), and is compiled
with ``cache=True, nogil=True`` (but the streaming steps of small networks, `step_f32_held` and
`step_f64_held`, which keep the GIL). One step (`step_kernel`) is, in this order:

1. every non-input layer consumes the ring-buffer slot of input that arrived at the end of the
   previous step, updates its neurons and writes the neurons that spiked into its spike list
   (the update kernel of its model, `edgesnn.core.neurons.update_layer`, a dispatch generated
   from the model registry); input layers take their spikes from the caller;
2. every projection propagates the spikes of its pre layer: only spiking neurons touch their
   outgoing synapses; a spike over a synapse of delay d is added to ring slot (t + d) mod L;
3. when learning is on, every plastic projection runs the kernel of its plasticity rule
   (`_plasticity`, a dispatch generated from the rules registered in
   `edgesnn.core.plasticity`), which updates its traces and, for the rows of the pre neurons
   and then the columns of the post neurons that spiked, its weights (so this step's spikes
   were delivered with the weights from before the update, as in W2).

A batch run (`run_kernel`) runs `_advance` step by step, as the streaming step does: one step
for every network, no loop shaped for one kind. A batch run of a big network may instead run on
two threads (`run_kernel_mt` and `run_share`: the dense rows split by columns), again with
bit-identical state.

All arithmetic stays in the dtype of the float arrays (float32 or float64).
"""

from __future__ import annotations

import numpy as np
from numba import carray, njit, types
from numba.extending import intrinsic, overload

from edgesnn.core.atomics import publish, wait_for
from edgesnn.core.layout import (
    H_DROP,
    H_LEARN,
    H_LTAB,
    H_NL,
    H_NOUT,
    H_NP,
    H_PTAB,
    H_T,
    L_BOFF,
    L_COUNT,
    L_INOFF,
    L_MODEL,
    L_N,
    L_NSLOT,
    L_NSPK,
    L_OUTOFF,
    L_SPKOFF,
    LR,
    MODEL_INPUT,
    P_CH,
    P_CIN,
    P_COUT,
    P_DELAY,
    P_DMODE,
    P_DOFF,
    P_DROFF,
    P_DWOFF,
    P_GOFF,
    P_HIN,
    P_HOUT,
    P_IDXOFF,
    P_KH,
    P_KW,
    P_NW,
    P_PAD,
    P_PLAST,
    P_POST,
    P_PRE,
    P_PTROFF,
    P_RULE,
    P_STRIDE,
    P_WIN,
    P_WOFF,
    P_WOUT,
    PR,
    RULE_CONV,
    RULE_DENSE,
    RULE_ONE,
    RULE_POOL,
    RULE_SPARSE,
    RULE_WTA,
)
from edgesnn.core.neurons import update_layer
from edgesnn.core.plasticity import dispatch
from edgesnn.core.tiny import zero_tiny

_OPTS = {"cache": True, "nogil": True, "error_model": "numpy"}


@intrinsic
def _data_ptr(typingctx, arr):
    """The data pointer of an array, typed."""
    sig = types.CPointer(arr.dtype)(arr)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        return ary.data

    return sig, codegen


@intrinsic
def _ptr_at(typingctx, base, offset, dtype):
    """A typed pointer `offset` bytes into the data of byte array `base`."""
    elem = dtype.dtype
    sig = types.CPointer(elem)(base, offset, dtype)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        raw = builder.gep(ary.data, [args[1]])
        return builder.bitcast(raw, context.get_value_type(signature.return_type))

    return sig, codegen


@njit(**_OPTS)
def _part(base, k, dtype, itemsize):
    """Array k of a packed buffer (its byte range is in the buffer's header)."""
    m = carray(_ptr_at(base, 0, np.int64), 2 * k + 2)
    n = (m[2 * k + 1] - m[2 * k]) // itemsize
    return carray(_ptr_at(base, m[2 * k], dtype), n)


def _bare(a):
    """The same memory as a C-contiguous 1-d array `a`, without a reference-counted owner: views
    of it then cost no atomic reference counting (the caller keeps `a` alive for the call).
    Other arrays are returned as they are."""
    return a


@overload(_bare, jit_options={"cache": True, "nogil": True})
def _bare_impl(a):
    if isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C":
        return lambda a: carray(_data_ptr(a), a.shape[0])
    return lambda a: a


# --------------------------------------------------------------------------------------------
# propagation: only the spikes of the pre layer touch their synapses
# --------------------------------------------------------------------------------------------


@njit(**_OPTS)
def _dense_rows(buf, wv, spk, nspk, n_post, gain):
    """buf += gain * row of every spiking pre neuron, in spike order (`_dense_block` with
    whole rows)."""
    _dense_block(buf, wv, spk, nspk, n_post, n_post, gain)


@njit(**_OPTS)
def _dense_block(buf, wv, spk, nspk, stride, m, gain):
    """buf[:m] += gain * wv[i * stride : i * stride + m] for every spiking pre neuron i, in
    spike order. Rows are taken eight at a time (the rest four, two, one) so buf is loaded and
    stored once per group; the additions keep their order (((buf + g r0) + g r1) + ...), so
    results equal the row-by-row loop exactly, for whole rows and for any block of columns."""
    s = 0
    while s + 8 <= nspk:
        r0 = wv[spk[s] * stride : spk[s] * stride + m]
        r1 = wv[spk[s + 1] * stride : spk[s + 1] * stride + m]
        r2 = wv[spk[s + 2] * stride : spk[s + 2] * stride + m]
        r3 = wv[spk[s + 3] * stride : spk[s + 3] * stride + m]
        r4 = wv[spk[s + 4] * stride : spk[s + 4] * stride + m]
        r5 = wv[spk[s + 5] * stride : spk[s + 5] * stride + m]
        r6 = wv[spk[s + 6] * stride : spk[s + 6] * stride + m]
        r7 = wv[spk[s + 7] * stride : spk[s + 7] * stride + m]
        for j in range(m):
            buf[j] = (
                buf[j]
                + gain * r0[j]
                + gain * r1[j]
                + gain * r2[j]
                + gain * r3[j]
                + gain * r4[j]
                + gain * r5[j]
                + gain * r6[j]
                + gain * r7[j]
            )
        s += 8
    if s + 4 <= nspk:
        r0 = wv[spk[s] * stride : spk[s] * stride + m]
        r1 = wv[spk[s + 1] * stride : spk[s + 1] * stride + m]
        r2 = wv[spk[s + 2] * stride : spk[s + 2] * stride + m]
        r3 = wv[spk[s + 3] * stride : spk[s + 3] * stride + m]
        for j in range(m):
            buf[j] = buf[j] + gain * r0[j] + gain * r1[j] + gain * r2[j] + gain * r3[j]
        s += 4
    if s + 2 <= nspk:
        r0 = wv[spk[s] * stride : spk[s] * stride + m]
        r1 = wv[spk[s + 1] * stride : spk[s + 1] * stride + m]
        for j in range(m):
            buf[j] = buf[j] + gain * r0[j] + gain * r1[j]
        s += 2
    if s < nspk:
        r0 = wv[spk[s] * stride : spk[s] * stride + m]
        for j in range(m):
            buf[j] = buf[j] + gain * r0[j]


@njit(**_OPTS)
def _slot_start(ii, prec, post, n_post, t):
    """Offset in fs of the ring slot (and channel) where projection `prec` delivers at step t:
    the input of step t + 1 + its delay."""
    base = ii[post + L_BOFF] + ii[prec + P_CH] * n_post
    nslot = ii[post + L_NSLOT]
    return base if nslot == 1 else base + ((t + ii[prec + P_DELAY]) % nslot) * 2 * n_post


@njit(**_OPTS)
def _csr_events(ptr, spk, nspk):
    """Synapses of the spiking rows of a CSR projection."""
    nev = 0
    for s in range(nspk):
        nev += ptr[spk[s] + 1] - ptr[spk[s]]
    return nev


@njit(**_OPTS, inline="always")
def _propagate(prec, fs, fp, w, ii, ij, t):
    """Deliver the spikes of the pre layer of projection `prec`; returns synaptic events."""
    ltab = ii[H_LTAB]
    pre = ltab + ii[prec + P_PRE] * LR
    post = ltab + ii[prec + P_POST] * LR
    nspk = ii[pre + L_NSPK]
    if nspk == 0:
        return 0
    so = ii[pre + L_SPKOFF]
    spk = ii[so : so + nspk]
    n_post = ii[post + L_N]
    nslot = ii[post + L_NSLOT]
    base = ii[post + L_BOFF] + ii[prec + P_CH] * n_post
    stride_slot = 2 * n_post
    rule = ii[prec + P_RULE]
    woff = ii[prec + P_WOFF]
    wv = w[woff : woff + ii[prec + P_NW]]
    gain = fp[ii[prec + P_GOFF]]
    tgt = _slot_start(ii, prec, post, n_post, t)
    buf = fs[tgt : tgt + n_post]
    if rule == RULE_DENSE:
        _dense_block(buf, wv, spk, nspk, n_post, n_post, gain)
        return nspk * n_post
    # the other rules live in their own function: inlined here they make LLVM compile the
    # dense loop above worse (measured: the dense W1 step about 0.2 us slower)
    return _propagate_other(
        prec, fs, w, ii, ij, t, pre, spk, nspk, n_post, nslot, base, stride_slot, rule, wv, gain,
        buf,
    )


@njit(**_OPTS)
def _delay_byte_rows(ring, db, wv, spk, nspk, n_post, nslot, stride_slot, t, gain):
    """Add the rows of the spiking pre neurons, each synapse into the ring slot of its delay
    (byte `db[i * n_post + j]`, < nslot as the packed-record check ensures): P_DMODE 2 of
    `_propagate_other`. Each delay's slot start is looked up in a table made once per call:
    computing d * stride + j and its wrap-around per synapse made D1 about 4x slower (measured).
    The slot start is a multiple of the stride and j < stride, so wrapping the start wraps the
    sum exactly as P_DMODE 1 does: the same cells get the same additions in the same order."""
    span = nslot * stride_slot
    bt = (t % nslot) * stride_slot
    slot = np.empty(nslot, np.int64)
    for d in range(nslot):
        x = bt + d * stride_slot
        slot[d] = x - span if x >= span else x
    for s in range(nspk):
        a = spk[s] * n_post
        rd = db[a : a + n_post]
        rw = wv[a : a + n_post]
        for j in range(n_post):
            ring[np.uint64(slot[rd[j]] + j)] += gain * rw[j]


@njit(**_OPTS)
def _propagate_other(
    prec, fs, w, ii, ij, t, pre, spk, nspk, n_post, nslot, base, stride_slot, rule, wv, gain, buf
):
    """`_propagate` for the rules other than dense; returns synaptic events."""
    nev = 0
    if rule == RULE_SPARSE:
        n_pre = ii[pre + L_N]
        po = ii[prec + P_PTROFF]
        ptr = ii[po : po + n_pre + 1]
        nsyn = ptr[n_pre]
        dmode = ii[prec + P_DMODE]
        dw = ii[prec + P_DWOFF]
        if dw >= 0:
            # dense enough to be delivered as dense rows (`network.DENSE_ROWS_DENSITY`): absent
            # synapses hold a zero whose product with the gain is -0, which adds nothing, so
            # the sums equal the synapse-by-synapse loop below exactly
            _dense_rows(buf, w[dw : dw + n_pre * n_post], spk, nspk, n_post, gain)
            nev = _csr_events(ptr, spk, nspk)
        elif dmode == 0:
            io = ii[prec + P_IDXOFF]
            idx = ij[io : io + nsyn]
            for s in range(nspk):
                i = spk[s]
                a = ptr[i]
                m = ptr[i + 1] - a
                ri = idx[a : a + m]  # row views from 0: no negative-index fix-ups
                rw = wv[a : a + m]
                for k in range(m):
                    buf[np.uint64(ri[k])] += gain * rw[k]
                nev += m
        elif dmode == 2:
            # every pair in row-major order (a dense matrix of per-synapse delays), the delays
            # one byte each (read as uint8 over ij's memory, no copy): the ring arithmetic of
            # P_DMODE 1 below, rows and targets in the same order, so the sums are bit for bit
            db = carray(_ptr_at(ij, ii[prec + P_DOFF], np.uint8), nsyn)
            ring = fs[base : base + (nslot - 1) * stride_slot + n_post]
            _delay_byte_rows(ring, db, wv, spk, nspk, n_post, nslot, stride_slot, t, gain)
            nev = nspk * n_post
        else:
            # a spike over a synapse of delay d lands in ring slot (t + d) mod nslot: with the
            # synapse's offset d * stride + target packed (P_DROFF), that costs one addition and
            # one wrap-around subtraction per synapse instead of an integer division (row views
            # and unsigned ring indices: no negative-index fix-ups in the loop)
            ro = ij[ii[prec + P_DROFF] : ii[prec + P_DROFF] + nsyn]
            ring = fs[base : base + (nslot - 1) * stride_slot + n_post]
            span = nslot * stride_slot
            bt = (t % nslot) * stride_slot
            for s in range(nspk):
                i = spk[s]
                a = ptr[i]
                m = ptr[i + 1] - a
                rr = ro[a : a + m]
                rw = wv[a : a + m]
                for k in range(m):
                    x = bt + rr[k]
                    x = x - span if x >= span else x
                    ring[np.uint64(x)] += gain * rw[k]
                nev += m
    elif rule == RULE_ONE:
        for s in range(nspk):
            i = spk[s]
            buf[i] += gain * wv[i]
        nev = nspk
    elif rule == RULE_WTA:
        x = gain * wv[0]
        for s in range(nspk):
            i = spk[s]
            for j in range(i):
                buf[j] += x
            for j in range(i + 1, n_post):
                buf[j] += x
        nev = nspk * (n_post - 1)
    elif rule == RULE_CONV:
        c_in = ii[prec + P_CIN]
        h_in = ii[prec + P_HIN]
        w_in = ii[prec + P_WIN]
        c_out = ii[prec + P_COUT]
        h_out = ii[prec + P_HOUT]
        w_out = ii[prec + P_WOUT]
        kh = ii[prec + P_KH]
        kw = ii[prec + P_KW]
        st = ii[prec + P_STRIDE]
        pad = ii[prec + P_PAD]
        plane = h_out * w_out
        kstep = c_in * kh * kw
        for s in range(nspk):
            i = spk[s]
            c = i // (h_in * w_in)
            y = (i // w_in) % h_in
            x = i % w_in
            for ky in range(kh):
                ny = y + pad - ky
                if ny < 0 or ny % st != 0:
                    continue
                oy = ny // st
                if oy >= h_out:
                    continue
                for kx in range(kw):
                    nx = x + pad - kx
                    if nx < 0 or nx % st != 0:
                        continue
                    ox = nx // st
                    if ox >= w_out:
                        continue
                    kbase = (c * kh + ky) * kw + kx
                    o = oy * w_out + ox
                    for co in range(c_out):
                        buf[o + co * plane] += gain * wv[kbase + co * kstep]
                    nev += c_out
    elif rule == RULE_POOL:
        h_in = ii[prec + P_HIN]
        w_in = ii[prec + P_WIN]
        h_out = ii[prec + P_HOUT]
        w_out = ii[prec + P_WOUT]
        size_y = ii[prec + P_KH]
        size_x = ii[prec + P_KW]
        st = ii[prec + P_STRIDE]
        x_w = gain * wv[0]
        for s in range(nspk):
            i = spk[s]
            c = i // (h_in * w_in)
            y = (i // w_in) % h_in
            x = i % w_in
            oy0 = max(0, (y - size_y + st) // st)
            oy1 = min(h_out - 1, y // st)
            ox0 = max(0, (x - size_x + st) // st)
            ox1 = min(w_out - 1, x // st)
            for oy in range(oy0, oy1 + 1):
                for ox in range(ox0, ox1 + 1):
                    buf[(c * h_out + oy) * w_out + ox] += x_w
                    nev += 1
    return nev


# --------------------------------------------------------------------------------------------
# plasticity hook: traces decay every step, rule kernels touch only rows/columns that spiked
# --------------------------------------------------------------------------------------------


#: the kernel of every plastic projection: a dispatch over the rule codes generated from the
#: rules registered in `edgesnn.core.plasticity` (the rules are plugins: see there)
_plasticity = dispatch()


# --------------------------------------------------------------------------------------------
# the step and the batch run
# --------------------------------------------------------------------------------------------


@njit(**_OPTS, inline="always")
def _take_inputs(ii, in_idx, in_lo, in_hi):
    """Input layers take their spikes from in_idx[in_lo:in_hi]; the rest is counted as
    dropped."""
    nl = ii[H_NL]
    ltab = ii[H_LTAB]
    taken = 0
    for l in range(nl):
        rec = ltab + l * LR
        if ii[rec + L_MODEL] == MODEL_INPUT:
            off = ii[rec + L_INOFF]
            n = ii[rec + L_N]
            spk = ii[rec + L_SPKOFF]
            ns = 0
            for q in range(in_lo, in_hi):
                c = in_idx[q] - off
                if 0 <= c < n and ns < n:  # repeated indices never overrun the spike list
                    ii[spk + ns] = c
                    ns += 1
            ii[rec + L_NSPK] = ns
            taken += ns
            ii[rec + L_COUNT] += ns
    ii[H_DROP] += (in_hi - in_lo) - taken


@njit(**_OPTS)
def _flush_tiny(fs, t):
    """`tiny.zero_tiny` on one chunk of fs, the chunk of step t: every entry once in 64 steps.
    So a value that decays by a factor of at least 0.76 per step (a time constant of 3.6 steps
    or more) is zeroed before it can turn subnormal, one that decays faster is subnormal for at
    most 64 steps, and one decaying by a factor below 1/2 reaches zero on its own. Without it,
    W1's 400 neurons after 4 000 silent steps took 13.5 us a step against 0.6."""
    n = fs.shape[0]
    size = (n + 63) >> 6  # 64 chunks: no division
    lo = (t & 63) * size
    if lo < n:
        zero_tiny(fs[lo : min(n, lo + size)])


@njit(**_OPTS, inline="always")
def _update_layers(fs, fp, ii, t):
    """Every non-input layer of step t consumes its ring slot and updates its neurons. It reads
    nothing the input layers of step t take: a spike reaches the next layer one step later.
    First, one chunk of the state loses its values too small to matter (`_flush_tiny`)."""
    _flush_tiny(fs, t)
    nl = ii[H_NL]
    ltab = ii[H_LTAB]
    for l in range(nl):
        rec = ltab + l * LR
        if ii[rec + L_MODEL] != MODEL_INPUT:
            nslot = ii[rec + L_NSLOT]
            slot = 0 if nslot == 1 else (t + nslot - 1) % nslot  # no division when no delays
            ns = update_layer(rec, fs, fp, ii, slot)
            ii[rec + L_NSPK] = ns
            ii[rec + L_COUNT] += ns


@njit(**_OPTS, inline="always")
def _inputs_and_update(fs, fp, ii, in_idx, in_lo, in_hi, t):
    """The first half of a step: input layers take their spikes from in_idx[in_lo:in_hi]
    (the rest is counted as dropped), every other layer updates its neurons."""
    _take_inputs(ii, in_idx, in_lo, in_hi)
    _update_layers(fs, fp, ii, t)


@njit(**_OPTS, inline="always")
def _deliver(fs, fp, w, ii, ij, t):
    """The second half of step t: every projection delivers its pre layer's spikes, then the
    plastic ones learn. Returns synaptic events."""
    ptab = ii[H_PTAB]
    np_ = ii[H_NP]
    nev = 0
    for p in range(np_):
        nev += _propagate(ptab + p * PR, fs, fp, w, ii, ij, t)
    if ii[H_LEARN] != 0:
        for p in range(np_):
            prec = ptab + p * PR
            if ii[prec + P_PLAST] != 0:
                _plasticity(prec, fs, fp, w, ii, ij)
    return nev


@njit(**_OPTS, inline="always")
def _advance(fs, fp, w, ii, ij, in_idx, in_lo, in_hi):
    """One step; the input spikes are in_idx[in_lo:in_hi]. Returns synaptic events."""
    t = ii[H_T]
    _inputs_and_update(fs, fp, ii, in_idx, in_lo, in_hi, t)
    nev = _deliver(fs, fp, w, ii, ij, t)
    ii[H_T] = t + 1
    return nev


# --------------------------------------------------------------------------------------------
# runs one step ahead: the output of step k + 1 as soon as the input of step k has run
# --------------------------------------------------------------------------------------------


@njit(**_OPTS, inline="always")
def _advance_ahead(fs, fp, w, ii, ij, in_idx, in_lo, in_hi):
    """`_advance` one step ahead: step t takes its input (in_idx[in_lo:in_hi]), delivers and
    learns, then the non-input layers update for step t + 1 (nothing of step t + 1's input
    reaches them in that step). Returns synaptic events."""
    t = ii[H_T]
    _take_inputs(ii, in_idx, in_lo, in_hi)
    nev = _deliver(fs, fp, w, ii, ij, t)
    ii[H_T] = t + 1
    _update_layers(fs, fp, ii, t + 1)
    return nev


@njit(**_OPTS)
def prime_ahead(fs, fp, ii, out):
    """Update the non-input layers for the step about to run (H_T) and write their output
    spikes into out; returns how many. From then on `run_ahead` runs the network one step
    ahead."""
    _update_layers(_bare(fs), _bare(fp), _bare(ii), ii[H_T])
    return _collect(ii, _bare(out), 0)


@njit(**_OPTS)
def run_ahead(fs, fp, w, ii, ij, in_ptr, in_idx, k0, k1, out_ptr, out_idx, stats):
    """`run_kernel` one step ahead (after `prime_ahead`): step k takes its input, delivers and
    learns, then the non-input layers update for step k + 1 at once, since nothing of step
    k + 1's input reaches them in that step; the output recorded for step k is theirs of step
    k + 1. The same operations in the same order as `run_kernel`, so the same state bit for
    bit. Output layers must not be input layers."""
    fs = _bare(fs)
    fp = _bare(fp)
    w = _bare(w)
    ii = _bare(ii)
    ij = _bare(ij)
    in_idx = _bare(in_idx)
    out_idx = _bare(out_idx)
    cap = out_idx.shape[0]
    n_out = ii[H_NOUT]
    pos = out_ptr[k0]
    nev = 0
    for k in range(k0, k1):
        if pos + n_out > cap:
            stats[0] += nev
            return k
        nev += _advance_ahead(fs, fp, w, ii, ij, in_idx, in_ptr[k], in_ptr[k + 1])
        pos = _collect(ii, out_idx, pos)
        out_ptr[k + 1] = pos
    stats[0] += nev
    return k1


# --------------------------------------------------------------------------------------------
# batch runs on two threads: the dense rows of every projection are split by columns
# --------------------------------------------------------------------------------------------

#: flags of a two-thread run (an int64 array, entries one cache line apart): how far thread 0
#: lets thread 1 go, how far thread 1 got, and a stop flag. Positions count projections:
#: k * (projections + 1) + p is "step k, before projection p".
MT_ALLOWED, MT_DONE, MT_STOP = 0, 8, 16


@njit(**_OPTS)
def mt_split(n_post):
    """First column of thread 1's share of an n_post-column projection: half, rounded up to
    16 columns (a 64-byte line of float32), so the threads write whole lines of a row that
    starts on one."""
    return min(n_post, ((n_post // 2 + 15) // 16) * 16)


@njit(**_OPTS)
def _as_rows(ii, prec):
    """Whether projection `prec` is delivered as dense rows (dense, or sparse stored so)."""
    rule = ii[prec + P_RULE]
    return rule == RULE_DENSE or (rule == RULE_SPARSE and ii[prec + P_DWOFF] >= 0)


@njit(**_OPTS)
def _next_other(ii, p):
    """Index of the first projection from p on not delivered as dense rows (or their count)."""
    ptab = ii[H_PTAB]
    np_ = ii[H_NP]
    while p < np_ and _as_rows(ii, ptab + p * PR):
        p += 1
    return p


@njit(**_OPTS)
def _rows_share(prec, fs, fp, w, ii, t, tid):
    """Thread tid's half of the columns of projection `prec`, delivered as dense rows (the
    same sums as `_propagate`, bit for bit); returns synaptic events (thread 0 counts them)."""
    ltab = ii[H_LTAB]
    pre = ltab + ii[prec + P_PRE] * LR
    post = ltab + ii[prec + P_POST] * LR
    nspk = ii[pre + L_NSPK]
    if nspk == 0:
        return 0
    n_post = ii[post + L_N]
    so = ii[pre + L_SPKOFF]
    spk = ii[so : so + nspk]
    tgt = _slot_start(ii, prec, post, n_post, t)
    dense = ii[prec + P_RULE] == RULE_DENSE
    woff = ii[prec + P_WOFF] if dense else ii[prec + P_DWOFF]  # dense rows of a sparse one
    wv = w[woff:]
    c = mt_split(n_post)
    c0 = 0 if tid == 0 else c
    c1 = c if tid == 0 else n_post
    _dense_block(fs[tgt + c0 : tgt + c1], wv[c0:], spk, nspk, n_post, c1 - c0,
                 fp[ii[prec + P_GOFF]])
    if tid != 0:
        return 0
    if dense:
        return nspk * n_post
    po = ii[prec + P_PTROFF]
    return _csr_events(ii[po : po + ii[pre + L_N] + 1], spk, nspk)


@njit(**_OPTS)
def run_kernel_mt(fs, fp, w, ii, ij, in_ptr, in_idx, k0, k1, out_ptr, out_idx, stats, flags):
    """Thread 0 of a two-thread batch run (`run_kernel`'s arguments and the flags it shares
    with `run_share`, both positions set to k0 * (projections + 1)). Per step it takes the
    input and updates every layer; the projections delivered as dense rows are split by
    columns between the threads, the others run here while thread 1 waits, in projection order,
    so every sum is made in the order of `run_kernel`. Not for learning networks (plasticity
    reads whole rows and columns). Stops early as `run_kernel` does (setting the stop flag);
    returns the next step to run."""
    fs = _bare(fs)
    fp = _bare(fp)
    w = _bare(w)
    ii = _bare(ii)
    ij = _bare(ij)
    in_idx = _bare(in_idx)
    out_idx = _bare(out_idx)
    cap = out_idx.shape[0]
    n_out = ii[H_NOUT]
    ptab = ii[H_PTAB]
    np_ = ii[H_NP]
    pos = out_ptr[k0]
    for k in range(k0, k1):
        if pos + n_out > cap:
            publish(flags, MT_STOP, 1)
            return k
        at = k * (np_ + 1)
        t = ii[H_T]
        _inputs_and_update(fs, fp, ii, in_idx, in_ptr[k], in_ptr[k + 1], t)
        publish(flags, MT_ALLOWED, at + _next_other(ii, 0))
        nev = 0
        for p in range(np_):
            prec = ptab + p * PR
            if _as_rows(ii, prec):
                nev += _rows_share(prec, fs, fp, w, ii, t, 0)
            else:  # after thread 1 has delivered every projection before it
                wait_for(flags, MT_DONE, at + p, MT_STOP)
                nev += _propagate(prec, fs, fp, w, ii, ij, t)
                publish(flags, MT_ALLOWED, at + _next_other(ii, p + 1))
        wait_for(flags, MT_DONE, at + np_, MT_STOP)
        ii[H_T] = t + 1
        stats[0] += nev
        pos = _collect(ii, out_idx, pos)
        out_ptr[k + 1] = pos
    return k1


@njit(**_OPTS)
def run_share(fs, fp, w, ii, k0, k1, flags):
    """Thread 1 of a two-thread batch run (see `run_kernel_mt`): its half of the columns of
    every projection delivered as dense rows, each once thread 0 allows it. Returns when the
    steps are done or thread 0 stops."""
    fs = _bare(fs)
    fp = _bare(fp)
    w = _bare(w)
    ii = _bare(ii)
    ptab = ii[H_PTAB]
    np_ = ii[H_NP]
    for k in range(k0, k1):
        at = k * (np_ + 1)
        for p in range(np_):
            prec = ptab + p * PR
            if _as_rows(ii, prec):
                if not wait_for(flags, MT_ALLOWED, at + p + 1, MT_STOP):
                    return
                _rows_share(prec, fs, fp, w, ii, ii[H_T], 1)
            publish(flags, MT_DONE, at + p + 1)
        if np_ == 0:
            publish(flags, MT_DONE, at)


@njit(**_OPTS, inline="always")
def _collect(ii, out, pos):
    """Append this step's output-layer spikes (in output index space) to out[pos:]."""
    nl = ii[H_NL]
    ltab = ii[H_LTAB]
    for l in range(nl):
        rec = ltab + l * LR
        o = ii[rec + L_OUTOFF]
        if o >= 0:
            spk = ii[rec + L_SPKOFF]
            for s in range(ii[rec + L_NSPK]):
                out[pos] = o + ii[spk + s]
                pos += 1
    return pos


@njit(**_OPTS)
def step_kernel(fs, fp, w, ii, ij, in_idx, out):
    """One step driven by in_idx (indices into the concatenated input layers); writes the
    output spikes into out and returns how many."""
    fs = _bare(fs)
    fp = _bare(fp)
    w = _bare(w)
    ii = _bare(ii)
    ij = _bare(ij)
    _advance(fs, fp, w, ii, ij, _bare(in_idx), 0, in_idx.shape[0])
    return _collect(ii, _bare(out), 0)


@njit(**_OPTS)
def _step_packed(base, in_idx, fs, fp, w):
    """`step_kernel` on the arrays of a packed buffer (see `network._one_buffer`)."""
    ii = _part(base, 3, np.int64, 8)
    ij = _part(base, 4, np.int32, 4)
    out = _part(base, 5, np.int32, 4)
    _advance(fs, fp, w, ii, ij, _bare(in_idx), 0, in_idx.shape[0])
    return _collect(ii, out, 0)


@njit(**_OPTS)
def step_f32(base, in_idx):
    """One streaming step of a float32 network packed in the byte buffer `base` (two
    arguments: a numba call costs about 60 ns more per array argument)."""
    fs = _part(base, 0, np.float32, 4)
    fp = _part(base, 1, np.float32, 4)
    w = _part(base, 2, np.float32, 4)
    return _step_packed(base, in_idx, fs, fp, w)


@njit(**_OPTS)
def step_f64(base, in_idx):
    """`step_f32` for a float64 network."""
    fs = _part(base, 0, np.float64, 8)
    fp = _part(base, 1, np.float64, 8)
    w = _part(base, 2, np.float64, 8)
    return _step_packed(base, in_idx, fs, fp, w)


@njit(**_OPTS)
def _step_packed_ahead(base, in_idx, fs, fp, w):
    """One step of `run_ahead` on the arrays of a packed buffer; returns the output spikes of
    the next step (in the buffer's out array)."""
    ii = _part(base, 3, np.int64, 8)
    ij = _part(base, 4, np.int32, 4)
    _advance_ahead(fs, fp, w, ii, ij, _bare(in_idx), 0, in_idx.shape[0])
    return _collect(ii, _part(base, 5, np.int32, 4), 0)


@njit(**_OPTS)
def step_ahead_f32(base, in_idx):
    """`step_f32` one step ahead (after `prime_ahead`)."""
    return _step_packed_ahead(base, in_idx, _part(base, 0, np.float32, 4),
                              _part(base, 1, np.float32, 4), _part(base, 2, np.float32, 4))


@njit(**_OPTS)
def step_ahead_f64(base, in_idx):
    """`step_f64` one step ahead (after `prime_ahead`)."""
    return _step_packed_ahead(base, in_idx, _part(base, 0, np.float64, 8),
                              _part(base, 1, np.float64, 8), _part(base, 2, np.float64, 8))


#: the streaming step of a small network holds the GIL: releasing and taking it back costs
#: about 35 ns a call (a tenth of a small step), and a worker thread that released it may then
#: wait for the event loop's thread to give it back; a big network's step releases it
_HELD = {"cache": True, "error_model": "numpy"}


@njit(**_HELD)
def step_f32_held(base, in_idx):
    """`step_f32` without releasing the GIL."""
    return step_f32(base, in_idx)


@njit(**_HELD)
def step_f64_held(base, in_idx):
    """`step_f64` without releasing the GIL."""
    return step_f64(base, in_idx)


_BASE_HEAD = 128  # bytes: 12 int64 (start, end) byte offsets of fs, fp, w, ii, ij, out, padded


@njit(**_OPTS)
def run_kernel(fs, fp, w, ii, ij, in_ptr, in_idx, k0, k1, out_ptr, out_idx, stats):
    """Steps k0..k1-1 of a CSR input; output CSR into out_ptr/out_idx. Stops early when
    out_idx could overflow and returns the next step to run. stats[0] += synaptic events."""
    fs = _bare(fs)
    fp = _bare(fp)
    w = _bare(w)
    ii = _bare(ii)
    ij = _bare(ij)
    in_idx = _bare(in_idx)
    out_idx = _bare(out_idx)
    cap = out_idx.shape[0]
    n_out = ii[H_NOUT]
    pos = out_ptr[k0]
    nev = 0  # counted here, stored once: a store per step would make every table load repeat
    for k in range(k0, k1):
        if pos + n_out > cap:
            stats[0] += nev
            return k
        nev += _advance(fs, fp, w, ii, ij, in_idx, in_ptr[k], in_ptr[k + 1])
        pos = _collect(ii, out_idx, pos)
        out_ptr[k + 1] = pos
    stats[0] += nev
    return k1
