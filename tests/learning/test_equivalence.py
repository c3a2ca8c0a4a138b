"""Every rule's event-driven kernel against the plain per-step reference on random spike
trains: weights, traces and thresholds equal to float tolerance."""

from __future__ import annotations

import numpy as np
import pytest

from edgesnn.core import Network
from edgesnn.core import layout as L
from edgesnn.learning import layout as G
from edgesnn.learning.control import add_reward
from tests.learning.reference import NaiveRule, teacher_spec

N_PRE, N_POST, STEPS = 7, 5, 400

CASES = {
    "pair_core_stdp": {"rule": "stdp"},  # the core's fused kernel, same reference
    "pair_nearest_add": {"rule": "stdp", "pairing": "nearest", "bounds": "additive"},
    "pair_a2a_mult": {"rule": "stdp", "bounds": "multiplicative", "a_plus": 0.05},
    "pair_nearest_mult": {"rule": "stdp", "pairing": "nearest", "bounds": "multiplicative"},
    "pair_theta_norm": {"rule": "stdp", "theta_plus": 0.05, "norm_total": 2.0},
    "pair_norm_every": {"rule": "stdp", "norm_total": 1.5, "norm_interval_steps": 37,
                        "pairing": "nearest"},
    "triplet_a2a": {"rule": "triplet", "a3_minus": 2.3e-4, "tau_x_ms": 101.0},
    "triplet_nearest": {"rule": "triplet", "pairing": "nearest", "tau_y_ms": 40.0,
                        "a3_plus": 5.3e-2, "a2_minus": 6.6e-3, "a3_minus": 3.1e-3,
                        "tau_x_ms": 714.0},
    "triplet_mult": {"rule": "triplet", "bounds": "multiplicative", "a2_plus": 0.02,
                     "a3_plus": 0.05},
    "rstdp": {"rule": "rstdp", "tau_elig_ms": 200.0, "tau_dopa_ms": 50.0, "eta": 0.05},
    "rstdp_pulse_mult": {"rule": "rstdp", "tau_dopa_ms": 0.0, "eta": 0.5,
                         "bounds": "multiplicative", "pairing": "nearest"},
}


def _run(pl: dict, seed: int, sparse: bool, dtype: str = "float64"):
    rng = np.random.default_rng(seed)
    w0 = rng.uniform(0.2, 0.8, (N_PRE, N_POST))
    mask = np.ones((N_PRE, N_POST), bool)
    edges = None
    if sparse:
        mask = rng.random((N_PRE, N_POST)) < 0.6
        a, b = np.nonzero(mask)  # row-major: sorted by pre, then post (CSR order)
        edges = (a, b)
    adaptive = "theta_plus" in pl
    spec = teacher_spec(
        N_PRE, N_POST, pl, sparse_edges=edges, w0=w0[mask] if sparse else w0,
        post_model="adaptive_lif" if adaptive else "lif", dtype=dtype,
    )
    net = Network(spec)
    naive = NaiveRule(pl, w0, mask, tau_adapt_ms=100.0 if adaptive else None)
    p_pre = rng.uniform(0.02, 0.25, N_PRE)
    p_teach = rng.uniform(0.02, 0.2, N_POST)
    rewards = np.where(rng.random(STEPS) < 0.03, rng.normal(0, 1, STEPS), 0.0)
    for t in range(STEPS):
        pre = np.flatnonzero(rng.random(N_PRE) < p_pre)
        teach = np.flatnonzero(rng.random(N_POST) < p_teach)
        if rewards[t]:
            assert add_reward(net, float(rewards[t])) == (1 if pl["rule"] == "rstdp" else 0)
        idx = np.concatenate([pre, N_PRE + teach]).astype(np.int32)
        post = sorted(int(j) for j in net.step(idx))
        naive.step(list(pre), post, float(rewards[t]) if pl["rule"] == "rstdp" else 0.0)
    return net, naive, mask


def _traces(net: Network, naive: NaiveRule) -> tuple[np.ndarray, np.ndarray]:
    """The event-driven pre/post fast traces decayed to the current step, and the naive's."""
    ii, fs = net.ii, net.fs
    prec = int(ii[L.H_PTAB]) + 1 * L.PR
    g = int(ii[prec + L.P_LREC])
    par = int(ii[g + G.G_PAR])
    t = net.t_steps - 1  # traces are "as of" the last processed step
    tpre = ii[int(ii[g + G.G_TPRE]) : int(ii[g + G.G_TPRE]) + N_PRE]
    tpost = ii[int(ii[g + G.G_TPOST]) : int(ii[g + G.G_TPOST]) + N_POST]
    x1 = fs[int(ii[g + G.G_X1PRE]) : int(ii[g + G.G_X1PRE]) + N_PRE]
    o1 = fs[int(ii[g + G.G_X1POST]) : int(ii[g + G.G_X1POST]) + N_POST]
    x1 = x1 * np.exp((t - tpre) * net.fp[par + G.F_L1PRE])
    o1 = o1 * np.exp((t - tpost) * net.fp[par + G.F_L1POST])
    return np.c_[x1, naive.r1].T, np.c_[o1, naive.o1].T


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("case", list(CASES))
def test_event_driven_equals_per_step(case, sparse):
    pl = CASES[case]
    for seed in (1, 2):
        net, naive, mask = _run(pl, seed, sparse)
        w = net.weights(1)
        got = w if not sparse else _dense(w, mask)
        np.testing.assert_allclose(got[mask], naive.w[mask], rtol=1e-9, atol=1e-12)
        if case != "pair_core_stdp":
            (a, b), (c, d) = _traces(net, naive)
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(c, d, rtol=1e-9, atol=1e-12)
        assert not np.allclose(naive.w[mask], _w0(seed, mask, sparse)), "nothing was learned"
        if "theta_plus" in pl:
            theta = net.state["post"]["theta"]
            np.testing.assert_allclose(theta, naive.theta, rtol=1e-9, atol=1e-12)
            assert theta.max() > 0


def _dense(flat: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = np.zeros(mask.shape)
    out[mask] = flat
    return out


def _w0(seed: int, mask: np.ndarray, sparse: bool) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.2, 0.8, mask.shape)[mask]


def test_float32_state_follows_the_reference():
    """float32 packed state: same rule, single-precision tolerance."""
    net, naive, mask = _run(CASES["triplet_a2a"], 3, False, dtype="float32")
    np.testing.assert_allclose(net.weights(1), naive.w, rtol=2e-5, atol=1e-6)


def test_batch_run_equals_streaming_steps():
    """`Network.run` (one kernel call) learns exactly what one `step` per dt learns."""
    pl = CASES["triplet_a2a"]
    rng = np.random.default_rng(5)
    w0 = rng.uniform(0.2, 0.8, (N_PRE, N_POST))
    a = Network(teacher_spec(N_PRE, N_POST, pl, w0=w0))
    b = Network(teacher_spec(N_PRE, N_POST, pl, w0=w0))
    steps = [np.flatnonzero(rng.random(N_PRE + N_POST) < 0.15).astype(np.int32)
             for _ in range(300)]
    for s in steps:
        a.step(s)
    ptr = np.zeros(len(steps) + 1, np.int64)
    ptr[1:] = np.cumsum([s.size for s in steps])
    b.run(ptr, np.concatenate(steps))
    np.testing.assert_array_equal(a.weights(1), b.weights(1))
    np.testing.assert_array_equal(a.fs, b.fs)
