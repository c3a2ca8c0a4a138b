"""Running one step ahead (`Network.prime_ahead` / `run_ahead`): the output of step k + 1 as
soon as step k's input has run, with the state of a normal run bit for bit, on random networks
mixing every model, rule and delay (and a learning one)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgesnn.core import Network, NetworkSpec

from .test_reference import _inputs, random_spec


def _csr(steps: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.zeros(len(steps) + 1, np.int64)
    ptr[1:] = np.cumsum([len(s) for s in steps])
    return ptr, np.asarray([i for s in steps for i in s], np.int32)


def _check(spec: NetworkSpec, steps: list[list[int]]) -> None:
    n = len(steps)
    ptr, idx = _csr(steps + [[]])
    normal = Network(spec)
    rec = normal.run(ptr, idx, n + 1)  # one more step, without input, for the last output
    ahead = Network(spec)
    first = ahead.prime_ahead()
    assert first.tolist() == rec.step_spikes(0).tolist()
    # in two calls, as a stream hands them over
    cut = n // 3
    a = ahead.run_ahead(ptr[: cut + 1], idx[: ptr[cut]], cut)
    b = ahead.run_ahead(ptr[cut:] - ptr[cut], idx[ptr[cut] :], n - cut)
    got = [a.step_spikes(k).tolist() for k in range(cut)]
    got += [b.step_spikes(k).tolist() for k in range(n - cut)]
    assert got == [rec.step_spikes(k + 1).tolist() for k in range(n)]
    # the state is that of the normal run after the update of step n (its last step's first
    # half): compare with a normal network primed after n steps
    check = Network(spec)
    check.run(ptr, idx, n)
    check.prime_ahead()
    assert ahead.fs.tobytes() == check.fs.tobytes()
    assert ahead.w.tobytes() == check.w.tobytes()
    assert ahead.ii.tobytes() == check.ii.tobytes()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**31 - 1))
def test_random_networks_run_ahead_bit_for_bit(seed: int) -> None:
    spec, n_in = random_spec(seed)
    _check(spec, _inputs(seed, n_in, 30))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_learning_network_runs_ahead_bit_for_bit(dtype: str) -> None:
    rng = np.random.default_rng(3)
    spec = NetworkSpec(dt_us=1000, seed=1, dtype=dtype)
    spec.add_layer("in", 40, "input")
    spec.add_layer("out", 12, "cuba_lif", tau_mem_ms=10.0, v_th=1.0)
    spec.connect("in", "out", "dense", weight=rng.uniform(0, 1, (40, 12)), gain=0.3,
                 plasticity={"rule": "stdp", "a_plus": 0.01, "a_minus": 0.012,
                             "tau_pre_ms": 20.0, "tau_post_ms": 20.0, "w_min": 0.0,
                             "w_max": 1.0})
    spec.connect("out", "out", "wta", weight=0.2, synapse="inh")
    steps = [np.flatnonzero(rng.random(40) < 0.3).tolist() for _ in range(60)]
    _check(spec, steps)


def test_input_output_layers_cannot_run_ahead() -> None:
    spec = NetworkSpec(dt_us=1000)
    spec.add_layer("in", 3, "input")
    spec.add_layer("out", 2, "lif")
    spec.connect("in", "out", "dense", weight=np.ones((3, 2)))
    spec.outputs = ["in", "out"]
    net = Network(spec)
    with pytest.raises(ValueError, match="not input layers"):
        net.prime_ahead()


def test_warm_up_for_running_ahead_leaves_the_state_alone() -> None:
    spec, n_in = random_spec(5)
    net = Network(spec)
    fs, ii, w = net.fs.copy(), net.ii.copy(), net.w.copy()
    net.warm_up(step=False, ahead=True)
    assert net.fs.tobytes() == fs.tobytes() and net.ii.tobytes() == ii.tobytes()
    assert net.w.tobytes() == w.tobytes()
    _check(spec, _inputs(5, n_in, 10))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_streaming_steps_ahead_equal_the_batch_run_ahead(dtype: str) -> None:
    spec, n_in = random_spec(11)
    spec.dtype = dtype
    steps = _inputs(11, n_in, 20)
    ptr, idx = _csr(steps)
    batch, stream = Network(spec), Network(spec)
    assert batch.prime_ahead().tolist() == stream.prime_ahead().tolist()
    rec = batch.run_ahead(ptr, idx)
    got = [stream.step_ahead(np.asarray(s, np.int32)).tolist() for s in steps]
    assert got == [rec.step_spikes(k).tolist() for k in range(len(steps))]
    assert batch.fs.tobytes() == stream.fs.tobytes() and batch.ii.tobytes() == stream.ii.tobytes()
