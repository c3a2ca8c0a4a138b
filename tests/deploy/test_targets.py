"""Chip targets: one package of one shape per family, found through one registry, and every
shipped profile deploys through its target's five steps."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from edgesnn.deploy import load_profile, loads_profile, shipped_profiles
from edgesnn.deploy.profile import profiles_dir
from edgesnn.deploy.targets import MODULES, Target, families, target, targets
from edgesnn.errors import ConfigError

from .helpers import recording, small_net

TARGETS_DIR = Path(__file__).resolve().parents[2] / "edgesnn" / "deploy" / "targets"
#: shipped profile -> the target package that runs it
SHIPPED = {"loihi1": "loihi", "loihi2": "loihi", "spinnaker1": "spinnaker",
           "spinnaker2": "spinnaker", "xylo_audio2": "xylo", "xylo_imu": "xylo"}  # fmt: skip
#: what every target module defines (the package shape)
SHAPE = {
    "profile": ("FAMILY", "SCHEMA", "semantic", "load"),
    "quantize": ("quantize",),
    "emulate": ("emulator",),
    "rules": ("check", "RULE_FAMILIES", "EXTRA", "report_extras"),
    "export": ("export",),
}


def test_registry_lists_every_family_and_every_shipped_profile_has_a_target() -> None:
    assert set(families()) == {"loihi_cuba", "spinnaker_if_curr_exp", "xylo"}
    assert set(SHIPPED) <= set(shipped_profiles())
    for name in shipped_profiles():
        prof = load_profile(name)
        assert target(prof.family).name == SHIPPED[name], name
    packages = sorted(p.name for p in TARGETS_DIR.iterdir() if (p / "__init__.py").is_file())
    assert packages == sorted(t.name for t in targets().values())  # a folder is a target


def test_every_target_has_the_same_shape() -> None:
    names = {f.name for f in dataclasses.fields(Target)}
    for fam, t in targets().items():
        assert isinstance(t, Target) and t.family == fam
        assert {f.name for f in dataclasses.fields(t)} == names
        for f in dataclasses.fields(t):
            v = getattr(t, f.name)
            assert v is not None and v != "", (t.name, f.name)
            if f.name not in ("name", "family", "description", "rule_families"):
                assert callable(v), (t.name, f.name)
        files = {p.stem for p in (TARGETS_DIR / t.name).glob("*.py")}
        assert set(MODULES) <= files, t.name
        for part, attrs in SHAPE.items():
            mod = t.module(part)
            missing = [a for a in attrs if not hasattr(mod, a)]
            assert not missing, f"{t.name}.{part} lacks {missing}"
        assert fam == t.module("profile").FAMILY
        assert t.quantize is t.module("quantize").quantize
        assert t.check is t.module("rules").check
        assert t.export is t.module("export").export
        assert t.emulator is t.module("emulate").emulator
        assert t.load_profile is t.module("profile").load
        assert dict(t.rule_families) == dict(t.module("rules").RULE_FAMILIES)
    with pytest.raises(ValueError, match="not a target module"):
        t.module("report")


@pytest.mark.parametrize("profile", sorted(SHIPPED))
def test_each_target_runs_its_five_steps(profile: str, tmp_path: Path) -> None:
    prof = load_profile(profile)
    t = target(prof.family)
    net = small_net("cuba_lif", delays=False)
    from edgesnn.deploy.floatmodel import FloatModel

    model = t.quantize(FloatModel.from_network(net), prof)
    violations, mapping = t.check(model, prof)
    assert mapping.cores >= 1 and all(v.rule for v in violations)
    em = t.emulator(model, prof)
    ptr, idx, _ = recording(steps=20)
    if t.name == "xylo":
        from edgesnn.deploy.targets.xylo import raster

        out = em.run(raster(ptr, idx, 20))["out"]
        assert out.shape == (20, 4)
    else:
        res = em.run(ptr, idx)
        assert set(res) == {"in", "hid", "out"} and res["in"][0].size == 21
    files = t.export(model, prof, tmp_path)
    assert files and all((tmp_path / f).is_file() for f in files)
    assert files[0].split("/")[0] == {"loihi": "loihi", "spinnaker": "pynn", "xylo": "xylo"}[t.name]


def test_an_unknown_family_names_the_targets() -> None:
    text = (profiles_dir() / "loihi2.toml").read_text().replace('family = "loihi_cuba"',
                                                                'family = "loihi_cubaa"')
    with pytest.raises(ConfigError, match=r'did you mean "loihi_cuba".*targets: loihi_cuba, '
                                          r"spinnaker_if_curr_exp, xylo"):  # fmt: skip
        loads_profile(text, "bad.toml")
    with pytest.raises(ValueError, match="no chip target for family 'truenorth'"):
        target("truenorth")


def test_emulator_without_kernels_takes_the_targets() -> None:
    from edgesnn.deploy import Emulator, quantize

    net = small_net("cuba_lif")
    ptr, idx, _ = recording(steps=60)
    for name in ("loihi2", "spinnaker2"):
        prof = load_profile(name)
        qm = quantize(net, prof)
        a = Emulator(qm).run(ptr, idx)
        b = target(prof.family).emulator(qm, prof).run(ptr, idx)
        for layer in a:
            assert all(np.array_equal(x, y) for x, y in zip(a[layer], b[layer]))


def test_quantized_snn_names_a_target_it_cannot_emulate(tmp_path: Path) -> None:
    from edgesnn.components import BuildContext, lookup

    small_net("cuba_lif").save(tmp_path / "model.npz")
    cls = lookup("network", "quantized_snn")
    ctx = BuildContext(dt_us=1000, base_dir=str(tmp_path))
    with pytest.raises(ConfigError, match=r"networks\.chip\.profile.*xylo_imu \(family xylo\) is "
                                          r"not a chip of neuron cores"):  # fmt: skip
        cls("chip", {"model": "model.npz", "profile": "xylo_imu"}, ctx)
    assert cls("chip", {"model": "model.npz", "profile": "spinnaker2"}, ctx).n_outputs == 4


TOY = {
    "__init__": '''
from edgesnn.deploy import report
from edgesnn.deploy.targets import Target, register
from . import emulate, export, profile, quantize, rules

TARGET = register(Target(
    name="toy", family=profile.FAMILY, description="Loihi's arithmetic under another name",
    load_profile=profile.load, quantize=quantize.quantize, emulator=emulate.emulator,
    check=rules.check, rule_families=rules.RULE_FAMILIES, export=export.export,
    deploy=report.deploy_cores, summary_text=report.summary_text,
    summary_json=report.summary_json))
''',
    "profile": '''
from edgesnn.deploy.profile import PROFILE_SCHEMA as SCHEMA, validate_core_profile
from edgesnn.deploy.targets.loihi.profile import semantic
FAMILY = "toy_cuba"
def load(raw, text, path=""):
    return validate_core_profile(raw, text, path, semantic)
''',
    "quantize": "from edgesnn.deploy.targets.loihi.quantize import effective_weights, quantize\n",
    "emulate": "from edgesnn.deploy.targets.loihi.emulate import KERNELS, emulator\n",
    "rules": "from edgesnn.deploy.targets.loihi.rules import EXTRA, RULE_FAMILIES, check, "
             "report_extras\n",
    "export": "from edgesnn.deploy.targets.loihi.export import export\n",
}


def test_a_new_chip_is_a_new_folder_and_a_profile(tmp_path: Path) -> None:
    """A target package dropped into the targets folder (here: a folder added to its path)
    plus a profile TOML deploys with no other change: Loihi's arithmetic under a new family
    gives Loihi's report."""
    import sys

    import edgesnn.deploy.targets as T
    from edgesnn.deploy import deploy
    from edgesnn.deploy.report import DeployRecording

    pkg = tmp_path / "targets" / "toy"
    pkg.mkdir(parents=True)
    for name, text in TOY.items():
        (pkg / f"{name}.py").write_text(text.lstrip())
    toml = tmp_path / "toy.toml"
    toml.write_text((profiles_dir() / "loihi2.toml").read_text()
                    .replace('family = "loihi_cuba"', 'family = "toy_cuba"')
                    .replace('name = "loihi2"', 'name = "toy"'))  # fmt: skip
    T.__path__.append(str(pkg.parent))
    T._LOADED = False
    try:
        assert target("toy_cuba").name == "toy" and "toy_cuba" in families()
        net = small_net("cuba_lif")
        ptr, idx, sp = recording()
        rec = DeployRecording(ptr, idx, sp)
        toy = deploy(net, str(toml), tmp_path / "toy", rec, progress=False)
        ref = deploy(net, "loihi2", tmp_path / "ref", rec, progress=False)
        assert toy["family"] == "toy_cuba" and toy["profile"] == "toy"
        assert toy["check"] == ref["check"] and toy["weights"] == ref["weights"]
        assert toy["violations"] == ref["violations"] and "unsettled" in toy
        assert sorted(p.name for p in (tmp_path / "toy" / "loihi").iterdir()) == \
            ["network.json", "weights.npz"]  # fmt: skip
    finally:
        T.__path__.remove(str(pkg.parent))
        T._TARGETS.pop("toy_cuba", None)
        for m in [m for m in sys.modules if m.startswith("edgesnn.deploy.targets.toy")]:
            del sys.modules[m]
    assert "toy_cuba" not in families()
