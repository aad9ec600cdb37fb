"""The HTTP API (SPEC §7): metrics, health, scenarios, run-now, reload, the events outbox
(pending messages, dead letters, re-queue) and the OpenAPI document; the batch receiver
(``monitord.receiver``) and the scenario management API (``monitord.scenario_api``) join
the same application.

Errors are JSON: ``{"error": {"status": 404, "message": "…"}}``, or the seed's envelope
on the receiver's and the management API's paths. Request
bodies are capped; malformed input gets a 4xx, never a 5xx. Admin endpoints
take the admin key in ``TOAST_PRODUCT_APPKEY`` or ``Authorization: Bearer``,
compared in constant time.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from aiohttp import hdrs, web

from monitord import receiver, scenario_api
from monitord.httpbase import (
    API,
    MAX_BODY_BYTES,
    UNROUTED_PATH,
    Api,
    admin_authorised,
    admin_only,
    answering_errors,
    error_response,
    read_body,
    unrouted,
)
from monitord.jsonout import json_response
from monitord.metrics import PIECE_SCENARIOS, ScenarioSample
from monitord.monitor import NotRunnableError, UnknownScenarioError
from monitord.store import StoreError

log = logging.getLogger(__name__)

DEFAULT_LISTING = 100
MAX_LISTING = 1000
MAX_REQUEUE_IDS = 10_000


def build_app(api: Api, max_body_bytes: int = MAX_BODY_BYTES) -> web.Application:
    """The application. Every route's handler is wrapped by ``answering_errors`` rather
    than by a middleware: aiohttp runs a middleware through two more coroutines per
    request, 3 % of a receiver request's instructions."""
    app = web.Application(client_max_size=max_body_bytes)
    app[API] = api
    answered = answering_errors(max_body_bytes)
    app.router.add_get("/metrics", answered(_metrics))
    app.router.add_get("/health", answered(_health))
    app.router.add_get("/api/v1/scenarios", answered(_scenarios))
    app.router.add_get("/api/v1/scenarios/{scenario_id}", answered(_scenario))
    app.router.add_post("/api/v1/scenarios/{scenario_id}/run", answered(admin_only(_run_now)))
    app.router.add_post("/-/reload", answered(admin_only(_reload)))
    app.router.add_get("/api/v1/events", answered(admin_only(_events)))
    app.router.add_post("/api/v1/events/requeue", answered(admin_only(_requeue)))
    app.router.add_get("/api/v1/openapi.json", answered(_openapi))
    receiver.add_routes(app, answered)
    scenario_api.add_routes(app, answered)
    app.router.add_route(hdrs.METH_ANY, UNROUTED_PATH, answered(unrouted))  # last
    return app


async def _metrics(request: web.Request) -> web.StreamResponse:
    api = request.app[API]
    try:
        pending, dead = api.monitor.outbox.counts()
        api.metrics.outbox_pending.set(pending)
        api.metrics.dead_letters.set(dead)
    except StoreError as exc:  # the other series are still worth a scrape
        log.error("outbox not counted for /metrics: %s", exc)
    # A snapshot taken, then written, a few hundred scenarios at a time with the loop
    # running in between: a scrape of 10,000 scenarios must not hold up the schedule.
    samples: list[ScenarioSample] = []
    for part in api.monitor.sample_pieces(PIECE_SCENARIOS):
        samples.extend(part)
        await asyncio.sleep(0)
    counts = api.monitor.counts_by_type()
    pieces, content_type = api.metrics.exposition(samples, counts, request.headers.get(hdrs.ACCEPT))
    written: list[bytes] = []
    for piece in pieces:
        written.append(piece)
        await asyncio.sleep(0)
    response = web.Response(body=b"".join(written), headers={hdrs.CONTENT_TYPE: content_type})
    # Prometheus asks for gzip: at 10,000 scenarios it sends a tenth of the bytes. aiohttp
    # compresses a body this large in a thread, off the loop, and only when asked.
    response.enable_compression()
    return response


async def _openapi(request: web.Request) -> web.StreamResponse:
    """The OpenAPI document of every endpoint, shipped with the package."""
    text = resources.files("monitord").joinpath("openapi.json").read_text(encoding="utf-8")
    return web.Response(text=text, content_type="application/json")


async def _health(request: web.Request) -> web.StreamResponse:
    heartbeat = request.app[API].heartbeat
    status = heartbeat.status()
    return json_response(status, status=200 if heartbeat.healthy() else 503)


async def _scenarios(request: web.Request) -> web.StreamResponse:
    return json_response(request.app[API].monitor.describe())


async def _scenario(request: web.Request) -> web.StreamResponse:
    scenario_id = request.match_info["scenario_id"]
    try:
        api = request.app[API]
        # The payload itself may carry a job's data: only for the admin key.
        with_body = api.admin_key is not None and admin_authorised(request, api.admin_key)
        return json_response(api.monitor.describe_one(scenario_id, payload_body=with_body))
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
    return json_response(result.to_json())


async def _reload(request: web.Request) -> web.StreamResponse:
    report = await request.app[API].reload()
    # 422 when a file had errors, so `curl --fail` notices; the valid files did apply.
    return json_response(report.to_json(), status=200 if report.ok else 422)


async def _events(request: web.Request) -> web.StreamResponse:
    text = request.query.get("limit", str(DEFAULT_LISTING))
    # The length check comes first: int() refuses very long digit strings.
    if not (text.isascii() and text.isdigit() and len(text) <= 4 and 1 <= int(text) <= MAX_LISTING):
        return error_response(400, f"limit must be a whole number from 1 to {MAX_LISTING}")
    monitor = request.app[API].monitor
    listing = monitor.outbox.listing(int(text))
    return json_response({"sinkConfigured": monitor.sink_configured, **listing})


async def _requeue(request: web.Request) -> web.StreamResponse:
    """Dead letters back to the outbox: all of them, or ``{"ids": [...]}``."""
    raw = await read_body(request)
    ids: list[int] | None = None
    if raw.strip():
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            return error_response(400, 'the body must be JSON: {} or {"ids": [1, 2]}')
        problem = _requeue_problem(data)
        if problem is not None:
            return error_response(400, problem)
        ids = data.get("ids")
    api = request.app[API]
    result = api.monitor.outbox.requeue(ids, datetime.now(UTC))
    for row in result.requeued:
        api.metrics.event(row.event_type, "requeued")
    if result.requeued:
        log.info("%d dead letters re-queued", len(result.requeued))
    return json_response(
        {
            "requeued": len(result.requeued),
            "ids": [row.seq for row in result.requeued],
            "kept": [{"id": seq, "reason": why} for seq, why in result.kept],
            "unknown": list(result.unknown),
        }
    )


def _requeue_problem(data: Any) -> str | None:
    if not isinstance(data, dict) or set(data) - {"ids"}:
        return 'the body must be {} (every dead letter) or {"ids": [1, 2]}'
    ids = data.get("ids")
    if ids is None:
        return None
    if not isinstance(ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and 1 <= i < 2**63 for i in ids
    ):
        return "ids must be a list of dead-letter ids (whole numbers from GET /api/v1/events)"
    if len(ids) > MAX_REQUEUE_IDS:
        return f"at most {MAX_REQUEUE_IDS} ids at a time"
    return None
