"""The HTTP API (SPEC §7, operations part): metrics, health, scenarios, run-now, reload.

Every error is JSON: ``{"error": {"status": 404, "message": "…"}}``. Request
bodies are capped; malformed input gets a 4xx, never a 5xx. Admin endpoints
take the admin key in ``TOAST_PRODUCT_APPKEY`` or ``Authorization: Bearer``,
compared in constant time.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import hdrs, web

from monitord.config.settings import Secret
from monitord.heartbeat import Heartbeat
from monitord.metrics import Metrics
from monitord.monitor import Monitor, NotRunnableError, ReloadReport, UnknownScenarioError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
ADMIN_KEY_HEADER = "TOAST_PRODUCT_APPKEY"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Api:
    monitor: Monitor
    metrics: Metrics
    heartbeat: Heartbeat
    admin_key: Secret | None
    reload: Callable[[], Awaitable[ReloadReport]]


API = web.AppKey("api", Api)


def build_app(api: Api, max_body_bytes: int = MAX_BODY_BYTES) -> web.Application:
    app = web.Application(
        client_max_size=max_body_bytes, middlewares=[_json_errors(max_body_bytes)]
    )
    app[API] = api
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/health", _health)
    app.router.add_get("/api/v1/scenarios", _scenarios)
    app.router.add_get("/api/v1/scenarios/{scenario_id}", _scenario)
    app.router.add_post("/api/v1/scenarios/{scenario_id}/run", _admin(_run_now))
    app.router.add_post("/-/reload", _admin(_reload))
    return app


def error_response(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response(
        {"error": {"status": status, "message": message}}, status=status, headers=headers
    )


def _json_errors(max_body_bytes: int) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        length = request.content_length
        if length is not None and length > max_body_bytes:
            return error_response(413, f"request body larger than {max_body_bytes} bytes")
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            headers = {k: v for k, v in exc.headers.items() if k in (hdrs.ALLOW,)}
            return error_response(exc.status, exc.reason, **headers)
        except Exception:  # a bug must not turn into a dropped connection
            log.exception("%s %s failed", request.method, request.path)
            return error_response(500, "internal error; see the daemon log")

    return middleware


def _admin(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        key = request.app[API].admin_key
        if key is None:
            return error_response(
                401, "the admin API is off: no adminKey is configured", **_challenge()
            )
        if not admin_authorised(request, key):
            return error_response(
                401,
                f"admin key required in the {ADMIN_KEY_HEADER} header or as a Bearer token",
                **_challenge(),
            )
        return await handler(request)

    return guarded


def _challenge() -> dict[str, str]:
    return {hdrs.WWW_AUTHENTICATE: 'Bearer realm="monitord"'}


def admin_authorised(request: web.Request, key: Secret) -> bool:
    """Whether the request carries the admin key (constant-time comparison)."""
    given = request.headers.get(ADMIN_KEY_HEADER)
    if given is None:
        scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
        given = token.strip() if scheme.lower() == "bearer" else None
    if not given:
        return False
    return hmac.compare_digest(_bytes(given), _bytes(key.value))


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


async def _metrics(request: web.Request) -> web.StreamResponse:
    api = request.app[API]
    samples = api.monitor.samples()  # a snapshot taken on the loop…
    counts = api.monitor.counts_by_type()
    # …and formatted off it, so a large scrape does not stall the schedule.
    body, content_type = await asyncio.to_thread(
        api.metrics.render, samples, counts, request.headers.get(hdrs.ACCEPT)
    )
    return web.Response(body=body, headers={hdrs.CONTENT_TYPE: content_type})


async def _health(request: web.Request) -> web.StreamResponse:
    heartbeat = request.app[API].heartbeat
    status = heartbeat.status()
    return web.json_response(status, status=200 if heartbeat.healthy() else 503)


async def _scenarios(request: web.Request) -> web.StreamResponse:
    return web.json_response(request.app[API].monitor.describe())


async def _scenario(request: web.Request) -> web.StreamResponse:
    scenario_id = request.match_info["scenario_id"]
    try:
        return web.json_response(request.app[API].monitor.describe_one(scenario_id))
    except UnknownScenarioError:
        return error_response(404, f"no scenario with id {scenario_id!r}")


async def _run_now(request: web.Request) -> web.StreamResponse:
    scenario_id = request.match_info["scenario_id"]
    try:
        result = await request.app[API].monitor.run_now(scenario_id)
    except UnknownScenarioError:
        return error_response(404, f"no scenario with id {scenario_id!r}")
    except NotRunnableError as exc:
        return error_response(409, str(exc))
    return web.json_response(result.to_json())


async def _reload(request: web.Request) -> web.StreamResponse:
    report = await request.app[API].reload()
    # 422 when a file had errors, so `curl --fail` notices; the valid files did apply.
    return web.json_response(report.to_json(), status=200 if report.ok else 422)
