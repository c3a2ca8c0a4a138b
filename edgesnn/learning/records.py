"""Named views of a network's plasticity records: the one reader of their offsets outside the
packing code (`edgesnn.learning.rules.pack_learning`, `edgesnn.core.network`).

`PlasticRecord(net, index)` gives a plastic projection's rule, its run-time switch and its
reward slots by name; `tables_match` and `switch_positions` serve checkpoint restore (which
integers may differ between a checkpoint and the running network, and which the
configuration owns).
"""

from __future__ import annotations

import numpy as np

from edgesnn.core import Network, plasticity
from edgesnn.core import layout as L
from edgesnn.learning import layout as G

#: rule name of every plasticity code, from the core's registry (fused stdp and event-driven
#: pair stdp are both "stdp")
RULE_NAMES = {c: r.name for r in plasticity.rules().values() for c in r.kernels}


def _prec(net: Network, index: int) -> int:
    return int(net.ii[L.H_PTAB]) + index * L.PR


class PlasticRecord:
    """Projection `index` of `net` as a plastic projection: rule, switch, rewards."""

    def __init__(self, net: Network, index: int) -> None:
        self.net = net
        self.index = index
        self._r = _prec(net, index)
        #: the kernel code the configuration gave this projection (its rule when switched on)
        self.code = int(net.ii[self._r + L.P_PLAST])

    @property
    def rule(self) -> str:
        """stdp, triplet or rstdp ('?' for an unknown code)."""
        return RULE_NAMES.get(self.code, "?")

    @property
    def takes_rewards(self) -> bool:
        """Whether the rule is reward-modulated (rstdp)."""
        return self.code == L.PLAST_RSTDP

    @property
    def on(self) -> bool:
        """Whether the rule runs (while the network's learning switch is on)."""
        return int(self.net.ii[self._r + L.P_PLAST]) != L.PLAST_NONE

    @on.setter
    def on(self, value: bool) -> None:
        self.net.ii[self._r + L.P_PLAST] = self.code if value else L.PLAST_NONE

    def _record(self) -> int:
        if not self.takes_rewards:
            raise ValueError(f"projection {self.index} ({self.rule}) takes no rewards")
        return int(self.net.ii[self._r + L.P_LREC])

    def add_reward(self, value: float) -> None:
        """Queue a reward; the kernel applies it at the next step."""
        g = self._record()
        self.net.fs[int(self.net.ii[g + G.G_DOPA]) + 1] += value

    @property
    def rewards_applied(self) -> int:
        """Rewards the kernel has applied since reset."""
        return int(self.net.ii[self._record() + G.G_NREWARD])


def switch_positions(net: Network, indices: list[int]) -> list[int]:
    """The ii positions of the network's learning switch and of the switches of projections
    `indices` (the configuration owns them, not a checkpoint)."""
    return [L.H_LEARN] + [_prec(net, i) + L.P_PLAST for i in indices]


def tables_match(net: Network, ii: np.ndarray, codes: dict[int, int]) -> bool:
    """Whether `ii` has the tables of `net` (offsets, sizes, learning records), so that no
    kernel can read outside the arrays; only counters, stamps and switches may differ (a
    projection's switch must be off or its configured code, `codes[index]`)."""
    mine = net.ii
    if ii.dtype != mine.dtype or ii.shape != mine.shape:
        return False
    head = [L.H_NL, L.H_NP, L.H_LTAB, L.H_PTAB, L.H_NIN, L.H_NOUT]
    if not np.array_equal(ii[head], mine[head]):
        return False
    ltab, ptab = int(mine[L.H_LTAB]), int(mine[L.H_PTAB])
    for li in range(int(mine[L.H_NL])):
        r = ltab + li * L.LR
        a, b = ii[r : r + L.LR].copy(), mine[r : r + L.LR].copy()
        a[[L.L_NSPK, L.L_COUNT]] = b[[L.L_NSPK, L.L_COUNT]] = 0
        if not np.array_equal(a, b):
            return False
    for pi in range(int(mine[L.H_NP])):
        r = ptab + pi * L.PR
        a, b = ii[r : r + L.PR].copy(), mine[r : r + L.PR].copy()
        if int(a[L.P_PLAST]) not in (L.PLAST_NONE, codes.get(pi, L.PLAST_NONE)):
            return False
        a[L.P_PLAST] = b[L.P_PLAST] = 0
        if not np.array_equal(a, b):
            return False
        if net.manifest["projections"][pi].get("plasticity") is not None and int(b[L.P_LREC]):
            g = int(b[L.P_LREC])
            x, y = ii[g : g + G.GR].copy(), mine[g : g + G.GR].copy()
            x[[G.G_TG, G.G_TD, G.G_NREWARD]] = y[[G.G_TG, G.G_TD, G.G_NREWARD]] = 0
            if not np.array_equal(x, y):
                return False
    return True
