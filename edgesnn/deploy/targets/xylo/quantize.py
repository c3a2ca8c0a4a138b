"""Xylo quantization: a float model as Rockpool's specification of one Xylo core (`XyloSpec`),
with what did not fit as issues for the design rules (see the package docstring for the
mapping and the integer scale)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.core import Network
from edgesnn.deploy.floatmodel import FloatLayer, FloatModel
from edgesnn.deploy.profile import Profile
from edgesnn.deploy.quantize import load_manifest_npz, save_manifest_npz
from edgesnn.deploy.rules import Violation
from edgesnn.errors import FormatError

SPEC_FORMAT = "edgesnn-xylo-spec"
SPEC_VERSION = 1


@dataclass
class XyloSpec:
    """A network in Xylo's integer parameters, named as Rockpool's specification."""

    weights_in: np.ndarray  # (n_in, n_hidden, 2) int8 mantissas
    weights_rec: np.ndarray  # (n_hidden, n_hidden, 2) int8
    weights_out: np.ndarray  # (n_hidden, n_out) int8
    dash_mem: np.ndarray  # (n_hidden,)
    dash_syn: np.ndarray
    dash_syn_2: np.ndarray
    dash_mem_out: np.ndarray  # (n_out,)
    dash_syn_out: np.ndarray
    threshold: np.ndarray  # (n_hidden,) int
    threshold_out: np.ndarray  # (n_out,)
    bias: np.ndarray  # (n_hidden,) int
    bias_out: np.ndarray  # (n_out,)
    weight_shift_in: int = 0
    weight_shift_rec: int = 0
    weight_shift_out: int = 0
    dt: float = 1e-3
    #: edgesnn layers behind the index ranges: name -> (role, offset, n)
    layers: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    profile: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    ARRAYS = ("weights_in", "weights_rec", "weights_out", "dash_mem", "dash_syn", "dash_syn_2",
              "dash_mem_out", "dash_syn_out", "threshold", "threshold_out", "bias", "bias_out")

    @property
    def n_in(self) -> int:
        return int(self.weights_in.shape[0])

    @property
    def n_hidden(self) -> int:
        return int(self.weights_rec.shape[0])

    @property
    def n_out(self) -> int:
        return int(self.weights_out.shape[1])

    def rockpool_kwargs(self, n_syn: int = 2, for_config: bool = False) -> dict[str, Any]:
        """Keyword arguments for ``XyloSim.from_specification`` (``for_config``: for
        ``config_from_specification``, which names the hidden bias ``bias_hidden``)."""
        kw: dict[str, Any] = {k: np.asarray(getattr(self, k)) for k in self.ARRAYS}
        kw["weights_in"] = kw["weights_in"][:, :, :n_syn]
        kw["weights_rec"] = kw["weights_rec"][:, :, :n_syn]
        kw.update(weight_shift_in=int(self.weight_shift_in),
                  weight_shift_rec=int(self.weight_shift_rec),
                  weight_shift_out=int(self.weight_shift_out), dt=float(self.dt))  # fmt: skip
        if for_config:
            kw["bias_hidden"] = kw.pop("bias")
            kw.pop("dt")
        return kw

    def save(self, path: str | Path) -> None:
        """Write an npz whose integer arrays are Rockpool's keyword arguments, plus a JSON
        manifest (edgesnn layer ranges, profile, quantization info), atomically."""
        path = Path(path)
        arrays = {k: np.asarray(getattr(self, k)).astype(np.int64) for k in self.ARRAYS}
        for k in ("weight_shift_in", "weight_shift_rec", "weight_shift_out"):
            arrays[k] = np.asarray(int(getattr(self, k)), np.int64)
        arrays["dt"] = np.asarray(float(self.dt))
        man = {"format": SPEC_FORMAT, "version": SPEC_VERSION, "profile": self.profile,
               "layers": {k: list(v) for k, v in self.layers.items()}, "info": self.info}
        save_manifest_npz(path, arrays, man, default=_jsonable)

    @classmethod
    def load(cls, path: str | Path) -> XyloSpec:
        """Read a file written by `save`; FormatError when it is not one."""
        data, man = load_manifest_npz(path, "Xylo specification", SPEC_FORMAT, SPEC_VERSION)
        try:
            arrs = {k: data[k] for k in cls.ARRAYS}
            spec = cls(**arrs, weight_shift_in=int(data["weight_shift_in"]),
                       weight_shift_rec=int(data["weight_shift_rec"]),
                       weight_shift_out=int(data["weight_shift_out"]), dt=float(data["dt"]),
                       layers={k: (v[0], int(v[1]), int(v[2]))
                               for k, v in man.get("layers", {}).items()},
                       profile=man.get("profile", ""), info=man.get("info", {}))  # fmt: skip
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError(f"Xylo specification lacks {e}", path=str(path)) from None
        nh, ni, no = spec.n_hidden, spec.n_in, spec.n_out
        shapes = {"weights_in": (ni, nh, 2), "weights_rec": (nh, nh, 2), "weights_out": (nh, no)}
        for k, shp in shapes.items():
            if getattr(spec, k).shape != shp:
                raise FormatError(f"{k} has shape {getattr(spec, k).shape}, expected {shp}",
                                  path=str(path))  # fmt: skip
        return spec


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(type(v).__name__)


class XyloViolation(Violation):
    """One broken Xylo limit: an `edgesnn.deploy.rules.Violation` (its fields and text)."""


@dataclass
class XyloModel:
    """The outcome of `quantize_xylo`: the specification and what did not fit."""

    spec: XyloSpec
    issues: list[XyloViolation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: float per-synapse weights and their dequantized chip values, per projection
    weights: list[dict[str, Any]] = field(default_factory=list)
    #: structure figures the design rules read
    figures: dict[str, Any] = field(default_factory=dict)


def _rnd(x: Any, mode: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if mode == "half_even":
        r = np.round(a)
    elif mode == "half_away":
        r = np.sign(a) * np.floor(np.abs(a) + 0.5)
    elif mode == "floor":
        r = np.floor(a)
    else:
        r = np.trunc(a)
    return r.astype(np.int64)


def _factors(lay: FloatLayer, dt_us: int) -> dict[str, float]:
    """k (membrane), d_exc, d_inh per step, as the core packed them."""
    from edgesnn.deploy.quantize import layer_factors

    return layer_factors(lay, dt_us)


def _dash(x: float, lo: int, hi: int) -> int:
    """round(log2(1 / x)) clipped to lo..hi (x: the fraction lost per step)."""
    if not x > 0:
        return hi
    if x >= 1:
        return lo
    return int(min(max(round(math.log2(1.0 / x)), lo), hi))


def _mix(d_float: float, dash: int) -> tuple[float, float]:
    """(float gain 1/(1-d), chip gain (1-a)/a) of one synapse: v per unit weight per step at
    steady state, before the membrane."""
    a = 2.0**-dash
    return 1.0 / max(1.0 - d_float, 1e-12), (1.0 - a) / a


def quantize_xylo(model: FloatModel | Network, profile: Profile) -> XyloModel:
    """Map `model` onto Xylo (see the module docstring); limits that do not hold are returned
    as issues (the emulation still runs what could be mapped)."""
    fm = FloatModel.from_network(model) if isinstance(model, Network) else model
    ch, wq = profile["chip"], profile["weights"]
    dash_max = (1 << int(profile["decay"]["dash_bits"])) - 1
    st_max = (1 << (int(profile["state"]["bits"]) - 1)) - 1
    th_max = (1 << (int(profile["threshold"]["bits"]) - 1)) - 1
    b_max = (1 << (int(profile["bias"]["bits"]) - 1)) - 1
    w_hi = (1 << (int(wq["bits"]) - 1)) - 1
    w_lo = -w_hi - 1
    head = int(profile["quantization"].get("state_headroom_bits", 2))
    t_cap = min(th_max, (st_max + 1) >> head)
    issues: list[XyloViolation] = []
    notes: list[str] = []

    def issue(rule: str, layer: str, value: Any, limit: Any, msg: str,
              sev: str = "error") -> None:  # fmt: skip
        issues.append(XyloViolation(rule, layer, value, limit, msg, sev))

    by_name = {lay.name: lay for lay in fm.layers}
    inputs = [n for n in fm.inputs if by_name[n].model == "input"]
    outputs = [n for n in fm.outputs if by_name[n].model != "input"]
    hidden = [lay.name for lay in fm.layers if lay.model != "input" and lay.name not in outputs]
    for lay in fm.layers:
        if lay.model == "input" and lay.name not in inputs:
            inputs.append(lay.name)
    role: dict[str, tuple[str, int, int]] = {}
    for r, names in (("input", inputs), ("hidden", hidden), ("output", outputs)):
        off = 0
        for n in names:
            role[n] = (r, off, by_name[n].n)
            off += by_name[n].n
    n_in = sum(by_name[n].n for n in inputs)
    n_h = sum(by_name[n].n for n in hidden)
    n_o = sum(by_name[n].n for n in outputs)
    if not outputs:
        issue("topology", "-", "no output layer", "1..", "the model names no neuron output layer")
    # --- per neuron layer: dashes, gains, scale bound ------------------------------------------
    par: dict[str, dict[str, Any]] = {}
    for n in hidden + outputs:
        lay = by_name[n]
        if lay.model not in profile["profile"]["neuron_models"]:
            issue("neuron_model", n, lay.model, ", ".join(profile["profile"]["neuron_models"]),
                  "no Xylo counterpart; mapped as a lif with its time constant")
        f = _factors(lay, fm.dt_us)
        k = float(f.get("k", 0.0)) if lay.model != "if" else 0.0
        dm = _dash(k, 0, dash_max) if k > 0 else dash_max
        if k <= 0:
            issue("membrane_decay", n, "no leak", f"dash <= {dash_max}",
                  f"an integrator; the chip leaks with dash {dash_max}")
        cuba = lay.model == "cuba_lif"
        syn = []
        for key in ("d_exc", "d_inh"):
            d = float(f.get(key, 0.0)) if cuba else 0.0
            ds = _dash(1.0 - d, 1, dash_max) if cuba else 1
            syn.append((d, ds))
        b_frac = 2.0**-dm
        # float v per unit weight per step at steady state: cuba 1/(1-d); lif: 1/k
        gains = {}
        for c in (0, 1):
            d, ds = syn[c]
            g_chip = _mix(d, ds)[1] / b_frac
            g_float = (1.0 / max(1.0 - d, 1e-12)) if cuba else (1.0 / k if k > 0 else 1.0)
            gains[c] = g_float / g_chip
        p = lay.params
        theta = float(p["v_th"]) - float(p.get("v_rest", 0.0))
        if not theta > 0:
            issue("threshold_range", n, theta, "> 0", "the threshold must lie above rest")
            theta = 1.0
        if p.get("reset") != "subtract":
            issue("reset_mode", n, "to v_reset", "subtract",
                  "the chip subtracts the threshold (and may fire several times per step); the "
                  "float model resets to v_reset (train with --reset subtract)", "warning")
        elif float(p.get("v_rest", 0.0)) != 0.0:
            issue("reset_mode", n, f"v -= v_th with v_rest {p.get('v_rest')}", "v -= v_th - v_rest",
                  "the chip subtracts the distance from rest to threshold; the float model "
                  "subtracts v_th", "warning")
        if p.get("reset") == "subtract" and role[n][0] == "hidden":
            notes.append(f"{n}: reset by subtraction as on the chip; the chip fires up to "
                         f"{int(profile['chip']['hidden_spikes_per_step'])} times per step while "
                         "v >= threshold, the float model once")
        if cuba and p.get("tau_syn_inh_ms") != p.get("tau_syn_exc_ms") and \
                role[n][0] == "output" and any(pr.channel == 1 for pr in fm.incoming(n)):
            issue("output_synapses", n, 2, 1, "readout neurons have one synapse: inhibitory "
                  "inputs take the excitatory time constant")  # fmt: skip
        rmax = int(profile["refractory"]["max_steps"])
        if int(f.get("n_ref", 0)) > rmax:
            issue("refractory", n, f"{int(f['n_ref'])} steps", rmax,
                  "Xylo has no refractory period")
        if p.get("v_init") is not None:
            notes.append(f"{n}: v_init is not deployed (the chip starts at 0)")
        par[n] = {"dm": dm, "syn": syn, "gain": gains, "theta": theta, "k": k,
                  "s_max": t_cap / theta, "bias": lay.bias, "cuba": cuba}
    # --- projections into matrices --------------------------------------------------------------
    mats: dict[str, list[tuple[Any, str, str]]] = {"in": [], "rec": [], "out": []}
    for pr in fm.projections:
        rs, rt = role.get(pr.source, ("?",))[0], role.get(pr.target, ("?",))[0]
        if pr.delay.size and int(pr.delay.max()) > 0:
            issue("delay", pr.target, int(pr.delay.max()), 0,
                  f"{pr.name}: Xylo has no synaptic delays; deployed without")
        if pr.plasticity:
            notes.append(f"{pr.name}: plastic; deployed with its current weights (no learning "
                         "on Xylo)")
        if rs == "input" and rt == "hidden":
            mats["in"].append((pr, pr.source, pr.target))
        elif rs == "hidden" and rt == "hidden":
            mats["rec"].append((pr, pr.source, pr.target))
        elif rs == "hidden" and rt == "output":
            mats["out"].append((pr, pr.source, pr.target))
        else:
            issue("topology", pr.target, f"{pr.name}: {rs} -> {rt}",
                  "input -> hidden -> (hidden ->) output",
                  "Xylo has input, recurrent and readout weights only; projection dropped")
    # --- shifts and scales ----------------------------------------------------------------------
    def wmax(m: str, target: str) -> float:
        g = par[target]["gain"]
        return max((float(np.max(np.abs(pr.w))) * g[int(pr.channel)]
                    for pr, _, t in mats[m] if t == target and pr.w.size), default=0.0)

    shifts: dict[str, int] = {}
    for m in ("in", "rec", "out"):
        cands = [par[t]["s_max"] * wmax(m, t) / w_hi for t in {t for _, _, t in mats[m]}
                 if wmax(m, t) > 0]  # fmt: skip
        if not cands:
            shifts[m] = 0
            continue
        sh = int(math.floor(math.log2(min(cands)))) if min(cands) > 0 else 0
        if sh > int(wq["shift_max"]):
            sh = int(wq["shift_max"])
        shifts[m] = max(sh, 0)
    for n in hidden + outputs:
        s = par[n]["s_max"]
        limiter = "threshold"
        for m in ("in", "rec", "out"):
            wm = wmax(m, n)
            if wm > 0 and w_hi * 2.0 ** shifts[m] / wm < s:
                s, limiter = w_hi * 2.0 ** shifts[m] / wm, f"weights_{m}"
        bmax = float(np.max(np.abs(par[n]["bias"]))) if par[n]["bias"].size else 0.0
        bb = bmax * 2.0 ** -par[n]["dm"]
        if bb > 0 and b_max / bb < s:
            s, limiter = b_max / bb, "bias"
        par[n]["s"], par[n]["limiter"] = s, limiter
    # --- integers ---------------------------------------------------------------------------------
    rmode = wq["rounding"]
    w_in = np.zeros((n_in, n_h, 2), np.int64)
    w_rec = np.zeros((n_h, n_h, 2), np.int64)
    w_out = np.zeros((n_h, max(n_o, 0)), np.int64)
    weights = []
    for m, arr in (("in", w_in), ("rec", w_rec), ("out", w_out)):
        for pr, src, tgt in mats[m]:
            c = int(pr.channel) if m != "out" else 0
            if m != "out" and c == 1 and int(ch["synapses_hidden"]) < 2:
                issue("synapses", tgt, 2, 1, f"{pr.name}: one synapse per hidden neuron; the "
                      "inhibitory current shares the first")  # fmt: skip
                c = 0
            g = par[tgt]["gain"][int(pr.channel)]
            real = pr.w * g * par[tgt]["s"] / 2.0 ** shifts[m]
            mant = _rnd(real, rmode)
            if mant.size and (mant.max() > w_hi or mant.min() < w_lo):
                issue("weight_range", tgt, int(np.max(np.abs(mant))), w_hi,
                      f"{pr.name}: weights clipped to int{wq['bits']}")  # fmt: skip
            mant = np.clip(mant, w_lo, w_hi)
            pre = pr.pre.astype(np.int64) + role[src][1]
            post = pr.post.astype(np.int64) + role[tgt][1]
            if m == "out":
                np.add.at(arr, (pre, post), mant)
            else:
                np.add.at(arr[:, :, c], (pre, post), mant)
            deq = mant * 2.0 ** shifts[m] / (g * par[tgt]["s"])
            weights.append({"projection": pr.name, "matrix": m, "w_float": pr.w, "w_deq": deq})
    for m, arr in (("in", w_in), ("rec", w_rec), ("out", w_out)):
        if arr.size and (arr.max() > w_hi or arr.min() < w_lo):
            issue("weight_range", m, int(np.max(np.abs(arr))), w_hi,
                  f"weights_{m}: projections onto the same synapse add up beyond int"
                  f"{wq['bits']}; clipped")  # fmt: skip
            np.clip(arr, w_lo, w_hi, out=arr)

    def per_neuron(names: list[str]) -> dict[str, np.ndarray]:
        cols: dict[str, list[np.ndarray]] = {k: [] for k in ("dm", "ds", "ds2", "th", "b")}
        for n in names:
            q, nn = par[n], by_name[n].n
            th = int(math.floor(q["s"] * q["theta"])) + 1  # float '>' as integer '>='
            if th > th_max:
                issue("threshold_range", n, th, th_max, "threshold clipped")
                th = th_max
            b = _rnd(q["bias"] * q["s"] * 2.0 ** -q["dm"], rmode)
            if b.size and np.max(np.abs(b)) > b_max:
                issue("bias_range", n, int(np.max(np.abs(b))), b_max, "bias clipped")
                b = np.clip(b, -b_max, b_max)
            cols["dm"].append(np.full(nn, q["dm"]))
            cols["ds"].append(np.full(nn, q["syn"][0][1]))
            cols["ds2"].append(np.full(nn, q["syn"][1][1]))
            cols["th"].append(np.full(nn, th))
            cols["b"].append(b.astype(np.int64))
            q["threshold_int"] = th
        return {k: (np.concatenate(v).astype(np.int64) if v else np.zeros(0, np.int64))
                for k, v in cols.items()}

    hp, op = per_neuron(hidden), per_neuron(outputs)
    spec = XyloSpec(w_in, w_rec, w_out, hp["dm"], hp["ds"], hp["ds2"], op["dm"], op["ds"],
                    hp["th"], op["th"], hp["b"], op["b"], shifts["in"], shifts["rec"],
                    shifts["out"], fm.dt_us * 1e-6, role, profile.name)  # fmt: skip
    spec.info = {n: {"scale": par[n]["s"], "scale_limited_by": par[n]["limiter"],
                     "threshold_float": par[n]["theta"], "threshold_int": par[n]["threshold_int"],
                     "k_float": par[n]["k"], "k_effective": 2.0 ** -par[n]["dm"],
                     "dash_mem": par[n]["dm"],
                     "d_syn_float": [par[n]["syn"][c][0] for c in (0, 1)],
                     "d_syn_effective": [1 - 2.0 ** -par[n]["syn"][c][1] for c in (0, 1)],
                     "dash_syn": [par[n]["syn"][c][1] for c in (0, 1)],
                     "weight_gain": [par[n]["gain"][c] for c in (0, 1)]}
                 for n in hidden + outputs}  # fmt: skip
    figures = {"inputs": n_in, "hidden": n_h, "outputs": n_o,
               "input_layers": inputs, "hidden_layers": hidden, "output_layers": outputs}
    return XyloModel(spec, issues, notes, weights, figures)


# --- design rules ----------------------------------------------------------------------------


def quantize(fm: FloatModel | Network, profile: Profile) -> XyloModel:
    """The target's quantizer (`quantize_xylo`)."""
    return quantize_xylo(fm, profile)
