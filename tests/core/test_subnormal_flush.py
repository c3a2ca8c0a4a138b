"""State that decays through silence never stays subnormal: every step zeroes the values below
2**-100 (float32; 2**-996 in float64) of one chunk of the state (`kernels._flush_tiny`, with
`tiny.zero_tiny`), so a quiet sensor does not leave the network's multiplies on microcode
assists for ever; the cochlea encoder's filters likewise after every batch."""

from __future__ import annotations

import numpy as np
import pytest

from edgesnn.core import Network, NetworkSpec
from edgesnn.core import kernels as K
from edgesnn.core.tiny import TINY_EXP


def _subnormal(a: np.ndarray) -> np.ndarray:
    return (a != 0) & (np.abs(a) < np.finfo(a.dtype).tiny)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_flush_zeroes_tiny_values_keeps_sign_and_everything_else(dtype: str) -> None:
    t = np.dtype(dtype)
    lim = 2.0 ** -(TINY_EXP + (0 if t.itemsize == 4 else 896))
    rng = np.random.default_rng(0)
    fs = rng.normal(0, 1, 5000).astype(t)
    small = rng.choice(5000, 400, replace=False)
    mags = np.concatenate([np.finfo(t).tiny * rng.uniform(1e-4, 0.99, 200),  # subnormal
                           lim * rng.uniform(0.01, 0.99, 200)])  # normal, below the limit
    fs[small] = (rng.choice([-1, 1], 400) * mags).astype(t)
    fs[:6] = [np.inf, -np.inf, np.nan, -0.0, lim, -lim]  # kept, and so are the limits
    before = fs.copy()
    assert _subnormal(fs).sum() == 200
    K._flush_tiny(fs, 0)  # one chunk per step ...
    assert 0 < _subnormal(fs).sum() < 200
    for step in range(1, 64):  # ... every chunk within 64 steps
        K._flush_tiny(fs, step)
    assert not _subnormal(fs).any()
    assert np.array_equal(fs[small], np.zeros(400, t))
    assert np.array_equal(np.signbit(fs[small]), np.signbit(before[small]))  # -0.0 if negative
    keep = np.ones(fs.size, bool)
    keep[small] = False
    bits = f"u{t.itemsize}"
    assert np.array_equal(fs[keep].view(bits), before[keep].view(bits))  # NaN included
    few = before[:10].copy()  # fewer entries than chunks: one each, the rest of the steps idle
    for step in range(64):
        K._flush_tiny(few, step)
    assert np.array_equal(few.view(bits), before[:10].view(bits))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_silent_network_keeps_no_subnormal_state(dtype: str) -> None:
    """A LIF layer driven, then silent for longer than its currents and potentials take to
    decay below the smallest normal: none of its state is left subnormal (before the flush,
    all 2 x 50 values were, at a decay that keeps the smallest subnormal where it is), and
    input afterwards is handled as before."""
    spec = NetworkSpec(dt_us=1000, dtype=dtype)
    spec.add_layer("in", 20, "input")
    spec.add_layer("out", 50, "cuba_lif", tau_mem_ms=20.0, tau_syn_exc_ms=5.0, v_th=1.0,
                   integration="euler")
    spec.connect("in", "out", "dense", weight=np.full((20, 50), 0.3), gain=0.05)
    net = Network(spec)
    drive = np.arange(20, dtype=np.int32)
    for _ in range(30):
        net.step(drive)
    silent = 20_000 if dtype == "float64" else 3_000  # float64 decays ~8x longer
    empty = np.zeros(0, np.int32)
    for _ in range(silent):
        net.step(empty)
    state = net.state["out"]
    assert all(not _subnormal(a).any() for a in state.values() if a.dtype.kind == "f")
    assert not _subnormal(net.fs).any()
    spiked = sum(net.step(drive).size for _ in range(60))
    assert spiked > 0
