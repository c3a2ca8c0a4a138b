"""Model files, format 2: a versioned JSON manifest holding the network description, plus named
arrays (weights, delays, synapse indices, per-neuron parameters, state), in one npz.

Loading rebuilds the network through the normal path (`NetworkSpec` -> `Network`), so the file
never depends on the packed layout of the version that wrote it. The manifest::

    {"format": "edgesnn-model", "version": 2,
     "network": {"dt_us", "seed", "dtype", "max_delay_steps", "inputs", "outputs",
                 "layers": [{"name", "n", "model", <model parameters>}],
                 "projections": [{"source", "target", "rule", "synapse", "gain",
                                  "delay_steps", "weight" | "kernel" | "pre"/"post"/"size"/...,
                                  "plasticity"}]},
     "state": {<layer>: {<state variable>: <array name>}},
     <every other key of Network.manifest, e.g. "recipe", kept as written>}

Any value of the network description may be ``{"array": <name>, "shape": [...]}``: the npz
member ``<name>`` (1-D, reshaped to ``shape``). Arrays are named ``proj/<source->target>/w``
(``/delay``, ``/pre``, ``/post``; ``#<index>`` is appended to a name several projections
share), ``layer/<name>/<parameter>`` (per-neuron ``i_bias``, ``v_init``) and
``layer/<name>/<variable>`` (state after reset, in the network's dtype). Learned weights are
stored as they are; traces, eligibilities and counters are not (they are zero after reset).
Format-1 files (packed arrays, see `fileformat_v1`) are read by turning their packed arrays into
this description first; files of a newer format are refused.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from edgesnn.errors import ConfigError, FormatError

if TYPE_CHECKING:
    from edgesnn.core.network import Network

FORMAT = "edgesnn-model"
VERSION = 2
#: manifest keys of format 1 that describe the network (all others are kept as written)
_V1_KEYS = ("format", "version", "layout", "dt_us", "seed", "dtype", "max_delay_steps",
            "inputs", "outputs", "layers", "projections")  # fmt: skip
_V2_KEYS = ("format", "version", "network", "state")
_NET_KEYS = ("dt_us", "seed", "dtype", "max_delay_steps", "inputs", "outputs", "layers",
             "projections")  # fmt: skip


def _ref(arrays: dict[str, np.ndarray], name: str, value: np.ndarray) -> dict[str, Any]:
    """Store `value` as the named array `name` (flattened) and return its manifest reference."""
    arrays[name] = np.ascontiguousarray(value).reshape(-1)
    return {"array": name, "shape": [int(x) for x in np.shape(value)]}


def unpack(
    ns: ModuleType, manifest: dict[str, Any], a: dict[str, np.ndarray]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The format-2 manifest and named arrays of packed arrays `a` (fs and ii as after reset)
    whose tables follow the layout `ns` (`edgesnn.core.layout`, or `fileformat_v1` for
    format-1 files) and whose manifest is the format-1 / `Network.manifest` form."""
    ii, ij, fs, fp, w = a["ii"], a["ij"], a["fs"], a["fp"], a["w"]
    dtype = np.dtype(manifest["dtype"])
    ltab, ptab = int(ii[ns.H_LTAB]), int(ii[ns.H_PTAB])
    if hasattr(ns, "NQ_LIF"):  # layout 1 (format-1 files): its frozen parameter counts
        nq = {"input": 0, "lif": ns.NQ_LIF, "cuba_lif": ns.NQ_CUBA, "adaptive_lif": ns.NQ_ADLIF,
              "if": ns.NQ_IF, "izhikevich": ns.NQ_IZH, "hh": ns.NQ_HH}  # fmt: skip
    else:  # the running layout: each model's packed scalars
        from edgesnn.core.models import MODELS

        nq = {name: len(md.slots) for name, md in MODELS.items()}
    arrays: dict[str, np.ndarray] = {}
    layers: list[dict[str, Any]] = []
    state: dict[str, dict[str, str]] = {}
    sizes: list[int] = []
    max_delay = 0
    for li, m in enumerate(manifest["layers"]):
        r = ltab + li * ns.LR
        name, model, n = m["name"], m["model"], int(ii[r + ns.L_N])
        sizes.append(n)
        entry: dict[str, Any] = {"name": name, "n": n, "model": model}
        params = dict(m.get("params") or {})
        if model != "input":
            poff = int(ii[r + ns.L_POFF]) + nq[model]
            bias = fp[poff : poff + n]
            given = np.asarray(params.get("i_bias", 0.0), dtype=np.float64)
            if given.size not in (1, n) or not np.array_equal(
                np.broadcast_to(given, (n,)).astype(dtype), bias
            ):
                params["i_bias"] = bias.astype(np.float64)  # the packed values are the truth
        for key, value in params.items():
            if isinstance(value, list | np.ndarray):  # per-neuron values (i_bias, v_init)
                value = _ref(arrays, f"layer/{name}/{key}", np.asarray(value, np.float64))
            entry[key] = value
        layers.append(entry)
        soff = int(ii[r + ns.L_SOFF])
        st = {}
        for k, var in enumerate(m.get("state") or ()):
            key = f"layer/{name}/{var}"
            arrays[key] = fs[soff + k * n : soff + (k + 1) * n].astype(dtype)
            st[var] = key
        if st:
            state[name] = st
    names = [p["name"] for p in manifest["projections"]]
    projections = []
    for pi, m in enumerate(manifest["projections"]):
        r = ptab + pi * ns.PR
        key = m["name"] if names.count(m["name"]) == 1 else f"{m['name']}#{pi}"
        base = f"proj/{key}/"
        code = int(ii[r + ns.P_RULE])
        n_pre, n_post = sizes[int(ii[r + ns.P_PRE])], sizes[int(ii[r + ns.P_POST])]
        woff, nw = int(ii[r + ns.P_WOFF]), int(ii[r + ns.P_NW])
        wv = w[woff : woff + nw]
        d0 = int(ii[r + ns.P_DELAY])
        max_delay = max(max_delay, d0)
        e: dict[str, Any] = {
            "source": m["source"],
            "target": m["target"],
            "rule": "",
            "synapse": "inh" if int(ii[r + ns.P_CH]) == 1 else "exc",
            "gain": float(fp[int(ii[r + ns.P_GOFF])]),
            "delay_steps": d0,
        }
        if code == ns.RULE_DENSE:
            e["rule"] = "dense"
            e["weight"] = _ref(arrays, base + "w", wv.reshape(n_pre, n_post))
        elif code == ns.RULE_SPARSE:
            po = int(ii[r + ns.P_PTROFF])
            ptr = ii[po : po + n_pre + 1]
            nsyn = int(ptr[-1])
            io, dmode, do = (int(ii[r + k]) for k in (ns.P_IDXOFF, ns.P_DMODE, ns.P_DOFF))
            if dmode == 2:  # every pair in row-major order, delays as bytes (no targets)
                post = np.tile(np.arange(n_post, dtype=np.int32), n_pre)
            else:
                post = ij[io : io + nsyn].astype(np.int32)
            pre = np.repeat(np.arange(n_pre, dtype=np.int32), np.diff(ptr))
            ws = wv[:nsyn]
            dl = None
            if dmode == 1:
                dl = ij[do : do + nsyn].astype(np.int32)
            elif dmode == 2:  # the same int32 named array as P_DMODE 1: the file is unchanged
                dl = ij[do : do + (nsyn + 3) // 4].view(np.uint8)[:nsyn].astype(np.int32)
            if dl is not None:
                max_delay = max(max_delay, int(dl.max()) if dl.size else 0)
            declared = m.get("rule")
            full = nsyn == n_pre * n_post and np.array_equal(post, np.tile(
                np.arange(n_post, dtype=np.int32), n_pre))  # fmt: skip
            diag = nsyn == n_pre == n_post and np.array_equal(post, np.arange(n_pre)) and \
                np.array_equal(pre, np.arange(n_pre))  # fmt: skip
            if declared == "dense" and full:  # dense with per-synapse delays
                e["rule"] = "dense"
                e["weight"] = _ref(arrays, base + "w", ws.reshape(n_pre, n_post))
                if dl is not None:
                    e["delay_steps"] = _ref(arrays, base + "delay", dl.reshape(n_pre, n_post))
            elif declared == "one_to_one" and diag:
                e["rule"] = "one_to_one"
                e["weight"] = _ref(arrays, base + "w", ws)
                if dl is not None:
                    e["delay_steps"] = _ref(arrays, base + "delay", dl)
            else:  # sparse, and random (its edges as drawn)
                e["rule"] = "sparse"
                e["pre"] = _ref(arrays, base + "pre", pre)
                e["post"] = _ref(arrays, base + "post", post)
                e["weight"] = _ref(arrays, base + "w", ws)
                if dl is not None:
                    e["delay_steps"] = _ref(arrays, base + "delay", dl)
        elif code == ns.RULE_ONE:
            e["rule"] = "one_to_one"
            e["weight"] = _ref(arrays, base + "w", wv[:n_pre])
        elif code == ns.RULE_WTA:
            e["rule"] = "wta"
            e["weight"] = float(wv[0])
        else:
            cin, hin, win = (int(ii[r + k]) for k in (ns.P_CIN, ns.P_HIN, ns.P_WIN))
            e["in_shape"] = [cin, hin, win]
            e["stride"] = int(ii[r + ns.P_STRIDE])
            if code == ns.RULE_CONV:
                e["rule"] = "conv2d"
                kh, kw = int(ii[r + ns.P_KH]), int(ii[r + ns.P_KW])
                cout = int(ii[r + ns.P_COUT])
                e["kernel"] = _ref(arrays, base + "w", wv.reshape(cout, cin, kh, kw))
                e["padding"] = int(ii[r + ns.P_PAD])
            else:
                e["rule"] = "pool2d"
                e["size"] = int(ii[r + ns.P_KH])
                e["weight"] = float(wv[0])
        if m.get("plasticity") is not None:
            e["plasticity"] = m["plasticity"]
        projections.append(e)
    network = {
        "dt_us": int(manifest["dt_us"]),
        "seed": int(manifest.get("seed", 0)),
        "dtype": str(manifest["dtype"]),
        "max_delay_steps": max(int(manifest.get("max_delay_steps", 255)), max_delay),
        "inputs": list(manifest.get("inputs", [])),
        "outputs": list(manifest.get("outputs", [])),
        "layers": layers,
        "projections": projections,
    }
    extra = {k: v for k, v in manifest.items() if k not in _V1_KEYS}
    for k in _V2_KEYS:
        if k in extra:
            raise ValueError(f"manifest key {k!r} is reserved by the model file format")
    out = {"format": FORMAT, "version": VERSION, "network": network, "state": state, **extra}
    return out, arrays


def write(net: Network, path: str | Path) -> None:
    """Write `net` as a format-2 model file (weights as they are now, state as after reset),
    atomically (temp file + rename)."""
    from edgesnn.core import layout

    path = Path(path)
    packed = {"fs": net._fs0, "fp": net.fp, "w": net.w, "ii": net._ii0, "ij": net.ij}
    manifest, arrays = unpack(layout, net.manifest, packed)
    raw = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    tmp = path.with_name(path.name + ".tmp.npz")
    with open(tmp, "wb") as f:
        np.savez(f, manifest=raw, **arrays)
    tmp.replace(path)


def read(path: str | Path) -> Network:
    """Read a model file of format 1 or 2 (no pickle); FormatError naming the file when it is
    not one, is damaged, or is of a newer format than this reader."""
    from edgesnn.core import fileformat_v1 as v1
    from edgesnn.core.network import _one_line, _read_npz

    path = Path(path)
    where = str(path)
    data = _read_npz(path)
    if "manifest" not in data:
        raise FormatError("model file lacks ['manifest']", path=where)
    try:
        manifest = json.loads(data["manifest"].tobytes().decode())
    except (ValueError, RecursionError) as e:
        raise FormatError(f"bad manifest: {_one_line(e)}", path=where) from None
    if not isinstance(manifest, dict):
        raise FormatError("manifest is not a JSON object", path=where)
    if manifest.get("format") != FORMAT:
        raise FormatError(f"format {manifest.get('format')!r} is not {FORMAT!r}", path=where)
    version = manifest.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        raise FormatError(
            f"model format version {version} is newer than this edgesnn reads (format "
            f"versions 1 to {VERSION}): upgrade edgesnn to load it",
            path=where,
        )
    if version == 1:
        missing = [k for k in ("fs", "fp", "w", "ii", "ij") if k not in data]
        if missing:
            raise FormatError(f"model file lacks {missing}", path=where)
        v1.check_layout(manifest, where)
        v1.check_manifest(manifest, where)
        dtype = np.dtype(manifest["dtype"])
        a = {k: data[k].astype(dtype) for k in ("fs", "fp", "w")}
        a["ii"] = data["ii"].astype(np.int64)
        a["ij"] = data["ij"].astype(np.int32)
        v1.check_tables(a, manifest, where)
        try:
            manifest, arrays = unpack(v1, manifest, a)
        except (ValueError, TypeError, KeyError, IndexError, OverflowError) as e:
            raise FormatError(f"format-1 tables: {_one_line(e)}", path=where) from None
    elif version == VERSION:
        arrays = {k: v for k, v in data.items() if k != "manifest"}
    else:
        raise FormatError(
            f"model format version {version!r} is not supported (this edgesnn reads format "
            f"versions 1 to {VERSION})",
            path=where,
        )
    try:
        return build(manifest, arrays, where)
    except FormatError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError) as e:
        raise FormatError(f"bad network description: {_one_line(e)}", path=where) from None


def _limits(spec: Any, where: str) -> None:
    """Refuse descriptions that would need more memory or time than a model file may ask for
    (checked before anything is packed)."""
    from edgesnn.core.network import MAX_MODEL_BYTES, MAX_NEURONS, MAX_SLOTS, MAX_SUBSTEPS

    cap = MAX_MODEL_BYTES // 8
    sizes = {lay.name: lay.n for lay in spec.layers}
    if sum(sizes.values()) > MAX_NEURONS:
        raise FormatError(f"more than {MAX_NEURONS} neurons", path=where)
    if not 0 <= spec.max_delay_steps < MAX_SLOTS:
        raise FormatError(f"max_delay_steps {spec.max_delay_steps} not in [0, {MAX_SLOTS})",
                          path=where)  # fmt: skip
    slots = dict.fromkeys(sizes, 1)
    for i, p in enumerate(spec.projections):
        n_pre, n_post = sizes.get(p.source, 0), sizes.get(p.target, 0)
        if p.rule in ("dense", "random", "wta") and n_pre * n_post > cap:
            raise FormatError(f"projections[{i}]: {n_pre} x {n_post} synapses", path=where)
        d = np.asarray(p.get("delay_steps", 0))
        if d.size and d.dtype.kind in "iuf" and p.target in slots:
            top = float(np.max(d))
            if not top < MAX_SLOTS:
                raise FormatError(f"projections[{i}].delay_steps up to {top}", path=where)
            slots[p.target] = max(slots[p.target], int(top) + 1)
    if sum(2 * slots[k] * n for k, n in sizes.items()) > cap:
        raise FormatError("delay ring buffers beyond the model size limit", path=where)
    dt_ms = spec.dt_us / 1000.0
    for i, lay in enumerate(spec.layers):
        sub = lay.params.get("max_substep_ms")
        if isinstance(sub, int | float) and sub > 0 and \
                not math.ceil(dt_ms / sub - 1e-9) <= MAX_SUBSTEPS:  # fmt: skip
            raise FormatError(f"layers[{i}].max_substep_ms {sub}: more than {MAX_SUBSTEPS} "
                              "sub-steps per step", path=where)  # fmt: skip


def build(manifest: dict[str, Any], arrays: dict[str, np.ndarray], where: str) -> Network:
    """The network of a format-2 manifest and its named arrays: described as a NetworkSpec,
    built, then given the stored weights and state."""
    from edgesnn.core.network import Network
    from edgesnn.core.spec import LayerSpec, NetworkSpec, ProjectionSpec

    d = manifest.get("network")
    if not isinstance(d, dict) or not all(k in d for k in _NET_KEYS):
        raise FormatError(f"manifest 'network' is not an object with {list(_NET_KEYS)}",
                          path=where)  # fmt: skip

    def value(v: Any, at: str) -> Any:
        if not (isinstance(v, dict) and "array" in v):
            return v
        name, shape = v.get("array"), v.get("shape")
        if not isinstance(name, str) or name not in arrays:
            raise FormatError(f"{at}: no array {name!r} in the file", path=where)
        a = arrays[name]
        if a.dtype.kind not in "fiu":
            raise FormatError(f"{at}: array {name!r} has dtype {a.dtype}", path=where)
        if shape is not None:
            if not isinstance(shape, list) or not all(
                isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in shape
            ) or math.prod(shape) != a.size:  # fmt: skip
                raise FormatError(f"{at}: shape {shape!r} does not fit array {name!r} "
                                  f"({a.size} values)", path=where)  # fmt: skip
            a = a.reshape(shape)
        return a

    def ints(v: Any, at: str, lo: int, hi: int) -> int:
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise FormatError(f"network.{at} = {v!r} is not an integer in [{lo}, {hi}]",
                              path=where)  # fmt: skip
        return v

    if d["dtype"] not in ("float32", "float64"):
        raise FormatError(f"network.dtype {d['dtype']!r} is not float32/float64", path=where)
    spec = NetworkSpec(
        dt_us=ints(d["dt_us"], "dt_us", 1, 10**9 - 1),
        seed=ints(d["seed"], "seed", -(2**63), 2**63 - 1),
        dtype=d["dtype"],
        max_delay_steps=ints(d["max_delay_steps"], "max_delay_steps", 0, 1 << 40),
    )
    for key in ("layers", "projections"):
        if not isinstance(d[key], list) or not all(isinstance(x, dict) for x in d[key]):
            raise FormatError(f"network.{key} is not a list of objects", path=where)
    for key in ("inputs", "outputs"):
        if not isinstance(d[key], list) or not all(isinstance(x, str) for x in d[key]):
            raise FormatError(f"network.{key} is not a list of names", path=where)
    for i, lay in enumerate(d["layers"]):
        at = f"layers[{i}]"
        if not isinstance(lay.get("name"), str) or not isinstance(lay.get("model"), str):
            raise FormatError(f"network.{at} needs a name and a model", path=where)
        params = {k: value(v, f"network.{at}.{k}") for k, v in lay.items()
                  if k not in ("name", "n", "model")}  # fmt: skip
        n = ints(lay.get("n"), f"{at}.n", 1, 1 << 40)
        spec.layers.append(LayerSpec(lay["name"], n, lay["model"], params))
    for i, pr in enumerate(d["projections"]):
        at = f"projections[{i}]"
        if not all(isinstance(pr.get(k), str) for k in ("source", "target", "rule")):
            raise FormatError(f"network.{at} needs source, target and rule", path=where)
        params = {k: value(v, f"network.{at}.{k}") for k, v in pr.items()
                  if k not in ("source", "target", "rule")}  # fmt: skip
        spec.projections.append(ProjectionSpec(pr["source"], pr["target"], pr["rule"], params))
    spec.outputs = list(d["outputs"])
    _limits(spec, where)
    try:
        spec.check("network")
    except ConfigError as e:
        first = e.problems[0] if getattr(e, "problems", None) else e
        raise FormatError(f"invalid network description: {_short(str(first))}",
                          path=where) from None  # fmt: skip
    if spec.inputs != d["inputs"]:
        raise FormatError(f"network.inputs {d['inputs']} are not the input layers "
                          f"{spec.inputs}", path=where)  # fmt: skip
    net = Network(spec)
    # the stored weights, in the packed order (sparse edges sorted by pre, as the builder does)
    for i, p in enumerate(spec.projections):
        w = p.get("kernel") if p.rule == "conv2d" else p.get("weight")
        if not isinstance(w, np.ndarray):
            continue
        flat = net.weights(i).reshape(-1)
        vals = w.reshape(-1)
        if p.rule == "sparse":
            vals = vals[np.argsort(np.asarray(p.get("pre")), kind="stable")]
        if vals.size == flat.size and not np.array_equal(flat, vals):
            flat[:] = vals  # (sparse weights also stored as dense rows are read-only: equal)
    # the state after reset
    st = manifest.get("state", {})
    if not isinstance(st, dict):
        raise FormatError("manifest 'state' is not an object", path=where)
    views = net.state
    for layer, variables in st.items():
        if layer not in views or not isinstance(variables, dict):
            raise FormatError(f"state of unknown layer {layer!r}", path=where)
        for var, name in variables.items():
            at = f"state.{layer}.{var}"
            if var not in views[layer]:
                raise FormatError(f"{at}: no such state variable", path=where)
            a = value({"array": name}, at)
            if a.shape != views[layer][var].shape:
                raise FormatError(f"{at}: {a.size} values for {views[layer][var].size} neurons",
                                  path=where)  # fmt: skip
            views[layer][var][:] = a
    net._fs0[:] = net.fs
    net.manifest.update({k: v for k, v in manifest.items() if k not in _V2_KEYS + _V1_KEYS})
    return net


def _short(text: str, limit: int = 240) -> str:
    """`text` on one line, at most `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
