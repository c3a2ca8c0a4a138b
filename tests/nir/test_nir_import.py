"""NIR import on graphs written here: every supported node type, skip connections, Delay, IF,
leaks, per-neuron thresholds, compared spike for spike with a slow pure-Python simulator of the
NIR rules (forward Euler, same-step evaluation, strict threshold, reset to v_reset); and the
errors for what cannot be mapped."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from edgesnn.core import Network
from edgesnn.errors import ConfigError, FormatError
from edgesnn.nir import import_nir, load_nir, read_nir_graph

DT = 1e-3


def write_nir(path, nodes: dict, edges: list, metadata: dict | None = None):
    """A NIR file in nir.write's layout (root version, node/{type, nodes, edges})."""
    with h5py.File(path, "w") as f:
        f.create_dataset("version", data="1.0.8")
        g = f.create_group("node")
        g.create_dataset("type", data="NIRGraph")
        ns = g.create_group("nodes")
        for name, d in nodes.items():
            ng = ns.create_group(name)
            for k, v in d.items():
                ng.create_dataset(k, data=v if isinstance(v, str) else np.asarray(v))
        g.create_dataset(
            "edges", data=np.asarray(edges, dtype="S") if edges else np.zeros((0, 2), "S1")
        )
        if metadata:
            mg = g.create_group("metadata")
            for k, v in metadata.items():
                mg.create_dataset(k, data=v)
    return path


# --- a slow, obvious simulator of the NIR rules ---------------------------------------------


def _conv_ref(x, w, b, stride, pad, dil, groups):
    cin, h, wd = x.shape
    co, cig, kh, kw = w.shape
    ho = (h + 2 * pad[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * pad[1] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((co, ho, wo))
    cog = co // groups
    for o in range(co):
        gi = o // cog
        for oy in range(ho):
            for ox in range(wo):
                s = 0.0 if b is None else float(b[o])
                for c in range(cig):
                    for ky in range(kh):
                        for kx in range(kw):
                            y = oy * stride[0] - pad[0] + ky * dil[0]
                            xx = ox * stride[1] - pad[1] + kx * dil[1]
                            if 0 <= y < h and 0 <= xx < wd:
                                s += w[o, c, ky, kx] * x[gi * cig + c, y, xx]
                out[o, oy, ox] = s
    return out


def _pool_ref(x, k, s, avg):
    c, h, w = x.shape
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    out = np.zeros((c, ho, wo))
    for ci in range(c):
        for oy in range(ho):
            for ox in range(wo):
                out[ci, oy, ox] = sum(
                    x[ci, oy * s + a, ox * s + b] for a in range(k) for b in range(k)
                )
    return out / (k * k) if avg else out


def _pair(v):
    a = np.ravel(v)
    return (int(a[0]), int(a[-1]))


def reference_run(path, inputs: dict, steps: int, dt: float):
    """Spikes of every neuron node per step, evaluating the whole graph within each step."""
    g = read_nir_graph(path)
    preds = {n: [a for a, b in g.edges if b == n] for n in g.nodes}
    order, seen = [], set()

    def visit(n):
        if n in seen:
            return
        seen.add(n)
        for p in preds[n]:
            visit(p)
        order.append(n)

    for n in g.nodes:
        visit(n)
    state = {}
    history = {}  # Delay nodes: past inputs
    spikes = {n: [] for n in g.nodes if g.nodes[n].type in ("LIF", "CubaLIF", "IF")}
    for t in range(steps):
        out = {}
        for n in order:
            nd = g.nodes[n]
            p = {
                k: np.asarray(v, np.float64) if not isinstance(v, str) else v
                for k, v in nd.params.items()
            }
            if nd.type == "Input":
                out[n] = inputs[n][t].astype(np.float64)
                continue
            x = sum(out[q] for q in preds[n])
            if nd.type == "Affine":
                out[n] = p["weight"] @ x.ravel() + p["bias"]
            elif nd.type == "Linear":
                out[n] = p["weight"] @ x.ravel()
            elif nd.type == "Scale":
                out[n] = p["scale"] * x
            elif nd.type == "Flatten":
                out[n] = x.ravel()
            elif nd.type == "Conv2d":
                out[n] = _conv_ref(
                    x,
                    p["weight"],
                    p.get("bias"),
                    _pair(p["stride"]),
                    _pair(p["padding"]),
                    _pair(p["dilation"]),
                    int(p["groups"]),
                )
            elif nd.type in ("SumPool2d", "AvgPool2d"):
                out[n] = _pool_ref(
                    x, _pair(p["kernel_size"])[0], _pair(p["stride"])[0], nd.type == "AvgPool2d"
                )
            elif nd.type == "Delay":
                d = int(round(float(np.ravel(p["delay"])[0]) / dt))
                history.setdefault(n, []).append(x)
                out[n] = history[n][-1 - d] if len(history[n]) > d else np.zeros_like(x)
            elif nd.type == "Output":
                continue
            else:
                xs = x.ravel()
                n_ = xs.size
                v = state.get((n, "v"), np.zeros(n_))
                if nd.type == "LIF":
                    v = v + dt / p["tau"].ravel() * (p["v_leak"].ravel() - v + p["r"].ravel() * xs)
                elif nd.type == "CubaLIF":
                    i = state.get((n, "i"), np.zeros(n_))
                    i = i + dt / p["tau_syn"].ravel() * (-i + p["w_in"].ravel() * xs)
                    state[(n, "i")] = i
                    v = v + dt / p["tau_mem"].ravel() * (
                        p["v_leak"].ravel() - v + p["r"].ravel() * i
                    )
                else:  # IF
                    v = v + dt * p["r"].ravel() * xs
                z = v > p["v_threshold"].ravel()
                v = np.where(z, p["v_reset"].ravel() if "v_reset" in p else 0.0, v)
                state[(n, "v")] = v
                spikes[n].append(z.astype(np.float64))
                out[n] = z.astype(np.float64).reshape(x.shape)
    return {n: np.array(s) for n, s in spikes.items()}


def run_import(imp, inputs: dict, steps: int):
    """Per layer, its spikes aligned to the NIR steps (the hop shift removed)."""
    layers = [lm for lm in imp.layers if lm.model != "input" and lm.nir_type != "-"]
    imp.spec.outputs = [lm.layer for lm in layers]
    net = Network(imp.spec)
    extra = max(lm.depth for lm in layers)
    names = imp.spec.inputs
    flat = np.concatenate([inputs[n].reshape(steps, -1) for n in names], axis=1)
    out = np.zeros((steps + extra, net.n_outputs))
    for t in range(steps + extra):
        idx = np.flatnonzero(flat[t]).astype(np.int32) if t < steps else np.zeros(0, np.int32)
        out[t, net.step(idx)] = 1.0
    res, off = {}, 0
    for lm in layers:
        sh = imp.shift_steps(lm.layer)
        assert not out[:sh, off : off + lm.n].any()
        res[lm.layer] = out[sh : sh + steps, off : off + lm.n]
        off += lm.n
    return res


def _rich_graph(tmp_path, rng):
    """Input(2,8,8) -> Conv2d(s2, p1) -> LIF(3,4,4) [leak, per-channel thresholds] ->
    SumPool2d(2) -> LIF(3,2,2) -> Flatten -> Affine -> CubaLIF(6) [leak, w_in] <- Delay(2) <-
    Linear <- Flatten <- Input (a skip), CubaLIF -> Affine -> Scale -> IF(5) [strict >]."""
    th1 = np.repeat(np.array([0.8, 1.0, 1.3]), 16).reshape(3, 4, 4)
    lif = lambda shape, tau, r, leak, th: {  # noqa: E731
        "type": "LIF",
        "tau": np.full(shape, tau),
        "r": np.full(shape, r),
        "v_leak": np.full(shape, leak),
        "v_threshold": np.broadcast_to(th, shape).copy(),
        "v_reset": np.zeros(shape),
    }
    nodes = {
        "in": {"type": "Input", "shape": np.array([2, 8, 8])},
        "conv": {
            "type": "Conv2d",
            "weight": rng.normal(0.35, 0.3, (3, 2, 3, 3)),
            "bias": np.array([0.05, -0.02, 0.1]),
            "stride": np.array([2, 2]),
            "padding": np.array([1, 1]),
            "dilation": np.array([1, 1]),
            "groups": 1,
            "input_shape": np.array([8, 8]),
        },
        "l1": lif((3, 4, 4), 10e-3, 10.0, 0.05, th1),
        "pool": {"type": "SumPool2d", "kernel_size": 2, "stride": 2, "padding": np.array([0, 0])},
        "l2": lif((3, 2, 2), 5e-3, 2.0, 0.0, 1.0),
        "flat": {
            "type": "Flatten",
            "start_dim": 0,
            "end_dim": -1,
            "input_type": np.array([3, 2, 2]),
        },
        "fc": {
            "type": "Affine",
            "weight": rng.normal(0.4, 0.5, (6, 12)),
            "bias": rng.normal(0.0, 0.05, 6),
        },
        "flat_in": {"type": "Flatten", "start_dim": 0, "end_dim": -1},
        "skip": {"type": "Linear", "weight": rng.normal(0.02, 0.08, (6, 128))},
        "delay": {"type": "Delay", "delay": np.full(6, 2 * DT)},
        "l3": {
            "type": "CubaLIF",
            "tau_syn": np.full(6, 4e-3),
            "tau_mem": np.full(6, 8e-3),
            "r": np.full(6, 3.0),
            "v_leak": np.full(6, 0.2),
            "v_threshold": np.ones(6),
            "v_reset": np.zeros(6),
            "w_in": np.full(6, 2.0),
        },
        "fc2": {"type": "Affine", "weight": rng.normal(0.5, 0.4, (5, 6)), "bias": np.zeros(5)},
        "scale": {"type": "Scale", "scale": np.array([1.0, 0.5, 2.0, 1.5, 1.0])},
        "l4": {
            "type": "IF",
            "r": np.full(5, 1.0 / DT),
            "v_threshold": np.ones(5),
            "v_reset": np.zeros(5),
        },
        "out": {"type": "Output", "shape": np.array([5])},
        "out3": {"type": "Output", "shape": np.array([6])},
    }
    edges = [
        ("l2", "flat"),
        ("flat", "fc"),
        ("fc", "l3"),
        ("in", "conv"),
        ("conv", "l1"),
        ("l1", "pool"),
        ("pool", "l2"),
        ("in", "flat_in"),
        ("flat_in", "skip"),
        ("skip", "delay"),
        ("delay", "l3"),
        ("l3", "fc2"),
        ("fc2", "scale"),
        ("scale", "l4"),
        ("l4", "out"),
        ("l3", "out3"),
    ]
    return write_nir(tmp_path / "rich.nir", nodes, edges)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rich_graph_matches_reference(tmp_path, seed):
    rng = np.random.default_rng(seed)
    path = _rich_graph(tmp_path, rng)
    steps = 60
    inputs = {"in": (rng.random((steps, 2, 8, 8)) < 0.3).astype(np.float64)}
    ref = reference_run(path, inputs, steps, DT)
    imp = import_nir(path, dt=DT)
    rules = {(p.source, p.target): p.rule for p in imp.spec.projections}
    assert rules[("in", "l1")] == "conv2d" and rules[("l1", "l2")] == "pool2d"
    assert rules[("in", "l3")] == "dense" and rules[("l2", "l3")] == "dense"
    assert {lm.layer: lm.depth for lm in imp.layers if lm.nir_type != "-"} == {
        "in": 0,
        "l1": 1,
        "l2": 2,
        "l3": 3,
        "l4": 4,
    }
    # the skip path: 3 - 0 - 1 hop compensation + 2 steps of Delay
    skip = next(p for p in imp.spec.projections if (p.source, p.target) == ("in", "l3"))
    assert skip.params["delay_steps"] == 4
    got = run_import(imp, inputs, steps)
    for name in ("l1", "l2", "l3", "l4"):
        r = ref[name].reshape(steps, -1)
        assert r.sum() > 0, f"{name} never fires: the test would prove little"
        np.testing.assert_array_equal(got[name], r, err_msg=name)
    assert imp.spec.outputs == ["l1", "l2", "l3", "l4"]  # set by run_import (all layers)
    assert sorted(load_nir(path, dt=DT).outputs) == ["l3", "l4"]


def test_generic_composition_for_conv_the_core_cannot_run(tmp_path):
    """Dilation, groups and per-neuron thresholds: composed into one dense/sparse projection."""
    rng = np.random.default_rng(5)
    th = rng.uniform(0.7, 1.3, (4, 4, 4))
    nodes = {
        "in": {"type": "Input", "shape": np.array([2, 6, 6])},
        "conv": {
            "type": "Conv2d",
            "weight": rng.normal(0.5, 0.3, (4, 1, 3, 3)),
            "bias": np.zeros(4),
            "stride": 1,
            "padding": np.array([1, 1]),
            "dilation": np.array([2, 2]),
            "groups": 2,
            "input_shape": np.array([6, 6]),
        },
        "l1": {
            "type": "LIF",
            "tau": np.full((4, 4, 4), 4e-3),
            "r": np.full((4, 4, 4), 4.0),
            "v_leak": np.zeros((4, 4, 4)),
            "v_threshold": th,
            "v_reset": np.zeros((4, 4, 4)),
        },
        "out": {"type": "Output", "shape": np.array([4, 4, 4])},
    }
    path = write_nir(tmp_path / "g.nir", nodes, [("in", "conv"), ("conv", "l1"), ("l1", "out")])
    steps = 40
    inputs = {"in": (rng.random((steps, 2, 6, 6)) < 0.4).astype(np.float64)}
    ref = reference_run(path, inputs, steps, DT)
    imp = import_nir(path, dt=DT)
    assert imp.spec.projections[0].rule in ("dense", "sparse")
    assert imp.spec.layer("l1").params["v_th"] == 1.0  # thresholds folded into the scale
    got = run_import(imp, inputs, steps)
    assert ref["l1"].sum() > 0
    np.testing.assert_array_equal(got["l1"], ref["l1"].reshape(steps, -1))


def test_if_threshold_is_strict(tmp_path):
    """v reaches exactly v_threshold: NIR does not spike (v > thr); the core's IF compares
    >=, so the importer raises its threshold to the next float."""
    nodes = {
        "in": {"type": "Input", "shape": np.array([1])},
        "w": {"type": "Linear", "weight": np.array([[0.5]])},
        "n": {
            "type": "IF",
            "r": np.array([1.0 / DT]),
            "v_threshold": np.array([1.0]),
            "v_reset": np.array([0.0]),
        },
        "out": {"type": "Output", "shape": np.array([1])},
    }
    path = write_nir(tmp_path / "if.nir", nodes, [("in", "w"), ("w", "n"), ("n", "out")])
    inputs = {"in": np.ones((9, 1))}
    ref = reference_run(path, inputs, 9, DT)
    assert ref["n"].ravel().tolist() == [0, 0, 1, 0, 0, 1, 0, 0, 1]
    for dtype in ("float64", "float32"):
        got = run_import(import_nir(path, dt=DT, dtype=dtype), inputs, 9)
        np.testing.assert_array_equal(got["n"], ref["n"])


def test_native_hops_from_metadata(tmp_path):
    """edgesnn's own export (metadata per_hop_delay_steps = 1, dt_s): no compensation, dt read
    from the file; a layer then answers one step per hop like the core."""
    nodes = {
        "in": {"type": "Input", "shape": np.array([1])},
        "a": {"type": "Affine", "weight": np.array([[2.0]]), "bias": np.zeros(1)},
        "n": {
            "type": "LIF",
            "tau": np.array([DT]),
            "r": np.array([1.0]),
            "v_leak": np.zeros(1),
            "v_threshold": np.array([1.0]),
            "v_reset": np.zeros(1),
        },
        "out": {"type": "Output", "shape": np.array([1])},
    }
    path = write_nir(
        tmp_path / "n.nir",
        nodes,
        [("in", "a"), ("a", "n"), ("n", "out")],
        {"dt_s": DT, "per_hop_delay_steps": 1},
    )
    imp = import_nir(path)
    assert imp.hop_delay == "native" and imp.dt_us == 1000 and imp.shift_steps("n") == 0
    net = Network(imp.spec)
    fired = [t for t in range(4) if net.step(np.array([0] if t == 0 else [], np.int32)).size]
    assert fired == [1]  # k = dt/tau = 1: v = 2 at step 1


# --- errors ---------------------------------------------------------------------------------


def _chain(tmp_path, neuron: dict, extra_nodes=None, extra_edges=()):
    nodes = {
        "in": {"type": "Input", "shape": np.array([3])},
        "a": {"type": "Affine", "weight": np.ones((3, 3)), "bias": np.zeros(3)},
        "n": neuron,
        "out": {"type": "Output", "shape": np.array([3])},
        **(extra_nodes or {}),
    }
    edges = [("in", "a"), ("a", "n"), ("n", "out"), *extra_edges]
    return write_nir(tmp_path / "e.nir", nodes, edges)


def _lif(**over):
    d = {
        "type": "LIF",
        "tau": np.full(3, 1e-3),
        "r": np.ones(3),
        "v_leak": np.zeros(3),
        "v_threshold": np.ones(3),
        "v_reset": np.zeros(3),
    }
    d.update(over)
    return d


def test_error_non_uniform_tau_names_node_and_key(tmp_path):
    path = _chain(tmp_path, _lif(tau=np.array([1e-3, 2e-3, 1e-3])))
    with pytest.raises(ConfigError) as e:
        load_nir(path, dt=1e-4)
    assert "nodes.n.tau" in str(e.value) and "differs between neurons" in str(e.value)


def test_error_unsupported_node_type(tmp_path):
    li = {"type": "LI", "tau": np.ones(3), "r": np.ones(3), "v_leak": np.zeros(3)}
    path = _chain(tmp_path, li)
    with pytest.raises(ConfigError) as e:
        load_nir(path, dt=1e-4)
    assert "nodes.n" in str(e.value) and "LI is not supported" in str(e.value)


def test_error_unknown_type_is_a_format_error(tmp_path):
    path = _chain(tmp_path, {"type": "Banana", "x": np.ones(3)})
    with pytest.raises(FormatError, match="'n' has unknown NIR type 'Banana'"):
        load_nir(path, dt=1e-4)


def test_error_cycle(tmp_path):
    path = _chain(
        tmp_path,
        _lif(),
        {"rec": {"type": "Linear", "weight": np.eye(3)}},
        [("n", "rec"), ("rec", "a")],
    )
    with pytest.raises(ConfigError, match="recurrent NIR graphs are not supported"):
        load_nir(path, dt=1e-4)


def test_error_needs_dt(tmp_path):
    path = _chain(tmp_path, _lif())
    with pytest.raises(ConfigError, match="do not fix a time step"):
        load_nir(path)
    with pytest.raises(ConfigError, match="not one of"):
        load_nir(path, exporter="brian")


def test_error_output_from_linear_node(tmp_path):
    nodes = {
        "in": {"type": "Input", "shape": np.array([3])},
        "a": {"type": "Affine", "weight": np.ones((2, 3)), "bias": np.zeros(2)},
        "out": {"type": "Output", "shape": np.array([2])},
    }
    path = write_nir(tmp_path / "o.nir", nodes, [("in", "a"), ("a", "out")])
    with pytest.raises(ConfigError, match="nodes.out: is fed by Affine 'a'"):
        load_nir(path, dt=1e-4)


def test_error_shape_mismatch(tmp_path):
    path = _chain(
        tmp_path,
        _lif(
            tau=np.full(4, 1e-3),
            r=np.ones(4),
            v_leak=np.zeros(4),
            v_threshold=np.ones(4),
            v_reset=np.zeros(4),
        ),
    )
    with pytest.raises(ConfigError, match="nodes.n: input from 'a' has 3 elements"):
        load_nir(path, dt=1e-4)


def test_error_bad_files(tmp_path):
    junk = tmp_path / "junk.nir"
    junk.write_bytes(b"\x89NOT HDF5" * 10)
    with pytest.raises(FormatError, match="not an HDF5 file"):
        load_nir(junk, dt=1e-4)
    with h5py.File(tmp_path / "empty.nir", "w") as f:
        f.create_dataset("version", data="1.0.8")
    with pytest.raises(FormatError, match="no root group 'node'"):
        load_nir(tmp_path / "empty.nir", dt=1e-4)
    path = _chain(tmp_path, _lif(), extra_edges=[("n", "ghost")])
    with pytest.raises(FormatError, match="names no node 'ghost'"):
        load_nir(path, dt=1e-4)


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        (
            "Conv2d",
            {
                "weight": np.ones((2, 3, 3, 3)),
                "stride": 1,
                "padding": "same",
                "dilation": 1,
                "groups": 1,
            },
        ),
        (
            "Conv2d",
            {
                "weight": np.ones((4, 1, 2, 2)),
                "stride": np.array([2, 1]),
                "padding": 0,
                "dilation": 1,
                "groups": 3,
            },
        ),
        ("AvgPool2d", {"kernel_size": np.array([2, 3]), "stride": 1, "padding": np.array([1, 0])}),
    ],
)
def test_linear_ops_against_loops(kind, params):
    """The numpy maps used for composition equal the loop references above."""
    from edgesnn.nir.ops import apply_linear, conv_params
    from edgesnn.nir.reader import NirNode

    rng = np.random.default_rng(3)
    x = rng.random((2, 3, 5, 6))
    nd = NirNode("x", kind, dict(params))
    if kind == "Conv2d" and np.ravel(params["groups"])[0] == 3:
        with pytest.raises(ValueError, match="not a multiple of groups"):
            apply_linear(nd, x, bias=False)
        return
    y = apply_linear(nd, x, bias=False)
    for b in range(2):
        if kind == "Conv2d":
            stride, pad, dil, groups = conv_params(nd)
            ref = _conv_ref(
                x[b], params["weight"], None, stride, (pad[0][0], pad[1][0]), dil, groups
            )
        else:
            xp = np.pad(x[b], ((0, 0), (1, 1), (0, 0)))
            c, h, w = xp.shape
            ref = np.array(
                [
                    [
                        [xp[ci, oy : oy + 2, ox : ox + 3].mean() for ox in range(w - 2)]
                        for oy in range(h - 1)
                    ]
                    for ci in range(c)
                ]
            )
        np.testing.assert_allclose(y[b], ref, rtol=1e-12, atol=1e-12)
