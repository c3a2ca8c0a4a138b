"""pipelines/keyword_spotting.toml run by the runtime on real FSDD recordings with pauses between.

Ten shared FSDD recordings (one per digit, six speakers) are written into one WAV with 0.8 s of
near-silence (noise at about -80 dBFS) between them; `edgesnn run` replays it as fast as possible
into a file sink. The `utterance` readout must give exactly one detection per recording, each
after that recording's start and before the next one's, and most of them right. (The shipped
model was trained on the shared recordings: this checks the streaming path and the
end-of-utterance decision, not accuracy on unseen speech, which README.md reports.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
FSDD = REPO.parent / "shared" / "data" / "audio" / "fsdd"
PIPELINE = REPO / "pipelines" / "keyword_spotting.toml"
RATE = 8000
NAMES = ["0_jackson_3", "1_george_4", "2_lucas_5", "3_nicolas_6", "4_theo_7", "5_yweweler_8",
         "6_jackson_9", "7_george_2", "8_lucas_1", "9_nicolas_0"]


@pytest.mark.skipif(not FSDD.is_dir(), reason=f"FSDD recordings not found at {FSDD}")
def test_one_detection_per_utterance_through_the_runtime(tmp_path: Path) -> None:
    from edgesnn_drivers.audio.wav import read_wav

    rng = np.random.default_rng(0)
    gap = int(0.8 * RATE)
    parts, starts = [1e-4 * rng.standard_normal(gap // 2)], []
    pos = gap // 2
    for name in NAMES:
        rate, x = read_wav(FSDD / f"{name}.wav")
        assert rate == RATE
        starts.append(pos)
        parts += [x[:, 0].astype(np.float64), 1e-4 * rng.standard_normal(gap)]
        pos += x.shape[0] + gap
    pcm = np.clip(np.concatenate(parts) * 32767, -32768, 32767).astype("<i2")
    rec = tmp_path / "digits.wav"
    with wave.open(str(rec), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    out = tmp_path / "digits.jsonl"
    sets = {"drivers.mic.path": json.dumps(str(rec)), "drivers.mic.speed": '"max"',
            "sinks.zmq.endpoint": '"tcp://127.0.0.1:0"', "sinks.jsonl.type": '"file"',
            "sinks.jsonl.inputs": '["digit"]', "sinks.jsonl.path": json.dumps(str(out))}
    args = [sys.executable, "-m", "edgesnn", "run", str(PIPELINE)]
    for k, v in sets.items():
        args += ["--set", f"{k}={v}"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    dets = [json.loads(line) for line in out.read_text().splitlines()]
    t = np.array([d["t_sensor_us"] for d in dets])
    bounds_us = np.array(starts + [pos]) * 1_000_000 // RATE
    # exactly one detection per utterance: detection k falls between utterance k's start and
    # the next utterance's start
    assert len(dets) == len(NAMES), [(d["label"], d["t_sensor_us"]) for d in dets]
    assert np.all((t >= bounds_us[:-1]) & (t < bounds_us[1:])), (t, bounds_us)
    labels = [d["label"] for d in dets]
    right = sum(lab == n[0] for lab, n in zip(labels, NAMES))
    assert right >= 8, list(zip(labels, NAMES))
