"""The exported Loihi network (`loihi/network.json` + `weights.npz`) runs in Intel's lava-nc
(bit-accurate Dense / DelayDense / LIF models) and matches edgesnn's emulation exactly: spikes,
u and v at every step (tools/check_lava.py).

lava-nc 0.10 needs Python 3.10 (edgesnn 3.11): the lava half runs under $EDGESNN_LAVA_PYTHON
(or this interpreter when it has lava); without lava these tests skip, except the one that checks
that a missing lava is a clear error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgesnn.core import Network, NetworkSpec
from edgesnn.deploy import deploy

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "check_lava.py"
LAVA_PYTHON = os.environ.get("EDGESNN_LAVA_PYTHON") or sys.executable


def _lava_problem(py: str) -> str | None:
    try:
        r = subprocess.run([py, "-c", "import lava.proc.lif.process, lava.proc.dense.process"],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    except OSError as e:
        return str(e)
    return None if r.returncode == 0 else (r.stderr.strip().splitlines() or ["?"])[-1]


@pytest.fixture(scope="module")
def lava_python() -> str:
    why = _lava_problem(LAVA_PYTHON)
    if why:
        pytest.skip(f"lava-nc is not importable by {LAVA_PYTHON} ({why}); lava-nc 0.10 needs "
                    "Python 3.10: set EDGESNN_LAVA_PYTHON to such an interpreter with lava-nc")
    return LAVA_PYTHON


def _net(model: str, n_in: int, w_mean: float, w_sd: float, delays: bool, seed: int = 1
         ) -> Network:  # fmt: skip
    """Two layers, no refractory period (lava's bit-accurate LIF has none)."""
    rng = np.random.default_rng(seed)
    spec = NetworkSpec(dt_us=1000)
    spec.add_layer("in", n_in, "input")
    kw = {"tau_mem_ms": 10.0, "t_ref_ms": 0.0}
    if model == "cuba_lif":
        kw.update(tau_syn_exc_ms=5.0, tau_syn_inh_ms=5.0)
    spec.add_layer("hid", 16, model, **kw)
    spec.add_layer("out", 4, model, **kw)
    d = rng.integers(0, 4, (n_in, 16)) if delays else 0
    spec.connect("in", "hid", weight=rng.normal(w_mean, w_sd, (n_in, 16)), delay_steps=d)
    spec.connect("hid", "out", weight=rng.normal(0.75, 0.75, (16, 4)))
    return Network(spec)


def _check(out: Path, py: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), str(out), "--lava-python", py, "--json",
                           *args], capture_output=True, text=True, timeout=600)  # fmt: skip


@pytest.mark.parametrize("profile,model,n_in,w,delays,rate", [
    ("loihi2", "cuba_lif", 32, (0.4, 0.5), True, 0.1),      # DelayDense, mixed, exponent > 0
    ("loihi1", "lif", 32, (0.4, 0.5), False, 0.1),          # Dense, Loihi1SimCfg, du = 4095
    ("loihi2", "cuba_lif", 200, (0.004, 0.002), True, 0.5),  # weight exponent < 0
])  # fmt: skip
def test_exported_loihi_network_in_lava_matches_emulation(lava_python, tmp_path, profile, model,
                                                          n_in, w, delays, rate):
    _net(model, n_in, *w, delays).save(tmp_path / "m.npz")
    rep = deploy(tmp_path / "m.npz", profile, tmp_path / "o", progress=False)
    assert rep["fits"]
    exps = [x["exponent"] for x in rep["weights"]]
    if n_in == 200:
        assert exps[0] < 0, exps  # the case of issue 15: lava shifts the neuron's sum
    r = _check(tmp_path / "o", lava_python, "--steps", "150", "--rate", str(rate), "--cfg",
               profile)
    assert r.returncode in (0, 1), r.stderr
    res = json.loads(r.stdout)
    assert "PyLifModelBitAcc" in res["lava_models"]
    assert ("PyDelayDenseModelBitAcc" if delays else "PyDenseModelBitAcc") in res["lava_models"]
    for name, lay in res["layers"].items():
        assert lay["lava_spikes"] > 5, (name, lay)  # busy enough to mean something
    assert res["identical"], res["first_difference"]
    assert r.returncode == 0


def test_missing_lava_is_a_clear_error(tmp_path):
    py = sys.executable
    if _lava_problem(py) is None:
        pytest.skip(f"{py} has lava-nc: nothing missing to report")
    _net("cuba_lif", 8, 0.4, 0.5, False).save(tmp_path / "m.npz")
    deploy(tmp_path / "m.npz", "loihi2", tmp_path / "o", progress=False)
    r = _check(tmp_path / "o", py, "--steps", "5")
    assert r.returncode == 2
    assert f"lava did not run under {py}" in r.stderr and "lava" in r.stderr.splitlines()[-1]
    # and a folder that is not a Loihi deploy is refused the same way
    deploy(tmp_path / "m.npz", "spinnaker1", tmp_path / "s", progress=False)
    r = _check(tmp_path / "s", py)
    assert r.returncode == 2 and "is not a Loihi deploy folder" in r.stderr
