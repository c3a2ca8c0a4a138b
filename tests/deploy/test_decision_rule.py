"""Deploy decides like the runtime: a tie or silence is no decision, tail steps as in training.

The model below makes every case happen on purpose: a clear winner, two outputs with the same
spike count (a tie), no output spike at all, and a sample whose input arrives in its last steps
so that its output spikes come only in the silent tail steps after it. The float accuracy that
`edgesnn deploy` reports must equal what the runtime's `spike_count` readout (its defaults:
min_spikes 1, margin 1) decides on the same output spikes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from edgesnn.components import BuildContext, lookup
from edgesnn.core import Network, NetworkSpec
from edgesnn.deploy import deploy
from edgesnn.deploy.report import DeployRecording, with_tail
from edgesnn.evaluation import decide
from edgesnn.events import SpikeRaster

REPO = Path(__file__).resolve().parents[2]
LABELS = ["a", "b", "c"]


def tie_model() -> Network:
    """in0 -> out0, in1 -> out1, in2 -> out0 and out1 alike (a tie), in3 -> nothing."""
    spec = NetworkSpec(dt_us=1000)
    spec.add_layer("in", 4, "input")
    spec.add_layer("out", 3, "lif", tau_mem_ms=20.0, v_th=1.0, t_ref_ms=0.0)
    w = np.zeros((4, 3))
    w[0, 0] = w[1, 1] = w[2, 0] = w[2, 1] = 0.6
    spec.connect("in", "out", weight=w)
    return Network(spec)


def tie_recording() -> DeployRecording:
    """Samples of 20 steps: (input channel, first step, label) -> a, b, two ties (label a),
    silent (label c), and b's input only in the last 2 steps (decided in the tail)."""
    plan = [(0, 0, 0), (1, 0, 1), (2, 0, 0), (2, 0, 0), (3, 0, 2), (1, 18, 1)]
    steps = 20
    rows: list[list[int]] = []
    for ch, first, _ in plan:
        rows += [[ch] if k >= first and k % 2 == 0 else [] for k in range(steps)]
        rows[-2:] = [[ch], [ch]] if first == 18 else rows[-2:]
    ptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    idx = np.asarray([c for r in rows for c in r], np.int32)
    sp = np.arange(0, steps * len(plan) + 1, steps, dtype=np.int64)
    return DeployRecording(ptr, idx, sp, np.asarray([lab for *_, lab in plan], np.int64))


def runtime_decisions(net: Network, rec: DeployRecording) -> np.ndarray:
    """Each sample through the core (reset first) and the runtime's spike_count readout."""
    cls = lookup("readout", "spike_count")
    problems: list = []
    params = cls.schema.validate({"labels": LABELS, "window_ms": 1000.0}, "readouts.r", problems)
    assert problems == []
    out = []
    for s in range(rec.n_samples):
        a, b = int(rec.sample_ptr[s]), int(rec.sample_ptr[s + 1])
        ptr = rec.in_ptr[a : b + 1] - rec.in_ptr[a]
        idx = rec.in_idx[rec.in_ptr[a] : rec.in_ptr[b]]
        net.reset()
        res = net.run(ptr, idx)
        ro = cls("r", params, BuildContext())
        raster = SpikeRaster("out", s, 0, net.dt_us, 3, res.ptr, res.idx)
        dets = ro.update(raster) + ro.flush()
        assert len(dets) <= 1
        out.append(LABELS.index(dets[0].label) if dets else -1)
    return np.asarray(out)


def test_deploy_accuracy_equals_the_runtime_rule_on_ties(tmp_path: Path) -> None:
    net = tie_model()
    rec = tie_recording()
    tailed = with_tail(rec, 3)
    assert tailed.n_steps == rec.n_steps + 3 * rec.n_samples and tailed.tail_steps == 3
    runtime = runtime_decisions(net, tailed)
    assert runtime.tolist() == [0, 1, -1, -1, -1, 1]  # clear, clear, 2 ties, silent, in tail
    rep = deploy(net, "loihi2", tmp_path / "d", rec, tail_steps=3, progress=False)
    ro = rep["check"]["readout"]
    assert ro["float_classes"] == runtime.tolist()
    assert ro["float_accuracy"] == float(np.mean(runtime == rec.labels)) == 0.5
    assert ro["float_undecided"] == 3 and rep["check"]["tail_steps"] == 3
    # the old rule (argmax: ties to the lowest class; no tail) said 4/6: both ties counted as
    # right, the sample decided in the tail as wrong
    old = []
    net2 = tie_model()
    for s in range(rec.n_samples):
        a, b = int(rec.sample_ptr[s]), int(rec.sample_ptr[s + 1])
        net2.reset()
        r = net2.run(rec.in_ptr[a : b + 1] - rec.in_ptr[a],
                     rec.in_idx[rec.in_ptr[a] : rec.in_ptr[b]])
        c = np.bincount(r.idx, minlength=3)
        old.append(int(np.argmax(c)) if c.sum() else -1)
    assert old == [0, 1, 0, 0, -1, -1]
    assert np.mean(np.asarray(old) == rec.labels) == 4 / 6
    # without the tail the last sample is silent: undecided, as the runtime would say
    rep0 = deploy(net, "loihi2", tmp_path / "d0", rec, tail_steps=0, progress=False)
    assert rep0["check"]["readout"]["float_classes"] == [0, 1, -1, -1, -1, -1]
    assert rep0["check"]["readout"]["float_accuracy"] == 2 / 6


def test_tail_steps_come_from_the_model_recipe_else_the_flag(tmp_path: Path) -> None:
    net = tie_model()
    net.manifest["recipe"] = {"tail_steps": 3}
    net.save(tmp_path / "m.npz")
    rec = tie_recording()
    np.savez(tmp_path / "rec.npz", in_ptr=rec.in_ptr, in_idx=rec.in_idx,
             sample_ptr=rec.sample_ptr, labels=rec.labels)

    def cli(*extra: str) -> dict:
        out = tmp_path / f"out{len(extra)}"
        r = subprocess.run([sys.executable, "-m", "edgesnn", "deploy", str(tmp_path / "m.npz"),
                            "--profile", "loihi2", "--check-on", str(tmp_path / "rec.npz"),
                            "--out", str(out), "--no-progress", *extra],
                           capture_output=True, text=True, timeout=120, cwd=REPO)
        assert r.returncode == 0, r.stderr
        assert "undecided (tie or silence) float" in r.stdout
        return json.loads((out / "report.json").read_text())["check"]

    c = cli()
    assert c["tail_steps"] == 3 and c["readout"]["float_classes"] == [0, 1, -1, -1, -1, 1]
    c = cli("--tail-steps", "0")
    assert c["tail_steps"] == 0 and c["readout"]["float_classes"] == [0, 1, -1, -1, -1, -1]
    r = subprocess.run([sys.executable, "-m", "edgesnn", "deploy", str(tmp_path / "m.npz"),
                        "--profile", "loihi2", "--check-on", str(tmp_path / "rec.npz"),
                        "--out", str(tmp_path / "bad"), "--tail-steps", "-1"],
                       capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 2 and "--tail-steps must not be negative" in r.stderr


def test_decide_is_the_rule() -> None:
    assert decide(np.array([[3, 1, 0], [2, 2, 0], [0, 0, 0], [0, 0, 1]])).tolist() == [0, -1, -1, 2]
