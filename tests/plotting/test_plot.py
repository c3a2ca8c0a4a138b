"""`edgesnn plot` and edgesnn.plotting on real recordings: rasters through shipped pipelines,
DVS frames, training curves of a real (tiny) training run, confusion matrices."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, subprocess_env

from edgesnn.cli import main
from edgesnn.events import SpikeRaster

pytest.importorskip("matplotlib", reason="plots need matplotlib (pip install 'edgesnn[plot]')")

DVS128 = DATA / "dvs" / "aedat2_dvs128_alex_walking_again.aedat"
FSDD = DATA / "audio" / "fsdd"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"real recordings not found at {DATA}")


def check_png(path: Path, min_wh: tuple[int, int] = (200, 150)) -> tuple[int, int]:
    """A decodable PNG of sensible size that is not one flat colour; returns (width, height)."""
    from matplotlib.image import imread

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert 2_000 < len(data) < 2_000_000, f"{path}: {len(data)} bytes"
    w, h = struct.unpack(">II", data[16:24])  # IHDR
    assert min_wh[0] <= w <= 4000 and min_wh[1] <= h <= 4000, (w, h)
    img = imread(path)
    assert img.shape[:2] == (h, w) and float(img[..., :3].std()) > 0.01
    return w, h


def test_raster_points_follow_the_csr_layout():
    from edgesnn.plotting import raster_points

    a = SpikeRaster.from_dense(np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]], bool),
                               t0_us=5000, dt_us=1000)
    b = SpikeRaster.from_dense(np.array([[0, 0, 1]], bool), t0_us=8000, dt_us=1000)
    t, c, n = raster_points([a, b])
    assert t.tolist() == [5000, 5000, 7000, 8000] and c.tolist() == [0, 2, 1, 2] and n == 3


@needs_data
def test_raster_of_a_dvs_recording_through_the_dvs_pipeline(tmp_path, capsys):
    out = tmp_path / "raster.png"
    rc = main(["plot", "raster", str(DVS128), "--pipeline", "dvs_motion", "--seconds", "0.5",
               "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert capsys.readouterr().out.strip() == str(out)
    w, h = check_png(out)
    assert h > w / 2  # two panels, encoder and network


@needs_data
def test_raster_of_a_wav_through_the_keyword_pipeline(tmp_path):
    out = tmp_path / "kws.png"
    rc = main(["plot", "raster", str(FSDD / "3_theo_0.wav"), "--pipeline", "keyword_audio",
               "--seconds", "0.4", "-o", str(out)])
    assert rc == 0
    check_png(out)


@needs_data
def test_dvs_frame_counts_every_event_and_renders(tmp_path):
    from edgesnn_drivers.dvs.readers import read_events

    from edgesnn.plotting import dvs_frame

    ev = read_events(DVS128)
    on, off = dvs_frame(ev, 128, 128)
    # 19 182 events: p = 1 (ON) 12 080, p = 0 (OFF) 7 102 (as in tests/dvs/test_readers.py)
    assert (int(on.sum()), int(off.sum())) == (12080, 7102)
    x, y = int(ev["x"][0]), int(ev["y"][0])
    assert on[y, x] + off[y, x] == np.count_nonzero((ev["x"] == x) & (ev["y"] == y))
    out = tmp_path / "frame.png"
    assert main(["plot", "dvs", str(DVS128), "--start", "1", "--seconds", "0.5",
                 "-o", str(out)]) == 0
    w, h = check_png(out)
    assert 0.8 < h / w < 1.3  # a square sensor gives a square-ish figure


@needs_data
def test_training_curves_and_confusion_from_real_json(tmp_path, capsys):
    files = [str(FSDD / f"{d}_jackson_{k}.wav") for d in range(3) for k in range(4)]
    (tmp_path / "p.toml").write_text(
        '[pipeline]\nname = "digits"\ndt_us = 4000\n'
        '[drivers.mic]\ntype = "wav"\npath = "none.wav"\n'
        '[encoders.cochlea]\ntype = "cochlea"\ninputs = ["mic"]\nbands = 8\n')
    rc = main(["train", "--pipeline", str(tmp_path / "p.toml"), "--recordings", *files,
               "--label-regex", r"^(\d)_", "--out", str(tmp_path / "m.npz"), "--hidden", "8",
               "--epochs", "5", "--batch-size", "4", "--val-fraction", "0.25", "--lr", "0.02",
               "--train-bias", "--init-gain", "3", "--save-dataset", str(tmp_path / "enc.npz")])
    assert rc == 0, capsys.readouterr().out
    report = tmp_path / "m.npz.report.json"
    assert len(json.loads(report.read_text())["history"]) == 5
    curves = tmp_path / "curves.png"
    assert main(["plot", "training", str(report), "-o", str(curves)]) == 0
    w, h = check_png(curves)
    assert w > h  # loss and accuracy side by side

    # a confusion matrix as the examples report it (edgesnn.evaluation.seed_summary), from a
    # spike-count baseline on the same real spikes: rows are true digits, + "(undecided)"
    from sklearn.linear_model import LogisticRegression

    from edgesnn.evaluation import report as make_report
    from edgesnn.evaluation import seed_summary
    from edgesnn.train import SpikeDataset

    ds = SpikeDataset.load(tmp_path / "enc.npz")
    x = np.stack([np.bincount(ds.sample(i)[1], minlength=ds.n_inputs) for i in range(len(ds))])
    y = np.asarray(ds.labels)
    pred = LogisticRegression(max_iter=500).fit(x, y).predict(x)
    names = [str(n) for n in ds.label_names]
    summary = seed_summary(y, [pred], names)
    doc = make_report("digits", n_train=len(y), n_test=len(y), train_s=0.0, snn=summary,
                      baseline={"name": "logistic", **seed_summary(y, [pred], names)},
                      split="none (plot test)")
    result = tmp_path / "result.json"
    result.write_text("training log line\n" + json.dumps(doc) + "\n")  # a log: last JSON line
    conf = tmp_path / "confusion.png"
    assert main(["plot", "confusion", str(result), "-o", str(conf)]) == 0
    w, h = check_png(conf)
    assert w > 1.5 * h  # the snn and baseline matrices side by side


def test_json_without_the_data_is_refused_with_exit_2(tmp_path, capsys):
    bad = tmp_path / "r.json"
    bad.write_text(json.dumps({"accuracy": 0.5}))
    assert main(["plot", "confusion", str(bad), "-o", str(tmp_path / "c.png")]) == 2
    assert "no `confusion` matrix" in capsys.readouterr().err
    assert main(["plot", "training", str(bad), "-o", str(tmp_path / "c.png")]) == 2
    assert "history" in capsys.readouterr().err
    assert not (tmp_path / "c.png").exists()


def test_without_matplotlib_plot_exits_2_naming_the_extra(tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None\n"  # as if it were not installed
            "from edgesnn.cli import main\n"
            f"sys.exit(main(['plot', 'training', {str(tmp_path / 'x.json')!r}, '-o', 'x.png']))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=subprocess_env(), timeout=60)
    assert p.returncode == 2, p.stderr
    assert "pip install 'edgesnn[plot]'" in p.stderr
