"""Checkpoint restore runs the same full model validation as `Network.load`: a checkpoint whose
arrays are well-formed, checksummed and of the right shapes, but whose tables would make a
kernel read or write out of range, is skipped with the reason, and the next older one is
restored."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from edgesnn.core import layout as L
from edgesnn.runtime.checkpoint import Checkpointer, _read_arrays, record_digest

DEMO = "learning_demo"


def _components():
    from edgesnn.commands.run import load_with_overrides

    return load_with_overrides(DEMO, []).build()


def _learn(comp, steps: int = 200, seed: int = 0) -> None:
    from edgesnn.events import SpikeRaster

    rng = np.random.default_rng(seed)
    n = comp.n_inputs
    per = [np.flatnonzero(rng.random(n) < 0.05).astype(np.int32) for _ in range(steps)]
    ptr = np.zeros(steps + 1, np.int64)
    ptr[1:] = np.cumsum([p.size for p in per])
    comp.process(SpikeRaster("s", 0, 0, 1000, n, ptr, np.concatenate(per), 0, {}))


def _forge(record: Path, edit) -> None:
    """Edit the `learner/ii` array of a checkpoint and re-sign npz and record, as a forger
    (or a bug) that knows the format would: every checksum and shape still matches."""

    def edit_ii(arrays: dict) -> None:
        ii = arrays["learner/ii"].copy()
        edit(ii)
        arrays["learner/ii"] = ii

    _forge_arrays(record, edit_ii)


def _forge_arrays(record: Path, edit) -> None:
    """`edit(arrays)` on a checkpoint's arrays by "<component>/<name>"; npz and record
    re-signed."""
    rec = json.loads(record.read_text())
    npz = record.with_name(rec["npz"])
    arrays = _read_arrays(npz.read_bytes())
    edit(arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    payload = buf.getvalue()
    npz.write_bytes(payload)
    rec["size"] = len(payload)
    rec["sha256"] = hashlib.sha256(payload).hexdigest()
    rec["record_sha256"] = record_digest(rec)
    record.write_text(json.dumps(rec))


def _layer(ii: np.ndarray, li: int) -> int:
    return int(ii[L.H_LTAB]) + li * L.LR


def _spike_list_out_of_range(ii: np.ndarray) -> None:
    r = _layer(ii, 1)
    ii[r + L.L_NSPK] = 1  # one spike pending, of a neuron far past the layer
    ii[int(ii[r + L.L_SPKOFF])] = 1 << 40


def _negative_time(ii: np.ndarray) -> None:
    ii[L.H_T] = -(1 << 40)


def _negative_drop_count(ii: np.ndarray) -> None:
    ii[L.H_DROP] = -7


FORGED = {"spike_list": (_spike_list_out_of_range, "L_SPKOFF"),
          "time": (_negative_time, "H_T"),
          "drop_count": (_negative_drop_count, "H_DROP")}


@pytest.mark.parametrize("name", sorted(FORGED))
def test_a_checkpoint_failing_model_validation_is_skipped_for_the_older_one(
        tmp_path, name, caplog):
    edit, field = FORGED[name]
    comps = _components()
    ck = Checkpointer({"dir": str(tmp_path), "keep": 3}, "t")
    _learn(comps["learner"], seed=1)
    ck.save(comps)
    w_good = comps["learner"].net.w.copy()
    _learn(comps["learner"], seed=2)
    newest = ck.save(comps)
    assert newest is not None and not np.array_equal(comps["learner"].net.w, w_good)
    _forge(newest, edit)
    ck.load(newest)  # the files themselves verify: only model validation can catch it
    fresh = _components()
    ck2 = Checkpointer({"dir": str(tmp_path)}, "t")
    with caplog.at_level("ERROR", logger="edgesnn.checkpoint"):
        got = ck2.restore(fresh)
    assert got is not None and got.name == "ckpt-0000000001.json"
    assert ck2.status()["restored"] == "ckpt-0000000001.json" and ck2.unfit == 1
    err = ck2.status()["last_error"]
    assert "ckpt-0000000002.json" in err and "fails model validation" in err and field in err
    assert "ckpt-0000000002.json does not fit" in caplog.text
    np.testing.assert_array_equal(fresh["learner"].net.w, w_good)
    # and the network restored from the older checkpoint runs
    _learn(fresh["learner"], steps=20, seed=3)


def test_readout_state_that_does_not_fit_is_skipped_for_the_older_one(tmp_path):
    """Learned assignments for 3 neurons where the readout reads 8 (the run would index
    outside them) make the checkpoint unfit, as does a baseline with non-finite values."""
    comps = _components()
    ck = Checkpointer({"dir": str(tmp_path), "keep": 3}, "t")
    comps["cluster"].control("assign", assignments=list(range(8)))
    ck.save(comps)
    newest = ck.save(comps)
    _forge_arrays(newest, lambda a: a.__setitem__("cluster/assignments",
                                                   np.array([0, 1, 2], np.int64)))
    fresh = _components()
    ck2 = Checkpointer({"dir": str(tmp_path)}, "t")
    assert ck2.restore(fresh).name == "ckpt-0000000001.json"
    assert ck2.unfit == 1 and "cover 3 neurons, not the 8" in ck2.last_error
    assert list(fresh["cluster"].assignments) == list(range(8))


def test_anomaly_baseline_that_could_not_be_learned_is_refused():
    from edgesnn.encoders.generic import built
    from edgesnn.readouts.anomaly import AnomalyReadout

    ro = built(AnomalyReadout, {})
    good = {"mean": np.zeros(4), "m2": np.ones(4)}
    ro.restore_state(good, {"seen": 5, "anomalies": 0})
    for arrays, meta, why in [
        ({"mean": np.array([0, np.nan, 0, 0.0]), "m2": np.ones(4)}, {}, "non-finite"),
        ({"mean": np.zeros(4), "m2": -np.ones(4)}, {}, "negative M2"),
        ({"mean": np.zeros(4), "m2": np.ones(3)}, {}, "one length"),
        ({"mean": np.zeros(5), "m2": np.ones(5)}, {}, "covers 5 neurons, not 4"),
        (good, {"seen": -1}, "is not a count"),
    ]:
        with pytest.raises(ValueError, match=why):
            ro.restore_state(arrays, meta)
    assert ro.seen == 5 and ro.mean is not None and ro.mean.size == 4
