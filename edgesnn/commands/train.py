"""`edgesnn train`: supervised surrogate-gradient training of a feedforward SNN model file."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

DATASET_HELP = """\
dataset (.npz, no pickle; the recording format of `edgesnn deploy --check-on`):
  in_ptr      int64 (steps+1)   CSR over all steps: step k's spikes are
                                in_idx[in_ptr[k]:in_ptr[k+1]]
  in_idx      int32             input channels 0..n_inputs-1, unique within a step
  sample_ptr  int64 (N+1)       sample i is steps sample_ptr[i]:sample_ptr[i+1] (from reset)
  labels      int64 (N)         class of each sample, 0..C-1
  n_inputs    int, optional     input channels (default: max index + 1)
  dt_us       int, optional     step in µs (default 1000); the model runs at this dt_us
  label_names str (C), optional names of the classes

or encode labelled recordings with a pipeline's own driver and encoder:
  edgesnn train --pipeline kws.toml --recordings data/*.wav --label-regex '^(\\d)_' --out m.npz

examples:
  edgesnn train train.npz --out model.npz --hidden 128 --epochs 30
  edgesnn train train.npz --val test.npz --out model.npz --report report.json
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train an SNN model file with surrogate gradients (BPTT)",
        description="Train a feedforward SNN (input -> dense -> lif/cuba_lif layers -> one "
        "output neuron per class) with surrogate-gradient backpropagation through time, on "
        "the core's own update equations, so the model file (Network.save format) spikes in "
        "`edgesnn run` exactly as in training. Prints loss and accuracy per epoch; writes the "
        "model of the best validation epoch and a JSON report. Exit 0 on success, 2 on bad "
        "input.",
        epilog=DATASET_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dataset", nargs="?", metavar="DATASET", help="training set (.npz)")
    p.add_argument("--out", required=True, metavar="MODEL", help="model file to write (.npz)")
    p.add_argument("--report", metavar="JSON", help="report file (default: MODEL.report.json)")
    src = p.add_argument_group("encoding recordings with a pipeline")
    src.add_argument("--pipeline", metavar="TOML", help="pipeline whose driver and encoder "
                     "make the spikes (its driver's `path` is replaced by each recording)")
    src.add_argument("--recordings", nargs="+", metavar="FILE", default=[],
                     help="labelled recordings")
    src.add_argument("--label-regex", metavar="REGEX", default=r"^([^_]+)_",
                     help="group 1 of this regex on the file name is the label "
                     "(default: the text before the first underscore)")
    src.add_argument("--save-dataset", metavar="NPZ", help="also write the encoded dataset")
    val = p.add_argument_group("validation")
    val.add_argument("--val", metavar="NPZ", help="validation set (default: held out)")
    val.add_argument("--val-fraction", type=float, default=0.2,
                     help="share of each class held out when --val is not given (0: none)")
    m = p.add_argument_group("model and training")
    m.add_argument("--hidden", type=int, nargs="*", default=[128], metavar="N",
                   help="hidden layer sizes (default 128; none: input -> output)")
    m.add_argument("--neuron", choices=("cuba_lif", "lif"), default="cuba_lif")
    m.add_argument("--tau-mem-ms", type=float, default=20.0)
    m.add_argument("--tau-syn-ms", type=float, default=5.0, help="cuba_lif current decay")
    m.add_argument("--out-tau-mem-ms", type=float, default=None,
                   help="output layer membrane (default: --tau-mem-ms)")
    m.add_argument("--t-ref-ms", type=float, default=0.0)
    m.add_argument("--epochs", type=int, default=20)
    m.add_argument("--batch-size", type=int, default=32)
    m.add_argument("--lr", type=float, default=5e-3, help="Adam learning rate (cosine decay)")
    m.add_argument("--loss", choices=("count", "max_v"), default="count",
                   help="cross-entropy over output spike counts or membrane maxima")
    m.add_argument("--logit-scale", type=float, default=0.5)
    m.add_argument("--surrogate-beta", type=float, default=2.0)
    m.add_argument("--train-bias", action="store_true", help="also learn i_bias per neuron")
    m.add_argument("--init-gain", type=float, default=1.0)
    m.add_argument("--rate-reg", type=float, default=0.0, help="hidden firing-rate penalty")
    m.add_argument("--tail-steps", type=int, default=0,
                   help="silent steps after each sample before counting ends")
    m.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def _fail(msg: str) -> int:
    print(f"edgesnn train: {msg}", file=sys.stderr)
    return 2


def encode_recordings(pipeline: str, files: list[str], label_regex: str) -> Any:
    """A SpikeDataset of `files` encoded by the pipeline's driver -> encoder (fresh per file);
    labels from group 1 of `label_regex` on each file name, classes in sorted order."""
    import numpy as np

    from edgesnn.config import pipeline as P
    from edgesnn.train import SpikeDataset

    cfg = P.load(pipeline)
    comps = cfg.by_id()
    encoders = [c for c in cfg.components if c.kind == "encoder"]
    if len(encoders) != 1:
        raise ValueError(f"the pipeline has {len(encoders)} encoders; training needs exactly one")
    enc_cfg = encoders[0]
    drivers = [comps[i] for i in enc_cfg.inputs if comps[i].kind == "driver"]
    if len(drivers) != 1 or "path" not in drivers[0].params:
        raise ValueError(f"encoder {enc_cfg.id!r} must be fed by one file-replay driver")
    drv_cfg = drivers[0]
    rx = re.compile(label_regex)
    names: list[str] = []
    for f in files:
        mt = rx.search(Path(f).name)
        if not mt or not mt.groups():
            raise ValueError(f"{f}: the label regex {label_regex!r} does not match its name "
                             "(group 1 is the label)")
        names.append(mt.group(1))
    classes = sorted(set(names), key=lambda s: (len(s), s))
    ctx = cfg.context()
    samples = []
    n_ch = 0
    for f in files:
        if not Path(f).is_file():
            raise ValueError(f"{f}: no such recording")
        params = dict(drv_cfg.params, path=str(Path(f).resolve()))
        drv = drv_cfg.cls(drv_cfg.id, params, ctx)
        enc = enc_cfg.cls(enc_cfg.id, enc_cfg.params, ctx)
        ptrs, idxs, base = [np.zeros(1, np.int64)], [], 0
        for r in [enc.encode(b) for b in drv.iter_batches()] + [enc.flush()]:
            if r is None:
                continue
            p = r.ptr - r.ptr[0]
            ptrs.append(p[1:] + base)
            idxs.append(r.idx[r.ptr[0] : r.ptr[-1]].astype(np.int32))
            base += int(p[-1])
        n_ch = enc.n_channels
        ptr = np.concatenate(ptrs)
        if ptr.size < 2:
            raise ValueError(f"{f}: the encoder produced no steps")
        samples.append((ptr, np.concatenate(idxs) if idxs else np.zeros(0, np.int32)))
    labels = [classes.index(n) for n in names]
    return SpikeDataset.from_samples(samples, labels, n_ch, ctx.dt_us, classes)


def run(args: argparse.Namespace) -> int:
    from edgesnn.errors import ConfigError, FormatError
    from edgesnn.train import SpikeDataset, TrainConfig, core_agreement, evaluate, train

    if bool(args.dataset) == bool(args.pipeline):
        return _fail("give a DATASET file or --pipeline with --recordings (one of them)")
    try:
        if args.pipeline:
            if not args.recordings:
                return _fail("--pipeline needs --recordings FILE ...")
            print(f"encoding {len(args.recordings)} recordings with {args.pipeline}", flush=True)
            ds = encode_recordings(args.pipeline, args.recordings, args.label_regex)
            if args.save_dataset:
                ds.save(args.save_dataset)
                print(f"wrote {args.save_dataset}")
        else:
            ds = SpikeDataset.load(args.dataset)
        val = SpikeDataset.load(args.val) if args.val else None
    except ConfigError as e:
        return _fail("invalid pipeline:\n  " + "\n  ".join(str(p) for p in e.problems))
    except (FormatError, OSError, ValueError, re.error) as e:
        return _fail(str(e))
    if len(set(ds.labels.tolist())) < 2:
        return _fail("the training set needs samples of at least two classes")
    if val is not None and (val.n_inputs != ds.n_inputs or val.dt_us != ds.dt_us):
        return _fail(f"--val has {val.n_inputs} inputs at dt {val.dt_us} us, the training "
                     f"set {ds.n_inputs} at {ds.dt_us} us")
    if val is None and args.val_fraction > 0:
        if not 0 < args.val_fraction < 1:
            return _fail("--val-fraction must be between 0 and 1")
        ds, val = ds.split(args.val_fraction, seed=args.seed)
    cfg = TrainConfig(
        hidden=list(args.hidden), neuron=args.neuron, tau_mem_ms=args.tau_mem_ms,
        tau_syn_ms=args.tau_syn_ms, out_tau_mem_ms=args.out_tau_mem_ms, v_th=1.0,
        t_ref_ms=args.t_ref_ms, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        loss=args.loss, logit_scale=args.logit_scale, surrogate_beta=args.surrogate_beta,
        train_bias=args.train_bias, init_gain=args.init_gain, rate_reg=args.rate_reg,
        tail_steps=args.tail_steps, seed=args.seed,
    )
    try:
        cfg.check()
    except ValueError as e:
        return _fail(str(e))
    print(f"training on {len(ds)} samples ({ds.n_inputs} inputs, {ds.n_classes} classes, "
          f"dt {ds.dt_us} us), validating on {len(val) if val is not None else 0}", flush=True)
    res = train(ds, val, cfg, log=lambda s: print(s, flush=True))
    out = Path(args.out)
    res.model.save(out)
    report: dict[str, Any] = res.report()
    report.update({
        "model": str(out),
        "model_bytes": out.stat().st_size,
        "dataset": {"samples": len(ds), "inputs": ds.n_inputs, "dt_us": ds.dt_us,
                    "classes": ds.label_names},
    })
    if val is not None and len(val):
        ev = evaluate(res.model, val, cfg)
        n, differ = core_agreement(res.model, val, cfg.tail_steps, limit=20)
        report["validation"] = {"samples": len(val), "accuracy": ev.accuracy, "loss": ev.loss,
                                "synaptic_events_per_sample": ev.syn_events / len(val)}
        report["core_check"] = {"samples": n, "identical_output_spikes": n - differ}
        print(f"validation accuracy {ev.accuracy:.3f} (epoch {res.best_epoch}); the core "
              f"reproduces the output spikes of {n - differ}/{n} checked samples")
    rpath = Path(args.report) if args.report else out.with_name(out.name + ".report.json")
    rpath.write_text(json.dumps(report, indent=2))
    print(f"wrote {out} and {rpath}")
    return 0
