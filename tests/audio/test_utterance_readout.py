"""The `utterance` readout: one decision per burst of output spikes, at the burst's end."""

from __future__ import annotations

import numpy as np
import pytest

from edgesnn.components import BuildContext
from edgesnn.events import SpikeRaster
from edgesnn.readouts.utterance import UtteranceReadout

DT = 5000


def readout(**over) -> UtteranceReadout:
    params = UtteranceReadout.schema.validate({"labels": ["a", "b", "c"], **over}, "", [])
    return UtteranceReadout("u", params, BuildContext(dt_us=DT))


def raster(steps: dict[int, list[int]], n_steps: int, t0_us: int = 0) -> SpikeRaster:
    ptr = np.zeros(n_steps + 1, np.int64)
    idx: list[int] = []
    for k in range(n_steps):
        idx += sorted(steps.get(k, []))
        ptr[k + 1] = len(idx)
    return SpikeRaster("net", 0, t0_us, DT, 3, ptr, np.asarray(idx, np.int32))


def chunks(r: SpikeRaster, size: int) -> list[SpikeRaster]:
    """The same spikes as consecutive rasters of `size` steps (a stream)."""
    out = []
    for a in range(0, r.n_steps, size):
        b = min(a + size, r.n_steps)
        p = r.ptr[a : b + 1]
        out.append(SpikeRaster("net", 0, r.t0_us + a * DT, DT, 3, p - p[0],
                               r.idx[p[0] : p[-1]].copy()))
    return out


# two words: "b" (steps 10-40, with a 100 ms pause inside) and "c" (steps 200-230)
WORDS = {**{k: [1] for k in range(10, 25)}, **{k: [1, 0] for k in range(45, 50)},
         **{k: [2] for k in range(200, 230)}, 205: [0, 2]}


@pytest.mark.parametrize("size", [1, 7, 400])
def test_one_detection_per_word_at_its_end_however_the_stream_is_cut(size: int) -> None:
    ro = readout(gap_ms=150.0)
    dets = []
    for r in chunks(raster(WORDS, 400), size):
        dets += ro.update(r)
    dets += ro.flush()
    assert [d.label for d in dets] == ["b", "c"]
    first, second = dets
    assert first.extra["counts"] == [5, 20, 0] and first.extra["decided"]
    assert first.extra["start_us"] == 10 * DT and first.t_sensor_us == 49 * DT
    assert first.score == pytest.approx(20 / 25)
    assert second.extra["counts"] == [1, 0, 30] and second.t_sensor_us == 229 * DT
    assert ro.status() == {"utterances": 2, "undecided": 0, "open": False}


def test_the_decision_waits_for_the_silence_gap() -> None:
    ro = readout(gap_ms=150.0)
    r = raster(WORDS, 400)
    # the first word ends at step 49: nothing is decided until 150 ms (30 steps) later
    assert ro.update(chunks(r, 79)[0]) == []  # steps 0-78: 29 silent steps so far
    dets = ro.update(chunks(r, 1)[79])  # step 79 is 150 ms after the last spike
    assert [d.label for d in dets] == ["b"]


def test_a_short_gap_does_not_split_and_a_long_word_is_cut_at_max_ms() -> None:
    ro = readout(gap_ms=1000.0)  # the 755 ms between the words is no longer an end
    assert [d.label for d in ro.update(raster(WORDS, 400))] == []
    (d,) = ro.flush()
    assert d.label == "c" and d.extra["counts"] == [6, 20, 30]
    long = {k: [0] for k in range(0, 100)}
    ro = readout(gap_ms=150.0, max_ms=200.0)  # 40 steps
    dets = ro.update(raster(long, 100)) + ro.flush()
    assert [d.label for d in dets] == ["a", "a", "a"]
    assert [d.extra["counts"][0] for d in dets] == [40, 40, 20]


def test_a_tie_is_reported_undecided_or_not_at_all() -> None:
    tie = {3: [0, 1], 4: [2]}
    ro = readout()
    (d,) = ro.update(raster(tie, 5)) + ro.flush()
    assert d.label == "?" and d.score == 0.0 and d.extra["decided"] is False
    assert d.extra["counts"] == [1, 1, 1]
    ro = readout(undecided_label="")
    assert ro.update(raster(tie, 5)) + ro.flush() == []
    assert ro.status()["undecided"] == 1
    ro = readout(min_spikes=5)
    (d,) = ro.update(raster({1: [0]}, 2)) + ro.flush()
    assert d.label == "?"


def test_silence_alone_decides_nothing_and_sizes_are_checked() -> None:
    ro = readout()
    assert ro.update(raster({}, 500)) == [] and ro.flush() == []

    class Net:
        id = "net"
        n_outputs = 4

    assert ro.check([Net()]) and "3 input neurons" in ro.check([Net()])[0]
