"""Cached core kernels are stamped with every kernel source, so editing a model recompiles."""

from __future__ import annotations

from numba import njit

from edgesnn.core import cachestamp
from edgesnn.core import kernels as K
from edgesnn.core import neurons as N
from edgesnn.learning import kernels as LK


def _locator(dispatcher):  # noqa: ANN001, ANN202
    return dispatcher._cache._impl._locator


def test_core_and_learning_kernels_carry_the_source_digest() -> None:
    for fn in (K._advance, K.step_f32, N.update_layer, N.REGISTRY["adex"].update, LK.decayed):
        loc = _locator(fn)
        assert type(loc).__name__.startswith("EdgesnnTree"), fn
        own, digest = loc.get_source_stamp()
        assert digest == cachestamp.source_digest() and own  # numba's own stamp is kept


def test_other_kernels_keep_numba_stamps() -> None:
    @njit(cache=True)
    def plain(x):  # noqa: ANN001, ANN202
        return x + 1

    assert not type(_locator(plain)).__name__.startswith("EdgesnnTree")
    assert cachestamp.install()  # idempotent


def test_digest_covers_every_kernel_source() -> None:
    import inspect
    from pathlib import Path

    files = set(cachestamp.kernel_sources())
    for m in N.REGISTRY.values():
        if m.update is not None:
            assert Path(inspect.getfile(m.update.py_func)).resolve() in files, m.name
    for mod in (K, N, LK):
        assert Path(inspect.getfile(mod)).resolve() in files
    assert any(f.name == "layout.py" for f in files)
    assert not any(f.name == "spec.py" for f in files)  # no kernels there: no recompiles
