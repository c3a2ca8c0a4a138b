"""The Xylo deployment report: weight errors, design rules, the check against the float model
on a recording through the bit-exact emulator, summaries, and the whole `edgesnn deploy`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.core import Network
from edgesnn.deploy.floatmodel import FloatModel
from edgesnn.deploy.profile import Profile
from edgesnn.deploy.targets.xylo.emulate import XyloEmulator, emulator_for, raster
from edgesnn.deploy.targets.xylo.export import write_export
from edgesnn.deploy.targets.xylo.profile import FAMILY
from edgesnn.deploy.targets.xylo.quantize import XyloModel, XyloViolation, _jsonable, quantize_xylo
from edgesnn.deploy.targets.xylo.rules import check_xylo, rule_families

REPORT_FORMAT = "edgesnn-xylo-report"
REPORT_VERSION = 1


def weight_errors(xm: XyloModel) -> list[dict[str, Any]]:
    """Per projection: float vs dequantized chip weights (float units)."""
    out = []
    for w in xm.weights:
        wf, wd = np.asarray(w["w_float"], float), np.asarray(w["w_deq"], float)
        err = wd - wf
        rms = float(np.sqrt(np.mean(err**2))) if err.size else 0.0
        ref = float(np.sqrt(np.mean(wf**2))) if wf.size else 0.0
        out.append({"projection": w["projection"], "matrix": w["matrix"], "synapses": int(wf.size),
                    "max_abs_weight": float(np.max(np.abs(wf))) if wf.size else 0.0,
                    "rms_error": rms, "relative_rms_error": rms / ref if ref > 0 else 0.0,
                    "max_abs_error": float(np.max(np.abs(err))) if err.size else 0.0,
                    "zeroed": int(np.sum((wd == 0) & (wf != 0))),
                    "shift": int(getattr(xm.spec, f"weight_shift_{w['matrix']}"))})  # fmt: skip
    return out


def _run_xylo(em: XyloEmulator, xm: XyloModel, rec: Any) -> tuple[dict[str, list], np.ndarray,
                                                                  dict[str, int]]:
    """Per edgesnn layer the emulated spikes as (step, neuron) pairs (Xylo step + 1: aligned
    to the float model's one step per hop), per sample the readout counts, and counters."""
    sp = xm.spec
    spikes: dict[str, list[tuple[int, int]]] = {n: [] for n, r in sp.layers.items()
                                                if r[0] != "input"}  # fmt: skip
    counts = np.zeros((rec.n_samples, sp.n_out), np.int64)
    totals: dict[str, int] = {}
    for s in range(rec.n_samples):
        a, b = int(rec.sample_ptr[s]), int(rec.sample_ptr[s + 1])
        if s == 0 or rec.reset:
            em.reset()
        res = em.run(raster(rec.in_ptr, rec.in_idx, sp.n_in, a, b))
        counts[s] = res["out"].sum(axis=0)
        for n, (role, off, size) in sp.layers.items():
            if role == "input":
                continue
            block = res["hidden" if role == "hidden" else "out"][:, off : off + size]
            t, i = np.nonzero(block)
            spikes[n] += [(a + int(x) + 1, int(y)) for x, y in zip(t, i)]
        if rec.reset or s == rec.n_samples - 1:
            for k, v in em.counters.items():
                totals[k] = totals.get(k, 0) + v
    return spikes, counts, totals


def _votes(counts: np.ndarray, rec: Any) -> np.ndarray:
    """Spike counts per class: summed over the output neurons a recording's `owner` gives each
    class (recordings that name one), else one output neuron per class."""
    owner = getattr(rec, "owner", None)
    if owner is None:
        return counts
    owner = np.asarray(owner, np.int64)
    names = getattr(rec, "label_names", None)
    n_cls = len(names) if names else int(owner.max(initial=-1)) + 1
    votes = np.zeros((counts.shape[0], n_cls), np.int64)
    for j in np.flatnonzero(owner >= 0):
        votes[:, owner[j]] += counts[:, j]
    return votes


def build_report(net: Network, xm: XyloModel, profile: Profile,
                 violations: list[XyloViolation], rec: Any = None, *, tol_steps: int = 2,
                 progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """Everything `edgesnn deploy` reports for a Xylo profile, as a JSON-able dict."""
    from edgesnn.deploy import report as R
    from edgesnn.evaluation import decide

    sp = xm.spec
    errors = [v for v in violations if v.severity == "error"]
    rep: dict[str, Any] = {
        "format": R.REPORT_FORMAT, "schema_version": R.REPORT_SCHEMA_VERSION,
        "profile": profile.name, "family": FAMILY, "device": profile["profile"]["device"],
        "dt_us": int(round(sp.dt * 1e6)), "fits": not errors,
        "rule_families": rule_families(violations),
        "violations": [{"rule": v.rule, "layer": v.layer, "value": R._j(v.value),
                        "limit": R._j(v.limit), "message": v.message, "severity": v.severity}
                       for v in violations],
        "xylo": {"inputs": sp.n_in, "hidden": sp.n_hidden, "outputs": sp.n_out,
                 "weight_shift": {"in": sp.weight_shift_in, "rec": sp.weight_shift_rec,
                                  "out": sp.weight_shift_out},
                 "layers": {k: list(v) for k, v in sp.layers.items()}},
        "weights": weight_errors(xm),
        "layers": [{"layer": n, **info} for n, info in sp.info.items()],
        "notes": list(xm.notes),
        "learning": {"plastic_projections": [], "can_learn_on_chip": False,
                     "message": "Xylo has no on-chip learning; weights are deployed frozen"},
    }  # fmt: skip
    if rec is not None:
        bar = R._Progress(rec.n_steps, "float", progress)
        fsp = R._run_float(net, rec, bar.tick)
        bar.close()
        em = emulator_for(sp, profile)
        xsp, xcounts, counters = _run_xylo(em, xm, rec)
        sizes = {lay: sp.layers[lay][2] for lay in sp.layers}
        layers = {n: R.layer_agreement(sizes[n], fsp.get(n, []), xsp[n], tol_steps)
                  for n in xsp}  # fmt: skip
        fm_counts = np.zeros_like(xcounts)
        for n in xm.figures["output_layers"]:
            off = sp.layers[n][1]
            for t, i in fsp.get(n, []):
                s = int(np.searchsorted(rec.sample_ptr, t, side="right") - 1)
                fm_counts[s, off + i] += 1
        cf = np.asarray(decide(_votes(fm_counts, rec)), np.int64).reshape(rec.n_samples)
        cq = np.asarray(decide(_votes(xcounts, rec)), np.int64).reshape(rec.n_samples)
        ro = R.readout_summary(cf, cq, rec)
        rep["check"] = {
            "steps": rec.n_steps, "samples": rec.n_samples, "reset_per_sample": rec.reset,
            "tail_steps": rec.tail_steps, "source": rec.source or {"kind": "spikes"},
            "timing": "Xylo input events act in their own step; emulated spikes are compared "
                      "one step later, aligned with the float model's one step per hop",
            "layers": layers, "counters": counters, "readout": ro,
        }  # fmt: skip
    errs = sorted({v.rule for v in errors})
    warns = sorted({v.rule for v in violations if v.severity != "error"})
    w = f"; warnings: {', '.join(warns)}" if warns else ""
    rep["verdict"] = (f"DOES NOT FIT {profile.name}: {len(errors)} violation(s) of "
                      f"{', '.join(errs)}{w}" if errors else f"FITS {profile.name}{w}")
    return rep


def summary_text(rep: dict[str, Any]) -> str:
    """The human summary of a Xylo deploy report."""
    from edgesnn.deploy import report as R

    x = rep["xylo"]
    lines = [f"edgesnn deploy: profile {rep['profile']} ({rep['family']}, {rep['device']}), "
             f"dt {rep['dt_us']} us",
             f"fits: {'yes' if rep['fits'] else 'NO'}; {x['inputs']} inputs, {x['hidden']} "
             f"hidden, {x['outputs']} readout neurons; weight shifts in {x['weight_shift']['in']}"
             f", rec {x['weight_shift']['rec']}, out {x['weight_shift']['out']}", ""]
    lines += R.rule_lines(rep["violations"], rep["rule_families"])
    lines += ["", "weight quantization (float units):"]
    for w in rep["weights"]:
        lines.append(f"  {w['projection']:>20s}: {w['synapses']} syn, weights_{w['matrix']}, "
                     f"max |w| {w['max_abs_weight']:.4g}, rms err {w['rms_error']:.3g} "
                     f"({100 * w['relative_rms_error']:.2f}%), shift {w['shift']}")
    lines += ["", "layer parameters (float -> chip):"]
    for lay in rep["layers"]:
        lines.append(f"  {lay['layer']:>12s}: threshold {lay['threshold_int']} (scale "
                     f"{lay['scale']:.5g}, limited by {lay['scale_limited_by']}), k "
                     f"{lay['k_float']:.4g} -> {lay['k_effective']:.4g} (dash {lay['dash_mem']}),"
                     f" d_syn {lay['d_syn_float'][0]:.4g} -> {lay['d_syn_effective'][0]:.4g} "
                     f"(dash {lay['dash_syn'][0]})")  # fmt: skip
    if "check" in rep:
        c = rep["check"]
        src = c.get("source") or {}
        what = {"pipeline": f"{src.get('recording') or 'its own source'} through "
                            f"{src.get('pipeline')} (no reset between windows)",
                "recordings": f"{src.get('recordings')} labelled recordings"}.get(
            src.get("kind", ""), "recording")  # fmt: skip
        lines += ["", f"check on {what}: {c['steps']} steps, {c['samples']} sample(s)"
                  + (f", {c['tail_steps']} silent tail steps after each" if c["tail_steps"]
                     else "")]  # fmt: skip
        for name, a in c["layers"].items():
            lines.append(f"  {name:>12s}: spiking neuron-steps {a['float_spikes']} float / "
                         f"{a['quantized_spikes']} Xylo; same count "
                         f"{100 * a['neurons_same_count']:.1f}% of neurons; timing exact "
                         f"{100 * a['timing_exact']:.1f}%, within {a['tolerance_steps']} steps "
                         f"{100 * a['timing_within_tol']:.1f}%")  # fmt: skip
        ro = c["readout"]
        line = f"  readout agreement {100 * ro['agreement']:.1f}%"
        if "float_accuracy" in ro:
            line += (f"; accuracy float {100 * ro['float_accuracy']:.1f}%, Xylo "
                     f"{100 * ro['quantized_accuracy']:.1f}%")  # fmt: skip
        line += (f"; undecided (tie or silence) float {ro['float_undecided']}, Xylo "
                 f"{ro['quantized_undecided']}")  # fmt: skip
        lines.append(line)
        k = c["counters"]
        lines.append(f"  saturated: i_syn additions {k.get('isyn_saturated', 0)}, membrane "
                     f"updates {k.get('v_saturated', 0)}; synaptic events "
                     f"{k.get('synaptic_events', 0)}")  # fmt: skip
    lines += ["", f"learning: {rep['learning']['message']}"]
    for n in rep["notes"]:
        lines.append(f"note: {n}")
    lines += ["", f"verdict: {rep['verdict']}"]
    return "\n".join(lines) + "\n"


def summary_json(rep: dict[str, Any]) -> dict[str, Any]:
    """The summary for scripts (`edgesnn deploy --json`) of a Xylo report."""
    from edgesnn.deploy import report as R

    out: dict[str, Any] = {
        "format": R.SUMMARY_FORMAT, "schema_version": R.REPORT_SCHEMA_VERSION,
        "profile": rep["profile"], "family": rep["family"], "fits": rep["fits"],
        "verdict": rep["verdict"], "xylo": rep["xylo"],
        **R.rule_summary(rep),
        "files": rep.get("files", []),
    }  # fmt: skip
    if "check" in rep:
        ro = rep["check"]["readout"]
        out["check"] = {"steps": rep["check"]["steps"], "samples": rep["check"]["samples"],
                        "readout_agreement": ro["agreement"], "counters": rep["check"]["counters"],
                        **{k: ro[k] for k in ("float_accuracy", "quantized_accuracy",
                                              "accuracy_loss_points", "float_undecided",
                                              "quantized_undecided") if k in ro}}  # fmt: skip
    return out


def deploy_xylo(net: Network, fm: FloatModel, profile: Profile, out_dir: str | Path,
                recording: Any = None, *, tol_steps: int = 2, progress: bool = True,
                tail_steps: int | None = None) -> dict[str, Any]:  # fmt: skip
    """`edgesnn.deploy.deploy` for a Xylo profile: quantize, check, compare on a recording,
    write xylo/spec.npz, xylo/run_xylosim.py, report.json and summary.txt into out_dir."""
    from edgesnn.deploy import report as R
    from edgesnn.evaluation import model_tail_steps

    xm = quantize_xylo(fm, profile)
    violations = check_xylo(xm, profile)
    rec = recording
    if isinstance(rec, R.PipelineSource):
        rec = rec.read(net.n_inputs, net.dt_us, progress)
    elif rec is not None and not isinstance(rec, R.DeployRecording):
        rec = R.load_recording(rec, net.n_inputs)
    if rec is not None:
        if tail_steps is None:
            tail_steps = model_tail_steps(net.manifest) or 0
        rec = R.with_tail(rec, tail_steps)
    rep = build_report(net, xm, profile, violations, rec, tol_steps=tol_steps,
                       progress=progress)  # fmt: skip
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rep["files"] = [*write_export(xm, profile, out), "report.json", "summary.txt"]
    (out / "report.json").write_text(json.dumps(rep, indent=1, default=_jsonable),
                                     encoding="utf-8")  # fmt: skip
    (out / "summary.txt").write_text(summary_text(rep), encoding="utf-8")
    return rep
