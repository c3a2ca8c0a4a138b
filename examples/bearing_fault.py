"""Bearing-fault classification on the CWRU bearing recordings: SNN against an ANN baseline.

The drive-end accelerometer of four CWRU recordings (12 kHz, 0 hp, about 1797 rpm: normal,
ball, inner-race and outer-race faults of 0.007 in) is read with edgesnn's MAT v5 reader
(`drivers/vibration/`) and cut into windows. Every window is encoded by a fresh `band_energy`
encoder (short-time band energies in dB on log-spaced bands, UP/DOWN delta spikes per band);
the SNN (dense cuba_lif layers) is trained with surrogate gradients by `edgesnn.train` and run
by the core (`edgesnn.core.Network`). The ANN is a small numpy MLP on the band energies of the
same analysis frames (each band's mean and standard deviation in dB over the window).

Split: each recording is used up to the length of the shortest one (balanced classes) and cut
in time: the first `--train-part` for training windows (overlapping by half), the next
`--val-part` for validation windows (choosing the epoch), the rest for test windows; no test or
validation window shares a sample with a training window. Reported for both: test accuracy,
fault detection rate (faulty windows not called normal) and false-alarm rate (normal windows
called faulty); latency (sensor time from window start to the decision, and compute time per
window on this machine); energy as synaptic operations per window (SNN: synaptic events the
core propagated; ANN: multiply-accumulates of the MLP).

    python3 examples/bearing_fault.py                    # about 1 minute on 2 cores
    python3 examples/bearing_fault.py --window-ms 50 --save-model bearing.npz

Needs the recordings in ../shared/data/vibration/cwru beside the repository (or --data DIR).
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
DEFAULT_DATA = REPO.parent / "shared" / "data" / "vibration" / "cwru"
RATE_HZ = 12000
#: class name -> recording (CWRU files 97, 118, 105, 130)
RECORDINGS = {
    "normal": "cwru_12k_normal_0hp_Normal_0.mat",
    "ball": "cwru_12k_de_ball_007_0hp_B007_0.mat",
    "inner_race": "cwru_12k_de_inner_race_007_0hp_IR007_0.mat",
    "outer_race": "cwru_12k_de_outer_race_007_at6_0hp_OR007at6_0.mat",
}


def read_drive_end(path: Path) -> np.ndarray:
    """The drive-end accelerometer vector (variable `X<nnn>_DE_time`, in g) of a CWRU file."""
    from edgesnn_drivers.vibration.mat5 import MatFile
    from edgesnn_drivers.vibration.replay import mat_columns

    m = MatFile(path)
    (var,) = mat_columns(m, ["_DE_time"])
    return np.asarray(m.read(var.name), np.float64).ravel()


# --- spikes: the band_energy encoder -------------------------------------------------------------


def make_encoder(dt_us: int, bands: int, frame_ms: float, hop_ms: float, threshold_db: float
                 ) -> Any:
    """A fresh `band_energy` encoder: log-spaced bands up to 6 kHz, the lowest edge 100 Hz or
    one FFT bin of the frame, whichever is higher."""
    from edgesnn.components import BuildContext
    from edgesnn.encoders.generic import built
    from edgesnn.encoders.vibration import BandEnergyEncoder

    return built(BandEnergyEncoder, {"bands": bands, "window_ms": frame_ms, "hop_ms": hop_ms,
                                     "threshold_db": threshold_db, "f_min_hz": 100.0},
                 BuildContext(dt_us=dt_us))


def encode_window(x: np.ndarray, enc: Any) -> tuple[np.ndarray, np.ndarray]:
    """(ptr, idx) of one window (samples in g) through a fresh encoder."""
    from edgesnn.events import EventBatch

    t_end = int(len(x) * 1_000_000 // RATE_HZ)
    batch = EventBatch("accel", 0, 0, t_end, x[:, None].astype(np.float32), "samples", 0,
                       {"sample_rate_hz": RATE_HZ})
    ptrs, idxs, base = [np.zeros(1, np.int64)], [], 0
    for r in (enc.encode(batch), enc.flush()):
        if r is None:
            continue
        p = r.ptr - r.ptr[0]
        ptrs.append(p[1:] + base)
        idxs.append(r.idx[r.ptr[0]:r.ptr[-1]])
        base += int(p[-1])
    return np.concatenate(ptrs), np.concatenate(idxs).astype(np.int32)


def frame_db(x: np.ndarray, enc: Any) -> np.ndarray:
    """(frames, bands) band energies in dB of the encoder's analysis frames of a window (the
    encoder must have seen a batch, which fixes its frame length and hop)."""
    ends = np.arange(enc.win, len(x) + 1, enc.hop)
    return enc.band_db(x[ends[:, None] - enc.win + np.arange(enc.win)[None, :]])


def band_features(db: np.ndarray) -> np.ndarray:
    """The ANN's input: each band's mean and standard deviation in dB over the window."""
    return np.concatenate([db.mean(axis=0), db.std(axis=0)])


def window_starts(a: int, b: int, width: int, hop: int) -> list[int]:
    """Starts of the windows of `width` samples every `hop` that fit inside [a, b)."""
    return list(range(a, b - width + 1, hop))


# --- the experiment -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the comparison; returns the numbers (also printed). SystemExit(2) without data."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the CWRU files")
    ap.add_argument("--window-ms", type=float, default=100.0, help="classified window length")
    ap.add_argument("--train-part", type=float, default=0.6)
    ap.add_argument("--val-part", type=float, default=0.1)
    ap.add_argument("--max-windows", type=int, default=0,
                    help="at most this many windows per class and split (0 = all)")
    ap.add_argument("--dt-us", type=int, default=1000)
    ap.add_argument("--bands", type=int, default=16)
    ap.add_argument("--frame-ms", type=float, default=4.0, help="band-energy analysis frame")
    ap.add_argument("--hop-ms", type=float, default=1.0, help="band-energy frame hop")
    ap.add_argument("--threshold-db", type=float, default=3.0, help="delta step of the encoder")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--hidden", type=int, nargs="+", default=[64])
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate")
    ap.add_argument("--tail-steps", type=int, default=5,
                    help="silent steps after each window before deciding")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-model", type=Path, default=None, help="write the SNN model file")
    ap.add_argument("--json", type=Path, default=None, help="write the results as JSON")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, flush=True)

    missing = [f for f in RECORDINGS.values() if not (args.data / f).is_file()]
    if missing:
        log(f"bearing_fault: CWRU recordings missing in {args.data} ({', '.join(missing)}); this "
            "example needs the shared data folder (../shared/data beside the repository) or "
            "--data DIR")
        raise SystemExit(2)

    from edgesnn.core import Network
    from edgesnn.events import EventBatch
    from edgesnn.train import SpikeDataset, TrainConfig, core_agreement, evaluate, train

    names = list(RECORDINGS)
    signals = [read_drive_end(args.data / f) for f in RECORDINGS.values()]
    n_use = min(len(s) for s in signals)
    width = int(round(args.window_ms * 1e-3 * RATE_HZ))
    cut1 = int(args.train_part * n_use)
    cut2 = int((args.train_part + args.val_part) * n_use)
    log(f"CWRU drive end, {RATE_HZ} Hz: {', '.join(names)}; first {n_use} samples "
        f"({n_use / RATE_HZ:.1f} s) of each; windows of {width} samples ({args.window_ms:g} ms)")
    log(f"  train samples [0, {cut1}), validation [{cut1}, {cut2}), test [{cut2}, {n_use}) "
        "of every recording")
    parts: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray, int]]] = {
        "train": [], "val": [], "test": []}
    t0 = time.perf_counter()
    n_ch = 0
    for c, x in enumerate(signals):
        for split, a, b, hop in (("train", 0, cut1, width // 2), ("val", cut1, cut2, width),
                                 ("test", cut2, n_use, width)):
            starts = window_starts(a, b, width, hop)
            if args.max_windows:
                starts = starts[: args.max_windows]
            for s in starts:
                enc = make_encoder(args.dt_us, args.bands, args.frame_ms, args.hop_ms,
                                   args.threshold_db)
                ptr, idx = encode_window(x[s : s + width], enc)
                db = frame_db(x[s : s + width], enc)
                n_ch = enc.n_channels
                parts[split].append((ptr, idx, db, c))
    edges = make_encoder(args.dt_us, args.bands, args.frame_ms, args.hop_ms,
                         args.threshold_db)
    encode_window(signals[0][:width], edges)

    def ds(items: list) -> SpikeDataset:
        return SpikeDataset.from_samples([(p, i) for p, i, _, _ in items],
                                         [c for *_, c in items], n_ch, args.dt_us, names)

    tr, va, test = ds(parts["train"]), ds(parts["val"]), ds(parts["test"])
    log(f"  encoded {len(tr)} train / {len(va)} validation / {len(test)} test windows in "
        f"{time.perf_counter() - t0:.1f} s: band_energy, {args.bands} bands "
        f"{edges.edges_hz[0]:.0f}-{edges.edges_hz[-1]:.0f} Hz, {args.frame_ms:g} ms frames every "
        f"{args.hop_ms:g} ms, {args.threshold_db:g} dB steps -> {n_ch} channels (UP/DOWN)")
    for c, n in enumerate(names):
        sel = np.flatnonzero(tr.labels == c)
        log(f"  {n:10s} {np.mean([tr.sample(int(i))[1].size for i in sel]):6.0f} input spikes "
            "per training window")

    # --- SNN ---------------------------------------------------------------------------
    cfg = TrainConfig(hidden=list(args.hidden), neuron="cuba_lif", tau_mem_ms=20.0,
                      tau_syn_ms=10.0, epochs=args.epochs, batch_size=args.batch_size,
                      lr=args.lr, logit_scale=0.5, surrogate_beta=2.0, train_bias=True,
                      tail_steps=args.tail_steps, seed=args.seed)
    log(f"SNN: {n_ch} -> {' -> '.join(map(str, cfg.hidden))} -> {len(names)} cuba_lif, "
        f"{cfg.epochs} epochs")
    res = train(tr, va, cfg, log=log)
    model = res.model
    log(f"  best validation epoch {res.best_epoch}; trained in {res.seconds:.1f} s")
    net = Network(model.to_spec())
    net.warm_up()
    n_cls = len(names)
    preds_a, syn, comp, stable = core_decisions(net, test, n_cls, cfg.tail_steps)
    dt_ms = args.dt_us / 1000.0
    steps = test.steps()
    snn_dr, snn_far = detection(preds_a, test.labels)
    ev = evaluate(model, test, cfg)
    checked, differ = core_agreement(model, test, cfg.tail_steps, limit=30)
    snn = {
        "accuracy": float(np.mean(preds_a == test.labels)),
        "detection_rate": snn_dr,
        "false_alarm_rate": snn_far,
        "no_decision": int(np.sum(preds_a < 0)),
        "decision_latency_ms": float(np.mean(steps + cfg.tail_steps) * dt_ms),
        "stable_decision_ms": float(np.mean(np.asarray(stable) + 1) * dt_ms),
        "front_end_ms_per_window": 0.0,
        "compute_ms_per_window": float(np.mean(comp) * 1e3),
        "synaptic_ops_per_window": float(np.mean(syn)),
        "input_spikes_per_window": float(ev.layer_spikes[0] / len(test)),
        "hidden_spikes_per_window": float(ev.layer_spikes[1] / len(test)),
        "trainer_core_prediction_agreement": float(np.mean(ev.predictions == preds_a)),
        "core_spike_check": f"{checked - differ}/{checked} windows identical",
        "train_seconds": res.seconds,
        "best_epoch": res.best_epoch,
    }
    log(f"SNN test accuracy {snn['accuracy']:.3f} (core); trainer forward agrees on "
        f"{snn['trainer_core_prediction_agreement']:.3f} of the predictions; output spikes "
        f"identical on {checked - differ}/{checked} windows")

    # --- ANN ---------------------------------------------------------------------------
    log(f"ANN: band energies ({args.bands} bands x mean, std in dB) -> 64 ReLU -> {n_cls}, "
        "full-batch Adam")
    t0 = time.perf_counter()
    f_tr, f_va, f_te = (np.stack([band_features(db) for _, _, db, _ in parts[s]])
                        for s in ("train", "val", "test"))
    mu, sd = f_tr.mean(0), f_tr.std(0) + 1e-6
    best_acc, mlp = -1.0, None
    for n_ep in (100, 200, 400):  # choose the training length on the validation split
        cand = MLP(f_tr.shape[1], 64, n_cls, seed=args.seed)
        cand.fit((f_tr - mu) / sd, tr.labels, n_ep)
        acc = float(np.mean(np.argmax(cand.logits((f_va - mu) / sd), 1) == va.labels))
        log(f"  {n_ep} epochs: validation accuracy {acc:.3f}")
        if acc > best_acc:
            best_acc, mlp = acc, cand
    assert mlp is not None
    ann_train_s = time.perf_counter() - t0
    ann_pred = np.argmax(mlp.logits((f_te - mu) / sd), axis=1)
    ann_dr, ann_far = detection(ann_pred, test.labels)
    # front ends as a stream would run them (one encoder per recording, fed window by window):
    # the band_energy encoder for the SNN, band energies and their statistics for the ANN
    fe_snn, fe_ann, n_win = 0.0, 0.0, 0
    for x in signals:
        enc = make_encoder(args.dt_us, args.bands, args.frame_ms, args.hop_ms,
                           args.threshold_db)
        starts = window_starts(cut2, n_use, width, width)[: args.max_windows or None]
        for s in starts:
            seg = x[s : s + width]
            t_a = int((s - cut2) * 1_000_000 // RATE_HZ)
            t_b = int((s - cut2 + width) * 1_000_000 // RATE_HZ)
            t1 = time.perf_counter()
            enc.encode(EventBatch("accel", 0, t_a, t_b, seg[:, None].astype(np.float32),
                                  "samples", 0, {"sample_rate_hz": RATE_HZ}))
            t2 = time.perf_counter()
            (band_features(frame_db(seg, enc))[None, :] - mu) / sd
            fe_ann += time.perf_counter() - t2
            fe_snn += t2 - t1
            n_win += 1
    snn["front_end_ms_per_window"] = fe_snn / max(n_win, 1) * 1e3
    times = []
    for f in (f_te - mu) / sd:
        t1 = time.perf_counter()
        mlp.logits(f[None, :])
        times.append(time.perf_counter() - t1)
    ann = {
        "accuracy": float(np.mean(ann_pred == test.labels)),
        "detection_rate": ann_dr,
        "false_alarm_rate": ann_far,
        "decision_latency_ms": float(np.mean(steps) * dt_ms),
        "front_end_ms_per_window": fe_ann / max(n_win, 1) * 1e3,
        "compute_ms_per_window": float(np.mean(times) * 1e3),
        "synaptic_ops_per_window": float(mlp.macs),
        "train_seconds": ann_train_s,
    }
    log(f"ANN test accuracy {ann['accuracy']:.3f}")

    # --- table ---------------------------------------------------------------------------
    log("")
    log(f"{'':36s} {'SNN (core)':>12s} {'ANN (MLP)':>12s}")
    for key, label, fmt in (("accuracy", "test accuracy", ".3f"),
                            ("detection_rate", "fault detection rate", ".3f"),
                            ("false_alarm_rate", "false-alarm rate (normal flagged)", ".3f"),
                            ("decision_latency_ms", "decision at (ms after window start)",
                             ".1f")):
        log(f"{label:36s} {snn[key]:12{fmt}} {ann[key]:12{fmt}}")
    log(f"{'stable running decision (ms)':36s} {snn['stable_decision_ms']:12.1f} {'-':>12s}")
    log(f"{'front end per window (ms)':36s} {snn['front_end_ms_per_window']:12.3f} "
        f"{ann['front_end_ms_per_window']:12.3f}")
    log(f"{'network compute per window (ms)':36s} {snn['compute_ms_per_window']:12.3f} "
        f"{ann['compute_ms_per_window']:12.3f}")
    log(f"{'synaptic ops / MACs per window':36s} {snn['synaptic_ops_per_window']:12.0f} "
        f"{ann['synaptic_ops_per_window']:12.0f}")
    log(f"(chance 0.250; {len(test)} test windows; the SNN decides {cfg.tail_steps} steps after "
        "the window, the ANN's features need the whole window; front end: the band_energy "
        "encoder (SNN) or band energies and their statistics (ANN), both FFT-based, streamed "
        "window by window; no decision counts "
        "as wrong and raises no alarm)")
    out = {"snn": snn, "ann": ann, "config": asdict(cfg), "classes": names,
           "n_train": len(tr), "n_val": len(va), "n_test": len(test), "dt_us": args.dt_us,
           "window_samples": width}
    if args.save_model:
        model.save(args.save_model)
        log(f"wrote {args.save_model} ({args.save_model.stat().st_size} bytes)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
