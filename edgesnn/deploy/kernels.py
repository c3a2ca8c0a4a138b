"""Integer helpers shared by the chip targets' numba kernels, and the emulator's counters.

Each chip target keeps its own kernels in its ``emulate.py`` (edgesnn.deploy.targets.loihi,
edgesnn.deploy.targets.spinnaker, edgesnn.deploy.targets.xylo); every value there is an int64
holding the chip's integer, wrapped or saturated to the chip's width after each operation with
`fit`. The counters below are the slots of the ``stats`` array every core-mapped target's
kernels add to (what `Emulator.counters` names).
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: numba options of every chip kernel (compiled once, cached on disk, no GIL)
KERNEL_OPTS = {"cache": True, "nogil": True}
_OPTS = KERNEL_OPTS

# --- counters (int64 array) --------------------------------------------------------------------
ST_U_OVERFLOW = 0  # u (Loihi) or I (SpiNNaker) left its range
ST_V_OVERFLOW = 1  # v left its range (saturated or wrapped)
ST_Q_OVERFLOW = 2  # Loihi input accumulator left its range
ST_RING_SATURATED = 3  # SpiNNaker ring-buffer entries that saturated
ST_SYNOPS = 4  # synaptic operations (spike x synapse)
ST_NEURON_UPDATES = 5
ST_U_EDGE = 6  # Loihi u of exactly +-2^(bits_u-1) before wrapping (the two ranges differ)
NST = 7



@njit(**_OPTS)
def fit(x: int, bits: int, wrap: int) -> tuple[int, int]:
    """(x fitted to a signed `bits`-bit integer, 1 when it did not fit). Wrap: modulo 2^bits;
    saturate: clip to +-(2^(bits-1) - 1)."""
    hi = (np.int64(1) << (bits - 1)) - 1
    if -hi - 1 <= x <= hi:
        if wrap == 0 and x == -hi - 1:
            return -hi, 1
        return x, 0
    if wrap != 0:
        m = np.int64(1) << bits
        y = (x + hi + 1) % m
        return y - hi - 1, 1
    return (hi if x > 0 else -hi), 1
