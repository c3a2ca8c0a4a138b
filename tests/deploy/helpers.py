"""Small models and recordings for the deployment tests."""

from __future__ import annotations

import numpy as np

from edgesnn.core import Network, NetworkSpec


def small_net(model="cuba_lif", seed=1, n_in=20, n_hid=16, n_out=4, delays=True, **layer):
    rng = np.random.default_rng(seed)
    spec = NetworkSpec(dt_us=1000)
    spec.add_layer("in", n_in, "input")
    kw = {"tau_mem_ms": 10.0}
    if model == "cuba_lif":
        kw.update(tau_syn_exc_ms=5.0, tau_syn_inh_ms=5.0)
    kw.update(layer)
    spec.add_layer("hid", n_hid, model, t_ref_ms=2.0, **kw)
    spec.add_layer("out", n_out, model, **kw)
    gain = 2.5 if model == "cuba_lif" else 1.0
    d = rng.integers(0, 4, (n_in, n_hid)) if delays else 0
    spec.connect("in", "hid", weight=rng.normal(0.25, 0.3, (n_in, n_hid)) * gain, delay_steps=d)
    spec.connect("hid", "out", weight=rng.normal(0.3, 0.3, (n_hid, n_out)) * gain)
    return Network(spec)


def recording(n_in=20, steps=200, p=0.2, seed=2, samples=2):
    rng = np.random.default_rng(seed)
    inp = rng.random((steps, n_in)) < p
    ptr = np.concatenate([[0], np.cumsum(inp.sum(1))]).astype(np.int64)
    idx = np.nonzero(inp)[1].astype(np.int32)
    sp = np.linspace(0, steps, samples + 1).astype(np.int64)
    return ptr, idx, sp
