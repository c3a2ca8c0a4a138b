"""NIR graph -> `NetworkSpec`: neuron nodes become layers, the linear nodes between two neuron
nodes (or an Input and a neuron node) become one projection.

Time. NIR fixes no time step: `dt` (in the file's time unit, the one of its ``tau``) is given,
or taken from an exporter preset (``snntorch``: 1e-4; ``norse``: 1e-3 and tau = tau_file / dt,
the Norse <= 1.1 export bug) or from the graph metadata ``dt_s`` that edgesnn's own export
writes. Neuron updates are forward Euler with the node's input of the same step::

    LIF:     v += dt/tau * (v_leak - v + r*x)
    CubaLIF: I += dt/tau_syn * (-I + w_in*x);  v += dt/tau_mem * (v_leak - v + r*I)   (new I)
    IF:      v += dt * r * x
    then     z = v > v_threshold;  v = where(z, v_reset, v)

Hops. NIR (and the frameworks that export it) evaluate a feed-forward chain within one step;
the core spends one step per projection. With ``hop_delay="compensate"`` (the default for
foreign files) each layer sits at a depth d (inputs 0, a layer one more than its deepest source)
and reproduces the NIR layer exactly, shifted by d steps; a projection gets ``delay_steps =
d(target) - d(source) - 1`` plus its Delay nodes. Constant drives (Affine/Conv biases, the LIF
leak) come from a one-neuron layer firing every step (``nir_bias``) over projections delayed to
the target's depth, so they start exactly when the first input does. ``hop_delay="native"``
(edgesnn's own export, metadata ``per_hop_delay_steps = 1``) keeps one step per hop.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.core.spec import NetworkSpec
from edgesnn.errors import ConfigError, FormatError, Problem
from edgesnn.nir.ops import (
    LINEAR_TYPES,
    apply_linear,
    conv_params,
    delay_steps,
    pool_params,
)
from edgesnn.nir.reader import NirGraph, NirNode, read_nir_graph

NEURON_TYPES = ("LIF", "CubaLIF", "IF")
#: NIR node types this importer knows but cannot map, with the reason.
UNSUPPORTED = {
    "LI": "a non-spiking leaky integrator (the core's layers emit spikes only)",
    "CubaLI": "a non-spiking current-based integrator (the core's layers emit spikes only)",
    "I": "a non-spiking integrator (the core's layers emit spikes only)",
    "Threshold": "a stand-alone threshold without a membrane",
    "Conv1d": "a 1-D convolution",
    "NIRGraph": "a nested graph (flatten it before export)",
}
EXPORTERS = {
    # name: (dt in the file's time unit, tau correction factor applied as tau / dt)
    "snntorch": (1e-4, False),
    "norse": (1e-3, True),
    "edgesnn": (None, False),
}
HOP_MODES = ("auto", "compensate", "native")
BIAS_LAYER = "nir_bias"
#: largest (source neurons x elements on the path) composed into one projection numerically
MAX_COMPOSE = 50_000_000


@dataclass
class LayerMap:
    """How one NIR node became a layer."""

    layer: str
    nir_type: str
    model: str
    n: int
    shape: tuple[int, ...]
    depth: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    input_gain: tuple[float, float] = (1.0, 1.0)
    notes: list[str] = field(default_factory=list)


@dataclass
class ProjectionMap:
    """How the linear nodes between two layers became one projection."""

    source: str
    target: str
    rule: str
    nir_nodes: list[str]
    delay_steps: int
    weights: int


@dataclass
class NirImport:
    """The spec and a report of the mapping (`summary()` prints it)."""

    spec: NetworkSpec
    path: str
    version: str
    dt: float
    dt_us: int
    hop_delay: str
    tau_fix: bool
    layers: list[LayerMap]
    projections: list[ProjectionMap]
    notes: list[str]

    def shift_steps(self, layer: str) -> int:
        """Steps by which `layer` lags the NIR node of the same name (0 in native mode)."""
        if self.hop_delay == "native":
            return 0
        for lm in self.layers:
            if lm.layer == layer:
                return lm.depth
        raise KeyError(layer)

    def summary(self) -> str:
        """A human-readable table of the mapping."""
        lines = [
            f"NIR {self.version} {self.path}: dt = {self.dt:g} (file time unit) -> dt_us = "
            f"{self.dt_us}, hops: {self.hop_delay}"
            + (", tau = tau_file / dt (Norse <= 1.1 fix)" if self.tau_fix else "")
        ]
        for lm in self.layers:
            g = lm.input_gain
            gain = f"{g[0]:.7g}" if g[0] == g[1] else f"{g[0]:.7g}..{g[1]:.7g}"
            lines.append(
                f"  layer {lm.layer!r}: {lm.nir_type} {list(lm.shape)} -> {lm.model} n={lm.n}, "
                f"shift {lm.depth} step(s), input gain {gain}" + "".join(f"; {n}" for n in lm.notes)
            )
        for pm in self.projections:
            via = " -> ".join(pm.nir_nodes) if pm.nir_nodes else "direct edge"
            lines.append(
                f"  {pm.source} -> {pm.target}: {pm.rule} ({pm.weights} weights, delay "
                f"{pm.delay_steps}) from {via}"
            )
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def load_nir(path: str | Path, **options: Any) -> NetworkSpec:
    """The `NetworkSpec` of a NIR file (options as for `import_nir`)."""
    return import_nir(path, **options).spec


def import_nir(
    path: str | Path,
    *,
    dt: float | None = None,
    dt_us: int | None = None,
    exporter: str | None = None,
    norse_tau_fix: bool | None = None,
    hop_delay: str = "auto",
    dtype: str = "float64",
    max_delay_steps: int = 255,
    seed: int = 0,
) -> NirImport:
    """Read a NIR file and map it onto the core; ConfigError names every node it cannot map.

    dt: the step in the file's time unit (the unit of its tau); exporter: "snntorch",
    "norse" or "edgesnn" presets; dt_us: the core's step (default dt in seconds -> us).
    """
    where = str(path)
    graph = read_nir_graph(path)
    problems: list[Problem] = []
    if exporter is not None and exporter not in EXPORTERS:
        raise ConfigError([Problem("exporter", f"{exporter!r} is not one of {tuple(EXPORTERS)}")])
    if hop_delay not in HOP_MODES:
        raise ConfigError([Problem("hop_delay", f"{hop_delay!r} is not one of {HOP_MODES}")])
    meta_dt = graph.metadata.get("dt_s")
    preset_dt, preset_fix = EXPORTERS.get(exporter or "", (None, False))
    if dt is None:
        dt = preset_dt
    if dt is None and meta_dt is not None:
        dt = float(np.asarray(meta_dt).ravel()[0])
    if dt is None or not dt > 0:
        raise ConfigError(
            [
                Problem(
                    "dt",
                    "NIR files do not fix a time step: give dt (in the file's time unit, e.g. "
                    "1e-4 for snnTorch, 1e-3 for Norse) or exporter='snntorch'/'norse'",
                )
            ]
        )
    dt = float(dt)
    tau_fix = preset_fix if norse_tau_fix is None else bool(norse_tau_fix)
    if dt_us is None:
        dt_us = round(dt * 1e6)
        if dt_us < 1 or abs(dt * 1e6 - dt_us) > 1e-6 * dt_us:
            raise ConfigError(
                [Problem("dt_us", f"dt = {dt:g} s is not a whole number of us: give dt_us")]
            )
    if hop_delay == "auto":
        per_hop = graph.metadata.get("per_hop_delay_steps")
        native = per_hop is not None and int(np.asarray(per_hop).ravel()[0]) == 1
        hop_delay = "native" if native or exporter == "edgesnn" else "compensate"
    ctx = _Ctx(graph, where, dt, int(dt_us), tau_fix, hop_delay, dtype, problems)
    return ctx.build(max_delay_steps, seed)


class _Ctx:
    """One import: the graph, its order and shapes, and the spec being built."""

    def __init__(
        self,
        g: NirGraph,
        where: str,
        dt: float,
        dt_us: int,
        tau_fix: bool,
        hop: str,
        dtype: str,
        problems: list[Problem],
    ) -> None:
        self.g = g
        self.where = where
        self.dt = dt
        self.dt_us = dt_us
        self.tau_fix = tau_fix
        self.hop = hop
        self.dtype = dtype
        self.problems = problems
        self.notes: list[str] = []

    # --- graph structure ------------------------------------------------------------------------

    def _p(self, node: str, key: str | None, msg: str) -> None:
        path = f"nodes.{node}" + (f".{key}" if key else "")
        self.problems.append(Problem(path, msg, source=self.where))

    def _raise(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)

    def _structure(self) -> None:
        g = self.g
        for name, nd in g.nodes.items():
            if nd.type in UNSUPPORTED:
                self._p(name, None, f"NIR {nd.type} is not supported: {UNSUPPORTED[nd.type]}")
            elif nd.type not in (*NEURON_TYPES, *LINEAR_TYPES, "Input", "Output"):
                raise FormatError(
                    f"node {name!r} has unknown NIR type {nd.type!r}", path=self.where
                )
        self.preds: dict[str, list[str]] = defaultdict(list)
        self.succs: dict[str, list[str]] = defaultdict(list)
        for a, b in g.edges:
            for end in (a, b):
                if end not in g.nodes:
                    hint = " (edges into subgraphs are not supported)" if "." in end else ""
                    raise FormatError(
                        f"edge ({a!r}, {b!r}) names no node {end!r}{hint}", path=self.where
                    )
            if (a, b) in {(p, b) for p in self.preds[b]}:
                continue  # a repeated edge adds nothing
            self.preds[b].append(a)
            self.succs[a].append(b)
        for name, nd in g.nodes.items():
            if nd.type == "Input" and self.preds[name]:
                self._p(name, None, "an Input node has incoming edges")
            if nd.type == "Output" and self.succs[name]:
                self._p(name, None, "an Output node has outgoing edges")
        self._raise()
        # topological order (Kahn), ties broken by the order of the file's nodes
        indeg = {n: len(self.preds[n]) for n in g.nodes}
        ready = [n for n in g.nodes if indeg[n] == 0]
        order: list[str] = []
        while ready:
            n = ready.pop(0)
            order.append(n)
            for s in self.succs[n]:
                indeg[s] -= 1
                if indeg[s] == 0:
                    ready.append(s)
        if len(order) != len(g.nodes):
            cyc = sorted(n for n in g.nodes if indeg[n] > 0)
            for n in cyc:
                self._p(n, None, "is on a cycle: recurrent NIR graphs are not supported")
            self._raise()
        self.order = order

    def _shapes(self) -> None:
        self.shape: dict[str, tuple[int, ...]] = {}
        self.in_shape_of: dict[str, tuple[int, ...]] = {}
        for name in self.order:
            nd = self.g.nodes[name]
            ins = [self.shape[p] for p in self.preds[name] if p in self.shape]
            if nd.type == "Input":
                self.shape[name] = _io_shape(nd, "input_type", self)
                continue
            if nd.type == "Output":
                continue
            if nd.type in NEURON_TYPES:
                key = {"LIF": "tau", "CubaLIF": "tau_mem", "IF": "r"}[nd.type]
                if key not in nd.params:
                    self._p(name, key, f"missing (required by NIR {nd.type})")
                    continue
                shp = tuple(int(x) for x in np.shape(nd.params[key]))
                self.shape[name] = shp or (1,)
                n = int(np.prod(self.shape[name]))
                for p, s in zip(self.preds[name], ins, strict=False):
                    if int(np.prod(s)) != n:
                        self._p(name, None, f"input from {p!r} has {int(np.prod(s))} elements, "
                                f"the node has {n}")  # fmt: skip
                continue
            if not ins:
                continue  # a linear node fed by nothing: contributes its bias only
            if any(s != ins[0] for s in ins):
                self._p(name, None, f"its inputs have different shapes {ins}")
                continue
            in_shape = ins[0]
            if nd.type == "Conv2d":
                in_shape = self._conv_in_shape(nd, in_shape)
                if in_shape is None:
                    continue
            try:
                y = apply_linear(nd, np.zeros((1, *in_shape)), bias=False)
            except (ValueError, KeyError) as e:
                self._p(name, None, f"NIR {nd.type}: {e}")
                continue
            self.in_shape_of[name] = in_shape
            self.shape[name] = tuple(y.shape[1:])
        self._raise()

    def _conv_in_shape(self, nd: NirNode, s: tuple[int, ...]) -> tuple[int, ...] | None:
        w = np.asarray(nd.params.get("weight", np.zeros((0,))))
        hw = nd.params.get("input_shape")
        if len(s) == 3 or w.ndim != 4:
            return s
        groups = int(np.asarray(nd.params.get("groups", 1)).ravel()[0])
        if hw is not None and np.size(hw) == 2:
            full = (int(w.shape[1]) * groups, *(int(x) for x in np.ravel(hw)))
            if int(np.prod(full)) == int(np.prod(s)):
                return full
        self._p(nd.name, "input_shape", f"cannot read its input {s} as (C, H, W)")
        return None

    # --- neurons --------------------------------------------------------------------------------

    def _vec(self, nd: NirNode, key: str, n: int, default: float | None = None) -> np.ndarray:
        if key not in nd.params:
            if default is None:
                self._p(nd.name, key, f"missing (required by NIR {nd.type})")
                return np.full(n, np.nan)
            return np.full(n, float(default))
        try:
            a = np.asarray(nd.params[key], dtype=np.float64)
        except (TypeError, ValueError):
            self._p(nd.name, key, "is not numeric")
            return np.full(n, np.nan)
        if a.size == 1:
            a = np.full(n, float(a.ravel()[0]))
        if a.size != n:
            self._p(nd.name, key, f"has {a.size} values for {n} neurons")
            return np.full(n, np.nan)
        if not np.all(np.isfinite(a)):
            self._p(nd.name, key, "has values that are not finite")
        return a.ravel()

    def _uniform(self, nd: NirNode, key: str, a: np.ndarray) -> float:
        if a.size and np.all(a == a[0]):
            return float(a[0])
        if not np.all(np.isnan(a)):
            self._p(nd.name, key, f"differs between neurons ({np.nanmin(a):.7g} .. "
                    f"{np.nanmax(a):.7g}); an edgesnn layer has one value")  # fmt: skip
        return float("nan")

    def _threshold(self, nd: NirNode, n: int) -> tuple[float, np.ndarray, float]:
        """(v_th, per-neuron membrane scale, v_reset): non-uniform thresholds are folded into a
        per-neuron scale of the membrane (v' = v / theta), which keeps every comparison."""
        th = self._vec(nd, "v_threshold", n)
        vr = self._vec(nd, "v_reset", n, default=0.0)
        if np.all(th == th[0]):
            return float(th[0]), np.ones(n), self._uniform(nd, "v_reset", vr)
        if np.any(th <= 0):
            self._p(nd.name, "v_threshold", "differs between neurons and is not positive")
            return float("nan"), np.ones(n), float("nan")
        scale = 1.0 / th
        return 1.0, scale, self._uniform(nd, "v_reset", vr * scale)

    def _tau(self, nd: NirNode, key: str, n: int) -> float:
        tau = self._uniform(nd, key, self._vec(nd, key, n))
        if self.tau_fix:
            tau = tau / self.dt
        if not tau > 0:
            if not np.isnan(tau):
                self._p(nd.name, key, f"must be positive, got {tau}")
            return float("nan")
        return tau

    def _neuron(self, name: str) -> _Neuron:
        nd = self.g.nodes[name]
        n = int(np.prod(self.shape[name]))
        dt, dt_ms = self.dt, self.dt_us / 1000.0
        out = _Neuron(name, nd.type, n)
        v_th, sv, v_reset = self._threshold(nd, n)
        if nd.type == "IF":
            r = self._vec(nd, "r", n)
            # the core's IF spikes at v >= v_th; NIR's at v > v_th: the next float up keeps '>'
            thr = np.nextafter(np.asarray(v_th, dtype=self.dtype), np.asarray(np.inf, self.dtype))
            out.model = "if"
            reset = str(nd.metadata.get("edgesnn_reset", "zero"))  # edgesnn's own exports
            if reset not in ("zero", "subtract"):
                reset = "zero"
            out.params = {"v_th": float(thr), "v_reset": v_reset, "reset": reset}
            out.gain = dt * r * sv
            out.notes.append("v_th = next float above the NIR threshold (IF compares >=)")
            if reset == "subtract":
                out.notes.append("reset by subtraction (edgesnn metadata)")
            return out
        v_leak = self._vec(nd, "v_leak", n, default=0.0) * sv
        if nd.type == "LIF":
            tau = self._tau(nd, "tau", n)
            r = self._vec(nd, "r", n)
            k = dt / tau
            out.model = "lif"
            out.params = {"tau_mem_ms": tau / dt * dt_ms}
            out.gain = k * r * sv
            if np.any(v_leak != 0):
                if self.hop == "native":
                    out.params["i_bias"] = v_leak.tolist()
                else:
                    out.drive = k * v_leak  # a delta input from the bias layer, exact
        else:  # CubaLIF
            tau_m = self._tau(nd, "tau_mem", n)
            tau_s = self._tau(nd, "tau_syn", n)
            r = self._vec(nd, "r", n)
            w_in = self._vec(nd, "w_in", n, default=1.0)
            k = dt / tau_m
            out.model = "cuba_lif"
            out.params = {
                "tau_mem_ms": tau_m / dt * dt_ms,
                "tau_syn_exc_ms": tau_s / dt * dt_ms,
                "tau_syn_inh_ms": tau_s / dt * dt_ms,
            }
            out.gain = (dt / tau_s) * w_in * r * sv
            out.k = k
            if np.any(v_leak != 0):
                out.params["i_bias"] = v_leak.tolist()
                out.leak_in_bias = v_leak
        out.params.update(
            {"v_rest": 0.0, "v_th": v_th, "v_reset": v_reset, "t_ref_ms": 0.0,
             "integration": "euler"}
        )  # fmt: skip
        if str(nd.metadata.get("edgesnn_reset", "zero")) == "subtract":  # edgesnn's exports
            out.params["reset"] = "subtract"
            out.notes.append("reset by subtraction (edgesnn metadata)")
        if np.any(sv != 1):
            out.notes.append("per-neuron thresholds folded into the membrane scale (v/theta)")
        return out

    # --- projections ----------------------------------------------------------------------------

    def _sources(self, target: str) -> dict[str, list[str]]:
        """Per source layer (Input or neuron node), the linear nodes on its paths to target."""
        found: dict[str, set[str]] = defaultdict(set)

        def back(node: str, trail: tuple[str, ...]) -> None:
            for p in self.preds[node]:
                t = self.g.nodes[p].type
                if t in LINEAR_TYPES:
                    back(p, (p, *trail))
                else:
                    found[p].update(trail)

        back(target, ())
        rank = {n: i for i, n in enumerate(self.order)}
        return {s: sorted(v, key=rank.__getitem__) for s, v in found.items()}

    def _push(self, start: str, x0: np.ndarray) -> dict[str, list]:
        """Push x0 (B, *output shape of start) forward through the linear nodes after start;
        per reached neuron or Output node, a list of (array (B, n), delay steps)."""
        vals: dict[str, tuple[np.ndarray, int]] = {start: (x0, 0)}
        arrivals: dict[str, list] = defaultdict(list)
        began = False
        for name in self.order:
            if name == start:
                began = True
                continue
            if not began:
                continue
            ins = [vals[p] for p in self.preds[name] if p in vals]
            if not ins:
                continue
            nd = self.g.nodes[name]
            if nd.type not in LINEAR_TYPES:
                for x, d in ins:
                    arrivals[name].append((x.reshape(x.shape[0], -1), d))
                continue
            delays = {d for _, d in ins}
            if len(delays) > 1:
                self._p(name, None, f"paths with different delays {sorted(delays)} merge here")
                return arrivals
            x = sum(a for a, _ in ins)
            x = x.reshape((x.shape[0], *self.in_shape_of[name]))
            d = delays.pop() + (delay_steps(nd, self.dt) if nd.type == "Delay" else 0)
            vals[name] = (apply_linear(nd, x, bias=False), d)
        return arrivals

    def _direct(self, src: str, tgt: str, via: list[str], gain: np.ndarray) -> tuple | None:
        """(rule, params) when the path is one Affine/Linear/Conv2d/pool node the core runs
        natively; None to compose numerically."""
        if len(via) != 1:
            return None
        nd = self.g.nodes[via[0]]
        if self.preds[via[0]] != [src] or self.succs[via[0]] != [tgt] or tgt in self.succs[src]:
            return None
        if nd.type in ("Affine", "Linear") and len(self.shape[src]) == 1:
            w = np.asarray(nd.params["weight"], dtype=np.float64).T * gain[None, :]
            return "dense", {"weight": w}
        in_shape = self.in_shape_of.get(via[0], ())
        out_shape = self.shape[tgt] if len(self.shape[tgt]) == 3 else self.shape.get(via[0], ())
        if len(in_shape) != 3 or len(out_shape) != 3:
            return None
        g3 = gain.reshape(out_shape)
        per_ch = g3.reshape(out_shape[0], -1)
        if not np.all(per_ch == per_ch[:, :1]):
            return None
        if nd.type == "Conv2d":
            stride, pad, dil, groups = conv_params(nd)
            if (stride[0] != stride[1] or len({*pad[0], *pad[1]}) != 1 or dil != (1, 1)
                    or groups != 1):  # fmt: skip
                return None
            k = np.asarray(nd.params["weight"], dtype=np.float64) * per_ch[:, :1, None, None]
            return "conv2d", {"in_shape": list(in_shape), "kernel": k, "stride": stride[0],
                              "padding": pad[0][0]}  # fmt: skip
        if nd.type in ("SumPool2d", "AvgPool2d"):
            (kh, kw), (sh, sw), pad = pool_params(nd)
            if kh != kw or sh != sw or pad != ((0, 0), (0, 0)) or np.any(gain != gain[0]):
                return None
            w = float(gain[0]) / (kh * kw if nd.type == "AvgPool2d" else 1)
            return "pool2d", {"in_shape": list(in_shape), "size": kh, "stride": sh, "weight": w}
        return None

    # --- build ----------------------------------------------------------------------------------

    def build(self, max_delay_steps: int, seed: int) -> NirImport:
        self._structure()
        self._shapes()
        g = self.g
        neurons = [n for n in self.order if g.nodes[n].type in NEURON_TYPES]
        inputs = [n for n in self.order if g.nodes[n].type == "Input"]
        info = {n: self._neuron(n) for n in neurons}
        self._raise()
        sources = {t: self._sources(t) for t in neurons}
        # depths (hops from the inputs)
        depth: dict[str, int] = {n: 0 for n in inputs}
        for t in neurons:
            depth[t] = 1 + max((depth[s] for s in sources[t]), default=0)
        spec = NetworkSpec(self.dt_us, seed, dtype=self.dtype, max_delay_steps=max_delay_steps)
        layers: list[LayerMap] = []
        for n in inputs:
            spec.add_layer(n, int(np.prod(self.shape[n])), "input")
            layers.append(LayerMap(n, "Input", "input", int(np.prod(self.shape[n])),
                                   self.shape[n]))  # fmt: skip
        projs: list[ProjectionMap] = []
        drives: dict[str, dict[int, np.ndarray]] = defaultdict(dict)  # target -> delay -> vec
        bias_name = BIAS_LAYER
        while bias_name in g.nodes:
            bias_name += "_"
        for t in neurons:
            nu = info[t]
            if nu.leak_in_bias is not None and self.hop == "compensate" and depth[t] > 0:
                # warm-up: the leak drives v from step 0, the first input arrives at step depth;
                # start v where `depth` leak-only steps land it on 0 (the NIR initial state)
                steps = depth[t]
                v0 = nu.leak_in_bias * (1.0 - (1.0 - nu.k) ** (-steps))
                if np.any(v0 > nu.params["v_th"]):
                    self._p(t, "v_leak", "the leak would fire the layer before its first "
                            "input arrives (hop compensation); use hop_delay='native'")  # fmt: skip
                nu.params["v_init"] = v0.tolist()
                nu.notes.append(f"v_leak via i_bias, v_init pre-compensates {steps} warm-up steps "
                                "(exact to rounding)")  # fmt: skip
            spec.add_layer(t, nu.n, nu.model, **nu.params)
            gain = nu.gain
            layers.append(LayerMap(t, nu.nir_type, nu.model, nu.n, self.shape[t], depth[t],
                                   dict(nu.params), (float(gain.min()), float(gain.max())),
                                   nu.notes))  # fmt: skip
            if nu.drive is not None:
                drives[t][0] = drives[t].get(0, 0) + nu.drive
        for t in neurons:
            gain = info[t].gain
            for s, via in sources[t].items():
                base = depth[t] - depth[s] - 1 if self.hop == "compensate" else 0
                direct = self._direct(s, t, via, gain)
                if direct is not None:
                    rule, params = direct
                    spec.connect(s, t, rule, synapse="exc", delay_steps=base, **params)
                    projs.append(ProjectionMap(s, t, rule, via, base, _nw(params)))
                    continue
                n_src = int(np.prod(self.shape[s]))
                size = n_src * max([int(np.prod(self.shape.get(v, (1,)))) for v in via] + [1])
                if size > MAX_COMPOSE:
                    self._p(t, None, f"the path from {s!r} through {via} is too large to compose "
                            f"into one projection ({size} elements)")  # fmt: skip
                    continue
                eye = np.eye(n_src).reshape((n_src, *self.shape[s]))
                try:
                    arr = self._push(s, eye).get(t, [])
                except ValueError as e:
                    self._p(t, None, f"composing the path from {s!r}: {e}")
                    continue
                by_delay: dict[int, np.ndarray] = {}
                for m, d in arr:
                    by_delay[d] = by_delay.get(d, 0) + m
                for d, m in sorted(by_delay.items()):
                    w = m * gain[None, :]
                    rule, params = _dense_or_sparse(w)
                    spec.connect(s, t, rule, synapse="exc", delay_steps=base + d, **params)
                    projs.append(ProjectionMap(s, t, rule, via, base + d, _nw(params)))
        # biases of linear nodes: each pushed on its own so its onset (delays) is kept
        for name in self.order:
            nd = g.nodes[name]
            if nd.type not in ("Affine", "Conv2d") or "bias" not in nd.params:
                continue
            if name not in self.shape:
                continue
            b = np.asarray(nd.params["bias"], dtype=np.float64)
            if not np.any(b):
                continue
            bmap = b.reshape(-1, 1, 1) * np.ones(self.shape[name]) if nd.type == "Conv2d" else b
            bmap = np.broadcast_to(bmap, self.shape[name])[None]
            try:
                arr = self._push(name, bmap)
            except ValueError as e:
                self._p(name, "bias", f"cannot be propagated: {e}")
                continue
            for t, lst in arr.items():
                if g.nodes[t].type not in NEURON_TYPES:
                    continue
                for m, d in lst:
                    drives[t][d] = drives[t].get(d, 0) + m[0] * info[t].gain
        self._raise()
        if drives:
            spec.add_layer(bias_name, 1, "if", v_th=1.0, v_reset=0.0, reset="zero", i_bias=1.0)
            layers.append(
                LayerMap(
                    bias_name,
                    "-",
                    "if",
                    1,
                    (1,),
                    0,
                    notes=["fires every step: carries biases and leaks"],
                )
            )
            for t in neurons:
                for d, vec in sorted(drives.get(t, {}).items()):
                    dd = (depth[t] - 1 if self.hop == "compensate" else 0) + d
                    w = np.asarray(vec, dtype=np.float64).reshape(1, -1)
                    spec.connect(bias_name, t, "dense", synapse="exc", delay_steps=dd, weight=w)
                    projs.append(ProjectionMap(bias_name, t, "dense", ["bias/leak"], dd, w.size))
            self.notes.append(f"biases and LIF leaks enter from layer {bias_name!r} (1 IF neuron "
                              "firing every step); it is not an input")  # fmt: skip
        outputs: list[str] = []
        for name in self.order:
            if g.nodes[name].type != "Output":
                continue
            for p in self.preds[name]:
                if g.nodes[p].type in NEURON_TYPES:
                    outputs.append(p)
                else:
                    self._p(name, None, f"is fed by {g.nodes[p].type} {p!r}: only spiking "
                            "nodes can be outputs of the core")  # fmt: skip
        self._raise()
        if outputs:
            spec.outputs = list(dict.fromkeys(outputs))
        elif neurons:
            spec.outputs = [neurons[-1]]
        if self.hop == "compensate":
            self.notes.append("NIR evaluates a chain within one step; each layer here lags its "
                              "NIR node by its depth (shift) in steps")  # fmt: skip
        probs = spec.validate("nir")
        if probs:
            raise ConfigError(probs)
        return NirImport(spec, self.where, self.g.version, self.dt, self.dt_us, self.hop,
                         self.tau_fix, layers, projs, self.notes)  # fmt: skip


@dataclass
class _Neuron:
    name: str
    nir_type: str
    n: int
    model: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    gain: np.ndarray = field(default_factory=lambda: np.ones(0))
    drive: np.ndarray | None = None  # per-step delta input from the bias layer
    leak_in_bias: np.ndarray | None = None
    k: float = 0.0
    notes: list[str] = field(default_factory=list)


def _io_shape(nd: NirNode, key: str, ctx: _Ctx) -> tuple[int, ...]:
    raw = nd.params.get("shape")
    if raw is None and isinstance(nd.params.get(key), dict):
        vals = [v for k, v in nd.params[key].items() if not k.startswith("__")]
        raw = vals[0] if vals else None
    if raw is None:
        ctx._p(nd.name, "shape", "missing")
        return (1,)
    try:
        shp = tuple(int(x) for x in np.ravel(raw))
    except (TypeError, ValueError):
        ctx._p(nd.name, "shape", f"is not a list of integers: {raw!r}")
        return (1,)
    if not shp or min(shp) <= 0:
        ctx._p(nd.name, "shape", f"{shp} is not a valid shape")
        return (1,)
    return shp


def _dense_or_sparse(w: np.ndarray) -> tuple[str, dict[str, Any]]:
    nz = np.nonzero(w)
    if w.size > 4096 and nz[0].size < 0.25 * w.size:
        return "sparse", {"pre": nz[0].tolist(), "post": nz[1].tolist(), "weight": w[nz]}
    return "dense", {"weight": w}


def _nw(params: dict[str, Any]) -> int:
    if "kernel" in params:
        return int(np.size(params["kernel"]))
    return int(np.size(params.get("weight", 1)))
