"""The pipeline files of a daemon that runs several: discovery, loading, cross-file checks.

`edgesnn run a.toml b.toml` names files (or shipped pipelines); `edgesnn run DIR/` takes every
`*.toml` in the folder, sorted, again on each SIGHUP (a new file starts, a removed one stops).
Each file is validated on its own, exactly as `edgesnn validate` does, and then the set as a
whole (`check_set`):

- pipeline names are unique: they address the HTTP API and are part of every topic;
- no two pipelines claim the same exclusive resource (`claims`): what each component declares
  through its `Component.claims` hook (the endpoint a `zmq_pub` sink binds, a UDP port a driver
  listens on, standard input, a Zenoh `listen` endpoint, an explicit MQTT `client_id` on one
  broker), a driver's serial device, `[reward] endpoint`, the checkpoint folder and the HTTP
  port; TCP and UDP ports meet across kinds (a ZeroMQ endpoint against a Zenoh listener);
- the pipelines that enable `[http]` agree on it: one daemon serves one HTTP API.

Every problem names both files.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgesnn.config.pipeline import REWARD_SCHEMA, LineFinder, PipelineConfig
from edgesnn.errors import ConfigError, Problem

_WILDCARD = {"*", "0.0.0.0", "::", "[::]", ""}
_LOOPBACK = {"localhost": "127.0.0.1", "[::1]": "::1"}


@dataclass
class Loaded:
    """One pipeline file as read now: its bytes' digest and the config, or why it is invalid."""

    path: Path
    digest: str
    cfg: PipelineConfig | None = None
    error: ConfigError | None = None


def expand(args: list[str]) -> tuple[list[Path], list[Path]]:
    """(files, folders) named on the command line; folders are listed again on each reload."""
    from edgesnn.config import pipeline as pl

    files: list[Path] = []
    folders: list[Path] = []
    problems: list[Problem] = []
    for a in args:
        p = Path(a)
        if p.is_dir():
            folders.append(p.resolve())
            continue
        try:
            files.append(pl.resolve(a).resolve())
        except ConfigError as e:
            problems.extend(e.problems)
    if problems:
        raise ConfigError(problems)
    return files, folders


def listing(files: list[Path], folders: list[Path]) -> list[Path]:
    """Every pipeline file now: the named files, then each folder's `*.toml` (sorted), once."""
    out = list(dict.fromkeys(files))
    for d in folders:
        try:
            found = sorted(p.resolve() for p in d.glob("*.toml") if p.is_file())
        except OSError:
            found = []
        out += [p for p in found if p not in out]
    return out


def load(path: Path, overrides: list[str]) -> Loaded:
    """Read and validate one file (after `--set` overrides); never raises."""
    from edgesnn.config.overrides import load_with_overrides

    try:
        data = path.read_bytes()
    except OSError as e:
        return Loaded(path, "", error=ConfigError([Problem("", f"cannot read: {e.strerror or e}",
                                                           None, str(path))]))
    loaded = Loaded(path, hashlib.sha256(data).hexdigest())
    try:
        loaded.cfg = load_with_overrides(str(path), overrides)
    except ConfigError as e:
        loaded.error = e
    except Exception as e:  # validation must never take a running daemon down
        loaded.error = ConfigError([Problem("", f"cannot load: {type(e).__name__}: {e}",
                                            None, str(path))])
    return loaded


# --- claims on exclusive resources ----------------------------------------------------------

Key = tuple[str, str, str]  # (protocol, host or path, port or "")


def zmq_key(endpoint: str) -> Key | None:
    """tcp://HOST:PORT and ipc://PATH as claims; ephemeral ports and other transports: None."""
    scheme, sep, rest = endpoint.partition("://")
    if not sep:
        return None
    if scheme == "ipc":
        return ("ipc", os.path.abspath(rest), "")
    if scheme != "tcp":
        return None
    host, _, port = rest.rpartition(":")
    if not port.isdigit() or int(port) == 0:  # tcp://h:* and tcp://h:! are any free port
        return None
    if ";" in host:  # tcp://source;dest: the bind side is the last one
        host = host.rsplit(";", 1)[1]
    return ("tcp", _LOOPBACK.get(host.lower(), host.lower()), port)


def _host_key(proto: str, host: str, port: int) -> Key | None:
    if not port:
        return None
    host = host.lower()
    return (proto, _LOOPBACK.get(host, host), str(port))


def claims(cfg: PipelineConfig) -> list[tuple[Key, str, str]]:
    """(resource, TOML path, what) for each exclusive resource the pipeline takes."""
    out: list[tuple[Key, str, str]] = []
    base = Path(cfg.path).parent if cfg.path else Path(".")
    for c in cfg.components:
        where = f"{c.section}.{c.id}"
        p = c.params
        if c.kind == "driver" and isinstance(p.get("port"), str) and p["port"]:
            dev = os.path.realpath(p["port"])  # a driver's string `port` is a serial device
            out.append((("serial", dev, ""), f"{where}.port", f"serial device {p['port']}"))
        hook = getattr(c.cls, "claims", None)
        if callable(hook):  # what the component itself declares (Component.claims)
            for key, param, what in hook(p, str(base)):
                key = (key[0], _LOOPBACK.get(key[1].lower(), key[1].lower()), key[2]) \
                    if key[0] in ("tcp", "udp") else key
                out.append((key, f"{where}.{param}", what))
    reward = REWARD_SCHEMA.validate(cfg.raw.get("reward", {}), "reward", [])
    if reward.get("endpoint"):
        key = zmq_key(reward["endpoint"])
        if key:
            out.append((key, "reward.endpoint", reward["endpoint"]))
    if cfg.checkpoint.get("dir"):
        d = Path(cfg.checkpoint["dir"])
        d = d if d.is_absolute() else base / d
        out.append((("dir", os.path.realpath(d), ""), "checkpoint.dir",
                    f"checkpoint folder {cfg.checkpoint['dir']}"))
    if cfg.http.get("enabled"):
        key = _host_key("tcp", str(cfg.http.get("host", "")), int(cfg.http.get("port", 0)))
        if key:
            out.append((key, "http.port", f"HTTP API {cfg.http['host']}:{cfg.http['port']}"))
    return out


def collide(a: Key, b: Key) -> bool:
    """Same resource: same protocol and port, and the same host or a wildcard on either side."""
    if a[0] != b[0] or a[2] != b[2]:
        return False
    if a[0] in ("tcp", "udp"):
        return a[1] == b[1] or a[1] in _WILDCARD or b[1] in _WILDCARD
    return a[1] == b[1]


def _problem(cfg: PipelineConfig, path: str, message: str) -> Problem:
    line = None
    if cfg.path:
        try:
            line = LineFinder(Path(cfg.path).read_text(encoding="utf-8")).find(path)
        except (OSError, UnicodeDecodeError):
            line = None
    return Problem(path, message, line, cfg.path or None)


def check_set(cfgs: Sequence[PipelineConfig], fixed: Sequence[PipelineConfig] = ()
              ) -> list[Problem]:
    """Problems of `cfgs` as one daemon: each against the others and against `fixed` (the
    pipelines already running that stay); every problem names both files."""
    problems: list[Problem] = []
    others: list[PipelineConfig] = list(fixed)
    http_from: PipelineConfig | None = next((c for c in fixed if c.http.get("enabled")), None)
    for cfg in cfgs:
        bad = False
        for o in others:
            if o.name == cfg.name:
                problems.append(_problem(cfg, "pipeline.name",
                                         f"pipeline name {cfg.name!r} is also used by {o.path}; "
                                         "names must be unique within a daemon"))
                bad = True
        taken = [(k, o, p) for o in others for k, p, _ in claims(o)]
        for key, tpath, what in claims(cfg):
            for k2, o, p2 in taken:
                # the shared HTTP API is one socket: its settings are compared below
                if collide(key, k2) and not (p2 == "http.port" and tpath == "http.port"):
                    problems.append(_problem(
                        cfg, tpath, f"{what} is also claimed by {p2} of {o.path} (pipeline "
                                    f"{o.name!r}); each pipeline needs its own"))
                    bad = True
                    break
        if cfg.http.get("enabled"):
            if http_from is None:
                http_from = cfg
            else:
                diff = [k for k in sorted(set(cfg.http) | set(http_from.http))
                        if cfg.http.get(k) != http_from.http.get(k)]
                if diff:
                    k = diff[0]
                    problems.append(_problem(
                        cfg, f"http.{k}", f"[http] {k} = {cfg.http.get(k)!r} differs from "
                        f"{http_from.http.get(k)!r} in {http_from.path}: the pipelines of one "
                        "daemon share one HTTP API"))
                    bad = True
        if not bad:
            others.append(cfg)
    return problems


def http_settings(cfgs: Sequence[PipelineConfig]) -> dict[str, Any] | None:
    """The shared [http] table: that of the pipelines enabling it (checked equal), else None."""
    for c in cfgs:
        if c.http.get("enabled"):
            return dict(c.http)
    return None


_zmq_key = zmq_key  # the former private name
