"""What `edgesnn deploy` prints (a line per rule family, a final verdict, --json) and
report.json's schema version; the counters of Loihi behaviour lava does not settle."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgesnn.core import Network, NetworkSpec
from edgesnn.deploy import Emulator, load_profile
from edgesnn.deploy.report import REPORT_SCHEMA_VERSION
from edgesnn.deploy.rules import RULE_FAMILIES, RULES
from edgesnn.deploy.targets.loihi.goldens import load_case

from .helpers import recording, small_net


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "edgesnn", "deploy", *args],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.fixture
def files(tmp_path):
    small_net("cuba_lif").save(tmp_path / "model.npz")
    ptr, idx, sp = recording(steps=120, samples=2)
    np.savez(tmp_path / "rec.npz", in_ptr=ptr, in_idx=idx, sample_ptr=sp)
    spec = NetworkSpec(dt_us=1000)
    spec.add_layer("in", 4, "input")
    spec.add_layer("o", 2, "lif")
    spec.connect("in", "o", weight=0.5, delay_steps=70)
    Network(spec).save(tmp_path / "long.npz")
    return tmp_path


def test_every_rule_is_in_one_family():
    names = [r for rs in RULE_FAMILIES.values() for r in rs]
    assert sorted(names) == sorted(RULES) and len(names) == len(set(names))


def test_text_lists_each_family_and_ends_with_the_verdict(files):
    r = _cli(str(files / "model.npz"), "--profile", "loihi2", "--check-on",
             str(files / "rec.npz"), "--out", str(files / "a"), "--no-progress")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    fam_lines = [x for x in lines if x.startswith("  check ")]
    assert len(fam_lines) == len(RULE_FAMILIES)
    for line, fam in zip(fam_lines, RULE_FAMILIES):
        assert line.split()[1:1 + len(fam.split())] == fam.split() and " ok " in line
    assert lines[-1] == "verdict: FITS loihi2: 2 core(s), 1 chip(s)"
    assert "not settled by lava" in r.stdout and "0 times" in r.stdout
    assert (files / "a" / "summary.txt").read_text() == r.stdout
    rep = json.loads((files / "a" / "report.json").read_text())
    assert rep["schema_version"] == REPORT_SCHEMA_VERSION == 2
    assert rep["format"] == "edgesnn-deploy-report" and rep["verdict"].startswith("FITS")
    assert [f["family"] for f in rep["rule_families"]] == list(RULE_FAMILIES)
    k = rep["check"]["counters"]
    assert rep["unsettled"]["input_accumulator"]["occurrences"] == k["q_overflow"]
    assert rep["unsettled"]["u_edge"]["occurrences"] == k["u_edge"]
    assert "lava" in rep["unsettled"]["u_edge"]["source"]
    # a violation: the family line says which rule, the verdict says it does not fit
    r = _cli(str(files / "long.npz"), "--profile", "loihi1", "--out", str(files / "b"))
    assert r.returncode == 1
    line = [x for x in r.stdout.splitlines() if x.startswith("  check delays")][0]
    assert "1 violation(s) (delay_range)" in line
    assert r.stdout.splitlines()[-1] == "verdict: DOES NOT FIT loihi1: 1 violation(s) of " \
        "delay_range"  # fmt: skip


def test_json_prints_one_summary_object(files):
    r = _cli(str(files / "model.npz"), "--profile", "spinnaker1", "--check-on",
             str(files / "rec.npz"), "--out", str(files / "c"), "--json", "--no-progress")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)  # the whole of stdout is one JSON document
    assert s["format"] == "edgesnn-deploy-summary" and s["schema_version"] == 2
    assert s["fits"] is True and s["verdict"].startswith("FITS spinnaker1")
    assert [f["family"] for f in s["rule_families"]] == list(RULE_FAMILIES)
    assert all(f["status"] == "pass" for f in s["rule_families"])
    assert s["check"]["samples"] == 2 and 0 <= s["check"]["readout_agreement"] <= 1
    assert s["unsettled"] == {}  # SpiNNaker: nothing lava-specific
    assert s["out"] == str(files / "c") and "report.json" in s["files"]
    r = _cli(str(files / "long.npz"), "--profile", "loihi2", "--out", str(files / "d"),
             "--json")
    assert r.returncode == 1
    s = json.loads(r.stdout)
    assert s["fits"] is False and s["verdict"].startswith("DOES NOT FIT")
    fam = {f["family"]: f for f in s["rule_families"]}
    assert fam["delays"]["status"] == "fail" and fam["delays"]["broken"] == ["delay_range"]
    assert [v["rule"] for v in s["violations"]] == ["delay_range"]
    assert s["unsettled"] == {"input_accumulator": None, "u_edge": None}  # no check run


def _one_step_case(W, e):
    n_in = W.shape[1]
    inp = np.zeros((n_in, 3), np.int8)
    inp[:, 0] = 1
    return {"inp": inp, "nlayers": np.array(1), "cfg": np.array("loihi2"),
            "W0": W.astype(np.int16), "e0": np.array(e), "nwb0": np.array(8),
            "sm0": np.array("mixed"), "du0": np.array(4095), "dv0": np.array(0),
            "vth0": np.array(131071), "bm0": np.zeros(W.shape[0], np.int16),
            "be0": np.zeros(W.shape[0], np.int8)}  # fmt: skip


def _run(c, profile):
    em = Emulator(load_case(c, load_profile(profile)))
    us = []
    for t in range(c["inp"].shape[1]):
        em.step(np.nonzero(c["inp"][:, t])[0])
        us.append(int(em.u[1][0]))
    return us, em.counters


def test_unsettled_behaviour_is_counted_with_each_profiles_choice():
    # two synapses of 254 << 7 arrive together: 508 << 7 << 6 = 4161536 >= 2^21
    c = _one_step_case(np.array([[254, 254]]), 7)
    us, k = _run(c, "loihi2")  # lava: no accumulator limit, counted
    assert us[1] == 4161536 and k["q_overflow"] == 1
    us, k = _run(c, "loihi1")  # nengo-loihi: 22-bit wrap
    assert us[1] == 4161536 - (1 << 22) and k["q_overflow"] == 1
    # eight synapses of 128 << 7: u = 2^23 exactly; lava keeps it, counted as the edge
    c = _one_step_case(np.full((1, 8), 128), 7)
    us, k = _run(c, "loihi2")
    assert us[1] == 1 << 23 and k["u_edge"] == 1 and k["u_overflow"] == 0
