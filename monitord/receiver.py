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

import functools
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from monitord.checks import decode_body
from monitord.envelope import (
    BAD_REQUEST,
    CONFLICT,
    TOO_LARGE,
    UNKNOWN_APP_KEY,
    UNKNOWN_SCENARIO,
    envelope,
    envelope_error,
)
from monitord.httpbase import API, Handler, read_body, require_json, strict_json
from monitord.model import Outcome, format_timestamp, slot_init
from monitord.monitor import Monitor, NotBatchError, UnknownScenarioError

SINGLE_PATH = "/v1.0/monitoring/batchmon/appkey/{app_key}/scenarios/{scenario_id}"
MULTI_PATH = "/v1.0/monitoring/batchmon"
MAX_TARGETS = 100
MAX_SCENARIOS_PER_REQUEST = 1000
# Each judged scenario echoes the payload in its element: bound the answer's size.
MAX_ECHOED_BYTES = 8 * 1024 * 1024

# pk.serviceId is a stable UUID per appKey (UUIDv5 in this namespace).
SERVICE_NAMESPACE = uuid.UUID("3c5b1f0e-8f4a-5d2e-a1b7-6d6f6e69746f")

_SUCCESS = Outcome.SUCCESS  # read once (see model.py)


def add_routes(app: web.Application, answered: Callable[[Handler], Handler]) -> None:
    app.router.add_post(SINGLE_PATH, answered(_single))
    app.router.add_post(MULTI_PATH, answered(_multi))


@functools.lru_cache(maxsize=1024)  # every answer names it; the keys in use are few
def service_id(app_key: str) -> str:
    # Through bytes: an appkey given in JSON may hold a lone surrogate.
    name = app_key.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return str(uuid.uuid5(SERVICE_NAMESPACE, name))


@slot_init
@dataclass(frozen=True, slots=True)
class _Delivery:
    """What one request delivers: the payload, who sent it and when."""

    body: bytes
    charset: str | None
    client: str
    received_at: datetime
    text: str  # the payload as echoed in ``requestData.body``, decoded once

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
            "pk": {"serviceId": service_id(app_key), "requestId": request_id or new_request_id()},
            "scenarioId": scenario_id,
            "ipaddr": self.client,
            "requestTime": format_timestamp(self.received_at),
            "requestData": {"body": self.text},
            "serviceCode": service_code,
            "status": status,
            "reasons": reasons,
        }


# Request ids must be unique, not secret: this generator, seeded from the OS at start,
# makes a version-4 UUID in a third of uuid4's time (uuid4 reads the OS's random source
# for each, and a busy receiver makes one per payload).
_random_bits = random.Random().getrandbits  # noqa: S311
_VERSION_4 = ~(0xF000 << 64) & ~(0xC000 << 48)  # clears the version and variant bits


def new_request_id() -> str:
    """A random (version 4, RFC 9562 variant) UUID."""
    bits = _random_bits(128) & _VERSION_4 | 0x4000 << 64 | 0x8000 << 48
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


async def _judge(
    monitor: Monitor, delivery: _Delivery, app_key: str, scenario_id: str
) -> tuple[dict[str, Any], str | None]:
    """The body element for one judged payload, and why the payload is not JSON (None
    when it is)."""
    request_id = new_request_id()
    receipt = await monitor.receive_payload(
        scenario_id,
        delivery.body,
        delivery.charset,
        request_id=request_id,
        client=delivery.client,
        received_at=delivery.received_at,
    )
    result = receipt.result
    element = delivery.element(
        app_key,
        scenario_id,
        request_id=request_id,
        status="success" if result.outcome is _SUCCESS else "failure",
        reasons=list(result.reasons),
    )
    problem = receipt.unreadable
    return element, None if problem is None else problem.replace("body", "payload", 1)


def _delivery(request: web.Request, body: bytes, charset: str | None) -> _Delivery:
    return _Delivery(
        body, charset, request.remote or "", datetime.now(UTC), decode_body(body, charset)
    )


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
    require_json(request)
    delivery = _delivery(request, await read_body(request), request.charset)
    try:
        element, problem = await _judge(monitor, delivery, app_key, scenario_id)
    except UnknownScenarioError:  # removed by a reload while the payload was judged
        return envelope_error(
            404, f"no scenario {scenario_id!r} for this appKey", code=UNKNOWN_SCENARIO
        )
    if problem is not None:
        return envelope_error(400, problem, code=BAD_REQUEST, body=element)
    return envelope(element)


async def _multi(request: web.Request) -> web.StreamResponse:
    require_json(request)
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
    if len(body) * len(shape) > MAX_ECHOED_BYTES:
        return envelope_error(
            413,
            f"data times the number of scenarios exceeds {MAX_ECHOED_BYTES} bytes;"
            " split the request",
            code=TOO_LARGE,
        )
    delivery = _delivery(request, body, "utf-8")
    problem: str | None = None
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
            element, problem = await _judge(monitor, delivery, app_key, scenario_id)
            elements.append(element)
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
