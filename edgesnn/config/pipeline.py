"""Loading and strict validation of pipeline TOML files.

A pipeline file has a `[pipeline]` table and one section per component kind, each a table of
components by id (`[drivers.cam]`, `[encoders.spikes]`, ...). Components are joined by
`inputs = [...]`. Validation reports *every* problem at once: TOML syntax, unknown keys and
component types (with "did you mean"), wrong types, missing inputs, wrong kinds of input,
cycles, and shape mismatches between connected components — each with its dotted path and,
where it can be found, the line in the file.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgesnn.components import (
    ACCEPTS,
    COMMON,
    SECTIONS,
    BuildContext,
    Component,
    available,
    lookup,
)
from edgesnn.config.schema import (
    Field,
    Schema,
    check_name,
    check_zmq_endpoint,
    did_you_mean,
    non_finite,
)
from edgesnn.errors import ConfigError, Problem

PIPELINE_SCHEMA = Schema(
    {
        "name": Field(
            str, check=check_name,
            doc="Pipeline name; part of every topic (det.<name>.<label>): letters, digits, "
            "'_' and '-'.",
        ),
        "description": Field(str, default="", doc="Free text."),
        "dt_us": Field(int, default=1000, min=1, max=1_000_000, doc="Network time step (µs)."),
        "seed": Field(int, default=0, doc="Seed for every random choice in the pipeline."),
        "heartbeat_s": Field(float, default=1.0, min=0.05, doc="Heartbeat period (s)."),
        "drain_timeout_s": Field(
            float, default=1.5, min=0.0, doc="On shutdown, time allowed to drain in-flight data."
        ),
        "lateness_us": Field(
            int, default=100, min=0, max=10_000_000,
            doc="Live sources: a step closes this long after its end on the host clock even "
            "when no later event came; events arriving later than that are counted as late.",
        ),
        "latency_budget_ms": Field(
            float, default=0.0, min=0.0,
            doc="Live sources: shed input (counted in `shed_events`, health degraded) when "
            "an encoder's batch would otherwise finish later than this after it arrived "
            "(0: off).",
        ),
        "trace": Field(
            bool, default=False,
            doc="Carry per-stage host timestamps (µs) in each detection's extra.trace.",
        ),
        "inline_job_us": Field(
            float, default=500.0, min=0.0,
            doc="A branch's encoder -> network -> readout jobs run on the event loop's thread "
            "while their running average stays under this (µs), sparing the two hand-offs to "
            "and from a worker thread; until 8 jobs with data are timed, and while the average "
            "is higher, they run in a worker (0: always in a worker).",
        ),
    }
)

HTTP_SCHEMA = Schema(
    {
        "enabled": Field(bool, default=False, doc="Serve the HTTP API and dashboard."),
        "host": Field(str, default="127.0.0.1", doc="Listen address (loopback by default)."),
        "port": Field(int, default=8765, min=0, max=65535, doc="Listen port (0: any free)."),
        "allowed_hosts": Field(
            ("list", str), default=[],
            doc="Host header names the API answers besides loopback ones (localhost, "
                "127.0.0.1, [::1]) and the listen address; guards against DNS rebinding.",
        ),
        "health_window_s": Field(
            float, default=30.0, min=0.1, max=86400.0,
            doc="/health reports degraded while data was lost, a checkpoint failed or a "
                "component stalled within this many seconds.",
        ),
        "token_env": Field(
            str, default="EDGESNN_TOKEN",
            doc="Environment variable holding the bearer token for mutating endpoints.",
        ),
        "max_connections": Field(
            int, default=256, min=1, max=100_000,
            doc="Most open HTTP connections; beyond it new ones are closed at once (counted), "
                "so idle clients cannot use up the daemon's file descriptors.",
        ),
        "header_timeout_s": Field(
            float, default=10.0, min=0.05, max=3600.0,
            doc="A connection that has not sent a complete request head this long after "
                "connecting is closed (idle and slow clients).",
        ),
        "body_timeout_s": Field(
            float, default=10.0, min=0.05, max=3600.0,
            doc="A request whose body has not fully arrived this long after its head is "
                "closed (slow POST bodies).",
        ),
        "keepalive_timeout_s": Field(
            float, default=15.0, min=0.05, max=3600.0,
            doc="An idle keep-alive connection is closed after this long (WebSockets stay).",
        ),
        "error_log_interval_s": Field(
            float, default=10.0, min=0.0, max=3600.0,
            doc="accept() failures (too many open files) and refused connections are logged "
                "at most once per this interval, with their count.",
        ),
    }
)

CHECKPOINT_SCHEMA = Schema(
    {
        "dir": Field(str, default="", doc="Checkpoint folder ('' disables checkpoints)."),
        "interval_s": Field(float, default=60.0, min=0.1, doc="Seconds between checkpoints."),
        "keep": Field(int, default=3, min=1, doc="How many checkpoints to keep."),
    }
)

REWARD_SCHEMA = Schema(
    {
        "endpoint": Field(
            str, default="", check=lambda v: check_zmq_endpoint(v) if v else None,
            doc="ZeroMQ endpoint the daemon binds for rewards ('' disables).",
        ),
        "component": Field(str, default="", doc="Network that gets them ('' every network)."),
        "curve_secret_key": Field(
            str, default="",
            doc="CURVE: the reward socket's .key_secret file (`edgesnn keys generate`; relative "
            "to the pipeline file); '' = no CURVE.",
        ),
        "curve_allowed_keys": Field(
            str, default="",
            doc="CURVE: folder of the senders' public NAME.key files allowed to send rewards.",
        ),
    }
)

TOP_KEYS = {
    "pipeline": PIPELINE_SCHEMA,
    "http": HTTP_SCHEMA,
    "checkpoint": CHECKPOINT_SCHEMA,
    "reward": REWARD_SCHEMA,
}


@dataclass
class ComponentConfig:
    """One validated component: where it is, its class, and its full parameter dict."""

    id: str
    kind: str
    section: str
    cls: type[Component]
    params: dict[str, Any]
    inputs: list[str]
    buffer: int
    when_full: str
    buffer_bytes: int = 64 << 20


@dataclass
class PipelineConfig:
    """A validated pipeline: settings plus components in topological order."""

    path: str
    name: str
    settings: dict[str, Any]
    http: dict[str, Any]
    checkpoint: dict[str, Any]
    components: list[ComponentConfig] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    def by_id(self) -> dict[str, ComponentConfig]:
        return {c.id: c for c in self.components}

    def context(self) -> BuildContext:
        return BuildContext(
            pipeline=self.name,
            dt_us=self.settings["dt_us"],
            base_dir=str(Path(self.path).parent) if self.path else ".",
            seed=self.settings["seed"],
            state_dir=self.checkpoint.get("dir") or None,
        )

    def build(self) -> dict[str, Component]:
        """Instantiate every component (no I/O happens until start())."""
        ctx = self.context()
        return {c.id: c.cls(c.id, c.params, ctx) for c in self.components}


# --- shipped pipelines ---------------------------------------------------------------------


def shipped_dir(kind: str = "pipelines") -> Path:
    """Folder of shipped pipelines or firmware profiles (source checkout or installed wheel)."""
    src = Path(__file__).resolve().parents[2] / kind
    if src.is_dir():
        return src
    from importlib import resources

    return Path(str(resources.files("edgesnn._shipped") / kind))


def resolve(name_or_path: str) -> Path:
    """A pipeline path: an existing file, or the name of a shipped pipeline (`demo`)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    fname = name_or_path if name_or_path.endswith(".toml") else name_or_path + ".toml"
    cand = shipped_dir() / fname
    if cand.is_file():
        return cand
    names = sorted(x.stem for x in shipped_dir().glob("*.toml"))
    hint = did_you_mean(p.stem, names)
    raise ConfigError(
        [Problem("", f"no such file or shipped pipeline: {name_or_path}{hint}; "
                     f"shipped: {', '.join(names)}")]
    )


# --- line lookup -----------------------------------------------------------------------------


class LineFinder:
    """Best-effort mapping from a dotted path to a line of the TOML text."""

    def __init__(self, text: str):
        self.lines = text.splitlines()

    def find(self, path: str) -> int | None:
        parts = [re.sub(r"\[\d+\]$", "", p) for p in path.split(".") if p]
        if not parts:
            return None
        # longest table header that is a prefix of the path
        for n in range(len(parts), 0, -1):
            header = ".".join(parts[:n])
            pat = re.compile(r"^\s*\[\[?\s*" + re.escape(header) + r"\s*\]\]?\s*(#.*)?$")
            for i, line in enumerate(self.lines):
                if pat.match(line):
                    if n == len(parts):
                        return i + 1
                    key = parts[n]
                    kpat = re.compile(r"^\s*\"?" + re.escape(key) + r"\"?\s*=")
                    for j in range(i + 1, len(self.lines)):
                        if re.match(r"^\s*\[", self.lines[j]):
                            break
                        if kpat.match(self.lines[j]):
                            return j + 1
                    return i + 1
        # a section only present through sub-tables ([sink.other] for "sink")
        sub = re.compile(r"^\s*\[\[?\s*" + re.escape(parts[0]) + r"\.")
        for i, line in enumerate(self.lines):
            if sub.match(line):
                return i + 1
        # a top-level key, or dotted keys written inline
        kpat = re.compile(r"^\s*\"?" + re.escape(parts[-1]) + r"\"?\s*=")
        for i, line in enumerate(self.lines):
            if kpat.match(line):
                return i + 1
        return None


# --- loading -------------------------------------------------------------------------------


#: a pipeline file is a few kilobytes; anything near this is not one
MAX_TOML_CHARS = 4_000_000


def load(path_or_name: str | os.PathLike[str]) -> PipelineConfig:
    """Read and validate a pipeline; raises ConfigError listing every problem."""
    path = resolve(str(path_or_name))
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise ConfigError([Problem("", f"not UTF-8 text (byte {e.start}): TOML files are UTF-8",
                                   line, str(path))]) from None
    return loads(text, str(path))


def loads(text: str, path: str = "") -> PipelineConfig:
    """Validate pipeline TOML text; raises ConfigError listing every problem."""
    src = path or None
    if len(text) > MAX_TOML_CHARS:
        raise ConfigError([Problem("", f"file too large ({len(text)} characters; a pipeline "
                                       f"is at most {MAX_TOML_CHARS})", None, src)])
    try:
        raw = tomllib.loads(text)
    except RecursionError:
        deep = re.search(r"[\[{]\s*[\[{]\s*[\[{]\s*[\[{]", text)  # where the nesting starts
        line = text.count("\n", 0, deep.start()) + 1 if deep else None
        raise ConfigError([Problem("", "arrays or tables nested too deeply", line, src)]) from None
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise ConfigError(
            [Problem("", f"TOML syntax error: {e}", int(m.group(1)) if m else None, src)]
        ) from None
    return loads_raw(raw, text, path)


def loads_raw(raw: dict[str, Any], text: str, path: str = "") -> PipelineConfig:
    """Validate an already parsed pipeline (`text` is used to find line numbers)."""
    finder = LineFinder(text)
    src = path or None
    problems: list[Problem] = []
    cfg = _validate(raw, path, problems)
    if problems:
        raise ConfigError(
            [Problem(p.path, p.message, p.line or finder.find(p.path), src) for p in problems]
        )
    assert cfg is not None
    return cfg


def _validate(raw: dict[str, Any], path: str, problems: list[Problem]) -> PipelineConfig | None:
    known_top = list(TOP_KEYS) + list(SECTIONS)
    for key in raw:
        if key not in known_top:
            problems.append(Problem(key, f'unknown section "{key}"' + did_you_mean(key, known_top)))
    top = {k: TOP_KEYS[k].validate(raw.get(k, {}), k, problems) for k in TOP_KEYS}
    if "pipeline" not in raw:
        problems.append(Problem("pipeline", "missing [pipeline] table (name, dt_us, ...)"))

    problems.extend(non_finite(raw))
    comps: dict[str, ComponentConfig] = {}
    seen_at: dict[str, str] = {}
    unknown_inputs: dict[str, list[str]] = {}  # inputs of components of an unknown type
    for section, kind in SECTIONS.items():
        table = raw.get(section, {})
        if not isinstance(table, dict):
            problems.append(Problem(section, "expected a table of components by id"))
            continue
        for cid, body in table.items():
            cpath = f"{section}.{cid}"
            if not isinstance(body, dict):
                problems.append(Problem(cpath, "expected a table ([section.id] with type = ...)"))
                continue
            if cid in seen_at:
                problems.append(Problem(cpath, f'id "{cid}" is already used by {seen_at[cid]}'))
                continue
            seen_at[cid] = cpath
            tname = body.get("type")
            if not isinstance(tname, str):
                problems.append(Problem(f"{cpath}.type", "missing component type (type = \"...\")"))
                continue
            cls = lookup(kind, tname)
            if cls is None:
                problems.append(Problem(f"{cpath}.type", _unknown_type(kind, tname)))
                # its own parameters are unknown, but the keys every component has are not
                common = Schema(dict(COMMON.fields), allow_extra=True).validate(
                    body, cpath, problems)
                unknown_inputs[cpath] = [i for i in common.get("inputs", [])
                                         if isinstance(i, str)]
                continue
            params = (COMMON | cls.schema).validate(body, cpath, problems)
            common = {k: params.pop(k) for k in COMMON.fields}
            comps[cid] = ComponentConfig(
                cid, kind, section, cls, params, list(common["inputs"]), common["buffer"],
                common["when_full"], common["buffer_bytes"],
            )
    if not any(c.kind == "driver" for c in comps.values()) and not any(
        "drivers" in p.path for p in problems
    ):
        problems.append(Problem("drivers", "a pipeline needs at least one driver"))

    # graph checks
    ids = list(seen_at)
    for c in comps.values():
        ipath = f"{c.section}.{c.id}.inputs"
        if c.kind == "driver" and c.inputs:
            problems.append(Problem(ipath, "drivers take no inputs"))
        if c.kind != "driver" and not c.inputs:
            allowed = " or ".join(ACCEPTS[c.kind])
            problems.append(Problem(ipath, f"missing inputs: a {c.kind} needs a {allowed} input"))
        for i, name in enumerate(c.inputs):
            if name == c.id:
                problems.append(Problem(f"{ipath}[{i}]", "a component cannot feed itself"))
            elif name not in comps:
                if name in seen_at:
                    continue  # that component already has its own error
                problems.append(
                    Problem(f"{ipath}[{i}]", f'no component "{name}"{did_you_mean(name, ids)}')
                )
            elif comps[name].kind not in ACCEPTS[c.kind]:
                problems.append(
                    Problem(
                        f"{ipath}[{i}]",
                        f'"{name}" is a {comps[name].kind}; a {c.kind} takes input from '
                        + " or ".join(ACCEPTS[c.kind]),
                    )
                )
    for cpath, inputs in unknown_inputs.items():
        for i, name in enumerate(inputs):
            if name not in seen_at:
                problems.append(Problem(f"{cpath}.inputs[{i}]",
                                        f'no component "{name}"{did_you_mean(name, ids)}'))
    order = _toposort(comps, problems)
    settings = top["pipeline"]
    name = settings.get("name") or (Path(path).stem if path else "pipeline")
    cfg = PipelineConfig(path, name, settings, top["http"], top["checkpoint"], order, raw)
    if problems or order is None:
        return cfg if not problems else None
    # shapes: build and ask each component about its inputs
    # (any exception here is a problem of that component, never a traceback: validation also
    # runs on SIGHUP inside the daemon)
    ctx = cfg.context()
    built: dict[str, Component] = {}
    for c in order:
        try:
            built[c.id] = c.cls(c.id, c.params, ctx)
        except ConfigError as e:
            problems.extend(e.problems)
        except Exception as e:  # a constructor rejecting its parameters
            problems.append(Problem(f"{c.section}.{c.id}", f"could not build: {_why(e)}"))
    failed: set[str] = set()  # components that could not be built or checked
    for c in order:
        if c.id not in built or any(i not in built for i in c.inputs):
            failed.add(c.id)
            continue
        if any(i in failed and comps[i].kind == "driver" for i in c.inputs):
            continue  # its shape depends on a driver that already has its own problem
        try:
            msgs = built[c.id].check([built[i] for i in c.inputs])
        except ConfigError as e:
            msgs = [str(p.message) for p in e.problems]
        except Exception as e:
            msgs = [f"check failed: {_why(e)}"]
        for msg in msgs:
            problems.append(Problem(f"{c.section}.{c.id}", msg))
        if msgs:
            failed.add(c.id)
    return None if problems else cfg


def _why(e: BaseException) -> str:
    """One line for an unexpected exception: a missing file as "no such file: path"."""
    if isinstance(e, FileNotFoundError):
        return f"no such file: {e.filename or e}"
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


def _unknown_type(kind: str, tname: str) -> str:
    """Why `type = tname` is unknown: a module that failed to import (and what to install),
    or a typo (with a suggestion)."""
    from edgesnn.components import unavailable_type

    missing = unavailable_type(kind, tname)
    if missing:
        return f'{kind} type "{tname}" is unavailable: {missing}'
    names = list(available(kind))
    return (f'unknown {kind} type "{tname}"{did_you_mean(tname, names)}; '
            f"available: {', '.join(names) or 'none'}")


def _toposort(
    comps: dict[str, ComponentConfig], problems: list[Problem]
) -> list[ComponentConfig]:
    state: dict[str, int] = {}
    out: list[ComponentConfig] = []
    reported: set[frozenset[str]] = set()

    def visit(cid: str, stack: list[str]) -> None:
        st = state.get(cid, 0)
        if st == 2:
            return
        if st == 1:
            cyc = stack[stack.index(cid):] + [cid]
            key = frozenset(cyc)
            if key not in reported:
                reported.add(key)
                c = comps[cid]
                problems.append(
                    Problem(f"{c.section}.{c.id}.inputs", "cycle: " + " -> ".join(reversed(cyc)))
                )
            return
        state[cid] = 1
        for i in comps[cid].inputs:
            if i in comps:
                visit(i, stack + [cid])
        state[cid] = 2
        out.append(comps[cid])

    for cid in comps:
        visit(cid, [])
    return out
