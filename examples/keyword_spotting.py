"""Spoken-digit keyword spotting on the Free Spoken Digit Dataset: an SNN against an SVM on MFCC.

The SNN sees what a pipeline gives it: every WAV is replayed by edgesnn's `wav` driver and
encoded by the `logmel` encoder (log-mel band energies per 10 ms step, levels relative to a
running peak, thermometer-coded as spikes). It is trained with surrogate gradients by
`edgesnn.train` (the spoken-digit recipe, `edgesnn.train.recipe.KWS_TRAIN`) and tested by
running `edgesnn.core.Network` on each test utterance from reset, deciding by output spike counts
`tail_steps` silent steps after the utterance (a tie or silence is no decision, counted wrong).
The baseline is a scikit-learn SVM (RBF) on MFCC features (13 coefficients, means over four
equal parts of the utterance and standard deviations) computed here in numpy from the same
WAVs, trained and tested on the same split.

Split by recording: labels come from the file names (`<digit>_<speaker>_<index>.wav`); a file is
either a training or a test recording, never both. Without --train/--test the recordings in
../shared/data/audio/fsdd are split by index: 5-9 train, 0-4 test (the same six speakers).

    python3 examples/keyword_spotting.py                          # about 2 minutes on 2 cores
    python3 examples/keyword_spotting.py --train DIR --test 'OTHER/*_[1-4][0-9].wav' --json
    python3 examples/keyword_spotting.py --seeds 1 --save-model kws.npz
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.evaluation import (
    SplitError,
    add_split_args,
    baseline_summary,
    check_disjoint,
    check_plot,
    decide,
    emit,
    expand_recordings,
    fsdd_label,
    plot_result,
    report,
    seed_summary,
)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "audio" / "fsdd"
DIGITS = [str(d) for d in range(10)]


# --- the MFCC baseline ---------------------------------------------------------------------------


def mfcc(x: np.ndarray, rate: int, n_mfcc: int = 13, bands: int = 26, frame_ms: float = 25.0,
         hop_ms: float = 10.0) -> np.ndarray:
    """(frames, n_mfcc) MFCCs: Hann frames, power spectrum, mel filterbank, log, DCT-II."""
    from edgesnn.encoders.audio import mel_filterbank

    hop = int(round(rate * hop_ms / 1000))
    fl = int(round(rate * frame_ms / 1000))
    n_fft = 1 << (fl - 1).bit_length()
    n = max(1, -(-x.size // hop))
    xp = np.concatenate([np.zeros(fl), x, np.zeros(hop)])
    frames = np.lib.stride_tricks.sliding_window_view(xp, fl)[hop::hop][:n]
    power = np.abs(np.fft.rfft(frames * np.hanning(fl), n_fft, axis=1)) ** 2
    fb = mel_filterbank(bands, n_fft, rate, 100.0, min(3800.0, 0.475 * rate))
    logmel = np.log10(power @ fb.T + 1e-10)
    k = np.arange(bands)
    dct = np.cos(np.pi / bands * (k[None, :] + 0.5) * np.arange(n_mfcc)[:, None])
    return logmel @ dct.T


def mfcc_features(path: Path) -> np.ndarray:
    """One vector per utterance: MFCC means over 4 equal parts and MFCC standard deviations."""
    from edgesnn_drivers.audio.wav import read_wav

    rate, x = read_wav(path)
    c = mfcc(x.mean(axis=1).astype(np.float64), rate)
    parts = np.array_split(np.arange(c.shape[0]), 4)
    return np.concatenate([c[p].mean(axis=0) if p.size else c.mean(axis=0) for p in parts]
                          + [c.std(axis=0)])


def baselines(train: list[Path], y_tr: np.ndarray, test: list[Path], y_te: np.ndarray,
              seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(SVM, MLP) results on MFCC features of the same split."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    f_tr = np.array([mfcc_features(p) for p in train])
    f_te = np.array([mfcc_features(p) for p in test])
    svm = make_pipeline(StandardScaler(), SVC(C=10.0, gamma="scale")).fit(f_tr, y_tr)
    mlp = make_pipeline(StandardScaler(), MLPClassifier((128,), alpha=1e-3, max_iter=1000,
                                                        random_state=seed)).fit(f_tr, y_tr)
    return (baseline_summary("SVM (RBF, C=10) on MFCC (13 x 4 part means + sd), scikit-learn",
                             y_te, svm.predict(f_te), DIGITS),
            baseline_summary("MLP (128 ReLU) on the same MFCC features, scikit-learn",
                             y_te, mlp.predict(f_te), DIGITS))


# --- the SNN -------------------------------------------------------------------------------------


def core_predictions(model: Any, ds: Any, tail_steps: int) -> tuple[np.ndarray, float]:
    """Decisions of `edgesnn.core.Network` (built from the model) on every sample from reset:
    output spike counts over the sample and `tail_steps` silent steps, `decide` (tie: -1);
    and synaptic events per sample."""
    from edgesnn.train.ensemble import label_scores

    net = model.to_network()
    net.warm_up()
    n_out = model.n_outputs
    counts = np.zeros((len(ds), n_out))
    syn = 0
    for i in range(len(ds)):
        ptr, idx = ds.sample(i)
        ptr = np.concatenate([ptr, np.full(tail_steps, ptr[-1])])
        net.reset()
        rec = net.run(ptr, idx)
        np.add.at(counts[i], rec.idx, 1)
        syn += rec.syn_events
    return decide(label_scores(counts, model.neurons_per_label)), syn / max(len(ds), 1)


def disjoint(train: list[Any], test: list[Any]) -> None:
    """`check_disjoint` on the pairs that share a file (each path resolved once, so thousands
    of recordings are checked in linear time); SplitError on an overlap."""
    by_path: dict[Path, list[Any]] = {}
    for r in train:
        by_path.setdefault(r.path.resolve(), []).append(r)
    for r in test:
        same = by_path.get(r.path.resolve())
        if same:
            check_disjoint(same, [r])


def _default_split(data: Path) -> tuple[list[str], list[str]]:
    files = sorted(data.glob("*.wav"))
    tr = [str(p) for p in files if fsdd_label(p)[2] % 10 >= 5]
    te = [str(p) for p in files if fsdd_label(p)[2] % 10 < 5]
    return tr, te


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the comparison; returns the report (also printed). SystemExit(2) on bad input."""
    from edgesnn.train import core_agreement, train
    from edgesnn.train.recipe import (
        KWS_AUGMENT,
        KWS_DT_US,
        KWS_ENCODER,
        encode_wavs,
        fit_cepstra,
        kws_config,
        make_recipe,
    )
    from edgesnn.train.recipe import save_model as save_with_recipe

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_split_args(ap, "../shared/data/audio/fsdd split by index: 5-9 train, 0-4 test")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA,
                    help="folder of FSDD WAVs for the default split")
    ap.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    ap.add_argument("--hidden", type=int, nargs="+", default=None,
                    help="override the recipe's hidden layer sizes")
    ap.add_argument("--ensemble", type=int, default=None, metavar="K",
                    help="override the recipe's ensemble: K members per seed, folded into one "
                    "network")
    ap.add_argument("--save-model", type=Path, default=None,
                    help="write the seed-0 SNN model file (with its recipe)")
    args = ap.parse_args(argv)
    quiet = args.json

    def log(msg: str) -> None:
        print(msg, file=sys.stderr if quiet else sys.stdout, flush=True)

    try:
        if args.train is None and args.test is None:
            if not args.data.is_dir() or not any(args.data.glob("*.wav")):
                log(f"keyword_spotting: no FSDD recordings in {args.data}; this example needs "
                    "the shared data folder (../shared/data beside the repository), --data DIR, "
                    "or --train/--test")
                raise SystemExit(2)
            tr_specs, te_specs = _default_split(args.data)
            split = f"by recording: {args.data.name} indices 5-9 train, 0-4 test"
        elif args.train is None or args.test is None:
            log("keyword_spotting: give both --train and --test (or neither)")
            raise SystemExit(2)
        else:
            tr_specs, te_specs = args.train, args.test
            split = "by recording: --train " + " ".join(args.train) + " / --test " + " ".join(
                args.test)
        train_rec = expand_recordings(tr_specs, (".wav",))
        test_rec = expand_recordings(te_specs, (".wav",))
        disjoint(train_rec, test_rec)
        y_tr = np.array([fsdd_label(r.path)[0] for r in train_rec])
        y_te = np.array([fsdd_label(r.path)[0] for r in test_rec])
    except SplitError as e:
        log(f"keyword_spotting: {e}")
        raise SystemExit(2) from None
    if args.seeds < 1:
        log("keyword_spotting: --seeds must be at least 1")
        raise SystemExit(2)
    check_plot(args.plot, "keyword_spotting", log)
    tr_paths = [r.path for r in train_rec]
    te_paths = [r.path for r in test_rec]
    encoder = fit_cepstra(tr_paths, KWS_ENCODER, KWS_DT_US)  # fitted on training files only
    log(f"FSDD: {len(tr_paths)} training and {len(te_paths)} test recordings; wav -> logmel "
        f"({encoder.get('output', 'bands')}), dt {KWS_DT_US} us")
    tr = encode_wavs(tr_paths, y_tr, DIGITS, encoder, KWS_DT_US, log=log, augment=KWS_AUGMENT)
    te = encode_wavs(te_paths, y_te, DIGITS, encoder, KWS_DT_US, log=log)

    over: dict[str, Any] = {}
    if args.epochs is not None:
        over["epochs"] = args.epochs
    if args.hidden is not None:
        over["hidden"] = list(args.hidden)
    if args.ensemble is not None:
        over["ensemble"] = args.ensemble
    preds, times, syn, agree = [], [], [], []
    histories: list[list[dict[str, float]]] = []
    cfg = kws_config(**over)
    for seed in range(args.seeds):
        cfg = kws_config(seed=seed, **over)
        members = f", an ensemble of {cfg.ensemble} folded into one" if cfg.ensemble > 1 else ""
        log(f"SNN seed {seed}: {tr.n_inputs} -> {' -> '.join(map(str, cfg.hidden))} -> 10 "
            f"{cfg.neuron}{members}, {cfg.epochs} epochs on {len(tr)} utterances (augmented "
            "copies included)")
        res = train(tr, None, cfg, log=log)
        times.append(res.seconds)
        histories.append(res.history)
        pred, s = core_predictions(res.model, te, cfg.tail_steps)
        preds.append(pred)
        syn.append(s)
        checked, differ = core_agreement(res.model, te, cfg.tail_steps, limit=20)
        agree.append(f"{checked - differ}/{checked}")
        log(f"  seed {seed}: test accuracy {np.mean(pred == y_te):.4f} (core), "
            f"{int(np.sum(pred < 0))} undecided, trained in {res.seconds:.0f} s")
        if seed == 0 and args.save_model:
            save_with_recipe(res.model, args.save_model, make_recipe(
                cfg, dt_us=KWS_DT_US, labels=DIGITS, encoder=encoder,
                extra={"train_s": round(res.seconds, 3), "n_train": len(tr_paths),
                       "augment": KWS_AUGMENT}))
            log(f"wrote {args.save_model}")
    snn = seed_summary(y_te, preds, DIGITS)
    snn["synaptic_events_per_utterance"] = float(np.mean(syn))
    snn["core_matches_trainer"] = agree
    log("baselines: SVM and MLP on MFCC features")
    svm, mlp = baselines(tr_paths, y_tr, te_paths, y_te, seed=0)
    result = report(
        "keyword_spotting", n_train=len(tr_paths), n_test=len(te_paths),
        train_s=float(np.mean(times)), snn=snn, baseline=svm, split=split,
        extra={"mlp": mlp, "train_s_per_seed": times, "seeds": args.seeds,
               "recipe": make_recipe(cfg, dt_us=KWS_DT_US, labels=DIGITS, encoder=encoder,
                                     extra={"augment": KWS_AUGMENT})},
    )
    emit(result, args.json, log)
    if args.plot:
        log(f"wrote {plot_result(args.plot, result, histories[0] if histories else None)}")
    if not args.json:
        log(f"  MLP       {100 * mlp['accuracy']:6.2f} %   ({mlp['name']})")
        log(f"  SNN training {np.mean(times):.0f} s per seed; "
            f"{snn['synaptic_events_per_utterance']:.0f} synaptic events per utterance")
    return result


if __name__ == "__main__":
    main()
