#!/usr/bin/env python3
"""Detections per second through a real Mosquitto broker with the MQTT sink.

    python3 tools/mqtt_throughput.py [--n 20000] [--qos 1] [--payload msgpack] [--rate 0]

Starts /usr/sbin/mosquitto on a free loopback port, a subscriber (QoS 1), and an MQTT sink in
this process; sends N detection maps as fast as the sink accepts them (or --rate per second)
and reports the rate at which they arrived at the subscriber, how many arrived (lost,
duplicated), and the added latency: the subscriber's receive time minus t_emit_us, the time
the runtime hands a detection to its sinks (p50/p99/max).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "sinks"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--qos", type=int, default=1, choices=(0, 1))
    ap.add_argument("--payload", default="msgpack", choices=("msgpack", "json"))
    ap.add_argument("--max-inflight", type=int, default=100)
    ap.add_argument("--rate", type=float, default=0.0,
                    help="detections per second (0: as fast as possible)")
    a = ap.parse_args()

    import msgpack
    from _mqtt_broker import Broker, Collector

    from edgesnn.components import BuildContext
    from edgesnn.sinks.mqtt import MqttSink

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp), port)
        broker.start()
        try:
            sub = Collector(port, ["edgesnn/+/+/det/#"])
            latency_us: list[int] = []
            on_message = sub.client.on_message

            def timed(client, userdata, m):  # noqa: ANN001 - paho's callback signature
                now = time.time_ns() // 1000
                on_message(client, userdata, m)
                if a.payload == "msgpack":
                    latency_us.append(now - msgpack.unpackb(m.payload)["t_emit_us"])

            sub.client.on_message = timed
            problems: list = []
            params = MqttSink.schema.validate(
                {"port": port, "device": "bench", "qos": a.qos, "payload": a.payload,
                 "outbox": a.n, "max_inflight": a.max_inflight, "drain_s": 30.0},
                "sinks.mq", problems)
            sink = MqttSink("mq", params, BuildContext(pipeline="bench"))

            async def run() -> tuple[float, float]:
                await sink.start()
                while not sink.connected:
                    await asyncio.sleep(0.01)
                t0 = time.perf_counter()
                for i in range(a.n):
                    await sink.send({"v": 1, "kind": "det", "pipeline": "bench", "seq": i,
                                     "t_sensor_us": i, "t_emit_us": time.time_ns() // 1000,
                                     "label": ("left", "right")[i % 2], "score": 0.9,
                                     "source": "r", "extra": {"counts": [3, 1]}})
                    if a.rate:
                        await asyncio.sleep(max(0.0, t0 + (i + 1) / a.rate
                                                - time.perf_counter()))
                    elif i % 256 == 0:
                        await asyncio.sleep(0)  # let acknowledgements in
                t_sent = time.perf_counter() - t0
                while sink.outbox is not None and len(sink.outbox) and \
                        time.perf_counter() - t0 < 60:
                    await asyncio.sleep(0.005)
                t_acked = time.perf_counter() - t0
                await sink.stop()
                return t_sent, t_acked

            t0 = time.perf_counter()
            t_sent, t_acked = asyncio.run(run())
            got = sub.wait_for(lambda s: len(s) >= a.n, timeout=60)
            t_all = time.perf_counter() - t0
            sub.close()
        finally:
            broker.stop()
    seqs = [msgpack.unpackb(p)["seq"] if a.payload == "msgpack" else None for _, p, _ in got]
    uniq = len(set(seqs)) if a.payload == "msgpack" else len(got)
    print(f"qos {a.qos} {a.payload}: {a.n} detections queued in {t_sent:.2f} s, all confirmed "
          f"by the broker after {t_acked:.2f} s ({a.n / t_acked:,.0f}/s); subscriber received "
          f"{len(got)} ({uniq} distinct) after {t_all:.2f} s ({len(got) / t_all:,.0f}/s)")
    if latency_us:
        lat = sorted(latency_us)
        pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] / 1000  # noqa: E731
        print(f"added latency (send to subscriber): p50 {pick(0.5):.2f} ms, p99 "
              f"{pick(0.99):.2f} ms, max {lat[-1] / 1000:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
