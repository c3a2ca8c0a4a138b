"""Why /health is degraded: recent loss, disconnected sensors, failed checkpoints, stalls.

`HealthWatch.reasons(runtime)` samples the runtime's counters on each call and keeps, per
counter, when it last grew. A reason is reported while it holds now or held within the last
`window_s` seconds:

- a component's input channel dropped items (`dropped`), a driver lost data it counts
  (`kernel_drops`, `overflow_dropped`, `queue_overflows`, `lost_frames`), or a driver or
  encoder refused input (`malformed`, `bad_datagrams`, `out_of_range`), or a sink dropped
  messages it could not write without blocking (`write_dropped`: a full pipe or FIFO), or an
  encoder shed input to keep the pipeline's `latency_budget_ms` (`shed_events`) or got events
  for steps already closed on the host clock (`late_events`);
- a sensor went away or came back (`lost`: silent past its `lost_after_s`, `reconnects`), or
  its clock jumped (`time_jumps`; `window_time_jumps`: the record or flow windows of a driver
  or encoder restarted after the clock went back);
- a component that tracks its connection reports `connected = false` (until it reconnects);
- the checkpoint writer's `failed` count grew;
- a component has items waiting in its input channel but took none for `window_s` (stalled:
  its current item has kept it busy that long, or it hangs);
- a source of a continuous stream (samples: audio, vibration; LiDAR) that has delivered data
  delivered none for `window_s` while the pipeline runs (stalled source: a sender or device
  that stopped, connected or not). Event sources (DVS, packets) may be quiet, so not them.

Counters that fall (a reload starts a new runtime) only reset the baseline.
"""

from __future__ import annotations

import time
from typing import Any

#: counters whose growth means data was lost or refused
LOSS_KEYS = ("dropped", "kernel_drops", "overflow_dropped", "queue_overflows", "lost_frames",
             "malformed", "bad_datagrams", "out_of_range", "write_dropped", "shed_events",
             "late_events")
#: counters whose growth means a sensor went away, came back or its clock jumped
FAULT_KEYS = {"lost": "sensor lost", "reconnects": "sensor dropped out",
              "time_jumps": "clock jumped", "window_time_jumps": "window clock jumped back"}
#: batch kinds of sources that never go quiet while they work
CONTINUOUS_KINDS = ("samples", "lidar")


def _int(v: Any) -> int:
    """A counter as an int (0 when a status reports something else under its name)."""
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0


class HealthWatch:
    """Remembers counter values between /health calls to tell recent trouble from old."""

    def __init__(self, window_s: float = 30.0):
        self.window_s = float(window_s)
        self._value: dict[str, int] = {}
        self._grew_at: dict[str, float] = {}
        self._progress: dict[str, tuple[int, float]] = {}  # component -> (items, since)

    def _grew(self, key: str, value: Any, now: float) -> bool:
        """True when `value` grew within the window (first sight counts from 0)."""
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        v = int(value)
        if v > self._value.get(key, 0):
            self._grew_at[key] = now
        self._value[key] = v
        t = self._grew_at.get(key)
        return t is not None and now - t <= self.window_s

    def reasons(self, rt: Any) -> list[str]:
        """Human-readable reasons the pipeline is degraded now ([]: healthy)."""
        now = time.monotonic()
        out: list[str] = []
        for cid, row in rt.counters().items():
            for key in LOSS_KEYS:
                if self._grew(f"{cid}.{key}", row.get(key), now):
                    out.append(f"{cid}: {key} grew to {int(row[key])} in the last "
                               f"{self.window_s:g} s")
            for key, what in FAULT_KEYS.items():
                if self._grew(f"{cid}.{key}", row.get(key), now):
                    out.append(f"{cid}: {what} ({key} grew to {int(row[key])} in the last "
                               f"{self.window_s:g} s)")
            if row.get("connected") is False:
                out.append(f"{cid}: disconnected" if row.get("kind") == "sink"
                           else f"{cid}: sensor disconnected")
            # progress = items the component took from its input channel (a network whose
            # output is silent still makes progress; `items` counts what it produced)
            depth = _int(row.get("queue_depth"))
            taken = _int(row.get("received")) - _int(row.get("dropped")) - depth
            seen, since = self._progress.get(cid, (-1, now))
            if taken != seen or depth == 0:
                self._progress[cid] = (taken, now)
            elif now - since > self.window_s:
                out.append(f"{cid}: stalled, {depth} items waiting and none taken for "
                           f"{now - since:.0f} s")
        out.extend(self._stalled_sources(rt))
        ck = rt.extra_status.get("checkpoint")
        if ck is not None:
            try:
                st = ck()
            except Exception as e:  # a broken status is itself a reason
                out.append(f"checkpoint: status failed: {e}")
            else:
                if self._grew("checkpoint.failed", st.get("failed"), now):
                    out.append(f"checkpoint: {st['failed']} failed "
                               f"(last error: {st.get('last_error')})")
        return out

    def _stalled_sources(self, rt: Any) -> list[str]:
        """Continuous sources whose last batch arrived more than `window_s` ago."""
        if getattr(rt, "state", None) != "running":
            return []
        out = []
        for cid, clock in getattr(rt, "arrivals", {}).items():
            comp = rt.components.get(cid)
            if getattr(comp, "batch_kind", None) not in CONTINUOUS_KINDS or not clock.count:
                continue
            last_us = int(clock.host_us[(clock.count - 1) % clock.capacity])
            age = time.time() - last_us / 1e6
            if age > self.window_s:
                out.append(f"{cid}: source stalled, no data for {age:.0f} s")
        return out
