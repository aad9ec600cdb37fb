"""The durable outbox (SPEC §6) on a real state store: queueing, order, retries, dead letters."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitord.events import outbox as outbox_module
from monitord.events.body import MessageKind, OpenEvent
from monitord.events.outbox import (
    EventChange,
    Message,
    Outbox,
    Row,
    counts,
    dead_rows,
    delivered_rows,
    due_heads,
    has_pending,
    mark_dead,
    mark_delivered,
    mark_retry,
    next_attempt_at,
    pending_rows,
    read_open_events,
    requeue,
    write_change,
)
from monitord.model import EventType, FailureKind, Outcome, Result, ScenarioType
from monitord.store import Store, put_state
from monitord.tracker import ScenarioState, Status

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
T0_TEXT = "2026-11-23T10:00:00.000000Z"
NOW_S = T0.timestamp()
PERIOD_ENDED = "its failure period has ended: sent alone it would re-open a closed problem"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "state.sqlite3")
    yield opened
    opened.close()


def event(sid: str = "s1", eid: str = "ev-1", **changes: Any) -> OpenEvent:
    values: dict[str, Any] = {
        "scenario_id": sid,
        "event_id": eid,
        "event_type": EventType.AVAILABILITY_EVENT,
        "title": f"monitord: shop {sid} failing",
        "entity_selector": "type(SERVICE),entityName.equals(shop)",
        "failing_since": T0 - timedelta(minutes=3, microseconds=17),
        "opened_at": T0,
        "refreshed_at": T0 + timedelta(minutes=1),
        "properties": {"monitord.event.id": eid, "monitord.reason": "상점 down"},
    }
    values.update(changes)
    return OpenEvent(**values)


def message(
    sid: str = "s1",
    eid: str = "ev-1",
    kind: MessageKind = MessageKind.OPEN,
    n: int = 0,
    event_type: EventType = EventType.AVAILABILITY_EVENT,
) -> Message:
    return Message(
        scenario_id=sid,
        event_id=eid,
        kind=kind,
        event_type=event_type,
        body={"title": f"{sid} {kind.value} {n}", "startTime": 1_000 + n},
        created_at=T0 + timedelta(seconds=n),
    )


def write(store: Store, *changes: EventChange) -> None:
    with store.transaction() as connection:
        for change in changes:
            write_change(connection, change)


def queue(store: Store, *messages: Message) -> list[Row]:
    """Queue the messages (one transaction); every pending row, in seq order."""
    write(store, EventChange(messages=messages))
    return pending(store)


def pending(store: Store) -> list[Row]:
    with store.reading() as connection:
        return pending_rows(connection, 1000)


def dead(store: Store) -> list[Row]:
    with store.reading() as connection:
        return dead_rows(connection, 1000)


def heads(store: Store, now_s: float, limit: int = 10, busy: tuple[str, ...] = ()) -> list[int]:
    with store.reading() as connection:
        return [r.seq for r in due_heads(connection, now_s, limit, busy)]


def kill(store: Store, row: Row, *, attempted: bool = True) -> None:
    with store.transaction() as connection:
        mark_dead(connection, row, "HTTP 400", T0, attempted=attempted)


def deliver(store: Store, row: Row, results: list[dict[str, Any]] | None = None) -> None:
    with store.transaction() as connection:
        mark_delivered(connection, row, results, T0 + timedelta(minutes=1))


def open_events(store: Store) -> dict[str, OpenEvent]:
    with store.reading() as connection:
        return read_open_events(connection)


# --- open events -----------------------------------------------------------------------------


def test_open_events_round_trip(store: Store) -> None:
    """What write_change stores, read_open_events gives back equal."""
    one = event("s1", "ev-1")
    two = event("s2", "ev-2", entity_selector=None, event_type=EventType.ERROR_EVENT)
    write(store, EventChange(opened=(two, one)))
    assert open_events(store) == {"s1": one, "s2": two}
    assert Outbox(store).open_events() == {"s1": one, "s2": two}


def test_an_update_replaces_the_open_event(store: Store) -> None:
    """Writing the same scenario's event again replaces the row."""
    write(store, EventChange(opened=(event(),)))
    later = event(refreshed_at=T0 + timedelta(minutes=9), properties={"monitord.reason": "x"})
    write(store, EventChange(opened=(later,)))
    assert open_events(store) == {"s1": later}


def test_a_close_removes_the_open_event_in_its_change(store: Store) -> None:
    """The close message and the removal of the row are written together."""
    write(store, EventChange(opened=(event("s1", "ev-1"), event("s2", "ev-2"))))
    close = message("s1", "ev-1", MessageKind.CLOSE)
    write(store, EventChange(messages=(close,), ended=("s1",)))
    assert open_events(store) == {"s2": event("s2", "ev-2")}
    assert [(r.scenario_id, r.kind) for r in pending(store)] == [("s1", "close")]


def test_an_end_then_an_open_in_one_change_leaves_the_new_open(store: Store) -> None:
    """Ends are written before opens: the new period's event stays."""
    write(store, EventChange(opened=(event("s1", "ev-1"),)))
    new = event("s1", "ev-2", opened_at=T0 + timedelta(hours=1))
    change = EventChange(
        messages=(message("s1", "ev-1", MessageKind.CLOSE), message("s1", "ev-2", n=1)),
        opened=(new,),
        ended=("s1",),
    )
    write(store, change)
    assert open_events(store) == {"s1": new}
    assert [(r.event_id, r.kind) for r in pending(store)] == [("ev-1", "close"), ("ev-2", "open")]


@pytest.mark.parametrize("properties", ["{not json", "[1, 2]", '{"monitord.reason": 3}', "null"])
def test_an_unreadable_open_event_is_skipped_with_a_warning(
    store: Store, caplog: pytest.LogCaptureFixture, properties: str
) -> None:
    """A row whose properties cannot be read is left out and logged; the others load."""
    write(store, EventChange(opened=(event("s1", "ev-1"), event("s2", "ev-2"))))
    with store.transaction() as connection:
        connection.execute(
            "UPDATE open_event SET properties = ? WHERE scenario_id = 's1'", (properties,)
        )
    with caplog.at_level(logging.WARNING, logger="monitord.events.outbox"):
        assert open_events(store) == {"s2": event("s2", "ev-2")}
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(
        "state store: skipped the open event of scenario s1, which cannot be read ("
    )
    assert getattr(record, "scenario_id", None) == "s1"


# --- queueing and order ------------------------------------------------------------------------


def test_messages_are_stored_as_written(store: Store) -> None:
    """A queued row holds the message, its JSON body and fresh delivery fields."""
    (row,) = queue(store, message("s1", "ev-1", MessageKind.REFRESH, 5, EventType.ERROR_EVENT))
    assert row == Row(
        seq=1,
        scenario_id="s1",
        event_id="ev-1",
        kind="refresh",
        event_type="ERROR_EVENT",
        body='{"title":"s1 refresh 5","startTime":1005}',
        created_at="2026-11-23T10:00:05.000000Z",
        attempts=0,
        last_error=None,
        next_attempt_at=0.0,
        queued_at="2026-11-23T10:00:05.000000Z",
    )
    with store.reading() as connection:
        assert has_pending(connection, "ev-1")
        assert not has_pending(connection, "ev-2")
    assert Outbox(store).has_pending("ev-1")


def test_due_heads_gives_the_oldest_message_of_each_scenario(store: Store) -> None:
    """Only each scenario's lowest seq is due, in seq order."""
    queue(
        store,
        message("s1", n=1),
        message("s2", n=2),
        message("s1", kind=MessageKind.REFRESH, n=3),
        message("s3", n=4),
        message("s2", kind=MessageKind.CLOSE, n=5),
    )
    assert heads(store, NOW_S) == [1, 2, 4]
    assert heads(store, NOW_S, limit=2) == [1, 2]
    assert heads(store, NOW_S, limit=0) == []


def test_due_heads_honours_the_retry_time(store: Store) -> None:
    """A head waiting for its retry time holds back its whole scenario until then."""
    rows = queue(store, message("s1", n=1), message("s2", n=2), message("s2", n=3))
    with store.transaction() as connection:
        mark_retry(connection, rows[1], "HTTP 503", NOW_S + 100)
    assert heads(store, NOW_S) == [1]
    assert heads(store, NOW_S + 99.9) == [1]
    assert heads(store, NOW_S + 100) == [1, 2]


def test_due_heads_skips_busy_scenarios_and_still_fills_the_limit(store: Store) -> None:
    """Busy scenarios are left out and do not use up the limit."""
    queue(store, message("s1", n=1), message("s2", n=2), message("s3", n=3), message("s1", n=4))
    assert heads(store, NOW_S, busy=("s1",)) == [2, 3]
    assert heads(store, NOW_S, limit=1, busy=("s1",)) == [2]
    assert heads(store, NOW_S, limit=1, busy=("s1", "s2")) == [3]
    assert heads(store, NOW_S, limit=1, busy=("s1", "s2", "s3")) == []
    assert heads(store, NOW_S, limit=1, busy=("unknown", "s1")) == [2]


def test_next_attempt_at(store: Store) -> None:
    """None when empty; otherwise the earliest retry time among the heads only."""
    with store.reading() as connection:
        assert next_attempt_at(connection) is None
    rows = queue(store, message("s1", n=1), message("s1", n=2))
    with store.transaction() as connection:
        assert next_attempt_at(connection) == 0.0
        mark_retry(connection, rows[0], "HTTP 503", 1234.5)
        # The second message of s1 has next_attempt_at 0, but it is not a head.
        assert next_attempt_at(connection) == 1234.5
    queue(store, message("s2", n=3))
    with store.transaction() as connection:
        assert next_attempt_at(connection) == 0.0
        mark_retry(connection, pending(store)[2], "timeout", 999.0)
        assert next_attempt_at(connection) == 999.0


# --- delivered, retry, dead ----------------------------------------------------------------


def test_mark_delivered_moves_the_row_and_stores_the_ingest_results(store: Store) -> None:
    """A delivered message leaves the outbox; its attempts and the sink's answer are kept."""
    rows = queue(store, message("s1", "ev-1", n=1), message("s1", "ev-1", MessageKind.CLOSE, 2))
    with store.transaction() as connection:
        mark_retry(connection, rows[0], "HTTP 503", 0)
    results = [{"correlationId": "c0ffee", "status": "OK"}]
    deliver(store, pending(store)[0], results)
    deliver(store, pending(store)[0], None)
    assert pending(store) == []
    assert counts_of(store) == (0, 0)
    with store.reading() as connection:
        assert delivered_rows(connection, 100, "ev-1") == [
            {
                "id": 1,
                "scenarioId": "s1",
                "eventId": "ev-1",
                "kind": "open",
                "eventType": "AVAILABILITY_EVENT",
                "deliveredAt": "2026-11-23T10:01:00.000000Z",
                "attempts": 2,
                "ingestResults": results,
            },
            {
                "id": 2,
                "scenarioId": "s1",
                "eventId": "ev-1",
                "kind": "close",
                "eventType": "AVAILABILITY_EVENT",
                "deliveredAt": "2026-11-23T10:01:00.000000Z",
                "attempts": 1,
                "ingestResults": None,
            },
        ]
        assert delivered_rows(connection, 100, "ev-2") == []


def test_delivered_history_is_bounded(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the newest DELIVERED_HISTORY acknowledged messages are kept."""
    monkeypatch.setattr(outbox_module, "DELIVERED_HISTORY", 3)
    for row in queue(store, *(message(f"s{n}", "ev-1", n=n) for n in range(6))):
        deliver(store, row)
    with store.reading() as connection:
        assert [d["id"] for d in delivered_rows(connection, 100, "ev-1")] == [4, 5, 6]
        (count,) = connection.execute("SELECT COUNT(*) FROM delivered").fetchone()
    assert count == 3


def test_mark_retry_counts_attempts_and_clips_the_error(store: Store) -> None:
    """Each retry adds an attempt; the error is kept, clipped to 500 characters."""
    (row,) = queue(store, message())
    with store.transaction() as connection:
        mark_retry(connection, row, "e" * 500, NOW_S + 5)
    (after,) = pending(store)
    assert (after.attempts, after.last_error, after.next_attempt_at) == (1, "e" * 500, NOW_S + 5)
    with store.transaction() as connection:
        mark_retry(connection, after, "x" * 800, NOW_S + 30)
    (after,) = pending(store)
    assert after.attempts == 2
    assert after.next_attempt_at == NOW_S + 30
    assert after.last_error == "x" * 499 + "…"


@pytest.mark.parametrize(("attempted", "attempts"), [(True, 3), (False, 2)])
def test_mark_dead_moves_the_row(store: Store, attempted: bool, attempts: int) -> None:
    """A dead letter keeps the message; attempts grow by one only if it was sent."""
    (row,) = queue(store, message())
    with store.transaction() as connection:
        mark_retry(connection, row, "HTTP 503", 0)
        mark_retry(connection, pending(store)[0], "HTTP 503", 0)
        (row,) = pending_rows(connection, 10)
        mark_dead(
            connection,
            row,
            "HTTP 400: " + "y" * 600,
            T0 + timedelta(hours=2),
            attempted=attempted,
            ingest_results=[{"status": "INVALID"}],
        )
    assert pending(store) == []
    (letter,) = dead(store)
    assert letter == Row(
        seq=1,
        scenario_id="s1",
        event_id="ev-1",
        kind="open",
        event_type="AVAILABILITY_EVENT",
        body='{"title":"s1 open 0","startTime":1000}',
        created_at=T0_TEXT,
        attempts=attempts,
        last_error=("HTTP 400: " + "y" * 600)[:499] + "…",
        dead_at="2026-11-23T12:00:00.000000Z",
    )
    with store.reading() as connection:
        (stored,) = connection.execute("SELECT ingest_results FROM dead_letter").fetchone()
    assert json.loads(stored) == [{"status": "INVALID"}]
    assert counts_of(store) == (0, 1)


def counts_of(store: Store) -> tuple[int, int]:
    with store.reading() as connection:
        return counts(connection)


def test_counts(store: Store) -> None:
    """(pending, dead) as the rows move."""
    assert counts_of(store) == (0, 0)
    rows = queue(store, message("s1", n=1), message("s2", n=2), message("s3", n=3))
    assert counts_of(store) == (3, 0)
    kill(store, rows[0])
    deliver(store, rows[1])
    assert counts_of(store) == (1, 1)
    assert Outbox(store).counts() == (1, 1)


# --- requeue ---------------------------------------------------------------------------------


def requeue_now(store: Store, ids: list[int] | None) -> outbox_module.Requeued:
    with store.transaction() as connection:
        return requeue(connection, ids, T0 + timedelta(hours=3))


def test_requeue_all_of_a_still_open_event(store: Store) -> None:
    """Dead messages of an open event go back at their old place, attempts reset."""
    write(store, EventChange(opened=(event("s1", "ev-1"),)))
    rows = queue(store, message("s1", "ev-1", n=1), message("s1", "ev-1", MessageKind.REFRESH, n=2))
    with store.transaction() as connection:
        mark_retry(connection, rows[0], "HTTP 503", NOW_S + 50)
    for row in pending(store):
        kill(store, row)
    done = requeue_now(store, None)
    assert [r.seq for r in done.requeued] == [1, 2]
    assert done.kept == ()
    assert done.unknown == ()
    assert dead(store) == []
    again = pending(store)
    assert [(r.seq, r.kind, r.attempts, r.next_attempt_at) for r in again] == [
        (1, "open", 0, 0.0),
        (2, "refresh", 0, 0.0),
    ]
    assert {r.queued_at for r in again} == {"2026-11-23T13:00:00.000000Z"}
    assert {r.created_at for r in again} == {
        "2026-11-23T10:00:01.000000Z",
        "2026-11-23T10:00:02.000000Z",
    }
    assert [r.last_error for r in again] == ["HTTP 400", "HTTP 400"]
    assert heads(store, NOW_S) == [1]


def test_requeue_by_ids_and_unknown_ids(store: Store) -> None:
    """Only the named dead letters go back; ids that are no dead letter are reported."""
    write(store, EventChange(opened=(event("s1", "ev-1"), event("s2", "ev-2"))))
    rows = queue(store, message("s1", "ev-1", n=1), message("s2", "ev-2", n=2), message("s3", n=3))
    kill(store, rows[0])
    kill(store, rows[1])
    done = requeue_now(store, [2, 2, 3, 99])
    assert [r.seq for r in done.requeued] == [2]
    assert done.kept == ()
    assert done.unknown == (3, 99)  # 3 is pending, 99 never existed
    assert [r.seq for r in dead(store)] == [1]
    assert [r.seq for r in pending(store)] == [2, 3]
    assert requeue_now(store, []) == outbox_module.Requeued((), (), ())


def test_requeue_of_an_empty_dead_letter_table(store: Store) -> None:
    """Nothing dead: nothing to do."""
    assert requeue_now(store, None) == outbox_module.Requeued((), (), ())


def ended_period(store: Store, *, close_dead: bool) -> None:
    """ev-1: open (1) and refresh (2) dead, the period closed; its close (3) delivered or dead."""
    write(store, EventChange(opened=(event("s1", "ev-1"),)))
    rows = queue(store, message("s1", "ev-1", n=1), message("s1", "ev-1", MessageKind.REFRESH, n=2))
    close = message("s1", "ev-1", MessageKind.CLOSE, n=3)
    write(store, EventChange(messages=(close,), ended=("s1",)))
    kill(store, rows[0])
    kill(store, rows[1])
    (close_row,) = pending(store)
    if close_dead:
        kill(store, close_row)
    else:
        deliver(store, close_row)


def test_requeue_keeps_messages_of_an_ended_period_whose_close_was_delivered(
    store: Store,
) -> None:
    """An open or refresh sent after the delivered close would re-open the problem."""
    ended_period(store, close_dead=False)
    done = requeue_now(store, None)
    assert done.requeued == ()
    assert done.kept == ((1, PERIOD_ENDED), (2, PERIOD_ENDED))
    assert [r.seq for r in dead(store)] == [1, 2]
    assert pending(store) == []
    assert requeue_now(store, [1]).kept == ((1, PERIOD_ENDED),)


def test_requeue_of_an_ended_period_with_its_dead_close_takes_all_in_order(
    store: Store,
) -> None:
    """With the close dead too, all three go back in their original order."""
    ended_period(store, close_dead=True)
    done = requeue_now(store, None)
    assert [r.seq for r in done.requeued] == [1, 2, 3]
    assert done.kept == ()
    assert [(r.seq, r.kind) for r in pending(store)] == [(1, "open"), (2, "refresh"), (3, "close")]
    assert heads(store, NOW_S) == [1]


def test_requeue_keeps_the_original_order_among_pending_messages(store: Store) -> None:
    """A re-queued message takes its old place before later messages of its scenario."""
    write(store, EventChange(opened=(event("s1", "ev-1"),)))
    rows = queue(store, message("s1", "ev-1", n=1), message("s2", "ev-9", n=2))
    kill(store, rows[0])
    queue(store, message("s1", "ev-1", MessageKind.REFRESH, n=3))
    assert heads(store, NOW_S) == [2, 3]
    requeue_now(store, [1])
    assert [r.seq for r in pending(store)] == [1, 2, 3]
    assert heads(store, NOW_S) == [1, 2]
    # New messages still get fresh numbers after the re-queued one.
    assert [r.seq for r in queue(store, message("s3", n=4))] == [1, 2, 3, 4]


async def test_outbox_requeue_notifies_only_when_something_moved(store: Store) -> None:
    """Outbox.requeue commits and wakes the worker when a message went back."""
    box = Outbox(store)
    write(store, EventChange(opened=(event("s1", "ev-1"),)))
    (row,) = queue(store, message("s1", "ev-1"))
    kill(store, row)
    assert box.requeue([42], T0).unknown == (42,)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await box.wait_queued(0.05)
    assert loop.time() - started >= 0.04  # nothing was re-queued: no wake-up
    done = box.requeue(None, T0)
    assert [r.seq for r in done.requeued] == [1]
    await asyncio.wait_for(box.wait_queued(30), 5)
    assert counts_of(store) == (1, 0)


# --- listing and the wake-up signal -------------------------------------------------------------


def test_listing_json_shape(store: Store) -> None:
    """pending and deadLetters with counts and their rows, and the last acknowledged
    messages with the sink's answers, limited to ``limit`` each."""
    rows = queue(
        store,
        message("s1", "ev-1", n=1),
        message("s2", "ev-2", MessageKind.CLOSE, n=2, event_type=EventType.ERROR_EVENT),
        message("s3", "ev-3", n=3),
        message("s4", "ev-4", n=4),
    )
    kill(store, rows[1])
    with store.transaction() as connection:
        mark_retry(connection, rows[0], "HTTP 503", NOW_S + 90)
    deliver(store, rows[3], [{"status": "OK", "correlationId": "41f5d263011a6c9a"}])
    box = Outbox(store)
    assert box.listing(10) == {
        "pending": {
            "count": 2,
            "events": [
                {
                    "id": 1,
                    "scenarioId": "s1",
                    "eventId": "ev-1",
                    "kind": "open",
                    "eventType": "AVAILABILITY_EVENT",
                    "createdAt": "2026-11-23T10:00:01.000000Z",
                    "attempts": 1,
                    "lastError": "HTTP 503",
                    "queuedAt": "2026-11-23T10:00:01.000000Z",
                    "nextAttemptAt": "2026-11-23T10:01:30.000000Z",
                    "event": {"title": "s1 open 1", "startTime": 1001},
                },
                {
                    "id": 3,
                    "scenarioId": "s3",
                    "eventId": "ev-3",
                    "kind": "open",
                    "eventType": "AVAILABILITY_EVENT",
                    "createdAt": "2026-11-23T10:00:03.000000Z",
                    "attempts": 0,
                    "lastError": None,
                    "queuedAt": "2026-11-23T10:00:03.000000Z",
                    "nextAttemptAt": None,
                    "event": {"title": "s3 open 3", "startTime": 1003},
                },
            ],
        },
        "deadLetters": {
            "count": 1,
            "events": [
                {
                    "id": 2,
                    "scenarioId": "s2",
                    "eventId": "ev-2",
                    "kind": "close",
                    "eventType": "ERROR_EVENT",
                    "createdAt": "2026-11-23T10:00:02.000000Z",
                    "attempts": 1,
                    "lastError": "HTTP 400",
                    "deadAt": T0_TEXT,
                    "event": {"title": "s2 close 2", "startTime": 1002},
                },
            ],
        },
        "delivered": {
            "events": [
                {
                    "id": 4,
                    "scenarioId": "s4",
                    "eventId": "ev-4",
                    "kind": "open",
                    "eventType": "AVAILABILITY_EVENT",
                    "deliveredAt": "2026-11-23T10:01:00.000000Z",
                    "attempts": 1,
                    "ingestResults": [{"status": "OK", "correlationId": "41f5d263011a6c9a"}],
                },
            ],
        },
    }
    small = box.listing(1)
    assert small["pending"]["count"] == 2
    assert [e["id"] for e in small["pending"]["events"]] == [1]
    assert [e["id"] for e in small["deadLetters"]["events"]] == [2]
    json.dumps(small)  # plain JSON


async def test_notify_wakes_wait_queued(store: Store) -> None:
    """A notify wakes a waiting worker long before its timeout."""
    box = Outbox(store)
    waiter = asyncio.create_task(box.wait_queued(60))
    await asyncio.sleep(0)
    assert not waiter.done()
    box.notify()
    await asyncio.wait_for(waiter, 5)
    # The signal was consumed: the next wait runs into its timeout.
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(box.wait_queued(0.05), 5)
    assert loop.time() - started >= 0.04


async def test_a_notify_before_the_wait_is_not_lost(store: Store) -> None:
    """A notify while nobody waits makes the next wait return at once."""
    box = Outbox(store)
    box.notify()
    await asyncio.wait_for(box.wait_queued(60), 5)


async def test_wait_queued_returns_after_its_timeout(store: Store) -> None:
    """Without a notify, wait_queued returns (no exception) once its timeout passed."""
    box = Outbox(store)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(box.wait_queued(0.1), 5)
    assert loop.time() - started >= 0.09


# --- atomicity -------------------------------------------------------------------------------


def test_a_failed_transaction_leaves_neither_state_nor_event(store: Store) -> None:
    """The state row and the outbox row commit together or not at all."""
    last = Result(
        scenario_id="s1",
        scenario_name="shop",
        scenario_type=ScenarioType.API,
        outcome=Outcome.FAILURE,
        reasons=("down",),
        started_at=T0,
        duration_ms=3.0,
        failure_kind=FailureKind.UNAVAILABLE,
    )
    state = ScenarioState(Status.FAILING, 1, T0, FailureKind.UNAVAILABLE, last)
    change = EventChange(messages=(message(),), opened=(event(),))

    def write_then_fail() -> None:
        with store.transaction() as connection:
            put_state(connection, "s1", state)
            write_change(connection, change)
            assert connection.execute("SELECT COUNT(*) FROM outbox").fetchone() == (1,)
            assert connection.execute("SELECT COUNT(*) FROM scenario_state").fetchone() == (1,)
            raise RuntimeError("after the writes")

    with pytest.raises(RuntimeError, match="after the writes"):
        write_then_fail()
    assert store.load_states() == {}
    assert counts_of(store) == (0, 0)
    assert open_events(store) == {}
    with closing(sqlite3.connect(store.path)) as other:
        assert other.execute("SELECT COUNT(*) FROM scenario_state").fetchone() == (0,)
        assert other.execute("SELECT COUNT(*) FROM outbox").fetchone() == (0,)
    # The same writes commit together when nothing raises.
    with store.transaction() as connection:
        put_state(connection, "s1", state)
        write_change(connection, change)
    assert store.load_states() == {"s1": state}
    assert counts_of(store) == (1, 0)
    assert open_events(store) == {"s1": event()}
