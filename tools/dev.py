#!/usr/bin/env python3
"""Set up a local virtual environment and run the demo, the tests, or any edgesnn command.

    python3 tools/dev.py demo        # set up .venv and run the demo (detections scroll by)
    python3 tools/dev.py test        # set up .venv and run the whole test suite (two workers)
    python3 tools/dev.py lint        # ruff over the repository
    python3 tools/dev.py clean-cache # delete numba's on-disk kernel caches (see README)
    python3 tools/dev.py edgesnn ARGS...   # any edgesnn command inside .venv

Needs only python3 (3.11 or newer). The environment is (re)installed when pyproject.toml or
setup.py change; set EDGESNN_VENV to use another folder.

`test` also sets up two side environments under <venv>/side/ for the deploy export tests and
names them in EDGESNN_PYNN_PYTHON / EDGESNN_LAVA_PYTHON: `pynn` (this Python with the [pynn]
extra: PyNN + brian2, numpy < 2.4; tests/deploy/test_pynn_brian2.py) and `lava` (a Python 3.10
from pyenv or PATH with the [lava] extra: lava-nc 0.10; tests/deploy/test_lava_export.py). Both
are reused while their stamp (requirements, pins, interpreter) matches. When one cannot be set up
(offline, no Python 3.10, pip fails) one line says why and those tests skip. An interpreter
already named in EDGESNN_PYNN_PYTHON / EDGESNN_LAVA_PYTHON is used as it is; EDGESNN_SIDE_ENVS=0
turns the side environments off. `test` also tries once to add the [xylo] extra (Rockpool's
XyloSim, compiled) to the project environment, for tests/deploy/test_xylo.py.

`test` runs pytest in two worker processes when two CPUs are free (pytest-xdist, whole files per
worker); EDGESNN_TEST_WORKERS=1 runs it in one, and arguments that pick the workers themselves
(-n, -p no:xdist) or a single test (path::name) are left as they are.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import venv
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("EDGESNN_VENV", REPO / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
EXTRAS = "test,formats"
SIDE = VENV / "side"
# Versions known to work with the export tests, as constraints on top of the [pynn] / [lava]
# extras; they apply on the Python they were resolved on (elsewhere the extras' ranges decide).
PYNN_PINS = ["PyNN==0.13.0", "Brian2==2.9.0", "numpy==2.3.5", "neo==0.14.6", "lazyarray==0.7.0",
             "quantities==0.16.4", "sympy==1.14.0", "mpmath==1.3.0", "Jinja2==3.1.6",
             "MarkupSafe==3.0.4", "Cython==3.3.1", "pyparsing==3.3.3"]  # fmt: skip
LAVA_PINS = ["lava-nc==0.10.0", "numpy==1.26.4", "scipy==1.15.3", "scikit-learn==1.7.2",
             "networkx==2.8.7", "asteval==0.9.33", "cloudpickle==3.1.3", "joblib==1.6.0",
             "threadpoolctl==3.8.0"]  # fmt: skip
SIDE_TIMEOUT_S = 420  # per environment: a stuck download must not hold up the test run


def say(msg: str) -> None:
    print(f"[dev] {msg}", flush=True)


def stamp() -> str:
    h = hashlib.sha256()
    for name in ("pyproject.toml", "setup.py"):
        h.update((REPO / name).read_bytes())
    h.update(EXTRAS.encode())
    return h.hexdigest()


def ensure_env() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"edgesnn needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PY.exists():
        say(f"creating virtual environment in {VENV}")
        try:
            venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        except Exception as e:  # e.g. Debian without python3-venv
            sys.exit(f"could not create a virtual environment ({e}); "
                     "install the venv module (Debian: apt-get install python3-venv)")
    marker = VENV / ".edgesnn-installed"
    if marker.exists() and marker.read_text() == stamp():
        return
    say("installing edgesnn and its dependencies (first run: a minute or two)")
    run([str(PY), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    run([str(PY), "-m", "pip", "install", "--quiet", "-e", f"{REPO}[{EXTRAS}]"])
    marker.write_text(stamp())


def ensure_optional() -> None:
    """Best effort: the extras whose packages compile from source ([xylo]: Rockpool's XyloSim,
    for tests/deploy/test_xylo.py). Tried once per pyproject version; on failure one line says
    why and those tests skip with their reason."""
    marker = VENV / ".edgesnn-optional"
    if marker.exists() and marker.read_text().split(" ", 1)[-1] == stamp():
        return
    say("installing the optional [xylo] extra (XyloSim builds with a C++ compiler; ~1 min)")
    log = VENV / "optional-install.log"
    try:
        with open(log, "w") as out:
            code = subprocess.call([str(PY), "-m", "pip", "install", "--quiet", "--no-cache-dir",
                                    "--retries", "2", "-e", f"{REPO}[{EXTRAS},xylo]"],
                                   cwd=REPO, stdout=out, stderr=subprocess.STDOUT, timeout=600,
                                   stdin=subprocess.DEVNULL)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as e:
        code, why = 1, str(e)
    else:
        why = f"pip exit {code}; see {log}"
    if code:
        say(f"optional [xylo] extra not installed ({why}); the XyloSim tests will skip")
    marker.write_text(f"{'ok' if not code else 'failed'} {stamp()}")


@dataclass
class Side:
    """A side environment: another interpreter with one extra, for the tests that run in it."""

    name: str  # folder under SIDE and the [extra]
    var: str  # the environment variable the tests read
    base: str | None  # interpreter to create it from (None: not found)
    pins: list[str]
    pin_python: str  # python_version the pins were resolved on
    check: str  # import that must work afterwards
    tests: str  # the test file that uses it (for messages)

    @property
    def dir(self) -> Path:
        return SIDE / self.name

    @property
    def python(self) -> Path:
        return self.dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _out(cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None


def python310() -> str | None:
    """A working Python 3.10 (lava-nc 0.10 needs it): pyenv's versions, then python3.10 on PATH."""
    cands: list[Path] = []
    try:
        root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
        vers = root.glob("versions/3.10*/bin/python3.10")
        key = lambda p: [int(x) for x in re.findall(r"\d+", p.parents[1].name)]  # noqa: E731
        cands += sorted(vers, key=key, reverse=True)
    except (OSError, RuntimeError):  # no home folder
        pass
    cands += [Path(p) for p in (shutil.which("python3.10"), "/usr/bin/python3.10") if p]
    for c in cands:
        r = _out([str(c), "-c", "import sys, venv; print(sys.version_info[:2] == (3, 10))"], 30)
        if r is not None and r.returncode == 0 and r.stdout.strip() == "True":
            return str(c)
    return None


def _extra(name: str) -> list[str]:
    import tomllib  # here: an older Python must still reach the version message

    doc = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return doc["project"]["optional-dependencies"][name]


def _side_stamp(side: Side) -> str:
    r = _out([side.base, "-c", "import sys; print(sys.version)"], 30) if side.base else None
    doc = {"reqs": _extra(side.name), "pins": side.pins, "pin_python": side.pin_python,
           "base": os.path.realpath(side.base or ""), "version": r.stdout if r else "",
           "check": side.check}  # fmt: skip
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _pip_error(log: str) -> str:
    """The reason in a pip log, in a few words."""
    net = ("Failed to establish a new connection", "NewConnectionError", "ConnectTimeout",
           "Read timed out", "ProxyError", "Network is unreachable")  # fmt: skip
    if any(x in log for x in net):
        return "the package index is not reachable (offline?)"
    lines = [x.strip() for x in log.splitlines() if x.strip() and not x.startswith("$ ")]
    errs = [x for x in lines if x.startswith("ERROR")]
    return (errs[:1] or lines[-1:] or ["no output"])[0][:200]


def setup_side(side: Side) -> tuple[str | None, str]:
    """(interpreter, one-line notice): reuse side.dir when its stamp matches, else (re)create it.
    Never raises: any failure becomes the notice, and the tests that need it skip."""
    skip = f"{side.tests} will skip"
    if side.base is None:
        return None, (f"{side.name}: no Python 3.10 found (pyenv's versions/3.10.*, python3.10 "
                      f"on PATH); {skip}")  # fmt: skip
    stamp_file = side.dir / ".edgesnn-side-installed"
    want = _side_stamp(side)
    if stamp_file.is_file() and stamp_file.read_text() == want:
        r = _out([str(side.python), "-c", "pass"], 30)
        if r is not None and r.returncode == 0:
            return str(side.python), f"{side.name}: {side.dir} (reused)"
    t0 = time.monotonic()
    log_path = SIDE / f"{side.name}.log"
    constraints = SIDE / f"{side.name}-constraints.txt"
    # no pip cache (HOME may be read-only), bounded retries (offline fails in seconds)
    env = {**os.environ, "PIP_NO_CACHE_DIR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           "PIP_NO_INPUT": "1"}  # fmt: skip
    steps = [[side.base, "-m", "venv", "--clear", str(side.dir)],
             [str(side.python), "-m", "pip", "install", "--quiet", "--retries", "2", "--timeout",
              "30", "-c", str(constraints), *_extra(side.name)],
             [str(side.python), "-c", side.check]]  # fmt: skip
    try:
        SIDE.mkdir(parents=True, exist_ok=True)
        stamp_file.unlink(missing_ok=True)
        constraints.write_text("".join(f"{p}; python_version == '{side.pin_python}'\n"
                                       for p in side.pins))  # fmt: skip
        with log_path.open("w") as log:
            for cmd in steps:
                log.write(f"$ {' '.join(cmd)}\n")
                log.flush()
                r = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   stdin=subprocess.DEVNULL, timeout=SIDE_TIMEOUT_S)  # fmt: skip
                if r.returncode:
                    break
        if r.returncode:
            why = _pip_error(log_path.read_text(errors="replace"))
            return None, f"{side.name}: not set up, {why} (log {log_path}); {skip}"
        stamp_file.write_text(want)
    except subprocess.TimeoutExpired:
        return None, (f"{side.name}: not set up, a step took over {SIDE_TIMEOUT_S} s (log "
                      f"{log_path}); {skip}")  # fmt: skip
    except OSError as e:
        return None, f"{side.name}: not set up, {e}; {skip}"
    return str(side.python), f"{side.name}: {side.dir} (created in {time.monotonic() - t0:.0f} s)"


def _setup_side_safe(side: Side) -> tuple[str | None, str]:
    try:
        return setup_side(side)
    except Exception as e:  # a test setup step must never stop the test run
        return None, f"{side.name}: not set up, {type(e).__name__}: {e}; {side.tests} will skip"


def side_envs() -> dict[str, str]:
    """EDGESNN_PYNN_PYTHON / EDGESNN_LAVA_PYTHON for the test run (what could be set up)."""
    if os.environ.get("EDGESNN_SIDE_ENVS", "1") == "0":
        say("side environments off (EDGESNN_SIDE_ENVS=0): the PyNN and lava export tests skip")
        return {}
    base = getattr(sys, "_base_executable", None) or sys.executable  # this Python, not a venv's
    sides = [Side("pynn", "EDGESNN_PYNN_PYTHON", base, PYNN_PINS, "3.11",
                  "import pyNN.brian2", "tests/deploy/test_pynn_brian2.py"),
             Side("lava", "EDGESNN_LAVA_PYTHON", None, LAVA_PINS, "3.10",
                  "import lava.proc.lif.process, lava.proc.dense.process",
                  "tests/deploy/test_lava_export.py")]  # fmt: skip
    sides = [s for s in sides if not os.environ.get(s.var)]  # given by the user: used as is
    if not sides:
        return {}
    for s in sides:
        if s.name == "lava":
            s.base = python310()
    if any(not (s.dir / ".edgesnn-side-installed").is_file() for s in sides if s.base):
        say("setting up the side environments for the PyNN / lava export tests in "
            f"{SIDE} (first run: a minute or two)")
    with ThreadPoolExecutor(len(sides)) as ex:
        results = list(ex.map(_setup_side_safe, sides))
    out = {}
    for s, (py, note) in zip(sides, results):
        say(note)
        if py:
            out[s.var] = py
    return out


def run(cmd: list[str]) -> None:
    code = subprocess.call(cmd, cwd=REPO)
    if code:
        sys.exit(code)


def workers(rest: list[str]) -> list[str]:
    """pytest-xdist options: one worker per CPU (at most EDGESNN_TEST_WORKERS, default 2; 1 or
    0 runs in one process), each test file whole in one worker (their fixtures start brokers
    and daemons per file). Most of the suite waits on sockets, subprocesses and compiles, so
    two workers on two cores take about half the time. Nothing is added when the arguments
    already choose (-n / -p no:xdist) or name a single test."""
    if any(a.startswith(("-n", "--numprocesses", "--dist")) or a == "no:xdist" for a in rest):
        return []
    if any("::" in a for a in rest):
        return []
    try:
        want = int(os.environ.get("EDGESNN_TEST_WORKERS", "2"))
    except ValueError:
        want = 2
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    n = min(want, cpus)
    return ["-n", str(n), "--dist", "loadfile"] if n >= 2 else []


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    what, rest = argv[0], argv[1:]
    if what == "clean-cache":
        n = 0
        for pattern in ("*.nbi", "*.nbc"):
            for f in REPO.rglob(pattern):
                if VENV not in f.parents:
                    f.unlink()
                    n += 1
        say(f"removed {n} cached kernel files")
        return 0
    ensure_env()
    if what == "demo":
        return subprocess.call([str(BIN / "edgesnn"), "demo", *rest], cwd=REPO)
    if what == "test":
        if os.environ.get("EDGESNN_SIDE_ENVS", "1") != "0":
            ensure_optional()
        env = {**os.environ, **side_envs()}
        return subprocess.call([str(PY), "-m", "pytest", *workers(rest), *rest], cwd=REPO,
                               env=env)
    if what == "lint":
        return subprocess.call([str(PY), "-m", "ruff", "check", ".", *rest], cwd=REPO)
    if what == "edgesnn":
        return subprocess.call([str(BIN / "edgesnn"), *rest], cwd=REPO)
    print(f"unknown action {what!r}; see --help", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
