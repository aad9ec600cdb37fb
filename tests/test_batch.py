"""BATCH scenarios that expect payloads (SPEC §7): deadlines, the stored last payload, and
the monitor receiving payloads and noticing missed ones.

The deadline logic (``monitord.batch``) is pure and driven with explicit times. The store
runs on real SQLite files. The monitor tests use the daemon's composition from
``tests.test_api.running_app`` and call the monitor directly with times in the future
instead of waiting for deadlines.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitord.batch import Expectations, Missed, grace_for
from monitord.config.cron import parse_cron
from monitord.model import (
    BatchPayload,
    FailureKind,
    Outcome,
    Result,
    Scenario,
    ScenarioType,
    Schedule,
    Source,
    Validation,
    format_timestamp,
)
from monitord.monitor import Monitor, NotRunnableError
from monitord.store import MIGRATIONS, Store, put_payload, put_state
from monitord.tracker import ScenarioState, Status
from tests.targets import web_target
from tests.test_api import NEVER, api_yaml, batch_yaml, running_app
from tests.test_daemon import scrape, value, wait_until
from tests.test_store import plain

T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)
US = timedelta(microseconds=1)


def at(hour: int, minute: int = 0, day: int = 0) -> datetime:
    """A time on T0's day (or ``day`` days later)."""
    return T0 + timedelta(days=day, hours=hour, minutes=minute)


def batch(
    *,
    interval_s: int | None = None,
    cron: str | None = None,
    grace_seconds: int | None = None,
    name: str = "nightly",
) -> Scenario:
    """A BATCH scenario that expects a payload every ``interval_s`` or for each ``cron`` fire
    (cron times in UTC, validated as of 2019 so that a cron for 2020 only is accepted)."""
    schedule = (
        Schedule(interval_s=interval_s)
        if cron is None
        else Schedule(cron=parse_cron(cron, "UTC", now=datetime(2019, 1, 1, tzinfo=UTC)))
    )
    return Scenario(
        id=str(uuid.uuid4()),
        name=name,
        type=ScenarioType.BATCH,
        app_key="testapp",
        validation=Validation(timeout_ms=1000),
        source=Source("test.yaml", 1),
        fingerprint="test",
        schedule=schedule,
        grace_seconds=grace_seconds,
    )


# --- grace -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval_s", "cron", "after", "grace_s"),
    [
        pytest.param(3600, None, T0, 360, id="interval 1 h: 10 %"),
        pytest.param(86400, None, T0, 8640, id="interval 1 day: 10 %"),
        pytest.param(300, None, T0, 60, id="interval 5 min: at least 60 s"),
        pytest.param(1, None, T0, 60, id="interval 1 s: at least 60 s"),
        pytest.param(None, "0 2 * * *", T0, 8640, id="daily cron: 10 % of a day"),
        pytest.param(None, "0 * * * *", T0, 360, id="hourly cron"),
        pytest.param(None, "*/5 * * * *", T0, 60, id="5-minute cron: at least 60 s"),
        pytest.param(None, "0 2,3 * * *", T0, 360, id="uneven cron: gap 02:00-03:00"),
        pytest.param(None, "0 2,3 * * *", at(2, 30), 8280, id="uneven cron: gap 03:00-02:00"),
        pytest.param(None, "0 0 12 31 12 ? 2026", at(13), 60, id="Quartz cron firing once more"),
    ],
)
def test_default_grace_is_a_tenth_of_the_period_but_at_least_60_s(
    interval_s: int | None, cron: str | None, after: datetime, grace_s: int
) -> None:
    """Without graceSeconds the grace is max(60 s, 10 % of the period); a cron's period is
    the gap between its next two fire times."""
    scenario = batch(interval_s=interval_s, cron=cron)
    assert grace_for(scenario, after) == timedelta(seconds=grace_s)


def test_explicit_grace_wins_and_zero_is_allowed() -> None:
    """graceSeconds is used as given, 0 included, and the watch reports it."""
    for scenario, expected in (
        (batch(interval_s=86400, grace_seconds=0), 0),
        (batch(interval_s=60, grace_seconds=5), 5),
        (batch(cron="0 2 * * *", grace_seconds=3600), 3600),
    ):
        assert grace_for(scenario, T0) == timedelta(seconds=expected)
        expectations = Expectations()
        expectations.watch(scenario, T0, None)
        assert expectations.grace(scenario.id) == timedelta(seconds=expected)


def test_default_grace_of_a_watch() -> None:
    """A watched cron scenario without graceSeconds gets the default grace."""
    scenario = batch(cron="0 2 * * *")
    expectations = Expectations()
    expectations.watch(scenario, T0, None)
    assert expectations.grace(scenario.id) == timedelta(seconds=8640)
    assert expectations.next_deadline(scenario.id) == at(2) + timedelta(seconds=8640)


# --- interval ----------------------------------------------------------------------------------


def test_interval_without_payload_misses_exactly_at_the_deadline_then_every_period() -> None:
    """No payload: the first miss is at since + N + grace, not a microsecond earlier; then one
    miss per period, each reported once."""
    scenario = batch(interval_s=600, grace_seconds=60)
    expectations = Expectations()
    expectations.watch(scenario, T0, None)
    first = T0 + timedelta(seconds=660)
    assert expectations.next_deadline(scenario.id) == first
    assert expectations.overdue(first - US) == []
    reason = (
        "no payload since monitoring began at 2026-11-23T00:00:00.000Z"
        " (expected every 600 s, grace 60 s)"
    )
    assert expectations.overdue(first) == [Missed(scenario.id, first, reason)]
    assert expectations.overdue(first) == []
    second = first + timedelta(seconds=600)
    assert expectations.next_deadline(scenario.id) == second
    assert expectations.overdue(second - US) == []
    assert expectations.overdue(second) == [Missed(scenario.id, second, reason)]
    assert expectations.overdue(second + timedelta(seconds=599)) == []


def test_interval_silent_for_several_periods_reports_each_deadline_once() -> None:
    """Asked late, every deadline that passed is reported once, in order."""
    scenario = batch(interval_s=600, grace_seconds=60)
    expectations = Expectations()
    expectations.watch(scenario, T0, None)
    missed = expectations.overdue(T0 + timedelta(seconds=1860))
    assert [m.deadline for m in missed] == [
        T0 + timedelta(seconds=660),
        T0 + timedelta(seconds=1260),
        T0 + timedelta(seconds=1860),
    ]
    assert expectations.overdue(T0 + timedelta(seconds=2459)) == []


def test_interval_with_zero_grace() -> None:
    """graceSeconds 0: the deadline is since + N exactly."""
    scenario = batch(interval_s=600, grace_seconds=0)
    expectations = Expectations()
    expectations.watch(scenario, T0, None)
    deadline = T0 + timedelta(seconds=600)
    assert expectations.overdue(deadline - US) == []
    (miss,) = expectations.overdue(deadline)
    assert miss.deadline == deadline
    assert miss.reason == (
        "no payload since monitoring began at 2026-11-23T00:00:00.000Z"
        " (expected every 600 s, grace 0 s)"
    )


def test_a_payload_moves_the_interval_deadline() -> None:
    """Each payload moves the deadline to payload + N + grace; an older one moves nothing."""
    scenario = batch(interval_s=600, grace_seconds=60)
    expectations = Expectations()
    expectations.watch(scenario, T0, None)
    payload = T0 + timedelta(seconds=300)
    expectations.arrived(scenario.id, payload)
    deadline = payload + timedelta(seconds=660)
    assert expectations.next_deadline(scenario.id) == deadline
    expectations.arrived(scenario.id, T0 + timedelta(seconds=100))  # older: ignored
    assert expectations.next_deadline(scenario.id) == deadline
    assert expectations.overdue(T0 + timedelta(seconds=660)) == []
    assert expectations.overdue(deadline - US) == []
    reason = "no payload since 2026-11-23T00:05:00.000Z (expected every 600 s, grace 60 s)"
    assert expectations.overdue(deadline) == [Missed(scenario.id, deadline, reason)]
    # A payload after a miss starts the count again from it.
    later = deadline + timedelta(seconds=30)
    expectations.arrived(scenario.id, later)
    assert expectations.next_deadline(scenario.id) == later + timedelta(seconds=660)
    assert expectations.overdue(deadline + timedelta(seconds=600)) == []


def test_after_a_restart_waiting_counts_from_the_restart() -> None:
    """A last payload from before monitoring began: the deadline counts from ``since`` and
    the reason names the last payload."""
    scenario = batch(interval_s=600, grace_seconds=60)
    expectations = Expectations()
    expectations.watch(scenario, T0, T0 - timedelta(hours=5))
    deadline = T0 + timedelta(seconds=660)
    assert expectations.next_deadline(scenario.id) == deadline
    assert expectations.overdue(T0 - timedelta(hours=5) + timedelta(seconds=661)) == []
    assert expectations.overdue(deadline - US) == []
    reason = "no payload since 2026-11-22T19:00:00.000Z (expected every 600 s, grace 60 s)"
    assert expectations.overdue(deadline) == [Missed(scenario.id, deadline, reason)]


def test_a_last_payload_later_than_since_counts_from_the_payload() -> None:
    """A last payload after ``since`` (clock skew; it cannot happen otherwise) is taken as the
    start of the wait."""
    scenario = batch(interval_s=600, grace_seconds=60)
    expectations = Expectations()
    payload = T0 + timedelta(seconds=100)
    expectations.watch(scenario, T0, payload)
    deadline = payload + timedelta(seconds=660)
    assert expectations.next_deadline(scenario.id) == deadline
    assert expectations.overdue(deadline - US) == []
    (miss,) = expectations.overdue(deadline)
    assert miss.reason == (
        "no payload since 2026-11-23T00:01:40.000Z (expected every 600 s, grace 60 s)"
    )


# --- cron --------------------------------------------------------------------------------------


def daily() -> tuple[Scenario, Expectations]:
    """``0 2 * * *`` with an hour of grace, watched from T0 (midnight) without payloads."""
    scenario = batch(cron="0 2 * * *", grace_seconds=3600)
    expectations = Expectations()
    expectations.watch(scenario, T0, None)
    return scenario, expectations


def test_cron_payload_within_the_slot_means_no_miss() -> None:
    """A payload at 02:30 for the 02:00 run: nothing is missed at 03:00."""
    scenario, expectations = daily()
    assert expectations.next_deadline(scenario.id) == at(3)
    expectations.arrived(scenario.id, at(2, 30))
    assert expectations.overdue(at(3)) == []
    assert expectations.next_deadline(scenario.id) == at(3, day=1)


def test_cron_without_payload_misses_at_the_slot_deadline_once() -> None:
    """No payload by 03:00: one miss at 03:00, reported once."""
    scenario, expectations = daily()
    assert expectations.overdue(at(3) - US) == []
    reason = (
        "no payload since monitoring began at 2026-11-23T00:00:00.000Z"
        " (one was due for the run at 2026-11-23T02:00:00.000Z, grace 3600 s)"
    )
    assert expectations.overdue(at(3)) == [Missed(scenario.id, at(3), reason)]
    assert expectations.overdue(at(3)) == []
    assert expectations.overdue(at(3, day=1) - US) == []


def test_cron_silent_on_the_second_day_still_names_when_monitoring_began() -> None:
    """A job that never reported: the second day's miss still says when monitoring began
    (midnight), not when the first slot's grace ended."""
    scenario, expectations = daily()
    assert len(expectations.overdue(at(3))) == 1
    reason = (
        "no payload since monitoring began at 2026-11-23T00:00:00.000Z"
        " (one was due for the run at 2026-11-24T02:00:00.000Z, grace 3600 s)"
    )
    assert expectations.overdue(at(3, day=1)) == [Missed(scenario.id, at(3, day=1), reason)]


def test_cron_yesterdays_payload_does_not_count_for_today() -> None:
    """A payload for the first day's run leaves the second day's run missed."""
    scenario, expectations = daily()
    expectations.arrived(scenario.id, at(2, 30))
    assert expectations.overdue(at(3)) == []
    assert expectations.overdue(at(3, day=1) - US) == []
    reason = (
        "no payload since 2026-11-23T02:30:00.000Z"
        " (one was due for the run at 2026-11-24T02:00:00.000Z, grace 3600 s)"
    )
    assert expectations.overdue(at(3, day=1)) == [Missed(scenario.id, at(3, day=1), reason)]


def test_cron_late_payload_fails_its_slot_and_counts_for_the_next() -> None:
    """Checked every moment (as the daemon does): the 03:30 payload is too late for the
    02:00 run, which is missed at 03:00, and counts for the next day's run."""
    scenario, expectations = daily()
    assert len(expectations.overdue(at(3))) == 1
    expectations.arrived(scenario.id, at(3, 30))
    assert expectations.overdue(at(3, day=1)) == []
    (miss,) = expectations.overdue(at(3, day=2))
    assert miss.deadline == at(3, day=2)
    assert miss.reason == (
        "no payload since 2026-11-23T03:30:00.000Z"
        " (one was due for the run at 2026-11-25T02:00:00.000Z, grace 3600 s)"
    )


def test_cron_late_payload_checked_after_it_arrived_still_fails_its_slot() -> None:
    """A payload after the slot's deadline but before the next check is still late for that
    slot: it must not count for two runs."""
    scenario, expectations = daily()
    expectations.arrived(scenario.id, at(3, 30))
    assert [m.deadline for m in expectations.overdue(at(3, 31))] == [at(3)]
    assert expectations.overdue(at(3, day=1)) == []
    assert [m.deadline for m in expectations.overdue(at(3, day=2))] == [at(3, day=2)]


def test_cron_started_within_a_slots_grace_with_its_payload_stored() -> None:
    """Monitoring begins at 02:10 and the 02:05 payload is known: the 02:00 run reported."""
    scenario = batch(cron="0 2 * * *", grace_seconds=3600)
    expectations = Expectations()
    expectations.watch(scenario, at(2, 10), at(2, 5))
    assert expectations.next_deadline(scenario.id) == at(3)
    assert expectations.overdue(at(3)) == []
    assert expectations.next_deadline(scenario.id) == at(3, day=1)
    (miss,) = expectations.overdue(at(3, day=1))
    assert miss.reason == (
        "no payload since 2026-11-23T02:05:00.000Z"
        " (one was due for the run at 2026-11-24T02:00:00.000Z, grace 3600 s)"
    )


def test_cron_started_within_a_slots_grace_without_payload() -> None:
    """Monitoring begins at 02:10 with no payload known: the job may still report until
    03:00; after that the 02:00 run is missed, and the reason names 02:10."""
    scenario = batch(cron="0 2 * * *", grace_seconds=3600)
    expectations = Expectations()
    expectations.watch(scenario, at(2, 10), None)
    assert expectations.next_deadline(scenario.id) == at(3)
    assert expectations.overdue(at(3) - US) == []
    (miss,) = expectations.overdue(at(3))
    assert miss.reason == (
        "no payload since monitoring began at 2026-11-23T02:10:00.000Z"
        " (one was due for the run at 2026-11-23T02:00:00.000Z, grace 3600 s)"
    )


def test_forget_stops_the_misses() -> None:
    """A forgotten scenario is never reported again; the others still are."""
    kept = batch(interval_s=600, grace_seconds=60, name="kept")
    gone = batch(cron="0 2 * * *", grace_seconds=3600, name="gone")
    expectations = Expectations()
    expectations.watch(kept, T0, None)
    expectations.watch(gone, T0, None)
    assert len(expectations) == 2
    expectations.forget(gone.id)
    expectations.arrived(gone.id, at(1))  # ignored
    assert len(expectations) == 1
    assert expectations.next_deadline(gone.id) is None
    assert expectations.grace(gone.id) is None
    missed = expectations.overdue(at(4))
    assert {m.scenario_id for m in missed} == {kept.id}
    assert len(missed) == 23  # 00:11, 00:21, … 03:51
    expectations.forget(kept.id)
    assert expectations.overdue(at(3, day=5)) == []
    expectations.forget("never-watched")  # no error


def test_a_cron_that_never_fires_again_is_not_watched() -> None:
    """A Quartz cron whose year is over: no watch, no error."""
    scenario = batch(cron="0 0 0 1 1 ? 2020")
    expectations = Expectations()
    expectations.watch(scenario, T0, None)
    assert len(expectations) == 0
    assert expectations.next_deadline(scenario.id) is None
    assert expectations.grace(scenario.id) is None
    assert expectations.overdue(T0 + 3650 * DAY) == []
    assert grace_for(scenario, T0) == timedelta(seconds=60)


def test_a_cron_firing_once_more_misses_once_then_ends() -> None:
    """A Quartz cron with one fire time left: one miss after it, then the watch ends."""
    scenario = batch(cron="0 0 0 1 1 ? 2027")
    expectations = Expectations()
    expectations.watch(scenario, T0, None)
    fire = datetime(2027, 1, 1, tzinfo=UTC)
    deadline = fire + timedelta(seconds=60)
    assert expectations.next_deadline(scenario.id) == deadline
    assert expectations.overdue(deadline - US) == []
    (miss,) = expectations.overdue(deadline)
    assert miss.reason == (
        "no payload since monitoring began at 2026-11-23T00:00:00.000Z"
        " (one was due for the run at 2027-01-01T00:00:00.000Z, grace 60 s)"
    )
    assert len(expectations) == 0
    assert expectations.overdue(deadline + 3650 * DAY) == []


def test_many_scenarios_with_frequent_payloads_keep_the_heap_bounded() -> None:
    """2000 scenarios, payloads on every round: stale heap entries do not pile up, and the
    silent scenarios are still missed exactly once per period."""
    n = 2000
    scenarios = [batch(interval_s=100, grace_seconds=10, name=f"job {i}") for i in range(n)]
    silent = {s.id for s in scenarios[::100]}
    expectations = Expectations()
    for scenario in scenarios:
        expectations.watch(scenario, T0, None)
    missed: list[tuple[str, datetime]] = []
    for step in range(1, 11):
        now = T0 + timedelta(seconds=50 * step)
        missed += [(m.scenario_id, m.deadline) for m in expectations.overdue(now)]
        for scenario in scenarios:
            if scenario.id not in silent:
                expectations.arrived(scenario.id, now)
            # A private attribute, read on purpose: its size is what this test is about.
            assert len(expectations._heap) <= 2 * n + 1024
    expected = {
        (sid, T0 + timedelta(seconds=seconds)) for sid in silent for seconds in (110, 210, 310, 410)
    }
    assert sorted(missed) == sorted(expected)
    assert len(expectations) == n


# --- store -------------------------------------------------------------------------------------


def payload_result(scenario_id: str, outcome: Outcome = Outcome.FAILURE) -> Result:
    return Result(
        scenario_id=scenario_id,
        scenario_name="nightly ü",
        scenario_type=ScenarioType.BATCH,
        outcome=outcome,
        reasons=("$.status: expected EQ 'done', got 'running'", "second ✓"),
        started_at=datetime(2026, 11, 23, 10, 0, 0, 123000, tzinfo=UTC),
        duration_ms=1.5,
        status_code=None,
        response_bytes=258,
        failure_kind=FailureKind.WRONG_ANSWER if outcome is Outcome.FAILURE else None,
    )


def test_migration_to_schema_3_creates_batch_payload(tmp_path: Path) -> None:
    """A schema-2 store gains the batch_payload table and keeps its states."""
    path = tmp_path / "state.sqlite3"
    with plain(path) as connection:
        connection.executescript(MIGRATIONS[0] + MIGRATIONS[1] + "PRAGMA user_version = 2;")
        connection.execute(
            "INSERT INTO scenario_state VALUES ('s1', 'ok', 1, NULL, NULL, NULL, ?)",
            ("2026-11-23T10:00:00Z",),
        )
    store = Store.open(path)
    try:
        assert store.schema_version == 3
        assert store.load_states() == {"s1": ScenarioState(Status.OK, 1, None, None, None)}
        assert store.load_payload_times() == {}
        assert store.last_payload("s1") is None
    finally:
        store.close()
    with plain(path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (3,)
        columns = [
            (row[1], row[2], row[3], row[5])
            for row in connection.execute("PRAGMA table_info(batch_payload)")
        ]
    assert columns == [
        ("scenario_id", "TEXT", 0, 1),
        ("request_id", "TEXT", 1, 0),
        ("received_at", "TEXT", 1, 0),
        ("client", "TEXT", 1, 0),
        ("body", "BLOB", 1, 0),
        ("result", "TEXT", 1, 0),
    ]


def test_payload_round_trip_and_times(tmp_path: Path) -> None:
    """put_payload in a transaction; last_payload gives back every field, the binary body
    and the result; a second payload replaces the first; load_payload_times has both
    scenarios."""
    path = tmp_path / "state.sqlite3"
    store = Store.open(path)
    try:
        first = BatchPayload(
            request_id=str(uuid.uuid4()),
            received_at=datetime(2026, 11, 23, 10, 0, 0, 123456, tzinfo=UTC),
            client="10.1.2.3",
            body=bytes(range(256)) + b"\x00\xff",
            result=payload_result("a"),
        )
        other = BatchPayload(
            "r-b", datetime(2026, 11, 22, 8, 0, tzinfo=UTC), "::1", b"{}", payload_result("b")
        )
        with store.transaction() as connection:
            put_payload(connection, "a", first)
            put_payload(connection, "b", other)
        assert store.last_payload("a") == first
        assert store.last_payload("b") == other
        assert store.last_payload("c") is None
        assert store.load_payload_times() == {"a": first.received_at, "b": other.received_at}

        second = BatchPayload(
            "r-2",
            datetime(2026, 11, 23, 11, 0, tzinfo=UTC),
            "10.1.2.4",
            b'{"status": "done"}',
            payload_result("a", Outcome.SUCCESS),
        )
        with store.transaction() as connection:
            put_payload(connection, "a", second)
    finally:
        store.close()
    reopened = Store.open(path)
    try:
        assert reopened.last_payload("a") == second
        assert reopened.load_payload_times() == {"a": second.received_at, "b": other.received_at}
    finally:
        reopened.close()


def test_remove_states_deletes_payload_rows(tmp_path: Path) -> None:
    """Forgetting a scenario's state forgets its last payload too, and only its."""
    store = Store.open(tmp_path / "state.sqlite3")
    try:
        with store.transaction() as connection:
            for sid in ("a", "b"):
                put_state(connection, sid, ScenarioState(Status.OK, 0, None, None, None))
                put_payload(
                    connection,
                    sid,
                    BatchPayload("r", T0, "127.0.0.1", b"{}", payload_result(sid)),
                )
        store.delete_states(["a", "unknown"])
        assert store.last_payload("a") is None
        assert store.last_payload("b") is not None
        assert store.load_payload_times() == {"b": T0}
        assert set(store.load_states()) == {"b"}
    finally:
        store.close()


def test_unreadable_payload_rows_are_skipped(tmp_path: Path) -> None:
    """Garbage written by another program: last_payload is None, load_payload_times leaves the
    row out, and nothing raises."""
    path = tmp_path / "state.sqlite3"
    store = Store.open(path)
    try:
        with store.transaction() as connection:
            put_payload(connection, "good", BatchPayload("r", T0, "c", b"{}", payload_result("g")))
        with plain(path) as connection:
            connection.executemany(
                "INSERT INTO batch_payload VALUES (?, ?, ?, ?, ?, ?)",
                [
                    ("bad-time", "r", "yesterday", "c", b"{}", "{}"),
                    ("bad-result", "r", "2026-11-23T10:00:00.000000Z", "c", b"{}", "{not json"),
                    ("bad-body", "r", "2026-11-23T10:00:00.000000Z", "c", "text", "[]"),
                    ("naive-time", "r", "2026-11-23T10:00:00", "c", b"{}", "{}"),
                    ("number-time", "r", 12345, "c", b"{}", "{}"),
                ],
            )
        for sid in ("bad-time", "bad-result", "bad-body", "naive-time", "number-time"):
            assert store.last_payload(sid) is None, sid
        ten = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
        assert store.load_payload_times() == {"good": T0, "bad-result": ten, "bad-body": ten}
        assert store.last_payload("good") is not None
    finally:
        store.close()


# --- the monitor -------------------------------------------------------------------------------

DONE = b'{"status": "done"}'
RUNNING = b'{"status": "running"}'


def events(monitor: Monitor) -> list[tuple[str, str, str]]:
    """The queued event messages: (scenario id, kind, event type), oldest first."""
    pending = monitor.outbox.listing(100)["pending"]["events"]
    return [(e["scenarioId"], e["kind"], e["eventType"]) for e in pending]


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def send(
    monitor: Monitor, sid: str, body: bytes, *, request_id: str = "r", when: datetime | None = None
) -> Result:
    receipt = await monitor.receive_payload(
        sid,
        body,
        "utf-8",
        request_id=request_id,
        client="192.0.2.7",
        received_at=when or datetime.now(UTC),
    )
    return receipt.result


async def test_payloads_are_judged_recorded_and_a_failure_opens_an_error_event(
    tmp_path: Path,
) -> None:
    """A passing payload makes the scenario ok; a failing one is a WRONG_ANSWER failure that
    opens an ERROR_EVENT; the last payload is kept; each payload moves the deadline."""
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "b.yaml").write_text(batch_yaml("nightly"))
    async with running_app(tmp_path) as app:
        monitor = app.monitor
        sid = (await app.scenario("nightly"))["scenarioId"]
        assert monitor.describe_one(sid)["state"] == "unknown"

        when = datetime.now(UTC).replace(microsecond=250000)
        ok = await send(monitor, sid, DONE, request_id="r1", when=when)
        assert (ok.outcome, ok.reasons, ok.failure_kind) == (Outcome.SUCCESS, (), None)
        assert (ok.scenario_id, ok.started_at, ok.response_bytes) == (sid, when, len(DONE))
        one = monitor.describe_one(sid)
        assert (one["state"], one["consecutiveFailures"]) == ("ok", 0)
        assert one["lastPayloadAt"] == format_timestamp(when)
        assert one["nextRunAt"] == format_timestamp(when + timedelta(seconds=3660))
        assert one["schedule"] == "expects a payload: every 3600 s"
        assert one["graceSeconds"] == 60
        assert events(monitor) == []

        later = when + timedelta(seconds=5)
        bad = await send(monitor, sid, RUNNING, request_id="r2", when=later)
        assert bad.outcome is Outcome.FAILURE
        assert bad.failure_kind is FailureKind.WRONG_ANSWER
        assert bad.reasons == ('$.status EQ done: got "running"',)
        two = monitor.describe_one(sid)
        assert (two["state"], two["consecutiveFailures"]) == ("failing", 1)
        assert two["lastResult"]["reasons"] == list(bad.reasons)
        assert two["nextRunAt"] == format_timestamp(later + timedelta(seconds=3660))
        assert events(monitor) == [(sid, "open", "ERROR_EVENT")]

        stored = monitor.last_payload(sid)
        assert stored is not None
        assert (stored.request_id, stored.client, stored.body) == ("r2", "192.0.2.7", RUNNING)
        assert stored.received_at == later
        assert stored.result.outcome is Outcome.FAILURE
        assert stored.result.reasons == bad.reasons
        assert stored.result.failure_kind is FailureKind.WRONG_ANSWER


async def test_a_missed_payload_opens_an_availability_event_and_a_payload_closes_it(
    tmp_path: Path,
) -> None:
    """Past the deadline the scenario fails with 'no payload since …' (AVAILABILITY_EVENT);
    the next good payload recovers it and queues the close."""
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "b.yaml").write_text(batch_yaml("nightly"))
    began = datetime.now(UTC)
    async with running_app(tmp_path) as app:
        monitor = app.monitor
        sid = (await app.scenario("nightly"))["scenarioId"]
        described = monitor.describe_one(sid)
        deadline = parse(described["nextRunAt"])
        assert began + timedelta(seconds=3660) - timedelta(milliseconds=1) <= deadline
        assert deadline <= datetime.now(UTC) + timedelta(seconds=3660)

        assert monitor.check_payload_deadlines(now=deadline - timedelta(seconds=1)) == 0
        assert monitor.check_payload_deadlines(now=deadline + timedelta(seconds=1)) == 1
        assert monitor.check_payload_deadlines(now=deadline + timedelta(seconds=1)) == 0
        failing = monitor.describe_one(sid)
        assert (failing["state"], failing["consecutiveFailures"]) == ("failing", 1)
        (reason,) = failing["lastResult"]["reasons"]
        assert reason.startswith("no payload since monitoring began at ")
        assert reason.endswith(" (expected every 3600 s, grace 60 s)")
        assert failing["lastResult"]["result"] == "failure"
        assert failing["lastResult"]["startedAt"] == described["nextRunAt"]
        assert parse(failing["nextRunAt"]) == deadline + timedelta(seconds=3600)
        assert events(monitor) == [(sid, "open", "AVAILABILITY_EVENT")]

        result = await send(monitor, sid, DONE)
        assert result.outcome is Outcome.SUCCESS
        recovered = monitor.describe_one(sid)
        assert (recovered["state"], recovered["consecutiveFailures"]) == ("ok", 0)
        assert events(monitor) == [
            (sid, "open", "AVAILABILITY_EVENT"),
            (sid, "close", "AVAILABILITY_EVENT"),
        ]
        opened, closed = monitor.outbox.listing(10)["pending"]["events"]
        assert opened["eventId"] == closed["eventId"]


async def test_a_payload_just_after_a_passed_deadline_comes_after_the_miss(
    tmp_path: Path,
) -> None:
    """Deadlines are checked once a second: a payload that comes just after one passed,
    before the check, does not wipe it out. The miss is recorded first (the event opens),
    then the payload (it closes)."""
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "b.yaml").write_text(batch_yaml("nightly"))
    async with running_app(tmp_path) as app:
        monitor = app.monitor
        sid = (await app.scenario("nightly"))["scenarioId"]
        deadline = parse(monitor.describe_one(sid)["nextRunAt"])
        result = await send(monitor, sid, DONE, when=deadline + timedelta(milliseconds=400))
        assert result.outcome is Outcome.SUCCESS
        assert events(monitor) == [
            (sid, "open", "AVAILABILITY_EVENT"),
            (sid, "close", "AVAILABILITY_EVENT"),
        ]
        described = monitor.describe_one(sid)
        assert (described["state"], described["consecutiveFailures"]) == ("ok", 0)
        later = deadline + timedelta(milliseconds=400) + timedelta(seconds=3660)
        assert parse(described["nextRunAt"]) == later


async def test_error_limit_2_needs_three_missed_payloads(tmp_path: Path) -> None:
    """errorLimitCount 2: two missed periods keep the scenario ok, the third fails it."""
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "b.yaml").write_text(batch_yaml("nightly") + "errorLimitCount: 2\n")
    async with running_app(tmp_path) as app:
        monitor = app.monitor
        sid = (await app.scenario("nightly"))["scenarioId"]
        deadline = parse(monitor.describe_one(sid)["nextRunAt"]) + timedelta(seconds=1)
        hour = timedelta(seconds=3600)
        for count, state in ((1, "ok"), (2, "ok"), (3, "failing")):
            assert monitor.check_payload_deadlines(now=deadline + (count - 1) * hour) == 1
            described = monitor.describe_one(sid)
            assert (described["state"], described["consecutiveFailures"]) == (state, count)
            assert events(monitor) == ([] if count < 3 else [(sid, "open", "AVAILABILITY_EVENT")])


async def test_state_and_last_payload_survive_a_restart_and_waiting_restarts(
    tmp_path: Path,
) -> None:
    """A new Monitor on the reopened store has the state, the last payload and its time;
    the deadline counts from the restart, not from the old payload."""
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "b.yaml").write_text(batch_yaml("nightly"))
    sent = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    async with running_app(tmp_path) as app:
        sid = (await app.scenario("nightly"))["scenarioId"]
        bad = await send(app.monitor, sid, RUNNING, request_id="before-restart", when=sent)
        assert bad.outcome is Outcome.FAILURE

    restarted = datetime.now(UTC)
    async with running_app(tmp_path) as app:
        monitor = app.monitor
        described = monitor.describe_one(sid)
        assert (described["state"], described["consecutiveFailures"]) == ("failing", 1)
        assert described["lastResult"]["reasons"] == list(bad.reasons)
        assert described["lastPayloadAt"] == format_timestamp(sent)
        stored = monitor.last_payload(sid)
        assert stored is not None
        assert (stored.request_id, stored.client, stored.body) == (
            "before-restart",
            "192.0.2.7",
            RUNNING,
        )
        assert stored.received_at == sent
        assert monitor.outbox.store.load_payload_times() == {sid: sent}

        deadline = parse(described["nextRunAt"])
        assert deadline >= restarted + timedelta(seconds=3660) - timedelta(milliseconds=1)
        assert deadline <= datetime.now(UTC) + timedelta(seconds=3660)
        # Counted from the old payload it would have passed ten minutes before this one.
        assert monitor.check_payload_deadlines(now=sent + timedelta(seconds=3661)) == 0
        assert monitor.check_payload_deadlines(now=deadline + timedelta(seconds=1)) == 1
        (reason,) = monitor.describe_one(sid)["lastResult"]["reasons"]
        assert reason == (
            f"no payload since {format_timestamp(sent)} (expected every 3600 s, grace 60 s)"
        )


async def test_payloads_are_counted_in_metrics(tmp_path: Path) -> None:
    """monitord_batch_payloads_total counts judged payloads by result, only for BATCH
    scenarios; a missed payload is a failed run but not a payload."""
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "b.yaml").write_text(batch_yaml("nightly"))
    (tmp_path / "s" / "api.yaml").write_text(api_yaml("shop", "http://127.0.0.1:9/"))
    async with running_app(tmp_path) as app:
        monitor = app.monitor
        sid = (await app.scenario("nightly"))["scenarioId"]
        await send(monitor, sid, DONE)
        await send(monitor, sid, DONE)
        await send(monitor, sid, RUNNING)
        deadline = parse(monitor.describe_one(sid)["nextRunAt"])
        assert monitor.check_payload_deadlines(now=deadline + timedelta(seconds=1)) == 1

        host, port = app.address
        samples = await scrape(f"http://{host}:{port}")
        name = "monitord_batch_payloads_total"
        assert value(samples, name, scenario_id=sid, result="success") == 2
        assert value(samples, name, scenario_id=sid, result="failure") == 1
        assert value(samples, name, scenario_name="nightly", scenario_type="BATCH") is not None
        assert value(samples, name, scenario_name="shop") is None
        runs = "monitord_scenario_runs_total"
        assert value(samples, runs, scenario_id=sid, result="success") == 2
        assert value(samples, runs, scenario_id=sid, result="failure") == 2
        (sample,) = [s for s in monitor.samples() if s.labels[0] == sid]
        assert sample.payloads == (2, 1)


async def test_batch_scenarios_are_not_put_on_the_scheduler(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """BATCH scenarios with an interval or a cron are never run by the scheduler (while an
    API scenario every second is); nextRunAt is the payload deadline; run_now refuses."""
    caplog.set_level(logging.INFO)
    async with web_target() as target:
        (tmp_path / "s").mkdir()
        (tmp_path / "s" / "api.yaml").write_text(
            api_yaml("pulse", target.url("/echo")).replace(NEVER, "monitoringInterval: 1")
        )
        (tmp_path / "s" / "every.yaml").write_text(
            batch_yaml("every second").replace("monitoringInterval: 3600", "monitoringInterval: 1")
        )
        (tmp_path / "s" / "daily.yaml").write_text(
            batch_yaml("daily").replace(
                "monitoringInterval: 3600\ngraceSeconds: 60",
                'monitoringCron: "0 2 * * *"\ngraceSeconds: 3600',
            )
        )
        cron = parse_cron("0 2 * * *", "UTC")
        hour = timedelta(seconds=3600)
        before = datetime.now(UTC)
        async with running_app(tmp_path) as app:
            after = datetime.now(UTC)
            monitor = app.monitor
            every = await app.scenario("every second")
            daily_one = await app.scenario("daily")

            # The scheduler runs what it has: the API scenario, at least twice.
            await wait_until(lambda: len(target.received) >= 2, 10, "the API scenario ran")

            assert every["schedule"] == "expects a payload: every 1 s"
            assert every["graceSeconds"] == 60
            deadline = parse(every["nextRunAt"])
            assert before + timedelta(seconds=61) - timedelta(milliseconds=1) <= deadline
            assert deadline <= after + timedelta(seconds=61)
            assert daily_one["schedule"] == "expects a payload: cron 0 2 * * * (UTC)"
            assert daily_one["nextRunAt"] in {
                format_timestamp(cron.next_after(before - hour) + hour),
                format_timestamp(cron.next_after(after - hour) + hour),
            }
            assert daily_one["nextRunAt"].endswith("T03:00:00.000Z")

            for sid in (every["scenarioId"], daily_one["scenarioId"]):
                described = monitor.describe_one(sid)
                assert (described["state"], described["lastResult"]) == ("unknown", None)
                with pytest.raises(NotRunnableError):
                    await monitor.run_now(sid)
                assert monitor.describe_one(sid)["state"] == "unknown"
            runs = [s.runs for s in monitor.samples() if s.labels[2] == "BATCH"]
            assert runs == [(0, 0, 0), (0, 0, 0)]

    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith("scenarios loaded: 3 added") for m in messages), messages
    assert not [m for m in messages if "run of scenario" in m and "raised" in m]


async def test_removing_a_batch_scenario_removes_its_payload_row(tmp_path: Path) -> None:
    """The scenario file is deleted and the monitor reloads: its last payload is gone from the
    store, and no deadline remains."""
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "b.yaml").write_text(batch_yaml("nightly"))
    (tmp_path / "s" / "other.yaml").write_text(batch_yaml("other"))
    async with running_app(tmp_path) as app:
        monitor = app.monitor
        sid = (await app.scenario("nightly"))["scenarioId"]
        other = (await app.scenario("other"))["scenarioId"]
        when = datetime.now(UTC).replace(microsecond=0)
        await send(monitor, sid, DONE, when=when)
        await send(monitor, other, DONE, when=when)
        assert monitor.last_payload(sid) is not None
        store = monitor.outbox.store

        (app.folder / "b.yaml").unlink()
        report = await monitor.reload()
        assert (report.ok, report.removed, report.unchanged) == (True, 1, 1)
        assert monitor.last_payload(sid) is None
        assert store.load_payload_times() == {other: when}
        with plain(store.path) as connection:
            rows: list[Any] = connection.execute(
                "SELECT scenario_id FROM batch_payload ORDER BY scenario_id"
            ).fetchall()
        assert rows == [(other,)]
        # Only the remaining scenario can miss a payload.
        far = when + timedelta(days=1)
        assert monitor.check_payload_deadlines(now=far) == 23  # when + 3660 s + k hours
        assert monitor.describe_one(other)["consecutiveFailures"] == 23
