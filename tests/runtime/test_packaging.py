"""The built wheel carries the runtime, the drivers package and the shipped data, and runs."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
import zipfile

from conftest import REPO


def test_wheel_contents_and_installed_cli(tmp_path):
    out = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(out), str(REPO)],
        check=True, timeout=300, cwd=tmp_path,
    )
    (whl,) = out.glob("edgesnn-*.whl")
    names = set(zipfile.ZipFile(whl).namelist())
    assert "edgesnn/_shipped/pipelines/demo.toml" in names
    assert "edgesnn_drivers/synthetic/dvs.py" in names
    assert not any(n.startswith("drivers/") for n in names), "drivers must not install bare"
    # the Apache-2.0 text ships in the wheel's metadata, and the metadata says so
    (lic,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    assert "Apache License" in zipfile.ZipFile(whl).read(lic).decode()
    (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    meta_text = zipfile.ZipFile(whl).read(meta).decode()
    assert "License-Expression: Apache-2.0" in meta_text
    assert "License-File: LICENSE" in meta_text
    for p in (REPO / "pipelines").glob("*.toml"):
        assert f"edgesnn/_shipped/pipelines/{p.name}" in names
    for p in (REPO / "firmware_profiles").glob("*.toml"):
        assert f"edgesnn/_shipped/firmware_profiles/{p.name}" in names

    # install it into an isolated venv with only its declared dependencies (resolved by pip,
    # nothing borrowed from this interpreter or the base one) and use it away from the checkout
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    py = env_dir / "bin" / "python"
    inst = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           str(whl)], capture_output=True, text=True, timeout=900)
    assert inst.returncode == 0, inst.stderr[-2000:]
    isolated = subprocess.run(
        [str(py), "-c", "import json, sys; print(json.dumps([p for p in sys.path if 'site' in p]))"],
        capture_output=True, text=True, check=True,
    )
    assert all(str(env_dir) in p for p in json.loads(isolated.stdout)), isolated.stdout
    probe = subprocess.run(
        [str(py), "-c", "import edgesnn, edgesnn_drivers; print(edgesnn.__file__)"],
        capture_output=True, text=True, cwd=tmp_path, check=True,
    )
    assert str(env_dir) in probe.stdout, probe.stdout  # the installed copy, not the checkout
    res = subprocess.run([str(env_dir / "bin" / "edgesnn"), "validate", "demo"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "demo: ok" in res.stdout
    # the demo runs from the installed wheel, away from the checkout
    from conftest import free_port

    demo = subprocess.run(
        [str(env_dir / "bin" / "edgesnn"), "-q", "demo", "--duration", "3", "--speed", "max",
         "--endpoint", f"tcp://127.0.0.1:{free_port()}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )
    assert demo.returncode == 0, demo.stderr
    assert "demo:" in demo.stdout and "detections" in demo.stdout, demo.stdout
    prof = subprocess.run(
        [str(py), "-c", "from edgesnn.deploy.profile import load_profile, shipped_profiles;"
         "print(sorted(shipped_profiles())); load_profile('loihi2')"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert prof.returncode == 0, prof.stderr
    assert "loihi2" in prof.stdout and "spinnaker1" in prof.stdout
