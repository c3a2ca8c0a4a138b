"""The SNN core: neuron models, synapses with delays, connectivity rules, model files.

Public API (the demo pipeline, learning and deployment code against exactly this)::

    spec = NetworkSpec(dt_us=1000, seed=0)
    spec.add_layer("in", n=512, model="input")
    spec.add_layer("out", n=4, model="cuba_lif", tau_mem_ms=20.0)
    spec.connect("in", "out", rule="dense", weight=W, delay_steps=0, synapse="exc")
    net = Network(spec)
    out_idx = net.step(in_idx)              # one dt, streaming (a view valid until next step)
    rec = net.run(in_ptr, in_idx, n_steps)  # batch, one kernel call; rec.ptr / rec.idx CSR
    net.save("model.npz"); Network.load("model.npz")

Models are documented in `edgesnn.core.models` (one module per model in
`edgesnn.core.neurons`, registered there), connectivity rules in `edgesnn.core.spec`,
plasticity rules in `edgesnn.learning.rules` (one module per rule, plugged in through
`edgesnn.core.plasticity`), the packed array layout in
`edgesnn.core.layout` and the step in `edgesnn.core.kernels`.

Step semantics: within a step every layer updates from the input that arrived at the end of
the previous step and emits spikes; then every projection delivers its pre layer's spikes (a
spike over a synapse of delay d is added at the end of step t + d and acts from step t + d + 1);
then plasticity runs.

Plasticity hook
---------------
A projection learns when it is given ``plasticity={"rule": ..., params}`` (dense, sparse or
random projections, i.e. per-synapse weights). The core owns, per plastic projection:

- traces: ``x_pre`` (n_pre) and ``x_post`` (n_post) in the float state array (the fused
  ``stdp`` kernel decays them once per step by ``exp(-dt/tau)`` and increments them by the
  neurons that spiked in this step; the event-driven rules keep their own, decayed lazily);
- a modulator scalar (1.0 by default; `Network.set_modulator` — reward, learning rate);
- the learning switch `Network.learning` (one flag for the whole network).

After propagation, `kernels._plasticity` runs each plastic projection's rule kernel, which
updates the traces and, for the rows of the pre neurons that spiked (CSR rows, or contiguous
dense rows) and then the columns of the post neurons that spiked (dense columns, or a CSC
index of synapse ids built at pack time for sparse projections), the weights — never for
silent neurons. The rules are plugins: each registers in `edgesnn.core.plasticity` its name,
TOML keys, kernels by code (`layout.PLAST_*`), packing, validation and record check, and
`_plasticity` is a dispatch generated from that registry. The core never imports them: the
built-in rules (`edgesnn.learning.rules`: pair STDP, fused when at its defaults, triplet,
reward-modulated with eligibility traces, homeostasis; kernels in `edgesnn.learning.kernels`)
are imported by name when the core first needs its rules, so ``from edgesnn.core import
Network`` builds and loads networks that learn.

Weights are read and written in place through `Network.weights(i)`; `Network.save` stores them
as learned.
"""

from edgesnn.core import cachestamp as _cachestamp  # noqa: F401 - first: stamps kernel caches
from edgesnn.core.network import MODEL_FORMAT, MODEL_VERSION, Network, Recording
from edgesnn.core.spec import LayerSpec, NetworkSpec, ProjectionSpec

__all__ = [
    "MODEL_FORMAT",
    "MODEL_VERSION",
    "LayerSpec",
    "Network",
    "NetworkSpec",
    "ProjectionSpec",
    "Recording",
]
