"""The training recipe: encoder and training settings as one record, stored in the model file.

A recipe says how a model was made, so that it can be made again and deployed with the same
spikes: the encoder (its `type` and parameters, at `dt_us`), every `TrainConfig` setting, the
decision rule (output spike counts, ties and silence give no decision, `tail_steps` silent
steps after each sample), the class labels and, when training respected a chip, the firmware
profile. `save_model` writes it into the model file's manifest (key ``"recipe"``); model files
without one still load, `read_recipe` then returns None.

`KWS_RECIPE` is the spoken-digit recipe chosen on held-out FSDD recordings (see
examples/keyword_spotting.py); `edgesnn train` uses its settings as defaults. `apply_profile`
makes a recipe respect a chip profile (time step, neuron models, synapse time constants,
refractory period), so that the trained model passes `edgesnn deploy`'s checks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.train.data import SpikeDataset
from edgesnn.train.trainer import TrainConfig

RECIPE_VERSION = 1

#: the spoken-digit recipe (8 kHz speech; chosen on held-out FSDD recordings, never the test set)
KWS_DT_US = 5_000
KWS_ENCODER: dict[str, Any] = {
    "type": "logmel",
    "bands": 20,
    "frame_ms": 25.0,
    "levels": 8,
    "range_db": 40.0,
    "code": "thermometer",
    "release_db_per_s": 20.0,
    "floor_db": -75.0,
    "reset_after_ms": 250.0,
}
KWS_TRAIN: dict[str, Any] = {
    "hidden": [512],
    "neuron": "cuba_lif",
    "tau_mem_ms": 20.0,
    "tau_syn_ms": 20.0,
    "epochs": 60,
    "batch_size": 32,
    "lr": 5e-3,
    "logit_scale": 0.1,
    "train_bias": True,
    "tail_steps": 20,
    "balanced": True,
    "stretch": 0.15,
    "input_dropout": 0.1,
    "keep_last": True,
}


def kws_config(**overrides: Any) -> TrainConfig:
    """The spoken-digit recipe's TrainConfig, with `overrides` applied."""
    return TrainConfig(**{**KWS_TRAIN, **overrides})


def make_recipe(cfg: TrainConfig, *, dt_us: int, labels: Sequence[str],
                encoder: dict[str, Any] | None = None, profile: str | None = None,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The recipe record of a training run (JSON-safe)."""
    out: dict[str, Any] = {
        "version": RECIPE_VERSION,
        "dt_us": int(dt_us),
        "encoder": dict(encoder) if encoder else None,
        "train": asdict(cfg),
        "decision": {"rule": "spike_count", "ties": "no decision",
                     "tail_steps": int(cfg.tail_steps)},
        "labels": [str(x) for x in labels],
        "tail_steps": int(cfg.tail_steps),
        "profile": profile,
    }
    if extra:
        out.update(extra)
    return json.loads(json.dumps(out))


def save_model(model: Any, path: str | Path, recipe: dict[str, Any] | None) -> None:
    """Write `model` (a FeedforwardSNN) as a model file whose manifest carries `recipe`."""
    net = model.to_network()
    if recipe is not None:
        net.manifest["recipe"] = recipe
    net.save(path)


def read_recipe(path: str | Path) -> dict[str, Any] | None:
    """The recipe stored in a model file, or None for files written without one."""
    from edgesnn.core import Network

    return Network.load(path).manifest.get("recipe")


def config_from_recipe(recipe: dict[str, Any]) -> TrainConfig:
    """The TrainConfig of a stored recipe (unknown keys from newer versions are ignored)."""
    known = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in recipe["train"].items() if k in known})


# --- chip profiles ----------------------------------------------------------------------------


def apply_profile(cfg: TrainConfig, dt_us: int, profile: Any) -> tuple[TrainConfig, int, list[str]]:
    """(config, dt_us, notes) changed so that the trained model respects `profile` (a loaded
    `edgesnn.deploy.profile.Profile`): the time step within the chip's range, a neuron model it
    runs, one synaptic time constant for both signs of weight where the chip has one per synapse
    type (SpiNNaker: tau_syn_inh_ms = tau_syn_exc_ms), a refractory period within its counter.
    ValueError when a setting cannot be made to fit."""
    notes: list[str] = []
    cfg = TrainConfig(**asdict(cfg))
    ts = profile["timestep"]
    new_dt = int(dt_us)
    if new_dt > ts["max_us"]:
        new_dt = int(ts["max_us"])
        while new_dt >= ts["min_us"] and dt_us % new_dt:
            new_dt -= 1
        if new_dt < ts["min_us"]:
            raise ValueError(f"profile {profile.name}: no time step in {ts['min_us']}..."
                             f"{ts['max_us']} us divides {dt_us} us")
        notes.append(f"dt {dt_us} -> {new_dt} us (timestep.max_us = {ts['max_us']})")
    elif new_dt < ts["min_us"]:
        raise ValueError(f"profile {profile.name}: dt {dt_us} us is below timestep.min_us = "
                         f"{ts['min_us']}")
    models = list(profile["profile"]["neuron_models"])
    if cfg.neuron not in models:
        alt = next((m for m in ("cuba_lif", "lif") if m in models), None)
        if alt is None:
            raise ValueError(f"profile {profile.name} runs none of the trainable neuron models "
                             f"(it runs {', '.join(models)})")
        notes.append(f"neuron {cfg.neuron} -> {alt} (profile.neuron_models)")
        cfg.neuron = alt
    if cfg.neuron == "cuba_lif" and profile.family != "loihi_cuba":
        # weights of both signs: negative ones become the inhibitory synapse type on the chip
        cfg.tau_syn_inh_ms = cfg.tau_syn_ms
        notes.append(f"tau_syn_inh_ms = tau_syn_exc_ms = {cfg.tau_syn_ms} ms (one time "
                     "constant per synapse type)")
    rf = profile["refractory"]
    steps = math.ceil(cfg.t_ref_ms * 1000 / new_dt - 1e-9)
    if steps > rf["max_steps"]:
        cfg.t_ref_ms = rf["max_steps"] * new_dt / 1000
        notes.append(f"t_ref_ms -> {cfg.t_ref_ms} (refractory.max_steps)")
    return cfg, new_dt, notes


def resample(ds: SpikeDataset, dt_us: int) -> SpikeDataset:
    """The dataset at a finer step `dt_us` (a divisor of its own): each step becomes
    dt/dt_us steps, its spikes on the first of them."""
    if dt_us == ds.dt_us:
        return ds
    if dt_us > ds.dt_us or ds.dt_us % dt_us:
        raise ValueError(f"cannot resample spikes at {ds.dt_us} us to {dt_us} us (only to a "
                         "divisor of the step)")
    f = ds.dt_us // dt_us
    samples = []
    for i in range(len(ds)):
        ptr, idx = ds.sample(i)
        counts = np.zeros((ptr.size - 1) * f, np.int64)
        counts[::f] = np.diff(ptr)
        p = np.zeros(counts.size + 1, np.int64)
        np.cumsum(counts, out=p[1:])
        samples.append((p, idx))
    return SpikeDataset.from_samples(samples, ds.labels, ds.n_inputs, dt_us, ds.label_names)


# --- encoding recordings --------------------------------------------------------------------


def encode_wav(path: str | Path, encoder: dict[str, Any], dt_us: int
               ) -> tuple[np.ndarray, np.ndarray, int]:
    """(ptr, idx, n_channels) of one WAV replayed by the `wav` driver through the encoder
    `encoder` (``{"type": ..., params}``), from a fresh state, including the flushed last step."""
    from edgesnn_drivers.audio.wav import WavDriver

    from edgesnn.components import BuildContext, lookup

    p = Path(path)
    ctx = BuildContext(dt_us=int(dt_us), base_dir=str(p.parent))
    drv = WavDriver("mic", WavDriver.schema.validate({"path": p.name, "speed": "max",
                                              "batch_us": 1_000_000}, "", []),
                    ctx)
    params = {k: v for k, v in encoder.items() if k != "type"}
    cls = lookup("encoder", str(encoder["type"]))
    if cls is None:
        raise ValueError(f"unknown encoder type {encoder['type']!r}")
    problems: list[Any] = []
    enc = cls("enc", cls.schema.validate(params, "encoder", problems), ctx)
    if problems:
        raise ValueError(f"encoder settings: {'; '.join(str(x) for x in problems)}")
    ptrs, idxs, base = [np.zeros(1, np.int64)], [], 0
    for r in [enc.encode(b) for b in drv.iter_batches()] + [enc.flush()]:
        if r is None:
            continue
        q = r.ptr - r.ptr[0]
        ptrs.append(q[1:] + base)
        idxs.append(r.idx[r.ptr[0] : r.ptr[-1]].astype(np.int32))
        base += int(q[-1])
    idx = np.concatenate(idxs) if idxs else np.zeros(0, np.int32)
    return np.concatenate(ptrs), idx, int(enc.n_channels)


def encode_wavs(paths: Sequence[str | Path], labels: Sequence[int], label_names: Sequence[str],
                encoder: dict[str, Any], dt_us: int,
                log: Callable[[str], None] | None = None) -> SpikeDataset:
    """A labelled SpikeDataset of WAV files encoded by `encode_wav`."""
    import time

    samples, n_ch = [], 0
    t0 = t_note = time.perf_counter()
    for k, f in enumerate(paths):
        ptr, idx, n_ch = encode_wav(f, encoder, dt_us)
        samples.append((ptr, idx))
        if log is not None and (time.perf_counter() - t_note > 5 or k + 1 == len(paths)):
            t_note = time.perf_counter()
            log(f"  encoded {k + 1}/{len(paths)} recordings ({t_note - t0:.1f} s)")
    return SpikeDataset.from_samples(samples, list(labels), n_ch, dt_us, list(label_names))
