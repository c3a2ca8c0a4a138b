"""Run-time control of a network's learning: on/off per projection, rewards, learned state.

A pipeline component runs its network's kernels in a worker thread while run-time commands
(HTTP API, the reward socket, `edgesnn reward`) arrive on other threads. `LearningControl`
keeps the kernel arrays single-writer: commands are queued under `lock` and applied by
`apply_pending()`, which the component calls in its kernel thread (holding `lock`) before each
kernel call; `capture()` / `restore()` read or write the learned state under the same lock, so
a checkpoint never sees half a step.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

from edgesnn.core import Network
from edgesnn.core.network import _check_tables
from edgesnn.errors import FormatError
from edgesnn.learning.records import RULE_NAMES, PlasticRecord, switch_positions, tables_match

log = logging.getLogger("edgesnn.learning")

__all__ = ["COMMANDS", "RULE_NAMES", "LearningControl", "add_reward", "plastic_projections"]
STATE_ARRAYS = ("fs", "w", "ii")
#: Run-time commands a network component hands to its LearningControl.
COMMANDS = ("learning", "reward")


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
        rec = PlasticRecord(net, i)
        if rec.takes_rewards:
            rec.add_reward(value)
            n += 1
    return n


class LearningControl:
    """Learning switches, reward queue and learned-state capture of one network."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self.lock = threading.RLock()
        self.plastic = plastic_projections(net)
        self.records = {name: PlasticRecord(net, i) for name, i in self.plastic.items()}
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
                        self.records[name].on = bool(on)
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
        names = [n for n in self._resolve(projection) if self.records[n].takes_rewards]
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
        for name, rec in self.records.items():
            row: dict[str, Any] = {"rule": rec.rule, "on": rec.on}
            if rec.takes_rewards:
                row["rewards_applied"] = rec.rewards_applied
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
        """Put a captured state back; ValueError when it belongs to another network. A
        checkpoint of the same network in the other precision (float64 was the default before
        float32) is converted: the packed layout does not depend on the precision."""
        mine = self.net.manifest
        theirs = meta.get("manifest", {})
        for key in ("dt_us", "layers", "projections", "inputs", "outputs"):
            if _canon(mine.get(key)) != _canon(theirs.get(key)):
                raise ValueError(f"checkpoint is of a different network ({key} differs)")
        if str(mine.get("dtype")) != str(theirs.get("dtype")):
            if str(theirs.get("dtype")) not in ("float32", "float64"):
                raise ValueError("checkpoint is of a different network (dtype differs)")
            log.warning("checkpoint state is %s, this network runs in %s: converted",
                        theirs.get("dtype"), mine.get("dtype"))
            arrays = dict(arrays)
            for k in ("fs", "w"):
                if arrays.get(k) is not None and arrays[k].dtype.kind == "f":
                    arrays[k] = arrays[k].astype(getattr(self.net, k).dtype)
        for k in STATE_ARRAYS:
            a = arrays.get(k)
            cur = getattr(self.net, k)
            if a is None or a.shape != cur.shape or a.dtype != cur.dtype:
                raise ValueError(f"checkpoint array {k!r} does not fit this network")
        codes = {rec.index: rec.code for rec in self.records.values()}
        if not tables_match(self.net, arrays["ii"], codes):
            raise ValueError("checkpoint tables do not match this network")
        # the switches come from the configuration, not from the checkpoint
        keep = switch_positions(self.net, list(self.plastic.values()))
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


def _canon(v: Any) -> Any:
    """JSON-comparable form (tuples as lists, numpy scalars as Python)."""
    import json

    return json.loads(json.dumps(v, default=lambda o: o.tolist() if hasattr(o, "tolist") else
                                 str(o)))
