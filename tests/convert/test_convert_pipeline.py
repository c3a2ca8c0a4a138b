"""A converted model in a real pipeline (`edgesnn run`): digit images replayed as CSV rows, the
`rate` encoder in regular mode (the conversion's constant-current coding), the `snn` network
loading the model file, the `spike_count` readout, a file sink."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from conftest import edgesnn_cmd, subprocess_env

from edgesnn.convert import convert_mlp

pytest.importorskip("sklearn")

N = 40  # images, 100 ms (100 steps) each


def _pipeline(tmp_path, model: str) -> str:
    labels = ", ".join(f'"{k}"' for k in range(10))
    return f"""
[pipeline]
name = "digits_converted"
dt_us = 1000

[drivers.rows]
type = "vibration_csv"
path = "{tmp_path / 'digits.csv'}"
sample_rate_hz = 10
speed = "max"

[encoders.pixels]
type = "rate"
inputs = ["rows"]
channels = [{", ".join(str(i) for i in range(64))}]
range = [0.0, 1.0]
max_rate_hz = 1000.0
mode = "regular"

[networks.mlp]
type = "snn"
inputs = ["pixels"]
model = "{model}"

[readouts.digit]
type = "spike_count"
inputs = ["mlp"]
labels = [{labels}]
window_ms = 100.0

[sinks.out]
type = "file"
inputs = ["digit"]
path = "{tmp_path / 'detections.jsonl'}"
"""


def test_leaky_model_classifies_a_stream_in_a_pipeline(digits, tmp_path) -> None:
    ann, x_tr, _, x_te, y_te = digits
    conv = convert_mlp(ann, x_tr[:300], steps=100, input_range=(0.0, 1.0), neuron="lif")
    conv.save(tmp_path / "model.npz")
    np.savetxt(tmp_path / "digits.csv", x_te[:N], delimiter=",", fmt="%.6f")
    (tmp_path / "p.toml").write_text(_pipeline(tmp_path, str(tmp_path / "model.npz")))
    r = subprocess.run(edgesnn_cmd("run", str(tmp_path / "p.toml")), capture_output=True,
                       text=True, env=subprocess_env(), timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    dets = [json.loads(line) for line in (tmp_path / "detections.jsonl").read_text().splitlines()]
    window = np.array([d["t_sensor_us"] // 100_000 for d in dets])
    assert window.tolist() == list(range(N))  # one decision per image, in its own window
    pred = np.array([int(d["label"]) for d in dets])
    ann_acc = float(np.mean(ann.predict(x_te[:N]) == y_te[:N]))
    assert np.mean(pred == y_te[:N]) >= ann_acc - 0.05
