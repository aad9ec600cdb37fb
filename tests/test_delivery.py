"""Event delivery (SPEC §6): judging the sink's answers, and the worker against a local
ingest sink with a real state store."""

from __future__ import annotations

import asyncio
import email.utils
import http
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict
from prometheus_client.parser import text_string_to_metric_families

from monitord.config.settings import EventsConfig, Secret
from monitord.events.body import (
    EventSettings,
    MessageKind,
    OpenEvent,
    body,
    open_event,
    to_millis,
    updated_properties,
)
from monitord.events.delivery import (
    MAX_ANSWER_BYTES,
    MAX_RETRY_AFTER_S,
    Deliverer,
    Verdict,
    backoff_s,
    ingest_results,
    judge,
    parse_retry_after,
)
from monitord.events.outbox import (
    EventChange,
    Message,
    Outbox,
    Row,
    dead_rows,
    delivered_rows,
    pending_rows,
    write_change,
)
from monitord.metrics import Metrics
from monitord.model import EventType, FailureKind
from monitord.store import Store, format_time, parse_time
from tests.factories import api_scenario
from tests.sink import (
    Answer,
    EventSink,
    Received,
    created,
    drip,
    drop,
    event_sink,
    garbage,
    hang,
    huge,
    status,
    too_many,
)
from tests.targets import refusing_tcp_port

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TOKEN = "tok-123"
USER_AGENT = "monitord-test"
POLL_S = 0.02
AVAILABILITY = EventType.AVAILABILITY_EVENT.value
SETTINGS = EventSettings(
    region="KOR",
    timeout_minutes=15,
    default_entity_selector="type(SERVICE),entityName.equals(shop)",
    service_names={"shop": "Shop Service"},
)
CONTROL_CHARS = {chr(c) for c in (*range(0x20), 0x7F)}


def results_document(*results: dict[str, Any]) -> bytes:
    return json.dumps({"reportCount": len(results), "eventIngestResults": list(results)}).encode()


OK_DOCUMENT = results_document({"status": "OK", "correlationId": "41f5d263011a6c9a"})


# --- A. judging one answer ---------------------------------------------------------------


def test_judge_201_with_ok_results_is_delivered_with_the_results() -> None:
    """A 201 whose results are all OK is delivered, and the results are kept."""
    result = judge(201, "Created", {}, OK_DOCUMENT)
    assert result.verdict is Verdict.DELIVERED
    assert result.detail == "HTTP 201"
    assert result.retry_after_s is None
    assert result.ingest_results == ({"status": "OK", "correlationId": "41f5d263011a6c9a"},)


@pytest.mark.parametrize(
    ("results", "named"),
    [
        ([{"status": "INVALID_ENTITY_TYPE", "correlationId": "a1"}], "INVALID_ENTITY_TYPE"),
        ([{"status": "INVALID_METADATA", "correlationId": "a1"}], "INVALID_METADATA"),
        (
            [
                {"status": "OK", "correlationId": "a1"},
                {"status": "INVALID_TIMESTAMPS", "correlationId": "a2"},
            ],
            "INVALID_TIMESTAMPS",
        ),
    ],
)
def test_judge_2xx_with_a_refused_event_is_dead(results: list[dict[str, str]], named: str) -> None:
    """A 2xx whose results refuse the event is a dead letter naming the status; the results
    are kept for inspection."""
    result = judge(201, "Created", {}, results_document(*results))
    assert result.verdict is Verdict.DEAD
    assert named in result.detail
    assert "OK" not in result.detail.replace(named, "")
    assert result.ingest_results == tuple(results)


@pytest.mark.parametrize("code", [200, 202, 204])
def test_judge_other_2xx_are_delivered(code: int) -> None:
    """Any 2xx means the sink took the event, whatever its answer holds."""
    assert judge(code, http.HTTPStatus(code).phrase, {}, b"").verdict is Verdict.DELIVERED
    assert judge(code, "", {}, OK_DOCUMENT).verdict is Verdict.DELIVERED
    empty = judge(code, "", {}, b'{"reportCount": 0}')
    assert (empty.verdict, empty.detail, empty.ingest_results) == (
        Verdict.DELIVERED,
        f"HTTP {code}",
        (),
    )


@pytest.mark.parametrize(
    ("answer", "problem", "shown"),
    [
        (b'{"reportCount": 1, "eventIngestResults": [', None, "not an ingest result"),
        (b"<html>ok</html>", None, "not an ingest result"),
        (b"[]", None, "not an ingest result"),
        (b'{"eventIngestResults": "OK"}', None, "not an ingest result"),
        (OK_DOCUMENT, "the answer was too slow", "the answer was too slow"),
        (b"{", "the answer is larger than 65536 bytes", "the answer is larger than 65536 bytes"),
    ],
)
def test_judge_2xx_with_an_unreadable_answer_is_still_delivered(
    answer: bytes, problem: str | None, shown: str
) -> None:
    """An answer that cannot be read (garbage, too large, too slow) does not undo a 2xx;
    the detail says it was not understood and no results are kept."""
    result = judge(201, "Created", {}, answer, answer_problem=problem)
    assert result.verdict is Verdict.DELIVERED
    assert result.detail == f"HTTP 201 (answer not understood: {shown})"
    assert result.ingest_results is None


@pytest.mark.parametrize("code", [408, 425, 429, 500, 502, 503, 504])
def test_judge_retryable_statuses(code: int) -> None:
    """Timeouts, throttling and server errors are retried; without Retry-After no pause
    is prescribed."""
    reason = http.HTTPStatus(code).phrase
    result = judge(code, reason, {}, b"try\nlater")
    assert result.verdict is Verdict.RETRY
    assert result.detail == f"HTTP {code} {reason}: try later"
    assert result.retry_after_s is None
    assert result.ingest_results is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (email.utils.format_datetime(T0 + timedelta(seconds=30), usegmt=True), 30.0),
        (email.utils.format_datetime(T0 - timedelta(seconds=30), usegmt=True), 0.0),
        ("soon", None),
        ("", None),
        ("99999999", MAX_RETRY_AFTER_S),
    ],
)
def test_judge_429_takes_retry_after(value: str, expected: float | None) -> None:
    """Retry-After is read as seconds or an HTTP date, capped at an hour."""
    headers = CIMultiDict({"Retry-After": value})
    result = judge(429, "Too Many Requests", headers, b"", now=T0)
    assert result.verdict is Verdict.RETRY
    assert result.retry_after_s == expected


@pytest.mark.parametrize("code", [301, 302, 307, 308])
def test_judge_redirect_is_dead_and_names_the_location(code: int) -> None:
    """A redirect is not followed but dead-lettered, naming where it points."""
    location = "https://abc123.live.example.com/api/v2/events/ingest"
    headers = CIMultiDict({"location": location})
    result = judge(code, http.HTTPStatus(code).phrase, headers, b"moved")
    assert result.verdict is Verdict.DEAD
    assert result.detail.startswith(f"HTTP {code}: redirected to {location};")
    assert "events.url" in result.detail
    nowhere = judge(code, "", {}, b"")
    assert nowhere.verdict is Verdict.DEAD
    assert "redirected to nowhere" in nowhere.detail


@pytest.mark.parametrize("code", [400, 401, 403, 404, 405, 413, 422])
def test_judge_client_errors_are_dead_with_a_snippet_of_the_body(code: int) -> None:
    """Other 4xx are dead letters: resending gets the same answer. The detail carries the
    start of the body, without control characters, at most 200 characters."""
    reason = http.HTTPStatus(code).phrase
    answer = b"line one\r\n\x00\x1b[31mred\x7f\tnext " + b"x" * 1000
    result = judge(code, reason, {}, answer)
    assert result.verdict is Verdict.DEAD
    assert result.retry_after_s is None
    prefix = f"HTTP {code} {reason}: "
    assert result.detail.startswith(prefix)
    snippet = result.detail.removeprefix(prefix)
    assert snippet == ("line one [31mred next " + "x" * 1000)[:199] + "…"
    assert len(snippet) == 200
    assert not CONTROL_CHARS & set(result.detail)


def test_judge_short_body_and_empty_body() -> None:
    """A short body is shown whole; without a body the detail is the status line."""
    body_json = b'{"error":{"code":400,"message":"Invalid entity selector"}}'
    assert (
        judge(400, "Bad Request", {}, body_json).detail
        == f"HTTP 400 Bad Request: {body_json.decode()}"
    )
    assert judge(401, "Unauthorized", {}, b"").detail == "HTTP 401 Unauthorized"


def test_judge_removes_c1_controls_from_the_snippet() -> None:
    """U+009B (a terminal's escape introducer) and the other C1 controls never reach
    lastError or the log."""
    answer = "bad\u009b31mred\u0085end".encode()
    assert judge(400, "Bad Request", {}, answer).detail == "HTTP 400 Bad Request: bad 31mred end"
    assert judge(403, "", {}, b"  \n ").detail == "HTTP 403"


# --- A. ingest results, Retry-After, backoff -----------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            results_document(
                {"status": "OK", "correlationId": "a"},
                {"status": "INVALID_METADATA", "correlationId": "b", "extra": 1},
            ),
            (
                {"status": "OK", "correlationId": "a"},
                {"status": "INVALID_METADATA", "correlationId": "b"},
            ),
        ),
        (b'{"eventIngestResults": [{}]}', ({"status": None, "correlationId": None},)),
        (
            b'{"eventIngestResults": [{"status": 5, "correlationId": 123}]}',
            ({"status": "5", "correlationId": "123"},),
        ),
        (b'{"reportCount": 0}', ()),
        (b'{"eventIngestResults": null}', ()),
        (b'{"eventIngestResults": {}}', None),
        (b'{"eventIngestResults": "OK"}', None),
        (b'{"eventIngestResults": [1]}', None),
        (b'{"eventIngestResults": [{"status": "OK"}, "OK"]}', None),
        (b"", None),
        (b"not json", None),
        (b"\xff\xfe{", None),
        (b"[]", None),
        (b"null", None),
    ],
)
def test_ingest_results(answer: bytes, expected: tuple[dict[str, Any], ...] | None) -> None:
    """Results are (status, correlationId) pairs; a missing list is empty; anything
    else unreadable is None."""
    assert ingest_results(answer) == expected


def test_ingest_results_clips_values_and_count() -> None:
    """Values are cut to 200 characters and at most 100 results are kept."""
    long = {"status": "S" * 500, "correlationId": "c" * 300}
    clipped = ingest_results(results_document(long))
    assert clipped == ({"status": "S" * 200, "correlationId": "c" * 200},)
    many = [{"status": "OK", "correlationId": f"{i:016x}"} for i in range(150)]
    kept = ingest_results(results_document(*many))
    assert kept is not None
    assert len(kept) == 100
    assert kept[0]["correlationId"] == f"{0:016x}"
    assert kept[-1]["correlationId"] == f"{99:016x}"


def test_ingest_results_of_deeply_nested_json_is_unreadable() -> None:
    """A deeply nested answer is unreadable like any other garbage; it must not raise."""
    answer = b'{"eventIngestResults": ' + b"[" * 5000
    assert ingest_results(answer) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("7", 7.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        (email.utils.format_datetime(T0 + timedelta(seconds=30), usegmt=True), 30.0),
        ("Mon, 23 Nov 2026 10:00:30 GMT", 30.0),
        ("Mon, 23 Nov 2026 09:59:00 GMT", 0.0),
        ("Mon, 25 Nov 2026 10:00:00 GMT", MAX_RETRY_AFTER_S),
        ("99999999", MAX_RETRY_AFTER_S),
        ("3600", 3600.0),
        ("3601", MAX_RETRY_AFTER_S),
        ("soon", None),
        ("", None),
        ("-5", None),
        ("1.5", None),
        ("Mon, 32 Nov 2026 10:00:00 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    """Seconds or an HTTP date, never negative, at most an hour; None when unreadable."""
    assert parse_retry_after(value, T0) == expected


@pytest.mark.parametrize(
    "value",
    [
        "²",  # str.isdigit() holds, float() refuses it
        "①",
        "Mon, 23 Nov 99999999999999999999 10:00:00 GMT",  # the year overflows
    ],
)
def test_parse_retry_after_does_not_raise_on_odd_values(value: str) -> None:
    """Whatever the sink puts in Retry-After is either read or ignored, never raised."""
    assert parse_retry_after(value, T0) is None


@pytest.mark.parametrize(
    ("failures", "cap", "high", "low"),
    [
        (0, 300.0, 1.0, 0.5),
        (1, 300.0, 1.0, 0.5),
        (2, 300.0, 2.0, 1.0),
        (3, 300.0, 4.0, 2.0),
        (4, 300.0, 8.0, 4.0),
        (9, 300.0, 256.0, 128.0),
        (10, 300.0, 300.0, 150.0),
        (11, 300.0, 300.0, 150.0),
        (5, 1.0, 1.0, 0.5),
        (3, 3.0, 3.0, 1.5),
        (10**9, 300.0, 300.0, 150.0),
        (10**100, 60.0, 60.0, 30.0),
    ],
)
def test_backoff_s(failures: int, cap: float, high: float, low: float) -> None:
    """1, 2, 4 … seconds up to the cap; rand 1 gives the ceiling, rand 0 half of it."""
    assert backoff_s(failures, cap, lambda: 1.0) == high
    assert backoff_s(failures, cap, lambda: 0.0) == low


def fixed(value: float) -> Callable[[], float]:
    return lambda: value


def test_backoff_s_stays_within_half_and_whole_ceiling() -> None:
    """Every draw lies in the upper half of its range."""
    for cap in (1.0, 5.0, 300.0):
        for failures in range(80):
            ceiling = min(cap, 2.0 ** max(failures - 1, 0))
            for r in (0.0, 0.1, 0.5, 0.99, 1.0):
                value = backoff_s(failures, cap, fixed(r))
                assert ceiling / 2 <= value <= ceiling


# --- B. the worker: helpers ----------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "state.sqlite3")
    yield opened
    opened.close()


@pytest.fixture
def outbox(store: Store) -> Outbox:
    return Outbox(store)


@pytest.fixture
async def sink() -> AsyncIterator[EventSink]:
    async with event_sink() as s:
        yield s


def failure(name: str, *, since: datetime | None = None) -> OpenEvent:
    """The open event of a failure period of scenario ``name``."""
    now = datetime.now(UTC)
    scenario = replace(
        api_scenario(f"https://{name}.test/health?key=secret", name=f"{name} health"),
        app_key="shop",
    )
    return open_event(
        scenario,
        SETTINGS,
        event_id=str(uuid.uuid4()),
        kind=FailureKind.UNAVAILABLE,
        failing_since=since or now - timedelta(minutes=3),
        consecutive_failures=3,
        reasons=("상점 응답 없음: connection refused",),
        now=now,
    )


def message(
    event: OpenEvent,
    kind: MessageKind = MessageKind.OPEN,
    n: int = 0,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Message:
    """A message of ``event`` with a realistic body; ``n`` makes bodies differ."""
    props = updated_properties(event, consecutive_failures=3 + n, reasons=None)
    data = body(
        replace(event, properties=props),
        SETTINGS,
        start=start or event.failing_since,
        end=end,
    )
    return Message(
        scenario_id=event.scenario_id,
        event_id=event.event_id,
        kind=kind,
        event_type=event.event_type,
        body=data,
        created_at=datetime.now(UTC),
    )


def queue(store: Store, *messages: Message) -> list[Row]:
    """Queue the messages in one transaction; the pending rows of them, in seq order."""
    with store.transaction() as connection:
        write_change(connection, EventChange(messages=messages))
    return pending(store)[-len(messages) :]


def pending(store: Store) -> list[Row]:
    with store.reading() as connection:
        return pending_rows(connection, 1000)


def dead(store: Store) -> list[Row]:
    with store.reading() as connection:
        return dead_rows(connection, 1000)


def delivered(store: Store) -> list[tuple[int, int]]:
    """(seq, attempts) of every delivered message."""
    with store.reading() as connection:
        rows = connection.execute("SELECT seq, attempts FROM delivered ORDER BY seq")
        return [(int(seq), int(attempts)) for seq, attempts in rows]


def key(row: Row) -> str:
    return f"{row.event_id}-{row.seq}"


def header(received: Received, name: str) -> str | None:
    found = [v for k, v in received.headers.items() if k.lower() == name.lower()]
    assert len(found) <= 1
    return found[0] if found else None


def keys(sink: EventSink, answer: str | None = None) -> list[str | None]:
    """Idempotency keys of what arrived (answered by ``answer``, if given), in order."""
    return [
        header(r, "Idempotency-Key") for r in sink.received if answer is None or r.answer == answer
    ]


def event_totals(metrics: Metrics) -> dict[tuple[str, str], float]:
    """monitord_events_total by (event_type, outcome), as a scrape shows it."""
    text, _ = metrics.render([], {}, None)
    totals: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text.decode()):
        if family.name == "monitord_events":
            for sample in family.samples:
                if sample.name == "monitord_events_total":
                    labels = sample.labels
                    totals[(labels["event_type"], labels["outcome"])] = sample.value
    return totals


def counted(metrics: Metrics, outcome: str, event_type: str = AVAILABILITY) -> float:
    return event_totals(metrics)[(event_type, outcome)]


def events_config(
    url: str,
    *,
    token: str | None = TOKEN,
    send_timeout_s: int = 2,
    retry_max_s: int = 1,
    max_attempts: int = 300,
    max_age_hours: int = 24,
) -> EventsConfig:
    return EventsConfig(
        url=url,
        token=None if token is None else Secret(token),
        send_timeout_s=send_timeout_s,
        retry_max_s=retry_max_s,
        max_attempts=max_attempts,
        max_age_hours=max_age_hours,
    )


@asynccontextmanager
async def running(
    outbox: Outbox,
    config: EventsConfig,
    metrics: Metrics | None = None,
    *,
    rand: float = 0.0,
    concurrency: int = 4,
) -> AsyncIterator[Deliverer]:
    """A started worker; stopped without grace at the end unless the test stopped it."""
    deliverer = Deliverer(
        outbox,
        config,
        metrics or Metrics(),
        USER_AGENT,
        concurrency=concurrency,
        rand=lambda: rand,
    )
    deliverer.start()
    try:
        yield deliverer
    finally:
        await deliverer.stop(0)


async def until(check: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    """Poll until ``check()`` holds on two polls in a row, or fail after ``timeout_s``.

    Two polls: between them the worker has run everything it had ready, so it has also
    finished what followed the change the check saw."""
    deadline = time.monotonic() + timeout_s
    seen = 0
    while seen < 2:
        seen = seen + 1 if check() else 0
        if seen < 2:
            if time.monotonic() >= deadline:
                raise AssertionError(f"not within {timeout_s} s: {what}")
            await asyncio.sleep(POLL_S)


async def stays(check: Callable[[], bool], what: str, for_s: float) -> None:
    """Fail if ``check()`` stops holding within ``for_s``."""
    deadline = time.monotonic() + for_s
    while time.monotonic() < deadline:
        assert check(), what
        await asyncio.sleep(POLL_S)
    assert check(), what


def outbox_empty(outbox: Outbox) -> Callable[[], bool]:
    return lambda: outbox.counts() == (0, 0)


def retried_once(store: Store, error: Callable[[str], bool]) -> Callable[[], bool]:
    """The first pending row failed at least once with an error ``error`` accepts."""

    def check() -> bool:
        rows = pending(store)
        return bool(rows) and rows[0].attempts >= 1 and error(rows[0].last_error or "")

    return check


# --- B. delivered ------------------------------------------------------------------------


async def test_delivers_with_headers_and_the_stored_body(
    store: Store, outbox: Outbox, sink: EventSink
) -> None:
    """A queued message arrives with the token, its idempotency key, JSON and the user
    agent; its body is the stored body; the row moves to delivered with the sink's results."""
    metrics = Metrics()
    sink.answer(then=created(correlation_ids=["41f5d263011a6c9a"]))
    msg = message(failure("shop"))
    (row,) = queue(store, msg)
    before = datetime.now(UTC)
    async with running(outbox, events_config(sink.url), metrics):
        await sink.wait_for(lambda r: len(r) >= 1, 10)
        await until(outbox_empty(outbox), "the message left the outbox")
    (received,) = sink.received
    assert received.path == "/api/v2/events/ingest"
    assert header(received, "Authorization") == "Api-Token tok-123"
    assert header(received, "Idempotency-Key") == key(row)
    content_type = header(received, "Content-Type") or ""
    assert content_type.split(";")[0].strip() == "application/json"
    assert header(received, "User-Agent") == USER_AGENT
    assert received.event == msg.body == json.loads(row.body)
    assert received.event is not None
    assert received.event["properties"]["monitord.reason"] == "상점 응답 없음: connection refused"
    with store.reading() as connection:
        (record,) = delivered_rows(connection, 100, msg.event_id)
    assert record["id"] == row.seq
    assert record["kind"] == "open"
    assert record["attempts"] == 1
    assert record["ingestResults"] == [{"status": "OK", "correlationId": "41f5d263011a6c9a"}]
    assert before <= parse_time(record["deliveredAt"]) <= datetime.now(UTC)
    assert outbox.counts() == (0, 0)
    assert counted(metrics, "delivered") == 1
    assert counted(metrics, "retried") == 0
    assert counted(metrics, "dead_lettered") == 0


async def test_without_a_token_no_authorization_is_sent(
    store: Store, outbox: Outbox, sink: EventSink
) -> None:
    """With no token configured the request carries no Authorization header at all."""
    (row,) = queue(store, message(failure("shop")))
    async with running(outbox, events_config(sink.url, token=None)):
        await until(outbox_empty(outbox), "delivered")
    (received,) = sink.received
    assert header(received, "Authorization") is None
    assert header(received, "Idempotency-Key") == key(row)


async def test_each_scenario_arrives_in_order(
    store: Store, outbox: Outbox, sink: EventSink
) -> None:
    """Messages of two scenarios sent side by side: each scenario's arrive in seq order,
    each exactly once."""
    a, b = failure("alpha"), failure("beta")
    rows = queue(
        store,
        message(a, MessageKind.OPEN, 0),
        message(b, MessageKind.OPEN, 0),
        message(a, MessageKind.REFRESH, 1),
        message(b, MessageKind.REFRESH, 1),
        message(a, MessageKind.CLOSE, 2, end=datetime.now(UTC)),
        message(b, MessageKind.CLOSE, 2, end=datetime.now(UTC)),
    )
    async with running(outbox, events_config(sink.url)):
        await sink.wait_for(lambda r: len(r) >= 6, 10)
        await until(outbox_empty(outbox), "all delivered")
    arrived = keys(sink)
    assert sorted(k or "" for k in arrived) == sorted(key(r) for r in rows)
    assert [k for k in arrived if k and k.startswith(a.event_id)] == [key(r) for r in rows[0::2]]
    assert [k for k in arrived if k and k.startswith(b.event_id)] == [key(r) for r in rows[1::2]]
    assert [s for s, _ in delivered(store)] == [r.seq for r in rows]


async def test_with_concurrency_one_everything_arrives_in_seq_order(
    store: Store, outbox: Outbox, sink: EventSink
) -> None:
    """One at a time, the whole outbox goes out in the order it was queued."""
    a, b = failure("alpha"), failure("beta")
    rows = queue(
        store,
        message(a, MessageKind.OPEN, 0),
        message(b, MessageKind.OPEN, 0),
        message(b, MessageKind.REFRESH, 1),
        message(a, MessageKind.REFRESH, 1),
        message(a, MessageKind.REFRESH, 2),
        message(b, MessageKind.CLOSE, 2, end=datetime.now(UTC)),
    )
    async with running(outbox, events_config(sink.url), concurrency=1):
        await until(outbox_empty(outbox), "all delivered")
    assert keys(sink) == [key(r) for r in rows]
    assert [r.event for r in sink.received] == [json.loads(r.body) for r in rows]


# --- B. dead letters -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer_of", "shown"),
    [
        (
            lambda url: status(400, b'{"error":{"code":400,"message":"Invalid\nentity selector"}}'),
            ["HTTP 400", '"message":"Invalid entity selector"'],
        ),
        (
            lambda url: status(401, b"Unauthorized: token expired"),
            ["HTTP 401", "token expired"],
        ),
        (
            lambda url: status(307, headers={"Location": url}),
            ["HTTP 307", "redirected to http://127.0.0.1:"],
        ),
    ],
    ids=["400", "401", "307"],
)
async def test_refusal_dead_letters_and_the_next_message_goes_on(
    store: Store,
    outbox: Outbox,
    sink: EventSink,
    answer_of: Callable[[str], Answer],
    shown: list[str],
) -> None:
    """A 4xx or redirect dead-letters the message with the status and the body's start,
    sent once and not followed; the scenario's next message is still delivered."""
    metrics = Metrics()
    event = failure("shop")
    first, second = queue(store, message(event), message(event, MessageKind.REFRESH, 1))
    sink.answer(answer_of(sink.url), then=created())
    async with running(outbox, events_config(sink.url), metrics):
        await until(lambda: outbox.counts() == (0, 1), "one dead, one delivered")
    assert keys(sink) == [key(first), key(second)]
    (letter,) = dead(store)
    assert letter.seq == first.seq
    assert letter.attempts == 1
    for part in shown:
        assert part in (letter.last_error or "")
    assert not CONTROL_CHARS & set(letter.last_error or "")
    assert json.loads(letter.body) == json.loads(first.body)
    assert delivered(store) == [(second.seq, 1)]
    assert counted(metrics, "dead_lettered") == 1
    assert counted(metrics, "delivered") == 1
    assert counted(metrics, "retried") == 0


async def test_a_refused_event_in_a_201_is_dead_with_its_results(
    store: Store, outbox: Outbox, sink: EventSink
) -> None:
    """A 201 whose result is INVALID_ENTITY_TYPE is a dead letter, sent once, with the
    sink's results kept in the dead_letter table."""
    metrics = Metrics()
    (row,) = queue(store, message(failure("shop")))
    sink.answer(created("INVALID_ENTITY_TYPE", correlation_ids=["c0ffee0000000001"]))
    async with running(outbox, events_config(sink.url), metrics):
        await until(lambda: outbox.counts() == (0, 1), "dead-lettered")
    assert len(sink.received) == 1
    with store.reading() as connection:
        (stored,) = connection.execute(
            "SELECT seq, attempts, last_error, ingest_results FROM dead_letter"
        ).fetchall()
    seq, attempts, last_error, results = stored
    assert (seq, attempts) == (row.seq, 1)
    assert "INVALID_ENTITY_TYPE" in last_error
    assert json.loads(results) == [
        {"status": "INVALID_ENTITY_TYPE", "correlationId": "c0ffee0000000001"}
    ]
    assert delivered(store) == []
    assert counted(metrics, "dead_lettered") == 1
    assert counted(metrics, "delivered") == 0


async def test_gives_up_after_max_attempts(store: Store, outbox: Outbox, sink: EventSink) -> None:
    """With maxAttempts 2 and the sink always failing, the message is tried twice and
    then dead-lettered."""
    metrics = Metrics()
    (row,) = queue(store, message(failure("shop")))
    sink.answer(then=status(503))
    async with running(outbox, events_config(sink.url, max_attempts=2), metrics):
        await until(lambda: outbox.counts() == (0, 1), "dead-lettered")
        assert keys(sink) == [key(row), key(row)]
    (letter,) = dead(store)
    assert letter.attempts == 2
    assert (letter.last_error or "").startswith("gave up after 2 attempts: HTTP 503")
    assert len(sink.received) == 2
    assert counted(metrics, "retried") == 1
    assert counted(metrics, "dead_lettered") == 1


async def test_a_message_past_max_age_is_dead_without_sending(
    store: Store, outbox: Outbox, sink: EventSink
) -> None:
    """A message queued longer ago than maxAgeHours is dead-lettered unsent; a fresh one
    of another scenario still goes out."""
    metrics = Metrics()
    (old,) = queue(store, message(failure("old")))
    two_days_ago = format_time(datetime.now(UTC) - timedelta(days=2))
    with store.transaction() as connection:
        connection.execute("UPDATE outbox SET queued_at = ? WHERE seq = ?", (two_days_ago, old.seq))
    (fresh,) = queue(store, message(failure("fresh")))
    async with running(outbox, events_config(sink.url, max_age_hours=24), metrics):
        await until(lambda: outbox.counts() == (0, 1), "one dead, one delivered")
    assert keys(sink) == [key(fresh)]
    (letter,) = dead(store)
    assert letter.seq == old.seq
    assert letter.attempts == 0
    assert letter.last_error == "not sent: older than maxAgeHours (24 h)"
    assert counted(metrics, "dead_lettered") == 1


@pytest.mark.parametrize("stored", ["not json {", "[1, 2]", '"text"'])
async def test_a_stored_body_that_is_not_a_json_object_is_dead_without_sending(
    store: Store, outbox: Outbox, sink: EventSink, stored: str
) -> None:
    """A body that cannot be read back is dead-lettered unsent; the next goes on."""
    event = failure("shop")
    broken, good = queue(store, message(event), message(event, MessageKind.REFRESH, 1))
    with store.transaction() as connection:
        connection.execute("UPDATE outbox SET body = ? WHERE seq = ?", (stored, broken.seq))
    async with running(outbox, events_config(sink.url)):
        await until(lambda: outbox.counts() == (0, 1), "one dead, one delivered")
    assert keys(sink) == [key(good)]
    (letter,) = dead(store)
    assert (letter.seq, letter.attempts) == (broken.seq, 0)
    assert letter.last_error == "the stored event is not a JSON object"
    assert letter.body == stored


# --- B. retries ----------------------------------------------------------------------------


async def test_server_errors_are_retried_with_growing_pauses(
    store: Store, outbox: Outbox, sink: EventSink
) -> None:
    """503, 503, then 201: delivered on the third attempt; the pauses are the backoff
    (1 s, then 2 s with the jitter fixed at its top)."""
    metrics = Metrics()
    (row,) = queue(store, message(failure("shop")))
    sink.answer(status(503, b"busy"), status(503, b"busy"), then=created())
    async with running(outbox, events_config(sink.url, retry_max_s=5), metrics, rand=1.0):
        await sink.wait_for(lambda r: len(r) >= 3, 15)
        await until(outbox_empty(outbox), "delivered")
    assert keys(sink) == [key(row)] * 3
    assert [r.answer for r in sink.received] == ["status 503", "status 503", "created"]
    first, second, third = (r.at for r in sink.received)
    assert 0.9 <= second - first < 1.8
    assert 1.9 <= third - second < 3.0
    assert delivered(store) == [(row.seq, 3)]
    assert counted(metrics, "retried") == 2
    assert counted(metrics, "delivered") == 1


async def test_retry_after_is_honoured(store: Store, outbox: Outbox, sink: EventSink) -> None:
    """429 with Retry-After 2: the next attempt waits at least 2 s; delivered once."""
    metrics = Metrics()
    (row,) = queue(store, message(failure("shop")))
    sink.answer(too_many("2"), then=created())
    async with running(outbox, events_config(sink.url, retry_max_s=1), metrics):
        await sink.wait_for(lambda r: len(r) >= 2, 10)
        await until(outbox_empty(outbox), "delivered")
    assert [r.answer for r in sink.received] == ["too many", "created"]
    assert keys(sink) == [key(row), key(row)]
    gap = sink.received[1].at - sink.received[0].at
    assert 1.99 <= gap < 3.5
    assert delivered(store) == [(row.seq, 2)]
    assert counted(metrics, "retried") == 1


async def test_no_answer_within_the_send_timeout_is_retried(
    store: Store, outbox: Outbox, sink: EventSink
) -> None:
    """A sink that does not answer within sendTimeoutSeconds: the attempt is recorded as
    timed out, and once the sink answers the message is delivered with the same key."""
    (row,) = queue(store, message(failure("shop")))
    sink.answer(then=hang())
    async with running(outbox, events_config(sink.url, send_timeout_s=1)):
        await until(
            retried_once(store, lambda e: e == "no answer within 1 s"), "a timed-out attempt"
        )
        sink.answer(then=created())
        sink.release_hung()
        await until(outbox_empty(outbox), "delivered")
    assert set(keys(sink)) == {key(row)}
    assert [r.answer for r in sink.received][-1] == "created"
    assert keys(sink, "created") == [key(row)]
    assert delivered(store) == [(row.seq, len(sink.received))]
    assert len(sink.received) >= 2


async def test_a_sink_that_refuses_connections_is_retried_then_delivered_in_order_once(
    store: Store, outbox: Outbox, sink: EventSink
) -> None:
    """Nothing listening: attempts fail with a network error and stay queued. Later a sink
    that cuts the first connections, then answers: every message arrives in order and is
    acknowledged exactly once."""
    metrics = Metrics()
    event = failure("shop")
    rows = queue(
        store,
        message(event, MessageKind.OPEN, 0),
        message(event, MessageKind.REFRESH, 1),
        message(event, MessageKind.CLOSE, 2, end=datetime.now(UTC)),
    )
    with refusing_tcp_port() as address:
        url = f"http://{address.host}:{address.port}/api/v2/events/ingest"
        async with running(outbox, events_config(url), metrics):
            await until(
                retried_once(store, lambda e: e.startswith("network error")), "a network error"
            )
    assert outbox.counts() == (3, 0)
    assert counted(metrics, "retried") >= 1
    assert counted(metrics, "delivered") == 0
    attempts_before = pending(store)[0].attempts

    sink.answer(drop(), drop(), then=created())
    async with running(outbox, events_config(sink.url), metrics):
        await until(outbox_empty(outbox), "all delivered")
    assert [r.answer for r in sink.received] == ["drop", "drop", *["created"] * 3]
    assert keys(sink) == [key(rows[0])] * 3 + [key(r) for r in rows[1:]]
    assert keys(sink, "created") == [key(r) for r in rows]
    assert delivered(store) == [
        (rows[0].seq, attempts_before + 3),
        (rows[1].seq, 1),
        (rows[2].seq, 1),
    ]
    assert counted(metrics, "delivered") == 3


async def test_an_odd_retry_after_does_not_stop_the_worker(
    store: Store, outbox: Outbox, sink: EventSink
) -> None:
    """A 503 whose Retry-After cannot be read is an ordinary retry: the worker goes on and
    delivers the message."""
    (row,) = queue(store, message(failure("shop")))
    sink.answer(status(503, headers={"Retry-After": "²"}), then=created())
    async with running(outbox, events_config(sink.url)):
        await until(outbox_empty(outbox), "delivered after the odd 503", timeout_s=5)
    assert keys(sink) == [key(row), key(row)]


async def test_a_retry_after_of_zero_still_pauses_the_worker(
    store: Store, outbox: Outbox, sink: EventSink
) -> None:
    """ "Retry-After: 0" over and over does not turn into a tight loop against the sink."""
    (row,) = queue(store, message(failure("shop")))
    sink.answer(too_many("0"), too_many("0"), then=created())
    async with running(outbox, events_config(sink.url)):
        await until(outbox_empty(outbox), "delivered after two 429s", timeout_s=10)
    assert keys(sink) == [key(row)] * 3
    first, second, third = (r.at for r in sink.received)
    assert second - first >= 0.45
    assert third - second >= 0.45


# --- B. answers that cannot be read ------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (garbage(201), "not an ingest result"),
        (huge(201, 8 * 1024 * 1024), f"the answer is larger than {MAX_ANSWER_BYTES} bytes"),
        (drip(201, chunks=20, interval_s=0.5), "the answer was too slow"),
        (status(201, b'{"eventIngestResults": ' + b"[" * 5000), "not an ingest result"),
    ],
    ids=["garbage", "huge", "drip", "nested"],
)
async def test_a_201_with_an_unreadable_answer_is_delivered_once(
    store: Store,
    outbox: Outbox,
    sink: EventSink,
    caplog: pytest.LogCaptureFixture,
    answer: Answer,
    problem: str,
) -> None:
    """A 201 whose answer is garbage, 8 MiB, or slower than the send timeout counts as
    delivered, is not resent, and the worker goes on with the next message."""
    caplog.set_level(logging.INFO, logger="monitord.events.delivery")
    metrics = Metrics()
    event = failure("shop")
    first, second = queue(store, message(event), message(event, MessageKind.REFRESH, 1))
    sink.answer(answer, then=created())
    async with running(outbox, events_config(sink.url, send_timeout_s=1), metrics):
        await until(outbox_empty(outbox), "both delivered", timeout_s=5)
    assert keys(sink) == [key(first), key(second)]
    assert delivered(store) == [(first.seq, 1), (second.seq, 1)]
    with store.reading() as connection:
        (record,) = delivered_rows(connection, 100, event.event_id)[:1]
    assert record["ingestResults"] is None
    assert f"HTTP 201 (answer not understood: {problem})" in caplog.text
    assert counted(metrics, "delivered") == 2
    assert counted(metrics, "retried") == 0


# --- B. stopping -----------------------------------------------------------------------------


async def test_stop_sends_what_is_due_within_the_grace(
    store: Store, outbox: Outbox, sink: EventSink
) -> None:
    """Messages queued without a wake-up are still sent by stop(5) before it returns."""
    deliverer = Deliverer(outbox, events_config(sink.url), Metrics(), USER_AGENT)
    deliverer.start()
    event = failure("shop")
    rows = queue(
        store,
        message(event, MessageKind.OPEN, 0),
        message(event, MessageKind.REFRESH, 1),
        message(failure("other"), MessageKind.OPEN, 0),
    )
    started = time.monotonic()
    await deliverer.stop(5)
    assert time.monotonic() - started < 4
    assert outbox.counts() == (0, 0)
    assert sorted(keys(sink), key=str) == sorted((key(r) for r in rows), key=str)
    assert [s for s, _ in delivered(store)] == [r.seq for r in rows]


async def test_stop_with_a_hanging_sink_returns_and_keeps_the_message(
    store: Store, outbox: Outbox, sink: EventSink
) -> None:
    """stop(0.5) while a send hangs returns promptly; the message stays queued, untouched,
    and the next start sends it again with the same key (at least once)."""
    (row,) = queue(store, message(failure("shop")))
    sink.answer(then=hang())
    deliverer = Deliverer(outbox, events_config(sink.url, send_timeout_s=10), Metrics(), USER_AGENT)
    deliverer.start()
    try:
        await sink.wait_for(lambda r: len(r) >= 1, 10)
    finally:
        started = time.monotonic()
        await deliverer.stop(0.5)
        took = time.monotonic() - started
    assert 0.4 <= took < 3
    (still,) = pending(store)
    assert (still.seq, still.attempts, still.last_error) == (row.seq, 0, None)
    assert dead(store) == []

    sink.answer(then=created())
    async with running(outbox, events_config(sink.url)):
        await until(outbox_empty(outbox), "delivered after the restart")
    assert keys(sink) == [key(row), key(row)]
    assert delivered(store) == [(row.seq, 1)]


async def test_stop_during_a_retry_pause_returns_without_waiting_it_out(
    store: Store, outbox: Outbox, sink: EventSink
) -> None:
    """Paused by Retry-After 120, stop(3) has nothing it may send: it returns at once and
    leaves the message queued with its attempt recorded."""
    (row,) = queue(store, message(failure("shop")))
    sink.answer(then=too_many("120"))
    deliverer = Deliverer(outbox, events_config(sink.url), Metrics(), USER_AGENT)
    deliverer.start()
    try:
        await until(retried_once(store, lambda e: "HTTP 429" in e), "the 429 recorded")
    finally:
        started = time.monotonic()
        await deliverer.stop(3)
        took = time.monotonic() - started
    assert took < 1.5
    (still,) = pending(store)
    assert (still.seq, still.attempts) == (row.seq, 1)
    assert still.next_attempt_at > time.time() + 100
    assert len(sink.received) == 1


# --- B. waking and sending ---------------------------------------------------------------------


async def test_notify_wakes_the_idle_worker(store: Store, outbox: Outbox, sink: EventSink) -> None:
    """An idle worker does not look at the outbox by itself for a while; notify() makes it
    send a newly queued message at once."""
    event = failure("shop")
    (first,) = queue(store, message(event))
    async with running(outbox, events_config(sink.url)):
        await until(outbox_empty(outbox), "the first message delivered")
        (second,) = queue(store, message(event, MessageKind.REFRESH, 1))
        await stays(lambda: len(sink.received) == 1, "sent without a wake-up", 0.5)
        woken = time.monotonic()
        outbox.notify()
        await sink.wait_for(lambda r: len(r) >= 2, 5)
        assert time.monotonic() - woken < 5
        await until(outbox_empty(outbox), "the second message delivered")
    assert keys(sink) == [key(first), key(second)]


async def test_an_old_start_time_is_sent_as_now_and_the_stored_body_is_kept(
    store: Store, outbox: Outbox, sink: EventSink
) -> None:
    """A startTime 6 h old goes out as the time of sending (endTime follows), while the
    stored message keeps its own times."""
    six_hours_ago = datetime.now(UTC) - timedelta(hours=6)
    event = failure("shop", since=six_hours_ago)
    opened = message(event, start=six_hours_ago)
    closed = message(
        event,
        MessageKind.CLOSE,
        1,
        start=six_hours_ago,
        end=six_hours_ago + timedelta(minutes=30),
    )
    first, second = queue(store, opened, closed)
    sink.answer(then=status(503))
    before_ms = to_millis(datetime.now(UTC))
    async with running(outbox, events_config(sink.url)):
        await until(retried_once(store, lambda e: "HTTP 503" in e), "a failed attempt")
        after_ms = to_millis(datetime.now(UTC))
        stored = json.loads(pending(store)[0].body)
        assert stored == opened.body
        assert stored["startTime"] == to_millis(six_hours_ago)
        sent = sink.received[0].event
        assert sent is not None
        assert before_ms <= sent["startTime"] <= after_ms
        assert {k: v for k, v in sent.items() if k != "startTime"} == {
            k: v for k, v in opened.body.items() if k != "startTime"
        }
        sink.answer(then=created())
        await until(outbox_empty(outbox), "both delivered")
        done_ms = to_millis(datetime.now(UTC))
    events = [r.event for r in sink.received if r.answer == "created"]
    assert [header(r, "Idempotency-Key") for r in sink.received if r.answer == "created"] == [
        key(first),
        key(second),
    ]
    sent_open, sent_close = events
    assert sent_open is not None
    assert sent_close is not None
    assert before_ms <= sent_open["startTime"] <= done_ms
    assert before_ms <= sent_close["startTime"] <= sent_close["endTime"] <= done_ms
    assert closed.body["endTime"] == to_millis(six_hours_ago + timedelta(minutes=30))
    assert [s for s, _ in delivered(store)] == [first.seq, second.seq]
