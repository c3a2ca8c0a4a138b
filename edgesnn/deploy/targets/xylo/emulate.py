"""Xylo emulation: XyloSim's integer neuron (xylosim 0.1.3, ``XyloIAFNeuron.cpp`` and
``XyloLayer.cpp``) bit for bit, including its order of saturating additions (see the package
docstring), and Rockpool's XyloSim when it is installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

from edgesnn.deploy.profile import Profile
from edgesnn.deploy.targets.xylo.quantize import XyloModel, XyloSpec


@njit(cache=True, nogil=True)
def _sat(x: int, hi: int) -> int:
    if x > hi:
        return hi
    if x < -hi - 1:
        return -hi - 1
    return x


@njit(cache=True, nogil=True)
def _dec(x: int, dash: int) -> int:
    d = x >> dash
    if d == 0:
        if x > 0:
            return 1
        if x < 0:
            return -1
    return d


@njit(cache=True, nogil=True)
def _deliver(counts, cap, ptr, post, syn, w, isyn, hi, stats):
    """Add every synapse's weight once per event (<= cap) in XyloSim's order, saturating."""
    for pre in range(counts.shape[0]):
        c = counts[pre]
        if c > cap:
            c = cap
        if c <= 0:
            continue
        for j in range(ptr[pre], ptr[pre + 1]):
            t = post[j]
            s = syn[j]
            for _ in range(c):
                x = isyn[t, s] + w[j]
                y = _sat(x, hi)
                if y != x:
                    stats[0] += 1
                isyn[t, s] = y
            stats[2] += c


@njit(cache=True, nogil=True)
def _evolve(isyn, v, dash_syn, nsyn, dash_mem, th, bias, max_spk, hi, out, stats):
    """One step of a population of Xylo neurons (XyloIAFNeuron::evolve); spike counts to out."""
    for i in range(v.shape[0]):
        tot = 0
        for s in range(nsyn):
            x = isyn[i, s]
            isyn[i, s] = x - _dec(x, dash_syn[i, s])
            tot += isyn[i, s]
        dv = -_dec(v[i], dash_mem[i])
        if dv > hi:  # int16(-(-32768)) wraps
            dv -= 2 * (hi + 1)
        x = dv + tot
        dv = _sat(x, hi)
        x2 = dv + bias[i]
        dv2 = _sat(x2, hi)
        x3 = v[i] + dv2
        vi = _sat(x3, hi)
        if x != dv or x2 != dv2 or x3 != vi:
            stats[1] += 1
        n = 0
        while vi >= th[i] and n < max_spk:
            n += 1
            vi -= th[i]
        v[i] = vi
        out[i] = n
        stats[3] += 1


def _csr(w: np.ndarray, shift: int, n_syn: int) -> tuple[np.ndarray, ...]:
    """Synapses of a (pre, post[, syn]) matrix in XyloSim's order: per pre, synapse 1 targets
    ascending, then synapse 2; weights int16(mant << shift)."""
    w3 = w if w.ndim == 3 else w[:, :, None]
    w3 = w3[:, :, :n_syn]
    ptr = np.zeros(w3.shape[0] + 1, np.int64)
    posts, syns, ws = [], [], []
    for pre in range(w3.shape[0]):
        for s in range(w3.shape[2]):
            nz = np.nonzero(w3[pre, :, s])[0]
            posts.append(nz)
            syns.append(np.full(nz.size, s))
            ws.append(w3[pre, nz, s])
        ptr[pre + 1] = ptr[pre] + sum(a.size for a in posts[-w3.shape[2]:])
    def cat(a: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(a).astype(np.int64) if a else np.zeros(0, np.int64)

    wv = cat(ws) << int(shift)
    wv = ((wv + 32768) % 65536) - 32768  # the C++ int8 << shift -> int16_t conversion
    return ptr, cat(posts), cat(syns), wv


class XyloEmulator:
    """Runs a `XyloSpec` step by step, bit-exact with XyloSim (see the module docstring)."""

    def __init__(self, spec: XyloSpec, n_syn: int = 2, state_bits: int = 16,
                 input_events: int = 15, hidden_spikes: int = 31, output_spikes: int = 1):
        self.spec = spec
        self.n_syn = int(n_syn)
        self.hi = (1 << (state_bits - 1)) - 1
        self.caps = (int(input_events), int(hidden_spikes), int(output_spikes))
        self.cin = _csr(np.asarray(spec.weights_in, np.int64), spec.weight_shift_in, n_syn)
        self.crec = _csr(np.asarray(spec.weights_rec, np.int64), spec.weight_shift_rec, n_syn)
        self.cout = _csr(np.asarray(spec.weights_out, np.int64), spec.weight_shift_out, 1)
        nh, no = spec.n_hidden, spec.n_out
        self.dash_syn = np.stack([spec.dash_syn, spec.dash_syn_2], axis=1).astype(np.int64)
        self.dash_syn_out = np.asarray(spec.dash_syn_out, np.int64).reshape(no, 1)
        self.dash_mem = np.asarray(spec.dash_mem, np.int64)
        self.dash_mem_out = np.asarray(spec.dash_mem_out, np.int64)
        self.th = np.asarray(spec.threshold, np.int64)
        self.th_out = np.asarray(spec.threshold_out, np.int64)
        self.bias = np.asarray(spec.bias, np.int64)
        self.bias_out = np.asarray(spec.bias_out, np.int64)
        self.isyn = np.zeros((nh, 2), np.int64)
        self.isyn_out = np.zeros((no, 1), np.int64)
        self.v = np.zeros(nh, np.int64)
        self.v_out = np.zeros(no, np.int64)
        self.spk = np.zeros(nh, np.int64)
        self.spk_out = np.zeros(no, np.int64)
        #: saturated additions into i_syn, saturated membrane updates, synaptic events, updates
        self.stats = np.zeros(4, np.int64)

    def reset(self) -> None:
        """States, spikes in flight and counters back to zero."""
        for a in (self.isyn, self.isyn_out, self.v, self.v_out, self.spk, self.spk_out,
                  self.stats):
            a[:] = 0

    def step(self, counts: np.ndarray) -> np.ndarray:
        """One step with `counts` input events per channel; returns the readout spikes."""
        cin = np.asarray(counts, np.int64)
        hi = self.hi
        _deliver(cin, self.caps[0], *self.cin, self.isyn, hi, self.stats)
        _deliver(self.spk, self.caps[1], *self.crec, self.isyn, hi, self.stats)
        _deliver(self.spk, self.caps[1], *self.cout, self.isyn_out, hi, self.stats)
        _evolve(self.isyn, self.v, self.dash_syn, self.n_syn, self.dash_mem, self.th,
                self.bias, self.caps[1], hi, self.spk, self.stats)  # fmt: skip
        _evolve(self.isyn_out, self.v_out, self.dash_syn_out, 1, self.dash_mem_out,
                self.th_out, self.bias_out, self.caps[2], hi, self.spk_out,
                self.stats)  # fmt: skip
        return self.spk_out.copy()

    def run(self, raster: np.ndarray, record: bool = False) -> dict[str, np.ndarray]:
        """Run a (T, n_in) raster of event counts; returns per step `out` (T, n_out), `hidden`
        spike counts (T, n_hidden) and with `record` the states after each step."""
        raster = np.asarray(raster, np.int64)
        T = raster.shape[0]
        res = {"out": np.zeros((T, self.spec.n_out), np.int64),
               "hidden": np.zeros((T, self.spec.n_hidden), np.int64)}  # fmt: skip
        if record:
            for k, n in (("v", self.spec.n_hidden), ("isyn", self.spec.n_hidden),
                         ("isyn2", self.spec.n_hidden), ("v_out", self.spec.n_out),
                         ("isyn_out", self.spec.n_out)):
                res[k] = np.zeros((T, n), np.int64)
        for t in range(T):
            res["out"][t] = self.step(raster[t])
            res["hidden"][t] = self.spk
            if record:
                res["v"][t], res["v_out"][t] = self.v, self.v_out
                res["isyn"][t], res["isyn2"][t] = self.isyn[:, 0], self.isyn[:, 1]
                res["isyn_out"][t] = self.isyn_out[:, 0]
        return res

    @property
    def counters(self) -> dict[str, int]:
        """Saturations and operation counts since the last reset."""
        names = ("isyn_saturated", "v_saturated", "synaptic_events", "neuron_updates")
        return {n: int(self.stats[i]) for i, n in enumerate(names)}


def emulator_for(spec: XyloSpec, profile: Profile) -> XyloEmulator:
    """An emulator with the profile's synapse count, state width and per-step event caps."""
    ch = profile["chip"]
    return XyloEmulator(spec, int(ch["synapses_hidden"]), int(profile["state"]["bits"]),
                        int(ch["input_events_per_step"]), int(ch["hidden_spikes_per_step"]),
                        int(ch["output_spikes_per_step"]))  # fmt: skip


def raster(ptr: np.ndarray, idx: np.ndarray, n_in: int, a: int = 0, b: int | None = None
           ) -> np.ndarray:  # fmt: skip
    """Event counts (steps, n_in) of CSR input spikes over steps a..b (edgesnn input indices are
    the concatenated input layers, as are Xylo's input channels)."""
    b = len(ptr) - 1 if b is None else b
    out = np.zeros((b - a, n_in), np.int64)
    for k in range(a, b):
        sel = np.asarray(idx[ptr[k] : ptr[k + 1]], np.int64)
        sel = np.unique(sel[(sel >= 0) & (sel < n_in)])
        out[k - a, sel] = 1
    return out


# --- Rockpool's XyloSim (optional) ------------------------------------------------------------


def rockpool_xylosim(n_syn: int = 2) -> Any:
    """Rockpool's ``XyloSim`` class (Xylo Audio 2 for two synapses, Xylo IMU for one), or None
    when rockpool or xylosim is not installed. ``rockpool.devices.xylo`` imports samna (a
    binary SynSense ships outside PyPI) in its package ``__init__``; when that fails the
    simulator modules, which need only xylosim, are loaded without those ``__init__`` files."""
    import importlib
    import importlib.util
    import sys
    import types

    if importlib.util.find_spec("rockpool") is None or importlib.util.find_spec("xylosim") is None:
        return None
    sub = "syns61201" if n_syn == 2 else "syns63300"
    if importlib.util.find_spec("samna") is not None:
        try:
            return importlib.import_module(f"rockpool.devices.xylo.{sub}.xylo_sim").XyloSim
        except ImportError:
            pass
    import rockpool.devices as dev

    base = Path(dev.__file__).parent / "xylo"
    for k in list(sys.modules):
        if k.startswith("rockpool.devices.xylo"):
            del sys.modules[k]
    for name, path in (("rockpool.devices.xylo", base), ("rockpool.devices.xylo.syns61300",
                       base / "syns61300"), (f"rockpool.devices.xylo.{sub}", base / sub)):
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(path)]
        sys.modules[name] = pkg
    try:
        return importlib.import_module(f"rockpool.devices.xylo.{sub}.xylo_sim").XyloSim
    except ImportError:
        return None


def emulator(xm: XyloModel, profile: Profile) -> XyloEmulator:
    """The target's emulator of a quantized model (`emulator_for` its specification)."""
    return emulator_for(xm.spec, profile)
