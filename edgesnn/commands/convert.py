"""`edgesnn convert`: a trained ReLU MLP or small CNN (npz or ONNX) becomes an SNN model file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

FORMATS_HELP = """\
ANN (.npz, no pickle): W0, b0, W1, b1, ... with W_k of shape (n_in, n_out) as in x @ W and
scikit-learn's coefs_ (PyTorch's (n_out, n_in) is detected when only it chains); every layer
but the last is followed by ReLU, the last gives the logits. Or an .onnx file of Gemm/MatMul,
Add and Relu nodes, with Conv and AveragePool for a CNN (needs the optional onnx package).
A small CNN is an npz
with input_shape (C, H, W) and, per layer k in order, conv{k}_kernel (C_out, C_in, kh, kw),
conv{k}_bias, conv{k}_stride, conv{k}_padding (+ ReLU); pool{k}_size, pool{k}_stride (average
pooling); or W{k}, b{k} (dense on the flattened (C, H, W) map), as ReluCNN.save writes it.

DATA (.npz): x (n, n_in) float inputs as the ANN takes them; y (n,) int labels, optional.

examples:
  edgesnn convert mlp.npz --calibration train.npz --test test.npz --out snn.npz
  edgesnn convert mlp.npz --calibration train.npz --percentile 99.99 --steps 50 --out snn.npz
  edgesnn convert mlp.npz --calibration train.npz --coding ttfs --steps 16 --out ttfs.npz --json
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="convert a trained ReLU MLP or small CNN (npz/ONNX) into an SNN model file",
        description="Convert a ReLU MLP or small CNN into a spiking network the core runs (a "
        "Network.save model file): IF neurons with reset by subtraction (or leaky ones) for "
        "rate coding, or one spike per neuron for time-to-first-spike coding, with "
        "thresholds balanced on calibration data (per-layer percentile of the activations; "
        "model-based bounds without data). Reports ANN against SNN accuracy (or agreement "
        "without labels) per number of steps, with the runtime's decision rule (most output "
        "spikes; a tie is no decision). Exit 0 on success, 2 on bad input.",
        epilog=FORMATS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("ann", metavar="ANN", help="trained MLP or CNN (.npz or .onnx)")
    p.add_argument("--out", required=True, metavar="MODEL", help="model file to write (.npz)")
    p.add_argument("--coding", choices=("rate", "ttfs"), default="rate",
                   help="rate: spike counts over --steps; ttfs: one spike per neuron, a window "
                   "of --steps per layer (default rate)")
    p.add_argument("--calibration", metavar="DATA", help="training inputs for the input range "
                   "and threshold balancing (without: model-based balancing, inputs in [0, 1] "
                   "or --input-range)")
    p.add_argument("--calibration-samples", type=int, default=2000, metavar="N",
                   help="use at most N calibration inputs (default 2000)")
    p.add_argument("--percentile", type=float, default=99.9,
                   help="percentile of each layer's positive activations taken as its scale "
                   "(100: the maximum, Diehl et al. 2015; default 99.9)")
    p.add_argument("--steps", type=int, default=None,
                   help="rate: steps per input (default 100); ttfs: window steps per layer "
                   "(default 16)")
    p.add_argument("--input", dest="input_coding", choices=("current", "poisson"),
                   default="current", help="rate coding of the inputs (default current)")
    p.add_argument("--input-range", nargs=2, type=float, metavar=("LO", "HI"),
                   help="normalise every input with these bounds instead of the calibration "
                   "data's per-feature min/max")
    p.add_argument("--neuron", choices=("if", "lif"), default="if",
                   help="rate: if (exact; reset between inputs, as the report does) or lif "
                   "(leaky: forgets, for pipelines that stream inputs without a reset)")
    p.add_argument("--tau-ms", type=float, default=20.0,
                   help="rate, --neuron lif: membrane time constant (default 20 ms)")
    p.add_argument("--v-init", type=float, default=0.5,
                   help="rate: initial membrane as a fraction of the threshold (default 0.5)")
    p.add_argument("--test", metavar="DATA", help="inputs (and labels) to measure ANN vs SNN on")
    p.add_argument("--seed", type=int, default=0, help="seed of Poisson inputs")
    p.add_argument("--stream", action="store_true",
                   help="rate: also measure the test inputs streamed one after the other "
                   "without a reset, as a pipeline feeds them (see --neuron lif)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _fail(msg: str) -> int:
    print(f"edgesnn convert: {msg}", file=sys.stderr)
    return 2


def load_data(path: str) -> tuple[Any, Any]:
    """(x, y or None) from a DATA npz (x; y optional)."""
    import numpy as np

    from edgesnn.errors import FormatError

    try:
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
            xk = next((k for k in ("x", "X", "inputs", "data") if k in files), None)
            if xk is None:
                raise FormatError(f"no input array x among {sorted(files)}", path=path)
            x = np.asarray(z[xk], dtype=np.float64)
            yk = next((k for k in ("y", "labels", "target") if k in files), None)
            y = np.asarray(z[yk]).astype(np.int64) if yk else None
    except (OSError, ValueError) as e:
        if isinstance(e, FormatError):
            raise
        raise FormatError(f"not a readable npz ({e})", path=path) from None
    if x.ndim != 2:
        raise FormatError(f"x has shape {x.shape}; expected (n, n_inputs)", path=path)
    if y is not None and y.shape != (x.shape[0],):
        raise FormatError(f"y has shape {y.shape} for {x.shape[0]} inputs", path=path)
    return x, y


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from edgesnn.convert import ReluCNN, convert_cnn, convert_mlp, evaluate, load_ann
    from edgesnn.errors import FormatError

    if not Path(args.ann).is_file():
        return _fail(f"{args.ann}: no such file")
    try:
        ann = load_ann(args.ann)
        cal = None
        if args.calibration:
            cal, _ = load_data(args.calibration)
            if cal.shape[1] != ann.n_inputs:
                return _fail(f"{args.calibration}: x has {cal.shape[1]} features, the ANN "
                             f"takes {ann.n_inputs}")
            if args.calibration_samples > 0 and len(cal) > args.calibration_samples:
                pick = np.random.default_rng(0).choice(len(cal), args.calibration_samples,
                                                       replace=False)
                cal = cal[np.sort(pick)]
        test = load_data(args.test) if args.test else None
    except (FormatError, ImportError) as e:
        return _fail(str(e))
    if test is not None and test[0].shape[1] != ann.n_inputs:
        return _fail(f"{args.test}: x has {test[0].shape[1]} features, the ANN takes "
                     f"{ann.n_inputs}")
    steps = args.steps if args.steps is not None else (16 if args.coding == "ttfs" else 100)
    try:
        if isinstance(ann, ReluCNN):
            if cal is None:
                return _fail("CNNs need --calibration (data-based balancing)")
            if args.input_range and args.input_range[0] != 0:
                return _fail("CNN inputs are scaled by one maximum: --input-range 0 HI")
            conv = convert_cnn(
                ann, cal, coding=args.coding, percentile=args.percentile, steps=steps,
                input_coding=None if args.coding == "ttfs" else args.input_coding,
                v_init=args.v_init, neuron=args.neuron, tau_mem_ms=args.tau_ms,
                input_max=args.input_range[1] if args.input_range else None,
            )
        else:
            conv = convert_mlp(
                ann, cal, coding=args.coding, percentile=args.percentile, steps=steps,
                input_coding=None if args.coding == "ttfs" else args.input_coding,
                input_range=tuple(args.input_range) if args.input_range else None,
                v_init=args.v_init, neuron=args.neuron, tau_mem_ms=args.tau_ms,
            )
    except ValueError as e:
        return _fail(str(e))
    out = Path(args.out)
    conv.save(out)
    record = {k: v for k, v in conv.record().items() if k not in ("input_lo", "input_hi")}
    sizes = ann.sizes if not isinstance(ann, ReluCNN) else \
        [ann.n_inputs] + [int(np.prod(sh)) for sh in ann.shapes()]
    result: dict[str, Any] = {"model": str(out), "ann": str(args.ann),
                              "layers": sizes, "conversion": record}
    if test is not None:
        result["evaluation"] = evaluate(ann, conv, test[0], test[1], seed=args.seed)
        result["evaluation"]["data"] = str(args.test)
        if args.stream and conv.coding == "rate":
            result["evaluation_stream"] = evaluate(ann, conv, test[0], test[1],
                                                   seed=args.seed, stream=True)
    elif cal is not None:
        n = min(len(cal), 300)
        result["evaluation"] = evaluate(ann, conv, cal[:n], None, seed=args.seed)
        result["evaluation"]["data"] = f"{args.calibration} (first {n} calibration inputs; " \
                                       "agreement with the ANN only)"
    if args.json:
        print(json.dumps(result), flush=True)
        return 0
    print(f"converted {args.ann} ({'-'.join(map(str, sizes))}, {args.coding} coding) -> "
          f"{out}")
    bal = f"percentile {conv.percentile:g}" if conv.percentile is not None else "model-based"
    print(f"  layer scales ({bal}): " + ", ".join(f"{s:.3g}" for s in conv.scales))
    ev = result.get("evaluation")
    if ev:
        print(f"  on {ev['data']}: {ev['n']} inputs")
        if "ann_accuracy" in ev:
            print(f"  ANN accuracy {100 * ev['ann_accuracy']:.2f} %")
        for row in ev["per_steps"]:
            acc = f"accuracy {100 * row['accuracy']:6.2f} %  " if "accuracy" in row else ""
            print(f"  SNN {row['steps']:5d} steps: {acc}agreement {100 * row['agreement']:6.2f} "
                  f"%  undecided {row['undecided']}")
        if ev.get("first_output_spike_step_mean") is not None:
            print(f"  first output spike after {ev['first_output_spike_step_mean']:.1f} steps on "
                  "average")
        if ev.get("steps_to_ann_accuracy") is not None:
            print(f"  within 1 point of the ANN after {ev['steps_to_ann_accuracy']} steps")
        print(f"  synaptic events per input {ev['synaptic_events_per_input']:.0f} (ANN: "
              f"{ev['ann_macs']} multiply-accumulates)")
    st = result.get("evaluation_stream")
    if st:
        rows = ", ".join(f"{row['steps']} steps {100 * row['accuracy']:.2f} %"
                         for row in st["per_steps"])
        print(f"  streamed without resets ({record.get('neuron', 'if')} neurons): {rows}")
    return 0
