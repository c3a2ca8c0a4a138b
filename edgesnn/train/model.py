"""`FeedforwardSNN`: input -> dense -> layer -> dense -> ... -> output, trainable by BPTT.

The model holds the weights and biases being trained and the per-layer constants that the
core derives from the same parameters (`edgesnn.core.models.pack_params`), so the forward
pass here and `edgesnn.core.Network` built by `to_spec()` compute the same numbers. Each
projection is ``rule = "dense"``, ``synapse = "exc"``, ``delay_steps = 0`` (one step of
latency per hop); ``cuba_lif`` targets then take their input straight into the current, as
in the core. With `input_delays` (taps, in steps) the first layer also sees earlier steps of
the input: one dense projection per tap, delayed by its tap (a tapped delay line, which gives
a feedforward network the temporal context of a word); with `layer_delays` every later hop
is tapped the same way (a time-delay neural network).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.core import Network, NetworkSpec
from edgesnn.core.models import MODELS, pack_params
from edgesnn.train import kernels as TK

#: neuron models the trainer handles, with their kernel codes
TRAINABLE_MODELS = {"lif": TK.MODEL_LIF, "cuba_lif": TK.MODEL_CUBA}


@dataclass
class LayerDef:
    """One trainable layer: name, size, neuron model and its parameters (core names)."""

    name: str
    n: int
    model: str = "cuba_lif"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class LayerCache:
    """What the forward pass keeps for BPTT (all (rows, n))."""

    s: np.ndarray
    u: np.ndarray
    dsdu: np.ndarray
    act: np.ndarray


class FeedforwardSNN:
    """A chain of dense projections between LIF / CuBa-LIF layers, fed by `n_inputs` spikes."""

    def __init__(
        self,
        n_inputs: int,
        layers: list[LayerDef],
        dt_us: int = 1000,
        *,
        seed: int = 0,
        init_gain: float = 1.0,
        weights: list[np.ndarray] | None = None,
        biases: list[np.ndarray] | None = None,
        input_delays: list[int] | None = None,
        layer_delays: list[int] | None = None,
    ) -> None:
        if n_inputs <= 0 or not layers:
            raise ValueError("a model needs inputs and at least one layer")
        self.n_inputs = int(n_inputs)
        taps = sorted({int(d) for d in (input_delays or [0])})
        later = sorted({int(d) for d in (layer_delays or [0])})
        if taps[0] < 0 or later[0] < 0:
            raise ValueError(f"delays must not be negative (got {min(taps[0], later[0])})")
        #: delay taps (steps) of the input: the first layer sees the input spikes of the
        #: current step and of these earlier steps, one weight matrix per tap
        self.input_delays = taps
        #: delay taps (steps) of every later projection (hidden -> hidden, hidden -> out)
        self.layer_delays = later if len(layers) > 1 else [0]
        self.layers = list(layers)
        #: output neurons per label (label-major; > 1 for a folded ensemble, whose label
        #: counts are the sums of its members' counts: `edgesnn.train.ensemble`)
        self.neurons_per_label = 1
        self.dt_us = int(dt_us)
        self.seed = int(seed)
        self.consts: list[tuple[float, ...]] = []
        #: per layer: the reset subtracts v_th (``reset = "subtract"``) instead of setting v_reset
        self.subtract: list[bool] = []
        self.v_init: list[np.ndarray] = []
        for lay in self.layers:
            if lay.model not in TRAINABLE_MODELS:
                raise ValueError(
                    f"layer {lay.name!r}: model {lay.model!r} is not trainable here "
                    f"(use one of {', '.join(TRAINABLE_MODELS)})"
                )
            full = {**MODELS[lay.model].params, **lay.params}
            for key in lay.params:
                if key not in MODELS[lay.model].params:
                    raise ValueError(f"layer {lay.name!r}: unknown parameter {key!r}")
            head = pack_params(lay.model, {**full, "i_bias": 0.0}, 1, self.dt_us)
            k, v_rest, v_th, v_reset, n_ref = (float(x) for x in head[:5])
            d_syn = float(head[5]) if lay.model == "cuba_lif" else 0.0
            self.consts.append((k, v_rest, v_th, v_reset, n_ref, d_syn))
            self.subtract.append(full.get("reset", "zero") == "subtract")
            v0 = full.get("v_init")
            self.v_init.append(np.full(lay.n, v_rest if v0 is None else float(v0)))
        rng = np.random.default_rng(seed)
        sizes = [self.n_inputs] + [lay.n for lay in self.layers]
        fan = [sizes[li] * len(self.taps(li)) for li in range(len(self.layers))]
        if weights is None:
            weights = []
            for li, lay in enumerate(self.layers):
                k, v_rest, v_th, *_rest, d_syn = self.consts[li]
                # same steady-state membrane per input rate as a delta-synapse lif:
                # lif v = rate*w/k, cuba_lif v = rate*w/(1 - d)
                scale = (v_th - v_rest) * ((1.0 - d_syn) / k if lay.model == "cuba_lif" else 1.0)
                std = init_gain * scale / np.sqrt(fan[li])
                weights.append(rng.normal(0.0, std, (fan[li], lay.n)))
        self.weights = [np.ascontiguousarray(w, dtype=np.float64) for w in weights]
        if biases is None:
            biases = [np.zeros(lay.n) for lay in self.layers]
        self.biases = [np.ascontiguousarray(b, dtype=np.float64) for b in biases]
        for li, w in enumerate(self.weights):
            if w.shape != (fan[li], sizes[li + 1]):
                raise ValueError(f"weights[{li}] has shape {w.shape}, expected "
                                 f"{(fan[li], sizes[li + 1])}")

    def taps(self, li: int) -> list[int]:
        """The delay taps (steps) of the projection into layer `li`."""
        return self.input_delays if li == 0 else self.layer_delays

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n

    # --- forward / backward --------------------------------------------------------------

    def tap_inputs(self, s_in: np.ndarray, seg: np.ndarray) -> np.ndarray:
        """The input rows as the first layer sees them (`tapped` with the input taps)."""
        return tapped(s_in, seg, self.input_delays)

    def forward(
        self, s_in: np.ndarray, seg: np.ndarray, *, soft: bool = False, beta: float = 10.0,
        exact: bool = True,
    ) -> list[LayerCache]:
        """Run every layer over a minibatch (rows of s_in, samples by seg). `exact` sums the
        synaptic input as the core does (same spikes, bit for bit); otherwise by one matrix
        product per layer, several times faster, as training does."""
        caches = []
        s_pre = s_in
        for li, lay in enumerate(self.layers):
            s_pre = tapped(s_pre, seg, self.taps(li))
            rows = s_pre.shape[0]
            c = LayerCache(
                np.empty((rows, lay.n)),
                np.empty((rows, lay.n)),
                np.empty((rows, lay.n)),
                np.empty((rows, lay.n), np.uint8),
            )
            k, v_rest, v_th, v_reset, n_ref, d_syn = self.consts[li]
            if exact:
                TK.layer_forward(
                    s_pre, self.weights[li], seg, TRAINABLE_MODELS[lay.model], k, v_rest,
                    v_th, v_reset, self.subtract[li], n_ref, d_syn, self.biases[li], soft,
                    beta, c.s, c.u, c.dsdu, c.act, self.v_init[li],
                )
            else:
                x_in = np.empty((rows, lay.n))
                x_in[:1] = 0.0
                np.matmul(s_pre[:-1], self.weights[li], out=x_in[1:])
                TK.layer_forward_x(
                    x_in, seg, TRAINABLE_MODELS[lay.model], k, v_rest, v_th, v_reset,
                    self.subtract[li], n_ref, d_syn, self.biases[li], soft, beta, c.s, c.u,
                    c.dsdu, c.act, self.v_init[li],
                )
            caches.append(c)
            s_pre = c.s
        return caches

    def backward(
        self,
        s_in: np.ndarray,
        seg: np.ndarray,
        caches: list[LayerCache],
        g_s: list[np.ndarray | None],
        g_u_out: np.ndarray | None = None,
        *,
        detach_reset: bool = True,
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Gradients of the loss w.r.t. weights and biases, given dL/ds of each layer from
        the loss (None: none) and dL/du of the output layer (max-membrane loss)."""
        n_l = len(self.layers)
        g_w: list[np.ndarray] = [np.zeros(0)] * n_l
        g_b: list[np.ndarray] = [np.zeros(0)] * n_l
        first = seg[:-1]
        carry: np.ndarray | None = None
        empty = np.zeros((0, 0))
        for li in range(n_l - 1, -1, -1):
            c = caches[li]
            gs = g_s[li]
            if carry is not None:
                gs = carry if gs is None else gs + carry
            if gs is None:
                gs = np.zeros_like(c.s)
            g_x = np.empty_like(c.s)
            gb = np.zeros(self.layers[li].n)
            k, _, v_th, v_reset, _, d_syn = self.consts[li]
            gu = g_u_out if (li == n_l - 1 and g_u_out is not None) else empty
            TK.layer_backward(
                seg, TRAINABLE_MODELS[self.layers[li].model], k, d_syn, v_reset,
                self.subtract[li], v_th, c.s, c.u, c.dsdu, c.act, np.ascontiguousarray(gs), gu,
                detach_reset, g_x, gb,
            )
            # the first row of a sample received nothing: pairing row r with pre row r - 1
            # must not cross from one sample into the next
            g_x[first] = 0.0
            s_pre = s_in if li == 0 else caches[li - 1].s
            taps = self.taps(li)
            s_t = tapped(s_pre, seg, taps)
            g_w[li] = s_t[:-1].T @ g_x[1:]
            g_b[li] = gb
            if li > 0:
                g_t = np.zeros_like(s_t)
                g_t[:-1] = g_x[1:] @ self.weights[li].T
                carry = untapped(g_t, seg, taps)
        return g_w, g_b

    # --- the core ------------------------------------------------------------------------

    def to_spec(self, *, with_bias: bool = True) -> NetworkSpec:
        """The `NetworkSpec` that runs this model in `edgesnn.core`, in float64: the trainer's
        float64 forward pass and the core then give the same spikes."""
        spec = NetworkSpec(dt_us=self.dt_us, seed=self.seed, dtype="float64")
        spec.add_layer("in", self.n_inputs, "input")
        prev = "in"
        for li, lay in enumerate(self.layers):
            params = dict(lay.params)
            if with_bias and np.any(self.biases[li] != 0):
                params["i_bias"] = self.biases[li].copy()
            spec.add_layer(lay.name, lay.n, lay.model, **params)
            taps = self.taps(li)
            if len(taps) > 1:
                n = self.n_inputs if li == 0 else self.layers[li - 1].n
                for j, d in enumerate(taps):
                    spec.connect(prev, lay.name, "dense", synapse="exc", delay_steps=d,
                                 weight=self.weights[li][j * n : (j + 1) * n].copy())
            else:
                spec.connect(prev, lay.name, "dense", weight=self.weights[li].copy(),
                             synapse="exc")
            prev = lay.name
        return spec

    def to_network(self) -> Network:
        """A runnable core network with these weights."""
        return Network(self.to_spec())

    def save(self, path: str | Path) -> None:
        """Write the model file (`Network.save`: npz + JSON manifest, no pickle)."""
        self.to_network().save(path)

    @classmethod
    def from_network(cls, net: Network) -> FeedforwardSNN:
        """Rebuild a trainable model from a core network of the same shape (one input layer
        then a chain of dense exc projections into lif / cuba_lif layers; a hop may be several
        projections with distinct delays: its taps)."""
        m = net.manifest
        layers = m["layers"]
        projs = m["projections"]
        if len(layers) < 2 or layers[0]["model"] != "input":
            raise ValueError("not a feedforward chain: input layer then one projection per layer")
        defs, weights, biases = [], [], []
        taps: list[list[int]] = []
        pi = 0
        for li, lay in enumerate(layers[1:], start=1):
            src = layers[li - 1]["name"]
            hop = []
            while pi < len(projs) and projs[pi]["source"] == src and \
                    projs[pi]["target"] == lay["name"]:
                hop.append(pi)
                pi += 1
            if not hop:
                raise ValueError(f"not a feedforward chain: no projection {src}->{lay['name']}")
            mats, delays = [], []
            for k in hop:
                p = projs[k]
                if p["rule"] != "dense" or p.get("plasticity"):
                    raise ValueError(f"projection {p['name']} is not a plain dense projection")
                delays.append(net.delay_steps(k))
                mats.append(np.array(net.weights(k), dtype=np.float64))
            if len(hop) == 1 and delays != [0]:
                raise ValueError(f"projection {projs[hop[0]]['name']}: a single projection "
                                 "per hop must not be delayed")
            if delays != sorted(set(delays)):
                raise ValueError(f"tap projections {src}->{lay['name']} must have distinct, "
                                 "increasing delays")
            taps.append(delays)
            params = dict(lay["params"])
            bias = np.asarray(params.pop("i_bias", 0.0), np.float64)
            defs.append(LayerDef(lay["name"], int(lay["n"]), lay["model"], params))
            weights.append(np.concatenate(mats, axis=0))
            biases.append(np.broadcast_to(bias, (int(lay["n"]),)).copy())
        if pi != len(projs):
            raise ValueError("not a feedforward chain: input layer then one projection per layer")
        later = taps[1:]
        if any(t != later[0] for t in later):
            raise ValueError("the projections after the first must share one set of delay taps")
        out = cls(layers[0]["n"], defs, int(m["dt_us"]), seed=int(m.get("seed", 0)),
                  weights=weights, biases=biases, input_delays=taps[0],
                  layer_delays=later[0] if later else None)
        recipe = m.get("recipe") or {}
        out.neurons_per_label = int(recipe.get("neurons_per_label") or 1)
        return out


def tapped(s: np.ndarray, seg: np.ndarray, taps: list[int]) -> np.ndarray:
    """Rows of `s` as a tapped layer sees them: for each delay tap d (in order), the row
    r - d of the same sample (zero before the sample starts), side by side."""
    if taps == [0]:
        return s
    rows, n = s.shape
    start = np.repeat(seg[:-1], np.diff(seg))
    out = np.zeros((rows, n * len(taps)), s.dtype)
    r = np.arange(rows)
    for j, d in enumerate(taps):
        ok = r - d >= start
        out[ok, j * n : (j + 1) * n] = s[r[ok] - d]
    return out


def untapped(g: np.ndarray, seg: np.ndarray, taps: list[int]) -> np.ndarray:
    """The adjoint of `tapped`: gradients of the tapped rows summed back onto the rows of
    the untapped signal they copy."""
    if taps == [0]:
        return g
    rows = g.shape[0]
    n = g.shape[1] // len(taps)
    start = np.repeat(seg[:-1], np.diff(seg))
    out = np.zeros((rows, n), g.dtype)
    r = np.arange(rows)
    for j, d in enumerate(taps):
        ok = r - d >= start
        out[r[ok] - d] += g[ok, j * n : (j + 1) * n]
    return out
