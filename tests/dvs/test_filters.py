"""DVS filters and the dvs_pool encoder against slow references on real recordings."""

from __future__ import annotations

import math

import numpy as np
import pytest
from edgesnn_drivers.dvs import open_reader, read_events

from edgesnn.components import BuildContext
from edgesnn.encoders.dvs import DVSPoolEncoder
from edgesnn.encoders.dvs_filters import DVSFilter
from edgesnn.events import EventBatch

from .test_readers import need


def ref_filter(ev: np.ndarray, w: int, h: int, roi=None, hot_window_us=0, hot_max=0,  # noqa: ANN001
               ba_us=0, refractory_us=0) -> list[tuple]:
    """The documented filter chain, one event at a time with dicts."""
    x0, y0, x1, y1 = roi or (0, 0, w, h)
    counts: dict = {}
    hot: set = set()
    win = None
    last_any: dict = {}
    last_pass: dict = {}
    out = []
    for t, x, y, p in ev.tolist():
        if not (x0 <= x < x1 and y0 <= y < y1):
            continue
        if hot_window_us and hot_max:
            wi = t // hot_window_us
            if wi != win:
                hot = {k for k, c in counts.items() if c > hot_max} if (
                    win is not None and wi == win + 1) else set()
                counts = {}
                win = wi
            c = counts.get((x, y), 0)
            counts[(x, y)] = c + 1
            if (x, y) in hot or c >= hot_max:
                continue
        if ba_us:
            ok = any(last_any.get((x + dx, y + dy), -(10**18)) >= t - ba_us
                     for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy)
            last_any[(x, y)] = t
            if not ok:
                continue
        if refractory_us:
            if t - last_pass.get((x, y), -(10**18)) < refractory_us:
                continue
            last_pass[(x, y)] = t
        out.append((t, x, y, p))
    return out


CASES = [
    dict(roi=(0.15, 0.1, 0.8, 0.7)),  # fractions of the sensor
    dict(hot_window_us=50_000, hot_max=3),
    dict(ba_us=2000),
    dict(refractory_us=5000),
    dict(roi=(0, 0, 0.5, 1), hot_window_us=20_000, hot_max=5, ba_us=5000, refractory_us=1000),
]


@pytest.mark.parametrize("kw", CASES, ids=["roi", "hot", "ba", "refractory", "all"])
@pytest.mark.parametrize("name,n", [("aedat2_dvs128_alex_walking_again.aedat", 19182),
                                    ("evt2_gen3_vga_sample.raw", 60000)])
def test_filters_match_reference_on_real_data(name: str, n: int, kw: dict) -> None:
    r = open_reader(need(name))
    ev = r.read_all()[:n]
    if "roi" in kw:
        fx0, fy0, fx1, fy1 = kw["roi"]
        kw = {**kw, "roi": (int(fx0 * r.width), int(fy0 * r.height), int(fx1 * r.width),
                            int(fy1 * r.height))}
    expect = ref_filter(ev, r.width, r.height, **kw)
    f = DVSFilter(r.width, r.height, roi=kw.get("roi"), hot_window_us=kw.get("hot_window_us", 0),
                  hot_max_events=kw.get("hot_max", 0), ba_us=kw.get("ba_us", 0),
                  refractory_us=kw.get("refractory_us", 0))
    # filter in uneven chunks: state must carry across batches
    parts = [f(ev[a:b]) for a, b in zip([0, 7, 1000, 5003], [7, 1000, 5003, len(ev)])]
    got = [tuple(e) for e in np.concatenate(parts).tolist()]
    assert got == expect
    assert 0 < len(got) < len(ev)  # the filter did something, and not everything
    assert sum(f.counters.values()) == len(ev) - len(got)


def ref_pool(ev: np.ndarray, w: int, h: int, gw: int, gh: int, dt_us: int, t0: int,
             n_steps: int, split: bool = True) -> set[tuple[int, int]]:
    fx, fy = math.ceil(w / gw), math.ceil(h / gh)
    out = set()
    for t, x, y, p in ev.tolist():
        k = (t - t0) // dt_us
        if 0 <= k < n_steps:
            out.add((k, (p * gw * gh if split else 0) + (y // fy) * gw + x // fx))
    return out


def test_dvs_pool_on_real_recording_matches_reference() -> None:
    r = open_reader(need("evt3_gen41_hd_pedestrians.raw"))
    params = DVSPoolEncoder.schema.validate({"grid": [16, 9]}, "", [])
    enc = DVSPoolEncoder("pool", params, BuildContext(dt_us=1000))
    spikes = set()
    t0 = None
    t_end = None
    rasters = [enc.encode(b) for b in r.iter_batches(batch_us=3000)] + [enc.flush()]
    for raster in rasters:
        if raster is None:
            continue
        t0 = raster.t0_us if t0 is None else t0
        assert t_end is None or raster.t0_us == t_end  # contiguous steps
        t_end = raster.t_end_us
        for k in range(raster.n_steps):
            step = (raster.t0_us - t0) // 1000 + k
            spikes |= {(step, int(c)) for c in raster.step_spikes(k)}
    n_steps = (t_end - t0) // 1000
    ev = r.read_all()
    assert spikes == ref_pool(ev, 1280, 720, 16, 9, 1000, t0, n_steps)
    assert enc.status() == {"events_in": 5000, "out_of_range": 0, "time_jumps": 0,
                            "jump_discarded": 0, "late_events": 0}


def test_dvs_pool_filters_are_applied() -> None:
    ev = read_events(need("aedat2_dvs128_alex_walking_again.aedat"))[:8000]
    meta = {"width": 128, "height": 128, "sensor": "DVS128"}
    batch = EventBatch("cam", 0, int(ev["t"][0]), int(ev["t"][-1]) + 1, ev, "dvs", 0, meta)
    kw = {"grid": [8, 8], "roi": [0, 0, 64, 128], "refractory_us": 2000, "ba_filter_us": 5000}
    enc = DVSPoolEncoder("pool", DVSPoolEncoder.schema.validate(kw, "", []),
                         BuildContext(dt_us=1000))
    enc.encode(batch)
    kept = ref_filter(ev, 128, 128, roi=(0, 0, 64, 128), ba_us=5000, refractory_us=2000)
    s = enc.status()
    dropped = s["dropped_roi"] + s["dropped_background_activity"] + s["dropped_refractory"]
    assert dropped == len(ev) - len(kept)
    problems: list = []
    DVSPoolEncoder.schema.validate({"roi": [5, 5, 2, 9]}, "enc", problems)
    assert problems and "roi" in problems[0].path
