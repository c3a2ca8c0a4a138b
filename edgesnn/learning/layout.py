"""Offsets of a projection's learning record (one place for every slot the rule kernels read).

A plastic projection whose code is ``PLAST_PAIR`` or higher has ``ii[prec + P_LREC]`` pointing
at a record of `GR` ints in ``ii``: flags, counters and the offsets of its traces (``fs``), its
last-spike steps (``ii``) and its parameters (``fp``). Traces are stored with the step at which
they were last written and decayed lazily, ``x(t) = x * exp((t - t_last) * lam)``, where ``lam``
is the log of the per-step decay.
"""

from __future__ import annotations

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
