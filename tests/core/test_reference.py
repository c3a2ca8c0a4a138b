"""Every kernel against the slow pure-Python reference on random networks (float64)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgesnn.core import Network, NetworkSpec

from .reference import Reference

MODELS = ("lif", "cuba_lif", "adaptive_lif", "if", "izhikevich")


def _layer_params(model: str, rng: np.random.Generator, n: int) -> dict:
    if model == "lif":
        return {
            "tau_mem_ms": float(rng.uniform(2, 30)),
            "t_ref_ms": float(rng.integers(0, 4)),
            "i_bias": rng.uniform(0, 0.2, n),
            "v_reset": float(rng.uniform(-0.2, 0.1)),
            "integration": str(rng.choice(["exact", "euler"])),
            "reset": str(rng.choice(["zero", "subtract"])),
        }
    if model == "cuba_lif":
        return {
            "tau_mem_ms": float(rng.uniform(2, 30)),
            "tau_syn_exc_ms": float(rng.uniform(1, 8)),
            "tau_syn_inh_ms": float(rng.uniform(1, 12)),
            "t_ref_ms": float(rng.integers(0, 4)),
            "i_bias": float(rng.uniform(0, 0.1)),
            "reset": str(rng.choice(["zero", "subtract"])),
        }
    if model == "adaptive_lif":
        return {
            "tau_mem_ms": float(rng.uniform(2, 30)),
            "tau_adapt_ms": float(rng.uniform(5, 50)),
            "theta_plus": float(rng.uniform(0, 0.5)),
            "t_ref_ms": float(rng.integers(0, 3)),
        }
    if model == "if":
        return {
            "reset": str(rng.choice(["subtract", "zero"])),
            "i_bias": float(rng.uniform(0, 0.2)),
        }
    return {
        "a": 0.02,
        "b": 0.2,
        "c": -65.0,
        "d": float(rng.uniform(2, 8)),
        "i_bias": rng.uniform(0, 12, n),
    }


def random_spec(seed: int) -> tuple[NetworkSpec, int]:
    """A random network mixing every model, rule, delays and a recurrent projection."""
    rng = np.random.default_rng(seed)
    spec = NetworkSpec(dt_us=int(rng.choice([250, 500, 1000])), seed=seed, max_delay_steps=6,
                       dtype="float64")
    c, h, w = 2, int(rng.integers(3, 6)), int(rng.integers(3, 6))
    spec.add_layer("in", c * h * w, "input")
    spec.add_layer("in2", 5, "input")
    n_hidden = int(rng.integers(1, 4))
    names = []
    for k in range(n_hidden):
        model = str(rng.choice(MODELS))
        n = int(rng.integers(2, 9))
        spec.add_layer(f"h{k}", n, model, **_layer_params(model, rng, n))
        names.append((f"h{k}", n, model))
    scale = {"izhikevich": 12.0}
    for name, n, model in names:
        s = scale.get(model, 1.0)
        rule = str(rng.choice(["dense", "sparse", "random", "one_to_one_skip"]))
        if rule == "dense":
            d = (
                rng.integers(0, 4, (c * h * w, n))
                if rng.random() < 0.5
                else int(rng.integers(0, 3))
            )
            spec.connect(
                "in",
                name,
                "dense",
                weight=rng.uniform(-0.3, 0.9, (c * h * w, n)) * s,
                delay_steps=d,
                gain=float(rng.uniform(0.5, 1.5)),
            )
        elif rule == "sparse":
            m = int(rng.integers(1, 3 * n + 1))
            spec.connect(
                "in",
                name,
                "sparse",
                pre=rng.integers(0, c * h * w, m),
                post=rng.integers(0, n, m),
                weight=rng.uniform(-0.5, 1.5, m) * s,
                delay_steps=rng.integers(0, 7, m),
            )
        elif rule == "random":
            spec.connect(
                "in", name, "random", p=0.3, weight=0.7 * s, delay_steps=int(rng.integers(0, 3))
            )
        else:
            spec.connect("in2", name, "dense", weight=rng.uniform(0, 1.2, (5, n)) * s)
        if rng.random() < 0.5:
            spec.connect(
                name,
                name,
                "random",
                p=0.5,
                weight=float(rng.uniform(-0.8, 0.5)) * s,
                delay_steps=int(rng.integers(0, 3)),
                synapse="auto",
            )
        if rng.random() < 0.4:
            spec.connect(name, name, "wta", weight=-0.3 * s, synapse="inh")
    # a conv -> pool branch on the image-shaped input
    kern = rng.uniform(-0.5, 1.0, (2, c, 2, 2))
    stride, pad = int(rng.integers(1, 3)), int(rng.integers(0, 2))
    ho, wo = (h + 2 * pad - 2) // stride + 1, (w + 2 * pad - 2) // stride + 1
    spec.add_layer("conv", 2 * ho * wo, "lif", tau_mem_ms=10.0)
    spec.connect(
        "in",
        "conv",
        "conv2d",
        in_shape=[c, h, w],
        kernel=kern,
        stride=stride,
        padding=pad,
        delay_steps=int(rng.integers(0, 3)),
    )
    if ho >= 2 and wo >= 2:
        spec.add_layer("pool", 2 * (ho // 2) * (wo // 2), "if")
        spec.connect("conv", "pool", "pool2d", in_shape=[2, ho, wo], size=2, weight=0.6)
    hid = names[0][0]
    spec.add_layer("o2o", names[0][1], "lif", tau_mem_ms=5.0)
    spec.connect(
        hid,
        "o2o",
        "one_to_one",
        weight=rng.uniform(0.5, 1.5, names[0][1]),
        delay_steps=rng.integers(0, 4, names[0][1]),
    )
    spec.connect(hid, "o2o", "one_to_one", weight=-0.4, synapse="inh")
    spec.outputs = [hid, "conv"]
    return spec, c * h * w + 5


def _inputs(seed: int, n_in: int, n_steps: int) -> list[list[int]]:
    rng = np.random.default_rng(seed + 7)
    return [sorted(np.flatnonzero(rng.random(n_in) < 0.25).tolist()) for _ in range(n_steps)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**31 - 1))
def test_random_networks_match_reference(seed: int) -> None:
    spec, n_in = random_spec(seed)
    assert spec.validate() == []
    net = Network(spec)
    ref = Reference(spec)
    steps = _inputs(seed, n_in, 40)
    total = 0
    for k, inp in enumerate(steps):
        out = net.step(np.asarray(inp, np.int32)).tolist()
        expect = ref.step(inp)
        for name in net.layer_names:
            got = net.layer_spikes(name).tolist()
            assert got == expect[name], f"step {k} layer {name}"
            total += len(got)
        # the output is the concatenation of the output layers
        want, off = [], 0
        for name in spec.outputs:
            want += [off + i for i in expect[name]]
            off += spec.layer(name).n
        assert out == want
    for li, lay in enumerate(spec.layers):  # membrane state is bit-identical too
        if lay.model != "input":
            assert net.state[lay.name]["v"].tolist() == ref.state[li]["v"], lay.name
    assert net.layer_spike_counts() == {
        lay.name: ref.counts[i] for i, lay in enumerate(spec.layers)
    }
    # the batch kernel gives the same output spike trains as stepping
    net.reset()
    ptr = np.zeros(len(steps) + 1, np.int64)
    ptr[1:] = np.cumsum([len(s) for s in steps])
    rec = net.run(ptr, np.asarray([i for s in steps for i in s], np.int32))
    net2 = Network(spec)
    for k, inp in enumerate(steps):
        assert rec.step_spikes(k).tolist() == net2.step(np.asarray(inp, np.int32)).tolist()


def test_random_networks_are_active() -> None:
    """The random networks above exercise spiking in hidden layers (the test can fail)."""
    active = 0
    for seed in range(10):
        spec, n_in = random_spec(seed)
        net = Network(spec)
        for inp in _inputs(seed, n_in, 40):
            net.step(np.asarray(inp, np.int32))
        counts = net.layer_spike_counts()
        active += sum(1 for k, v in counts.items() if k not in ("in", "in2") and v > 0)
    assert active >= 15


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_stdp_matches_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    spec = NetworkSpec(dt_us=1000, dtype="float64")
    spec.add_layer("in", 12, "input")
    spec.add_layer("out", 6, "cuba_lif", tau_mem_ms=10.0, tau_syn_exc_ms=3.0)
    pl = {
        "a_plus": 0.05,
        "a_minus": 0.04,
        "tau_pre_ms": 15.0,
        "tau_post_ms": 25.0,
        "w_min": 0.0,
        "w_max": 1.5,
    }
    if rng.random() < 0.5:
        spec.connect("in", "out", "dense", weight=rng.uniform(0, 1, (12, 6)), plasticity=pl)
    else:
        m = 40
        spec.connect(
            "in",
            "out",
            "sparse",
            pre=rng.integers(0, 12, m),
            post=rng.integers(0, 6, m),
            weight=rng.uniform(0, 1, m),
            plasticity=pl,
        )
    net, ref = Network(spec), Reference(spec)
    for inp in _inputs(seed, 12, 60):
        net.step(np.asarray(inp, np.int32))
        ref.step(inp)
        assert net.layer_spikes("out").tolist() == ref.spikes[1]
    w = net.weights(0).ravel()
    if spec.projections[0].rule == "sparse":
        assert w.tolist() == ref.weights[0]
    else:
        assert w.tolist() == ref.weights[0]
    assert ref.counts[1] > 0


def test_hh_matches_reference() -> None:
    spec = NetworkSpec(dt_us=100, dtype="float64")
    spec.add_layer("in", 3, "input")
    spec.add_layer("hh", 3, "hh", i_bias=[0.0, 5.0, 12.0], max_substep_ms=0.025)
    spec.connect("in", "hh", "one_to_one", weight=[8.0, 3.0, -2.0])
    net, ref = Network(spec), Reference(spec)
    rng = np.random.default_rng(1)
    fired = 0
    for _ in range(400):
        inp = sorted(np.flatnonzero(rng.random(3) < 0.05).tolist())
        net.step(np.asarray(inp, np.int32))
        ref.step(inp)
        assert net.layer_spikes("hh").tolist() == ref.spikes[1]
        fired += len(ref.spikes[1])
    np.testing.assert_array_equal(net.state["hh"]["v"], ref.state[1]["v"])
    assert fired > 0
