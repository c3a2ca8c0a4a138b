"""Named views of plasticity records: learning control reads and writes no table offsets."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from edgesnn.core import Network, NetworkSpec
from edgesnn.learning.records import PlasticRecord, switch_positions, tables_match

REPO = Path(__file__).resolve().parents[2]


def _net() -> Network:
    spec = NetworkSpec(dt_us=1000, seed=1)
    spec.add_layer("in", 4, "input")
    spec.add_layer("a", 3, "lif")
    spec.add_layer("b", 2, "lif")
    spec.connect("in", "a", "dense", weight=0.6, plasticity={"rule": "stdp"})
    spec.connect("in", "b", "dense", weight=0.6, plasticity={"rule": "rstdp", "eta": 0.5})
    spec.connect("a", "b", "dense", weight=0.1)
    return Network(spec)


def test_rule_switch_and_rewards_by_name() -> None:
    net = _net()
    stdp, rstdp = PlasticRecord(net, 0), PlasticRecord(net, 1)
    assert (stdp.rule, rstdp.rule) == ("stdp", "rstdp")
    assert not stdp.takes_rewards and rstdp.takes_rewards and stdp.on and rstdp.on
    with pytest.raises(ValueError, match="takes no rewards"):
        stdp.add_reward(1.0)
    w0 = net.weights(0).copy()
    stdp.on = False
    for _ in range(20):
        net.step(np.arange(4, dtype=np.int32))
    assert np.array_equal(net.weights(0), w0)  # switched off: no learning
    stdp.on = True
    assert stdp.on and PlasticRecord(net, 0).code == stdp.code
    assert rstdp.rewards_applied == 0
    rstdp.add_reward(1.0)
    net.step(np.zeros(0, np.int32))
    assert rstdp.rewards_applied == 1


def test_checkpoint_tables_compare_only_what_may_differ() -> None:
    net = _net()
    codes = {0: PlasticRecord(net, 0).code, 1: PlasticRecord(net, 1).code}
    ii = net.ii.copy()
    for _ in range(5):
        net.step(np.arange(4, dtype=np.int32))
    assert tables_match(net, ii, codes)  # counters and stamps differ: still this network
    keep = switch_positions(net, [0, 1])
    ii[keep[1]] = 0  # a projection switched off in the checkpoint
    assert tables_match(net, ii, codes)
    other = Network(_net_spec_with_more_neurons()).ii
    assert not tables_match(net, other, codes)


def _net_spec_with_more_neurons() -> NetworkSpec:
    spec = NetworkSpec(dt_us=1000, seed=1)
    spec.add_layer("in", 5, "input")
    spec.add_layer("a", 3, "lif")
    spec.add_layer("b", 2, "lif")
    spec.connect("in", "a", "dense", weight=0.6, plasticity={"rule": "stdp"})
    spec.connect("in", "b", "dense", weight=0.6, plasticity={"rule": "rstdp", "eta": 0.5})
    spec.connect("a", "b", "dense", weight=0.1)
    return spec


@pytest.mark.parametrize("path", ["edgesnn/learning/control.py", "edgesnn/deploy/floatmodel.py"])
def test_no_table_offsets_outside_the_packing_code(path: str) -> None:
    src = (REPO / path).read_text()
    assert not re.search(r"\b(L|G)\.(P|L|G|Q|S|H|F)_[A-Z]", src), path
    assert "edgesnn.core import layout" not in src and "learning import layout" not in src
