"""Run-time control of a network's learning: on/off per projection, rewards, learned state.

A pipeline component runs its network's kernels in a worker thread while run-time commands
(HTTP API, the reward socket, `edgesnn reward`) arrive on other threads. `LearningControl`
keeps the kernel arrays single-writer: commands are queued under `lock` and applied by
`apply_pending()`, which the component calls in its kernel thread (holding `lock`) before each
kernel call; `capture()` / `restore()` read or write the learned state under the same lock, so
a checkpoint never sees half a step.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from edgesnn.core import Network
from edgesnn.core import layout as L
from edgesnn.core.network import _check_tables
from edgesnn.errors import FormatError
from edgesnn.learning import layout as G

RULE_NAMES = {L.PLAST_STDP: "stdp", L.PLAST_PAIR: "stdp", L.PLAST_TRIPLET: "triplet",
              L.PLAST_RSTDP: "rstdp"}
STATE_ARRAYS = ("fs", "w", "ii")
#: Run-time commands a network component hands to its LearningControl.
COMMANDS = ("learning", "reward")


def _prec(net: Network, index: int) -> int:
    return int(net.ii[L.H_PTAB]) + index * L.PR


def plastic_projections(net: Network) -> dict[str, int]:
    """'source->target' -> projection index, for every projection with plasticity (a name
    shared by several projections gets '#<index>' appended)."""
    projs = net.manifest["projections"]
    names = [p["name"] for p in projs]
    return {
        (p["name"] if names.count(p["name"]) == 1 else f"{p['name']}#{i}"): i
        for i, p in enumerate(projs)
        if p.get("plasticity") is not None
    }


def add_reward(net: Network, value: float, projection: int | str | None = None) -> int:
    """Queue a reward for the rstdp projections of `net` (or one of them) directly in its
    arrays; it takes effect at the next step. Returns how many projections got it. Only for
    single-threaded use (tests, offline training); a running component uses LearningControl."""
    n = 0
    for name, i in plastic_projections(net).items():
        if projection is not None and projection not in (name, i):
            continue
        r = _prec(net, i)
        if int(net.ii[r + L.P_PLAST]) == L.PLAST_RSTDP:
            g = int(net.ii[r + L.P_LREC])
            net.fs[int(net.ii[g + G.G_DOPA]) + 1] += value
            n += 1
    return n


class LearningControl:
    """Learning switches, reward queue and learned-state capture of one network."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self.lock = threading.RLock()
        self.plastic = plastic_projections(net)
        self.codes = {name: int(net.ii[_prec(net, i) + L.P_PLAST]) for name, i in
                      self.plastic.items()}
        self.rewards_received = 0
        self.rewards_rejected = 0
        self._pending: list[tuple[float, str | None]] = []
        self._queue_lock = threading.Lock()

    # --- commands (any thread) --------------------------------------------------------------

    def _resolve(self, projection: Any) -> list[str]:
        if projection is None:
            return list(self.plastic)
        for name, i in self.plastic.items():
            if projection == name or (isinstance(projection, int) and projection == i):
                return [name]
        known = ", ".join(self.plastic) or "none"
        raise ValueError(f"no plastic projection {projection!r} (plastic: {known})")

    def set_learning(self, on: bool | None = None, projection: Any = None) -> dict[str, Any]:
        """Switch all learning (projection None) or one projection's rule on or off."""
        if on is not None and not isinstance(on, bool):  # "false" must not mean on
            raise TypeError(f'"on" must be true or false, not {on!r:.60}')
        if projection is not None and (isinstance(projection, bool)
                                       or not isinstance(projection, (str, int))):
            raise TypeError(f'"projection" must be a name or an index, not {projection!r:.60}')
        with self.lock:
            if on is not None:
                if projection is None:
                    self.net.learning = bool(on)
                else:
                    for name in self._resolve(projection):
                        r = _prec(self.net, self.plastic[name])
                        self.net.ii[r + L.P_PLAST] = self.codes[name] if on else L.PLAST_NONE
            return self.learning_status()

    def reward(self, value: float, projection: Any = None) -> dict[str, Any]:
        """Queue a reward for the rstdp projections (or one); applied at the next step."""
        # a JSON number only: true is no reward of 1, "1" no number (as on the reward socket)
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            self.rewards_rejected += 1
            raise ValueError(f"reward value must be a number, got {value!r:.60}")
        if projection is not None and (isinstance(projection, bool)
                                       or not isinstance(projection, str | int)):
            self.rewards_rejected += 1
            raise ValueError(f'"projection" must be a name or an index, not {projection!r:.60}')
        try:
            v = float(value)
        except (TypeError, ValueError, OverflowError):
            self.rewards_rejected += 1
            raise ValueError(f"reward value must be a number, got {value!r:.60}") from None
        if not np.isfinite(v):
            self.rewards_rejected += 1
            raise ValueError(f"reward value must be finite, got {value!r}")
        names = [n for n in self._resolve(projection) if self.codes[n] == L.PLAST_RSTDP]
        if not names:
            self.rewards_rejected += 1
            raise ValueError("no rstdp projection takes rewards here")
        with self._queue_lock:
            self._pending.extend((v, n) for n in names)
        self.rewards_received += 1
        return {"queued": v, "projections": names}

    def control(self, command: str, **kwargs: Any) -> Any:
        """'learning' (on=bool, projection=name|index: one rule, else all learning) and
        'reward' (value=float, projection=...); unknown commands raise KeyError."""
        if command == "learning":
            return self.set_learning(**kwargs)
        if command == "reward":
            return self.reward(**kwargs)
        raise KeyError(command)

    # --- in the kernel thread ---------------------------------------------------------------

    def apply_pending(self) -> None:
        """Move queued rewards into the network's arrays (call holding `lock`, between kernel
        calls)."""
        if not self._pending:
            return
        with self._queue_lock:
            pending, self._pending = self._pending, []
        for v, name in pending:
            add_reward(self.net, v, name)

    # --- status and state -------------------------------------------------------------------

    def learning_status(self) -> dict[str, Any]:
        """Global switch and, per plastic projection, its rule, switch and rewards applied."""
        out: dict[str, Any] = {}
        for name, i in self.plastic.items():
            r = _prec(self.net, i)
            code = self.codes[name]
            row: dict[str, Any] = {
                "rule": RULE_NAMES.get(code, "?"),
                "on": int(self.net.ii[r + L.P_PLAST]) != L.PLAST_NONE,
            }
            if code == L.PLAST_RSTDP:
                g = int(self.net.ii[r + L.P_LREC])
                row["rewards_applied"] = int(self.net.ii[g + G.G_NREWARD])
            out[name] = row
        return {"learning": self.net.learning, "plasticity": out}

    def status(self) -> dict[str, Any]:
        """Figures for the component's status."""
        s = self.learning_status()
        s["rewards_received"] = self.rewards_received
        s["rewards_rejected"] = self.rewards_rejected
        return s

    def capture(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Copies of the learned state (weights, traces, thresholds, eligibilities, stamps,
        step counter: the arrays fs, w, ii) and the model manifest."""
        with self.lock:
            self.apply_pending()
            sync = getattr(self.net, "sync", None)  # deferred weight updates of the core
            if callable(sync):
                sync()
            arrays = {k: getattr(self.net, k).copy() for k in STATE_ARRAYS}
            t = self.net.t_steps
        return arrays, {"manifest": self.net.manifest, "t_steps": t}

    def restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Put a captured state back; ValueError when it belongs to another network."""
        mine = self.net.manifest
        theirs = meta.get("manifest", {})
        for key in ("dt_us", "dtype", "layers", "projections", "inputs", "outputs"):
            if _canon(mine.get(key)) != _canon(theirs.get(key)):
                raise ValueError(f"checkpoint is of a different network ({key} differs)")
        for k in STATE_ARRAYS:
            a = arrays.get(k)
            cur = getattr(self.net, k)
            if a is None or a.shape != cur.shape or a.dtype != cur.dtype:
                raise ValueError(f"checkpoint array {k!r} does not fit this network")
        if not self._same_tables(arrays["ii"]):
            raise ValueError("checkpoint tables do not match this network")
        # the switches come from the configuration, not from the checkpoint
        keep = [L.H_LEARN] + [_prec(self.net, i) + L.P_PLAST for i in self.plastic.values()]
        ii = arrays["ii"].copy()
        ii[keep] = self.net.ii[keep]
        # the same full validation as a model file (every offset, index and length in range),
        # with the arrays a checkpoint does not carry taken from the running network
        try:
            _check_tables({"fs": arrays["fs"], "fp": self.net.fp, "w": arrays["w"], "ii": ii,
                           "ij": self.net.ij}, self.net.manifest, "checkpoint")
        except FormatError as e:
            raise ValueError(f"checkpoint fails model validation: {e}") from None
        with self.lock:
            switches = self.net.ii[keep].copy()
            for k in STATE_ARRAYS:
                getattr(self.net, k)[:] = arrays[k]
            self.net.ii[keep] = switches

    def _same_tables(self, ii: np.ndarray) -> bool:
        """Whether `ii` has this network's tables (offsets, sizes, learning records), so that
        no kernel can read outside the arrays; only counters, stamps and switches may differ."""
        mine = self.net.ii
        if ii.dtype != mine.dtype:
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
            name = self.net.manifest["projections"][pi]["name"]
            if int(a[L.P_PLAST]) not in (L.PLAST_NONE, self.codes.get(name, L.PLAST_NONE)):
                return False
            a[L.P_PLAST] = b[L.P_PLAST] = 0
            if not np.array_equal(a, b):
                return False
            if self.net.manifest["projections"][pi].get("plasticity") is not None and int(
                b[L.P_LREC]
            ):
                g = int(b[L.P_LREC])
                x, y = ii[g : g + G.GR].copy(), mine[g : g + G.GR].copy()
                x[[G.G_TG, G.G_TD, G.G_NREWARD]] = y[[G.G_TG, G.G_TD, G.G_NREWARD]] = 0
                if not np.array_equal(x, y):
                    return False
        return True


def _canon(v: Any) -> Any:
    """JSON-comparable form (tuples as lists, numpy scalars as Python)."""
    import json

    return json.loads(json.dumps(v, default=lambda o: o.tolist() if hasattr(o, "tolist") else
                                 str(o)))
