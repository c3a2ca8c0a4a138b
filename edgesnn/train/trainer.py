"""Minibatch training with Adam, evaluation, and the check that the core spikes the same.

The loss is softmax cross-entropy over the output layer's spike counts times `logit_scale`
(``loss = "count"``, what a `spike_count` readout decides on), or over the maximum of each
output neuron's membrane over the sample (``loss = "max_v"``). A prediction follows the
runtime's decision rule (`edgesnn.evaluation.decide`): the class whose output neuron spiked
strictly most often, no decision (counted wrong) when none spiked or two tie; for ``max_v`` the
largest membrane maximum (ties: no decision).

Training options beyond the model: class-balanced minibatches (``balanced``), augmentation of
the input spikes (time stretch, start shift, input dropout), and which epoch's weights to keep
(``keep_last``: the final ones, for runs without a validation set). ``max_bias`` caps the
learned biases below the threshold distance, so that a network without input stays silent
(an end-of-utterance readout then sees the silence after a word).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgesnn.train.data import SpikeDataset
from edgesnn.train.ensemble import label_scores
from edgesnn.train.model import FeedforwardSNN, LayerCache, LayerDef

LOSSES = ("count", "max_v")


@dataclass
class TrainConfig:
    """Everything that decides a training run (saved in the report)."""

    hidden: list[int] = field(default_factory=lambda: [128])
    neuron: str = "cuba_lif"
    tau_mem_ms: float = 20.0
    tau_syn_ms: float = 5.0
    tau_syn_inh_ms: float | None = None
    out_tau_mem_ms: float | None = None
    v_th: float = 1.0
    t_ref_ms: float = 0.0
    #: the neurons' reset: "zero" (to v_reset) or "subtract" (v -= v_th, as Xylo resets)
    reset: str = "zero"
    epochs: int = 20
    batch_size: int = 32
    lr: float = 5e-3
    lr_final_fraction: float = 0.1
    loss: str = "count"
    logit_scale: float = 0.5
    surrogate_beta: float = 2.0
    detach_reset: bool = True
    train_bias: bool = False
    init_gain: float = 1.0
    weight_decay: float = 0.0
    rate_reg: float = 0.0
    tail_steps: int = 0
    seed: int = 0
    balanced: bool = False
    stretch: float = 0.0
    shift_steps: int = 0
    input_dropout: float = 0.0
    keep_last: bool = False
    max_bias: float | None = None
    #: delay taps of the input (ms; [] = none): the first layer also sees the input spikes
    #: this long ago, through one weight matrix per tap (temporal context for a feedforward net)
    input_delays_ms: list[float] = field(default_factory=list)
    #: delay taps of every later projection (hidden -> hidden, hidden -> out; ms, [] = none)
    layer_delays_ms: list[float] = field(default_factory=list)
    #: stochastic weight averaging: the trained model is the mean of the weights after every
    #: minibatch of the last N epochs (0 = off); an ensemble's smoothing at one model's cost
    average_epochs: int = 0
    #: SpecAugment-style masks (Park et al. 2019) per training sample: up to this many adjacent
    #: input channels silenced (a few bands of a band-major code; 0 = off), `channel_masks`
    #: times, and up to `time_mask_steps` adjacent steps silenced (0 = off)
    channel_mask: int = 0
    channel_masks: int = 1
    time_mask_steps: int = 0
    #: members trained from seeds seed * ensemble + m (in parallel processes) and folded into
    #: one network with this many output neurons per label (`edgesnn.train.ensemble`); 1: one
    ensemble: int = 1

    def input_taps(self, dt_us: int) -> list[int]:
        """The input delay taps in steps of `dt_us` (always including 0)."""
        return sorted({0} | {int(round(ms * 1000 / dt_us)) for ms in self.input_delays_ms})

    def layer_taps(self, dt_us: int) -> list[int]:
        """The delay taps of the later projections in steps of `dt_us` (always including 0)."""
        return sorted({0} | {int(round(ms * 1000 / dt_us)) for ms in self.layer_delays_ms})

    def check(self) -> None:
        """ValueError naming the first bad setting."""
        if self.loss not in LOSSES:
            raise ValueError(f"loss {self.loss!r} is not one of {LOSSES}")
        if self.neuron not in ("lif", "cuba_lif"):
            raise ValueError(f"neuron {self.neuron!r} is not lif or cuba_lif")
        if self.reset not in ("zero", "subtract"):
            raise ValueError(f"reset {self.reset!r} is not zero or subtract")
        if any(h <= 0 for h in self.hidden):
            raise ValueError("hidden layer sizes must be positive")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if not self.lr > 0 or not self.tau_mem_ms > 0 or not self.tau_syn_ms > 0:
            raise ValueError("lr and the time constants must be positive")
        if self.tail_steps < 0 or self.t_ref_ms < 0:
            raise ValueError("tail_steps and t_ref_ms must not be negative")
        if not 0 <= self.stretch < 1 or not 0 <= self.input_dropout < 1:
            raise ValueError("stretch and input_dropout must be in [0, 1)")
        if self.shift_steps < 0:
            raise ValueError("shift_steps must not be negative")
        if self.channel_mask < 0 or self.channel_masks < 0 or self.time_mask_steps < 0:
            raise ValueError("channel_mask, channel_masks and time_mask_steps must not be "
                             "negative")
        if self.ensemble < 1:
            raise ValueError("ensemble must be at least 1")
        if not 0 <= self.average_epochs <= self.epochs:
            raise ValueError("average_epochs must be within 0..epochs")
        if any(not 0 <= ms <= 10_000 for ms in self.input_delays_ms + self.layer_delays_ms):
            raise ValueError("input_delays_ms and layer_delays_ms must be within 0..10000 ms")

    def layer_defs(self, n_classes: int) -> list[LayerDef]:
        """The layers this configuration describes: hidden ones, then `out`."""
        def params(tau: float) -> dict[str, Any]:
            p: dict[str, Any] = {"tau_mem_ms": tau, "v_th": self.v_th, "t_ref_ms": self.t_ref_ms}
            if self.reset != "zero":
                p["reset"] = self.reset
            if self.neuron == "cuba_lif":
                p["tau_syn_exc_ms"] = self.tau_syn_ms
                if self.tau_syn_inh_ms is not None:
                    p["tau_syn_inh_ms"] = self.tau_syn_inh_ms
            return p

        defs = [LayerDef(f"h{i + 1}", n, self.neuron, params(self.tau_mem_ms))
                for i, n in enumerate(self.hidden)]
        defs.append(LayerDef("out", n_classes, self.neuron,
                             params(self.out_tau_mem_ms or self.tau_mem_ms)))
        return defs


@dataclass
class Batch:
    """A minibatch as dense input rows: sample b owns rows seg[b]:seg[b+1]."""

    s_in: np.ndarray
    seg: np.ndarray
    labels: np.ndarray


def make_batch(ds: SpikeDataset, indices: np.ndarray, tail_steps: int = 0,
               cfg: TrainConfig | None = None, rng: np.random.Generator | None = None) -> Batch:
    """Dense 0/1 input rows of the given samples, each followed by `tail_steps` silent steps.
    With `cfg` and `rng`, training augmentation: each sample is stretched in time by a random
    factor in 1 ± cfg.stretch (steps repeated or skipped), starts after 0..cfg.shift_steps
    silent steps, loses each input spike with probability cfg.input_dropout, and has its
    channel and time masks (cfg.channel_mask, cfg.time_mask_steps) silenced."""
    aug = cfg is not None and rng is not None and (
        cfg.stretch > 0 or cfg.shift_steps > 0 or cfg.input_dropout > 0
        or cfg.channel_mask > 0 or cfg.time_mask_steps > 0)
    rows: list[tuple[np.ndarray, np.ndarray, int]] = []
    for i in indices:
        ptr, idx = ds.sample(int(i))
        t = ptr.shape[0] - 1
        k = np.repeat(np.arange(t), np.diff(ptr))
        if aug:
            assert cfg is not None and rng is not None
            if cfg.stretch > 0:
                f = 1.0 + rng.uniform(-cfg.stretch, cfg.stretch)
                t_new = max(1, int(round(t * f)))
                src = np.minimum((np.arange(t_new) / f).astype(np.int64), t - 1)
                # spikes of source step src[j] land on step j (repeated or skipped steps)
                counts = np.diff(ptr)[src]
                starts = ptr[src]
                k = np.repeat(np.arange(t_new), counts)
                take = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(
                    int(counts.sum()))
                idx = idx[take]
                t = t_new
            if cfg.shift_steps > 0:
                sh = int(rng.integers(0, cfg.shift_steps + 1))
                k = k + sh
                t += sh
            if cfg.input_dropout > 0 and idx.size:
                keep = rng.random(idx.size) >= cfg.input_dropout
                k, idx = k[keep], idx[keep]
            if cfg.channel_mask > 0:
                for _ in range(cfg.channel_masks):
                    w = int(rng.integers(0, cfg.channel_mask + 1))
                    c0 = int(rng.integers(0, max(ds.n_inputs - w, 0) + 1))
                    keep = (idx < c0) | (idx >= c0 + w)
                    k, idx = k[keep], idx[keep]
            if cfg.time_mask_steps > 0:
                w = int(rng.integers(0, cfg.time_mask_steps + 1))
                t0 = int(rng.integers(0, max(t - w, 0) + 1))
                keep = (k < t0) | (k >= t0 + w)
                k, idx = k[keep], idx[keep]
        rows.append((k, idx, t))
    steps = np.array([t for _, _, t in rows], np.int64) + tail_steps
    seg = np.zeros(len(indices) + 1, np.int64)
    np.cumsum(steps, out=seg[1:])
    s_in = np.zeros((int(seg[-1]), ds.n_inputs))
    for b, (k, idx, _) in enumerate(rows):
        s_in[seg[b] + k, idx] = 1.0
    return Batch(s_in, seg, ds.labels[np.asarray(indices, np.int64)])


def balanced_order(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A permutation of the samples in which every run of n_classes consecutive samples
    holds one of each class as long as every class has samples left (class-balanced batches)."""
    classes = np.unique(labels)
    pools = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    out: list[int] = []
    depth = max(p.size for p in pools)
    for r in range(depth):
        row = [int(p[r]) for p in pools if r < p.size]
        out.extend(rng.permutation(row).tolist())
    return np.asarray(out, np.int64)


def counts_of(s: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Per-sample sums of the rows of s, (B, n)."""
    csum = np.zeros((s.shape[0] + 1, s.shape[1]))
    np.cumsum(s, axis=0, out=csum[1:])
    return csum[seg[1:]] - csum[seg[:-1]]


def predict(scores: np.ndarray, loss: str = "count") -> np.ndarray:
    """Decisions per row: for spike counts the runtime's rule (`edgesnn.evaluation.decide`:
    the strictly largest count, -1 on a tie or when no output spiked); for membrane maxima
    (``max_v``, which may be negative) the strictly largest value, -1 on a tie."""
    if loss == "count":
        from edgesnn.evaluation import decide

        return decide(scores)
    top = np.argmax(scores, axis=1)
    srt = np.sort(scores, axis=1)
    ok = srt[:, -1] > (srt[:, -2] if scores.shape[1] > 1 else -np.inf)
    return np.where(ok, top, -1)


def _softmax_ce(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    n = z.shape[0]
    loss = float(-np.mean(np.log(p[np.arange(n), y] + 1e-300)))
    g = p.copy()
    g[np.arange(n), y] -= 1.0
    return loss, g / n


def loss_and_grads(
    model: FeedforwardSNN, batch: Batch, cfg: TrainConfig, *, soft: bool = False,
    soft_beta: float = 10.0, exact: bool = True,
) -> tuple[float, list[np.ndarray], list[np.ndarray], list[LayerCache], np.ndarray]:
    """Forward, loss, BPTT: (loss, weight grads, bias grads, caches, output scores);
    `exact=False` sums synaptic inputs by matrix products (training's fast forward pass)."""
    beta = soft_beta if soft else cfg.surrogate_beta
    caches = model.forward(batch.s_in, batch.seg, soft=soft, beta=beta, exact=exact)
    seg = batch.seg
    steps = np.diff(seg)
    out = caches[-1]
    g_s: list[np.ndarray | None] = [None] * len(caches)
    g_u = None
    if cfg.loss == "count":
        scores = counts_of(out.s, seg)
        loss, gz = _softmax_ce(cfg.logit_scale * scores, batch.labels)
        g_s[-1] = np.repeat(cfg.logit_scale * gz, steps, axis=0)
    else:
        b_n = len(steps)
        cols = np.arange(out.u.shape[1])
        t_max = np.empty((b_n, out.u.shape[1]), np.int64)
        for b in range(b_n):
            t_max[b] = seg[b] + np.argmax(out.u[seg[b] : seg[b + 1]], axis=0)
        scores = out.u[t_max, cols]
        loss, gz = _softmax_ce(cfg.logit_scale * scores, batch.labels)
        g_u = np.zeros_like(out.u)
        for b in range(b_n):
            g_u[t_max[b], cols] += cfg.logit_scale * gz[b]
    if cfg.rate_reg > 0:
        for li, c in enumerate(caches[:-1]):
            rate = counts_of(c.s, seg) / steps[:, None]
            n = rate.size
            loss += cfg.rate_reg * float(np.sum(rate**2) / n)
            g = 2.0 * cfg.rate_reg * rate / (steps[:, None] * n)
            g_s[li] = np.repeat(g, steps, axis=0)
    g_w, g_b = model.backward(batch.s_in, seg, caches, g_s, g_u,
                              detach_reset=cfg.detach_reset)
    return loss, g_w, g_b, caches, scores


class Adam:
    """Adam (Kingma & Ba) over a list of arrays, updated in place."""

    def __init__(self, params: list[np.ndarray], lr: float, b1: float = 0.9,
                 b2: float = 0.999, eps: float = 1e-8) -> None:
        self.params = params
        self.lr, self.b1, self.b2, self.eps = lr, b1, b2, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        c1 = 1.0 - self.b1**self.t
        c2 = 1.0 - self.b2**self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= self.b1
            m += (1.0 - self.b1) * g
            v *= self.b2
            v += (1.0 - self.b2) * g * g
            p -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


@dataclass
class Evaluation:
    """Scores, predictions and activity of a model over a dataset."""

    scores: np.ndarray
    predictions: np.ndarray
    labels: np.ndarray
    layer_spikes: list[int]
    syn_events: int
    loss: float

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.predictions == self.labels)) if self.labels.size else 0.0


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Matrix products on one BLAS thread while inside: BLAS splits a product by its thread
    count, which changes the rounding (1e-12 after one epoch of the keyword recipe, a different
    network after forty), so only this way does a seed give the same weights whatever the
    number of cores (the same BLAS on the same kind of CPU; OpenBLAS picks its kernels by CPU).
    Ensemble members already train one process per core. threadpoolctl >= 3.5 knows the
    OpenBLAS that numpy 2 bundles (older ones limit nothing)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def evaluate(model: FeedforwardSNN, ds: SpikeDataset, cfg: TrainConfig,
             batch_size: int = 64) -> Evaluation:
    """Forward pass (hard spikes) over a dataset: scores, predictions, spikes, synaptic events
    (every spike of a layer reaches all neurons of the next, as the core counts them); on one
    BLAS thread (`one_blas_thread`)."""
    with one_blas_thread():
        return _evaluate(model, ds, cfg, batch_size)


def _evaluate(model: FeedforwardSNN, ds: SpikeDataset, cfg: TrainConfig,
              batch_size: int) -> Evaluation:
    """`evaluate`'s forward pass."""
    scores, losses = [], []
    spikes = [0] * (len(model.layers) + 1)
    for a in range(0, len(ds), batch_size):
        idx = np.arange(a, min(a + batch_size, len(ds)))
        batch = make_batch(ds, idx, cfg.tail_steps)
        caches = model.forward(batch.s_in, batch.seg, beta=cfg.surrogate_beta)
        out = caches[-1]
        if cfg.loss == "count":
            sc = counts_of(out.s, batch.seg)
        else:
            sc = np.maximum.reduceat(out.u, batch.seg[:-1], axis=0)
        sc = label_scores(sc, model.neurons_per_label)
        scores.append(sc)
        losses.append(_softmax_ce(cfg.logit_scale * sc, batch.labels)[0] * idx.size)
        spikes[0] += int(batch.s_in.sum())
        for li, c in enumerate(caches):
            spikes[li + 1] += int(c.s.sum())
    sc = np.concatenate(scores) if scores else np.zeros(
        (0, model.n_outputs // model.neurons_per_label))
    sizes = [lay.n for lay in model.layers]
    syn = sum(spikes[li] * sizes[li] for li in range(len(sizes)))
    return Evaluation(sc, predict(sc, cfg.loss), ds.labels.copy(), spikes, int(syn),
                      float(sum(losses) / max(len(ds), 1)))


@dataclass
class TrainResult:
    """The trained model (best validation epoch), its per-epoch history and timing."""

    model: FeedforwardSNN
    history: list[dict[str, float]]
    best_epoch: int
    seconds: float
    config: TrainConfig

    def report(self) -> dict[str, Any]:
        return {"config": asdict(self.config), "best_epoch": self.best_epoch,
                "seconds": round(self.seconds, 3), "history": self.history}


def train(
    train_ds: SpikeDataset,
    val_ds: SpikeDataset | None,
    cfg: TrainConfig,
    log: Callable[[str], None] | None = print,
    progress: Callable[[str], None] | None = None,
    progress_every_s: float = 5.0,
) -> TrainResult:
    """Train a feedforward SNN on `train_ds`; keeps the weights of the epoch with the best
    validation accuracy (best training accuracy without a validation set), or of the last
    epoch with `cfg.keep_last`, or their running mean over the last `cfg.average_epochs`
    epochs. `log` gets one line per epoch; `progress`, when given, a line
    within an epoch at most every `progress_every_s` seconds. Runs on one BLAS thread
    (`one_blas_thread`): a seed gives the same model whatever the number of cores."""
    with one_blas_thread():
        return _train(train_ds, val_ds, cfg, log, progress, progress_every_s)


def _train(
    train_ds: SpikeDataset,
    val_ds: SpikeDataset | None,
    cfg: TrainConfig,
    log: Callable[[str], None] | None,
    progress: Callable[[str], None] | None,
    progress_every_s: float,
) -> TrainResult:
    """`train`'s body."""
    cfg.check()
    n_classes = max(train_ds.n_classes, int(train_ds.labels.max()) + 1)
    if val_ds is not None and val_ds.n_inputs != train_ds.n_inputs:
        raise ValueError(f"validation set has {val_ds.n_inputs} inputs, training set "
                         f"{train_ds.n_inputs}")
    if cfg.ensemble > 1:
        from edgesnn.train.ensemble import train_members

        t_start = time.perf_counter()
        folded, hist, best_ep = train_members(train_ds, val_ds, cfg, log, progress,
                                              progress_every_s)
        return TrainResult(folded, hist, best_ep, time.perf_counter() - t_start, cfg)
    model = FeedforwardSNN(train_ds.n_inputs, cfg.layer_defs(n_classes), train_ds.dt_us,
                           seed=cfg.seed, init_gain=cfg.init_gain,
                           input_delays=cfg.input_taps(train_ds.dt_us),
                           layer_delays=cfg.layer_taps(train_ds.dt_us))
    params = model.weights + (model.biases if cfg.train_bias else [])
    opt = Adam(params, cfg.lr)
    rng = np.random.default_rng(cfg.seed + 1)
    history: list[dict[str, float]] = []
    best: tuple[float, float] = (-math.inf, -math.inf)
    best_state = ([w.copy() for w in model.weights], [b.copy() for b in model.biases])
    best_epoch = 0
    t_start = time.perf_counter()
    t_note = t_start
    n = len(train_ds)
    avg: list[np.ndarray] = []  # running mean of params over the averaging window
    n_avg = 0
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        frac = (epoch - 1) / max(cfg.epochs - 1, 1)
        opt.lr = cfg.lr * (cfg.lr_final_fraction + (1 - cfg.lr_final_fraction)
                           * 0.5 * (1 + math.cos(math.pi * frac)))
        order = balanced_order(train_ds.labels, rng) if cfg.balanced else rng.permutation(n)
        tot_loss, correct, done = 0.0, 0, 0
        for a in range(0, n, cfg.batch_size):
            idx = order[a : a + cfg.batch_size]
            batch = make_batch(train_ds, idx, cfg.tail_steps, cfg, rng)
            loss, g_w, g_b, _, scores = loss_and_grads(model, batch, cfg, exact=False)
            if cfg.weight_decay:
                g_w = [g + cfg.weight_decay * w for g, w in zip(g_w, model.weights)]
            opt.step(g_w + (g_b if cfg.train_bias else []))
            if cfg.max_bias is not None:
                for b in model.biases:
                    np.minimum(b, cfg.max_bias, out=b)
            if cfg.average_epochs and epoch > cfg.epochs - cfg.average_epochs:
                cur = model.weights + model.biases
                if not avg:
                    avg = [p.copy() for p in cur]
                n_avg += 1
                for m, p in zip(avg, cur):
                    m += (p - m) / n_avg
            tot_loss += loss * idx.size
            correct += int(np.sum(predict(scores, cfg.loss) == batch.labels))
            done += idx.size
            if progress is not None and time.perf_counter() - t_note >= progress_every_s:
                t_note = time.perf_counter()
                progress(f"  epoch {epoch}/{cfg.epochs}: {done}/{n} samples, loss "
                         f"{tot_loss / done:.4f}, {t_note - t_start:.0f} s")
        row = {"epoch": epoch, "loss": tot_loss / n, "train_acc": correct / n}
        if val_ds is not None and len(val_ds):
            ev = evaluate(model, val_ds, cfg)
            row["val_loss"] = ev.loss
            row["val_acc"] = ev.accuracy
            key = (ev.accuracy, -ev.loss)
        else:
            key = (row["train_acc"], -row["loss"])
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        if key > best or cfg.keep_last:
            best, best_epoch = key, epoch
            best_state = ([w.copy() for w in model.weights], [b.copy() for b in model.biases])
        if log is not None:
            val = (f"  val loss {row['val_loss']:.4f}  val acc {row['val_acc']:.3f}"
                   if "val_acc" in row else "")
            log(f"epoch {epoch:3d}/{cfg.epochs}  loss {row['loss']:.4f}  "
                f"train acc {row['train_acc']:.3f}{val}  ({row['seconds']:.1f} s)")
    if avg:
        nw = len(model.weights)
        best_state = (avg[:nw], avg[nw:])
        best_epoch = cfg.epochs
    for dst, src in zip(model.weights, best_state[0]):
        dst[...] = src
    for dst, src in zip(model.biases, best_state[1]):
        dst[...] = src
    return TrainResult(model, history, best_epoch, time.perf_counter() - t_start, cfg)


def core_agreement(model: FeedforwardSNN, ds: SpikeDataset, tail_steps: int = 0,
                   limit: int | None = None) -> tuple[int, int]:
    """(samples checked, samples whose output spikes differ) between this trainer's forward
    pass and `edgesnn.core.Network` built from the model (reset before each sample)."""
    net = model.to_network()
    cfg = TrainConfig(tail_steps=tail_steps)
    n = len(ds) if limit is None else min(limit, len(ds))
    differ = 0
    for i in range(n):
        batch = make_batch(ds, np.array([i]), tail_steps)
        mine = model.forward(batch.s_in, batch.seg, beta=cfg.surrogate_beta)[-1].s > 0
        ptr, idx = ds.sample(i)
        if tail_steps:
            ptr = np.concatenate([ptr, np.full(tail_steps, ptr[-1])])
        net.reset()
        rec = net.run(ptr, idx)
        core = np.zeros_like(mine)
        k = np.repeat(np.arange(rec.n_steps), np.diff(rec.ptr))
        core[k, rec.idx] = True
        differ += int(not np.array_equal(mine, core))
    return n, differ
