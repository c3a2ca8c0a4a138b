"""The linear NIR nodes as numpy maps on a batch ``(B, *shape)``, used to infer shapes and to
compose chains of linear nodes (Affine, Linear, Scale, Flatten, Conv2d, SumPool2d, AvgPool2d,
Delay) between neuron nodes into one projection. Bad parameters raise `ValueError`; the importer
turns them into a `ConfigError` naming the node.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgesnn.nir.reader import NirNode

LINEAR_TYPES = ("Affine", "Linear", "Scale", "Flatten", "Conv2d", "SumPool2d", "AvgPool2d", "Delay")

Pad2 = tuple[tuple[int, int], tuple[int, int]]


def int_pair(value: Any, what: str) -> tuple[int, int]:
    """An int or (h, w) pair as stored by NIR (0-d or 1-d arrays) as a pair of ints."""
    arr = np.asarray(value).ravel()
    if arr.size == 1:
        arr = np.repeat(arr, 2)
    if arr.size != 2 or not np.all(np.mod(arr.astype(np.float64), 1) == 0):
        raise ValueError(f"{what} must be an int or a pair of ints, got {np.asarray(value)!r}")
    return int(arr[0]), int(arr[1])


def conv_params(node: NirNode) -> tuple[tuple[int, int], Pad2, tuple[int, int], int]:
    """(stride, ((top, bottom), (left, right)) padding, dilation, groups) of a Conv2d node."""
    p = node.params
    w = np.asarray(p["weight"])
    if w.ndim != 4:
        raise ValueError(f"weight has shape {w.shape}, expected (C_out, C_in, kH, kW)")
    stride = int_pair(p.get("stride", 1), "stride")
    dil = int_pair(p.get("dilation", 1), "dilation")
    groups = int(np.asarray(p.get("groups", 1)).ravel()[0])
    pad_v = p.get("padding", 0)
    if isinstance(pad_v, str) or (isinstance(pad_v, np.ndarray) and pad_v.dtype == object):
        mode = str(np.asarray(pad_v).ravel()[0]) if not isinstance(pad_v, str) else pad_v
        if mode == "valid":
            pad: Pad2 = ((0, 0), (0, 0))
        elif mode == "same":
            if stride != (1, 1):
                raise ValueError("padding 'same' needs stride 1")
            th, tw = dil[0] * (w.shape[2] - 1), dil[1] * (w.shape[3] - 1)
            pad = ((th // 2, th - th // 2), (tw // 2, tw - tw // 2))
        else:
            raise ValueError(f"padding {mode!r} is not an int, a pair, 'same' or 'valid'")
    else:
        ph, pw = int_pair(pad_v, "padding")
        pad = ((ph, ph), (pw, pw))
    if min(stride) < 1 or min(dil) < 1 or groups < 1 or min(min(pad)) < 0:
        raise ValueError("stride, dilation and groups must be >= 1 and padding >= 0")
    if w.shape[0] % groups:
        raise ValueError(f"C_out = {w.shape[0]} is not a multiple of groups = {groups}")
    return stride, pad, dil, groups


def pool_params(node: NirNode) -> tuple[tuple[int, int], tuple[int, int], Pad2]:
    """(kernel, stride, padding) of a SumPool2d / AvgPool2d node (0-d values are broadcast)."""
    p = node.params
    k = int_pair(p["kernel_size"], "kernel_size")
    s = int_pair(p.get("stride", p["kernel_size"]), "stride")
    ph, pw = int_pair(p.get("padding", 0), "padding")
    if min(k) < 1 or min(s) < 1 or min(ph, pw) < 0:
        raise ValueError("kernel_size and stride must be >= 1 and padding >= 0")
    return k, s, ((ph, ph), (pw, pw))


def _conv2d(x: np.ndarray, node: NirNode, bias: bool) -> np.ndarray:
    w = np.asarray(node.params["weight"], dtype=np.float64)
    stride, pad, dil, groups = conv_params(node)
    if x.ndim != 4:
        raise ValueError(f"input shape {x.shape[1:]} is not (C, H, W)")
    b, c, h, wd = x.shape
    co, cig, kh, kw = w.shape
    if cig * groups != c:
        raise ValueError(f"input has {c} channels, the weight expects {cig * groups}")
    ho = (h + sum(pad[0]) - dil[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + sum(pad[1]) - dil[1] * (kw - 1) - 1) // stride[1] + 1
    if ho <= 0 or wo <= 0:
        raise ValueError(f"output would be empty ({ho} x {wo})")
    xp = np.pad(x, ((0, 0), (0, 0), pad[0], pad[1]))
    out = np.zeros((b, co, ho, wo))
    cog = co // groups
    for g in range(groups):
        xs = xp[:, g * cig : (g + 1) * cig]
        ws = w[g * cog : (g + 1) * cog]
        for ky in range(kh):
            for kx in range(kw):
                y0, x0 = ky * dil[0], kx * dil[1]
                patch = xs[:, :, y0 : y0 + stride[0] * (ho - 1) + 1 : stride[0],
                           x0 : x0 + stride[1] * (wo - 1) + 1 : stride[1]]  # fmt: skip
                part = np.einsum("bchw,oc->bohw", patch, ws[:, :, ky, kx])
                out[:, g * cog : (g + 1) * cog] += part
    if bias and "bias" in node.params:
        out += np.asarray(node.params["bias"], dtype=np.float64).reshape(1, co, 1, 1)
    return out


def _pool(x: np.ndarray, node: NirNode) -> np.ndarray:
    (kh, kw), (sh, sw), pad = pool_params(node)
    if x.ndim != 4:
        raise ValueError(f"input shape {x.shape[1:]} is not (C, H, W)")
    xp = np.pad(x, ((0, 0), (0, 0), pad[0], pad[1]))
    h, w = xp.shape[2], xp.shape[3]
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    if ho <= 0 or wo <= 0:
        raise ValueError(f"output would be empty ({ho} x {wo})")
    out = np.zeros((x.shape[0], x.shape[1], ho, wo))
    for ky in range(kh):
        for kx in range(kw):
            out += xp[:, :, ky : ky + sh * (ho - 1) + 1 : sh, kx : kx + sw * (wo - 1) + 1 : sw]
    if node.type == "AvgPool2d":
        out /= kh * kw
    return out


def _flatten(x: np.ndarray, node: NirNode) -> np.ndarray:
    shape = x.shape[1:]
    nd = len(shape)
    start = int(np.asarray(node.params.get("start_dim", 1)).ravel()[0])
    end = int(np.asarray(node.params.get("end_dim", -1)).ravel()[0])
    s = start + nd if start < 0 else start
    e = end + nd if end < 0 else end
    if nd == 0 or not (0 <= s <= e < nd):
        raise ValueError(f"start_dim {start}, end_dim {end} do not fit the shape {shape}")
    new = shape[:s] + (int(np.prod(shape[s : e + 1])),) + shape[e + 1 :]
    return x.reshape((x.shape[0], *new))


def apply_linear(node: NirNode, x: np.ndarray, *, bias: bool) -> np.ndarray:
    """The node's map on the batch x (B, *shape), with or without its bias."""
    t = node.type
    p = node.params
    if t in ("Affine", "Linear"):
        w = np.asarray(p["weight"], dtype=np.float64)
        if w.ndim != 2:
            raise ValueError(f"weight has shape {w.shape}, expected (out, in)")
        if x.ndim < 2 or x.shape[-1] != w.shape[1]:
            raise ValueError(f"input shape {x.shape[1:]} does not end in {w.shape[1]} (weight in)")
        y = x @ w.T
        if bias and t == "Affine" and "bias" in p:
            y = y + np.asarray(p["bias"], dtype=np.float64)
        return y
    if t == "Scale":
        return x * np.asarray(p["scale"], dtype=np.float64)
    if t == "Flatten":
        return _flatten(x, node)
    if t == "Conv2d":
        return _conv2d(x, node, bias)
    if t in ("SumPool2d", "AvgPool2d"):
        return _pool(x, node)
    if t == "Delay":
        return x
    raise ValueError(f"{t} is not a linear node")  # pragma: no cover - checked by the caller


def delay_steps(node: NirNode, dt: float) -> int:
    """Steps of a Delay node (one value for all its elements, a whole number of dt)."""
    d = np.unique(np.asarray(node.params["delay"], dtype=np.float64))
    if d.size != 1:
        raise ValueError(f"per-element delays ({d.min()} .. {d.max()}) are not supported")
    steps = float(d[0]) / dt
    k = round(steps)
    if k < 0 or abs(steps - k) > 1e-6 * max(1.0, abs(steps)):
        raise ValueError(f"delay {d[0]} is not a whole number of steps of dt = {dt}")
    return int(k)
