"""Surrogate-gradient training: kernels against their twins, gradients against finite
differences, training on a synthetic task, and trained models in the core and a pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from edgesnn.core import Network
from edgesnn.train import (
    FeedforwardSNN,
    LayerDef,
    SpikeDataset,
    TrainConfig,
    core_agreement,
    evaluate,
    loss_and_grads,
    make_batch,
    train,
)
from edgesnn.train import kernels as TK

from .reference import layer_backward_ref, layer_forward_ref


def synthetic(n: int, seed: int, n_in: int = 18, steps: int = 40) -> SpikeDataset:
    """3 classes; class c makes channels 6c..6c+5 fire at 20 % per step, the rest at 2 %."""
    rng = np.random.default_rng(seed)
    samples, labels = [], []
    for i in range(n):
        c = i % 3
        p = np.full(n_in, 0.02)
        p[6 * c : 6 * c + 6] = 0.2
        t = steps + int(rng.integers(0, 10))
        s = rng.random((t, n_in)) < p
        ptr = np.zeros(t + 1, np.int64)
        np.cumsum(s.sum(1), out=ptr[1:])
        samples.append((ptr, np.nonzero(s)[1].astype(np.int32)))
        labels.append(c)
    return SpikeDataset.from_samples(samples, labels, n_in, 1000, ["a", "b", "c"])


def tiny_model(neuron: str, seed: int = 0, t_ref_ms: float = 0.0, gain: float = 2.0,
               reset: str = "zero") -> FeedforwardSNN:
    p = {"tau_mem_ms": 10.0, "t_ref_ms": t_ref_ms, "reset": reset}
    if neuron == "cuba_lif":
        p["tau_syn_exc_ms"] = 4.0
    layers = [LayerDef("h1", 5, neuron, dict(p)), LayerDef("out", 3, neuron, dict(p))]
    m = FeedforwardSNN(18, layers, 1000, seed=seed, init_gain=gain)
    m.biases = [np.random.default_rng(seed).normal(0, 0.05, lay.n) for lay in layers]
    return m


@pytest.mark.parametrize("neuron", ["lif", "cuba_lif"])
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_kernels_match_their_reference(neuron: str, soft: bool, reset: str) -> None:
    ds = synthetic(3, 1)
    m = tiny_model(neuron, t_ref_ms=0.0 if soft else 3.0, gain=3.0, reset=reset)
    sub = reset == "subtract"
    assert m.subtract == [sub, sub]
    batch = make_batch(ds, np.arange(3), tail_steps=2)
    caches = m.forward(batch.s_in, batch.seg, soft=soft, beta=4.0)
    assert caches[0].s.sum() > 0 and caches[1].s.sum() > 0
    s_pre = batch.s_in
    rng = np.random.default_rng(2)
    for li, c in enumerate(caches):
        k, v_rest, v_th, v_reset, n_ref, d = m.consts[li]
        code = TK.MODEL_CUBA if neuron == "cuba_lif" else TK.MODEL_LIF
        ref = layer_forward_ref(s_pre, m.weights[li], batch.seg, code, k, v_rest, v_th,
                                v_reset, n_ref, d, m.biases[li], soft, 4.0, m.v_init[li], sub)
        for got, want in zip((c.s, c.u, c.act), (ref[0], ref[1], ref[3])):
            assert np.array_equal(got, want)  # same operations in the same order
        np.testing.assert_allclose(c.dsdu, ref[2], rtol=1e-13)  # pow / exp may round apart
        g_s = rng.normal(size=c.s.shape)
        g_u = rng.normal(size=c.s.shape) if li == 1 else np.zeros((0, 0))
        for detach in (False, True):
            g_x = np.empty_like(c.s)
            g_b = np.zeros(c.s.shape[1])
            TK.layer_backward(batch.seg, code, k, d, v_reset, sub, v_th, c.s, c.u, c.dsdu,
                              c.act, g_s, g_u, detach, g_x, g_b)
            want_x, want_b = layer_backward_ref(batch.seg, code, k, d, v_reset, c.s, c.u,
                                                c.dsdu, c.act, g_s, g_u, detach, sub, v_th)
            np.testing.assert_allclose(g_x, want_x, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(g_b, want_b, rtol=1e-12, atol=1e-12)
        s_pre = c.s


@pytest.mark.parametrize("neuron,reset", [("lif", "zero"), ("cuba_lif", "zero"),
                                          ("lif", "subtract"), ("cuba_lif", "subtract")])
@pytest.mark.parametrize("loss", ["count", "max_v"])
def test_gradients_match_finite_differences(neuron: str, reset: str, loss: str) -> None:
    """With sigmoid spikes and a differentiable reset (to v_reset or by subtraction) the
    network is smooth; BPTT must give its exact gradient (weights and biases of both layers,
    rate regulariser included)."""
    ds = synthetic(4, 3)
    m = tiny_model(neuron, seed=4, gain=3.0, reset=reset)
    cfg = TrainConfig(loss=loss, logit_scale=0.7, detach_reset=False, rate_reg=0.3)
    batch = make_batch(ds, np.arange(4), tail_steps=1)

    def f() -> float:
        return loss_and_grads(m, batch, cfg, soft=True, soft_beta=3.0)[0]

    _, g_w, g_b, _, _ = loss_and_grads(m, batch, cfg, soft=True, soft_beta=3.0)
    rng = np.random.default_rng(5)
    eps = 1e-6
    checked = 0
    for params, grads in ((m.weights, g_w), (m.biases, g_b)):
        for p, g in zip(params, grads):
            flat, gflat = p.reshape(-1), g.reshape(-1)
            for q in rng.choice(flat.size, size=min(8, flat.size), replace=False):
                old = flat[q]
                flat[q] = old + eps
                up = f()
                flat[q] = old - eps
                down = f()
                flat[q] = old
                num = (up - down) / (2 * eps)
                assert abs(num - gflat[q]) <= 1e-6 + 1e-5 * abs(num), (q, num, gflat[q])
                checked += 1
    assert checked >= 20
    assert max(float(np.abs(g).max()) for g in g_w) > 1e-4  # the check is not vacuous


def test_hard_gradients_follow_the_surrogate() -> None:
    """With hard spikes, a small step against the surrogate gradient lowers the loss."""
    ds = synthetic(12, 6)
    m = tiny_model("lif", seed=7, gain=2.5)
    cfg = TrainConfig(loss="count", logit_scale=0.3)
    batch = make_batch(ds, np.arange(12))
    l0, g_w, _, _, _ = loss_and_grads(m, batch, cfg)
    for w, g in zip(m.weights, g_w):
        w -= 0.05 * g / (np.abs(g).max() + 1e-12)
    l1 = loss_and_grads(m, batch, cfg)[0]
    assert l1 < l0


@pytest.mark.parametrize("neuron", ["lif", "cuba_lif"])
def test_training_reduces_loss_and_beats_chance(neuron: str) -> None:
    tr, va = synthetic(90, 10), synthetic(30, 11)
    cfg = TrainConfig(hidden=[16], neuron=neuron, epochs=8, batch_size=15, lr=1e-2,
                      logit_scale=0.3, seed=1)
    res = train(tr, va, cfg, log=None)
    losses = [h["loss"] for h in res.history]
    assert losses[-1] < 0.8 * losses[0]
    ev = evaluate(res.model, va, cfg)
    assert ev.accuracy > 0.6  # chance is 1/3


def test_training_is_seeded() -> None:
    tr = synthetic(30, 12)
    cfg = TrainConfig(hidden=[8], neuron="lif", epochs=2, batch_size=10, seed=3)
    a = train(tr, None, cfg, log=None).model.weights
    b = train(tr, None, cfg, log=None).model.weights
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("neuron,t_ref,reset", [
    ("lif", 3.0, "zero"), ("cuba_lif", 2.0, "zero"), ("cuba_lif", 0.0, "zero"),
    ("lif", 0.0, "subtract"), ("cuba_lif", 2.0, "subtract"), ("cuba_lif", 0.0, "subtract"),
])
def test_saved_model_spikes_exactly_as_in_training(tmp_path, neuron: str, t_ref: float,
                                                   reset: str) -> None:
    tr = synthetic(40, 20)
    cfg = TrainConfig(hidden=[12], neuron=neuron, t_ref_ms=t_ref, epochs=2, batch_size=10,
                      train_bias=True, init_gain=2.0, seed=2, reset=reset)
    model = train(tr, None, cfg, log=None).model
    assert model.subtract == [reset == "subtract"] * 2
    path = tmp_path / "m.npz"
    model.save(path)
    net = Network.load(path)
    te = synthetic(12, 21)
    batch = make_batch(te, np.arange(len(te)), tail_steps=3)
    caches = model.forward(batch.s_in, batch.seg)
    total = 0
    for i in range(len(te)):
        ptr, idx = te.sample(i)
        ptr = np.concatenate([ptr, np.full(3, ptr[-1])])
        net.reset()
        rec = net.run(ptr, idx)
        got = np.zeros((rec.n_steps, net.n_outputs), bool)
        got[np.repeat(np.arange(rec.n_steps), np.diff(rec.ptr)), rec.idx] = True
        want = caches[-1].s[batch.seg[i] : batch.seg[i + 1]] > 0
        assert np.array_equal(got, want), i
        # hidden spikes too: the layer counts of the core equal the trainer's
        h = caches[0].s[batch.seg[i] : batch.seg[i + 1]].sum()
        assert net.layer_spike_counts()["h1"] == int(h)
        total += int(want.sum())
    assert total > 0
    assert core_agreement(FeedforwardSNN.from_network(net), te, 3) == (len(te), 0)
    if reset == "subtract":  # not vacuous: the same weights resetting to v_reset spike otherwise
        zero = FeedforwardSNN(
            tr.n_inputs, [LayerDef(lay.name, lay.n, lay.model, {**lay.params, "reset": "zero"})
                          for lay in model.layers],
            model.dt_us, weights=model.weights, biases=model.biases)
        assert not np.array_equal(zero.forward(batch.s_in, batch.seg)[0].s, caches[0].s)


def test_trained_model_runs_in_a_pipeline_component(tmp_path) -> None:
    from edgesnn.components import BuildContext
    from edgesnn.events import SpikeRaster
    from edgesnn.networks.snn import SNNNetwork

    tr = synthetic(30, 30)
    cfg = TrainConfig(hidden=[10], neuron="cuba_lif", epochs=1, batch_size=10, init_gain=2.0)
    model = train(tr, None, cfg, log=None).model
    model.save(tmp_path / "kws.npz")
    params = SNNNetwork.schema.validate({"model": "kws.npz"}, "", [])
    comp = SNNNetwork("snn", params, BuildContext(dt_us=1000, base_dir=str(tmp_path)))
    te = synthetic(1, 31)
    ptr, idx = te.sample(0)
    out = comp.process(SpikeRaster("enc", 0, 0, 1000, te.n_inputs, ptr, idx))
    batch = make_batch(te, np.arange(1))
    want = model.forward(batch.s_in, batch.seg)[-1].s > 0
    got = out.to_dense()
    assert want.sum() > 0 and np.array_equal(got, want)


def test_input_taps_match_a_slow_reference() -> None:
    """Tap d of row r is the input of row r - d of the same sample (zero before its start)."""
    ds = synthetic(3, 30)
    m = FeedforwardSNN(18, [LayerDef("out", 3, "lif", {})], 1000, input_delays=[5, 0, 2])
    assert m.input_delays == [0, 2, 5] and m.weights[0].shape == (54, 3)
    batch = make_batch(ds, np.arange(3), tail_steps=2)
    got = m.tap_inputs(batch.s_in, batch.seg)
    want = np.zeros_like(got)
    for b in range(3):
        for r in range(batch.seg[b], batch.seg[b + 1]):
            for j, d in enumerate([0, 2, 5]):
                if r - d >= batch.seg[b]:
                    want[r, 18 * j : 18 * (j + 1)] = batch.s_in[r - d]
    assert np.array_equal(got, want) and got.sum() > 0
    with pytest.raises(ValueError, match="negative"):
        FeedforwardSNN(18, [LayerDef("out", 3, "lif", {})], 1000, input_delays=[-1])


@pytest.mark.parametrize("neuron", ["lif", "cuba_lif"])
def test_input_taps_gradients_match_finite_differences(neuron: str) -> None:
    ds = synthetic(3, 31)
    p = {"tau_mem_ms": 10.0}
    m = FeedforwardSNN(18, [LayerDef("h1", 5, neuron, dict(p)), LayerDef("out", 3, neuron, p)],
                       1000, seed=3, init_gain=3.0, input_delays=[0, 3, 6])
    cfg = TrainConfig(loss="count", logit_scale=0.7, detach_reset=False)
    batch = make_batch(ds, np.arange(3), tail_steps=2)
    _, g_w, _, _, _ = loss_and_grads(m, batch, cfg, soft=True, soft_beta=3.0)
    w, g = m.weights[0].reshape(-1), g_w[0].reshape(-1)
    eps = 1e-6
    # weights of the delayed taps (rows 18.. of the first matrix) get their own gradient
    for q in np.random.default_rng(1).choice(np.arange(18 * 5, 54 * 5), 10, replace=False):
        old = w[q]
        w[q] = old + eps
        up = loss_and_grads(m, batch, cfg, soft=True, soft_beta=3.0)[0]
        w[q] = old - eps
        down = loss_and_grads(m, batch, cfg, soft=True, soft_beta=3.0)[0]
        w[q] = old
        num = (up - down) / (2 * eps)
        assert abs(num - g[q]) <= 1e-6 + 1e-5 * abs(num), (q, num, g[q])
    assert np.abs(g[18 * 5 :]).max() > 1e-4


@pytest.mark.parametrize("neuron", ["lif", "cuba_lif"])
def test_input_taps_run_in_the_core_as_delayed_projections(tmp_path, neuron: str) -> None:
    """A model with input delay taps saves as one delayed projection per tap, spikes in the
    core exactly as in training, and loads back with its taps."""
    tr = synthetic(40, 32)
    cfg = TrainConfig(hidden=[12], neuron=neuron, epochs=2, batch_size=10, train_bias=True,
                      init_gain=2.0, seed=2, input_delays_ms=[4.0, 9.0])
    model = train(tr, None, cfg, log=None).model
    assert model.input_delays == [0, 4, 9]
    model.save(tmp_path / "m.npz")
    net = Network.load(tmp_path / "m.npz")
    assert [net.delay_steps(i) for i in range(len(net.projection_names))] == [0, 4, 9, 0]
    te = synthetic(12, 33)
    assert core_agreement(model, te, 10) == (len(te), 0)
    back = FeedforwardSNN.from_network(net)
    assert back.input_delays == [0, 4, 9]
    assert all(np.array_equal(a, b) for a, b in zip(back.weights, model.weights))
    ev = evaluate(model, te, cfg)
    assert sum(ev.layer_spikes[1:]) > 0


@pytest.mark.parametrize("neuron", ["lif", "cuba_lif"])
def test_fast_forward_equals_the_exact_one_up_to_rounding(neuron: str) -> None:
    """Training sums synaptic inputs by matrix products; membranes agree with the core-exact
    sum to rounding, and so do the gradients (soft network: no spike can flip)."""
    ds = synthetic(6, 40)
    m = tiny_model(neuron, seed=5, gain=3.0)
    m.input_delays = [0]
    batch = make_batch(ds, np.arange(6), tail_steps=2)
    for soft in (False, True):
        a = m.forward(batch.s_in, batch.seg, soft=soft, beta=3.0)
        b = m.forward(batch.s_in, batch.seg, soft=soft, beta=3.0, exact=False)
        for x, y in zip(a, b):
            assert np.allclose(x.u, y.u, rtol=0, atol=1e-12)
    cfg = TrainConfig(loss="count", logit_scale=0.7)
    ga = loss_and_grads(m, batch, cfg, soft=True, soft_beta=3.0)[1]
    gb = loss_and_grads(m, batch, cfg, soft=True, soft_beta=3.0, exact=False)[1]
    assert all(np.allclose(x, y, rtol=1e-9, atol=1e-12) for x, y in zip(ga, gb))
    assert sum(float(np.abs(g).sum()) for g in ga) > 0


def test_weight_averaging_is_the_mean_over_the_last_epochs() -> None:
    """With one minibatch per epoch and a constant learning rate, averaging the last two
    epochs gives the mean of the models trained for E - 1 and E epochs (same trajectory)."""
    ds = synthetic(12, 5)
    base = dict(hidden=[6], epochs=4, batch_size=12, lr=2e-2, lr_final_fraction=1.0, seed=3,
                keep_last=True, train_bias=True)
    a = train(ds, None, TrainConfig(**{**base, "epochs": 3}), log=None).model
    b = train(ds, None, TrainConfig(**base), log=None).model
    m = train(ds, None, TrainConfig(**base, average_epochs=2), log=None).model
    one = train(ds, None, TrainConfig(**base, average_epochs=1), log=None).model
    for wa, wb, wm, w1 in zip(a.weights + a.biases, b.weights + b.biases,
                              m.weights + m.biases, one.weights + one.biases):
        np.testing.assert_allclose(wm, (wa + wb) / 2, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(w1, wb)
    assert not np.array_equal(a.weights[0], b.weights[0])
    with pytest.raises(ValueError, match="average_epochs"):
        TrainConfig(epochs=3, average_epochs=4).check()


def test_untapped_is_the_adjoint_of_tapped() -> None:
    """<tapped(x), g> == <x, untapped(g)> for any x, g: the backward pass of the taps."""
    from edgesnn.train.model import tapped, untapped

    rng = np.random.default_rng(7)
    seg = np.array([0, 9, 13, 25])
    x = rng.normal(size=(25, 4))
    g = rng.normal(size=(25, 12))
    lhs = float(np.sum(tapped(x, seg, [0, 2, 5]) * g))
    rhs = float(np.sum(x * untapped(g, seg, [0, 2, 5])))
    assert abs(lhs - rhs) < 1e-10 and abs(lhs) > 1e-3


@pytest.mark.parametrize("neuron", ["lif", "cuba_lif"])
def test_layer_taps_gradients_match_finite_differences(neuron: str) -> None:
    """Taps on the hidden -> out hop: the gradients of both weight matrices (the first one
    reached through the taps' adjoint) agree with finite differences."""
    ds = synthetic(3, 34)
    p = {"tau_mem_ms": 10.0}
    m = FeedforwardSNN(18, [LayerDef("h1", 5, neuron, dict(p)), LayerDef("out", 3, neuron, p)],
                       1000, seed=4, init_gain=3.0, input_delays=[0, 2], layer_delays=[0, 3, 5])
    assert m.weights[1].shape == (15, 3)
    cfg = TrainConfig(loss="count", logit_scale=0.7, detach_reset=False)
    batch = make_batch(ds, np.arange(3), tail_steps=2)
    _, g_w, _, _, _ = loss_and_grads(m, batch, cfg, soft=True, soft_beta=3.0)
    eps = 1e-6
    rng = np.random.default_rng(2)
    for li in (0, 1):
        w, g = m.weights[li].reshape(-1), g_w[li].reshape(-1)
        for q in rng.choice(w.size, 8, replace=False):
            old = w[q]
            w[q] = old + eps
            up = loss_and_grads(m, batch, cfg, soft=True, soft_beta=3.0)[0]
            w[q] = old - eps
            down = loss_and_grads(m, batch, cfg, soft=True, soft_beta=3.0)[0]
            w[q] = old
            num = (up - down) / (2 * eps)
            assert abs(num - g[q]) <= 1e-6 + 1e-5 * abs(num), (li, q, num, g[q])
    assert np.abs(g_w[1][5:]).max() > 1e-4  # the delayed taps learn too


@pytest.mark.parametrize("neuron", ["lif", "cuba_lif"])
def test_layer_taps_run_in_the_core_as_delayed_projections(tmp_path, neuron: str) -> None:
    """Taps on every hop save as delayed projections, spike in the core exactly as in
    training, and load back with their taps."""
    tr = synthetic(40, 35)
    cfg = TrainConfig(hidden=[12, 8], neuron=neuron, epochs=2, batch_size=10, train_bias=True,
                      init_gain=2.0, seed=2, input_delays_ms=[4.0], layer_delays_ms=[2.0, 6.0])
    model = train(tr, None, cfg, log=None).model
    assert model.input_delays == [0, 4] and model.layer_delays == [0, 2, 6]
    model.save(tmp_path / "m.npz")
    net = Network.load(tmp_path / "m.npz")
    assert [net.delay_steps(i) for i in range(len(net.projection_names))] == \
        [0, 4, 0, 2, 6, 0, 2, 6]
    te = synthetic(12, 36)
    assert core_agreement(model, te, 10) == (len(te), 0)
    back = FeedforwardSNN.from_network(net)
    assert back.input_delays == [0, 4] and back.layer_delays == [0, 2, 6]
    assert all(np.array_equal(a, b) for a, b in zip(back.weights, model.weights))
    assert sum(evaluate(model, te, cfg).layer_spikes[2:]) > 0
