"""Spoken-digit keyword spotting on the Free Spoken Digit Dataset: SNN against an ANN baseline.

Both models see the same spikes: every WAV is replayed by edgesnn's `wav` driver and encoded by
the `cochlea` encoder (32 ERB bands, UP and DOWN level-crossing channels). The SNN (dense
cuba_lif layers) is trained with surrogate gradients by `edgesnn.train` and then run by the
core (`edgesnn.core.Network`), exactly as a pipeline would run it. The ANN is a small numpy
MLP on band-energy averages recovered from the same spikes (each band's level, the running sum
of its UP minus DOWN spikes, averaged over four equal parts of the utterance).

Split: the dataset's official test split (file indices 0-4, 300 files) for testing, indices
5-9 (300 files) for training, 20 % of those held out for choosing the epoch. Reported for both:
test accuracy; latency (sensor time from utterance start to the decision, and compute time per
utterance on this machine); energy as synaptic operations per utterance (SNN: synaptic events
the core propagated; ANN: multiply-accumulates of the MLP).

    python3 examples/keyword_spotting.py                 # about 2-4 minutes on 2 cores
    python3 examples/keyword_spotting.py --save-model kws.npz --epochs 30

Needs the recordings in ../shared/data/audio/fsdd beside the repository (or --data DIR).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.train.baseline import MLP, core_decisions

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "audio" / "fsdd"
DIGITS = [str(d) for d in range(10)]
_NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")


@dataclass
class Utterance:
    path: Path
    digit: int
    speaker: str
    index: int


def find_files(data_dir: Path) -> list[Utterance]:
    """The FSDD WAVs of data_dir, parsed from their names `{digit}_{speaker}_{index}.wav`."""
    out = []
    for p in sorted(data_dir.glob("*.wav")):
        m = _NAME.match(p.name)
        if m:
            out.append(Utterance(p, int(m.group(1)), m.group(2), int(m.group(3))))
    return out


# --- spikes: the wav driver and the cochlea encoder ----------------------------------------------


def cochlea_params(bands: int) -> dict[str, Any]:
    from edgesnn.encoders.audio import CochleaEncoder

    return CochleaEncoder.schema.validate({"bands": bands}, "", [])


def encode(path: Path, dt_us: int, bands: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(ptr, idx, n_channels) of one WAV replayed through `wav` -> `cochlea` (fresh state)."""
    from edgesnn_drivers.audio.wav import WavDriver

    from edgesnn.components import BuildContext
    from edgesnn.encoders.audio import CochleaEncoder

    ctx = BuildContext(dt_us=dt_us, base_dir=str(path.parent))
    drv = WavDriver("mic", WavDriver.schema.validate({"path": path.name}, "", []), ctx)
    enc = CochleaEncoder("cochlea", cochlea_params(bands), ctx)
    ptrs, idxs, base = [np.zeros(1, np.int64)], [], 0
    rasters = [enc.encode(b) for b in drv.iter_batches()] + [enc.flush()]
    for r in rasters:
        if r is None:
            continue
        p = r.ptr - r.ptr[0]
        ptrs.append(p[1:] + base)
        idxs.append(r.idx[r.ptr[0] : r.ptr[-1]])
        base += int(p[-1])
    return np.concatenate(ptrs), np.concatenate(idxs).astype(np.int32), enc.n_channels


def build_datasets(files: list[Utterance], dt_us: int, bands: int, log: Any) -> tuple[Any, Any]:
    from edgesnn.train import SpikeDataset

    t0 = time.perf_counter()
    tr, te = [], []
    n_ch = 0
    for k, u in enumerate(files):
        ptr, idx, n_ch = encode(u.path, dt_us, bands)
        (te if u.index < 5 else tr).append(((ptr, idx), u.digit))
        if (k + 1) % 100 == 0 or k + 1 == len(files):
            log(f"  encoded {k + 1}/{len(files)} files ({time.perf_counter() - t0:.1f} s)")

    def ds(items: list) -> SpikeDataset:
        return SpikeDataset.from_samples([s for s, _ in items], [y for _, y in items], n_ch,
                                         dt_us, DIGITS)

    return ds(tr), ds(te)


def band_features(ds: Any, bands: int, parts: int = 4) -> np.ndarray:
    """Per utterance, each band's level (cumsum of UP - DOWN spikes) averaged over `parts`
    equal parts of its duration: (N, bands * parts)."""
    out = np.zeros((len(ds), bands * parts))
    for i in range(len(ds)):
        ptr, idx = ds.sample(i)
        t = ds.n_steps(i)
        delta = np.zeros((t, bands))
        k = np.repeat(np.arange(t), np.diff(ptr))
        np.add.at(delta, (k[idx < bands], idx[idx < bands]), 1.0)
        np.add.at(delta, (k[idx >= bands], idx[idx >= bands] - bands), -1.0)
        level = np.cumsum(delta, axis=0)
        edges = np.linspace(0, t, parts + 1).astype(int)
        for p in range(parts):
            seg = level[edges[p] : max(edges[p + 1], edges[p] + 1)]
            out[i, p * bands : (p + 1) * bands] = seg.mean(axis=0)
    return out


# --- the experiment -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the comparison; returns the numbers (also printed). SystemExit(2) without data."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the FSDD WAVs")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--hidden", type=int, nargs="+", default=[128])
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate")
    ap.add_argument("--dt-us", type=int, default=4000)
    ap.add_argument("--bands", type=int, default=32)
    ap.add_argument("--tail-steps", type=int, default=5,
                    help="silent steps after each utterance before deciding")
    ap.add_argument("--per-digit-speaker", type=int, default=5,
                    help="files per digit, speaker and split (5 = all; fewer for a quick run)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-model", type=Path, default=None, help="write the SNN model file")
    ap.add_argument("--save-dataset", type=Path, default=None,
                    help="write the encoded training set (.npz for `edgesnn train`)")
    ap.add_argument("--json", type=Path, default=None, help="write the results as JSON")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, flush=True)

    if not args.data.is_dir() or not find_files(args.data):
        log(f"keyword_spotting: no FSDD recordings in {args.data}; this example needs the "
            "shared data folder (../shared/data beside the repository) or --data DIR")
        raise SystemExit(2)

    from edgesnn.core import Network
    from edgesnn.train import TrainConfig, core_agreement, evaluate, train

    files = [u for u in find_files(args.data) if u.index % 5 < args.per_digit_speaker]
    log(f"FSDD: {len(files)} files ({sum(u.index >= 5 for u in files)} train, "
        f"{sum(u.index < 5 for u in files)} test); wav -> cochlea ({args.bands} bands, UP/DOWN), "
        f"dt {args.dt_us} us")
    train_all, test = build_datasets(files, args.dt_us, args.bands, log)
    tr, va = train_all.split(0.2, seed=args.seed)
    steps = test.steps()
    log(f"  {train_all.in_idx.size / len(train_all):.0f} input spikes and "
        f"{train_all.steps().mean():.0f} steps per training utterance on average")

    # --- SNN ---------------------------------------------------------------------------
    cfg = TrainConfig(hidden=list(args.hidden), neuron="cuba_lif", tau_mem_ms=20.0,
                      tau_syn_ms=50.0, out_tau_mem_ms=20.0, epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, logit_scale=0.5, surrogate_beta=2.0,
                      train_bias=True, tail_steps=args.tail_steps, seed=args.seed)
    log(f"SNN: {train_all.n_inputs} -> {' -> '.join(map(str, cfg.hidden))} -> 10 cuba_lif, "
        f"{len(tr)} train / {len(va)} validation utterances, {cfg.epochs} epochs")
    res = train(tr, va, cfg, log=log)
    model = res.model
    log(f"  best validation epoch {res.best_epoch}; trained in {res.seconds:.1f} s")
    net = Network(model.to_spec())
    net.warm_up()
    preds_a, syn, comp, stable = core_decisions(net, test, 10, cfg.tail_steps)
    snn_acc = float(np.mean(preds_a == test.labels))
    ev = evaluate(model, test, cfg)
    same = float(np.mean(ev.predictions == preds_a))
    checked, differ = core_agreement(model, test, cfg.tail_steps, limit=30)
    dt_ms = args.dt_us / 1000.0
    snn = {
        "accuracy": snn_acc,
        "no_decision": int(np.sum(preds_a < 0)),
        "decision_latency_ms": float(np.mean(steps + cfg.tail_steps) * dt_ms),
        "stable_decision_ms": float(np.mean(np.asarray(stable) + 1) * dt_ms),
        "compute_ms_per_utterance": float(np.mean(comp) * 1e3),
        "synaptic_ops_per_utterance": float(np.mean(syn)),
        "hidden_spikes_per_utterance": float(ev.layer_spikes[1] / len(test)),
        "input_spikes_per_utterance": float(ev.layer_spikes[0] / len(test)),
        "trainer_core_prediction_agreement": same,
        "core_spike_check": f"{checked - differ}/{checked} utterances identical",
        "train_seconds": res.seconds,
        "best_epoch": res.best_epoch,
    }
    log(f"SNN test accuracy {snn_acc:.3f} (core); trainer forward agrees on {same:.3f} of the "
        f"predictions; output spikes identical on {checked - differ}/{checked} utterances")

    # --- ANN ---------------------------------------------------------------------------
    log("ANN: band-energy averages (32 bands x 4 parts) -> 64 ReLU -> 10, full-batch Adam")
    t0 = time.perf_counter()
    f_tr, f_va, f_te = (band_features(d, args.bands) for d in (tr, va, test))
    mu, sd = f_tr.mean(0), f_tr.std(0) + 1e-6
    best_acc, mlp = -1.0, None
    for n_ep in (100, 200, 400):  # choose the training length on the validation split
        cand = MLP(f_tr.shape[1], 64, 10, seed=args.seed)
        cand.fit((f_tr - mu) / sd, tr.labels, n_ep, lr=3e-3, weight_decay=1e-3)
        acc = float(np.mean(np.argmax(cand.logits((f_va - mu) / sd), 1) == va.labels))
        log(f"  {n_ep} epochs: validation accuracy {acc:.3f}")
        if acc > best_acc:
            best_acc, mlp = acc, cand
    assert mlp is not None
    ann_train_s = time.perf_counter() - t0
    ann_pred = np.argmax(mlp.logits((f_te - mu) / sd), axis=1)
    ann_acc = float(np.mean(ann_pred == test.labels))
    times = []
    for i in range(len(test)):
        one = test.subset([i])
        t1 = time.perf_counter()
        mlp.logits((band_features(one, args.bands) - mu) / sd)
        times.append(time.perf_counter() - t1)
    ann = {
        "accuracy": ann_acc,
        "decision_latency_ms": float(np.mean(steps) * dt_ms),
        "compute_ms_per_utterance": float(np.mean(times) * 1e3),
        "synaptic_ops_per_utterance": float(mlp.macs),
        "train_seconds": ann_train_s,
    }
    log(f"ANN test accuracy {ann_acc:.3f}")

    # --- table ---------------------------------------------------------------------------
    log("")
    log(f"{'':34s} {'SNN (core)':>12s} {'ANN (MLP)':>12s}")
    log(f"{'test accuracy':34s} {snn['accuracy']:12.3f} {ann['accuracy']:12.3f}")
    log(f"{'decision at (ms after start)':34s} {snn['decision_latency_ms']:12.1f} "
        f"{ann['decision_latency_ms']:12.1f}")
    log(f"{'stable running decision (ms)':34s} {snn['stable_decision_ms']:12.1f} {'-':>12s}")
    log(f"{'compute per utterance (ms)':34s} {snn['compute_ms_per_utterance']:12.3f} "
        f"{ann['compute_ms_per_utterance']:12.3f}")
    log(f"{'synaptic ops / MACs per utterance':34s} {snn['synaptic_ops_per_utterance']:12.0f} "
        f"{ann['synaptic_ops_per_utterance']:12.0f}")
    log(f"(chance 0.100; {len(test)} test utterances, mean duration "
        f"{np.mean(steps) * dt_ms:.0f} ms; SNN decides {cfg.tail_steps} steps after the end, "
        "ANN features need the whole utterance; ANN compute includes its feature extraction)")
    out = {"snn": snn, "ann": ann, "config": asdict(cfg), "n_train": len(tr), "n_val": len(va),
           "n_test": len(test), "dt_us": args.dt_us, "bands": args.bands}
    if args.save_model:
        model.save(args.save_model)
        log(f"wrote {args.save_model} ({args.save_model.stat().st_size} bytes)")
    if args.save_dataset:
        train_all.save(args.save_dataset)
        log(f"wrote {args.save_dataset}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
