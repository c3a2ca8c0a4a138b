"""`edgesnn demo`: run the demo pipeline and watch its detections arrive over ZeroMQ."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from typing import Any

from edgesnn.runtime import eventloop


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the synthetic DVS motion demo with a live subscriber",
        description="Start the shipped 'demo' pipeline (synthetic DVS camera -> spike encoder "
        "-> SNN motion detectors -> direction readout -> ZeroMQ), subscribe to it over ZeroMQ "
        "like any client would, print each detection next to the scene's ground truth, and "
        "finish with the accuracy. Needs no file and no hardware.",
    )
    p.add_argument("--duration", type=float, default=15.0,
                   help="seconds of sensor time to run (default 15; 0 runs until Ctrl-C)")
    p.add_argument("--endpoint", default="tcp://127.0.0.1:5556",
                   help="where the demo publishes (default tcp://127.0.0.1:5556)")
    p.add_argument("--speed", default="realtime",
                   help='"realtime" (default), "max", or a multiple of real time')
    p.add_argument("--seed", type=int, default=1, help="scene seed (default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgesnn.commands.run import load_with_overrides, print_problems
    from edgesnn.errors import ConfigError

    overrides = [
        f"drivers.camera.duration_s={float(args.duration)}",
        f"drivers.camera.speed={args.speed}",  # a bare word stays a string
        f"drivers.camera.seed={args.seed}",
        f"sinks.zmq.endpoint={args.endpoint}",
    ]
    try:
        cfg = load_with_overrides("demo", overrides)
    except ConfigError as e:
        return print_problems("demo", e)
    return eventloop.run(_demo(cfg, args.endpoint))


async def _demo(cfg: Any, endpoint: str) -> int:
    from edgesnn.client import AsyncSubscriber
    from edgesnn.models.motion import evaluate
    from edgesnn.runtime.daemon import run_daemon
    from edgesnn.runtime.runner import Runtime

    rt = Runtime(cfg)
    driver = rt.components["camera"]
    received: list[dict[str, Any]] = []
    print(f"demo: publishing on {endpoint}; subscribing there (Ctrl-C stops)", flush=True)
    print(f"{'seq':>5} {'sensor ms':>10} {'detected':>9} {'truth':>6} {'score':>6} "
          f"{'latency ms':>10}", flush=True)

    async def listen() -> None:
        async with AsyncSubscriber(endpoint) as sub:
            async for msg in sub:
                received.append(msg)
                truth = _truth(driver, msg["t_sensor_us"])
                lat = (time.time_ns() // 1000 - msg["t_emit_us"]) / 1000
                mark = "ok" if truth == msg["label"] else ("?" if truth is None else "WRONG")
                print(f"{msg['seq']:>5} {msg['t_sensor_us'] / 1000:>10.1f} {msg['label']:>9} "
                      f"{truth or '-':>6} {msg['score']:>6.2f} {lat:>10.2f} {mark}", flush=True)

    task = asyncio.create_task(listen())
    await asyncio.sleep(0.2)  # let the subscriber connect before the first detection
    code = await run_daemon(cfg, rt)
    await asyncio.sleep(0.2)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    end = max((m["t_sensor_us"] for m in received), default=0) + 1
    segs = list(driver.schedule(end))
    score = evaluate(received, segs)
    print(
        f"demo: {score['detections']} detections, {score['accuracy'] * 100:.1f} % right; "
        f"{score['coverage'] * 100:.0f} % of {score['segments']} objects detected",
        flush=True,
    )
    return code


def _truth(driver: Any, t_us: int) -> str | None:
    for s in driver.schedule(t_us + 1):
        if s.t_start_us <= t_us < s.t_end_us + 30_000:
            return str(s.direction)
    return None
