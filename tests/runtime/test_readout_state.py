"""Learned readout state: neuron-to-label assignments and anomaly baselines survive checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from edgesnn.components import BuildContext, lookup
from edgesnn.events import SpikeRaster
from edgesnn.runtime.checkpoint import Checkpointer


def build(type_name: str, **params):
    cls = lookup("readout", type_name)
    problems: list = []
    full = cls.schema.validate(params, "readouts.r", problems)
    assert not problems, problems
    return cls("r", full, BuildContext(dt_us=1000))


def raster(rng, n_steps, n_ch, p, t0=0):
    return SpikeRaster.from_dense(rng.random((n_steps, n_ch)) < p, t0_us=t0, dt_us=1000)


def test_assignments_vote_like_a_plain_count():
    rng = np.random.default_rng(3)
    assign = rng.integers(-1, 3, 12)
    ro = build("spike_count", labels=["a", "b", "c"], assignments=assign.tolist(),
               window_ms=10.0, min_spikes=1, margin=0)
    r = raster(rng, 30, 12, 0.2)
    dets = ro.update(r) + ro.flush()
    dense = r.to_dense()
    for k, det in enumerate(dets):
        counts = np.zeros(3, int)
        for j in np.nonzero(dense[k * 10:(k + 1) * 10].sum(0))[0]:
            if assign[j] >= 0:
                counts[assign[j]] += dense[k * 10:(k + 1) * 10, j].sum()
        assert det.extra["counts"] == counts.tolist()
        assert det.label == "abc"[int(np.argmax(counts))]


def test_assignments_and_baseline_survive_a_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    votes = build("spike_count", labels=["x", "y"], neurons_per_label=2)
    votes.control("assign", assignments=[1, 0, 0, -1])
    anom = build("anomaly", window_ms=5.0, baseline_windows=10)
    anom.update(raster(rng, 200, 4, 0.3))
    assert not anom.learning
    probe = np.array([3.0, 0.0, 1.0, 5.0])
    expected = anom.score(probe)

    ck = Checkpointer({"dir": str(tmp_path)}, "p")
    assert ck.save({"votes": votes, "anom": anom}) is not None

    votes2 = build("spike_count", labels=["x", "y"], neurons_per_label=2)
    anom2 = build("anomaly", window_ms=5.0, baseline_windows=10)
    assert anom2.learning
    Checkpointer({"dir": str(tmp_path)}, "p").restore({"votes": votes2, "anom": anom2})
    assert votes2.assignments.tolist() == [1, 0, 0, -1]
    assert not anom2.learning and anom2.score(probe) == expected


def test_bad_assignments_are_rejected():
    ro = build("spike_count", labels=["x", "y"])
    with pytest.raises(ValueError, match="label indices"):
        ro.control("assign", assignments=[0, 2])
    with pytest.raises(ValueError, match="needs assignments"):
        ro.control("assign")
