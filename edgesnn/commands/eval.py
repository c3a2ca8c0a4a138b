"""`edgesnn eval MODEL --pipeline P --recordings PATH... [--json]`: a model's accuracy on files.

Each recording goes through the pipeline's file driver (its `path` pointed at the file, speed
"max") and the encoder it feeds, then through MODEL (reset before every recording, run over the
whole recording plus the tail steps the model was trained with), and is decided by the one rule
of the runtime's readouts over the output spike counts (`edgesnn.evaluation.decide`: the label
with the most spikes; a tie or silence is no decision, counted as wrong and reported as
undecided). The decision does not depend on the readout's window. Labels come from the file
names (FSDD `<digit>_<speaker>_<index>.wav`, CWRU `Normal`/`B`/`IR`/`OR` codes) and are mapped
to the label list of the pipeline's readout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

EPILOG = """\
examples:
  edgesnn eval pipelines/keyword_spotting.npz --pipeline keyword_spotting \\
      --recordings '../shared/data/audio/fsdd/*_theo_[0-4].wav' --json
  edgesnn eval bearing.npz --pipeline bearing_vibration --recordings cwru/ --tail-steps 5

Labels: FSDD files give their digit ("0".."9"), CWRU files their class (normal, ball,
inner_race, outer_race); the label must be one of the model's labels (its recipe's, else the
pipeline readout's). A recording may be
FILE@LO:HI (a fraction of its steps).
"""

# file suffixes each file driver reads (a file of another kind is refused before any run)
SUFFIXES: dict[str, tuple[str, ...]] = {
    "wav": (".wav",),
    "dvs_file": (".aedat", ".aedat4", ".raw", ".dat", ".bin"),
    "vibration_mat": (".mat",),
    "vibration_csv": (".csv", ".txt"),
    "pcap": (".pcap", ".pcapng", ".cap"),
    "pcap_flows": (".pcap", ".pcapng", ".cap"),
    "velodyne_pcap": (".pcap", ".pcapng"),
    "ouster_pcap": (".pcap", ".pcapng"),
    "nsl_kdd": (".txt", ".csv", ".arff"),
}


class EvalError(Exception):
    """A one-line reason why the evaluation cannot run (exit 2)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="a model's accuracy on labelled recordings through a pipeline's driver and encoder",
        description="Run every recording through the pipeline's file driver and encoder and "
        "the MODEL network (reset per recording; the whole recording plus tail steps), decide "
        "by the runtime's rule (most output spikes; a tie or silence is no decision) and "
        "report accuracy, undecided recordings, per-class recall and the confusion matrix. "
        "Exit 0, or 2 on bad input.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", help="model file (.npz written by Network.save)")
    p.add_argument("--pipeline", required=True, metavar="P",
                   help="pipeline TOML or shipped name: its file driver and encoder make the "
                   "input spikes, its readout names the labels")
    p.add_argument("--recordings", required=True, nargs="+", metavar="PATH",
                   help="labelled recordings: files, folders or globs, each optionally @LO:HI")
    p.add_argument("--tail-steps", type=int, default=None, metavar="N",
                   help="silent steps after each recording before the decision (default: the "
                   "model file's recipe, else 0)")
    p.add_argument("--driver", metavar="ID", default=None,
                   help="the pipeline's file driver (default: its only one)")
    p.add_argument("--encoder", metavar="ID", default=None,
                   help="the encoder (default: the only one fed by the driver)")
    p.add_argument("--readout", metavar="ID", default=None,
                   help="the readout whose labels to use (default: the labels in the model "
                   "file's recipe, else the readout that fits the model)")
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="override a pipeline value, as for `edgesnn run`; repeatable")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        result = evaluate(args.model, args.pipeline, args.recordings,
                          tail_steps=args.tail_steps, driver=args.driver, encoder=args.encoder,
                          readout=args.readout, overrides=list(args.set))  # fmt: skip
    except EvalError as e:
        print(f"edgesnn eval: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result), flush=True)
    else:
        s = result["snn"]
        print(f"{result['model']} on {result['n_test']} recordings through {result['pipeline']}"
              f" (tail {result['tail_steps']} steps)")
        print(f"  accuracy {100 * s['accuracy_mean']:.2f} %, undecided {s['undecided']:.0f} "
              "(a tie or silence)")
        for lab, r in s["per_class_recall"].items():
            print(f"  {lab:>12s}: recall {'-' if r is None else f'{100 * r:.1f} %'}")
    return 0


def _label_of(path: Path, labels: list[str]) -> int:
    """Index in `labels` of the class named by the file name (EvalError when none)."""
    from edgesnn.evaluation import label_index

    try:
        return label_index(path, labels)
    except ValueError as e:
        raise EvalError(str(e)) from None


def _readout(cfg: Any, n_out: int, chosen: str | None, manifest: dict[str, Any]
             ) -> tuple[list[str], np.ndarray, str]:  # fmt: skip
    """`edgesnn.evaluation.readout_labels`, with EvalError when no readout fits."""
    from edgesnn.evaluation import readout_labels

    try:
        return readout_labels(cfg, n_out, chosen, manifest)
    except ValueError as e:
        raise EvalError(str(e)) from None


def evaluate(model: str | Path, pipeline: str, recordings: list[str], *,
             tail_steps: int | None = None, driver: str | None = None,
             encoder: str | None = None, readout: str | None = None,
             overrides: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """The evaluation of `model` on `recordings` as a JSON-able dict; EvalError on bad input."""
    from edgesnn.commands.run import load_with_overrides
    from edgesnn.core import Network
    from edgesnn.deploy.source import PipelineSource
    from edgesnn.errors import ConfigError, FormatError
    from edgesnn.evaluation import (
        SplitError,
        _clean,
        decide,
        expand_recordings,
        model_tail_steps,
        seed_summary,
    )

    overrides = list(overrides or [])
    if not Path(model).is_file():
        raise EvalError(f"model file {model} not found")
    try:
        net = Network.load(model)
    except FormatError as e:
        raise EvalError(str(e)) from None
    if tail_steps is None:
        tail_steps = model_tail_steps(net.manifest) or 0
    if tail_steps < 0:
        raise EvalError("--tail-steps must not be negative")
    try:
        recs = expand_recordings(recordings)
    except SplitError as e:
        raise EvalError(str(e)) from None
    try:
        cfg = load_with_overrides(pipeline, overrides)
    except ConfigError as e:
        first = e.problems[0] if e.problems else e
        raise EvalError(f"invalid pipeline {pipeline} ({len(e.problems)} problem(s)): "
                        f"{first}") from None  # fmt: skip
    # a file driver that reads these files
    from edgesnn.replay import ReplayDriver

    files = [c for c in cfg.components if c.kind == "driver" and issubclass(c.cls, ReplayDriver)]
    if driver is not None:
        files = [c for c in files if c.id == driver]
    if len(files) != 1:
        have = ", ".join(f"{c.id} ({c.cls.type_name})" for c in files) or "none"
        raise EvalError(f"{cfg.path}: needs exactly one file driver to read the recordings "
                        f"(file drivers: {have}; choose one with --driver)")  # fmt: skip
    drv = files[0]
    ok = SUFFIXES.get(drv.cls.type_name)
    for r in recs:
        if ok and not r.path.name.lower().endswith(ok):
            raise EvalError(f"{r.path}: the pipeline's driver {drv.id!r} ({drv.cls.type_name}) "
                            f"reads {', '.join(ok)} files, not this one")  # fmt: skip
    labels, owner, labels_from = _readout(cfg, net.n_outputs, readout, net.manifest)
    y = np.asarray([_label_of(r.path, labels) for r in recs], np.int64)
    n_lab = len(labels)
    preds, rows = [], []
    for r, lab in zip(recs, y, strict=True):
        src = PipelineSource(pipeline, str(r.path), driver=drv.id, encoder=encoder,
                             overrides=overrides)  # fmt: skip
        try:
            spikes = src.read(net.n_inputs, net.dt_us, progress=False)
        except ConfigError as e:
            first = e.problems[0] if e.problems else e
            raise EvalError(f"{r.path}: cannot run through {pipeline}: {first}") from None
        except (FormatError, OSError, ValueError) as e:
            raise EvalError(f"{r.path}: {e}") from None
        part = r.part(spikes.n_steps)
        ptr = spikes.in_ptr[part.start : part.stop + 1]
        idx = spikes.in_idx[ptr[0] : ptr[-1]]
        ptr = np.concatenate([ptr - ptr[0], np.full(tail_steps, ptr[-1] - ptr[0])])
        net.reset()
        out = net.run(ptr, idx)
        per_neuron = np.bincount(out.idx, minlength=net.n_outputs)[: net.n_outputs]
        keep = owner >= 0
        counts = np.bincount(owner[keep], weights=per_neuron[keep], minlength=n_lab)[:n_lab]
        p = int(decide(counts))
        preds.append(p)
        rows.append({"recording": str(r), "label": labels[lab],
                     "decided": labels[p] if p >= 0 else None,
                     "counts": counts.astype(np.int64).tolist(), "steps": int(ptr.size - 1)})
    summary = seed_summary(y, [np.asarray(preds, np.int64)], labels)
    return _clean({
        "task": "eval", "model": str(model), "pipeline": str(cfg.path), "n_test": len(recs),
        "tail_steps": int(tail_steps), "dt_us": int(net.dt_us), "labels_from": labels_from,
        "decision_rule": "most output spikes over the whole recording plus the tail; a tie "
        "or silence is no decision (counted as wrong)",
        "snn": summary, "recordings": rows,
    })  # fmt: skip
