"""NetworkSpec validation and the TOML form (strict, every problem at once, did you mean)."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest

from edgesnn.core import Network, NetworkSpec
from edgesnn.errors import ConfigError

from .test_reference import _inputs, random_spec

TOML = """
dt_us = 500
outputs = ["out"]

[[layers]]
name = "in"
n = 4
model = "input"

[[layers]]
name = "out"
n = 3
model = "cuba_lif"
tau_mem_ms = 10.0
tau_syn_exc_ms = 2.0

[[projections]]
source = "in"
target = "out"
rule = "dense"
weight = [[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.2, 0.2, 0.2], [1.5, 1.5, 1.5]]
delay_steps = 1

[[projections]]
source = "out"
target = "out"
rule = "wta"
weight = -1.0
"""


def test_toml_form_builds_a_network() -> None:
    spec = NetworkSpec.from_dict(tomllib.loads(TOML), "networks.snn")
    net = Network(spec)
    assert (net.n_inputs, net.n_outputs, net.dt_us) == (4, 3, 500)
    fired = [net.step(np.array([3], np.int32)).tolist() for _ in range(40)]
    assert any(fired)


def test_to_dict_round_trips() -> None:
    spec, n_in = random_spec(11)
    again = NetworkSpec.from_dict(spec.to_dict(), "net")
    a, b = Network(spec), Network(again)
    for inp in _inputs(11, n_in, 30):
        assert (
            a.step(np.asarray(inp, np.int32)).tolist() == b.step(np.asarray(inp, np.int32)).tolist()
        )


def test_every_problem_at_once_with_paths_and_suggestions() -> None:
    d = tomllib.loads(TOML)
    d["layers"][1]["tau_mem_mss"] = 3.0  # typo
    d["layers"][1]["model"] = "cuba_lif"
    d["layers"].append({"name": "x", "n": 2, "model": "lifx"})
    d["projections"][0]["rul"] = "dense"
    d["projections"][0]["target"] = "ot"
    d["projections"][1]["weight"] = "heavy"
    d["outputz"] = ["out"]
    with pytest.raises(ConfigError) as e:
        NetworkSpec.from_dict(d, "networks.snn")
    msgs = [str(p) for p in e.value.problems]
    text = "\n".join(msgs)
    assert (
        'networks.snn.layers[1].tau_mem_mss: unknown key "tau_mem_mss" (did you mean '
        '"tau_mem_ms"?)' in text
    )
    assert "networks.snn.layers[2].model" in text and 'did you mean "lif"' in text
    assert 'networks.snn.projections[0].rul: unknown key "rul"' in text
    assert 'networks.snn.projections[0].target: unknown layer "ot" (did you mean "out"?)' in text
    assert 'networks.snn.outputz: unknown key "outputz" (did you mean "outputs"?)' in text
    assert len(msgs) >= 5


def test_shape_problems_are_reported() -> None:
    spec = NetworkSpec()
    spec.add_layer("in", 3, "input")
    spec.add_layer("a", 4, "lif", i_bias=[1.0, 2.0])
    spec.connect("in", "a", "dense", weight=np.ones((4, 3)))
    spec.connect("in", "a", "conv2d", in_shape=[1, 2, 2], kernel=np.ones((1, 1, 2, 2)))
    spec.connect("a", "in", "one_to_one")
    spec.connect("in", "a", "sparse", pre=[0, 5], post=[1, 1])
    paths = {p.path: p.message for p in spec.validate()}
    assert "layers[1].i_bias" in paths
    assert "projections[0].weight" in paths
    assert "projections[1].in_shape" in paths
    assert "projections[2].target" in paths
    assert "projections[3].pre" in paths
    with pytest.raises(ConfigError):
        Network(spec)


def test_input_spikes_outside_the_input_layers_are_counted() -> None:
    spec = NetworkSpec()
    spec.add_layer("in", 3, "input")
    spec.add_layer("out", 2, "lif")
    spec.connect("in", "out", "dense", weight=2.0)
    net = Network(spec)
    net.step(np.array([0, 7, -1], np.int32))
    assert net.dropped_inputs == 2
    assert net.step(np.zeros(0, np.int32)).tolist() == [0, 1]


def test_float32_is_the_default_precision() -> None:
    """Specs, the TOML form and the `snn` tables build float32 networks unless told otherwise."""
    assert NetworkSpec().dtype == "float32"
    assert NetworkSpec.from_dict(tomllib.loads(TOML)).dtype == "float32"
    assert Network(NetworkSpec.from_dict(tomllib.loads(TOML))).fs.dtype == np.float32
    assert NetworkSpec.from_dict({**tomllib.loads(TOML), "dtype": "float64"}).dtype == "float64"


def test_float32_tracks_the_float64_network() -> None:
    """The same random network in both precisions: membrane values within float32 rounding
    until a neuron sits on its threshold and the two first differ in a spike; the output
    spikes agree on most steps."""
    spec64, n_in = random_spec(5)
    d = spec64.to_dict()
    d["dtype"] = "float32"
    a, b = Network(spec64), Network(NetworkSpec.from_dict(d))
    names = [lay.name for lay in spec64.layers]
    same, tracked = 0, 0
    steps = _inputs(5, n_in, 60)
    diverged = False
    for idx in steps:
        x = np.asarray(idx, np.int32)
        same += a.step(x).tolist() == b.step(x).tolist()
        diverged = diverged or any(
            a.layer_spikes(n).tolist() != b.layer_spikes(n).tolist() for n in names)
        if not diverged:
            tracked += 1
            for name, st in a.state.items():
                for var, v in st.items():
                    np.testing.assert_allclose(b.state[name][var], v, rtol=1e-4, atol=1e-4)
    assert tracked >= 5 and same >= 0.9 * len(steps)
