"""End to end: BATCH scenarios, the batch receiver and the scenario management API, with
``monitord run`` as a subprocess.

Payloads are posted to the receiver's seed paths, events go to a local sink
(``tests.sink``), scenarios are created, changed and deleted through the open-api paths.
Every wait polls with a deadline.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import stat
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from monitord.scenario_files import MANAGED_MARKER
from tests.sink import event_sink
from tests.test_daemon import (
    ADMIN,
    ADMIN_KEY,
    Daemon,
    api_scenario,
    get_json,
    poll,
    running,
    scenario_state,
    scrape,
    target_server,
    value,
    wait_until,
    write_config,
)
from tests.test_events_e2e import ENV, event_id, events_config, is_close
from tests.test_receiver import (
    ELEMENT_KEYS,
    FAILING,
    FAILING_REASONS,
    PASSING,
    REQUEST_TIME,
)

pytestmark = pytest.mark.e2e

RECEIVER = "/v1.0/monitoring/batchmon"
DEFAULT_KEY = "default"  # the appKey of scenarios when no services are configured
SHOP_KEY = "81713f1cc96b4eae834f7535ec4fae7a"
BILLING_KEY = "2aac90b8f3c64fcb8083d1ed0218192c"
SUCCESS_HEADER = {"isSuccessful": True, "resultCode": 0, "resultMessage": "SUCCESS"}

NUM_ERRORS = {"expression": "$.numErrors", "operator": "LTE", "operand": "0"}
STATUS_OK = {"expression": "$.status", "operator": "EQ", "operand": "ok"}


# --- helpers -----------------------------------------------------------------------------


def batch_yaml(
    name: str, checks: tuple[dict[str, str], ...] = (NUM_ERRORS, STATUS_OK), **fields: Any
) -> str:
    """A BATCH scenario file: ``fields`` as given, then the JSON checks."""
    lines = [f"scenarioName: {name}", "scenarioType: BATCH"]
    lines += [f"{key}: {item}" for key, item in fields.items()]
    lines += [
        "validation:",
        "  textValidation:",
        "    textValidationType: JSON",
        f"    textValidationInfos: {json.dumps(list(checks))}",
    ]
    return "\n".join(lines) + "\n"


def single_path(app_key: str, scenario_id: str) -> str:
    return f"{RECEIVER}/appkey/{app_key}/scenarios/{scenario_id}"


def open_api(app_key: str, scenario_id: str | None = None) -> str:
    path = f"/open-api/v1.0/appkey/{app_key}/scenarios"
    return path if scenario_id is None else f"{path}/{scenario_id}"


async def call(
    base: str,
    method: str,
    path: str,
    *,
    body: Any = None,
    text: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """Send a request (``body`` as JSON, or ``text`` as a JSON payload); status and answer."""
    sent = dict(headers or {})
    if body is not None:
        text = json.dumps(body)
    data = None
    if text is not None:
        data = text.encode("utf-8")
        sent.setdefault("Content-Type", "application/json")
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, base + path, data=data, headers=sent) as response,
    ):
        return response.status, await response.json()


async def send_payload(base: str, app_key: str, scenario_id: str, text: str) -> tuple[int, Any]:
    return await call(base, "POST", single_path(app_key, scenario_id), text=text)


def refused(answer: Any, code: int) -> None:
    """An error envelope with ``code`` and no body."""
    assert answer["header"]["isSuccessful"] is False
    assert answer["header"]["resultCode"] == code
    assert answer["header"]["resultMessage"]
    assert answer["body"] is None


def check_element(
    element: dict[str, Any],
    scenario_id: str,
    text: str,
    *,
    service_code: int,
    status: str,
    reasons: list[str],
) -> None:
    """One receiver answer element: the seed's fields plus ``reasons``."""
    assert list(element) == ELEMENT_KEYS
    assert set(element["pk"]) == {"serviceId", "requestId"}
    assert uuid.UUID(element["pk"]["serviceId"]).version == 5
    assert uuid.UUID(element["pk"]["requestId"]).version == 4
    assert element["scenarioId"] == scenario_id
    assert element["ipaddr"] == "127.0.0.1"
    assert REQUEST_TIME.fullmatch(element["requestTime"]), element["requestTime"]
    assert element["requestData"] == {"body": text}
    assert element["serviceCode"] == service_code
    assert element["status"] == status
    assert element["reasons"] == reasons


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def scenario(daemon: Daemon, scenario_id: str) -> dict[str, Any]:
    found: dict[str, Any] = await get_json(daemon.base, f"/api/v1/scenarios/{scenario_id}")
    return found


async def stop(daemon: Daemon) -> None:
    """SIGTERM: the daemon exits 0 without a traceback."""
    daemon.signal(signal.SIGTERM)
    assert await daemon.exit_code(20) == 0
    assert "Traceback" not in daemon.log


def services_config(directory: Path) -> tuple[Path, str, str]:
    """Two services with a BATCH scenario each (errorLimitCount 0): the shop's checks
    ``$.status``, the billing one ``$.numErrors``. The config and both scenario ids."""
    config = write_config(
        directory,
        f"services:\n  - appKey: {SHOP_KEY}\n    name: shop\n"
        f"  - appKey: {BILLING_KEY}\n    name: billing\n",
    )
    shop_id, billing_id = str(uuid.uuid4()), str(uuid.uuid4())
    (directory / "s" / "shop.yaml").write_text(
        batch_yaml(
            "orders export",
            (STATUS_OK,),
            appKey=SHOP_KEY,
            scenarioId=shop_id,
            errorLimitCount=0,
        ),
        encoding="utf-8",
    )
    (directory / "s" / "billing.yaml").write_text(
        batch_yaml(
            "invoice run",
            (NUM_ERRORS,),
            appKey=BILLING_KEY,
            scenarioId=billing_id,
            errorLimitCount=0,
        ),
        encoding="utf-8",
    )
    return config, shop_id, billing_id


# --- the single receiver ------------------------------------------------------------------


async def test_single_receiver_judges_payloads_and_the_error_limit_opens_one_event(
    tmp_path: Path,
) -> None:
    """A passing payload gets the full seed answer; failing ones get their reasons; the
    second failure passes errorLimitCount 1 and opens one ERROR_EVENT, which the next
    passing payload closes."""
    async with event_sink() as sink:
        config = events_config(tmp_path, sink.url, refreshSeconds=30)
        (tmp_path / "s" / "nightly.yaml").write_text(
            batch_yaml("nightly export", errorLimitCount=1), encoding="utf-8"
        )
        async with running(config, ENV) as daemon:
            listing = await get_json(daemon.base, "/api/v1/scenarios")
            sid = scenario_state(listing, "nightly export")["scenarioId"]

            before = datetime.now(UTC) - timedelta(milliseconds=1)
            status, answer = await send_payload(daemon.base, DEFAULT_KEY, sid, PASSING)
            after = datetime.now(UTC)
            assert status == 200
            assert answer["header"] == SUCCESS_HEADER
            passed = answer["body"]
            check_element(passed, sid, PASSING, service_code=0, status="success", reasons=[])
            assert before <= parse_time(passed["requestTime"]) <= after
            state = await scenario(daemon, sid)
            assert state["state"] == "ok"
            assert state["consecutiveFailures"] == 0
            assert state["lastPayloadAt"] == passed["requestTime"]
            assert state["lastResult"]["result"] == "success"
            assert state["lastResult"]["responseBytes"] == len(PASSING)

            request_ids = {passed["pk"]["requestId"]}
            for count in (1, 2):
                status, answer = await send_payload(daemon.base, DEFAULT_KEY, sid, FAILING)
                assert status == 200
                assert answer["header"] == SUCCESS_HEADER
                failed = answer["body"]
                check_element(
                    failed, sid, FAILING, service_code=0, status="failure", reasons=FAILING_REASONS
                )
                assert failed["pk"]["serviceId"] == passed["pk"]["serviceId"]
                request_ids.add(failed["pk"]["requestId"])
                listing = await get_json(daemon.base, "/api/v1/scenarios")
                state = scenario_state(listing, "nightly export")
                assert state["consecutiveFailures"] == count
                assert state["lastResult"]["reasons"] == FAILING_REASONS
                assert state["lastPayloadAt"] == failed["requestTime"]
                if count == 1:
                    assert state["state"] == "ok", "one failure is within errorLimitCount 1"
                    assert listing["numErrors"] == 0
            assert len(request_ids) == 3, "every payload gets a request id of its own"
            assert state["state"] == "failing"
            assert listing["numErrors"] == 1
            assert state["failingSince"] is not None

            await sink.wait_for(lambda got: len(got) >= 1, 20)
            status, answer = await send_payload(daemon.base, DEFAULT_KEY, sid, PASSING)
            assert status == 200
            assert answer["body"]["status"] == "success"
            state = await scenario(daemon, sid)
            assert state["state"] == "ok"
            assert state["consecutiveFailures"] == 0
            await sink.wait_for(lambda got: any(is_close(r) for r in got), 20)

            metrics = await scrape(daemon.base)
            labels = {"scenario_id": sid, "scenario_type": "BATCH", "app_key": DEFAULT_KEY}
            assert value(metrics, "monitord_batch_payloads_total", result="success", **labels) == 2
            assert value(metrics, "monitord_batch_payloads_total", result="failure", **labels) == 2
            assert value(metrics, "monitord_scenario_runs_total", result="failure", **labels) == 2
            assert value(metrics, "monitord_scenario_failing", **labels) == 0
            await stop(daemon)

    assert len(sink.received) == 2, sink.summary()
    opened, closed = sink.received
    assert opened.event is not None
    assert closed.event is not None
    assert not is_close(opened)
    assert is_close(closed)
    assert opened.event["eventType"] == "ERROR_EVENT"
    assert closed.event["eventType"] == "ERROR_EVENT"
    assert opened.event["title"] == closed.event["title"]
    assert "nightly export" in opened.event["title"]
    properties = opened.event["properties"]
    assert properties["monitord.scenario.id"] == sid
    assert properties["monitord.scenario.name"] == "nightly export"
    assert properties["monitord.scenario.type"] == "BATCH"
    assert properties["monitord.region"] == "KOR"
    assert properties["monitord.consecutive_failures"] == "2"
    assert properties["monitord.reason"] == "; ".join(FAILING_REASONS)
    assert event_id(closed) == event_id(opened)
    assert closed.event["endTime"] >= closed.event["startTime"]


async def test_unknown_app_key_or_scenario_on_the_single_receiver_is_404(tmp_path: Path) -> None:
    """An unknown appKey is 4041; an unknown scenario, or another appKey's, is 4042; both
    are HTTP 404 envelopes, and nothing is recorded for the scenario."""
    config, shop_id, billing_id = services_config(tmp_path)
    async with running(config) as daemon:
        status, answer = await send_payload(daemon.base, "nosuchkey", shop_id, PASSING)
        assert status == 404
        refused(answer, 4041)
        unknown = str(uuid.uuid4())
        status, answer = await send_payload(daemon.base, SHOP_KEY, unknown, PASSING)
        assert status == 404
        refused(answer, 4042)
        assert unknown in answer["header"]["resultMessage"]
        status, answer = await send_payload(daemon.base, SHOP_KEY, billing_id, PASSING)
        assert status == 404
        refused(answer, 4042)
        for sid in (shop_id, billing_id):
            state = await scenario(daemon, sid)
            assert state["state"] == "unknown"
            assert state["lastPayloadAt"] is None
        await stop(daemon)


# --- the multi-target receiver --------------------------------------------------------------


async def test_multi_receiver_answers_every_pair_and_judges_each_scenario(
    tmp_path: Path,
) -> None:
    """The seed's two-appKey body: one element per (appkey, id) pair in order, repeats
    once; serviceCode 0 for the judged, 4042 for an unknown (or another appKey's)
    scenario, 4041 for an unknown appkey; each BATCH scenario's state follows its own
    checks."""
    config, shop_id, billing_id = services_config(tmp_path)
    unknown = str(uuid.uuid4())
    targets = [
        {"appkey": SHOP_KEY, "scenarioIdList": [shop_id, unknown, shop_id]},
        {"appkey": BILLING_KEY, "scenarioIdList": [billing_id, shop_id]},
        {"appkey": "nosuchkey", "scenarioIdList": [billing_id]},
    ]
    async with running(config) as daemon:
        data = '{"status": "ok", "numErrors": 2}'
        status, answer = await call(
            daemon.base, "POST", RECEIVER, body={"target": targets, "data": data}
        )
        assert status == 200
        assert answer["header"] == SUCCESS_HEADER
        elements = answer["body"]
        assert [(e["scenarioId"], e["serviceCode"], e["status"]) for e in elements] == [
            (shop_id, 0, "success"),
            (unknown, 4042, "rejected"),
            (billing_id, 0, "failure"),
            (shop_id, 4042, "rejected"),
            (billing_id, 4041, "rejected"),
        ]
        shop, unknown_element, billing, foreign, stranger = elements
        check_element(shop, shop_id, data, service_code=0, status="success", reasons=[])
        check_element(
            billing,
            billing_id,
            data,
            service_code=0,
            status="failure",
            reasons=["$.numErrors LTE 0: got 2"],
        )
        check_element(
            unknown_element,
            unknown,
            data,
            service_code=4042,
            status="rejected",
            reasons=["unknown scenario for this appkey"],
        )
        assert foreign["reasons"] == ["unknown scenario for this appkey"]
        assert stranger["reasons"] == ["unknown appkey"]
        assert shop["pk"]["serviceId"] == unknown_element["pk"]["serviceId"]
        assert billing["pk"]["serviceId"] == foreign["pk"]["serviceId"]
        assert shop["pk"]["serviceId"] != billing["pk"]["serviceId"]
        assert len({e["pk"]["requestId"] for e in elements}) == len(elements)

        listing = await get_json(daemon.base, "/api/v1/scenarios")
        assert listing["numErrors"] == 1
        assert scenario_state(listing, "orders export")["state"] == "ok"
        billing_state = scenario_state(listing, "invoice run")
        assert billing_state["state"] == "failing"
        assert billing_state["lastResult"]["reasons"] == ["$.numErrors LTE 0: got 2"]
        assert billing_state["lastPayloadAt"] == billing["requestTime"]

        data = '{"status": "ok", "numErrors": 0}'
        targets = [
            {"appkey": SHOP_KEY, "scenarioIdList": [shop_id]},
            {"appkey": BILLING_KEY, "scenarioIdList": [billing_id]},
        ]
        status, answer = await call(
            daemon.base, "POST", RECEIVER, body={"target": targets, "data": data}
        )
        assert status == 200
        assert [e["status"] for e in answer["body"]] == ["success", "success"]
        listing = await get_json(daemon.base, "/api/v1/scenarios")
        assert listing["numErrors"] == 0
        assert {s["state"] for s in listing["scenarios"]} == {"ok"}

        # The repeat and the rejected pairs judged nothing.
        metrics = await scrape(daemon.base)
        payloads = "monitord_batch_payloads_total"
        assert value(metrics, payloads, scenario_id=shop_id, result="success") == 2
        assert value(metrics, payloads, scenario_id=shop_id, result="failure") == 0
        assert value(metrics, payloads, scenario_id=billing_id, result="success") == 1
        assert value(metrics, payloads, scenario_id=billing_id, result="failure") == 1
        assert value(metrics, payloads, scenario_id=billing_id, app_key=BILLING_KEY) is not None
        await stop(daemon)


# --- payloads expected on a rhythm --------------------------------------------------------


async def test_a_missing_payload_fails_with_an_availability_event_and_a_payload_recovers(
    tmp_path: Path,
) -> None:
    """monitoringInterval 2 with graceSeconds 1: with nothing posted the scenario turns
    failing with ``no payload since …`` and an AVAILABILITY_EVENT; a passing payload
    recovers it and closes the event. Missed payloads count as failed runs, not as
    payloads."""
    async with event_sink() as sink:
        config = events_config(tmp_path, sink.url, refreshSeconds=30)
        (tmp_path / "s" / "hourly.yaml").write_text(
            batch_yaml("hourly sync", monitoringInterval=2, graceSeconds=1, errorLimitCount=0),
            encoding="utf-8",
        )
        async with running(config, ENV) as daemon:
            listing = await get_json(daemon.base, "/api/v1/scenarios")
            state = scenario_state(listing, "hourly sync")
            sid = state["scenarioId"]
            assert state["schedule"] == "expects a payload: every 2 s"
            assert state["graceSeconds"] == 1
            assert state["lastPayloadAt"] is None
            assert state["nextRunAt"] is not None

            async def failing() -> bool:
                return bool((await scenario(daemon, sid))["state"] == "failing")

            await poll(failing, 10, "the missed payload made the scenario fail")
            state = await scenario(daemon, sid)
            assert state["lastResult"]["result"] == "failure"
            (reason,) = state["lastResult"]["reasons"]
            assert reason.startswith("no payload since"), reason
            assert "(expected every 2 s, grace 1 s)" in reason
            assert state["lastPayloadAt"] is None

            await sink.wait_for(lambda got: len(got) >= 1, 20)
            status, answer = await send_payload(daemon.base, DEFAULT_KEY, sid, PASSING)
            assert status == 200
            assert answer["body"]["status"] == "success"
            state = await scenario(daemon, sid)
            assert state["state"] == "ok"
            assert state["lastPayloadAt"] == answer["body"]["requestTime"]
            assert parse_time(state["nextRunAt"]) == parse_time(
                answer["body"]["requestTime"]
            ) + timedelta(seconds=3)
            await sink.wait_for(lambda got: any(is_close(r) for r in got), 20)

            metrics = await scrape(daemon.base)
            payloads = "monitord_batch_payloads_total"
            assert value(metrics, payloads, scenario_id=sid, result="success") == 1
            assert value(metrics, payloads, scenario_id=sid, result="failure") == 0
            runs = value(metrics, "monitord_scenario_runs_total", scenario_id=sid, result="failure")
            assert runs is not None
            assert runs >= 1
            await stop(daemon)

    opened, closed = sink.received[:2]
    assert opened.event is not None
    assert closed.event is not None
    assert not is_close(opened)
    assert is_close(closed)
    assert opened.event["eventType"] == "AVAILABILITY_EVENT"
    assert closed.event["eventType"] == "AVAILABILITY_EVENT"
    assert opened.event["properties"]["monitord.scenario.type"] == "BATCH"
    assert opened.event["properties"]["monitord.scenario.name"] == "hourly sync"
    assert opened.event["properties"]["monitord.reason"].startswith("no payload since")
    assert event_id(closed) == event_id(opened)


# --- restart --------------------------------------------------------------------------------


async def test_the_last_payload_and_its_verdict_survive_a_restart(tmp_path: Path) -> None:
    """After SIGTERM the payload row is in the state store; the next daemon shows the same
    lastPayloadAt, lastResult and state."""
    config = write_config(tmp_path)
    (tmp_path / "s" / "nightly.yaml").write_text(
        batch_yaml("nightly export", errorLimitCount=0), encoding="utf-8"
    )
    async with running(config) as daemon:
        listing = await get_json(daemon.base, "/api/v1/scenarios")
        sid = scenario_state(listing, "nightly export")["scenarioId"]
        status, answer = await send_payload(daemon.base, DEFAULT_KEY, sid, FAILING)
        assert status == 200
        element = answer["body"]
        assert element["status"] == "failure"
        before = await scenario(daemon, sid)
        assert before["state"] == "failing"
        assert before["lastPayloadAt"] == element["requestTime"]
        await stop(daemon)

    database = tmp_path / "var" / "state.sqlite3"
    with contextlib.closing(sqlite3.connect(database.as_uri() + "?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT scenario_id, request_id, received_at, client, body, result FROM batch_payload"
        ).fetchall()
    ((row_id, request_id, received_at, client, body, result),) = rows
    assert row_id == sid
    assert request_id == element["pk"]["requestId"]
    received = parse_time(received_at)
    assert (
        received.strftime("%Y-%m-%dT%H:%M:%S.") + f"{received.microsecond // 1000:03d}Z"
        == (element["requestTime"])
    )
    assert client == "127.0.0.1"
    assert bytes(body) == FAILING.encode()
    stored = json.loads(result)
    assert stored["result"] == "failure"
    assert stored["reasons"] == FAILING_REASONS

    async with running(config) as daemon:
        after = await scenario(daemon, sid)
        assert after["lastPayloadAt"] == element["requestTime"]
        assert after["lastResult"] == before["lastResult"]
        assert after["lastResult"]["reasons"] == FAILING_REASONS
        for key in ("state", "consecutiveFailures", "failingSince"):
            assert after[key] == before[key], key
        listing = await get_json(daemon.base, "/api/v1/scenarios")
        assert listing["numErrors"] == 1
        await stop(daemon)


# --- the scenario management API ------------------------------------------------------------


def api_body(name: str, url: str) -> dict[str, Any]:
    return {
        "scenarioName": name,
        "scenarioType": "API",
        "description": "created over HTTP",
        "url": url,
        "httpMethod": "GET",
        "monitoringInterval": 1,
        "errorLimitCount": 0,
        "validation": {
            "timeout": 3000,
            "textValidation": {
                "textValidationType": "JSON",
                "textValidationInfos": [
                    {"expression": "$.numErrors", "operator": "EQ", "operand": "0"}
                ],
            },
        },
    }


async def test_create_modify_delete_through_the_open_api_drive_files_and_the_schedule(
    tmp_path: Path,
) -> None:
    """Create writes ``<folder>/<id>.yaml`` and the scenario runs; modify rewrites it and
    the new URL replaces the old; delete removes the file, the listing entry and the runs.
    Without the admin key every call is a 401 envelope and changes nothing."""
    async with target_server() as target:
        config = write_config(tmp_path)
        folder = tmp_path / "s"
        # A hand-written scenario that keeps running: its hits measure time passing.
        (folder / "clock.yaml").write_text(
            api_scenario("clock", f"{target.base}/clock"), encoding="utf-8"
        )
        async with running(config) as daemon:
            created_body = api_body("crud probe", f"{target.base}/first")
            for headers in ({}, {"TOAST_PRODUCT_APPKEY": "wrong"}):
                status, answer = await call(
                    daemon.base, "POST", open_api(DEFAULT_KEY), body=created_body, headers=headers
                )
                assert status == 401
                refused(answer, 401)
            assert sorted(p.name for p in folder.iterdir()) == ["clock.yaml"]

            status, answer = await call(
                daemon.base, "POST", open_api(DEFAULT_KEY), body=created_body, headers=ADMIN
            )
            assert status == 200, answer
            assert answer["header"] == SUCCESS_HEADER
            created = answer["body"]
            sid = created["scenarioId"]
            assert uuid.UUID(sid).version == 4
            file = folder / f"{sid}.yaml"
            assert created["appKey"] == DEFAULT_KEY
            assert created["scenarioName"] == "crud probe"
            assert created["scenarioType"] == "API"
            assert created["url"] == f"{target.base}/first"
            assert created["monitoringInterval"] == 1
            assert created["validation"] == created_body["validation"]
            assert created["managed"] is True
            assert created["source"].startswith(f"{file}:")
            assert created["status"] in ("unknown", "ok")
            assert created["registeredTime"] is not None
            assert file.is_file()
            first_text = file.read_text(encoding="utf-8")
            assert first_text.startswith(MANAGED_MARKER)
            assert f"scenarioId: {sid}" in first_text
            assert f"{target.base}/first" in first_text
            assert stat.S_IMODE(file.stat().st_mode) == 0o640
            assert sorted(p.name for p in folder.iterdir()) == sorted(["clock.yaml", file.name])
            await wait_until(lambda: target.hits["/first"] >= 2, 15, "the created scenario ran")

            status, answer = await call(
                daemon.base, "GET", open_api(DEFAULT_KEY, sid), headers=ADMIN
            )
            assert status == 200
            assert answer["body"]["url"] == f"{target.base}/first"
            assert answer["body"]["status"] == "ok"
            listing = await get_json(daemon.base, "/api/v1/scenarios")
            assert scenario_state(listing, "crud probe")["schedule"] == "every 1 s"

            # Without the key: reads and changes of the scenario are refused.
            changed_body = api_body("crud probe", f"{target.base}/second")
            for method, body in (("GET", None), ("POST", changed_body), ("DELETE", None)):
                status, answer = await call(
                    daemon.base,
                    method,
                    open_api(DEFAULT_KEY, sid),
                    body=body,
                    headers={"Authorization": "Bearer wrong"},
                )
                assert status == 401, method
                refused(answer, 401)
            status, answer = await call(daemon.base, "GET", open_api(DEFAULT_KEY))
            assert status == 401
            refused(answer, 401)
            assert file.read_text(encoding="utf-8") == first_text

            status, answer = await call(
                daemon.base, "POST", open_api(DEFAULT_KEY, sid), body=changed_body, headers=ADMIN
            )
            assert status == 200, answer
            assert answer["header"] == SUCCESS_HEADER
            assert answer["body"]["scenarioId"] == sid
            assert answer["body"]["url"] == f"{target.base}/second"
            assert answer["body"]["registeredTime"] == created["registeredTime"]
            second_text = file.read_text(encoding="utf-8")
            assert second_text != first_text
            assert second_text.startswith(MANAGED_MARKER)
            assert f"{target.base}/second" in second_text
            assert f"{target.base}/first" not in second_text
            await wait_until(lambda: target.hits["/second"] >= 1, 15, "the new URL is probed")
            first_hits = target.hits["/first"]
            await wait_until(lambda: target.hits["/second"] >= 3, 15, "the new URL keeps going")
            assert target.hits["/first"] == first_hits, "the old URL is no longer probed"

            status, answer = await call(
                daemon.base, "DELETE", open_api(DEFAULT_KEY, sid), headers=ADMIN
            )
            assert status == 200, answer
            assert answer["header"] == SUCCESS_HEADER
            assert answer["body"]["scenarioId"] == sid
            assert answer["body"]["status"] == "deleted"
            assert not file.exists()
            assert sorted(p.name for p in folder.iterdir()) == ["clock.yaml"]
            listing = await get_json(daemon.base, "/api/v1/scenarios")
            assert [s["scenarioName"] for s in listing["scenarios"]] == ["clock"]
            status, answer = await call(
                daemon.base, "GET", open_api(DEFAULT_KEY, sid), headers=ADMIN
            )
            assert status == 404
            refused(answer, 4042)
            clock = target.hits["/clock"]
            await wait_until(lambda: target.hits["/clock"] >= clock + 1, 15, "the clock ran")
            second_hits = target.hits["/second"]
            clock = target.hits["/clock"]
            await wait_until(lambda: target.hits["/clock"] >= clock + 2, 15, "the clock ran on")
            assert target.hits["/second"] == second_hits, "the deleted scenario stopped"
            await stop(daemon)
        assert ADMIN_KEY not in daemon.log


async def test_a_batch_scenario_created_through_the_api_accepts_payloads_at_once(
    tmp_path: Path,
) -> None:
    """The first payload posted right after the create answer is judged with the new
    scenario's checks."""
    config = write_config(tmp_path)
    body = {
        "scenarioName": "fresh batch",
        "scenarioType": "BATCH",
        "description": "created a moment ago",
        "errorLimitCount": 0,
        "validation": {
            "textValidation": {"textValidationType": "JSON", "textValidationInfos": [STATUS_OK]}
        },
    }
    async with running(config) as daemon:
        status, answer = await call(
            daemon.base, "POST", open_api(DEFAULT_KEY), body=body, headers=ADMIN
        )
        assert status == 200, answer
        sid = answer["body"]["scenarioId"]
        assert answer["body"]["scenarioType"] == "BATCH"
        status, answer = await send_payload(daemon.base, DEFAULT_KEY, sid, '{"status": "ok"}')
        assert status == 200, answer
        assert answer["header"] == SUCCESS_HEADER
        check_element(
            answer["body"], sid, '{"status": "ok"}', service_code=0, status="success", reasons=[]
        )
        status, answer = await send_payload(daemon.base, DEFAULT_KEY, sid, '{"status": "no"}')
        assert status == 200
        assert answer["body"]["reasons"] == ['$.status EQ ok: got "no"']
        state = await scenario(daemon, sid)
        assert state["state"] == "failing"
        assert state["lastPayloadAt"] == answer["body"]["requestTime"]
        await stop(daemon)
