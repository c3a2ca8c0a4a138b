"""`Network`: a `NetworkSpec` packed into flat arrays and run by the numba kernels.

`step()` is one numba call with two arguments (the buffer holding every packed array, and the
input), `run()`
advances a whole CSR input in one call. Model files (`edgesnn.core.fileformat`) are an npz of
a versioned JSON manifest holding the network description plus named arrays, loaded without
pickle and rebuilt through the normal NetworkSpec -> Network path.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import tokenize
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npformat

from edgesnn.core import kernels as K
from edgesnn.core import layout as L
from edgesnn.core import plasticity
from edgesnn.core.models import MODELS, initial_state, pack_params
from edgesnn.core.spec import NetworkSpec, conv_out_shape, pool_out_shape, random_edges
from edgesnn.errors import FormatError

log = logging.getLogger("edgesnn.core")

MODEL_FORMAT = "edgesnn-model"
MODEL_VERSION = 2  # edgesnn.core.fileformat.VERSION
_RULE_CODES = {
    "dense": L.RULE_DENSE,
    "sparse": L.RULE_SPARSE,
    "one_to_one": L.RULE_ONE,
    "wta": L.RULE_WTA,
    "conv2d": L.RULE_CONV,
    "pool2d": L.RULE_POOL,
}
_ARRAYS = ("fs", "fp", "w", "ii", "ij", "fs0", "ii0")


@dataclass(frozen=True)
class ProjectionRecord:
    """A projection as the core packed it, by name (`Network.projection_record`): what deploy
    and tools read instead of table offsets. Arrays are read-only copies except `weights`
    (a view of the live flat weights, read-only for a sparse projection also stored as dense
    rows)."""

    rule: str  # packed form: dense, sparse (also random), one_to_one, wta, conv2d, pool2d
    pre: int  # layer indices
    post: int
    channel: int  # 0 excitatory, 1 inhibitory channel of the target
    gain: float
    delay: int  # the uniform delay (steps beyond the one-step hop)
    weights: np.ndarray  # flat, in the order of the rule (dense rows, CSR, kernel)
    row_ptr: np.ndarray | None = None  # sparse: CSR row pointers (n_pre + 1)
    targets: np.ndarray | None = None  # sparse: post neuron of every synapse
    delays: np.ndarray | None = None  # sparse with per-synapse delays
    #: conv2d / pool2d: c_in, h_in, w_in, c_out, h_out, w_out, kh, kw, stride, pad
    geometry: dict[str, int] | None = None


@dataclass(slots=True)
class Recording:
    """Output spikes of `Network.run` as CSR over steps (the layout of a SpikeRaster)."""

    ptr: np.ndarray  # int64, n_steps + 1
    idx: np.ndarray  # int32
    syn_events: int = 0

    @property
    def n_steps(self) -> int:
        return int(self.ptr.shape[0] - 1)

    def step_spikes(self, k: int) -> np.ndarray:
        return self.idx[self.ptr[k] : self.ptr[k + 1]]


@dataclass
class _Proj:
    """A projection made concrete: rule code, weights, CSR, delays, shapes."""

    rule: int
    pre: int
    post: int
    ch: int
    gain: float
    w: np.ndarray
    delay: int = 0
    ptr: np.ndarray | None = None
    idx: np.ndarray | None = None
    delays: np.ndarray | None = None
    # per-synapse delays of every pair in row-major order, packed as bytes (P_DMODE 2): `delays`
    # is then the given (n_pre, n_post) matrix itself, and there are no targets (`idx`)
    delay_bytes: bool = False
    conv: tuple[int, ...] = (0,) * 10
    plast: dict[str, Any] | None = None
    name: str = ""
    shape: tuple[int, ...] = ()
    neg: bool = False  # synapse = "inh": the packed weights are -|w|

    @property
    def max_delay(self) -> int:
        if self.delays is not None and self.delays.size:
            return int(self.delays.max())
        return self.delay


def _csr(
    pre: np.ndarray, post: np.ndarray, w: np.ndarray, d: np.ndarray | None, n_pre: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    order = np.argsort(pre, kind="stable")
    ptr = np.zeros(n_pre + 1, np.int64)
    np.cumsum(np.bincount(pre, minlength=n_pre), out=ptr[1:])
    return ptr, post[order].astype(np.int32), w[order], None if d is None else d[order]


def _floats(x: Any) -> np.ndarray:
    """`x` as a float array, the given one itself when it is float16/32/64 (big weight matrices
    are not copied; they are cast once, into the network's buffer), anything else via float64."""
    a = np.asarray(x)
    if a.dtype.kind != "f" or a.dtype.itemsize > 8:
        a = a.astype(np.float64)
    return a


#: a sparse projection (no plasticity, one delay for all synapses, no repeated pair) whose
#: synapses fill at least this fraction of n_pre x n_post is also stored as dense rows, which the
#: step delivers at dense speed (`edgesnn bench core --workload sparse` measures the crossover);
#: up to DENSE_ROWS_MAX weights, so a huge sparse projection never gets a huge dense copy
DENSE_ROWS_DENSITY = 0.1
DENSE_ROWS_MAX = 1 << 24

#: a dense projection without plasticity whose per-synapse delays are all below 256 keeps them
#: as bytes with no targets (P_DMODE 2: a quarter of its float32 weight bytes instead of 4x);
#: False packs it as every pair of a sparse projection (P_DMODE 1), the form the sums equal
DELAY_BYTES = True

#: batch runs of networks with at least this many synapses delivered as dense rows split those
#: rows by columns across two threads (`Network.threads`); below it a step is too short for
#: the hand-over between threads to pay
MT_MIN_SYNAPSES = 1_000_000
#: ... and only for runs of at least this many steps (starting the second thread costs ~0.1 ms)
MT_MIN_STEPS = 32
#: the streaming step of networks with at most this many weights and neurons together holds the
#: GIL (`kernels.step_f32_held`: a step of microseconds gains nothing from releasing it, and
#: pays the hand-over); bigger ones release it while they run
GIL_HELD_MAX_SIZE = 1_000_000

_I32 = np.dtype(np.int32)


def _step_signature() -> tuple[Any, Any]:
    """The one signature the streaming step kernels are compiled for: the packed byte buffer
    and a 1-D int32 input of any strides (so every 1-D int32 array is taken as it is)."""
    from numba import types

    return (types.Array(types.uint8, 1, "C"), types.Array(types.int32, 1, "A"))


def _step_input(in_idx: Any) -> np.ndarray:
    """Input spike indices as a 1-D int32 array (`in_idx` itself when it is one, of any
    strides: what the compiled step entry takes); indices beyond int32 become -1, which the
    step counts as dropped like any index outside the input layers (a cast would wrap them
    onto real neurons)."""
    try:
        if in_idx.ndim == 1 and in_idx.dtype is _I32:
            return in_idx  # type: ignore[no-any-return]
    except AttributeError:
        pass
    a = np.asarray(in_idx)
    if a.size == 0:
        return np.zeros(0, np.int32)
    if a.dtype.kind not in "iub":
        raise TypeError(f"step input: integer neuron indices expected, got {a.dtype}")
    if a.dtype.kind != "b" and (a.dtype.itemsize > 4
                                or (a.dtype.kind == "u" and a.dtype.itemsize == 4)):
        a = np.where((a >= 0) & (a <= np.iinfo(np.int32).max), a, -1)
    return np.ascontiguousarray(a, dtype=np.int32).reshape(-1)


def _compiled_step(kernel: Any) -> Any:
    """The compiled entry of a step kernel for `_step_signature` when this process has it
    already (None otherwise): taking it from there needs no compiler lock."""
    cres = kernel.overloads.get(_step_signature())
    return None if cres is None else cres.entry_point


def _native_step(kernel: Any, dtype: str) -> Any:
    """The compiled entry of a streaming step kernel for `_step_signature` (compiled, or loaded
    from numba's on-disk cache, on first use): calling it directly skips numba's per-call type
    dispatch (~80 ns of a ~1 us step). Its arguments must be of that signature exactly."""
    entry = _compiled_step(kernel)
    if entry is not None:
        return entry
    _announce_compile(dtype, kernel, _step_signature())
    return kernel.compile(_step_signature())


def _in_disk_cache(kernel: Any, sig: Any = None) -> bool:
    """Whether numba's on-disk cache of `kernel` holds a compiled version (of signature `sig`
    when given); numba's own index reader gives nothing when the index is missing, from
    another numba, or stale (the source changed since, e.g. after an upgrade)."""
    try:
        index = kernel._cache._cache_file._load_index()
        return bool(index) if sig is None else any(k[0] == sig for k in index)
    except (AttributeError, IndexError, TypeError):  # pragma: no cover - other numba versions
        return True


def _cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _dense_rows_ok(p: _Proj, n_pre: int, n_post: int) -> bool:
    """Whether sparse projection `p` is stored as dense rows too (`DENSE_ROWS_DENSITY`)."""
    if p.rule != L.RULE_SPARSE or p.plast is not None or p.delays is not None:
        return False
    assert p.ptr is not None and p.idx is not None
    cells = n_pre * n_post
    if not 0 < cells <= DENSE_ROWS_MAX or p.idx.size < DENSE_ROWS_DENSITY * cells:
        return False
    if not np.isfinite(p.gain):  # inf * 0 would not add nothing
        return False
    key = np.repeat(np.arange(n_pre, dtype=np.int64), np.diff(p.ptr)) * n_post + p.idx
    return bool(np.unique(key).size == key.size)  # a repeated pair has no single dense cell


def _fill_rows(dst: np.ndarray, p: _Proj, csr: np.ndarray, n_post: int) -> None:
    """The packed CSR weights `csr` of `p` as dense rows in `dst`; an absent synapse holds the
    zero whose product with the gain is -0 (x + -0 == x for every x, +0 and -0 included)."""
    assert p.ptr is not None and p.idx is not None
    dst[:] = 0.0 if np.signbit(dst.dtype.type(p.gain)) else -0.0
    rows = np.repeat(np.arange(p.ptr.size - 1, dtype=np.int64), np.diff(p.ptr))
    dst[rows * n_post + p.idx] = csr


def _delay_bytes(d: np.ndarray) -> np.ndarray:
    """Delay matrix `d` (each in 0..255) as uint8 in row-major order, packed 4 per int32 word
    (native byte order, as the kernel reads them back): cast straight into the words, so no
    whole copy of `d` is made on the way."""
    words = np.zeros((d.size + 3) // 4, np.int32)
    words.view(np.uint8)[: d.size].reshape(d.shape)[...] = d
    return words


def _unpack_delays(ij: np.ndarray, off: int, nsyn: int) -> np.ndarray:
    """The per-synapse delays packed as bytes from ij[off] (P_DMODE 2) as int32."""
    return ij[off : off + (nsyn + 3) // 4].view(np.uint8)[:nsyn].astype(np.int32)


def _fill(dst: np.ndarray, p: _Proj) -> None:
    """Cast the weights of `p` (any shape, possibly a broadcast view) into `dst`, in place."""
    dst.reshape(p.w.shape)[...] = p.w
    if p.neg:
        np.abs(dst, out=dst)
        np.negative(dst, out=dst)


def _concretize(spec: NetworkSpec, index: int, names: dict[str, int]) -> _Proj:
    proj = spec.projections[index]
    src = spec.layers[names[proj.source]]
    dst = spec.layers[names[proj.target]]
    n_pre, n_post = src.n, dst.n
    rule = proj.rule
    w_given = _floats(proj.get("weight", 1.0))
    d_given = np.asarray(proj.get("delay_steps", 0))  # integers, checked <= max delay
    if not (rule == "dense" and d_given.ndim == 2):
        d_given = d_given.astype(np.int32)  # a dense matrix is packed as given: no whole copy
    syn = proj.get("synapse", "auto")
    ch = 1 if syn == "inh" else 0
    if rule == "conv2d" and syn == "inh":
        ch = 1
    common = {
        "pre": names[proj.source],
        "post": names[proj.target],
        "ch": ch,
        "gain": float(proj.get("gain", 1.0)),
        "name": f"{proj.source}->{proj.target}",
        "plast": proj.get("plasticity"),
        "neg": syn == "inh",
    }
    uniform = d_given.ndim == 0 or d_given.size == 0 or bool(d_given.min() == d_given.max())
    d0 = int(d_given.flat[0]) if d_given.size else 0
    if rule == "random":
        a, b = random_edges(spec, index)
        w = np.full(a.size, float(w_given))
        ptr, idx, w, _ = _csr(a, b, w, None, n_pre)
        return _Proj(L.RULE_SPARSE, w=w, ptr=ptr, idx=idx, delay=d0, **common)
    if rule == "dense":
        W = np.broadcast_to(w_given, (n_pre, n_post))  # a view: no copy of the given matrix
        jitter = float(proj.get("weight_jitter", 0.0) or 0.0)
        if jitter > 0:
            seed = proj.get("seed")
            rng = np.random.default_rng(spec.seed + 1000 + index if seed is None else seed)
            W = W.astype(np.float64) * (1.0 + rng.uniform(-jitter, jitter, W.shape))
        if uniform:
            return _Proj(
                L.RULE_DENSE,
                w=W,
                delay=d0,
                shape=(n_pre, n_post),
                **common,
            )
        # every pair, in row-major order: the matrix's CSR needs no sorting and no copy of W
        ptr = np.arange(n_pre + 1, dtype=np.int64) * n_post
        if DELAY_BYTES and common["plast"] is None and int(d_given.max()) < 256:
            # delays as bytes, targets implied by the order (P_DMODE 2): a quarter of the
            # weight bytes instead of targets, delays and ring offsets (4x the weight bytes)
            return _Proj(L.RULE_SPARSE, w=W, ptr=ptr, delays=d_given, delay_bytes=True, **common)
        idx = np.tile(np.arange(n_post, dtype=np.int32), n_pre)
        d = d_given.reshape(-1).astype(np.int32)
        return _Proj(L.RULE_SPARSE, w=W, ptr=ptr, idx=idx, delays=d, **common)
    if rule == "sparse":
        a = np.asarray(proj.get("pre"), dtype=np.int64)
        b = np.asarray(proj.get("post"), dtype=np.int64)
        w = np.broadcast_to(w_given, a.shape)
        d = None if uniform else np.broadcast_to(d_given, a.shape).astype(np.int32)
        ptr, idx, w, d = _csr(a, b, w, d, n_pre)
        return _Proj(L.RULE_SPARSE, w=w, ptr=ptr, idx=idx, delay=d0, delays=d, **common)
    if rule == "one_to_one":
        w = np.broadcast_to(w_given, (n_pre,))
        if uniform:
            return _Proj(L.RULE_ONE, w=w, delay=d0, **common)
        a = np.arange(n_pre)
        ptr, idx, w, d = _csr(a, a, w, d_given.astype(np.int32), n_pre)
        return _Proj(L.RULE_SPARSE, w=w, ptr=ptr, idx=idx, delays=d, **common)
    if rule == "wta":
        return _Proj(L.RULE_WTA, w=np.asarray([float(w_given)]), delay=d0, **common)
    shape = tuple(int(x) for x in proj.get("in_shape"))
    if rule == "conv2d":
        k = _floats(proj.get("kernel"))
        stride, pad = int(proj.get("stride", 1)), int(proj.get("padding", 0))
        out = conv_out_shape(shape, k.shape[0], k.shape[2], k.shape[3], stride, pad)
        conv = (*shape, *out, k.shape[2], k.shape[3], stride, pad)
        return _Proj(
            L.RULE_CONV,
            w=k,
            delay=d0,
            conv=conv,
            shape=k.shape,
            **common,
        )
    size = int(proj.get("size", 2))
    stride = int(proj.get("stride") or size)
    out = pool_out_shape(shape, size, stride)
    conv = (*shape, *out, size, size, stride, 0)
    return _Proj(L.RULE_POOL, w=np.asarray([float(w_given)]), delay=d0, conv=conv, **common)


def _channel(spec: NetworkSpec, index: int, p: _Proj) -> int:
    """'auto' picks the inhibitory channel when every weight is <= 0 and one is < 0."""
    syn = spec.projections[index].get("synapse", "auto")
    if syn == "auto" and p.w.size and np.all(p.w <= 0) and np.any(p.w < 0):
        return 1
    return 1 if syn == "inh" else 0


def _pack(spec: NetworkSpec) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Packed arrays and the manifest describing them."""
    spec.check()
    names = {lay.name: i for i, lay in enumerate(spec.layers)}
    projs = []
    for i in range(len(spec.projections)):
        p = _concretize(spec, i, names)
        p.ch = _channel(spec, i, p)
        projs.append(p)
    nl, npj = len(spec.layers), len(projs)
    nslot = [1] * nl
    for p in projs:
        nslot[p.post] = max(nslot[p.post], p.max_delay + 1)
    outputs = spec.outputs
    dt_us = spec.dt_us

    sizes = {"fs": 0, "fp": 0, "ii": 0, "ij": 0}
    # the blocks of each array (offset, values): copied into the network's buffer at the end,
    # cast to its type there (no concatenated copy)
    parts: dict[str, list[tuple[int, np.ndarray]]] = {k: [] for k in sizes}

    def put(kind: str, arr: np.ndarray) -> int:
        # every block starts on a 64-byte boundary (16 elements) so vector loads stay aligned;
        # the buffer starts zeroed, so the padding is zeros
        sizes[kind] += -sizes[kind] % _ALIGN
        off = sizes[kind]
        parts[kind].append((off, arr))
        sizes[kind] += arr.size
        return off

    head = np.zeros(L.H_SIZE, np.int64)
    put("ii", head)
    consts = np.zeros(L.F_SIZE)
    consts[L.F_ONE] = 1.0
    put("fp", consts)
    ltab = put("ii", np.zeros(nl * L.LR, np.int64))
    ptab = put("ii", np.zeros(npj * L.PR, np.int64))
    lrec = np.zeros((nl, L.LR), np.int64)
    prec = np.zeros((npj, L.PR), np.int64)
    layers_meta = []
    in_off = out_off = 0
    for li, lay in enumerate(spec.layers):
        md = MODELS[lay.model]
        full = lay.full_params()
        st = initial_state(lay.model, full, lay.n)
        r = lrec[li]
        r[L.L_MODEL] = md.code
        r[L.L_N] = lay.n
        r[L.L_SOFF] = put("fs", st.ravel())
        r[L.L_POFF] = put("fp", pack_params(lay.model, full, lay.n, dt_us))
        r[L.L_NSLOT] = nslot[li]
        if lay.model == "cuba_lif" and nslot[li] == 1:
            # no delayed input: deliver straight into the currents (i_exc, i_inh follow v)
            r[L.L_DIRECT] = 1
            r[L.L_BOFF] = r[L.L_SOFF] + lay.n
        else:
            r[L.L_BOFF] = put("fs", np.zeros(nslot[li] * 2 * lay.n))
        r[L.L_ROFF] = put("fs", np.zeros(lay.n))
        r[L.L_SPKOFF] = put("ii", np.zeros(lay.n, np.int64))
        r[L.L_INOFF] = -1
        r[L.L_OUTOFF] = -1
        if lay.model == "input":
            r[L.L_INOFF] = in_off
            in_off += lay.n
        layers_meta.append(
            {
                "name": lay.name,
                "n": lay.n,
                "model": lay.model,
                "state": list(md.state),
                "params": {k: _jsonable(v) for k, v in lay.params.items()},
            }
        )
    for li in range(nl):
        inh = any(p.post == li and p.ch == 1 for p in projs)
        if lrec[li, L.L_DIRECT] == 1 and not inh:
            lrec[li, L.L_DIRECT] = 2  # and i_inh stays 0: the update skips it
    for name in outputs:
        li = names[name]
        lrec[li, L.L_OUTOFF] = out_off
        out_off += spec.layers[li].n
    w_size = 0
    proj_meta = []
    for pi, p in enumerate(projs):
        r = prec[pi]
        r[L.P_RULE], r[L.P_PRE], r[L.P_POST], r[L.P_CH] = p.rule, p.pre, p.post, p.ch
        w_size += -w_size % _ALIGN  # zeros between blocks
        r[L.P_WOFF] = w_size
        r[L.P_NW] = p.w.size
        w_size += p.w.size
        r[L.P_DWOFF] = -1
        n_rows, n_cols = spec.layers[p.pre].n, spec.layers[p.post].n
        if _dense_rows_ok(p, n_rows, n_cols):
            w_size += -w_size % _ALIGN
            r[L.P_DWOFF] = w_size
            w_size += n_rows * n_cols
        r[L.P_GOFF] = put("fp", np.asarray([p.gain]))
        r[L.P_DELAY] = p.delay
        if p.delay_bytes:
            assert p.delays is not None
            r[L.P_PTROFF] = put("ii", p.ptr)
            r[L.P_IDXOFF] = r[L.P_DROFF] = -1
            r[L.P_DMODE] = 2
            r[L.P_DOFF] = put("ij", _delay_bytes(p.delays))
        elif p.ptr is not None:
            r[L.P_PTROFF] = put("ii", p.ptr)
            r[L.P_IDXOFF] = put("ij", p.idx)
            if p.delays is not None:
                r[L.P_DMODE] = 1
                r[L.P_DOFF] = put("ij", np.asarray(p.delays, np.int32))
                stride = 2 * spec.layers[p.post].n
                if nslot[p.post] * stride > np.iinfo(np.int32).max:
                    raise ValueError(
                        f"projection {p.name}: a ring buffer of {nslot[p.post]} slots x "
                        f"{stride} values is too large for per-synapse delays"
                    )
                ring_off = np.asarray(p.delays, np.int32) * np.int32(stride) + p.idx  # < 2^31
                r[L.P_DROFF] = put("ij", ring_off)
        (
            r[L.P_CIN],
            r[L.P_HIN],
            r[L.P_WIN],
            r[L.P_COUT],
            r[L.P_HOUT],
            r[L.P_WOUT],
            r[L.P_KH],
            r[L.P_KW],
            r[L.P_STRIDE],
            r[L.P_PAD],
        ) = p.conv
        r[L.P_MODOFF] = put("fs", np.ones(1))
        if p.plast is not None:
            pl = p.plast
            prule = plasticity.rule_of(pl)  # registered by edgesnn.learning.rules
            r[L.P_PLAST] = prule.code(pl)
            n_pre, n_post = spec.layers[p.pre].n, spec.layers[p.post].n
            r[L.P_TPRE] = put("fs", np.zeros(n_pre))
            r[L.P_TPOST] = put("fs", np.zeros(n_post))
            if p.rule == L.RULE_SPARSE:
                assert p.ptr is not None and p.idx is not None
                rows = np.repeat(np.arange(n_pre), np.diff(p.ptr))
                order = np.argsort(p.idx, kind="stable")
                cptr = np.zeros(n_post + 1, np.int64)
                np.cumsum(np.bincount(p.idx, minlength=n_post), out=cptr[1:])
                pairs = np.stack([order, rows[order]], axis=1).astype(np.int32).ravel()
                r[L.P_CPTROFF] = put("ii", cptr)
                r[L.P_CIDXOFF] = put("ij", pairs)
            adaptive = spec.layers[p.post].model == "adaptive_lif"
            theta = int(lrec[p.post, L.L_SOFF]) + n_post if adaptive else -1
            # the rule's parameters (fp) and its own state (the event-driven rules' record)
            r[L.P_PPOFF], r[L.P_LREC] = prule.pack(pl, put, n_pre, n_post, p.w.size, dt_us, theta)
        proj_meta.append(
            {
                "name": p.name,
                "source": spec.projections[pi].source,
                "target": spec.projections[pi].target,
                "rule": spec.projections[pi].rule,
                "shape": list(p.shape),
                "plasticity": p.plast,
            }
        )
    dtype = np.dtype(spec.dtype)
    # one buffer holds every array the step touches (a streaming step is a numba call with two
    # arguments, the buffer and the input); the blocks and the weights are cast into it
    # straight from the description, so building holds no other copy of them (float64 or not)
    base, (fs, fp, w, ii, ij, out) = _one_buffer(
        [(max(sizes["fs"], 1), dtype), (max(sizes["fp"], 1), dtype), (max(w_size, 1), dtype),
         (sizes["ii"], np.int64), (max(sizes["ij"], 1), np.int32), (max(out_off, 1), np.int32)]
    )  # fmt: skip
    for kind, view in (("fs", fs), ("fp", fp), ("ii", ii), ("ij", ij)):
        for off, arr in parts[kind]:
            view[off : off + arr.size] = arr
    ii[ltab : ltab + nl * L.LR] = lrec.ravel()
    ii[ptab : ptab + npj * L.PR] = prec.ravel()
    ii[L.H_NL], ii[L.H_NP], ii[L.H_LEARN] = nl, npj, 1
    ii[L.H_LTAB], ii[L.H_PTAB], ii[L.H_NIN], ii[L.H_NOUT] = ltab, ptab, in_off, out_off
    for pi, p in enumerate(projs):
        off = int(prec[pi, L.P_WOFF])
        _fill(w[off : off + p.w.size], p)
        dw = int(prec[pi, L.P_DWOFF])
        if dw >= 0:
            n_post = spec.layers[p.post].n
            cells = spec.layers[p.pre].n * n_post
            _fill_rows(w[dw : dw + cells], p, w[off : off + p.w.size], n_post)
    arrays = {"base": base, "fs": fs, "fp": fp, "w": w, "ii": ii, "ij": ij, "out": out,
              "fs0": fs.copy(), "ii0": ii.copy()}  # fmt: skip
    manifest = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "layout": L.signature(),
        "dt_us": dt_us,
        "seed": spec.seed,
        "dtype": spec.dtype,
        "max_delay_steps": spec.max_delay_steps,
        "inputs": spec.inputs,
        "outputs": outputs,
        "layers": layers_meta,
        "projections": proj_meta,
    }
    return arrays, manifest


_ALIGN = 16  # elements: block offsets are multiples of this (64 bytes for float32)


def _one_buffer(arrays: list[tuple[int, Any]]) -> tuple[np.ndarray, list[np.ndarray]]:
    """One zeroed, 64-byte aligned byte buffer holding arrays of these (size, dtype) behind a
    header of their (start, end) byte offsets (the layout `kernels.step_f32` reads); returns it
    and the arrays (views of it, each 64-byte aligned)."""
    head = K._BASE_HEAD
    offs = []
    size = head
    for n, dt in arrays:
        offs.append(size)
        size += -(-n * np.dtype(dt).itemsize // 64) * 64
    raw = np.zeros(size + 64, np.uint8)
    start = -raw.ctypes.data % 64
    base = raw[start : start + size]
    meta = base[:head].view(np.int64)
    views = []
    for k, ((n, dt), o) in enumerate(zip(arrays, offs, strict=True)):
        end = o + n * np.dtype(dt).itemsize
        meta[2 * k], meta[2 * k + 1] = o, end
        views.append(base[o:end].view(dt))
    return base, views


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


_COMPILED: set[tuple[str, str]] = set()


def _announce_compile(dtype: str, kernel: Any = None, sig: Any = None) -> None:
    """Say so on stderr (and the log) when the kernel about to run (default: the step
    kernel; pass the one really called, e.g. `kernels.step_f32`) is not in the on-disk cache
    yet (for signature `sig` when given)."""
    kernel = K.step_kernel if kernel is None else kernel
    key = (dtype, getattr(kernel, "__name__", ""))
    if key in _COMPILED:
        return
    _COMPILED.add(key)
    if not _in_disk_cache(kernel, sig):
        msg = "edgesnn: compiling the SNN core kernels (first start; cached on disk afterwards)"
        log.warning(msg)  # without logging configured, Python prints warnings to stderr


class Network:
    """A runnable network: `step()` one dt at a time (streaming) or `run()` a whole input."""

    def __init__(
        self,
        spec: NetworkSpec | None = None,
        *,
        _packed: tuple[dict[str, np.ndarray], dict[str, Any]] | None = None,
    ) -> None:
        if _packed is None:
            if spec is None:
                raise TypeError("Network needs a NetworkSpec")
            _packed = _pack(spec)
        arrays, manifest = _packed
        self.spec = spec
        self.manifest = manifest
        n_out = int(arrays["ii"][L.H_NOUT])
        # one buffer (`_pack`) holds every array the step touches, so a streaming step is a
        # numba call with two arguments (the buffer and the input); the arrays are views of it
        self._base: np.ndarray = arrays["base"]
        self.fs: np.ndarray = arrays["fs"]
        self.fp: np.ndarray = arrays["fp"]
        self.w: np.ndarray = arrays["w"]
        self.ii: np.ndarray = arrays["ii"]
        self.ij: np.ndarray = arrays["ij"]
        self._out: np.ndarray = arrays["out"]
        self._fs0: np.ndarray = arrays["fs0"]
        self._ii0: np.ndarray = arrays["ii0"]
        self.dt_us: int = int(manifest["dt_us"])
        self.layer_names: list[str] = [m["name"] for m in manifest["layers"]]
        self.n_inputs: int = int(self.ii[L.H_NIN])
        self.n_outputs: int = n_out
        held = int(self.w.size) + int(self.fs.size) <= GIL_HELD_MAX_SIZE
        if self.fs.dtype == np.float32:
            self._kstep = K.step_f32_held if held else K.step_f32
            self._kstep_ahead = K.step_ahead_f32
        else:
            self._kstep = K.step_f64_held if held else K.step_f64
            self._kstep_ahead = K.step_ahead_f64
        self._kstep_ahead_entry: Any = None
        #: whether the network can run one step ahead (no output layer is an input layer)
        self._ahead_ok = not any(m["model"] == "input" for m in manifest["layers"]
                                 if m["name"] in manifest["outputs"])  # fmt: skip
        # step() returns _out[:n]; slicing costs about as much as a small step, so the views
        # for the usual counts are made once
        self._views = [self._out[:k] for k in range(min(self._out.size, 4096) + 1)]
        self._n_views = len(self._views)
        self._stats = np.zeros(1, np.int64)
        self._go_direct()
        self._warmed = False
        self._mt_synapses = self._dense_row_synapses()
        env = os.environ.get("EDGESNN_THREADS", "")
        #: threads of a batch `run` (1 or 2; default 2 when two CPUs are free to this process
        #: and EDGESNN_THREADS does not say 1): with 2, networks of at least MT_MIN_SYNAPSES
        #: synapses in dense rows deliver them on two cores, with the same results bit for bit
        self.threads: int = 1 if env == "1" or _cores() < 2 else 2

    def _go_direct(self) -> None:
        """From now on `step` is a closure over the kernel, buffer and output views: no
        attribute look-ups on the streaming path (they cost about as much as the kernel's
        dispatch)."""
        kstep, base, views, out = self._kstep, self._base, self._views, self._out
        n_views = len(views)
        dtype = str(self.fs.dtype)
        i32 = _I32

        def first(b: np.ndarray, in_idx: np.ndarray) -> int:
            nonlocal entry  # from now on the compiled entry itself
            entry = _native_step(kstep, dtype)
            return int(entry(b, in_idx))

        entry: Any = _compiled_step(kstep) or first

        def step(in_idx: np.ndarray) -> np.ndarray:
            # `_step_input`'s check, inline (a call costs about as much): the compiled entry
            # trusts its arguments, a 1-D int32 array goes straight in, anything else is made
            # one first
            try:
                direct = in_idx.ndim == 1 and in_idx.dtype is i32
            except AttributeError:
                direct = False
            n = entry(base, in_idx if direct else _step_input(in_idx))
            if n < n_views:
                return views[n]
            return out[:n]

        step.__doc__ = Network.step.__doc__
        self.step = step  # type: ignore[method-assign]

    # --- running ----------------------------------------------------------------------------

    def step_kernel_ready(self) -> bool:
        """Whether the streaming step kernel is compiled in this process or in numba's on-disk
        cache (then loading it is quick); a cold one costs most of a first start."""
        # the signature `step` calls: a cache from before it was used does not count
        sig = _step_signature()
        return sig in self._kstep.overloads or _in_disk_cache(self._kstep, sig)

    def warm_up(self, step: bool = True, ahead: bool = False) -> float:
        """Load (or compile, announcing it) the kernels for this network; returns seconds.
        step=False loads only the batch kernel (`run`, which also serves single steps);
        ahead=True also those of `prime_ahead` / `run_ahead`."""
        t0 = time.perf_counter()
        if step:
            _native_step(self._kstep, str(self.fs.dtype))(self._base.copy(),
                                                          np.zeros(0, np.int32))
        else:
            _announce_compile(str(self.fs.dtype), K.run_kernel)
        fs, ii = self.fs.copy(), self.ii.copy()
        w = self.w.copy()
        ptr = np.zeros(2, np.int64)
        K.run_kernel(
            fs,
            self.fp,
            w,
            ii,
            self.ij,
            ptr,
            np.zeros(0, np.int32),
            0,
            1,
            np.zeros(2, np.int64),
            np.zeros(self._out.size, np.int32),
            self._stats,
        )
        if ahead:  # compile, on copies
            _announce_compile(str(self.fs.dtype), K.run_ahead)
            if step:
                self._kstep_ahead_entry = _native_step(self._kstep_ahead, str(self.fs.dtype))
                self._kstep_ahead_entry(self._base.copy(), np.zeros(0, np.int32))
            K.prime_ahead(fs.copy(), self.fp, ii.copy(), np.zeros(self._out.size, np.int32))
            K.run_ahead(fs, self.fp, w, ii, self.ij, ptr, np.zeros(0, np.int32), 0, 0,
                        np.zeros(2, np.int64), np.zeros(self._out.size, np.int32), self._stats)
        if self.threads > 1 and self._mt_synapses >= MT_MIN_SYNAPSES:  # compile, no steps
            flags = np.zeros(K.MT_STOP + 8, np.int64)
            K.run_share(fs, self.fp, w, ii, 0, 0, flags)
            K.run_kernel_mt(fs, self.fp, w, ii, self.ij, ptr, np.zeros(0, np.int32), 0, 0,
                            np.zeros(2, np.int64), np.zeros(self._out.size, np.int32),
                            self._stats, flags)
        self._warmed = True
        self._go_direct()
        return time.perf_counter() - t0

    def step(self, in_idx: np.ndarray) -> np.ndarray:
        """Advance one dt with the given input spikes (int32 indices into the concatenated
        input layers); returns the output spikes of this step (a view, valid until the next
        call)."""
        # instances use _go_direct's closure (the same check, inline)
        n = _native_step(self._kstep, str(self.fs.dtype))(self._base, _step_input(in_idx))
        if n < self._n_views:
            return self._views[n]
        return self._out[:n]

    def run(self, in_ptr: np.ndarray, in_idx: np.ndarray, n_steps: int | None = None) -> Recording:
        """Advance n_steps with a CSR input (spikes of step k: in_idx[in_ptr[k]:in_ptr[k+1]])
        in one kernel call; returns the output spikes as CSR."""
        return self._run(in_ptr, in_idx, n_steps, ahead=False)

    def prime_ahead(self) -> np.ndarray:
        """Start running one step ahead (see `run_ahead`): update the non-input layers for the
        step about to run and return their output spikes (a copy). A spike reaches the next
        layer one step later, so those do not depend on that step's input. From then on the
        network runs with `run_ahead` only (`step` or `run` would update those layers twice),
        until `reset`."""
        self._check_ahead()
        out = np.zeros(max(self._out.size, 1), np.int32)
        n = K.prime_ahead(self.fs, self.fp, self.ii, out)
        return out[:n].copy()

    def run_ahead(self, in_ptr: np.ndarray, in_idx: np.ndarray,
                  n_steps: int | None = None) -> Recording:  # fmt: skip
        """`run` one step ahead, after `prime_ahead`: the output recorded for step k is that
        of step k + 1, known as soon as step k's input has run (live detections one step
        sooner). The same state as `run` followed by `prime_ahead`, bit for bit."""
        self._check_ahead()
        return self._run(in_ptr, in_idx, n_steps, ahead=True)

    def step_ahead(self, in_idx: np.ndarray) -> np.ndarray:
        """`step` one step ahead, after `prime_ahead`: returns the output spikes of the next
        step (a copy), as one step of `run_ahead`."""
        if self._kstep_ahead_entry is None:
            self._kstep_ahead_entry = _native_step(self._kstep_ahead, str(self.fs.dtype))
        n = self._kstep_ahead_entry(self._base, _step_input(in_idx))
        return self._out[:n].copy()

    @property
    def can_run_ahead(self) -> bool:
        """Whether the network can run one step ahead: no output layer is an input layer (an
        input layer's spikes are those of the step being run)."""
        return self._ahead_ok

    def _check_ahead(self) -> None:
        if not self._ahead_ok:
            raise ValueError("running one step ahead needs output layers that are not input "
                             "layers (their spikes are those of the step being run)")

    def _run(self, in_ptr: np.ndarray, in_idx: np.ndarray, n_steps: int | None,
             ahead: bool) -> Recording:  # fmt: skip
        in_ptr = np.ascontiguousarray(in_ptr, dtype=np.int64)
        in_idx = np.ascontiguousarray(in_idx, dtype=np.int32)
        if n_steps is None:
            n_steps = in_ptr.shape[0] - 1
        if in_ptr.shape[0] < n_steps + 1:
            raise ValueError(f"in_ptr has {in_ptr.shape[0]} entries for {n_steps} steps")
        if not self._warmed:
            _announce_compile(str(self.fs.dtype), K.run_kernel)
        out_ptr = np.zeros(n_steps + 1, np.int64)
        out_ptr[0] = 0
        cap = max(1024, 4 * n_steps, self.n_outputs * 2)
        out_idx = np.zeros(cap, np.int32)
        stats = np.zeros(1, np.int64)
        k = 0
        two = not ahead and self._two_threads(n_steps)
        kernel = K.run_ahead if ahead else K.run_kernel
        while k < n_steps:
            if two:
                k = self._run_two(in_ptr, in_idx, k, n_steps, out_ptr, out_idx, stats)
            else:
                k = kernel(
                    self.fs,
                    self.fp,
                    self.w,
                    self.ii,
                    self.ij,
                    in_ptr,
                    in_idx,
                    k,
                    n_steps,
                    out_ptr,
                    out_idx,
                    stats,
                )
            if k < n_steps:
                grow = np.zeros(out_idx.size * 2 + self.n_outputs, np.int32)
                grow[: out_idx.size] = out_idx
                out_idx = grow
        return Recording(out_ptr, out_idx[: out_ptr[n_steps]].copy(), int(stats[0]))

    def _dense_row_synapses(self) -> int:
        """Weights of the projections delivered as dense rows (dense, and sparse stored so),
        when they are at least two thirds of all synapses (else 0: the work thread 0 does alone
        would leave thread 1 spinning most of each step)."""
        ii = self.ii
        ltab = int(ii[L.H_LTAB])
        rows = other = 0
        for p in range(int(ii[L.H_NP])):
            rec = int(ii[L.H_PTAB]) + p * L.PR
            rule = int(ii[rec + L.P_RULE])
            n_pre = int(ii[ltab + ii[rec + L.P_PRE] * L.LR + L.L_N])
            n_post = int(ii[ltab + ii[rec + L.P_POST] * L.LR + L.L_N])
            if rule == L.RULE_DENSE:
                rows += int(ii[rec + L.P_NW])
            elif rule == L.RULE_SPARSE and ii[rec + L.P_DWOFF] >= 0:
                rows += n_pre * n_post
            elif rule == L.RULE_CONV:  # each output sums c_in x kh x kw inputs
                other += n_post * int(ii[rec + L.P_CIN] * ii[rec + L.P_KH] * ii[rec + L.P_KW])
            elif rule == L.RULE_WTA:
                other += n_pre * n_post
            elif rule == L.RULE_SPARSE:
                other += int(ii[rec + L.P_NW])
            else:  # one_to_one, pool
                other += n_pre
        return rows if rows >= 2 * other else 0

    def _two_threads(self, n_steps: int) -> bool:
        """Whether a batch run of n_steps splits its dense rows across two threads."""
        if self.threads < 2 or n_steps < MT_MIN_STEPS or self._mt_synapses < MT_MIN_SYNAPSES:
            return False
        if self.ii[L.H_LEARN]:  # plasticity updates whole rows and columns: one thread
            ptab = int(self.ii[L.H_PTAB])
            if any(self.ii[ptab + p * L.PR + L.P_PLAST] for p in range(int(self.ii[L.H_NP]))):
                return False
        return True

    def _run_two(self, in_ptr: np.ndarray, in_idx: np.ndarray, k0: int, k1: int,
                 out_ptr: np.ndarray, out_idx: np.ndarray, stats: np.ndarray) -> int:
        """Steps k0..k1-1 on two threads (`kernels.run_kernel_mt` here, `kernels.run_share` on
        a helper thread); returns the next step to run, as `kernels.run_kernel` does."""
        flags = np.zeros(K.MT_STOP + 8, np.int64)
        flags[K.MT_ALLOWED] = flags[K.MT_DONE] = k0 * (int(self.ii[L.H_NP]) + 1)
        helper = threading.Thread(
            target=K.run_share, args=(self.fs, self.fp, self.w, self.ii, k0, k1, flags),
            name="edgesnn-core-share", daemon=True)
        helper.start()
        try:
            k = K.run_kernel_mt(self.fs, self.fp, self.w, self.ii, self.ij, in_ptr, in_idx, k0,
                                k1, out_ptr, out_idx, stats, flags)
        finally:
            flags[K.MT_STOP] = 1  # the helper never waits for a step that will not come
            helper.join()
        return int(k)

    def reset(self) -> None:
        """Neuron state, traces, delays in flight and counters back to their initial values
        (weights are kept)."""
        self.fs[:] = self._fs0
        self.ii[:] = self._ii0

    @property
    def learning(self) -> bool:
        """Whether plastic projections learn (on by default when any has plasticity)."""
        return bool(self.ii[L.H_LEARN])

    @learning.setter
    def learning(self, on: bool) -> None:
        self.ii[L.H_LEARN] = 1 if on else 0

    @property
    def t_steps(self) -> int:
        """Steps since the last reset."""
        return int(self.ii[L.H_T])

    @property
    def dropped_inputs(self) -> int:
        """Input indices that named no input neuron (counted, not propagated)."""
        return int(self.ii[L.H_DROP])

    # --- inspection -------------------------------------------------------------------------

    def _lrec(self, name: str) -> int:
        try:
            li = self.layer_names.index(name)
        except ValueError:
            raise KeyError(name) from None
        return int(self.ii[L.H_LTAB]) + li * L.LR

    def layer_spike_counts(self) -> dict[str, int]:
        """Total spikes per layer since the last reset."""
        return {name: int(self.ii[self._lrec(name) + L.L_COUNT]) for name in self.layer_names}

    def layer_spikes(self, name: str) -> np.ndarray:
        """Neurons of `name` that spiked in the last step (a copy)."""
        r = self._lrec(name)
        off = int(self.ii[r + L.L_SPKOFF])
        return self.ii[off : off + int(self.ii[r + L.L_NSPK])].astype(np.int32)

    @property
    def state(self) -> dict[str, dict[str, np.ndarray]]:
        """Per layer, its state variables by name (views: writing them changes the state)."""
        out: dict[str, dict[str, np.ndarray]] = {}
        for m in self.manifest["layers"]:
            r = self._lrec(m["name"])
            n = int(self.ii[r + L.L_N])
            soff = int(self.ii[r + L.L_SOFF])
            out[m["name"]] = {
                var: self.fs[soff + k * n : soff + (k + 1) * n] for k, var in enumerate(m["state"])
            }
        return out

    def layer_scalars(self, index: int | str) -> dict[str, float]:
        """The scalars the core packed for a layer's model, by the names its module gives them
        (`NeuronModel.slots`, e.g. k, v_th, n_ref of the LIF family): the per-step factors the
        kernel really uses, whatever the integration rule."""
        name = self.layer_names[index] if isinstance(index, int) else index
        r = self._lrec(name)
        md = MODELS[self.manifest["layers"][self.layer_names.index(name)]["model"]]
        po = int(self.ii[r + L.L_POFF])
        return {k: float(self.fp[po + q]) for q, k in enumerate(md.slots)}

    @property
    def projection_names(self) -> list[str]:
        """'source->target' of every projection, in order."""
        return [p["name"] for p in self.manifest["projections"]]

    def weights(self, index: int | str) -> np.ndarray:
        """Weights of a projection (a view; dense: (n_pre, n_post), conv: the kernel, others
        flat in CSR order). Read-only for a sparse projection also stored as dense rows
        (`DENSE_ROWS_DENSITY`): the step reads that copy, so a write would not reach it."""
        if isinstance(index, str):
            index = self.projection_names.index(index)
        r = int(self.ii[L.H_PTAB]) + index * L.PR
        off, nw = int(self.ii[r + L.P_WOFF]), int(self.ii[r + L.P_NW])
        view = self.w[off : off + nw]
        if int(self.ii[r + L.P_DWOFF]) >= 0:
            view.flags.writeable = False  # the step reads the dense-row copy
        shape = self.manifest["projections"][index]["shape"]
        return view.reshape(shape) if shape else view

    def projection_record(self, index: int | str) -> ProjectionRecord:
        """Projection `index` as packed, by name (rule, layers, channel, gain, delays, CSR,
        geometry): the one reader of the projection table outside the packing code."""
        if isinstance(index, str):
            index = self.projection_names.index(index)
        ii, ij = self.ii, self.ij
        r = int(ii[L.H_PTAB]) + index * L.PR
        rule = {code: name for name, code in _RULE_CODES.items()}[int(ii[r + L.P_RULE])]
        pre, post = int(ii[r + L.P_PRE]), int(ii[r + L.P_POST])
        extra: dict[str, Any] = {}
        if rule == "sparse":
            n_pre = int(ii[int(ii[L.H_LTAB]) + pre * L.LR + L.L_N])
            po = int(ii[r + L.P_PTROFF])
            ptr = ii[po : po + n_pre + 1].copy()
            io, dmode, do = (int(ii[r + k]) for k in (L.P_IDXOFF, L.P_DMODE, L.P_DOFF))
            n_post = int(ii[int(ii[L.H_LTAB]) + post * L.LR + L.L_N])
            if dmode == 2:  # every pair in row-major order, delays as bytes
                extra["row_ptr"] = ptr
                extra["targets"] = np.tile(np.arange(n_post, dtype=np.int32), n_pre)
                extra["delays"] = _unpack_delays(ij, do, int(ptr[-1]))
            else:
                extra["row_ptr"], extra["targets"] = ptr, ij[io : io + int(ptr[-1])].copy()
            if dmode == 1:
                extra["delays"] = ij[do : do + int(ptr[-1])].copy()
        elif rule in ("conv2d", "pool2d"):
            keys = {"c_in": L.P_CIN, "h_in": L.P_HIN, "w_in": L.P_WIN, "c_out": L.P_COUT,
                    "h_out": L.P_HOUT, "w_out": L.P_WOUT, "kh": L.P_KH, "kw": L.P_KW,
                    "stride": L.P_STRIDE, "pad": L.P_PAD}  # fmt: skip
            extra["geometry"] = {k: int(ii[r + q]) for k, q in keys.items()}
        return ProjectionRecord(
            rule=rule, pre=pre, post=post, channel=int(ii[r + L.P_CH]),
            gain=float(self.fp[int(ii[r + L.P_GOFF])]), delay=int(ii[r + L.P_DELAY]),
            weights=self.weights(index).reshape(-1), **extra,
        )  # fmt: skip

    def delay_steps(self, index: int) -> int:
        """The uniform delay (steps, beyond the one-step hop) of projection `index`; per-synapse
        delays of sparse projections are not included."""
        r = int(self.ii[L.H_PTAB]) + index * L.PR
        return int(self.ii[r + L.P_DELAY])

    def set_modulator(self, index: int, value: float) -> None:
        """Scale the plasticity of projection `index` (reward / learning-rate modulator)."""
        r = int(self.ii[L.H_PTAB]) + index * L.PR
        self.fs[int(self.ii[r + L.P_MODOFF])] = value

    # --- model files ------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write a model file (format 2: manifest with the network description + named arrays;
        weights as they are now, state as after reset), atomically (temp file + rename)."""
        from edgesnn.core import fileformat

        fileformat.write(self, path)

    @classmethod
    def load(cls, path: str | Path) -> Network:
        """Read a model file of format 1 or 2 (no pickle), rebuilt for this version's layout;
        FormatError when it is not one, is damaged, or is newer than this reader."""
        from edgesnn.core import fileformat

        return fileformat.read(path)


# Limits of a model file (refused beyond them before anything is allocated): the arrays together
# may hold at most MAX_MODEL_BYTES uncompressed, a layer at most MAX_NEURONS neurons, a ring
# buffer at most MAX_SLOTS slots and an Izhikevich/HH step at most MAX_SUBSTEPS sub-steps.
MAX_MODEL_BYTES = 1 << 30
MAX_NEURONS = 1 << 24
MAX_SLOTS = 1 << 16
MAX_SUBSTEPS = 100_000
_MEMBERS = {"manifest": "u", "fs": "f", "fp": "f", "w": "f", "ii": "iu", "ij": "iu"}
_NAMED = ("layer/", "proj/")  # format 2: named arrays (float or integer)


def _one_line(e: BaseException, limit: int = 200) -> str:
    """An exception as one short line (zipfile quotes whole member headers in its messages)."""
    text = " ".join(f"{type(e).__name__}: {e}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The 1-D arrays of an npz model file (format-1 packed arrays, format-2 named arrays),
    each header checked (dtype kind, shape, size within the member and MAX_MODEL_BYTES) before
    its data is read; FormatError on anything else."""
    where = str(path)
    data: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            total = 0
            for info in zf.infolist():
                key = info.filename[:-4] if info.filename.endswith(".npy") else ""
                kinds = _MEMBERS.get(key, "fiu" if key.startswith(_NAMED) else "")
                if not kinds or key in data:
                    continue
                total += info.file_size
                if total > MAX_MODEL_BYTES:
                    raise FormatError(f"arrays exceed the {MAX_MODEL_BYTES} byte limit", path=where)
                with zf.open(info) as f:
                    version = npformat.read_magic(f)
                    if version == (1, 0):
                        shape, _, dt = npformat.read_array_header_1_0(f)
                    elif version == (2, 0):
                        shape, _, dt = npformat.read_array_header_2_0(f)
                    else:
                        raise FormatError(f"array {key!r}: npy version {version}", path=where)
                    if dt.hasobject or dt.kind not in kinds or dt.itemsize > 8:
                        raise FormatError(f"array {key!r} has dtype {dt}", path=where)
                    if key == "manifest" and dt.itemsize != 1:
                        raise FormatError(f"array 'manifest' has dtype {dt}", path=where)
                    if len(shape) != 1:
                        raise FormatError(f"array {key!r} has shape {shape}, not 1-D", path=where)
                    nbytes = shape[0] * dt.itemsize
                    if nbytes > info.file_size:
                        raise FormatError(f"array {key!r} is truncated", path=where)
                    raw = f.read(nbytes)
                    if len(raw) != nbytes:
                        raise FormatError(f"array {key!r} is truncated", path=where)
                    data[key] = np.frombuffer(raw, dtype=dt).astype(dt.newbyteorder("="))
    except FormatError:
        raise
    except (
        OSError,
        EOFError,
        ValueError,
        TypeError,
        KeyError,
        OverflowError,
        RuntimeError,
        NotImplementedError,
        SyntaxError,
        tokenize.TokenError,
        zipfile.BadZipFile,
        zlib.error,
    ) as e:
        raise FormatError(f"not an edgesnn model file ({_one_line(e)})", path=where) from None
    return data


def _check_tables(a: dict[str, np.ndarray], manifest: dict[str, Any], path: str) -> None:
    """Refuse packed arrays of the running layout (learned-state checkpoints) whose tables
    point outside its arrays, whose indices leave their ranges or whose integer regions
    overlap (no kernel may read or write past an array); format-1 model files have their own
    frozen copy, `fileformat_v1.check_tables`."""
    ii, ij = a["ii"], a["ij"]
    fs, fp, w, ni, nj = a["fs"].size, a["fp"].size, a["w"].size, ii.size, ij.size

    def bad(field: str, value: Any, why: str) -> FormatError:
        return FormatError(f"{field} = {value}: {why}", path=path)

    def span(field: str, off: int, length: int, size: int, arr: str) -> None:
        if off < 0 or length < 0 or off + length > size:
            raise bad(field, off, f"span of {length} outside {arr} (size {size})")

    def val(field: str, v: int, lo: int, hi: int) -> int:
        if not lo <= v <= hi:
            raise bad(field, v, f"not in [{lo}, {hi}]")
        return v

    if ni < L.H_SIZE:
        raise FormatError(f"integer table ii too short ({ni} < {L.H_SIZE})", path=path)
    h = [int(x) for x in ii[: L.H_SIZE]]
    nl = val("H_NL", h[L.H_NL], len(manifest["layers"]), len(manifest["layers"]))
    npj = val("H_NP", h[L.H_NP], len(manifest["projections"]), len(manifest["projections"]))
    val("H_T", h[L.H_T], 0, 1 << 60)
    val("H_LEARN", h[L.H_LEARN], 0, 1)
    val("H_DROP", h[L.H_DROP], 0, 1 << 62)
    ltab, ptab = h[L.H_LTAB], h[L.H_PTAB]
    for field, off, length in (("H_LTAB", ltab, nl * L.LR), ("H_PTAB", ptab, npj * L.PR)):
        if off < L.H_SIZE or off + length > ni:
            raise bad(field, off, f"layer/projection tables ({length}) outside ii (size {ni})")
    regions = [(0, L.H_SIZE, "header"), (ltab, nl * L.LR, "H_LTAB"), (ptab, npj * L.PR, "H_PTAB")]
    ns: list[int] = []
    nslots: list[int] = []
    n_in = n_out = 0
    outs: list[tuple[int, int, str]] = []
    for li in range(nl):
        r = [int(x) for x in ii[ltab + li * L.LR : ltab + (li + 1) * L.LR]]
        f = f"layer {li} "
        md = MODELS[manifest["layers"][li]["model"]]
        val(f + "L_MODEL", r[L.L_MODEL], md.code, md.code)
        n = val(f + "L_N", r[L.L_N], 1, MAX_NEURONS)
        nslot = val(f + "L_NSLOT", r[L.L_NSLOT], 1, MAX_SLOTS)
        ns.append(n)
        nslots.append(nslot)
        span(f + "L_SOFF", r[L.L_SOFF], len(md.state) * n, fs, "fs")
        span(f + "L_BOFF", r[L.L_BOFF], nslot * 2 * n, fs, "fs")
        span(f + "L_ROFF", r[L.L_ROFF], n, fs, "fs")
        nq = len(md.slots)
        span(f + "L_POFF", r[L.L_POFF], nq + (n if nq else 0), fp, "fp")
        span(f + "L_SPKOFF", r[L.L_SPKOFF], n, ni, "ii")
        regions.append((r[L.L_SPKOFF], n, f + "L_SPKOFF"))
        nspk = val(f + "L_NSPK", r[L.L_NSPK], 0, n)
        spk = ii[r[L.L_SPKOFF] : r[L.L_SPKOFF] + nspk]
        if nspk and (spk.min() < 0 or spk.max() >= n):
            raise bad(f + "L_SPKOFF", r[L.L_SPKOFF], f"spike list holds indices outside [0, {n})")
        val(f + "L_COUNT", r[L.L_COUNT], 0, 1 << 62)
        val(f + "L_DIRECT", r[L.L_DIRECT], 0, 2)
        if "n_sub" in md.slots:
            k = r[L.L_POFF] + md.slot("n_sub")
            sub = float(a["fp"][k])
            if not 1 <= sub <= MAX_SUBSTEPS:
                raise bad(f + "sub-steps (fp)", sub, f"not in [1, {MAX_SUBSTEPS}]")
        if md.code == L.MODEL_INPUT:
            val(f + "L_INOFF", r[L.L_INOFF], n_in, n_in)
            n_in += n
        else:
            val(f + "L_INOFF", r[L.L_INOFF], -1, -1)
        if r[L.L_OUTOFF] != -1:
            outs.append((val(f + "L_OUTOFF", r[L.L_OUTOFF], 0, 1 << 40), n, f + "L_OUTOFF"))
    val("H_NIN", h[L.H_NIN], n_in, n_in)
    for o, n, f in sorted(outs):  # the output layers tile [0, H_NOUT): the out buffer's size
        val(f, o, n_out, n_out)
        n_out += n
    val("H_NOUT", h[L.H_NOUT], n_out, n_out)
    for pi in range(npj):
        rec = ptab + pi * L.PR
        r = [int(x) for x in ii[rec : rec + L.PR]]
        f = f"projection {pi} "
        pre = val(f + "P_PRE", r[L.P_PRE], 0, nl - 1)
        post = val(f + "P_POST", r[L.P_POST], 0, nl - 1)
        n_pre, n_post = ns[pre], ns[post]
        rule = val(f + "P_RULE", r[L.P_RULE], L.RULE_DENSE, L.RULE_POOL)
        val(f + "P_CH", r[L.P_CH], 0, 1)
        nw = r[L.P_NW]
        shape = manifest["projections"][pi]["shape"]
        if shape and int(np.prod(shape, dtype=object)) != nw:
            raise bad(f + "P_NW", nw, f"does not fit the manifest shape {shape}")
        span(f + "P_WOFF", r[L.P_WOFF], nw, w, "w")
        span(f + "P_GOFF", r[L.P_GOFF], 1, fp, "fp")
        span(f + "P_MODOFF", r[L.P_MODOFF], 1, fs, "fs")
        val(f + "P_DELAY", r[L.P_DELAY], 0, nslots[post] - 1)
        dmode = val(f + "P_DMODE", r[L.P_DMODE], 0, 2 if rule == L.RULE_SPARSE else 0)
        if rule == L.RULE_DENSE:
            val(f + "P_NW", nw, n_pre * n_post, n_pre * n_post)
        elif rule == L.RULE_SPARSE:
            po = r[L.P_PTROFF]
            span(f + "P_PTROFF", po, n_pre + 1, ni, "ii")
            regions.append((po, n_pre + 1, f + "P_PTROFF"))
            ptr = ii[po : po + n_pre + 1]
            nsyn = int(ptr[-1])
            if ptr[0] != 0 or np.any(np.diff(ptr) < 0) or nsyn > nw:
                raise bad(f + "P_PTROFF", po, f"CSR pointers not monotone from 0 to <= P_NW {nw}")
            if dmode == 2:  # every pair in row-major order, delays as bytes, no targets
                if not np.array_equal(ptr, np.arange(n_pre + 1, dtype=np.int64) * n_post):
                    raise bad(f + "P_PTROFF", po, "row pointers of P_DMODE 2 not i * n_post")
                if r[L.P_PLAST] != L.PLAST_NONE:
                    raise bad(f + "P_DMODE", dmode, "delays as bytes on a plastic projection")
                span(f + "P_DOFF", r[L.P_DOFF], (nsyn + 3) // 4, nj, "ij")
                dl = _unpack_delays(ij, r[L.P_DOFF], nsyn)
                if nsyn and dl.max() >= nslots[post]:
                    raise bad(f + "P_DOFF", r[L.P_DOFF], f"delays outside [0, {nslots[post]})")
            else:
                span(f + "P_IDXOFF", r[L.P_IDXOFF], nsyn, nj, "ij")
                idx = ij[r[L.P_IDXOFF] : r[L.P_IDXOFF] + nsyn]
                if nsyn and (idx.min() < 0 or idx.max() >= n_post):
                    raise bad(f + "P_IDXOFF", r[L.P_IDXOFF],
                              f"synapse targets outside [0, {n_post})")  # fmt: skip
            if dmode == 1:
                span(f + "P_DOFF", r[L.P_DOFF], nsyn, nj, "ij")
                dl = ij[r[L.P_DOFF] : r[L.P_DOFF] + nsyn]
                if nsyn and (dl.min() < 0 or dl.max() >= nslots[post]):
                    raise bad(f + "P_DOFF", r[L.P_DOFF], f"delays outside [0, {nslots[post]})")
                span(f + "P_DROFF", r[L.P_DROFF], nsyn, nj, "ij")
                ro = ij[r[L.P_DROFF] : r[L.P_DROFF] + nsyn]
                if not np.array_equal(ro, dl.astype(np.int64) * (2 * n_post) + idx):
                    raise bad(f + "P_DROFF", r[L.P_DROFF], "ring offsets do not match the delays")
        elif rule == L.RULE_ONE:
            val(f + "P_NW", nw, n_pre, 1 << 62)
            val(f + "post size", n_post, n_pre, MAX_NEURONS)
        elif rule == L.RULE_WTA:
            val(f + "P_NW", nw, 1, 1 << 62)
        else:
            dims = [r[k] for k in range(L.P_CIN, L.P_STRIDE + 1)]
            for k, d in zip(range(L.P_CIN, L.P_STRIDE + 1), dims, strict=True):
                val(f + f"shape field {k}", d, 1, MAX_NEURONS)
            c_in, h_in, w_in, c_out, h_out, w_out, kh, kw, _ = dims
            val(f + "P_PAD", r[L.P_PAD], 0, MAX_NEURONS)
            val(f + "P_CIN*P_HIN*P_WIN", c_in * h_in * w_in, n_pre, n_pre)
            if rule == L.RULE_CONV:
                val(f + "P_COUT*P_HOUT*P_WOUT", c_out * h_out * w_out, 0, n_post)
                val(f + "P_NW", nw, c_out * c_in * kh * kw, 1 << 62)
            else:
                val(f + "P_CIN*P_HOUT*P_WOUT", c_in * h_out * w_out, 0, n_post)
                val(f + "P_NW", nw, 1, 1 << 62)
        if r[L.P_DWOFF] != -1:  # dense rows: only of a sparse projection with one delay
            if rule != L.RULE_SPARSE or r[L.P_DMODE] != 0 or r[L.P_PLAST] != L.PLAST_NONE:
                raise bad(f + "P_DWOFF", r[L.P_DWOFF], "dense rows of a projection that is not "
                          "sparse with one delay and no plasticity")  # fmt: skip
            span(f + "P_DWOFF", r[L.P_DWOFF], n_pre * n_post, w, "w")
        plast = val(f + "P_PLAST", r[L.P_PLAST], L.PLAST_NONE, max(plasticity.codes(), default=0))
        if plast == L.PLAST_NONE:
            continue
        try:
            prule = plasticity.by_code(plast)
        except KeyError as e:
            raise bad(f + "P_PLAST", plast, str(e)) from None
        if rule not in (L.RULE_DENSE, L.RULE_SPARSE):
            raise bad(f + "P_PLAST", plast, "plasticity on a rule without per-synapse weights")
        span(f + "P_TPRE", r[L.P_TPRE], n_pre, fs, "fs")
        span(f + "P_TPOST", r[L.P_TPOST], n_post, fs, "fs")
        span(f + "P_PPOFF", r[L.P_PPOFF], L.NS_STDP, fp, "fp")
        if rule == L.RULE_SPARSE:
            nsyn = int(ii[r[L.P_PTROFF] + n_pre])
            co = r[L.P_CPTROFF]
            span(f + "P_CPTROFF", co, n_post + 1, ni, "ii")
            regions.append((co, n_post + 1, f + "P_CPTROFF"))
            cptr = ii[co : co + n_post + 1]
            if cptr[0] != 0 or np.any(np.diff(cptr) < 0) or cptr[-1] != nsyn:
                raise bad(f + "P_CPTROFF", co, f"column pointers not monotone from 0 to {nsyn}")
            span(f + "P_CIDXOFF", r[L.P_CIDXOFF], 2 * nsyn, nj, "ij")
            pairs = ij[r[L.P_CIDXOFF] : r[L.P_CIDXOFF] + 2 * nsyn]
            if nsyn and (
                pairs[0::2].min() < 0
                or pairs[0::2].max() >= nsyn
                or pairs[1::2].min() < 0
                or pairs[1::2].max() >= n_pre
            ):
                raise bad(f + "P_CIDXOFF", r[L.P_CIDXOFF], "column synapse ids out of range")
        try:  # the rule's own record (edgesnn.learning: learning record, spike steps)
            regions += [(o, n, f + name) for o, n, name in prule.check(ii, fs, fp, rec)]
        except plasticity.RecordError as e:
            raise bad(f + e.field, e.value, e.why) from None
    # the kernels write spike lists, learning records and spike times into ii: none of them
    # may overlap a table, a pointer array or another one
    regions.sort()
    for (o1, n1, f1), (o2, _, f2) in zip(regions, regions[1:]):
        if n1 and o1 + n1 > o2:
            raise FormatError(f"{f1} = {o1} overlaps {f2} = {o2} in ii", path=path)
