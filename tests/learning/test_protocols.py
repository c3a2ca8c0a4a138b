"""Pairing protocols: the STDP window against its analytic curve, and the triplet rule's
frequency dependence (Pfister & Gerstner 2006, published visual-cortex parameters) against the
model's definition summed over every spike pair and triplet."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgesnn.core import Network
from edgesnn.learning.rules import TRIPLET_DEFAULTS
from tests.learning.reference import teacher_spec

A_PLUS, A_MINUS, TAU_PRE, TAU_POST = 0.01, 0.0105, 17.0, 34.0


def _drive(net: Network, n_in: int, spikes: dict[int, list[int]], n_steps: int) -> None:
    """Run n_steps; spikes maps a step to the input indices firing then (CSR, one call)."""
    per = [np.asarray(sorted(spikes.get(t, [])), np.int32) for t in range(n_steps)]
    ptr = np.zeros(n_steps + 1, np.int64)
    ptr[1:] = np.cumsum([p.size for p in per])
    net.run(ptr, np.concatenate(per) if per else np.zeros(0, np.int32))


@pytest.mark.parametrize(
    "pl",
    [
        {"rule": "stdp"},
        {"rule": "stdp", "pairing": "nearest"},
        {"rule": "stdp", "norm_total": 0.0, "bounds": "additive", "pairing": "nearest",
         "w_min": -5.0},
    ],
    ids=["all_to_all_core", "nearest", "nearest_wide_bounds"],
)
@pytest.mark.parametrize("dt_us", [1000, 500])
def test_stdp_window_matches_the_analytic_curve(pl, dt_us):
    """201 pre neurons, one per offset dt = t_post - t_pre in -100..100 ms, paired with one
    post neuron once per second, 5 pairings: dw / pairing within 1 % of A+ exp(-dt/tau+)
    (dt >= 0) and -A- exp(dt/tau-) (dt < 0)."""
    pl = {**pl, "a_plus": A_PLUS, "a_minus": A_MINUS, "tau_pre_ms": TAU_PRE,
          "tau_post_ms": TAU_POST}
    offsets = np.arange(-100, 101)
    n_pre = offsets.size
    steps_per_ms = 1000 // dt_us
    net = Network(teacher_spec(n_pre, 1, pl, w0=0.5, dt_us=dt_us))
    spikes: dict[int, list[int]] = {}
    n_pair, period = 5, 1000 * steps_per_ms
    for m in range(n_pair):
        t_post = 300 * steps_per_ms + m * period
        spikes.setdefault(t_post - 1, []).append(n_pre)  # the teacher: post fires at t_post
        for k, d in enumerate(offsets):
            spikes.setdefault(t_post - int(d) * steps_per_ms, []).append(k)
    _drive(net, n_pre + 1, spikes, 300 * steps_per_ms + n_pair * period)
    assert net.layer_spike_counts()["post"] == n_pair
    dw = (net.weights(1)[:, 0] - 0.5) / n_pair
    expect = np.where(
        offsets >= 0, A_PLUS * np.exp(-offsets / TAU_PRE), -A_MINUS * np.exp(offsets / TAU_POST)
    )
    np.testing.assert_allclose(dw, expect, rtol=0.01)


def _triplet_dw_by_definition(pre: list[float], post: list[float], p: dict) -> float:
    """All-to-all triplet model summed over spikes (continuous time): every post spike adds
    A2+ r1 + A3+ r1 o2, every pre spike removes A2- o1 + A3- o1 r2; r1, r2, o1, o2 are sums of
    exp(-(t - t_k)/tau) over the earlier spikes (o2, r2 exclude the spike itself)."""
    dw = 0.0
    for t in post:
        r1 = sum(math.exp(-(t - s) / p["tau_plus_ms"]) for s in pre if s <= t)
        o2 = sum(math.exp(-(t - s) / p["tau_y_ms"]) for s in post if s < t)
        dw += r1 * (p["a2_plus"] + p["a3_plus"] * o2)
    for t in pre:
        o1 = sum(math.exp(-(t - s) / p["tau_minus_ms"]) for s in post if s < t)
        r2 = sum(math.exp(-(t - s) / p["tau_x_ms"]) for s in pre if s < t)
        dw -= o1 * (p["a2_minus"] + p["a3_minus"] * r2)
    return dw


def test_triplet_frequency_dependence_with_published_parameters():
    """60 pairings at 0.1..50 Hz with dt = +10 ms (pre then post) and -10 ms: depression at low
    frequency for post-pre pairs, potentiation at high frequency for both orders (Sjöström
    et al. 2001 as fitted by Pfister & Gerstner 2006); each value within 1 % of the model's
    definition summed over spike pairs and triplets."""
    p = dict(TRIPLET_DEFAULTS)
    pl = {"rule": "triplet", "w_min": -10.0, "w_max": 10.0}
    freqs = [0.1, 10.0, 20.0, 40.0, 50.0]
    n_pair = 60
    result: dict[tuple[int, float], float] = {}
    for lag in (10, -10):
        for f in freqs:
            period = int(round(1000 / f))
            net = Network(teacher_spec(1, 1, pl, w0=0.0))
            spikes: dict[int, list[int]] = {}
            pre_t, post_t = [], []
            for m in range(n_pair):
                t0 = 200 + m * period
                tp, tq = (t0, t0 + lag) if lag > 0 else (t0 - lag, t0)
                spikes.setdefault(tp, []).append(0)
                spikes.setdefault(tq - 1, []).append(1)
                pre_t.append(tp)
                post_t.append(tq)
            _drive(net, 2, spikes, 200 + n_pair * period + 50)
            assert net.layer_spike_counts()["post"] == n_pair
            dw = float(net.weights(1)[0, 0])
            ref = _triplet_dw_by_definition(pre_t, post_t, p)
            assert dw == pytest.approx(ref, rel=0.01)
            result[(lag, f)] = dw
    assert result[(-10, 0.1)] < 0  # post-pre at low frequency: depression
    assert result[(10, 0.1)] < 0.01 * abs(result[(-10, 0.1)])  # pre-post at 0.1 Hz: ~none
    assert result[(10, 50.0)] > 0 and result[(-10, 50.0)] > 0  # both orders potentiate
    plus = [result[(10, f)] for f in freqs]
    minus = [result[(-10, f)] for f in freqs]
    assert plus == sorted(plus)  # pre-post: potentiation grows with the pairing frequency
    assert minus[-1] > minus[-2] > minus[2]  # post-pre: turns from LTD to LTP at 40-50 Hz
    assert result[(10, 20.0)] > 0 and result[(-10, 20.0)] < 0  # between: order decides
