"""Loihi export for lava-nc, in `loihi/`:
``network.json`` (per layer the lava LIF arguments ``du``, ``dv``, ``vth``,
``refractory_delay``; per projection ``weight_exp``, ``num_weight_bits``, ``sign_mode``) and
``weights.npz`` (per projection ``<name>.weights`` mantissas and ``<name>.delays`` as dense
(n_post, n_pre) int arrays, lava's Dense orientation; per layer ``<name>.bias_mant`` and
``<name>.bias_exp``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgesnn.deploy.profile import Profile
from edgesnn.deploy.quantize import QuantizedModel


def export(qm: QuantizedModel, prof: Profile, out: Path) -> list[str]:
    """The target's toolchain files in out (`write_loihi` into out/loihi)."""
    return write_loihi(qm, prof, out / "loihi")


def write_loihi(qm: QuantizedModel, prof: Profile, out: Path) -> list[str]:
    """loihi/network.json and loihi/weights.npz (lava LIF / Dense / DelayDense arguments)."""
    out.mkdir(parents=True, exist_ok=True)
    sizes = {lay.name: lay.n for lay in qm.layers}
    arrays: dict[str, np.ndarray] = {}
    layers = []
    for lay in qm.layers:
        if lay.is_input:
            layers.append({"name": lay.name, "shape": [lay.n], "process": "input"})
            continue
        pp = lay.params
        layers.append({"name": lay.name, "shape": [lay.n], "process": "LIF",
                       "du": pp["decay_u"], "dv": pp["decay_v"], "vth": pp["vth_mant"],
                       "refractory_delay": pp["refract_delay"],
                       "bias_mant": f"{lay.name}.bias_mant", "bias_exp": f"{lay.name}.bias_exp",
                       "model": lay.model})  # fmt: skip
        arrays[f"{lay.name}.bias_mant"] = lay.bias_mant
        arrays[f"{lay.name}.bias_exp"] = lay.bias_exp
    projs = []
    mant_bits = int(prof["weights"]["bits"])
    for p in qm.projections:
        W = np.zeros((sizes[p.target], sizes[p.source]), np.int64)
        D = np.zeros_like(W)
        W[p.post, p.pre] = p.w
        D[p.post, p.pre] = p.delay
        arrays[f"{p.name}.weights"] = W
        arrays[f"{p.name}.delays"] = D
        projs.append({"name": p.name, "source": p.source, "target": p.target,
                      "process": "DelayDense" if p.delay.size and p.delay.max() > 0
                      else "Dense",
                      "weights": f"{p.name}.weights", "delays": f"{p.name}.delays",
                      "weight_exp": p.exp, "num_weight_bits": mant_bits,
                      "sign_mode": {"mixed": 1, "excitatory": 2, "inhibitory": 3}[p.sign_mode],
                      "sign_mode_name": p.sign_mode, "synapses": int(p.w.size)})  # fmt: skip
    doc = {"format": "edgesnn-loihi", "version": 1, "profile": qm.profile, "dt_us": qm.dt_us,
           "inputs": qm.inputs, "outputs": qm.outputs, "layers": layers, "projections": projs,
           "per_hop_delay_steps": 1}  # fmt: skip
    (out / "network.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    with open(out / "weights.npz", "wb") as f:
        np.savez(f, **arrays)
    return ["loihi/network.json", "loihi/weights.npz"]
