"""Where things live in the packed arrays the kernels read (one place for every offset).

A `Network` packs the whole simulation into five flat arrays so that one numba call with few
arguments advances it (dispatch cost grows with the argument count):

- ``fs`` float state: per layer its state variables (variable-major, ``fs[soff + k*n + i]``)
  and its synaptic ring buffer (``fs[boff + (slot*2 + channel)*n + i]``, channel 0 excitatory,
  1 inhibitory); per plastic projection its pre/post traces and a modulator scalar.
- ``fp`` float parameters: per layer the model's scalar parameters followed by ``i_bias``
  (n values); per projection its gain and plasticity parameters.
- ``w`` weights of every projection, concatenated (dense rows are contiguous per pre neuron).
- ``ii`` int64: header, layer table, projection table, CSR pointers, refractory counters,
  spike lists of the current step.
- ``ij`` int32: synapse targets, per-synapse delays (int32, or bytes 4 per word), column (CSC)
  synapse ids.

The integers below are module constants, so numba folds them into the kernels.
"""

from __future__ import annotations

import hashlib
import sys

# The packed layout is internal: model files (format 2, edgesnn.core.fileformat) hold the network
# description and named arrays and are re-packed on load, so these constants may change freely.
# Format-1 files were packed with layout 1, frozen in edgesnn.core.fileformat_v1. `signature()`
# (version and a hash of every constant below and of the plasticity rules' record layouts,
# edgesnn.learning.layout) is recorded in
# `Network.manifest["layout"]` for information; bump the version when the meaning changes.
LAYOUT_VERSION = 2  # 2: parameter slots named by the model modules of edgesnn.core.neurons

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
L_MODEL = 0  # model code (MODEL_INPUT, or a code of edgesnn.core.neurons)
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
# 0 one delay for all synapses, 1 per-synapse delays, 2 every pair in row-major order (a dense
# matrix, no plasticity: no targets, no ring offsets) with per-synapse delays as bytes
P_DMODE = 8
P_DELAY = 9  # the uniform delay (steps)
P_DOFF = 10  # ij offset of the per-synapse delays (P_DMODE 2: uint8, 4 per int32, native order)
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
P_DROFF = 30  # ij offset of every synapse's ring offset, delay * 2 n_post + target (P_DMODE 1)
P_DWOFF = 31  # w offset of a sparse projection's weights as dense rows (n_pre * n_post), or -1
PR = 32

# --- codes --------------------------------------------------------------------------------------
MODEL_INPUT = 0  # the other model codes are in the registry, edgesnn.core.neurons

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

# The parameters of a layer (fp from its L_POFF) are its model's packed scalars followed by
# i_bias per neuron: each model module of edgesnn.core.neurons names its slots (`slots`,
# `NeuronModel.slot(name)`).

# --- plasticity parameter slots (fp, relative to P_PPOFF) ---------------------------------------
S_APLUS = 0
S_AMINUS = 1
S_DPRE = 2  # pre trace decay per step
S_DPOST = 3  # post trace decay per step
S_WMIN = 4
S_WMAX = 5
NS_STDP = 6


def signature() -> dict[str, int | str]:
    """The layout a model file's tables follow: version, record sizes and a hash of every
    integer constant of this module and of the registered plasticity rules' record layouts
    (`edgesnn.learning.layout`) and of every neuron model's code and packed scalars (in
    `Network.manifest`)."""
    from edgesnn.core import plasticity
    from edgesnn.core.neurons import REGISTRY

    items = []
    for mod in (sys.modules[__name__], *plasticity.layouts()):
        for name, value in vars(mod).items():
            if name.isupper() and isinstance(value, int) and name != "LAYOUT_VERSION":
                items.append(f"{mod.__name__}.{name}={value}")
    for m in REGISTRY.values():
        items.append(f"model.{m.name}={m.code}:{','.join(m.slots)}")
    digest = hashlib.sha256("\n".join(sorted(items)).encode()).hexdigest()[:16]
    return {"version": LAYOUT_VERSION, "LR": LR, "PR": PR, "H_SIZE": H_SIZE, "hash": digest}
