"""HTTP API of a running daemon (aiohttp): health, Prometheus metrics, status, control.

GET  /health    liveness and state
GET  /metrics   Prometheus text format: per-component counters
GET  /status    JSON: pipeline, state, counters, the last detections
GET  /          a live dashboard (polls /status)
POST /control/{component}/{command}   JSON body as keyword arguments, e.g.
     /control/snn/learning {"on": false}, /control/snn/reward {"value": 1.0},
     /control/snn/save {"path": "model.npz"} (a file name in the state folder)
POST /checkpoint   write a checkpoint of the learned state now (when [checkpoint] dir is set)
Mutating endpoints need `Authorization: Bearer <token>`, the token taken from the environment
variable named by `[http] token_env`; without a configured token they are refused.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import json
import logging
from typing import Any

from aiohttp import web

from edgesnn.runtime.runner import Runtime

log = logging.getLogger("edgesnn.http")

_DASHBOARD = """<!doctype html><html><head><meta charset="utf-8"><title>edgesnn</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;background:#111;color:#ddd}
table{border-collapse:collapse}td,th{padding:2px 10px;border-bottom:1px solid #333;text-align:right}
th:first-child,td:first-child{text-align:left}.det{font-size:28px;color:#6f6}</style></head>
<body><h1>edgesnn <span id="p"></span></h1><div>state <b id="s"></b>, up <span id="u"></span> s,
last seq <span id="q"></span></div><p class="det" id="d">&nbsp;</p>
<table id="t"><thead><tr><th>component</th><th>kind</th><th>received</th><th>emitted</th>
<th>dropped</th><th>queue</th><th>busy s</th></tr></thead><tbody></tbody></table>
<script>
async function tick(){try{const r=await fetch('status');const s=await r.json();
p.textContent=s.pipeline;document.getElementById('s').textContent=s.state;
u.textContent=s.uptime_s;q.textContent=s.last_seq;const l=s.last_detections.slice(-1)[0];
d.textContent=l?`${l.label}  ${(l.score*100).toFixed(0)}%  (seq ${l.seq})`:'\\u00a0';
const tb=document.querySelector('#t tbody');tb.innerHTML='';
for(const [k,c] of Object.entries(s.counters)){const tr=document.createElement('tr');
for(const v of [k,c.kind,c.received,c.emitted,c.dropped,c.queue_depth,c.busy_s]){
const td=document.createElement('td');td.textContent=v;tr.appendChild(td)}tb.appendChild(tr)}}
catch(e){document.getElementById('s').textContent='unreachable'}}
const p=document.getElementById('p'),u=document.getElementById('u'),
q=document.getElementById('q'),d=document.getElementById('d');tick();setInterval(tick,1000);
</script></body></html>"""

_METRIC_FIELDS = {
    "received": ("counter", "Items offered to the component's input channel."),
    "emitted": ("counter", "Items the component produced."),
    "dropped": ("counter", "Items dropped by the input channel's when_full policy."),
    "queue_depth": ("gauge", "Items waiting in the input channel."),
    "busy_s": ("counter", "Seconds spent in the component's own work."),
    "errors": ("counter", "Errors raised by the component."),
}


class HttpApi:
    """Serves the endpoints above for one Runtime."""

    def __init__(self, runtime: Runtime, settings: dict[str, Any], token: str | None):
        self.rt = runtime
        self.settings = settings
        self.token = token
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=20)
        self.attach(runtime)
        self._runner: web.AppRunner | None = None
        self.port = 0
        app = web.Application()
        app.add_routes(
            [
                web.get("/", self.dashboard),
                web.get("/health", self.health),
                web.get("/metrics", self.metrics),
                web.get("/status", self.status),
                web.post("/control/{component}/{command}", self.control),
                web.post("/checkpoint", self.checkpoint_now),
            ]
        )
        #: set by the daemon when checkpoints are configured: writes one, returns its path
        self.checkpoint: Any = None
        self.app = app

    def attach(self, runtime: Runtime) -> None:
        """Serve this runtime from now on (after a reload)."""
        self.rt = runtime
        runtime.on_message.append(self.recent.append)

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings["host"], self.settings["port"])
        await site.start()
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self.port = server.sockets[0].getsockname()[1]
        log.info("HTTP API on http://%s:%s/", self.settings["host"], self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def dashboard(self, request: web.Request) -> web.Response:
        return web.Response(text=_DASHBOARD, content_type="text/html")

    async def health(self, request: web.Request) -> web.Response:
        ok = self.rt.failure is None
        return web.json_response(
            {"status": "ok" if ok else "failed", "state": self.rt.state},
            status=200 if ok else 503,
        )

    async def status(self, request: web.Request) -> web.Response:
        hb = self.rt.heartbeat_message()
        hb["last_detections"] = list(self.recent)
        return web.json_response(hb, dumps=lambda o: json.dumps(o, default=str))

    async def metrics(self, request: web.Request) -> web.Response:
        counters = self.rt.counters()
        lines = []
        pipe = self.rt.name
        for field, (mtype, help_) in _METRIC_FIELDS.items():
            name = f"edgesnn_component_{field}" + ("_total" if mtype == "counter" else "")
            lines.append(f"# HELP {name} {help_}")
            lines.append(f"# TYPE {name} {mtype}")
            for cid, row in counters.items():
                lines.append(
                    f'{name}{{pipeline="{pipe}",component="{cid}",kind="{row["kind"]}"}} '
                    f"{row.get(field, 0)}"
                )
        lines.append("# HELP edgesnn_detections_total Detections published.")
        lines.append("# TYPE edgesnn_detections_total counter")
        lines.append(f'edgesnn_detections_total{{pipeline="{pipe}"}} {self.rt.next_seq}')
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    def _authorized(self, request: web.Request) -> web.Response | None:
        if not self.token:
            return web.json_response(
                {"error": f"mutating endpoints are disabled: set ${self.settings['token_env']}"},
                status=403,
            )
        got = request.headers.get("Authorization", "")
        if not hmac.compare_digest(got.encode(), f"Bearer {self.token}".encode()):
            return web.json_response({"error": "missing or wrong bearer token"}, status=401)
        return None

    async def checkpoint_now(self, request: web.Request) -> web.Response:
        denied = self._authorized(request)
        if denied is not None:
            return denied
        if self.checkpoint is None:
            return web.json_response(
                {"error": "checkpoints are not configured ([checkpoint] dir)"}, status=409
            )
        path = await asyncio.to_thread(self.checkpoint)
        if path is None:
            return web.json_response({"error": "checkpoint failed; see the log"}, status=500)
        return web.json_response({"ok": True, "path": str(path)})

    async def control(self, request: web.Request) -> web.Response:
        denied = self._authorized(request)
        if denied is not None:
            return denied
        cid = request.match_info["component"]
        command = request.match_info["command"]
        comp = self.rt.components.get(cid)
        if comp is None:
            return web.json_response({"error": f"no component {cid!r}"}, status=404)
        try:
            body = await request.json() if request.can_read_body else {}
        except json.JSONDecodeError as e:
            return web.json_response({"error": f"body is not JSON: {e}"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        try:
            result = await asyncio.to_thread(comp.control, command, **body)
        except KeyError:
            return web.json_response({"error": f"{cid!r} has no command {command!r}"}, status=404)
        except (TypeError, ValueError) as e:
            return web.json_response({"error": str(e)}, status=400)
        return web.json_response(
            {"ok": True, "result": result}, dumps=lambda o: json.dumps(o, default=str)
        )
