"""EVT 3.0 decoder: events and counters against a slow reference, and repeated passes.

The decoder has a branch-free path for runs of ADDR_Y / ADDR_X / TIME_LOW / TIME_HIGH words
and a general path for everything else; the word streams below mix both, cross chunk
boundaries, wrap the time base and put coordinates outside the sensor.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from edgesnn_drivers.dvs import open_reader
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_readers import need

SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def slow_evt3(words: list[int], width: int, height: int) -> tuple[list[tuple], dict[str, int]]:
    """Word-by-word EVT 3.0 decoding with the reader's drop/skip counters."""
    out: list[tuple] = []
    c = {"out_of_range": 0, "before_time_reference": 0, "triggers": 0, "other": 0,
         "wraps": 0}
    y = th = None
    tl = wraps = base_x = vpol = 0

    def emit(t: int | None, x: int, p: int) -> None:
        if t is None or y is None:
            c["before_time_reference"] += 1
        elif x < width and y < height:
            out.append((t, x, y, p))
        else:
            c["out_of_range"] += 1

    for w in words:
        typ, t = w >> 12, None if th is None else wraps * 2**24 + th * 4096 + tl
        if typ == 0:
            y = w & 0x7FF
        elif typ == 2:
            emit(t, w & 0x7FF, (w >> 11) & 1)
        elif typ == 3:
            base_x, vpol = w & 0x7FF, (w >> 11) & 1
        elif typ in (4, 5):
            nbits = 12 if typ == 4 else 8
            for b in range(nbits):
                if (w >> b) & 1:
                    emit(t, base_x + b, vpol)
            base_x += nbits
        elif typ == 6:
            tl = w & 0xFFF
        elif typ == 8:
            if th is not None and (w & 0xFFF) < th:
                wraps += 1
                c["wraps"] += 1
            th = w & 0xFFF
        elif typ == 0xA:
            c["triggers"] += 1
        else:
            c["other"] += 1
    return out, c


# mostly the words of a sparse stream, sometimes vectors and others; TIME_HIGH steps up
# and now and then goes back (a wrap-around)
WORD = st.one_of(
    st.integers(0, 0x7FF).map(lambda v: 0x0000 | v),  # ADDR_Y (may exceed the height)
    st.integers(0, 0xFFF).map(lambda v: 0x2000 | v),  # ADDR_X with polarity
    st.integers(0, 0xFFF).map(lambda v: 0x6000 | v),  # TIME_LOW
    st.integers(0, 0xFFF).map(lambda v: 0x8000 | v),  # TIME_HIGH
    st.sampled_from([0x3000, 0x3805, 0x37F8, 0x4FFF, 0x4A5A, 0x50FF, 0x5081,
                     0x7003, 0xA101, 0xE001, 0xF123]),
)


@SETTINGS
@given(words=st.lists(WORD, max_size=600), geometry=st.sampled_from([(1280, 720), (40, 30)]),
       chunk=st.sampled_from([64, 130, 4096]))
def test_events_and_counters_match_slow_reference(tmp_path: Path, words: list[int],
                                                  geometry: tuple[int, int], chunk: int) -> None:
    width, height = geometry
    p = tmp_path / "w.raw"
    header = f"% evt 3.0\n% format EVT3;height={height};width={width}\n% end\n".encode()
    p.write_bytes(header + struct.pack(f"<{len(words)}H", *words))
    r = open_reader(p, chunk_bytes=chunk)
    got = [tuple(e) for e in r.read_all().tolist()]
    ref, counts = slow_evt3(words, width, height)
    assert got == ref
    assert {k: r.counters[k] for k in counts} == counts


def test_repeated_passes_are_identical_and_do_not_alias() -> None:
    r = open_reader(need("evt3_gen41_hd_pedestrians.raw"))
    first = list(r.iter_chunks())
    kept = [c.copy() for c in first]
    counters = r.counters
    second = list(r.iter_chunks())
    assert len(first) == len(second)
    for a, b, k in zip(first, second, kept):
        assert np.array_equal(a, k)  # the second pass did not write into the first's arrays
        assert np.array_equal(a, b)
    assert r.counters == counters
    again = [c.copy() for c in r.iter_chunks(reuse=True)]
    assert np.array_equal(np.concatenate(again), np.concatenate(kept))
