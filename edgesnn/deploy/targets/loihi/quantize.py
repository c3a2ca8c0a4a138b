"""Loihi 1/2 quantization: a float model in the CUBA compartment's integers (lava's LIF and
Dense / DelayDense arguments).

``loihi_cuba``: per target layer one scale ``s`` (integer units per float unit of v), the
largest for which the threshold fits its mantissa and the state headroom, the largest
per-step input fits the input accumulator, every weight fits ``mant << (6 + exp_max)`` and the
bias fits ``mant << exp``; the threshold is made exact by snapping ``s``. Per projection a
sign mode (excitatory, inhibitory, mixed: even mantissas), the smallest weight exponent whose
mantissa range holds its largest weight, and mantissas rounded as the profile says. Decays
``decay_u = 2^12 (1 - d_syn) - 1``, ``decay_v = 2^12 k``.

`loihi_weights` is the one definition of the effective weights (lava's bit-accurate Dense),
used here, by the emulator and by the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgesnn.deploy.floatmodel import FloatLayer, FloatModel
from edgesnn.deploy.profile import Profile
from edgesnn.deploy.quantize import (
    QLayer,
    QProjection,
    QuantizedModel,
    add_clip,
    layer_factors,
    quantize_layers,
    rnd,
    rnd_int,
    threshold_distance,
)
from edgesnn.deploy.targets.loihi.emulate import Q_SATURATE, Q_UNLIMITED, Q_WRAP


def quantize(fm: FloatModel, profile: Profile) -> QuantizedModel:
    """Map `fm` onto a Loihi profile's integer parameters (see the module docstring)."""
    return quantize_layers(fm, profile, quantize_layer)


def effective_weights(qm: QuantizedModel, p: QProjection) -> tuple[np.ndarray, float]:
    """(the weights the emulator adds, in float units: `loihi_weights` over the layer's weight
    gain; the most a negative exponent's floor of a neuron's summed input removes in one step,
    in float units, 0 when exp >= 0) of one projection, for the report's weight errors."""
    gain = qm.layer(p.target).info.get("weight_gain")
    if not gain:
        return p.w_deq, 0.0
    lw = loihi_weights(p.w, p.exp, p.sign_mode, p.num_weight_bits)
    floor = (64.0 - 2.0 ** (6 + p.exp)) / gain if p.exp < 0 else 0.0
    return lw.value / gain, floor


def quantize_layer(fm: FloatModel, lay: FloatLayer, prof: Profile, q: QuantizedModel) -> None:
    """One neuron layer and its incoming projections in the chip's integers (appended to q)."""
    wq, st, th, bi = prof["weights"], prof["state"], prof["threshold"], prof["bias"]
    dc, rf, dl = prof["decay"], prof["refractory"], prof["delay"]
    rmode = wq["rounding"]
    f = layer_factors(lay, fm.dt_us)
    cuba = lay.model == "cuba_lif"
    kin = f["k"] if cuba else 1.0
    incoming = fm.incoming(lay.name)
    theta, cmp_float = threshold_distance(lay)
    if not theta > 0:
        add_clip(q, "threshold_range", lay.name, theta, "> 0",
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
        du = rnd_int(full * (1 - f["d_exc"]), dc["rounding"]) - off
    else:
        du = min(full - off, full - 1)  # full decay: u is the input of the step
    if du < 0 or du > full - 1:
        add_clip(q, "decay_range", lay.name, du, f"0..{full - 1}", "current decay clipped")
        du = min(max(du, 0), full - 1)
    dv = rnd_int(full * f["k"], dc["rounding"]) if lay.model != "if" else 0
    if dv > full - 1:
        add_clip(q, "decay_range", lay.name, dv, f"0..{full - 1}", "voltage decay clipped")
        dv = full - 1
    # --- refractory, reset ----------------------------------------------------------------------
    n_ref = int(f["n_ref"])
    rd = n_ref + int(rf["offset"])
    if rd > rf["max_steps"] or rd < rf["min_steps"]:
        add_clip(q, "refractory_range", lay.name, rd, f"{rf['min_steps']}..{rf['max_steps']}",
              f"refractory period of {n_ref} steps does not fit")  # fmt: skip
        rd = int(min(max(rd, rf["min_steps"]), rf["max_steps"]))
    p = lay.params
    if lay.model == "if":
        if p.get("reset") == "subtract":
            add_clip(q, "reset_mode", lay.name, "subtract", prof["reset"]["mode"],
                  "reset by subtraction is not available")  # fmt: skip
        if float(p.get("v_reset", 0.0)) != 0.0:
            add_clip(q, "reset_mode", lay.name, p.get("v_reset"), 0.0, "reset value must be 0")
    elif p.get("reset") == "subtract":
        add_clip(q, "reset_mode", lay.name, "subtract", prof["reset"]["mode"],
              "reset by subtraction is not available: the chip resets to rest (0)")  # fmt: skip
    elif float(p.get("v_reset", 0.0)) != float(p.get("v_rest", 0.0)):
        add_clip(q, "reset_mode", lay.name, p.get("v_reset"), p.get("v_rest", 0.0),
              "the chip resets to rest (0): v_reset must equal v_rest")  # fmt: skip
    if cuba and any(pr.channel == 1 for pr in incoming) and \
            p["tau_syn_inh_ms"] != p["tau_syn_exc_ms"]:  # fmt: skip
        add_clip(q, "current_decays", lay.name, f"{p['tau_syn_exc_ms']} / {p['tau_syn_inh_ms']} ms",
              "one current decay per compartment",
              "excitatory and inhibitory currents with different time constants; the chip uses "
              "tau_syn_exc_ms for both")  # fmt: skip
    # --- bias ---------------------------------------------------------------------------------
    b = bias_f * s
    exp_max_b = (1 << int(bi["exp_bits"])) - 1
    with np.errstate(divide="ignore"):
        bexp = np.ceil(np.log2(np.maximum(np.abs(b) / bias_mant_max, 1.0))).astype(np.int64)
    if np.any(bexp > exp_max_b):
        add_clip(q, "bias_range", lay.name, float(np.max(np.abs(b))), bias_cap, "bias clipped")
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
            add_clip(q, "weight_exponent", lay.name, e, wq["exp_max"],
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
        "wrap_q": {"saturate": Q_SATURATE, "wrap": Q_WRAP,
                   "unlimited": Q_UNLIMITED}[st["overflow_q"]],
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
