"""Event-to-step binning shared by encoders: which dt step an event falls in, held-back tails.

Encoders see batches of arbitrary time spans; the network runs in whole steps of `dt_us`. A
`StepClock` turns each batch into the range of *complete* steps it closes, so a step is emitted
exactly once, after all its events have arrived, and a partial final step waits for the next
batch (or `flush()` at the end of the stream).

Time jumps: a live clock that leaps (a sensor reset, a 2^31 µs wrap, a bad timestamp) would
otherwise make one batch close millions of empty steps. `StepClock.guard` treats a batch ending
more than `max_gap_us` past the next step to emit (default `MAX_GAP_US` = 10 s, by when any
neuron has long decayed to rest), or more than `max_gap_us` before it, as a jump: the grid is
re-anchored where the batch's last stretch of data without a `max_gap_us` hole begins (for
sample batches, at the batch start), and `time_jumps` counts it. No step is allocated for
the gap. A long batch whose data is continuous from the grid on (a 20 s block of samples) is
not a jump. Every binner of a live stream goes through it:
`SpikeHold` (DVS, spike, LiDAR, delta, band-energy encoders) discards the spikes it still held
(counted in `jump_discarded`), spikes before the new anchor are late; `StepValues` (rate,
latency, population, flow encoders) discards the partial step's samples; the cochlea and
log-mel encoders discard their held spikes or samples.
"""

from __future__ import annotations

import numpy as np

from edgesnn.events import MAX_GAP_US  # a batch this far from the step grid is a time jump


class StepClock:
    """Tracks the first not-yet-emitted step on a grid of dt_us anchored at the first batch."""

    def __init__(self, dt_us: int, max_gap_us: int = MAX_GAP_US):
        self.dt_us = int(dt_us)
        self.t0_us: int | None = None  # start of the first not-yet-emitted step
        self.max_gap_us = max(int(max_gap_us), 2 * self.dt_us)
        self.time_jumps = 0  # re-anchorings after a forward or backward leap of the clock

    def advance(self, t_end_us: int) -> tuple[int, int]:
        """(t0_us, n_steps) of the complete steps up to t_end_us; moves past them."""
        if self.t0_us is None:
            raise RuntimeError("StepClock.start() was not called")
        n = max(0, (t_end_us - self.t0_us) // self.dt_us)
        t0 = self.t0_us
        self.t0_us = t0 + n * self.dt_us
        return t0, int(n)

    def start(self, t_start_us: int) -> None:
        if self.t0_us is None:
            self.t0_us = int(t_start_us) - int(t_start_us) % self.dt_us

    def guard(self, t_start_us: int, t_end_us: int, t: np.ndarray | None = None) -> bool:
        """Start the grid at the first batch; True when the batch over [t_start_us, t_end_us)
        is a time jump, after re-anchoring the grid (see the module docstring). `t` are the
        batch's timestamps; None means samples spread evenly over the whole batch. The caller
        then discards what it held for the old grid."""
        self.start(t_start_us)
        assert self.t0_us is not None
        gap, t0, t_end = self.max_gap_us, self.t0_us, int(t_end_us)
        if t0 - gap <= t_end <= t0 + gap:
            return False
        anchor = self._last_stretch(int(t_start_us), t_end, t)
        if t_end > t0 and anchor <= t0 + gap:
            return False  # a long batch whose data leaves no stretch of max_gap_us empty
        self.time_jumps += 1
        self.t0_us = anchor - anchor % self.dt_us
        return True

    def _last_stretch(self, t_start: int, t_end: int, t: np.ndarray | None) -> int:
        """Where the batch's last stretch of data without a max_gap_us hole, up to t_end,
        begins (a batch without data there: max_gap_us before its end)."""
        gap = self.max_gap_us
        if t is None:
            return t_start
        u = np.unique(t[t < t_end])  # sorted; only batches far from the grid get here
        if not len(u):
            return max(t_start, t_end - gap)
        breaks = np.flatnonzero(np.diff(np.append(u, t_end)) > gap)
        if not len(breaks):
            return int(u[0])
        i = int(breaks[-1]) + 1
        return int(u[i]) if i < len(u) else max(t_start, t_end - gap)


def steps_to_csr(
    step: np.ndarray, chan: np.ndarray, n_steps: int, n_channels: int, min_count: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """CSR over steps of the unique (step, channel) pairs occurring at least `min_count` times.

    `step` must lie in [0, n_steps) and `chan` in [0, n_channels). Returns (ptr, idx).
    """
    key = step.astype(np.int64) * n_channels + chan.astype(np.int64)
    if min_count <= 1:
        uniq = np.unique(key)
    else:
        uniq, cnt = np.unique(key, return_counts=True)
        uniq = uniq[cnt >= min_count]
    s = uniq // n_channels
    ptr = np.zeros(n_steps + 1, np.int64)
    np.cumsum(np.bincount(s, minlength=n_steps)[:n_steps], out=ptr[1:])
    return ptr, (uniq % n_channels).astype(np.int32)


class SpikeHold:
    """Timed spikes (t_us, channel) held back until the dt step they fall in is complete."""

    def __init__(self, dt_us: int, max_gap_us: int = MAX_GAP_US):
        self.clock = StepClock(dt_us, max_gap_us)
        self.max_gap_us = self.clock.max_gap_us
        self.t = np.zeros(0, np.int64)  # held spikes (at or after the next step to emit)
        self.c = np.zeros(0, np.int32)
        self.partial = False  # data reached past the last complete step
        self.jump_discarded = 0  # held spikes discarded by a re-anchoring
        self.late = 0  # spikes whose step had already been emitted when they arrived

    @property
    def time_jumps(self) -> int:
        """Re-anchorings after a forward or backward leap of the clock."""
        return self.clock.time_jumps

    def add(self, t_start_us: int, t_end_us: int, t: np.ndarray, c: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, int, int]:
        """(held and new t, c, t0_us, n_steps): the complete steps a batch over
        [t_start_us, t_end_us) closes, and every spike not yet emitted, to pass to `take`."""
        if self.clock.guard(t_start_us, t_end_us, t):
            self.jump_discarded += len(self.t)
            self.t, self.c = self.t[:0], self.c[:0]
        if len(self.t):
            t = np.concatenate([self.t, t])
            c = np.concatenate([self.c, c])
        t0, n = self.clock.advance(t_end_us)
        assert self.clock.t0_us is not None
        self.partial = t_end_us > self.clock.t0_us
        return t, c, t0, n

    def take(self, t: np.ndarray, c: np.ndarray, t0: int, n: int
             ) -> tuple[np.ndarray, np.ndarray, int] | None:
        """(step, channel, late count) of the spikes in the n steps from t0; spikes after them
        stay held, spikes before t0 are late. None (nothing taken) when n is 0."""
        dt = self.clock.dt_us
        done = t < t0 + n * dt
        self.t, self.c = t[~done], c[~done]
        ok = done & (t >= t0)
        late = int(done.sum() - ok.sum())
        self.late += late
        if n == 0:
            return None
        return (t[ok] - t0) // dt, c[ok], late
