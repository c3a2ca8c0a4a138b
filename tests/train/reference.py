"""Slow, obvious twins of the trainer's kernels (edgesnn.train.kernels), for the tests."""

from __future__ import annotations

import math

import numpy as np


def layer_forward_ref(s_pre, w, seg, model, k, v_rest, v_th, v_reset, n_ref, d_syn, bias,
                      soft, beta, v_init, sub=False):
    """Per sample, per step, per neuron: the update written out as in edgesnn.core.models."""
    rows, n = s_pre.shape[0], w.shape[1]
    s = np.zeros((rows, n))
    u = np.zeros((rows, n))
    dsdu = np.zeros((rows, n))
    act = np.zeros((rows, n), np.uint8)
    for b in range(len(seg) - 1):
        v = [float(x) for x in v_init]
        cur = [0.0] * n
        ref = [0.0] * n
        for r in range(seg[b], seg[b + 1]):
            x = list(cur) if model == 1 else [0.0] * n
            if r > seg[b]:
                for i in range(s_pre.shape[1]):  # the core adds rows in spike order
                    if s_pre[r - 1, i] != 0:
                        for j in range(n):
                            x[j] = x[j] + (s_pre[r - 1, i] * w[i, j] if soft else w[i, j])
            for j in range(n):
                if model == 1:
                    cur[j] = x[j]
                    un = v[j] + k * (v_rest + bias[j] + cur[j] - v[j])
                else:
                    un = v[j] + k * (v_rest + bias[j] - v[j]) + x[j]
                held = (not soft) and ref[j] != 0
                if held:
                    un = v[j]
                act[r, j] = 0 if held else 1
                ref[j] = max(ref[j] - 1.0, 0.0)
                if model == 1:
                    cur[j] = cur[j] * d_syn
                u[r, j] = un
                if soft:
                    sj = 1.0 / (1.0 + math.exp(-beta * (un - v_th)))
                    s[r, j] = sj
                    dsdu[r, j] = beta * sj * (1 - sj)
                    v[j] = un - v_th * sj if sub else un * (1 - sj) + v_reset * sj
                else:
                    dsdu[r, j] = 1.0 / (1.0 + beta * abs(un - v_th)) ** 2
                    if un > v_th:
                        s[r, j] = 1.0
                        v[j] = un - v_th if sub else v_reset
                        ref[j] = n_ref
                    else:
                        v[j] = un
    return s, u, dsdu, act


def layer_backward_ref(seg, model, k, d_syn, v_reset, s, u, dsdu, act, g_s, g_u, detach_reset,
                       sub=False, v_th=1.0):
    """Reverse-time chain rule of layer_forward_ref: returns (g_x, g_bias). With `sub` the
    reset is v = u - v_th*s (dv/du = 1, dv/ds = -v_th)."""
    rows, n = s.shape
    g_x = np.zeros((rows, n))
    g_b = np.zeros(n)
    for b in range(len(seg) - 1):
        for j in range(n):
            dv_next = 0.0  # dL/dv after the step being processed
            di_next = 0.0  # dL/dI (decayed current carried to the next step)
            for r in reversed(range(seg[b], seg[b + 1])):
                if sub:
                    ds = g_s[r, j] + (0.0 if detach_reset else -dv_next * v_th)
                    du = dv_next + ds * dsdu[r, j] + (g_u[r, j] if g_u.size else 0)
                else:
                    ds = g_s[r, j] + (0.0 if detach_reset else dv_next * (v_reset - u[r, j]))
                    du = (dv_next * (1 - s[r, j]) + ds * dsdu[r, j]
                          + (g_u[r, j] if g_u.size else 0))
                if act[r, j]:
                    g_b[j] += du * k
                    dv_next = du * (1 - k)
                    di_now = du * k
                    dx_delta = du
                else:
                    dv_next = du
                    di_now = 0.0
                    dx_delta = 0.0
                if model == 1:
                    di = di_next + di_now
                    g_x[r, j] = di
                    di_next = di * d_syn
                else:
                    g_x[r, j] = dx_delta
    return g_x, g_b
