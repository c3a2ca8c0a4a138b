"""The `snn` pipeline component: inline layers, model files, builders; process; check."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest

from edgesnn.components import BuildContext, lookup
from edgesnn.core import Network, NetworkSpec
from edgesnn.core.builders import get_builder, register_builder
from edgesnn.errors import ConfigError
from edgesnn.events import SpikeRaster

from .test_spec import TOML


def _params(cls, body: dict) -> dict:
    problems: list = []
    out = cls.schema.validate(body, "networks.net", problems)
    assert problems == []
    return out


def _raster(n: int, steps: int, seed: int, t0: int = 0, dt: int = 500) -> SpikeRaster:
    rng = np.random.default_rng(seed)
    return SpikeRaster.from_dense(rng.random((steps, n)) < 0.3, stream="s", t0_us=t0, dt_us=dt)


def test_inline_layers_process_equals_core_network() -> None:
    cls = lookup("network", "snn")
    assert cls is not None
    ctx = BuildContext(dt_us=500)
    body = {k: v for k, v in tomllib.loads(TOML).items() if k != "dt_us"}
    comp = cls("net", _params(cls, body), ctx)
    assert (comp.n_inputs, comp.n_outputs) == (4, 3)
    net = Network(NetworkSpec.from_dict(tomllib.loads(TOML)))
    for seq in range(3):
        r = _raster(4, 25, seq, t0=seq * 25 * 500)
        out = comp.process(r)
        assert out.n_steps == r.n_steps and out.t0_us == r.t0_us and out.n_channels == 3
        for k in range(r.n_steps):
            assert out.step_spikes(k).tolist() == net.step(r.step_spikes(k)).tolist()
    single = comp.process(_raster(4, 1, 9, t0=75 * 500))
    assert single.n_steps == 1
    assert comp.control("reset") == {"reset": True}
    with pytest.raises(KeyError):
        comp.control("explode")


def test_single_steps_without_the_step_kernel_equal_streaming_steps() -> None:
    """After a cold start only the batch kernel is compiled; single-step rasters then go
    through run() and must give exactly what the streaming step kernel gives."""
    cls = lookup("network", "snn")
    body = {k: v for k, v in tomllib.loads(TOML).items() if k != "dt_us"}
    fast = cls("a", _params(cls, body), BuildContext(dt_us=500))
    batch_only = cls("b", _params(cls, body), BuildContext(dt_us=500))
    batch_only._use_step = False
    assert fast._use_step and fast.net.step_kernel_ready()
    spikes = 0
    for seq in range(60):
        r = _raster(4, 1, seq, t0=seq * 500)
        a, b = fast.process(r), batch_only.process(r)
        assert a.idx.tolist() == b.idx.tolist() and a.ptr.tolist() == b.ptr.tolist()
        spikes += a.idx.size
    assert spikes > 0  # the comparison saw output spikes
    batch_only.warm_all_kernels()
    assert batch_only._use_step


def test_model_file_source(tmp_path) -> None:
    spec = NetworkSpec.from_dict(tomllib.loads(TOML))
    Network(spec).save(tmp_path / "m.npz")
    cls = lookup("network", "snn")
    comp = cls(
        "net", _params(cls, {"model": "m.npz"}), BuildContext(dt_us=500, base_dir=str(tmp_path))
    )
    assert comp.n_outputs == 3
    with pytest.raises(ConfigError, match="dt_us"):
        cls(
            "net",
            _params(cls, {"model": "m.npz"}),
            BuildContext(dt_us=1000, base_dir=str(tmp_path)),
        )


@register_builder("test_core_tiny")
def _tiny(dt_us: int, seed: int, n: int = 3) -> NetworkSpec:
    spec = NetworkSpec(dt_us=dt_us, seed=seed)
    spec.add_layer("in", n, "input")
    spec.add_layer("out", n, "lif", tau_mem_ms=5.0)
    spec.connect("in", "out", "one_to_one", weight=1.5)
    return spec


def test_builder_source_and_size_check() -> None:
    assert get_builder("test_core_tiny") is _tiny
    cls = lookup("network", "snn")
    comp = cls(
        "net",
        _params(cls, {"builder": "test_core_tiny", "builder_params": {"n": 5}}),
        BuildContext(dt_us=1000),
    )
    assert comp.n_inputs == 5

    class Enc:
        id = "enc"
        n_channels = 7

    assert "expects 5 input channels but 'enc' produces 7" in comp.check([Enc()])[0]
    Enc.n_channels = 5
    assert comp.check([Enc()]) == []
    out = comp.process(SpikeRaster.from_dense(np.eye(5, dtype=bool)[[0, 1]], dt_us=1000))
    assert out.to_dense().tolist() == [[False] * 5, [True] + [False] * 4]


def test_bad_sources_are_config_errors() -> None:
    cls = lookup("network", "snn")
    ctx = BuildContext(dt_us=1000)
    with pytest.raises(ConfigError, match="exactly one"):
        cls("net", _params(cls, {}), ctx)
    with pytest.raises(ConfigError, match='did you mean "test_core_tiny"'):
        cls("net", _params(cls, {"builder": "test_core_tin"}), ctx)
    with pytest.raises(ConfigError, match="builder_params"):
        cls("net", _params(cls, {"builder": "test_core_tiny", "builder_params": {"m": 1}}), ctx)
    body = tomllib.loads(TOML)
    body["layers"][1]["tau_mem"] = 1.0
    with pytest.raises(ConfigError, match=r"networks\.net\.layers\[1\]\.tau_mem"):
        cls("net", _params(cls, {k: body[k] for k in ("layers", "projections")}), ctx)


def test_lookahead_emits_each_step_one_step_sooner_with_the_same_spikes() -> None:
    """`lookahead = true`: the raster for input steps [a, b) carries the output of steps
    [a + 1, b + 1) (the first one also step a), the spikes a normal component gives for those
    steps; single steps, a reset and a checkpoint round trip keep the phase."""
    cls = lookup("network", "snn")
    ctx = BuildContext(dt_us=500)
    body = {k: v for k, v in tomllib.loads(TOML).items() if k != "dt_us"}
    normal = cls("net", _params(cls, body), ctx)
    ahead = cls("net", _params(cls, {**body, "lookahead": True}), ctx)
    sizes = [25, 1, 1, 10, 3]
    rasters, t = [], 0
    for seq, n in enumerate(sizes):
        rasters.append(_raster(4, n, seq, t0=t * 500))
        t += n
    rasters.append(_raster(4, 1, 99, t0=t * 500))  # the normal run's view of the last step
    want = []
    for r in rasters:
        out = normal.process(r)
        want += [out.step_spikes(k).tolist() for k in range(out.n_steps)]
    got, t_expect = [], 0
    for r in rasters[:-1]:
        out = ahead.process(r)
        assert out.t0_us == t_expect * 500 and out.n_channels == 3
        got += [out.step_spikes(k).tolist() for k in range(out.n_steps)]
        t_expect += out.n_steps
    assert t_expect == sum(sizes) + 1 and got == want
    arrays, meta = ahead.checkpoint_state()
    assert meta["ahead"] is True
    again = cls("net", _params(cls, {**body, "lookahead": True}), ctx)
    again.restore_state(arrays, meta)
    nxt = again.process(rasters[-1])  # continues one step ahead: no second first step
    assert nxt.n_steps == 1 and nxt.t0_us == (sum(sizes) + 1) * 500
    with pytest.raises(ValueError, match="lookahead"):
        cls("net", _params(cls, body), ctx).restore_state(arrays, meta)
    assert ahead.control("reset") == {"reset": True}
    assert ahead.process(_raster(4, 2, 5, t0=0)).n_steps == 3  # primed again after the reset


def test_lookahead_refuses_input_output_layers() -> None:
    cls = lookup("network", "snn")
    body = {k: v for k, v in tomllib.loads(TOML).items() if k != "dt_us"}
    first_input = next(lay["name"] for lay in body["layers"] if lay.get("model") == "input")
    with pytest.raises(ConfigError, match="lookahead"):
        cls("net", _params(cls, {**body, "outputs": [first_input], "lookahead": True}),
            BuildContext(dt_us=500))
