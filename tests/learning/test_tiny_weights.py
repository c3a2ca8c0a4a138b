"""Multiplicative depression towards w_min = 0 is geometric, so a synapse depressed again and
again would end subnormal (and stay there: w - a x w rounds back to w), slowing every spike
over it; `pair_rows` zeroes a depressed row's weights below 2**-100 instead (float32)."""

from __future__ import annotations

import numpy as np
import pytest

from edgesnn.core import Network, NetworkSpec


@pytest.mark.parametrize("rule", ["dense", "sparse"])
def test_multiplicative_depression_zeroes_tiny_weights_and_keeps_the_rest(rule: str) -> None:
    spec = NetworkSpec(dt_us=1000, dtype="float32")
    spec.add_layer("in", 3, "input")
    spec.add_layer("out", 2, "lif", tau_mem_ms=5.0, v_th=0.5)
    w = np.array([[0.9, 0.9], [5e-31, 0.4], [1e-29, 0.3]])  # row 0 makes both posts spike
    plast = {"rule": "stdp", "bounds": "multiplicative", "w_min": 0.0, "w_max": 1.0,
             "pairing": "all_to_all"}
    if rule == "dense":
        spec.connect("in", "out", "dense", weight=w, plasticity=plast)
    else:
        pre, post = np.nonzero(np.ones_like(w))
        spec.connect("in", "out", "sparse", pre=pre, post=post, weight=w[pre, post],
                     plasticity=plast)
    net = Network(spec)
    spiked = 0
    for _ in range(3):  # until the posts spike (their traces then depress rows 1 and 2)
        spiked += net.step(np.array([0], np.int32)).size
    assert spiked > 0
    for _ in range(5):  # quiet: no post spike in the next step, their traces still high
        net.step(np.zeros(0, np.int32))
    before = net.w.copy()
    assert net.step(np.array([1, 2], np.int32)).size == 0  # depression of rows 1 and 2 only
    after = net.w
    tiny = np.float32(2.0**-100)
    changed = before != after
    assert changed.any()
    # 5e-31 (normal, below 2**-100) depressed: exactly zero, not 4.9e-31
    assert (after[before == np.float32(5e-31)] == 0).all()
    assert (np.abs(after[after != 0]) >= tiny).all()
    # 1e-29 depressed stays above the limit: scaled as the rule says, not zeroed
    assert (after[before == np.float32(1e-29)] > tiny).all()
