"""ANN-to-SNN conversion measured: a ReLU MLP trained by scikit-learn, converted by
`edgesnn.convert`, run by the core, against the ANN it came from, on two tasks.

- digits: scikit-learn's 8x8 digits (shipped with scikit-learn), pixels / 16; a stratified
  70 / 30 split (random_state 0; the set names no writers, so no split by writer is possible).
- nsl_kdd: normal against attack on the NSL-KDD 20 % training file. The split is by attack
  type: the attacks `TEST_ATTACKS` (satan, smurf, back, warezclient: a probe, two DoS and an
  R2L type) appear only in the test part, every other attack type only in training; normal
  records are split by position in the file (first 70 % train, last 30 % test). Features: the
  38 numeric ones (log1p for unbounded counts and byte totals) and protocol/service/flag one-hot,
  scaled to [0, 1] on the training part.

With --cnn, also a small CNN on the digits (conv 3x3 x 8 channels, 2x2 average pooling, dense;
trained in numpy by `train_small_cnn`).

For each of `--seeds` seeds the MLP is trained (sklearn MLPClassifier, ReLU, that seed) and
converted with data-based threshold balancing on `--calibration` training inputs; the SNN's
accuracy is read with the runtime's decision rule (most output spikes, ties undecided) after
10, 20, 50, ... steps, for IF layers with constant-current and Poisson input coding, leaky (lif,
20 ms) layers with constant-current input, and TTFS with --ttfs. Rate-coded networks are also
measured on the test inputs streamed one after the other without a reset, as in a pipeline.
Reported as mean ± sd over seeds beside the ANN's accuracy on the same split.

    python3 examples/ann_to_snn.py                       # both tasks, 3 seeds, about a minute
    python3 examples/ann_to_snn.py --task digits --json
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "network" / "nsl_kdd"
RECORDS_FILE = "KDDTrain+_20Percent.txt.gz"
TEST_ATTACKS = ("satan", "smurf", "back", "warezclient")


# --- data ----------------------------------------------------------------------------------------


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """(x_train, y_train, x_test, y_test, description) of the digits, pixels in [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(d.data / 16.0, d.target, test_size=0.3,
                                              stratify=d.target, random_state=0)
    return x_tr, y_tr, x_te, y_te, "digits: stratified 70/30 split (random_state 0)"


def nslkdd_features(rec: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """(n, 38 + 87) features of records `rec`, numeric ones scaled on the records `fit`."""
    from edgesnn_drivers.network.nslkdd import FEATURES, FLAGS, PROTOCOLS, SERVICES, SYMBOLIC

    numeric = [f for f in FEATURES if f not in SYMBOLIC]

    def raw(r: np.ndarray) -> np.ndarray:
        return np.stack([r[f].astype(np.float64) for f in numeric], axis=1)

    ref = raw(fit)
    log = ref.max(axis=0) > 1.0
    hi = np.where(log, np.log1p(np.maximum(ref, 0.0)), ref).max(axis=0)
    hi = np.where(hi > 0, hi, 1.0)
    x = raw(rec)
    x = np.clip(np.where(log, np.log1p(np.maximum(x, 0.0)), x) / hi, 0.0, 1.0)
    parts = [x]
    for f, vocab in (("protocol_type", PROTOCOLS), ("service", SERVICES), ("flag", FLAGS)):
        n = len(vocab)
        parts.append(np.eye(n + 1)[np.minimum(rec[f].astype(np.int64), n)])
    return np.concatenate(parts, axis=1)


def nslkdd_split(data_dir: Path = DEFAULT_DATA, max_train: int | None = None,
                 max_test: int | None = None, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """(x_train, y_train, x_test, y_test, description): normal (0) against attack (1), test
    attacks of the types `TEST_ATTACKS` only; optional random subsamples of each side."""
    from edgesnn_drivers.network.nslkdd import read_records

    rec, labels = read_records(data_dir / RECORDS_FILE)
    name = np.asarray(labels)[rec["label"]]
    normal = np.flatnonzero(name == "normal")
    cut = int(round(0.7 * normal.size))
    held = np.isin(name, TEST_ATTACKS)
    train = np.sort(np.concatenate([normal[:cut], np.flatnonzero(~held & (name != "normal"))]))
    test = np.sort(np.concatenate([normal[cut:], np.flatnonzero(held)]))
    rng = np.random.default_rng(seed)
    if max_train and train.size > max_train:
        train = np.sort(rng.choice(train, max_train, replace=False))
    if max_test and test.size > max_test:
        test = np.sort(rng.choice(test, max_test, replace=False))
    y = (name != "normal").astype(np.int64)
    x_tr = nslkdd_features(rec[train], rec[train])
    x_te = nslkdd_features(rec[test], rec[train])
    desc = (f"nsl_kdd normal vs attack: attack types {', '.join(TEST_ATTACKS)} only in the test "
            "part, the other attack types only in training; normal records: first 70 % of the "
            "file train, last 30 % test")
    return x_tr, y[train], x_te, y[test], desc


# --- one run -------------------------------------------------------------------------------------


def train_mlp(x: np.ndarray, y: np.ndarray, hidden: list[int], seed: int, max_iter: int) -> Any:
    """A ReLU MLPClassifier (Adam, sklearn defaults) trained with this seed."""
    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings at a small max_iter
        return MLPClassifier(tuple(hidden), activation="relu", max_iter=max_iter,
                             random_state=seed).fit(x, y)


def run_task(task: str, data: tuple, *, seeds: int, hidden: list[int], steps: int,
             calibration: int, percentile: float, max_iter: int, ttfs: bool,
             ttfs_window: int, log: Any, cnn: bool = False) -> dict[str, Any]:
    """Train, convert and measure over `seeds` seeds; returns the report of the task. With
    `cnn`, the model is `train_small_cnn`'s (8 channels, `max_iter` epochs)."""
    from edgesnn.convert import ReluMLP, convert_cnn, convert_mlp, evaluate

    x_tr, y_tr, x_te, y_te, desc = data
    two = len(set(y_tr.tolist())) == 2  # a binary MLPClassifier has one logistic output
    runs: dict[str, list[dict[str, Any]]] = {"current": [], "poisson": [], "lif": []}
    if ttfs:
        runs["ttfs"] = []
    ann_acc = []
    t0 = time.perf_counter()
    for seed in range(seeds):
        if cnn:
            ann = train_small_cnn(x_tr, y_tr, channels=8, seed=seed, epochs=max_iter)
        else:
            clf = train_mlp(x_tr, y_tr, hidden, seed, max_iter)
            ann = ReluMLP.from_sklearn(clf) if not two else _binary_as_two_logits(clf)
        ann_acc.append(float(np.mean(ann.predict(x_te) == y_te)))
        cal = x_tr[np.random.default_rng(seed).choice(len(x_tr), min(calibration, len(x_tr)),
                                                       replace=False)]
        for coding in runs:
            kw: dict[str, Any] = {"percentile": percentile}
            if coding == "ttfs":
                kw.update(coding="ttfs", steps=ttfs_window)
            else:
                kw.update(steps=steps, input_coding="current" if coding == "lif" else coding,
                          neuron="lif" if coding == "lif" else "if")
            conv = (convert_cnn if cnn else convert_mlp)(ann, cal, **kw)
            r = evaluate(ann, conv, x_te, y_te, seed=seed, keep_decisions=True)
            if coding != "ttfs":  # the same inputs one after the other, never reset
                r["stream"] = evaluate(ann, conv, x_te, y_te, seed=seed, stream=True)
            runs[coding].append(r)
            row = ", ".join(f"{q['steps']}: {100 * q['accuracy']:.2f}" for q in r["per_steps"])
            log(f"  {task} seed {seed} {coding:8s} ANN {100 * ann_acc[-1]:.2f} % | SNN {row}")
    from edgesnn.evaluation import report, seed_summary

    labels = ["normal", "attack"] if two else [str(c) for c in range(int(y_te.max()) + 1)]
    normal = 0 if two else None
    ann_preds = [np.asarray(r["ann_decisions"]) for r in runs["current"]]
    baseline = {"name": "numpy CNN conv3x3x8-avgpool2-dense" if cnn
                else f"sklearn MLPClassifier relu {hidden}",
                "accuracy": float(np.mean(ann_acc)),
                "accuracy_sd": float(np.std(ann_acc, ddof=1)) if seeds > 1 else 0.0,
                "accuracies": ann_acc}
    if two:
        ann_sum = seed_summary(y_te, ann_preds, labels, normal)
        baseline["detection_rate"] = ann_sum["detection_rate"]
        baseline["false_positive_rate"] = ann_sum["false_positive_rate"]
    codings: dict[str, Any] = {}
    for coding, rs in runs.items():
        rows = []
        for k, q in enumerate(rs[0]["per_steps"]):
            accs = [r["per_steps"][k]["accuracy"] for r in rs]
            rows.append({"steps": q["steps"], "accuracy_mean": float(np.mean(accs)),
                         "accuracy_sd": float(np.std(accs, ddof=1)) if seeds > 1 else 0.0,
                         "accuracies": accs,
                         "undecided_mean": float(np.mean([r["per_steps"][k]["undecided"]
                                                          for r in rs]))})
        if coding != "ttfs":
            for k, row in enumerate(rows):
                accs = [r["stream"]["per_steps"][k]["accuracy"] for r in rs]
                row["stream_accuracy_mean"] = float(np.mean(accs))
                row["stream_accuracy_sd"] = float(np.std(accs, ddof=1)) if seeds > 1 else 0.0
        firsts = [r["first_output_spike_step_mean"] for r in rs
                  if r["first_output_spike_step_mean"] is not None]
        codings[coding] = {
            "per_steps": rows,
            "final": seed_summary(y_te, [np.asarray(r["decisions"]) for r in rs], labels,
                                  normal),
            "synaptic_events_per_input": float(np.mean([r["synaptic_events_per_input"]
                                                        for r in rs])),
            "first_output_spike_step_mean": float(np.mean(firsts)) if firsts else None,
        }
        if coding != "ttfs":
            codings[coding]["steps_to_ann_accuracy"] = [r.get("steps_to_ann_accuracy")
                                                        for r in rs]
    return report(
        task, n_train=len(x_tr), n_test=len(x_te), train_s=time.perf_counter() - t0,
        snn=codings["current"]["final"], baseline=baseline, split=desc,
        extra={"seeds": seeds, "hidden": hidden, "percentile": percentile,
               "calibration_inputs": min(calibration, len(x_tr)), "steps": steps,
               "ttfs_window": ttfs_window if "ttfs" in codings else None,
               "ann_macs": runs["current"][0]["ann_macs"], "codings": codings},
    )


def train_small_cnn(x: np.ndarray, y: np.ndarray, *, channels: int = 8, seed: int = 0,
                    epochs: int = 150, lr: float = 0.01, batch: int = 256) -> Any:
    """conv 3x3 (1 -> `channels`, padding 1) + ReLU, 2x2 average pooling, dense to the
    classes: a `ReluCNN` for 8x8 images x (n, 64) in [0, 1], trained by minibatch Adam on the
    cross-entropy in plain numpy (scikit-learn has no CNN)."""
    from edgesnn.convert import AvgPool2d, Conv2d, Dense, ReluCNN
    from edgesnn.convert.ann import _im2col
    from edgesnn.train import Adam

    rng = np.random.default_rng(seed)
    n, k = len(x), int(y.max()) + 1
    kern = rng.normal(0, np.sqrt(2.0 / 9), (channels, 9))
    b1 = np.zeros(channels)
    w2 = rng.normal(0, np.sqrt(1.0 / (channels * 16)), (channels * 16, k))
    b2 = np.zeros(k)
    opt = Adam([kern, b1, w2, b2], lr)
    cols_all, _, _ = _im2col(x.reshape(n, 1, 8, 8), 3, 3, 1, 1)  # (n, 64, 9)
    for _ in range(epochs):
        for idx in np.array_split(rng.permutation(n), max(1, n // batch)):
            cols, m = cols_all[idx], len(idx)
            z1 = cols @ kern.T + b1  # (m, 64, C): position-major
            a1 = np.maximum(z1, 0.0).reshape(m, 4, 2, 4, 2, channels)
            pooled = a1.mean(axis=(2, 4))  # (m, 4, 4, C)
            flat = pooled.transpose(0, 3, 1, 2).reshape(m, -1)  # (C, H, W) order
            z2 = flat @ w2 + b2
            p = np.exp(z2 - z2.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(m), y[idx]] -= 1.0
            g2 = p / m
            gflat = (g2 @ w2.T).reshape(m, channels, 4, 4).transpose(0, 2, 3, 1)
            ga1 = np.repeat(np.repeat(gflat, 2, axis=1), 2, axis=2) / 4.0  # (m, 8, 8, C)
            gz1 = ga1.reshape(m, 64, channels) * (z1 > 0)
            opt.step([np.einsum("npc,npk->ck", gz1, cols), gz1.sum(axis=(0, 1)),
                      flat.T @ g2, g2.sum(axis=0)])
    return ReluCNN((1, 8, 8), [Conv2d(kern.reshape(channels, 1, 3, 3), b1, 1, 1),
                               AvgPool2d(2), Dense(w2, b2)])


def _binary_as_two_logits(clf: Any) -> Any:
    """A binary MLPClassifier (one logistic output z) as two logits (-z, z): the same argmax,
    and each class has an output neuron that spikes when it wins."""
    from edgesnn.convert import ReluMLP

    w_last = np.concatenate([-clf.coefs_[-1], clf.coefs_[-1]], axis=1)
    b_last = np.concatenate([-clf.intercepts_[-1], clf.intercepts_[-1]])
    return ReluMLP([*clf.coefs_[:-1], w_last], [*clf.intercepts_[:-1], b_last])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=("digits", "nsl_kdd", "both"), default="both")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="NSL-KDD folder")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--hidden", type=int, nargs="+", default=None,
                    help="hidden sizes (default: digits 64, nsl_kdd 64 32)")
    ap.add_argument("--steps", type=int, default=100, help="rate coding: steps per input")
    ap.add_argument("--calibration", type=int, default=1000, help="calibration inputs")
    ap.add_argument("--percentile", type=float, default=99.9)
    ap.add_argument("--max-iter", type=int, default=200, help="MLP training epochs")
    ap.add_argument("--max-test", type=int, default=None, help="subsample the test part")
    ap.add_argument("--ttfs", action="store_true", help="also time-to-first-spike coding")
    ap.add_argument("--cnn", action="store_true",
                    help="also a small CNN on the digits (trained in numpy)")
    ap.add_argument("--cnn-epochs", type=int, default=60, help="CNN training epochs")
    ap.add_argument("--ttfs-window", type=int, default=16, help="TTFS steps per layer")
    ap.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        if not args.json:
            print(msg, flush=True)

    from edgesnn.evaluation import emit

    result: dict[str, Any] = {}
    tasks = ["digits", "nsl_kdd"] if args.task == "both" else [args.task]
    if args.cnn and "digits" in tasks:
        tasks.insert(tasks.index("digits") + 1, "digits_cnn")
    for task in tasks:
        if task == "digits_cnn":
            data = digits_split()
            hidden = []
        elif task == "digits":
            data = digits_split()
            hidden = args.hidden or [64]
        else:
            if not (args.data / RECORDS_FILE).is_file():
                log(f"nsl_kdd: {args.data / RECORDS_FILE} not found; skipped")
                continue
            data = nslkdd_split(args.data, max_test=args.max_test)
            hidden = args.hidden or [64, 32]
        log(f"{data[4]}; {len(data[0])} train / {len(data[2])} test inputs")
        result[task] = run_task(task, data, seeds=args.seeds, hidden=hidden, steps=args.steps,
                                calibration=args.calibration, percentile=args.percentile,
                                max_iter=args.cnn_epochs if task == "digits_cnn"
                                else args.max_iter, ttfs=args.ttfs,
                                ttfs_window=args.ttfs_window, log=log,
                                cnn=task == "digits_cnn")
        r = result[task]
        if args.json:
            continue
        emit(r, False, log)  # the shared table: SNN (rate, constant current) against the ANN
        for coding, c in r["codings"].items():
            row = "; ".join(f"{q['steps']} steps {100 * q['accuracy_mean']:.2f} ± "
                            f"{100 * q['accuracy_sd']:.2f}" for q in c["per_steps"])
            log(f"  SNN {coding:8s} {row}")
            if "stream_accuracy_mean" in c["per_steps"][-1]:
                q = c["per_steps"][-1]
                log(f"           streamed without resets: {100 * q['stream_accuracy_mean']:.2f} "
                    f"± {100 * q['stream_accuracy_sd']:.2f} after {q['steps']} steps per input")
            log(f"           {c['synaptic_events_per_input']:.0f} synaptic events per input "
                f"(ANN {r['ann_macs']} multiply-accumulates)")
    if args.json:
        print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
