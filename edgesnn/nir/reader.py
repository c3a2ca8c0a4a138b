"""Read a NIR file (HDF5, the layout `nir.write` produces) into plain nodes, with h5py only.

Layout: root dataset ``version``; root group ``node`` is the top-level NIRGraph with ``type``
(``b"NIRGraph"``), ``nodes/<name>/...`` (each node a group with a ``type`` dataset and its
parameters as datasets) and ``edges`` (pairs of byte strings), optionally ``metadata``. Bad
files raise `FormatError` naming the HDF5 object and, where the dataset is stored contiguously,
its byte offset in the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.errors import FormatError


@dataclass
class NirNode:
    """One NIR node: its name, type tag and parameters (arrays, scalars or strings)."""

    name: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class NirGraph:
    """A NIR graph as read from a file: nodes by name, edges (source, target), metadata."""

    nodes: dict[str, NirNode]
    edges: list[tuple[str, str]]
    metadata: dict[str, Any]
    version: str


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - h5py is a dependency
        raise RuntimeError("NIR import needs h5py (pip install h5py)") from e
    return h5py


def _offset(ds: Any) -> int | None:
    try:
        off = ds.id.get_offset()
    except Exception:  # noqa: BLE001 - compact/chunked datasets have no single offset
        return None
    return int(off) if off is not None else None


def _decode(x: Any) -> Any:
    if isinstance(x, bytes):
        return x.decode("utf-8", "replace")
    if isinstance(x, np.ndarray) and x.dtype.kind in "OS":
        flat = [_decode(v) for v in x.ravel()]
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(x.shape)
    return x


def _walk(g: Any, h5py: Any, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, v in g.items():
        if isinstance(v, h5py.Group):
            out[key] = _walk(v, h5py, f"{path}/{key}")
        else:
            try:
                out[key] = _decode(v[()])
            except Exception as e:  # noqa: BLE001 - any unreadable dataset is a format error
                raise FormatError(
                    f"dataset {path}/{key} cannot be read ({e})", offset=_offset(v)
                ) from None
    return out


def read_nir_graph(path: str | Path) -> NirGraph:
    """Read the top-level graph of a NIR file (FormatError when it is not one)."""
    h5py = _h5py()
    p = str(path)
    try:
        f = h5py.File(p, "r")
    except FileNotFoundError:
        raise
    except OSError as e:
        raise FormatError(f"not an HDF5 file ({e})", offset=0, path=p) from None
    with f:
        if "node" not in f or not isinstance(f["node"], h5py.Group):
            raise FormatError("no root group 'node': not a NIR file", path=p)
        version = ""
        if "version" in f:
            version = str(_decode(f["version"][()]))
        root = f["node"]
        graph = _graph_from(root, h5py, "/node", p)
        return NirGraph(graph[0], graph[1], graph[2], version)


def _graph_from(
    g: Any, h5py: Any, where: str, p: str
) -> tuple[dict[str, NirNode], list[tuple[str, str]], dict[str, Any]]:
    gtype = _decode(g["type"][()]) if "type" in g else None
    if gtype != "NIRGraph":
        raise FormatError(f"{where}/type is {gtype!r}, expected 'NIRGraph'", path=p)
    if "nodes" not in g or not isinstance(g["nodes"], h5py.Group):
        raise FormatError(f"{where}/nodes is missing", path=p)
    nodes: dict[str, NirNode] = {}
    for name, ng in g["nodes"].items():
        nw = f"{where}/nodes/{name}"
        if not isinstance(ng, h5py.Group):
            raise FormatError(f"{nw} is not a group", path=p, offset=_offset(ng))
        if "type" not in ng:
            raise FormatError(f"{nw} has no 'type'", path=p)
        ntype = _decode(ng["type"][()])
        if not isinstance(ntype, str):
            raise FormatError(f"{nw}/type is not a string", path=p, offset=_offset(ng["type"]))
        params: dict[str, Any] = {}
        meta: dict[str, Any] = {}
        for key, v in ng.items():
            if key == "type":
                continue
            if key == "metadata" and isinstance(v, h5py.Group):
                meta = _walk(v, h5py, f"{nw}/metadata")
            elif isinstance(v, h5py.Group):
                # nested graphs and dict-valued fields (e.g. input_type) stay as dicts
                params[key] = _walk(v, h5py, f"{nw}/{key}")
                if ntype == "NIRGraph":
                    params[key]["__group__"] = True
            else:
                try:
                    params[key] = _decode(v[()])
                except Exception as e:  # noqa: BLE001
                    raise FormatError(
                        f"dataset {nw}/{key} cannot be read ({e})", path=p, offset=_offset(v)
                    ) from None
        nodes[str(name)] = NirNode(str(name), ntype, params, meta)
    edges: list[tuple[str, str]] = []
    if "edges" in g:
        ds = g["edges"]
        raw = _decode(ds[()])
        arr = np.asarray(raw, dtype=object)
        if arr.size == 0:
            arr = arr.reshape(0, 2)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise FormatError(
                f"{where}/edges has shape {arr.shape}, expected (n, 2)", path=p, offset=_offset(ds)
            )
        for i, (a, b) in enumerate(arr):
            if not isinstance(a, str) or not isinstance(b, str):
                raise FormatError(
                    f"{where}/edges[{i}] is not a pair of strings", path=p, offset=_offset(ds)
                )
            edges.append((a, b))
    meta = _walk(g["metadata"], h5py, f"{where}/metadata") if "metadata" in g else {}
    return nodes, edges, meta
