"""`edgesnn bench core`: the SNN core on the canonical workloads, against plain numpy.

Workloads (../shared/bench): W1 dense 1000->400 CUBA LIF stream, W2 = W1 + pair STDP, W3 the
4000-neuron recurrent CUBA network; plus generated sizes for scaling (S100x50 from the bench
folder, S10000x1000 generated with a fixed seed). For each workload it measures, in the same
run, the core in batch mode (the whole input in one kernel call) and in streaming mode (one
`Network.step` call per dt, as a live stream drives it), and a plain numpy implementation of
the same update rules. It prints a table, or one JSON object per line with `--json`. A
`startup` row measures, in a fresh process with the on-disk kernel cache warm, the time from
process start to the first processed W1 step and that process's peak RSS after streaming W1.
`sparse` runs W1's input through sparse 1000 -> 400 projections of 2-50 % density (W1's
weights at random pairs, gain 0.02 / density) stored as sparse rows and as dense rows (the core
picks dense rows from `edgesnn.core.network.DENSE_ROWS_DENSITY` on); both must give the same
spikes.
D1 is W1 with a random delay of 1-16 steps on every synapse: the core against a numba kernel of
the same network that finds each synapse's ring slot by an integer modulo (the core's delivery
before it packed ring offsets) and against numpy.
With S10000x1000, `build` rows measure the memory allocated while building it (and its first
2000 rows with D1's per-synapse delays) against its float32 weights, and a `threads` row runs
its batch on one thread and on two (`Network.threads`; the dense rows split by columns) and
gives the speed-up and whether the spikes are the same.
Figures are measurements on a shared machine: compare the ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

BENCH_DIR = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "bench"
EXPECTED = {"W1": 43034, "W2": 49273, "W3": 20876}
KEYS = (
    "workload",
    "mode",
    "spikes",
    "expected_spikes",
    "rt_factor",
    "p50_step_us",
    "p99_step_us",
    "syn_events_per_s",
    "peak_rss_mb",
    "numpy_rt_factor",
    "numpy_p50_step_us",
    "numpy_p99_step_us",
    "ratio",
)


def peak_rss_mb() -> float:
    """Peak resident set size of this process (MB; VmHWM, so not inherited across exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --- the workloads as core networks -----------------------------------------------------------


def ff_spec(W: np.ndarray, dtype: str, stdp: bool = False, gain: float = 0.02) -> Any:
    """W1 (and W2 with stdp): input -> dense -> CUBA LIF, forward Euler, gain 0.02 (W1's;
    generated sizes scale it by 1000 / inputs so their activity is comparable)."""
    from edgesnn.core import NetworkSpec

    spec = NetworkSpec(dt_us=1000, dtype=dtype)
    spec.add_layer("in", W.shape[0], "input")
    spec.add_layer(
        "out",
        W.shape[1],
        "cuba_lif",
        tau_mem_ms=20.0,
        tau_syn_exc_ms=5.0,
        v_th=1.0,
        v_reset=0.0,
        integration="euler",
    )
    plast = None
    if stdp:
        plast = {
            "rule": "stdp",
            "a_plus": 0.01,
            "a_minus": 0.0105,
            "tau_pre_ms": 20.0,
            "tau_post_ms": 20.0,
            "w_min": 0.0,
            "w_max": 1.0,
        }
    spec.connect("in", "out", "dense", weight=W, gain=gain, plasticity=plast)
    return spec


def cuba_spec(d: dict[str, np.ndarray], dtype: str) -> Any:
    """W3: 4000 CUBA LIF (3200 exc, 800 inh), recurrent CSR, dt 0.1 ms, exact integration."""
    from edgesnn.core import NetworkSpec

    pre, post = d["pre"], d["post"]
    spec = NetworkSpec(dt_us=100, dtype=dtype)
    spec.add_layer("in", 1, "input")
    spec.add_layer(
        "n",
        4000,
        "cuba_lif",
        tau_mem_ms=20.0,
        tau_syn_exc_ms=5.0,
        tau_syn_inh_ms=10.0,
        v_th=-50.0,
        v_reset=-60.0,
        v_rest=-49.0,
        t_ref_ms=5.0,
        v_init=d["v0"] * 1000.0,
    )  # v0 is stored in volts
    e = pre < 3200
    spec.connect("n", "n", "sparse", pre=pre[e], post=post[e], weight=1.62, synapse="exc")
    spec.connect("n", "n", "sparse", pre=pre[~e], post=post[~e], weight=-9.0, synapse="inh")
    spec.outputs = ["n"]
    return spec


def delays_d1(shape: tuple[int, int]) -> np.ndarray:
    """D1's per-synapse delays: 1-16 steps, drawn with a fixed seed."""
    return np.random.default_rng(16).integers(1, 17, shape).astype(np.int32)


def delay_spec(W: np.ndarray, D: np.ndarray, dtype: str) -> Any:
    """D1: W1's network with per-synapse delays D (steps)."""
    spec = ff_spec(W, dtype)
    spec.max_delay_steps = max(spec.max_delay_steps, int(D.max()))
    spec.projections[0].params["delay_steps"] = D
    return spec


def _delay_modulo_kernel() -> Callable[..., int]:
    """A numba kernel of D1 whose delivery finds each synapse's ring slot by an integer modulo,
    as the core did before ring offsets were packed; otherwise the core's arithmetic (cuba_lif
    with delayed input, forward Euler), so it must give the same spikes."""
    from numba import njit

    @njit(cache=True, nogil=True, error_model="numpy")
    def run(w, dl, n_post, in_ptr, in_idx, k, v_rest, v_th, d_e, d_i, v_reset, gain, nslot):
        n_pre = w.shape[0] // n_post
        f = w.dtype.type
        v = np.zeros(n_post, w.dtype)
        ge = np.zeros(n_post, w.dtype)
        gi = np.zeros(n_post, w.dtype)
        ring = np.zeros(nslot * n_post, w.dtype)
        total = 0
        for t in range(in_ptr.shape[0] - 1):
            slot = (t + nslot - 1) % nslot
            for j in range(n_post):
                ge[j] += ring[slot * n_post + j]
                ring[slot * n_post + j] = f(0.0)
            for j in range(n_post):
                vj = v[j]
                v[j] = vj + k * (v_rest + (ge[j] + gi[j]) - vj)
                ge[j] = ge[j] * d_e
                gi[j] = gi[j] * d_i
            for j in range(n_post):
                if v[j] > v_th:
                    v[j] = v_reset
                    total += 1
            for q in range(in_ptr[t], in_ptr[t + 1]):
                i = in_idx[q]
                if 0 <= i < n_pre:
                    for s in range(i * n_post, (i + 1) * n_post):
                        sl = (t + dl[s]) % nslot
                        ring[sl * n_post + s - i * n_post] += gain * w[s]
        return total

    return run


def delay_modulo_rt(net: Any, W: np.ndarray, D: np.ndarray, ptr: np.ndarray, idx: np.ndarray,
                    sim_s: float, repeat: int) -> tuple[float, int]:
    """Real-time factor (median of `repeat`) and spikes of the per-synapse-modulo kernel on D1,
    with the scalars the core packed for `net`."""
    sc = net.layer_scalars("out")
    dt = net.fs.dtype.type
    w = np.ascontiguousarray(W, dtype=net.fs.dtype).ravel()
    dl = np.ascontiguousarray(D, dtype=np.int64).ravel()
    gain = dt(net.projection_record(0).gain)
    args = (w, dl, W.shape[1], ptr.astype(np.int64), idx.astype(np.int32), dt(sc["k"]),
            dt(sc["v_rest"]), dt(sc["v_th"]), dt(sc["d_exc"]), dt(sc["d_inh"]),
            dt(sc["v_reset"]), gain, int(D.max()) + 1)
    run = _delay_modulo_kernel()
    spikes = run(*args)  # compile or load
    walls = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run(*args)
        walls.append(time.perf_counter() - t0)
    return sim_s / _median(walls), int(spikes)


# --- plain numpy implementations (one step per loop iteration) ---------------------------------


def numpy_ff(
    W: np.ndarray,
    ptr: np.ndarray,
    idx: np.ndarray,
    stdp: bool,
    times: list[float],
    gain: float = 0.02,
) -> int:
    """W1/W2 in plain numpy; appends per-step wall times; returns the spike count."""
    W = W.astype(np.float32).copy()
    n = W.shape[1]
    v = np.zeros(n, np.float32)
    current = np.zeros(n, np.float32)
    a, dc, g = np.float32(1 / 20), np.float32(1 - 1 / 5), np.float32(gain)
    x_pre = np.zeros(W.shape[0], np.float32)
    x_post = np.zeros(n, np.float32)
    dec = np.float32(np.exp(-1 / 20))
    total = 0
    clock = time.perf_counter
    for k in range(ptr.shape[0] - 1):
        t0 = clock()
        v += a * (current - v)
        current *= dc
        s = v > 1.0
        v[s] = 0.0
        total += int(s.sum())
        sl = idx[ptr[k] : ptr[k + 1]]
        current += g * W[sl].sum(0)
        if stdp:
            x_pre *= dec
            x_post *= dec
            for i in sl:
                x_pre[i] += 1
                np.clip(W[i] - 0.0105 * x_post, 0, 1, out=W[i])
            for j in np.flatnonzero(s):
                x_post[j] += 1
                W[:, j] = np.clip(W[:, j] + 0.01 * x_pre, 0, 1)
        times.append(clock() - t0)
    return total


def numpy_delay(
    W: np.ndarray, D: np.ndarray, ptr: np.ndarray, idx: np.ndarray, times: list[float],
    gain: float = 0.02,
) -> int:
    """D1 in plain numpy: a ring buffer of future input, each step's spikes added to the slots
    of their synapses' delays with np.add.at (in spike order, as the core adds them)."""
    W = W.astype(np.float32)
    n = W.shape[1]
    nslot = int(D.max()) + 1
    ring = np.zeros(nslot * n, np.float32)
    v = np.zeros(n, np.float32)
    current = np.zeros(n, np.float32)
    a, dc, g = np.float32(1 / 20), np.float32(1 - 1 / 5), np.float32(gain)
    cols = np.arange(n)
    total = 0
    clock = time.perf_counter
    for k in range(ptr.shape[0] - 1):
        t0 = clock()
        slot = (k + nslot - 1) % nslot
        current += ring[slot * n : (slot + 1) * n]
        ring[slot * n : (slot + 1) * n] = 0.0
        v += a * (current - v)
        current *= dc
        s = v > 1.0
        v[s] = 0.0
        total += int(s.sum())
        sl = idx[ptr[k] : ptr[k + 1]]
        if sl.size:
            at = ((k + D[sl]) % nslot) * n + cols
            np.add.at(ring, at.ravel(), (g * W[sl]).ravel())
        times.append(clock() - t0)
    return total


def numpy_cuba(d: dict[str, np.ndarray], n_steps: int, times: list[float]) -> int:
    """W3 in plain numpy (vectorised per step, np.add.at for the spikes' synapses)."""
    ptr, post = d["ptr"], d["post"]
    v = d["v0"] * 1000.0
    ge = np.zeros(4000)
    gi = np.zeros(4000)
    ref = np.zeros(4000, np.int64)
    em, ee, ei = np.exp(-0.1 / 20), np.exp(-0.1 / 5), np.exp(-0.1 / 10)
    total = 0
    clock = time.perf_counter
    for _ in range(n_steps):
        t0 = clock()
        active = ref == 0
        g = ge + gi
        v = np.where(active, -49.0 + g + (v - (-49.0) - g) * em, v)
        ref = np.maximum(ref - 1, 0)
        ge *= ee
        gi *= ei
        s = np.flatnonzero(v > -50.0)
        v[s] = -60.0
        ref[s] = 49
        total += s.size
        for i in s:
            tg = post[ptr[i] : ptr[i + 1]]
            if i < 3200:
                np.add.at(ge, tg, 1.62)
            else:
                np.add.at(gi, tg, -9.0)
        times.append(clock() - t0)
    return total


# --- measuring ----------------------------------------------------------------------------------


def _median(xs: list[float]) -> float:
    return float(np.median(np.asarray(xs)))


def measure(
    name: str,
    make_net: Callable[[], Any],
    ptr: np.ndarray,
    idx: np.ndarray,
    sim_s: float,
    numpy_fn: Callable[[list[float]], int] | None,
    repeat: int,
) -> list[dict[str, Any]]:
    """Batch and streaming figures of one workload, with its numpy twin."""
    net = make_net()
    net.warm_up()
    n_steps = ptr.shape[0] - 1
    walls, rec = [], None
    for _ in range(repeat):
        net = make_net()  # fresh weights (W2 learns)
        t0 = time.perf_counter()
        rec = net.run(ptr, idx, n_steps)
        walls.append(time.perf_counter() - t0)
    assert rec is not None
    batch_wall = _median(walls)
    spikes = int(rec.idx.size)
    events = rec.syn_events
    # streaming: one call per step, the step's input already sliced (as a live encoder hands it)
    net = make_net()
    slices = [
        np.ascontiguousarray(idx[ptr[k] : ptr[k + 1]], dtype=np.int32) for k in range(n_steps)
    ]
    step = net.step
    clock = time.perf_counter_ns
    lat = np.zeros(n_steps, np.int64)
    s_spikes = 0
    t_start = time.perf_counter()
    for k in range(n_steps):
        t0 = clock()
        out = step(slices[k])
        lat[k] = clock() - t0
        s_spikes += out.size
    stream_wall = time.perf_counter() - t_start
    np_rt = np_p50 = np_p99 = None
    np_spikes: int | None = None
    if numpy_fn is not None:
        times: list[float] = []
        np_spikes = numpy_fn(times)
        np_total = float(np.sum(times))
        np_rt = sim_s / np_total
        np_p50 = float(np.percentile(times, 50) * 1e6)
        np_p99 = float(np.percentile(times, 99) * 1e6)
        if EXPECTED.get(name) is not None and np_spikes != EXPECTED[name]:
            print(f"bench core: numpy {name} gave {np_spikes} spikes", file=sys.stderr)
        elif np_spikes != spikes:
            print(f"bench core: {name}: numpy gave {np_spikes} spikes, the core {spikes}",
                  file=sys.stderr)
    rows = []
    for mode, wall, sp in (("batch", batch_wall, spikes), ("stream", stream_wall, s_spikes)):
        rt = sim_s / wall
        row = {
            "workload": name,
            "mode": mode,
            "spikes": int(sp),
            "expected_spikes": EXPECTED.get(name),
            "rt_factor": rt,
            "p50_step_us": float(np.percentile(lat, 50) / 1000) if mode == "stream" else None,
            "p99_step_us": float(np.percentile(lat, 99) / 1000) if mode == "stream" else None,
            "syn_events_per_s": events / wall,
            "peak_rss_mb": peak_rss_mb(),
            "numpy_rt_factor": np_rt,
            "numpy_spikes": np_spikes,
            "numpy_p50_step_us": np_p50,
            "numpy_p99_step_us": np_p99,
            "ratio": rt / np_rt if np_rt else None,
        }
        rows.append(row)
    return rows


def _kernel_loop() -> Any:
    """A compiled loop calling a streaming step kernel once per step (no Python between)."""
    from numba import njit

    @njit(cache=True, nogil=True)
    def loop(kernel, base, ptr, idx, n):  # noqa: ANN001, ANN202
        s = 0
        for k in range(n):  # a stepped slice: the 'A' layout `Network.step` compiles for
            s += kernel(base, idx[ptr[k] : ptr[k + 1] : 1])
        return s

    return loop


def stream_floor(dtype: str, repeat: int) -> dict[str, Any]:
    """What bounds W1's streaming step from below here: the step kernel alone, called once
    per step from a compiled loop (no Python between the steps; mean per step), a
    `Network.step` with no input spikes (the cost of the call and the neuron update; p50),
    and the clock the stream rows are timed with (p50)."""
    from edgesnn.core import Network

    d = _load("ff_1000x400.npz")
    W, ptr, idx = d["W"], d["in_ptr"], d["in_idx"].astype(np.int32)
    n = ptr.shape[0] - 1
    kernel = Network(ff_spec(W, dtype))._kstep  # the kernel `Network.step` calls
    loop = _kernel_loop()
    loop(kernel, Network(ff_spec(W, dtype))._base, ptr, idx, 2)  # compile
    walls = []
    spikes = 0
    for _ in range(repeat):
        net = Network(ff_spec(W, dtype))
        t0 = time.perf_counter()
        spikes = int(loop(kernel, net._base, ptr, idx, n))
        walls.append(time.perf_counter() - t0)
    net = Network(ff_spec(W, dtype))
    net.warm_up()
    step, empty, clock = net.step, np.zeros(0, np.int32), time.perf_counter_ns
    lat = np.zeros(n, np.int64)
    tick = np.zeros(n, np.int64)
    for k in range(n):
        t0 = clock()
        step(empty)
        lat[k] = clock() - t0
    for k in range(n):
        t0 = clock()
        tick[k] = clock() - t0
    return {"workload": "W1", "mode": "stream_floor", "dtype": dtype, "spikes": spikes,
            "kernel_loop_us": _median(walls) / n * 1e6,
            "empty_step_p50_us": float(np.percentile(lat, 50) / 1000),
            "clock_p50_us": float(np.percentile(tick, 50) / 1000)}


_STARTUP = r"""
import time, sys
t_import = time.perf_counter()
import numpy as np
from edgesnn.core import Network
from edgesnn.benchmarks.core import ff_spec, BENCH_DIR
d = np.load(BENCH_DIR / "ff_1000x400.npz")
net = Network(ff_spec(d["W"], sys.argv[1]))
ptr, idx = d["in_ptr"], d["in_idx"]
net.step(np.ascontiguousarray(idx[ptr[0]:ptr[1]], dtype=np.int32))
print("FIRST_STEP", flush=True)
for k in range(1, ptr.shape[0] - 1):
    net.step(idx[ptr[k]:ptr[k + 1]])
hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM")]
print("RSS_MB", int(hwm[0].split()[1]) / 1024.0, flush=True)
"""


def startup(dtype: str) -> dict[str, Any]:
    """Fresh process (warm on-disk cache): seconds to the first processed W1 step, peak RSS
    after streaming all of W1."""
    env = dict(os.environ)
    root = str(pathlib.Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    subprocess.run(
        [sys.executable, "-c", _STARTUP, dtype], env=env, check=True, capture_output=True
    )  # warms the cache when it is cold
    t0 = time.perf_counter()
    p = subprocess.Popen(
        [sys.executable, "-c", _STARTUP, dtype], env=env, stdout=subprocess.PIPE, text=True
    )
    assert p.stdout is not None
    first = None
    rss = None
    for line in p.stdout:
        if line.startswith("FIRST_STEP"):
            first = time.perf_counter() - t0
        elif line.startswith("RSS_MB"):
            rss = float(line.split()[1])
    p.wait()
    return {"workload": "W1", "mode": "startup", "first_step_s": first, "peak_rss_mb": rss}


_BUILD = r"""
import json, sys, tracemalloc
import numpy as np
from edgesnn.benchmarks.core import delay_spec, delays_d1, ff_spec, s10000_weights
from edgesnn.core import Network
W = s10000_weights()
if sys.argv[2] == "delays":  # 2000 x 1000 with a delay of 1-16 steps per synapse, as bytes
    W = np.ascontiguousarray(W[:2000])
    spec = delay_spec(W, delays_d1(W.shape).astype(np.uint8), sys.argv[1])
else:
    spec = ff_spec(W, sys.argv[1])
tracemalloc.start()
net = Network(spec)
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(json.dumps({"weights_mb": W.nbytes / 1e6, "peak_mb": peak / 1e6}))
"""


def s10000_weights() -> np.ndarray:
    """S10000x1000's weights (float32, fixed seed)."""
    rng = np.random.default_rng(7)
    return (rng.random((10_000, 1000), dtype=np.float32) * 0.2).astype(np.float32)


def build_memory(dtype: str, delays: bool = False) -> dict[str, Any]:
    """Fresh process: the most memory allocated (tracemalloc) while `Network(spec)` builds
    S10000x1000 from a spec holding its float32 weights, against those weights' bytes; with
    `delays`, its first 2000 rows with D1's per-synapse delays (given as bytes)."""
    env = dict(os.environ)
    root = str(pathlib.Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", _BUILD, dtype, "delays" if delays else "-"],
                         env=env, check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    name = "S2000x1000+delays" if delays else "S10000x1000"
    return {"workload": name, "mode": "build", "dtype": dtype, **r,
            "peak_over_weights": r["peak_mb"] / r["weights_mb"]}


def two_threads(dtype: str, repeat: int) -> dict[str, Any]:
    """S10000x1000 in batch on one thread and on two (`Network.threads`): real-time factors,
    the speed-up and whether the spikes are the same."""
    from edgesnn.core import Network
    from edgesnn.core.network import _cores

    W = s10000_weights()
    ptr, idx = _poisson(10_000, 1000, 20.0, 1e-3, 8)
    rt: dict[int, float] = {}
    out: dict[int, np.ndarray] = {}
    for threads in (1, 2):
        walls = []
        for r in range(repeat):
            net = Network(ff_spec(W, dtype))
            net.threads = threads
            if r == 0:
                net.warm_up(step=False)
            t0 = time.perf_counter()
            rec = net.run(ptr, idx)
            walls.append(time.perf_counter() - t0)
            out[threads] = rec.idx
        rt[threads] = 1.0 / _median(walls)
    return {"workload": "S10000x1000", "mode": "threads", "dtype": dtype, "cores": _cores(),
            "rt_1_thread": rt[1], "rt_2_threads": rt[2], "speedup": rt[2] / rt[1],
            "same_spikes": bool(np.array_equal(out[1], out[2]))}


SPARSE_DENSITIES = (0.02, 0.05, 0.1, 0.2, 0.5)


def sparse_spec(W: np.ndarray, density: float, dtype: str) -> Any:
    """W1's network with a sparse projection: W's weights at pairs drawn with `density`."""
    from edgesnn.core import NetworkSpec

    a, b = np.nonzero(np.random.default_rng(3).random(W.shape) < density)
    spec = NetworkSpec(dt_us=1000, dtype=dtype)
    spec.add_layer("in", W.shape[0], "input")
    spec.add_layer("out", W.shape[1], "cuba_lif", tau_mem_ms=20.0, tau_syn_exc_ms=5.0, v_th=1.0,
                   v_reset=0.0, integration="euler")  # fmt: skip
    spec.connect("in", "out", "sparse", pre=a, post=b, weight=W[a, b], gain=0.02 / density)
    return spec


def sparse_vs_dense_rows(dtype: str, repeat: int) -> list[dict[str, Any]]:
    """Batch real-time factors of each density stored as sparse rows and as dense rows."""
    from edgesnn.core import Network
    from edgesnn.core import network as core_network

    d = _load("ff_1000x400.npz")
    W, ptr, idx = d["W"], d["in_ptr"], d["in_idx"]
    rows = []
    default = core_network.DENSE_ROWS_DENSITY
    for density in SPARSE_DENSITIES:
        spec = sparse_spec(W, density, dtype)
        got: dict[str, tuple[float, bytes]] = {}
        for store, threshold in (("sparse", float("inf")), ("dense_rows", 0.0)):
            core_network.DENSE_ROWS_DENSITY = threshold
            try:
                Network(spec).warm_up(step=False)
                walls, rec = [], None
                for _ in range(max(repeat, 3)):
                    net = Network(spec)
                    t0 = time.perf_counter()
                    rec = net.run(ptr, idx)
                    walls.append(time.perf_counter() - t0)
            finally:
                core_network.DENSE_ROWS_DENSITY = default
            assert rec is not None
            got[store] = (10.0 / _median(walls), rec.idx.tobytes())
        rows.append({
            "workload": f"sparse {density:.0%}", "mode": "sparse_vs_dense", "density": density,
            "sparse_rt_factor": got["sparse"][0], "dense_rows_rt_factor": got["dense_rows"][0],
            "same_spikes": got["sparse"][1] == got["dense_rows"][1],
            "spikes": len(got["sparse"][1]) // 4,
            "core_stores": "dense_rows" if density >= default else "sparse",
        })  # fmt: skip
    return rows


def _load(name: str) -> dict[str, np.ndarray]:
    path = BENCH_DIR / name
    if not path.exists():
        raise SystemExit(
            f"bench core: {path} not found (the canonical workloads live in "
            "../shared/bench beside the repository)"
        )
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _poisson(
    n_in: int, n_steps: int, rate_hz: float, dt_s: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    counts = rng.binomial(n_in, rate_hz * dt_s, n_steps)
    ptr = np.zeros(n_steps + 1, np.int64)
    np.cumsum(counts, out=ptr[1:])
    idx = np.concatenate([np.sort(rng.choice(n_in, c, replace=False)) for c in counts])
    return ptr, idx.astype(np.int32)


def run_workload(name: str, dtype: str, repeat: int) -> list[dict[str, Any]]:
    from edgesnn.core import Network

    if name in ("W1", "W2"):
        d = _load("ff_1000x400.npz")
        W, ptr, idx = d["W"], d["in_ptr"], d["in_idx"]
        stdp = name == "W2"
        return measure(
            name,
            lambda: Network(ff_spec(W, dtype, stdp)),
            ptr,
            idx,
            10.0,
            lambda t: numpy_ff(W, ptr, idx, stdp, t),
            repeat,
        )
    if name == "sparse":
        return sparse_vs_dense_rows(dtype, repeat)
    if name == "D1":
        d = _load("ff_1000x400.npz")
        W, ptr, idx = d["W"], d["in_ptr"], d["in_idx"]
        D = delays_d1(W.shape)
        rows = measure(
            name,
            lambda: Network(delay_spec(W, D, dtype)),
            ptr,
            idx,
            10.0,
            lambda t: numpy_delay(W, D, ptr, idx, t),
            repeat,
        )
        rt, spikes = delay_modulo_rt(Network(delay_spec(W, D, dtype)), W, D, ptr, idx, 10.0,
                                     repeat)
        if spikes != rows[0]["spikes"]:
            print(f"bench core: D1: the modulo kernel gave {spikes} spikes, the core "
                  f"{rows[0]['spikes']}", file=sys.stderr)
        for r in rows:
            r["modulo_rt_factor"] = rt
            r["modulo_spikes"] = spikes
        return rows
    if name == "W3":
        d = _load("cuba_4000.npz")
        n = 10_000
        return measure(
            name,
            lambda: Network(cuba_spec(d, dtype)),
            np.zeros(n + 1, np.int64),
            np.zeros(0, np.int32),
            1.0,
            lambda t: numpy_cuba(d, n, t),
            repeat,
        )
    if name == "S100x50":
        d = _load("ff_100x50.npz")
        W, ptr, idx = d["W"], d["in_ptr"], d["in_idx"]
        g = 0.02 * 1000 / W.shape[0]
        return measure(
            name,
            lambda: Network(ff_spec(W, dtype, gain=g)),
            ptr,
            idx,
            10.0,
            lambda t: numpy_ff(W, ptr, idx, False, t, g),
            repeat,
        )
    if name == "S10000x1000":
        W = s10000_weights()
        ptr, idx = _poisson(10_000, 1000, 20.0, 1e-3, 8)
        return measure(
            name,
            lambda: Network(ff_spec(W, dtype)),
            ptr,
            idx,
            1.0,
            lambda t: numpy_ff(W, ptr, idx, False, t),
            repeat,
        )
    raise SystemExit(f"bench core: unknown workload {name!r}")


def _fmt(v: Any, nd: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def add_row(rows: list[dict[str, Any]], row: dict[str, Any], as_json: bool) -> None:
    """Keeps a result row for the table; with --json also prints it at once as a JSON line."""
    rows.append(row)
    if as_json:
        print(json.dumps(row), flush=True)


def print_table(rows: list[dict[str, Any]]) -> None:
    head = (
        "workload",
        "mode",
        "spikes",
        "expected",
        "RT",
        "p50 us",
        "p99 us",
        "syn ev/s",
        "RSS MB",
        "numpy RT",
        "numpy p99",
        "ratio",
    )
    lines = [head]
    for r in rows:
        if r["mode"] in ("startup", "daemon", "build", "sparse_vs_dense", "threads",
                         "stream_floor"):
            continue
        lines.append(
            (
                r["workload"],
                r["mode"],
                _fmt(r["spikes"]),
                _fmt(r["expected_spikes"]),
                _fmt(r["rt_factor"]),
                _fmt(r["p50_step_us"], 2),
                _fmt(r["p99_step_us"], 2),
                f"{r['syn_events_per_s']:.3g}",
                _fmt(r["peak_rss_mb"], 0),
                _fmt(r["numpy_rt_factor"]),
                _fmt(r["numpy_p99_step_us"], 2),
                _fmt(r["ratio"], 2) + "x" if r["ratio"] else "-",
            )
        )
    widths = [max(len(str(x[i])) for x in lines) for i in range(len(head))]
    for k, line in enumerate(lines):
        print("  ".join(str(x).rjust(widths[i]) for i, x in enumerate(line)))
        if k == 0:
            print("  ".join("-" * w for w in widths))
    sparse = [r for r in rows if r["mode"] == "sparse_vs_dense"]
    if sparse:
        print("\nsparse 1000 -> 400 (W1's input), batch x real time: stored as sparse rows / as "
              "dense rows (the core's choice marked *)")
        for r in sparse:
            mark = ("*", "") if r["core_stores"] == "sparse" else ("", "*")
            print(f"  {r['density']:4.0%}: sparse {r['sparse_rt_factor']:7.1f}{mark[0]:1}  dense "
                  f"rows {r['dense_rows_rt_factor']:7.1f}{mark[1]:1}  ratio "
                  f"{r['dense_rows_rt_factor'] / r['sparse_rt_factor']:.2f}x  "
                  f"{r['spikes']:,} spikes, {'same' if r['same_spikes'] else 'DIFFERENT'}")
    for r in rows:
        if r["mode"] == "stream_floor":
            print(
                f"\nW1 streaming, what bounds a step from below ({r['dtype']}): the step kernel "
                f"alone, called from a compiled loop, {r['kernel_loop_us']:.2f} us/step (mean, "
                f"{r['spikes']:,} spikes); `Network.step` with no input spikes "
                f"{r['empty_step_p50_us']:.2f} us p50; the clock timing each step "
                f"{r['clock_p50_us']:.2f} us p50"
            )
        if r["mode"] == "threads":
            print(
                f"\nS10000x1000 batch ({r['dtype']}) on 1 / 2 threads ({r['cores']} CPUs free): "
                f"{r['rt_1_thread']:.1f} / {r['rt_2_threads']:.1f} x real time = "
                f"{r['speedup']:.2f}x (target >= 1.6x), "
                f"{'same spikes' if r['same_spikes'] else 'DIFFERENT SPIKES'}"
            )
        if r["mode"] == "build":
            print(
                f"\nbuilding {r['workload']} ({r['dtype']}, fresh process): float32 weights "
                f"{_fmt(r['weights_mb'])} MB, most allocated while building "
                f"{_fmt(r['peak_mb'])} MB = {r['peak_over_weights']:.2f}x (target <= 2x)"
            )
        if r["workload"] == "D1" and r["mode"] == "batch":
            print(
                f"\nD1 per-synapse delays (batch): core {_fmt(r['rt_factor'])} x real time, the "
                f"per-synapse-modulo kernel {_fmt(r['modulo_rt_factor'])} x ({r['modulo_spikes']:,}"
                f" spikes): {r['rt_factor'] / r['modulo_rt_factor']:.2f}x"
            )
    for r in rows:
        if r["mode"] == "startup":
            print(
                f"\nstartup (fresh process, warm kernel cache): first W1 step after "
                f"{_fmt(r['first_step_s'], 2)} s; peak RSS streaming W1 "
                f"{_fmt(r['peak_rss_mb'], 0)} MB"
            )
        elif r["mode"] == "daemon" and r["workload"] == "demo":
            said = "said it was compiling" if r.get("cold_said_compiling") else "no notice"
            print(
                f"demo (`edgesnn run demo`): cold start (empty kernel cache) first processed "
                f"step {_fmt(r.get('cold_first_step_s'), 1)} s after process start ({said}); "
                f"warm start {_fmt(r['first_step_s'], 2)} s (targets: cold <= 20 s, warm <= 1 s)"
            )
        elif r["mode"] == "daemon":
            said = "said it was compiling" if r.get("cold_said_compiling") else "no notice"
            print(
                f"daemon (`edgesnn run` on the W1 network, warm cache): first processed step "
                f"{_fmt(r['first_step_s'], 2)} s after process start; peak RSS "
                f"{_fmt(r['peak_rss_mb'], 0)} MB; cold start "
                f"{_fmt(r.get('cold_first_step_s'), 1)} s ({said})"
            )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="edgesnn bench core", description=__doc__.split("\n")[0])
    p.add_argument(
        "--workload",
        default="all",
        help="W1, W2, W3, S100x50, S10000x1000, D1, sparse or all (comma-separated list ok)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument(
        "--dtype",
        default="float32",
        choices=("float32", "float64"),
        help="state precision of the core (numpy twins use the data's float32)",
    )
    p.add_argument("--repeat", type=int, default=3, help="batch runs (median)")
    p.add_argument("--no-startup", action="store_true", help="skip the fresh-process row")
    p.add_argument(
        "--no-daemon", action="store_true",
        help="skip the daemon rows (`edgesnn run` on W1 and on the demo, cold and warm; "
        "about a minute)",
    )
    args = p.parse_args(argv)
    names = (
        ["W1", "W2", "W3", "S100x50", "S10000x1000", "D1", "sparse"]
        if args.workload == "all"
        else args.workload.split(",")
    )
    rows: list[dict[str, Any]] = []
    for name in names:
        for row in run_workload(name.strip(), args.dtype, max(1, args.repeat)):
            add_row(rows, row, args.json)
    if "W1" in names:
        add_row(rows, stream_floor(args.dtype, max(1, args.repeat)), args.json)
    if "S10000x1000" in names:
        add_row(rows, build_memory(args.dtype), args.json)
        add_row(rows, build_memory(args.dtype, delays=True), args.json)
        add_row(rows, two_threads(args.dtype, max(1, args.repeat)), args.json)
    if not args.no_startup and ("W1" in names or args.workload == "all"):
        add_row(rows, startup(args.dtype), args.json)
    if not args.no_daemon and ("W1" in names or args.workload == "all"):
        from edgesnn.benchmarks.daemon import measure_daemon

        print("measuring the daemon (cold compile in a fresh cache, then a warm start)...",
              file=sys.stderr, flush=True)
        add_row(rows, measure_daemon("W1", args.dtype), args.json)
    if not args.no_daemon and args.workload == "all":
        from edgesnn.benchmarks.daemon import measure_demo

        print("measuring the demo pipeline's cold and warm start...", file=sys.stderr, flush=True)
        add_row(rows, measure_demo(), args.json)
    if not args.json:
        print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
