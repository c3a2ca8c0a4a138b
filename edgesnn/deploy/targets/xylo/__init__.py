"""SynSense Xylo target: profile, quantization, design rules, bit-exact emulation, export.

Xylo (Xylo Audio 2 = SYNS61201, Xylo IMU = SYNS63300) is one digital integer LIF core: up to 16
input channels, one hidden population (1000 or 496 neurons) with recurrent weights, and a few
readout neurons. Every weight is int8 left-shifted by one shift per matrix (input, recurrent,
readout); states are 16-bit and saturate; decays are bit shifts ("dash"); reset subtracts the
threshold and a hidden neuron may fire several times per step. An edgesnn model maps onto it as

- the model's input layers (concatenated) -> the input channels,
- every other non-output layer (concatenated) -> the hidden population; hidden->hidden
  projections become recurrent weights (one step per hop, as in edgesnn),
- the model's output layers (concatenated) -> the readout neurons.

Projections on the excitatory current (channel 0) use the hidden neurons' first synapse, those
on the inhibitory current (channel 1) the second. Integer scale per target layer: ``s`` units per
float unit of v, the largest for which the threshold stays ``state_headroom_bits`` below the
16-bit range and the largest weight of every incoming matrix fills int8 at the matrix's shift.
Weights are matched on their integral (DC gain): a spike's total effect on v in the chip's
bit-shift dynamics equals the float model's. Dashes are ``round(log2(1 / k))`` (membrane) and
``round(log2(1 / (1 - d)))`` (synapse), as Rockpool's ``round(log2(tau / dt))``.

The emulator reproduces XyloSim (xylosim 0.1.3, ``src/v2/cpp/XyloIAFNeuron.cpp`` and
``XyloLayer.cpp``) bit for bit, including its order of saturating additions. Per step:

    for each input channel, then each synapse in (synapse 1 by target, synapse 2 by target)
    order, for each of its events (<= 15):  i_syn[post] = sat16(i_syn[post] + w_in)
    same for the hidden spike counts of the last step (<= 31 each) into the hidden neurons
    (w_rec) and then into the readout neurons (w_out)
    every neuron:  i_syn -= dec(i_syn, dash_syn)                 # each synapse
                   dv = sat16(-dec(v, dash_mem) + sum(i_syn)); dv = sat16(dv + bias)
                   v = sat16(v + dv)
                   while v >= threshold and n < max_spikes: n += 1; v -= threshold
    dec(x, dash) = x >> dash (floor), but +-1 when that is 0 and x != 0

with ``w = int16(mant << shift)``. Input events act in the same step (edgesnn: next step), so
chip outputs lead the float model's by one step. The export is the Rockpool specification
(``XyloSim.from_specification(**spec)``, ``config_from_specification``) as an npz of integer
arrays (no pickle).
"""

from edgesnn.deploy.targets import Target, register
from edgesnn.deploy.targets.xylo.emulate import (
    XyloEmulator,
    emulator,
    emulator_for,
    raster,
    rockpool_xylosim,
)
from edgesnn.deploy.targets.xylo.export import export, write_export
from edgesnn.deploy.targets.xylo.profile import FAMILY, XYLO_SCHEMA, load, load_xylo_profile
from edgesnn.deploy.targets.xylo.quantize import (
    XyloModel,
    XyloSpec,
    XyloViolation,
    quantize,
    quantize_xylo,
)
from edgesnn.deploy.targets.xylo.report import deploy_xylo, summary_json, summary_text
from edgesnn.deploy.targets.xylo.rules import RULE_FAMILIES, check, check_xylo

TARGET = register(Target(
    name="xylo", family=FAMILY,
    description="SynSense Xylo Audio 2 / Xylo IMU: one integer LIF core with recurrent weights",
    load_profile=load, quantize=quantize, emulator=emulator, check=check,
    rule_families=dict(RULE_FAMILIES), export=export, deploy=deploy_xylo,
    summary_text=summary_text, summary_json=summary_json,
))  # fmt: skip

__all__ = [
    "FAMILY",
    "RULE_FAMILIES",
    "TARGET",
    "XYLO_SCHEMA",
    "XyloEmulator",
    "XyloModel",
    "XyloSpec",
    "XyloViolation",
    "check_xylo",
    "deploy_xylo",
    "emulator_for",
    "load_xylo_profile",
    "quantize_xylo",
    "raster",
    "rockpool_xylosim",
    "summary_json",
    "summary_text",
    "write_export",
]
