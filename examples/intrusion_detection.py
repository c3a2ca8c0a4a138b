"""Intrusion detection on NSL-KDD connection records: SNN against an ANN baseline.

Every record is read by edgesnn's NSL-KDD reader (`drivers/network/nslkdd.py`) and its features
are prepared once for both models: the 38 numeric features scaled to [0, 1] (log1p first for
the unbounded counts and byte totals; scales fitted on the training part only) and the three
symbolic ones (protocol, service, flag) one-hot. The records then stream through edgesnn's
generic encoders as they would in a pipeline, one record every `--steps` steps: the numeric
features through the `population` encoder (Gaussian receptive fields, `--neurons` per feature,
regular spike trains) and the one-hot features through the `rate` encoder (regular mode). The
SNN (dense cuba_lif layers) is trained with surrogate gradients by `edgesnn.train` and run by
the core (`edgesnn.core.Network`). The ANN is a small numpy MLP on the same prepared features.

Task: normal against attack (`--task binary`), or normal / dos / probe / r2l / u2r
(`--task category`, names from attack_types.csv). Split: a stratified random `--test-fraction`
of the file is held out for testing before anything is fitted, `--val-fraction` of the rest
chooses the epoch. Reported for both models: accuracy, detection rate (attacks flagged as any
attack class) and false-alarm rate (normal records flagged); latency (steps and ms of stream
time from a record's arrival to the decision, and compute time per record on this machine);
energy as synaptic operations per record (SNN: synaptic events the core propagated; ANN:
multiply-accumulates of the MLP).

    python3 examples/intrusion_detection.py                  # about 1-3 minutes on 2 cores
    python3 examples/intrusion_detection.py --task category --save-model ids.npz

Needs ../shared/data/network/nsl_kdd/KDDTrain+_20Percent.txt.gz beside the repository (or
--data DIR).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.train.baseline import MLP, core_decisions
from edgesnn.train.baseline import detection_rates as detection

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "network" / "nsl_kdd"
RECORDS_FILE = "KDDTrain+_20Percent.txt.gz"
CATEGORIES = ["normal", "dos", "probe", "r2l", "u2r"]


# --- records and features -----------------------------------------------------------------------


def read_categories(data_dir: Path) -> dict[str, str]:
    """attack name -> category from attack_types.csv (old-Mac CR line endings)."""
    text = (data_dir / "attack_types.csv").read_bytes().decode("ascii", "replace")
    out = {}
    for line in text.replace("\r", "\n").split("\n"):
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0]:
            out[parts[0]] = parts[1]
    return out


def load(data_dir: Path, task: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(records, class of each record, class names) of the NSL-KDD training file."""
    from edgesnn_drivers.network.nslkdd import read_records

    rec, labels = read_records(data_dir / RECORDS_FILE)
    if task == "binary":
        return rec, rec["attack"].astype(np.int64), ["normal", "attack"]
    cats = read_categories(data_dir)
    code = np.array([CATEGORIES.index(cats[n]) if cats.get(n) in CATEGORIES else -1
                     for n in labels], np.int64)
    y = code[rec["label"]]
    keep = y >= 0
    return rec[keep], y[keep], list(CATEGORIES)


class Features:
    """Scaling fitted on training records: numeric features to [0, 1], symbolic one-hot."""

    def __init__(self, rec: np.ndarray) -> None:
        from edgesnn_drivers.network.nslkdd import FEATURES, FLAGS, PROTOCOLS, SERVICES, SYMBOLIC

        self.numeric = [f for f in FEATURES if f not in SYMBOLIC]
        self.vocab = {"protocol_type": len(PROTOCOLS), "flag": len(FLAGS),
                      "service": len(SERVICES)}
        x = self._raw(rec)
        self.log = x.max(axis=0) > 1.0  # unbounded counts and byte totals
        hi = self._logged(x).max(axis=0)
        self.hi = np.where(hi > 0, hi, 1.0)

    @property
    def n_numeric(self) -> int:
        return len(self.numeric)

    @property
    def n_onehot(self) -> int:
        return sum(n + 1 for n in self.vocab.values())  # one more for unknown names

    def _raw(self, rec: np.ndarray) -> np.ndarray:
        return np.stack([rec[f].astype(np.float64) for f in self.numeric], axis=1)

    def _logged(self, x: np.ndarray) -> np.ndarray:
        return np.where(self.log, np.log1p(np.maximum(x, 0.0)), x)

    def numeric_values(self, rec: np.ndarray) -> np.ndarray:
        """(n, 38) numeric features in [0, 1] (training range; clipped)."""
        return np.clip(self._logged(self._raw(rec)) / self.hi, 0.0, 1.0)

    def onehot(self, rec: np.ndarray) -> np.ndarray:
        """(n, 87) one-hot protocol, flag and service (code 255, unknown, gets its own slot)."""
        parts = []
        for f, n in self.vocab.items():
            parts.append(np.eye(n + 1)[np.minimum(rec[f].astype(np.int64), n)])
        return np.concatenate(parts, axis=1)

    def vector(self, rec: np.ndarray) -> np.ndarray:
        """The ANN's input: numeric features and one-hot, (n, 38 + 87)."""
        return np.concatenate([self.numeric_values(rec), self.onehot(rec)], axis=1)


# --- spikes: population and rate encoders ------------------------------------------------------


def encode(rec: np.ndarray, labels: np.ndarray, feats: Features, names: list[str],
           steps: int, dt_us: int, neurons: int, max_rate_hz: float) -> Any:
    """A SpikeDataset of the records streamed through `population` (numeric features) and
    `rate` (one-hot features) encoders, one record every `steps` steps."""
    from edgesnn.components import BuildContext
    from edgesnn.encoders.generic import PopulationEncoder, RateEncoder, built
    from edgesnn.events import EventBatch
    from edgesnn.train import SpikeDataset

    n = len(rec)
    t = np.arange(n, dtype=np.int64) * steps * dt_us
    t_end = int(n * steps * dt_us)
    ctx = BuildContext(dt_us=dt_us)
    rasters = []
    for prefix, values, cls, params in (
        ("f", feats.numeric_values(rec), PopulationEncoder,
         {"neurons": neurons, "width": 0.5, "max_rate_hz": max_rate_hz, "mode": "regular"}),
        ("s", feats.onehot(rec), RateEncoder, {"max_rate_hz": max_rate_hz, "mode": "regular"}),
    ):
        cols = [f"{prefix}{k}" for k in range(values.shape[1])]
        arr = np.zeros(n, np.dtype([("t", "<i8")] + [(c, "<f4") for c in cols]))
        arr["t"] = t
        for k, c in enumerate(cols):
            arr[c] = values[:, k]
        enc = built(cls, {"fields": cols, **params}, ctx)
        r = enc.encode(EventBatch("records", 0, 0, t_end, arr, "records", 0, {}))
        assert r is not None and r.n_steps == n * steps
        rasters.append((r, enc.n_channels))
    # merge the two rasters (second one's channels after the first one's) into one CSR
    step_l, chan_l, base = [], [], 0
    for r, n_ch in rasters:
        step_l.append(np.repeat(np.arange(r.n_steps), np.diff(r.ptr)))
        chan_l.append(r.idx[r.ptr[0]:r.ptr[-1]].astype(np.int64) + base)
        base += n_ch
    step, chan = np.concatenate(step_l), np.concatenate(chan_l)
    order = np.lexsort((chan, step))
    step, chan = step[order], chan[order].astype(np.int32)
    gptr = np.zeros(n * steps + 1, np.int64)
    np.cumsum(np.bincount(step, minlength=n * steps), out=gptr[1:])
    samples = [(gptr[i * steps:(i + 1) * steps + 1], chan) for i in range(n)]
    return SpikeDataset.from_samples(samples, labels, base, dt_us, names)


# --- the experiment -----------------------------------------------------------------------------


def stratified_split(y: np.ndarray, fraction: float, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(rest, held out) index arrays; `fraction` of every class held out (at least one)."""
    held = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        rng.shuffle(members)
        k = max(1, int(round(fraction * members.size))) if members.size > 1 else 0
        held.append(members[:k])
    h = np.sort(np.concatenate(held))
    mask = np.zeros(y.size, bool)
    mask[h] = True
    return np.flatnonzero(~mask), h


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the comparison; returns the numbers (also printed). SystemExit(2) without data."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of NSL-KDD files")
    ap.add_argument("--task", choices=("binary", "category"), default="binary")
    ap.add_argument("--records", type=int, default=0,
                    help="use a stratified random subset of this many records (0 = all)")
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--val-fraction", type=float, default=0.1)
    ap.add_argument("--steps", type=int, default=10, help="steps each record is presented")
    ap.add_argument("--dt-us", type=int, default=1000)
    ap.add_argument("--neurons", type=int, default=8, help="receptive fields per feature")
    ap.add_argument("--max-rate-hz", type=float, default=500.0)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--hidden", type=int, nargs="+", default=[64])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=5e-3, help="Adam learning rate")
    ap.add_argument("--tail-steps", type=int, default=2,
                    help="silent steps after each record before deciding")
    ap.add_argument("--mlp-epochs", type=int, nargs="+", default=[100, 200, 400],
                    help="MLP training lengths to choose from on the validation split")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-model", type=Path, default=None, help="write the SNN model file")
    ap.add_argument("--json", type=Path, default=None, help="write the results as JSON")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, flush=True)

    if not (args.data / RECORDS_FILE).is_file():
        log(f"intrusion_detection: no NSL-KDD records ({RECORDS_FILE}) in {args.data}; this "
            "example needs the shared data folder (../shared/data beside the repository) or "
            "--data DIR")
        raise SystemExit(2)

    from edgesnn.core import Network
    from edgesnn.train import TrainConfig, core_agreement, evaluate, train

    t_load = time.perf_counter()
    rec, y, names = load(args.data, args.task)
    rng = np.random.default_rng(args.seed)
    if 0 < args.records < len(rec):
        _, keep = stratified_split(y, args.records / len(rec), rng)
        rec, y = rec[keep], y[keep]
    rest, test_i = stratified_split(y, args.test_fraction, rng)
    tr_i, va_i = (rest[i] for i in stratified_split(y[rest], args.val_fraction, rng))
    counts = ", ".join(f"{n} {int(np.sum(y == c))}" for c, n in enumerate(names))
    log(f"NSL-KDD: {len(rec)} records ({counts}) read in {time.perf_counter() - t_load:.1f} s; "
        f"{len(tr_i)} train / {len(va_i)} validation / {len(test_i)} test (held out, "
        "stratified random)")
    feats = Features(rec[tr_i])
    log(f"encoding: {feats.n_numeric} numeric features -> population ({args.neurons} fields "
        f"each), {feats.n_onehot} one-hot symbols -> rate; {args.steps} steps of "
        f"{args.dt_us} us per record")
    t0 = time.perf_counter()
    tr, va, test = (encode(rec[i], y[i], feats, names, args.steps, args.dt_us, args.neurons,
                           args.max_rate_hz) for i in (tr_i, va_i, test_i))
    log(f"  encoded in {time.perf_counter() - t0:.1f} s; {tr.n_inputs} input channels, "
        f"{tr.in_idx.size / len(tr):.0f} input spikes per record on average")

    # --- SNN ---------------------------------------------------------------------------
    n_cls = len(names)
    cfg = TrainConfig(hidden=list(args.hidden), neuron="cuba_lif", tau_mem_ms=20.0,
                      tau_syn_ms=5.0, epochs=args.epochs, batch_size=args.batch_size,
                      lr=args.lr, logit_scale=0.5, surrogate_beta=2.0, train_bias=True,
                      tail_steps=args.tail_steps, seed=args.seed)
    log(f"SNN: {tr.n_inputs} -> {' -> '.join(map(str, cfg.hidden))} -> {n_cls} cuba_lif, "
        f"{cfg.epochs} epochs")
    res = train(tr, va, cfg, log=log)
    model = res.model
    log(f"  best validation epoch {res.best_epoch}; trained in {res.seconds:.1f} s")
    net = Network(model.to_spec())
    net.warm_up()
    preds_a, syn, comp, stable = core_decisions(net, test, n_cls, cfg.tail_steps)
    dt_ms = args.dt_us / 1000.0
    snn_dr, snn_far = detection(preds_a, test.labels)
    ev = evaluate(model, test, cfg)
    checked, differ = core_agreement(model, test, cfg.tail_steps, limit=30)
    snn = {
        "accuracy": float(np.mean(preds_a == test.labels)),
        "detection_rate": snn_dr,
        "false_alarm_rate": snn_far,
        "no_decision": int(np.sum(preds_a < 0)),
        "decision_steps": args.steps + cfg.tail_steps,
        "decision_latency_ms": (args.steps + cfg.tail_steps) * dt_ms,
        "stable_decision_ms": float(np.mean(np.asarray(stable) + 1) * dt_ms),
        "compute_ms_per_record": float(np.mean(comp) * 1e3),
        "synaptic_ops_per_record": float(np.mean(syn)),
        "input_spikes_per_record": float(ev.layer_spikes[0] / len(test)),
        "hidden_spikes_per_record": float(ev.layer_spikes[1] / len(test)),
        "trainer_core_prediction_agreement": float(np.mean(ev.predictions == preds_a)),
        "core_spike_check": f"{checked - differ}/{checked} records identical",
        "train_seconds": res.seconds,
        "best_epoch": res.best_epoch,
    }
    log(f"SNN test accuracy {snn['accuracy']:.4f} (core); trainer forward agrees on "
        f"{snn['trainer_core_prediction_agreement']:.4f} of the predictions; output spikes "
        f"identical on {checked - differ}/{checked} records")

    # --- ANN ---------------------------------------------------------------------------
    n_in = feats.n_numeric + feats.n_onehot
    log(f"ANN: the same features ({n_in}) -> 64 ReLU -> {n_cls}, full-batch Adam")
    t0 = time.perf_counter()
    x_tr, x_va, x_te = (feats.vector(rec[i]) for i in (tr_i, va_i, test_i))
    best_acc, mlp = -1.0, None
    for n_ep in args.mlp_epochs:  # choose the training length on the validation split
        cand = MLP(n_in, 64, n_cls, seed=args.seed)
        cand.fit(x_tr, y[tr_i], n_ep)
        acc = float(np.mean(np.argmax(cand.logits(x_va), 1) == y[va_i]))
        log(f"  {n_ep} epochs: validation accuracy {acc:.4f}")
        if acc > best_acc:
            best_acc, mlp = acc, cand
    assert mlp is not None
    ann_train_s = time.perf_counter() - t0
    ann_pred = np.argmax(mlp.logits(x_te), axis=1)
    ann_dr, ann_far = detection(ann_pred, y[test_i])
    times = []
    for k in range(min(1000, len(test_i))):
        one = x_te[k : k + 1]
        t1 = time.perf_counter()
        mlp.logits(one)
        times.append(time.perf_counter() - t1)
    ann = {
        "accuracy": float(np.mean(ann_pred == y[test_i])),
        "detection_rate": ann_dr,
        "false_alarm_rate": ann_far,
        "decision_steps": 0,
        "decision_latency_ms": 0.0,
        "compute_ms_per_record": float(np.mean(times) * 1e3),
        "synaptic_ops_per_record": float(mlp.macs),
        "train_seconds": ann_train_s,
    }
    log(f"ANN test accuracy {ann['accuracy']:.4f}")

    # --- table ---------------------------------------------------------------------------
    log("")
    log(f"{'':36s} {'SNN (core)':>12s} {'ANN (MLP)':>12s}")
    for key, label, fmt in (("accuracy", "test accuracy", ".4f"),
                            ("detection_rate", "detection rate (attacks flagged)", ".4f"),
                            ("false_alarm_rate", "false-alarm rate (normal flagged)", ".4f")):
        log(f"{label:36s} {snn[key]:12{fmt}} {ann[key]:12{fmt}}")
    log(f"{'decision after (steps / ms)':36s} "
        f"{snn['decision_steps']:>5d} / {snn['decision_latency_ms']:4.1f} {'0 / 0.0':>12s}")
    log(f"{'stable running decision (ms)':36s} {snn['stable_decision_ms']:12.2f} {'-':>12s}")
    log(f"{'compute per record (ms)':36s} {snn['compute_ms_per_record']:12.3f} "
        f"{ann['compute_ms_per_record']:12.3f}")
    log(f"{'synaptic ops / MACs per record':36s} {snn['synaptic_ops_per_record']:12.0f} "
        f"{ann['synaptic_ops_per_record']:12.0f}")
    majority = float(np.max(np.bincount(y[test_i])) / len(test_i))
    log(f"(majority class {majority:.3f}; {len(test)} held-out records; the SNN decides "
        f"{cfg.tail_steps} steps after a record's {args.steps} presentation steps, the ANN "
        "as soon as the record is complete; compute is the network alone: feature scaling and "
        "the encoders are not included; no decision counts as wrong and raises no alarm)")
    out = {"snn": snn, "ann": ann, "config": asdict(cfg), "task": args.task, "classes": names,
           "n_train": len(tr), "n_val": len(va), "n_test": len(test), "steps": args.steps,
           "dt_us": args.dt_us, "majority_class_fraction": majority}
    if args.save_model:
        model.save(args.save_model)
        log(f"wrote {args.save_model} ({args.save_model.stat().st_size} bytes)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
