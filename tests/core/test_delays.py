"""Synaptic delays: a spike sent with delay d acts exactly d steps later, for every d."""

from __future__ import annotations

import numpy as np

from edgesnn.core import Network, NetworkSpec


def test_every_delay_up_to_the_maximum_arrives_exactly() -> None:
    d_max = 40
    n = d_max + 1
    spec = NetworkSpec(dt_us=1000, max_delay_steps=d_max)
    spec.add_layer("in", 1, "input")
    spec.add_layer("out", n, "if", v_th=1.0, reset="zero")
    # one synapse per target neuron j, delay j; one input spike fires all of them
    spec.connect(
        "in",
        "out",
        "sparse",
        pre=np.zeros(n, np.int64),
        post=np.arange(n),
        weight=1.0,
        delay_steps=np.arange(n),
    )
    net = Network(spec)
    fired_at = {}
    for t in range(n + 5):
        out = net.step(np.array([0] if t == 3 else [], np.int32))
        for j in out:
            fired_at[int(j)] = t
    # sent at step 3 with delay d: added at the end of step 3 + d, fires in step 3 + d + 1
    assert fired_at == {d: 3 + d + 1 for d in range(n)}


def test_delays_on_every_rule_and_repeated_spikes() -> None:
    d = 5
    spec = NetworkSpec(dt_us=1000)
    spec.add_layer("in", 4, "input")
    for rule in ("dense", "one_to_one"):
        spec.add_layer(rule, 4, "if", v_th=1.0)
        spec.connect(
            "in", rule, rule, weight=1.0 if rule == "one_to_one" else np.eye(4), delay_steps=d
        )
    spec.outputs = ["dense", "one_to_one"]
    net = Network(spec)
    sends = {0: [0, 2], 1: [1], 2: [0, 2]}
    got = []
    for t in range(12):
        out = net.step(np.asarray(sends.get(t, []), np.int32))
        got.append(sorted(out.tolist()))
    for t in range(12):
        expect = sends.get(t - d - 1, [])
        assert got[t] == sorted(expect + [4 + i for i in expect])


def test_delay_beyond_maximum_is_a_config_problem() -> None:
    spec = NetworkSpec(dt_us=1000, max_delay_steps=8)
    spec.add_layer("in", 2, "input")
    spec.add_layer("out", 2, "lif")
    spec.connect("in", "out", "one_to_one", delay_steps=[3, 9])
    problems = spec.validate()
    assert any("delay_steps" in p.path and "0..8" in p.message for p in problems)


def test_per_synapse_delays_land_in_their_slot_at_every_ring_phase() -> None:
    """Spikes over synapses of random delays arrive d steps later whatever the step's position
    in the ring buffer (integer weights: the sums are exact in any order); packed arrays whose
    ring offsets disagree with the delays are refused."""
    import pytest

    from edgesnn.core import layout as L
    from edgesnn.core.network import _check_tables
    from edgesnn.errors import FormatError

    rng = np.random.default_rng(5)
    n_in, n_out, d_max, steps = 6, 5, 7, 60
    pre = np.repeat(np.arange(n_in), n_out)
    post = np.tile(np.arange(n_out), n_in)
    w = rng.integers(1, 4, pre.size).astype(float)
    d = rng.integers(0, d_max + 1, pre.size)
    spec = NetworkSpec(dt_us=1000, max_delay_steps=d_max)
    spec.add_layer("in", n_in, "input")
    spec.add_layer("out", n_out, "if", v_th=1e9)
    spec.connect("in", "out", "sparse", pre=pre, post=post, weight=w, delay_steps=d)
    net = Network(spec)
    arrive = np.zeros((steps + d_max + 2, n_out))
    for t in range(steps):
        sent = np.flatnonzero(rng.random(n_in) < 0.4).astype(np.int32)
        net.step(sent)
        for q in np.flatnonzero(np.isin(pre, sent)):
            arrive[t + d[q] + 1, post[q]] += w[q]  # acts in the step after it lands
        assert np.array_equal(net.state["out"]["v"], arrive[: t + 1].sum(0)), t
    arrays = {k: getattr(net, k).copy() for k in ("fs", "fp", "w", "ii", "ij")}
    _check_tables(arrays, net.manifest, "net")
    r = int(net.ii[L.H_PTAB])
    arrays["ij"][int(net.ii[r + L.P_DROFF])] += 1
    with pytest.raises(FormatError, match="ring offsets"):
        _check_tables(arrays, net.manifest, "net")


def test_step_reads_strided_and_other_dtype_inputs() -> None:
    """The streaming step takes any integer index array (strided views included) alike."""
    from edgesnn.core import Network, NetworkSpec

    rng = np.random.default_rng(3)
    spec = NetworkSpec(dt_us=1000)
    spec.add_layer("in", 30, "input")
    spec.add_layer("out", 10, "cuba_lif", tau_mem_ms=5.0)
    spec.connect("in", "out", "dense", weight=rng.uniform(0, 2, (30, 10)))
    a, b = Network(spec), Network(spec)
    for _ in range(50):
        idx = np.sort(rng.choice(30, 8, replace=False)).astype(np.int32)
        wide = np.repeat(idx, 2)[::2]  # same values, a non-contiguous view
        assert not wide.flags.c_contiguous
        assert a.step(idx).tolist() == b.step(wide).tolist()
    assert a.layer_spike_counts() == b.layer_spike_counts() and sum(a.layer_spike_counts().values())
