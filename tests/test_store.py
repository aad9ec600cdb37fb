"""The state store on real SQLite files: schema, round trips, locking, durability, bad files."""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitord import store as store_module
from monitord.model import FailureKind, Outcome, Result, ScenarioType, format_timestamp
from monitord.store import MIGRATIONS, Store, StoreError
from monitord.tracker import ScenarioState, Status

REPO = Path(__file__).resolve().parent.parent
STARTED = datetime(2026, 11, 23, 10, 0, 0, 123000, tzinfo=UTC)
SINCE = datetime(2026, 11, 23, 9, 58, 30, 456789, tzinfo=UTC)


def make_result(
    outcome: Outcome = Outcome.SUCCESS,
    kind: FailureKind | None = None,
    *,
    scenario_id: str = "s1",
    status_code: int | None = 200,
    response_bytes: int | None = 512,
    duration_ms: float = 12.5,
) -> Result:
    return Result(
        scenario_id=scenario_id,
        scenario_name="shop api health — 상점",
        scenario_type=ScenarioType.API,
        outcome=outcome,
        reasons=() if outcome is Outcome.SUCCESS else ("$.numErrors LTE 0: got 3", "second"),
        started_at=STARTED,
        duration_ms=duration_ms,
        status_code=status_code,
        response_bytes=response_bytes,
        failure_kind=kind,
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "state.sqlite3"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    opened = Store.open(db_path)
    yield opened
    opened.close()


def plain(path: Path) -> closing[sqlite3.Connection]:
    """A separate connection, as another reader (or a later process) would have."""
    return closing(sqlite3.connect(path, isolation_level=None))


def row_count(path: Path) -> int:
    with plain(path) as connection:
        (count,) = connection.execute("SELECT count(*) FROM scenario_state").fetchone()
    return int(count)


# --- opening -----------------------------------------------------------------------------


def test_first_open_creates_folders_file_schema_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "state.sqlite3"
    assert not path.parent.exists()
    opened = Store.open(path)
    try:
        assert opened.path == path
        assert path.is_file()
        assert (tmp_path / "a" / "b" / "state.sqlite3.lock").is_file()
        assert len(MIGRATIONS) == 3
        assert opened.schema_version == len(MIGRATIONS)
        with plain(path) as connection:
            assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert connection.execute("PRAGMA user_version").fetchone() == (3,)
            columns = [
                (name, kind, notnull, pk)
                for _, name, kind, notnull, _, pk in connection.execute(
                    "PRAGMA table_info(scenario_state)"
                )
            ]
        assert columns == [
            ("scenario_id", "TEXT", 0, 1),
            ("status", "TEXT", 1, 0),
            ("consecutive_failures", "INTEGER", 1, 0),
            ("failing_since", "TEXT", 0, 0),
            ("opened_kind", "TEXT", 0, 0),
            ("last_result", "TEXT", 0, 0),
            ("updated_at", "TEXT", 1, 0),
        ]
    finally:
        opened.close()


def test_connection_settings(store: Store) -> None:
    with store.transaction() as connection:
        assert connection.isolation_level is None
        assert connection.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
        assert connection.execute("PRAGMA foreign_keys").fetchone() == (1,)
        assert connection.execute("PRAGMA busy_timeout").fetchone() == (5000,)


def test_reopen_keeps_the_schema_version_and_data(db_path: Path) -> None:
    first = Store.open(db_path)
    first.save_state("s1", ScenarioState(Status.OK, 0, None, None, make_result()))
    first.close()
    first.close()  # idempotent
    second = Store.open(db_path)
    try:
        assert second.schema_version == 3
        assert second.load_states() == {
            "s1": ScenarioState(Status.OK, 0, None, None, make_result())
        }
    finally:
        second.close()


def test_closed_store_refuses_work(db_path: Path) -> None:
    closed = Store.open(db_path)
    closed.close()
    message = f"state store {db_path}: is closed"
    with pytest.raises(StoreError) as caught:
        closed.load_states()
    assert str(caught.value) == message
    with pytest.raises(StoreError, match="is closed"):
        closed.save_state("s1", ScenarioState())
    with pytest.raises(StoreError, match="is closed"), closed.transaction():
        pass


# --- round trips -------------------------------------------------------------------------

STATES = {
    "unknown-empty": ScenarioState(),
    "unknown-suppressed": ScenarioState(
        last_result=make_result(Outcome.SUPPRESSED, status_code=None, response_bytes=None)
    ),
    "ok-success": ScenarioState(Status.OK, 0, None, None, make_result()),
    "ok-within-limit": ScenarioState(
        Status.OK, 2, SINCE, None, make_result(Outcome.FAILURE, FailureKind.TIMEOUT)
    ),
    "failing-unavailable": ScenarioState(
        Status.FAILING,
        1,
        SINCE,
        FailureKind.UNAVAILABLE,
        make_result(Outcome.FAILURE, FailureKind.UNAVAILABLE, status_code=None),
    ),
    "failing-timeout-no-result": ScenarioState(Status.FAILING, 4, SINCE, FailureKind.TIMEOUT),
    "failing-wrong-answer": ScenarioState(
        Status.FAILING,
        7,
        SINCE,
        FailureKind.WRONG_ANSWER,
        make_result(Outcome.FAILURE, FailureKind.WRONG_ANSWER, status_code=500),
    ),
    # The store keeps what it is given; consistency is the tracker's business.
    "failing-bare": ScenarioState(Status.FAILING, 3),
}


@pytest.mark.parametrize("name", sorted(STATES))
def test_state_round_trip(store: Store, name: str) -> None:
    state = STATES[name]
    store.save_state(name, state)
    assert store.load_states() == {name: state}


def test_every_status_is_covered() -> None:
    assert {s.status for s in STATES.values()} == set(Status)
    assert {s.opened_kind for s in STATES.values()} == {None, *FailureKind}


def test_all_states_load_together(db_path: Path) -> None:
    first = Store.open(db_path)
    for name, state in STATES.items():
        first.save_state(name, state)
    first.close()
    second = Store.open(db_path)
    try:
        assert second.load_states() == STATES
    finally:
        second.close()


@pytest.mark.parametrize(
    ("outcome", "kind", "codes"),
    list(itertools.product(Outcome, [None, *FailureKind], [(None, None), (200, 1024)])),
)
def test_result_round_trip(
    store: Store,
    outcome: Outcome,
    kind: FailureKind | None,
    codes: tuple[int | None, int | None],
) -> None:
    status_code, response_bytes = codes
    result = make_result(outcome, kind, status_code=status_code, response_bytes=response_bytes)
    store.save_state("s1", ScenarioState(Status.OK, 0, None, None, result))
    loaded = store.load_states()["s1"].last_result
    assert loaded == result
    assert loaded is not None
    assert loaded.scenario_type is ScenarioType.API
    assert loaded.outcome is outcome
    assert loaded.failure_kind is kind


def test_times_come_back_as_aware_utc(store: Store) -> None:
    seoul = timezone(timedelta(hours=9))
    since = datetime(2026, 11, 23, 19, 0, 0, 654321, tzinfo=seoul)
    result = Result(
        "s1", "n", ScenarioType.TCP, Outcome.FAILURE, ("x",), since, 1.0, None, None, None
    )
    store.save_state("s1", ScenarioState(Status.OK, 1, since, None, result))
    loaded = store.load_states()["s1"]
    assert loaded.failing_since == since  # the same instant, microseconds kept
    assert loaded.failing_since is not None
    assert loaded.failing_since.utcoffset() == timedelta(0)
    assert loaded.failing_since.hour == 10
    assert loaded.last_result is not None
    # The result object is kept as SPEC §5 writes it: milliseconds.
    assert loaded.last_result.started_at == datetime(2026, 11, 23, 10, 0, 0, 654000, tzinfo=UTC)
    assert loaded.last_result.started_at.utcoffset() == timedelta(0)


def test_duration_is_kept_as_the_result_object_rounds_it(store: Store) -> None:
    store.save_state("s1", ScenarioState(last_result=make_result(duration_ms=12.3456)))
    loaded = store.load_states()["s1"].last_result
    assert loaded is not None
    assert loaded.duration_ms == 12.3


def test_stored_columns(store: Store, db_path: Path) -> None:
    result = make_result(Outcome.FAILURE, FailureKind.TIMEOUT, status_code=None)
    store.save_state("s1", ScenarioState(Status.FAILING, 2, SINCE, FailureKind.TIMEOUT, result))
    with plain(db_path) as connection:
        row = connection.execute(
            "SELECT status, consecutive_failures, failing_since, opened_kind, last_result,"
            " updated_at FROM scenario_state WHERE scenario_id = 's1'"
        ).fetchone()
    status, failures, since, kind, last_result, updated_at = row
    assert (status, failures, since, kind) == (
        "failing",
        2,
        "2026-11-23T09:58:30.456789Z",
        "timeout",
    )
    assert json.loads(last_result) == {**result.to_json(), "failureKind": "timeout"}
    written = datetime.fromisoformat(updated_at)
    assert updated_at.endswith("Z")
    assert abs(datetime.now(UTC) - written) < timedelta(minutes=1)


def test_upsert_overwrites(store: Store, db_path: Path) -> None:
    store.save_state("s1", ScenarioState(Status.OK, 0, None, None, make_result()))
    failing = ScenarioState(
        Status.FAILING,
        1,
        SINCE,
        FailureKind.WRONG_ANSWER,
        make_result(Outcome.FAILURE, FailureKind.WRONG_ANSWER),
    )
    store.save_state("s1", failing)
    assert store.load_states() == {"s1": failing}
    store.save_state("s1", ScenarioState())  # back to nothing: the NULLs overwrite too
    assert store.load_states() == {"s1": ScenarioState()}
    assert row_count(db_path) == 1


def test_delete_states(store: Store) -> None:
    for scenario_id in ("a", "b", "c"):
        store.save_state(scenario_id, ScenarioState(Status.OK))
    store.delete_states(i for i in ("a", "c", "never-saved"))
    assert store.load_states() == {"b": ScenarioState(Status.OK)}
    store.delete_states([])
    assert store.load_states() == {"b": ScenarioState(Status.OK)}


def test_a_commit_is_visible_without_close(db_path: Path) -> None:
    """As after a crash: nothing waits for close, a saved state is in the file."""
    running = Store.open(db_path)
    try:
        running.save_state("s1", ScenarioState(Status.FAILING, 2, SINCE, FailureKind.TIMEOUT))
        with plain(db_path) as connection:
            row = connection.execute(
                "SELECT status, consecutive_failures, opened_kind FROM scenario_state"
                " WHERE scenario_id = 's1'"
            ).fetchone()
        assert row == ("failing", 2, "timeout")
    finally:
        running.close()


# --- transactions ------------------------------------------------------------------------

INSERT = (
    "INSERT INTO scenario_state (scenario_id, status, consecutive_failures, updated_at)"
    " VALUES (?, 'ok', 0, '2026-11-23T10:00:00.000000Z')"
)


def test_transaction_commits(store: Store, db_path: Path) -> None:
    with store.transaction() as connection:
        connection.execute(INSERT, ("s1",))
        inside = connection.in_transaction
    assert inside
    assert not connection.in_transaction
    assert row_count(db_path) == 1


def insert_twice(store: Store, then: Exception | None) -> None:
    with store.transaction() as connection:
        connection.execute(INSERT, ("s1",))
        connection.execute(INSERT, ("s2" if then else "s1",))
        if then:
            raise then


def test_transaction_rolls_back_on_error(store: Store, db_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        insert_twice(store, RuntimeError("boom"))
    assert store.load_states() == {}
    assert row_count(db_path) == 0
    with store.transaction() as connection:  # nothing left open
        connection.execute(INSERT, ("s3",))
    assert row_count(db_path) == 1


def test_transaction_turns_database_errors_into_store_errors(store: Store, db_path: Path) -> None:
    with pytest.raises(StoreError, match="UNIQUE constraint failed") as caught:
        insert_twice(store, None)
    assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)
    assert str(caught.value).startswith(f"state store {db_path}: ")
    assert row_count(db_path) == 0


# --- migrations --------------------------------------------------------------------------


def test_a_new_migration_upgrades_an_existing_store(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = Store.open(db_path)
    first.save_state("s1", ScenarioState(Status.OK))
    first.close()
    step = "CREATE TABLE event_outbox (id INTEGER PRIMARY KEY, body TEXT NOT NULL);"
    monkeypatch.setattr(store_module, "MIGRATIONS", (*MIGRATIONS, step))
    second = Store.open(db_path)
    try:
        assert second.schema_version == 4
        assert second.load_states() == {"s1": ScenarioState(Status.OK)}
        with second.transaction() as connection:
            connection.execute("INSERT INTO event_outbox (body) VALUES ('{}')")
    finally:
        second.close()


def test_a_failing_migration_step_leaves_the_previous_version(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = "CREATE TABLE half_done (a INTEGER);\nCREATE TABLE broken (;"
    monkeypatch.setattr(store_module, "MIGRATIONS", (*MIGRATIONS, broken))
    with pytest.raises(StoreError, match="syntax error") as caught:
        Store.open(db_path)
    assert str(caught.value).startswith(f"state store {db_path}: ")
    with plain(db_path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (3,)
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master")}
    assert "scenario_state" in tables
    assert "half_done" not in tables
    # The lock was released: after a fix the store opens.
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS)
    Store.open(db_path).close()


def test_a_newer_schema_is_refused_and_left_untouched(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with plain(db_path) as connection:
        connection.execute("CREATE TABLE future (a TEXT)")
        connection.execute("PRAGMA user_version = 7")
    before = db_path.read_bytes()
    for _ in range(2):  # the second attempt proves the lock was released
        with pytest.raises(StoreError) as caught:
            Store.open(db_path)
        assert str(caught.value) == (
            f"state store {db_path}: written by a newer monitord (schema 7, this version knows 3)"
        )
    assert db_path.read_bytes() == before
    with plain(db_path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (7,)
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)


# --- bad files and folders ---------------------------------------------------------------


@pytest.mark.parametrize("size", [10, 10_000])
def test_a_file_that_is_no_database_is_refused(db_path: Path, size: int) -> None:
    db_path.parent.mkdir(parents=True)
    garbage = (b"not a database\n" * (size // 15 + 1))[:size]
    db_path.write_bytes(garbage)
    with pytest.raises(StoreError) as caught:
        Store.open(db_path)
    assert str(caught.value) == f"state store {db_path}: not a SQLite database"
    assert db_path.read_bytes() == garbage


def test_a_folder_in_place_of_the_file(db_path: Path) -> None:
    db_path.mkdir(parents=True)
    with pytest.raises(StoreError) as caught:
        Store.open(db_path)
    assert str(caught.value) == f"state store {db_path}: is not a regular file"


def test_a_path_below_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    path = tmp_path / "afile" / "sub" / "state.sqlite3"
    with pytest.raises(StoreError) as caught:
        Store.open(path)
    assert str(caught.value) == (
        f"state store {path}: cannot create folder {path.parent}: Not a directory"
    )


def test_a_folder_that_cannot_be_made_on_a_read_only_filesystem() -> None:
    path = Path("/proc/monitord-test/state.sqlite3")
    with pytest.raises(StoreError) as caught:
        Store.open(path)
    assert str(caught.value).startswith(
        "state store /proc/monitord-test/state.sqlite3: cannot create folder /proc/monitord-test: "
    )
    assert not path.parent.exists()


def test_an_existing_folder_where_files_cannot_be_made() -> None:
    # /proc passes os.access for root, so this is the real attempt to create a file failing.
    with pytest.raises(StoreError) as caught:
        Store.open(Path("/proc/state.sqlite3"))
    assert str(caught.value) in {
        "state store /proc/state.sqlite3: folder /proc is not writable",
        "state store /proc/state.sqlite3: cannot create /proc/state.sqlite3.lock:"
        " No such file or directory",
    }


def test_a_folder_without_write_permission(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests run as root, where chmod does not stop writes: stand in for the permission check.
    db_path.parent.mkdir(parents=True)
    real_access = os.access

    def access(path: Any, mode: int, **kwargs: Any) -> bool:
        if Path(path) == db_path.parent and mode & os.W_OK:
            return False
        return real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)
    with pytest.raises(StoreError) as caught:
        Store.open(db_path)
    assert str(caught.value) == (f"state store {db_path}: folder {db_path.parent} is not writable")
    assert not db_path.exists()


# --- the single writer -------------------------------------------------------------------


def test_a_second_open_in_the_same_process_is_refused(db_path: Path) -> None:
    first = Store.open(db_path)
    try:
        with pytest.raises(StoreError) as caught:
            Store.open(db_path)
        assert str(caught.value) == (
            f"state store {db_path}: in use by another monitord process (pid {os.getpid()})"
        )
        first.save_state("s1", ScenarioState(Status.OK))  # the first is unaffected
    finally:
        first.close()
    second = Store.open(db_path)
    try:
        assert second.load_states() == {"s1": ScenarioState(Status.OK)}
    finally:
        second.close()


HOLDER = """
import sys
from pathlib import Path
from monitord.store import Store
store = Store.open(Path(sys.argv[1]))
print("ready", flush=True)
sys.stdin.read()
store.close()
"""


def start_holder(path: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "ready\n"
    return holder


def stop_holder(holder: subprocess.Popen[str]) -> int:
    if holder.poll() is None:
        holder.kill()
    for stream in (holder.stdin, holder.stdout):
        if stream is not None:
            stream.close()
    return holder.wait(timeout=10)


def test_another_process_holding_the_store(db_path: Path) -> None:
    holder = start_holder(db_path)
    try:
        with pytest.raises(StoreError) as caught:
            Store.open(db_path)
        assert str(caught.value) == (
            f"state store {db_path}: in use by another monitord process (pid {holder.pid})"
        )
        assert holder.stdin is not None
        holder.stdin.close()  # let it close the store and exit
        assert holder.wait(timeout=10) == 0
    finally:
        stop_holder(holder)
    after = Store.open(db_path)
    after.close()


def test_a_killed_holder_releases_the_store(db_path: Path) -> None:
    holder = start_holder(db_path)
    try:
        holder.send_signal(signal.SIGKILL)
        assert holder.wait(timeout=10) == -signal.SIGKILL
    finally:
        stop_holder(holder)
    after = Store.open(db_path)
    try:
        assert after.schema_version == len(MIGRATIONS)
    finally:
        after.close()


# --- rows that cannot be read ------------------------------------------------------------


def good_json(**changes: Any) -> str:
    data: dict[str, Any] = {**make_result(scenario_id="bad").to_json(), "failureKind": None}
    data.update(changes)
    return json.dumps(data)


def without(key: str) -> str:
    data = json.loads(good_json())
    del data[key]
    return json.dumps(data)


BAD_ROWS: dict[str, dict[str, Any]] = {
    "bad-json": {"last_result": "{not json"},
    "json-list": {"last_result": "[1, 2]"},
    "unknown-status": {"status": "sideways"},
    "count-is-text": {"consecutive_failures": "many"},
    "negative-count": {"consecutive_failures": -1},
    "bad-since": {"failing_since": "yesterday"},
    "naive-since": {"failing_since": "2026-11-23T10:00:00"},
    "unknown-kind": {"opened_kind": "gremlins"},
    "unknown-type": {"last_result": good_json(scenarioType="SMTP")},
    "unknown-outcome": {"last_result": good_json(result="maybe")},
    "unknown-failure-kind": {"last_result": good_json(failureKind="gremlins")},
    "bad-started": {"last_result": good_json(startedAt="2026-13-45T10:00:00Z")},
    "out-of-range-started": {"last_result": good_json(startedAt="0001-01-01T00:00:00+05:00")},
    "duration-is-text": {"last_result": good_json(durationMs="12")},
    "code-is-text": {"last_result": good_json(statusCode="200")},
    "reasons-is-text": {"last_result": good_json(reasons="broken")},
    "missing-key": {"last_result": without("reasons")},
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_a_row_that_cannot_be_read_is_skipped_with_a_warning(
    store: Store, db_path: Path, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    good = ScenarioState(Status.OK, 0, None, None, make_result(scenario_id="good"))
    store.save_state("good", good)
    store.save_state("bad", ScenarioState(Status.OK, 0, None, None, make_result(scenario_id="bad")))
    assert store.load_states()["bad"].status is Status.OK  # readable before tampering
    assignments = ", ".join(f"{column} = ?" for column in BAD_ROWS[case])
    with plain(db_path) as connection:
        connection.execute(
            f"UPDATE scenario_state SET {assignments} WHERE scenario_id = 'bad'",  # noqa: S608
            tuple(BAD_ROWS[case].values()),
        )
    with caplog.at_level(logging.WARNING, logger="monitord.store"):
        assert store.load_states() == {"good": good}
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(
        f"state store {db_path}: skipped the saved state of scenario bad, which cannot be read ("
    )
    assert getattr(record, "scenario_id", None) == "bad"


# --- schema 2 and the write lock at start --------------------------------------------------


def test_a_version_1_store_is_migrated_to_version_2_and_keeps_its_states(db_path: Path) -> None:
    """A store written before events gains the outbox tables and keeps every state."""
    db_path.parent.mkdir(parents=True)
    with plain(db_path) as connection:
        assert connection.execute("PRAGMA journal_mode = WAL").fetchone() == ("wal",)
        connection.executescript(MIGRATIONS[0])
        connection.execute(
            "INSERT INTO scenario_state VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                "s1",
                "failing",
                3,
                "2026-11-23T09:58:30.456789Z",
                "timeout",
                None,
                "2026-11-23T10:00:00Z",
            ),
        )
        connection.execute("PRAGMA user_version = 1")
    opened = Store.open(db_path)
    try:
        assert opened.schema_version == 3
        assert opened.load_states() == {
            "s1": ScenarioState(Status.FAILING, 3, SINCE, FailureKind.TIMEOUT, None)
        }
    finally:
        opened.close()
    with plain(db_path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (3,)
        tables = {
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        outbox_columns = [row[1] for row in connection.execute("PRAGMA table_info(outbox)")]
    assert tables == {
        "scenario_state",
        "open_event",
        "outbox",
        "dead_letter",
        "delivered",
        "batch_payload",
    }
    assert outbox_columns == [
        "seq",
        "scenario_id",
        "event_id",
        "kind",
        "event_type",
        "body",
        "created_at",
        "queued_at",
        "attempts",
        "next_attempt_at",
        "last_error",
    ]


def test_a_database_locked_by_another_connection_fails_the_open(db_path: Path) -> None:
    """Another process inside a write transaction: the start fails with a clear message."""
    Store.open(db_path).close()
    with plain(db_path) as other:
        other.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(StoreError) as caught:
                Store.open(db_path)  # waits out the busy timeout
        finally:
            other.execute("ROLLBACK")
    message = str(caught.value)
    assert message.startswith(f"state store {db_path}: locked by another process (")
    assert "locked by another process" in message
    # The failed open released its lock file: the next start succeeds.
    again = Store.open(db_path)
    again.close()


@pytest.mark.parametrize(
    ("moment", "stored", "shown"),
    [
        (
            datetime(2026, 11, 23, 10, 0, 0, 123456, tzinfo=UTC),
            "2026-11-23T10:00:00.123456Z",
            "2026-11-23T10:00:00.123Z",
        ),
        (  # another zone is turned into UTC
            datetime(2026, 11, 23, 9, 0, 0, 5000, tzinfo=timezone(timedelta(hours=9))),
            "2026-11-23T00:00:00.005000Z",
            "2026-11-23T00:00:00.005Z",
        ),
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00.000000Z", "0001-01-01T00:00:00.000Z"),
        (
            datetime(2026, 1, 1, 12, tzinfo=ZoneInfo("UTC")),
            "2026-01-01T12:00:00.000000Z",
            "2026-01-01T12:00:00.000Z",
        ),
    ],
)
def test_times_are_written_in_utc_with_z(moment: datetime, stored: str, shown: str) -> None:
    assert store_module.format_time(moment) == stored
    assert store_module.parse_time(stored) == moment
    assert format_timestamp(moment) == shown


@given(
    st.datetimes(
        min_value=datetime(2, 1, 1),  # a zone's offset must not leave the datetime range
        max_value=datetime(9998, 12, 31),
        timezones=st.just(UTC) | st.timezones(),
    )
)
def test_time_formats_match_isoformat_with_timespec(moment: datetime) -> None:
    in_utc = moment.astimezone(UTC)
    iso = in_utc.isoformat(timespec="microseconds")[:-6]
    assert store_module.format_time(moment) == iso + "Z"
    assert format_timestamp(moment) == iso[:-3] + "Z"


def test_kept_texts_follow_each_moment_not_its_memory_address() -> None:
    # Moments made and dropped one after another often share an address: each must still
    # be written as itself, past the number of texts kept, in any order of the two forms.
    start = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
    for step in range(3000):
        moment = start + timedelta(microseconds=step * 1001)
        iso = moment.isoformat(timespec="microseconds")[:-6]
        if step % 2:
            assert format_timestamp(moment) == iso[:-3] + "Z"
            assert store_module.format_time(moment) == iso + "Z"
        else:
            assert store_module.format_time(moment) == iso + "Z"
            assert format_timestamp(moment) == iso[:-3] + "Z"
        del moment
