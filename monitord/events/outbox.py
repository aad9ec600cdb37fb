"""The durable outbox (SPEC §6): event messages in the state store until acknowledged.

A message is written in the same transaction as the state change that caused it, before
any network call; the delivery worker sends each scenario's messages in ``seq`` order and
removes a message only when the sink acknowledged it (it then moves to a bounded
``delivered`` history with the sink's answer) or when it is given up on (it then moves to
``dead_letter``, where it stays until re-queued). The tables are created by the store's
schema migration 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from monitord import jsonout
from monitord.events.body import MessageKind, OpenEvent
from monitord.model import EventType
from monitord.store import Store, format_time, parse_time

log = logging.getLogger(__name__)

DELIVERED_HISTORY = 1000  # acknowledged messages kept for inspection
MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class Message:
    """One event message to queue."""

    scenario_id: str
    event_id: str
    kind: MessageKind
    event_type: EventType
    body: Mapping[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EventChange:
    """What one state change does to events; written in that change's transaction."""

    messages: tuple[Message, ...] = ()
    opened: tuple[OpenEvent, ...] = ()  # open events inserted or updated
    ended: tuple[str, ...] = ()  # scenario ids whose open event ends

    def __bool__(self) -> bool:
        return bool(self.messages or self.opened or self.ended)


NO_CHANGE = EventChange()


@dataclass(frozen=True, slots=True)
class Row:
    """A queued (or dead) message as stored."""

    seq: int
    scenario_id: str
    event_id: str
    kind: str
    event_type: str
    body: str
    created_at: str
    attempts: int
    last_error: str | None
    next_attempt_at: float = 0.0  # pending only (unix seconds)
    queued_at: str | None = None  # pending only: created or re-queued
    dead_at: str | None = None  # dead letters only

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.seq,
            "scenarioId": self.scenario_id,
            "eventId": self.event_id,
            "kind": self.kind,
            "eventType": self.event_type,
            "createdAt": self.created_at,
            "attempts": self.attempts,
            "lastError": self.last_error,
        }
        if self.dead_at is None:
            data["queuedAt"] = self.queued_at
            data["nextAttemptAt"] = (
                format_time(datetime.fromtimestamp(self.next_attempt_at, UTC))
                if self.next_attempt_at
                else None
            )
        else:
            data["deadAt"] = self.dead_at
        try:
            data["event"] = json.loads(self.body)
        except ValueError:
            data["event"] = None
        return data


@dataclass(frozen=True, slots=True)
class Requeued:
    requeued: tuple[Row, ...]
    kept: tuple[tuple[int, str], ...]  # (id, why it stays a dead letter)
    unknown: tuple[int, ...]


# --- SQL within a transaction ------------------------------------------------------------

# Only the oldest message of each scenario may be sent: order per scenario.
_DUE_HEADS = """
    SELECT o.seq, o.scenario_id, o.event_id, o.kind, o.event_type, o.body, o.created_at,
           o.attempts, o.last_error, o.next_attempt_at, o.queued_at
    FROM outbox o JOIN (SELECT MIN(seq) AS seq FROM outbox GROUP BY scenario_id) h
         ON o.seq = h.seq
    WHERE o.next_attempt_at <= ? ORDER BY o.seq LIMIT ?
"""
_NEXT_ATTEMPT = """
    SELECT MIN(o.next_attempt_at)
    FROM outbox o JOIN (SELECT MIN(seq) AS seq FROM outbox GROUP BY scenario_id) h
         ON o.seq = h.seq
"""
_PENDING = """
    SELECT seq, scenario_id, event_id, kind, event_type, body, created_at, attempts,
           last_error, next_attempt_at, queued_at
    FROM outbox ORDER BY seq LIMIT ?
"""
_DEAD = """
    SELECT seq, scenario_id, event_id, kind, event_type, body, created_at, attempts,
           last_error, dead_at
    FROM dead_letter ORDER BY seq LIMIT ?
"""
_DEAD_BY_ID = """
    SELECT seq, scenario_id, event_id, kind, event_type, body, created_at, attempts,
           last_error, dead_at
    FROM dead_letter WHERE seq IN (SELECT value FROM json_each(?)) ORDER BY seq
"""


def write_change(connection: sqlite3.Connection, change: EventChange) -> None:
    for message in change.messages:
        created = format_time(message.created_at)
        connection.execute(
            "INSERT INTO outbox (scenario_id, event_id, kind, event_type, body, created_at,"
            " queued_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                message.scenario_id,
                message.event_id,
                message.kind.value,
                message.event_type.value,
                _json(message.body),
                created,
                created,
            ),
        )
    # Ends before opens: a change may end a period and open the next of the same scenario.
    connection.executemany(
        "DELETE FROM open_event WHERE scenario_id = ?", [(sid,) for sid in change.ended]
    )
    for event in change.opened:
        connection.execute(
            "INSERT OR REPLACE INTO open_event (scenario_id, event_id, event_type, title,"
            " entity_selector, failing_since, opened_at, refreshed_at, properties)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event.scenario_id,
                event.event_id,
                event.event_type.value,
                event.title,
                event.entity_selector,
                format_time(event.failing_since),
                format_time(event.opened_at),
                format_time(event.refreshed_at),
                _json(event.properties),
            ),
        )


def read_open_events(connection: sqlite3.Connection) -> dict[str, OpenEvent]:
    """Every open event by scenario id; a row that cannot be read is skipped and logged."""
    events: dict[str, OpenEvent] = {}
    for row in connection.execute(
        "SELECT scenario_id, event_id, event_type, title, entity_selector, failing_since,"
        " opened_at, refreshed_at, properties FROM open_event ORDER BY scenario_id"
    ):
        try:
            events[row[0]] = _decode_open_event(row)
        except (ValueError, TypeError) as exc:
            log.warning(
                "state store: skipped the open event of scenario %s, which cannot be read (%s)",
                row[0],
                exc,
                extra={"scenario_id": str(row[0])},
            )
    return events


def has_pending(connection: sqlite3.Connection, event_id: str) -> bool:
    found = connection.execute("SELECT 1 FROM outbox WHERE event_id = ? LIMIT 1", (event_id,))
    return found.fetchone() is not None


def due_heads(
    connection: sqlite3.Connection, now_s: float, limit: int, busy: Iterable[str] = ()
) -> list[Row]:
    """Up to ``limit`` messages that may be sent now: each the oldest of its scenario,
    its retry time passed, its scenario not in ``busy`` (a send still in flight)."""
    skip = set(busy)
    rows = connection.execute(_DUE_HEADS, (now_s, limit + len(skip)))
    return [r for r in map(_pending_row, rows) if r.scenario_id not in skip][:limit]


def next_attempt_at(connection: sqlite3.Connection) -> float | None:
    """When the earliest waiting message may be sent; None when the outbox is empty."""
    (when,) = connection.execute(_NEXT_ATTEMPT).fetchone()
    return None if when is None else float(when)


def mark_delivered(
    connection: sqlite3.Connection,
    row: Row,
    ingest_results: Sequence[Mapping[str, Any]] | None,
    now: datetime,
) -> None:
    connection.execute("DELETE FROM outbox WHERE seq = ?", (row.seq,))
    connection.execute(
        "INSERT OR REPLACE INTO delivered (seq, scenario_id, event_id, kind, event_type,"
        " created_at, delivered_at, attempts, ingest_results) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row.seq,
            row.scenario_id,
            row.event_id,
            row.kind,
            row.event_type,
            row.created_at,
            format_time(now),
            row.attempts + 1,
            None if ingest_results is None else _json(list(ingest_results)),
        ),
    )
    connection.execute(
        "DELETE FROM delivered WHERE seq <= (SELECT seq FROM delivered ORDER BY seq DESC"
        " LIMIT 1 OFFSET ?)",
        (DELIVERED_HISTORY,),
    )


def mark_retry(connection: sqlite3.Connection, row: Row, error: str, retry_at_s: float) -> None:
    connection.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?"
        " WHERE seq = ?",
        (_clip(error), retry_at_s, row.seq),
    )


def mark_dead(
    connection: sqlite3.Connection,
    row: Row,
    error: str,
    now: datetime,
    *,
    attempted: bool,
    ingest_results: Sequence[Mapping[str, Any]] | None = None,
) -> None:
    connection.execute("DELETE FROM outbox WHERE seq = ?", (row.seq,))
    connection.execute(
        "INSERT OR REPLACE INTO dead_letter (seq, scenario_id, event_id, kind, event_type,"
        " body, created_at, attempts, last_error, dead_at, ingest_results)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row.seq,
            row.scenario_id,
            row.event_id,
            row.kind,
            row.event_type,
            row.body,
            row.created_at,
            row.attempts + int(attempted),
            _clip(error),
            format_time(now),
            None if ingest_results is None else _json(list(ingest_results)),
        ),
    )


def requeue(connection: sqlite3.Connection, ids: Sequence[int] | None, now: datetime) -> Requeued:
    """Move dead letters (all, or those with these ids) back to the outbox at their old place.

    Messages of a failure period that has ended are only re-queued together with its close:
    an open or refresh sent alone after the close went through would re-open a problem
    that nothing closes again.
    """
    if ids is None:
        dead = [_dead_row(r) for r in connection.execute(_DEAD, (-1,))]  # LIMIT -1: all
        unknown: tuple[int, ...] = ()
    else:
        wanted = sorted(set(ids))
        dead = [_dead_row(r) for r in connection.execute(_DEAD_BY_ID, (_json(wanted),))]
        found = {r.seq for r in dead}
        unknown = tuple(i for i in wanted if i not in found)
    open_ids = {eid for (eid,) in connection.execute("SELECT event_id FROM open_event")}
    closing = {r.event_id for r in dead if r.kind == MessageKind.CLOSE.value}
    queued = format_time(now)
    requeued: list[Row] = []
    kept: list[tuple[int, str]] = []
    for row in dead:
        if row.kind != MessageKind.CLOSE.value and row.event_id not in open_ids | closing:
            kept.append(
                (
                    row.seq,
                    "its failure period has ended: sent alone it would re-open a closed problem",
                )
            )
            continue
        connection.execute("DELETE FROM dead_letter WHERE seq = ?", (row.seq,))
        connection.execute(
            "INSERT INTO outbox (seq, scenario_id, event_id, kind, event_type, body, created_at,"
            " queued_at, attempts, next_attempt_at, last_error)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?)",
            (
                row.seq,
                row.scenario_id,
                row.event_id,
                row.kind,
                row.event_type,
                row.body,
                row.created_at,
                queued,
                row.last_error,
            ),
        )
        requeued.append(row)
    return Requeued(tuple(requeued), tuple(kept), unknown)


def counts(connection: sqlite3.Connection) -> tuple[int, int]:
    """(pending messages, dead letters)."""
    (pending,) = connection.execute("SELECT COUNT(*) FROM outbox").fetchone()
    (dead,) = connection.execute("SELECT COUNT(*) FROM dead_letter").fetchone()
    return int(pending), int(dead)


def pending_rows(connection: sqlite3.Connection, limit: int) -> list[Row]:
    return [_pending_row(r) for r in connection.execute(_PENDING, (limit,))]


def dead_rows(connection: sqlite3.Connection, limit: int) -> list[Row]:
    return [_dead_row(r) for r in connection.execute(_DEAD, (limit,))]


def delivered_rows(
    connection: sqlite3.Connection, limit: int, event_id: str | None = None
) -> list[dict[str, Any]]:
    """The last ``limit`` acknowledged messages (of one event, if given), oldest first, with
    the sink's answers: where an operator finds the platform's correlation ids."""
    rows = connection.execute(
        "SELECT seq, scenario_id, event_id, kind, event_type, delivered_at, attempts,"
        " ingest_results FROM delivered WHERE ?1 IS NULL OR event_id = ?1"
        " ORDER BY seq DESC LIMIT ?2",
        (event_id, limit),
    )
    return [
        {
            "id": seq,
            "scenarioId": sid,
            "eventId": eid,
            "kind": kind,
            "eventType": etype,
            "deliveredAt": at,
            "attempts": attempts,
            "ingestResults": None if results is None else json.loads(results),
        }
        for seq, sid, eid, kind, etype, at, attempts, results in reversed(rows.fetchall())
    ]


# --- the outbox of a running daemon --------------------------------------------------------


class Outbox:
    """The outbox over an open store, with a signal for the delivery worker."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._queued = asyncio.Event()

    def notify(self) -> None:
        """Something may be ready to send: wake the worker."""
        self._queued.set()

    async def wait_queued(self, timeout_s: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queued.wait(), timeout_s)
        self._queued.clear()

    def open_events(self) -> dict[str, OpenEvent]:
        with self.store.reading() as connection:
            return read_open_events(connection)

    def has_pending(self, event_id: str) -> bool:
        with self.store.reading() as connection:
            return has_pending(connection, event_id)

    def counts(self) -> tuple[int, int]:
        with self.store.reading() as connection:
            return counts(connection)

    def listing(self, limit: int) -> dict[str, Any]:
        with self.store.reading() as connection:
            pending, dead = counts(connection)
            return {
                "pending": {
                    "count": pending,
                    "events": [r.to_json() for r in pending_rows(connection, limit)],
                },
                "deadLetters": {
                    "count": dead,
                    "events": [r.to_json() for r in dead_rows(connection, limit)],
                },
                "delivered": {"events": delivered_rows(connection, limit)},
            }

    def requeue(self, ids: Sequence[int] | None, now: datetime) -> Requeued:
        with self.store.transaction() as connection:
            result = requeue(connection, ids, now)
        if result.requeued:
            self.notify()
        return result


# --- rows --------------------------------------------------------------------------------


def _pending_row(values: Sequence[Any]) -> Row:
    return _row(values, next_attempt_at=float(values[9]), queued_at=str(values[10]))


def _dead_row(values: Sequence[Any]) -> Row:
    return _row(values, dead_at=str(values[9]))


def _row(values: Sequence[Any], **own: Any) -> Row:
    """The columns pending messages and dead letters share come first, in this order."""
    seq, sid, eid, kind, etype, body, created, attempts, error = values[:9]
    return Row(
        seq=int(seq),
        scenario_id=str(sid),
        event_id=str(eid),
        kind=str(kind),
        event_type=str(etype),
        body=str(body),
        created_at=str(created),
        attempts=int(attempts),
        last_error=error,
        **own,
    )


def _decode_open_event(row: Sequence[Any]) -> OpenEvent:
    sid, eid, etype, title, selector, since, opened, refreshed, props = row
    properties = json.loads(props)
    if not isinstance(properties, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in properties.items()
    ):
        raise TypeError("properties is not a map of text")
    if not isinstance(eid, str) or not isinstance(title, str):
        raise TypeError("event id or title is not text")
    return OpenEvent(
        scenario_id=str(sid),
        event_id=eid,
        event_type=EventType(etype),
        title=title,
        entity_selector=None if selector is None else str(selector),
        failing_since=parse_time(since),
        opened_at=parse_time(opened),
        refreshed_at=parse_time(refreshed),
        properties=properties,
    )


def _json(value: Any) -> str:
    return jsonout.dumps(value)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"
