"""The events endpoints of the HTTP API (SPEC §6, §7, §9) on a real app.

``GET /api/v1/events`` lists the outbox (pending messages and dead letters) and
``POST /api/v1/events/requeue`` moves dead letters back. Scenarios fail and recover
against real local targets, run through ``POST /api/v1/scenarios/{id}/run``; no
delivery worker runs, so messages stay in the outbox until a test moves them with the
outbox's own functions (``due_heads`` with ``mark_dead`` or ``mark_delivered``), as the
worker would.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from monitord.events.body import MessageKind
from monitord.events.outbox import (
    EventChange,
    Message,
    due_heads,
    mark_dead,
    mark_delivered,
    write_change,
)
from monitord.httpbase import MAX_BODY_BYTES
from monitord.model import EventType
from monitord.store import format_time
from tests.targets import LOCALHOST, refusing_tcp_port, web_target
from tests.test_api import (
    ADMIN,
    ADMIN_KEY,
    BEARER,
    CONFIG_WITH_KEY,
    CONFIG_WITHOUT_KEY,
    ENVIRON,
    App,
    api_yaml,
    assert_json_error,
    assert_still_serving,
    running_app,
    tcp_yaml,
)

EVENTS = "/api/v1/events"
REQUEUE = "/api/v1/events/requeue"
OUTCOMES = ("queued", "delivered", "retried", "dead_lettered", "requeued")
EVENT_TYPES = ("AVAILABILITY_EVENT", "ERROR_EVENT")
SINK_ERROR = "HTTP 400: the sink rejected the event"


# --- a target whose answer the test switches -----------------------------------------------


@dataclass
class AnswerTarget:
    """Answers ``{"numErrors": n}``: a wrong answer while ``num_errors`` is not 0."""

    url: str = ""
    num_errors: int = 3
    requests: int = 0


@asynccontextmanager
async def answer_target(num_errors: int = 3) -> AsyncIterator[AnswerTarget]:
    target = AnswerTarget(num_errors=num_errors)

    async def answer(request: web.Request) -> web.Response:
        target.requests += 1
        return web.json_response({"numErrors": target.num_errors})

    app = web.Application()
    app.router.add_get("/health", answer)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, LOCALHOST, 0).start()
        target.url = f"http://{LOCALHOST}:{runner.addresses[0][1]}/health"
        yield target
    finally:
        await runner.cleanup()


# --- helpers -------------------------------------------------------------------------------


async def listing(app: App, query: Mapping[str, str] | None = None) -> dict[str, Any]:
    async with app.client.get(EVENTS, params=query, headers=ADMIN) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "application/json"
        body: dict[str, Any] = await response.json()
    return body


async def requeue(app: App, data: bytes | None = None) -> dict[str, Any]:
    async with app.client.post(REQUEUE, data=data, headers=ADMIN) as response:
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
    return body


def dead_letter_all(app: App, now: datetime, error: str = SINK_ERROR) -> list[int]:
    """Give up on every pending message, as the delivery worker does; their ids."""
    moved: list[int] = []
    with app.monitor.outbox.store.transaction() as connection:
        while rows := due_heads(connection, time.time() + 1, 100):
            for row in rows:
                mark_dead(connection, row, error, now, attempted=True)
                moved.append(row.seq)
    return sorted(moved)


def deliver_all(app: App, now: datetime) -> list[int]:
    """Acknowledge every pending message, as the delivery worker does; their ids."""
    moved: list[int] = []
    with app.monitor.outbox.store.transaction() as connection:
        while rows := due_heads(connection, time.time() + 1, 100):
            for row in rows:
                mark_delivered(connection, row, None, now)
                moved.append(row.seq)
    return sorted(moved)


def open_event_row(app: App, scenario_id: str) -> tuple[str, str] | None:
    """(event id, refreshed at) of the scenario's open event in the store."""
    with app.monitor.outbox.store.reading() as connection:
        found = connection.execute(
            "SELECT event_id, refreshed_at FROM open_event WHERE scenario_id = ?", (scenario_id,)
        ).fetchone()
    return None if found is None else (str(found[0]), str(found[1]))


def sample(families: Mapping[str, Any], name: str, **labels: str) -> float:
    values = [
        s.value
        for family in families.values()
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(values) == 1, (name, labels, values)
    return float(values[0])


def event_counts(families: Mapping[str, Any]) -> dict[tuple[str, str], float]:
    return {
        (s.labels["event_type"], s.labels["outcome"]): float(s.value)
        for s in families["monitord_events"].samples
        if s.name == "monitord_events_total"
    }


def zero_counts(**nonzero: float) -> dict[tuple[str, str], float]:
    """Every (event_type, outcome) at 0 but those given as ``TYPE__outcome=n``."""
    counts = {(t, o): 0.0 for t in EVENT_TYPES for o in OUTCOMES}
    for key, value in nonzero.items():
        event_type, outcome = key.split("__")
        assert (event_type, outcome) in counts, key
        counts[event_type, outcome] = value
    return counts


def millis(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp).timestamp() * 1000)


@dataclass
class Failing:
    """A running app whose TCP scenario ``gateway`` failed once: its open event is queued."""

    app: App
    scenario_id: str
    result: dict[str, Any]
    port: int


@pytest.fixture
async def failing(tmp_path: Path) -> AsyncIterator[Failing]:
    with refusing_tcp_port() as refused:
        (tmp_path / "s").mkdir()
        (tmp_path / "s" / "gw.yaml").write_text(tcp_yaml("gateway", refused.port))
        async with running_app(tmp_path) as app:
            sid = (await app.scenario("gateway"))["scenarioId"]
            result = await app.run(sid)
            assert result["result"] == "failure"
            assert (await app.scenario("gateway"))["state"] == "failing"
            yield Failing(app, sid, result, refused.port)


# --- authentication ------------------------------------------------------------------------


BAD_KEYS = [
    pytest.param({}, id="no key"),
    pytest.param({"TOAST_PRODUCT_APPKEY": "wrong-key"}, id="wrong key"),
    pytest.param({"TOAST_PRODUCT_APPKEY": ""}, id="empty key"),
    pytest.param({"Authorization": f"Bearer {ADMIN_KEY}x"}, id="wrong bearer"),
    pytest.param({"Authorization": f"Basic {ADMIN_KEY}"}, id="basic scheme"),
    pytest.param({"Authorization": f"Token {ADMIN_KEY}"}, id="other scheme"),
    pytest.param({"Authorization": ADMIN_KEY}, id="no scheme"),
]


@pytest.mark.parametrize("headers", BAD_KEYS)
async def test_events_endpoints_without_the_right_key_are_401(
    failing: Failing, headers: dict[str, str]
) -> None:
    """Listing and re-queue answer 401 JSON with a challenge, and re-queue does nothing."""
    app = failing.app
    dead = dead_letter_all(app, datetime.now(UTC))
    assert len(dead) == 1
    for method, path, data in (
        ("GET", EVENTS, None),
        ("POST", REQUEUE, b"{}"),
        ("POST", REQUEUE, None),
    ):
        async with app.client.request(method, path, headers=headers, data=data) as response:
            error = await assert_json_error(response, 401)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "TOAST_PRODUCT_APPKEY" in error["message"]
    after = await listing(app)
    assert [e["id"] for e in after["deadLetters"]["events"]] == dead
    assert after["pending"]["count"] == 0
    assert event_counts(await app.metrics())["AVAILABILITY_EVENT", "requeued"] == 0


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(ADMIN, id="TOAST_PRODUCT_APPKEY"),
        pytest.param(BEARER, id="bearer"),
        pytest.param({"Authorization": f"bearer {ADMIN_KEY}"}, id="bearer lower-case"),
    ],
)
async def test_events_endpoints_take_the_key_in_either_header(
    failing: Failing, headers: dict[str, str]
) -> None:
    """The admin key works as TOAST_PRODUCT_APPKEY and as a Bearer token, on both."""
    app = failing.app
    async with app.client.get(EVENTS, headers=headers) as response:
        assert response.status == 200
        assert (await response.json())["pending"]["count"] == 1
    dead = dead_letter_all(app, datetime.now(UTC))
    async with app.client.post(REQUEUE, headers=headers) as response:
        assert response.status == 200
        assert await response.json() == {
            "requeued": 1,
            "ids": dead,
            "kept": [],
            "unknown": [],
        }


async def test_events_endpoints_are_off_without_an_admin_key(tmp_path: Path) -> None:
    """No adminKey configured: 401 for every caller, saying the admin API is off."""
    async with running_app(tmp_path, CONFIG_WITHOUT_KEY) as app:
        for headers in ({}, ADMIN, BEARER):
            for method, path in (("GET", EVENTS), ("POST", REQUEUE)):
                async with app.client.request(method, path, headers=headers) as response:
                    error = await assert_json_error(response, 401)
                    assert response.headers["WWW-Authenticate"].startswith("Bearer")
                assert "adminKey" in error["message"]


# --- what a failure and a recovery queue ---------------------------------------------------


async def test_an_unreachable_target_queues_one_availability_open(failing: Failing) -> None:
    """A refused TCP connection over errorLimitCount 0: one pending open, nothing else."""
    app, sid, result = failing.app, failing.scenario_id, failing.result
    app_key = (await app.scenario("gateway"))["appKey"]
    before = datetime.now(UTC)
    body = await listing(app)
    assert body["sinkConfigured"] is False
    assert body["deadLetters"] == {"count": 0, "events": []}
    assert body["pending"]["count"] == 1
    (row,) = body["pending"]["events"]
    assert set(row) == {
        "id",
        "scenarioId",
        "eventId",
        "kind",
        "eventType",
        "createdAt",
        "attempts",
        "lastError",
        "queuedAt",
        "nextAttemptAt",
        "event",
    }
    assert isinstance(row["id"], int)
    assert row["scenarioId"] == sid
    assert row["kind"] == "open"
    assert row["eventType"] == "AVAILABILITY_EVENT"
    assert row["attempts"] == 0
    assert row["lastError"] is None
    assert row["nextAttemptAt"] is None
    assert row["queuedAt"] == row["createdAt"]
    created = datetime.fromisoformat(row["createdAt"])
    assert datetime.fromisoformat(result["startedAt"]) <= created <= before
    event = row["event"]
    assert "endTime" not in event
    assert "entitySelector" not in event
    assert event["eventType"] == "AVAILABILITY_EVENT"
    assert event["title"] == f"monitord: {app_key} gateway failing"
    assert event["timeout"] == 15
    assert abs(event["startTime"] - millis(row["createdAt"])) <= 1
    assert event["properties"] == {
        "monitord.scenario.id": sid,
        "monitord.scenario.name": "gateway",
        "monitord.scenario.type": "TCP",
        "monitord.region": "KOR",
        "monitord.reason": "; ".join(result["reasons"]),
        "monitord.consecutive_failures": "1",
        "monitord.target": f"tcp://{LOCALHOST}:{failing.port}",
        "monitord.event.id": row["eventId"],
        "monitord.failing_since": result["startedAt"],
    }
    assert open_event_row(app, sid) == (row["eventId"], row["createdAt"])

    # Still failing: no second open.
    assert (await app.run(sid))["result"] == "failure"
    again = await listing(app)
    assert again["pending"]["count"] == 1
    assert again["pending"]["events"] == [row]


async def test_a_wrong_answer_opens_an_error_event_and_recovery_closes_it(tmp_path: Path) -> None:
    """A wrong JSON answer queues an ERROR_EVENT open; the recovery queues its close, with
    endTime and the same event id."""
    async with answer_target(num_errors=3) as target:
        (tmp_path / "s").mkdir()
        (tmp_path / "s" / "shop.yaml").write_text(api_yaml("shop", target.url))
        async with running_app(tmp_path) as app:
            shop = await app.scenario("shop")
            sid = shop["scenarioId"]
            failed = await app.run(sid)
            assert failed["result"] == "failure"
            assert failed["statusCode"] == 200

            (opened,) = (await listing(app))["pending"]["events"]
            assert (opened["kind"], opened["eventType"]) == ("open", "ERROR_EVENT")
            event = opened["event"]
            assert event["eventType"] == "ERROR_EVENT"
            assert event["title"] == f"monitord: {shop['appKey']} shop failing"
            assert "endTime" not in event
            props = event["properties"]
            assert props["monitord.event.id"] == opened["eventId"]
            assert props["monitord.scenario.type"] == "API"
            assert props["monitord.target"] == target.url
            assert props["monitord.reason"] == "; ".join(failed["reasons"])
            assert props["monitord.failing_since"] == failed["startedAt"]

            target.num_errors = 0
            passed = await app.run(sid)
            assert passed["result"] == "success", passed["reasons"]
            assert (await app.scenario("shop"))["state"] == "ok"

            body = await listing(app)
            assert body["pending"]["count"] == 2
            first, closed = body["pending"]["events"]
            assert first == opened
            assert closed["id"] > opened["id"]
            assert closed["kind"] == "close"
            assert closed["eventType"] == "ERROR_EVENT"
            assert closed["eventId"] == opened["eventId"]
            assert (closed["attempts"], closed["lastError"]) == (0, None)
            ended = closed["event"]
            assert ended["title"] == event["title"]
            assert ended["eventType"] == "ERROR_EVENT"
            assert ended["startTime"] == event["startTime"]
            assert abs(ended["endTime"] - millis(passed["startedAt"])) <= 1
            assert ended["endTime"] >= ended["startTime"]
            assert ended["properties"]["monitord.event.id"] == opened["eventId"]
            assert ended["properties"]["monitord.failing_since"] == failed["startedAt"]
            assert open_event_row(app, sid) is None

            families = await app.metrics()
            assert event_counts(families) == zero_counts(ERROR_EVENT__queued=2)
            assert sample(families, "monitord_events_outbox_pending") == 2


async def test_a_refresh_while_the_open_is_pending_only_moves_its_time(failing: Failing) -> None:
    """Coalescing: a due refresh adds no message while the open still waits in the outbox,
    but moves the event's refresh time; once the open is delivered, a refresh is queued."""
    app, sid = failing.app, failing.scenario_id
    (opened,) = (await listing(app))["pending"]["events"]
    assert app.monitor.refresh_events(datetime.now(UTC)) == 0  # not due yet

    later = datetime.now(UTC) + timedelta(days=1)
    assert app.monitor.refresh_events(later) == 1
    body = await listing(app)
    assert body["pending"]["count"] == 1
    assert body["pending"]["events"] == [opened]
    assert open_event_row(app, sid) == (opened["eventId"], format_time(later))
    assert app.monitor.refresh_events(later) == 0  # the refresh time moved: not due again
    families = await app.metrics()
    assert event_counts(families) == zero_counts(AVAILABILITY_EVENT__queued=1)

    assert deliver_all(app, later) == [opened["id"]]
    latest = later + timedelta(days=1)
    assert app.monitor.refresh_events(latest) == 1
    (refreshed,) = (await listing(app))["pending"]["events"]
    assert refreshed["kind"] == "refresh"
    assert refreshed["eventId"] == opened["eventId"]
    assert refreshed["eventType"] == "AVAILABILITY_EVENT"
    assert refreshed["id"] > opened["id"]
    assert refreshed["event"]["startTime"] == int(latest.timestamp() * 1000)
    assert "endTime" not in refreshed["event"]
    assert refreshed["event"]["title"] == opened["event"]["title"]
    assert refreshed["event"]["properties"]["monitord.event.id"] == opened["eventId"]
    assert open_event_row(app, sid) == (opened["eventId"], format_time(latest))
    assert app.monitor.refresh_events(latest) == 0
    families = await app.metrics()
    assert event_counts(families) == zero_counts(AVAILABILITY_EVENT__queued=2)


# --- /metrics ------------------------------------------------------------------------------


async def test_event_metrics_start_at_zero_and_count_queued_messages(tmp_path: Path) -> None:
    """Every (event_type, outcome) series exists at 0 from the start; failures count as
    queued by type, and the outbox gauges follow the store at each scrape."""
    async with answer_target(num_errors=1) as target:
        with refusing_tcp_port() as refused:
            (tmp_path / "s").mkdir()
            (tmp_path / "s" / "shop.yaml").write_text(api_yaml("shop", target.url))
            (tmp_path / "s" / "gw.yaml").write_text(tcp_yaml("gateway", refused.port))
            async with running_app(tmp_path) as app:
                families = await app.metrics()
                assert event_counts(families) == zero_counts()
                assert sample(families, "monitord_events_outbox_pending") == 0
                assert sample(families, "monitord_events_dead_letters") == 0

                for name in ("gateway", "shop"):
                    result = await app.run((await app.scenario(name))["scenarioId"])
                    assert result["result"] == "failure"
                body = await listing(app)
                assert body["pending"]["count"] == 2
                families = await app.metrics()
                assert event_counts(families) == zero_counts(
                    AVAILABILITY_EVENT__queued=1, ERROR_EVENT__queued=1
                )
                assert sample(families, "monitord_events_outbox_pending") == 2
                assert sample(families, "monitord_events_dead_letters") == 0

                # A second failure of a failing scenario queues nothing.
                await app.run((await app.scenario("gateway"))["scenarioId"])
                families = await app.metrics()
                assert event_counts(families)["AVAILABILITY_EVENT", "queued"] == 1
                assert sample(families, "monitord_events_outbox_pending") == 2


# --- dead letters and re-queue -------------------------------------------------------------


async def test_dead_letters_are_listed_and_requeued_through_the_api(tmp_path: Path) -> None:
    """Dead letters show with lastError and deadAt; re-queue with no body, with {} and with
    ids puts them back (attempts reset), reports unknown ids, and is counted."""
    async with answer_target(num_errors=1) as target:
        with refusing_tcp_port() as refused:
            (tmp_path / "s").mkdir()
            (tmp_path / "s" / "shop.yaml").write_text(api_yaml("shop", target.url))
            (tmp_path / "s" / "gw.yaml").write_text(tcp_yaml("gateway", refused.port))
            async with running_app(tmp_path) as app:
                for name in ("gateway", "shop"):
                    await app.run((await app.scenario(name))["scenarioId"])
                pending = (await listing(app))["pending"]["events"]
                by_id = {row["id"]: row for row in pending}
                assert len(by_id) == 2

                died = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
                dead = dead_letter_all(app, died)
                assert dead == sorted(by_id)
                body = await listing(app)
                assert body["pending"] == {"count": 0, "events": []}
                assert body["deadLetters"]["count"] == 2
                rows = body["deadLetters"]["events"]
                assert [row["id"] for row in rows] == dead
                for row in rows:
                    before = by_id[row["id"]]
                    assert "queuedAt" not in row
                    assert "nextAttemptAt" not in row
                    assert row["deadAt"] == format_time(died)
                    assert row["lastError"] == SINK_ERROR
                    assert row["attempts"] == 1
                    for key in ("scenarioId", "eventId", "kind", "eventType", "createdAt", "event"):
                        assert row[key] == before[key], key
                families = await app.metrics()
                assert sample(families, "monitord_events_dead_letters") == 2
                assert sample(families, "monitord_events_outbox_pending") == 0

                # No body: every dead letter.
                started = datetime.now(UTC)
                assert await requeue(app) == {
                    "requeued": 2,
                    "ids": dead,
                    "kept": [],
                    "unknown": [],
                }
                body = await listing(app)
                assert body["deadLetters"] == {"count": 0, "events": []}
                assert [row["id"] for row in body["pending"]["events"]] == dead
                for row in body["pending"]["events"]:
                    assert row["attempts"] == 0
                    assert row["lastError"] == SINK_ERROR
                    assert row["nextAttemptAt"] is None
                    assert datetime.fromisoformat(row["queuedAt"]) >= started
                    assert row["createdAt"] == by_id[row["id"]]["createdAt"]
                    assert row["event"] == by_id[row["id"]]["event"]
                families = await app.metrics()
                assert event_counts(families) == zero_counts(
                    AVAILABILITY_EVENT__queued=1,
                    ERROR_EVENT__queued=1,
                    AVAILABILITY_EVENT__requeued=1,
                    ERROR_EVENT__requeued=1,
                )
                assert sample(families, "monitord_events_dead_letters") == 0
                assert sample(families, "monitord_events_outbox_pending") == 2

                # {}: every dead letter.
                assert dead_letter_all(app, died) == dead
                assert await requeue(app, b"{}") == {
                    "requeued": 2,
                    "ids": dead,
                    "kept": [],
                    "unknown": [],
                }

                # Chosen ids: those, and the unknown ones are named.
                assert dead_letter_all(app, died) == dead
                chosen, other = dead
                answer = await requeue(app, json.dumps({"ids": [chosen, 999999]}).encode())
                assert answer == {
                    "requeued": 1,
                    "ids": [chosen],
                    "kept": [],
                    "unknown": [999999],
                }
                body = await listing(app)
                assert [row["id"] for row in body["pending"]["events"]] == [chosen]
                assert [row["id"] for row in body["deadLetters"]["events"]] == [other]
                families = await app.metrics()
                chosen_type = by_id[chosen]["eventType"]
                other_type = by_id[other]["eventType"]
                assert event_counts(families)[chosen_type, "requeued"] == 3
                assert event_counts(families)[other_type, "requeued"] == 2
                assert sample(families, "monitord_events_dead_letters") == 1
                assert sample(families, "monitord_events_outbox_pending") == 1

                # {"ids": []}: nothing; {"ids": null}: everything.
                assert await requeue(app, b'{"ids": []}') == {
                    "requeued": 0,
                    "ids": [],
                    "kept": [],
                    "unknown": [],
                }
                assert (await listing(app))["deadLetters"]["count"] == 1
                assert await requeue(app, b'{"ids": null}') == {
                    "requeued": 1,
                    "ids": [other],
                    "kept": [],
                    "unknown": [],
                }
                assert (await listing(app))["pending"]["count"] == 2
                families = await app.metrics()
                assert event_counts(families)[other_type, "requeued"] == 3
                assert sample(families, "monitord_events_dead_letters") == 0


async def test_requeue_keeps_an_open_whose_period_ended_and_whose_close_was_delivered(
    tmp_path: Path,
) -> None:
    """The open is dead, the scenario recovers and the close goes through: re-queueing the
    open alone would re-open a problem, so it stays dead with a reason."""
    async with answer_target(num_errors=2) as target:
        (tmp_path / "s").mkdir()
        (tmp_path / "s" / "shop.yaml").write_text(api_yaml("shop", target.url))
        async with running_app(tmp_path) as app:
            sid = (await app.scenario("shop"))["scenarioId"]
            assert (await app.run(sid))["result"] == "failure"
            (opened,) = dead_letter_all(app, datetime.now(UTC))
            target.num_errors = 0
            assert (await app.run(sid))["result"] == "success"
            body = await listing(app)
            (closed,) = body["pending"]["events"]
            assert closed["kind"] == "close"
            assert [row["id"] for row in body["deadLetters"]["events"]] == [opened]
            assert deliver_all(app, datetime.now(UTC)) == [closed["id"]]

            for data in (None, b"{}", json.dumps({"ids": [opened]}).encode()):
                answer = await requeue(app, data)
                assert answer["requeued"] == 0
                assert answer["ids"] == []
                assert answer["unknown"] == []
                (kept,) = answer["kept"]
                assert set(kept) == {"id", "reason"}
                assert kept["id"] == opened
                assert "ended" in kept["reason"]
            body = await listing(app)
            assert body["pending"] == {"count": 0, "events": []}
            assert [row["id"] for row in body["deadLetters"]["events"]] == [opened]
            families = await app.metrics()
            assert event_counts(families)["ERROR_EVENT", "requeued"] == 0
            assert sample(families, "monitord_events_dead_letters") == 1


async def test_requeue_puts_back_an_ended_open_together_with_its_dead_close(
    tmp_path: Path,
) -> None:
    """When the close of the ended period is dead too, both go back, in their order."""
    async with answer_target(num_errors=2) as target:
        (tmp_path / "s").mkdir()
        (tmp_path / "s" / "shop.yaml").write_text(api_yaml("shop", target.url))
        async with running_app(tmp_path) as app:
            sid = (await app.scenario("shop"))["scenarioId"]
            await app.run(sid)
            (opened,) = dead_letter_all(app, datetime.now(UTC))
            target.num_errors = 0
            await app.run(sid)
            (closed,) = dead_letter_all(app, datetime.now(UTC))
            assert closed > opened
            assert await requeue(app) == {
                "requeued": 2,
                "ids": [opened, closed],
                "kept": [],
                "unknown": [],
            }
            rows = (await listing(app))["pending"]["events"]
            assert [(row["id"], row["kind"]) for row in rows] == [
                (opened, "open"),
                (closed, "close"),
            ]


# --- limit ---------------------------------------------------------------------------------


async def test_limit_bounds_the_rows_but_not_the_counts(failing: Failing) -> None:
    """100 rows by default, ``limit`` rows when asked; counts are always the totals."""
    app = failing.app
    (real,) = (await listing(app))["pending"]["events"]
    now = datetime.now(UTC)
    extra = tuple(
        Message(
            scenario_id=f"other-{i}",
            event_id=uuid.uuid4().hex,
            kind=MessageKind.OPEN,
            event_type=EventType.ERROR_EVENT,
            body={**real["event"], "eventType": "ERROR_EVENT"},
            created_at=now,
        )
        for i in range(150)
    )
    with app.monitor.outbox.store.transaction() as connection:
        write_change(connection, EventChange(messages=extra))

    body = await listing(app)
    assert body["pending"]["count"] == 151
    ids = [row["id"] for row in body["pending"]["events"]]
    assert len(ids) == 100
    assert ids == sorted(ids)
    assert ids[0] == real["id"]
    one = await listing(app, {"limit": "1"})
    assert one["pending"]["count"] == 151
    assert one["pending"]["events"] == [real]
    assert len((await listing(app, {"limit": "1000"}))["pending"]["events"]) == 151

    dead = dead_letter_all(app, now)
    assert len(dead) == 151
    body = await listing(app, {"limit": "7"})
    assert body["pending"] == {"count": 0, "events": []}
    assert body["deadLetters"]["count"] == 151
    assert [row["id"] for row in body["deadLetters"]["events"]] == dead[:7]
    assert len((await listing(app))["deadLetters"]["events"]) == 100


@pytest.mark.parametrize(
    "limit",
    [
        pytest.param("0", id="zero"),
        pytest.param("1001", id="over 1000"),
        pytest.param("-1", id="negative"),
        pytest.param("abc", id="letters"),
        pytest.param("1.5", id="fraction"),
        pytest.param("", id="empty"),
        pytest.param("+5", id="plus sign"),
        pytest.param(" 5", id="space"),
        pytest.param("1e2", id="exponent"),
        pytest.param("0x10", id="hex"),
        pytest.param("١", id="arabic-indic digit"),
        pytest.param("５", id="fullwidth digit"),
        pytest.param("²", id="superscript"),
        pytest.param("9" * 5000, id="5000 digits"),
        pytest.param("1" + "0" * 4400, id="4401 digits"),
    ],
)
async def test_invalid_limits_are_400_json(failing: Failing, limit: str) -> None:
    """Anything but a whole number 1..1000 in ASCII digits is a 400 JSON error."""
    app = failing.app
    async with app.client.get(EVENTS, params={"limit": limit}, headers=ADMIN) as response:
        error = await assert_json_error(response, 400)
    assert "limit" in error["message"]
    await assert_still_serving(app)


async def test_a_10_kb_limit_is_400_and_the_server_keeps_serving(failing: Failing) -> None:
    """A request line over the HTTP parser's 8190 bytes is refused before the handler."""
    app = failing.app
    async with app.client.get(EVENTS, params={"limit": "9" * 10_240}, headers=ADMIN) as response:
        assert response.status == 400
    async with app.client.get(EVENTS, params={"limit": "x" * 10_240}, headers=ADMIN) as response:
        assert response.status == 400
    await assert_still_serving(app)
    assert (await listing(app))["pending"]["count"] == 1


# --- hostile re-queue bodies ---------------------------------------------------------------


def _json_body(value: Any) -> bytes:
    return json.dumps(value).encode()


HOSTILE_BODIES = [
    pytest.param(b"{", id="invalid json"),
    pytest.param(b"{ids: [1]}", id="unquoted key"),
    pytest.param(b"[]", id="array"),
    pytest.param(b"[1, 2]", id="array of ids"),
    pytest.param(b'"1"', id="string"),
    pytest.param(b"1", id="number"),
    pytest.param(b"null", id="null"),
    pytest.param(b"true", id="true"),
    pytest.param(_json_body({"ids": "1"}), id="ids string"),
    pytest.param(_json_body({"ids": 1}), id="ids number"),
    pytest.param(_json_body({"ids": {"1": 1}}), id="ids object"),
    pytest.param(_json_body({"ids": [True]}), id="ids true"),
    pytest.param(_json_body({"ids": [1.5]}), id="ids fraction"),
    pytest.param(_json_body({"ids": [1.0]}), id="ids float"),
    pytest.param(_json_body({"ids": ["1"]}), id="ids text"),
    pytest.param(_json_body({"ids": [None]}), id="ids null element"),
    pytest.param(_json_body({"ids": [[1]]}), id="ids nested"),
    pytest.param(_json_body({"ids": [-1]}), id="ids negative"),
    pytest.param(_json_body({"ids": [0]}), id="ids zero"),
    pytest.param(_json_body({"ids": [2**63]}), id="ids 2**63"),
    pytest.param(_json_body({"ids": [2**70]}), id="ids 2**70"),
    pytest.param(b'{"ids": [NaN]}', id="ids NaN"),
    pytest.param(b'{"ids": [1e400]}', id="ids infinity"),
    pytest.param(_json_body({"x": 1}), id="unknown key"),
    pytest.param(_json_body({"ids": [1], "x": 1}), id="ids and unknown key"),
    pytest.param(_json_body({"ids": list(range(1, 10_002))}), id="10001 ids"),
    pytest.param(b"\x00", id="nul"),
    pytest.param(b"\x00\x00\x00\x00", id="nuls"),
    pytest.param(b'{"ids": [1]}\x00', id="trailing nul"),
    pytest.param(b'{"ids\x00": [1]}', id="nul in key"),
    pytest.param(b'{"ids": [\xff]}', id="invalid utf-8"),
    pytest.param(b"\xff\xfe\xfd", id="invalid utf-8 only"),
    pytest.param(b'{"ids": [\xed\xa0\x80]}', id="surrogate bytes"),
    pytest.param(b"[" * 100_000, id="deeply nested arrays"),
    pytest.param(b'{"ids": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", id="deeply nested ids"),
]


@pytest.mark.parametrize("data", HOSTILE_BODIES)
async def test_hostile_requeue_bodies_are_400_json_and_change_nothing(
    failing: Failing, data: bytes
) -> None:
    """Malformed re-queue bodies get 400 JSON, never a 5xx; the dead letters stay."""
    app = failing.app
    dead = dead_letter_all(app, datetime.now(UTC))
    async with app.client.post(REQUEUE, data=data, headers=ADMIN) as response:
        await assert_json_error(response, 400)
    await assert_still_serving(app)
    body = await listing(app)
    assert [row["id"] for row in body["deadLetters"]["events"]] == dead
    assert body["pending"]["count"] == 0
    assert event_counts(await app.metrics())["AVAILABILITY_EVENT", "requeued"] == 0


async def test_requeue_bodies_over_1_mib_are_413_json(failing: Failing) -> None:
    """A declared or chunked body over the cap is 413 JSON and re-queues nothing."""
    app = failing.app
    dead = dead_letter_all(app, datetime.now(UTC))
    big = io.BytesIO(b"{" + b" " * MAX_BODY_BYTES + b"}")
    async with app.client.post(REQUEUE, data=big, headers=ADMIN) as response:
        assert response.request_info.headers["Content-Length"] == str(MAX_BODY_BYTES + 2)
        await assert_json_error(response, 413)

    async def chunks() -> AsyncIterator[bytes]:
        yield b"{"
        for _ in range(20):
            yield b" " * (64 * 1024)
        yield b"}"

    async with app.client.post(REQUEUE, data=chunks(), headers=ADMIN) as response:
        await assert_json_error(response, 413)
    await assert_still_serving(app)
    body = await listing(app)
    assert [row["id"] for row in body["deadLetters"]["events"]] == dead
    # Blank bodies mean "every dead letter".
    assert (await requeue(app, b" \r\n\t "))["ids"] == dead


# --- nothing secret in the listing ---------------------------------------------------------


TOKEN = "evtok-7f3c9d1e-do-not-leak"
CONFIG_WITH_EVENTS = (
    CONFIG_WITH_KEY + "events:\n  url: http://127.0.0.1:9/ingest\n  token: {env: EVTOKEN}\n"
)


async def test_the_listing_holds_no_secret(tmp_path: Path) -> None:
    """With a sink and its token configured (no worker running, so messages wait), the
    listing shows neither the token nor the admin key, even where a scenario's URL
    sends the token."""
    environ = {**ENVIRON, "EVTOKEN": TOKEN}
    async with web_target() as target:
        with refusing_tcp_port() as refused:
            (tmp_path / "s").mkdir()
            url = target.url("/echo") + "?key=${EVTOKEN}"
            (tmp_path / "s" / "shop.yaml").write_text(api_yaml("shop", url))
            (tmp_path / "s" / "gw.yaml").write_text(tcp_yaml("gateway", refused.port))
            async with running_app(tmp_path, CONFIG_WITH_EVENTS, environ) as app:
                assert app.monitor.sink_configured
                shop = await app.run((await app.scenario("shop"))["scenarioId"])
                assert shop["result"] == "failure", shop
                # The probe did send the token: the scenario really holds it.
                assert [r.query for r in target.received] == [f"key={TOKEN}"]
                (dead,) = dead_letter_all(app, datetime.now(UTC), error="HTTP 401: bad token")
                gateway = await app.run((await app.scenario("gateway"))["scenarioId"])
                assert gateway["result"] == "failure"
                async with app.client.get(EVENTS, headers=ADMIN) as response:
                    assert response.status == 200
                    text = await response.text()
                    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
                body = json.loads(text)
                assert body["sinkConfigured"] is True
                (dead_row,) = body["deadLetters"]["events"]
                assert dead_row["id"] == dead
                assert dead_row["lastError"] == "HTTP 401: bad token"
                props = dead_row["event"]["properties"]
                assert props["monitord.scenario.name"] == "shop"
                assert props["monitord.target"] == target.url("/echo")
                (pending_row,) = body["pending"]["events"]
                assert pending_row["event"]["properties"]["monitord.scenario.name"] == "gateway"
                for secret in (TOKEN, ADMIN_KEY):
                    assert secret not in text
                    assert secret not in headers


# --- a store that fails --------------------------------------------------------------------


async def test_a_store_error_answers_503_json(failing: Failing) -> None:
    """With the state store gone, the events endpoints answer 503 JSON; the rest of the
    server keeps serving (and the fixture's teardown closes the store again)."""
    app = failing.app
    assert (await listing(app))["pending"]["count"] == 1
    app.monitor.outbox.store.close()
    async with app.client.get(EVENTS, headers=ADMIN) as response:
        error = await assert_json_error(response, 503)
    assert "store" in error["message"]
    for data in (None, b"{}", b'{"ids": [1]}'):
        async with app.client.post(REQUEUE, data=data, headers=ADMIN) as response:
            await assert_json_error(response, 503)
    async with app.client.get("/metrics") as response:
        assert response.status == 200
        assert "monitord_events_total" in await response.text()
    await assert_still_serving(app)
    # Without the key, still 401: the store is not touched before the key check.
    async with app.client.get(EVENTS) as response:
        await assert_json_error(response, 401)
