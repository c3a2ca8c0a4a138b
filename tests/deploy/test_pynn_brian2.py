"""The exported PyNN script (`pynn/build_pynn.py`) run by a real PyNN backend, pyNN.brian2, on a
real DVS recording agrees with the float model.

Tolerance: per layer, at least 95 % of the spikes matched within +-1 step (and 85 % on the same
step), spike counts within 5 %. Why not exact: brian2 integrates PyNN's continuous-time
IF_curr_exp, whose synaptic current decays within each step, while the float model (and the
chip) holds the current of a step constant and decays it between steps; the exported weight
(w / init, sPyNNaker's init = (tau_syn/dt)(1 - exp(-dt/tau_syn))) makes the charge of each step
equal, so only v near the threshold moves a spike by a step. The SpiNNaker quantization (16-bit
weights, s16.15 threshold) adds the rest. Measured on the whole recording
(aedat2_dvs128_alex_walking_again, 32 inputs, cuba_lif 16 + 4): 99.3 % / 99.2 % of spikes
within +-1 step, counts within 0.2 %.

The script runs under the interpreter that has PyNN and brian2: this one, or
$EDGESNN_PYNN_PYTHON (brian2 2.9, the last release for Python 3.11, imports only with numpy < 2.4).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgesnn.core import Network
from edgesnn.deploy import PipelineSource, deploy
from edgesnn.deploy.report import layer_agreement

from .helpers import small_net
from .test_deploy_recording import DVS_PIPELINE, WALK

PYNN_PYTHON = os.environ.get("EDGESNN_PYNN_PYTHON") or sys.executable
STEPS = 300
TOL_STEPS = 1
MIN_WITHIN_TOL = 0.95
MIN_EXACT = 0.85
MAX_COUNT_ERROR = 0.05


@pytest.fixture(scope="module")
def pynn_python() -> str:
    r = subprocess.run([PYNN_PYTHON, "-c", "import pyNN.brian2"], capture_output=True,
                       text=True, timeout=120)
    if r.returncode != 0:
        why = (r.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"pyNN.brian2 cannot be imported by {PYNN_PYTHON} ({why}); install the "
                    "[pynn] extra (brian2 2.9 on Python 3.11 needs numpy < 2.4) or set "
                    "EDGESNN_PYNN_PYTHON to a Python that has PyNN and brian2")
    return PYNN_PYTHON


@pytest.fixture(scope="module")
def walk_spikes(tmp_path_factory) -> tuple[np.ndarray, np.ndarray, Path]:
    if not WALK.is_file():
        pytest.skip(f"real DVS recording not available: {WALK} (../shared/data beside the repo)")
    d = tmp_path_factory.mktemp("walk")
    (d / "walk.toml").write_text(DVS_PIPELINE)
    rec = PipelineSource(str(d / "walk.toml"), str(WALK), max_steps=STEPS).read(32, 1000, False)
    np.savez(d / "in.npz", in_ptr=rec.in_ptr, in_idx=rec.in_idx)
    return rec.in_ptr, rec.in_idx, d


def _float_spikes(net: Network, ptr: np.ndarray, idx: np.ndarray) -> dict[str, list]:
    out: dict[str, list] = {"hid": [], "out": []}
    for k in range(len(ptr) - 1):
        net.step(idx[ptr[k] : ptr[k + 1]])
        for n in out:
            out[n] += [(k, int(i)) for i in net.layer_spikes(n)]
    return out


@pytest.mark.parametrize("model,cellclass", [("cuba_lif", "IF_curr_exp"),
                                             ("lif", "IF_curr_delta")])
def test_exported_pynn_script_on_brian2_agrees_with_float(pynn_python, walk_spikes, tmp_path,
                                                          model, cellclass):
    ptr, idx, d = walk_spikes
    small_net(model, n_in=32, seed=4).save(tmp_path / "m.npz")
    rep = deploy(tmp_path / "m.npz", "spinnaker1", tmp_path / "o", progress=False)
    assert rep["fits"]
    script = tmp_path / "o" / "pynn" / "build_pynn.py"
    r = subprocess.run([pynn_python, str(script), "--backend", "brian2", "--spikes",
                        str(d / "in.npz"), "--out", str(tmp_path / "spikes.npz")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    with np.load(tmp_path / "spikes.npz") as z:
        got = {k: z[k] for k in z.files}
    assert int(got["steps"]) == STEPS
    fl = _float_spikes(Network.load(tmp_path / "m.npz"), ptr, idx)
    sizes = {"hid": 16, "out": 4}
    for n, size in sizes.items():
        p, i = got[f"{n}.ptr"], got[f"{n}.idx"]
        assert p.shape == (STEPS + 1,) and p[-1] == i.size
        b2 = [(k, int(j)) for k in range(STEPS) for j in i[p[k] : p[k + 1]]]
        a = layer_agreement(size, fl[n], b2, TOL_STEPS)
        assert a["float_spikes"] > 100, (n, a["float_spikes"])  # the layers are busy
        assert a["timing_within_tol"] >= MIN_WITHIN_TOL, (n, a)
        assert a["timing_exact"] >= MIN_EXACT, (n, a)
        assert a["count_error"] <= MAX_COUNT_ERROR, (n, a)
    assert f"{cellclass}" in (tmp_path / "o" / "pynn" / "network.json").read_text()
