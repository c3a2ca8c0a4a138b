"""`NetworkSpec`: layers and projections, described in Python or in the pipeline TOML.

The spec holds the description only (numpy arrays as given); `Network` packs it for the
kernels. `validate()` reports every problem at once with its dotted path; `from_dict()` checks
the TOML form strictly (unknown keys get a "did you mean").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgesnn.config.schema import Field, Schema, did_you_mean
from edgesnn.core import plasticity
from edgesnn.core.models import MODELS
from edgesnn.errors import ConfigError, Problem

RULES = ("dense", "sparse", "random", "one_to_one", "conv2d", "pool2d", "wta")
SYNAPSES = ("exc", "inh", "auto")
#: the plasticity rules registered in the core (`edgesnn.core.plasticity`), the default first
PLASTICITY_RULES = plasticity.names()
DTYPES = ("float64", "float32")

#: Parameters of the plasticity table of a projection (the rules, their keys and defaults come
#: from the registered rule modules, edgesnn.learning.rules, one module per rule).
PLASTICITY_SCHEMA = Schema(
    {
        "rule": Field(str, default=PLASTICITY_RULES[0], choices=PLASTICITY_RULES,
                      doc="Learning rule."),
        **plasticity.fields(),
    },
    doc="Online plasticity of one projection.",
)

_ARR = Any  # scalar, list or nested list in TOML; numpy arrays in Python

_PROJ_COMMON = {
    "source": Field(str, doc="Pre layer name."),
    "target": Field(str, doc="Post layer name."),
    "rule": Field(str, default="dense", choices=RULES, doc="Connectivity rule."),
    "weight": Field(_ARR, default=1.0, doc="Scalar or array (shape depends on the rule)."),
    "delay_steps": Field(_ARR, default=0, doc="Scalar or per-synapse integer delays (steps)."),
    "synapse": Field(str, default="auto", choices=SYNAPSES, doc="Target current."),
    "gain": Field(float, default=1.0, doc="Multiplies every weight when delivered."),
    "plasticity": Field(PLASTICITY_SCHEMA, default=None, doc="Online learning (optional)."),
}

#: Rule-specific keys of a projection.
RULE_KEYS: dict[str, dict[str, Field]] = {
    "dense": {
        "weight_jitter": Field(
            float, default=0.0, min=0.0, max=1.0,
            doc="Seeded relative jitter of the initial weights: each is multiplied by "
            "1 + U(-j, j), so identical neurons (e.g. a winner-take-all layer that learns) "
            "start different.",
        ),
        "seed": Field(int, default=None, doc="Seed of the jitter (default: network seed + "
                      "1000 + projection index)."),
    },
    "sparse": {
        "pre": Field(("list", int), doc="Pre neuron of each edge."),
        "post": Field(("list", int), doc="Post neuron of each edge."),
    },
    "random": {
        "p": Field(float, min=0.0, max=1.0, doc="Connection probability."),
        "seed": Field(int, default=None, doc="Seed (default: the network seed + index)."),
        "self_connections": Field(bool, default=False, doc="Allow i -> i when recurrent."),
    },
    "one_to_one": {},
    "conv2d": {
        "in_shape": Field(("list", int), length=3, doc="(C, H, W) of the source layer."),
        "kernel": Field(_ARR, doc="Kernel (C_out, C_in, kh, kw)."),
        "stride": Field(int, default=1, min=1),
        "padding": Field(int, default=0, min=0),
    },
    "pool2d": {
        "in_shape": Field(("list", int), length=3, doc="(C, H, W) of the source layer."),
        "size": Field(int, default=2, min=1),
        "stride": Field(int, default=None, doc="Default: size."),
    },
    "wta": {},
}


@dataclass
class LayerSpec:
    """One population of identical neurons."""

    name: str
    n: int
    model: str = "lif"
    params: dict[str, Any] = field(default_factory=dict)

    def full_params(self) -> dict[str, Any]:
        """Model defaults overlaid with the given parameters."""
        md = MODELS.get(self.model)
        return {**(md.params if md else {}), **self.params}


@dataclass
class ProjectionSpec:
    """Synapses from one layer to another by a connectivity rule."""

    source: str
    target: str
    rule: str = "dense"
    params: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.params.get(key, default)


def conv_out_shape(
    in_shape: tuple[int, int, int], c_out: int, kh: int, kw: int, stride: int, padding: int
) -> tuple[int, int, int]:
    """(C_out, H_out, W_out) of a 2-D convolution."""
    _, h, w = in_shape
    return (c_out, (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1)


def pool_out_shape(in_shape: tuple[int, int, int], size: int, stride: int) -> tuple[int, ...]:
    """(C, H_out, W_out) of a pooling window."""
    c, h, w = in_shape
    return (c, (h - size) // stride + 1, (w - size) // stride + 1)


def random_edges(spec: NetworkSpec, index: int) -> tuple[np.ndarray, np.ndarray]:
    """(pre, post) edges of the `random` projection `index`, sorted by pre then post.

    Each pre neuron draws its out-degree ~ Binomial(n_post, p) and that many distinct targets
    (numpy default_rng seeded by `seed`, or by the network seed + 1000 + index); i -> i is
    dropped in a recurrent projection unless self_connections is true.
    """
    proj = spec.projections[index]
    n_pre, n_post = spec.layer(proj.source).n, spec.layer(proj.target).n
    seed = proj.get("seed")
    rng = np.random.default_rng(spec.seed + 1000 + index if seed is None else seed)
    p = float(proj.get("p"))
    allow_self = bool(proj.get("self_connections", False)) or proj.source != proj.target
    pres, posts = [], []
    for i in range(n_pre):
        k = int(rng.binomial(n_post, p))
        if k:
            cols = np.sort(rng.choice(n_post, size=k, replace=False))
            if not allow_self:
                cols = cols[cols != i]
            pres.append(np.full(cols.size, i, np.int64))
            posts.append(cols.astype(np.int64))
    if not pres:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(pres), np.concatenate(posts)


class NetworkSpec:
    """Layers and projections of an SNN, clock-driven at `dt_us`.

    Build it with `add_layer` / `connect`, or from the TOML form with `from_dict`.
    """

    def __init__(
        self,
        dt_us: int = 1000,
        seed: int = 0,
        *,
        dtype: str = "float32",
        max_delay_steps: int = 255,
    ) -> None:
        self.dt_us = int(dt_us)
        self.seed = int(seed)
        self.dtype = dtype
        self.max_delay_steps = int(max_delay_steps)
        self.layers: list[LayerSpec] = []
        self.projections: list[ProjectionSpec] = []
        self._outputs: list[str] | None = None

    # --- building -------------------------------------------------------------------------------

    def add_layer(self, name: str, n: int, model: str = "lif", **params: Any) -> LayerSpec:
        """Add a layer of `n` neurons of `model` (see edgesnn.core.models)."""
        layer = LayerSpec(name, int(n), model, dict(params))
        self.layers.append(layer)
        return layer

    def connect(
        self, source: str, target: str, rule: str = "dense", **params: Any
    ) -> ProjectionSpec:
        """Add a projection `source -> target`; rule-specific keys as in RULE_KEYS."""
        proj = ProjectionSpec(source, target, rule, dict(params))
        self.projections.append(proj)
        return proj

    @property
    def outputs(self) -> list[str]:
        """Layers whose spikes are the network output (default: the last layer)."""
        if self._outputs is not None:
            return list(self._outputs)
        return [self.layers[-1].name] if self.layers else []

    @outputs.setter
    def outputs(self, names: list[str]) -> None:
        self._outputs = list(names)

    @property
    def inputs(self) -> list[str]:
        """Input layers, in order (their channels are concatenated)."""
        return [lay.name for lay in self.layers if lay.model == "input"]

    def layer(self, name: str) -> LayerSpec:
        for lay in self.layers:
            if lay.name == name:
                return lay
        raise KeyError(name)

    # --- validation -----------------------------------------------------------------------------

    def validate(self, path: str = "") -> list[Problem]:
        """Every problem of the description at once (shapes, unknown models, delays, ...)."""
        pre = f"{path}." if path else ""
        problems: list[Problem] = []
        if self.dt_us <= 0:
            problems.append(Problem(f"{pre}dt_us", "must be positive"))
        if self.dtype not in DTYPES:
            problems.append(Problem(f"{pre}dtype", f"{self.dtype!r} is not one of {DTYPES}"))
        names: dict[str, LayerSpec] = {}
        for i, lay in enumerate(self.layers):
            lp = f"{pre}layers[{i}]"
            if lay.name in names:
                problems.append(Problem(f"{lp}.name", f'duplicate layer name "{lay.name}"'))
            names[lay.name] = lay
            if lay.n <= 0:
                problems.append(Problem(f"{lp}.n", "must be positive"))
            md = MODELS.get(lay.model)
            if md is None:
                problems.append(
                    Problem(
                        f"{lp}.model",
                        f'unknown model "{lay.model}"' + did_you_mean(lay.model, MODELS),
                    )
                )
                continue
            for key, value in lay.params.items():
                if key not in md.params:
                    problems.append(
                        Problem(
                            f"{lp}.{key}",
                            f'unknown parameter "{key}" of model {lay.model}'
                            + did_you_mean(key, md.params),
                        )
                    )
                elif key in md.choices and value not in md.choices[key]:
                    problems.append(
                        Problem(f"{lp}.{key}", f"{value!r} is not one of {md.choices[key]}")
                    )
                elif key in ("i_bias", "v_init") and value is not None:
                    arr = np.asarray(value)
                    if arr.ndim > 0 and arr.size != lay.n:
                        problems.append(
                            Problem(f"{lp}.{key}", f"has {arr.size} values for {lay.n} neurons")
                        )
            full = lay.full_params()
            for key in (
                "tau_mem_ms",
                "tau_syn_exc_ms",
                "tau_syn_inh_ms",
                "tau_adapt_ms",
                "max_substep_ms",
            ):
                if key in full and not full[key] > 0:
                    problems.append(Problem(f"{lp}.{key}", "must be positive"))
            if "t_ref_ms" in full and full["t_ref_ms"] < 0:
                problems.append(Problem(f"{lp}.t_ref_ms", "must not be negative"))
        if not self.layers:
            problems.append(Problem(f"{pre}layers", "a network needs at least one layer"))
        for i, proj in enumerate(self.projections):
            problems += self._validate_projection(proj, f"{pre}projections[{i}]", names)
        for j, name in enumerate(self.outputs):
            if name not in names:
                problems.append(
                    Problem(
                        f"{pre}outputs[{j}]", f'unknown layer "{name}"' + did_you_mean(name, names)
                    )
                )
        return problems

    def _validate_projection(
        self, proj: ProjectionSpec, pp: str, names: dict[str, LayerSpec]
    ) -> list[Problem]:
        problems: list[Problem] = []
        src = names.get(proj.source)
        dst = names.get(proj.target)
        for key, name, lay in (("source", proj.source, src), ("target", proj.target, dst)):
            if lay is None:
                problems.append(
                    Problem(f"{pp}.{key}", f'unknown layer "{name}"' + did_you_mean(name, names))
                )
        if dst is not None and dst.model == "input":
            problems.append(Problem(f"{pp}.target", f'"{dst.name}" is an input layer'))
        if proj.rule not in RULES:
            problems.append(
                Problem(
                    f"{pp}.rule", f'unknown rule "{proj.rule}"' + did_you_mean(proj.rule, RULES)
                )
            )
            return problems
        allowed = set(_PROJ_COMMON) | set(RULE_KEYS[proj.rule])
        for key in proj.params:
            if key not in allowed:
                problems.append(
                    Problem(
                        f"{pp}.{key}",
                        f'unknown key "{key}" for rule {proj.rule}' + did_you_mean(key, allowed),
                    )
                )
        for key, f in RULE_KEYS[proj.rule].items():
            if f.required and key not in proj.params:
                problems.append(Problem(f"{pp}.{key}", f"missing (required by rule {proj.rule})"))
        jit = proj.get("weight_jitter", 0.0)
        if not isinstance(jit, int | float) or not 0.0 <= float(jit) <= 1.0:
            problems.append(Problem(f"{pp}.weight_jitter", f"{jit!r} is not a number in 0..1"))
        syn = proj.get("synapse", "auto")
        if syn not in SYNAPSES:
            problems.append(Problem(f"{pp}.synapse", f"{syn!r} is not one of {SYNAPSES}"))
        if src is None or dst is None or problems:
            return problems
        n_pre, n_post = src.n, dst.n
        try:
            w = np.asarray(proj.get("weight", 1.0))
            if w.dtype.kind != "f":  # float arrays are checked as given: no float64 copy
                w = w.astype(np.float64)
        except (TypeError, ValueError):
            return [Problem(f"{pp}.weight", "expected a number or an array of numbers")]
        try:
            d = np.asarray(proj.get("delay_steps", 0))
            if d.dtype.kind not in "iu":  # integer arrays are checked as given: no float copy
                d = d.astype(np.float64)
        except (TypeError, ValueError):
            return [Problem(f"{pp}.delay_steps", "expected an integer or an array of integers")]
        if d.size and d.dtype.kind == "f" and not np.all(np.mod(d, 1) == 0):
            problems.append(Problem(f"{pp}.delay_steps", "delays must be integers (steps)"))
        elif d.size and (d.min() < 0 or d.max() > self.max_delay_steps):
            problems.append(
                Problem(
                    f"{pp}.delay_steps", f"delays must be within 0..{self.max_delay_steps} steps"
                )
            )
        if not np.all(np.isfinite(w)):
            problems.append(Problem(f"{pp}.weight", "weights must be finite"))
        rule = proj.rule
        n_syn: int | None = None
        if rule == "dense":
            if w.ndim and w.shape != (n_pre, n_post):
                problems.append(
                    Problem(
                        f"{pp}.weight", f"shape {w.shape} != (n_pre, n_post) = ({n_pre}, {n_post})"
                    )
                )
            n_syn = n_pre * n_post
            if d.ndim and d.shape not in ((n_pre, n_post), (n_pre * n_post,)):
                problems.append(
                    Problem(f"{pp}.delay_steps", f"shape {d.shape} != ({n_pre}, {n_post})")
                )
        elif rule == "sparse":
            a = np.asarray(proj.get("pre", []))
            b = np.asarray(proj.get("post", []))
            if a.shape != b.shape or a.ndim != 1:
                problems.append(Problem(f"{pp}.post", f"pre has {a.size} edges, post {b.size}"))
            else:
                if a.size and (a.min() < 0 or a.max() >= n_pre):
                    problems.append(Problem(f"{pp}.pre", f"indices must be within 0..{n_pre - 1}"))
                if b.size and (b.min() < 0 or b.max() >= n_post):
                    problems.append(
                        Problem(f"{pp}.post", f"indices must be within 0..{n_post - 1}")
                    )
                n_syn = a.size
        elif rule == "one_to_one":
            if n_pre != n_post:
                problems.append(Problem(pp, f"one_to_one needs equal sizes ({n_pre} != {n_post})"))
            n_syn = n_pre
        elif rule == "wta":
            if n_pre != n_post:
                problems.append(Problem(pp, f"wta needs equal sizes ({n_pre} != {n_post})"))
            if w.ndim:
                problems.append(Problem(f"{pp}.weight", "wta takes one scalar weight"))
            if d.ndim:
                problems.append(Problem(f"{pp}.delay_steps", "wta takes one scalar delay"))
        elif rule == "random":
            if w.ndim:
                problems.append(Problem(f"{pp}.weight", "random takes one scalar weight"))
            if d.ndim:
                problems.append(Problem(f"{pp}.delay_steps", "random takes one scalar delay"))
        elif rule in ("conv2d", "pool2d"):
            shape = tuple(int(x) for x in proj.get("in_shape", ()))
            if len(shape) != 3 or int(np.prod(shape)) != n_pre:
                problems.append(
                    Problem(
                        f"{pp}.in_shape", f"{shape} does not have {n_pre} (= source n) elements"
                    )
                )
                return problems
            if d.ndim:
                problems.append(Problem(f"{pp}.delay_steps", f"{rule} takes one scalar delay"))
            if rule == "conv2d":
                k = np.asarray(proj.get("kernel", []), dtype=np.float64)
                if k.ndim != 4 or k.shape[1] != shape[0]:
                    problems.append(
                        Problem(
                            f"{pp}.kernel", f"shape {k.shape} is not (C_out, {shape[0]}, kh, kw)"
                        )
                    )
                    return problems
                out = conv_out_shape(
                    shape,
                    k.shape[0],
                    k.shape[2],
                    k.shape[3],
                    int(proj.get("stride", 1)),
                    int(proj.get("padding", 0)),
                )
            else:
                size = int(proj.get("size", 2))
                stride = int(proj.get("stride") or size)
                out = pool_out_shape(shape, size, stride)
                if w.ndim:
                    problems.append(Problem(f"{pp}.weight", "pool2d takes one scalar weight"))
            if min(out) <= 0 or int(np.prod(out)) != n_post:
                problems.append(
                    Problem(
                        f"{pp}.target",
                        f'{rule} output shape {out} does not match "{dst.name}" n = {n_post}',
                    )
                )
        if n_syn is not None and rule != "dense":
            if w.ndim and w.size != n_syn:
                problems.append(Problem(f"{pp}.weight", f"{w.size} weights for {n_syn} synapses"))
            if d.ndim and d.size != n_syn:
                problems.append(
                    Problem(f"{pp}.delay_steps", f"{d.size} delays for {n_syn} synapses")
                )
        plast = proj.get("plasticity")
        if plast is not None:
            if rule not in ("dense", "sparse", "random"):
                problems.append(
                    Problem(
                        f"{pp}.plasticity",
                        "plasticity needs per-synapse weights (dense, sparse or random)",
                    )
                )
            PLASTICITY_SCHEMA.validate(plast, f"{pp}.plasticity", problems)
            problems += plasticity.validate(plast, f"{pp}.plasticity", dst.model)
        return problems

    def check(self, path: str = "") -> NetworkSpec:
        """Raise ConfigError with every problem when the spec is invalid; return self."""
        problems = self.validate(path)
        if problems:
            raise ConfigError(problems)
        return self

    # --- the TOML form --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The TOML form: plain scalars, lists and tables (arrays become lists)."""
        d: dict[str, Any] = {
            "dt_us": self.dt_us,
            "seed": self.seed,
            "dtype": self.dtype,
            "max_delay_steps": self.max_delay_steps,
            "outputs": self.outputs,
            "layers": [],
            "projections": [],
        }
        for lay in self.layers:
            d["layers"].append(
                {
                    "name": lay.name,
                    "n": lay.n,
                    "model": lay.model,
                    **{k: _plain(v) for k, v in lay.params.items()},
                }
            )
        for proj in self.projections:
            d["projections"].append(
                {
                    "source": proj.source,
                    "target": proj.target,
                    "rule": proj.rule,
                    **{k: _plain(v) for k, v in proj.params.items()},
                }
            )
        return d

    @classmethod
    def from_dict(
        cls, d: dict[str, Any], path: str = "network", *, dt_us: int | None = None
    ) -> NetworkSpec:
        """Build from the TOML form, strictly: raises ConfigError listing every problem."""
        problems: list[Problem] = []
        top = NETWORK_SCHEMA.validate(d, path, problems)
        layers = top.get("layers") or []
        projections = top.get("projections") or []
        spec = cls(
            dt_us=dt_us if dt_us is not None else (top.get("dt_us") or 1000),
            seed=top.get("seed", 0) if isinstance(top.get("seed", 0), int) else 0,
            dtype=top.get("dtype", "float32"),
            max_delay_steps=top.get("max_delay_steps", 255),
        )
        for i, lay in enumerate(layers):
            lp = f"{path}.layers[{i}]"
            if not isinstance(lay, dict):
                problems.append(Problem(lp, "expected a table"))
                continue
            base = LAYER_BASE_SCHEMA.validate(
                {k: v for k, v in lay.items() if k in LAYER_BASE_SCHEMA.fields}, lp, problems
            )
            model = base.get("model", "lif")
            md = MODELS.get(model)
            params = {k: v for k, v in lay.items() if k not in LAYER_BASE_SCHEMA.fields}
            if md is not None:
                _model_schema(model).validate(params, lp, problems)
            spec.layers.append(
                LayerSpec(
                    str(base.get("name", f"layer{i}")), int(base.get("n", 1) or 1), model, params
                )
            )
        for i, proj in enumerate(projections):
            pp = f"{path}.projections[{i}]"
            if not isinstance(proj, dict):
                problems.append(Problem(pp, "expected a table"))
                continue
            rule = proj.get("rule", "dense")
            if rule in RULE_KEYS:
                schema = Schema({**_PROJ_COMMON, **RULE_KEYS[rule]})
                clean = schema.validate(proj, pp, problems)
                params = {
                    k: clean[k]
                    for k in proj
                    if k in clean and k not in ("source", "target", "rule")
                }
            else:
                params = {k: v for k, v in proj.items() if k not in ("source", "target", "rule")}
            spec.projections.append(
                ProjectionSpec(
                    str(proj.get("source", "")), str(proj.get("target", "")), str(rule), params
                )
            )
        if top.get("outputs"):
            spec.outputs = list(top["outputs"])
        # semantic checks (shapes, names); skip the duplicates of the schema's messages
        seen = {(p.path, p.message) for p in problems}
        for p in spec.validate(path):
            if (p.path, p.message) not in seen and not any(q.path == p.path for q in problems):
                problems.append(p)
        if problems:
            raise ConfigError(problems)
        return spec


def _plain(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


LAYER_BASE_SCHEMA = Schema(
    {
        "name": Field(str, doc="Layer name (unique)."),
        "n": Field(int, min=1, doc="Number of neurons."),
        "model": Field(str, default="lif", choices=tuple(MODELS), doc="Neuron model."),
    }
)


def _model_schema(model: str) -> Schema:
    md = MODELS[model]
    fields: dict[str, Field] = {}
    for key, default in md.params.items():
        if key in ("i_bias", "v_init"):
            fields[key] = Field(Any, default=default, doc="Scalar or one value per neuron.")
        elif key in md.choices:
            fields[key] = Field(str, default=default, choices=md.choices[key])
        else:
            fields[key] = Field(float, default=default)
    return Schema(fields)


NETWORK_SCHEMA = Schema(
    {
        "dt_us": Field(int, default=None, doc="Step (default: the pipeline's dt_us)."),
        "seed": Field(int, default=0, doc="Seed of random connectivity."),
        "dtype": Field(str, default="float32", choices=DTYPES,
                       doc="State precision: float32 (the default) is 1.3-2x faster; float64 "
                           "where results must equal a float64 reference spike for spike."),
        "max_delay_steps": Field(int, default=255, min=0, max=1_000_000),
        "outputs": Field(("list", str), default=[], doc="Output layers (default: last)."),
        "layers": Field(("list", dict), default=[], doc="[[...layers]] tables."),
        "projections": Field(("list", dict), default=[], doc="[[...projections]] tables."),
    }
)
