"""Process age: seconds since this process started, for start-up figures of the daemon.

On Linux the start is the kernel's record of it (``/proc/self/stat`` field 22, in clock ticks
since boot, against ``/proc/uptime``), so interpreter start-up and imports are included; the
resolution is one clock tick (usually 10 ms). Elsewhere it falls back to the time since this
module was first imported.
"""

from __future__ import annotations

import os
import time

_IMPORTED_AT = time.monotonic()


def _proc_age_s() -> float | None:
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
        with open("/proc/uptime", "rb") as f:
            uptime_s = float(f.read().split()[0])
        # the command name (field 2) may hold spaces and parentheses: split after the last ")"
        fields = stat[stat.rindex(")") + 2 :].split()
        start_ticks = int(fields[19])  # field 22 of the whole line
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return max(0.0, uptime_s - start_ticks / ticks)


def process_age_s() -> float:
    """Seconds since this process started (kernel start time on Linux; see the module doc)."""
    age = _proc_age_s()
    return age if age is not None else time.monotonic() - _IMPORTED_AT
