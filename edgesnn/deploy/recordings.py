"""Labelled recordings as a deploy check: float vs emulated accuracy by the one decision rule.

`labelled_recording(net, ["fsdd/", ...])` encodes every recording (WAV files with the encoder
stored in the model file's training recipe, or any file through a pipeline's file driver and
encoder) at the model's dt, one sample per recording (both models are reset before each), with
the label each file name gives (FSDD ``<digit>_<speaker>_<index>.wav``, CWRU codes). Output
neurons are grouped by label as the model was trained (the recipe's labels, consecutive groups
of ``n_outputs / len(labels)`` neurons), or as the pipeline's readout says (``neurons_per_label``
or ``assignments``). `edgesnn deploy --recordings` runs the float model and the chip emulation
on the result and decides every recording by `edgesnn.evaluation.decide` over the spike counts
of each label, after the model's tail steps: a tie or silence is no decision (counted wrong).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from edgesnn.core import Network
from edgesnn.deploy.report import DeployRecording
from edgesnn.deploy.source import PipelineSource, SourceError
from edgesnn.errors import ConfigError, FormatError, Problem


def output_groups(manifest: dict[str, Any], n_outputs: int, cfg: Any = None,
                  readout: str | None = None) -> tuple[list[str], np.ndarray, str]:
    """(labels, label index of every output neuron (-1: none), where they came from): the
    labels of the model's recipe (``neurons_per_label`` consecutive neurons each, from the
    recipe or n_outputs / len(labels)), else the readout of the pipeline `cfg` whose labels fit
    the outputs. ValueError when neither names the outputs."""
    from edgesnn.evaluation import readout_labels, recipe_groups

    found = recipe_groups(manifest, n_outputs) if readout is None else None
    if found is not None:
        return found[0], found[1], "model recipe"
    if cfg is not None:
        names, owner, where = readout_labels(cfg, n_outputs, readout, {})
        return names, np.asarray(owner, np.int64), where
    raise ValueError(f"the model's {n_outputs} outputs have no labels: its recipe names none "
                     "that fit (train it with `edgesnn train`), and no --pipeline readout was "
                     "given")


def label_of(path: Any, labels: Sequence[str]) -> int:
    """Index in `labels` of the class the file name gives (ValueError when none or unknown)."""
    from edgesnn.evaluation import label_index

    return label_index(path, labels)


def labelled_recording(net: Network, recordings: Sequence[str], *, pipeline: str | None = None,
                       driver: str | None = None, encoder: str | None = None,
                       overrides: Sequence[str] = (), readout: str | None = None,
                       log: Callable[[str], None] | None = None) -> DeployRecording:
    """One sample per recording (reset before each), encoded at the model's dt, with labels and
    output groups (see the module docstring). SourceError (a ConfigError) naming the place when
    a recording, the pipeline or the model's labels cannot make a check."""
    import time

    from edgesnn.evaluation import SplitError, expand_recordings

    recipe = net.manifest.get("recipe") if isinstance(net.manifest.get("recipe"), dict) else {}
    enc_cfg = recipe.get("encoder") if recipe else None
    cfg = None
    if pipeline is not None:
        from edgesnn.config.overrides import load_with_overrides

        try:
            cfg = load_with_overrides(pipeline, list(overrides))
        except ConfigError as e:
            raise SourceError(e.problems) from None
    elif not enc_cfg:
        raise SourceError([Problem("--recordings", "the model file's recipe names no encoder; "
                                   "give --pipeline P to encode the recordings with P's driver "
                                   "and encoder")])
    try:
        recs = expand_recordings(recordings, () if pipeline else (".wav", ".WAV"))
        labels, owner, where = output_groups(net.manifest, net.n_outputs, cfg, readout)
        y = [label_of(r.path, labels) for r in recs]
    except (SplitError, ValueError) as e:
        raise SourceError([Problem("--recordings", str(e))]) from None
    ptrs, idxs, sp, base, steps = [np.zeros(1, np.int64)], [], [0], 0, 0
    t0 = t_note = time.perf_counter()
    for k, r in enumerate(recs):
        try:
            if pipeline is not None:
                src = PipelineSource(pipeline, str(r.path), driver=driver, encoder=encoder,
                                     overrides=list(overrides))  # fmt: skip
                s = src.read(net.n_inputs, net.dt_us, progress=False)
                ptr, idx = s.in_ptr, s.in_idx
            else:
                from edgesnn.train.recipe import encode_wav

                ptr, idx, n_ch = encode_wav(r.path, enc_cfg, net.dt_us)
                if n_ch != net.n_inputs:
                    raise SourceError([Problem("recipe.encoder", f"gives {n_ch} channels, the "
                                               f"model has {net.n_inputs} inputs")])
        except (FormatError, OSError, ValueError) as e:
            raise SourceError([Problem(str(r.path), str(e))]) from None
        part = r.part(ptr.size - 1)
        ptr = ptr[part.start : part.stop + 1]
        if ptr.size < 2:
            raise SourceError([Problem(str(r), "no input steps in this part of the recording")])
        idxs.append(np.asarray(idx[ptr[0] : ptr[-1]], np.int32))
        ptrs.append(ptr[1:] - ptr[0] + base)
        base += int(ptr[-1] - ptr[0])
        steps += ptr.size - 1
        sp.append(steps)
        if log is not None and time.perf_counter() - t_note > 5:
            t_note = time.perf_counter()
            log(f"encoded {k + 1}/{len(recs)} recordings ({t_note - t0:.1f} s)")
    source = {
        "kind": "recordings", "recordings": len(recs),
        "encoder": f"pipeline {cfg.path}" if cfg is not None else "model recipe",
        "labels": labels, "labels_from": where,
        "neurons_per_label": int(np.bincount(owner[owner >= 0]).max()) if owner.size else 0,
        "input_spikes": int(base), "files": [str(r) for r in recs],
    }  # fmt: skip
    return DeployRecording(np.concatenate(ptrs), np.concatenate(idxs) if idxs else
                           np.zeros(0, np.int32), np.asarray(sp, np.int64),
                           np.asarray(y, np.int64), True, source, 0, labels,
                           owner)  # fmt: skip
