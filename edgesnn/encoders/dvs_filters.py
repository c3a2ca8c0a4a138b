"""DVS event filters: region of interest, hot-pixel suppression, background activity, refractory.

All filters are polarity-agnostic, keep state across batches (so a stream can be filtered in
any chunking with the same result) and run in one numba pass, in this order:

1. region of interest: keep x0 <= x < x1 and y0 <= y < y1;
2. hot pixels: time is cut into windows of `hot_window_us`; an event is dropped when its pixel
   already had `hot_max_events` events in the current window, or had more than that in the
   previous window (a pixel flagged hot stays muted for one whole window);
3. background activity (nearest-neighbour correlation): an event passes only when one of its
   8 neighbours had an event (of any kind, before filtering) within the last `ba_us`;
4. refractory period: an event is dropped when its pixel passed an event less than
   `refractory_us` earlier.

A parameter of 0 disables its filter.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from edgesnn.events import DVS_EVENT

NEVER = -(1 << 62)
F_ROI, F_HOT, F_BA, F_REFRACTORY = 0, 1, 2, 3
FILTER_NAMES = ("roi", "hot_pixel", "background_activity", "refractory")


@njit(cache=True, nogil=True)
def filter_kernel(ev, out, width, height, roi, hot_window_us, hot_max, hot_count, hot_flag,  # noqa: ANN001, ANN201
                  hot_win, ba_us, ba_last, refr_us, refr_last, cnt):
    """Apply the enabled filters to `ev` (in-range events), writing survivors to `out`.

    State arrays are per pixel (y * width + x); `hot_win[0]` is the current window index and
    `hot_win[1]` is 1 once a window started. Returns the number of events written.
    """
    n = 0
    for i in range(ev.shape[0]):
        x = np.int64(ev[i].x)
        y = np.int64(ev[i].y)
        t = np.int64(ev[i].t)
        if x < roi[0] or x >= roi[2] or y < roi[1] or y >= roi[3]:
            cnt[0] += 1
            continue
        pix = y * width + x
        if hot_window_us > 0:
            w = t // hot_window_us
            if hot_win[1] == 0 or w != hot_win[0]:
                nxt = hot_win[1] != 0 and w == hot_win[0] + 1
                for k in range(hot_count.shape[0]):
                    hot_flag[k] = 1 if (nxt and hot_count[k] > hot_max) else 0
                    hot_count[k] = 0
                hot_win[0] = w
                hot_win[1] = 1
            c = hot_count[pix]
            hot_count[pix] = c + 1
            if hot_flag[pix] != 0 or c >= hot_max:
                cnt[1] += 1
                continue
        if ba_us > 0:
            ok = False
            lim = t - ba_us
            for dy in range(-1, 2):
                yy = y + dy
                if yy < 0 or yy >= height:
                    continue
                for dx in range(-1, 2):
                    xx = x + dx
                    if (dx == 0 and dy == 0) or xx < 0 or xx >= width:
                        continue
                    if ba_last[yy * width + xx] >= lim:
                        ok = True
            ba_last[pix] = t
            if not ok:
                cnt[2] += 1
                continue
        if refr_us > 0:
            if t - refr_last[pix] < refr_us:
                cnt[3] += 1
                continue
            refr_last[pix] = t
        out[n] = ev[i]
        n += 1
    return n


class DVSFilter:
    """Stateful chain of the filters above for one width x height sensor."""

    def __init__(self, width: int, height: int, *, roi: list[int] | tuple[int, ...] | None = None,
                 hot_window_us: int = 0, hot_max_events: int = 0, ba_us: int = 0,
                 refractory_us: int = 0):
        self.width, self.height = int(width), int(height)
        npix = self.width * self.height
        r = list(roi) if roi else [0, 0, self.width, self.height]
        if len(r) != 4 or r[0] >= r[2] or r[1] >= r[3]:
            raise ValueError("roi must be [x0, y0, x1, y1] with x0 < x1 and y0 < y1")
        self.roi = np.array(r, np.int64)
        self.hot_window_us = int(hot_window_us) if hot_max_events > 0 else 0
        self.hot_max = int(hot_max_events)
        self.ba_us = int(ba_us)
        self.refractory_us = int(refractory_us)
        hot_n = npix if self.hot_window_us else 1
        self.hot_count = np.zeros(hot_n, np.int32)
        self.hot_flag = np.zeros(hot_n, np.uint8)
        self.hot_win = np.zeros(2, np.int64)
        self.ba_last = np.full(npix if self.ba_us else 1, NEVER, np.int64)
        self.refr_last = np.full(npix if self.refractory_us else 1, NEVER, np.int64)
        self.counts = np.zeros(4, np.int64)

    @property
    def active(self) -> bool:
        """Whether any filter is enabled."""
        full = self.roi.tolist() == [0, 0, self.width, self.height]
        return not full or bool(self.hot_window_us or self.ba_us or self.refractory_us)

    def __call__(self, ev: np.ndarray) -> np.ndarray:
        """Events of `ev` (DVS_EVENT, inside the sensor, in time order) that pass."""
        out = np.empty(len(ev), DVS_EVENT)
        n = filter_kernel(ev, out, self.width, self.height, self.roi, self.hot_window_us,
                          self.hot_max, self.hot_count, self.hot_flag, self.hot_win, self.ba_us,
                          self.ba_last, self.refractory_us, self.refr_last, self.counts)
        return out[:n]

    @property
    def counters(self) -> dict[str, Any]:
        """Events dropped by each filter."""
        return {f"dropped_{k}": int(v) for k, v in zip(FILTER_NAMES, self.counts)}
