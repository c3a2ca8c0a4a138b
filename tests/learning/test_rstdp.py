"""Reward-modulated STDP learns a two-choice task from reward alone (distal reward: the reward
arrives 100 ms after the choice, the eligibility traces bridge the gap)."""

from __future__ import annotations

import numpy as np
import pytest

from edgesnn.core import Network, NetworkSpec
from edgesnn.learning.control import add_reward

N_IN, TRIAL_STEPS, GAP_STEPS = 20, 50, 100


def _net(seed: int) -> Network:
    """20 inputs (two patterns of 10) -> 2 LIF choice neurons with mutual inhibition."""
    spec = NetworkSpec(dt_us=1000, seed=seed)
    spec.add_layer("in", N_IN, "input")
    spec.add_layer("choice", 2, "lif", tau_mem_ms=10.0, v_th=1.0)
    w0 = np.random.default_rng(seed).uniform(0.4, 0.6, (N_IN, 2))
    spec.connect(
        "in", "choice", "dense", weight=w0, gain=0.25,
        plasticity={"rule": "rstdp", "a_plus": 0.1, "a_minus": 0.1, "tau_elig_ms": 200.0,
                    "tau_dopa_ms": 20.0, "eta": 0.01},
    )
    spec.connect("choice", "choice", "wta", weight=-3.0)
    return Network(spec)


def _trial(net: Network, rng: np.random.Generator, pattern: int) -> int:
    """Present a pattern (10 inputs at 80 Hz) for 50 ms, then 100 ms of silence; the choice
    is the neuron that fired more (a coin flip on a tie)."""
    act = np.arange(10) + 10 * pattern
    per = [act[rng.random(10) < 0.08].astype(np.int32) for _ in range(TRIAL_STEPS)]
    per += [np.zeros(0, np.int32)] * GAP_STEPS
    ptr = np.zeros(len(per) + 1, np.int64)
    ptr[1:] = np.cumsum([p.size for p in per])
    counts = np.bincount(net.run(ptr, np.concatenate(per)).idx, minlength=2)
    return int(rng.integers(2)) if counts[0] == counts[1] else int(np.argmax(counts))


def _session(seed: int, flip: int, n_trials: int, reward_on: bool = True) -> list[bool]:
    net = _net(seed)
    rng = np.random.default_rng(1000 + seed)
    correct = []
    for _ in range(n_trials):
        pattern = int(rng.integers(2))
        ok = _trial(net, rng, pattern) == pattern ^ flip
        correct.append(ok)
        if reward_on:
            add_reward(net, 1.0 if ok else -1.0)
    return correct


@pytest.mark.parametrize("flip", [0, 1], ids=["A->0,B->1", "A->1,B->0"])
@pytest.mark.parametrize("seed", [0, 1])
def test_two_choice_task_learned_from_reward_alone(seed, flip):
    """Either mapping is learned — only the reward says which — to >= 90 % correct over the
    last 100 of 300 trials."""
    correct = _session(seed, flip, 300)
    assert np.mean(correct[-100:]) >= 0.9, np.mean(correct[-100:])


def test_without_reward_nothing_is_learned():
    """Eligibility alone does not change weights: with no reward they stay as they were."""
    net = _net(0)
    w0 = net.weights(0).copy()
    rng = np.random.default_rng(7)
    for _ in range(30):
        _trial(net, rng, int(rng.integers(2)))
    np.testing.assert_array_equal(net.weights(0), w0)
    assert add_reward(net, 1.0) == 1
    _trial(net, rng, 0)
    assert not np.array_equal(net.weights(0), w0)
