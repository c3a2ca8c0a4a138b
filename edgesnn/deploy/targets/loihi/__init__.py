"""Intel Loihi 1 and 2 (family ``loihi_cuba``): the CUBA compartment in lava-nc's bit-accurate
integers, mapped onto neuron cores; exported for lava (``loihi/network.json`` and
``loihi/weights.npz``). Profiles: ``firmware_profiles/loihi1.toml``, ``loihi2.toml``."""

from edgesnn.deploy import report
from edgesnn.deploy.targets import Target, register
from edgesnn.deploy.targets.loihi.emulate import emulator
from edgesnn.deploy.targets.loihi.export import export, write_loihi
from edgesnn.deploy.targets.loihi.profile import FAMILY, load
from edgesnn.deploy.targets.loihi.quantize import (
    LoihiWeights,
    loihi_params,
    loihi_weights,
    quantize,
)
from edgesnn.deploy.targets.loihi.rules import RULE_FAMILIES, check

TARGET = register(Target(
    name="loihi", family=FAMILY,
    description="Intel Loihi 1/2: CUBA compartments on neuron cores, lava-nc's integers",
    load_profile=load, quantize=quantize, emulator=emulator, check=check,
    rule_families=RULE_FAMILIES, export=export, deploy=report.deploy_cores,
    summary_text=report.summary_text, summary_json=report.summary_json,
))  # fmt: skip

__all__ = ["FAMILY", "TARGET", "LoihiWeights", "loihi_params", "loihi_weights", "write_loihi"]
