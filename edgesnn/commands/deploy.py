"""`edgesnn deploy MODEL --profile NAME [--check-on RECORDING] --out DIR`."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "deploy",
        help="quantize a model for a neuromorphic chip, check it, report and export",
        description="Quantize a model file (written by Network.save) to a chip profile "
        "(shipped: loihi1, loihi2, spinnaker1, spinnaker2, or a profile TOML path), check "
        "every design rule, map layers to cores, and write into DIR: quantized.npz, "
        "report.json, summary.txt, model.nir (+ model.nir.quant.json) and the chip "
        "toolchain files (loihi/ or pynn/). With --check-on, the float and the bit-accurate "
        "quantized model run on the recording and the report gives per-layer spike "
        "agreement, readout agreement/accuracy and energy per inference. Exit 0 when the "
        "model fits, 1 when a design rule is violated, 2 on bad input.",
        epilog="RECORDING is an .npz with in_ptr (int64, steps+1) and in_idx (int32): input "
        "spikes as CSR over steps, indices into the model's concatenated input layers; "
        "optional sample_ptr (step boundaries of samples; both models are reset at each) "
        "and labels (one class per sample).",
    )
    p.add_argument("model", metavar="MODEL", help="model file (.npz written by Network.save)")
    p.add_argument("--profile", required=True, metavar="NAME",
                   help="shipped profile name or profile TOML path")
    p.add_argument("--check-on", metavar="RECORDING", default=None,
                   help="recording .npz to compare float and quantized on")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--tolerance-steps", type=int, default=2, metavar="N",
                   help="spike timing tolerance for the agreement figures (default 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgesnn.deploy import deploy
    from edgesnn.deploy.report import summary_text
    from edgesnn.errors import ConfigError, FormatError

    try:
        rep = deploy(args.model, args.profile, args.out, args.check_on,
                     tol_steps=args.tolerance_steps, progress=not args.no_progress)
    except ConfigError as e:
        print(f"edgesnn deploy: invalid profile ({len(e.problems)} problem(s))", file=sys.stderr)
        for prob in e.problems:
            print(f"  {prob}", file=sys.stderr)
        return 2
    except (FormatError, OSError) as e:
        print(f"edgesnn deploy: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(summary_text(rep))
    print(f"wrote {', '.join(rep['files'])} into {args.out}")
    return 0 if rep["fits"] else 1
