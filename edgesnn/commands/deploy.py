"""`edgesnn deploy MODEL --profile NAME [--check-on RECORDING [--pipeline P]] --out DIR`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

EPILOG = """\
what --check-on takes:
  SPIKES.npz                 input spikes: in_ptr (int64, steps+1) and in_idx (int32) as CSR
                             over steps, indices into the model's concatenated input layers;
                             optional sample_ptr (step boundaries of samples; both models are
                             reset at each) and labels (one class per sample); each
                             sample is followed by --tail-steps silent steps, and its class
                             is the output with the most spikes (a tie or silence: no
                             decision, counted as wrong and reported as undecided)
  FILE --pipeline P          a sensor recording (any format a file driver of P reads: DVS
                             files with dvs_file, WAV, MAT/CSV vibration, pcap, ...); P's file
                             driver reads FILE at speed "max" and the encoder it feeds turns it
                             into the input spikes of both models
  P.toml                     the pipeline's own driver (its configured recording, or a
                             synthetic source) and encoder; same as --pipeline P alone

With a pipeline the encoder's channel count must equal the model's inputs and the pipeline's
dt_us the model's. The models run through the whole recording without a reset (as in the
daemon); the readout agreement and the energy per inference are per window of --window-ms
(default: the window_ms of the pipeline's readout, else the whole recording). Sources that
never end (a live driver, synthetic_dvs with duration_s = 0) need --max-steps.

examples:
  edgesnn deploy motion.npz --profile loihi2 --check-on rec.npz --out deploy/
  edgesnn deploy motion.npz --profile loihi2 --out deploy/ \\
      --check-on ../shared/data/dvs/aedat2_dvs128_alex_walking_again.aedat --pipeline dvs_motion
  edgesnn deploy motion.npz --profile spinnaker1 --out deploy/ --check-on demo.toml \\
      --max-steps 5000
  edgesnn deploy pipelines/keyword_spotting.npz --profile loihi2 --out deploy/ \\
      --recordings ../shared/data/audio/fsdd

--recordings PATH... checks on labelled recordings instead: one sample per recording (both
models reset before each, followed by the model's tail steps), encoded by the encoder stored in
the model file's training recipe (WAV files) or, with --pipeline P, by P's file driver and
encoder; labels from the file names (FSDD <digit>_<speaker>_<index>.wav, CWRU codes), output
neurons grouped by label as in training (the recipe's labels, else P's readout). The summary
gives float and emulated accuracy by the runtime's rule (the label whose neurons spiked most; a
tie or silence is no decision, counted wrong) and the loss in points.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "deploy",
        help="quantize a model for a neuromorphic chip, check it, report and export",
        description="Quantize a model file (written by Network.save) to a chip profile "
        "(shipped: loihi1, loihi2, spinnaker1, spinnaker2, xylo_audio2, xylo_imu, or a "
        "profile TOML path), check every design rule, map layers to cores, and write into "
        "DIR: quantized.npz, report.json, summary.txt, model.nir (+ model.nir.quant.json) and "
        "the chip toolchain files (loihi/ or pynn/; Xylo: xylo/spec.npz, Rockpool's "
        "specification, and no NIR). With --check-on, the float and the bit-accurate "
        "quantized model run on the recording and the report gives per-layer spike "
        "agreement, readout agreement/accuracy and energy per inference. Prints one line "
        "per rule family checked and a final verdict (--json: one JSON summary). Exit 0 "
        "when the model fits, 1 when a design rule is violated, 2 on bad input.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", help="model file (.npz written by Network.save)")
    p.add_argument("--profile", required=True, metavar="NAME",
                   help="shipped profile name or profile TOML path")
    p.add_argument("--check-on", metavar="RECORDING", default=None,
                   help="input spikes (.npz), a sensor recording (with --pipeline) or a "
                   "pipeline TOML to compare float and quantized on")
    p.add_argument("--recordings", nargs="+", metavar="PATH", default=None,
                   help="labelled recordings (files, folders, globs, FILE@LO:HI): one sample "
                   "each, encoded by the model recipe's encoder (WAV) or by --pipeline; prints "
                   "float vs emulated accuracy by the runtime's decision rule")
    p.add_argument("--pipeline", metavar="PIPELINE", default=None,
                   help="pipeline TOML or shipped name whose file driver reads RECORDING and "
                   "whose encoder makes the input spikes")
    p.add_argument("--driver", metavar="ID", default=None,
                   help="the pipeline's driver to use (default: its only file driver)")
    p.add_argument("--encoder", metavar="ID", default=None,
                   help="the encoder to use (default: the only one fed by the driver)")
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="override a pipeline value, as for `edgesnn run`; repeatable")
    p.add_argument("--max-steps", type=int, default=None, metavar="N",
                   help="stop reading the recording after N steps")
    p.add_argument("--window-ms", type=float, default=None, metavar="MS",
                   help="readout window for a pipeline check (default: the pipeline's)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--tolerance-steps", type=int, default=2, metavar="N",
                   help="spike timing tolerance for the agreement figures (default 2)")
    p.add_argument("--tail-steps", type=int, default=None, metavar="N",
                   help="silent steps run after each sample of an .npz recording before the "
                   "decision, as in training (default: the model file's recipe, else 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--json", action="store_true",
                   help="print the summary as one JSON object on stdout (for scripts; "
                   "report.json has everything) instead of the text summary")
    p.set_defaults(func=run)


def _source(args: argparse.Namespace) -> tuple[Any, str | None]:
    """(what to check on: None, an .npz path or a PipelineSource; usage error or None)."""
    from edgesnn.deploy.source import PipelineSource

    rec = args.check_on
    pipeline = args.pipeline
    if args.recordings is not None:
        if rec is not None:
            return None, "give --check-on or --recordings, not both"
        used = [o for o, v in (("--max-steps", args.max_steps), ("--window-ms", args.window_ms))
                if v]  # fmt: skip
        if used:
            return None, f"{', '.join(used)} do not apply to --recordings (one sample each)"
        if args.tail_steps is not None and args.tail_steps < 0:
            return None, "--tail-steps must not be negative"
        return ("recordings", args.recordings), None
    if pipeline is None and rec is not None and rec.endswith(".toml"):
        pipeline, rec = rec, None
    if args.tail_steps is not None and args.tail_steps < 0:
        return None, "--tail-steps must not be negative"
    if pipeline is None:
        used = [o for o, v in (("--driver", args.driver), ("--encoder", args.encoder),
                               ("--set", args.set), ("--max-steps", args.max_steps),
                               ("--window-ms", args.window_ms)) if v]  # fmt: skip
        if used:
            return None, f"{', '.join(used)} only apply to a pipeline check (--pipeline)"
        return rec, None
    if args.max_steps is not None and args.max_steps < 1:
        return None, "--max-steps must be at least 1"
    if args.window_ms is not None and args.window_ms <= 0:
        return None, "--window-ms must be positive"
    return PipelineSource(pipeline, rec, driver=args.driver, encoder=args.encoder,
                          overrides=list(args.set), max_steps=args.max_steps,
                          window_ms=args.window_ms), None  # fmt: skip


def _labelled(args: argparse.Namespace) -> Any:
    """The --recordings check: one labelled sample per recording (a DeployRecording)."""
    from edgesnn.core import Network
    from edgesnn.deploy.recordings import labelled_recording

    net = Network.load(args.model)
    return labelled_recording(net, args.recordings, pipeline=args.pipeline, driver=args.driver,
                              encoder=args.encoder, overrides=list(args.set),
                              log=None if args.no_progress else
                              (lambda m: print(m, file=sys.stderr, flush=True)))  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import json

    from edgesnn.deploy import deploy
    from edgesnn.deploy.report import summary_json, summary_text
    from edgesnn.deploy.source import PipelineSource, SourceError
    from edgesnn.errors import ConfigError, FormatError

    src, usage = _source(args)
    if usage:
        print(f"edgesnn deploy: {usage}", file=sys.stderr)
        return 2
    try:
        if isinstance(src, tuple):
            src = _labelled(args)
        rep = deploy(args.model, args.profile, args.out, src,
                     tol_steps=args.tolerance_steps, progress=not args.no_progress,
                     tail_steps=args.tail_steps)
    except SourceError as e:
        what = ("recordings" if args.recordings is not None else "pipeline"
                if isinstance(src, PipelineSource) else "input")  # fmt: skip
        print(f"edgesnn deploy: cannot check on this {what} ({len(e.problems)} problem(s))",
              file=sys.stderr)  # fmt: skip
        for prob in e.problems:
            print(f"  {prob}", file=sys.stderr)
        return 2
    except ConfigError as e:
        print(f"edgesnn deploy: invalid profile ({len(e.problems)} problem(s))", file=sys.stderr)
        for prob in e.problems:
            print(f"  {prob}", file=sys.stderr)
        return 2
    except (FormatError, OSError) as e:
        print(f"edgesnn deploy: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({**summary_json(rep), "out": str(args.out)}))
    else:
        print(f"wrote {', '.join(rep['files'])} into {args.out}", file=sys.stderr)
        sys.stdout.write(summary_text(rep))  # ends with the verdict
    return 0 if rep["fits"] else 1
