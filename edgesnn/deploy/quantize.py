"""Quantization of a float model to a profile's integer parameters.

`quantize(model, profile)` maps every layer and projection of a `FloatModel` (or a core
`Network`) onto the profile's family:

- ``loihi_cuba``: per target layer one scale ``s`` (integer units per float unit of v), the
  largest for which the threshold fits its mantissa and the state headroom, the largest
  per-step input fits the input accumulator, every weight fits ``mant << (6 + exp_max)`` and the
  bias fits ``mant << exp``; the threshold is made exact by snapping ``s``. Per projection a
  sign mode (excitatory, inhibitory, mixed: even mantissas), the smallest weight exponent whose
  mantissa range holds its largest weight, and mantissas rounded as the profile says. Decays
  ``decay_u = 2^12 (1 - d_syn) - 1``, ``decay_v = 2^12 k``.
- ``spinnaker_if_curr_exp``: v in mV (``v_rest_mv`` + ``v_span_mv`` per float unit of
  threshold distance), s16.15 states, R = 1 MOhm (cm = tau_m), exp_TC = 1 - k, synapse decays
  and PyNN's init factor as u0.32, per target layer and synapse type a ring-buffer left shift
  from the largest input per step, weights as unsigned 16-bit ``w * 2^(15 - shift)``.

Everything that did not fit (a clipped exponent, bias, decay, delay, ...) is recorded in
``QuantizedModel.clipped`` for the design-rule checks.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.core import Network
from edgesnn.deploy import kernels as K
from edgesnn.deploy.floatmodel import FloatLayer, FloatModel
from edgesnn.deploy.profile import Profile
from edgesnn.errors import FormatError

QMODEL_FORMAT = "edgesnn-quantized"
QMODEL_VERSION = 1


def rnd(x: Any, mode: str) -> np.ndarray:
    """Round to integers (int64) as a profile names it."""
    a = np.asarray(x, dtype=np.float64)
    if mode == "half_even":
        r = np.round(a)
    elif mode == "half_away":
        r = np.sign(a) * np.floor(np.abs(a) + 0.5)
    elif mode == "floor":
        r = np.floor(a)
    elif mode == "toward_zero":
        r = np.trunc(a)
    else:
        raise ValueError(f"unknown rounding {mode!r}")
    return r.astype(np.int64)


def _ri(x: float, mode: str) -> int:
    return int(rnd(x, mode))


@dataclass
class QLayer:
    """A quantized layer: integer parameters of its family, per-neuron bias."""

    name: str
    n: int
    model: str
    params: dict[str, int] = field(default_factory=dict)
    bias: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # effective
    bias_mant: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    bias_exp: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def is_input(self) -> bool:
        return self.model == "input"


@dataclass
class QProjection:
    """A quantized projection as synapses: stored integer weight, chip delay, synapse type."""

    name: str
    source: str
    target: str
    pre: np.ndarray
    post: np.ndarray
    w: np.ndarray  # int64: Loihi mantissa, SpiNNaker 16-bit magnitude
    delay: np.ndarray  # int32: chip delay (edgesnn delay + profile delay offset)
    ch: np.ndarray  # int8: SpiNNaker synapse type (0 exc, 1 inh); Loihi 0
    w_float: np.ndarray  # the float weights (with gain)
    w_deq: np.ndarray  # the quantized weights in float units
    exp: int = 0  # Loihi weight exponent
    sign_mode: str = ""
    plasticity: dict[str, Any] | None = None
    num_weight_bits: int = 8  # Loihi: lava's num_weight_bits (mantissa bits the chip keeps)


@dataclass
class QuantizedModel:
    """A model in a profile's integer parameters; `save`/`load` as npz + JSON manifest."""

    profile: str
    family: str
    dt_us: int
    layers: list[QLayer]
    projections: list[QProjection]
    inputs: list[str]
    outputs: list[str]
    delay_offset: int = 0
    ring_bits: int = 0
    clipped: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def layer(self, name: str) -> QLayer:
        for lay in self.layers:
            if lay.name == name:
                return lay
        raise KeyError(name)

    def save(self, path: str | Path) -> None:
        """Write an npz (arrays) with a JSON manifest (everything else), atomically."""
        path = Path(path)
        arrays: dict[str, np.ndarray] = {}
        man: dict[str, Any] = {
            "format": QMODEL_FORMAT, "version": QMODEL_VERSION, "profile": self.profile,
            "family": self.family, "dt_us": self.dt_us, "inputs": self.inputs,
            "outputs": self.outputs, "delay_offset": self.delay_offset,
            "ring_bits": self.ring_bits, "clipped": self.clipped, "notes": self.notes,
            "layers": [], "projections": [],
        }  # fmt: skip
        for i, lay in enumerate(self.layers):
            man["layers"].append({"name": lay.name, "n": lay.n, "model": lay.model,
                                  "params": lay.params, "info": lay.info})  # fmt: skip
            for k in ("bias", "bias_mant", "bias_exp"):
                arrays[f"L{i}_{k}"] = getattr(lay, k)
        for j, p in enumerate(self.projections):
            man["projections"].append({"name": p.name, "source": p.source, "target": p.target,
                                       "exp": p.exp, "sign_mode": p.sign_mode,
                                       "num_weight_bits": p.num_weight_bits,
                                       "plasticity": p.plasticity})  # fmt: skip
            for k in ("pre", "post", "w", "delay", "ch", "w_float", "w_deq"):
                arrays[f"P{j}_{k}"] = getattr(p, k)
        arrays["manifest"] = np.frombuffer(json.dumps(man).encode(), dtype=np.uint8)
        tmp = path.with_name(path.name + ".tmp.npz")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> QuantizedModel:
        """Read a file written by `save`; FormatError when it is not one."""
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
            man = json.loads(data["manifest"].tobytes().decode())
        except (OSError, ValueError, KeyError, UnicodeDecodeError) as e:
            raise FormatError(f"not a quantized edgesnn model ({e})", path=str(path)) from None
        if man.get("format") != QMODEL_FORMAT or man.get("version") != QMODEL_VERSION:
            raise FormatError(f"format {man.get('format')!r} v{man.get('version')} is not "
                              f"{QMODEL_FORMAT!r} v{QMODEL_VERSION}", path=str(path))  # fmt: skip
        try:
            layers = [QLayer(m["name"], int(m["n"]), m["model"], dict(m["params"]),
                             data[f"L{i}_bias"], data[f"L{i}_bias_mant"], data[f"L{i}_bias_exp"],
                             m.get("info", {})) for i, m in enumerate(man["layers"])]  # fmt: skip
            projs = [QProjection(m["name"], m["source"], m["target"],
                                 *(data[f"P{j}_{k}"] for k in ("pre", "post", "w", "delay", "ch",
                                                               "w_float", "w_deq")),
                                 exp=int(m["exp"]), sign_mode=m["sign_mode"],
                                 plasticity=m.get("plasticity"),
                                 num_weight_bits=int(m.get("num_weight_bits", 8)))
                     for j, m in enumerate(man["projections"])]  # fmt: skip
        except KeyError as e:
            raise FormatError(f"quantized model lacks {e}", path=str(path)) from None
        names = {lay.name for lay in layers}
        for p in projs:
            if p.source not in names or p.target not in names:
                raise FormatError(f"projection {p.name} names an unknown layer", path=str(path))
            n_pre, n_post = (next(x.n for x in layers if x.name == nm) for nm in
                             (p.source, p.target))  # fmt: skip
            if p.pre.size and (p.pre.min() < 0 or p.pre.max() >= n_pre or p.post.min() < 0
                               or p.post.max() >= n_post or p.delay.min() < 0):  # fmt: skip
                raise FormatError(f"projection {p.name} points outside its layers",
                                  path=str(path))  # fmt: skip
        return cls(man["profile"], man["family"], int(man["dt_us"]), layers, projs,
                   man["inputs"], man["outputs"], int(man.get("delay_offset", 0)),
                   int(man.get("ring_bits", 0)), man.get("clipped", []),
                   man.get("notes", []))  # fmt: skip


def is_quantized_file(path: str | Path) -> bool:
    """True when `path` is a quantized model (not a float model file)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if "manifest" not in z.files:
                return False
            man = json.loads(z["manifest"].tobytes().decode())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return man.get("format") == QMODEL_FORMAT


# --- helpers on float layers ------------------------------------------------------------------


def layer_factors(lay: FloatLayer, dt_us: int) -> dict[str, float]:
    """Float per-step factors of a layer: k (membrane), d_exc, d_inh, n_ref (held steps);
    as the core packed them when known."""
    if lay.factors:
        return dict(lay.factors)
    p = lay.params
    dt_ms = dt_us / 1000.0
    out: dict[str, float] = {"k": 0.0, "d_exc": 0.0, "d_inh": 0.0, "n_ref": 0}
    if lay.model in ("lif", "cuba_lif", "adaptive_lif"):
        euler = p.get("integration") == "euler"

        def f(tau: float) -> tuple[float, float]:
            return (dt_ms / tau, 1 - dt_ms / tau) if euler else (
                1 - math.exp(-dt_ms / tau), math.exp(-dt_ms / tau))

        out["k"] = f(p["tau_mem_ms"])[0]
        if lay.model == "cuba_lif":
            out["d_exc"] = f(p["tau_syn_exc_ms"])[1]
            out["d_inh"] = f(p["tau_syn_inh_ms"])[1]
        out["n_ref"] = int(round(p.get("t_ref_ms", 0.0) * 1000.0 / dt_us))
    return out


def _clip(q: QuantizedModel, rule: str, layer: str, value: Any, limit: Any, msg: str) -> None:
    q.clipped.append({"rule": rule, "layer": layer, "value": value, "limit": limit,
                      "message": msg})  # fmt: skip


# --- the entry point --------------------------------------------------------------------------


def quantize(model: FloatModel | Network, profile: Profile) -> QuantizedModel:
    """Map `model` onto `profile`'s integer parameters (see the module docstring)."""
    fm = FloatModel.from_network(model) if isinstance(model, Network) else model
    fam = profile.family
    st = profile["state"]
    q = QuantizedModel(profile.name, fam, fm.dt_us, [], [], fm.inputs, fm.outputs,
                       delay_offset=int(profile["delay"]["offset"]),
                       ring_bits=int(st["ring_bits"]))  # fmt: skip
    for lay in fm.layers:
        if lay.model == "input":
            q.layers.append(QLayer(lay.name, lay.n, "input", bias=np.zeros(lay.n, np.int64),
                                   bias_mant=np.zeros(lay.n, np.int64),
                                   bias_exp=np.zeros(lay.n, np.int64)))  # fmt: skip
            continue
        if lay.model not in profile["profile"]["neuron_models"]:
            _clip(q, "neuron_model", lay.name, lay.model,
                  ", ".join(profile["profile"]["neuron_models"]),
                  f"model {lay.model} cannot run on {profile.name}; emulated as a default lif")
            from edgesnn.core.models import MODELS

            lay = FloatLayer(lay.name, lay.n, "lif", dict(MODELS["lif"].params),
                             np.zeros(lay.n))  # fmt: skip
        if fam == "loihi_cuba":
            _loihi_layer(fm, lay, profile, q)
        else:
            _spinnaker_layer(fm, lay, profile, q)
    if any(p.plasticity for p in fm.projections):
        q.notes.append("plastic projections are deployed with their current (learned) weights")
    return q


def _threshold_distance(lay: FloatLayer) -> tuple[float, str]:
    """(threshold above rest in float units, the float comparison)."""
    p = lay.params
    if lay.model == "if":
        return float(p["v_th"]), ">="
    return float(p["v_th"]) - float(p.get("v_rest", 0.0)), ">"


def _loihi_layer(fm: FloatModel, lay: FloatLayer, prof: Profile, q: QuantizedModel) -> None:
    wq, st, th, bi = prof["weights"], prof["state"], prof["threshold"], prof["bias"]
    dc, rf, dl = prof["decay"], prof["refractory"], prof["delay"]
    rmode = wq["rounding"]
    f = layer_factors(lay, fm.dt_us)
    cuba = lay.model == "cuba_lif"
    kin = f["k"] if cuba else 1.0
    incoming = fm.incoming(lay.name)
    theta, cmp_float = _threshold_distance(lay)
    if not theta > 0:
        _clip(q, "threshold_range", lay.name, theta, "> 0",
              "the threshold must lie above the rest/reset potential")  # fmt: skip
        theta = 1.0
    bias_f = lay.bias * (f["k"] if lay.model in ("lif", "cuba_lif") else 1.0)
    # --- the layer scale s ----------------------------------------------------------------
    vth_shift = int(th["shift"])
    vth_mant_max = (1 << int(th["mant_bits"])) - 1
    nwb = int(wq["bits"])  # lava's num_weight_bits: the top bits of the 8-bit mantissa
    mant_mag = 255  # the 8-bit mantissa (lava clip_weights)
    w_cap = mant_mag * 2.0 ** (6 + int(wq["exp_max"]))
    bias_mant_max = (1 << (int(bi["mant_bits"]) - 1)) - 1
    bias_cap = bias_mant_max * 2.0 ** ((1 << int(bi["exp_bits"])) - 1)
    bounds = {
        "threshold": vth_mant_max * 2.0**vth_shift / theta,
        "state_headroom": 2.0 ** (int(st["bits_v"]) - 1 - int(prof["quantization"]
                                                             .get("state_headroom_bits", 2)))
        / theta,
    }
    w_max = max((float(np.max(np.abs(p.w))) * kin for p in incoming if p.w.size), default=0.0)
    if w_max > 0:
        bounds["weight_exponent"] = w_cap / w_max
    if st["bits_q"] > 0 and incoming:
        tot = np.zeros(lay.n)
        for p in incoming:
            np.add.at(tot, p.post, np.abs(p.w) * kin)
        if tot.max() > 0:
            bounds["input_accumulator"] = ((1 << (int(st["bits_q"]) - 1)) - 1) / tot.max()
    b_max = float(np.max(np.abs(bias_f))) if bias_f.size else 0.0
    if b_max > 0:
        bounds["bias"] = bias_cap / b_max
    limiter = min(bounds, key=bounds.get)  # type: ignore[arg-type]
    s = bounds[limiter]
    unit = 2.0**vth_shift
    if cmp_float == th["compare"]:
        vth_mant = int(math.floor(theta * s / unit))
        vth_mant = max(vth_mant, 1)
        s = vth_mant * unit / theta
    elif cmp_float == ">=" and th["compare"] == ">":
        vth_mant = max(int(math.floor((theta * s - 1) / unit)), 1)
        s = (vth_mant * unit + 1) / theta
    else:  # float '>' on a '>=' chip: smallest integer above theta*s
        vth_mant = max(int(math.floor(theta * s / unit)), 1)
        s = (vth_mant * unit) / theta
        vth_mant += 1
    # --- decays ---------------------------------------------------------------------------------
    dbits = int(dc["bits"])
    full = 1 << dbits
    off = int(dc["offset_u"])
    if cuba:
        du = _ri(full * (1 - f["d_exc"]), dc["rounding"]) - off
    else:
        du = min(full - off, full - 1)  # full decay: u is the input of the step
    if du < 0 or du > full - 1:
        _clip(q, "decay_range", lay.name, du, f"0..{full - 1}", "current decay clipped")
        du = min(max(du, 0), full - 1)
    dv = _ri(full * f["k"], dc["rounding"]) if lay.model != "if" else 0
    if dv > full - 1:
        _clip(q, "decay_range", lay.name, dv, f"0..{full - 1}", "voltage decay clipped")
        dv = full - 1
    # --- refractory, reset ----------------------------------------------------------------------
    n_ref = int(f["n_ref"])
    rd = n_ref + int(rf["offset"])
    if rd > rf["max_steps"] or rd < rf["min_steps"]:
        _clip(q, "refractory_range", lay.name, rd, f"{rf['min_steps']}..{rf['max_steps']}",
              f"refractory period of {n_ref} steps does not fit")  # fmt: skip
        rd = int(min(max(rd, rf["min_steps"]), rf["max_steps"]))
    p = lay.params
    if lay.model == "if":
        if p.get("reset") == "subtract":
            _clip(q, "reset_mode", lay.name, "subtract", prof["reset"]["mode"],
                  "reset by subtraction is not available")  # fmt: skip
        if float(p.get("v_reset", 0.0)) != 0.0:
            _clip(q, "reset_mode", lay.name, p.get("v_reset"), 0.0, "reset value must be 0")
    elif float(p.get("v_reset", 0.0)) != float(p.get("v_rest", 0.0)):
        _clip(q, "reset_mode", lay.name, p.get("v_reset"), p.get("v_rest", 0.0),
              "the chip resets to rest (0): v_reset must equal v_rest")  # fmt: skip
    if cuba and any(pr.channel == 1 for pr in incoming) and \
            p["tau_syn_inh_ms"] != p["tau_syn_exc_ms"]:  # fmt: skip
        _clip(q, "current_decays", lay.name, f"{p['tau_syn_exc_ms']} / {p['tau_syn_inh_ms']} ms",
              "one current decay per compartment",
              "excitatory and inhibitory currents with different time constants; the chip uses "
              "tau_syn_exc_ms for both")  # fmt: skip
    # --- bias ---------------------------------------------------------------------------------
    b = bias_f * s
    exp_max_b = (1 << int(bi["exp_bits"])) - 1
    with np.errstate(divide="ignore"):
        bexp = np.ceil(np.log2(np.maximum(np.abs(b) / bias_mant_max, 1.0))).astype(np.int64)
    if np.any(bexp > exp_max_b):
        _clip(q, "bias_range", lay.name, float(np.max(np.abs(b))), bias_cap, "bias clipped")
    bexp = np.clip(bexp, 0, exp_max_b)
    bmant = np.clip(rnd(b / 2.0**bexp, rmode), -bias_mant_max, bias_mant_max)
    beff = bmant << bexp
    # --- projections ----------------------------------------------------------------------------
    for pr in incoming:
        weff = pr.w * kin * s
        pos = float(weff.max()) if weff.size else 0.0
        neg = float(-weff.min()) if weff.size else 0.0
        mode = "excitatory" if neg <= 0 else "inhibitory" if pos <= 0 else "mixed"
        step = 1 << (8 - nwb + (mode == "mixed"))  # lava truncate_weights' grid
        top = (mant_mag // step) * step
        lo, hi = {"excitatory": (0, top), "inhibitory": (-top, 0),
                  "mixed": (-(mant_mag + 1), top)}[mode]  # fmt: skip
        need = max(pos / max(hi, 1), neg / max(-lo, 1)) / 64.0
        e = int(math.ceil(math.log2(need))) if need > 0 else int(wq["exp_min"])
        if e > wq["exp_max"]:
            _clip(q, "weight_exponent", lay.name, e, wq["exp_max"],
                  f"{pr.name}: weights need exponent {e}")  # fmt: skip
        e = int(min(max(e, wq["exp_min"]), wq["exp_max"]))
        mant = rnd(weff / 2.0 ** (6 + e) / step, rmode) * step
        mant = np.clip(mant, lo, hi)
        w_u = loihi_weights(mant, e, mode, nwb).value  # what the emulator adds, in u units
        dchip = pr.delay.astype(np.int64) + int(dl["offset"])
        q.projections.append(QProjection(
            pr.name, pr.source, pr.target, pr.pre.copy(), pr.post.copy(), mant.astype(np.int64),
            dchip.astype(np.int32), np.zeros(pr.pre.size, np.int8), pr.w.copy(),
            w_u / (kin * s), exp=e, sign_mode=mode, plasticity=pr.plasticity,
            num_weight_bits=nwb))  # fmt: skip
    params = loihi_params(prof, du, dv, vth_mant, rd)
    eff_k = dv / full
    info = {
        "scale": s, "scale_limited_by": limiter, "threshold_float": theta,
        "threshold_effective": (vth_mant << vth_shift) / s, "k_float": f["k"], "k_effective":
        eff_k, "d_syn_float": f["d_exc"] if cuba else 0.0,
        "d_syn_effective": (full - du - off) / full if cuba else 0.0,
        "bias_max_error": float(np.max(np.abs(beff / s - bias_f))) if b.size else 0.0,
        "refractory_steps": n_ref, "weight_gain": kin * s,
    }  # fmt: skip
    if p.get("v_init") is not None:
        q.notes.append(f"{lay.name}: v_init is not deployed (the chip starts at rest)")
    q.layers.append(QLayer(lay.name, lay.n, lay.model, params, beff.astype(np.int64),
                           bmant.astype(np.int64), bexp.astype(np.int64), info))  # fmt: skip


def loihi_params(prof: Profile, decay_u: int, decay_v: int, vth_mant: int,
                 refract_delay: int) -> dict[str, int]:  # fmt: skip
    """The integer parameters of a Loihi layer: the given decays, threshold mantissa and
    refractory counter with the profile's state widths, overflow rules and threshold shift."""
    st, th, dc = prof["state"], prof["threshold"], prof["decay"]
    return {
        "decay_u": int(decay_u), "decay_v": int(decay_v), "vth_mant": int(vth_mant),
        "vth": int(vth_mant) << int(th["shift"]), "refract_delay": int(refract_delay),
        "bits_u": int(st["bits_u"]), "wrap_u": int(st["overflow_u"] == "wrap"),
        "u_lava": int(st["u_wrap_range"] == "lava"),
        "bits_v": int(st["bits_v"]), "wrap_v": int(st["overflow_v"] == "wrap"),
        "bits_q": int(st["bits_q"]),
        "wrap_q": {"saturate": K.Q_SATURATE, "wrap": K.Q_WRAP,
                   "unlimited": K.Q_UNLIMITED}[st["overflow_q"]],
        "offset_u": int(dc["offset_u"]), "decay_bits": int(dc["bits"]),
        "ge": int(th["compare"] == ">="),
    }  # fmt: skip


LOIHI_SIGN_MODES = ("mixed", "excitatory", "inhibitory")


@dataclass(frozen=True)
class LoihiWeights:
    """The synapses of one Loihi projection as the chip uses them (lava's bit-accurate Dense):
    mantissas on lava's grid and the weight exponent."""

    mant: np.ndarray  # int64: clip_weights(8 bits) then truncate_weights(num_weight_bits)
    exp: int

    @property
    def addend(self) -> np.ndarray:
        """What one spike adds to its neuron's sum (int64): mant << exp when exp >= 0."""
        return self.mant << max(self.exp, 0)

    @property
    def rshift(self) -> int:
        """Right shift of each neuron's per-step sum (floor): -exp when exp < 0, else 0."""
        return max(-self.exp, 0)

    @property
    def value(self) -> np.ndarray:
        """Effective weight per synapse in u units (float64): mant * 2^(6 + exp). Exact per
        synapse; with exp < 0 the chip floors each neuron's summed input of a step once, which
        removes less than 2^6 u units per projection, neuron and step."""
        return self.mant.astype(np.float64) * 2.0 ** (6 + self.exp)


def loihi_weights(mant: Any, exp: int, sign_mode: str, num_weight_bits: int = 8
                  ) -> LoihiWeights:  # fmt: skip
    """The one definition of Loihi effective weights, used by the quantizer (the weight error
    it reports) and by the emulator: lava's ``clip_weights`` (8-bit: mixed -256..255,
    excitatory 0..255, inhibitory -255..0) then ``truncate_weights`` (arithmetic shifts by
    ``8 - num_weight_bits + mixed``; inhibitory weights are negated around it), see
    ``lava/utils/weightutils.py`` and ../shared/data/loihi_lava/README.md step 1."""
    if sign_mode not in LOIHI_SIGN_MODES:
        raise ValueError(f"unknown sign mode {sign_mode!r}; one of {', '.join(LOIHI_SIGN_MODES)}")
    if not 1 <= int(num_weight_bits) <= 8:
        raise ValueError(f"num_weight_bits must be 1..8, not {num_weight_bits}")
    mixed = int(sign_mode == "mixed")
    g = -1 if sign_mode == "inhibitory" else 1
    w = np.clip(g * np.asarray(mant, dtype=np.int64), -256 if mixed else 0, 255)
    k = 8 - int(num_weight_bits) + mixed
    return LoihiWeights(g * ((w >> k) << k), int(exp))


def _spinnaker_layer(fm: FloatModel, lay: FloatLayer, prof: Profile, q: QuantizedModel
                     ) -> None:  # fmt: skip
    wq, st, th, dc = prof["weights"], prof["state"], prof["threshold"], prof["decay"]
    rf, dl, qz = prof["refractory"], prof["delay"], prof["quantization"]
    rmode, dmode = wq["rounding"], dc["rounding"]
    frac = int(st["frac_bits"])
    one = 1 << frac
    f = layer_factors(lay, fm.dt_us)
    p = lay.params
    cuba = lay.model == "cuba_lif"
    theta, cmp_float = _threshold_distance(lay)
    if not theta > 0:
        _clip(q, "threshold_range", lay.name, theta, "> 0",
              "the threshold must lie above the rest potential")  # fmt: skip
        theta = 1.0
    v_rest_mv, span = float(qz.get("v_rest_mv", -65.0)), float(qz.get("v_span_mv", 15.0))
    s_v = span / theta  # mV per float unit
    v_rest0 = float(p.get("v_rest", 0.0))
    v_rest = _ri(v_rest_mv * one, dmode)
    thr_real = (v_rest_mv + span) * one
    if th["compare"] == ">=" and cmp_float == ">":
        v_thresh = int(math.floor(thr_real)) + 1
    elif th["compare"] == ">" and cmp_float == ">=":
        v_thresh = int(math.ceil(thr_real)) - 1
    else:
        v_thresh = _ri(thr_real, dmode)
    v_reset = _ri((v_rest_mv + s_v * (float(p.get("v_reset", 0.0)) - v_rest0)) * one, dmode)
    k = f["k"]
    exp_tc = _ri((1.0 - k) * one, dmode)
    k_eff = 1.0 - exp_tc / one
    r_bits = one  # R = 1 MOhm: cm = tau_m
    u32 = 1 << 32

    def u032(x: float) -> int:
        return int(min(max(_ri(x * u32, dmode), 0), u32 - 1))

    if cuba:
        d_e, d_i = f["d_exc"], f["d_inh"]
        dec_e, dec_i = u032(d_e), u032(d_i)
        init_e = u032((-1.0 / math.log(d_e)) * (1 - d_e)) if 0 < d_e < 1 else u032(1.0)
        init_i = u032((-1.0 / math.log(d_i)) * (1 - d_i)) if 0 < d_i < 1 else u032(1.0)
        gain = {0: init_e / u32, 1: init_i / u32}
    else:
        dec_e = dec_i = init_e = init_i = 0
        gain = {0: k_eff, 1: k_eff}
    n_ref = int(f["n_ref"])
    t_ref = n_ref + int(rf["offset"])
    if t_ref > rf["max_steps"] or t_ref < rf["min_steps"]:
        _clip(q, "refractory_range", lay.name, t_ref, f"{rf['min_steps']}..{rf['max_steps']}",
              "refractory period does not fit")  # fmt: skip
        t_ref = int(min(max(t_ref, rf["min_steps"]), rf["max_steps"]))
    ioff = rnd(s_v * lay.bias * one, dmode)
    # --- synapses: split by sign into the two synapse types ------------------------------------
    incoming = fm.incoming(lay.name)
    parts = []
    for pr in incoming:
        w_mv = pr.w * s_v  # float weight in mV (current units with R = 1)
        ch = (w_mv < 0).astype(np.int8)
        if cuba and np.any(ch != pr.channel) and p["tau_syn_inh_ms"] != p["tau_syn_exc_ms"]:
            _clip(q, "synapse_types", lay.name, pr.name, "one sign per current",
                  "weights of both signs in one current with different synapse time constants;"
                  " negative weights take tau_syn_inh_ms on the chip")  # fmt: skip
        real = np.abs(w_mv) / np.where(ch == 0, gain[0], gain[1])
        parts.append((pr, ch, real))
    shifts = {}
    for c in (0, 1):
        if wq["ring_shift_policy"] == "sum":
            tot = np.zeros(lay.n)
            for pr, ch, real in parts:
                np.add.at(tot, pr.post, np.where(ch == c, real, 0.0))
            m = float(tot.max()) if tot.size else 0.0
        else:
            m = max((float(real[ch == c].max()) for _, ch, real in parts if np.any(ch == c)),
                    default=0.0)  # fmt: skip
        sh = int(math.ceil(math.log2(m))) if m > 0 else int(wq["exp_min"])
        if m > 0 and 2.0**sh <= m:
            sh += 1
        if sh > wq["exp_max"]:
            _clip(q, "weight_exponent", lay.name, sh, wq["exp_max"],
                  "ring-buffer shift out of range; weights saturate")  # fmt: skip
        shifts[c] = int(min(max(sh, wq["exp_min"]), wq["exp_max"]))
    wmax = (1 << int(wq["bits"])) - 1
    for pr, ch, real in parts:
        sh = np.where(ch == 0, shifts[0], shifts[1])
        wi = np.clip(rnd(real * 2.0 ** (frac - sh), rmode), 0, wmax)
        deq = wi * 2.0 ** (sh - frac) * np.where(ch == 0, gain[0], gain[1]) / s_v
        deq = np.where(ch == 1, -deq, deq)
        dchip = pr.delay.astype(np.int64) + int(dl["offset"])
        q.projections.append(QProjection(
            pr.name, pr.source, pr.target, pr.pre.copy(), pr.post.copy(), wi.astype(np.int64),
            dchip.astype(np.int32), ch, pr.w.copy(), deq, exp=0, sign_mode="separate_types",
            plasticity=pr.plasticity))  # fmt: skip
    params = {
        "v_rest": v_rest, "v_reset": v_reset, "v_thresh": v_thresh, "exp_tc": exp_tc,
        "r": r_bits, "dec_e": dec_e, "dec_i": dec_i, "init_e": init_e, "init_i": init_i,
        "delta": int(not cuba), "t_refract": t_ref, "shift_e": shifts[0], "shift_i": shifts[1],
        "bits_v": int(st["bits_v"]), "wrap_v": int(st["overflow_v"] == "wrap"),
        "ge": int(th["compare"] == ">="),
    }  # fmt: skip
    info = {
        "scale": s_v, "mv_per_unit": s_v, "threshold_float": theta,
        "threshold_effective": (v_thresh - v_rest) / one / s_v, "k_float": k,
        "k_effective": k_eff, "d_syn_float": f["d_exc"] if cuba else 0.0,
        "d_syn_effective": dec_e / u32 if cuba else 0.0,
        "bias_max_error": float(np.max(np.abs(ioff / one / s_v - lay.bias))) if lay.n else 0.0,
        "refractory_steps": n_ref,
        "tau_m_ms": -fm.dt_us / 1000.0 / math.log(1 - k) if 0 < k < 1 else float("inf"),
    }  # fmt: skip
    if cuba:
        for key, d in (("tau_syn_e_ms", f["d_exc"]), ("tau_syn_i_ms", f["d_inh"])):
            info[key] = -fm.dt_us / 1000.0 / math.log(d) if 0 < d < 1 else 0.0
    if p.get("v_init") is not None:
        q.notes.append(f"{lay.name}: v_init is not deployed (the chip starts at v_rest)")
    q.layers.append(QLayer(lay.name, lay.n, lay.model, params, ioff.astype(np.int64),
                           ioff.astype(np.int64), np.zeros(lay.n, np.int64), info))  # fmt: skip


#: Slots of the kernels' parameter arrays, by family (used by the emulator).
PARAM_ORDER = {
    "loihi_cuba": {
        "decay_u": K.LP_DECAY_U, "decay_v": K.LP_DECAY_V, "vth": K.LP_VTH,
        "refract_delay": K.LP_REFRACT, "bits_u": K.LP_BITS_U, "wrap_u": K.LP_WRAP_U,
        "bits_v": K.LP_BITS_V, "wrap_v": K.LP_WRAP_V, "bits_q": K.LP_BITS_Q,
        "wrap_q": K.LP_WRAP_Q, "offset_u": K.LP_OFFSET_U, "decay_bits": K.LP_DECAY_BITS,
        "ge": K.LP_GE, "u_lava": K.LP_U_LAVA,
    },
    "spinnaker_if_curr_exp": {
        "v_rest": K.SP_V_REST, "v_reset": K.SP_V_RESET, "v_thresh": K.SP_V_THRESH,
        "exp_tc": K.SP_EXP_TC, "r": K.SP_R, "dec_e": K.SP_DEC_E, "dec_i": K.SP_DEC_I,
        "init_e": K.SP_INIT_E, "init_i": K.SP_INIT_I, "delta": K.SP_DELTA,
        "t_refract": K.SP_T_REFRACT, "shift_e": K.SP_SHIFT_E, "shift_i": K.SP_SHIFT_I,
        "bits_v": K.SP_BITS_V, "wrap_v": K.SP_WRAP_V, "ge": K.SP_GE,
    },
}  # fmt: skip
