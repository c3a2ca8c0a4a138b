"""Where numba keeps compiled kernels, and whether a pipeline's kernels are in that cache yet.

Every kernel is `cache=True`. numba looks for a writable folder beside the source
(`__pycache__`) and then in the user's cache (`$XDG_CACHE_HOME` or `~/.cache`); when it finds
neither -- a root-owned install run by a service account without a writable HOME -- it raises
`RuntimeError: cannot cache function ...: no locator available` as the first kernel module is
imported. `configure()` runs before numba is imported and, only when numba's own choice would
fail, points `NUMBA_CACHE_DIR` at a writable folder (`$CACHE_DIRECTORY` from systemd,
`$XDG_CACHE_HOME/edgesnn`, `~/.cache/edgesnn`, then a private folder in the temp dir), saying
so once. When no folder at all is writable, caching is switched off (every start compiles).

The warm-start record: after a pipeline's kernels have been compiled (by `edgesnn warmup` or a
daemon run), `remember()` writes which numba functions and signatures it used beside the
cache; `cold_kernels()` reads that record back against numba's own cache indexes, so a daemon
knows *before* building anything whether this start will compile.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import logging
import os
import stat
import sys
import tempfile
from collections.abc import Iterable, MutableMapping
from pathlib import Path
from typing import Any

log = logging.getLogger("edgesnn.kernelcache")

#: packages whose numba kernels the runtime compiles
PACKAGES = ("edgesnn", "edgesnn_drivers")


def _writable(path: Path) -> bool:
    """True when `path` exists or can be created and a file can be written in it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


def _package_dirs() -> list[Path]:
    """Source folders of the packages holding kernels (found without importing them)."""
    import importlib.util

    out = []
    for name in PACKAGES:
        with contextlib.suppress(ImportError, ValueError):
            spec = importlib.util.find_spec(name)
            if spec is not None and spec.submodule_search_locations:
                out.extend(Path(p) for p in spec.submodule_search_locations)
    return out


def _in_tree_ok() -> bool:
    """Would numba's in-tree locator (a `__pycache__` beside each source file) work?"""
    dirs = _package_dirs()
    if not dirs:
        return False
    for d in dirs:
        # the top folder and one kernel folder stand for the rest (same owner and mode)
        for sub in (d, *(p for p in (d / "core", d / "dvs") if p.is_dir())):
            if not _writable(sub / "__pycache__"):
                return False
    return True


def _user_cache_home(env: MutableMapping[str, str]) -> Path | None:
    xdg = env.get("XDG_CACHE_HOME", "")
    if xdg:
        return Path(xdg)
    home = env.get("HOME") or os.path.expanduser("~")
    return Path(home) / ".cache" if home and home != "~" else None


def _private_tmp() -> Path | None:
    """A folder only this user can write, in the temp dir (reused across runs when safe)."""
    base = Path(tempfile.gettempdir()) / f"edgesnn-numba-{os.getuid()}"
    with contextlib.suppress(OSError):
        base.mkdir(mode=0o700, exist_ok=True)
        st = base.lstat()
        # someone else's (or a symlink, or group/world writable) folder must not be trusted:
        # the cache holds pickles that numba loads
        if (stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()
                and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
                and _writable(base)):
            return base
    with contextlib.suppress(OSError):
        return Path(tempfile.mkdtemp(prefix="edgesnn-numba-"))
    return None


def _apply(path: str, env: MutableMapping[str, str]) -> None:
    env["NUMBA_CACHE_DIR"] = path
    numba = sys.modules.get("numba")
    if numba is not None:  # already imported: numba reads config.CACHE_DIR per decoration
        numba.config.CACHE_DIR = path


def _disable_caching() -> None:
    from numba.core.dispatcher import Dispatcher

    Dispatcher.enable_caching = lambda self: None  # type: ignore[method-assign]


def configure(env: MutableMapping[str, str] | None = None) -> str | None:
    """Give numba a writable kernel cache; returns the one warning to show, or None.

    Call before the first kernel module is imported (the CLI does it first thing). Leaves
    numba's own choice alone when it works; sets `NUMBA_CACHE_DIR` (in `env`, default
    os.environ) to a fallback folder when it would not.
    """
    env = os.environ if env is None else env
    given = env.get("NUMBA_CACHE_DIR", "")
    if given:
        if _writable(Path(given)):
            return None
        why = f"NUMBA_CACHE_DIR={given} is not writable"
    else:
        if _in_tree_ok():
            return None
        home = _user_cache_home(env)
        if home is not None and _writable(home / "numba"):
            return None
        why = (f"neither the package folder nor {home / 'numba' if home else 'a home folder'} "
               "is writable")
    candidates: list[Path] = []
    for var in ("CACHE_DIRECTORY",):  # systemd's CacheDirectory= (colon-separated list)
        first = env.get(var, "").split(":")[0]
        if first:
            candidates.append(Path(first) / "numba")
    home = _user_cache_home(env)
    if home is not None:
        candidates.append(home / "edgesnn")
    for c in candidates:
        if str(c) != given and _writable(c):
            _apply(str(c), env)
            return f"{why}; caching compiled kernels in {c} (set NUMBA_CACHE_DIR to choose)"
    tmp = _private_tmp()
    if tmp is not None:
        _apply(str(tmp), env)
        return f"{why}; caching compiled kernels in {tmp} (set NUMBA_CACHE_DIR to choose)"
    env.pop("NUMBA_CACHE_DIR", None)
    _disable_caching()
    return f"{why} and no temporary folder is writable: kernels are compiled on every start"


# --- warm-start record ---------------------------------------------------------------------


def _dispatchers() -> Iterable[tuple[str, str, Any]]:
    """(module, name, dispatcher) of every cached numba function in loaded edgesnn modules."""
    try:
        from numba.core.dispatcher import Dispatcher
    except ImportError:  # pragma: no cover - numba is a dependency
        return
    for mname, mod in list(sys.modules.items()):
        if mod is None or mname.split(".")[0] not in PACKAGES:
            continue
        for name, obj in list(vars(mod).items()):
            if (isinstance(obj, Dispatcher) and getattr(obj, "__module__", None) == mname
                    and getattr(obj, "_cache", None) is not None
                    and type(obj._cache).__name__ != "NullCache"):
                yield mname, name, obj


def compiled_signatures() -> dict[str, list[str]]:
    """'module:function' -> signatures compiled (or loaded) in this process so far."""
    out = {}
    for mname, name, d in _dispatchers():
        sigs = sorted(str(s) for s in d.signatures)
        if sigs:
            out[f"{mname}:{name}"] = sigs
    return out


def _record_dir() -> Path | None:
    """Where records go: numba's cache folder for the core kernels (wherever numba put it)."""
    try:
        from edgesnn.core import kernels

        return Path(kernels.run_kernel._cache._cache_path)
    except (ImportError, AttributeError):  # pragma: no cover
        return None


def pipeline_key(cfg: Any) -> str:
    """A short key naming what a pipeline compiles: its name and component types."""
    parts = [cfg.name] + sorted(f"{c.kind}:{c.cls.type_name}" for c in cfg.components)
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:16]


def _record_path(cfg: Any) -> Path | None:
    d = _record_dir()
    return None if d is None else d / f"edgesnn-warm-{pipeline_key(cfg)}.json"


def remember(cfg: Any) -> None:
    """Record the kernels this process has compiled for `cfg` (best effort, atomic)."""
    path = _record_path(cfg)
    if path is None:
        return
    sigs = compiled_signatures()  # may be empty: a pipeline without kernels is warm at once
    with contextlib.suppress(OSError):
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"pipeline": cfg.name, "kernels": sigs}, indent=0))
        os.replace(tmp, path)


def _cached_signatures(dispatcher: Any) -> set[str] | None:
    """Signatures in numba's on-disk index of `dispatcher` (empty when missing or stale)."""
    try:
        index = dispatcher._cache._cache_file._load_index()
    except AttributeError:  # pragma: no cover - other numba versions
        return None
    return {str(key[0]) for key in index}


def _core_guess(cfg: Any) -> list[str] | None:
    """Without a record: the SNN core's kernels (the long compile) that have no cached
    signature at all; None when the pipeline has an SNN and nothing can be read."""
    if not any(c.kind == "network" for c in cfg.components):
        return []  # no SNN: only small kernels, compiled in a moment
    try:
        from edgesnn.core import kernels as K
    except ImportError:  # pragma: no cover
        return None
    # a start compiles the batch kernel; the streaming step kernel only when already cached
    cold = []
    batch = _cached_signatures(K.run_kernel)
    if batch is None:
        return None
    if not batch:
        cold.append("edgesnn.core.kernels:run_kernel")
    return cold


def cold_kernels(cfg: Any) -> list[str] | None:
    """Kernels `cfg` needs that are not in the on-disk cache (empty: a warm start); None when
    nothing is known. Without a record of this pipeline (it never ran or was warmed up with
    this cache) the SNN core's kernels stand for the rest."""
    path = _record_path(cfg)
    if path is None:
        return None
    try:
        rec = json.loads(path.read_text())
        kernels: dict[str, list[str]] = rec["kernels"]
    except (OSError, ValueError, KeyError, TypeError):
        return _core_guess(cfg)
    cold = []
    for qual, sigs in kernels.items():
        mname, _, name = qual.partition(":")
        try:
            d = getattr(importlib.import_module(mname), name)
        except (ImportError, AttributeError):
            cold.append(qual)  # renamed or removed since: the record is out of date
            continue
        have = _cached_signatures(d)
        if have is not None and not set(sigs) <= have:
            cold.append(qual)
    return cold


def is_cold(cfg: Any) -> bool:
    """Will starting `cfg` compile kernels? (True when unknown: better said than silent.)"""
    cold = cold_kernels(cfg)
    return cold is None or bool(cold)
