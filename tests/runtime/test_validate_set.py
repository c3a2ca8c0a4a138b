"""`edgesnn validate` takes several files or a folder and checks them as one daemon's set;
`edgesnn service install DIR` writes a unit running `edgesnn run DIR`."""

from __future__ import annotations

from pathlib import Path

from conftest import REPO, activity_pipeline, free_port

from edgesnn.cli import main


def _folder(tmp_path: Path) -> Path:
    d = tmp_path / "pipelines"
    d.mkdir()
    port = free_port()
    (d / "a.toml").write_text(activity_pipeline("a", port))
    (d / "b.toml").write_text(activity_pipeline("a", port))  # same name, same endpoint
    (d / "c.toml").write_text(activity_pipeline("c", free_port()))
    (d / "notes.txt").write_text("not a pipeline")
    return d


def test_validate_a_folder_checks_the_set(tmp_path, capsys):
    d = _folder(tmp_path)
    assert main(["validate", str(d)]) == 2
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{d / 'a.toml'}: ok (pipeline 'a': 1 driver, 1 encoder, 1 readout, 1 sink)",
        f"{d / 'c.toml'}: ok (pipeline 'c': 1 driver, 1 encoder, 1 readout, 1 sink)"]
    assert f"{d / 'b.toml'}: invalid (2 problems)" in err
    assert f"pipeline name 'a' is also used by {d / 'a.toml'}" in err
    assert f"sinks.zmq.endpoint of {d / 'a.toml'}" in err
    (d / "b.toml").unlink()
    assert main(["validate", str(d)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_validate_several_files_one_line_each(tmp_path, capsys):
    d = _folder(tmp_path)
    broken = REPO / "tests" / "runtime" / "broken" / "unknown_keys.toml"
    args = [str(d / "a.toml"), str(d / "c.toml"), str(broken), str(d / "a.toml")]
    assert main(["validate", *args]) == 2
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 2 and f"{broken}: invalid (3 problems)" in err
    # files valid alone but colliding as a set; --set applies to each
    assert main(["validate", str(d / "a.toml"), str(d / "b.toml")]) == 2
    assert f"{d / 'b.toml'}: invalid" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["validate", str(empty)]) == 2
    assert "no pipeline files" in capsys.readouterr().err
    assert main(["validate", str(d / "c.toml"), "demo"]) == 0


def test_service_install_a_folder(tmp_path, capsys):
    d = _folder(tmp_path)
    assert main(["service", "install", str(d)]) == 2  # a broken set is never installed
    out, err = capsys.readouterr()
    assert out == "" and "pipeline name 'a' is also used by" in err
    (d / "b.toml").unlink()
    assert main(["service", "install", str(d), "--set", "pipeline.heartbeat_s=2"]) == 0
    unit = capsys.readouterr().out.splitlines()
    start = next(ln for ln in unit if ln.startswith("ExecStart="))
    assert start.endswith(f" run {d} --set pipeline.heartbeat_s=2"), start
    assert f"Description=edgesnn pipelines in {d}" in unit
    assert "Type=notify" in unit and "ExecReload=/bin/kill -HUP $MAINPID" in unit
