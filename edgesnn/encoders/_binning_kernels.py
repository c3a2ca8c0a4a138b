"""numba twin of `binning.steps_to_csr` for the live hot path (dvs_pool): one pass per step
instead of a sort of every (step, channel) key."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def steps_to_csr_kernel(step, chan, n_steps, n_channels, min_count):  # noqa: ANN001, ANN201
    """(ptr, idx): per step the sorted channels occurring at least `min_count` times (as
    `binning.steps_to_csr`); step in [0, n_steps), chan in [0, n_channels)."""
    n = step.shape[0]
    need = max(1, min_count)
    start = np.zeros(n_steps + 1, np.int64)
    for i in range(n):
        start[step[i] + 1] += 1
    for k in range(n_steps):
        start[k + 1] += start[k]
    pos = start[:-1].copy()
    order = np.empty(n, np.int64)
    for i in range(n):
        s = step[i]
        order[pos[s]] = i
        pos[s] += 1
    seen = np.zeros(n_channels, np.int64)
    ptr = np.zeros(n_steps + 1, np.int64)
    idx = np.empty(n, np.int32)
    m = 0
    for k in range(n_steps):
        a, b = start[k], start[k + 1]
        first = m
        for j in range(a, b):
            c = chan[order[j]]
            seen[c] += 1
            if seen[c] == need:
                idx[m] = c
                m += 1
        for j in range(a, b):
            seen[chan[order[j]]] = 0
        if m - first > 1:
            idx[first:m] = np.sort(idx[first:m])
        ptr[k + 1] = m
    return ptr, idx[:m].copy()


@njit(cache=True, nogil=True)
def pool_channels(ev, width, height, fx, fy, gw, gh, n_pol):  # noqa: ANN001, ANN201
    """(t, channel, out of range) of DVS events in one pass: events outside the
    width x height sensor are left out (and counted); the channel of (x, y, p) is
    `p * gw * gh + (y // fy) * gw + x // fx`, without the polarity term when n_pol is 1."""
    n = ev.shape[0]
    t = np.empty(n, np.int64)
    c = np.empty(n, np.int32)
    m = 0
    for i in range(n):
        x = np.int32(ev[i].x)
        y = np.int32(ev[i].y)
        if x >= width or y >= height:
            continue
        ch = (y // fy) * gw + x // fx
        if n_pol == 2:
            ch += np.int32(ev[i].p) * (gw * gh)
        t[m] = ev[i].t
        c[m] = ch
        m += 1
    return t[:m], c[:m], n - m


@njit(cache=True, nogil=True)
def take_steps(t, c, t0, n_steps, dt, n_channels, min_count):  # noqa: ANN001, ANN201
    """`binning.SpikeHold.take` followed by `steps_to_csr_kernel`, in one call: of spikes
    (t, c), those in the n_steps steps from t0 become (ptr, idx); those after them are
    returned to hold (in order) and those before t0 are counted late. Returns
    (ptr, idx, held t, held c, late)."""
    m = t.shape[0]
    end = t0 + n_steps * dt
    n_keep = 0
    n_in = 0
    for i in range(m):
        if t[i] >= end:
            n_keep += 1
        elif t[i] >= t0:
            n_in += 1
    keep_t = np.empty(n_keep, np.int64)
    keep_c = np.empty(n_keep, np.int32)
    step = np.empty(n_in, np.int64)
    chan = np.empty(n_in, np.int32)
    a = 0
    b = 0
    for i in range(m):
        ti = t[i]
        if ti >= end:
            keep_t[a] = ti
            keep_c[a] = c[i]
            a += 1
        elif ti >= t0:
            step[b] = (ti - t0) // dt
            chan[b] = c[i]
            b += 1
    ptr, idx = steps_to_csr_kernel(step, chan, max(n_steps, 0), n_channels, min_count)
    return ptr, idx, keep_t, keep_c, m - n_keep - n_in
