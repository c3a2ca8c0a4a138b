"""SpiNNaker 1 and 2 (family ``spinnaker_if_curr_exp``): sPyNNaker's IF_curr_exp /
IF_curr_delta in s16.15 with 16-bit ring buffers, mapped onto neuron cores; exported for PyNN
(``pynn/network.json`` and ``pynn/build_pynn.py``). Profiles:
``firmware_profiles/spinnaker1.toml``, ``spinnaker2.toml``."""

from edgesnn.deploy import report
from edgesnn.deploy.targets import Target, register
from edgesnn.deploy.targets.spinnaker.emulate import emulator
from edgesnn.deploy.targets.spinnaker.export import export, write_pynn
from edgesnn.deploy.targets.spinnaker.profile import FAMILY, load
from edgesnn.deploy.targets.spinnaker.quantize import quantize
from edgesnn.deploy.targets.spinnaker.rules import RULE_FAMILIES, check

TARGET = register(Target(
    name="spinnaker", family=FAMILY,
    description="SpiNNaker 1/2: sPyNNaker IF_curr_exp/IF_curr_delta on ARM cores, s16.15",
    load_profile=load, quantize=quantize, emulator=emulator, check=check,
    rule_families=RULE_FAMILIES, export=export, deploy=report.deploy_cores,
    summary_text=report.summary_text, summary_json=report.summary_json,
))  # fmt: skip

__all__ = ["FAMILY", "TARGET", "write_pynn"]
