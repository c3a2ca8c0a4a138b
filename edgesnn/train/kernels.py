"""Numba kernels of the trainer: one layer's forward pass over a minibatch and its BPTT.

The forward pass is the core's update, operation for operation (`edgesnn.core.kernels`:
`_update_lif`, `_update_cuba`, `_dense_rows`), so that a trained model run by the core spikes
exactly as it did here. Rows are steps: a minibatch is ragged, sample b owns rows
``seg[b]:seg[b + 1]``. A layer at row r consumes the spikes of its pre layer at row r - 1 (one
step of latency per hop, as in the core) summed row by row in ascending pre-neuron order
(the order of the core's spike lists), then updates:

- ``lif``: unless refractory ``u = v + k*((v_rest + b) - v) + x``, else ``u = v`` (input lost);
- ``cuba_lif``: ``I += x`` (I holds the decayed current); unless refractory
  ``u = v + k*(((v_rest + b) + I) - v)``, else ``u = v``; then ``I *= d``;

``s = u > v_th``; ``v = v_reset`` where s (with ``sub``, the subtractive reset of
``reset = "subtract"``: ``v = u - v_th``), else ``u``; a spike starts ``n_ref`` held steps.

With ``soft`` the Heaviside is replaced by ``sigmoid(beta*(u - v_th))`` and the reset by
``v = u*(1 - s) + v_reset*s`` (``sub``: ``v = u - v_th*s``; no refractory period): a smooth
network whose exact gradient the same backward kernel computes, which is how the gradients
are checked against finite differences. With hard spikes the backward pass uses the surrogate
derivative ``1 / (1 + beta*|u - v_th|)**2`` (SuperSpike's fast sigmoid) and treats the
refractory mask as constant.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

MODEL_LIF = 0
MODEL_CUBA = 1

_OPTS = {"cache": True, "nogil": True, "error_model": "numpy"}


@njit(**_OPTS)
def layer_forward(
    s_pre, w, seg, model, k, v_rest, v_th, v_reset, sub, n_ref, d_syn, bias, soft, beta,
    s_out, u_out, dsdu_out, act_out, v_init,
):
    """Run one layer over every sample of a minibatch.

    s_pre (R, n_pre) spikes of the pre layer (0/1, or in (0, 1) when soft), w (n_pre, n),
    seg (B + 1) row offsets. Writes s_out, u_out (membrane before the reset), dsdu_out
    (surrogate or exact spike derivative), act_out (1 where the neuron integrated, 0 where it
    was held refractory), all (R, n). v_init (n) is the membrane at reset. `sub`: reset by
    subtracting v_th instead of to v_reset.
    """
    return _forward(s_pre, w, np.empty((0, 0)), seg, model, k, v_rest, v_th, v_reset, sub,
                    n_ref, d_syn, bias, soft, beta, s_out, u_out, dsdu_out, act_out, v_init)


@njit(**_OPTS)
def layer_forward_x(
    x_in, seg, model, k, v_rest, v_th, v_reset, sub, n_ref, d_syn, bias, soft, beta,
    s_out, u_out, dsdu_out, act_out, v_init,
):
    """`layer_forward` with the synaptic input of every row given: x_in (R, n), row r the
    input delivered into row r (its pre spikes of row r - 1 times the weights, summed by a
    matrix product: faster, rounded differently from the core; training uses it)."""
    return _forward(np.empty((0, 0)), np.empty((0, x_in.shape[1])), x_in, seg, model, k,
                    v_rest, v_th, v_reset, sub, n_ref, d_syn, bias, soft, beta, s_out, u_out,
                    dsdu_out, act_out, v_init)


@njit(**_OPTS)
def _forward(
    s_pre, w, x_in, seg, model, k, v_rest, v_th, v_reset, sub, n_ref, d_syn, bias, soft, beta,
    s_out, u_out, dsdu_out, act_out, v_init,
):
    """Both forward passes: the input of row r summed from s_pre and w in pre order (as the
    core does) or, when x_in has rows, taken from x_in[r]."""
    given = x_in.shape[0] != 0
    n_pre = s_pre.shape[1]
    n = w.shape[1]
    v = np.empty(n)
    cur = np.empty(n)
    ref = np.empty(n)
    x = np.empty(n)
    zero = 0.0
    for b in range(seg.shape[0] - 1):
        for j in range(n):
            v[j] = v_init[j]
            cur[j] = zero
            ref[j] = zero
        for r in range(seg[b], seg[b + 1]):
            # input delivered at the end of the previous step, rows added in pre order
            if model == MODEL_CUBA:
                for j in range(n):
                    x[j] = cur[j]
            else:
                for j in range(n):
                    x[j] = zero
            if r > seg[b] and given:
                for j in range(n):
                    x[j] = x[j] + x_in[r, j]
            elif r > seg[b]:
                for i in range(n_pre):
                    si = s_pre[r - 1, i]
                    if si != zero:
                        if soft:
                            for j in range(n):
                                x[j] = x[j] + si * w[i, j]
                        else:
                            for j in range(n):
                                x[j] = x[j] + w[i, j]
            for j in range(n):
                vi = v[j]
                rf = ref[j]
                if model == MODEL_CUBA:
                    cur[j] = x[j]
                    un = vi + k * (v_rest + bias[j] + cur[j] - vi)
                else:
                    un = vi + k * (v_rest + bias[j] - vi) + x[j]
                held = (not soft) and rf != zero
                if held:
                    un = vi
                act_out[r, j] = 0 if held else 1
                ref[j] = max(rf - 1.0, zero)
                if model == MODEL_CUBA:
                    cur[j] = cur[j] * d_syn
                u_out[r, j] = un
                if soft:
                    s = 1.0 / (1.0 + math.exp(-beta * (un - v_th)))
                    s_out[r, j] = s
                    dsdu_out[r, j] = beta * s * (1.0 - s)
                    if sub:
                        v[j] = un - v_th * s
                    else:
                        v[j] = un * (1.0 - s) + v_reset * s
                else:
                    dsdu_out[r, j] = 1.0 / (1.0 + beta * abs(un - v_th)) ** 2
                    if un > v_th:
                        s_out[r, j] = 1.0
                        v[j] = un - v_th if sub else v_reset
                        ref[j] = n_ref
                    else:
                        s_out[r, j] = zero
                        v[j] = un
    return 0


@njit(**_OPTS)
def layer_backward(
    seg, model, k, d_syn, v_reset, sub, v_th, s, u, dsdu, act, g_s, g_u, detach_reset, g_x,
    g_bias,
):
    """BPTT through one layer. g_s (R, n): dL/ds from the loss and the next layer; g_u (R, n)
    or (0, 0): dL/du from the loss directly (max-membrane loss). Writes g_x (R, n): dL/dx,
    the gradient of the input delivered into each row, and adds dL/d(i_bias) to g_bias.
    `sub`: the reset subtracts v_th (v = u - v_th*s: dv/du = 1, dv/ds = -v_th), else
    v = u*(1 - s) + v_reset*s."""
    n = s.shape[1]
    gv = np.empty(n)
    gi = np.empty(n)
    has_gu = g_u.shape[0] != 0
    for b in range(seg.shape[0] - 1):
        for j in range(n):
            gv[j] = 0.0
            gi[j] = 0.0
        for r in range(seg[b + 1] - 1, seg[b] - 1, -1):
            for j in range(n):
                sj = s[r, j]
                gsj = g_s[r, j]
                if sub:
                    if not detach_reset:
                        gsj -= gv[j] * v_th
                    gu = gv[j] + gsj * dsdu[r, j]
                else:
                    if not detach_reset:
                        gsj += gv[j] * (v_reset - u[r, j])
                    gu = gv[j] * (1.0 - sj) + gsj * dsdu[r, j]
                if has_gu:
                    gu += g_u[r, j]
                on = act[r, j] != 0
                gk = gu * k if on else 0.0
                g_bias[j] += gk
                gv[j] = gu * (1.0 - k) if on else gu
                if model == MODEL_CUBA:
                    gtot = gi[j] + gk  # I feeds u now (k) and the next step's I (d)
                    g_x[r, j] = gtot
                    gi[j] = gtot * d_syn
                else:
                    g_x[r, j] = gu if on else 0.0  # delta synapse: x adds to u directly
    return 0
