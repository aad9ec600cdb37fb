"""The embedded state store: scenario states and the events outbox in one SQLite file.

Why SQLite: the state must survive restarts (SPEC §6), a state change and the outbox row of
its event must commit together, and the daemon should need no server. SQLite gives
transactions in a single file with nothing to install (the standard library's ``sqlite3``).

Design:

- **Single writer.** ``Store.open`` takes an exclusive, non-blocking ``flock`` on a lock file
  beside the database (``<path>.lock``) and holds it until ``close``. A second monitord on
  the same state fails at start instead of interleaving writes with the first. The lock file
  is left in place on close: removing it would let two processes lock different files.
- **WAL, synchronous=NORMAL.** Readers (a ``sqlite3`` shell, a backup) never block the
  daemon, and a commit is one append to ``<path>-wal``. With NORMAL a commit survives a crash
  of the process, but a power loss or kernel crash may lose the last few commits (never
  corrupt the file). That is the trade a monitor wants: after such a loss the next runs
  re-establish the state.
- **Migrations.** ``MIGRATIONS[i]`` takes the schema from version ``i`` to ``i + 1``; the
  version lives in ``PRAGMA user_version``. Each step runs in its own transaction together
  with the version bump, so a failed step leaves the previous version intact. A file written
  by a newer monitord is refused and left untouched.
- **Autocommit connection, explicit transactions.** The connection runs with
  ``isolation_level=None``; every write goes through ``transaction()`` (``BEGIN IMMEDIATE`` …
  ``COMMIT``, ``ROLLBACK`` on any error), so nothing is ever committed implicitly.
- **Errors.** Whatever makes the store unusable is a ``StoreError`` whose message names the
  file and the cause in plain words; database errors while running are ``StoreError`` too.
  A saved state that cannot be decoded is skipped with a warning: the daemon must start.

Calls are synchronous and short (small rows, WAL appends); the store is used from the event
loop thread only.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitord import jsonout
from monitord.model import (
    BatchPayload,
    FailureKind,
    Outcome,
    Result,
    ScenarioType,
    utc_isoformat,
)
from monitord.tracker import ScenarioState, Status

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000

MIGRATIONS: tuple[str, ...] = (
    # 1: one row per scenario; last_result is the §5 result object plus "failureKind".
    """
    CREATE TABLE scenario_state (
        scenario_id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        consecutive_failures INTEGER NOT NULL,
        failing_since TEXT,
        opened_kind TEXT,
        last_result TEXT,
        updated_at TEXT NOT NULL
    );
    """,
    # 2: the events outbox (SPEC §6). open_event: the event of each failing scenario, so a
    # restart neither re-opens nor forgets it. outbox: events committed and not yet
    # acknowledged, sent in seq order per scenario; AUTOINCREMENT so a seq is never reused
    # and a re-queued dead letter can take its old place. dead_letter: given up on, kept
    # until re-queued. delivered: a bounded history of acknowledged events and the sink's
    # answer (eventIngestResults).
    """
    CREATE TABLE open_event (
        scenario_id TEXT PRIMARY KEY,
        event_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        title TEXT NOT NULL,
        entity_selector TEXT,
        failing_since TEXT NOT NULL,
        opened_at TEXT NOT NULL,
        refreshed_at TEXT NOT NULL,
        properties TEXT NOT NULL
    );
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        scenario_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        event_type TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at TEXT NOT NULL,
        queued_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        last_error TEXT
    );
    CREATE INDEX outbox_by_scenario ON outbox (scenario_id, seq);
    CREATE INDEX outbox_by_event ON outbox (event_id);
    CREATE TABLE dead_letter (
        seq INTEGER PRIMARY KEY,
        scenario_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        event_type TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        last_error TEXT NOT NULL,
        dead_at TEXT NOT NULL,
        ingest_results TEXT
    );
    CREATE TABLE delivered (
        seq INTEGER PRIMARY KEY,
        scenario_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        event_type TEXT NOT NULL,
        created_at TEXT NOT NULL,
        delivered_at TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        ingest_results TEXT
    );
    """,
    # 3: the last payload of each BATCH scenario and the verdict on it (SPEC §7), kept so that
    # a restart knows when the last one came and what it said.
    """
    CREATE TABLE batch_payload (
        scenario_id TEXT PRIMARY KEY,
        request_id TEXT NOT NULL,
        received_at TEXT NOT NULL,
        client TEXT NOT NULL,
        body BLOB NOT NULL,
        result TEXT NOT NULL
    );
    """,
)


class StoreError(Exception):
    """The state store cannot be used; the message tells an operator what to fix."""


class Store:
    def __init__(self, path: Path, connection: sqlite3.Connection, lock_fd: int) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = connection
        self._lock_fd = lock_fd

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (creating it on first start) the store at ``path`` and lock it."""
        folder = path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _error(path, f"cannot create folder {folder}: {_why(exc)}") from exc
        if not os.access(folder, os.W_OK | os.X_OK):
            raise _error(path, f"folder {folder} is not writable")
        if path.exists() and not path.is_file():
            raise _error(path, "is not a regular file")
        if path.exists() and not os.access(path, os.R_OK | os.W_OK):
            raise _error(path, "the file is not readable and writable")
        lock_fd = _lock(path)
        connection: sqlite3.Connection | None = None
        try:
            connection = sqlite3.connect(path, isolation_level=None)
            _prepare(path, connection)
        except BaseException as exc:
            if connection is not None:
                connection.close()
            _unlock(lock_fd)
            if isinstance(exc, sqlite3.Error):
                raise _error(path, _sqlite_why(exc)) from exc
            raise
        return cls(path, connection, lock_fd)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def schema_version(self) -> int:
        return _user_version(self._open_connection())

    def load_states(self) -> dict[str, ScenarioState]:
        """Every saved state, keyed by scenario id; rows that cannot be decoded are skipped."""
        try:
            rows = self._open_connection().execute(
                "SELECT scenario_id, status, consecutive_failures, failing_since, opened_kind,"
                " last_result FROM scenario_state ORDER BY scenario_id"
            )
            states: dict[str, ScenarioState] = {}
            for scenario_id, *columns in rows:
                try:
                    states[str(scenario_id)] = _decode_state(*columns)
                except (ValueError, TypeError, KeyError, OverflowError) as exc:
                    log.warning(
                        "state store %s: skipped the saved state of scenario %s,"
                        " which cannot be read (%s); it starts as unknown",
                        self._path,
                        scenario_id,
                        exc,
                        extra={"scenario_id": str(scenario_id)},
                    )
            return states
        except sqlite3.Error as exc:
            raise _error(self._path, _sqlite_why(exc)) from exc

    def load_payload_times(self) -> dict[str, datetime]:
        """When the last payload of each BATCH scenario arrived; unreadable rows are skipped."""
        times: dict[str, datetime] = {}
        with self.reading() as connection:
            rows = connection.execute("SELECT scenario_id, received_at FROM batch_payload")
            for scenario_id, received_at in rows:
                try:
                    times[str(scenario_id)] = parse_time(received_at)
                except (ValueError, TypeError) as exc:
                    log.warning("state store %s: skipped a payload time (%s)", self._path, exc)
        return times

    def last_payload(self, scenario_id: str) -> BatchPayload | None:
        """The last payload of a BATCH scenario, or None (never one, or unreadable)."""
        with self.reading() as connection:
            row = connection.execute(
                "SELECT request_id, received_at, client, body, result FROM batch_payload"
                " WHERE scenario_id = ?",
                (scenario_id,),
            ).fetchone()
        if row is None:
            return None
        request_id, received_at, client, body, result = row
        try:
            return BatchPayload(
                request_id=str(request_id),
                received_at=parse_time(received_at),
                client=str(client),
                body=bytes(body),
                result=_decode_result(result),
            )
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            log.warning(
                "state store %s: the last payload of %s is unreadable (%s)",
                self._path,
                scenario_id,
                exc,
            )
            return None

    def save_state(self, scenario_id: str, state: ScenarioState) -> None:
        """Insert or replace the state of one scenario, in one committed transaction."""
        with self.transaction() as connection:
            put_state(connection, scenario_id, state)

    def delete_states(self, scenario_ids: Iterable[str]) -> None:
        """Forget the states of these scenarios (unknown ids are ignored), in one transaction."""
        with self.transaction() as connection:
            remove_states(connection, scenario_ids)

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection for reads outside a transaction; database errors as ``StoreError``."""
        try:
            yield self._open_connection()
        except sqlite3.Error as exc:
            raise _error(self._path, _sqlite_why(exc)) from exc

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; any exception rolls back and propagates.

        Database errors come out as ``StoreError``; other exceptions unchanged.
        """
        connection = self._open_connection()
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield connection
            connection.execute("COMMIT")
        except BaseException as exc:
            if connection.in_transaction:
                with suppress(sqlite3.Error):  # the first error is the one to report
                    connection.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise _error(self._path, _sqlite_why(exc)) from exc
            raise

    def close(self) -> None:
        """Close the database and release the lock; closing twice does nothing."""
        if self._connection is None:
            return
        connection, self._connection = self._connection, None
        try:
            connection.close()
        finally:
            _unlock(self._lock_fd)

    def _open_connection(self) -> sqlite3.Connection:
        if self._connection is None:
            raise _error(self._path, "is closed")
        return self._connection


# --- writes inside a transaction --------------------------------------------------------------


_PUT_STATE = (
    "INSERT INTO scenario_state (scenario_id, status, consecutive_failures,"
    " failing_since, opened_kind, last_result, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (scenario_id) DO UPDATE SET status = excluded.status,"
    " consecutive_failures = excluded.consecutive_failures,"
    " failing_since = excluded.failing_since, opened_kind = excluded.opened_kind,"
    " last_result = excluded.last_result, updated_at = excluded.updated_at"
)
_PUT_PAYLOAD = (
    "INSERT INTO batch_payload (scenario_id, request_id, received_at, client, body, result)"
    " VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (scenario_id) DO UPDATE SET request_id = excluded.request_id,"
    " received_at = excluded.received_at, client = excluded.client,"
    " body = excluded.body, result = excluded.result"
)


def put_state(connection: sqlite3.Connection, scenario_id: str, state: ScenarioState) -> None:
    """Insert or replace the state of one scenario within the caller's transaction."""
    put_states(connection, [(scenario_id, state)])


def put_states(connection: sqlite3.Connection, states: Iterable[tuple[str, ScenarioState]]) -> None:
    """Insert or replace the states of scenarios within the caller's transaction."""
    updated_at = format_time(datetime.now(UTC))
    connection.executemany(
        _PUT_STATE, (_state_row(scenario_id, state, updated_at) for scenario_id, state in states)
    )


def _state_row(scenario_id: str, state: ScenarioState, updated_at: str) -> tuple[Any, ...]:
    result = state.last_result
    return (
        scenario_id,
        state.status.value,
        state.consecutive_failures,
        None if state.failing_since is None else format_time(state.failing_since),
        None if state.opened_kind is None else state.opened_kind.value,
        None if result is None else _encode_result(result),
        updated_at,
    )


def put_payload(connection: sqlite3.Connection, scenario_id: str, payload: BatchPayload) -> None:
    """Keep ``payload`` as the last one of its scenario, within the caller's transaction."""
    put_payloads(connection, [(scenario_id, payload)])


def put_payloads(
    connection: sqlite3.Connection, payloads: Iterable[tuple[str, BatchPayload]]
) -> None:
    """Keep each payload as the last one of its scenario, within the caller's transaction
    (one statement for all: a receiver under load writes dozens per transaction)."""
    connection.executemany(
        _PUT_PAYLOAD,
        (
            (
                scenario_id,
                payload.request_id,
                format_time(payload.received_at),
                payload.client,
                payload.body,
                _encode_result(payload.result),
            )
            for scenario_id, payload in payloads
        ),
    )


def remove_states(connection: sqlite3.Connection, scenario_ids: Iterable[str]) -> None:
    ids = [(i,) for i in scenario_ids]
    connection.executemany("DELETE FROM batch_payload WHERE scenario_id = ?", ids)
    connection.executemany("DELETE FROM scenario_state WHERE scenario_id = ?", ids)


# --- opening ---------------------------------------------------------------------------------


def _lock(path: Path) -> int:
    """Create and exclusively lock ``<path>.lock``; the returned descriptor holds the lock."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise _error(path, f"cannot create {lock_path}: {_why(exc)}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        try:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
        except OSError:
            holder = ""
        finally:
            os.close(fd)
        if isinstance(exc, BlockingIOError):
            pid = f" (pid {holder})" if holder.isdigit() else ""
            raise _error(path, f"in use by another monitord process{pid}") from exc
        raise _error(path, f"cannot lock {lock_path}: {_why(exc)}") from exc
    with suppress(OSError):  # only to name the holder in a second process's message
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return fd


def _unlock(fd: int) -> None:
    with suppress(OSError):
        os.ftruncate(fd, 0)
    os.close(fd)  # closing the only descriptor releases the flock


def _prepare(path: Path, connection: sqlite3.Connection) -> None:
    """Check the version before touching the file, then set it up and migrate it."""
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    version = _user_version(connection)  # the first read: fails here if it is no database
    if version > len(MIGRATIONS):
        raise _error(
            path,
            f"written by a newer monitord (schema {version}, this version knows {len(MIGRATIONS)})",
        )
    (mode,) = connection.execute("PRAGMA journal_mode = WAL").fetchone()
    if str(mode).lower() != "wal":
        raise _error(
            path,
            f"cannot use write-ahead logging (journal mode stays {mode!r});"
            " put the state on a local filesystem",
        )
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute("PRAGMA foreign_keys = ON")
    for step in range(version, len(MIGRATIONS)):
        # executescript commits a pending transaction first, so BEGIN and COMMIT are part of
        # the script: the step and its version bump commit together or not at all.
        try:
            connection.executescript(
                f"BEGIN IMMEDIATE;\n{MIGRATIONS[step]}\nPRAGMA user_version = {step + 1};\nCOMMIT;"
            )
        except sqlite3.Error:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
    # Take the write lock once now: another process holding it (a sqlite3 shell inside a
    # transaction, a backup tool) fails the start with a clear message instead of the
    # first state change failing later.
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("ROLLBACK")


def _user_version(connection: sqlite3.Connection) -> int:
    (version,) = connection.execute("PRAGMA user_version").fetchone()
    return int(version)


def _error(path: Path, cause: str) -> StoreError:
    return StoreError(f"state store {path}: {cause}")


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _sqlite_why(exc: sqlite3.Error) -> str:
    code = getattr(exc, "sqlite_errorcode", None)
    if code == sqlite3.SQLITE_NOTADB:
        return "not a SQLite database"
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return (
            f"locked by another process ({exc}); stop the program holding it"
            " (a sqlite3 shell inside a transaction, a backup tool) and try again"
        )
    return str(exc)


# --- rows ------------------------------------------------------------------------------------


def format_time(moment: datetime) -> str:
    """ISO-8601 UTC with microseconds: ``2026-11-23T10:00:00.123456Z``."""
    text = utc_isoformat(moment)
    return text[:26] + "Z" if moment.microsecond else text[:19] + ".000000Z"


def parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"time {value!r} is not text")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"time {value!r} has no time zone")
    return moment.astimezone(UTC)


def _encode_result(result: Result) -> str:
    data: dict[str, Any] = dict(result.to_json())
    data["failureKind"] = None if result.failure_kind is None else result.failure_kind.value
    return jsonout.dumps(data)


def _decode_state(
    status: Any,
    consecutive_failures: Any,
    failing_since: Any,
    opened_kind: Any,
    last_result: Any,
) -> ScenarioState:
    """One row's columns as read; anything out of place raises ValueError or TypeError."""
    if not isinstance(consecutive_failures, int) or consecutive_failures < 0:
        raise ValueError(f"consecutive_failures {consecutive_failures!r} is no count")
    result = None
    if last_result is not None:
        if not isinstance(last_result, str):
            raise TypeError("last_result is not text")
        result = _decode_result(last_result)
    return ScenarioState(
        status=Status(status),
        consecutive_failures=consecutive_failures,
        failing_since=None if failing_since is None else parse_time(failing_since),
        opened_kind=None if opened_kind is None else FailureKind(opened_kind),
        last_result=result,
    )


def _decode_result(text: str) -> Result:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise TypeError("last_result is not a JSON object")
    reasons = data["reasons"]
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise TypeError("reasons is not a list of text")
    kind = data["failureKind"]
    return Result(
        scenario_id=_text(data, "scenarioId"),
        scenario_name=_text(data, "scenarioName"),
        scenario_type=ScenarioType(data["scenarioType"]),
        outcome=Outcome(data["result"]),
        reasons=tuple(reasons),
        started_at=parse_time(data["startedAt"]),
        duration_ms=_number(data, "durationMs"),
        status_code=_optional_int(data, "statusCode"),
        response_bytes=_optional_int(data, "responseBytes"),
        failure_kind=None if kind is None else FailureKind(kind),
    )


def _text(data: dict[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise TypeError(f"{key} is not text")
    return value


def _number(data: dict[str, Any], key: str) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{key} is not a number")
    return float(value)


def _optional_int(data: dict[str, Any], key: str) -> int | None:
    value = data[key]
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"{key} is not an integer")
    return value
