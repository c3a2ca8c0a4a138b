"""HTTP API of a running daemon (aiohttp): health, Prometheus metrics, status, dashboard, control.

GET  /health     liveness and state
GET  /metrics    Prometheus text format 0.0.4 (prometheus_client; see edgesnn.runtime.metrics)
GET  /status     JSON: pipeline, state, counters, the last detections
GET  / and /dashboard   the live dashboard (edgesnn.runtime.dashboard), fed by:
GET  /ws         WebSocket: a JSON snapshot every `PUSH_S` (counters, new detections, new
                 output spikes of each network, health, uptime); read-only
POST /control/{component}/{command}   JSON body as keyword arguments, e.g.
     /control/snn/learning {"on": false}, /control/snn/reward {"value": 1.0},
     /control/snn/save {"path": "model.npz"} (a file name in the state folder)
POST /checkpoint   write a checkpoint of the learned state now (when [checkpoint] dir is set)
A bad request is answered 4xx with a one-line JSON reason; a failure on the daemon's side (a
checkpoint or model file that cannot be written, a handler error) 503 {"error": "<one line>"},
counted in `server_errors` (/status `http`, /metrics), its traceback logged once per kind.
Mutating endpoints need `Authorization: Bearer <token>`, the token taken from the environment
variable named by `[http] token_env`; without a configured token they are refused. Read-only
endpoints (including the dashboard and its WebSocket) need none; the API listens on loopback
unless configured otherwise.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hmac
import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from edgesnn.runtime.connguard import AcceptErrorLimiter, ConnectionGuard, GuardedSite
from edgesnn.runtime.dashboard import PAGE
from edgesnn.runtime.health import HealthWatch
from edgesnn.runtime.metrics import CONTENT_TYPE, DaemonMetrics
from edgesnn.runtime.runner import Runtime

log = logging.getLogger("edgesnn.http")

#: seconds between dashboard pushes
PUSH_S = 0.5
#: largest request body accepted (control commands are a few bytes)
MAX_BODY_BYTES = 64 * 1024
#: most output spikes per network sent in one push (the newest)
MAX_SPIKES_PER_PUSH = 4000


class ServiceFailure(Exception):
    """The daemon could not do what a valid request asked (answered 503, counted); `extra`
    goes into the JSON body beside "error"."""

    def __init__(self, message: str, **extra: Any):
        super().__init__(message)
        self.extra = extra


def one_line(text: str, limit: int = 300) -> str:
    """`text` on one line, at most `limit` characters (for JSON error bodies)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class HttpApi:
    """Serves the endpoints above for one Runtime."""

    def __init__(self, runtime: Runtime, settings: dict[str, Any], token: str | None):
        self.rt = runtime
        self.settings = settings
        self.token = token
        self.started = time.monotonic()
        #: requests answered 503 because the daemon failed (not the client)
        self.server_errors = 0
        self._traced: set[tuple[str, str]] = set()  # (route, exception type) logged in full
        self.prom = DaemonMetrics(lambda: self.rt)
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=20)
        #: (number, message) of the last detections, for the dashboard's log
        self._log: collections.deque[tuple[int, dict[str, Any]]] = collections.deque(maxlen=200)
        self._n_msgs = 0
        #: dashboard viewers and, per viewer, what it has been sent: (log number, ring positions)
        self._clients: dict[web.WebSocketResponse, tuple[int, dict[int, int]]] = {}
        self._push_task: asyncio.Task[None] | None = None
        self._dropped_seen: dict[str, Any] = {}  # per component; "" -> the runtime
        self.health_watch = HealthWatch(float(settings.get("health_window_s", 30.0)))
        self.attach(runtime)
        self._runner: web.AppRunner | None = None
        self.port = 0
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_BODY_BYTES)
        app.add_routes(
            [
                web.get("/", self.dashboard),
                web.get("/dashboard", self.dashboard),
                web.get("/ws", self.websocket),
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

    def _host_allowed(self, host: str) -> bool:
        """Loopback names, the listen address and `allowed_hosts` (port ignored)."""
        name = host.strip().lower()
        if name.startswith("["):  # [::1]:8765
            name = name[: name.find("]") + 1]
        elif name.count(":") == 1:
            name = name.split(":", 1)[0]
        allowed = {"localhost", "127.0.0.1", "[::1]", "::1"}
        listen = str(self.settings.get("host", "")).lower()
        if listen not in ("", "0.0.0.0", "::"):
            allowed.add(listen)
            allowed.add(f"[{listen}]")
        allowed.update(h.lower() for h in self.settings.get("allowed_hosts", []))
        return name in allowed or name.startswith("127.")

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Every request: a Host header we answer to (no DNS rebinding), a one-line 4xx when a
        handler fails on what the client sent, and a one-line 503 (counted; the traceback
        logged once per route and kind) for any failure of the daemon: never a 500."""
        if not self._host_allowed(request.host or ""):
            return web.json_response(
                {"error": f"Host {request.host[:80]!r} is not served here (add it to "
                          "[http] allowed_hosts)"}, status=421)
        try:
            return await handler(request)
        except web.HTTPException as e:  # aiohttp's own 4xx (404, 405, 413) as one JSON line
            if e.status < 400 or e.content_type == "application/json":
                raise
            keep = {k: v for k, v in e.headers.items() if k.lower() == "allow"}
            return web.json_response({"error": one_line(e.text or str(e.reason))},
                                     status=e.status, headers=keep)
        except ServiceFailure as e:
            return self._unavailable(str(e), e.extra)
        except (UnicodeDecodeError, RecursionError, ValueError, TypeError) as e:
            if request.method == "POST" or isinstance(e, UnicodeDecodeError):  # its body
                return web.json_response({"error": f"bad request: {one_line(str(e), 200)}"},
                                         status=400)
            return self._internal(request, e)  # a GET sends nothing that could be wrong
        except ConnectionError:  # the client went away (or was cut by the guard): not ours
            raise
        except Exception as e:  # a failure of ours, not of the request
            return self._internal(request, e)

    def _internal(self, request: web.Request, e: Exception) -> web.Response:
        """503 for a failure of the daemon; the traceback logged once per route and kind."""
        route = getattr(request.match_info.route, "resource", None)
        where = getattr(route, "canonical", request.path[:80])
        key = (str(where), type(e).__name__)
        if key not in self._traced and len(self._traced) < 256:
            self._traced.add(key)
            log.error("HTTP %s %s failed (answered 503)", request.method, where,
                      exc_info=e)
        else:
            log.warning("HTTP %s %s failed again (503): %s: %s", request.method, where,
                        type(e).__name__, one_line(str(e), 200))
        return self._unavailable(f"internal error: {type(e).__name__}: {e}")

    def _unavailable(self, message: str, extra: dict[str, Any] | None = None) -> web.Response:
        """503 with a one-line reason; counted in `server_errors`."""
        self.server_errors += 1
        body = {"error": one_line(message), **(extra or {})}
        return web.json_response(body, status=503, dumps=lambda o: json.dumps(o, default=str))

    def attach(self, runtime: Runtime) -> None:
        """Serve this runtime from now on (after a reload)."""
        self.rt = runtime
        runtime.on_message.append(self._on_message)

    def _on_message(self, msg: dict[str, Any]) -> None:
        """A detection was published: keep it for /status and the dashboard; time it."""
        self.recent.append(msg)
        lat = self.prom.observe(msg)
        self._n_msgs += 1
        self._log.append((self._n_msgs, {
            "seq": msg["seq"], "label": msg["label"], "score": msg["score"],
            "t_sensor_us": msg["t_sensor_us"], "source": msg["source"],
            "latency_ms": None if lat is None else round(lat * 1e3, 3),
        }))

    async def start(self) -> None:
        # bounded connections: idle or half-sent requests are cut, a flood is refused at once,
        # and accept() failures are logged once per interval (see edgesnn.runtime.connguard)
        st = self.settings
        self.guard = ConnectionGuard(int(st.get("max_connections", 256)),
                                     float(st.get("header_timeout_s", 10.0)),
                                     float(st.get("error_log_interval_s", 10.0)),
                                     float(st.get("body_timeout_s", 10.0)))
        self.accept_errors = AcceptErrorLimiter(float(st.get("error_log_interval_s", 10.0)))
        self.prom.http_counters = self.http_counters
        self.accept_errors.install(asyncio.get_running_loop())
        self._runner = web.AppRunner(
            self.app, access_log=None,
            keepalive_timeout=float(st.get("keepalive_timeout_s", 15.0)),
        )
        await self._runner.setup()
        site = GuardedSite(self._runner, st["host"], st["port"], self.guard)
        await site.start()
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self.port = server.sockets[0].getsockname()[1]
        self._push_task = asyncio.create_task(self._push_loop(), name="dashboard-push")
        log.info("HTTP API on http://%s:%s/", self.settings["host"], self.port)

    async def stop(self) -> None:
        if self._push_task is not None:
            self._push_task.cancel()
            await asyncio.gather(self._push_task, return_exceptions=True)
            self._push_task = None
        for ws in list(self._clients):
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"daemon stopping")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        limiter = getattr(self, "accept_errors", None)
        if limiter is not None:
            limiter.uninstall()

    async def dashboard(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    # ------------------------------------------------------------------ dashboard feed
    async def websocket(self, request: web.Request) -> web.StreamResponse:
        # browsers apply no same-origin rule to WebSockets: refuse pages of other sites, so a
        # web page the operator visits cannot read the feed (clients without Origin may)
        origin = request.headers.get("Origin")
        if origin and urlsplit(origin).netloc != request.host:
            return web.json_response({"error": f"origin {origin} is not this dashboard"},
                                     status=403)
        # a new viewer first gets what is still remembered: the detection log, the spike rings
        # (taken before the upgrade, so that a failure is still a 503, not a broken socket)
        snap = self.snapshot(log_from=0, spikes_from=None)
        ws = web.WebSocketResponse(heartbeat=20.0)
        await ws.prepare(request)
        self._clients[ws] = (snap.pop("_log_seen"), snap.pop("_spikes_seen"))
        try:
            await ws.send_str(json.dumps(snap, default=str))
            async for m in ws:  # read-only: incoming messages are ignored
                if m.type == WSMsgType.ERROR:
                    break
        except ConnectionError:  # the viewer went away
            pass
        except Exception as e:  # after the upgrade no 503 can be sent: end the feed
            log.warning("dashboard feed failed: %s: %s", type(e).__name__, one_line(str(e), 200))
            with contextlib.suppress(Exception):
                await ws.close(code=1011, message=b"internal error")
        finally:
            self._clients.pop(ws, None)
        return ws

    async def _push_loop(self) -> None:
        while True:
            await asyncio.sleep(PUSH_S)
            for ws, (log_seen, spikes_seen) in list(self._clients.items()):
                try:
                    snap = self.snapshot(log_from=log_seen, spikes_from=spikes_seen)
                except Exception as e:  # a status error must not end the feed
                    log.warning("dashboard snapshot failed: %s", e)
                    break
                self._clients[ws] = (snap.pop("_log_seen"), snap.pop("_spikes_seen"))
                try:
                    await ws.send_str(json.dumps(snap, default=str))
                except Exception:  # the viewer went away
                    self._clients.pop(ws, None)

    def _rings(self) -> dict[str, Any]:
        return {cid: ring for cid, comp in self.rt.components.items()
                if (ring := getattr(comp, "recent_spikes", None)) is not None}

    def snapshot(self, log_from: int, spikes_from: dict[int, int] | None) -> dict[str, Any]:
        """What the dashboard shows: counters, detections after number `log_from`, output
        spikes after the ring positions in `spikes_from` (None: all the rings hold)."""
        rt = self.rt
        counters = rt.counters()
        comps = []
        dropping = False  # a channel dropped items since the last snapshot
        if self._dropped_seen.get("") is not rt:  # a reloaded pipeline counts from 0
            self._dropped_seen = {"": rt}
        for cid, row in counters.items():
            ch = rt.inbox.get(cid)
            dropped = int(row.get("dropped", 0))
            if dropped > self._dropped_seen.get(cid, 0):
                dropping = True
            self._dropped_seen[cid] = dropped
            comps.append({
                "id": cid, "kind": row["kind"], "items": row.get("items", 0),
                "emitted": row.get("emitted", 0), "received": row.get("received", 0),
                "dropped": row.get("dropped", 0), "errors": row.get("errors", 0),
                "busy_s": row.get("busy_s", 0.0), "depth": ch.depth if ch else 0,
                "capacity": ch.capacity if ch else 0,
                "when_full": ch.when_full if ch else None, "learning": row.get("learning"),
            })
        for c in comps:  # sinks count messages, not items
            if c["kind"] == "sink":
                c["items"] = c["emitted"]
        dets = [m for n, m in self._log if n > log_from]
        rasters: dict[str, Any] = {}
        seen: dict[int, int] = {}
        for cid, ring in self._rings().items():
            start = 0 if spikes_from is None else spikes_from.get(id(ring), 0)
            t, n, pos = ring.since(start)
            seen[id(ring)] = pos
            if t.size > MAX_SPIKES_PER_PUSH:
                t, n = t[-MAX_SPIKES_PER_PUSH:], n[-MAX_SPIKES_PER_PUSH:]
            rasters[cid] = {"n": ring.n_neurons, "t": t.tolist(), "i": n.tolist(),
                            "rows": self._row_labels(cid, ring.n_neurons)}
        failure = None
        if rt.failure is not None:
            failure = f"{rt.failure[0]}: {rt.failure[1]}"
        checkpoint_age_s = None
        ck = rt.extra_status.get("checkpoint")
        if ck is not None:
            with contextlib.suppress(Exception):
                last = ck().get("last_written_unix")
                checkpoint_age_s = round(time.time() - float(last), 1) if last else None
        return {
            "t": time.monotonic(),
            "pipeline": rt.name,
            "state": rt.state,
            "failure": failure,
            "dropping": dropping,
            "uptime_s": round(time.monotonic() - self.started, 1),
            "last_seq": rt.next_seq - 1,
            "components": comps,
            "detections": dets,
            "rasters": rasters,
            "checkpoint_age_s": checkpoint_age_s,
            "_log_seen": self._n_msgs,
            "_spikes_seen": seen,
        }

    def _row_labels(self, cid: str, n: int) -> list[str] | None:
        """Names of a network's output neurons, from a readout with `labels` (one group of
        neurons per label, in neuron order) that it feeds; None when there is none."""
        for spec in self.rt.specs.values():
            labels = spec.params.get("labels")
            if (spec.kind != "readout" or cid not in spec.inputs or not labels
                    or spec.params.get("assignments") or n % len(labels) or n > 256):
                continue
            g = n // len(labels)
            return [str(labels[i // g]) for i in range(n)]
        return None

    # ------------------------------------------------------------------ plain endpoints
    async def health(self, request: web.Request) -> web.Response:
        """200 "ok"; 503 "failed" or "degraded" with its reasons (see runtime/health.py)."""
        if self.rt.failure is not None:
            return web.json_response({"status": "failed", "state": self.rt.state}, status=503)
        reasons = self.health_watch.reasons(self.rt)
        if reasons:
            return web.json_response(
                {"status": "degraded", "state": self.rt.state, "reasons": reasons}, status=503)
        return web.json_response({"status": "ok", "state": self.rt.state})

    def http_counters(self) -> dict[str, int]:
        """Connections open, refused and cut by the guard; accept() failures; 503s."""
        return {**self.guard.counters(), "accept_errors": self.accept_errors.count,
                "server_errors": self.server_errors}

    async def status(self, request: web.Request) -> web.Response:
        hb = self.rt.heartbeat_message()
        if hasattr(self, "guard"):  # (a pipeline's view in a multi-pipeline daemon has none)
            hb["http"] = self.http_counters()
        hb["last_detections"] = list(self.recent)
        return web.json_response(hb, dumps=lambda o: json.dumps(o, default=str))

    async def metrics(self, request: web.Request) -> web.Response:
        body = self.prom.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

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
        from edgesnn.runtime.checkpoint import learned_components

        if not learned_components(self.rt.components):
            return web.json_response(
                {"error": "nothing to checkpoint: no component of this pipeline learns"},
                status=409)
        path = await self.write_checkpoint()
        return web.json_response({"ok": True, "path": str(path)})

    async def write_checkpoint(self) -> Any:
        """Write a checkpoint now; its path, or ServiceFailure with the writer's reason."""
        try:
            path = await asyncio.to_thread(self.checkpoint)
        except Exception as e:  # the writer reports and counts its own failures
            raise ServiceFailure(f"checkpoint failed: {type(e).__name__}: {e}") from e
        if path is None:
            why = ""
            with contextlib.suppress(Exception):
                why = self.rt.extra_status["checkpoint"]().get("last_error", "")
            raise ServiceFailure(f"checkpoint failed: {why or 'see the log'}")
        return path

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
            raw = await request.read() if request.can_read_body else b"{}"
            body = json.loads(raw.decode("utf-8") or "{}")
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            return web.json_response({"error": f"body is not JSON: {str(e)[:200]}"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        bad = [k for k in body if not (isinstance(k, str) and k.isidentifier() and len(k) <= 64)]
        if bad:
            return web.json_response({"error": f"bad argument name {str(bad[0])[:64]!r}"},
                                     status=400)
        try:
            result = await asyncio.to_thread(comp.control, command, **body)
        except KeyError:
            return web.json_response({"error": f"{cid!r} has no command {command!r}"}, status=404)
        except (TypeError, ValueError, RecursionError) as e:
            return web.json_response({"error": one_line(str(e))}, status=400)
        except OSError as e:  # e.g. `save` into a full or read-only folder
            raise ServiceFailure(f"{cid}/{command} failed: {e}") from e
        return web.json_response(
            {"ok": True, "result": result}, dumps=lambda o: json.dumps(o, default=str)
        )
