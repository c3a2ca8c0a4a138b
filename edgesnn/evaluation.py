"""Honest evaluation: splits by recording, one decision rule, one JSON report for every task.

Every example and `edgesnn eval` measures a model the way a deployment sees it: trained on some
recordings and tested on others. Recordings are named on the command line as files, folders or
globs; a recording may carry a fraction range (`FILE@0:0.7`, `FILE@0.7:1`) so one long
recording can feed both sides of a split without sharing a sample. Results over several seeds
are reported as mean ± sd beside a conventional baseline trained and tested on the same split.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Recording",
    "SplitError",
    "add_split_args",
    "check_disjoint",
    "cwru_label",
    "decide",
    "emit",
    "expand_recordings",
    "fsdd_label",
    "label_index",
    "model_tail_steps",
    "readout_labels",
    "report",
    "seed_summary",
]


class SplitError(ValueError):
    """A recording argument that names nothing, a bad fraction range, or an overlapping split."""


@dataclass(frozen=True)
class Recording:
    """One recording file and the part of it to use, as fractions of its length `[lo, hi)`."""

    path: Path
    lo: float = 0.0
    hi: float = 1.0

    @property
    def name(self) -> str:
        return self.path.name

    def part(self, n: int) -> slice:
        """The index range of this part in a recording of `n` samples, rows or windows."""
        return slice(int(round(self.lo * n)), int(round(self.hi * n)))

    def __str__(self) -> str:
        if (self.lo, self.hi) == (0.0, 1.0):
            return str(self.path)
        return f"{self.path}@{self.lo:g}:{self.hi:g}"


_RANGE = re.compile(r"^(?P<path>.+)@(?P<lo>[0-9.]*):(?P<hi>[0-9.]*)$")


def _fraction(text: str, default: float, spec: str) -> float:
    if text == "":
        return default
    try:
        v = float(text)
    except ValueError:
        raise SplitError(f"{spec}: fraction {text!r} is not a number") from None
    if not (0.0 <= v <= 1.0):
        raise SplitError(f"{spec}: fraction {v} is outside 0..1")
    return v


def expand_recordings(specs: Iterable[str | Path], suffixes: Sequence[str] = ()) -> list[Recording]:
    """Recordings named by `specs`: files, folders (every file inside whose name ends in one of
    `suffixes`), or globs, each optionally followed by `@LO:HI`. Sorted, without duplicates.
    Raises SplitError naming the argument that matches nothing or has a bad range."""
    out: list[Recording] = []
    for raw in specs:
        spec = str(raw)
        lo, hi, target = 0.0, 1.0, spec
        m = _RANGE.match(spec)
        if m:
            target = m.group("path")
            lo = _fraction(m.group("lo"), 0.0, spec)
            hi = _fraction(m.group("hi"), 1.0, spec)
            if hi <= lo:
                raise SplitError(f"{spec}: empty fraction range {lo:g}:{hi:g}")
        p = Path(target)
        if p.is_dir():
            files = sorted(f for f in p.iterdir()
                           if f.is_file() and (not suffixes or f.name.endswith(tuple(suffixes))))
        elif p.is_file():
            files = [p]
        else:
            files = sorted(Path(f) for f in glob.glob(target) if Path(f).is_file())
            if suffixes:
                files = [f for f in files if f.name.endswith(tuple(suffixes))]
        if not files:
            what = f" ending in {', '.join(suffixes)}" if suffixes else ""
            raise SplitError(f"{spec}: no recording{what} found there")
        out.extend(Recording(f, lo, hi) for f in files)
    seen: dict[tuple[Path, float, float], Recording] = {}
    for r in out:
        seen.setdefault((r.path.resolve(), r.lo, r.hi), r)
    return sorted(seen.values(), key=lambda r: (str(r.path), r.lo))


def check_disjoint(train: Sequence[Recording], test: Sequence[Recording]) -> None:
    """Refuse a split in which a test recording shares any part of a training recording."""
    by_path: dict[Path, list[Recording]] = {}
    for b in train:  # resolve each path once: splits of thousands of files stay linear
        by_path.setdefault(b.path.resolve(), []).append(b)
    for a in test:
        for b in by_path.get(a.path.resolve(), ()):
            if a.lo < b.hi and b.lo < a.hi:
                raise SplitError(
                    f"{a} overlaps the training recording {b}: a test part must not share "
                    "samples with a training part (use disjoint ranges such as @0:0.7 / @0.7:1)")


def add_split_args(ap: argparse.ArgumentParser, default_note: str) -> None:
    """The common split options of the examples: --train, --test, --seeds, --json."""
    g = ap.add_argument_group("split (by recording; never windows of one recording on both sides)")
    g.add_argument("--train", nargs="+", metavar="PATH", default=None,
                   help="training recordings: files, folders or globs, each optionally FILE@LO:HI "
                        f"(default: {default_note})")
    g.add_argument("--test", nargs="+", metavar="PATH", default=None,
                   help="test recordings, same forms as --train; must not overlap it")
    g.add_argument("--seeds", type=int, default=3,
                   help="train and test this many times with seeds 0..N-1 (default 3); the report "
                        "gives mean and sd")
    g.add_argument("--json", action="store_true",
                   help="print one JSON object with the results on stdout (progress goes to "
                        "stderr)")
    g.add_argument("--plot", metavar="FILE.png", default=None,
                   help="also draw the learning curve (first seed) and the confusion matrices "
                        "of the SNN and the baseline into FILE.png (needs matplotlib: "
                        "pip install 'edgesnn[plot]')")


def check_plot(path: str | Path | None, task: str, log: Callable[[str], None]) -> None:
    """Before any slow work: SystemExit(2) with the install hint when `--plot` was asked for
    and matplotlib is missing."""
    if path is None:
        return
    from edgesnn.plotting import INSTALL_HINT

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        log(f"{task}: --plot needs matplotlib ({INSTALL_HINT})")
        raise SystemExit(2) from None


def plot_result(path: str | Path, result: dict[str, Any],
                history: Sequence[dict[str, Any]] | None = None) -> Path:
    """Write `--plot`'s PNG for an example's result: the learning curve `history` (default:
    the result's "learning_curve", when the SNN was trained by epochs) and every confusion
    matrix in the result (SNN, baseline)."""
    from edgesnn.plotting import report_png

    if history is None:
        history = result.get("learning_curve") or None
    panels = {}
    for key, obj in result.items():  # the SNN, the baseline and any other model beside them
        if isinstance(obj, dict) and "confusion" in obj:
            name = "SNN (all seeds)" if key == "snn" else str(obj.get("name", key))
            panels[name[:40]] = (obj["confusion"], obj.get("labels") or [])
    return report_png(path, panels, history,
                      title=f"{result.get('task', '')}: {result.get('split', '')}"[:120])


# --- labels from file names -------------------------------------------------------------------

_FSDD = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


def fsdd_label(path: str | Path) -> tuple[int, str, int]:
    """(digit, speaker, index) of an FSDD file named `<digit>_<speaker>_<index>.wav`."""
    m = _FSDD.match(Path(path).name)
    if not m:
        raise SplitError(f"{path}: not an FSDD file name (<digit>_<speaker>_<index>.wav)")
    return int(m.group(1)), m.group(2), int(m.group(3))


CWRU_CLASSES = ("normal", "ball", "inner_race", "outer_race")
_CWRU = re.compile(r"(?:^|[_\-/])(Normal|B|IR|OR)(\d{3})?", re.IGNORECASE)
_CWRU_LOAD = re.compile(r"_(\d)(?:\.mat)?$")


def cwru_label(path: str | Path) -> dict[str, Any]:
    """Class, fault size (thousandths of an inch, 0 for normal) and load (hp, or None) of a
    CWRU recording from its name: the `Normal`/`B`/`IR`/`OR` code, e.g. `…_B007_1.mat`,
    `IR014_2.mat`, `OR007at6_0.mat`, `Normal_0.mat`."""
    name = Path(path).name
    stem = name[:-4] if name.lower().endswith(".mat") else name
    codes = list(_CWRU.finditer(stem))
    # the code nearest the end wins (`cwru_12k_de_ball_007_0hp_B007_0` -> B007)
    for m in reversed(codes):
        code = m.group(1).lower()
        if code == "normal" or m.group(2):
            break
    else:
        raise SplitError(f"{path}: no CWRU class code (Normal, B###, IR###, OR###) in the name")
    cls = {"normal": "normal", "b": "ball", "ir": "inner_race", "or": "outer_race"}[code]
    lm = _CWRU_LOAD.search(stem)
    return {"label": cls, "size": int(m.group(2) or 0), "load": int(lm.group(1)) if lm else None}


# --- one decision rule ------------------------------------------------------------------------


def decide(scores: np.ndarray) -> np.ndarray:
    """The class with the highest score per row; -1 (no decision) on a tie for the top or when
    every score is zero. The rule of the runtime's readouts, `edgesnn eval`, deploy reports and
    the examples alike. `scores` is (n_samples, n_classes) or one row."""
    s = np.asarray(scores, dtype=np.float64)
    one = s.ndim == 1
    s = np.atleast_2d(s)
    if s.shape[1] == 0:
        out = np.full(s.shape[0], -1, np.int64)
    else:
        top = s.max(axis=1)
        out = np.argmax(s, axis=1).astype(np.int64)
        ties = (s == top[:, None]).sum(axis=1) > 1
        out[ties | (top <= 0)] = -1
    return out[0:1].reshape(()) if one else out  # type: ignore[return-value]


def model_tail_steps(manifest: dict[str, Any]) -> int | None:
    """The silent steps a model was trained to run after each sample before its decision, from
    its model file's manifest (`recipe.tail_steps`, or a top-level `tail_steps`); None when the
    file does not say (then a command-line flag decides)."""
    for where in (manifest.get("recipe"), manifest):
        if isinstance(where, dict) and where.get("tail_steps") is not None:
            v = int(where["tail_steps"])
            if v < 0:
                raise ValueError(f"tail_steps {v} in the model manifest is negative")
            return v
    return None


def label_index(path: str | Path, labels: Sequence[str]) -> int:
    """Index in `labels` of the class the file name gives (FSDD digit or CWRU code); ValueError
    when the name gives none or one not among `labels`."""
    try:
        name = str(fsdd_label(path)[0])
    except SplitError:
        try:
            name = str(cwru_label(path)["label"])
        except SplitError:
            raise ValueError(f"{path}: no label in the file name (FSDD "
                             "<digit>_<speaker>_<index>.wav or a CWRU Normal/B###/IR###/OR### "
                             "code)") from None  # fmt: skip
    labels = list(labels)
    if name not in labels:
        raise ValueError(f"{path}: its label {name!r} is not among the readout's labels {labels}")
    return labels.index(name)


def recipe_groups(manifest: dict[str, Any], n_out: int) -> tuple[list[str], np.ndarray] | None:
    """(labels, label index of every output neuron) from the model file's recipe: each label
    owns ``neurons_per_label`` consecutive output neurons (from the recipe, else n_out /
    labels; > 1 for a folded ensemble); None when the recipe names no labels that fit."""
    recipe = manifest.get("recipe")
    labels = recipe.get("labels") if isinstance(recipe, dict) else None
    if not isinstance(labels, list) or not labels or not n_out:
        return None
    assert isinstance(recipe, dict)
    group = int(recipe.get("neurons_per_label") or n_out // len(labels))
    if group < 1 or group * len(labels) != n_out:
        return None
    return [str(x) for x in labels], np.arange(n_out) // group


def readout_labels(cfg: Any, n_out: int, chosen: str | None, manifest: dict[str, Any]
                   ) -> tuple[list[str], np.ndarray, str]:  # fmt: skip
    """(labels, label index of every output neuron, where they came from): the model file's
    recipe labels (`recipe_groups`), else the readout of the pipeline `cfg` (`chosen`, or the
    first whose labels fit the model's outputs); ValueError when none fits."""
    found = recipe_groups(manifest, n_out) if chosen is None else None
    if found is not None:
        return found[0], found[1], "model recipe"
    ros = [c for c in cfg.components if c.kind == "readout" and c.params.get("labels")]
    if chosen is not None:
        ros = [c for c in ros if c.id == chosen]
        if not ros:
            raise ValueError(f"{cfg.path}: no readout {chosen!r} with labels")

    def owner(c: Any) -> np.ndarray | None:
        labels = list(c.params["labels"])
        assign = c.params.get("assignments") or []
        if assign:
            return np.asarray(assign, np.int64) if len(assign) == n_out else None
        group = int(c.params.get("neurons_per_label", 1))
        return np.arange(n_out) // group if len(labels) * group == n_out else None

    for c in ros:
        o = owner(c)
        if o is not None:
            return list(c.params["labels"]), o, f"readouts.{c.id}"
    raise ValueError(f"{cfg.path}: no readout with labels fits the model's {n_out} outputs"
                     + (f" (readouts: {', '.join(c.id for c in ros)})" if ros else ""))


# --- the report -------------------------------------------------------------------------------


def seed_summary(y_true: np.ndarray, preds: Sequence[np.ndarray], labels: Sequence[str],
                 normal: int | None = None) -> dict[str, Any]:
    """Accuracy mean/sd over seeds, undecided samples, per-class recall and the confusion
    matrix (summed over seeds; the last column counts undecided samples). With `normal` (the
    index of the normal class), also detection and false-positive rates (an undecided sample
    raises no alarm)."""
    y = np.asarray(y_true, np.int64)
    k = len(labels)
    accs = [float(np.mean(np.asarray(p) == y)) if y.size else float("nan") for p in preds]
    conf = np.zeros((k, k + 1), np.int64)
    for p in preds:
        p = np.asarray(p, np.int64)
        col = np.where(p < 0, k, p)
        np.add.at(conf, (y, col), 1)
    rows = conf.sum(axis=1)
    recall = {labels[i]: (float(conf[i, i] / rows[i]) if rows[i] else None) for i in range(k)}
    out: dict[str, Any] = {
        "accuracy_mean": float(np.mean(accs)) if accs else float("nan"),
        "accuracy_sd": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
        "accuracies": accs,
        "undecided": float(np.mean([np.sum(np.asarray(p) < 0) for p in preds])) if preds else 0.0,
        "per_class_recall": recall,
        "confusion": conf.tolist(),
        "labels": list(labels) + ["(undecided)"],
    }
    if normal is not None:
        drs, fps = [], []
        for p in preds:
            p = np.asarray(p, np.int64)
            alarm = (p >= 0) & (p != normal)
            attack = y != normal
            drs.append(float(alarm[attack].mean()) if attack.any() else float("nan"))
            fps.append(float(alarm[~attack].mean()) if (~attack).any() else float("nan"))
        out["detection_rate"] = float(np.mean(drs))
        out["false_positive_rate"] = float(np.mean(fps))
    return out


def baseline_summary(name: str, y_true: np.ndarray, pred: np.ndarray, labels: Sequence[str],
                     **extra: Any) -> dict[str, Any]:
    """A conventional model's entry of the report: name, accuracy and confusion matrix (the
    same layout as the SNN's, so both can be compared and plotted)."""
    one = seed_summary(y_true, [pred], labels)
    return {"name": name, "accuracy": one["accuracy_mean"], "confusion": one["confusion"],
            "labels": one["labels"], **extra}


def _clean(v: Any) -> Any:
    """JSON-safe copy: NaN/inf become None (strict JSON), numpy scalars become Python ones."""
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def report(task: str, *, n_train: int, n_test: int, train_s: float, snn: dict[str, Any],
           baseline: dict[str, Any], split: str, extra: dict[str, Any] | None = None
           ) -> dict[str, Any]:
    """The one JSON object every example prints with --json (strict JSON: no NaN)."""
    out = {"task": task, "split": split, "n_train": int(n_train), "n_test": int(n_test),
           "train_s": float(train_s), "snn": snn, "baseline": baseline}
    if extra:
        out.update(extra)
    return _clean(out)


def emit(result: dict[str, Any], as_json: bool, log: Callable[[str], None]) -> None:
    """Print the result: one JSON object on stdout with --json, else a short table via `log`."""
    if as_json:
        print(json.dumps(result), flush=True)
        return
    s, b = result["snn"], result["baseline"]
    log("")
    log(f"{result['task']}: split {result['split']}; {result['n_train']} train / "
        f"{result['n_test']} test samples")
    log(f"  SNN       {100 * s['accuracy_mean']:6.2f} % ± {100 * s['accuracy_sd']:.2f} "
        f"over {len(s['accuracies'])} seeds (undecided {s['undecided']:.1f} per run)")
    log(f"  baseline  {100 * b['accuracy']:6.2f} %   ({b['name']})")
    if "detection_rate" in s:
        log(f"  SNN detection {100 * s['detection_rate']:.1f} %, false positives "
            f"{100 * s['false_positive_rate']:.2f} %; baseline "
            f"{100 * b.get('detection_rate', float('nan')):.1f} % / "
            f"{100 * b.get('false_positive_rate', float('nan')):.2f} %")
