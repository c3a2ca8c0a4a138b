"""Xylo export: Rockpool's specification as integer arrays (``xylo/spec.npz``, no pickle) and a
script that runs it in XyloSim (``xylo/run_xylosim.py``)."""

from __future__ import annotations

from pathlib import Path

from edgesnn.deploy.profile import Profile
from edgesnn.deploy.targets.xylo.quantize import XyloModel

RUN_SCRIPT = '''"""Run the exported Xylo network in Rockpool's XyloSim (needs rockpool and xylosim).

    python run_xylosim.py [RASTER.npy]     # RASTER: (steps, {n_in}) input event counts

Without samna, rockpool.devices.xylo cannot be imported as a package; edgesnn's loader
(edgesnn.deploy.targets.xylo.rockpool_xylosim) imports the simulator module alone. With samna:
    from rockpool.devices.xylo.syns61201 import XyloSim, config_from_specification
"""
import sys
from pathlib import Path

import numpy as np

from edgesnn.deploy.targets.xylo import XyloSpec, rockpool_xylosim

spec = XyloSpec.load(Path(__file__).with_name("spec.npz"))
XyloSim = rockpool_xylosim({n_syn})
if XyloSim is None:
    sys.exit("rockpool and xylosim are needed: pip install 'edgesnn[xylo]'")
mod = XyloSim.from_specification(**spec.rockpool_kwargs({n_syn}))
raster = (np.load(sys.argv[1]) if len(sys.argv) > 1
          else np.zeros((100, spec.n_in), np.int64))
out, _, rec = mod.evolve(raster.astype(int), record=True)
print("readout spikes per neuron:", np.asarray(out).sum(axis=0).tolist())
print("hidden spikes:", int(np.asarray(rec["Spikes"]).sum()))
'''


def write_export(xm: XyloModel, profile: Profile, out: Path) -> list[str]:
    """xylo/spec.npz (Rockpool's specification, integer arrays) and xylo/run_xylosim.py."""
    d = out / "xylo"
    d.mkdir(parents=True, exist_ok=True)
    xm.spec.save(d / "spec.npz")
    n_syn = int(profile["chip"]["synapses_hidden"])
    (d / "run_xylosim.py").write_text(RUN_SCRIPT.replace("{n_in}", str(xm.spec.n_in))
                                      .replace("{n_syn}", str(n_syn)), encoding="utf-8")
    return ["xylo/spec.npz", "xylo/run_xylosim.py"]


def export(xm: XyloModel, profile: Profile, out: Path) -> list[str]:
    """The target's toolchain files (`write_export`)."""
    return write_export(xm, profile, out)
