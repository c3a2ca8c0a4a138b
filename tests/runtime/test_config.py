"""Strict pipeline validation: every problem at once, with dotted path, line and suggestion."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, edgesnn_cmd

from edgesnn.config import pipeline as pl
from edgesnn.errors import ConfigError

BROKEN = Path(__file__).parent / "broken"

# file -> fragments that must each appear in one problem line ("line:path: message")
EXPECTED = {
    "unknown_keys.toml": [
        ':4: pipeline.seeed: unknown key "seeed" (did you mean "seed"?)',
        ':8: drivers.cam.widht: unknown key "widht" (did you mean "width"?)',
        ':13: encoders.enc.gird: unknown key "gird" (did you mean "grid"?)',
    ],
    "wrong_types.toml": [
        ":3: pipeline.dt_us: expected integer, got str",
        ":7: drivers.cam.width: expected integer, got float",
        ':8: drivers.cam.speed: \'fast\' is not "realtime", "max" or a positive number',
        ":13: encoders.enc.grid[1]: expected integer",
        ':14: encoders.enc.polarity: \'splitt\' is not one of \'split\', \'merge\' (did you mean "split"?)',
        ":20: readouts.r.window_ms: -5 is below the minimum",
        ":24: sinks.out.inputs: expected list of strings",
    ],
    "missing_inputs.toml": [
        ':9: encoders.enc.inputs[0]: no component "camera" (did you mean "cam"?)',
        ":11: readouts.r.inputs: missing inputs",
        ':17: sinks.out.inputs[0]: "cam" is a driver',
    ],
    "unknown_types.toml": [
        ':15: sink: unknown section "sink" (did you mean "sinks"?)',
        ':5: drivers.cam.type: unknown driver type "synthetic_dvss" (did you mean "synthetic_dvs"?)',
        ':8: encoders.enc.type: unknown encoder type "dvs_pol" (did you mean "dvs_pool"?)',
        ':12: sinks.out.type: unknown sink type "zmq_pubb" (did you mean "zmq_pub"?)',
    ],
    "cycle.toml": [":13: networks.", "cycle: "],
    "shape_mismatch.toml": [
        "encoders.enc: sensor is 64x64 here but driver 'cam' produces 32x32",
        "networks.motion:",  # 8x8 grid = 128 channels into a 16x16 (512-input) network
        "readouts.r: expects 3 input neurons",
    ],
    "syntax.toml": [":4: TOML syntax error"],
    "non_finite.toml": [
        ":3: pipeline.heartbeat_s: nan is not a finite number",
        ":7: drivers.cam.speed_px_s[1]: inf is not a finite number",
        ":18: readouts.r.window_ms: inf is not a finite number",
    ],
    "endpoints.toml": [
        ":5: reward.endpoint: 'localhost:5557' is not a ZeroMQ endpoint",
        "(did you mean tcp://localhost:5557?)",
        ":23: sinks.zmq.endpoint: 'tcp://127.0.0.1:notaport': port 'notaport' is not a number",
        ":28: sinks.other.endpoint: 'udp://127.0.0.1:5558': unknown transport 'udp'",
    ],
    "bad_name.toml": [
        ":2: pipeline.name: 'motion.v2\"beta' may hold only letters, digits, '_' and '-' "
        "(found '\"', '.')",
    ],
    "not_utf8.toml": [":3: not UTF-8 text (byte"],
    "deep_nesting.toml": [":4: arrays or tables nested too deeply"],
    # an unknown type does not hide the problems of the keys every component has
    "unknown_type_common.toml": [
        ':8: encoders.enc.type: unknown encoder type "dvs_poool" (did you mean "dvs_pool"?)',
        ":10: encoders.enc.buffer: 0 is below the minimum 1",
        ":11: encoders.enc.when_full: 'drop_oldets' is not one of",
        ':9: encoders.enc.inputs[0]: no component "camera" (did you mean "cam"?)',
    ],
    # relative paths resolve against this folder
    "dvs_missing_file.toml": [
        ":6: drivers.cam: no such file: ", "broken/no_such_recording.aedat4",
    ],
    "dvs_not_a_recording.toml": [
        ":5: drivers.cam: ", "dvs_not_a_recording.toml: byte 0: not a supported DVS recording",
    ],
}

#: problems that must not appear for a file (a consequence of another problem)
UNEXPECTED = {
    "dvs_missing_file.toml": ["sensor size unknown"],
    "dvs_not_a_recording.toml": ["sensor size unknown"],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_pipeline_reports_every_problem(name):
    with pytest.raises(ConfigError) as exc:
        pl.load(BROKEN / name)
    lines = [str(p) for p in exc.value.problems]
    for frag in EXPECTED[name]:
        assert any(frag in line for line in lines), f"{frag!r} not in:\n" + "\n".join(lines)
    for frag in UNEXPECTED.get(name, []):
        assert not any(frag in line for line in lines), "\n".join(lines)
    # every problem names a place
    assert all(p.path or p.line for p in exc.value.problems)


def test_an_exception_in_check_or_build_is_a_problem_not_a_traceback(monkeypatch):
    """A component whose check() or constructor raises is reported with its path and line."""
    from edgesnn.components import lookup

    enc = lookup("encoder", "dvs_pool")
    assert enc is not None

    def broken_check(self, inputs):
        raise ValueError("boom\nsecond line")

    monkeypatch.setattr(enc, "check", broken_check)
    with pytest.raises(ConfigError) as exc:
        pl.load(BROKEN / "dvs_missing_file.toml")
    lines = [str(p) for p in exc.value.problems]
    # the driver's own problem hides its dependant's check
    assert not any("encoders.enc" in line for line in lines), lines
    with pytest.raises(ConfigError) as exc:
        pl.load("demo")
    lines = [str(p) for p in exc.value.problems]
    assert any("encoders.pooled: check failed: ValueError: boom" in line
               and "second line" not in line for line in lines), lines
    monkeypatch.undo()

    def broken_init(self, id, params, ctx):
        raise FileNotFoundError(2, "No such file or directory", "/nowhere/weights.npz")

    monkeypatch.setattr(enc, "__init__", broken_init)
    with pytest.raises(ConfigError) as exc:
        pl.load("demo")
    lines = [str(p) for p in exc.value.problems]
    assert any("encoders." in line and "could not build: no such file: /nowhere/weights.npz"
               in line for line in lines), lines
    assert all(p.line for p in exc.value.problems)


def test_valid_endpoints_and_names_pass():
    from edgesnn.config.schema import check_name, check_zmq_endpoint

    for ok in ("tcp://127.0.0.1:5556", "tcp://*:5556", "tcp://0.0.0.0:1", "tcp://[::1]:65535",
               "tcp://robot.local:5556", "tcp://127.0.0.1:0", "ipc:///run/edgesnn/det",
               "inproc://det"):
        assert check_zmq_endpoint(ok) is None, ok
    for bad in ("localhost:5556", "tcp://host", "tcp://h:65536", "tcp://h:-1", "ipc://",
                "pgm://x:1", "tcp://h:5556/x"):
        assert check_zmq_endpoint(bad), bad
    assert check_name("motion_v2-beta") is None
    assert check_name("a b") and check_name("") and check_name("é")


def test_a_module_that_fails_to_import_is_named_with_what_to_install():
    """zmq_pub's module cannot import pyzmq: validate names the ImportError, not a typo."""
    code = ("import sys; sys.modules['zmq'] = None\n"  # as if pyzmq were not installed
            "from edgesnn.cli import main; sys.exit(main(['validate', 'demo']))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2
    assert ':37: sinks.zmq.type: sink type "zmq_pub" is unavailable: module ' \
        "edgesnn.sinks.zmq_pub cannot be imported (import of zmq halted" in res.stderr
    assert "pyzmq is a core dependency" in res.stderr and "unknown sink type" not in res.stderr


def test_install_hints_name_the_extra():
    from edgesnn.components import install_hint

    assert install_hint(ModuleNotFoundError("No module named 'lz4'", name="lz4")) == \
        "pip install 'edgesnn[formats]'"
    assert install_hint(ModuleNotFoundError("No module named 'zstandard'")) == \
        "pip install 'edgesnn[formats]'"
    assert "scikit-learn" not in install_hint(ModuleNotFoundError("x", name="sklearn"))
    assert install_hint(ModuleNotFoundError("x", name="sklearn")) == \
        "pip install 'edgesnn[examples]'"
    assert install_hint(ModuleNotFoundError("x", name="foo")) == "pip install foo"


def test_every_broken_file_is_covered():
    assert {p.name for p in BROKEN.glob("*.toml")} == set(EXPECTED)


def test_validate_cli_exit_codes():
    bad = subprocess.run(edgesnn_cmd("validate", str(BROKEN / "unknown_keys.toml")),
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert 'did you mean "width"' in bad.stderr and "3 problems" in bad.stderr
    good = subprocess.run(edgesnn_cmd("validate", "demo"), capture_output=True, text=True,
                          timeout=120)
    assert good.returncode == 0, good.stderr
    assert "ok" in good.stdout


SHIPPED = sorted((REPO / "pipelines").glob("*.toml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_pipelines_are_valid(path):
    cfg = pl.load(path)
    assert cfg.components


def test_shipped_pipelines_found_by_name():
    assert pl.resolve("demo").name == "demo.toml"
    with pytest.raises(ConfigError, match='did you mean "demo"'):
        pl.resolve("dmeo")


def test_overrides_apply_and_validate():
    from edgesnn.commands.run import load_with_overrides

    cfg = load_with_overrides("demo", ["sinks.zmq.endpoint=tcp://127.0.0.1:7777",
                                       "drivers.camera.speed=max", "pipeline.dt_us=500"])
    by = cfg.by_id()
    assert by["zmq"].params["endpoint"] == "tcp://127.0.0.1:7777"
    assert by["camera"].params["speed"] == "max"
    assert cfg.settings["dt_us"] == 500
    with pytest.raises(ConfigError, match="did you mean"):
        load_with_overrides("demo", ["drivers.camera.widht=3"])


def test_readme_component_reference_is_current():
    res = subprocess.run([sys.executable, str(REPO / "tools" / "gen_docs.py"), "--check"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout
