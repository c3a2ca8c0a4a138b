"""`weight_jitter` of dense projections: seeded, bounded, off by default, validated."""

from __future__ import annotations

import numpy as np
import pytest

from edgesnn.core import Network, NetworkSpec


def net(jitter: float = 0.0, seed: int | None = None, net_seed: int = 0) -> Network:
    spec = NetworkSpec(dt_us=1000, seed=net_seed)
    spec.add_layer("in", 50, "input")
    spec.add_layer("out", 6, "lif")
    kw = {} if seed is None else {"seed": seed}
    spec.connect("in", "out", rule="dense", weight=0.3, weight_jitter=jitter, **kw)
    return Network(spec)


def test_jitter_is_seeded_bounded_and_off_by_default() -> None:
    w0 = net().weights(0)
    assert np.all(w0 == 0.3)
    w = net(0.2).weights(0)
    assert np.all(w >= 0.3 * 0.8) and np.all(w <= 0.3 * 1.2)
    assert np.ptp(w) > 0.2 * 0.3  # spread over most of the range
    assert np.array_equal(w, net(0.2).weights(0))  # same seed, same weights
    assert not np.array_equal(w, net(0.2, net_seed=1).weights(0))
    assert np.array_equal(net(0.2, seed=7).weights(0), net(0.2, seed=7, net_seed=5).weights(0))
    cols = w / np.linalg.norm(w, axis=0)
    assert (cols.T @ cols)[np.triu_indices(6, 1)].max() < 1.0  # the neurons differ


def test_jitter_from_toml_and_its_errors() -> None:
    from edgesnn.core.spec import NetworkSpec as S

    body = {"dt_us": 1000, "seed": 3,
            "layers": [{"name": "in", "n": 4, "model": "input"},
                       {"name": "out", "n": 3, "model": "lif"}],
            "projections": [{"source": "in", "target": "out", "rule": "dense", "weight": 1.0,
                             "weight_jitter": 0.5}]}
    spec = S.from_dict(body)
    w = Network(spec).weights(0)
    assert np.all((w >= 0.5) & (w <= 1.5)) and np.ptp(w) > 0
    bad = dict(body, projections=[dict(body["projections"][0], weight_jitter=1.5)])
    with pytest.raises(Exception, match="weight_jitter"):
        Network(S.from_dict(bad))
    wta = dict(body, projections=[{"source": "out", "target": "out", "rule": "wta",
                                   "weight": -1.0, "weight_jitter": 0.1}])
    with pytest.raises(Exception, match="weight_jitter"):
        Network(S.from_dict(wta))
