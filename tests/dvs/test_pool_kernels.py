"""dvs_pool's one-pass kernels (`pool_channels`, `take_steps`) against the numpy steps they
replace: channel arithmetic with a range check, `SpikeHold.take` and `steps_to_csr`."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgesnn.components import BuildContext
from edgesnn.encoders.binning import SpikeHold, steps_to_csr
from edgesnn.encoders.dvs import DVSPoolEncoder
from edgesnn.events import DVS_EVENT, EventBatch


class Reference:
    """dvs_pool as numpy steps: range check, channels, `SpikeHold.add` / `take`,
    `steps_to_csr`."""

    def __init__(self, w: int, h: int, gw: int, gh: int, split: bool, dt: int, min_ev: int):
        self.w, self.h, self.gw, self.gh, self.split = w, h, gw, gh, split
        self.hold = SpikeHold(dt)
        self.min_ev = min_ev
        self.n_ch = (2 if split else 1) * gw * gh
        self.out_of_range = 0

    def encode(self, b: EventBatch) -> tuple[int, np.ndarray, np.ndarray] | None:
        ev = b.events
        ok = (ev["x"] < self.w) & (ev["y"] < self.h)
        self.out_of_range += int((~ok).sum())
        ev = ev[ok]
        fx, fy = math.ceil(self.w / self.gw), math.ceil(self.h / self.gh)
        c = (ev["y"].astype(np.int32) // fy) * self.gw + ev["x"].astype(np.int32) // fx
        if self.split:
            c += ev["p"].astype(np.int32) * (self.gw * self.gh)
        t, c, t0, n = self.hold.add(b.t_start_us, b.t_end_us, ev["t"].astype(np.int64), c)
        taken = self.hold.take(t, c, t0, n)
        if taken is None:
            return None
        step, chan, _ = taken
        ptr, idx = steps_to_csr(step, chan, n, self.n_ch, self.min_ev)
        return t0, ptr, idx


@pytest.mark.parametrize("split,min_ev,seed", [(True, 1, 0), (False, 2, 1), (True, 3, 2)])
def test_dvs_pool_kernels_equal_the_numpy_steps(split: bool, min_ev: int, seed: int) -> None:
    """Random batches with events outside the sensor, events older than the steps already
    closed (late), events beyond the batch's end (held), empty batches and repeated pixels:
    the same rasters, held spikes and counters as the numpy steps."""
    rng = np.random.default_rng(seed)
    w, h, gw, gh, dt = 40, 30, 7, 4, 1000
    params = DVSPoolEncoder.schema.validate(
        {"grid": [gw, gh], "sensor": [w, h], "polarity": "split" if split else "merge",
         "min_events": min_ev}, "", [])
    enc = DVSPoolEncoder("pool", params, BuildContext(dt_us=dt))
    ref = Reference(w, h, gw, gh, split, dt, min_ev)
    t = 1_000_000
    emitted = 0
    for k in range(300):
        n = int(rng.integers(0, 60))
        ev = np.zeros(n, DVS_EVENT)
        ev["t"] = t + np.sort(rng.integers(-1500, 2500, n))  # some late, some beyond the end
        ev["x"] = rng.integers(0, w + 3, n)  # a few outside the sensor
        ev["y"] = rng.integers(0, h + 2, n)
        ev["p"] = rng.integers(0, 2, n)
        span = int(rng.integers(0, 1800))
        b = EventBatch("cam", k, t, t + span, ev, "dvs", 0, {})
        t += span
        got, want = enc.encode(b), ref.encode(b)
        assert (got is None) == (want is None)
        if got is not None:
            assert want is not None
            assert got.t0_us == want[0]
            assert got.ptr.tolist() == want[1].tolist() and got.idx.tolist() == want[2].tolist()
            assert got.idx.dtype == np.int32 and got.ptr.dtype == np.int64
            emitted += int(got.idx.size)
        assert enc.hold.t.tolist() == ref.hold.t.tolist()
        assert enc.hold.c.tolist() == ref.hold.c.tolist()
        assert enc.hold.late == ref.hold.late
        assert enc.out_of_range == ref.out_of_range
    assert emitted > 100 and ref.hold.late > 0 and ref.out_of_range > 0
