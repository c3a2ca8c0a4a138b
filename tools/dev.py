#!/usr/bin/env python3
"""Set up a local virtual environment and run the demo, the tests, or any edgesnn command.

    python3 tools/dev.py demo        # set up .venv and run the demo (detections scroll by)
    python3 tools/dev.py test        # set up .venv and run the whole test suite
    python3 tools/dev.py lint        # ruff over the repository
    python3 tools/dev.py clean-cache # delete numba's on-disk kernel caches (see README)
    python3 tools/dev.py edgesnn ARGS...   # any edgesnn command inside .venv

Needs only python3 (3.11 or newer). The environment is (re)installed when pyproject.toml or
setup.py change; set EDGESNN_VENV to use another folder.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("EDGESNN_VENV", REPO / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
EXTRAS = "test,formats"


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


def run(cmd: list[str]) -> None:
    code = subprocess.call(cmd, cwd=REPO)
    if code:
        sys.exit(code)


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
        return subprocess.call([str(PY), "-m", "pytest", *rest], cwd=REPO)
    if what == "lint":
        return subprocess.call([str(PY), "-m", "ruff", "check", ".", *rest], cwd=REPO)
    if what == "edgesnn":
        return subprocess.call([str(BIN / "edgesnn"), *rest], cwd=REPO)
    print(f"unknown action {what!r}; see --help", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
