"""Bulk decoding of AEStream datagrams: every datagram read from the socket in one wake-up
decoded by one kernel call (the per-datagram rules of `_kernels.aestream_decode`)."""

from __future__ import annotations

import numpy as np
from numba import njit

from ._kernels import C_OUT_OF_RANGE, _unwrap32


@njit(cache=True, nogil=True)
def aestream_decode_many(words, ends, out, ev_ends, st, cnt, width, height, t_now):  # noqa: ANN001, ANN201
    """Datagrams of whole words back to back in `words`, datagram i ending at word ends[i];
    decoded as `aestream_decode` decodes each. ev_ends[i] = events written up to the end of
    datagram i. Returns (events, datagrams with a torn last event)."""
    n = 0
    bad = 0
    s = 0
    for d in range(ends.shape[0]):
        e = ends[d]
        i = s
        while i < e:
            w = np.int64(words[i])
            if w >> 31:
                t = t_now
                i += 1
            else:
                if i + 1 >= e:
                    bad += 1
                    break
                t = _unwrap32(np.int64(words[i + 1]), st, cnt)
                i += 2
            x = (w >> 16) & 0x7FFF
            y = w & 0x7FFF
            if x >= width or y >= height:
                cnt[C_OUT_OF_RANGE] += 1
                continue
            out[n].t = t
            out[n].x = x
            out[n].y = y
            out[n].p = (w >> 15) & 1
            n += 1
        ev_ends[d] = n
        s = e
    return n, bad
