"""The one HTTP API of a daemon running several pipelines (edgesnn.runtime.multi).

Every endpoint of a single pipeline's API (edgesnn.runtime.http) exists per pipeline under
`/pipelines/<name>/`: `status`, `health`, `metrics`, `control/<component>/<command>`,
`checkpoint`, the dashboard at `/pipelines/<name>/` and its feed `/pipelines/<name>/ws`;
`/status/<name>` and `/health/<name>` are short forms. `GET /pipelines` lists them.

The top-level endpoints cover the daemon:

- `GET /status`: `pipelines`, one overview per pipeline (state, file, last_seq, restarts,
  last failure, next restart, config error), and `invalid_files`; with one pipeline it is also,
  field for field, that pipeline's single-pipeline status.
- `GET /health`: 200 when every pipeline is healthy; else 503 `degraded` with the reasons, each
  prefixed by the pipeline (a failed one restarting, a recent restart, an invalid file, what
  /health of a single pipeline reports), or `failed` when every pipeline failed.
- `GET /metrics`: the series of every pipeline (each carries its `pipeline` label) and
  `edgesnn_pipeline_restarts_total`, `edgesnn_pipeline_config_error`, and the API's own
  `edgesnn_http_*` series (also `http` in `GET /status`).
- `POST /checkpoint`: a checkpoint of every pipeline that has `[checkpoint] dir` (503 naming
  the pipelines whose checkpoint failed, with the paths of those written).
- With one pipeline, `/`, `/ws` and `POST /control/<component>/<command>` are that pipeline's,
  as when it runs alone; with several, `/` lists the dashboards and the other two answer 409
  naming the per-pipeline path.

Authentication, Host checks and connection limits are those of the single API (the same class).
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edgesnn.runtime.dashboard import PAGE
from edgesnn.runtime.http import HttpApi, ServiceFailure
from edgesnn.runtime.metrics import CONTENT_TYPE, _HttpCollector


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, default=str))


class _Merged(Collector):
    """The metric families of several registries as one (samples deduplicated)."""

    def __init__(self, families: list[Metric]):
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def merged_exposition(registries: list[Any], extra: list[Metric]) -> bytes:
    """One Prometheus text exposition of several registries plus `extra` families."""
    fams: dict[str, Metric] = {}
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for reg in registries:
        for m in reg.collect():
            f = fams.get(m.name)
            if f is None:
                f = fams[m.name] = Metric(m.name, m.documentation, m.type, m.unit)
            for s in m.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                if key not in seen:
                    seen.add(key)
                    f.samples.append(s)
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Merged([*fams.values(), *extra]))
    return generate_latest(reg)


class MultiHttpApi(HttpApi):
    """Serves the endpoints above for the slots of a MultiDaemon."""

    def __init__(self, daemon: Any, settings: dict[str, Any], token: str | None):
        self.daemon = daemon
        self.views: list[HttpApi] = []
        super().__init__(None, settings, token)  # type: ignore[arg-type]
        r = self.app.router
        r.add_get("/pipelines", self.pipelines)
        r.add_get("/pipelines/{pipeline}", self.p_redirect)
        r.add_get("/pipelines/{pipeline}/", self.p_dashboard)
        r.add_get("/pipelines/{pipeline}/dashboard", self.p_dashboard)
        r.add_get("/pipelines/{pipeline}/ws", self.p_websocket)
        r.add_get("/pipelines/{pipeline}/status", self.p_status)
        r.add_get("/pipelines/{pipeline}/health", self.p_health)
        r.add_get("/pipelines/{pipeline}/metrics", self.p_metrics)
        r.add_post("/pipelines/{pipeline}/control/{component}/{command}", self.p_control)
        r.add_post("/pipelines/{pipeline}/checkpoint", self.p_checkpoint)
        r.add_get("/status/{pipeline}", self.p_status)
        r.add_get("/health/{pipeline}", self.p_health)

    def attach(self, runtime: Any) -> None:
        """The daemon-wide API serves no runtime of its own (its views do)."""
        self.rt = runtime

    # ------------------------------------------------------------------ views
    def view(self, rt: Any) -> HttpApi:
        """A pipeline's part of the API: an HttpApi that does not listen, with its dashboard
        feed running."""
        import asyncio

        v = HttpApi(rt, self.settings, self.token)
        v.started = self.started
        v._push_task = asyncio.create_task(v._push_loop(), name=f"dashboard-push:{rt.name}")
        self.views.append(v)
        return v

    async def drop_view(self, v: HttpApi) -> None:
        if v in self.views:
            self.views.remove(v)
        await v.stop()

    async def stop(self) -> None:
        for v in list(self.views):
            await self.drop_view(v)
        await super().stop()

    def _slots(self) -> list[Any]:
        return list(self.daemon.slots.values())

    def _only(self) -> Any:
        """The slot when exactly one pipeline runs, else None."""
        slots = self._slots()
        return slots[0] if len(slots) == 1 else None

    def _slot(self, request: web.Request) -> Any:
        name = request.match_info["pipeline"]
        for s in self._slots():
            if s.name == name:
                return s
        names = ", ".join(s.name for s in self._slots()) or "none"
        raise web.HTTPNotFound(text=json.dumps({"error": f"no pipeline {name!r} (running: "
                                                         f"{names})"}),
                               content_type="application/json")

    @staticmethod
    def _view(slot: Any) -> HttpApi:
        if slot.view is None:
            raise web.HTTPServiceUnavailable(
                text=json.dumps({"error": f"pipeline {slot.name!r} is starting"}),
                content_type="application/json")
        return slot.view

    def _several(self, what: str) -> web.Response:
        names = ", ".join(s.name for s in self._slots())
        return _json({"error": f"{len(self._slots())} pipelines run here ({names}): use "
                               f"/pipelines/<name>{what}"}, status=409)

    # ------------------------------------------------------------------ status and health
    def _invalid(self) -> dict[str, list[str]]:
        return {str(p): probs for p, (_, probs) in self.daemon.invalid.items()}

    def _slot_status(self, s: Any) -> dict[str, Any]:
        if s.rt is not None:
            body = s.rt.heartbeat_message()
        else:
            body = {"pipeline": s.name, "state": s.state}
        body["last_detections"] = list(s.view.recent) if s.view is not None else []
        body["supervisor"] = s.overview()
        return body

    def _slot_health(self, s: Any) -> tuple[int, dict[str, Any]]:
        window = float(self.settings.get("health_window_s", 30.0))
        trouble = s.trouble(window)
        if s.state == "restarting":
            return 503, {"status": "failed", "state": s.state, "reasons": trouble}
        reasons = []
        if s.view is not None and s.rt is not None:
            reasons = s.view.health_watch.reasons(s.rt)
        reasons += trouble
        if reasons:
            return 503, {"status": "degraded", "state": s.state, "reasons": reasons}
        return 200, {"status": "ok", "state": s.state}

    async def status(self, request: web.Request) -> web.Response:
        slots = self._slots()
        over = {s.name: s.overview() for s in slots}
        body: dict[str, Any] = {}
        if len(slots) == 1:
            body = self._slot_status(slots[0])
        body.update({"pipelines": over, "invalid_files": self._invalid(),
                     "daemon_uptime_s": round(time.monotonic() - self.started, 3)})
        if hasattr(self, "guard"):  # the API's connections and 503s (it listens)
            body["http"] = self.http_counters()
        return _json(body)

    async def health(self, request: web.Request) -> web.Response:
        slots = self._slots()
        invalid = [f"{p}: invalid, not running: {probs[0]}" for p, probs in
                   self._invalid().items()]
        if len(slots) == 1:
            code, body = self._slot_health(slots[0])
            if invalid:
                code, body["status"] = 503, body["status"] if code != 200 else "degraded"
                body["reasons"] = body.get("reasons", []) + invalid
            return _json(body, status=code)
        reasons: list[str] = []
        rows: dict[str, dict[str, Any]] = {}
        for s in slots:
            _, b = self._slot_health(s)
            rows[s.name] = b
            reasons += [f"{s.name}: {r}" for r in b.get("reasons", [])]
        reasons += invalid
        states = {b["state"] for b in rows.values()}
        state = states.pop() if len(states) == 1 else "mixed"
        if not reasons:
            return _json({"status": "ok", "state": state, "pipelines": rows})
        failed = bool(rows) and all(b["status"] == "failed" for b in rows.values())
        return _json({"status": "failed" if failed else "degraded", "state": state,
                      "reasons": reasons, "pipelines": rows}, status=503)

    async def pipelines(self, request: web.Request) -> web.Response:
        return _json({"pipelines": [s.overview() for s in self._slots()],
                      "invalid_files": self._invalid()})

    async def p_status(self, request: web.Request) -> web.Response:
        return _json(self._slot_status(self._slot(request)))

    async def p_health(self, request: web.Request) -> web.Response:
        code, body = self._slot_health(self._slot(request))
        return _json(body, status=code)

    # ------------------------------------------------------------------ metrics
    def _own_families(self) -> list[Metric]:
        restarts = CounterMetricFamily("edgesnn_pipeline_restarts",
                                       "Restarts of the pipeline after a failure.",
                                       labels=["pipeline"])
        bad = GaugeMetricFamily("edgesnn_pipeline_config_error",
                                "1 while the pipeline's file holds an invalid newer version.",
                                labels=["pipeline"])
        for s in self._slots():
            restarts.add_metric([s.name], float(s.restarts))
            bad.add_metric([s.name], 1.0 if s.config_error else 0.0)
        return [restarts, bad]

    async def metrics(self, request: web.Request) -> web.Response:
        regs = [s.view.prom.registry for s in self._slots() if s.view is not None]
        body = merged_exposition(regs, [*self._own_families(),
                                        *_HttpCollector(self.prom).collect()])
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def p_metrics(self, request: web.Request) -> web.Response:
        body = self._view(self._slot(request)).prom.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    # ------------------------------------------------------------------ control
    async def control(self, request: web.Request) -> web.Response:
        denied = self._authorized(request)
        if denied is not None:
            return denied
        one = self._only()
        if one is None:
            return self._several("/control/<component>/<command>")
        return await self._view(one).control(request)

    async def p_control(self, request: web.Request) -> web.Response:
        denied = self._authorized(request)
        if denied is not None:
            return denied
        return await self._view(self._slot(request)).control(request)

    async def checkpoint_now(self, request: web.Request) -> web.Response:
        denied = self._authorized(request)
        if denied is not None:
            return denied
        one = self._only()
        if one is not None:
            return await self._view(one).checkpoint_now(request)
        from edgesnn.runtime.checkpoint import learned_components

        paths: dict[str, str | None] = {}
        errors: list[str] = []
        for s in self._slots():
            v = s.view
            if v is None or v.checkpoint is None or not learned_components(v.rt.components):
                continue
            try:
                paths[s.name] = str(await v.write_checkpoint())
            except ServiceFailure as e:
                paths[s.name] = None
                errors.append(f"{s.name}: {e}")
        if not paths:
            return _json({"error": "no pipeline has checkpoints ([checkpoint] dir) and "
                                   "learned state"}, 409)
        if errors:  # answered 503 by the middleware, counted, with what was written
            raise ServiceFailure("; ".join(errors), ok=False, paths=paths)
        return _json({"ok": True, "paths": paths})

    async def p_checkpoint(self, request: web.Request) -> web.Response:
        denied = self._authorized(request)
        if denied is not None:
            return denied
        return await self._view(self._slot(request)).checkpoint_now(request)

    # ------------------------------------------------------------------ dashboards
    async def dashboard(self, request: web.Request) -> web.Response:
        if self._only() is not None:
            return web.Response(text=PAGE, content_type="text/html")
        items = "".join(
            f'<li><a href="/pipelines/{html.escape(s.name)}/">{html.escape(s.name)}</a> '
            f"({html.escape(s.state)}, {html.escape(s.path.name)})</li>"
            for s in self._slots())
        page = ("<!doctype html><meta charset=utf-8><title>edgesnn</title>"
                f"<h1>edgesnn: {len(self._slots())} pipelines</h1><ul>{items}</ul>")
        return web.Response(text=page, content_type="text/html")

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        one = self._only()
        if one is None:
            return self._several("/ws")
        return await self._view(one).websocket(request)

    async def p_redirect(self, request: web.Request) -> web.Response:
        self._slot(request)
        raise web.HTTPFound(f"/pipelines/{request.match_info['pipeline']}/")

    async def p_dashboard(self, request: web.Request) -> web.Response:
        self._slot(request)
        return web.Response(text=PAGE, content_type="text/html")

    async def p_websocket(self, request: web.Request) -> web.StreamResponse:
        return await self._view(self._slot(request)).websocket(request)
