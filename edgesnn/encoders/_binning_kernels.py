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
