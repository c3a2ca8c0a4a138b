"""The decay lookup of the learning kernels against plain exp: every gap, table sizes from none
to the largest, both state precisions, including the exp fallback beyond the table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgesnn.learning.kernels import _decay_factor, _decay_table, _fill_current


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("size", [0, 1, 2, 3, 5, 8, 17, 127, 128, 1000])
@pytest.mark.parametrize("tau_steps", [0.5, 20.0, 1000.0])
def test_decay_factor_equals_exp(dtype, size, tau_steps):
    lam = -1.0 / tau_steps
    fs = np.full(size + 3, np.nan, dtype)
    kb = _decay_table(fs, 2, size, lam)
    if size < 2:
        assert kb == -1
    else:
        assert 2 << kb <= size and kb <= 6
        assert np.isnan(fs[: 2]).all() and np.isnan(fs[2 + (2 << kb) :]).all()
    rtol = 1e-13 if dtype == np.float64 else 3e-7
    for k in range(-2, 5000):
        want = math.exp(k * lam) if k > 0 else 1.0
        got = _decay_factor(fs, 2, kb, k, lam)
        if want < 1e-30:
            assert got == 0.0 or abs(got - want) <= 1e-30
        else:
            assert abs(got - want) <= rtol * want, (k, got, want)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fill_current_equals_lazy_decay(dtype):
    rng = np.random.default_rng(5)
    n, t, lam = 300, 9000, -1.0 / 20.0
    x = rng.uniform(0.0, 3.0, n).astype(dtype)
    stamps = np.concatenate([[t, t + 1, 0, t - 1], rng.integers(t - 6000, t, n - 4)])
    fs = np.zeros(n + n + 128, dtype)
    fs[:n] = x
    ii = stamps.astype(np.int64)
    _fill_current(fs, ii, 0, 0, n, t, lam, n, 2 * n, 128)
    want = np.array([float(x[i]) if stamps[i] >= t else x[i] * math.exp((t - stamps[i]) * lam)
                     for i in range(n)])
    rtol = 1e-13 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(fs[n : 2 * n], want, rtol=rtol, atol=1e-29)
