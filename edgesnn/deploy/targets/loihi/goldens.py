"""Check the Loihi emulation against golden vectors of lava-nc's bit-accurate models.

A case is one ``.npz`` in the format of ../shared/data/loihi_lava (README there): input spikes
``inp`` (n_in, T), per layer k the lava ``Dense``/``DelayDense`` arguments (``W{k}`` (post, pre)
mantissas, ``e{k}``, ``nwb{k}``, ``sm{k}``, optional ``D{k}`` delays) and ``LIF`` arguments
(``du{k}``, ``dv{k}``, ``vth{k}``, ``bm{k}``, ``be{k}``), and lava's recorded ``s{k}``, ``u{k}``,
``v{k}`` (n{k}, T) with ``cfg`` ("loihi2" or "loihi1"). `load_case` turns a case into a
`QuantizedModel` with the parameters of a profile (by default the shipped profile named by
``cfg``), `run_case` runs the `Emulator` step by step and compares spikes, u and v at every
step. Column t is step t; every hop costs one step (lava's Dense sends the previous step's
sums), so the case maps onto the emulator without any shift.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.deploy.emulator import Emulator
from edgesnn.deploy.profile import Profile, load_profile
from edgesnn.deploy.quantize import QLayer, QProjection, QuantizedModel
from edgesnn.deploy.targets.loihi.quantize import loihi_params
from edgesnn.errors import FormatError

_LAYER_KEYS = ("W", "e", "nwb", "sm", "du", "dv", "vth", "bm", "be", "s", "u", "v")


def read_case(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a case file; FormatError naming the file and the missing key."""
    try:
        with np.load(path, allow_pickle=False) as z:
            c = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise FormatError(f"not a golden-vector npz ({e})", path=str(path)) from None
    for key in ("inp", "nlayers", "cfg"):
        if key not in c:
            raise FormatError(f'case lacks "{key}" (see loihi_lava/README.md)', path=str(path))
    for k in range(int(c["nlayers"])):
        for key in _LAYER_KEYS:
            if f"{key}{k}" not in c:
                raise FormatError(f'case lacks "{key}{k}" (layer {k})', path=str(path))
    return c


def load_case(c: dict[str, np.ndarray], profile: Profile) -> QuantizedModel:
    """The network of a case as a quantized model of `profile` (family loihi_cuba): lava's LIF
    has no refractory period, so every layer's counter is 1 (no held step)."""
    if profile.family != "loihi_cuba":
        raise ValueError(f"profile {profile.name} is family {profile.family}, not loihi_cuba")
    inp = c["inp"]
    n_in = int(inp.shape[0])
    layers = [QLayer("in", n_in, "input", bias=np.zeros(n_in, np.int64),
                     bias_mant=np.zeros(n_in, np.int64), bias_exp=np.zeros(n_in, np.int64))]
    projs = []
    prev, n_prev = "in", n_in
    for k in range(int(c["nlayers"])):
        name = f"L{k}"
        W = c[f"W{k}"].astype(np.int64)
        n = int(W.shape[0])
        if W.shape != (n, n_prev):
            raise FormatError(f"W{k} has shape {W.shape}, expected ({n}, {n_prev})")
        bm = c[f"bm{k}"].astype(np.int64)
        be = c[f"be{k}"].astype(np.int64)
        params = loihi_params(profile, int(c[f"du{k}"]), int(c[f"dv{k}"]), int(c[f"vth{k}"]), 1)
        layers.append(QLayer(name, n, "lif", params, bm << be, bm, be))
        D = c[f"D{k}"].astype(np.int64) if f"D{k}" in c else np.zeros_like(W)
        post, pre = np.nonzero(W)
        projs.append(QProjection(
            f"{prev}_{name}", prev, name, pre.astype(np.int64), post.astype(np.int64),
            W[post, pre], D[post, pre].astype(np.int32), np.zeros(post.size, np.int8),
            W[post, pre].astype(np.float64), W[post, pre].astype(np.float64),
            exp=int(c[f"e{k}"]), sign_mode=str(c[f"sm{k}"]),
            num_weight_bits=int(c[f"nwb{k}"])))  # fmt: skip
        prev, n_prev = name, n
    return QuantizedModel(profile.name, profile.family, 1000, layers, projs, ["in"], [prev],
                          delay_offset=int(profile["delay"]["offset"]))  # fmt: skip


def run_case(c: dict[str, np.ndarray], profile: Profile) -> dict[str, Any]:
    """Emulate a case and compare with lava's s, u, v: ``identical`` and the first difference
    (step, layer, neuron, variable, lava's value, the emulator's), with the counters."""
    qm = load_case(c, profile)
    em = Emulator(qm)
    inp = c["inp"]
    T = int(inp.shape[1])
    L = int(c["nlayers"])
    got = {f"{x}{k}": np.zeros((qm.layers[k + 1].n, T), np.int64) for k in range(L) for x in "suv"}
    for t in range(T):
        em.step(np.nonzero(inp[:, t])[0])
        for k in range(L):
            i = k + 1
            got[f"u{k}"][:, t] = em.u[i]
            got[f"v{k}"][:, t] = em.v[i]
            got[f"s{k}"][em.spk[i][: em.nspk[i]], t] = 1
    first: dict[str, Any] | None = None
    for t in range(T):
        for k in range(L):
            for x in "suv":
                want = c[f"{x}{k}"][:, t].astype(np.int64)
                bad = np.nonzero(got[f"{x}{k}"][:, t] != want)[0]
                if bad.size and first is None:
                    j = int(bad[0])
                    first = {"step": t, "layer": k, "neuron": j, "var": x,
                             "lava": int(want[j]), "emulator": int(got[f"{x}{k}"][j, t])}
            if first is not None:
                break
        if first is not None:
            break
    return {"identical": first is None, "steps": T, "layers": L,
            "neurons": [qm.layers[k + 1].n for k in range(L)],
            "spikes": [int(c[f"s{k}"].sum()) for k in range(L)],
            "first_difference": first, "counters": em.counters}  # fmt: skip


def check_dir(folder: str | Path, profile: str | Path | None = None
              ) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Check every ``*.npz`` case of `folder` (sorted by name); yields one result per case:
    ``case``, ``cfg``, ``profile``, ``identical``, ``first_difference`` (or ``error`` when the
    file is not a readable case). The profile is `profile` if given, else the shipped profile
    named by the case's ``cfg``."""
    cache: dict[str, Profile] = {}
    for path in sorted(Path(folder).glob("*.npz")):
        res: dict[str, Any] = {"case": path.stem}
        try:
            c = read_case(path)
            res["cfg"] = str(c["cfg"])
            pname = str(profile) if profile is not None else res["cfg"]
            if pname not in cache:
                cache[pname] = load_profile(pname)
            res["profile"] = cache[pname].name
            res.update(run_case(c, cache[pname]))
        except (FormatError, ValueError, KeyError, IndexError) as e:
            res.update(identical=False, error=str(e))
        yield res
