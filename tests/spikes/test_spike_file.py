"""The spike_file driver and the spikes encoder: file format, batching, binning, pipelines."""

from __future__ import annotations

import asyncio
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from edgesnn_drivers.spikes import (
    SpikeFileDriver,
    load_spike_file,
    save_spike_file,
    spike_batches,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from edgesnn.components import BuildContext
from edgesnn.config import pipeline as pl
from edgesnn.encoders.spikes import SpikeEncoder
from edgesnn.errors import ConfigError, FormatError
from edgesnn.events import SPIKE, EventBatch

BENCH = Path(__file__).resolve().parents[2].parent / "shared" / "bench"
W1 = BENCH / "ff_1000x400.npz"


def need_w1() -> Path:
    if not W1.exists():
        pytest.skip(f"canonical workload {W1} not found (../shared/bench beside the repo)")
    return W1


def random_csr(rng: np.random.Generator, n_steps: int, n_ch: int, p: float
               ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    spikes = rng.random((n_steps, n_ch)) < p
    steps, chans = np.nonzero(spikes)
    ptr = np.zeros(n_steps + 1, np.int64)
    np.cumsum(np.bincount(steps, minlength=n_steps), out=ptr[1:])
    return ptr, chans.astype(np.int32)


# --- the file ---------------------------------------------------------------------------------


def test_reads_the_w1_input_exactly() -> None:
    path = need_w1()
    sf = load_spike_file(path)
    with np.load(path) as z:
        ptr, idx = z["in_ptr"], z["in_idx"]
    assert (sf.n_steps, sf.n_spikes, sf.n_channels, sf.dt_us) == (10_000, 200_102, 1000, 1000)
    assert np.array_equal(sf.in_ptr, ptr)
    for k in range(0, 10_000, 997):  # same set per step (the file is sorted within steps)
        assert sorted(idx[ptr[k] : ptr[k + 1]]) == list(sf.in_idx[ptr[k] : ptr[k + 1]])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_steps=st.integers(1, 40), n_ch=st.integers(1, 30),
       dt_us=st.sampled_from([100, 1000, 1500]))  # fmt: skip
def test_save_load_round_trip(tmp_path_factory: pytest.TempPathFactory, seed: int,
                              n_steps: int, n_ch: int, dt_us: int) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    ptr, idx = random_csr(rng, n_steps, n_ch, 0.3)
    # shuffle within steps: the loader sorts them
    for k in range(n_steps):
        rng.shuffle(idx[ptr[k] : ptr[k + 1]])
    p = tmp_path_factory.mktemp("rt") / "s.npz"
    save_spike_file(p, ptr, idx, dt_us=dt_us, n_channels=n_ch)
    sf = load_spike_file(p)
    assert sf.dt_us == dt_us and sf.n_channels == n_ch and np.array_equal(sf.in_ptr, ptr)
    for k in range(n_steps):
        assert list(sf.in_idx[ptr[k] : ptr[k + 1]]) == sorted(idx[ptr[k] : ptr[k + 1]])


def test_other_tools_files_default_dt_and_channels(tmp_path: Path) -> None:
    # a bare npz as any tool writes it: no dt_us, no n_inputs, compressed, int64 indices
    p = tmp_path / "other.npz"
    np.savez_compressed(p, in_ptr=np.array([0, 2, 2, 3]), in_idx=np.array([4, 1, 7]))
    sf = load_spike_file(p)
    assert (sf.dt_us, sf.n_channels, sf.in_idx.tolist()) == (1000, 8, [1, 4, 7])
    assert load_spike_file(p, n_channels=20, dt_us=500).n_channels == 20


# --- bad files: FormatError naming the array and the byte offset ----------------------------


def _data_offset(path: Path, member: str) -> int:
    """Independent reading of the zip local header: where the member's bytes start."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    raw = path.read_bytes()
    h = info.header_offset
    assert raw[h : h + 4] == b"PK\x03\x04"
    name_len, extra_len = struct.unpack("<HH", raw[h + 26 : h + 30])
    return h + 30 + name_len + extra_len


def _element_bytes(path: Path, offset: int, dtype: str) -> int:
    raw = path.read_bytes()
    return int(np.frombuffer(raw[offset : offset + np.dtype(dtype).itemsize], dtype)[0])


def test_not_a_zip_names_byte_0(tmp_path: Path) -> None:
    p = tmp_path / "x.npz"
    p.write_bytes(b"\x93NUMPY not a zip at all")
    with pytest.raises(FormatError) as e:
        load_spike_file(p)
    assert e.value.offset == 0 and "zip" in str(e.value) and str(p) in str(e.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="no such file"):
        load_spike_file(tmp_path / "nope.npz")


def test_truncated_zip_names_the_end(tmp_path: Path) -> None:
    good = tmp_path / "g.npz"
    save_spike_file(good, np.array([0, 1, 2]), np.array([0, 1]))
    raw = good.read_bytes()
    p = tmp_path / "t.npz"
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FormatError) as e:
        load_spike_file(p)
    assert e.value.offset == len(raw) // 2


def test_missing_array(tmp_path: Path) -> None:
    p = tmp_path / "m.npz"
    np.savez(p, in_ptr=np.array([0, 1]))
    with pytest.raises(FormatError, match="in_idx"):
        load_spike_file(p)


def test_decreasing_ptr_offset_points_at_the_element(tmp_path: Path) -> None:
    p = tmp_path / "d.npz"
    np.savez(p, in_ptr=np.array([0, 3, 2, 4], np.int64), in_idx=np.arange(4, dtype=np.int32))
    with pytest.raises(FormatError) as e:
        load_spike_file(p)
    assert "in_ptr" in str(e.value) and "element 2" in str(e.value)
    assert _element_bytes(p, e.value.offset, "<i8") == 2  # the offending value itself


def test_out_of_range_channel_offset_points_at_the_element(tmp_path: Path) -> None:
    p = tmp_path / "r.npz"
    idx = np.array([0, 1, 2, 9, 3], np.int32)
    np.savez(p, in_ptr=np.array([0, 2, 5], np.int64), in_idx=idx, n_inputs=np.int64(5))
    with pytest.raises(FormatError) as e:
        load_spike_file(p)
    assert "in_idx[3]" in str(e.value)
    assert _element_bytes(p, e.value.offset, "<i4") == 9
    with pytest.raises(FormatError, match=r"in_idx\[3\]"):  # the driver's n_channels rules
        load_spike_file(tmp_path / "r.npz", n_channels=4)


def test_duplicate_in_a_step_offset_points_at_the_second_one(tmp_path: Path) -> None:
    p = tmp_path / "u.npz"
    idx = np.array([5, 0, 3, 0, 6], np.int32)  # channel 0 twice in step 1 (elements 1, 3)
    np.savez(p, in_ptr=np.array([0, 1, 5], np.int64), in_idx=idx)
    with pytest.raises(FormatError) as e:
        load_spike_file(p)
    assert "channel 0 spikes twice in step 1" in str(e.value)
    data = _data_offset(p, "in_idx.npy")
    assert e.value.offset is not None and (e.value.offset - data) % 4 == 0
    assert e.value.offset > data + 3 * 4  # past the header, at element 3
    assert _element_bytes(p, e.value.offset, "<i4") == 0


def test_pickled_object_array_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "o.npz"
    np.savez(p, in_ptr=np.array([0, 1]), in_idx=np.array([object()], dtype=object))
    with pytest.raises(FormatError) as e:
        load_spike_file(p)
    assert "in_idx" in str(e.value) and e.value.offset is not None


def test_corrupt_member_names_the_array(tmp_path: Path) -> None:
    p = tmp_path / "c.npz"
    np.savez(p, in_ptr=np.array([0, 2], np.int64), in_idx=np.array([1, 2], np.int32))
    data = _data_offset(p, "in_idx.npy")
    raw = bytearray(p.read_bytes())
    raw[data + 2] ^= 0xFF  # inside the .npy magic
    p.write_bytes(bytes(raw))
    with pytest.raises(FormatError) as e:
        load_spike_file(p)
    assert "in_idx" in str(e.value) and e.value.offset == data


def test_wrong_format_tag_and_shapes(tmp_path: Path) -> None:
    p = tmp_path / "f.npz"
    np.savez(p, in_ptr=np.array([0, 1]), in_idx=np.array([0]), format=np.array("other"))
    with pytest.raises(FormatError, match="format"):
        load_spike_file(p)
    np.savez(p, in_ptr=np.array([[0, 1]]), in_idx=np.array([0]))
    with pytest.raises(FormatError, match="in_ptr"):
        load_spike_file(p)
    np.savez(p, in_ptr=np.array([0]), in_idx=np.array([], np.int32))
    with pytest.raises(FormatError, match="in_ptr"):
        load_spike_file(p)
    np.savez(p, in_ptr=np.array([0, 1]), in_idx=np.array([0.5]))
    with pytest.raises(FormatError, match="in_idx"):
        load_spike_file(p)


# --- batches from the driver ------------------------------------------------------------------


def ref_events(ptr: np.ndarray, idx: np.ndarray, dt_us: int) -> list[tuple[int, int]]:
    """Slow reference: every (t, channel) of the file, step by step."""
    out = []
    for k in range(len(ptr) - 1):
        for c in sorted(int(x) for x in idx[ptr[k] : ptr[k + 1]]):
            out.append((k * dt_us, c))
    return out


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_steps=st.integers(1, 30),
       dt_us=st.sampled_from([250, 1000, 3000]), batch_us=st.integers(1, 12_000))  # fmt: skip
def test_batches_cover_the_file_in_order(seed: int, n_steps: int, dt_us: int,
                                         batch_us: int) -> None:  # fmt: skip
    from edgesnn_drivers.spikes import SpikeFile

    rng = np.random.default_rng(seed)
    ptr, idx = random_csr(rng, n_steps, 12, 0.3)
    sf = SpikeFile(ptr, idx, 12, dt_us)
    batches = list(spike_batches(sf, "s", batch_us))
    got = [(int(t), int(c)) for b in batches for t, c in zip(b.events["t"], b.events["channel"],
                                                              strict=True)]  # fmt: skip
    assert got == ref_events(ptr, idx, dt_us)
    assert batches[0].t_start_us == 0 and batches[-1].t_end_us == n_steps * dt_us
    for a, b in zip(batches, batches[1:], strict=False):
        assert a.t_end_us == b.t_start_us
    for b in batches:
        assert b.kind == "records" and b.events.dtype == SPIKE
        assert ((b.events["t"] >= b.t_start_us) & (b.events["t"] < b.t_end_us)).all()


def test_driver_loops_with_monotonic_time(tmp_path: Path) -> None:
    p = tmp_path / "s.npz"
    ptr, idx = np.array([0, 1, 1, 3], np.int64), np.array([2, 0, 1], np.int32)
    save_spike_file(p, ptr, idx, dt_us=1000)
    ctx = BuildContext(base_dir=str(tmp_path))
    params = SpikeFileDriver.schema.validate(
        {"path": "s.npz", "speed": "max", "loop": True, "batch_us": 2000}, "drivers.d", []
    )
    drv = SpikeFileDriver("d", params, ctx)
    assert drv.sensor_shape() == (3,)

    async def take(n: int) -> list[EventBatch]:
        out = []
        async for b in drv.batches():
            out.append(b)
            if len(out) == n:
                break
        return out

    bs = asyncio.run(take(6))  # three loops of two batches
    t = np.concatenate([b.events["t"] for b in bs])
    c = np.concatenate([b.events["channel"] for b in bs])
    assert t.tolist() == [0, 2000, 2000, 3000, 5000, 5000, 6000, 8000, 8000]
    assert c.tolist() == [2, 0, 1] * 3
    assert [b.seq for b in bs] == list(range(6))
    assert drv.status()["loops"] >= 2


# --- the encoder --------------------------------------------------------------------------------


def ref_bin(events: list[tuple[int, int]], t_first_batch: int, dt_us: int, n_ch: int,
            emitted_until: int) -> dict[int, set[int]]:  # fmt: skip
    """Slow reference binning: step -> channels over the grid anchored at the first batch."""
    t0 = t_first_batch - t_first_batch % dt_us
    out: dict[int, set[int]] = {}
    for t, c in events:
        if 0 <= c < n_ch and t0 <= t < emitted_until:
            out.setdefault(t0 + (t - t0) // dt_us * dt_us, set()).add(c)
    return out


def encoder(n_ch: int, dt_us: int) -> SpikeEncoder:
    params = SpikeEncoder.schema.validate({"n_channels": n_ch}, "encoders.e", [])
    return SpikeEncoder("e", params, BuildContext(dt_us=dt_us))


@settings(max_examples=120, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), dt_us=st.sampled_from([1, 7, 100, 1000]),
       n_batches=st.integers(1, 8), flush=st.booleans())  # fmt: skip
def test_encoder_matches_slow_binning(seed: int, dt_us: int, n_batches: int,
                                      flush: bool) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    n_ch = 10
    enc = encoder(n_ch, dt_us)
    t = int(rng.integers(0, 5000))
    t_first = t
    all_ev: list[tuple[int, int]] = []
    rasters = []
    for _ in range(n_batches):
        span = int(rng.integers(0, 8 * dt_us + 50))
        n = int(rng.integers(0, 30))
        ts = rng.integers(t, t + span, n) if span else np.full(n, t)
        if span == 0:
            n = 0
            ts = ts[:0]
        ev = np.zeros(n, SPIKE)
        ev["t"] = ts  # unsorted within the batch on purpose
        ev["channel"] = rng.integers(-2, n_ch + 3, n)  # some out of range
        all_ev += [(int(a), int(b)) for a, b in zip(ev["t"], ev["channel"], strict=True)]
        r = enc.encode(EventBatch("s", 0, t, t + span, ev, "records"))
        if r is not None:
            rasters.append(r)
        t += span
    if flush:
        r = enc.flush()
        if r is not None:
            rasters.append(r)
    got: dict[int, set[int]] = {}
    t_next = None
    for r in rasters:
        assert r.n_channels == n_ch and r.dt_us == dt_us
        if t_next is not None:
            assert r.t0_us == t_next  # contiguous, each step once
        t_next = r.t_end_us
        for k in range(r.n_steps):
            s = r.step_spikes(k)
            assert list(s) == sorted(set(s.tolist()))
            if s.size:
                got[r.t0_us + k * dt_us] = set(s.tolist())
    until = t_next if t_next is not None else -1
    assert got == ref_bin(all_ev, t_first, dt_us, n_ch, until)
    n_bad = sum(1 for _, c in all_ev if not 0 <= c < n_ch)
    assert enc.out_of_range == n_bad
    if flush:  # everything in range has been emitted
        assert enc.spikes_out + enc.merged == len(all_ev) - n_bad


def test_encoder_counts_late_spikes_and_reports_drops() -> None:
    enc = encoder(4, 1000)
    ev = np.zeros(2, SPIKE)
    ev["t"], ev["channel"] = [100, 1500], [1, 2]
    r1 = enc.encode(EventBatch("s", 0, 0, 2000, ev, "records"))
    assert r1 is not None and r1.n_steps == 2
    late = np.zeros(1, SPIKE)
    late["t"], late["channel"] = [500], [3]  # belongs to an emitted step
    r2 = enc.encode(EventBatch("s", 1, 2000, 3000, late, "records", dropped_before=5))
    assert r2 is not None and r2.n_spikes == 0 and enc.late == 1
    assert r2.dropped_before == 5 + 1


def test_encoder_refuses_batches_without_spike_fields() -> None:
    enc = encoder(4, 1000)
    with pytest.raises(ValueError, match="channel"):
        enc.encode(EventBatch("s", 0, 0, 1000, np.zeros(3, np.dtype([("t", "<i8")])),
                              "records"))  # fmt: skip


# --- pipelines ----------------------------------------------------------------------------------


def pipeline_text(n_channels_line: str = "", driver: str = "") -> str:
    return f"""
[pipeline]
name = "replay"
dt_us = 1000

[drivers.input]
{driver or 'type = "spike_file"'}
path = "input.npz"
speed = "max"

[encoders.spikes]
type = "spikes"
inputs = ["input"]
{n_channels_line}

[networks.net]
type = "snn"
inputs = ["spikes"]
model = "model.npz"

[readouts.groups]
type = "spike_count"
inputs = ["net"]
labels = ["a", "b", "c", "d"]
neurons_per_label = 100

[sinks.out]
type = "file"
inputs = ["groups"]
path = "det.jsonl"
"""


def test_w1_through_the_runtime_gives_the_reference_spike_count(tmp_path: Path) -> None:
    """The whole chain (file -> records -> raster -> core) reproduces W1's 43 034 spikes."""
    need_w1()
    from edgesnn.benchmarks.daemon import write_workload
    from edgesnn.commands.run import load_with_overrides
    from edgesnn.runtime.runner import Runtime

    path = write_workload(tmp_path, "W1", "float32")
    cfg = load_with_overrides(str(path), ['drivers.input.speed="max"', "drivers.input.loop=false"])
    rt = Runtime(cfg)
    assert asyncio.run(rt.run(install_signals=False)) == 0
    c = rt.counters()
    assert c["input"]["spikes"] == 200_102 and c["input"]["steps"] == 10_000
    assert c["spikes"]["spikes_out"] == 200_102 and c["spikes"]["late"] == 0
    assert c["net"]["steps"] == 10_000
    assert c["net"]["spikes_out"] == 43_034  # ../shared/bench/README.md
    assert rt.first_step_s is not None and rt.first_step_s > 0
    assert rt.heartbeat_message()["startup"]["first_step_s"] == rt.first_step_s
    assert (tmp_path / "detections.jsonl").stat().st_size > 0


def test_validation_learns_channels_from_the_file(tmp_path: Path) -> None:
    from edgesnn.core import Network, NetworkSpec

    spec = NetworkSpec(dt_us=1000)
    spec.add_layer("in", 1000, "input")
    spec.add_layer("out", 400, "lif")
    spec.connect("in", "out", "dense", weight=0.1)
    Network(spec).save(tmp_path / "model.npz")
    ptr, idx = random_csr(np.random.default_rng(1), 20, 900, 0.01)
    save_spike_file(tmp_path / "input.npz", ptr, idx, n_channels=900)
    toml = tmp_path / "p.toml"
    toml.write_text(pipeline_text())
    with pytest.raises(ConfigError) as e:  # 900 channels feed a 1000-input network
        pl.load(str(toml))
    assert "expects 1000 input channels but 'spikes' produces 900" in str(e.value)
    toml.write_text(pipeline_text("n_channels = 1000"))
    cfg = pl.load(str(toml))  # fewer file channels than the raster: fine
    assert cfg.by_id()["spikes"].params["n_channels"] == 1000
    toml.write_text(pipeline_text("n_channels = 800"))
    with pytest.raises(ConfigError, match="has 900 channels but n_channels = 800"):
        pl.load(str(toml))
    toml.write_text(pipeline_text(driver='type = "synthetic_dvs"\nwidth = 8\nheight = 8')
                    .replace('path = "input.npz"\n', ""))  # fmt: skip
    with pytest.raises(ConfigError, match="SPIKE records"):
        pl.load(str(toml))


def test_bad_file_fails_the_daemon_start_with_its_offset(tmp_path: Path) -> None:
    from edgesnn.core import Network, NetworkSpec
    from edgesnn.runtime.runner import Runtime

    spec = NetworkSpec(dt_us=1000)
    spec.add_layer("in", 1000, "input")
    spec.add_layer("out", 400, "lif")
    spec.connect("in", "out", "dense", weight=0.1)
    Network(spec).save(tmp_path / "model.npz")
    np.savez(tmp_path / "input.npz", in_ptr=np.array([0, 2, 1]), in_idx=np.array([1, 2]))
    toml = tmp_path / "p.toml"
    toml.write_text(pipeline_text("n_channels = 1000"))
    rt = Runtime(pl.load(str(toml)))
    assert asyncio.run(rt.run(install_signals=False)) == 1
    assert rt.failure is not None and rt.failure[0] == "input"
    err = rt.failure[1]
    assert isinstance(err, FormatError) and err.offset is not None and "in_ptr" in str(err)


def test_edgesnn_info_describes_a_spike_file(tmp_path: Path) -> None:
    from edgesnn_drivers.info import info

    p = tmp_path / "s.npz"
    save_spike_file(p, np.array([0, 2, 3]), np.array([0, 5, 1]), dt_us=500, n_channels=6)
    d = info(str(p))
    assert d["format"] == "edgesnn-spikes"
    assert (d["steps"], d["spikes"], d["channels"], d["dt_us"]) == (2, 3, 6, 500)
    assert d["rate_hz_per_channel"] == pytest.approx(3 / (6 * 0.001))

