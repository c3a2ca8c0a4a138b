"""Ensembles of trained SNNs folded into one network.

`TrainConfig.ensemble = K` trains K members of the same recipe from seeds seed K .. seed K +
K - 1 (ensembles of different seeds share no member), in parallel processes, one per core, and
`fold`s them into one `FeedforwardSNN`: every hidden layer holds the members' layers side by
side, each member's neurons see only their own member, and the output layer has K neurons per
label (label-major: label l's neurons are l K .. l K + K - 1, the readouts'
``neurons_per_label``). A label's spike count is the sum of its members' counts, spike for
spike what the members would give one by one: averaging the votes of independently trained
networks removes much of one network's seed-to-seed error.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np

from edgesnn.train.data import SpikeDataset
from edgesnn.train.model import FeedforwardSNN, LayerDef


def label_scores(scores: np.ndarray, neurons_per_label: int) -> np.ndarray:
    """Per-label sums of output scores (n, labels * k) -> (n, labels) for k neurons per label
    (label-major), unchanged for k = 1."""
    k = int(neurons_per_label)
    if k == 1:
        return scores
    n, m = scores.shape
    if m % k:
        raise ValueError(f"{m} outputs are not {k} neurons per label")
    return scores.reshape(n, m // k, k).sum(axis=2)


def fold(members: list[FeedforwardSNN]) -> FeedforwardSNN:
    """One network running every member side by side; output neurons label-major, so that
    each label's neurons sum its members' spike counts (`neurons_per_label` = members)."""
    if not members:
        raise ValueError("an ensemble needs at least one member")
    if len(members) == 1:
        return members[0]
    a = members[0]
    k = len(members)
    for m in members[1:]:
        if (m.n_inputs != a.n_inputs or m.dt_us != a.dt_us
                or m.input_delays != a.input_delays or m.layer_delays != a.layer_delays
                or [(x.n, x.model, x.params) for x in m.layers]
                != [(x.n, x.model, x.params) for x in a.layers]
                or m.neurons_per_label != 1):
            raise ValueError("ensemble members must share one architecture (sizes, neuron "
                             "models and parameters, delay taps) and be single networks")
    n_layers = len(a.layers)

    def cols(li: int, m: int) -> np.ndarray:
        """Columns of member m's neurons of layer li in the folded layer."""
        n = a.layers[li].n
        if li == n_layers - 1:
            return np.arange(n) * k + m  # label-major
        return m * n + np.arange(n)

    weights, biases, layers = [], [], []
    for li, lay in enumerate(a.layers):
        taps = a.taps(li)
        n_prev = a.n_inputs if li == 0 else a.layers[li - 1].n
        prev_total = n_prev if li == 0 else n_prev * k
        w = np.zeros((len(taps) * prev_total, lay.n * k))
        b = np.zeros(lay.n * k)
        for m, mem in enumerate(members):
            c = cols(li, m)
            b[c] = mem.biases[li]
            for j in range(len(taps)):
                src = mem.weights[li][j * n_prev : (j + 1) * n_prev]
                if li == 0:
                    w[j * prev_total : (j + 1) * prev_total, c] = src
                else:
                    rows = j * prev_total + cols(li - 1, m)
                    w[np.ix_(rows, c)] = src
        weights.append(w)
        biases.append(b)
        layers.append(LayerDef(lay.name, lay.n * k, lay.model, dict(lay.params)))
    out = FeedforwardSNN(a.n_inputs, layers, a.dt_us, seed=a.seed, weights=weights,
                         biases=biases, input_delays=a.input_delays,
                         layer_delays=a.layer_delays if n_layers > 1 else None)
    out.neurons_per_label = k
    return out


def member_seed(seed: int, k: int, m: int) -> int:
    """The seed of member m of the ensemble of `k` trained with `seed`: seed k + m."""
    return int(seed) * int(k) + int(m)


#: the queue a forked member process sends its log lines through (set before the fork)
_LINES: Any = None


def _say(prefix: str, stream: str, line: str) -> None:
    """A member's log line, prefixed, sent to the parent process's queue (a worker's `log`)."""
    _LINES.put((stream, prefix + line.strip()))


def _prefixed(prefix: str, out: Callable[[str], None], line: str) -> None:
    out(prefix + line.strip())


def _member(train_ds: SpikeDataset, val_ds: SpikeDataset | None, cfg: Any, m: int,
            log: Callable[[str], None] | None, progress: Callable[[str], None] | None,
            progress_every_s: float) -> tuple[FeedforwardSNN, list[dict[str, float]], int,
                                              float]:
    """Train member m: its model, history, best epoch, seconds. `log`/`progress` None in a
    worker process with a line queue: its lines go to the queue."""
    from edgesnn.train.trainer import train

    pre = f"[member {m + 1}/{cfg.ensemble}] "
    if _LINES is not None:
        say_out, say_err = partial(_say, pre, "out"), partial(_say, pre, "err")
    else:
        say_out = partial(_prefixed, pre, log) if log is not None else None
        say_err = partial(_prefixed, pre, progress) if progress is not None else None
    mcfg = replace(cfg, ensemble=1, seed=member_seed(cfg.seed, cfg.ensemble, m))
    res = train(train_ds, val_ds, mcfg, log=say_out, progress=say_err,
                progress_every_s=progress_every_s)
    return res.model, res.history, res.best_epoch, res.seconds


def _in_workers(train_ds: SpikeDataset, val_ds: SpikeDataset | None, cfg: Any, workers: int,
                log: Callable[[str], None] | None, progress: Callable[[str], None] | None,
                progress_every_s: float) -> list[Any]:
    """The members trained in `workers` forked processes; their log lines come back through a
    queue to `log` (epoch lines) and `progress` (lines within an epoch)."""
    global _LINES
    import multiprocessing as mp
    import queue
    from concurrent.futures import ProcessPoolExecutor, wait

    fork = "fork" in mp.get_all_start_methods()
    # fork: the workers share the datasets without copying, and inherit the line queue
    ctx = mp.get_context("fork" if fork else None)
    lines = ctx.Queue() if fork and (log is not None or progress is not None) else None

    def drain(block: float) -> None:
        while lines is not None:
            try:
                stream, text = lines.get(timeout=block)
            except queue.Empty:
                return
            out = progress if stream == "err" else log
            if out is not None:
                out(text)
            block = 0.0

    _LINES = lines
    try:
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            futs = [pool.submit(_member, train_ds, val_ds, cfg, m, None, None, progress_every_s)
                    for m in range(int(cfg.ensemble))]
            while wait(futs, timeout=0.0).not_done:
                if lines is not None:
                    drain(0.2)
                else:
                    wait(futs, timeout=0.2)
            results = [f.result() for f in futs]
        drain(0.05)
    finally:
        _LINES = None
    return results


def train_members(train_ds: SpikeDataset, val_ds: SpikeDataset | None, cfg: Any,
                  log: Callable[[str], None] | None,
                  progress: Callable[[str], None] | None = None, progress_every_s: float = 5.0,
                  workers: int | None = None) -> tuple[FeedforwardSNN, list[dict[str, float]],
                                                       int]:
    """Train cfg.ensemble members (seeds `member_seed`) on up to `workers` processes (default:
    the usable cores) and fold them: (model, history averaged over members, last best epoch)."""
    k = int(cfg.ensemble)
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
    workers = max(1, min(int(workers), k))
    if log is not None:
        log(f"training an ensemble of {k} members (seeds {member_seed(cfg.seed, k, 0)}.."
            f"{member_seed(cfg.seed, k, k - 1)}), {workers} at a time")
    t0 = time.perf_counter()
    if workers == 1:
        results = [_member(train_ds, val_ds, cfg, m, log, progress, progress_every_s)
                   for m in range(k)]
    else:
        results = _in_workers(train_ds, val_ds, cfg, workers, log, progress, progress_every_s)
    members = [r[0] for r in results]
    history = []
    for e in range(min(len(r[1]) for r in results)):
        rows = [r[1][e] for r in results]
        history.append({key: float(np.mean([row[key] for row in rows])) for key in rows[0]})
    if log is not None:
        log(f"ensemble trained in {time.perf_counter() - t0:.0f} s (members: "
            + ", ".join(f"{r[3]:.0f} s" for r in results) + ")")
    return fold(members), history, max(r[2] for r in results)
