"""The OpenAPI document (``monitord/openapi.json``): valid OpenAPI 3.1, one operation per
route of ``build_app``, served as shipped, and true: real answers of an in-process app
(see ``tests.test_api.running_app``), for successes and every documented error, validate
against the schema the document gives for their operation and status.

``OpenApi.check`` is the judge, also used by ``tests.test_fuzz``: a status the operation
does not document, a media type or header it does not promise, a body that is not strict
JSON (NaN and Infinity are not JSON) or does not match the schema, each fails.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import jsonschema_rs
import pytest
import schemathesis
from aiohttp import web
from multidict import CIMultiDict
from schemathesis.core.result import Ok

from monitord.config.scenarios import derive_scenario_id
from monitord.httpbase import MAX_BODY_BYTES
from monitord.receiver import service_id
from tests.targets import refusing_tcp_port, web_target
from tests.test_api import (
    ADMIN,
    ADMIN_KEY,
    BEARER,
    CONFIG_WITH_KEY,
    DEADLINE_S,
    App,
    api_yaml,
    batch_yaml,
    raw_exchange,
    running_app,
    tcp_yaml,
)
from tests.test_api_events import dead_letter_all, deliver_all

DOCUMENT: dict[str, Any] = json.loads(
    resources.files("monitord").joinpath("openapi.json").read_text(encoding="utf-8")
)
# aiohttp's names of the route parameters, and the document's.
PARAMETER_NAMES = {"scenario_id": "scenarioId", "app_key": "appKey"}
ENVELOPE_PREFIXES = ("/v1.0/", "/open-api/")
JSON_TYPES = ("application/json",)

SINGLE = "/v1.0/monitoring/batchmon/appkey/{appKey}/scenarios/{scenarioId}"
MULTI = "/v1.0/monitoring/batchmon"
MANAGED = "/open-api/v1.0/appkey/{appKey}/scenarios"
MANAGED_ONE = "/open-api/v1.0/appkey/{appKey}/scenarios/{scenarioId}"
CONFIG_WITH_SERVICES = (
    CONFIG_WITH_KEY + "services:\n  - {appKey: shop, name: shop}\n  - {appKey: billing}\n"
)
JSON_HEADERS = {"Content-Type": "application/json"}
WRONG_KEYS = [{}, {"TOAST_PRODUCT_APPKEY": "wrong"}, {"Authorization": f"Bearer {ADMIN_KEY}x"}]


# --- the judge -------------------------------------------------------------------------------


def strict_json(body: bytes | str) -> Any:
    """JSON as RFC 8259 has it: NaN and Infinity are not JSON."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(body, parse_constant=refuse)


def operations(document: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(METHOD, path template) of every operation in the document."""
    for template, item in document["paths"].items():
        for method in ("get", "put", "post", "delete", "options", "head", "patch", "trace"):
            if method in item:
                yield method.upper(), template


class OpenApi:
    """The document, and checks of real answers against it."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document

    def resolve(self, node: Any) -> Any:
        """``node`` with local ``$ref`` followed."""
        while isinstance(node, dict) and "$ref" in node:
            pointer = node["$ref"]
            assert isinstance(pointer, str), pointer
            assert pointer.startswith("#/"), pointer
            node = self.document
            for part in pointer[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def operation(self, method: str, template: str) -> Mapping[str, Any]:
        item = self.document["paths"].get(template)
        assert item is not None, f"{template} is not documented"
        operation = item.get(method.lower())
        assert operation is not None, f"{method} {template} is not documented"
        return dict(operation)

    def check(
        self, method: str, template: str, status: int, headers: Mapping[str, str], body: bytes
    ) -> Any:
        """Assert that this answer is one ``method template`` documents; its JSON."""
        label = f"{method} {template} answered {status}"
        responses = self.operation(method, template)["responses"]
        assert str(status) in responses, (
            f"{label}, an undocumented status (documented: {', '.join(responses)}): {body[:500]!r}"
        )
        return self.check_response(self.resolve(responses[str(status)]), headers, body, label)

    def check_response(
        self, response: Mapping[str, Any], headers: Mapping[str, str], body: bytes, label: str
    ) -> Any:
        received = CIMultiDict(headers)
        for name, header in response.get("headers", {}).items():
            spec = self.resolve(header)
            value = received.get(name)
            if value is None:
                assert not spec.get("required"), f"{label} without the {name} header"
            else:
                self.validate(spec["schema"], value, f"{label}, header {name}")
        content = response.get("content", {})
        media = received.get("Content-Type", "").split(";")[0].strip().lower()
        assert media in content, f"{label} as {media!r}; documented: {sorted(content)}"
        if media in JSON_TYPES:
            try:
                data = strict_json(body)
            except ValueError as exc:
                raise AssertionError(f"{label}: not JSON ({exc}): {body[:500]!r}") from None
        else:
            data = body.decode("utf-8")
        self.validate(content[media].get("schema", {}), data, label)
        return data

    def check_error_format(
        self, path: str, status: int, headers: Mapping[str, str], body: bytes
    ) -> Any:
        """An error no operation answers (an unknown route, a method the route does not
        take), in the format of its path as the document's description says."""
        if path.startswith(ENVELOPE_PREFIXES):
            schema: dict[str, Any] = {
                "allOf": [{"$ref": "#/components/schemas/Envelope"}],
                "properties": {
                    "header": {
                        "properties": {
                            "isSuccessful": {"const": False},
                            "resultCode": {"const": status},
                        }
                    },
                    "body": {"type": "null"},
                },
            }
        else:
            schema = {
                "allOf": [{"$ref": "#/components/schemas/Error"}],
                "properties": {"error": {"properties": {"status": {"const": status}}}},
            }
        response = {"content": {"application/json": {"schema": schema}}}
        return self.check_response(response, headers, body, f"{path} answered {status}")

    def validate(self, schema: Mapping[str, Any], instance: Any, label: str) -> None:
        validator = _validator(json.dumps(schema, sort_keys=True))
        errors = [
            f"at /{'/'.join(map(str, e.instance_path))}: {e.message[:300]}"
            for e in validator.iter_errors(instance)
        ]
        assert not errors, f"{label} does not match the document:\n" + "\n".join(errors[:10])


@cache
def _validator(schema_text: str) -> jsonschema_rs.Draft202012Validator:
    """A validator of one schema of the document, its ``$ref`` to components resolved."""
    root = {**json.loads(schema_text), "components": DOCUMENT["components"]}
    return jsonschema_rs.Draft202012Validator(root)


DOC = OpenApi(DOCUMENT)


# --- talking to the app --------------------------------------------------------------------


def path_of(template: str, params: Mapping[str, str] | None = None) -> str:
    return template.format_map({k: quote(v, safe="") for k, v in (params or {}).items()})


async def exchange(
    app: App,
    method: str,
    template: str,
    status: int,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    query: Mapping[str, str] | None = None,
) -> Any:
    """One request; the answer must be documented for the operation and have ``status``."""
    path = path_of(template, params)
    async with app.client.request(
        method, path, headers=dict(headers or {}), data=body, params=query
    ) as response:
        raw = await response.read()
        data = DOC.check(method, template, response.status, response.headers, raw)
        assert response.status == status, f"{method} {path}: {response.status} {raw[:500]!r}"
    return data


async def answer_after_continue(
    address: tuple[str, int], path: str, headers: Mapping[str, str], body: bytes
) -> tuple[int, CIMultiDict[str], bytes] | None:
    """POST with ``Expect: 100-continue``: the body goes out only once the server said
    100 Continue (unless it answered at once). The answer, or None when none came within
    the deadline."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        writer.write(head.encode())
        async with asyncio.timeout(DEADLINE_S):
            first = await reader.readuntil(b"\r\n\r\n")
        if first.startswith(b"HTTP/1.1 100 "):
            writer.write(body)
            try:
                async with asyncio.timeout(5):
                    first = await reader.readuntil(b"\r\n\r\n")
            except TimeoutError:
                return None
        status_line, *lines = first.decode("latin-1").split("\r\n")
        received = CIMultiDict(
            (n.strip(), v.strip()) for n, _, v in (x.partition(":") for x in lines if x)
        )
        async with asyncio.timeout(DEADLINE_S):
            data = await reader.readexactly(int(received["Content-Length"]))
        return int(status_line.split()[1]), received, data
    finally:
        writer.close()
        with suppress(ConnectionError):
            await writer.wait_closed()


def as_json(value: Any) -> bytes:
    return json.dumps(value).encode()


def as_list(*documents: str) -> str:
    """Scenario mappings as the items of one YAML list."""
    items = []
    for document in documents:
        first, *rest = document.splitlines()
        items.append("\n".join([f"- {first}", *(f"  {line}" for line in rest)]) + "\n")
    return "".join(items)


@dataclass
class World:
    """An app with services shop and billing and a hand-written file of scenarios."""

    app: App
    hand_written: Path

    @staticmethod
    def id(name: str, app_key: str = "shop") -> str:
        return derive_scenario_id(app_key, name)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with web_target() as target:
        with refusing_tcp_port() as refused:
            (tmp_path / "s").mkdir()
            hand_written = tmp_path / "s" / "hand.yaml"
            hand_written.write_text(
                "# written by hand: comments and several scenarios\n"
                + as_list(
                    api_yaml("shop api", target.url("/json")),
                    tcp_yaml("gateway", refused.port),
                    tcp_yaml("gateway two", refused.port),
                    tcp_yaml("gateway three", refused.port),
                    batch_yaml("nightly"),
                    batch_yaml("billing nightly") + "appKey: billing\n",
                    batch_yaml("us nightly") + "monitoringRegion: [US]\n",
                ),
                encoding="utf-8",
            )
            async with running_app(tmp_path, CONFIG_WITH_SERVICES) as app:
                yield World(app, hand_written)


# --- the document itself ---------------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1_and_every_reference_resolves() -> None:
    """schemathesis's validator accepts the document (and refuses a broken copy); every
    ``$ref`` resolves and every path parameter is declared."""
    assert DOCUMENT["openapi"] == "3.1.0"
    schema = schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT))
    schema.validate()
    labels = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        labels.append(result.ok().label)
    assert sorted(labels) == sorted(f"{m} {t}" for m, t in operations(DOCUMENT))

    broken = copy.deepcopy(DOCUMENT)
    broken["paths"]["/health"]["get"]["responses"] = "none"
    with pytest.raises(jsonschema_rs.ValidationError):
        schemathesis.openapi.from_dict(broken).validate()

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    found = set(refs(DOCUMENT))
    assert len(found) > 40
    for pointer in found:
        assert DOC.resolve({"$ref": pointer}) is not None, pointer
    for method, template in operations(DOCUMENT):
        declared = {
            p["name"]
            for p in map(
                DOC.resolve,
                [
                    *DOCUMENT["paths"][template].get("parameters", []),
                    *DOC.operation(method, template).get("parameters", []),
                ],
            )
            if p["in"] == "path"
        }
        assert declared == set(re.findall(r"\{(\w+)\}", template)), (method, template)


def test_admin_operations_name_both_security_schemes() -> None:
    """Operations behind admin_only document the admin key (header and Bearer) and a 401
    with the challenge; the others need no key (GET one scenario takes it optionally)."""
    schemes = DOCUMENT["components"]["securitySchemes"]
    assert schemes["adminKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "TOAST_PRODUCT_APPKEY",
        "description": "The configured adminKey.",
    }
    assert schemes["bearer"]["type"] == "http"
    assert schemes["bearer"]["scheme"] == "bearer"
    admin = {
        (m, t)
        for m, t in operations(DOCUMENT)
        if DOC.operation(m, t).get("security") == [{"adminKey": []}, {"bearer": []}]
    }
    assert admin == {
        ("POST", "/api/v1/scenarios/{scenarioId}/run"),
        ("POST", "/-/reload"),
        ("GET", "/api/v1/events"),
        ("POST", "/api/v1/events/requeue"),
        ("GET", MANAGED),
        ("POST", MANAGED),
        ("GET", MANAGED_ONE),
        ("POST", MANAGED_ONE),
        ("DELETE", MANAGED_ONE),
    }
    for method, template in admin:
        unauthorised = DOC.resolve(DOC.operation(method, template)["responses"]["401"])
        assert unauthorised["headers"]["WWW-Authenticate"]["required"] is True
    assert DOC.operation("GET", "/api/v1/scenarios/{scenarioId}")["security"] == [
        {},
        {"adminKey": []},
        {"bearer": []},
    ]


def routes_of(app: App) -> list[web.AbstractRoute]:
    application = app.client.app
    assert application is not None
    return list(application.router.routes())


async def test_the_document_has_exactly_the_routes_of_build_app(world: World) -> None:
    """Every route of the app (HEAD aside, which aiohttp adds to each GET) is an operation
    of the document, and every operation a route."""
    routes = set()
    catch_all = []
    for route in routes_of(world.app):
        if route.method == "HEAD":
            continue
        if route.method == "*":  # answers unknown paths and wrong methods, tested below
            catch_all.append(route)
            continue
        canonical = route.resource.canonical if route.resource is not None else ""
        template = re.sub(
            r"\{(\w+)\}", lambda m: "{" + PARAMETER_NAMES.get(m[1], m[1]) + "}", canonical
        )
        routes.add((route.method, template))
    assert len(routes) == 16
    assert routes == set(operations(DOCUMENT))
    assert [route.resource.canonical for route in catch_all if route.resource] == ["/{unrouted}"]


async def test_the_served_document_is_the_shipped_file(world: World) -> None:
    """GET /api/v1/openapi.json answers the package's document, unchanged."""
    data = await exchange(world.app, "GET", "/api/v1/openapi.json", 200)
    assert data == DOCUMENT


async def test_the_judge_refuses_what_the_document_does_not_promise() -> None:
    """An undocumented status, a missing challenge header, a body off the schema, a body
    that is not strict JSON, an undocumented media type: each fails."""
    json_type = {"Content-Type": "application/json; charset=utf-8"}
    health = as_json(
        {"status": "ok", "scheduler": "running", "lastBeatAgeSeconds": 0.1, "loopLagSeconds": 0.0}
    )
    DOC.check("GET", "/health", 200, json_type, health)
    with pytest.raises(AssertionError, match="undocumented status"):
        DOC.check("GET", "/health", 500, json_type, health)
    with pytest.raises(AssertionError, match="does not match"):
        DOC.check("GET", "/health", 503, json_type, health)  # 503 says status stuck
    error = as_json({"error": {"status": 401, "message": "admin key required"}})
    challenge = {**json_type, "WWW-Authenticate": 'Bearer realm="monitord"'}
    DOC.check("POST", "/-/reload", 401, challenge, error)
    with pytest.raises(AssertionError, match="without the WWW-Authenticate header"):
        DOC.check("POST", "/-/reload", 401, json_type, error)
    with pytest.raises(AssertionError, match="does not match"):
        DOC.check(
            "POST", "/-/reload", 401, challenge, as_json({"error": {"status": 404, "message": "x"}})
        )
    with pytest.raises(AssertionError, match="not JSON"):
        DOC.check("GET", "/api/v1/scenarios", 200, json_type, b'{"numErrors": NaN}')
    with pytest.raises(AssertionError, match="as 'text/html'"):
        DOC.check("GET", "/api/v1/scenarios", 200, {"Content-Type": "text/html"}, b"<p>")
    with pytest.raises(AssertionError, match="is not documented"):
        DOC.check("PUT", "/health", 405, json_type, b"{}")


# --- operations ---------------------------------------------------------------------------------


async def test_operations_answer_as_documented(world: World) -> None:
    """metrics, health, scenarios, run now and reload: successes and each error."""
    app = world.app
    text = await exchange(app, "GET", "/metrics", 200)
    assert "monitord_scenarios{scenario_type=" in text
    openmetrics = {"Accept": "application/openmetrics-text; version=1.0.0"}
    assert (await exchange(app, "GET", "/metrics", 200, headers=openmetrics)).endswith("# EOF\n")

    assert (await exchange(app, "GET", "/health", 200))["status"] == "ok"
    app.clock.now += 60
    assert (await exchange(app, "GET", "/health", 503))["status"] == "stuck"
    app.heartbeat.beat(app.clock())

    listing = await exchange(app, "GET", "/api/v1/scenarios", 200)
    assert sorted(s["scenarioName"] for s in listing["scenarios"]) == [
        "billing nightly",
        "gateway",
        "gateway three",
        "gateway two",
        "nightly",
        "shop api",
    ]
    one = "/api/v1/scenarios/{scenarioId}"
    shop = await exchange(app, "GET", one, 200, params={"scenarioId": world.id("shop api")})
    assert "lastPayload" not in shop
    nightly = await exchange(app, "GET", one, 200, params={"scenarioId": world.id("nightly")})
    assert nightly["lastPayload"] is None
    await exchange(app, "GET", one, 404, params={"scenarioId": str(uuid.uuid4())})
    await exchange(app, "GET", one, 404, params={"scenarioId": world.id("us nightly")})

    run = "/api/v1/scenarios/{scenarioId}/run"
    ran = await exchange(
        app, "POST", run, 200, params={"scenarioId": world.id("shop api")}, headers=ADMIN
    )
    assert ran["result"] == "success"
    failed = await exchange(
        app, "POST", run, 200, params={"scenarioId": world.id("gateway")}, headers=BEARER
    )
    assert failed["result"] == "failure"
    for headers in WRONG_KEYS:
        await exchange(
            app, "POST", run, 401, params={"scenarioId": world.id("shop api")}, headers=headers
        )
    await exchange(app, "POST", run, 404, params={"scenarioId": "nope"}, headers=ADMIN)
    await exchange(app, "POST", run, 409, params={"scenarioId": world.id("nightly")}, headers=ADMIN)

    listing = await exchange(app, "GET", "/api/v1/scenarios", 200)
    assert listing["numErrors"] == 1
    results = {s["scenarioName"]: s["lastResult"] for s in listing["scenarios"]}
    assert results["shop api"]["result"] == "success"
    assert results["gateway"]["result"] == "failure"

    report = await exchange(app, "POST", "/-/reload", 200, headers=ADMIN)
    assert report["unchanged"] == 6
    broken = app.write("broken.yaml", "scenarioName: [\n")
    report = await exchange(app, "POST", "/-/reload", 422, headers=BEARER)
    assert report["errors"][0].startswith(f"{broken}:2: yaml: ")
    broken.unlink()
    for headers in WRONG_KEYS:
        await exchange(app, "POST", "/-/reload", 401, headers=headers)


async def test_the_events_api_answers_as_documented(world: World) -> None:
    """The listing with a delivered, a dead and a pending message; limits; re-queue."""
    app = world.app
    run = "/api/v1/scenarios/{scenarioId}/run"
    now = datetime.now(UTC)
    await exchange(app, "POST", run, 200, params={"scenarioId": world.id("gateway")}, headers=ADMIN)
    (delivered,) = deliver_all(app, now)
    await exchange(
        app, "POST", run, 200, params={"scenarioId": world.id("gateway two")}, headers=ADMIN
    )
    (dead,) = dead_letter_all(app, now)
    await exchange(
        app, "POST", run, 200, params={"scenarioId": world.id("gateway three")}, headers=ADMIN
    )

    events = "/api/v1/events"
    listing = await exchange(app, "GET", events, 200, headers=ADMIN)
    assert [e["id"] for e in listing["delivered"]["events"]] == [delivered]
    assert [e["id"] for e in listing["deadLetters"]["events"]] == [dead]
    assert listing["pending"]["count"] == 1
    assert listing["pending"]["events"][0]["kind"] == "open"
    await exchange(app, "GET", events, 200, headers=BEARER, query={"limit": "1000"})
    for limit in ("0", "1001", "abc", "-1", "1.5", "", "99999"):
        await exchange(app, "GET", events, 400, headers=ADMIN, query={"limit": limit})
    for headers in WRONG_KEYS:
        await exchange(app, "GET", events, 401, headers=headers)

    requeue = "/api/v1/events/requeue"
    result = await exchange(
        app, "POST", requeue, 200, headers=ADMIN, body=as_json({"ids": [dead, 999999]})
    )
    assert result == {"requeued": 1, "ids": [dead], "kept": [], "unknown": [999999]}
    assert (await exchange(app, "POST", requeue, 200, headers=ADMIN))["requeued"] == 0
    await exchange(app, "POST", requeue, 200, headers=ADMIN, body=b'{"ids": null}')
    for body in (b"[", b"[]", b'{"x": 1}', b'{"ids": [0]}', b'{"ids": [true]}', b'{"ids": 1}'):
        await exchange(app, "POST", requeue, 400, headers=ADMIN, body=body)
    for headers in WRONG_KEYS:
        await exchange(app, "POST", requeue, 401, headers=headers, body=b"{}")


async def test_a_state_store_that_is_gone_answers_503_as_documented(world: World) -> None:
    """Where an operation reads or writes the store: events, re-queue, one BATCH scenario
    (its last payload) and both receiver endpoints."""
    app = world.app
    app.monitor.outbox.store.close()
    await exchange(app, "GET", "/api/v1/events", 503, headers=ADMIN)
    await exchange(app, "POST", "/api/v1/events/requeue", 503, headers=ADMIN)
    await exchange(
        app,
        "GET",
        "/api/v1/scenarios/{scenarioId}",
        503,
        params={"scenarioId": world.id("nightly")},
    )
    payload = as_json({"status": "done"})
    answer = await exchange(
        app,
        "POST",
        SINGLE,
        503,
        headers=JSON_HEADERS,
        body=payload,
        params={"appKey": "shop", "scenarioId": world.id("nightly")},
    )
    assert answer["header"]["resultCode"] == 503
    multi = {
        "target": [{"appkey": "shop", "scenarioIdList": [world.id("nightly")]}],
        "data": '{"status": "done"}',
    }
    await exchange(app, "POST", MULTI, 503, headers=JSON_HEADERS, body=as_json(multi))


async def test_every_operation_answers_an_oversized_body_413_as_documented(world: World) -> None:
    """Only the head is sent: the size check answers before the key or the route's work."""
    params = {"appKey": "shop", "scenarioId": world.id("nightly")}
    for method, template in operations(DOCUMENT):
        head = (
            f"{method} {path_of(template, params)} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: application/json\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        answer = await raw_exchange(world.app.address, head)
        assert answer.status == 413, (method, template, answer)
        DOC.check(method, template, 413, answer.headers, answer.body)


async def test_errors_outside_operations_come_in_the_format_of_their_path(world: World) -> None:
    """Unknown routes (404) and wrong methods (405, with Allow) on either kind of path."""
    cases = [
        ("GET", "/nope", 404),
        ("GET", "/api/v1/scenarios/x/y", 404),
        ("POST", "/v1.0/monitoring/batchmon/nope", 404),
        ("GET", "/open-api/v1.0/appkey/shop", 404),
        ("PUT", "/health", 405),
        ("DELETE", "/api/v1/events", 405),
        ("GET", MULTI, 405),
        ("DELETE", path_of(MANAGED, {"appKey": "shop"}), 405),
        ("PUT", path_of(MANAGED_ONE, {"appKey": "shop", "scenarioId": "x"}), 405),
    ]
    for method, path, status in cases:
        async with world.app.client.request(method, path, headers=ADMIN) as response:
            body = await response.read()
            assert response.status == status, (method, path, body)
            DOC.check_error_format(path, status, response.headers, body)
            if status == 405:
                assert method not in response.headers["Allow"]


# --- the batch receiver ------------------------------------------------------------------------


async def test_the_single_receiver_answers_as_documented(world: World) -> None:
    """Judged payloads (success, failure), broken ones, unknown appKey and scenario, a
    scenario that is not BATCH, a wrong Content-Type; the last payload in the state."""
    app = world.app
    nightly = {"appKey": "shop", "scenarioId": world.id("nightly")}
    ok = await exchange(
        app, "POST", SINGLE, 200, params=nightly, headers=JSON_HEADERS, body=b'{"status": "done"}'
    )
    element = ok["body"]
    assert (element["status"], element["serviceCode"], element["reasons"]) == ("success", 0, [])
    assert element["pk"]["serviceId"] == service_id("shop")
    assert element["requestData"] == {"body": '{"status": "done"}'}
    failing = await exchange(
        app,
        "POST",
        SINGLE,
        200,
        params=nightly,
        headers={"Content-Type": "application/problem+json"},
        body=b'{"status": "running"}',
    )
    assert failing["body"]["status"] == "failure"
    assert failing["body"]["reasons"]
    for body in (b"{", b"", b"   "):
        broken = await exchange(
            app, "POST", SINGLE, 400, params=nightly, headers=JSON_HEADERS, body=body
        )
        assert broken["header"]["resultMessage"].startswith("payload is")
        assert broken["body"]["status"] == "failure"

    unknown_key = await exchange(
        app,
        "POST",
        SINGLE,
        404,
        headers=JSON_HEADERS,
        body=b"{}",
        params={**nightly, "appKey": "nope"},
    )
    assert unknown_key["header"]["resultCode"] == 4041
    for scenario_id in (str(uuid.uuid4()), world.id("billing nightly", "billing")):
        unknown = await exchange(
            app,
            "POST",
            SINGLE,
            404,
            headers=JSON_HEADERS,
            body=b"{}",
            params={**nightly, "scenarioId": scenario_id},
        )
        assert unknown["header"]["resultCode"] == 4042
    await exchange(
        app,
        "POST",
        SINGLE,
        409,
        headers=JSON_HEADERS,
        body=b"{}",
        params={**nightly, "scenarioId": world.id("shop api")},
    )
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/jsonx"):
        await exchange(
            app,
            "POST",
            SINGLE,
            415,
            params=nightly,
            headers={"Content-Type": content_type},
            body=b"{}",
        )
    await exchange(app, "POST", SINGLE, 415, params=nightly, body=b"{}")  # no Content-Type

    one = "/api/v1/scenarios/{scenarioId}"
    with_key = await exchange(app, "GET", one, 200, params=nightly, headers=ADMIN)
    assert with_key["lastPayload"]["body"] == "   "
    without = await exchange(app, "GET", one, 200, params=nightly)
    assert "body" not in without["lastPayload"]
    assert without["lastPayload"]["bytes"] == 3


async def test_the_multi_target_receiver_answers_as_documented(world: World) -> None:
    """One element per scenario (judged or rejected), data that is not JSON, bodies of
    another shape, a wrong Content-Type."""
    app = world.app
    body = {
        "target": [
            {
                "appkey": "shop",
                "scenarioIdList": [
                    world.id("nightly"),
                    world.id("shop api"),
                    "not-a-scenario",
                    world.id("nightly"),
                ],
            },
            {"appkey": "nope", "scenarioIdList": ["x"]},
            {"appkey": "billing", "scenarioIdList": [world.id("billing nightly", "billing")]},
        ],
        "data": '{"status": "done"}',
    }
    answer = await exchange(app, "POST", MULTI, 200, headers=JSON_HEADERS, body=as_json(body))
    assert [(e["serviceCode"], e["status"]) for e in answer["body"]] == [
        (0, "success"),
        (409, "rejected"),
        (4042, "rejected"),
        (4041, "rejected"),
        (0, "success"),
    ]
    broken = await exchange(
        app, "POST", MULTI, 400, headers=JSON_HEADERS, body=as_json({**body, "data": "{"})
    )
    assert [e["status"] for e in broken["body"]] == ["failure", *["rejected"] * 3, "failure"]
    nothing_judged = {"target": [{"appkey": "nope", "scenarioIdList": ["x"]}], "data": "{"}
    rejected = await exchange(
        app, "POST", MULTI, 200, headers=JSON_HEADERS, body=as_json(nothing_judged)
    )
    assert [e["status"] for e in rejected["body"]] == ["rejected"]
    for shape in (
        b"{",
        b"[]",
        b'{"target": [], "data": "{}"}',
        b'{"target": [{"appkey": "shop", "scenarioIdList": []}], "data": "{}"}',
        b'{"target": [{"appkey": "shop", "scenarioIdList": ["x"]}], "data": {}}',
        b'{"target": [{"appkey": "shop", "scenarioIdList": ["x"]}], "data": "{}", "x": 1}',
        b'{"target": [{"appkey": 1, "scenarioIdList": ["x"]}], "data": "{}"}',
        b'{"target": [{"appkey": "shop", "scenarioIdList": ["x"]}], "data": NaN}',
    ):
        refused = await exchange(app, "POST", MULTI, 400, headers=JSON_HEADERS, body=shape)
        assert refused["body"] is None
    await exchange(app, "POST", MULTI, 415, body=as_json(body))


# --- scenario management -------------------------------------------------------------------


BATCH_DOCUMENT = {
    "scenarioName": "created",
    "scenarioType": "BATCH",
    "description": "made through the API",
    "monitoringInterval": 600,
    "validation": {
        "textValidation": {
            "textValidationType": "JSON",
            "textValidationInfos": [
                {"expression": "$.status", "operator": "EQ", "operand": "done"}
            ],
        }
    },
}


async def test_scenario_management_answers_as_documented(world: World) -> None:
    """List, create, read, modify and delete: successes, the key, unknown appKey and
    scenario, bodies that are not JSON or not valid, hand-written files."""
    app = world.app
    shop = {"appKey": "shop"}
    listing = await exchange(app, "GET", MANAGED, 200, params=shop, headers=ADMIN)
    statuses = {s["scenarioName"]: s["status"] for s in listing["body"]}
    assert statuses["us nightly"] == "notInRegion"
    assert statuses["nightly"] == "unknown"
    assert "billing nightly" not in statuses
    assert {s["managed"] for s in listing["body"]} == {False}
    await exchange(app, "GET", MANAGED, 200, params={"appKey": "billing"}, headers=BEARER)
    unknown_key = await exchange(app, "GET", MANAGED, 404, params={"appKey": "nope"}, headers=ADMIN)
    assert unknown_key["header"]["resultCode"] == 4041
    for headers in WRONG_KEYS:
        await exchange(app, "GET", MANAGED, 401, params=shop, headers=headers)

    admin_json = {**ADMIN, **JSON_HEADERS}
    created = (
        await exchange(
            app, "POST", MANAGED, 200, params=shop, headers=admin_json, body=as_json(BATCH_DOCUMENT)
        )
    )["body"]
    assert (created["managed"], created["status"], created["appKey"]) == (True, "unknown", "shop")
    assert created["registeredTime"] is not None
    assert (app.folder / f"{created['scenarioId']}.yaml").is_file()
    for body, status in [
        (b"{", 400),
        (b"[]", 400),
        (b'{"scenarioName": NaN}', 400),
        (as_json({"scenarioName": "x"}), 422),
        (as_json({**BATCH_DOCUMENT, "scenarioId": str(uuid.uuid4())}), 422),
        (as_json({**BATCH_DOCUMENT, "appKey": "billing"}), 422),
        (as_json(BATCH_DOCUMENT), 422),  # the name is taken now
        (as_json({**BATCH_DOCUMENT, "scenarioName": "y", "port": 1}), 422),
    ]:
        await exchange(app, "POST", MANAGED, status, params=shop, headers=admin_json, body=body)
    await exchange(app, "POST", MANAGED, 415, params=shop, headers=ADMIN, body=b"{}")
    await exchange(
        app, "POST", MANAGED, 404, params={"appKey": "nope"}, headers=admin_json, body=b"{}"
    )
    await exchange(app, "POST", MANAGED, 401, params=shop, headers=JSON_HEADERS, body=b"{}")

    mine = {"appKey": "shop", "scenarioId": created["scenarioId"]}
    hand = {"appKey": "shop", "scenarioId": world.id("nightly")}
    read = (await exchange(app, "GET", MANAGED_ONE, 200, params=mine, headers=ADMIN))["body"]
    assert read["description"] == "made through the API"
    by_hand = (await exchange(app, "GET", MANAGED_ONE, 200, params=hand, headers=ADMIN))["body"]
    assert (by_hand["managed"], by_hand["registeredTime"]) == (False, None)
    assert by_hand["source"] == f"{world.hand_written}:{by_hand['source'].rsplit(':', 1)[1]}"
    missing = await exchange(
        app,
        "GET",
        MANAGED_ONE,
        404,
        headers=ADMIN,
        params={**mine, "scenarioId": str(uuid.uuid4())},
    )
    assert missing["header"]["resultCode"] == 4042
    await exchange(app, "GET", MANAGED_ONE, 401, params=mine)

    changed = {**BATCH_DOCUMENT, "description": "changed", "scenarioId": mine["scenarioId"]}
    modified = await exchange(
        app, "POST", MANAGED_ONE, 200, params=mine, headers=admin_json, body=as_json(changed)
    )
    assert modified["body"]["description"] == "changed"
    await exchange(
        app,
        "POST",
        MANAGED_ONE,
        409,
        params=hand,
        headers=admin_json,
        body=as_json(batch_document("nightly")),
    )
    await exchange(
        app,
        "POST",
        MANAGED_ONE,
        422,
        params=mine,
        headers=admin_json,
        body=as_json({**changed, "appKey": "billing"}),
    )
    await exchange(app, "POST", MANAGED_ONE, 400, params=mine, headers=admin_json, body=b"1")
    await exchange(app, "POST", MANAGED_ONE, 415, params=mine, headers=ADMIN, body=b"{}")
    await exchange(
        app,
        "POST",
        MANAGED_ONE,
        404,
        headers=admin_json,
        body=b"{}",
        params={**mine, "scenarioId": str(uuid.uuid4())},
    )
    await exchange(app, "POST", MANAGED_ONE, 401, params=mine, headers=JSON_HEADERS, body=b"{}")

    await exchange(app, "DELETE", MANAGED_ONE, 409, params=hand, headers=ADMIN)
    await exchange(app, "DELETE", MANAGED_ONE, 401, params=mine)
    deleted = await exchange(app, "DELETE", MANAGED_ONE, 200, params=mine, headers=BEARER)
    assert deleted["body"]["status"] == "deleted"
    await exchange(app, "DELETE", MANAGED_ONE, 404, params=mine, headers=ADMIN)
    await exchange(
        app, "DELETE", MANAGED_ONE, 404, headers=ADMIN, params={**mine, "appKey": "nope"}
    )


def batch_document(name: str) -> dict[str, Any]:
    return {**BATCH_DOCUMENT, "scenarioName": name}


async def test_create_without_a_scenarios_folder_answers_409_as_documented(
    tmp_path: Path,
) -> None:
    """Only a glob is configured: there is no folder to write a new scenario to."""
    config = CONFIG_WITH_SERVICES.replace("scenarios: ./s\n", "scenarios: ./s/*.yaml\n")
    async with running_app(tmp_path, config) as app:
        answer = await exchange(
            app,
            "POST",
            MANAGED,
            409,
            params={"appKey": "shop"},
            headers={**ADMIN, **JSON_HEADERS},
            body=as_json(BATCH_DOCUMENT),
        )
        assert "no scenarios folder" in answer["header"]["resultMessage"]


# --- answers found wrong -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("charset", "status"), [("undefined", 400), ("idna", 200), ("rot13", 200), ("hex", 200)]
)
async def test_a_payload_charset_that_cannot_decode_leniently_is_not_a_500(
    world: World, charset: str, status: int
) -> None:
    """``charset=undefined`` cannot decode anything, ``charset=idna`` refuses the
    "replace" error handler, rot13 and hex are codecs but not text encodings (an unknown
    charset, then): the payload is judged, so the answer is the documented 400 (not JSON)
    or 200 with its element, not a 500."""
    answer = await exchange(
        world.app,
        "POST",
        SINGLE,
        status,
        params={"appKey": "shop", "scenarioId": world.id("nightly")},
        headers={"Content-Type": f"application/json; charset={charset}"},
        body=b'{"status": "done"}',
    )
    assert answer["body"]["requestData"]["body"] == '{"status": "done"}'


async def test_a_multi_target_appkey_that_is_a_lone_surrogate_is_rejected_not_a_500(
    world: World,
) -> None:
    """JSON may spell a lone surrogate (``"\\ud800"``): as an appkey it is unknown (a
    rejected element), or the body is refused as not text (400); either is documented."""
    body = b'{"target": [{"appkey": "\\ud800", "scenarioIdList": ["x"]}], "data": "{}"}'
    async with world.app.client.post(MULTI, headers=JSON_HEADERS, data=body) as response:
        raw = await response.read()
        answer = DOC.check("POST", MULTI, response.status, response.headers, raw)
    if response.status == 200:
        assert [(e["serviceCode"], e["status"]) for e in answer["body"]] == [(4041, "rejected")]
    else:
        assert (response.status, answer["body"]) == (400, None)


async def test_a_hand_written_non_finite_operand_is_answered_as_json(world: World) -> None:
    """YAML's ``.inf`` is a valid operand in a file; the management API must still answer
    JSON, which has no Infinity."""
    world.app.write(
        "inf.yaml",
        batch_yaml("infinite").replace("operand: done", "operand: .inf"),
    )
    await exchange(world.app, "POST", "/-/reload", 200, headers=ADMIN)
    params = {"appKey": "shop", "scenarioId": world.id("infinite")}
    read = await exchange(world.app, "GET", MANAGED_ONE, 200, params=params, headers=ADMIN)
    infos = read["body"]["validation"]["textValidation"]["textValidationInfos"]
    assert infos[0]["operand"] in ("inf", ".inf", "Infinity")
    await exchange(world.app, "GET", MANAGED, 200, params={"appKey": "shop"}, headers=ADMIN)


async def test_a_body_whose_content_encoding_does_not_decode_is_a_400_not_a_500(
    world: World,
) -> None:
    """``Content-Encoding: gzip`` on a body that is not gzip: reading the body fails, which
    is the client's error (a documented 400, or 415 for a coding refused), on every
    operation that reads a body."""
    app = world.app
    admin_json = {**ADMIN, **JSON_HEADERS}
    created = await exchange(
        app,
        "POST",
        MANAGED,
        200,
        params={"appKey": "shop"},
        headers=admin_json,
        body=as_json(batch_document("gzip")),
    )
    managed = {"appKey": "shop", "scenarioId": created["body"]["scenarioId"]}
    # A connection whose body could not be read is not reused: each request has its own.
    gzip = {**admin_json, "Content-Encoding": "gzip", "Connection": "close"}
    problems = []
    for template, params in [
        ("/api/v1/events/requeue", None),
        (SINGLE, {"appKey": "shop", "scenarioId": world.id("nightly")}),
        (MULTI, None),
        (MANAGED, {"appKey": "shop"}),
        (MANAGED_ONE, managed),
    ]:
        try:
            async with app.client.post(
                path_of(template, params), headers=gzip, data=b"this is not gzip at all"
            ) as response:
                body = await response.read()
                assert response.status in (400, 415), f"answered {response.status}: {body!r}"
                DOC.check("POST", template, response.status, response.headers, body)
        except (AssertionError, aiohttp.ClientError) as exc:
            problems.append(f"{template}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    assert not problems, "\n".join(problems)


async def test_a_deflate_body_that_breaks_at_its_end_is_answered_not_left_hanging(
    world: World,
) -> None:
    """The handler is already reading when the body comes, and the deflate stream fails
    only at its end: the request must still be answered, with a documented 4xx."""
    app = world.app
    created = await exchange(
        app,
        "POST",
        MANAGED,
        200,
        params={"appKey": "shop"},
        headers={**ADMIN, **JSON_HEADERS},
        body=as_json(batch_document("deflate")),
    )
    targets = [
        ("/api/v1/events/requeue", None),
        (SINGLE, {"appKey": "shop", "scenarioId": world.id("nightly")}),
        (MULTI, None),
        (MANAGED, {"appKey": "shop"}),
        (MANAGED_ONE, {"appKey": "shop", "scenarioId": created["body"]["scenarioId"]}),
    ]
    headers = {**ADMIN, **JSON_HEADERS, "Content-Encoding": "deflate"}
    answers = await asyncio.gather(
        *(
            answer_after_continue(app.address, path_of(t, p), headers, b"\xa1B>\x96")
            for t, p in targets
        )
    )
    problems = []
    for (template, _), answer in zip(targets, answers, strict=True):
        if answer is None:
            problems.append(f"POST {template}: no answer within 5 s")
            continue
        status, received, body = answer
        try:
            assert status in (400, 415), status
            DOC.check("POST", template, status, received, body)
        except AssertionError as exc:
            problems.append(f"POST {template}: {str(exc).splitlines()[0][:200]}")
    assert not problems, "\n".join(problems)
