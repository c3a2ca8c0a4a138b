"""Labelled spike datasets: the `.npz` file format of `edgesnn train` and its checks.

A dataset file is an ``.npz`` (read with ``allow_pickle=False``) holding:

============== ============ ===============================================================
array          dtype        meaning
============== ============ ===============================================================
in_ptr         int64 (S+1)  CSR over all S steps: the input spikes of step k are
                            ``in_idx[in_ptr[k]:in_ptr[k+1]]``; in_ptr[0] = 0,
                            in_ptr[-1] = len(in_idx), non-decreasing
in_idx         int32 / int  channel indices in 0..n_inputs-1, unique within a step
sample_ptr     int64 (N+1)  step boundaries of the N samples: sample i is steps
                            ``sample_ptr[i]:sample_ptr[i+1]`` (at least one step each)
labels         int64 (N)    class of each sample, 0..n_classes-1
n_inputs       int (0-d)    input channels (optional: max index + 1)
dt_us          int (0-d)    step of the raster in µs (optional: 1000)
label_names    str (C)      names of the classes (optional: "0", "1", ...)
format         str (0-d)    "edgesnn-spikes" (optional)
============== ============ ===============================================================

This is the recording format of ``edgesnn deploy --check-on`` (in_ptr, in_idx, sample_ptr,
labels), so a training set is also a check set. Every sample starts from the network's
reset state. `SpikeDataset.load` refuses a file that breaks any rule above with a
`FormatError` naming the array and the element.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgesnn.errors import FormatError

DATASET_FORMAT = "edgesnn-spikes"


@dataclass
class SpikeDataset:
    """Labelled samples of input spikes (CSR over steps), all at one `dt_us`."""

    in_ptr: np.ndarray
    in_idx: np.ndarray
    sample_ptr: np.ndarray
    labels: np.ndarray
    n_inputs: int
    dt_us: int = 1000
    label_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.label_names:
            n = int(self.labels.max()) + 1 if self.labels.size else 0
            self.label_names = [str(i) for i in range(n)]

    # --- shape --------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_classes(self) -> int:
        return len(self.label_names)

    def n_steps(self, i: int) -> int:
        """Steps of sample i."""
        return int(self.sample_ptr[i + 1] - self.sample_ptr[i])

    def steps(self) -> np.ndarray:
        """Steps of every sample."""
        return np.diff(self.sample_ptr)

    def sample(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(ptr, idx) of sample i as its own CSR (ptr starts at 0)."""
        a, b = int(self.sample_ptr[i]), int(self.sample_ptr[i + 1])
        ptr = self.in_ptr[a : b + 1]
        return ptr - ptr[0], self.in_idx[ptr[0] : ptr[-1]]

    def subset(self, indices: np.ndarray | list[int]) -> SpikeDataset:
        """A dataset of the given samples, in that order."""
        return SpikeDataset.from_samples(
            [self.sample(int(i)) for i in indices],
            self.labels[np.asarray(indices, dtype=np.int64)],
            self.n_inputs,
            self.dt_us,
            self.label_names,
        )

    def split(self, fraction: float, seed: int = 0) -> tuple[SpikeDataset, SpikeDataset]:
        """(rest, held out): a stratified random `fraction` of each class is held out."""
        rng = np.random.default_rng(seed)
        held: list[int] = []
        for c in np.unique(self.labels):
            members = np.flatnonzero(self.labels == c)
            rng.shuffle(members)
            held += members[: int(round(fraction * members.size))].tolist()
        mask = np.zeros(len(self), bool)
        mask[held] = True
        return self.subset(np.flatnonzero(~mask)), self.subset(np.flatnonzero(mask))

    # --- building -----------------------------------------------------------------------

    @classmethod
    def from_samples(
        cls,
        samples: list[tuple[np.ndarray, np.ndarray]],
        labels: np.ndarray | list[int],
        n_inputs: int,
        dt_us: int = 1000,
        label_names: list[str] | None = None,
    ) -> SpikeDataset:
        """Concatenate per-sample CSR rasters (ptr from 0, idx) into one dataset."""
        ptrs: list[np.ndarray] = [np.zeros(1, np.int64)]
        idxs: list[np.ndarray] = []
        sample_ptr = np.zeros(len(samples) + 1, np.int64)
        base = 0
        for i, (ptr, idx) in enumerate(samples):
            ptr = np.asarray(ptr, np.int64)
            ptrs.append(ptr[1:] - ptr[0] + base)
            idxs.append(np.asarray(idx[ptr[0] : ptr[-1]], np.int32))
            base += int(ptr[-1] - ptr[0])
            sample_ptr[i + 1] = sample_ptr[i] + ptr.shape[0] - 1
        return cls(
            np.concatenate(ptrs),
            np.concatenate(idxs) if idxs else np.zeros(0, np.int32),
            sample_ptr,
            np.asarray(labels, np.int64),
            int(n_inputs),
            int(dt_us),
            list(label_names or []),
        )

    # --- files --------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the `.npz` described in the module docstring (atomically)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        with open(tmp, "wb") as f:
            np.savez_compressed(
                f,
                format=np.array(DATASET_FORMAT),
                in_ptr=self.in_ptr.astype(np.int64),
                in_idx=self.in_idx.astype(np.int32),
                sample_ptr=self.sample_ptr.astype(np.int64),
                labels=self.labels.astype(np.int64),
                n_inputs=np.array(self.n_inputs, np.int64),
                dt_us=np.array(self.dt_us, np.int64),
                label_names=np.array(self.label_names, dtype=str),
            )
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SpikeDataset:
        """Read and check a dataset file; FormatError naming what is wrong."""
        p = str(path)
        try:
            with np.load(p, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except FileNotFoundError:
            raise FormatError("no such file", path=p) from None
        except (OSError, ValueError) as e:
            raise FormatError(f"not an .npz dataset ({e})", path=p) from None
        return cls.from_arrays(data, p)

    @classmethod
    def from_arrays(cls, data: dict[str, np.ndarray], path: str = "") -> SpikeDataset:
        """Build from the arrays of a dataset file, checking every rule."""
        p = path or None

        def bad(msg: str) -> FormatError:
            return FormatError(msg, path=p)

        fmt = data.get("format")
        if fmt is not None and str(fmt) != DATASET_FORMAT:
            raise bad(f"format {str(fmt)!r} is not {DATASET_FORMAT!r}")
        missing = [k for k in ("in_ptr", "in_idx", "sample_ptr", "labels") if k not in data]
        if missing:
            raise bad(
                f"lacks {', '.join(missing)} (a dataset holds in_ptr, in_idx, sample_ptr, "
                "labels; see `edgesnn train --help`)"
            )
        arr: dict[str, np.ndarray] = {}
        for k in ("in_ptr", "in_idx", "sample_ptr", "labels"):
            a = data[k]
            if a.ndim != 1:
                raise bad(f"{k} must be one-dimensional, has shape {a.shape}")
            if a.dtype.kind not in "iu":
                raise bad(f"{k} must hold integers, has dtype {a.dtype}")
            arr[k] = a.astype(np.int64)
        in_ptr, in_idx, sample_ptr, labels = (
            arr["in_ptr"], arr["in_idx"], arr["sample_ptr"], arr["labels"]
        )
        if in_ptr.size < 1 or in_ptr[0] != 0:
            raise bad("in_ptr must start with 0")
        if in_ptr[-1] != in_idx.size:
            raise bad(f"in_ptr ends at {in_ptr[-1]} but in_idx has {in_idx.size} entries")
        dec = np.flatnonzero(np.diff(in_ptr) < 0)
        if dec.size:
            raise bad(f"in_ptr decreases at element {int(dec[0]) + 1}")
        n_steps = in_ptr.size - 1
        if sample_ptr.size < 2 or sample_ptr[0] != 0 or sample_ptr[-1] != n_steps:
            raise bad(
                f"sample_ptr must run from 0 to the number of steps ({n_steps}), "
                f"got {sample_ptr[:1].tolist()}..{sample_ptr[-1:].tolist()}"
            )
        empty = np.flatnonzero(np.diff(sample_ptr) <= 0)
        if empty.size:
            raise bad(f"sample {int(empty[0])} has no steps (sample_ptr must increase)")
        n = sample_ptr.size - 1
        if labels.size != n:
            raise bad(f"labels has {labels.size} entries for {n} samples")
        if labels.min() < 0:
            raise bad(f"labels[{int(np.argmin(labels))}] is negative")
        n_inputs = int(data["n_inputs"]) if "n_inputs" in data else int(in_idx.max(initial=-1)) + 1
        if n_inputs <= 0:
            raise bad("n_inputs must be positive (and the dataset must hold spikes)")
        if in_idx.size:
            out = np.flatnonzero((in_idx < 0) | (in_idx >= n_inputs))
            if out.size:
                q = int(out[0])
                raise bad(f"in_idx[{q}] = {int(in_idx[q])} is not a channel 0..{n_inputs - 1}")
        # unique within a step (the core's spike lists are sets); sorted in place of order
        steps = np.repeat(np.arange(n_steps), np.diff(in_ptr))
        order = np.lexsort((in_idx, steps))
        in_idx = in_idx[order]
        dup = np.flatnonzero((np.diff(in_idx) == 0) & (np.diff(steps) == 0))
        if dup.size:
            k = int(steps[dup[0]])
            s = int(np.searchsorted(sample_ptr, k, side="right") - 1)
            raise bad(
                f"channel {int(in_idx[dup[0]])} spikes twice in step {k} (sample {s}); "
                "a step's spikes must be unique"
            )
        dt_us = int(data["dt_us"]) if "dt_us" in data else 1000
        if dt_us <= 0:
            raise bad("dt_us must be positive")
        names = [str(x) for x in data["label_names"]] if "label_names" in data else []
        if names and int(labels.max()) >= len(names):
            raise bad(f"label {int(labels.max())} has no name ({len(names)} label_names)")
        return cls(in_ptr, in_idx.astype(np.int32), sample_ptr, labels, n_inputs, dt_us, names)
