"""Direction-of-motion network for pooled DVS input: Reichardt detectors with synaptic delays.

Input: the `dvs_pool` layout, 2 polarity planes of gw x gh cells. For every cell, direction
(left, right, up, down) and polarity there is one LIF *detector* neuron. It receives the cell
itself with no delay and the cell's upstream neighbour (where an edge moving in that direction
comes from) through several delays that span the expected cell-crossing times. Only when both
arrive together does the short membrane time constant let it fire: a coincidence detector,
selective to one direction and a band of speeds. Four output neurons pool the detectors of
their direction and are inhibited by those of the opposite direction (opponent motion), with
lateral inhibition between outputs (winner-take-all). A `spike_count` readout over the four
outputs reports the direction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgesnn.core import NetworkSpec
from edgesnn.core.builders import register_builder

DIRECTIONS = ("left", "right", "up", "down")
_STEP = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
_OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}


@register_builder("motion_direction")
def build(
    dt_us: int = 1000,
    grid: list[int] | tuple[int, int] = (16, 16),
    delays_ms: list[float] | tuple[float, ...] = (8.0, 12.0, 16.0),
    w_center: float = 0.4,
    w_neighbour: float = 0.9,
    tau_detector_ms: float = 3.0,
    w_out: float = 0.5,
    w_opponent: float = -0.5,
    tau_out_ms: float = 20.0,
    w_wta: float = -1.0,
    seed: int = 0,
    **_: Any,
) -> NetworkSpec:
    """A NetworkSpec with layers in (2*gw*gh), det (8*gw*gh), out (4: left, right, up, down)."""
    gw, gh = int(grid[0]), int(grid[1])
    cells = gw * gh
    delays = sorted({max(0, round(d * 1000 / dt_us)) for d in delays_ms})
    pre, post, w, dl = [], [], [], []
    gy, gx = np.divmod(np.arange(cells), gw)
    for k, name in enumerate(DIRECTIONS):
        dx, dy = _STEP[name]
        sx, sy = gx - dx, gy - dy
        has_src = (sx >= 0) & (sx < gw) & (sy >= 0) & (sy < gh)
        src = sy * gw + sx
        for p in range(2):
            det = (2 * k + p) * cells + np.arange(cells)
            inp = p * cells + np.arange(cells)
            pre.append(inp)
            post.append(det)
            w.append(np.full(cells, w_center))
            dl.append(np.zeros(cells, np.int64))
            for d in delays:
                pre.append(p * cells + src[has_src])
                post.append(det[has_src])
                w.append(np.full(int(has_src.sum()), w_neighbour / len(delays)))
                dl.append(np.full(int(has_src.sum()), d, np.int64))
    spec = NetworkSpec(dt_us=dt_us, seed=seed)
    spec.add_layer("in", n=2 * cells, model="input")
    spec.add_layer("det", n=8 * cells, model="lif", tau_mem_ms=tau_detector_ms, v_th=1.0,
                   v_reset=0.0, t_ref_ms=0.0)
    spec.add_layer("out", n=4, model="lif", tau_mem_ms=tau_out_ms, v_th=1.0, v_reset=0.0,
                   t_ref_ms=0.0)
    spec.connect("in", "det", rule="sparse", pre=np.concatenate(pre), post=np.concatenate(post),
                 weight=np.concatenate(w), delay_steps=np.concatenate(dl))
    wmat = np.zeros((8 * cells, 4))
    for k, name in enumerate(DIRECTIONS):
        opp = DIRECTIONS.index(_OPPOSITE[name])
        for p in range(2):
            wmat[(2 * k + p) * cells:(2 * k + p + 1) * cells, k] = w_out
            wmat[(2 * opp + p) * cells:(2 * opp + p + 1) * cells, k] = w_opponent
    spec.connect("det", "out", rule="dense", weight=wmat)
    spec.connect("out", "out", rule="wta", weight=w_wta)
    spec.outputs = ["out"]
    return spec


def evaluate(
    detections: list[dict[str, Any]], segments: list[Any], slack_us: int = 30_000
) -> dict[str, Any]:
    """Score detections against the synthetic scene's ground truth.

    A detection is right when its `t_sensor_us` falls inside a segment (extended by `slack_us`
    for the network's delays) and its label is that segment's direction; a detection outside
    every segment is wrong. Coverage is the share of segments with at least one right detection.
    """
    right = wrong = 0
    hit: set[int] = set()
    starts = [s.t_start_us for s in segments]
    import bisect

    for d in detections:
        t = int(d["t_sensor_us"])
        i = bisect.bisect_right(starts, t) - 1
        seg = segments[i] if i >= 0 and t < segments[i].t_end_us + slack_us else None
        if seg is not None and seg.direction == d["label"]:
            right += 1
            hit.add(i)
        else:
            wrong += 1
    n = right + wrong
    return {
        "detections": n,
        "right": right,
        "accuracy": right / n if n else 0.0,
        "segments": len(segments),
        "coverage": len(hit) / len(segments) if segments else 0.0,
    }
