"""A float model made explicit for deployment: every projection as a synapse list.

`FloatModel.from_network(net)` reads a core `Network` (built or loaded from a model file):
layer parameters from its manifest and every projection, whatever its rule (dense, sparse,
one_to_one, wta, conv2d, pool2d), as (pre, post, weight * gain, delay, channel) arrays, from
the core's named records (`Network.projection_record`, `Network.layer_scalars`): no packed
offsets are read here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgesnn.core import Network
from edgesnn.core.models import MODELS


@dataclass
class FloatLayer:
    """One layer: model name, full parameters (defaults filled in), per-neuron bias."""

    name: str
    n: int
    model: str
    params: dict[str, Any]
    bias: np.ndarray
    #: per-step factors as the core packed them: k (membrane), d_exc, d_inh, n_ref (held steps)
    factors: dict[str, float] = field(default_factory=dict)


@dataclass
class FloatProjection:
    """One projection as explicit synapses (weights include the projection's gain)."""

    name: str
    source: str
    target: str
    rule: str
    pre: np.ndarray  # int32
    post: np.ndarray  # int32
    w: np.ndarray  # float64
    delay: np.ndarray  # int32, steps (0: arrives the next step)
    channel: int  # 0 excitatory current, 1 inhibitory current
    plasticity: dict[str, Any] | None = None


@dataclass
class FloatModel:
    """Layers and synapse lists of a core network, plus its time step."""

    dt_us: int
    layers: list[FloatLayer]
    projections: list[FloatProjection]
    inputs: list[str]
    outputs: list[str]
    manifest: dict[str, Any] = field(default_factory=dict)

    def layer(self, name: str) -> FloatLayer:
        for lay in self.layers:
            if lay.name == name:
                return lay
        raise KeyError(name)

    def incoming(self, name: str) -> list[FloatProjection]:
        return [p for p in self.projections if p.target == name]

    @property
    def plastic(self) -> list[FloatProjection]:
        return [p for p in self.projections if p.plasticity]

    @classmethod
    def from_network(cls, net: Network) -> FloatModel:
        """Read layers and synapses of `net` (its current weights, e.g. after learning)."""
        man = net.manifest
        layers = []
        for m in man["layers"]:
            md = MODELS[m["model"]]
            params = {**md.params, **m.get("params", {})}
            n = int(m["n"])
            b = np.asarray(params.get("i_bias", 0.0) or 0.0, dtype=np.float64)
            bias = np.full(n, float(b)) if b.ndim == 0 else b.reshape(n).astype(np.float64)
            layers.append(FloatLayer(m["name"], n, m["model"], params, bias,
                                     _factors(net, len(layers), m["model"])))  # fmt: skip
        projs = [_projection(net, i, layers) for i in range(len(man["projections"]))]
        return cls(int(man["dt_us"]), layers, projs, list(man.get("inputs", [])),
                   list(man.get("outputs", [])), man)  # fmt: skip


def _factors(net: Network, index: int, model: str) -> dict[str, float]:
    """The per-step factors the core packed for layer `index` (its truth, whatever the
    integration rule or refractory convention)."""
    if model not in ("lif", "cuba_lif", "adaptive_lif"):
        return {}
    packed = net.layer_scalars(index)
    out = {"k": packed["k"], "n_ref": int(round(packed["n_ref"])), "d_exc": 0.0, "d_inh": 0.0}
    if model == "cuba_lif":
        out["d_exc"] = packed["d_exc"]
        out["d_inh"] = packed["d_inh"]
    return out


def _projection(net: Network, index: int, layers: list[FloatLayer]) -> FloatProjection:
    rec = net.projection_record(index)
    meta = net.manifest["projections"][index]
    n_pre, n_post = layers[rec.pre].n, layers[rec.post].n
    wv = np.asarray(net.weights(index), dtype=np.float64).ravel()
    delays: np.ndarray | None = None
    if rec.rule == "dense":
        pre = np.repeat(np.arange(n_pre), n_post)
        post = np.tile(np.arange(n_post), n_pre)
        w = wv
    elif rec.rule == "sparse":
        assert rec.row_ptr is not None and rec.targets is not None
        nsyn = int(rec.row_ptr[-1])
        post = rec.targets.astype(np.int64)
        pre = np.repeat(np.arange(n_pre), np.diff(rec.row_ptr))
        w = wv[:nsyn]
        if rec.delays is not None:
            delays = rec.delays.astype(np.int32)
    elif rec.rule == "one_to_one":
        pre = post = np.arange(n_pre)
        w = wv[:n_pre]
    elif rec.rule == "wta":
        a, b = np.divmod(np.arange(n_pre * n_post), n_post)
        keep = a != b
        pre, post = a[keep], b[keep]
        w = np.full(pre.size, wv[0])
    elif rec.rule == "conv2d":
        pre, post, k = _conv_synapses(rec.geometry or {})
        w = wv[k]
    else:  # pool
        pre, post = _pool_synapses(rec.geometry or {})
        w = np.full(pre.size, wv[0])
    if delays is None:
        delays = np.full(pre.size, rec.delay, np.int32)
    return FloatProjection(
        name=meta["name"], source=meta["source"], target=meta["target"], rule=meta["rule"],
        pre=np.asarray(pre, np.int32), post=np.asarray(post, np.int32),
        w=np.asarray(w, np.float64) * rec.gain, delay=delays, channel=rec.channel,
        plasticity=meta.get("plasticity"),
    )  # fmt: skip


def _conv_synapses(g: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pre, post, kernel index) of every synapse of a conv2d projection (as the core's
    propagation loop enumerates them)."""
    c_in, h_in, w_in = g["c_in"], g["h_in"], g["w_in"]
    c_out, h_out, w_out = g["c_out"], g["h_out"], g["w_out"]
    kh, kw, st, pad = g["kh"], g["kw"], g["stride"], g["pad"]
    c, y, x, ky, kx = np.meshgrid(np.arange(c_in), np.arange(h_in), np.arange(w_in),
                                  np.arange(kh), np.arange(kw), indexing="ij")  # fmt: skip
    c, y, x, ky, kx = (a.ravel() for a in (c, y, x, ky, kx))
    ny, nx = y + pad - ky, x + pad - kx
    ok = (ny >= 0) & (nx >= 0) & (ny % st == 0) & (nx % st == 0)
    ok &= (ny // st < h_out) & (nx // st < w_out)
    c, y, x, ky, kx, ny, nx = (a[ok] for a in (c, y, x, ky, kx, ny, nx))
    pre0 = (c * h_in + y) * w_in + x
    o = (ny // st) * w_out + nx // st
    kbase = (c * kh + ky) * kw + kx
    co = np.arange(c_out)
    pre = np.repeat(pre0, c_out)
    post = (o[:, None] + co[None, :] * h_out * w_out).ravel()
    kidx = (kbase[:, None] + co[None, :] * c_in * kh * kw).ravel()
    return pre, post, kidx


def _pool_synapses(g: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """(pre, post) of every synapse of a pool2d projection."""
    c_in, h_in, w_in = g["c_in"], g["h_in"], g["w_in"]
    h_out, w_out = g["h_out"], g["w_out"]
    sy, sx, st = g["kh"], g["kw"], g["stride"]
    c, oy, ox, dy, dx = np.meshgrid(np.arange(c_in), np.arange(h_out), np.arange(w_out),
                                    np.arange(sy), np.arange(sx), indexing="ij")  # fmt: skip
    c, oy, ox, dy, dx = (a.ravel() for a in (c, oy, ox, dy, dx))
    y, x = oy * st + dy, ox * st + dx
    ok = (y < h_in) & (x < w_in)
    pre = ((c * h_in + y) * w_in + x)[ok]
    post = ((c * h_out + oy) * w_out + ox)[ok]
    order = np.argsort(pre, kind="stable")
    return pre[order], post[order]
