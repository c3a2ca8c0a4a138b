"""`edgesnn warmup [PIPELINE...]`: compile (or load) every kernel a pipeline needs, ahead.

numba compiles each kernel the first time it runs and keeps it in its on-disk cache; a cold
start of a pipeline with an SNN spends tens of seconds (minutes on a small ARM board) there.
Warm-up builds the pipeline's components and runs its own data through them, once: a few
batches of each replayable driver (files, the synthetic camera; read as fast as possible),
the encoder, the network (both the single-step and the batch kernels) and the readout, with
one progress line per component. Sinks are not started (nothing is bound or published). It
then records what it compiled, so a daemon knows its start will be warm. Run it as the
service's user with the service's NUMBA_CACHE_DIR (see `edgesnn service install`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from typing import Any

#: batches taken from each driver, and how long to wait for a live one
BATCHES = 3
LIVE_WAIT_S = 2.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "warmup",
        help="compile every kernel a pipeline needs, so its first start is fast",
        description="Build PIPELINE (default: demo) and run a few batches of its own data "
        "through every component, compiling each numba kernel it uses into the on-disk cache "
        "(or loading it), with a progress line per component. Sinks are not started. Exit 0 "
        "when done, 2 for an invalid pipeline, 1 when a component fails.",
    )
    p.add_argument("pipelines", nargs="*", default=["demo"], metavar="PIPELINE",
                   help="pipeline files or shipped names (default: demo)")
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="override a value before warming up (as for `run`)")
    p.set_defaults(func=run)


def _say(text: str) -> None:
    print(f"warmup: {text}", file=sys.stderr, flush=True)


def _count(before: dict[str, list[str]], after: dict[str, list[str]]) -> int:
    return sum(len(set(v) - set(before.get(k, []))) for k, v in after.items())


async def _driver_batches(comp: Any) -> list[Any]:
    """Up to BATCHES batches from a driver; none from a live source that stays quiet."""
    out: list[Any] = []
    await comp.start()
    try:
        it = comp.batches().__aiter__()
        deadline = time.monotonic() + LIVE_WAIT_S
        while len(out) < BATCHES:
            try:
                out.append(await asyncio.wait_for(it.__anext__(),
                                                  max(0.01, deadline - time.monotonic())))
            except (StopAsyncIteration, TimeoutError):
                break
        with contextlib.suppress(Exception):
            await it.aclose()
    finally:
        await comp.stop()
    return out


async def warm(cfg: Any) -> int:
    """Run a few batches through every component of `cfg`; returns the exit code."""
    from edgesnn.components import Driver, Encoder, Network, Readout
    from edgesnn.runtime import kernelcache

    comps = cfg.build()
    outputs: dict[str, list[Any]] = {}
    groups = [c for c in cfg.components if c.kind != "sink"]
    for k, c in enumerate(groups, 1):
        comp = comps[c.id]
        inputs = [x for i in c.inputs for x in outputs.get(i, [])]
        before = kernelcache.compiled_signatures()
        t = time.perf_counter()
        note = ""
        try:
            if isinstance(comp, Driver):
                res = await _driver_batches(comp)
                note = f"{len(res)} batch{'es' if len(res) != 1 else ''}"
                if not res:
                    note = (f"no data within {LIVE_WAIT_S:g} s (a live source): what reads "
                            "its data compiles on the first packet")
            elif isinstance(comp, Encoder):
                res = [r for r in (await asyncio.to_thread(
                    lambda comp=comp, inputs=inputs: [comp.encode(b) for b in inputs]
                    + [comp.flush()])) if r is not None]
            elif isinstance(comp, Network):
                await comp.start()  # loads or compiles the batch kernel
                if hasattr(comp, "warm_all_kernels"):  # and the streaming step kernel
                    await asyncio.to_thread(comp.warm_all_kernels)
                try:
                    res = await asyncio.to_thread(
                        lambda comp=comp, inputs=inputs: [comp.process(r) for r in inputs])
                finally:
                    await comp.stop()
            elif isinstance(comp, Readout):
                res = await asyncio.to_thread(
                    lambda comp=comp, inputs=inputs: [comp.update(r) for r in inputs]
                    + [comp.flush()])
                res = []
            else:
                res = []
        except Exception as e:
            from edgesnn.components import failure_hint

            _say(f"[{k}/{len(groups)}] {c.kind} {c.id!r} ({c.cls.type_name}) failed: "
                 f"{type(e).__name__}: {e}{failure_hint(e)}")
            return 1
        outputs[c.id] = res
        n_new = _count(before, kernelcache.compiled_signatures())
        kernels = f"{n_new} kernel{'s' if n_new != 1 else ''} compiled or loaded"
        _say(f"[{k}/{len(groups)}] {c.kind} {c.id!r} ({c.cls.type_name}): "
             f"{time.perf_counter() - t:.2f} s, {kernels}" + (f"; {note}" if note else ""))
    kernelcache.remember(cfg)
    return 0


def run(args: argparse.Namespace) -> int:
    from edgesnn.commands.run import load_with_overrides, print_problems
    from edgesnn.errors import ConfigError
    from edgesnn.runtime import kernelcache

    worst = 0
    for name in args.pipelines:
        try:
            cfg = load_with_overrides(name, args.set)
        except ConfigError as e:
            worst = max(worst, print_problems(name, e))
            continue
        # replay as fast as possible: warm-up wants the kernels, not the recording's pace
        fast = [f"{c.section}.{c.id}.speed=max" for c in cfg.components
                if c.kind == "driver" and "speed" in c.cls.schema.fields]
        if fast:
            cfg = load_with_overrides(name, [*args.set, *fast])
        cold = kernelcache.cold_kernels(cfg)
        state = ("cold: compiling (minutes on a small board)" if cold is None or cold
                 else "cache already warm")
        _say(f"pipeline {cfg.name!r}: {len(cfg.components)} components; {state}")
        t0 = time.perf_counter()
        code = asyncio.run(warm(cfg))
        if code == 0:
            _say(f"pipeline {cfg.name!r} ready in {time.perf_counter() - t0:.1f} s; its "
                 "kernels are in the cache")
        worst = max(worst, code)
    return worst
