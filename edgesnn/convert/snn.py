"""ANN-to-SNN conversion of ReLU MLPs and small CNNs into core networks, measured against the ANN.

Rate coding (Diehl et al. 2015; Rueckauer et al. 2017): every ANN layer becomes a layer of
``if`` neurons (threshold 1, reset by subtraction, membrane starting at `v_init`) fed by a
dense projection with the balanced weights ``W_l * lambda_{l-1} / lambda_l`` and a constant
drive ``i_bias = b_l / lambda_l`` (`edgesnn.convert.balance`); a neuron's spike rate per step
then approximates ``relu(a_l) / lambda_l``. The inputs are first normalised to [0, 1] with
``x01 = clip((x - lo) / (hi - lo), 0, 1)`` (lo/hi per feature, from the calibration data unless
given; folded exactly into the first layer) and enter as spike trains over `steps` steps:

- ``current`` (default): constant-current coding. Input channel c is an IF neuron with constant
  input current x01_c, threshold 1 and reset by subtraction: a phase accumulator spikes when it
  reaches 1 (x01 = 1 spikes every step from step 0). This is the `rate` encoder of a pipeline
  with ``mode = "regular"`` and ``max_rate_hz = 1e6 / dt_us``.
- ``poisson``: a spike with probability x01_c in every step (the `rate` encoder's default
  mode, same maximum rate), seeded.

IF neurons integrate without loss, so a network fed one input after another without a reset
carries each input's (often strongly negative) membranes into the next and falls silent: the
evaluation here resets before every input. For a stream that is never reset (a pipeline),
``neuron="lif"`` converts into ``lif`` layers (leak with `tau_mem_ms`, reset to 0, bias
``b / k`` with ``k = 1 - exp(-dt / tau)``), which forget: on the digits the same accuracy, also
when the inputs follow each other without a reset.

Time-to-first-spike coding: see `edgesnn.convert.ttfs`.

Small CNNs (`ReluCNN`: conv2d + ReLU, average pooling, dense) convert the same way with
`convert_cnn` (rate or TTFS coding): a convolution becomes a ``conv2d`` projection with the
balanced kernel into an IF layer (bias per channel), a pooling layer a ``pool2d`` projection of
weight ``lambda_prev / (size^2 lambda)`` into an IF layer with its own scale, the dense layers
as in an MLP. Images are normalised by one scale (x / hi, inputs must not be negative), since a
shared kernel cannot take a per-pixel range.

The class is read from the output layer with the runtime's rule (`edgesnn.evaluation.decide`):
the neuron with most spikes so far; a tie for the top, or no spike at all, is no decision.
Every projection has the core's one step of latency, so the first output spike of an L-layer
network can come at step L at the earliest.

The model file is `Network.save`'s format; its manifest carries a ``conversion`` table (coding,
input normalisation lo/hi, steps, scales) that says how to feed the network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.convert.ann import AvgPool2d, Conv2d, Dense, ReluCNN, ReluMLP, conv2d_forward
from edgesnn.convert.balance import data_scales, model_scales
from edgesnn.core import Network, NetworkSpec
from edgesnn.evaluation import decide

CODINGS = ("rate", "ttfs")
RATE_INPUTS = ("current", "poisson")
#: neuron models of rate-coded networks
NEURONS = ("if", "lif")
#: the manifest key of a converted model's recipe
MANIFEST_KEY = "conversion"


@dataclass
class Conversion:
    """A converted network: its spec and everything needed to feed it and read it."""

    spec: NetworkSpec
    coding: str
    input_coding: str
    steps: int
    scales: list[float]
    lo: np.ndarray
    hi: np.ndarray
    percentile: float | None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_inputs(self) -> int:
        return int(self.lo.size)

    @property
    def n_outputs(self) -> int:
        return int(self.spec.layer(self.spec.outputs[0]).n)

    def normalise(self, x: np.ndarray) -> np.ndarray:
        """Inputs (n, n_in) as the network sees them: clip((x - lo) / (hi - lo), 0, 1)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            raise ValueError(f"inputs have shape {x.shape}; the model takes (n, {self.n_inputs})")
        return np.clip((x - self.lo) / (self.hi - self.lo), 0.0, 1.0)

    def record(self) -> dict[str, Any]:
        """The manifest table of the model file (JSON-safe)."""
        return {
            "method": "ann-to-snn",
            "coding": self.coding,
            "input_coding": self.input_coding,
            "steps": int(self.steps),
            "scales": [float(s) for s in self.scales],
            "percentile": self.percentile,
            "input_lo": self.lo.tolist(),
            "input_hi": self.hi.tolist(),
            **self.extra,
        }

    def network(self) -> Network:
        """A runnable core network whose manifest carries the conversion table."""
        net = Network(self.spec)
        net.manifest[MANIFEST_KEY] = self.record()
        return net

    def save(self, path: str | Path) -> None:
        """Write the model file (`Network.save` format, conversion table in the manifest)."""
        self.network().save(path)

    def encode(self, x: np.ndarray, steps: int | None = None,
               seed: int | np.random.Generator = 0) -> np.ndarray:
        """Input spikes (n, steps, n_in) bool for inputs x (n, n_in), as this coding feeds them
        (`seed`: of Poisson inputs, or a Generator to continue)."""
        steps = self.default_steps() if steps is None else int(steps)
        x01 = self.normalise(x)
        if self.coding == "ttfs":
            from edgesnn.convert.ttfs import encode_latency

            return encode_latency(x01, self.steps, steps)
        return encode_rate(x01, steps, self.input_coding, seed)

    def default_steps(self) -> int:
        """Steps to simulate per input: `steps` (rate) or every layer's window (ttfs)."""
        if self.coding == "ttfs":
            return int(self.extra["total_steps"])
        return int(self.steps)


def encode_rate(x01: np.ndarray, steps: int, mode: str = "current",
                seed: int | np.random.Generator = 0) -> np.ndarray:
    """Rate-coded spikes (n, steps, n_in) of normalised inputs x01 (n, n_in) in [0, 1]:
    ``current`` (IF encoder: phase accumulator, deterministic) or ``poisson`` (Bernoulli(x01)
    per step, numpy default_rng(seed), or the Generator given)."""
    if mode not in RATE_INPUTS:
        raise ValueError(f"input coding {mode!r} is not one of {RATE_INPUTS}")
    n, c = x01.shape
    out = np.zeros((n, steps, c), bool)
    if mode == "poisson":
        rng = np.random.default_rng(seed)
        for t in range(steps):
            out[:, t] = rng.random((n, c)) < x01
        return out
    phase = np.zeros((n, c))
    for t in range(steps):  # the pipeline rate encoder's regular mode, step by step
        phase += x01
        fire = phase >= 1.0
        phase[fire] -= 1.0
        out[:, t] = fire
    return out


def _input_range(
    calibration: np.ndarray | None, n_in: int, given: tuple[Any, Any] | None
) -> tuple[np.ndarray, np.ndarray]:
    if given is not None:
        lo = np.broadcast_to(np.asarray(given[0], np.float64), (n_in,)).copy()
        hi = np.broadcast_to(np.asarray(given[1], np.float64), (n_in,)).copy()
    elif calibration is not None:
        lo, hi = calibration.min(axis=0), calibration.max(axis=0)
    else:
        lo, hi = np.zeros(n_in), np.ones(n_in)
    if np.any(hi < lo):
        raise ValueError("input range: hi is below lo for some features")
    hi = np.where(hi > lo, hi, lo + 1.0)  # a constant feature keeps its value through lo
    return lo, hi


def normalised_ann(ann: ReluMLP, lo: np.ndarray, hi: np.ndarray) -> ReluMLP:
    """The same function of x01 = (x - lo) / (hi - lo): W0 * (hi - lo), b0 + lo @ W0."""
    w0 = ann.weights[0] * (hi - lo)[:, None]
    b0 = ann.biases[0] + lo @ ann.weights[0]
    return ReluMLP([w0, *ann.weights[1:]], [b0, *ann.biases[1:]])


def convert_mlp(
    ann: ReluMLP,
    calibration: np.ndarray | None = None,
    *,
    coding: str = "rate",
    percentile: float = 99.9,
    steps: int = 100,
    input_coding: str | None = None,
    input_range: tuple[Any, Any] | None = None,
    v_init: float = 0.5,
    dt_us: int = 1000,
    neuron: str = "if",
    tau_mem_ms: float = 20.0,
) -> Conversion:
    """Convert a ReLU MLP into a spiking network (see the module docstring).

    `calibration` (n, n_in): a sample of training inputs for the input range and data-based
    threshold balancing at `percentile` (None: model-based balancing, inputs assumed in [0, 1]
    unless `input_range` is given). `steps`: rate coding, the steps per input a pipeline
    should give it; ttfs, the window of each layer. `input_coding`: ``current`` or ``poisson``
    for rate coding. `v_init`: initial membrane of the IF neurons as a fraction of the
    threshold (0.5 halves the rounding error of rate coding, Rueckauer et al. 2017).
    `neuron`: ``if`` (exact rate conversion; the network must be reset between inputs) or
    ``lif`` with `tau_mem_ms` (forgets past inputs, for streams that are never reset).
    """
    if coding not in CODINGS:
        raise ValueError(f"coding {coding!r} is not one of {CODINGS}")
    if steps < 1:
        raise ValueError("steps must be at least 1")
    cal = None
    if calibration is not None:
        cal = np.asarray(calibration, dtype=np.float64)
        if cal.ndim != 2 or cal.shape[1] != ann.n_inputs or cal.shape[0] == 0:
            raise ValueError(f"calibration data has shape {cal.shape}; expected (n > 0, "
                             f"{ann.n_inputs})")
    lo, hi = _input_range(cal, ann.n_inputs, input_range)
    norm = normalised_ann(ann, lo, hi)
    if cal is not None:
        scales = data_scales(norm, np.clip((cal - lo) / (hi - lo), 0.0, 1.0), percentile)
        pct: float | None = float(percentile)
    else:
        scales = model_scales(norm)
        pct = None
    if coding == "ttfs":
        from edgesnn.convert.ttfs import ttfs_spec

        if neuron != "if":
            raise ValueError("ttfs coding builds its own neurons (neuron 'if' only)")
        if input_coding not in (None, "latency"):
            raise ValueError("ttfs coding takes latency-coded inputs (input_coding 'latency')")
        spec, extra = ttfs_spec(norm, scales, steps, dt_us)
        return Conversion(spec, coding, "latency", steps, scales, lo, hi, pct, extra)
    input_coding = input_coding or "current"
    if input_coding not in RATE_INPUTS:
        raise ValueError(f"input coding {input_coding!r} is not one of {RATE_INPUTS}")
    spec = rate_spec(norm, scales, v_init, dt_us, neuron, tau_mem_ms)
    return Conversion(spec, coding, input_coding, steps, scales, lo, hi, pct,
                      _rate_extra(v_init, neuron, tau_mem_ms))


def convert_cnn(
    cnn: ReluCNN,
    calibration: np.ndarray,
    *,
    coding: str = "rate",
    percentile: float = 99.9,
    steps: int = 100,
    input_coding: str | None = None,
    input_max: float | None = None,
    v_init: float = 0.5,
    dt_us: int = 1000,
    neuron: str = "if",
    tau_mem_ms: float = 20.0,
) -> Conversion:
    """Convert a small ReLU CNN (see the module docstring; `coding` and `steps` as in
    `convert_mlp`).

    `calibration` (n, C*H*W): training inputs for balancing (required) and, unless `input_max`
    is given, the input scale (their maximum); inputs are x / input_max, clipped to [0, 1].
    """
    if coding not in CODINGS:
        raise ValueError(f"coding {coding!r} is not one of {CODINGS}")
    if coding == "ttfs" and neuron != "if":
        raise ValueError("ttfs coding builds its own neurons (neuron 'if' only)")
    if coding == "ttfs" and input_coding not in (None, "latency"):
        raise ValueError("ttfs coding takes latency-coded inputs (input_coding 'latency')")
    if coding == "rate" and (input_coding or "current") not in RATE_INPUTS:
        raise ValueError(f"input coding {input_coding!r} is not one of {RATE_INPUTS}")
    cal = np.asarray(calibration, dtype=np.float64)
    if cal.ndim != 2 or cal.shape[1] != cnn.n_inputs or cal.shape[0] == 0:
        raise ValueError(f"calibration data has shape {cal.shape}; expected (n > 0, "
                         f"{cnn.n_inputs})")
    if cal.min() < 0:
        raise ValueError("CNN inputs must not be negative (one scale x / max normalises them)")
    hi = float(input_max) if input_max is not None else float(cal.max())
    if not hi > 0:
        raise ValueError("the input maximum must be positive")
    norm = _scaled_cnn(cnn, hi)
    scales = data_scales(norm, np.clip(cal / hi, 0.0, 1.0), percentile)
    lo_v, hi_v = np.zeros(cnn.n_inputs), np.full(cnn.n_inputs, hi)
    extra: dict[str, Any] = {"architecture": "cnn", "input_shape": list(cnn.input_shape)}
    if coding == "ttfs":
        from edgesnn.convert.ttfs import ttfs_spec

        spec, more = ttfs_spec(norm, scales, steps, dt_us)
        return Conversion(spec, coding, "latency", steps, scales, lo_v, hi_v, float(percentile),
                          {**more, **extra})
    spec = rate_spec(norm, scales, v_init, dt_us, neuron, tau_mem_ms)
    return Conversion(spec, "rate", input_coding or "current", steps, scales, lo_v, hi_v,
                      float(percentile), {**_rate_extra(v_init, neuron, tau_mem_ms), **extra})


def _rate_extra(v_init: float, neuron: str, tau_mem_ms: float) -> dict[str, Any]:
    out: dict[str, Any] = {"v_init": float(v_init), "neuron": neuron}
    if neuron == "lif":
        out["tau_mem_ms"] = float(tau_mem_ms)
    return out


def _scaled_cnn(cnn: ReluCNN, hi: float) -> ReluCNN:
    """The same CNN of x / hi: the first weighted layer's weights times hi (pooling is linear,
    so it commutes with the scale)."""
    layers: list[Conv2d | AvgPool2d | Dense] = []
    done = False
    for lay in cnn.layers:
        if not done and isinstance(lay, Conv2d):
            lay = Conv2d(lay.kernel * hi, lay.bias.copy(), lay.stride, lay.padding)
            done = True
        elif not done and isinstance(lay, Dense):
            lay = Dense(lay.weight * hi, lay.bias.copy())
            done = True
        layers.append(lay)
    return ReluCNN(cnn.input_shape, layers)


@dataclass
class Stage:
    """One converted layer: its neurons and the balanced projection from the layer before
    (``rule`` and its keys, weights or kernel already scaled; ``bias`` per neuron)."""

    name: str
    n: int
    rule: str
    params: dict[str, Any]
    bias: np.ndarray

    def weight_sum(self) -> np.ndarray:
        """Per neuron, the sum of the weights of all its incoming synapses."""
        if self.rule == "dense":
            return np.asarray(self.params["weight"]).sum(axis=0)
        if self.rule == "pool2d":
            size = int(self.params["size"])
            return np.full(self.n, float(self.params["weight"]) * size * size)
        k = np.asarray(self.params["kernel"])
        ones = np.ones((1, *self.params["in_shape"]))
        lay = Conv2d(k, np.zeros(k.shape[0]), int(self.params["stride"]),
                     int(self.params["padding"]))
        return conv2d_forward(ones, lay).reshape(-1)

    def scaled(self, factor: float) -> dict[str, Any]:
        """The projection keys with weights (or kernel) times `factor`."""
        key = "kernel" if self.rule == "conv2d" else "weight"
        return {**self.params, key: np.asarray(self.params[key]) * factor}


def stages(model: ReluMLP | ReluCNN, scales: list[float]) -> list[Stage]:
    """The balanced layers of a normalised ANN (inputs in [0, 1]) with layer scales `scales`:
    weights ``* lambda_prev / lambda``, biases ``/ lambda``; names hidden1.., conv1.., pool1..,
    out."""
    out: list[Stage] = []
    prev_scale = 1.0
    if isinstance(model, ReluMLP):
        for name, w, b, lam in zip(layer_names(len(model.weights)), model.weights, model.biases,
                                   scales, strict=True):
            out.append(Stage(name, w.shape[1], "dense", {"weight": w * (prev_scale / lam)},
                             b / lam))
            prev_scale = lam
        return out
    shape: tuple[int, ...] = model.input_shape
    n_dense = sum(isinstance(lay, Dense) for lay in model.layers)
    counts = {"conv": 0, "pool": 0, "dense": 0}
    for lay, out_shape, lam in zip(model.layers, model.shapes(), scales, strict=True):
        n = int(np.prod(out_shape))
        if isinstance(lay, Conv2d):
            counts["conv"] += 1
            out.append(Stage(f"conv{counts['conv']}", n, "conv2d",
                             {"in_shape": list(shape), "kernel": lay.kernel * (prev_scale / lam),
                              "stride": lay.stride, "padding": lay.padding},
                             np.repeat(lay.bias / lam, n // lay.bias.size)))
        elif isinstance(lay, AvgPool2d):
            counts["pool"] += 1
            out.append(Stage(f"pool{counts['pool']}", n, "pool2d",
                             {"in_shape": list(shape), "size": lay.size,
                              "stride": lay.stride or lay.size,
                              "weight": prev_scale / (lam * lay.size * lay.size)},
                             np.zeros(n)))
        else:
            counts["dense"] += 1
            name = "out" if counts["dense"] == n_dense else f"hidden{counts['dense']}"
            out.append(Stage(name, n, "dense", {"weight": lay.weight * (prev_scale / lam)},
                             lay.bias / lam))
        prev_scale, shape = lam, out_shape
    return out


def layer_names(n_layers: int) -> list[str]:
    """Names of the converted layers: hidden1, hidden2, ..., out."""
    return [f"hidden{k + 1}" for k in range(n_layers - 1)] + ["out"]


def rate_spec(model: ReluMLP | ReluCNN, scales: list[float], v_init: float = 0.5,
              dt_us: int = 1000, neuron: str = "if", tau_mem_ms: float = 20.0) -> NetworkSpec:
    """Rate-coded layers with balanced weights and biases for a normalised ANN or CNN (inputs
    in [0, 1]): ``if`` neurons (reset by subtraction), or ``lif`` neurons with membrane time
    constant `tau_mem_ms` (reset to 0; bias ``b / k`` so that it adds b per step at rest)."""
    if neuron not in NEURONS:
        raise ValueError(f"neuron {neuron!r} is not one of {NEURONS}")
    if neuron == "lif" and not tau_mem_ms > 0:
        raise ValueError("tau_mem_ms must be positive")
    k = 1.0 - math.exp(-(dt_us / 1000.0) / tau_mem_ms)  # the core's exact integration
    # float64: the converted network spikes exactly as the numpy simulation of the conversion
    spec = NetworkSpec(dt_us=dt_us, dtype="float64")
    spec.add_layer("in", model.n_inputs, "input")
    prev = "in"
    for st in stages(model, scales):
        bias = st.bias if np.any(st.bias) else 0.0
        if neuron == "if":
            spec.add_layer(st.name, st.n, "if", v_th=1.0, reset="subtract", i_bias=bias,
                           v_init=float(v_init))
        else:
            spec.add_layer(st.name, st.n, "lif", tau_mem_ms=float(tau_mem_ms), v_th=1.0,
                           v_reset=0.0, v_rest=0.0, i_bias=bias / k if np.any(st.bias) else 0.0,
                           v_init=float(v_init))
        spec.connect(prev, st.name, st.rule, **st.params, synapse="exc")
        prev = st.name
    spec.outputs = ["out"]
    return spec.check()


# --- running and measuring ----------------------------------------------------------------------


@dataclass
class SimResult:
    """Output spikes of every input, step by step, and the core's synaptic events."""

    out: np.ndarray  # (n, steps, n_out) uint8: spikes of each output neuron in each step
    syn_events: np.ndarray  # (n,) int64

    def counts(self, steps: int) -> np.ndarray:
        """Output spike counts (n, n_out) over the first `steps` steps."""
        return self.out[:, :steps].sum(axis=1, dtype=np.int64)

    def decisions(self, steps: int) -> np.ndarray:
        """The runtime's decision after `steps` steps (-1: none)."""
        return decide(self.counts(steps))

    def first_spike(self) -> np.ndarray:
        """Step of the first output spike of each input (-1: none)."""
        any_spk = self.out.any(axis=2)
        first = np.argmax(any_spk, axis=1)
        return np.where(any_spk.any(axis=1), first, -1)


def simulate(net: Network, spikes: np.ndarray, *, reset: bool = True) -> SimResult:
    """Run the core on input spikes (n, steps, n_in) bool, from reset for every input, or
    (`reset` false) one input after the other from the network's present state, as a pipeline
    streams them."""
    n, steps, _ = spikes.shape
    out = np.zeros((n, steps, net.n_outputs), np.uint8)
    syn = np.zeros(n, np.int64)
    for i in range(n):
        t, c = np.nonzero(spikes[i])
        ptr = np.zeros(steps + 1, np.int64)
        np.cumsum(np.bincount(t, minlength=steps), out=ptr[1:])
        if reset:
            net.reset()
        rec = net.run(ptr, c.astype(np.int32), steps)
        k = np.repeat(np.arange(steps), np.diff(rec.ptr))
        np.add.at(out[i], (k, rec.idx), 1)
        syn[i] = rec.syn_events
    return SimResult(out, syn)


def checkpoints(steps: int) -> list[int]:
    """Steps at which accuracy is reported: 10, 20, 50, 100, 200, ... up to and with `steps`."""
    marks = [m for m in (10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if m < steps]
    return [*marks, int(steps)]


def evaluate(
    ann: ReluMLP | ReluCNN,
    conv: Conversion,
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    steps: int | None = None,
    seed: int = 0,
    net: Network | None = None,
    chunk: int = 1000,
    keep_decisions: bool = False,
    stream: bool = False,
) -> dict[str, Any]:
    """ANN against SNN on inputs x (labels y optional): accuracy (or agreement with the ANN
    without labels) and undecided inputs per number of steps, latency and synaptic events.
    Inputs are encoded and run `chunk` at a time; Poisson inputs come from one generator
    seeded with `seed`. `keep_decisions` adds the SNN's decisions after all steps
    (``decisions``, -1: none) and the ANN's (``ann_decisions``). `stream`: the inputs follow
    each other without a reset (a pipeline's view; rate coding), counted per input."""
    steps = conv.default_steps() if steps is None else int(steps)
    net = conv.network() if net is None else net
    ann_pred = ann.predict(x)
    rng = np.random.default_rng(seed)
    if stream:
        net.reset()
    parts = [simulate(net, conv.encode(x[i : i + chunk], steps, rng), reset=not stream)
             for i in range(0, len(x), chunk)]  # bounded memory: spikes of `chunk` inputs
    sim = SimResult(np.concatenate([p.out for p in parts]),
                    np.concatenate([p.syn_events for p in parts]))
    marks = checkpoints(steps) if conv.coding == "rate" else [steps]
    per_steps = []
    for m in marks:
        d = sim.decisions(m)
        row: dict[str, Any] = {"steps": m, "agreement": float(np.mean(d == ann_pred)),
                               "undecided": int(np.sum(d < 0))}
        if y is not None:
            row["accuracy"] = float(np.mean(d == y))
        per_steps.append(row)
    first = sim.first_spike()
    out: dict[str, Any] = {
        "n": int(len(x)),
        "stream": bool(stream),
        "coding": conv.coding,
        "input_coding": conv.input_coding,
        "per_steps": per_steps,
        "first_output_spike_step_mean": float(first[first >= 0].mean()) if np.any(first >= 0)
        else None,
        "synaptic_events_per_input": float(sim.syn_events.mean()),
        "ann_macs": ann.macs,
    }
    if keep_decisions:
        out["decisions"] = sim.decisions(steps).tolist()
        out["ann_decisions"] = ann_pred.tolist()
    if y is not None:
        out["ann_accuracy"] = float(np.mean(ann_pred == y))
        if conv.coding == "rate":
            out["steps_to_ann_accuracy"] = _steps_within(sim, y, out["ann_accuracy"], 0.01)
    return out


def _steps_within(sim: SimResult, y: np.ndarray, target: float, tol: float) -> int | None:
    """The fewest steps after which the SNN's accuracy is within `tol` of `target` (None:
    never within the simulated steps). Checked at every step."""
    counts = np.zeros((sim.out.shape[0], sim.out.shape[2]), np.int64)
    for t in range(sim.out.shape[1]):
        counts += sim.out[:, t]
        if np.mean(decide(counts) == y) >= target - tol:
            return t + 1
    return None
