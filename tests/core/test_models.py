"""Neuron models against known results: analytic LIF rate, Izhikevich (2003), Hodgkin-Huxley."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgesnn.core import Network, NetworkSpec


def _spike_times_ms(rec, n_steps: int, neuron: int, dt_ms: float) -> np.ndarray:
    steps = np.repeat(np.arange(n_steps), np.diff(rec.ptr))
    return steps[rec.idx == neuron] * dt_ms


def test_lif_constant_current_fires_at_analytic_rate() -> None:
    tau_ms, t_ref_ms, v_th, v_reset = 10.0, 2.0, 1.0, 0.0
    currents = np.linspace(1.05, 6.0, 12)  # R*I, above threshold
    dt_us, n_steps = 10, 150_000  # 1.5 s
    spec = NetworkSpec(dt_us=dt_us)
    spec.add_layer("in", 1, "input")
    spec.add_layer(
        "lif",
        currents.size,
        "lif",
        tau_mem_ms=tau_ms,
        t_ref_ms=t_ref_ms,
        v_th=v_th,
        v_reset=v_reset,
        v_rest=0.0,
        i_bias=currents,
    )
    rec = Network(spec).run(np.zeros(n_steps + 1, np.int64), np.zeros(0, np.int32))
    for j, ri in enumerate(currents):
        t = _spike_times_ms(rec, n_steps, j, dt_us / 1000)
        assert t.size >= 10
        measured = (t.size - 1) / (t[-1] - t[0]) * 1000.0
        analytic = 1000.0 / (t_ref_ms + tau_ms * math.log(ri / (ri - (v_th - v_reset))))
        assert measured == pytest.approx(analytic, rel=0.01), ri


def test_lif_below_threshold_current_is_silent() -> None:
    spec = NetworkSpec(dt_us=100)
    spec.add_layer("in", 1, "input")
    spec.add_layer("lif", 2, "lif", tau_mem_ms=10.0, i_bias=[0.5, 0.99])
    rec = Network(spec).run(np.zeros(20001, np.int64), np.zeros(0, np.int32))
    assert rec.idx.size == 0


IZH = {  # Izhikevich (2003), Fig. 2: a, b, c, d
    "RS": (0.02, 0.2, -65.0, 8.0),
    "IB": (0.02, 0.2, -55.0, 4.0),
    "CH": (0.02, 0.2, -50.0, 2.0),
    "FS": (0.1, 0.2, -65.0, 2.0),
    "LTS": (0.02, 0.25, -65.0, 2.0),
}


@pytest.fixture(scope="module")
def izh_spikes() -> dict[str, np.ndarray]:
    dt_us, n = 250, 4000  # 1 s with I = 10 from rest
    spec = NetworkSpec(dt_us=dt_us)
    spec.add_layer("in", 1, "input")
    for name, (a, b, c, d) in IZH.items():
        spec.add_layer(name, 1, "izhikevich", a=a, b=b, c=c, d=d, i_bias=10.0)
    spec.outputs = list(IZH)
    rec = Network(spec).run(np.zeros(n + 1, np.int64), np.zeros(0, np.int32))
    return {name: _spike_times_ms(rec, n, j, dt_us / 1000) for j, name in enumerate(IZH)}


def _bursts(t: np.ndarray, gap_ms: float = 10.0) -> list[int]:
    """Sizes of groups of spikes separated by less than gap_ms."""
    sizes, cur = [], 1
    for isi in np.diff(t):
        if isi < gap_ms:
            cur += 1
        else:
            sizes.append(cur)
            cur = 1
    sizes.append(cur)
    return sizes


def test_izhikevich_regular_spiking(izh_spikes) -> None:
    t = izh_spikes["RS"]
    isi = np.diff(t)
    assert 15 <= t.size <= 35 and t[0] < 10.0  # tonic, ~20 Hz, prompt first spike
    assert isi.min() > 15.0  # no bursts
    assert isi[0] < 0.7 * isi[-1]  # spike-frequency adaptation


def test_izhikevich_intrinsically_bursting(izh_spikes) -> None:
    t = izh_spikes["IB"]
    sizes = _bursts(t)
    assert sizes[0] >= 2  # an initial burst ...
    assert all(s == 1 for s in sizes[1:]) and len(sizes) >= 15  # ... then single spikes
    assert np.diff(t)[sizes[0] :].min() > 20.0


def test_izhikevich_chattering(izh_spikes) -> None:
    sizes = _bursts(izh_spikes["CH"])
    assert len(sizes) >= 8 and all(s >= 3 for s in sizes[:-1])  # repeated fast bursts
    isi = np.diff(izh_spikes["CH"])
    assert isi.min() < 4.0 and isi.max() > 30.0


def test_izhikevich_fast_spiking(izh_spikes) -> None:
    t = izh_spikes["FS"]
    isi = np.diff(t)
    assert t.size > 3 * izh_spikes["RS"].size  # high frequency
    assert isi[5:].max() / isi[5:].min() < 1.3  # little adaptation once settled
    assert all(s == 1 for s in _bursts(t, gap_ms=4.0))


def test_izhikevich_low_threshold_spiking(izh_spikes) -> None:
    t = izh_spikes["LTS"]
    isi = np.diff(t)
    assert t.size > 2 * izh_spikes["RS"].size  # high frequency ...
    assert isi[0] < 0.4 * isi[-1]  # ... with marked adaptation
    assert t[0] < izh_spikes["RS"][0]  # lower threshold: fires first


@pytest.fixture(scope="module")
def hh_run() -> tuple[list[float], np.ndarray, np.ndarray]:
    currents = [0.0, 2.0, 4.0, 5.5, 7.0, 10.0, 20.0, 50.0]
    dt_us, n = 10, 50_000  # 500 ms at 10 us, sub-stepped internally
    spec = NetworkSpec(dt_us=dt_us)
    spec.add_layer("in", 1, "input")
    spec.add_layer("hh", len(currents), "hh", i_bias=currents)
    net = Network(spec)
    v_peak = np.full(len(currents), -1e9)
    counts_late = np.zeros(len(currents), np.int64)
    empty = np.zeros(0, np.int32)
    for k in range(n):
        out = net.step(empty)
        v_peak = np.maximum(v_peak, net.state["hh"]["v"])
        if k * dt_us >= 100_000:
            np.add.at(counts_late, out, 1)
    return currents, v_peak, counts_late


def test_hh_rest_and_peak(hh_run) -> None:
    currents, v_peak, counts = hh_run
    spec = NetworkSpec(dt_us=100)
    spec.add_layer("in", 1, "input")
    spec.add_layer("hh", 1, "hh")
    net = Network(spec)
    net.run(np.zeros(2001, np.int64), np.zeros(0, np.int32))
    assert net.state["hh"]["v"][0] == pytest.approx(-65.0, abs=0.5)
    assert all(v_peak[i] > 30.0 for i, c in enumerate(currents) if c >= 7.0)


def test_hh_rheobase_and_rate(hh_run) -> None:
    currents, _, counts = hh_run
    # the classic squid axon fires repetitively only above ~6.2 uA/cm2
    for c, k in zip(currents, counts):
        if c <= 5.5:
            assert k == 0, c
        else:
            assert k >= 10, c
    above = [k for c, k in zip(currents, counts) if c >= 7.0]
    assert above == sorted(above) and above[-1] > above[0]
