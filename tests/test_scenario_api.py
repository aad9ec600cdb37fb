"""The scenario management API (``/open-api/v1.0/appkey/{appKey}/scenarios``) on a real app.

The app is ``tests.test_api.running_app``: a real state store, a ``Monitor`` loading the
scenario files of ``tmp_path / "s"``, and the daemon's reload. The folder starts with a
hand-written file holding three scenarios and comments; the API writes its own files
beside it. Every answer is checked field by field against the seed's envelope.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from multidict import CIMultiDictProxy

from monitord.config.scenarios import derive_scenario_id, load_text
from monitord.httpbase import MAX_BODY_BYTES
from monitord.model import HttpTarget
from monitord.scenario_files import MANAGED_MARKER
from tests.test_api import (
    ADMIN,
    ADMIN_KEY,
    BEARER,
    ENVIRON,
    NEVER,
    App,
    raw_exchange,
    running_app,
)

CONFIG = (
    "scenarios: ./s\n"
    "state: ./state.sqlite3\n"
    "adminKey: {env: ADMIN}\n"
    "services:\n"
    "  - {appKey: shop, name: Shop}\n"
    "  - {appKey: other, name: Other}\n"
)
# The same folder, named only through a glob: nowhere for the API to write.
GLOB_CONFIG = CONFIG.replace("scenarios: ./s\n", "scenarios: ./s/*.yaml\n")

SHOP_HOST = "127.0.0.1:9"
SHOP_TOKEN = "tok-7f3a-never-in-a-file"
ENV = {**ENVIRON, "SHOP_HOST": SHOP_HOST, "SHOP_TOKEN": SHOP_TOKEN}

NIGHTLY_ID = "0b1c9a8e-2f4d-4c6b-9a7e-5d3f1e2c4b6a"
HAND_WRITTEN = f"""\
# Scenarios written by hand: the API reads them but never rewrites this file.
- scenarioName: storefront   # the shop's front page
  scenarioType: API
  appKey: shop
  url: http://127.0.0.1:9/front
  {NEVER}

# a nightly job of the shop, with an id of its own
- scenarioName: nightly-export
  scenarioId: {NIGHTLY_ID}
  scenarioType: BATCH
  appKey: shop
  monitoringInterval: 86400
  validation:
    textValidation:
      textValidationType: JSON
      textValidationInfos: [{{expression: $.status, operator: EQ, operand: done}}]

- scenarioName: ledger       # the other service's scenario
  scenarioType: API
  appKey: other
  url: http://127.0.0.1:9/ledger
  {NEVER}
"""
STOREFRONT_ID = derive_scenario_id("shop", "storefront")
LEDGER_ID = derive_scenario_id("other", "ledger")

# The fields the API adds to the document of each scenario it describes, in order.
DESCRIBED = (
    "scenarioId",
    "appKey",
    "scenarioName",
    "scenarioType",
    "registeredTime",
    "amendedTime",
    "status",
    "source",
    "managed",
)
CHALLENGE = 'Bearer realm="monitord"'


def scenarios_path(app_key: str, scenario_id: str | None = None) -> str:
    path = f"/open-api/v1.0/appkey/{app_key}/scenarios"
    return path if scenario_id is None else f"{path}/{scenario_id}"


def api_body(name: str, **extra: Any) -> dict[str, Any]:
    """An API scenario that loads and is scheduled, but only runs in 2060."""
    return {
        "scenarioName": name,
        "scenarioType": "API",
        "url": f"http://{SHOP_HOST}/{name}",
        "monitoringCron": "0 0 0 1 1 ? 2060",
        **extra,
    }


def batch_body(name: str) -> dict[str, Any]:
    return {
        "scenarioName": name,
        "scenarioType": "BATCH",
        "monitoringInterval": 3600,
        "graceSeconds": 60,
        "validation": {
            "textValidation": {
                "textValidationType": "JSON",
                "textValidationInfos": [
                    {"expression": "$.status", "operator": "EQ", "operand": "done"}
                ],
            }
        },
    }


def line_of(text: str, fragment: str) -> int:
    """The 1-based line of the first line of ``text`` containing ``fragment``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def folder_state(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def assert_no_temporaries(folder: Path) -> None:
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".") or ".tmp" in p.name]
    assert leftovers == []


# --- requests and envelopes --------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: CIMultiDictProxy[str]
    content_type: str
    document: Any


async def call(
    app: App,
    method: str,
    path: str,
    body: Any = None,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> Answer:
    """One request; ``body`` is sent as JSON text, ``data`` as it is."""
    sent = dict(ADMIN if headers is None else headers)
    if body is not None:
        data = json.dumps(body).encode("utf-8")
    if data is not None:
        sent["Content-Type"] = content_type
    async with app.client.request(method, path, data=data, headers=sent) as response:
        text = await response.text()
        assert response.status < 500, text
        return Answer(response.status, response.headers, response.content_type, json.loads(text))


def envelope_of(answer: Answer, status: int, code: int, message: str | None = None) -> Any:
    """Check every field of the envelope; the body comes back."""
    assert answer.status == status, answer.document
    assert answer.content_type == "application/json"
    assert list(answer.document) == ["header", "body"]
    header = answer.document["header"]
    assert list(header) == ["isSuccessful", "resultCode", "resultMessage"]
    assert header["isSuccessful"] is (code == 0)
    assert header["resultCode"] == code
    assert isinstance(header["resultMessage"], str)
    if code == 0:
        assert header["resultMessage"] == "SUCCESS"
    elif message is not None:
        assert message in header["resultMessage"], header["resultMessage"]
    else:
        assert header["resultMessage"]
    return answer.document["body"]


def error_of(answer: Answer, status: int, code: int | None = None, message: str = "") -> None:
    """An error envelope with body null."""
    assert envelope_of(answer, status, status if code is None else code, message) is None


def errors_of(answer: Answer) -> list[tuple[str, str]]:
    """The (field, message) pairs of a 422 answer."""
    body = envelope_of(answer, 422, 422, "invalid scenario: ")
    assert list(body) == ["errors"]
    for error in body["errors"]:
        assert list(error) == ["field", "message"]
    return [(e["field"], e["message"]) for e in body["errors"]]


def check_errors(app: App, document: dict[str, Any]) -> list[tuple[str, str]]:
    """What ``monitord check`` says of ``document`` written as a YAML file."""
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    loaded = load_text(text, "check.yaml", app.monitor.config, app.monitor.environ)
    return [(e.field, e.message) for e in loaded.errors]


async def create(app: App, body: dict[str, Any], app_key: str = "shop") -> dict[str, Any]:
    described = envelope_of(await call(app, "POST", scenarios_path(app_key), body), 200, 0)
    assert isinstance(described, dict)
    return described


async def listed(app: App) -> dict[str, dict[str, Any]]:
    """``GET /api/v1/scenarios`` by scenario id."""
    return {s["scenarioId"]: s for s in (await app.scenarios())["scenarios"]}


def file_of(described: dict[str, Any]) -> Path:
    path, _, line = described["source"].rpartition(":")
    assert line.isdigit()
    return Path(path)


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "hand.yaml").write_text(HAND_WRITTEN, encoding="utf-8")
    async with running_app(tmp_path, CONFIG, ENV) as running:
        yield running
        assert_no_temporaries(running.folder)


# --- the admin key and the appKey ---------------------------------------------------------

ROUTES = [
    ("GET", scenarios_path("shop")),
    ("POST", scenarios_path("shop")),
    ("GET", scenarios_path("shop", STOREFRONT_ID)),
    ("POST", scenarios_path("shop", STOREFRONT_ID)),
    ("DELETE", scenarios_path("shop", STOREFRONT_ID)),
    ("GET", scenarios_path("nope")),  # the key is checked before the appKey
    ("DELETE", scenarios_path("nope", STOREFRONT_ID)),
]
WRONG_KEYS = [
    {},
    {"TOAST_PRODUCT_APPKEY": ADMIN_KEY + "x"},
    {"TOAST_PRODUCT_APPKEY": ""},
    {"Authorization": f"Bearer {ADMIN_KEY[:-1]}"},
    {"Authorization": f"Basic {ADMIN_KEY}"},
    {"Authorization": ADMIN_KEY},
]


async def test_without_the_admin_key_every_route_is_401_in_the_envelope(app: App) -> None:
    """No key, a wrong key or another scheme: 401 envelope with a Bearer challenge, on
    every route, before the appKey is looked at; nothing is written."""
    before = folder_state(app.folder)
    for method, path in ROUTES:
        for headers in WRONG_KEYS:
            answer = await call(app, method, path, api_body("x"), headers=headers)
            error_of(answer, 401, message="admin key required")
            assert answer.headers["WWW-Authenticate"] == CHALLENGE
    assert folder_state(app.folder) == before
    assert STOREFRONT_ID in await listed(app)


@pytest.mark.parametrize("headers", [ADMIN, BEARER, {"Authorization": f"bearer {ADMIN_KEY}"}])
async def test_the_admin_key_as_header_or_bearer_token_is_accepted(
    app: App, headers: dict[str, str]
) -> None:
    """TOAST_PRODUCT_APPKEY and an Authorization Bearer token both open the API."""
    body = envelope_of(await call(app, "GET", scenarios_path("shop"), headers=headers), 200, 0)
    assert {s["scenarioId"] for s in body} == {STOREFRONT_ID, NIGHTLY_ID}


async def test_an_unknown_app_key_is_404_4041_on_every_route(app: App) -> None:
    """appKeys that are not configured services (another case, "default", a trailing
    space) answer 404 with resultCode 4041 on every route; nothing is written."""
    before = folder_state(app.folder)
    for app_key in ("nope", "SHOP", "default", "shop "):
        for method, path in [
            ("GET", scenarios_path(app_key)),
            ("POST", scenarios_path(app_key)),
            ("GET", scenarios_path(app_key, STOREFRONT_ID)),
            ("POST", scenarios_path(app_key, STOREFRONT_ID)),
            ("DELETE", scenarios_path(app_key, STOREFRONT_ID)),
        ]:
            answer = await call(app, method, path, api_body("x"))
            error_of(answer, 404, 4041, "unknown appKey")
    assert folder_state(app.folder) == before


# --- create -------------------------------------------------------------------------------


async def test_create_writes_a_managed_file_and_the_scenario_is_scheduled_at_once(
    app: App,
) -> None:
    """POST creates a UUIDv4 scenario in <folder>/<id>.yaml (marker, registered line,
    mode 0640) that loads as written and is in GET /api/v1/scenarios before the answer."""
    body = api_body("checkout", description="the checkout page", errorLimitCount=2)
    started = datetime.now(UTC).replace(microsecond=0)
    answer = await call(app, "POST", scenarios_path("shop"), body)
    described = envelope_of(answer, 200, 0)

    scenario_id = described["scenarioId"]
    assert uuid.UUID(scenario_id).version == 4
    assert scenario_id not in (STOREFRONT_ID, NIGHTLY_ID, LEDGER_ID)
    path = app.folder / f"{scenario_id}.yaml"
    assert described["source"] == f"{path}:3"
    assert list(described) == ["scenarioId", "appKey", *body, *DESCRIBED[4:]]
    assert {k: described[k] for k in body} == body
    assert described["appKey"] == "shop"
    assert described["status"] == "unknown"
    assert described["managed"] is True
    registered = datetime.fromisoformat(described["registeredTime"].replace("Z", "+00:00"))
    assert started <= registered <= datetime.now(UTC)
    assert described["amendedTime"].endswith("Z")

    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0].startswith(MANAGED_MARKER)
    assert lines[1] == f"# registered: {described['registeredTime']}"
    assert lines[2:4] == [f"scenarioId: {scenario_id}", "appKey: shop"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert yaml.safe_load(text) == {"scenarioId": scenario_id, "appKey": "shop", **body}
    loaded = load_text(text, str(path), app.monitor.config, app.monitor.environ)
    assert loaded.errors == ()
    (scenario,) = loaded.scenarios
    assert (scenario.id, scenario.name, scenario.app_key) == (scenario_id, "checkout", "shop")
    assert scenario.error_limit == 2

    now = (await listed(app))[scenario_id]
    assert now["scenarioName"] == "checkout"
    assert now["state"] == "unknown"
    assert now["nextRunAt"] == "2060-01-01T00:00:00.000Z"
    assert now["source"] == f"{path}:3"
    assert now["errorLimitCount"] == 2


async def test_a_batch_scenario_created_accepts_payloads_at_once(app: App) -> None:
    """A BATCH scenario created through the API is watched at once and its payloads are
    judged by the receiver in the very next request."""
    scenario_id = (await create(app, batch_body("import")))["scenarioId"]
    entry = (await listed(app))[scenario_id]
    assert entry["state"] == "unknown"
    assert entry["schedule"] == "expects a payload: every 3600 s"
    assert entry["nextRunAt"] is not None
    assert entry["graceSeconds"] == 60
    assert entry["lastPayloadAt"] is None

    receiver = f"/v1.0/monitoring/batchmon/appkey/shop/scenarios/{scenario_id}"
    async with app.client.post(receiver, json={"status": "done"}) as response:
        assert response.status == 200, await response.text()
        element = (await response.json())["body"]
    assert (element["scenarioId"], element["status"], element["reasons"]) == (
        scenario_id,
        "success",
        [],
    )
    after = (await listed(app))[scenario_id]
    assert after["state"] == "ok"
    assert after["lastPayloadAt"] == element["requestTime"]
    read = envelope_of(await call(app, "GET", scenarios_path("shop", scenario_id)), 200, 0)
    assert read["status"] == "ok"


async def test_create_refuses_a_scenario_id_and_another_app_key_in_the_body(app: App) -> None:
    """monitord chooses the id on create; the body's appKey must be the path's. Both are
    422 with the field named, and nothing is written."""
    before = folder_state(app.folder)
    given = str(uuid.uuid4())
    answer = await call(app, "POST", scenarios_path("shop"), api_body("x", scenarioId=given))
    assert [field for field, _ in errors_of(answer)] == ["scenarioId"]
    answer = await call(app, "POST", scenarios_path("shop"), api_body("x", appKey="other"))
    assert errors_of(answer) == [("appKey", "must be shop (the path's)")]
    answer = await call(app, "POST", scenarios_path("other"), api_body("x", appKey="shop"))
    assert errors_of(answer) == [("appKey", "must be other (the path's)")]
    assert folder_state(app.folder) == before
    assert given not in await listed(app)
    # The path's own appKey repeated in the body is fine.
    created = await create(app, api_body("x", appKey="other"), "other")
    assert created["appKey"] == "other"


BAD_DOCUMENTS = {
    "bad url": (api_body("u", url="ftp://example.com/x"), ("url", "must be an http:// or")),
    "interval and cron": (
        api_body("s", monitoringInterval=60),
        ("monitoringCron", "give monitoringInterval or monitoringCron, not both"),
    ),
    "unknown field": (
        api_body("f", monitoringIntervall=60),
        ("monitoringIntervall", "unknown field (did you mean monitoringInterval?)"),
    ),
    "bad operator": (
        api_body(
            "o",
            validation={
                "textValidation": {
                    "textValidationType": "JSON",
                    "textValidationInfos": [
                        {"expression": "$.a", "operator": "EQUALS", "operand": "1"}
                    ],
                }
            },
        ),
        ("validation.textValidation.textValidationInfos[0].operator", "must be one of"),
    ),
    "batch with html": (
        {
            **batch_body("h"),
            "validation": {
                "textValidation": {"textValidationType": "HTML", "textValidationInfos": []}
            },
        },
        (
            "validation.textValidation.textValidationType",
            "BATCH payloads are JSON: must be JSON",
        ),
    ),
    "no type": (
        {"scenarioName": "t", "url": "http://127.0.0.1:9/"},
        ("scenarioType", "missing required field"),
    ),
    "several at once": (
        {
            "scenarioName": 7,
            "scenarioType": "TCP",
            "ip": "not a host!",
            "port": 70000,
            "monitoringInterval": "30s",
        },
        ("port", "must be at most 65535"),
    ),
    "bad eventType": (
        api_body("k", appKey="shop", eventType="NOPE"),
        ("eventType", "must be one of"),
    ),
}


@pytest.mark.parametrize(("document", "expected"), BAD_DOCUMENTS.values(), ids=BAD_DOCUMENTS)
async def test_an_invalid_document_gets_the_errors_monitord_check_gives(
    app: App, document: dict[str, Any], expected: tuple[str, str]
) -> None:
    """422 with the (field, message) pairs a file of the same document gets, for create
    and for modify; nothing is written or changed."""
    reference = check_errors(app, document)
    field, start = expected
    assert any(f == field and m.startswith(start) for f, m in reference), reference
    target = await create(app, api_body("target"))
    before = folder_state(app.folder)

    created = await call(app, "POST", scenarios_path("shop"), document)
    assert errors_of(created) == reference
    modified = await call(app, "POST", scenarios_path("shop", target["scenarioId"]), document)
    assert errors_of(modified) == reference
    assert folder_state(app.folder) == before
    assert (await listed(app))[target["scenarioId"]]["scenarioName"] == "target"


async def test_a_duplicate_name_is_422_and_writes_nothing(app: App) -> None:
    """A name taken by a hand-written scenario or by another created one is refused on
    create and on modify (the file stays as it was); other appKeys may reuse it."""
    hand = app.folder / "hand.yaml"
    created = await create(app, api_body("checkout"))
    before = folder_state(app.folder)
    for name, owner in [
        ("storefront", f"{hand}:{line_of(HAND_WRITTEN, 'storefront')}"),
        ("checkout", f"{file_of(created)}:3"),
    ]:
        answer = await call(app, "POST", scenarios_path("shop"), api_body(name))
        assert errors_of(answer) == [
            ("scenarioName", f"duplicate scenarioName {name!r} for appKey shop (also in {owner})")
        ]
    answer = await call(
        app, "POST", scenarios_path("shop", created["scenarioId"]), api_body("storefront")
    )
    assert [field for field, _ in errors_of(answer)] == ["scenarioName"]
    assert folder_state(app.folder) == before
    # The same name under the other appKey is another scenario.
    other = await create(app, api_body("storefront"), "other")
    assert other["scenarioId"] != STOREFRONT_ID


# --- list and read ------------------------------------------------------------------------


async def test_the_list_holds_every_scenario_of_the_app_key_and_no_other(app: App) -> None:
    """GET lists the appKey's scenarios from the hand-written file (managed false, the
    document as written, path:line) and the API's files (managed true), never another
    appKey's."""
    mine = await create(app, api_body("checkout"))
    theirs = await create(app, api_body("ledger-2"), "other")
    hand = app.folder / "hand.yaml"

    shop = envelope_of(await call(app, "GET", scenarios_path("shop")), 200, 0)
    by_id = {s["scenarioId"]: s for s in shop}
    assert set(by_id) == {STOREFRONT_ID, NIGHTLY_ID, mine["scenarioId"]}
    storefront = by_id[STOREFRONT_ID]
    assert storefront == {
        "scenarioName": "storefront",
        "scenarioType": "API",
        "appKey": "shop",
        "url": "http://127.0.0.1:9/front",
        "monitoringCron": "0 0 0 1 1 ? 2060",
        "scenarioId": STOREFRONT_ID,
        "registeredTime": None,
        "amendedTime": storefront["amendedTime"],
        "status": "unknown",
        "source": f"{hand}:{line_of(HAND_WRITTEN, 'storefront')}",
        "managed": False,
    }
    mtime = datetime.fromtimestamp(hand.stat().st_mtime, UTC)
    assert storefront["amendedTime"] == mtime.strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{mtime.microsecond // 1000:03d}Z"
    )
    nightly = by_id[NIGHTLY_ID]
    assert nightly["source"] == f"{hand}:{line_of(HAND_WRITTEN, 'nightly-export')}"
    assert nightly["validation"]["textValidation"]["textValidationInfos"] == [
        {"expression": "$.status", "operator": "EQ", "operand": "done"}
    ]
    assert (nightly["managed"], nightly["monitoringInterval"]) == (False, 86400)
    assert by_id[mine["scenarioId"]] == mine

    other = envelope_of(await call(app, "GET", scenarios_path("other")), 200, 0)
    assert {s["scenarioId"] for s in other} == {LEDGER_ID, theirs["scenarioId"]}
    assert {s["appKey"] for s in other} == {"other"}


async def test_read_one_and_another_app_keys_scenario_is_4042(app: App) -> None:
    """GET of one scenario answers what the list holds for it; a scenario of another
    appKey or an unknown id is 404 with resultCode 4042 (read, modify and delete)."""
    created = await create(app, api_body("checkout"))
    read = await call(app, "GET", scenarios_path("shop", created["scenarioId"]))
    assert envelope_of(read, 200, 0) == created
    hand = envelope_of(await call(app, "GET", scenarios_path("shop", STOREFRONT_ID)), 200, 0)
    assert (hand["scenarioName"], hand["managed"]) == ("storefront", False)

    before = folder_state(app.folder)
    for app_key, scenario_id in [
        ("other", created["scenarioId"]),
        ("shop", LEDGER_ID),
        ("shop", str(uuid.uuid4())),
        ("shop", "not-a-uuid"),
    ]:
        for method in ("GET", "POST", "DELETE"):
            answer = await call(
                app, method, scenarios_path(app_key, scenario_id), api_body("checkout")
            )
            error_of(answer, 404, 4042, "no scenario")
    assert folder_state(app.folder) == before


# --- modify and delete --------------------------------------------------------------------


async def test_modify_rewrites_the_file_and_applies_at_once(app: App) -> None:
    """POST to a scenario replaces its document: the file changes, the new schedule
    applies before the answer, registeredTime stays and amendedTime moves."""
    created = await create(app, api_body("checkout"))
    scenario_id = created["scenarioId"]
    path = file_of(created)
    old = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    os.utime(path, (old, old))
    read = envelope_of(await call(app, "GET", scenarios_path("shop", scenario_id)), 200, 0)
    assert read["amendedTime"] == "2020-01-02T03:04:05.000Z"
    before_text = path.read_text(encoding="utf-8")
    fingerprint = app.monitor.loaded_files()[str(path)][0].fingerprint

    body = api_body("checkout", monitoringCron="0 0 0 1 1 ? 2061", description="moved to 2061")
    body["scenarioId"] = scenario_id  # repeating the path's id is allowed
    answer = await call(app, "POST", scenarios_path("shop", scenario_id), body)
    modified = envelope_of(answer, 200, 0)
    assert modified["scenarioId"] == scenario_id
    assert modified["monitoringCron"] == "0 0 0 1 1 ? 2061"
    assert modified["description"] == "moved to 2061"
    assert modified["registeredTime"] == created["registeredTime"]
    assert modified["amendedTime"] > "2020-01-02T03:04:05.000Z"
    assert modified["managed"] is True

    text = path.read_text(encoding="utf-8")
    assert text != before_text
    assert text.splitlines()[:2] == before_text.splitlines()[:2]
    assert "2061" in text
    assert "moved to 2061" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    (scenario,) = app.monitor.loaded_files()[str(path)]
    assert scenario.fingerprint != fingerprint
    entry = (await listed(app))[scenario_id]
    assert entry["schedule"] == "cron 0 0 0 1 1 ? 2061 (UTC)"
    assert entry["nextRunAt"] == "2061-01-01T00:00:00.000Z"

    wrong_id = {**body, "scenarioId": str(uuid.uuid4())}
    answer = await call(app, "POST", scenarios_path("shop", scenario_id), wrong_id)
    assert errors_of(answer) == [("scenarioId", f"must be {scenario_id} (the path's)")]
    answer = await call(
        app, "POST", scenarios_path("shop", scenario_id), {**body, "appKey": "other"}
    )
    assert errors_of(answer) == [("appKey", "must be shop (the path's)")]
    assert path.read_text(encoding="utf-8") == text


async def test_delete_removes_the_file_and_the_scenario(app: App) -> None:
    """DELETE answers the scenario with status "deleted", removes its file and stops it
    at once; a second DELETE (and any other call) is 404/4042."""
    created = await create(app, batch_body("import"))
    scenario_id = created["scenarioId"]
    path = file_of(created)
    answer = await call(app, "DELETE", scenarios_path("shop", scenario_id))
    deleted = envelope_of(answer, 200, 0)
    assert deleted == {**created, "status": "deleted", "amendedTime": deleted["amendedTime"]}
    assert not path.exists()
    assert scenario_id not in await listed(app)
    async with app.client.get(f"/api/v1/scenarios/{scenario_id}") as response:
        assert response.status == 404
    receiver = f"/v1.0/monitoring/batchmon/appkey/shop/scenarios/{scenario_id}"
    async with app.client.post(receiver, json={"status": "done"}) as response:
        assert response.status == 404
        assert (await response.json())["header"]["resultCode"] == 4042

    for method in ("DELETE", "GET", "POST"):
        answer = await call(app, method, scenarios_path("shop", scenario_id), batch_body("x"))
        error_of(answer, 404, 4042)
    listing = envelope_of(await call(app, "GET", scenarios_path("shop")), 200, 0)
    assert scenario_id not in {s["scenarioId"] for s in listing}
    # The name is free again.
    again = await create(app, batch_body("import"))
    assert again["scenarioId"] != scenario_id


async def test_hand_written_scenarios_are_read_only(app: App) -> None:
    """Modify and delete of a scenario from a hand-written file are 409 naming the file,
    which stays byte for byte; so for a file with the marker that holds two scenarios."""
    hand = app.folder / "hand.yaml"
    pair = app.folder / "pair.yaml"
    pair.write_text(
        f"{MANAGED_MARKER}; edited by hand since\n"
        f"- {json.dumps(api_body('pair-a'))}\n"
        f"- {json.dumps(api_body('pair-b'))}\n",
        encoding="utf-8",
    )
    status, report = await app.reload()
    assert status == 200, report
    pair_a = derive_scenario_id("shop", "pair-a")
    before = folder_state(app.folder)
    for path, scenario_id in [(hand, STOREFRONT_ID), (hand, NIGHTLY_ID), (pair, pair_a)]:
        modify = await call(app, "POST", scenarios_path("shop", scenario_id), api_body("renamed"))
        error_of(modify, 409, message=f"is defined in {path}:")
        delete = await call(app, "DELETE", scenarios_path("shop", scenario_id))
        error_of(delete, 409, message=f"is defined in {path}:")
        read = await call(app, "GET", scenarios_path("shop", scenario_id))
        assert envelope_of(read, 200, 0)["scenarioId"] == scenario_id
    assert folder_state(app.folder) == before
    assert {STOREFRONT_ID, NIGHTLY_ID, pair_a} <= set(await listed(app))


# --- bodies that are not scenario documents -----------------------------------------------


async def test_a_body_that_is_not_json_typed_is_415(app: App) -> None:
    """Create and modify need Content-Type application/json (or +json): else 415 with
    Accept-Post, and nothing is written."""
    before = folder_state(app.folder)
    data = json.dumps(api_body("typed")).encode()
    for path in (scenarios_path("shop"), scenarios_path("shop", STOREFRONT_ID)):
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "text/json"):
            answer = await call(app, "POST", path, data=data, content_type=content_type)
            error_of(answer, 415, message="Content-Type must be application/json")
            assert answer.headers["Accept-Post"] == "application/json"
    assert folder_state(app.folder) == before
    typed = await call(
        app, "POST", scenarios_path("shop"), data=data, content_type="application/merge+json"
    )
    assert envelope_of(typed, 200, 0)["scenarioName"] == "typed"


NOT_OBJECTS = {
    "not json": (b"scenarioName: x", "the request body is not JSON"),
    "empty": (b"", "the request body is not JSON"),
    "NaN": (b'{"scenarioName": "x", "errorLimitCount": NaN}', "the request body is not JSON"),
    "Infinity": (b'{"errorLimitCount": -Infinity}', "the request body is not JSON"),
    "not utf-8": (b'{"scenarioName": "\xff\xfe"}', "the request body is not JSON"),
    "a list": (json.dumps([api_body("x")]).encode(), "the body must be a scenario"),
    "a string": (b'"scenarioName"', "the body must be a scenario"),
    "null": (b"null", "the body must be a scenario"),
    "deep nesting": (b"[" * 200_000 + b"]" * 200_000, "the request body is not JSON"),
    "deep objects": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "the request body is not JSON"),
}


@pytest.mark.parametrize(("data", "message"), NOT_OBJECTS.values(), ids=NOT_OBJECTS)
async def test_a_body_that_is_not_a_json_object_is_400(app: App, data: bytes, message: str) -> None:
    """Not JSON, NaN/Infinity, not an object, nested past the parser: 400, nothing written."""
    before = folder_state(app.folder)
    for path in (scenarios_path("shop"), scenarios_path("shop", STOREFRONT_ID)):
        error_of(await call(app, "POST", path, data=data), 400, message=message)
    assert folder_state(app.folder) == before


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("depth", [40, 100, 500, 900])
async def test_json_nested_deeper_than_a_scenario_file_is_refused_not_a_server_error(
    app: App, depth: int
) -> None:
    """JSON the parser takes but that is nested hundreds of levels deep (in a field the
    document does not have, or in one it has) is a 4xx in the envelope, never a 500,
    and no file is written."""
    target = await create(app, api_body("target"))
    before = folder_state(app.folder)
    for path in (scenarios_path("shop"), scenarios_path("shop", target["scenarioId"])):
        for body in (
            api_body("deep", extra=nested(depth)),
            api_body("deep", monitoringRegion=json.loads("[" * depth + "]" * depth)),
        ):
            answer = await call(app, "POST", path, body)
            assert answer.status == 400, answer.document
            envelope_of(answer, 400, 400)
            message = answer.document["header"]["resultMessage"]
            assert message == "the body is nested more than 32 levels deep"
    assert folder_state(app.folder) == before


async def test_a_body_over_1_mib_is_413(app: App) -> None:
    """Declared or chunked, a body over the cap is 413 in the envelope; a scenario with a
    request body just under the cap is created."""
    head = (
        f"POST {scenarios_path('shop')} HTTP/1.1\r\nHost: x\r\n"
        f"TOAST_PRODUCT_APPKEY: {ADMIN_KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {MAX_BODY_BYTES + 1}\r\nConnection: close\r\n\r\n"
    ).encode()
    raw = await raw_exchange(app.address, head)
    assert raw.status == 413
    assert raw.headers["content-type"].startswith("application/json")
    assert json.loads(raw.body) == {
        "header": {
            "isSuccessful": False,
            "resultCode": 413,
            "resultMessage": f"request body larger than {MAX_BODY_BYTES} bytes",
        },
        "body": None,
    }

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"scenarioName": "big", "description": "'
        for _ in range(17):
            yield b"z" * (64 * 1024)
        yield b'"}'

    headers = {**ADMIN, "Content-Type": "application/json"}
    async with app.client.post(scenarios_path("shop"), data=chunks(), headers=headers) as resp:
        assert resp.status == 413, await resp.text()
        document = await resp.json()
    assert document["header"]["resultCode"] == 413
    assert document["header"]["isSuccessful"] is False
    assert document["body"] is None

    body = api_body("padded", httpMethod="POST", requestBody="")
    padding = MAX_BODY_BYTES - len(json.dumps(body).encode()) - 100
    padded = json.dumps({**body, "requestBody": "p" * padding}).encode()
    assert MAX_BODY_BYTES - 100 <= len(padded) < MAX_BODY_BYTES
    created = envelope_of(await call(app, "POST", scenarios_path("shop"), data=padded), 200, 0)
    assert created["requestBody"] == "p" * padding
    assert file_of(created).stat().st_size > padding


# --- hostile values -----------------------------------------------------------------------

HOSTILE = [
    "a\x00b",
    "x" * 100_000,
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object:__main__.Thing",
    "&anchor",
    "*alias",
    "{a: b}",
    "[a, b]",
    "- x",
    "#comment",
    "a # b",
    "\n---\n",
    "--- !!python/name:os.system",
    "key: value",
    "'single'",
    '"double"',
    "|",
    "> folded",
    "%YAML 1.1",
    "@at",
    "`tick",
    "<<",
    "~",
    "null",
    "yes",
    "0x1F",
    "1e3",
    "2026-01-01",
    " leading and trailing ",
    "tab\tinside",
    "\ud800",
    "\u2028",
    "日本語 ✓",
]


async def test_hostile_strings_round_trip_or_are_refused(app: App, tmp_path: Path) -> None:
    """YAML-looking and control-character strings in a name or a description come back
    exactly as sent, from the answer, a read and the file, or are refused with 422 as a
    file holding them would be; nothing is ever executed and nothing is a 5xx."""
    marker = tmp_path / "executed"
    created: list[tuple[str, str]] = []
    for index, template in enumerate(HOSTILE):
        value = template.replace("{marker}", str(marker))
        for field, body in [
            ("scenarioName", api_body(value)),
            ("description", api_body(f"described-{index}", description=value)),
        ]:
            reference = check_errors(app, body)
            before = folder_state(app.folder)
            answer = await call(app, "POST", scenarios_path("shop"), body)
            if reference:
                assert errors_of(answer) == reference, (field, value)
                assert folder_state(app.folder) == before
                continue
            described = envelope_of(answer, 200, 0)
            assert described[field] == value
            scenario_id = described["scenarioId"]
            read = await call(app, "GET", scenarios_path("shop", scenario_id))
            assert envelope_of(read, 200, 0)[field] == value
            text = file_of(described).read_text(encoding="utf-8")
            assert yaml.safe_load(text)[field] == value
            if field == "scenarioName":
                assert (await listed(app))[scenario_id]["scenarioName"] == value
            created.append((field, value))
    assert not marker.exists()
    # The plain YAML-looking strings are stored; the broken ones are refused.
    assert ("scenarioName", "*alias") in created
    assert ("scenarioName", "!!python/object:__main__.Thing") in created
    assert ("description", "\n---\n") in created
    assert ("scenarioName", "\n---\n") not in created
    assert ("scenarioName", "x" * 100_000) not in created
    assert ("scenarioName", "a\x00b") not in created


async def test_hostile_field_names_are_unknown_fields(app: App) -> None:
    """Keys that look like YAML syntax are reported as unknown fields, never interpreted."""
    before = folder_state(app.folder)
    for key in ("!!python/object:os.system", "*alias", "&anchor", "<<", "a\x00", "? x"):
        answer = await call(app, "POST", scenarios_path("shop"), {**api_body("k"), key: "v"})
        assert errors_of(answer) == [(key, "unknown field")]
    assert folder_state(app.folder) == before


# --- concurrency, variables, configuration ------------------------------------------------


async def test_twenty_concurrent_creates_all_succeed(app: App) -> None:
    """Twenty creates at once: each gets its own id and file, and all of them run."""
    answers = await asyncio.gather(
        *(call(app, "POST", scenarios_path("shop"), api_body(f"parallel-{i}")) for i in range(20))
    )
    described = [envelope_of(answer, 200, 0) for answer in answers]
    ids = {d["scenarioId"] for d in described}
    assert len(ids) == 20
    assert {d["scenarioName"] for d in described} == {f"parallel-{i}" for i in range(20)}
    for d in described:
        path = app.folder / f"{d['scenarioId']}.yaml"
        assert path.is_file()
        assert path.read_text(encoding="utf-8").startswith(MANAGED_MARKER)
    assert ids <= set(await listed(app))
    listing = envelope_of(await call(app, "GET", scenarios_path("shop")), 200, 0)
    assert ids <= {s["scenarioId"] for s in listing}
    assert len(listing) == 22


async def test_variable_references_are_kept_as_written(app: App) -> None:
    """``${NAME}`` in a url or a header stays a reference in the file and in every answer;
    the value is used only when probing."""
    body = api_body(
        "with-vars",
        url="http://${SHOP_HOST}/health",
        headers={"Authorization": "Bearer ${SHOP_TOKEN}"},
    )
    created = await create(app, body)
    assert created["url"] == "http://${SHOP_HOST}/health"
    assert created["headers"] == {"Authorization": "Bearer ${SHOP_TOKEN}"}
    text = file_of(created).read_text(encoding="utf-8")
    assert "http://${SHOP_HOST}/health" in text
    assert "Bearer ${SHOP_TOKEN}" in text
    assert SHOP_TOKEN not in text
    assert SHOP_HOST not in text
    read = await call(app, "GET", scenarios_path("shop", created["scenarioId"]))
    assert envelope_of(read, 200, 0)["url"] == "http://${SHOP_HOST}/health"
    listing = await call(app, "GET", scenarios_path("shop"))
    assert SHOP_TOKEN not in json.dumps(listing.document)
    (scenario,) = app.monitor.loaded_files()[str(file_of(created))]
    assert isinstance(scenario.target, HttpTarget)
    assert scenario.target.url == f"http://{SHOP_HOST}/health"
    assert scenario.target.headers == (("Authorization", f"Bearer {SHOP_TOKEN}"),)

    unset = api_body("unset-var", url="http://${NOT_SET_ANYWHERE}/x")
    answer = await call(app, "POST", scenarios_path("shop"), unset)
    assert errors_of(answer) == check_errors(app, unset)
    assert errors_of(answer) == [("url", "environment variable NOT_SET_ANYWHERE is not set")]


async def test_create_without_a_scenarios_folder_is_409(tmp_path: Path) -> None:
    """When every configured scenarios path is a glob or a file, create answers 409 and
    writes nothing; listing and reading still work."""
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "hand.yaml").write_text(HAND_WRITTEN, encoding="utf-8")
    async with running_app(tmp_path, GLOB_CONFIG, ENV) as app:
        before = folder_state(folder)
        answer = await call(app, "POST", scenarios_path("shop"), api_body("nowhere"))
        error_of(answer, 409, message="no scenarios folder to write to")
        assert folder_state(folder) == before
        listing = envelope_of(await call(app, "GET", scenarios_path("shop")), 200, 0)
        assert {s["scenarioId"] for s in listing} == {STOREFRONT_ID, NIGHTLY_ID}
        assert "nowhere" not in {s["scenarioName"] for s in (await app.scenarios())["scenarios"]}
