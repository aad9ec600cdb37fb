"""The batch-monitor receiver (SPEC §7, seed 004): batch jobs post payloads, which are
judged at once against their BATCH scenario and recorded like a run's result.

* ``POST /v1.0/monitoring/batchmon/appkey/{appKey}/scenarios/{scenarioId}``: the body is
  the payload.
* ``POST /v1.0/monitoring/batchmon``: ``{"target": [{"appkey", "scenarioIdList"}],
  "data": "<JSON text>"}``, one body element per scenario.

A payload that is not JSON is answered 400 and still counts as a failing payload: the
job did report, and what it sent is broken. Answers use the seed's envelope.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from monitord.checks import decode_body
from monitord.envelope import (
    BAD_REQUEST,
    CONFLICT,
    UNKNOWN_APP_KEY,
    UNKNOWN_SCENARIO,
    UNSUPPORTED_MEDIA_TYPE,
    envelope,
    envelope_error,
)
from monitord.expressions import DocumentError, parse_document
from monitord.httpbase import API, read_body, strict_json
from monitord.model import Outcome, TextKind, format_timestamp
from monitord.monitor import Monitor, NotBatchError, UnknownScenarioError

SINGLE_PATH = "/v1.0/monitoring/batchmon/appkey/{app_key}/scenarios/{scenario_id}"
MULTI_PATH = "/v1.0/monitoring/batchmon"
MAX_TARGETS = 100
MAX_SCENARIOS_PER_REQUEST = 1000

# pk.serviceId is a stable UUID per appKey (UUIDv5 in this namespace).
SERVICE_NAMESPACE = uuid.UUID("3c5b1f0e-8f4a-5d2e-a1b7-6d6f6e69746f")


def add_routes(app: web.Application) -> None:
    app.router.add_post(SINGLE_PATH, _single)
    app.router.add_post(MULTI_PATH, _multi)


def service_id(app_key: str) -> str:
    # Through bytes: an appkey given in JSON may hold a lone surrogate.
    name = app_key.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return str(uuid.uuid5(SERVICE_NAMESPACE, name))


@dataclass(frozen=True, slots=True)
class _Delivery:
    """What one request delivers: the payload, who sent it and when."""

    body: bytes
    charset: str | None
    client: str
    received_at: datetime

    def element(
        self,
        app_key: str,
        scenario_id: str,
        *,
        request_id: str | None = None,
        service_code: int = 0,
        status: str,
        reasons: list[str],
    ) -> dict[str, Any]:
        """One body element, with the seed's fields plus ``reasons``."""
        return {
            "pk": {"serviceId": service_id(app_key), "requestId": request_id or _request_id()},
            "scenarioId": scenario_id,
            "ipaddr": self.client,
            "requestTime": format_timestamp(self.received_at),
            "requestData": {"body": decode_body(self.body, self.charset)},
            "serviceCode": service_code,
            "status": status,
            "reasons": reasons,
        }


def _request_id() -> str:
    return str(uuid.uuid4())


def json_content_type(request: web.Request) -> bool:
    kind = request.content_type.lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def wrong_content_type() -> web.Response:
    return envelope_error(
        415,
        "Content-Type must be application/json",
        code=UNSUPPORTED_MEDIA_TYPE,
        headers={"Accept-Post": "application/json"},
    )


def payload_problem(body: bytes, charset: str | None) -> str | None:
    """Why ``body`` is not a JSON payload, or None when it is one."""
    try:
        parse_document(TextKind.JSON, body, charset)
    except DocumentError as exc:
        return str(exc).replace("body", "payload", 1)
    return None


async def _judge(
    monitor: Monitor, delivery: _Delivery, app_key: str, scenario_id: str
) -> dict[str, Any]:
    request_id = _request_id()
    result = await monitor.receive_payload(
        scenario_id,
        delivery.body,
        delivery.charset,
        request_id=request_id,
        client=delivery.client,
        received_at=delivery.received_at,
    )
    return delivery.element(
        app_key,
        scenario_id,
        request_id=request_id,
        status="success" if result.outcome is Outcome.SUCCESS else "failure",
        reasons=list(result.reasons),
    )


def _delivery(request: web.Request, body: bytes) -> _Delivery:
    return _Delivery(body, request.charset, request.remote or "", datetime.now(UTC))


async def _single(request: web.Request) -> web.StreamResponse:
    monitor = request.app[API].monitor
    app_key = monitor.app_key_known(request.match_info["app_key"])
    if app_key is None:
        return envelope_error(404, "unknown appKey", code=UNKNOWN_APP_KEY)
    scenario_id = request.match_info["scenario_id"]
    try:
        monitor.batch_scenario(app_key, scenario_id)
    except UnknownScenarioError:
        return envelope_error(
            404, f"no scenario {scenario_id!r} for this appKey", code=UNKNOWN_SCENARIO
        )
    except NotBatchError as exc:
        return envelope_error(409, str(exc), code=CONFLICT)
    if not json_content_type(request):
        return wrong_content_type()
    delivery = _delivery(request, await read_body(request))
    problem = payload_problem(delivery.body, delivery.charset)
    try:
        element = await _judge(monitor, delivery, app_key, scenario_id)
    except UnknownScenarioError:  # removed by a reload while the payload was judged
        return envelope_error(
            404, f"no scenario {scenario_id!r} for this appKey", code=UNKNOWN_SCENARIO
        )
    if problem is not None:
        return envelope_error(400, problem, code=BAD_REQUEST, body=element)
    return envelope(element)


async def _multi(request: web.Request) -> web.StreamResponse:
    if not json_content_type(request):
        return wrong_content_type()
    raw = await read_body(request)
    try:
        data = strict_json(raw)
    except (ValueError, RecursionError):
        return envelope_error(400, "the request body is not JSON", code=BAD_REQUEST)
    shape = _targets(data)
    if isinstance(shape, str):
        return envelope_error(400, shape, code=BAD_REQUEST)
    monitor = request.app[API].monitor
    # ``data`` is text already: its bytes are UTF-8, whatever the request's charset.
    body = data["data"].encode("utf-8", "surrogatepass")
    delivery = _Delivery(body, "utf-8", request.remote or "", datetime.now(UTC))
    problem = payload_problem(delivery.body, delivery.charset)
    elements: list[dict[str, Any]] = []
    judged = 0
    for given_key, scenario_id in shape:
        app_key = monitor.app_key_known(given_key)
        if app_key is None:
            elements.append(
                delivery.element(
                    given_key,
                    scenario_id,
                    service_code=UNKNOWN_APP_KEY,
                    status="rejected",
                    reasons=["unknown appkey"],
                )
            )
            continue
        try:
            monitor.batch_scenario(app_key, scenario_id)
            elements.append(await _judge(monitor, delivery, app_key, scenario_id))
            judged += 1
        except UnknownScenarioError:
            elements.append(
                delivery.element(
                    app_key,
                    scenario_id,
                    service_code=UNKNOWN_SCENARIO,
                    status="rejected",
                    reasons=["unknown scenario for this appkey"],
                )
            )
        except NotBatchError as exc:
            elements.append(
                delivery.element(
                    app_key,
                    scenario_id,
                    service_code=CONFLICT,
                    status="rejected",
                    reasons=[str(exc)],
                )
            )
    if problem is not None and judged:
        return envelope_error(400, f"data: {problem}", code=BAD_REQUEST, body=elements)
    return envelope(elements)


def _targets(data: Any) -> list[tuple[str, str]] | str:
    """The (appkey, scenarioId) pairs of a multi-target request, in order and without
    repeats, or what is wrong with the request."""
    usage = 'the body must be {"target": [{"appkey": "…", "scenarioIdList": ["…"]}], "data": "…"}'
    if not isinstance(data, dict) or set(data) != {"target", "data"}:
        return usage
    if not isinstance(data["data"], str):
        return 'data must be JSON text in a string, e.g. "{\\"key\\": \\"value\\"}"'
    targets = data["target"]
    if not isinstance(targets, list) or not 1 <= len(targets) <= MAX_TARGETS:
        return f"target must be a list of 1 to {MAX_TARGETS} entries"
    pairs: dict[tuple[str, str], None] = {}
    for target in targets:
        if not isinstance(target, dict) or set(target) != {"appkey", "scenarioIdList"}:
            return 'each target must be {"appkey": "…", "scenarioIdList": ["…"]}'
        app_key, ids = target["appkey"], target["scenarioIdList"]
        if not isinstance(app_key, str) or not isinstance(ids, list) or not ids:
            return "appkey must be a string and scenarioIdList a list of scenario ids"
        for scenario_id in ids:
            if not isinstance(scenario_id, str):
                return "scenarioIdList must hold scenario ids (strings)"
            pairs[(app_key, scenario_id)] = None
    if len(pairs) > MAX_SCENARIOS_PER_REQUEST:
        return f"at most {MAX_SCENARIOS_PER_REQUEST} scenarios per request"
    return list(pairs)
