"""Model file format 1 (edgesnn releases up to 2026-12-05), frozen: checked and read here.

A format-1 file is an npz of the packed arrays ``fs``, ``fp``, ``w``, ``ii``, ``ij`` plus a JSON
``manifest`` (format "edgesnn-model", version 1, ``layout`` {"version": 1, "hash":
"1540476681799d92"} or no ``layout`` at all). Its tables follow packed layout 1, whose every
offset is copied below from ``edgesnn.core.layout`` and ``edgesnn.learning.layout`` as they were
when format 2 replaced it: never edit these constants or the checks, so later changes to the
running layout cannot change how these files are read. `check_layout`, `check_manifest` and
`check_tables` refuse a bad file (one-line FormatError) before
``edgesnn.core.fileformat.unpack`` (given this module as the layout) turns its packed arrays
into the format-2 network description and named arrays, from which the running version builds
the network.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from edgesnn.errors import FormatError

#: The packed layout format-1 files follow (their manifest's ``layout``; missing means this).
LAYOUT_VERSION = 1
LAYOUT_HASH = "1540476681799d92"

# Limits of a model file (as in edgesnn.core.network when format 1 was current).
_MAX_NEURONS = 1 << 24
_MAX_SLOTS = 1 << 16
_MAX_SUBSTEPS = 100_000

# ===== edgesnn.core.layout, layout 1 ==========================================================
# --- header of ii ---------------------------------------------------------------------------
H_NL = 0  # number of layers
H_NP = 1  # number of projections
H_T = 2  # steps done since reset
H_LEARN = 3  # 1 when plasticity is applied
H_LTAB = 4  # offset of the layer table
H_PTAB = 5  # offset of the projection table
H_NIN = 6  # total input channels
H_NOUT = 7  # total output channels
H_DROP = 8  # input indices outside every input layer (dropped, counted)
H_SIZE = 9
# --- constants at the start of fp (typed 0 and 1 keep the loops in the state's precision) ----
F_ZERO = 0
F_ONE = 1
F_SIZE = 16
# --- one layer record (LR ints) ----------------------------------------------------------------
L_MODEL = 0  # model code (MODEL_* below)
L_N = 1  # neurons
L_SOFF = 2  # fs offset of the state variables
L_POFF = 3  # fp offset of the parameters
L_BOFF = 4  # fs offset of the ring buffer
L_NSLOT = 5  # ring buffer slots (max incoming delay + 1)
L_ROFF = 6  # fs offset of the refractory counters (n; floats so the update vectorises)
L_SPKOFF = 7  # ii offset of this step's spike list (capacity n)
L_NSPK = 8  # spikes in this step's list
L_COUNT = 9  # spikes since reset
L_INOFF = 10  # offset in the concatenated input space, -1 when not an input layer
L_OUTOFF = 11  # offset in the concatenated output space, -1 when not an output layer
L_DIRECT = 12  # 1: the ring buffer is the current arrays (cuba_lif, no delays); 2: and no inh input
LR = 13
# --- one projection record (PR ints) ---------------------------------------------------------
P_RULE = 0  # RULE_* below
P_PRE = 1  # pre layer index
P_POST = 2  # post layer index
P_CH = 3  # 0 excitatory channel, 1 inhibitory channel of the target
P_WOFF = 4  # w offset
P_NW = 5  # number of weights
P_PTROFF = 6  # ii offset of the CSR row pointers (n_pre + 1, relative to the synapse base)
P_IDXOFF = 7  # ij offset of the synapse targets
P_DMODE = 8  # 0 one delay for all synapses, 1 per-synapse delays
P_DELAY = 9  # the uniform delay (steps)
P_DOFF = 10  # ij offset of the per-synapse delays
P_CIN = 11  # conv/pool input shape (C, H, W)
P_HIN = 12
P_WIN = 13
P_COUT = 14  # conv/pool output shape
P_HOUT = 15
P_WOUT = 16
P_KH = 17  # kernel / window size
P_KW = 18
P_STRIDE = 19
P_PAD = 20
P_GOFF = 21  # fp offset of the gain scalar
P_PLAST = 22  # plasticity rule code, 0 = none
P_TPRE = 23  # fs offset of the pre traces (n_pre)
P_TPOST = 24  # fs offset of the post traces (n_post)
P_PPOFF = 25  # fp offset of the rule parameters
P_CPTROFF = 26  # ii offset of the column pointers (n_post + 1), sparse plastic projections
P_CIDXOFF = 27  # ij offset of the synapse ids ordered by column
P_MODOFF = 28  # fs offset of the modulator scalar (reward), 1.0 unless set
P_LREC = 29  # ii offset of the learning record (edgesnn.learning.layout), rules >= PLAST_PAIR
PR = 30
# --- codes --------------------------------------------------------------------------------------
MODEL_INPUT = 0
MODEL_LIF = 1
MODEL_CUBA = 2
MODEL_ADLIF = 3
MODEL_IF = 4
MODEL_IZH = 5
MODEL_HH = 6
RULE_DENSE = 0
RULE_SPARSE = 1
RULE_ONE = 2
RULE_WTA = 3
RULE_CONV = 4
RULE_POOL = 5
PLAST_NONE = 0
PLAST_STDP = 1
PLAST_PAIR = 2  # event-driven kernels of edgesnn.learning from here on
PLAST_TRIPLET = 3
PLAST_RSTDP = 4
# --- parameter slots (fp offsets relative to the layer's POFF) ----------------------------------
Q_KMEM = 0  # membrane update factor: dt/tau (euler) or 1 - exp(-dt/tau) (exact)
Q_VREST = 1
Q_VTH = 2
Q_VRESET = 3
Q_NREF = 4  # refractory steps
Q_DEXC = 5  # cuba_lif: excitatory current decay per step
Q_DINH = 6  # cuba_lif: inhibitory current decay per step
Q_DADAPT = 5  # adaptive_lif: threshold adaptation decay per step
Q_THPLUS = 6  # adaptive_lif: threshold increase per spike
NQ_LIF = 5
NQ_CUBA = 7
NQ_ADLIF = 7
Q_IF_VTH = 0
Q_IF_VRESET = 1
Q_IF_SUB = 2  # 1.0: reset by subtraction, 0.0: reset to v_reset
NQ_IF = 3
Q_IZ_A = 0
Q_IZ_B = 1
Q_IZ_C = 2
Q_IZ_D = 3
Q_IZ_VPEAK = 4
Q_IZ_DTMS = 5
Q_IZ_NSUB = 6
NQ_IZH = 7
Q_HH_GNA = 0
Q_HH_GK = 1
Q_HH_GL = 2
Q_HH_ENA = 3
Q_HH_EK = 4
Q_HH_EL = 5
Q_HH_CM = 6
Q_HH_DTMS = 7
Q_HH_NSUB = 8
Q_HH_VSPIKE = 9
NQ_HH = 10
# --- plasticity parameter slots (fp, relative to P_PPOFF) ---------------------------------------
S_APLUS = 0
S_AMINUS = 1
S_DPRE = 2  # pre trace decay per step
S_DPOST = 3  # post trace decay per step
S_WMIN = 4
S_WMAX = 5
NS_STDP = 6

# ===== edgesnn.learning.layout, layout 1 ======================================================
# --- the record (ii ints, relative to ii[prec + P_LREC]) ------------------------------------
G_PAIRING = 0  # 0 all-to-all (traces add 1 per spike), 1 nearest spike (traces set to 1)
G_BOUNDS = 1  # 0 additive (clip), 1 multiplicative (soft bounds)
G_PAR = 2  # fp offset of the parameters (F_* below)
G_X1PRE = 3  # fs: fast pre trace (x_pre, triplet r1), n_pre
G_X2PRE = 4  # fs: slow pre trace (triplet r2), n_pre
G_X1POST = 5  # fs: fast post trace (x_post, triplet o1), n_post
G_X2POST = 6  # fs: slow post trace (triplet o2), n_post
G_TPRE = 7  # ii: step of the last pre spike (and row update), n_pre
G_TPOST = 8  # ii: step of the last post spike (and column update), n_post
G_SCRATCH = 9  # fs: this step's trace values, n_pre + n_post
G_ELIG = 10  # fs: eligibility per synapse (rstdp), n_syn
G_TG = 11  # step at which every synapse was last brought up to date (a reward)
G_DOPA = 12  # fs: [dopamine level, pending reward]
G_TD = 13  # step at which the dopamine level was stored
G_THETA = 14  # fs offset of the post layer's adaptive threshold (n_post), -1 when none
G_NORM_EVERY = 15  # 0: normalise the columns of post neurons that spiked; N: all, every N steps
G_NREWARD = 16  # rewards applied
G_NSYN = 17  # synapses
GR = 18
# --- parameters (fp, relative to G_PAR) -----------------------------------------------------
F_APLUS = 0  # A+ (pair, rstdp) or A2+ (triplet)
F_AMINUS = 1  # A- or A2-
F_A3PLUS = 2  # triplet A3+
F_A3MINUS = 3  # triplet A3-
F_L1PRE = 4  # log of the per-step decay of the fast pre trace (-dt/tau)
F_L2PRE = 5
F_L1POST = 6
F_L2POST = 7
F_LELIG = 8  # eligibility
F_LDOPA = 9  # dopamine (-inf when tau_dopa_ms is 0: a reward acts for one step)
F_WMIN = 10
F_WMAX = 11
F_THETA = 12  # threshold increase per post spike (Diehl & Cook homeostasis), 0 off
F_NORM = 13  # target sum of the incoming weights of every post neuron, 0 off
F_GAIN = 14  # rstdp: eta * dt_ms / (1 - d_elig * d_dopa), the weight change per unit c*d
NF = 15

#: model name -> code of layout 1
MODEL_CODES = {"input": 0, "lif": 1, "cuba_lif": 2, "adaptive_lif": 3, "if": 4,
               "izhikevich": 5, "hh": 6}  # fmt: skip
#: model name -> state variables, in their fs order
STATES: dict[str, tuple[str, ...]] = {
    "input": (),
    "lif": ("v",),
    "cuba_lif": ("v", "i_exc", "i_inh"),
    "adaptive_lif": ("v", "theta"),
    "if": ("v",),
    "izhikevich": ("v", "u"),
    "hh": ("v", "m", "h", "n", "above"),
}
#: model name -> scalar parameters in fp before i_bias
NQ = {"input": 0, "lif": NQ_LIF, "cuba_lif": NQ_CUBA, "adaptive_lif": NQ_ADLIF, "if": NQ_IF,
      "izhikevich": NQ_IZH, "hh": NQ_HH}  # fmt: skip
_NQ = {MODEL_CODES[k]: v for k, v in NQ.items()}
_LEARNING_PREFIXES = ("G_", "GR", "NF", "F_A", "F_L", "F_W", "F_THETA", "F_NORM", "F_GAIN")


def layout_hash() -> str:
    """The hash `edgesnn.core.layout.signature()` gave layout 1, recomputed from the copies."""
    items = []
    for name, value in globals().items():
        if (
            name.isupper()
            and isinstance(value, int)
            and not name.startswith("_")
            and name != "LAYOUT_VERSION"
        ):
            mod = (
                "edgesnn.learning.layout"
                if name.startswith(_LEARNING_PREFIXES)
                else "edgesnn.core.layout"
            )
            items.append(f"{mod}.{name}={value}")
    return hashlib.sha256("\n".join(sorted(items)).encode()).hexdigest()[:16]


def check_layout(manifest: dict[str, Any], path: str) -> None:
    """Refuse a format-1 file packed with a layout other than layout 1 (never released)."""
    sig = manifest.get("layout", {"version": LAYOUT_VERSION, "hash": LAYOUT_HASH})
    if not isinstance(sig, dict):
        raise FormatError(f"bad layout entry in the manifest: {sig!r}", path=path)
    if sig.get("version") != LAYOUT_VERSION or sig.get("hash") != LAYOUT_HASH:
        raise FormatError(
            f"model format 1 file packed with layout {sig.get('version')} ({sig.get('hash')}); "
            f"format-1 files are read with layout {LAYOUT_VERSION} ({LAYOUT_HASH}) only: re-save "
            "it with the version that wrote it",
            path=path,
        )


def check_manifest(m: Any, path: str) -> None:
    """Refuse a format-1 manifest whose entries the reader would misread."""
    if not isinstance(m, dict):
        raise FormatError("manifest is not a JSON object", path=path)
    if m.get("dtype") not in ("float32", "float64"):
        raise FormatError(f"manifest dtype {m.get('dtype')!r} is not float32/float64", path=path)
    dt = m.get("dt_us")
    if not isinstance(dt, int) or isinstance(dt, bool) or not 0 < dt < 10**9:
        raise FormatError(f"manifest dt_us {dt!r} is not a positive integer", path=path)
    for key in ("layers", "projections"):
        items = m.get(key)
        if not isinstance(items, list) or not all(
            isinstance(x, dict) and isinstance(x.get("name"), str) for x in items
        ):
            raise FormatError(f"manifest {key} is not a list of named objects", path=path)
    for i, lay in enumerate(m["layers"]):
        if not isinstance(lay.get("model"), str) or lay["model"] not in STATES:
            raise FormatError(f"manifest layers[{i}].model {lay.get('model')!r}", path=path)
        if lay.get("state") != list(STATES[lay["model"]]):
            raise FormatError(f"manifest layers[{i}].state {lay.get('state')!r}", path=path)
    for i, pr in enumerate(m["projections"]):
        shape = pr.get("shape")
        if not isinstance(shape, list) or not all(
            isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 1 << 40 for x in shape
        ):
            raise FormatError(f"manifest projections[{i}].shape {shape!r}", path=path)
        if not isinstance(pr.get("plasticity"), dict | None):
            raise FormatError(f"manifest projections[{i}].plasticity is not a table", path=path)
    for key in ("inputs", "outputs"):
        v = m.get(key, [])
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise FormatError(f"manifest {key} is not a list of names", path=path)


def check_tables(a: dict[str, np.ndarray], manifest: dict[str, Any], path: str) -> None:
    """Refuse a model file whose tables point outside its arrays, whose indices leave their
    ranges or whose integer regions overlap (no kernel may read or write past an array)."""
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

    if ni < H_SIZE:
        raise FormatError(f"integer table ii too short ({ni} < {H_SIZE})", path=path)
    h = [int(x) for x in ii[:H_SIZE]]
    nl = val("H_NL", h[H_NL], len(manifest["layers"]), len(manifest["layers"]))
    npj = val("H_NP", h[H_NP], len(manifest["projections"]), len(manifest["projections"]))
    val("H_T", h[H_T], 0, 1 << 60)
    val("H_LEARN", h[H_LEARN], 0, 1)
    val("H_DROP", h[H_DROP], 0, 1 << 62)
    ltab, ptab = h[H_LTAB], h[H_PTAB]
    for field, off, length in (("H_LTAB", ltab, nl * LR), ("H_PTAB", ptab, npj * PR)):
        if off < H_SIZE or off + length > ni:
            raise bad(field, off, f"layer/projection tables ({length}) outside ii (size {ni})")
    regions = [(0, H_SIZE, "header"), (ltab, nl * LR, "H_LTAB"), (ptab, npj * PR, "H_PTAB")]
    ns: list[int] = []
    nslots: list[int] = []
    n_in = n_out = 0
    outs: list[tuple[int, int, str]] = []
    for li in range(nl):
        r = [int(x) for x in ii[ltab + li * LR : ltab + (li + 1) * LR]]
        f = f"layer {li} "
        model = manifest["layers"][li]["model"]
        code, states = MODEL_CODES[model], STATES[model]
        val(f + "L_MODEL", r[L_MODEL], code, code)
        n = val(f + "L_N", r[L_N], 1, _MAX_NEURONS)
        nslot = val(f + "L_NSLOT", r[L_NSLOT], 1, _MAX_SLOTS)
        ns.append(n)
        nslots.append(nslot)
        span(f + "L_SOFF", r[L_SOFF], len(states) * n, fs, "fs")
        span(f + "L_BOFF", r[L_BOFF], nslot * 2 * n, fs, "fs")
        span(f + "L_ROFF", r[L_ROFF], n, fs, "fs")
        nq = _NQ[code]
        span(f + "L_POFF", r[L_POFF], nq + (n if nq else 0), fp, "fp")
        span(f + "L_SPKOFF", r[L_SPKOFF], n, ni, "ii")
        regions.append((r[L_SPKOFF], n, f + "L_SPKOFF"))
        nspk = val(f + "L_NSPK", r[L_NSPK], 0, n)
        spk = ii[r[L_SPKOFF] : r[L_SPKOFF] + nspk]
        if nspk and (spk.min() < 0 or spk.max() >= n):
            raise bad(f + "L_SPKOFF", r[L_SPKOFF], f"spike list holds indices outside [0, {n})")
        val(f + "L_COUNT", r[L_COUNT], 0, 1 << 62)
        val(f + "L_DIRECT", r[L_DIRECT], 0, 2)
        if code in (MODEL_IZH, MODEL_HH):
            k = r[L_POFF] + (Q_IZ_NSUB if code == MODEL_IZH else Q_HH_NSUB)
            sub = float(a["fp"][k])
            if not 1 <= sub <= _MAX_SUBSTEPS:
                raise bad(f + "sub-steps (fp)", sub, f"not in [1, {_MAX_SUBSTEPS}]")
        if code == MODEL_INPUT:
            val(f + "L_INOFF", r[L_INOFF], n_in, n_in)
            n_in += n
        else:
            val(f + "L_INOFF", r[L_INOFF], -1, -1)
        if r[L_OUTOFF] != -1:
            outs.append((val(f + "L_OUTOFF", r[L_OUTOFF], 0, 1 << 40), n, f + "L_OUTOFF"))
    val("H_NIN", h[H_NIN], n_in, n_in)
    for o, n, f in sorted(outs):  # the output layers tile [0, H_NOUT): the out buffer's size
        val(f, o, n_out, n_out)
        n_out += n
    val("H_NOUT", h[H_NOUT], n_out, n_out)
    for pi in range(npj):
        rec = ptab + pi * PR
        r = [int(x) for x in ii[rec : rec + PR]]
        f = f"projection {pi} "
        pre = val(f + "P_PRE", r[P_PRE], 0, nl - 1)
        post = val(f + "P_POST", r[P_POST], 0, nl - 1)
        n_pre, n_post = ns[pre], ns[post]
        rule = val(f + "P_RULE", r[P_RULE], RULE_DENSE, RULE_POOL)
        val(f + "P_CH", r[P_CH], 0, 1)
        nw = r[P_NW]
        shape = manifest["projections"][pi]["shape"]
        if shape and int(np.prod(shape, dtype=object)) != nw:
            raise bad(f + "P_NW", nw, f"does not fit the manifest shape {shape}")
        span(f + "P_WOFF", r[P_WOFF], nw, w, "w")
        span(f + "P_GOFF", r[P_GOFF], 1, fp, "fp")
        span(f + "P_MODOFF", r[P_MODOFF], 1, fs, "fs")
        val(f + "P_DELAY", r[P_DELAY], 0, nslots[post] - 1)
        val(f + "P_DMODE", r[P_DMODE], 0, 1 if rule == RULE_SPARSE else 0)
        if rule == RULE_DENSE:
            val(f + "P_NW", nw, n_pre * n_post, n_pre * n_post)
        elif rule == RULE_SPARSE:
            po = r[P_PTROFF]
            span(f + "P_PTROFF", po, n_pre + 1, ni, "ii")
            regions.append((po, n_pre + 1, f + "P_PTROFF"))
            ptr = ii[po : po + n_pre + 1]
            nsyn = int(ptr[-1])
            if ptr[0] != 0 or np.any(np.diff(ptr) < 0) or nsyn > nw:
                raise bad(f + "P_PTROFF", po, f"CSR pointers not monotone from 0 to <= P_NW {nw}")
            span(f + "P_IDXOFF", r[P_IDXOFF], nsyn, nj, "ij")
            idx = ij[r[P_IDXOFF] : r[P_IDXOFF] + nsyn]
            if nsyn and (idx.min() < 0 or idx.max() >= n_post):
                raise bad(f + "P_IDXOFF", r[P_IDXOFF], f"synapse targets outside [0, {n_post})")
            if r[P_DMODE] == 1:
                span(f + "P_DOFF", r[P_DOFF], nsyn, nj, "ij")
                dl = ij[r[P_DOFF] : r[P_DOFF] + nsyn]
                if nsyn and (dl.min() < 0 or dl.max() >= nslots[post]):
                    raise bad(f + "P_DOFF", r[P_DOFF], f"delays outside [0, {nslots[post]})")
        elif rule == RULE_ONE:
            val(f + "P_NW", nw, n_pre, 1 << 62)
            val(f + "post size", n_post, n_pre, _MAX_NEURONS)
        elif rule == RULE_WTA:
            val(f + "P_NW", nw, 1, 1 << 62)
        else:
            dims = [r[k] for k in range(P_CIN, P_STRIDE + 1)]
            for k, d in zip(range(P_CIN, P_STRIDE + 1), dims, strict=True):
                val(f + f"shape field {k}", d, 1, _MAX_NEURONS)
            c_in, h_in, w_in, c_out, h_out, w_out, kh, kw, _ = dims
            val(f + "P_PAD", r[P_PAD], 0, _MAX_NEURONS)
            val(f + "P_CIN*P_HIN*P_WIN", c_in * h_in * w_in, n_pre, n_pre)
            if rule == RULE_CONV:
                val(f + "P_COUT*P_HOUT*P_WOUT", c_out * h_out * w_out, 0, n_post)
                val(f + "P_NW", nw, c_out * c_in * kh * kw, 1 << 62)
            else:
                val(f + "P_CIN*P_HOUT*P_WOUT", c_in * h_out * w_out, 0, n_post)
                val(f + "P_NW", nw, 1, 1 << 62)
        plast = val(f + "P_PLAST", r[P_PLAST], PLAST_NONE, PLAST_RSTDP)
        if plast == PLAST_NONE:
            continue
        if rule not in (RULE_DENSE, RULE_SPARSE):
            raise bad(f + "P_PLAST", plast, "plasticity on a rule without per-synapse weights")
        span(f + "P_TPRE", r[P_TPRE], n_pre, fs, "fs")
        span(f + "P_TPOST", r[P_TPOST], n_post, fs, "fs")
        span(f + "P_PPOFF", r[P_PPOFF], NS_STDP, fp, "fp")
        if rule == RULE_SPARSE:
            nsyn = int(ii[r[P_PTROFF] + n_pre])
            co = r[P_CPTROFF]
            span(f + "P_CPTROFF", co, n_post + 1, ni, "ii")
            regions.append((co, n_post + 1, f + "P_CPTROFF"))
            cptr = ii[co : co + n_post + 1]
            if cptr[0] != 0 or np.any(np.diff(cptr) < 0) or cptr[-1] != nsyn:
                raise bad(f + "P_CPTROFF", co, f"column pointers not monotone from 0 to {nsyn}")
            span(f + "P_CIDXOFF", r[P_CIDXOFF], 2 * nsyn, nj, "ij")
            pairs = ij[r[P_CIDXOFF] : r[P_CIDXOFF] + 2 * nsyn]
            if nsyn and (
                pairs[0::2].min() < 0
                or pairs[0::2].max() >= nsyn
                or pairs[1::2].min() < 0
                or pairs[1::2].max() >= n_pre
            ):
                raise bad(f + "P_CIDXOFF", r[P_CIDXOFF], "column synapse ids out of range")
        if plast >= PLAST_PAIR:
            if not _check_record(ii, fs, fp, rec):
                raise bad(f + "P_LREC", r[P_LREC], "learning record points outside the arrays")
            g = r[P_LREC]
            regions.append((g, GR, f + "P_LREC"))
            regions.append((int(ii[g + G_TPRE]), n_pre, f + "G_TPRE"))
            regions.append((int(ii[g + G_TPOST]), n_post, f + "G_TPOST"))
            val(f + "G_PAIRING", int(ii[g + G_PAIRING]), 0, 1)
            val(f + "G_BOUNDS", int(ii[g + G_BOUNDS]), 0, 1)
            val(f + "G_NORM_EVERY", int(ii[g + G_NORM_EVERY]), 0, 1 << 40)
    # the kernels write spike lists, learning records and spike times into ii: none of them
    # may overlap a table, a pointer array or another one
    regions.sort()
    for (o1, n1, f1), (o2, _, f2) in zip(regions, regions[1:]):
        if n1 and o1 + n1 > o2:
            raise FormatError(f"{f1} = {o1} overlaps {f2} = {o2} in ii", path=path)


def _check_record(ii: np.ndarray, fs_size: int, fp_size: int, prec: int) -> bool:
    """Whether the learning record of projection record `prec` stays inside the arrays."""
    code = int(ii[prec + P_PLAST])
    if code < PLAST_PAIR:
        return True
    if code > PLAST_RSTDP:
        return False
    g = int(ii[prec + P_LREC])
    if g < 0 or g + GR > ii.size:
        return False
    ltab = int(ii[H_LTAB])
    n_pre = int(ii[ltab + int(ii[prec + P_PRE]) * LR + L_N])
    n_post = int(ii[ltab + int(ii[prec + P_POST]) * LR + L_N])
    n_syn = int(ii[g + G_NSYN])
    spans = [
        (G_X1PRE, n_pre, fs_size),
        (G_X2PRE, n_pre, fs_size),
        (G_X1POST, n_post, fs_size),
        (G_X2POST, n_post, fs_size),
        (G_SCRATCH, n_pre + n_post, fs_size),
        (G_DOPA, 2, fs_size),
        (G_TPRE, n_pre, ii.size),
        (G_TPOST, n_post, ii.size),
        (G_PAR, NF, fp_size),
    ]
    if code == PLAST_RSTDP:
        spans.append((G_ELIG, n_syn, fs_size))
    if int(ii[g + G_THETA]) >= 0:
        spans.append((G_THETA, n_post, fs_size))
    return n_syn == int(ii[prec + P_NW]) and all(
        int(ii[g + k]) >= 0 and int(ii[g + k]) + n <= size for k, n, size in spans
    )
