"""SpiNNaker 1/2 quantization: a float model in sPyNNaker's IF_curr_exp / IF_curr_delta
integers (s16.15 states, u0.32 decays, 16-bit ring-buffer weights).

``spinnaker_if_curr_exp``: v in mV (``v_rest_mv`` + ``v_span_mv`` per float unit of
threshold distance), s16.15 states, R = 1 MOhm (cm = tau_m), exp_TC = 1 - k, synapse decays
and PyNN's init factor as u0.32, per target layer and synapse type a ring-buffer left shift
from the largest input per step, weights as unsigned 16-bit ``w * 2^(15 - shift)``.
"""

from __future__ import annotations

import math

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


def quantize(fm: FloatModel, profile: Profile) -> QuantizedModel:
    """Map `fm` onto a SpiNNaker profile's integer parameters (see the module docstring)."""
    return quantize_layers(fm, profile, quantize_layer)


def effective_weights(qm: QuantizedModel, p: QProjection) -> tuple[np.ndarray, float]:
    """(the dequantized weights in float units, 0: no per-step floor) of one projection."""
    return p.w_deq, 0.0


def quantize_layer(fm: FloatModel, lay: FloatLayer, prof: Profile, q: QuantizedModel
                     ) -> None:  # fmt: skip
    """One neuron layer and its incoming projections in the chip's integers (appended to q)."""
    wq, st, th, dc = prof["weights"], prof["state"], prof["threshold"], prof["decay"]
    rf, dl, qz = prof["refractory"], prof["delay"], prof["quantization"]
    rmode, dmode = wq["rounding"], dc["rounding"]
    frac = int(st["frac_bits"])
    one = 1 << frac
    f = layer_factors(lay, fm.dt_us)
    p = lay.params
    cuba = lay.model == "cuba_lif"
    theta, cmp_float = threshold_distance(lay)
    if not theta > 0:
        add_clip(q, "threshold_range", lay.name, theta, "> 0",
              "the threshold must lie above the rest potential")  # fmt: skip
        theta = 1.0
    v_rest_mv, span = float(qz.get("v_rest_mv", -65.0)), float(qz.get("v_span_mv", 15.0))
    s_v = span / theta  # mV per float unit
    v_rest0 = float(p.get("v_rest", 0.0))
    v_rest = rnd_int(v_rest_mv * one, dmode)
    thr_real = (v_rest_mv + span) * one
    if th["compare"] == ">=" and cmp_float == ">":
        v_thresh = int(math.floor(thr_real)) + 1
    elif th["compare"] == ">" and cmp_float == ">=":
        v_thresh = int(math.ceil(thr_real)) - 1
    else:
        v_thresh = rnd_int(thr_real, dmode)
    v_reset = rnd_int((v_rest_mv + s_v * (float(p.get("v_reset", 0.0)) - v_rest0)) * one, dmode)
    if p.get("reset") == "subtract":
        add_clip(q, "reset_mode", lay.name, "subtract", "v_reset",
              "reset by subtraction is not available: sPyNNaker resets to v_reset")  # fmt: skip
    k = f["k"]
    exp_tc = rnd_int((1.0 - k) * one, dmode)
    k_eff = 1.0 - exp_tc / one
    r_bits = one  # R = 1 MOhm: cm = tau_m
    u32 = 1 << 32

    def u032(x: float) -> int:
        return int(min(max(rnd_int(x * u32, dmode), 0), u32 - 1))

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
        add_clip(q, "refractory_range", lay.name, t_ref, f"{rf['min_steps']}..{rf['max_steps']}",
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
            add_clip(q, "synapse_types", lay.name, pr.name, "one sign per current",
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
            add_clip(q, "weight_exponent", lay.name, sh, wq["exp_max"],
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
