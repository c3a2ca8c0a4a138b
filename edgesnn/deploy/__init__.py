"""Deployment to neuromorphic chips: profiles, quantization, bit-accurate emulation, design
rules, reports and exports.

    from edgesnn.deploy import deploy, load_profile, quantize, Emulator, check
    rep = deploy("model.npz", "loihi2", "out/", recording="rec.npz")
    rep = deploy("model.npz", "loihi2", "out/",
                 recording=PipelineSource("dvs_motion", recording="walk.aedat"))

Profiles are TOML files in `firmware_profiles/` (or a user's path); the report and export
formats are described in edgesnn.deploy.report and edgesnn.deploy.export. Each chip family is a
package of one shape in edgesnn.deploy.targets (profile schema, quantize, emulate, rules,
export), found by its profile's ``[profile] family``: a new chip is a new folder there.
"""

from edgesnn.deploy.emulator import Emulator
from edgesnn.deploy.export import read_nir, write_nir, write_toolchain
from edgesnn.deploy.floatmodel import FloatModel
from edgesnn.deploy.profile import Profile, load_profile, loads_profile, shipped_profiles
from edgesnn.deploy.quantize import QuantizedModel, is_quantized_file, quantize
from edgesnn.deploy.report import DeployRecording, deploy, load_recording, summary_text
from edgesnn.deploy.rules import RULES, Mapping, Violation, check, map_cores
from edgesnn.deploy.source import PipelineSource
from edgesnn.deploy.targets import Target, target

__all__ = [
    "RULES",
    "DeployRecording",
    "Emulator",
    "FloatModel",
    "Mapping",
    "PipelineSource",
    "Profile",
    "QuantizedModel",
    "Target",
    "Violation",
    "check",
    "deploy",
    "is_quantized_file",
    "load_profile",
    "load_recording",
    "loads_profile",
    "map_cores",
    "quantize",
    "read_nir",
    "shipped_profiles",
    "summary_text",
    "target",
    "write_nir",
    "write_toolchain",
]
