"""Pipelines of one daemon are checked as a set before anything starts: unique names, no two
claiming the same socket, port, device or folder, one HTTP API; every problem names both files."""

from __future__ import annotations

import argparse

import pytest
from conftest import activity_pipeline, free_port

from edgesnn.commands.run import run_several
from edgesnn.config import pipeline as pl
from edgesnn.runtime import pipeset

UDP = """
[pipeline]
name = "{name}"

[drivers.cam]
type = "dvs_udp"
host = "{host}"
port = {port}
sensor = [32, 32]

[encoders.enc]
type = "dvs_pool"
inputs = ["cam"]
sensor = [32, 32]
grid = [1, 1]
polarity = "merge"

[readouts.r]
type = "spike_count"
inputs = ["enc"]
labels = ["a"]

[sinks.out]
type = "stdout"
inputs = ["r"]
{extra}"""


def _run(*paths, restart=(0.5, 60.0)) -> int:
    return run_several(argparse.Namespace(pipelines=[str(p) for p in paths], set=[],
                                          restart_min_s=restart[0], restart_max_s=restart[1]))


def _write(tmp_path, name: str, text: str):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_duplicate_names_are_refused_naming_both_files(tmp_path, capsys):
    a = _write(tmp_path, "a.toml", activity_pipeline("same", free_port()))
    b = _write(tmp_path, "b.toml", activity_pipeline("same", free_port()))
    assert _run(a, b) == 2
    err = capsys.readouterr().err
    assert f"{b}:3: pipeline.name: pipeline name 'same' is also used by {a}" in err, err
    assert "names must be unique" in err


def test_same_zmq_endpoint_is_refused_before_start(tmp_path, capsys):
    port = free_port()
    a = _write(tmp_path, "a.toml", activity_pipeline("a", port))
    b = _write(tmp_path, "b.toml", activity_pipeline("b", port))
    assert _run(a, b) == 2
    err = capsys.readouterr().err
    assert (f"{b}:26: sinks.zmq.endpoint: tcp://127.0.0.1:{port} is also claimed by "
            f"sinks.zmq.endpoint of {a} (pipeline 'a')") in err, err


def test_an_invalid_file_of_the_set_is_named(tmp_path, capsys):
    a = _write(tmp_path, "a.toml", activity_pipeline("a", free_port()))
    b = _write(tmp_path, "b.toml", activity_pipeline("b", free_port()).replace("window_ms",
                                                                                "windw_ms"))
    assert _run(a, b) == 2
    err = capsys.readouterr().err
    assert f"{b}: invalid (1 problem)" in err and 'unknown key "windw_ms"' in err, err
    assert f"{a}:" not in err


def test_a_folder_without_pipelines_is_an_error(tmp_path, capsys):
    (tmp_path / "README").write_text("no pipelines here")
    assert _run(tmp_path) == 2
    assert "no pipeline files (*.toml)" in capsys.readouterr().err


def test_http_tables_must_agree_and_not_collide(tmp_path, capsys):
    http = free_port()
    a = _write(tmp_path, "a.toml", activity_pipeline("a", free_port())
               + f"\n[http]\nenabled = true\nport = {http}\n")
    b = _write(tmp_path, "b.toml", activity_pipeline("b", free_port())
               + f"\n[http]\nenabled = true\nport = {http + 1}\n")
    assert _run(a, b) == 2
    err = capsys.readouterr().err
    assert f"http.port: [http] port = {http + 1} differs from {http} in {a}" in err, err
    c = _write(tmp_path, "c.toml", activity_pipeline("c", http))  # zmq on a's HTTP port
    assert _run(a, c) == 2
    err = capsys.readouterr().err
    assert f"is also claimed by http.port of {a}" in err, err


def _cfg(tmp_path, name: str, text: str):
    return pl.load(str(_write(tmp_path, f"{name}.toml", text)))


def test_claims_udp_ports_checkpoint_folders_and_wildcards(tmp_path):
    port = free_port()
    a = _cfg(tmp_path, "a", UDP.format(name="a", host="127.0.0.1", port=port, extra=""))
    b = _cfg(tmp_path, "b", UDP.format(name="b", host="0.0.0.0", port=port, extra=""))
    c = _cfg(tmp_path, "c", UDP.format(name="c", host="127.0.0.1", port=free_port(),
                                       extra='[checkpoint]\ndir = "state"\n'))
    d = _cfg(tmp_path, "d", UDP.format(name="d", host="127.0.0.1", port=0,
                                       extra='[checkpoint]\ndir = "./state/"\n'))
    e = _cfg(tmp_path, "e", UDP.format(name="e", host="127.0.0.1", port=0, extra=""))
    problems = pipeset.check_set([a, b, c, d, e])
    text = "\n".join(map(str, problems))
    assert len(problems) == 2, text
    assert f"udp 0.0.0.0:{port} is also claimed by drivers.cam.port of {a.path}" in text
    assert f"checkpoint folder ./state/ is also claimed by checkpoint.dir of {c.path}" in text
    # port 0 (any free port) never collides; a different host on the same port does not either
    f = _cfg(tmp_path, "f", UDP.format(name="f", host="127.0.0.2", port=port, extra=""))
    assert pipeset.check_set([a, f]) == []


@pytest.mark.parametrize(("one", "two", "same"), [
    ("tcp://127.0.0.1:5556", "tcp://localhost:5556", True),
    ("tcp://*:5556", "tcp://127.0.0.1:5556", True),
    ("tcp://127.0.0.1:5556", "tcp://127.0.0.1:5557", False),
    ("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", False),
    ("ipc:///tmp/edgesnn-x", "ipc:///tmp/edgesnn-x", True),
])
def test_zmq_endpoint_collisions(one, two, same):
    k1, k2 = pipeset._zmq_key(one), pipeset._zmq_key(two)
    assert (k1 is not None and k2 is not None and pipeset.collide(k1, k2)) is same
