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
or WAV recordings (files, folders, globs) with the spoken-digit recipe's encoder (logmel):
  edgesnn train --recordings ../shared/data/audio/fsdd --out kws.npz

The defaults are the spoken-digit recipe (edgesnn.train.recipe.KWS_RECIPE); every setting, the
encoder's and the training's, is stored in the model file (manifest key "recipe").
--profile NAME trains within a chip's limits (time step, with tail and shift steps scaled to
keep their duration; neuron models; one synaptic time constant per synapse type; refractory
counter) so that `edgesnn deploy` accepts the model, then checks the trained model with every
design rule of `edgesnn deploy` (report key "profile_check"; exit 1 when one is broken).

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
        "model of the best validation epoch and a JSON report. Exit 0 on success, 1 when "
        "the model breaks a design rule of --profile, 2 on bad input.",
        epilog=DATASET_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dataset", nargs="?", metavar="DATASET", help="training set (.npz)")
    p.add_argument("--out", required=True, metavar="MODEL", help="model file to write (.npz)")
    p.add_argument("--report", metavar="JSON", help="report file (default: MODEL.report.json)")
    p.add_argument("--plot", metavar="FILE.png", help="also draw the learning curve and the "
                   "confusion matrix (needs matplotlib: pip install 'edgesnn[plot]')")
    src = p.add_argument_group("encoding recordings with a pipeline")
    src.add_argument("--pipeline", metavar="TOML", help="pipeline whose driver and encoder "
                     "make the spikes (its driver's `path` is replaced by each recording)")
    src.add_argument("--recordings", nargs="+", metavar="PATH", default=[],
                     help="labelled recordings: files, folders or globs (without --pipeline: "
                     "WAV files encoded with the recipe's logmel encoder)")
    src.add_argument("--label-regex", metavar="REGEX", default=r"^([^_]+)_",
                     help="group 1 of this regex on the file name is the label "
                     "(default: the text before the first underscore)")
    src.add_argument("--save-dataset", metavar="NPZ", help="also write the encoded dataset")
    val = p.add_argument_group("validation")
    val.add_argument("--val", metavar="NPZ", help="validation set (default: held out)")
    val.add_argument("--val-fraction", type=float, default=0.0,
                     help="share of each class held out when --val is not given (default 0: "
                     "train on everything, keep the last epoch)")
    m = p.add_argument_group("model and training (defaults: the spoken-digit recipe)")
    d = recipe_defaults()
    m.add_argument("--profile", metavar="NAME",
                   help="firmware profile (shipped name such as loihi2, spinnaker2, or a file) "
                   "whose time step and synapse limits the training respects")
    m.add_argument("--hidden", type=int, nargs="*", default=d.hidden, metavar="N",
                   help=f"hidden layer sizes (default {' '.join(map(str, d.hidden))}; none: "
                   "input -> output)")
    m.add_argument("--neuron", choices=("cuba_lif", "lif"), default=d.neuron)
    m.add_argument("--tau-mem-ms", type=float, default=d.tau_mem_ms)
    m.add_argument("--tau-syn-ms", type=float, default=d.tau_syn_ms,
                   help="cuba_lif current decay")
    m.add_argument("--tau-syn-inh-ms", type=float, default=d.tau_syn_inh_ms,
                   help="cuba_lif inhibitory current decay (default: the core's; --profile "
                   "sets it to --tau-syn-ms where the chip needs one time constant)")
    m.add_argument("--out-tau-mem-ms", type=float, default=d.out_tau_mem_ms,
                   help="output layer membrane (default: --tau-mem-ms)")
    m.add_argument("--t-ref-ms", type=float, default=d.t_ref_ms)
    m.add_argument("--reset", choices=("zero", "subtract"), default=d.reset,
                   help="reset to v_reset, or subtract v_th at a spike (the reset of chips "
                   "such as Xylo; --profile sets it from the chip's reset.mode)")
    m.add_argument("--epochs", type=int, default=d.epochs)
    m.add_argument("--batch-size", type=int, default=d.batch_size)
    m.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate (cosine decay)")
    m.add_argument("--loss", choices=("count", "max_v"), default=d.loss,
                   help="cross-entropy over output spike counts or membrane maxima")
    m.add_argument("--logit-scale", type=float, default=d.logit_scale)
    m.add_argument("--surrogate-beta", type=float, default=d.surrogate_beta)
    m.add_argument("--train-bias", action=argparse.BooleanOptionalAction, default=d.train_bias,
                   help="also learn i_bias per neuron")
    m.add_argument("--init-gain", type=float, default=d.init_gain)
    m.add_argument("--weight-decay", type=float, default=d.weight_decay)
    m.add_argument("--rate-reg", type=float, default=d.rate_reg, help="hidden firing-rate penalty")
    m.add_argument("--tail-steps", type=int, default=d.tail_steps,
                   help="silent steps after each sample before counting ends")
    m.add_argument("--balanced", action=argparse.BooleanOptionalAction, default=d.balanced,
                   help="class-balanced minibatches")
    m.add_argument("--stretch", type=float, default=d.stretch,
                   help="time-stretch augmentation: factor in 1 +- this")
    m.add_argument("--shift-steps", type=int, default=d.shift_steps,
                   help="start-shift augmentation: up to this many silent steps first")
    m.add_argument("--input-dropout", type=float, default=d.input_dropout,
                   help="drop each input spike with this probability in training")
    m.add_argument("--channel-mask", type=int, default=d.channel_mask, metavar="N",
                   help="SpecAugment channel mask: up to N adjacent input channels silenced per "
                   "training sample (0 = off; default: %(default)s)")
    m.add_argument("--channel-masks", type=int, default=d.channel_masks, metavar="K",
                   help="channel masks per training sample (default: %(default)s)")
    m.add_argument("--time-mask-steps", type=int, default=d.time_mask_steps, metavar="N",
                   help="SpecAugment time mask: up to N adjacent steps silenced per training "
                   "sample (0 = off; default: %(default)s)")
    m.add_argument("--input-delays-ms", type=float, nargs="*", default=d.input_delays_ms,
                   metavar="MS", help="input delay taps: the first layer also sees the input "
                   "this long ago, one weight matrix per tap (default: %(default)s)")
    m.add_argument("--layer-delays-ms", type=float, nargs="*", default=d.layer_delays_ms,
                   metavar="MS", help="delay taps of every later projection (hidden -> hidden, "
                   "hidden -> out): a time-delay network (default: %(default)s)")
    m.add_argument("--keep", choices=("last", "best"), default="last" if d.keep_last else "best",
                   help="weights of the last epoch, or of the best validation epoch")
    m.add_argument("--average-epochs", type=int, default=d.average_epochs, metavar="N",
                   help="the model is the mean of the weights after every minibatch of the "
                   "last N epochs (stochastic weight averaging; 0 = off; default: %(default)s)")
    m.add_argument("--max-bias", type=float, default=d.max_bias,
                   help="cap on learned biases (below v_th - v_rest: silent without input)")
    m.add_argument("--ensemble", type=int, default=d.ensemble, metavar="K",
                   help="train K members from seeds SEED*K..SEED*K+K-1, one process per core, and "
                   "fold them into one network with K output neurons per label whose counts "
                   "add up (default: %(default)s)")
    m.add_argument("--seed", type=int, default=d.seed)
    m.add_argument("--progress-every-s", type=float, default=5.0,
                   help="seconds between progress lines within an epoch (stderr)")
    p.set_defaults(func=run)


def recipe_defaults() -> Any:
    """The TrainConfig whose values are the command's defaults (the spoken-digit recipe)."""
    from edgesnn.train.recipe import kws_config

    return kws_config()


def _fail(msg: str) -> int:
    print(f"edgesnn train: {msg}", file=sys.stderr)
    return 2


def encode_recordings(pipeline: str, files: list[str], label_regex: str,
                      dt_us: int | None = None, with_encoder: bool = False) -> Any:
    """A SpikeDataset of `files` encoded by the pipeline's driver -> encoder (fresh per file);
    labels from group 1 of `label_regex` on each file name, classes in sorted order. At the
    pipeline's dt_us, or `dt_us`; with `with_encoder`, (dataset, encoder settings)."""
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
    labels, classes = _labels_of(files, label_regex)
    ctx = cfg.context()
    if dt_us is not None:
        ctx.dt_us = int(dt_us)
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
    ds = SpikeDataset.from_samples(samples, labels, n_ch, ctx.dt_us, classes)
    if with_encoder:
        return ds, {"type": enc_cfg.cls.type_name, **enc_cfg.params}
    return ds


def _labels_of(files: list[str], label_regex: str) -> tuple[list[int], list[str]]:
    """Class indices and sorted class names of `files` from group 1 of `label_regex`."""
    rx = re.compile(label_regex)
    names: list[str] = []
    for f in files:
        mt = rx.search(Path(f).name)
        if not mt or not mt.groups():
            raise ValueError(f"{f}: the label regex {label_regex!r} does not match its name "
                             "(group 1 is the label)")
        names.append(mt.group(1))
    classes = sorted(set(names), key=lambda s: (len(s), s))
    return [classes.index(n) for n in names], classes


def _confusion(y: Any, pred: Any, names: list[str]) -> list[str]:
    """Lines of a confusion matrix (rows: true class; last column: no decision)."""
    k = len(names)
    conf = [[0] * (k + 1) for _ in range(k)]
    for t, q in zip(y.tolist(), pred.tolist()):
        conf[t][q if q >= 0 else k] += 1
    w = max(4, *(len(n) for n in names)) + 1
    lines = [" " * w + "".join(f"{n:>{w}}" for n in names) + f"{'none':>{w}}"]
    for i, row in enumerate(conf):
        lines.append(f"{names[i]:>{w}}" + "".join(f"{c:>{w}}" for c in row))
    return lines


def run(args: argparse.Namespace) -> int:
    import time

    from edgesnn.errors import ConfigError, FormatError
    from edgesnn.evaluation import SplitError, expand_recordings
    from edgesnn.train import SpikeDataset, TrainConfig, core_agreement, evaluate, train
    from edgesnn.train.recipe import (
        KWS_AUGMENT,
        KWS_DT_US,
        KWS_ENCODER,
        apply_profile,
        encode_wavs,
        fit_cepstra,
        make_recipe,
        resample,
        save_model,
    )

    def note(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.pipeline and not args.recordings:
        return _fail("--pipeline needs --recordings FILE ...")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            return _fail("--plot needs matplotlib (pip install 'edgesnn[plot]')")
    if bool(args.dataset) == bool(args.recordings):
        return _fail("give a DATASET file or --recordings (with or without --pipeline), "
                     "one of them")
    cfg = TrainConfig(
        hidden=list(args.hidden), neuron=args.neuron, tau_mem_ms=args.tau_mem_ms,
        tau_syn_ms=args.tau_syn_ms, tau_syn_inh_ms=args.tau_syn_inh_ms,
        out_tau_mem_ms=args.out_tau_mem_ms, v_th=1.0, t_ref_ms=args.t_ref_ms, reset=args.reset,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, loss=args.loss,
        logit_scale=args.logit_scale, surrogate_beta=args.surrogate_beta,
        train_bias=args.train_bias, init_gain=args.init_gain, weight_decay=args.weight_decay,
        rate_reg=args.rate_reg, tail_steps=args.tail_steps, seed=args.seed,
        balanced=args.balanced, stretch=args.stretch, shift_steps=args.shift_steps,
        input_dropout=args.input_dropout, keep_last=args.keep == "last",
        max_bias=args.max_bias, input_delays_ms=list(args.input_delays_ms),
        average_epochs=args.average_epochs, layer_delays_ms=list(args.layer_delays_ms),
        channel_mask=args.channel_mask, channel_masks=args.channel_masks,
        time_mask_steps=args.time_mask_steps, ensemble=args.ensemble,
    )
    try:
        cfg.check()
    except ValueError as e:
        return _fail(str(e))
    profile, profile_notes = None, []
    if args.profile:
        from edgesnn.deploy.profile import load_profile

        try:
            profile = load_profile(args.profile)
        except ConfigError as e:
            return _fail("; ".join(str(p) for p in e.problems))
    encoder: dict[str, Any] | None = None
    augment: dict[str, Any] | None = None
    val = None
    try:
        if args.recordings:
            files = [str(r.path) for r in expand_recordings(
                args.recordings, () if args.pipeline else (".wav", ".WAV"))]
            labels, classes = _labels_of(files, args.label_regex)
            if args.pipeline:
                from edgesnn.config import pipeline as P

                dt_us = P.load(args.pipeline).context().dt_us
            else:
                dt_us = KWS_DT_US
            if profile is not None:
                cfg, dt_us, profile_notes = apply_profile(cfg, dt_us, profile)
            print(f"encoding {len(files)} recordings "
                  f"({'with ' + args.pipeline if args.pipeline else 'logmel encoder'}, "
                  f"dt {dt_us} us)", flush=True)
            if args.pipeline:
                ds, encoder = encode_recordings(args.pipeline, files, args.label_regex, dt_us,
                                                with_encoder=True)
            else:
                encoder = fit_cepstra(files, KWS_ENCODER, dt_us)
                augment = KWS_AUGMENT
                if not args.val and 0 < args.val_fraction < 1:
                    # hold out whole recordings before their augmented copies are made
                    import numpy as np

                    rng = np.random.default_rng(args.seed)
                    y = np.asarray(labels)
                    held = np.zeros(len(files), bool)
                    for c in np.unique(y):
                        m = rng.permutation(np.flatnonzero(y == c))
                        held[m[: int(round(args.val_fraction * m.size))]] = True
                    val = encode_wavs([f for f, h in zip(files, held) if h],
                                      y[held].tolist(), classes, encoder, dt_us)
                    files = [f for f, h in zip(files, held) if not h]
                    labels = y[~held].tolist()
                ds = encode_wavs(files, labels, classes, encoder, dt_us, log=note,
                                 augment=augment)
            if args.save_dataset:
                ds.save(args.save_dataset)
                print(f"wrote {args.save_dataset}")
        else:
            ds = SpikeDataset.load(args.dataset)
            if profile is not None:
                cfg, dt_us, profile_notes = apply_profile(cfg, ds.dt_us, profile)
                ds = resample(ds, dt_us)
        if args.val:
            val = SpikeDataset.load(args.val)
        if val is not None and profile is not None:
            val = resample(val, ds.dt_us)
    except ConfigError as e:
        return _fail("invalid pipeline:\n  " + "\n  ".join(str(p) for p in e.problems))
    except (FormatError, OSError, ValueError, SplitError, re.error) as e:
        return _fail(str(e))
    for line in profile_notes:
        print(f"profile {profile.name}: {line}", flush=True)  # type: ignore[union-attr]
    if len(set(ds.labels.tolist())) < 2:
        return _fail("the training set needs samples of at least two classes")
    if val is not None and (val.n_inputs != ds.n_inputs or val.dt_us != ds.dt_us):
        return _fail(f"--val has {val.n_inputs} inputs at dt {val.dt_us} us, the training "
                     f"set {ds.n_inputs} at {ds.dt_us} us")
    if val is None and args.val_fraction > 0:
        if not 0 < args.val_fraction < 1:
            return _fail("--val-fraction must be between 0 and 1")
        ds, val = ds.split(args.val_fraction, seed=args.seed)
    elif not 0 <= args.val_fraction < 1:
        return _fail("--val-fraction must be between 0 and 1")
    print(f"training on {len(ds)} samples ({ds.n_inputs} inputs, {ds.n_classes} classes, "
          f"dt {ds.dt_us} us), validating on {len(val) if val is not None else 0}", flush=True)
    t0 = time.perf_counter()
    res = train(ds, val, cfg, log=lambda s: print(s, flush=True), progress=note,
                progress_every_s=args.progress_every_s)
    train_s = time.perf_counter() - t0
    out = Path(args.out)
    recipe = make_recipe(cfg, dt_us=ds.dt_us, labels=ds.label_names, encoder=encoder,
                         profile=profile.name if profile is not None else None,
                         extra={"train_s": round(train_s, 3), "n_train": len(ds),
                                "augment": augment})
    save_model(res.model, out, recipe)
    report: dict[str, Any] = res.report()
    report.update({
        "model": str(out),
        "model_bytes": out.stat().st_size,
        "train_s": train_s,
        "recipe": recipe,
        "dataset": {"samples": len(ds), "inputs": ds.n_inputs, "dt_us": ds.dt_us,
                    "classes": ds.label_names},
    })
    on, what = (val, "validation") if val is not None and len(val) else (ds, "training")
    ev = evaluate(res.model, on, cfg)
    if what == "validation":
        n, differ = core_agreement(res.model, val, cfg.tail_steps, limit=20)
        report["validation"] = {"samples": len(val), "accuracy": ev.accuracy, "loss": ev.loss,
                                "synaptic_events_per_sample": ev.syn_events / len(val),
                                "undecided": int((ev.predictions < 0).sum())}
        report["core_check"] = {"samples": n, "identical_output_spikes": n - differ}
        print(f"validation accuracy {ev.accuracy:.3f} (epoch {res.best_epoch}); the core "
              f"reproduces the output spikes of {n - differ}/{n} checked samples")
    else:
        report["training_accuracy"] = ev.accuracy
        print(f"training-set accuracy {ev.accuracy:.3f} (no validation set; epoch "
              f"{res.best_epoch})")
    print(f"confusion on the {what} set (rows: true class; none: no decision):")
    for line in _confusion(on.labels, ev.predictions, on.label_names):
        print("  " + line)
    print(f"trained in {train_s:.1f} s")
    rc = 0
    if profile is not None:
        report["profile_check"] = profile_check(out, profile)
        broken = report["profile_check"]["violations"]
        if broken:
            rc = 1
            print(f"profile {profile.name}: the trained model breaks {len(broken)} design "
                  "rule(s) of `edgesnn deploy`:")
            for v in broken:
                print(f"  {v['rule']}: {v['layer']}: {v['value']} (limit {v['limit']}) "
                      f"{v['message']}".rstrip())
        else:
            print(f"profile {profile.name}: the trained model passes every design rule of "
                  f"`edgesnn deploy` ({report['profile_check']['cores_used']} cores)")
    rpath = Path(args.report) if args.report else out.with_name(out.name + ".report.json")
    rpath.write_text(json.dumps(report, indent=2))
    print(f"wrote {out} and {rpath}")
    if args.plot:
        from edgesnn.evaluation import seed_summary
        from edgesnn.plotting import report_png

        conf = seed_summary(on.labels, [ev.predictions], on.label_names)
        png = report_png(args.plot, {f"{what} set": (conf["confusion"], conf["labels"])},
                         res.history, title=f"edgesnn train: {out.name}")
        print(f"wrote {png}")
    return rc


def profile_check(model: Path, profile: Any) -> dict[str, Any]:
    """`edgesnn deploy`'s design rules on a trained model file: the violations (errors only)
    and the cores it needs, as recorded in the training report."""
    from edgesnn.core import Network
    from edgesnn.deploy import quantize
    from edgesnn.deploy.targets import target

    net = Network.load(model)
    violations, mapping = target(profile.family).check(quantize(net, profile), profile)
    cores = mapping.cores
    errors = [v for v in violations if v.severity == "error"]
    return {"profile": profile.name, "fits": not errors, "cores_used": cores,
            "violations": [{"rule": v.rule, "layer": v.layer, "value": str(v.value),
                            "limit": str(v.limit), "message": v.message} for v in errors]}
