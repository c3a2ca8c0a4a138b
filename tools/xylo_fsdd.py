"""Keyword model on Xylo: float vs bit-exact Xylo emulation on FSDD recordings.

    python tools/xylo_fsdd.py [--model pipelines/keyword_spotting.npz] [--profile xylo_audio2]
                              [--recordings DIR] [--indices 0-9] [--json]
                              [--xylosim N]

Each WAV is encoded with the model's recipe encoder (as in training), followed by the recipe's
silent tail steps; the class is the output with the most spikes by the runtime's rule
(`edgesnn.evaluation.decide`: a tie or silence is no decision, counted as wrong). Prints the
design-rule verdict (the emulation runs whether or not the model fits), float and Xylo accuracy,
their agreement and the saturation counters; with ``--xylosim N`` the first N recordings are
also run through Rockpool's XyloSim and compared spike for spike with the emulation.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _indices(text: str) -> set[int]:
    out: set[int] = set()
    for part in text.split(","):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def main(argv: list[str] | None = None) -> int:
    from edgesnn.core import Network
    from edgesnn.deploy import load_profile
    from edgesnn.deploy.targets.xylo import (
        check_xylo,
        emulator_for,
        quantize_xylo,
        raster,
        rockpool_xylosim,
    )
    from edgesnn.evaluation import decide, fsdd_label
    from edgesnn.train.recipe import encode_wav

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(REPO / "pipelines" / "keyword_spotting.npz"))
    ap.add_argument("--profile", default="xylo_audio2")
    ap.add_argument("--recordings", default=str(REPO.parent / "shared" / "data" / "audio"
                                                / "fsdd"))
    ap.add_argument("--indices", default=None, help="FSDD recording indices, e.g. 10-49")
    ap.add_argument("--xylosim", type=int, default=0, metavar="N",
                    help="also compare the first N recordings with Rockpool's XyloSim")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = ap.parse_args(argv)

    net = Network.load(args.model)
    man = net.manifest
    recipe = man.get("recipe") or {}
    enc, dt_us = recipe.get("encoder"), int(man["dt_us"])
    if not enc:
        print(f"{args.model}: the model file has no recipe encoder", file=sys.stderr)
        return 2
    tail = int(recipe.get("tail_steps", man.get("tail_steps", 0)) or 0)
    prof = load_profile(args.profile)
    xm = quantize_xylo(net, prof)
    viol = check_xylo(xm, prof)
    errors = [v for v in viol if v.severity == "error"]
    em = emulator_for(xm.spec, prof)
    files = sorted(Path(args.recordings).glob("*.wav"))
    if args.indices:
        keep = _indices(args.indices)
        files = [f for f in files if fsdd_label(f)[2] in keep]
    if not files:
        print(f"no FSDD recordings in {args.recordings}", file=sys.stderr)
        return 2
    n_out = xm.spec.n_out
    fl_scores, xy_scores, labels = [], [], []
    counters: dict[str, int] = {}
    hid_f = hid_x = 0
    multi = extra = 0  # (step, neuron) pairs where a Xylo hidden neuron fired more than once
    sim_cls = rockpool_xylosim(int(prof["chip"]["synapses_hidden"])) if args.xylosim else None
    sim_same = sim_n = 0
    t0 = time.perf_counter()
    for i, f in enumerate(files):
        ptr, idx, n_ch = encode_wav(f, enc, dt_us)
        ptr = np.concatenate([ptr, np.full(tail, ptr[-1])])
        net.reset()
        rec = net.run(ptr, idx)
        fl_scores.append(np.bincount(rec.idx, minlength=n_out)[:n_out])
        hid_f += int(sum(net.layer_spike_counts().get(n, 0) for n in
                         xm.figures["hidden_layers"]))  # fmt: skip
        r = raster(ptr, idx, xm.spec.n_in)
        em.reset()
        res = em.run(r)
        xy_scores.append(res["out"].sum(axis=0))
        hid_x += int(res["hidden"].sum())
        multi += int(np.count_nonzero(res["hidden"] > 1))
        extra += int(np.maximum(res["hidden"].astype(np.int64) - 1, 0).sum())
        for k, v in em.counters.items():
            counters[k] = counters.get(k, 0) + v
        labels.append(fsdd_label(f)[0])
        if sim_cls is not None and i < args.xylosim:
            mod = sim_cls.from_specification(**xm.spec.rockpool_kwargs(
                int(prof["chip"]["synapses_hidden"])))  # fmt: skip
            out, _, srec = mod.evolve(r, record=True)
            sim_n += 1
            sim_same += int(np.array_equal(out, res["out"])
                            and np.array_equal(srec["Spikes"], res["hidden"]))  # fmt: skip
    y = np.asarray(labels)
    dfl, dxy = decide(np.asarray(fl_scores)), decide(np.asarray(xy_scores))
    out = {
        "model": args.model, "profile": prof.name, "recordings": len(files),
        "indices": args.indices or "all", "tail_steps": tail,
        "fits": not errors, "violations": [str(v) for v in viol],
        "float_accuracy": float(np.mean(dfl == y)), "xylo_accuracy": float(np.mean(dxy == y)),
        "decision_agreement": float(np.mean(dfl == dxy)),
        "float_undecided": int(np.sum(dfl < 0)), "xylo_undecided": int(np.sum(dxy < 0)),
        "hidden_spikes_float": hid_f, "hidden_spikes_xylo": hid_x,
        "hidden_multi_spike_steps": multi, "hidden_extra_spikes": extra,
        "output_spikes_float": int(np.sum(fl_scores)), "output_spikes_xylo": int(np.sum(xy_scores)),
        "counters": counters, "seconds": round(time.perf_counter() - t0, 1),
    }  # fmt: skip
    if sim_cls is not None:
        out["xylosim_identical"] = f"{sim_same}/{sim_n}"
    elif args.xylosim:
        out["xylosim_identical"] = "not run: rockpool or xylosim is not installed"
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{prof.name}: fits {'yes' if out['fits'] else 'NO'}")
    for v in viol:
        print(f"  {v.severity:7s} {v}")
    print(f"{len(files)} recordings ({out['indices']}), tail {tail} steps: accuracy float "
          f"{100 * out['float_accuracy']:.1f} %, Xylo {100 * out['xylo_accuracy']:.1f} % "
          f"(decisions agree {100 * out['decision_agreement']:.1f} %; undecided "
          f"{out['float_undecided']} / {out['xylo_undecided']})")  # fmt: skip
    print(f"spikes hidden {hid_f} float / {hid_x} Xylo; output {out['output_spikes_float']} / "
          f"{out['output_spikes_xylo']}; counters {counters}")
    print(f"Xylo hidden neurons firing more than once in a step: {multi} times, {extra} spikes "
          "beyond the first (the float model fires at most once per step)")
    if "xylosim_identical" in out:
        print(f"XyloSim vs emulation, identical recordings: {out['xylosim_identical']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
