"""Exports of a deployed model: NIR (HDF5) with the quantization alongside, and the chip
target's toolchain files (each target's ``export.py``: Loihi ``loihi/``, SpiNNaker ``pynn/``,
Xylo ``xylo/``).

NIR (`write_nir`): the NIR HDF5 layout (root ``version``, group ``node`` = the NIRGraph with
``nodes/<name>/...``, ``edges`` and ``type`` datasets), float parameters in forward-Euler form
(the snnTorch convention: ``tau = dt/k``, ``r = 1/k`` for LIF; ``tau_syn = dt/(1-d)``,
``w_in = tau_syn/dt``, ``tau_mem = dt/k``, ``r = 1`` for CubaLIF), weights (out, in), extra
synaptic delays as ``Delay`` nodes (seconds), and each node's integer parameters in its
``metadata`` group and in ``model.nir.quant.json`` beside it (NIR has no field for them and no
reader may rely on metadata). Graph metadata holds ``dt_s`` and ``per_hop_delay_steps = 1``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.deploy.floatmodel import FloatModel
from edgesnn.deploy.profile import Profile
from edgesnn.deploy.quantize import QuantizedModel, layer_factors

NIR_VERSION = "1.0.7"


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - h5py is a dependency
        raise RuntimeError("NIR export needs h5py (pip install h5py)") from e
    return h5py


def _put(g: Any, key: str, val: Any) -> None:
    if isinstance(val, dict):
        sub = g.create_group(key)
        for k, v in val.items():
            _put(sub, k, v)
    elif isinstance(val, str):
        g.create_dataset(key, data=val)
    elif isinstance(val, list | tuple) and val and isinstance(val[0], list | tuple):
        g.create_dataset(key, data=np.asarray(val, dtype="S"))
    else:
        g.create_dataset(key, data=np.asarray(val))


def nir_graph(fm: FloatModel, qm: QuantizedModel) -> dict[str, Any]:
    """The NIR graph as nested dicts (what `write_nir` stores)."""
    dt_s = fm.dt_us * 1e-6
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[tuple[str, str]] = []
    qparams = {lay.name: {"params": lay.params, "bias_mant": lay.bias_mant.tolist(),
                          "bias_exp": lay.bias_exp.tolist()} for lay in qm.layers}  # fmt: skip
    for lay in fm.layers:
        n = lay.n
        if lay.model == "input":
            nodes[lay.name] = {"type": "Input", "shape": np.asarray([n])}
            continue
        f = layer_factors(lay, fm.dt_us)
        p = lay.params
        k = f["k"] or 1.0
        meta = {"edgesnn_model": lay.model, "quantized": json.dumps(qparams[lay.name])}
        v_th = np.full(n, float(p["v_th"]), np.float32)
        v_reset = np.full(n, float(p.get("v_reset", 0.0)), np.float32)
        if lay.model != "if" and p.get("reset") == "subtract":
            meta["edgesnn_reset"] = "subtract"  # as for IF: no NIR field, kept in metadata
        if lay.model == "if":
            # NIR's IF integrates dt * r * x and fires at v > threshold; the core adds x and fires
            # at v >= v_th: r = 1/dt and the float just below v_th say the same thing. NIR's IF
            # resets to v_reset; reset by subtraction has no NIR field: it is kept in metadata
            # (and the layer is approximated by a reset to v_reset for other tools)
            meta["edgesnn_reset"] = str(p.get("reset", "subtract"))
            nodes[lay.name] = {
                "type": "IF", "r": np.full(n, 1.0 / dt_s, np.float32),
                "v_threshold": np.nextafter(v_th, np.float32(-np.inf)),
                "v_reset": v_reset, "metadata": meta,
            }  # fmt: skip
        elif lay.model == "cuba_lif":
            d = f["d_exc"]
            tau_syn = dt_s / (1 - d) if d < 1 else float("inf")
            nodes[lay.name] = {
                "type": "CubaLIF", "tau_syn": np.full(n, tau_syn, np.float32),
                "tau_mem": np.full(n, dt_s / k, np.float32), "r": np.ones(n, np.float32),
                "v_leak": (float(p.get("v_rest", 0.0)) + lay.bias).astype(np.float32),
                "v_threshold": v_th, "v_reset": v_reset,
                "w_in": np.full(n, tau_syn / dt_s, np.float32), "metadata": meta,
            }  # fmt: skip
        else:
            nodes[lay.name] = {
                "type": "LIF", "tau": np.full(n, dt_s / k, np.float32),
                "r": np.full(n, 1.0 / k, np.float32),
                "v_leak": (float(p.get("v_rest", 0.0)) + lay.bias).astype(np.float32),
                "v_threshold": v_th, "v_reset": v_reset, "metadata": meta,
            }  # fmt: skip
    sizes = {lay.name: lay.n for lay in fm.layers}
    for pi, (pr, qp) in enumerate(zip(fm.projections, qm.projections)):
        base = f"proj{pi}_{pr.source}_{pr.target}"
        for d in np.unique(pr.delay) if pr.delay.size else [0]:
            sel = pr.delay == d
            W = np.zeros((sizes[pr.target], sizes[pr.source]), np.float32)
            np.add.at(W, (pr.post[sel], pr.pre[sel]), pr.w[sel])
            name = base if np.all(pr.delay == d) else f"{base}_d{int(d)}"
            qmeta = {"exp": qp.exp, "sign_mode": qp.sign_mode,
                     "w_int": json.dumps(qp.w[sel].tolist()),
                     "pre": json.dumps(qp.pre[sel].tolist()),
                     "post": json.dumps(qp.post[sel].tolist()),
                     "ch": json.dumps(qp.ch[sel].tolist()),
                     "chip_delay": json.dumps(qp.delay[sel].tolist())}  # fmt: skip
            nodes[name] = {"type": "Affine", "weight": W,
                           "bias": np.zeros(sizes[pr.target], np.float32),
                           "metadata": {"edgesnn_projection": pr.name, **qmeta}}  # fmt: skip
            src = pr.source
            if d > 0:
                dn = f"{name}_delay"
                nodes[dn] = {"type": "Delay",
                             "delay": np.full(sizes[pr.source], d * dt_s, np.float32)}
                edges.append((src, dn))
                src = dn
            edges.append((src, name))
            edges.append((name, pr.target))
    for o in fm.outputs:
        nodes[f"output_{o}"] = {"type": "Output", "shape": np.asarray([sizes[o]])}
        edges.append((o, f"output_{o}"))
    return {"type": "NIRGraph", "nodes": nodes, "edges": edges,
            "metadata": {"dt_s": dt_s, "per_hop_delay_steps": 1, "profile": qm.profile,
                         "family": qm.family, "producer": "edgesnn deploy"}}  # fmt: skip


def write_nir(fm: FloatModel, qm: QuantizedModel, path: str | Path) -> Path:
    """Write `model.nir` (HDF5) and `model.nir.quant.json` beside it."""
    h5py = _h5py()
    path = Path(path)
    g = nir_graph(fm, qm)
    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        f.create_dataset("version", data=NIR_VERSION)
        _put(f, "node", g)
    tmp.replace(path)
    side = {"profile": qm.profile, "family": qm.family, "dt_us": qm.dt_us,
            "layers": {lay.name: {"params": lay.params, "bias_mant": lay.bias_mant.tolist(),
                                  "bias_exp": lay.bias_exp.tolist()}
                       for lay in qm.layers if not lay.is_input},
            "projections": {p.name: {"exp": p.exp, "sign_mode": p.sign_mode,
                                     "w_int": p.w.tolist(), "pre": p.pre.tolist(),
                                     "post": p.post.tolist(), "ch": p.ch.tolist(),
                                     "chip_delay": p.delay.tolist()}
                            for p in qm.projections}}  # fmt: skip
    path.with_name(path.name + ".quant.json").write_text(json.dumps(side), encoding="utf-8")
    return path


def read_nir(path: str | Path) -> dict[str, Any]:
    """Read a NIR HDF5 file into nested dicts (strings decoded, arrays as numpy)."""
    h5py = _h5py()

    def walk(g: Any) -> Any:
        out: dict[str, Any] = {}
        for k, v in g.items():
            if isinstance(v, h5py.Group):
                out[k] = walk(v)
            else:
                x = v[()]
                if isinstance(x, bytes):
                    x = x.decode()
                elif isinstance(x, np.ndarray) and x.dtype.kind == "S":
                    x = [[b.decode() for b in row] for row in x] if x.ndim == 2 else \
                        [b.decode() for b in x]  # fmt: skip
                out[k] = x
        return out

    with h5py.File(path, "r") as f:
        ver = f["version"][()]
        return {"version": ver.decode() if isinstance(ver, bytes) else ver,
                "node": walk(f["node"])}  # fmt: skip


# --- toolchain files ---------------------------------------------------------------------------


def write_toolchain(qm: Any, prof: Profile, out: Path) -> list[str]:
    """The chip target's toolchain file(s) in out; returns their relative names."""
    from edgesnn.deploy.targets import target

    return target(qm.family).export(qm, prof, out)
