"""`edgesnn train --profile P` gives a model that `edgesnn deploy --profile P` accepts, for every
shipped chip profile, trained and checked on a few real FSDD recordings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgesnn.cli import main
from edgesnn.core import Network

REPO = Path(__file__).resolve().parents[2]
FSDD = REPO.parent / "shared" / "data" / "audio" / "fsdd"
PROFILES = ("loihi1", "loihi2", "spinnaker1", "spinnaker2")


def files() -> list[str]:
    if not FSDD.is_dir():
        pytest.skip(f"FSDD recordings not found at {FSDD}")
    return [str(FSDD / f"{d}_jackson_{i}.wav") for d in (0, 1) for i in (0, 1)]


@pytest.mark.parametrize("profile", PROFILES)
def test_train_with_profile_passes_deploy(profile: str, tmp_path: Path, capsys) -> None:
    wavs = files()
    model = tmp_path / "m.npz"
    rc = main(["train", "--recordings", *wavs, "--out", str(model), "--hidden", "8",
               "--epochs", "1", "--batch-size", "6", "--profile", profile,
               "--progress-every-s", "0"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert f"profile {profile}: the trained model passes every design rule" in out
    net = Network.load(model)
    recipe = net.manifest["recipe"]
    assert recipe["profile"] == profile
    rep = json.loads((tmp_path / "m.npz.report.json").read_text())
    assert rep["profile_check"]["fits"] and rep["profile_check"]["violations"] == []
    if profile.startswith("spinnaker"):
        # at most 1 ms per step; the 100 ms of silent tail steps keep their duration
        assert net.dt_us == 1000 and recipe["tail_steps"] == 100
        for lay in net.manifest["layers"][1:]:
            assert lay["params"]["tau_syn_inh_ms"] == lay["params"]["tau_syn_exc_ms"]
    else:
        assert net.dt_us == 5000 and recipe["tail_steps"] == 20
    # the deploy command agrees, checking on the same recordings by the runtime's rule
    rc = main(["deploy", str(model), "--profile", profile, "--out", str(tmp_path / "d"),
               "--recordings", *wavs, "--no-progress", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert rc == 0 and summary["fits"], summary["violations"]
    check = summary["check"]
    assert check["samples"] == 4 and 0.0 <= check["quantized_accuracy"] <= 1.0
    assert check["accuracy_loss_points"] == pytest.approx(
        100 * (check["float_accuracy"] - check["quantized_accuracy"]))


def test_profile_check_names_what_an_unconstrained_model_breaks(tmp_path: Path,
                                                                  capsys) -> None:
    from edgesnn.commands.train import profile_check
    from edgesnn.deploy import load_profile

    model = REPO / "pipelines" / "keyword_spotting.npz"  # the 5 ms recipe, trained freely
    res = profile_check(model, load_profile("spinnaker2"))
    assert not res["fits"]
    assert {v["rule"] for v in res["violations"]} == {"timestep", "synapse_types"}
    assert profile_check(model, load_profile("loihi2"))["fits"]
    # deploy says which training fixes it
    rc = main(["deploy", str(model), "--profile", "spinnaker1", "--out", str(tmp_path / "d"),
               "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 1
    assert ("hint: `edgesnn train --profile spinnaker1` trains within these limits "
            "(synapse_types, timestep)") in out
