"""Bit-accurate CPU emulation of a `QuantizedModel` with the family's numba kernels.

Timing is the core's: in step t every neuron layer consumes the input that arrived for t, then
every projection delivers this step's spikes so that a synapse of edgesnn delay d acts at step
t + 1 + d (one step per hop, as on Loihi; on SpiNNaker the chip delay is d + 1). Input spikes
are indices into the concatenated input layers, output spikes into the concatenated output
layers, as for `edgesnn.core.Network`. Weights are frozen (no on-chip learning is emulated).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgesnn.deploy import kernels as K
from edgesnn.deploy.quantize import PARAM_ORDER, QuantizedModel, loihi_weights


@dataclass
class _Proj:
    pre: int
    post: int
    ptr: np.ndarray
    idx: np.ndarray
    w: np.ndarray  # Loihi: per-synapse input in u units, or the addend when rshift > 0
    ch: np.ndarray
    delay: np.ndarray
    rshift: int = 0  # Loihi: right shift of each neuron's summed addends (weight exp < 0)


class Emulator:
    """Runs a quantized model step by step in the chip's integer arithmetic."""

    def __init__(self, qm: QuantizedModel):
        self.qm = qm
        self.family = qm.family
        self.loihi = qm.family == "loihi_cuba"
        names = [lay.name for lay in qm.layers]
        self.layer_names = names
        self._index = {n: i for i, n in enumerate(names)}
        order = PARAM_ORDER[qm.family]
        nparam = K.NLP if self.loihi else K.NSP
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
            rshift = 0
            if self.loihi:
                lw = loihi_weights(pr.w, pr.exp, pr.sign_mode, pr.num_weight_bits)
                rshift = lw.rshift
                w = lw.addend if rshift else lw.addend << 6  # exp >= 0: exact per synapse
            else:
                w = pr.w.astype(np.int64)
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
            v0 = 0 if self.loihi or lay.is_input else int(lay.params.get("v_rest", 0))
            self.u.append(np.zeros(n, np.int64))
            self.v.append(np.full(n, v0, np.int64))
            self.ih.append(np.zeros(n, np.int64))
            self.ref.append(np.zeros(n, np.int64))
            shape = (self.nslot[i], n) if self.loihi else (self.nslot[i], 2, n)
            self.ring.append(np.zeros(shape, np.int64))
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
                slot = t % self.nslot[i]
                ring = self.ring[i]
                if self.loihi:
                    ns = K.loihi_cuba_update(self.u[i], self.v[i], self.ref[i], ring[slot],
                                             lay.bias, self.params[i], self.spk[i],
                                             self.stats)  # fmt: skip
                else:
                    ns = K.spinnaker_update(self.v[i], self.u[i], self.ih[i], self.ref[i],
                                            ring[slot, 0], ring[slot, 1], lay.bias,
                                            self.params[i], self.spk[i], self.stats)  # fmt: skip
                self.nspk[i] = ns
            self.counts[i][self.spk[i][: self.nspk[i]]] += 1
        ring_max = (1 << qm.ring_bits) - 1 if qm.ring_bits else 0
        for j, p in enumerate(self.projs):
            ns = self.nspk[p.pre]
            if ns == 0:
                continue
            if self.loihi and p.rshift:
                nev = K.loihi_propagate_shifted(self.spk[p.pre], ns, p.ptr, p.idx, p.w, p.delay,
                                                self.acc[j], self.ring[p.post], t,
                                                p.rshift)  # fmt: skip
            elif self.loihi:
                nev = K.loihi_propagate(self.spk[p.pre], ns, p.ptr, p.idx, p.w, p.delay,
                                        self.ring[p.post], t)  # fmt: skip
            else:
                nev = K.spinnaker_propagate(self.spk[p.pre], ns, p.ptr, p.idx, p.w, p.ch,
                                            p.delay, self.ring[p.post], t, ring_max,
                                            self.stats)  # fmt: skip
            self.stats[K.ST_SYNOPS] += nev
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
