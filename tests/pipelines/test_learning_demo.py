"""pipelines/learning_demo.toml forms distinct clusters: the real pipeline, run in-process.

10 s of the synthetic DVS scene (seed 3) replayed as fast as possible through the shipped
pipeline (driver, dvs_pool encoder, STDP winner-take-all network, spike_count readout, a file
sink added beside the ZeroMQ one). Several neurons must win detections and their learned
weight vectors must differ (they all start from 0.3 x (1 +- jitter) and would stay identical
without the jitter).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import numpy as np
from conftest import free_port

from edgesnn.commands.run import load_with_overrides
from edgesnn.runtime.runner import Runtime

REPO = Path(__file__).resolve().parents[2]


def run_demo(tmp_path: Path, seconds: float, *extra: str) -> tuple[list[dict], np.ndarray]:
    out = tmp_path / "clusters.jsonl"
    cfg = load_with_overrides(str(REPO / "pipelines" / "learning_demo.toml"), [
        f"drivers.camera.duration_s={seconds}", 'drivers.camera.speed="max"',
        f'sinks.zmq.endpoint="tcp://127.0.0.1:{free_port()}"',
        'sinks.file.type="file"', 'sinks.file.inputs=["cluster"]',
        f"sinks.file.path={json.dumps(str(out))}", *extra])
    rt = Runtime(cfg)
    assert asyncio.run(rt.run(install_signals=False)) == 0
    dets = [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []
    return dets, rt.components["learner"].net.weights(0)


def cosines(w: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarity of the columns (one weight vector per neuron)."""
    n = w / np.linalg.norm(w, axis=0, keepdims=True)
    c = n.T @ n
    return c[np.triu_indices(w.shape[1], 1)]


def test_learning_demo_forms_distinct_clusters(tmp_path: Path) -> None:
    dets, w = run_demo(tmp_path, 10.0)
    wins = Counter(d["label"] for d in dets)
    assert len(wins) >= 4, wins  # measured: all 8, 15..24 detections each
    assert all(d["extra"]["counts"][int(d["label"][1:])] == max(d["extra"]["counts"])
               for d in dets)
    winners = sorted(int(lab[1:]) for lab in wins)
    assert w.shape == (128, 8)
    assert cosines(w[:, winners]).max() < 0.99  # measured: 0.945
    assert np.allclose(w.sum(axis=0)[winners], 38.4, rtol=0.02)  # norm_total holds


def test_without_jitter_the_neurons_stay_identical(tmp_path: Path) -> None:
    """The failure the jitter fixes: identical start, lockstep spikes, ties, no detection."""
    path = tmp_path / "nojitter.toml"
    text = (REPO / "pipelines" / "learning_demo.toml").read_text()
    assert text.count("weight_jitter = 0.2") == 1
    path.write_text(text.replace("weight_jitter = 0.2", "weight_jitter = 0.0"))
    out = tmp_path / "c.jsonl"
    cfg = load_with_overrides(str(path), [
        "drivers.camera.duration_s=3", 'drivers.camera.speed="max"',
        f'sinks.zmq.endpoint="tcp://127.0.0.1:{free_port()}"',
        'sinks.file.type="file"', 'sinks.file.inputs=["cluster"]',
        f"sinks.file.path={json.dumps(str(out))}"])
    rt = Runtime(cfg)
    assert asyncio.run(rt.run(install_signals=False)) == 0
    w = rt.components["learner"].net.weights(0)
    assert np.ptp(w, axis=1).max() == 0.0  # every neuron's weights equal
    assert not out.exists() or out.read_text() == ""  # every window a tie: no detection
