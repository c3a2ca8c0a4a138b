"""`ReluMLP`: the ANN side of a conversion, read from an npz, scikit-learn or ONNX.

A ReLU multilayer perceptron ``h_0 = x``, ``h_l = relu(h_{l-1} @ W_l + b_l)`` for hidden
layers and ``z = h_{L-1} @ W_L + b_L`` (logits) for the last one. Weights are (n_in, n_out),
the convention of ``x @ W`` and of scikit-learn's ``coefs_``.

The npz format (no pickle): arrays ``W0, b0, W1, b1, ...`` (also accepted: ``w0``/``weight0``
and ``bias0``); each ``W_k`` is (n_in, n_out), or (n_out, n_in) as PyTorch's ``nn.Linear``
stores it, which is detected when only the transposed shapes chain (square matrices are taken
as (n_in, n_out)). A missing bias is zero.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.errors import FormatError

_WEIGHT = re.compile(r"^(?:W|w|weight|weights)_?(\d+)$")
_BIAS = re.compile(r"^(?:b|bias|biases)_?(\d+)$")


@dataclass
class ReluMLP:
    """Weights (n_in, n_out) and biases of a ReLU MLP whose last layer gives the logits."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]

    def __post_init__(self) -> None:
        if not self.weights:
            raise ValueError("an MLP needs at least one layer")
        if len(self.biases) != len(self.weights):
            raise ValueError(f"{len(self.weights)} weight matrices but {len(self.biases)} biases")
        self.weights = [np.ascontiguousarray(w, dtype=np.float64) for w in self.weights]
        self.biases = [np.ascontiguousarray(b, dtype=np.float64).reshape(-1)
                       for b in self.biases]
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if w.ndim != 2:
                raise ValueError(f"W{k} has shape {w.shape}; a dense layer needs a matrix")
            if b.shape != (w.shape[1],):
                raise ValueError(f"b{k} has {b.size} values for {w.shape[1]} neurons of W{k}")
            if k and w.shape[0] != self.weights[k - 1].shape[1]:
                raise ValueError(f"W{k} takes {w.shape[0]} inputs but layer {k - 1} has "
                                 f"{self.weights[k - 1].shape[1]} neurons")
            if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
                raise ValueError(f"layer {k} has non-finite weights or biases")

    @property
    def n_inputs(self) -> int:
        return int(self.weights[0].shape[0])

    @property
    def n_outputs(self) -> int:
        return int(self.weights[-1].shape[1])

    @property
    def sizes(self) -> list[int]:
        """Neurons per layer, input first."""
        return [self.n_inputs] + [int(w.shape[1]) for w in self.weights]

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one forward pass (the ANN's operation count)."""
        return int(sum(w.size for w in self.weights))

    def activations(self, x: np.ndarray) -> list[np.ndarray]:
        """Every layer's output for inputs x (n, n_in): ReLU for hidden layers, the logits for
        the last."""
        h = np.asarray(x, dtype=np.float64)
        if h.ndim != 2 or h.shape[1] != self.n_inputs:
            raise ValueError(f"inputs have shape {h.shape}; the MLP takes (n, {self.n_inputs})")
        out = []
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if k < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
            out.append(h)
        return out

    def logits(self, x: np.ndarray) -> np.ndarray:
        return self.activations(x)[-1]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The class of each input: argmax of the logits (the ANN's own rule)."""
        return np.argmax(self.logits(x), axis=1).astype(np.int64)

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def from_sklearn(cls, clf: Any) -> ReluMLP:
        """From a fitted `sklearn.neural_network.MLPClassifier` with ``activation="relu"``."""
        act = getattr(clf, "activation", None)
        if act != "relu":
            raise ValueError(f"the classifier uses activation {act!r}; conversion needs 'relu'")
        if not hasattr(clf, "coefs_"):
            raise ValueError("the classifier is not fitted (no coefs_)")
        if getattr(clf, "n_outputs_", 2) == 1 or clf.coefs_[-1].shape[1] == 1:
            raise ValueError("binary MLPClassifier has one logistic output; train it with "
                             "one column per class or convert a multi-class model")
        return cls([np.array(w) for w in clf.coefs_], [np.array(b) for b in clf.intercepts_])

    def save(self, path: str | Path) -> None:
        """Write the npz form (W0, b0, W1, b1, ...) read by `load_ann`."""
        arrays: dict[str, np.ndarray] = {}
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            arrays[f"W{k}"], arrays[f"b{k}"] = w, b
        with open(path, "wb") as f:
            np.savez(f, **arrays)


def _orient(mats: list[np.ndarray], path: str) -> list[np.ndarray]:
    """(n_in, n_out) matrices: as given when they chain, transposed when only that chains."""
    def chains(ms: list[np.ndarray]) -> bool:
        return all(ms[k].shape[0] == ms[k - 1].shape[1] for k in range(1, len(ms)))

    if chains(mats):
        return mats
    flipped = [m.T for m in mats]
    if chains(flipped):
        return flipped
    shapes = ", ".join(f"W{k} {m.shape}" for k, m in enumerate(mats))
    raise FormatError(f"weight shapes do not chain as (n_in, n_out) or (n_out, n_in): {shapes}",
                      path=path)


def load_npz(path: str | Path) -> ReluMLP | ReluCNN:
    """A ReLU MLP from an npz of W0, b0, W1, b1, ..., or a CNN when the file has
    ``input_shape`` (see `ReluCNN.save`)."""
    p = str(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise FormatError(f"not a readable npz ({e})", path=p) from None
    if "input_shape" in data:
        return _cnn_from_arrays(data, p)
    ws: dict[int, np.ndarray] = {}
    bs: dict[int, np.ndarray] = {}
    for key, arr in data.items():
        if m := _WEIGHT.match(key):
            ws[int(m.group(1))] = arr
        elif m := _BIAS.match(key):
            bs[int(m.group(1))] = arr
    if not ws:
        raise FormatError(f"no weight arrays (W0, W1, ...) among {sorted(data)}", path=p)
    idx = sorted(ws)
    if idx != list(range(len(idx))):
        raise FormatError(f"weight arrays must be numbered 0..{len(idx) - 1}, found {idx}", path=p)
    extra = sorted(set(bs) - set(idx))
    if extra:
        raise FormatError(f"biases {extra} have no weight matrix", path=p)
    mats = []
    for k in idx:
        w = np.asarray(ws[k], dtype=np.float64)
        if w.ndim != 2:
            raise FormatError(f"W{k} has shape {w.shape}; dense layers need matrices", path=p)
        mats.append(w)
    mats = _orient(mats, p)
    biases = [np.asarray(bs[k], dtype=np.float64).reshape(-1) if k in bs
              else np.zeros(mats[k].shape[1]) for k in idx]
    try:
        return ReluMLP(mats, biases)
    except ValueError as e:
        raise FormatError(str(e), path=p) from None


def load_onnx(path: str | Path) -> ReluMLP | ReluCNN:
    """A ReLU MLP from an ONNX graph of Gemm (or MatMul + Add) and Relu nodes, in order; a
    small CNN when it also has Conv (+ Relu) and AveragePool nodes before the dense layers
    (square or rectangular kernels, symmetric padding, no dilation or groups; the input shape
    comes from the graph input's (N, C, H, W)).

    Needs the optional `onnx` package; raises ImportError with the install hint without it.
    """
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise ImportError("reading ONNX files needs the onnx package: pip install onnx") from None
    p = str(path)
    try:
        model = onnx.load(p)
    except Exception as e:  # onnx raises several types for a bad file
        raise FormatError(f"not a readable ONNX model ({e})", path=p) from None
    init = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    # (kind, layer, relu after it)
    layers: list[list[Any]] = []

    def attrs_of(node: Any) -> dict[str, Any]:
        return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    for node in model.graph.node:
        op = node.op_type
        where = f"{op} {node.name!r}"
        if op == "Gemm":
            attrs = attrs_of(node)
            if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
                raise FormatError(f"{where}: alpha/beta other than 1", path=p)
            if attrs.get("transA", 0):
                raise FormatError(f"{where}: transA is not supported", path=p)
            w = init.get(node.input[1])
            if w is None:
                raise FormatError(f"{where}: weight is not a constant", path=p)
            w = w.T if attrs.get("transB", 0) else w
            b = init.get(node.input[2]) if len(node.input) > 2 else None
            layers.append(["dense", Dense(w, np.zeros(w.shape[1]) if b is None else b), False])
        elif op == "MatMul":
            w = init.get(node.input[1])
            if w is None:
                raise FormatError(f"{where}: weight is not a constant", path=p)
            layers.append(["dense", Dense(w, np.zeros(w.shape[1])), False])
        elif op == "Conv":
            attrs = attrs_of(node)
            k = init.get(node.input[1])
            if k is None or k.ndim != 4:
                raise FormatError(f"{where}: kernel is not a constant (C_out, C_in, kh, kw)",
                                  path=p)
            pads = list(attrs.get("pads", [0, 0, 0, 0]))
            strides = list(attrs.get("strides", [1, 1]))
            if attrs.get("group", 1) != 1 or any(d != 1 for d in attrs.get("dilations", [1, 1])):
                raise FormatError(f"{where}: groups and dilation are not supported", path=p)
            if len(set(pads)) > 1 or len(set(strides)) > 1 or attrs.get("auto_pad", b"NOTSET") \
                    not in (b"NOTSET", "NOTSET"):
                raise FormatError(f"{where}: padding and strides must be the same on every side",
                                  path=p)
            b = init.get(node.input[2]) if len(node.input) > 2 else None
            layers.append(["conv", Conv2d(k, np.zeros(k.shape[0]) if b is None else b,
                                          int(strides[0]), int(pads[0])), False])
        elif op == "AveragePool":
            attrs = attrs_of(node)
            ks = list(attrs.get("kernel_shape", []))
            st = list(attrs.get("strides", ks))
            if len(set(ks)) != 1 or len(set(st)) != 1 or any(attrs.get("pads", [0])):
                raise FormatError(f"{where}: square kernels and strides without padding only",
                                  path=p)
            layers.append(["pool", AvgPool2d(int(ks[0]), int(st[0])), False])
        elif op == "Add" and layers and layers[-1][0] in ("dense", "conv") and not layers[-1][2]:
            b = init.get(node.input[1], init.get(node.input[0]))
            if b is None:
                raise FormatError(f"{where}: no constant bias", path=p)
            lay = layers[-1][1]
            lay.bias = lay.bias + b.reshape(-1)
        elif op == "Relu" and layers:
            layers[-1][2] = True
        elif op in ("Flatten", "Reshape", "Identity", "Softmax", "LogSoftmax", "Dropout"):
            continue
        else:
            raise FormatError(f"ONNX node {node.name!r} ({op}) is not part of a ReLU MLP or CNN",
                              path=p)
    if not any(kind == "dense" for kind, _, _ in layers):
        raise FormatError("no Gemm or MatMul layers in the graph", path=p)
    for i, (kind, _, relu) in enumerate(layers):
        last = i == len(layers) - 1
        if (kind == "dense" and relu == last) or (kind == "conv" and not relu):
            raise FormatError("every conv and dense layer but the last must be followed by "
                              "Relu, the last by none", path=p)
    try:
        if all(kind == "dense" for kind, _, _ in layers):
            return ReluMLP([lay.weight for _, lay, _ in layers],
                           [lay.bias for _, lay, _ in layers])
        dims = model.graph.input[0].type.tensor_type.shape.dim
        shape = tuple(int(d.dim_value) for d in dims[1:])
        if len(shape) != 3 or min(shape) <= 0:
            raise FormatError(f"the graph input needs a fixed (N, C, H, W) shape, has {shape}",
                              path=p)
        return ReluCNN(shape, [lay for _, lay, _ in layers])  # type: ignore[arg-type]
    except FormatError:
        raise
    except ValueError as e:
        raise FormatError(str(e), path=p) from None


def load_ann(path: str | Path) -> ReluMLP | ReluCNN:
    """A ReLU MLP or small CNN from an .npz or an .onnx file (needs `onnx`)."""
    if str(path).lower().endswith(".onnx"):
        return load_onnx(path)
    return load_npz(path)


# --- small CNNs: conv2d + average pooling + dense ------------------------------------------------


@dataclass
class Conv2d:
    """A 2-D convolution followed by ReLU: kernel (C_out, C_in, kh, kw), bias (C_out)."""

    kernel: np.ndarray
    bias: np.ndarray
    stride: int = 1
    padding: int = 0


@dataclass
class AvgPool2d:
    """Average pooling over size x size windows (stride: default size); no ReLU needed, as
    the average of ReLU outputs is never negative."""

    size: int = 2
    stride: int | None = None


@dataclass
class Dense:
    """x @ weight + bias, followed by ReLU unless it is the last layer (the logits)."""

    weight: np.ndarray
    bias: np.ndarray


def _im2col(x: np.ndarray, kh: int, kw: int, stride: int, pad: int) -> tuple[np.ndarray, int, int]:
    """(n, H_o*W_o, C*kh*kw) patches of x (n, C, H, W) in (C, ky, kx) order, and H_o, W_o."""
    n, c, h, w = x.shape
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    cols = np.empty((n, c, kh, kw, ho, wo))
    for ky in range(kh):
        for kx in range(kw):
            ys, xs = slice(ky, ky + stride * ho, stride), slice(kx, kx + stride * wo, stride)
            cols[:, :, ky, kx] = x[:, :, ys, xs]
    return cols.reshape(n, c * kh * kw, ho * wo).transpose(0, 2, 1), ho, wo


def conv2d_forward(x: np.ndarray, layer: Conv2d) -> np.ndarray:
    """The convolution (before ReLU) of x (n, C_in, H, W): (n, C_out, H_o, W_o)."""
    k = np.asarray(layer.kernel, np.float64)
    cols, ho, wo = _im2col(x, k.shape[2], k.shape[3], layer.stride, layer.padding)
    z = cols @ k.reshape(k.shape[0], -1).T + layer.bias
    return z.transpose(0, 2, 1).reshape(x.shape[0], k.shape[0], ho, wo)


def avgpool_forward(x: np.ndarray, layer: AvgPool2d) -> np.ndarray:
    """Average pooling of x (n, C, H, W)."""
    s = layer.size
    st = layer.stride or s
    ho, wo = (x.shape[2] - s) // st + 1, (x.shape[3] - s) // st + 1
    out = np.zeros((x.shape[0], x.shape[1], ho, wo))
    for dy in range(s):
        for dx in range(s):
            out += x[:, :, dy : dy + st * ho : st, dx : dx + st * wo : st]
    return out / (s * s)


@dataclass
class ReluCNN:
    """A small CNN on (C, H, W) inputs given flat (n, C*H*W): conv/pool layers, then dense
    layers on the flattened (C, H, W) map; the last dense layer gives the logits."""

    input_shape: tuple[int, int, int]
    layers: list[Conv2d | AvgPool2d | Dense]

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(v) for v in self.input_shape)  # type: ignore[assignment]
        if len(self.input_shape) != 3:
            raise ValueError("input_shape is (C, H, W)")
        if not self.layers or not isinstance(self.layers[-1], Dense):
            raise ValueError("a CNN ends with a dense layer (the logits)")
        shape: tuple[int, ...] = self.input_shape
        seen_dense = False
        for k, lay in enumerate(self.layers):
            if isinstance(lay, Dense):
                seen_dense = True
                lay.weight = np.asarray(lay.weight, np.float64)
                lay.bias = np.asarray(lay.bias, np.float64).reshape(-1)
                n_in = int(np.prod(shape))
                if lay.weight.shape[0] != n_in or lay.bias.size != lay.weight.shape[1]:
                    raise ValueError(f"layer {k}: dense weight {lay.weight.shape} and bias "
                                     f"{lay.bias.shape} do not fit {n_in} inputs")
                shape = (lay.weight.shape[1],)
            elif seen_dense:
                raise ValueError(f"layer {k}: convolution or pooling after a dense layer")
            elif isinstance(lay, Conv2d):
                lay.kernel = np.asarray(lay.kernel, np.float64)
                lay.bias = np.asarray(lay.bias, np.float64).reshape(-1)
                if lay.kernel.ndim != 4 or lay.kernel.shape[1] != shape[0]:
                    raise ValueError(f"layer {k}: kernel {lay.kernel.shape} is not "
                                     f"(C_out, {shape[0]}, kh, kw)")
                if lay.bias.size != lay.kernel.shape[0]:
                    raise ValueError(f"layer {k}: {lay.bias.size} biases for "
                                     f"{lay.kernel.shape[0]} channels")
                shape = (lay.kernel.shape[0],
                         (shape[1] + 2 * lay.padding - lay.kernel.shape[2]) // lay.stride + 1,
                         (shape[2] + 2 * lay.padding - lay.kernel.shape[3]) // lay.stride + 1)
            else:
                st = lay.stride or lay.size
                shape = (shape[0], (shape[1] - lay.size) // st + 1,
                         (shape[2] - lay.size) // st + 1)
            if min(shape) <= 0:
                raise ValueError(f"layer {k}: output shape {shape} is empty")

    @property
    def n_inputs(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def n_outputs(self) -> int:
        last = self.layers[-1]
        assert isinstance(last, Dense)
        return int(last.weight.shape[1])

    def shapes(self) -> list[tuple[int, ...]]:
        """Output shape of every layer ((C, H, W) or (n,))."""
        x = np.zeros((1, self.n_inputs))
        return [a.shape[1:] for a in self._forward(x)]

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one forward pass (pooling counted as additions)."""
        total = 0
        for lay, shape in zip(self.layers, self.shapes(), strict=True):
            if isinstance(lay, Dense):
                total += lay.weight.size
            elif isinstance(lay, Conv2d):
                total += int(np.prod(shape)) * int(np.prod(lay.kernel.shape[1:]))
            else:
                total += int(np.prod(shape)) * lay.size * lay.size
        return total

    def _forward(self, x: np.ndarray) -> list[np.ndarray]:
        h = np.asarray(x, np.float64)
        if h.ndim != 2 or h.shape[1] != self.n_inputs:
            raise ValueError(f"inputs have shape {h.shape}; the CNN takes (n, {self.n_inputs})")
        h = h.reshape(-1, *self.input_shape)
        out = []
        for k, lay in enumerate(self.layers):
            if isinstance(lay, Conv2d):
                h = np.maximum(conv2d_forward(h, lay), 0.0)
            elif isinstance(lay, AvgPool2d):
                h = avgpool_forward(h, lay)
            else:
                h = h.reshape(h.shape[0], -1) @ lay.weight + lay.bias
                if k < len(self.layers) - 1:
                    h = np.maximum(h, 0.0)
            out.append(h)
        return out

    def activations(self, x: np.ndarray) -> list[np.ndarray]:
        """Every layer's output, flattened to (n, size) in (C, H, W) order."""
        return [a.reshape(a.shape[0], -1) for a in self._forward(x)]

    def logits(self, x: np.ndarray) -> np.ndarray:
        return self.activations(x)[-1]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.argmax(self.logits(x), axis=1).astype(np.int64)

    def save(self, path: str | Path) -> None:
        """Write the npz form read by `load_ann`: ``input_shape`` (C, H, W), then per layer k
        in order ``conv{k}_kernel``, ``conv{k}_bias``, ``conv{k}_stride``, ``conv{k}_padding``;
        ``pool{k}_size``, ``pool{k}_stride``; or ``W{k}``, ``b{k}`` (dense, (n_in, n_out) on
        the flattened (C, H, W) map)."""
        arrays: dict[str, np.ndarray] = {"input_shape": np.asarray(self.input_shape, np.int64)}
        for k, lay in enumerate(self.layers):
            if isinstance(lay, Conv2d):
                arrays[f"conv{k}_kernel"], arrays[f"conv{k}_bias"] = lay.kernel, lay.bias
                arrays[f"conv{k}_stride"] = np.asarray(lay.stride)
                arrays[f"conv{k}_padding"] = np.asarray(lay.padding)
            elif isinstance(lay, AvgPool2d):
                arrays[f"pool{k}_size"] = np.asarray(lay.size)
                arrays[f"pool{k}_stride"] = np.asarray(lay.stride or lay.size)
            else:
                arrays[f"W{k}"], arrays[f"b{k}"] = lay.weight, lay.bias
        with open(path, "wb") as f:
            np.savez(f, **arrays)


_CNN_KEY = re.compile(r"^(?:conv(\d+)_(kernel|bias|stride|padding)|pool(\d+)_(size|stride)"
                      r"|W(\d+)|b(\d+))$")


def _cnn_from_arrays(data: dict[str, np.ndarray], p: str) -> ReluCNN:
    """A ReluCNN from the arrays of `ReluCNN.save` (FormatError naming what is wrong)."""
    by: dict[int, dict[str, np.ndarray]] = {}
    for key, arr in data.items():
        if key == "input_shape":
            continue
        m = _CNN_KEY.match(key)
        if not m:
            raise FormatError(f"unknown array {key!r} in a CNN file (conv<k>_kernel, "
                              "conv<k>_bias, pool<k>_size, W<k>, b<k>, ...)", path=p)
        k = next(int(g) for g in (m.group(1), m.group(3), m.group(5), m.group(6)) if g)
        kind = ("conv" if m.group(1) else "pool" if m.group(3) else "dense")
        field = m.group(2) or m.group(4) or ("weight" if m.group(5) else "bias")
        entry = by.setdefault(k, {"kind": np.asarray(kind)})
        if str(entry["kind"]) != kind:
            raise FormatError(f"layer {k} has arrays of two kinds", path=p)
        entry[field] = arr
    if sorted(by) != list(range(len(by))):
        raise FormatError(f"CNN layers must be numbered 0..{len(by) - 1}, found {sorted(by)}",
                          path=p)
    layers: list[Conv2d | AvgPool2d | Dense] = []
    try:
        for k in range(len(by)):
            e = by[k]
            kind = str(e["kind"])
            if kind == "conv":
                layers.append(Conv2d(e["kernel"], e["bias"], int(e.get("stride", 1)),
                                     int(e.get("padding", 0))))
            elif kind == "pool":
                layers.append(AvgPool2d(int(e["size"]), int(e.get("stride", e["size"]))))
            else:
                layers.append(Dense(e["weight"], e.get("bias", np.zeros(e["weight"].shape[1]))))
        return ReluCNN(tuple(int(v) for v in data["input_shape"]), layers)  # type: ignore[arg-type]
    except KeyError as e:
        raise FormatError(f"a CNN layer lacks its {e.args[0]} array", path=p) from None
    except (ValueError, TypeError) as e:
        raise FormatError(str(e), path=p) from None
