"""`edgesnn deploy --check-on` on sensor recordings and pipelines: the pipeline's file driver and
encoder make the input spikes, checked against a slow pure-Python encoding of the same events,
and the report's figures against the core network and the emulator run on those spikes."""

from __future__ import annotations

import json
import math
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgesnn.components import BuildContext
from edgesnn.core import Network
from edgesnn.deploy import Emulator, PipelineSource, QuantizedModel
from edgesnn.deploy.source import SourceError

from .helpers import small_net

DATA = Path(__file__).parents[2].parent / "shared" / "data"
WALK = DATA / "dvs" / "aedat2_dvs128_alex_walking_again.aedat"

DVS_PIPELINE = """
[pipeline]
name = "walk"
dt_us = 1000

[drivers.cam]
type = "dvs_file"
path = "placeholder.aedat"
sensor = [128, 128]

[encoders.pool]
type = "dvs_pool"
inputs = ["cam"]
sensor = [128, 128]
grid = [4, 4]
"""

SYNTH_PIPELINE = """
[pipeline]
name = "synth"
dt_us = 1000

[drivers.cam]
type = "synthetic_dvs"
width = 32
height = 32
seed = 5
duration_s = 0.4
speed = "realtime"

[encoders.pool]
type = "dvs_pool"
inputs = ["cam"]
grid = [4, 4]

[readouts.r]
type = "spike_count"
inputs = ["pool"]
labels = [LABELS]
window_ms = 40.0
""".replace("LABELS", ", ".join(f'"c{i}"' for i in range(32)))


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "edgesnn", "deploy", *args],
                          capture_output=True, text=True, timeout=300, **kw)


def _pool_reference(events, t0_us, dt_us, width, height, gw, gh, n_steps):
    """dvs_pool with split polarity and min_events 1, one event at a time: CSR over steps."""
    fx, fy = math.ceil(width / gw), math.ceil(height / gh)
    steps = [set() for _ in range(n_steps)]
    for t, x, y, p in zip(events["t"].tolist(), events["x"].tolist(), events["y"].tolist(),
                          events["p"].tolist()):
        k = (t - t0_us) // dt_us
        if 0 <= k < n_steps and x < width and y < height:
            steps[k].add(int(p) * gw * gh + (y // fy) * gw + x // fx)
    ptr = np.zeros(n_steps + 1, np.int64)
    ptr[1:] = np.cumsum([len(s) for s in steps])
    idx = np.asarray([c for s in steps for c in sorted(s)], np.int32)
    return ptr, idx


def _layer_counts(run_step, layer_spikes, names, sizes, ptr, idx):
    """Spike counts per neuron of every layer over a continuous run (no reset)."""
    counts = {n: np.zeros(sizes[n], np.int64) for n in names}
    for k in range(ptr.size - 1):
        run_step(idx[ptr[k]:ptr[k + 1]])
        for n in names:
            np.add.at(counts[n], np.asarray(layer_spikes(n), np.int64), 1)
    return counts


@pytest.fixture
def walk(tmp_path):
    if not WALK.is_file():
        pytest.skip(f"real DVS recording not available: {WALK} (../shared/data beside the repo)")
    (tmp_path / "walk.toml").write_text(DVS_PIPELINE)
    return tmp_path


def test_dvs_recording_spikes_match_pure_python_pooling(walk):
    from edgesnn_drivers.dvs.readers import read_events

    src = PipelineSource(str(walk / "walk.toml"), str(WALK))
    rec = src.read(32, 1000, progress=False)
    ev = read_events(WALK)
    assert len(ev) == 19182  # the count the data README gives
    t0 = rec.source["t0_us"]
    assert t0 <= int(ev["t"][0]) < t0 + 10_000  # first batch window, on the dt grid
    last = (int(ev["t"][-1]) - t0) // 1000
    assert rec.n_steps >= last + 1
    ptr, idx = _pool_reference(ev, t0, 1000, 128, 128, 4, 4, rec.n_steps)
    assert np.array_equal(rec.in_ptr, ptr) and np.array_equal(rec.in_idx, idx)
    assert rec.reset is False and rec.n_samples == 1 and rec.source["input_spikes"] == idx.size
    # max_steps cuts the recording at exactly that step
    cut = PipelineSource(str(walk / "walk.toml"), str(WALK), max_steps=1234).read(32, 1000, False)
    assert cut.n_steps == 1234 and np.array_equal(cut.in_ptr, ptr[:1235])
    assert cut.source["truncated_at_max_steps"]


def test_cli_check_on_dvs_recording_end_to_end(walk):
    d = walk
    small_net("cuba_lif", n_in=32, seed=4).save(d / "m.npz")
    r = _cli(str(d / "m.npz"), "--profile", "loihi2", "--out", str(d / "o"), "--check-on",
             str(WALK), "--pipeline", str(d / "walk.toml"), "--window-ms", "100",
             "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "dvs_file -> dvs_pool" in r.stdout and "no reset between windows" in r.stdout
    rep = json.loads((d / "o" / "report.json").read_text())
    c = rep["check"]
    src = c["source"]
    assert (src["kind"], src["driver"], src["encoder"]) == ("pipeline", "cam", "pool")
    assert src["recording"] == str(WALK) and c["reset_per_sample"] is False
    assert c["samples"] == math.ceil(c["steps"] / 100)
    # the report's spike counts are those of the core network and of the emulator run
    # continuously on the reference encoding of the recording
    from edgesnn_drivers.dvs.readers import read_events

    ptr, idx = _pool_reference(read_events(WALK), src["t0_us"], 1000, 128, 128, 4, 4,
                               c["steps"])
    assert src["input_spikes"] == idx.size > 1000
    net = Network.load(d / "m.npz")
    sizes = {"in": 32, "hid": 16, "out": 4}
    names = ["hid", "out"]
    f = _layer_counts(net.step, net.layer_spikes, names, sizes, ptr, idx)
    em = Emulator(QuantizedModel.load(d / "o" / "quantized.npz"))
    q = _layer_counts(em.step, em.layer_spikes, names, sizes, ptr, idx)
    for n in names:
        assert c["layers"][n]["float_counts"] == f[n].tolist()
        assert c["layers"][n]["quantized_counts"] == q[n].tolist()
    assert f["hid"].sum() > 0
    e = rep["energy_per_inference"]
    assert e["synops"] == pytest.approx(em.counters["synops"] / c["samples"])
    assert e["neuron_updates"] == pytest.approx(20 * c["steps"] / c["samples"])


def test_synthetic_pipeline_spikes_match_its_events(tmp_path):
    from edgesnn.components import lookup

    (tmp_path / "s.toml").write_text(SYNTH_PIPELINE)
    rec = PipelineSource(str(tmp_path / "s.toml")).read(32, 1000, progress=False)
    # the same scene, generated again by the driver class directly
    cls = lookup("driver", "synthetic_dvs")
    from edgesnn.config.pipeline import load

    params = load(str(tmp_path / "s.toml")).by_id()["cam"].params
    drv = cls("cam", params, BuildContext(dt_us=1000, base_dir=str(tmp_path)))
    ev = np.concatenate([b.events for b in drv.iter_batches()])
    assert len(ev) > 100 and int(ev["t"].max()) < 400_000
    ptr, idx = _pool_reference(ev, rec.source["t0_us"], 1000, 32, 32, 4, 4, rec.n_steps)
    assert np.array_equal(rec.in_ptr, ptr) and np.array_equal(rec.in_idx, idx)
    assert rec.source["window_ms"] == 40.0  # the readout's window
    assert np.array_equal(rec.sample_ptr, np.append(np.arange(0, rec.n_steps, 40), rec.n_steps))


def test_cli_check_on_shipped_demo_pipeline(tmp_path):
    small_net("lif", n_in=512, n_hid=8, seed=2, delays=False).save(tmp_path / "m.npz")
    r = _cli(str(tmp_path / "m.npz"), "--profile", "spinnaker1", "--out", str(tmp_path / "o"),
             "--check-on", "demo.toml", "--no-progress")
    assert r.returncode == 2 and "--max-steps" in r.stderr  # synthetic_dvs runs until stopped
    r = _cli(str(tmp_path / "m.npz"), "--profile", "spinnaker1", "--out", str(tmp_path / "o"),
             "--pipeline", "demo", "--max-steps", "300", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "synthetic_dvs -> dvs_pool" in r.stdout and "stopped at --max-steps" in r.stdout
    c = json.loads((tmp_path / "o" / "report.json").read_text())["check"]
    assert c["steps"] == 300 and c["samples"] == 6  # 50 ms windows of the demo's readout
    assert c["source"]["driver_type"] == "synthetic_dvs" and c["source"]["input_spikes"] > 0
    assert len(c["readout"]["float_classes"]) == 6 and "float_accuracy" not in c["readout"]


def test_bad_sources_are_clear_errors(tmp_path):
    (tmp_path / "s.toml").write_text(SYNTH_PIPELINE)
    small_net("cuba_lif", n_in=20).save(tmp_path / "m20.npz")
    small_net("cuba_lif", n_in=32).save(tmp_path / "m32.npz")
    m20, m32, s = str(tmp_path / "m20.npz"), str(tmp_path / "m32.npz"), str(tmp_path / "s.toml")
    out = str(tmp_path / "o")
    r = _cli(m20, "--profile", "loihi1", "--out", out, "--check-on", s)
    assert r.returncode == 2 and "encoders.pool: gives 32 channels, the model has 20" in r.stderr
    r = _cli(m32, "--profile", "loihi1", "--out", out, "--check-on", s,
             "--set", "pipeline.dt_us=500")
    assert r.returncode == 2 and "pipeline steps 500 us, the model 1000 us" in r.stderr
    r = _cli(m32, "--profile", "loihi1", "--out", out, "--check-on", s, "--driver", "mic")
    assert r.returncode == 2 and "no driver 'mic'" in r.stderr
    r = _cli(m32, "--profile", "loihi1", "--out", out, "--check-on", s, "--encoder", "x")
    assert r.returncode == 2 and "no encoder 'x'" in r.stderr
    # a recording needs a file driver; a missing or broken recording names itself
    r = _cli(m32, "--profile", "loihi1", "--out", out, "--check-on", str(tmp_path / "x.aedat"),
             "--pipeline", s)
    assert r.returncode == 2 and "0 file drivers" in r.stderr
    (tmp_path / "p.toml").write_text(DVS_PIPELINE)
    r = _cli(m32, "--profile", "loihi1", "--out", out, "--check-on", str(tmp_path / "x.aedat"),
             "--pipeline", str(tmp_path / "p.toml"))
    assert r.returncode == 2 and "x.aedat not found" in r.stderr
    bad = tmp_path / "bad.aedat"
    bad.write_bytes(b"#!AER-DAT2.0\r\n" + bytes(range(256)) * 3)
    r = _cli(m32, "--profile", "loihi1", "--out", out, "--check-on", str(bad),
             "--pipeline", str(tmp_path / "p.toml"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and "bad.aedat" in r.stderr
    # pipeline options without a pipeline
    r = _cli(m32, "--profile", "loihi1", "--out", out, "--max-steps", "5")
    assert r.returncode == 2 and "--max-steps only apply to a pipeline check" in r.stderr
    with pytest.raises(SourceError, match="choose one with --driver"):
        two = SYNTH_PIPELINE + '\n[drivers.cam2]\ntype = "synthetic_dvs"\nduration_s = 0.1\n'
        (tmp_path / "two.toml").write_text(two)
        PipelineSource(str(tmp_path / "two.toml")).read(32, 1000, False)


def test_progress_bar_on_a_terminal(tmp_path):
    """On a terminal, stderr shows a running count while the recording is encoded and a bar
    with a percentage for the float and the quantized pass."""
    (tmp_path / "s.toml").write_text(SYNTH_PIPELINE)
    small_net("cuba_lif", n_in=32).save(tmp_path / "m.npz")
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "edgesnn", "deploy", str(tmp_path / "m.npz"),
                             "--profile", "loihi2", "--out", str(tmp_path / "o"), "--check-on",
                             str(tmp_path / "s.toml")], stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=60) == 0
    err = b"".join(chunks).decode(errors="replace")
    assert "encode synth: 400 steps in" in err
    assert "[" + "#" * 30 + "] 100.0% 400/400 steps" in err
    assert "float: 400 steps in" in err and "loihi2: 400 steps in" in err


def test_daemon_runs_the_quantized_model_live(tmp_path):
    """A pipeline selects the bit-accurate emulation with type = "quantized_snn"; the daemon
    runs it on a live (synthetic) source and publishes its detections."""
    small_net("cuba_lif", n_in=32, seed=4).save(tmp_path / "m.npz")
    text = SYNTH_PIPELINE.split("[readouts.r]")[0] + """
[networks.chip]
type = "quantized_snn"
inputs = ["pool"]
model = "m.npz"
profile = "loihi2"

[readouts.r]
type = "spike_count"
inputs = ["chip"]
labels = ["a", "b", "c", "d"]
window_ms = 20.0

[sinks.f]
type = "file"
inputs = ["r"]
path = "det.jsonl"
"""
    (tmp_path / "live.toml").write_text(text.replace('speed = "realtime"', 'speed = "max"'))
    r = subprocess.run([sys.executable, "-m", "edgesnn", "run", str(tmp_path / "live.toml")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    dets = [json.loads(x) for x in (tmp_path / "det.jsonl").read_text().splitlines()]
    assert dets and {d["label"] for d in dets} <= {"a", "b", "c", "d"}
