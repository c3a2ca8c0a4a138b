"""input -> dense -> cuba_lif networks, the layer the shipped pipelines use most: the batch run
against the streaming step and the slow reference, and cuba_lif's inlined direct update
against its full update, bit for bit."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgesnn.core import Network, NetworkSpec
from edgesnn.core import kernels as K
from edgesnn.core import layout as L

from .reference import Reference


def ff_spec(seed: int, dtype: str = "float64", t_ref_ms: float = 0.0) -> tuple[NetworkSpec, int]:
    """A random one-projection feedforward network (input -> dense -> cuba_lif)."""
    rng = np.random.default_rng(seed)
    n_in = int(rng.integers(1, 40))
    n_out = int(rng.integers(1, 150))  # crosses the 64-neuron blocks of the spike scan
    spec = NetworkSpec(dt_us=int(rng.choice([100, 1000])), dtype=dtype, seed=seed)
    spec.add_layer("in", n_in, "input")
    spec.add_layer(
        "out",
        n_out,
        "cuba_lif",
        tau_mem_ms=float(rng.uniform(2.0, 30.0)),
        tau_syn_exc_ms=float(rng.uniform(1.0, 10.0)),
        v_th=float(rng.uniform(0.3, 1.5)),
        v_reset=float(rng.uniform(-0.5, 0.2)),
        v_rest=float(rng.uniform(-0.2, 0.2)),
        i_bias=rng.uniform(-0.05, 0.3, n_out),
        t_ref_ms=t_ref_ms,
        integration=str(rng.choice(["euler", "exact"])),
    )
    weight = rng.uniform(-0.5, 2.0, (n_in, n_out))
    spec.connect(
        "in", "out", "dense", weight=weight, gain=float(rng.uniform(0.1, 1.0)), synapse="exc"
    )
    spec.outputs = ["out"]
    return spec, n_in


def _inputs(seed: int, n_in: int, n_steps: int) -> list[list[int]]:
    """Random input spikes, a few of them outside the input layer (counted as dropped)."""
    rng = np.random.default_rng(seed + 11)
    p = rng.uniform(0.05, 0.6)
    steps = []
    for _ in range(n_steps):
        s = np.flatnonzero(rng.random(n_in + 3) < p).tolist()  # n_in.. are out of range
        steps.append(s)
    return steps


def _csr(steps: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.zeros(len(steps) + 1, np.int64)
    ptr[1:] = np.cumsum([len(s) for s in steps])
    return ptr, np.asarray([i for s in steps for i in s], np.int32)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**31 - 1), st.sampled_from(["float32", "float64"]))
def test_feedforward_run_equals_steps_and_reference(seed: int, dtype: str) -> None:
    spec, n_in = ff_spec(seed, dtype)
    steps = _inputs(seed, n_in, 60)
    ptr, idx = _csr(steps)
    net = Network(spec)
    rec = net.run(ptr, idx)

    stepped = Network(spec)  # the general step kernel, one call per step
    for k, inp in enumerate(steps):
        out = stepped.step(np.asarray(inp, np.int32)).tolist()
        assert rec.step_spikes(k).tolist() == out, f"step {k}"
    # every state variable, counter and spike list is bit-identical
    assert net.fs.tobytes() == stepped.fs.tobytes()
    assert net.ii.tobytes() == stepped.ii.tobytes()
    assert net.dropped_inputs == sum(sum(1 for i in s if i >= n_in) for s in steps)
    assert rec.syn_events == sum(sum(1 for i in s if i < n_in) for s in steps) * spec.layers[1].n

    if dtype == "float64":  # the slow reference works in float64
        ref = Reference(spec)
        for k, inp in enumerate(steps):
            assert rec.step_spikes(k).tolist() == ref.step([i for i in inp if i < n_in])["out"]
        assert net.state["out"]["v"].tolist() == ref.state[1]["v"]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**31 - 1))
def test_feedforward_resumes_when_output_is_full(seed: int) -> None:
    """With a small output buffer the loop stops early and resumes where it stopped."""
    spec, n_in = ff_spec(seed)
    steps = _inputs(seed, n_in, 50)
    ptr, idx = _csr(steps)
    whole = Network(spec).run(ptr, idx)
    net = Network(spec)
    n_out = net.n_outputs
    out_ptr = np.zeros(len(steps) + 1, np.int64)
    out_idx = np.zeros(n_out + 3, np.int32)
    stats = np.zeros(1, np.int64)
    got: list[list[int]] = []
    k = 0
    calls = 0
    while k < len(steps):
        out_ptr[k] = 0
        k1 = K.run_kernel(
            net.fs,
            net.fp,
            net.w,
            net.ii,
            net.ij,
            ptr,
            idx,
            k,
            len(steps),
            out_ptr,
            out_idx,
            stats,
        )
        got += [out_idx[out_ptr[j] : out_ptr[j + 1]].tolist() for j in range(k, k1)]
        k = k1
        calls += 1
    assert got == [whole.step_spikes(j).tolist() for j in range(len(steps))]
    assert int(stats[0]) == whole.syn_events
    assert net.t_steps == len(steps)
    if whole.idx.size > n_out + 3:
        assert calls > 1


def _direct_flag(net: Network, layer: int) -> int:
    """Index in ii of a layer record's L_DIRECT."""
    return int(net.ii[L.H_LTAB]) + layer * L.LR + L.L_DIRECT


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**31 - 1), st.sampled_from(["float32", "float64"]))
def test_direct_update_equals_full_update(seed: int, dtype: str) -> None:
    """`cuba_lif.update`'s inlined branch (input straight in i_exc, no inhibitory input, no
    refractory period) against `update_full` on the same layer, state and counters bit for bit."""
    spec, n_in = ff_spec(seed, dtype)
    ptr, idx = _csr(_inputs(seed, n_in, 60))
    direct = Network(spec)
    assert direct.ii[_direct_flag(direct, 1)] == 2  # the direct branch applies
    full = Network(spec)
    full.ii[_direct_flag(full, 1)] = 1  # same ring buffer, but the full update
    a, b = direct.run(ptr, idx), full.run(ptr, idx)
    assert a.idx.tolist() == b.idx.tolist() and a.ptr.tolist() == b.ptr.tolist()
    assert direct.fs.tobytes() == full.fs.tobytes()
    full.ii[_direct_flag(full, 1)] = 2
    assert direct.ii.tobytes() == full.ii.tobytes()


def test_direct_branch_only_where_it_applies() -> None:
    """Refractory neurons, inhibitory input or delayed input take the full update."""
    spec, _ = ff_spec(3, t_ref_ms=2.0)
    net = Network(spec)
    assert net.ii[_direct_flag(net, 1)] == 2 and net.layer_scalars("out")["n_ref"] > 0
    spec, _ = ff_spec(3)
    spec.connect("in", "out", "dense", weight=0.5, synapse="inh")
    net = Network(spec)
    assert net.ii[_direct_flag(net, 1)] == 1
    spec, _ = ff_spec(3)
    spec.projections[0].params["delay_steps"] = 2
    net = Network(spec)
    assert net.ii[_direct_flag(net, 1)] == 0


def test_small_networks_step_holding_the_gil(monkeypatch) -> None:  # noqa: ANN001
    """The streaming step of a small network holds the GIL, a big one's releases it; both run
    the same step."""
    from edgesnn.core import network as N

    spec, n_in = ff_spec(5, "float32")
    steps = _inputs(5, n_in, 40)
    held = Network(spec)
    assert held._kstep is K.step_f32_held
    monkeypatch.setattr(N, "GIL_HELD_MAX_SIZE", 0)
    released = Network(spec)
    assert released._kstep is K.step_f32
    for inp in steps:
        x = np.asarray(inp, np.int32)
        assert held.step(x).tolist() == released.step(x).tolist()
    assert held.fs.tobytes() == released.fs.tobytes()
    spec64, _ = ff_spec(5, "float64")
    assert Network(spec64)._kstep is K.step_f64


def test_step_takes_any_integer_input_the_same_way() -> None:
    """`step` calls the compiled kernel directly for a 1-D int32 array of any strides; other
    inputs (lists, int64, byte-swapped, 2-D) are converted first; all give `run`'s spikes,
    and non-integer input is refused rather than reinterpreted."""
    import pytest

    spec, n_in = ff_spec(7, "float32")
    steps = _inputs(7, n_in, 60)
    ptr, idx = _csr(steps)
    want = Network(spec).run(ptr, idx)
    forms = [
        lambda s: np.asarray(s, np.int32),
        lambda s: np.repeat(np.asarray(s, np.int32), 2)[::2],  # strided view
        lambda s: np.asarray(s, np.int32)[::-1][::-1],
        lambda s: list(s),
        lambda s: np.asarray(s, np.int64),
        lambda s: np.asarray(s, ">i4"),
        lambda s: np.asarray(s, np.int32).reshape(-1, 1),
    ]
    for form in forms:
        net = Network(spec)
        got = [net.step(form(s)).tolist() for s in steps]
        flat = [j for row in got for j in row]
        assert flat == want.idx.tolist()
        assert [len(r) for r in got] == np.diff(want.ptr).tolist()
    with pytest.raises(TypeError, match="integer"):
        Network(spec).step(np.zeros(3, np.float32))
    # indices beyond int32 are dropped (counted), never wrapped onto a real neuron
    far, none = Network(spec), Network(spec)
    far.step(np.array([2**32 + 1, -(2**40)], np.int64))
    none.step([])
    assert far.fs.tobytes() == none.fs.tobytes()
    assert int(far.ii[L.H_DROP]) == 2 and int(none.ii[L.H_DROP]) == 0
    ahead = Network(spec)
    ahead.prime_ahead()
    assert ahead.step_ahead(np.repeat(np.asarray(steps[0], np.int32), 2)[::2]).dtype == np.int32
    assert ahead.step_ahead([]).size >= 0 and ahead.step_ahead(np.zeros(0)).size >= 0
    warm = Network(spec)
    warm.warm_up(ahead=True)
    assert warm.step_kernel_ready() and warm._kstep_ahead_entry is not None
