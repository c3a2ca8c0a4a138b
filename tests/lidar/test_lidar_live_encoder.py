"""Live Velodyne UDP over real loopback sockets, replay drivers, the range-change encoder and
the sector obstacle readout."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import numpy as np
import pytest
from conftest import HeldBranch, free_port
from edgesnn_drivers.lidar import velodyne
from edgesnn_drivers.lidar.ouster import OusterPcapDriver
from hypothesis import given, settings
from hypothesis import strategies as st
from lidar_reference import RefRangeChange

from edgesnn.components import BuildContext
from edgesnn.encoders.generic import built
from edgesnn.encoders.lidar import LidarRangeChangeEncoder
from edgesnn.events import LIDAR_POINT, EventBatch, SpikeRaster
from edgesnn.readouts.sector import SectorObstacleReadout


@pytest.fixture
def vlp16(data_dir: Path) -> Path:
    p = data_dir / "lidar" / "velodyne_vlp16_example.pcap"
    if not p.exists():
        pytest.skip(f"{p} missing")
    return p


def vlp16_payloads(p: Path) -> list[bytes]:
    return [row.tobytes() for c in velodyne.iter_pcap_payloads(p) for row in c.data]


async def _send_until(tx: socket.socket, port: int, datagrams: list[bytes]) -> None:
    for d in datagrams:
        tx.sendto(d, ("127.0.0.1", port))
        await asyncio.sleep(0.0005)


def pcap_points(p: Path) -> np.ndarray:
    """What velodyne_pcap decodes from the capture, batch after batch."""
    d = built(velodyne.VelodynePcapDriver, {"path": str(p), "speed": "max"}, BuildContext(),
              "v")
    return np.concatenate([b.events for b in collect(d)])


def same_points(live: np.ndarray, ref: np.ndarray) -> None:
    """Every field equal in order; times equal up to whole hours (live device µs past the hour
    take their hour from the host clock, the capture's from its pcap clock)."""
    assert len(live) == len(ref)
    for f in live.dtype.names:
        if f != "t":
            assert (live[f] == ref[f]).all(), f
    assert ((live["t"] - ref["t"]) % velodyne.HOUR_US == 0).all()
    assert len(np.unique(live["t"] - ref["t"])) == 1


async def _wait_bound(d: velodyne.VelodyneUdpDriver, port: int) -> None:
    await asyncio.wait_for(d.start(), 5)
    assert d._tr is not None and d._tr.getsockname()[1] == port


def test_live_udp_receives_real_payloads(vlp16: Path) -> None:
    """The whole capture as datagrams (a position packet first): the live driver's points
    equal velodyne_pcap's, and nothing waits for later packets."""
    port = free_port()
    data = vlp16_payloads(vlp16)
    position = bytes(512)
    ref = pcap_points(vlp16)

    async def go() -> tuple[np.ndarray, dict]:
        d = built(velodyne.VelodyneUdpDriver, {"port": port, "lost_after_s": 5.0},
                  BuildContext(), "velo")
        await _wait_bound(d, port)
        got: list[np.ndarray] = []
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

        async def consume() -> None:
            async for b in d.batches():
                got.append(b.events)
                if sum(len(g) for g in got) >= len(ref):
                    return

        task = asyncio.create_task(consume())
        await _send_until(tx, port, [position] + data)
        await asyncio.wait_for(task, 20)
        tx.close()
        await d.stop()
        return np.concatenate(got), d.status()

    pts, st_ = asyncio.run(go())
    assert st_["model"] == "VLP-16" and st_["position_packets"] == 1
    assert st_["datagrams"] == 85 and st_["bad_size"] == 0 and st_["late_points"] == 0
    same_points(pts, ref)


def test_live_udp_hands_each_burst_over_at_once(vlp16: Path) -> None:
    """Bursts of 12 packets sent while the event loop cannot run: each wake-up hands all of
    them over as one batch, at once (a timeout is the failure), batches follow one another in
    time and every point of the capture comes out once, in order."""
    port = free_port()
    data = vlp16_payloads(vlp16)
    ref = pcap_points(vlp16)

    async def go() -> tuple[list[EventBatch], list[int], velodyne.VelodyneUdpDriver]:
        d = built(velodyne.VelodyneUdpDriver, {"port": port}, BuildContext(), "velo")
        await _wait_bound(d, port)
        assert d.sensor_now_us() is None and not d.holds_data()
        it = d.batches().__aiter__()
        got: list[EventBatch] = []
        now_after: list[int] = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for k in range(0, len(data), 12):
                for p in data[k:k + 12]:
                    tx.sendto(p, ("127.0.0.1", port))
                assert d.holds_data()  # received (read off the socket), not handed over
                got.append(await asyncio.wait_for(it.__anext__(), 5))
                assert not d.holds_data()
                now = d.sensor_now_us()
                assert now is not None
                now_after.append(now)
        nxt = asyncio.ensure_future(it.__anext__())
        await asyncio.sleep(0.05)
        assert not nxt.done()  # nothing more: every burst came out whole
        nxt.cancel()
        await d.stop()
        return got, now_after, d

    got, now_after, d = asyncio.run(go())
    assert len(got) == -(-len(data) // 12)
    same_points(np.concatenate([b.events for b in got]), ref)
    for a, b in zip(got, got[1:]):
        assert b.t_start_us == a.t_end_us
    for b, now in zip(got, now_after, strict=True):
        t = b.events["t"]
        assert (t >= b.t_start_us).all() and (t < b.t_end_us).all()
        assert t.max() + 1 == b.t_end_us  # the batch ends just past its newest point
        assert now >= got[0].t_start_us  # the host clock maps to device time
    assert d.status()["late_points"] == 0 and d.status()["window_time_jumps"] == 0


def test_live_udp_device_clock_jumps_start_new_time_bases(vlp16: Path) -> None:
    """Real payloads whose device clock jumps 20 minutes ahead, then 15 minutes back: each jump
    starts a new time base (only the jump back counts in `window_time_jumps`), and the host
    clock maps to the new base at once, so the runtime never waits for, or runs ahead of, the
    old one."""
    import struct
    import time

    rows = [r.tobytes() for c in velodyne.iter_pcap_payloads(vlp16) for r in c.data][:24]
    rel = [int(np.frombuffer(r[1200:1204], "<u4")[0]) for r in rows]
    rel = [t - rel[0] for t in rel]

    def packets(base_us: int) -> list[bytes]:
        out = []
        for r, dt in zip(rows, rel, strict=True):
            p = bytearray(r)
            p[1200:1204] = struct.pack("<I", (base_us + dt) % velodyne.HOUR_US)
            out.append(bytes(p))
        return out

    port = free_port()
    minute = 60_000_000

    async def go() -> tuple[list[EventBatch], list[int], dict]:
        d = built(velodyne.VelodyneUdpDriver, {"port": port}, BuildContext(), "velo")
        await _wait_bound(d, port)
        it = d.batches().__aiter__()
        got, nows = [], []
        now = time.time_ns() // 1000
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for base in (now - 20 * minute, now, now - 15 * minute):
                for p in packets(base):
                    tx.sendto(p, ("127.0.0.1", port))
                got.append(await asyncio.wait_for(it.__anext__(), 5))
                nows.append(d.sensor_now_us())
        await d.stop()
        return got, nows, d.status()

    got, nows, st_ = asyncio.run(go())
    assert st_["window_time_jumps"] == 1 and st_["late_points"] == 0
    a, b, c = got
    assert b.t_start_us > a.t_end_us + 19 * minute and c.t_end_us < b.t_start_us - 14 * minute
    for batch, now in zip(got, nows, strict=True):
        assert batch.t_start_us == int(batch.events["t"].min())  # each starts a new base
        assert now >= batch.t_start_us
    assert nows[2] < b.t_start_us  # back on the new (earlier) base, not the old one


def test_live_udp_holds_packets_until_the_model_is_known(vlp16: Path) -> None:
    """Fewer packets than model detection needs are held (and reported as held), then come out
    with the next ones: nothing is lost while the model is unknown."""
    port = free_port()
    data = vlp16_payloads(vlp16)[:12]

    async def go() -> tuple[list[EventBatch], bool]:
        d = built(velodyne.VelodyneUdpDriver, {"port": port}, BuildContext(), "velo")
        await _wait_bound(d, port)
        it = d.batches().__aiter__()
        nxt = asyncio.ensure_future(it.__anext__())
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for p in data[:3]:
                tx.sendto(p, ("127.0.0.1", port))
            while d.stream.data_packets < 3:  # taken by the batch loop, decoded later
                await asyncio.sleep(0.005)
            held = d.holds_data() and not nxt.done()
            for p in data[3:]:
                tx.sendto(p, ("127.0.0.1", port))
            got = [await asyncio.wait_for(nxt, 5)]
        await d.stop()
        return got, held

    got, held = asyncio.run(go())
    assert held and len(got) == 1
    pay = np.frombuffer(b"".join(data), np.uint8).reshape(-1, velodyne.PACKET_BYTES)
    dev = pay[:, 1200:1204].copy().view("<u4").ravel().astype(np.int64)
    ref, _ = velodyne.decode_packets(pay, dev, velodyne.VLP16)
    same_points(got[0].events, ref)


def test_live_udp_finish_hands_over_packets_held_for_the_model(vlp16: Path) -> None:
    """finish() with fewer packets than model detection needs: they are decoded and handed
    over as the last batch, then the stream ends (nothing is lost at a stop)."""
    port = free_port()
    data = vlp16_payloads(vlp16)[:3]

    async def go() -> list[EventBatch]:
        d = built(velodyne.VelodyneUdpDriver, {"port": port}, BuildContext(), "velo")
        await _wait_bound(d, port)
        it = d.batches().__aiter__()
        nxt = asyncio.ensure_future(it.__anext__())
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for p in data:
                tx.sendto(p, ("127.0.0.1", port))
            while d.stream.data_packets < 2:  # some taken by the batch loop and held
                await asyncio.sleep(0.005)
            assert not nxt.done()
        assert d.finish()
        got = [await asyncio.wait_for(nxt, 5)]
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(it.__anext__(), 5)
        await d.stop()
        return got

    got = asyncio.run(go())
    pay = np.frombuffer(b"".join(data), np.uint8).reshape(-1, velodyne.PACKET_BYTES)
    dev = pay[:, 1200:1204].copy().view("<u4").ravel().astype(np.int64)
    ref, _ = velodyne.decode_packets(pay, dev, velodyne.VLP16)
    same_points(got[0].events, ref)


LIVE_LIDAR = """
[pipeline]
name = "live_lidar"
dt_us = 1000
drain_timeout_s = 120  # a cold kernel cache may still be compiling the encoder at the drain

[drivers.lidar]
type = "velodyne_udp"
port = {port}

[encoders.ranges]
type = "lidar_range_change"
inputs = ["lidar"]
sectors = 36
rings = 16

[readouts.sectors]
type = "sector_obstacle"
inputs = ["ranges"]
obstacle_m = 2.5

[sinks.out]
type = "file"
inputs = ["sectors"]
path = "{out}"
"""


def test_live_udp_pipeline_closes_steps_on_the_host_clock(vlp16: Path, tmp_path: Path) -> None:
    """velodyne_udp in a running pipeline: the capture sent in bursts, then silence; the
    runtime closes the steps after the last points on the host clock and no point is late."""
    from edgesnn.config import pipeline as pl
    from edgesnn.runtime.runner import Runtime

    port = free_port()
    data = vlp16_payloads(vlp16)
    n_ref = len(pcap_points(vlp16))
    cfg = tmp_path / "lidar.toml"
    cfg.write_text(LIVE_LIDAR.format(port=port, out=tmp_path / "det.jsonl"), encoding="utf-8")
    rt = Runtime(pl.load(str(cfg)))

    async def go() -> dict:
        task = asyncio.create_task(rt.run(install_signals=False))
        try:
            for _ in range(3000):
                if rt.state == "running" and rt.components["lidar"]._tr is not None:
                    break
                await asyncio.sleep(0.01)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                for k in range(0, len(data), 12):
                    for p in data[k:k + 12]:
                        tx.sendto(p, ("127.0.0.1", port))
                    await asyncio.sleep(0.002)
            for _ in range(2000):
                c = rt.counters()
                if (c["ranges"]["points_in"] >= n_ref
                        and c["lidar"].get("host_clock_steps", 0) >= 1):
                    break
                await asyncio.sleep(0.01)
        finally:
            rt.request_stop()
            assert await asyncio.wait_for(task, 30) == 0
        return rt.counters()  # drained: everything handed over went through

    c = asyncio.run(go())
    assert c["ranges"]["points_in"] == n_ref
    assert c["lidar"]["host_clock_steps"] >= 1
    assert c["ranges"]["late"] == 0 and c["lidar"]["late_points"] == 0


def test_live_udp_a_stop_hands_over_what_the_driver_received(vlp16: Path,
                                                             tmp_path: Path) -> None:
    """A stop while the branch is busy: velodyne_udp reads what waits on its socket, hands it
    over with what it holds (packets held for the model included), and the branch drains all
    of it before the runtime returns 0."""

    from edgesnn.config import pipeline as pl

    port = free_port()
    data = vlp16_payloads(vlp16)
    n_ref = len(pcap_points(vlp16))
    cfg = tmp_path / "lidar.toml"
    cfg.write_text(LIVE_LIDAR.format(port=port, out=tmp_path / "det.jsonl"), encoding="utf-8")
    held = HeldBranch(pl.load(str(cfg)))
    rt = held.rt

    async def go() -> None:
        lidar = rt.components["lidar"]
        for _ in range(3000):
            if rt.state == "running" and lidar._tr is not None:
                break
            await asyncio.sleep(0.01)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for p in data[:12]:
                tx.sendto(p, ("127.0.0.1", port))
            for _ in range(12000):  # through (a cold cache compiles the encoder first)
                if rt.counters()["ranges"]["points_in"] > 0:
                    break
                await asyncio.sleep(0.01)
            held.hold()  # the branch's worker is busy from here
            for p in data[12:24]:
                tx.sendto(p, ("127.0.0.1", port))
            for _ in range(500):  # handed over: the driver waits for the branch
                if lidar.datagrams == 24 and not lidar._pending \
                        and rt.counters()["lidar"]["emitted"] >= 2:
                    break
                await asyncio.sleep(0.002)
            for k in range(24, len(data), 12):
                for p in data[k:k + 12]:
                    tx.sendto(p, ("127.0.0.1", port))
                await asyncio.sleep(0.002)
            rt.request_stop()  # finish() reads what the socket still holds
            await asyncio.sleep(0.02)

    assert held.run(go) == 0
    c = rt.counters()
    assert c["lidar"]["datagrams"] == len(data) and c["lidar"]["dropped"] == 0
    assert c["ranges"]["points_in"] == n_ref


def test_live_udp_counts_silence_and_reopens(vlp16: Path) -> None:
    """Silence counts the sensor lost; a sensor back within the reopen's backoff loses
    nothing (the socket stays open through it), a longer silence reopens the socket, and
    every packet sent arrives."""
    port = free_port()
    data = vlp16_payloads(vlp16)

    async def go() -> tuple[dict, int]:
        d = built(velodyne.VelodyneUdpDriver, {"port": port, "lost_after_s": 0.2,
                                               "batch_us": 5_000}, BuildContext(), "v")
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sent = 0

        async def consume() -> None:
            async for _ in d.batches():
                if d.datagrams >= 40:
                    return

        async def send(n: int, gap_s: float) -> None:
            nonlocal sent
            for _ in range(n):
                tx.sendto(data[sent % len(data)], ("127.0.0.1", port))
                sent += 1
                await asyncio.sleep(gap_s)

        task = asyncio.create_task(consume())
        while d._tr is None:  # bound
            await asyncio.sleep(0.005)
        await send(20, 0.005)
        while d.lost < 1:  # silence until the driver counts the sensor lost
            await asyncio.sleep(0.005)
        await send(10, 0.002)  # back within the 50 ms backoff: no reopen, nothing lost
        reopens_then = d.reopens
        while d.reopens < 1:  # a longer silence: the socket is reopened
            await asyncio.sleep(0.01)
        await send(10, 0.005)
        await asyncio.wait_for(task, 10)
        tx.close()
        await d.stop()
        return d.status(), reopens_then

    st_, reopens_then = asyncio.run(go())
    assert reopens_then == 0
    assert st_["lost"] >= 2 and st_["reopens"] >= 1
    assert st_["datagrams"] == 40 and st_["dropped"] == 0


def test_live_udp_retries_a_busy_port() -> None:
    port = free_port()
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", port))

    async def go() -> dict:
        d = built(velodyne.VelodyneUdpDriver, {"port": port, "reconnect_max_s": 0.1},
                  BuildContext(), "v")
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, blocker.close)
        await asyncio.wait_for(d._open(), 5)
        st_ = {"open_failures": d.open_failures, "bound": d._tr is not None}
        await d.stop()
        return st_

    st_ = asyncio.run(go())
    assert st_["open_failures"] >= 1 and st_["bound"]


def test_live_udp_gives_up_when_told() -> None:
    port = free_port()
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", port))
    try:
        d = built(velodyne.VelodyneUdpDriver, {"port": port, "reconnect_max_s": 0.05,
                                               "max_reconnects": 2}, BuildContext(), "v")
        with pytest.raises(ConnectionError, match="gave up after 3"):
            asyncio.run(d._open())
    finally:
        blocker.close()


def collect(drv: object) -> list[EventBatch]:
    async def go() -> list[EventBatch]:
        return [b async for b in drv.batches()]  # type: ignore[attr-defined]
    return asyncio.run(go())


def test_replay_drivers_cut_by_time(vlp16: Path, data_dir: Path) -> None:
    d = built(velodyne.VelodynePcapDriver, {"path": str(vlp16), "speed": "max",
                                            "batch_us": 10_000}, BuildContext(), "v")
    batches = collect(d)
    pts = np.concatenate([b.events for b in batches])
    ref, _ = velodyne.read_points(vlp16)
    assert np.sort(pts, order="t").tobytes() == np.sort(ref, order="t").tobytes()
    for b in batches:
        assert b.kind == "lidar" and (b.events["t"] >= b.t_start_us).all()
        assert (b.events["t"] < b.t_end_us).all()
    assert d.status()["data_packets"] == 84
    o = built(OusterPcapDriver, {"path": str(data_dir / "lidar" /
                                             "ouster_os1_64_legacy_1024x10.pcap"),
                                 "speed": "max"}, BuildContext(), "o")
    n = sum(len(b) for b in collect(o))
    assert n == 92_270 and o.status()["packets"] == 100


# --- encoder ------------------------------------------------------------------------------


def points(t: list[int], ring: list[int], az: list[float], d: list[float],
           z: list[float] | None = None) -> np.ndarray:
    p = np.zeros(len(t), LIDAR_POINT)
    p["t"], p["ring"], p["azimuth_deg"], p["distance_m"] = t, ring, az, d
    p["z"] = z if z is not None else 0.0
    return p


def sweep(t0: int, dist: dict[int, float], sectors: int = 8, per: int = 4,
          default: float = 10.0) -> np.ndarray:
    """One turn of ring 0: `per` points per sector at distance dist.get(sector, default)."""
    n = sectors * per
    az = (np.arange(n) + 0.5) * 360.0 / n
    d = [dist.get(int(a * sectors / 360), default) for a in az]
    return points(list(t0 + np.arange(n) * 100), [0] * n, list(az), d)


def test_encoder_spikes_when_a_sector_gets_closer() -> None:
    enc = built(LidarRangeChangeEncoder, {"sectors": 8, "rings": 1, "threshold_m": 0.5},
                BuildContext(dt_us=1000), "l")
    turns = [sweep(0, {}), sweep(3200, {2: 4.0}), sweep(6400, {2: 4.0}), sweep(9600, {})]
    spikes = []
    for i, p in enumerate(turns):
        r = enc.encode(EventBatch("s", i, i * 3200, (i + 1) * 3200, p, "lidar"))
        if r is not None:
            spikes.extend((r.t0_us + k * r.dt_us, int(c)) for k in range(r.n_steps)
                          for c in r.step_spikes(k))
    assert raster_spikes(enc.flush()) == []  # the last open cell closes unchanged
    assert [c for _, c in spikes] == [2, 8 + 2]  # closer in turn 2, farther again in turn 4
    assert 3200 <= spikes[0][0] < 6400 and spikes[1][0] >= 9600
    assert list(enc.sector_nearest_m()) == [10.0] * 8  # z = 0 is inside the default band


def raster_spikes(r: SpikeRaster | None) -> list[tuple[int, int]]:
    if r is None:
        return []
    return [(r.t0_us + k * r.dt_us, int(c)) for k in range(r.n_steps) for c in r.step_spikes(k)]


def test_encoder_matches_reference_on_real_points(vlp16: Path) -> None:
    pts, _ = velodyne.read_points(vlp16)
    pts = np.sort(pts, order="t", kind="stable")
    # two copies of the capture, the second with every range 1.5 m shorter in one quadrant
    second = pts.copy()
    second["t"] += 200_000
    quad = (second["azimuth_deg"] >= 90) & (second["azimuth_deg"] < 180)
    second["distance_m"][quad] = np.maximum(second["distance_m"][quad] - 1.5, 0.1)
    allp = np.concatenate([pts, second])
    params = {"sectors": 12, "rings": 16, "threshold_m": 0.3, "relative": 0.05,
              "z_band_m": [-0.5, 2.0]}
    enc = built(LidarRangeChangeEncoder, params, BuildContext(dt_us=1000), "l")
    got = []
    t_start = int(allp["t"][0])
    for k in range(0, len(allp), 5000):
        chunk = allp[k:k + 5000]
        t_end = int(allp["t"][min(k + 5000, len(allp) - 1)]) if k + 5000 < len(allp) else \
            int(allp["t"][-1]) + 1
        got += raster_spikes(enc.encode(EventBatch("s", 0, t_start, t_end, chunk, "lidar")))
        t_start = t_end
    got += raster_spikes(enc.flush())
    ref = RefRangeChange(16, 12, 0.3, 0.05, -0.5, 2.0)
    ref.feed([(int(p["t"]), int(p["ring"]), float(p["azimuth_deg"]), float(p["distance_m"]),
               float(p["z"])) for p in allp])
    ref.finish(int(allp["t"][-1]))
    want = sorted({(t - t % 1000, c) for t, c in ref.spikes})
    assert sorted(set(got)) == want
    closer = [c for _, c in got if c < 16 * 12]
    in_quad = sum(c % 12 in (3, 4, 5) for c in closer)  # sectors 90-180 deg
    assert len(closer) > 10 and in_quad > 0.7 * len(closer)
    near = enc.sector_nearest_m()
    np.testing.assert_allclose(near, np.array(ref.nearest(), np.float32), rtol=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.floats(0, 359.9), st.floats(0.1, 30)),
                min_size=1, max_size=200),
       st.integers(1, 199))
def test_encoder_kernel_fuzz_and_chunking(pts: list[tuple[int, float, float]], cut: int) -> None:
    arr = points(list(range(0, 10 * len(pts), 10)), [p[0] for p in pts], [p[1] for p in pts],
                 [p[2] for p in pts])
    ref = RefRangeChange(4, 6, 0.5, 0.0, -1.0, 1.0)
    ref.feed([(int(a["t"]), int(a["ring"]), float(a["azimuth_deg"]), float(a["distance_m"]),
               0.0) for a in arr])
    ref.finish(int(arr["t"][-1]))
    enc = built(LidarRangeChangeEncoder, {"sectors": 6, "rings": 4, "threshold_m": 0.5,
                                          "relative": 0.0}, BuildContext(dt_us=10), "l")
    cut = min(cut, len(arr))
    t_cut = int(arr["t"][cut - 1]) + 1
    got = raster_spikes(enc.encode(EventBatch("s", 0, 0, t_cut, arr[:cut], "lidar")))
    got += raster_spikes(enc.encode(EventBatch("s", 1, t_cut, int(arr["t"][-1]) + 1,
                                               arr[cut:], "lidar")))
    got += raster_spikes(enc.flush())
    assert sorted(got) == sorted(set(ref.spikes))


# --- readout ------------------------------------------------------------------------------


def raster_with(near: list[float], t0: int) -> SpikeRaster:
    r = SpikeRaster.empty(16, dt_us=1000, t0_us=t0)
    r.ptr = np.zeros(11, np.int64)  # 10 empty steps
    r.meta = {"sector_nearest_m": np.array(near, np.float32)}
    return r


def test_readout_obstacle_and_clear_with_hysteresis() -> None:
    ro = built(SectorObstacleReadout, {"obstacle_m": 2.0, "hysteresis_m": 0.5}, BuildContext(),
               "ro")
    inf = float("inf")
    seq = [[5, 5, 5, 5], [5, 1.5, 5, inf], [5, 1.6, 5, 5], [5, 2.3, 5, 5], [5, 2.6, 5, 5]]
    out = [ro.update(raster_with(n, i * 10_000)) for i, n in enumerate(seq)]
    assert [len(o) for o in out] == [0, 1, 0, 0, 1]
    d = out[1][0]
    assert d.label == "obstacle" and d.extra["sector"] == 1 and d.extra["distance_m"] == 1.5
    assert d.extra["azimuth_deg"] == [90.0, 180.0] and d.score == pytest.approx(0.25)
    assert d.t_sensor_us == 10_000 + 10_000
    assert out[4][0].label == "clear" and out[4][0].extra["sector"] == 1


def test_readout_activity_fallback() -> None:
    ro = built(SectorObstacleReadout, {"sectors": 4, "min_spikes": 2, "window_ms": 5.0},
               BuildContext(), "ro")
    dense = np.zeros((10, 8), bool)
    dense[1, 1] = dense[3, 5] = dense[4, 2] = True  # channels 1 and 5 are sector 1
    dets = ro.update(SpikeRaster.from_dense(dense, dt_us=1000))
    assert [(d.label, d.extra["sector"], d.extra["spikes"]) for d in dets] == [
        ("activity", 1, 2)]


def test_encoder_to_readout_on_real_capture(vlp16: Path) -> None:
    drv = built(velodyne.VelodynePcapDriver, {"path": str(vlp16), "speed": "max"},
                BuildContext(), "v")
    enc = built(LidarRangeChangeEncoder, {"sectors": 8, "rings": 16, "z_band_m": [-0.3, 2.0]},
                BuildContext(dt_us=1000), "e")
    ro = built(SectorObstacleReadout, {"obstacle_m": 5.0}, BuildContext(), "r")
    dets = []
    for b in collect(drv):
        r = enc.encode(b)
        if r is not None:
            dets += ro.update(r)
    pts, _ = velodyne.read_points(vlp16)
    band = pts[(pts["z"] >= -0.3) & (pts["z"] <= 2.0)]
    sec = (band["azimuth_deg"] * 8 / 360).astype(int)
    blocked = {int(s) for s in range(8)
               if (sec == s).any() and band["distance_m"][sec == s].min() < 5.0}
    assert {d.extra["sector"] for d in dets if d.label == "obstacle"} <= blocked
    assert len(dets) >= 1
