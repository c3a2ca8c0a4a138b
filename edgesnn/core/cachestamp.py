"""Numba cache entries of the core and learning kernels are stamped with all their sources.

numba checks a cached function against its own source file only, yet the cached machine code
of a kernel contains every function it calls: `kernels._advance` holds each neuron model's
update (`edgesnn/core/neurons/*.py`, through the dispatch generated from the registry) and the
learning kernels. Editing or adding a model module would then leave a stale `_advance` in the
cache. `install()` (run when this module is imported, first thing in `edgesnn.core`, before
any kernel is defined) makes numba stamp the cache of every kernel of `edgesnn.core` and
`edgesnn.learning` with a digest of all those source files as well, so any change there
recompiles them; other kernels are unaffected.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]  # the edgesnn package
_PACKAGES = ("core", "learning")
_COVERED = tuple(f"edgesnn.{p}." for p in _PACKAGES)


def kernel_sources() -> list[Path]:
    """The sources of edgesnn.core and edgesnn.learning that define kernels (import numba) or
    the constants they fold (the layouts)."""
    out = []
    for pkg in _PACKAGES:
        for f in sorted((_ROOT / pkg).rglob("*.py")):
            try:
                data = f.read_bytes()
            except OSError:  # pragma: no cover - a file removed meanwhile
                continue
            if f.name == "layout.py" or b"from numba" in data or b"import numba" in data:
                out.append(f)
    return out


@cache
def source_digest() -> str:
    """sha256 of `kernel_sources()` (names and contents), once per process."""
    h = hashlib.sha256()
    for f in kernel_sources():
        h.update(str(f.relative_to(_ROOT)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _locators() -> list[type] | None:
    try:
        from numba.core import caching
    except ImportError:  # pragma: no cover
        return None
    names = ("UserProvidedCacheLocator", "InTreeCacheLocator", "UserWideCacheLocator")
    bases = [getattr(caching, n, None) for n in names]
    if not all(isinstance(b, type) for b in bases):  # pragma: no cover - other numba versions
        return None

    def make(base: type) -> type:
        class Locator(base):  # type: ignore[misc, valid-type]
            """`base`, stamped with `source_digest()` too, for edgesnn.core/learning kernels."""

            def get_source_stamp(self) -> Any:
                return (super().get_source_stamp(), source_digest())

            @classmethod
            def from_function(cls, py_func: Any, py_file: str) -> Any:
                if not str(getattr(py_func, "__module__", "")).startswith(_COVERED):
                    return None
                return super().from_function(py_func, py_file)

        Locator.__name__ = Locator.__qualname__ = f"EdgesnnTree{base.__name__}"
        return Locator

    return [make(b) for b in bases]


def install() -> bool:
    """Put the stamped locators first in numba's list (once); False when numba lacks the hook."""
    try:
        from numba.core.caching import CacheImpl
    except ImportError:  # pragma: no cover - other numba versions
        return False
    current = CacheImpl._locator_classes
    if any(c.__name__.startswith("EdgesnnTree") for c in current):
        return True
    mine = _locators()
    if mine is None:  # pragma: no cover
        return False
    current[0:0] = mine
    return True


install()
