"""Why /health is degraded: recent loss, disconnected sensors, failed checkpoints, stalls.

`HealthWatch.reasons(runtime)` samples the runtime's counters on each call and keeps, per
counter, when it last grew. A reason is reported while it holds now or held within the last
`window_s` seconds:

- a component's input channel dropped items (`dropped`), a driver lost data it counts
  (`kernel_drops`, `overflow_dropped`, `queue_overflows`, `lost_frames`), or a driver or
  encoder refused input (`malformed`, `bad_datagrams`, `out_of_range`);
- a sensor went away or came back (`lost`: silent past its `lost_after_s`, `reconnects`), or
  its clock jumped (`time_jumps`);
- a component that tracks its connection reports `connected = false` (until it reconnects);
- the checkpoint writer's `failed` count grew;
- a component has items waiting in its input channel but processed none for `window_s` (stalled).

Counters that fall (a reload starts a new runtime) only reset the baseline.
"""

from __future__ import annotations

import time
from typing import Any

#: counters whose growth means data was lost or refused
LOSS_KEYS = ("dropped", "kernel_drops", "overflow_dropped", "queue_overflows", "lost_frames",
             "malformed", "bad_datagrams", "out_of_range")
#: counters whose growth means a sensor went away, came back or its clock jumped
FAULT_KEYS = {"lost": "sensor lost", "reconnects": "sensor dropped out",
              "time_jumps": "clock jumped"}


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
            items, depth = int(row.get("items", 0)), int(row.get("queue_depth", 0))
            seen, since = self._progress.get(cid, (-1, now))
            if items != seen or depth == 0:
                self._progress[cid] = (items, now)
            elif now - since > self.window_s:
                out.append(f"{cid}: stalled, {depth} items waiting and none processed for "
                           f"{now - since:.0f} s")
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
