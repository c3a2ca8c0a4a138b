"""What a neuron model module declares, and the helpers the model kernels share.

A model module (one per neuron model, listed in `edgesnn.core.neurons`) defines ``MODEL``, a
`NeuronModel`: its name and code, its parameters with defaults (units in the names), its state
variables, the names of the scalars it packs into ``fp`` (``slots``, in order, followed by
``i_bias`` per neuron), the function packing them, the numba update kernel and its slow
pure-Python reference twin (same arithmetic in the same order: float64 spike trains equal).

An update kernel is ``update(rec, fs, fp, ii, slot) -> spikes``: it consumes ring-buffer slot
`slot` of the layer whose record starts at ``ii[rec]``, advances its neurons one step and writes
the neurons that spiked into the layer's spike list. It reads its scalars as
``fp[ii[rec + L_POFF] + k]`` with k the module's slot constants (folded by numba).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from edgesnn.core.layout import L_BOFF, L_N, L_ROFF, L_SOFF, L_SPKOFF

#: numba options of every kernel of the core
OPTS = {"cache": True, "nogil": True, "error_model": "numpy"}


@dataclass(frozen=True)
class RefEnv:
    """What a reference update needs beyond its layer: the step and the input path."""

    dt_ms: float
    dt_us: int
    direct: bool  # cuba_lif without delayed input: spikes went straight into its currents


@dataclass(frozen=True)
class NeuronModel:
    """A neuron model: its parameters, state, packed scalars, kernel and reference twin."""

    name: str
    code: int
    params: dict[str, Any]
    state: tuple[str, ...]
    doc: str = ""
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: names of the packed scalars, in fp order (i_bias, one per neuron, follows them)
    slots: tuple[str, ...] = ()
    #: (full parameters, dt_us) -> the scalars, in slot order
    pack: Callable[[dict[str, Any], int], list[float]] | None = None
    #: fills the state rows after v (row 0, already set) of a (n_vars, n) float64 array
    init: Callable[[dict[str, Any], np.ndarray], None] | None = None
    #: numba kernel (rec, fs, fp, ii, slot) -> number of spikes; None for input layers
    update: Any = None
    #: reference twin (p, state lists incl. "ref", exc input, inh input, RefEnv) -> spikes
    reference: Callable[..., list[int]] | None = None

    def slot(self, name: str) -> int:
        """The fp offset (relative to the layer's parameters) of packed scalar `name`."""
        try:
            return self.slots.index(name)
        except ValueError:
            raise KeyError(f"model {self.name!r} packs no scalar {name!r} "
                           f"(it packs {', '.join(self.slots) or 'none'})") from None  # fmt: skip


def factors(dt_ms: float, tau_ms: float, integration: str) -> tuple[float, float]:
    """(k, d): membrane update factor and per-step decay for a time constant."""
    if integration == "euler":
        return dt_ms / tau_ms, 1.0 - dt_ms / tau_ms
    d = math.exp(-dt_ms / tau_ms)
    return 1.0 - d, d


def n_substeps(dt_ms: float, max_substep_ms: float) -> int:
    """Sub-steps of at most `max_substep_ms` in one step of `dt_ms`."""
    return max(1, math.ceil(dt_ms / max_substep_ms - 1e-9))


def vector(value: Any, n: int) -> list[float]:
    """A scalar or n values as a list of n Python floats (for the reference twins)."""
    a = np.asarray(value, dtype=np.float64)
    return [float(a)] * n if a.ndim == 0 else [float(x) for x in a.reshape(n)]


# --------------------------------------------------------------------------------------------
# kernel helpers
# --------------------------------------------------------------------------------------------


@njit(**OPTS)
def views(rec, fs, ii, slot):
    """Views of a layer's input slot (exc, inh), refractory counters (floats in fs) and spike
    list. Views (not index arithmetic) let LLVM drop negative-index checks and vectorise."""
    n = ii[rec + L_N]
    soff = ii[rec + L_SOFF]
    be = ii[rec + L_BOFF] + (slot * 2) * n
    roff = ii[rec + L_ROFF]
    spk = ii[rec + L_SPKOFF]
    return (
        n,
        fs[be : be + n],
        fs[be + n : be + 2 * n],
        fs[roff : roff + n],
        ii[spk : spk + n],
        soff,
    )


@njit(**OPTS)
def scan(v, th, th_a, ref, spk, n, cnt, v_reset, n_ref):
    """Collect the `cnt` neurons with v > th (+ th_a[i] when th_a is not empty) into spk,
    reset them and start their refractory period. Returns cnt."""
    if cnt == 0:
        return 0
    ns = 0
    adaptive = th_a.shape[0] != 0
    for i in range(n):
        thr = th + th_a[i] if adaptive else th
        if v[i] > thr:
            spk[ns] = i
            v[i] = v_reset
            ref[i] = n_ref
            ns += 1
            if ns == cnt:
                break
    return ns


@intrinsic
def _cttz(typingctx, x):
    """Trailing zero bits of a non-zero unsigned integer (one instruction)."""
    sig = x(x)

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return sig, codegen


@intrinsic
def _gt_mask64(typingctx, arr, i0, th):
    """Bit q set where arr[i0 + q] > th, for q < 64 (all 64 values must exist): vector
    compares whose lane masks are moved to one integer (``vcmpps`` into a mask register and one
    move per 16 floats), which the scalar loop ``m |= (x > th) << q`` does not compile to. NaN
    compares false, as ``>`` does."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C"
            and arr.dtype in (types.float32, types.float64) and th == arr.dtype):  # fmt: skip
        return None  # contiguous float arrays and a threshold of their type only
    sig = types.uint64(arr, types.intp, arr.dtype)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        fty = context.get_value_type(signature.args[0].dtype)
        lanes = 16 if signature.args[0].dtype == types.float32 else 8
        vty = ir.VectorType(fty, lanes)
        i32, i64 = ir.IntType(32), ir.IntType(64)
        splat = builder.insert_element(ir.Constant(vty, ir.Undefined), args[2],
                                       ir.Constant(i32, 0))  # fmt: skip
        splat = builder.shuffle_vector(splat, ir.Constant(vty, ir.Undefined),
                                       ir.Constant(ir.VectorType(i32, lanes), [0] * lanes))
        base = builder.gep(ary.data, [args[1]])
        acc = ir.Constant(i64, 0)
        for b in range(64 // lanes):
            p = builder.bitcast(builder.gep(base, [ir.Constant(i64, b * lanes)]), vty.as_pointer())
            gt = builder.fcmp_ordered(">", builder.load(p, align=1), splat)
            bits = builder.zext(builder.bitcast(gt, ir.IntType(lanes)), i64)
            acc = builder.or_(acc, builder.shl(bits, ir.Constant(i64, b * lanes)))
        return acc

    return sig, codegen


@njit(**OPTS)
def scan_mask(v, th, ref, spk, n, cnt, v_reset, n_ref, sub):
    """Collect the neurons with v > th into spk (ascending), reset them (to v_reset, or by
    subtracting th when `sub`: one spike per step even if v stays above th) and start their
    refractory period; returns their number. Per block of 64 neurons a branch-free compare
    builds a bit mask whose set bits are then visited one by one, so the cost is one vector
    pass plus one iteration per spike (no per-neuron branch to mispredict). Stops after `cnt`
    spikes when cnt >= 0 (the count is known), scans everything when cnt < 0."""
    if cnt == 0:
        return 0
    ns = 0
    for i0 in range(0, n, 64):
        if i0 + 64 <= n:
            m = _gt_mask64(v, i0, th)  # measured: 400 float32 neurons 68 -> 40 ns
        else:
            vb = v[i0:n]  # a view from 0: no negative-index fix-ups, vectorises
            m = np.uint64(0)
            for q in range(vb.shape[0]):
                m |= np.uint64(vb[q] > th) << np.uint64(q)
        while m != 0:
            i = i0 + np.int64(_cttz(m))
            m &= m - np.uint64(1)
            spk[ns] = i
            v[i] = v[i] - th if sub else v_reset
            ref[i] = n_ref
            ns += 1
        if ns == cnt:
            break
    return ns
