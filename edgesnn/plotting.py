"""PNG plots of spikes, event-camera frames, training curves and confusion matrices.

Plain functions that write one PNG each, for `edgesnn plot` and for trainers and examples
(`--plot FILE.png`). matplotlib is optional (`pip install 'edgesnn[plot]'`); it is imported
only here, and only its Agg canvas is used (no pyplot, no display, no global backend change),
so plotting works on a headless device and inside a running process.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.events import SpikeRaster

#: what to install when matplotlib is missing
INSTALL_HINT = "pip install 'edgesnn[plot]'"

PathLike = str | os.PathLike[str]


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def _figure(width_in: float, height_in: float) -> Any:
    """A matplotlib Figure on an Agg canvas (PlotUnavailable when matplotlib is missing)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotUnavailable(f"plots need matplotlib: {INSTALL_HINT}") from None
    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: PathLike, dpi: int) -> Path:
    out = Path(path)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=dpi)
    return out


def raster_points(
    rasters: SpikeRaster | Iterable[SpikeRaster],
) -> tuple[np.ndarray, np.ndarray, int]:
    """Spike times (µs) and channels of one raster or a sequence of them, and the channel
    count."""
    if isinstance(rasters, SpikeRaster):
        rasters = [rasters]
    ts, cs, n = [], [], 0
    for r in rasters:
        n = max(n, r.n_channels)
        a, b = int(r.ptr[0]), int(r.ptr[-1])
        if b == a:
            continue
        steps = np.repeat(np.arange(r.n_steps, dtype=np.int64), np.diff(r.ptr))
        ts.append(r.t0_us + steps * r.dt_us)
        cs.append(r.idx[a:b])
    if not ts:
        return np.zeros(0, np.int64), np.zeros(0, np.int32), n
    return np.concatenate(ts), np.concatenate(cs).astype(np.int32), n


def raster_png(
    path: PathLike,
    panels: Mapping[str, SpikeRaster | Sequence[SpikeRaster]],
    *,
    title: str = "",
    dpi: int = 100,
) -> Path:
    """One spike-raster panel per entry of `panels` (name -> rasters), sharing the time axis
    (seconds of sensor time from the first raster's start); e.g. {"encoder pooled": [...],
    "network motion": [...]}."""
    n = max(1, len(panels))
    fig = _figure(9.0, 1.2 + 2.2 * n)
    from matplotlib.ticker import MaxNLocator

    lists = {k: [v] if isinstance(v, SpikeRaster) else list(v) for k, v in panels.items()}
    starts = [r.t0_us for rs in lists.values() for r in rs]
    t_start = min(starts) if starts else 0  # epoch-stamped sensors: time from the start
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    for ax, (name, rasters) in zip(axes, lists.items()):
        t, c, n_ch = raster_points(rasters)
        size = 1.0 if t.size > 20_000 else (4.0 if t.size > 2_000 else 9.0)
        ax.scatter((t - t_start) / 1e6, c, s=size, marker="|", linewidths=0.6,
                   color="#c2410c", rasterized=True)
        ax.set_ylim(-0.5, max(n_ch, 1) - 0.5)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("channel")
        count = f"{t.size:,}".replace(",", " ")
        ax.set_title(f"{name}: {count} spikes, {n_ch} channels", fontsize=10, loc="left")
    axes[-1].set_xlabel("sensor time (s)" if not t_start else
                        f"sensor time (s) from {t_start / 1e6:.6f} s")
    if title:
        fig.suptitle(title)
    return _save(fig, path, dpi)


def dvs_frame(events: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """ON and OFF event counts per pixel, arrays (height, width), of DVS_EVENT records."""
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    ok = (x < width) & (y < height)
    flat = y[ok] * width + x[ok]
    on = events["p"][ok] != 0
    n = width * height
    on_img = np.bincount(flat[on], minlength=n).reshape(height, width)
    off_img = np.bincount(flat[~on], minlength=n).reshape(height, width)
    return on_img, off_img


def dvs_frame_png(
    path: PathLike,
    events: np.ndarray,
    width: int,
    height: int,
    *,
    title: str = "",
    dpi: int = 100,
) -> Path:
    """An event-camera frame: ON events in orange, OFF events in blue, brightness by count
    (square root of the count over the 99th percentile of active pixels, so single events
    stay visible), one image pixel per sensor pixel."""
    on, off = dvs_frame(events, width, height)

    def scale(img: np.ndarray) -> np.ndarray:
        active = img[img > 0]
        top = float(np.percentile(active, 99)) if active.size else 1.0
        return np.sqrt(np.clip(img / max(top, 1.0), 0.0, 1.0))

    a, b = scale(on), scale(off)
    rgb = np.zeros((height, width, 3))
    rgb += a[..., None] * np.array([1.0, 0.55, 0.1])  # ON: orange
    rgb += b[..., None] * np.array([0.2, 0.55, 1.0])  # OFF: blue
    rgb = np.clip(rgb, 0.0, 1.0)
    aspect = height / max(width, 1)
    fig = _figure(7.0, 7.0 * aspect + 0.8)
    ax = fig.add_subplot()
    ax.imshow(rgb, origin="upper", interpolation="nearest")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    n_on, n_off = int(on.sum()), int(off.sum())
    ax.set_title(title or f"{width}x{height}: {n_on} ON (orange), {n_off} OFF (blue) events",
                 fontsize=10)
    return _save(fig, path, dpi)


def training_curve_png(
    path: PathLike, history: Sequence[Mapping[str, Any]], *, title: str = "", dpi: int = 100
) -> Path:
    """Loss and accuracy per epoch from a trainer's history (rows like {"epoch", "loss",
    "train_acc", "val_loss", "val_acc"}): losses on the left, accuracies on the right."""
    if not history:
        raise ValueError("the training history is empty")
    groups, epochs = _curve_groups(history)
    if not groups:
        keys = sorted({k for r in history for k in r} - {"epoch"})
        raise ValueError(f"no loss or accuracy columns in the history (columns: {keys})")
    fig = _figure(4.5 * len(groups) + 0.5, 3.6)
    axes = fig.subplots(1, len(groups), squeeze=False)[0]
    _draw_curves(axes, groups, history, epochs)
    if title:
        fig.suptitle(title)
    return _save(fig, path, dpi)


def _curve_groups(history: Sequence[Mapping[str, Any]]
                  ) -> tuple[list[tuple[list[str], str]], list[float]]:
    """(column groups [(keys, "loss"|"accuracy")], epochs) of a trainer's history."""
    epochs = [float(r.get("epoch", i + 1)) for i, r in enumerate(history)]
    keys = sorted({k for r in history for k, v in r.items()
                   if isinstance(v, int | float) and not isinstance(v, bool)} - {"epoch"})
    groups = [(g, label) for g, label in (([k for k in keys if "loss" in k], "loss"),
                                          ([k for k in keys if "acc" in k], "accuracy")) if g]
    return groups, epochs


def _draw_curves(axes: Sequence[Any], groups: Sequence[tuple[list[str], str]],
                 history: Sequence[Mapping[str, Any]], epochs: Sequence[float]) -> None:
    from matplotlib.ticker import MaxNLocator

    for ax, (cols, label) in zip(axes, groups):
        for k in cols:
            ys = [float(r[k]) if isinstance(r.get(k), int | float) else np.nan for r in history]
            ax.plot(epochs, ys, marker="o" if len(epochs) <= 30 else None, ms=3, label=k)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        if label == "accuracy":
            ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)


def _draw_confusion(ax: Any, conf: np.ndarray, labels: Sequence[str], title: str) -> None:
    rows, cols = conf.shape
    names = [str(x) for x in labels]
    row_names = names[:rows] + [str(i) for i in range(len(names), rows)]
    col_names = names[:cols] + [str(i) for i in range(len(names), cols)]
    totals = conf.sum(axis=1, keepdims=True)
    frac = np.divide(conf, totals, out=np.zeros(conf.shape), where=totals > 0)
    ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    if rows * cols <= 400:
        for i in range(rows):
            for j in range(cols):
                ax.text(j, i, str(int(conf[i, j])), ha="center", va="center", fontsize=8,
                        color="white" if frac[i, j] > 0.6 else "black")
    ax.set_xticks(range(cols), col_names, rotation=45 if cols > 4 else 0, ha="right"
                  if cols > 4 else "center", fontsize=8)
    ax.set_yticks(range(rows), row_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    acc = float(np.trace(conf[:, :rows]) / conf.sum()) if conf.sum() and cols >= rows else None
    ax.set_title(title + (f" (accuracy {100 * acc:.1f} %)" if acc is not None else ""),
                 fontsize=10)


def confusion_png(
    path: PathLike,
    confusion: Sequence[Sequence[float]] | np.ndarray,
    labels: Sequence[str],
    *,
    title: str = "confusion",
    dpi: int = 100,
) -> Path:
    """A confusion matrix (rows: true class, columns: predicted; extra columns such as an
    "(undecided)" one are kept), cells coloured by row fraction and labelled with counts."""
    return confusions_png(path, {title: (confusion, labels)}, dpi=dpi)


def confusions_png(
    path: PathLike,
    panels: Mapping[str, tuple[Sequence[Sequence[float]] | np.ndarray, Sequence[str]]],
    *,
    title: str = "",
    dpi: int = 100,
) -> Path:
    """Several confusion matrices side by side (panel title -> (matrix, labels))."""
    if not panels:
        raise ValueError("no confusion matrix to plot")
    mats = []
    for name, (conf, labels) in panels.items():
        m = np.asarray(conf, dtype=float)
        if m.ndim != 2 or m.size == 0:
            raise ValueError(f"{name}: confusion must be a non-empty 2-D matrix, got shape "
                             f"{m.shape}")
        mats.append((name, m, labels))
    side = max(3.2, 0.45 * max(max(m.shape) for _, m, _ in mats) + 1.6)
    fig = _figure(side * len(mats), side)
    axes = fig.subplots(1, len(mats), squeeze=False)[0]
    for ax, (name, m, labels) in zip(axes, mats):
        _draw_confusion(ax, m, labels, name)
    if title:
        fig.suptitle(title)
    return _save(fig, path, dpi)


def report_png(
    path: PathLike,
    panels: Mapping[str, tuple[Sequence[Sequence[float]] | np.ndarray, Sequence[str]]],
    history: Sequence[Mapping[str, Any]] | None = None,
    *,
    title: str = "",
    dpi: int = 100,
) -> Path:
    """One PNG of a training run: the learning curve (loss and accuracy per epoch, when a
    history is given) beside its confusion matrices (panel title -> (matrix, labels))."""
    if not panels:
        raise ValueError("no confusion matrix to plot")
    groups, epochs = _curve_groups(history) if history else ([], [])
    mats = [(name, np.asarray(conf, dtype=float), labels)
            for name, (conf, labels) in panels.items()]
    for name, m, _ in mats:
        if m.ndim != 2 or m.size == 0:
            raise ValueError(f"{name}: confusion must be a non-empty 2-D matrix, got shape "
                             f"{m.shape}")
    side = max(3.2, 0.45 * max(max(m.shape) for _, m, _ in mats) + 1.6)
    fig = _figure(4.5 * len(groups) + side * len(mats), side)
    axes = fig.subplots(1, len(groups) + len(mats), squeeze=False)[0]
    _draw_curves(axes[: len(groups)], groups, history or [], epochs)
    for ax, (name, m, labels) in zip(axes[len(groups) :], mats):
        _draw_confusion(ax, m, labels, name)
    if title:
        fig.suptitle(title)
    return _save(fig, path, dpi)


def find_key(obj: Any, key: str, where: str = "") -> list[tuple[str, Any]]:
    """Every (path, mapping) in a JSON document whose mapping has `key`, e.g. the "snn" and
    "baseline" entries of an example's report that hold a "confusion"."""
    out: list[tuple[str, Any]] = []
    if isinstance(obj, Mapping):
        if key in obj:
            out.append((where or "(top)", obj))
        for k, v in obj.items():
            out.extend(find_key(v, key, f"{where}.{k}" if where else str(k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            if isinstance(v, Mapping | list):
                out.extend(find_key(v, key, f"{where}[{i}]"))
    return out
