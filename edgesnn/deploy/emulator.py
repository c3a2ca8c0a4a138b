"""Bit-accurate CPU emulation of a `QuantizedModel` with its chip target's numba kernels.

The emulator is generic over the core-mapped targets: what a neuron layer's state is, how a
synapse's integer weight enters, and which kernels update a layer and deliver its spikes come
from the target (`LayerKernels`, in ``edgesnn/deploy/targets/<chip>/emulate.py``).

Timing is the core's: in step t every neuron layer consumes the input that arrived for t, then
every projection delivers this step's spikes so that a synapse of edgesnn delay d acts at step
t + 1 + d (one step per hop, as on Loihi; on SpiNNaker the chip delay is d + 1). Input spikes
are indices into the concatenated input layers, output spikes into the concatenated output
layers, as for `edgesnn.core.Network`. Weights are frozen (no on-chip learning is emulated).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgesnn.deploy import kernels as K
from edgesnn.deploy.quantize import QuantizedModel


@dataclass
class _Proj:
    pre: int
    post: int
    ptr: np.ndarray
    idx: np.ndarray
    w: np.ndarray  # the target's integer per synapse (LayerKernels.synapses)
    ch: np.ndarray
    delay: np.ndarray
    rshift: int = 0  # right shift of each neuron's summed addends (Loihi: weight exp < 0)


class LayerKernels:
    """What a core-mapped chip target gives the generic `Emulator`: the slots of a layer's
    integer parameter array, the per-synapse integers, the start state and input ring of a
    layer, and its numba kernels for one step of a layer and one delivery of spikes."""

    #: length of a layer's parameter array, and the slot of each quantizer parameter
    nparam: int = 0
    param_order: dict[str, int] = {}

    def synapses(self, pr: Any) -> tuple[np.ndarray, int]:
        """(the integer each synapse of projection `pr` delivers, right shift of the sums)."""
        raise NotImplementedError

    def v_start(self, lay: Any) -> int:
        """The membrane state a (non-input) layer starts and resets to."""
        raise NotImplementedError

    def ring_shape(self, nslot: int, n: int) -> tuple[int, ...]:
        """Shape of a layer's input ring of `nslot` arrival steps for `n` neurons."""
        raise NotImplementedError

    def update(self, em: Emulator, i: int, lay: Any, slot: int) -> int:
        """One step of neuron layer `i` consuming ring slot `slot`; returns its spike count."""
        raise NotImplementedError

    def propagate(self, em: Emulator, j: int, p: _Proj, ns: int, t: int, ring_max: int) -> int:
        """Deliver the `ns` spikes of projection `j`'s source; returns synaptic operations."""
        raise NotImplementedError


class Emulator:
    """Runs a quantized model step by step in the chip's integer arithmetic."""

    def __init__(self, qm: QuantizedModel, kernels: LayerKernels | None = None):
        if kernels is None:
            from edgesnn.deploy.targets import target

            kernels = target(qm.family).module("emulate").KERNELS
        self.qm = qm
        self.family = qm.family
        self.kernels = kernels
        names = [lay.name for lay in qm.layers]
        self.layer_names = names
        self._index = {n: i for i, n in enumerate(names)}
        order = kernels.param_order
        nparam = kernels.nparam
        self.params: list[np.ndarray] = []
        for lay in qm.layers:
            p = np.zeros(nparam, np.int64)
            for key, slot in order.items():
                if key in lay.params:
                    p[slot] = int(lay.params[key])
            self.params.append(p)
        self.projs: list[_Proj] = []
        lag = 1 - qm.delay_offset  # chip delay -> arrival offset (edgesnn: t + 1 + d)
        max_arrive = {n: 0 for n in names}
        for pr in qm.projections:
            a, b = self._index[pr.source], self._index[pr.target]
            n_pre = qm.layers[a].n
            order_ = np.argsort(pr.pre, kind="stable")
            ptr = np.zeros(n_pre + 1, np.int64)
            np.cumsum(np.bincount(pr.pre, minlength=n_pre), out=ptr[1:])
            w, rshift = kernels.synapses(pr)
            d = pr.delay.astype(np.int64)[order_] + lag
            self.projs.append(_Proj(a, b, ptr, pr.post[order_].astype(np.int64), w[order_],
                                    pr.ch[order_].astype(np.int64), d, rshift))  # fmt: skip
            if d.size:
                max_arrive[pr.target] = max(max_arrive[pr.target], int(d.max()))
        self.nslot = [max_arrive[n] + 1 for n in names]
        n_in = [qm.layers[self._index[n]].n for n in qm.inputs]
        self.in_off = dict(zip(qm.inputs, np.cumsum([0, *n_in[:-1]]).tolist()))
        self.n_inputs = int(sum(n_in))
        n_out = [qm.layers[self._index[n]].n for n in qm.outputs]
        self.out_off = dict(zip(qm.outputs, np.cumsum([0, *n_out[:-1]]).tolist()))
        self.n_outputs = int(sum(n_out))
        self.stats = np.zeros(K.NST, np.int64)
        self.reset()

    def reset(self) -> None:
        """States, refractory counters, spikes in flight and counters back to zero / rest."""
        qm = self.qm
        self.t = 0
        self.stats[:] = 0
        self.u, self.v, self.ih, self.ref, self.ring, self.spk = [], [], [], [], [], []
        self.nspk = [0] * len(qm.layers)
        for i, lay in enumerate(qm.layers):
            n = lay.n
            v0 = 0 if lay.is_input else self.kernels.v_start(lay)
            self.u.append(np.zeros(n, np.int64))
            self.v.append(np.full(n, v0, np.int64))
            self.ih.append(np.zeros(n, np.int64))
            self.ref.append(np.zeros(n, np.int64))
            self.ring.append(np.zeros(self.kernels.ring_shape(self.nslot[i], n), np.int64))
            self.spk.append(np.zeros(n, np.int64))
        self.counts = [np.zeros(lay.n, np.int64) for lay in qm.layers]
        # per projection with a negative exponent: mantissa sums of one step per arrival slot
        self.acc = [np.zeros(self.ring[p.post].shape, np.int64) if p.rshift else None
                    for p in self.projs]  # fmt: skip

    def layer_spikes(self, name: str) -> np.ndarray:
        """Neurons of `name` that spiked in the last step (a copy)."""
        i = self._index[name]
        return self.spk[i][: self.nspk[i]].copy()

    def step(self, in_idx: np.ndarray) -> np.ndarray:
        """Advance one step with the given input spikes; returns this step's output spikes."""
        qm = self.qm
        t = self.t
        in_idx = np.asarray(in_idx, dtype=np.int64)
        update = self.kernels.update
        for i, lay in enumerate(qm.layers):
            if lay.is_input:
                off = self.in_off.get(lay.name)
                if off is None:
                    self.nspk[i] = 0
                    continue
                sel = in_idx[(in_idx >= off) & (in_idx < off + lay.n)] - off
                sel = np.unique(sel)
                self.spk[i][: sel.size] = sel
                self.nspk[i] = sel.size
            else:
                self.nspk[i] = update(self, i, lay, t % self.nslot[i])
            self.counts[i][self.spk[i][: self.nspk[i]]] += 1
        ring_max = (1 << qm.ring_bits) - 1 if qm.ring_bits else 0
        propagate = self.kernels.propagate
        for j, p in enumerate(self.projs):
            ns = self.nspk[p.pre]
            if ns == 0:
                continue
            self.stats[K.ST_SYNOPS] += propagate(self, j, p, ns, t, ring_max)
        self.t = t + 1
        outs = [self.spk[self._index[n]][: self.nspk[self._index[n]]] + self.out_off[n]
                for n in qm.outputs]  # fmt: skip
        return np.concatenate(outs).astype(np.int32) if outs else np.zeros(0, np.int32)

    def run(self, in_ptr: np.ndarray, in_idx: np.ndarray, n_steps: int | None = None,
            progress: Callable[[int], None] | None = None,
            ) -> dict[str, tuple[np.ndarray, np.ndarray]]:  # fmt: skip
        """Advance over a CSR input; returns every layer's spikes as CSR (ptr, idx)."""
        if n_steps is None:
            n_steps = len(in_ptr) - 1
        rec: dict[str, list[np.ndarray]] = {n: [] for n in self.layer_names}
        for k in range(n_steps):
            self.step(in_idx[in_ptr[k] : in_ptr[k + 1]])
            for i, n in enumerate(self.layer_names):
                rec[n].append(self.spk[i][: self.nspk[i]].astype(np.int32))
            if progress is not None:
                progress(k + 1)
        return {n: _csr(v) for n, v in rec.items()}

    @property
    def counters(self) -> dict[str, int]:
        """Overflow / saturation counters and operation counts since the last reset."""
        names = ("u_overflow", "v_overflow", "q_overflow", "ring_saturated", "synops",
                 "neuron_updates", "u_edge")  # fmt: skip
        return {n: int(self.stats[i]) for i, n in enumerate(names)}


def _csr(steps: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.zeros(len(steps) + 1, np.int64)
    np.cumsum([s.size for s in steps], out=ptr[1:])
    idx = np.concatenate(steps).astype(np.int32) if steps else np.zeros(0, np.int32)
    return ptr, idx
