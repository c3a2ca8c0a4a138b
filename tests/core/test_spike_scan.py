"""The spike scan of the LIF family (`_base.scan_mask`, with its vector compare of whole
64-neuron blocks) against a plain loop: the same spikes in the same order, the same resets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgesnn.core.neurons._base import scan_mask


def _plain(v: np.ndarray, th: float, n_ref: float, v_reset: float, sub: bool) -> tuple:
    v = v.copy()
    ref = np.zeros_like(v)
    spk = []
    for i in range(v.size):
        if v[i] > th:
            spk.append(i)
            v[i] = v[i] - th if sub else v_reset
            ref[i] = n_ref
    return spk, v, ref


@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.integers(1, 300),
    st.sampled_from([np.float32, np.float64]),
    st.booleans(),
)
def test_scan_equals_plain_loop(seed: int, n: int, dtype: type, sub: bool) -> None:
    rng = np.random.default_rng(seed)
    v = rng.normal(0.0, 1.0, n).astype(dtype)
    th = dtype(rng.normal(0.5, 0.5))
    # values on the threshold, NaN and infinities must compare as `>` does
    for k in rng.choice(n, size=min(n, 6), replace=False):
        v[k] = rng.choice([th, np.nan, np.inf, -np.inf, np.nextafter(th, dtype(9))])
    want_spk, want_v, want_ref = _plain(v, th, 3.0, -0.25, sub)
    got_v = v.copy()
    ref = np.zeros(n, dtype)
    spk = np.full(n, -1, np.int64)
    ns = scan_mask(got_v, th, ref, spk, n, -1, dtype(-0.25), dtype(3.0), sub)
    assert spk[:ns].tolist() == want_spk
    assert got_v.tobytes() == want_v.tobytes()
    assert ref.tobytes() == want_ref.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scan_stops_at_the_known_count(dtype: type) -> None:
    """With the count known the scan stops after that many spikes (the rest stay as they were)."""
    v = np.zeros(200, dtype)
    v[[3, 70, 150]] = 2.0
    spk = np.zeros(200, np.int64)
    ns = scan_mask(v, dtype(1.0), np.zeros(200, dtype), spk, 200, 2, dtype(0), dtype(0), False)
    assert ns == 2 and spk[:2].tolist() == [3, 70] and v[150] == 2.0
