"""The deployment report: quantization error, design rules, mapping, agreement, energy.

`deploy(model, profile, out_dir, recording=...)` quantizes, checks, maps, optionally runs the
float and the quantized model side by side on a recording, writes the quantized model, the
exports, ``report.json`` and ``summary.txt``, and returns the report as a dict.

A *recording* (`DeployRecording`) is input spikes as CSR over steps (``in_ptr``, ``in_idx``
indices into the concatenated input layers), optionally cut into samples (``sample_ptr``: step
boundaries; both networks are reset at each sample start) with a ``labels`` class per sample.
Each sample is followed by ``tail_steps`` silent steps (as in training: the model file's recipe,
else `edgesnn deploy --tail-steps`). The readout class of a sample is decided by the one rule
of the runtime's readouts (`edgesnn.evaluation.decide` over output spike counts): the channel
with the most spikes; a tie for the top or silence is no decision (-1, counted as wrong and
reported as undecided).
Spikes encoded from a sensor recording by a pipeline (`edgesnn.deploy.source.PipelineSource`)
are cut into readout windows instead, and the networks run through them without a reset.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.core import Network
from edgesnn.deploy.emulator import Emulator
from edgesnn.deploy.floatmodel import FloatModel
from edgesnn.deploy.profile import Profile, load_profile
from edgesnn.deploy.quantize import QuantizedModel
from edgesnn.deploy.rules import RULE_FAMILIES, Mapping, Violation, family_of, tally_families
from edgesnn.deploy.source import PipelineSource
from edgesnn.errors import FormatError

REPORT_FORMAT = "edgesnn-deploy-report"
#: Version of report.json's layout (2: schema_version, rule_families, verdict, unsettled,
#: counters.u_edge, weights[].step_floor_max; 1 had "version" instead of "schema_version").
REPORT_SCHEMA_VERSION = 2
SUMMARY_FORMAT = "edgesnn-deploy-summary"
#: rules that `edgesnn train --profile` makes a trained model keep (the summary says so)
TRAINABLE_RULES = ("timestep", "synapse_types", "current_decays", "neuron_model",
                   "refractory_range")


@dataclass
class DeployRecording:
    """Input spikes to check on: CSR over steps, optional samples and labels."""

    in_ptr: np.ndarray
    in_idx: np.ndarray
    sample_ptr: np.ndarray
    labels: np.ndarray | None = None
    #: reset both networks at each sample start (False: one continuous run, samples are windows)
    reset: bool = True
    #: where the spikes came from (pipeline, driver, encoder, recording), for the report
    source: dict[str, Any] | None = None
    #: silent steps appended to every sample by `with_tail` (recorded for the report)
    tail_steps: int = 0
    #: names of the classes `labels` index (None: the output channels are the classes)
    label_names: list[str] | None = None
    #: class of every output neuron (-1: none), so that groups of neurons vote together
    owner: np.ndarray | None = None

    @property
    def n_steps(self) -> int:
        return int(self.in_ptr.shape[0] - 1)

    @property
    def n_samples(self) -> int:
        return int(self.sample_ptr.shape[0] - 1)


def load_recording(path: str | Path, n_inputs: int | None = None) -> DeployRecording:
    """Read a recording npz (in_ptr, in_idx[, sample_ptr][, labels]); FormatError when bad."""
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise FormatError(f"not a recording npz ({e})", path=str(path)) from None
    for key in ("in_ptr", "in_idx"):
        if key not in data:
            raise FormatError(f'recording lacks "{key}" (CSR input spikes over steps)',
                              path=str(path))  # fmt: skip
    ptr = data["in_ptr"].astype(np.int64).ravel()
    idx = data["in_idx"].astype(np.int32).ravel()
    if ptr.size < 1 or ptr[0] != 0 or np.any(np.diff(ptr) < 0) or ptr[-1] != idx.size:
        raise FormatError("in_ptr must start at 0, not decrease and end at len(in_idx)",
                          path=str(path))  # fmt: skip
    if n_inputs is not None and idx.size and (idx.min() < 0 or idx.max() >= n_inputs):
        raise FormatError(f"in_idx must be within 0..{n_inputs - 1} (the model's inputs)",
                          path=str(path))  # fmt: skip
    n_steps = ptr.size - 1
    sp = data.get("sample_ptr")
    sp = np.asarray([0, n_steps], np.int64) if sp is None else sp.astype(np.int64).ravel()
    if sp.size < 2 or sp[0] != 0 or sp[-1] != n_steps or np.any(np.diff(sp) <= 0):
        raise FormatError(f"sample_ptr must rise strictly from 0 to {n_steps} (steps)",
                          path=str(path))  # fmt: skip
    labels = data.get("labels")
    if labels is not None:
        labels = labels.astype(np.int64).ravel()
        if labels.size != sp.size - 1:
            raise FormatError(f"{labels.size} labels for {sp.size - 1} samples", path=str(path))
    return DeployRecording(ptr, idx, sp, labels)


def with_tail(rec: DeployRecording, tail_steps: int) -> DeployRecording:
    """`rec` with `tail_steps` silent steps appended to every sample (the steps a trained model
    runs after its input ends before the decision); unchanged when 0 or not reset per sample."""
    if tail_steps < 0:
        raise ValueError("tail_steps must not be negative")
    if tail_steps == 0 or not rec.reset:
        return rec
    sp = rec.sample_ptr
    lens = np.diff(sp)
    ptr_parts, new_sp = [np.zeros(1, np.int64)], [0]
    for s in range(rec.n_samples):
        seg = rec.in_ptr[int(sp[s]) + 1 : int(sp[s + 1]) + 1]
        ptr_parts += [seg, np.full(tail_steps, seg[-1] if seg.size else rec.in_ptr[int(sp[s])])]
        new_sp.append(new_sp[-1] + int(lens[s]) + tail_steps)
    return DeployRecording(np.concatenate(ptr_parts).astype(np.int64), rec.in_idx,
                           np.asarray(new_sp, np.int64), rec.labels, rec.reset, rec.source,
                           rec.tail_steps + tail_steps, rec.label_names, rec.owner)  # fmt: skip


# --- comparison ------------------------------------------------------------------------------


def _run_float(net: Network, rec: DeployRecording, tick: Callable[[], None]
               ) -> dict[str, list[tuple[int, int]]]:  # fmt: skip
    out: dict[str, list[tuple[int, int]]] = {n: [] for n in net.layer_names}
    for s in range(rec.n_samples):
        if s == 0 or rec.reset:
            net.reset()
        for k in range(int(rec.sample_ptr[s]), int(rec.sample_ptr[s + 1])):
            net.step(rec.in_idx[rec.in_ptr[k] : rec.in_ptr[k + 1]])
            for n in net.layer_names:
                out[n] += [(k, int(i)) for i in net.layer_spikes(n)]
            tick()
    return out


def _run_quant(em: Emulator, rec: DeployRecording, tick: Callable[[], None]
               ) -> tuple[dict[str, list[tuple[int, int]]], dict[str, int]]:  # fmt: skip
    out: dict[str, list[tuple[int, int]]] = {n: [] for n in em.layer_names}
    totals: dict[str, int] = {}
    for s in range(rec.n_samples):
        if s == 0 or rec.reset:
            em.reset()
        for k in range(int(rec.sample_ptr[s]), int(rec.sample_ptr[s + 1])):
            em.step(rec.in_idx[rec.in_ptr[k] : rec.in_ptr[k + 1]])
            for n in em.layer_names:
                out[n] += [(k, int(i)) for i in em.layer_spikes(n)]
            tick()
        if rec.reset or s == rec.n_samples - 1:  # counters run on until the next reset
            for key, val in em.counters.items():
                totals[key] = totals.get(key, 0) + val
    return out, totals


def match_spikes(a: list[tuple[int, int]], b: list[tuple[int, int]], tol: int
                 ) -> tuple[int, list[int]]:  # fmt: skip
    """Greedy per-neuron matching of spike times within +-tol steps: (matched pairs, |dt| of
    each pair)."""
    by_a: dict[int, list[int]] = {}
    by_b: dict[int, list[int]] = {}
    for t, i in a:
        by_a.setdefault(i, []).append(t)
    for t, i in b:
        by_b.setdefault(i, []).append(t)
    dts: list[int] = []
    for i, ta in by_a.items():
        tb = by_b.get(i, [])
        ta, tb = sorted(ta), sorted(tb)
        p = q = 0
        while p < len(ta) and q < len(tb):
            d = tb[q] - ta[p]
            if abs(d) <= tol:
                dts.append(abs(d))
                p += 1
                q += 1
            elif d < 0:
                q += 1
            else:
                p += 1
    return len(dts), dts


def layer_agreement(n: int, f: list[tuple[int, int]], q: list[tuple[int, int]], tol: int
                    ) -> dict[str, Any]:  # fmt: skip
    """Per-neuron count and timing agreement of one layer (float f vs quantized q)."""
    cf = np.bincount(np.asarray([i for _, i in f], np.int64), minlength=n)[:n] if f else \
        np.zeros(n, np.int64)  # fmt: skip
    cq = np.bincount(np.asarray([i for _, i in q], np.int64), minlength=n)[:n] if q else \
        np.zeros(n, np.int64)  # fmt: skip
    exact = len(set(f) & set(q))
    matched, dts = match_spikes(f, q, tol)
    denom = max(len(f), len(q), 1)
    return {
        "neurons": n, "float_spikes": len(f), "quantized_spikes": len(q),
        "neurons_same_count": float(np.mean(cf == cq)) if n else 1.0,
        "mean_abs_count_diff": float(np.mean(np.abs(cf - cq))) if n else 0.0,
        "count_error": float(np.abs(cf - cq).sum() / max(cf.sum(), 1)),
        "timing_exact": exact / denom, "timing_within_tol": matched / denom,
        "tolerance_steps": tol, "mean_abs_dt_steps": float(np.mean(dts)) if dts else 0.0,
        "float_counts": cf.tolist(), "quantized_counts": cq.tolist(),
    }  # fmt: skip


def _classes(spikes: dict[str, list[tuple[int, int]]], outputs: list[str], sizes: dict[str, int],
             rec: DeployRecording) -> np.ndarray:  # fmt: skip
    """The decided class of every sample (-1: tie or silence), by the runtime's rule over the
    spike counts of each class (the output neurons `rec.owner` gives it, else one neuron)."""
    from edgesnn.evaluation import decide

    n_out = sum(sizes[o] for o in outputs)
    counts = np.zeros((rec.n_samples, n_out), np.int64)
    off = 0
    for o in outputs:
        for t, i in spikes[o]:
            s = int(np.searchsorted(rec.sample_ptr, t, side="right") - 1)
            counts[s, off + i] += 1
        off += sizes[o]
    if rec.owner is not None:
        owner = np.asarray(rec.owner, np.int64)
        n_cls = len(rec.label_names) if rec.label_names else int(owner.max(initial=-1)) + 1
        votes = np.zeros((rec.n_samples, n_cls), np.int64)
        for j in np.flatnonzero(owner >= 0):
            votes[:, owner[j]] += counts[:, j]
        counts = votes
    return np.asarray(decide(counts), np.int64).reshape(rec.n_samples)


class _Progress:
    """A progress bar on stderr (a terminal), else one line at the end; with no known total
    (a recording read to its end) a running count of steps."""

    def __init__(self, total: int | None, label: str, enabled: bool = True):
        self.total = max(total, 1) if total is not None else None
        self.label, self.done = label, 0
        self.enabled = enabled
        self.tty = enabled and sys.stderr.isatty()
        self.t0 = self.last = time.monotonic()

    def tick(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if not self.tty or (now - self.last <= 0.1 and self.done != self.total):
            return
        self.last = now
        if self.total is None:
            print(f"\r{self.label} ... {self.done} steps, {now - self.t0:.1f} s", end="",
                  file=sys.stderr, flush=True)  # fmt: skip
            return
        frac = min(self.done / self.total, 1.0)
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        print(f"\r{self.label} [{bar}] {100 * frac:5.1f}% {self.done}/{self.total} steps",
              end="", file=sys.stderr, flush=True)  # fmt: skip

    def close(self) -> None:
        if not self.enabled:
            return
        end = "\n" if self.tty else ""
        print(f"{end}{self.label}: {self.done} steps in {time.monotonic() - self.t0:.1f} s",
              file=sys.stderr, flush=True)  # fmt: skip


# --- the report --------------------------------------------------------------------------------


def weight_errors(qm: QuantizedModel) -> list[dict[str, Any]]:
    """Per projection: weight quantization error in float units, of the weights the chip
    target says the emulator applies (its ``quantize.effective_weights``; Loihi: lava's
    effective weights over the layer's weight gain), and ``step_floor_max``, the most a
    negative exponent's floor of a neuron's summed input removes in one step (float units; 0
    when exp >= 0)."""
    from edgesnn.deploy.targets import target

    effective = target(qm.family).module("quantize").effective_weights
    out = []
    for p in qm.projections:
        w_eff, floor = effective(qm, p)
        err = w_eff - p.w_float
        wmax = float(np.max(np.abs(p.w_float))) if p.w_float.size else 0.0
        rms = float(np.sqrt(np.mean(err**2))) if err.size else 0.0
        nz = p.w_float != 0
        out.append({
            "projection": p.name, "layer": p.target, "synapses": int(p.w.size),
            "max_abs_weight": wmax, "max_abs_error": float(np.max(np.abs(err))) if err.size
            else 0.0, "rms_error": rms, "relative_rms_error": rms / wmax if wmax else 0.0,
            "mean_error": float(np.mean(err[nz])) if np.any(nz) else 0.0,
            "exponent": p.exp, "sign_mode": p.sign_mode,
            "zeroed": int(np.sum((p.w == 0) & (p.w_float != 0))),
            "step_floor_max": floor,
        })  # fmt: skip
    return out


def rule_families(violations: list[Violation]) -> list[dict[str, Any]]:
    """One entry per rule family checked: its rules, error and warning counts, and status
    ("pass", "warn" or "fail")."""
    return tally_families(violations, RULE_FAMILIES, family_of)


def verdict(rep: dict[str, Any]) -> str:
    """The one-line verdict: whether the model fits, and what broke or warns."""
    errs = sorted({v["rule"] for v in rep["violations"] if v["severity"] == "error"})
    warns = sorted({v["rule"] for v in rep["violations"] if v["severity"] != "error"})
    if errs:
        n = sum(1 for v in rep["violations"] if v["severity"] == "error")
        return (f"DOES NOT FIT {rep['profile']}: {n} violation(s) of {', '.join(errs)}"
                + (f"; warnings: {', '.join(warns)}" if warns else ""))  # fmt: skip
    return (f"FITS {rep['profile']}: {rep['cores_used']} core(s), {rep['chips_needed']} "
            f"chip(s)" + (f"; warnings: {', '.join(warns)}" if warns else ""))  # fmt: skip


def rule_summary(rep: dict[str, Any]) -> dict[str, Any]:
    """The rule families, violations and worst weight error of a report, as every target's
    `summary_json` gives them."""
    return {
        "rule_families": [{k: f[k] for k in ("family", "status", "violations", "warnings",
                                              "broken")} for f in rep["rule_families"]],
        "violations": rep["violations"],
        "weights_max_relative_rms_error": max((w["relative_rms_error"] for w in rep["weights"]),
                                              default=0.0),
    }  # fmt: skip


def summary_json(rep: dict[str, Any]) -> dict[str, Any]:
    """The summary for scripts (`edgesnn deploy --json`): verdict, rule families, violations,
    and the check's headline figures when one ran."""
    own = _own_summary(rep, "summary_json")
    if own is not None:
        return own(rep)
    out: dict[str, Any] = {
        "format": SUMMARY_FORMAT, "schema_version": REPORT_SCHEMA_VERSION,
        "profile": rep["profile"], "family": rep["family"], "fits": rep["fits"],
        "verdict": rep["verdict"], "cores_used": rep["cores_used"],
        "chips_needed": rep["chips_needed"],
        **rule_summary(rep),
        "unsettled": {k: v["occurrences"] for k, v in rep.get("unsettled", {}).items()},
        "files": rep.get("files", []),
    }  # fmt: skip
    if "check" in rep:
        ro = rep["check"]["readout"]
        out["check"] = {
            "steps": rep["check"]["steps"], "samples": rep["check"]["samples"],
            "readout_agreement": ro["agreement"], "counters": rep["check"]["counters"],
            **{k: ro[k] for k in ("float_accuracy", "quantized_accuracy",
                                  "accuracy_loss_points", "float_undecided",
                                  "quantized_undecided") if k in ro},
            "energy_per_inference_j": rep["energy_per_inference"]["joules"],
        }  # fmt: skip
    return out


def build_report(net: Network, qm: QuantizedModel, profile: Profile,
                 violations: list[Violation], mapping: Mapping,
                 recording: DeployRecording | None = None, *, tol_steps: int = 2,
                 progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """Everything `edgesnn deploy` reports, as a JSON-able dict."""
    from edgesnn.deploy.targets import target

    errors = [v for v in violations if v.severity == "error"]
    chip = profile["chip"]
    rep: dict[str, Any] = {
        "format": REPORT_FORMAT, "schema_version": REPORT_SCHEMA_VERSION,
        "profile": profile.name, "family": qm.family, "dt_us": qm.dt_us,
        "fits": not errors,
        "rule_families": rule_families(violations),
        "violations": [{"rule": v.rule, "layer": v.layer, "value": _j(v.value),
                        "limit": _j(v.limit), "message": v.message, "severity": v.severity}
                       for v in violations],
        "mapping": mapping.to_dict(),
        "cores_used": mapping.cores,
        "chips_needed": math.ceil(mapping.cores / chip["cores_per_chip"]) if mapping.cores
        else 0,
        "weights": weight_errors(qm),
        "layers": [{"layer": lay.name, "model": lay.model, "params": lay.params,
                    **{k: _j(v) for k, v in lay.info.items()}}
                   for lay in qm.layers if not lay.is_input],
        "notes": list(qm.notes),
        "learning": _learning(qm, profile),
        "energy_figures": {"synop_pj": profile["energy"]["synop_pj"],
                           "neuron_update_pj": profile["energy"]["neuron_update_pj"],
                           "confirmed": profile["energy"]["confirmed"],
                           "sources": {k: profile["sources"].get(f"energy.{k}", "")
                                       for k in ("synop_pj", "neuron_update_pj")}},
    }  # fmt: skip
    if recording is not None:
        em = target(qm.family).emulator(qm, profile)
        total = recording.n_steps
        bar = _Progress(total, "float", progress)
        fsp = _run_float(net, recording, bar.tick)
        bar.close()
        bar = _Progress(total, f"{profile.name}", progress)
        qsp, counters = _run_quant(em, recording, bar.tick)
        bar.close()
        sizes = {lay.name: lay.n for lay in qm.layers}
        rep["check"] = {
            "steps": total, "samples": recording.n_samples,
            "reset_per_sample": recording.reset, "tail_steps": recording.tail_steps,
            "source": recording.source or {"kind": "spikes"},
            "layers": {lay.name: layer_agreement(lay.n, fsp[lay.name], qsp[lay.name], tol_steps)
                       for lay in qm.layers if not lay.is_input},
            "counters": counters,
        }  # fmt: skip
        cf = _classes(fsp, qm.outputs, sizes, recording)
        cq = _classes(qsp, qm.outputs, sizes, recording)
        rep["check"]["readout"] = readout_summary(cf, cq, recording)
        ns = max(recording.n_samples, 1)
        syn = counters.get("synops", 0) / ns
        upd = counters.get("neuron_updates", 0) / ns
        e = profile["energy"]
        rep["energy_per_inference"] = {
            "synops": syn, "neuron_updates": upd,
            "joules": (syn * e["synop_pj"] + upd * e["neuron_update_pj"]) * 1e-12,
            "confirmed": e["confirmed"],
        }  # fmt: skip
    rep.update(target(qm.family).module("rules").report_extras(
        qm, profile, rep["check"]["counters"] if "check" in rep else None))
    rep["verdict"] = verdict(rep)
    return rep


def _learning(qm: QuantizedModel, profile: Profile) -> dict[str, Any]:
    plastic = [p.name for p in qm.projections if p.plasticity]
    lr = profile["learning"]
    rules = sorted({(p.plasticity or {}).get("rule", "stdp") for p in qm.projections
                    if p.plasticity})  # fmt: skip
    can = bool(plastic) and lr["on_chip"] and all(r in lr["rules"] for r in rules)
    if not plastic:
        msg = "the model has no plastic projections"
    elif can:
        msg = f"{profile.name} can learn on chip ({', '.join(rules)}); {lr['note']}".rstrip("; ")
    else:
        msg = (f"{profile.name} cannot learn on chip ({', '.join(rules)}): the learned weights "
               f"are deployed frozen. {lr['note']}").strip()  # fmt: skip
    return {"plastic_projections": plastic, "can_learn_on_chip": can, "message": msg}


def _j(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def rule_lines(violations: list[dict[str, Any]], families: list[dict[str, Any]]) -> list[str]:
    """The design-rule lines of every target's `summary_text`: counts, one line per rule
    family, one per violation or warning."""
    errs = [v for v in violations if v["severity"] == "error"]
    lines = [f"design rules: {len(errs)} violation(s), {len(violations) - len(errs)} warning(s)"]
    for f in families:
        what = {"pass": "ok", "warn": f"{f['warnings']} warning(s)",
                "fail": f"{f['violations']} violation(s)"}[f["status"]]
        broken = f" ({', '.join(f['broken'])})" if f["broken"] else ""
        lines.append(f"  check {f['family']:18s} {what}{broken}  [{', '.join(f['rules'])}]")
    for v in violations:
        lines.append(f"  {v['severity']:7s} {v['rule']:18s} {v['layer']:>12s}  value {v['value']}"
                     f"  limit {v['limit']}  {v['message']}")  # fmt: skip
    return lines


def summary_text(rep: dict[str, Any]) -> str:
    """The human summary of a report."""
    own = _own_summary(rep, "summary_text")
    if own is not None:
        return own(rep)
    lines = [f"edgesnn deploy: profile {rep['profile']} ({rep['family']}), dt {rep['dt_us']} us",
             f"fits: {'yes' if rep['fits'] else 'NO'}; cores used: {rep['cores_used']} "
             f"({rep['chips_needed']} chip(s))", ""]  # fmt: skip
    lines += rule_lines(rep["violations"], rep.get("rule_families", []))
    lines += ["", "mapping (layer: cores x neurons per core, synapse bits / fan-in per core):"]
    for m in rep["mapping"]["layers"]:
        lines.append(f"  {m['layer']:>12s}: {m['cores']} x {m['neurons_per_core']}, "
                     f"{m['synapse_bits_per_core']} bits, {m['fan_in_axons_per_core']} axons"
                     + ("" if m["fits"] else "  (does not fit)"))  # fmt: skip
    if rep["mapping"]["extension_cores"]:
        lines.append(f"  delay extensions: {rep['mapping']['extension_cores']} cores")
    lines += ["", "weight quantization (float units):"]
    for w in rep["weights"]:
        lines.append(f"  {w['projection']:>20s}: {w['synapses']} syn, max |w| "
                     f"{w['max_abs_weight']:.4g}, rms err {w['rms_error']:.3g} "
                     f"({100 * w['relative_rms_error']:.2f}%), max err {w['max_abs_error']:.3g}, "
                     f"exp {w['exponent']} {w['sign_mode']}"
                     + (f", per-step sum floor < {w['step_floor_max']:.3g}"
                        if w.get("step_floor_max") else ""))  # fmt: skip
    lines += ["", "layer parameters (float -> effective):"]
    for lay in rep["layers"]:
        lines.append(f"  {lay['layer']:>12s}: threshold {lay.get('threshold_float', 0):.6g} -> "
                     f"{lay.get('threshold_effective', 0):.6g}, k {lay.get('k_float', 0):.6g} -> "
                     f"{lay.get('k_effective', 0):.6g}, d_syn {lay.get('d_syn_float', 0):.6g} ->"
                     f" {lay.get('d_syn_effective', 0):.6g}")  # fmt: skip
    if "check" in rep:
        c = rep["check"]
        src = c.get("source") or {}
        if src.get("kind") == "pipeline":
            what = src["recording"] or f"the {src['driver']} driver's own source"
            win = (f"{c['samples']} windows of {src['window_ms']:g} ms" if src["window_ms"]
                   else "one window")  # fmt: skip
            cut = " (stopped at --max-steps)" if src["truncated_at_max_steps"] else ""
            lines += ["", f"check on {what} through {src['pipeline']} ({src['driver_type']} -> "
                      f"{src['encoder_type']}): {c['steps']} steps{cut}, {src['input_spikes']} "
                      f"input spikes, {win}, no reset between windows"]
        elif src.get("kind") == "recordings":
            lines += ["", f"check on {src['recordings']} labelled recordings (encoded by the "
                      f"{src['encoder']}; both models reset before each, "
                      f"{c['tail_steps']} silent tail steps after each): {c['steps']} steps, "
                      f"{src['input_spikes']} input spikes, labels from the {src['labels_from']}"
                      f" ({src['neurons_per_label']} output neuron(s) per label)"]
        else:
            tail = (f", {c['tail_steps']} silent tail steps after each"
                    if c.get("tail_steps") else "")  # fmt: skip
            lines += ["", f"check on recording: {c['steps']} steps, {c['samples']} sample(s)"
                      f"{tail}"]
        for name, a in c["layers"].items():
            lines.append(f"  {name:>12s}: spikes {a['float_spikes']} float / "
                         f"{a['quantized_spikes']} quantized; same count "
                         f"{100 * a['neurons_same_count']:.1f}% of neurons; timing exact "
                         f"{100 * a['timing_exact']:.1f}%, within {a['tolerance_steps']} steps "
                         f"{100 * a['timing_within_tol']:.1f}%")  # fmt: skip
        ro = c["readout"]
        line = f"  readout agreement {100 * ro['agreement']:.1f}%"
        if "float_accuracy" in ro:
            line += (f"; accuracy float {100 * ro['float_accuracy']:.2f}%, emulated "
                     f"{100 * ro['quantized_accuracy']:.2f}% (loss "
                     f"{ro['accuracy_loss_points']:.2f} points; most spikes decide, a tie or "
                     "silence is no decision)")  # fmt: skip
        if "float_undecided" in ro:
            line += (f"; undecided (tie or silence) float {ro['float_undecided']}, quantized "
                     f"{ro['quantized_undecided']}")  # fmt: skip
        lines.append(line)
        k = c["counters"]
        lines.append(f"  overflow u {k['u_overflow']}, v {k['v_overflow']}, q {k['q_overflow']}"
                     f"; ring saturations {k['ring_saturated']}"
                     + (f"; u at the wrap edge {k['u_edge']}" if "u_edge" in k
                        else ""))  # fmt: skip
        e = rep["energy_per_inference"]
        lines.append(f"  energy per inference: {e['joules'] * 1e9:.4g} nJ ({e['synops']:.0f} "
                     f"synops, {e['neuron_updates']:.0f} neuron updates)"
                     + ("" if e["confirmed"] else
                        "; figures unconfirmed, see report.json"))  # fmt: skip
    lines += ["", f"learning: {rep['learning']['message']}"]
    un = rep.get("unsettled", {})
    if un:
        def seen(u: dict[str, Any]) -> str:
            return "not checked" if u["occurrences"] is None else f"{u['occurrences']} times"

        q, e = un["input_accumulator"], un["u_edge"]
        lines.append(f"not settled by lava (the profile's choice; how often the check met it): "
                     f"input wider than {q['bits']} bits: {q['overflow']}, {seen(q)}; u at "
                     f"exactly the wrap edge: {e['range']} range, {seen(e)} (sources in "
                     "report.json under unsettled)")  # fmt: skip
    for n in rep["notes"]:
        lines.append(f"note: {n}")
    trainable = sorted({v["rule"] for v in rep["violations"] if v["severity"] == "error"}
                       & set(TRAINABLE_RULES))  # fmt: skip
    if trainable:
        lines.append(f"hint: `edgesnn train --profile {rep['profile']}` trains within these "
                     f"limits ({', '.join(trainable)}), so that the model fits")
    if "verdict" in rep:
        lines += ["", f"verdict: {rep['verdict']}"]
    return "\n".join(lines) + "\n"


def deploy(model: str | Path | Network, profile: str | Path | Profile, out_dir: str | Path,
           recording: str | Path | DeployRecording | PipelineSource | None = None, *,
           tol_steps: int = 2, progress: bool = True, tail_steps: int | None = None
           ) -> dict[str, Any]:  # fmt: skip
    """Quantize, check, map, compare on a recording, export; write everything into out_dir.

    `recording` is an input-spike .npz, a DeployRecording, or a PipelineSource (a sensor
    recording, or a pipeline's own source, encoded by the pipeline's encoder). `tail_steps`
    silent steps follow every sample of a recording that resets per sample (None: the model
    file's training recipe, else 0)."""
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    if isinstance(model, Network):
        net = model
        fm = FloatModel.from_network(net)
    else:
        try:
            net = Network.load(model)
            fm = FloatModel.from_network(net)
        except FormatError:
            raise
        except (ValueError, IndexError, KeyError) as e:  # tables the loader could not read
            raise FormatError(f"cannot read the model's tables ({e}); was it written by "
                              "another edgesnn version?", path=str(model)) from None
    from edgesnn.deploy.targets import target

    return target(prof.family).deploy(net, fm, prof, out_dir, recording, tol_steps=tol_steps,
                                      progress=progress, tail_steps=tail_steps)  # fmt: skip


def deploy_cores(net: Network, fm: FloatModel, prof: Profile, out_dir: str | Path,
                 recording: str | Path | DeployRecording | PipelineSource | None = None, *,
                 tol_steps: int = 2, progress: bool = True, tail_steps: int | None = None
                 ) -> dict[str, Any]:  # fmt: skip
    """`deploy` for a core-mapped chip target (Loihi, SpiNNaker): its quantizer, rules,
    emulator and toolchain export around this module's report, NIR and summaries."""
    from edgesnn.deploy.export import write_nir
    from edgesnn.deploy.targets import target
    from edgesnn.evaluation import model_tail_steps

    tgt = target(prof.family)
    qm = tgt.quantize(fm, prof)
    violations, mapping = tgt.check(qm, prof)
    rec = recording
    if isinstance(rec, PipelineSource):
        rec = rec.read(net.n_inputs, net.dt_us, progress)
    elif rec is not None and not isinstance(rec, DeployRecording):
        rec = load_recording(rec, net.n_inputs)
    if rec is not None:
        if tail_steps is None:
            tail_steps = model_tail_steps(net.manifest) or 0
        rec = with_tail(rec, tail_steps)
    rep = build_report(net, qm, prof, violations, mapping, rec, tol_steps=tol_steps,
                       progress=progress)  # fmt: skip
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    qm.save(out / "quantized.npz")
    write_nir(fm, qm, out / "model.nir")
    rep["files"] = ["quantized.npz", "model.nir", "model.nir.quant.json",
                    *tgt.export(qm, prof, out), "report.json", "summary.txt"]  # fmt: skip
    (out / "report.json").write_text(json.dumps(rep, indent=1, default=_j), encoding="utf-8")
    (out / "summary.txt").write_text(summary_text(rep), encoding="utf-8")
    return rep


def _own_summary(rep: dict[str, Any], which: str) -> Any:
    """The summary function of a target with its own report (Xylo), or None."""
    from edgesnn.deploy.targets import families, target

    fam = rep.get("family")
    if fam not in families():
        return None
    fn = getattr(target(fam), which)
    return None if fn is globals()[which] else fn


def readout_summary(cf: np.ndarray, cq: np.ndarray, recording: Any) -> dict[str, Any]:
    """The readout check of a deploy report: float vs quantized decisions per sample (the
    runtime's rule), their agreement and, with labels, both accuracies and the loss in points."""
    ro: dict[str, Any] = {"float_classes": cf.tolist(), "quantized_classes": cq.tolist(),
                          "agreement": float(np.mean(cf == cq)),
                          "float_undecided": int(np.sum(cf < 0)),
                          "quantized_undecided": int(np.sum(cq < 0)),
                          "decision_rule": "most output spikes; a tie or silence is no "
                          "decision (counted as wrong)"}  # fmt: skip
    if recording.labels is not None:
        ro["float_accuracy"] = float(np.mean(cf == recording.labels))
        ro["quantized_accuracy"] = float(np.mean(cq == recording.labels))
        ro["accuracy_loss_points"] = 100.0 * (ro["float_accuracy"] - ro["quantized_accuracy"])
    if getattr(recording, "label_names", None) is not None:
        ro["labels"] = list(recording.label_names)
    return ro
