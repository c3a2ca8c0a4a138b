"""Check edgesnn's Loihi emulation against golden vectors of lava-nc's bit-accurate models.

    python tools/loihi_goldens.py DIR [--json] [--profile NAME]

DIR holds cases in the format of ../shared/data/loihi_lava (README there: one .npz per case
with the lava Dense/DelayDense and LIF arguments, the input spikes and lava's recorded s, u, v
per layer and step, and cfg "loihi2" or "loihi1"). Every case is emulated with the shipped
profile its cfg names (or --profile) and compared at every step: spikes, u and v.

Output: one line per case and a summary line; with --json each is a JSON object (per case:
case, cfg, profile, identical, first_difference {step, layer, neuron, var, lava, emulator} or
null, steps, layers, counters; the summary: summary true, cases, identical, by_cfg
{cfg: [identical, total]}). Exit 0 when every case is identical, 1 when one differs or cannot
be read, 2 when DIR has no case.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgesnn.deploy.targets.loihi.goldens import check_dir  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", metavar="DIR", help="folder of golden-vector .npz cases")
    ap.add_argument("--json", action="store_true", help="JSON lines instead of text")
    ap.add_argument("--profile", default=None, metavar="NAME",
                    help="profile for every case (default: the shipped profile named by cfg)")
    args = ap.parse_args(argv)
    folder = Path(args.dir)
    if not folder.is_dir():
        print(f"loihi_goldens: {folder}: not a folder", file=sys.stderr)
        return 2
    by_cfg: dict[str, list[int]] = {}
    n = ok = 0
    for r in check_dir(folder, args.profile):
        n += 1
        ok += bool(r["identical"])
        tally = by_cfg.setdefault(str(r.get("cfg", "?")), [0, 0])
        tally[0] += bool(r["identical"])
        tally[1] += 1
        if args.json:
            print(json.dumps(r), flush=True)
            continue
        if "error" in r:
            print(f"ERROR     {r['case']}: {r['error']}", flush=True)
            continue
        d = r["first_difference"]
        where = "" if d is None else (f"  first difference: step {d['step']} layer {d['layer']} "
                                      f"neuron {d['neuron']} {d['var']}: lava {d['lava']}, "
                                      f"emulator {d['emulator']}")  # fmt: skip
        k = r["counters"]
        print(f"{'identical' if r['identical'] else 'DIFFERS':9s} {r['case']} ({r['cfg']}, "
              f"profile {r['profile']}, {r['steps']} steps, {r['layers']} layer(s); u_edge "
              f"{k['u_edge']}, q_overflow {k['q_overflow']}){where}", flush=True)  # fmt: skip
    if n == 0:
        print(f"loihi_goldens: no .npz case in {folder}", file=sys.stderr)
        return 2
    summary = {"summary": True, "dir": str(folder), "cases": n, "identical": ok,
               "by_cfg": by_cfg}  # fmt: skip
    if args.json:
        print(json.dumps(summary))
    else:
        per = ", ".join(f"{c} {a}/{b}" for c, (a, b) in sorted(by_cfg.items()))
        print(f"{ok}/{n} cases identical ({per})")
    return 0 if ok == n else 1


if __name__ == "__main__":
    sys.exit(main())
