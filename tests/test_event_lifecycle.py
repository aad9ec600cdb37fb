"""The life of a failure event (SPEC §6): ``EventBook`` opens, refreshes and closes events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitord.events.body import EventSettings, MessageKind, OpenEvent, to_millis
from monitord.events.lifecycle import EventBook, combine
from monitord.events.outbox import EventChange, Message
from monitord.model import EventType, FailureKind, Outcome, Result, Scenario, ScenarioType
from monitord.tracker import Change, ScenarioState, Status, Transition, advance
from tests.factories import api_scenario

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
SID = "0c96cff0-edc2-11ea-9760-8d94f461e6d4"
OTHER = "7d2b5c1e-0000-4000-8000-000000000002"
SETTINGS = EventSettings(
    region="KOR",
    timeout_minutes=15,
    default_entity_selector="type(SERVICE),entityName.equals(default)",
    service_names={"shop": "Shop Service"},
)
REFRESH_S = 450
TITLE = "monitord: Shop Service shop api health failing"


def ids(*values: str) -> Callable[[], str]:
    return iter(values).__next__


def book(*event_ids: str, **kw: Any) -> EventBook:
    return EventBook(SETTINGS, REFRESH_S, new_id=ids(*(event_ids or ("ev-1", "ev-2"))), **kw)


def scenario(sid: str = SID, **changes: Any) -> Scenario:
    base = replace(
        api_scenario("https://shop.test/health", name="shop api health"), id=sid, app_key="shop"
    )
    return replace(base, **changes)


def result(
    outcome: Outcome,
    at: datetime,
    kind: FailureKind | None = FailureKind.UNAVAILABLE,
    reasons: tuple[str, ...] = ("connection refused",),
    sid: str = SID,
) -> Result:
    failed = outcome is Outcome.FAILURE
    return Result(
        scenario_id=sid,
        scenario_name="shop api health",
        scenario_type=ScenarioType.API,
        outcome=outcome,
        reasons=reasons if failed else (),
        started_at=at,
        duration_ms=12.0,
        failure_kind=kind if failed else None,
    )


def failing(
    count: int = 3,
    since: datetime = T0,
    kind: FailureKind = FailureKind.UNAVAILABLE,
    last: Result | None = None,
) -> ScenarioState:
    return ScenarioState(Status.FAILING, count, since, kind, last)


def opened(b: EventBook, now: datetime = T0 + timedelta(minutes=2), **kw: Any) -> OpenEvent:
    """Open an event for the default scenario and apply it; the open event."""
    change = b.open(kw.pop("sc", scenario()), failing(**kw), ("connection refused",), now)
    b.apply(change)
    event = b.get(SID)
    assert event is not None
    return event


def ms(moment: datetime) -> int:
    return to_millis(moment)


# --- opening ---------------------------------------------------------------------------------


def test_a_failing_transition_opens_one_event() -> None:
    """Crossing the limit yields one open message and the OpenEvent to store."""
    b = book()
    first = result(Outcome.FAILURE, T0, FailureKind.TIMEOUT, ("timed out after 2000 ms",))
    state, transition = advance(ScenarioState(), first, 0)
    assert transition is not None
    now = T0 + timedelta(seconds=3)
    change = b.on_transition(scenario(), state, transition, now)
    event = OpenEvent(
        scenario_id=SID,
        event_id="ev-1",
        event_type=EventType.AVAILABILITY_EVENT,
        title=TITLE,
        entity_selector="type(SERVICE),entityName.equals(default)",
        failing_since=T0,
        opened_at=now,
        refreshed_at=now,
        properties={
            "monitord.scenario.id": SID,
            "monitord.scenario.name": "shop api health",
            "monitord.scenario.type": "API",
            "monitord.region": "KOR",
            "monitord.reason": "timed out after 2000 ms",
            "monitord.consecutive_failures": "1",
            "monitord.target": "https://shop.test/health",
            "monitord.event.id": "ev-1",
            "monitord.failing_since": "2026-11-23T10:00:00.000Z",
        },
    )
    assert change == EventChange(
        messages=(
            Message(
                scenario_id=SID,
                event_id="ev-1",
                kind=MessageKind.OPEN,
                event_type=EventType.AVAILABILITY_EVENT,
                body={
                    "eventType": "AVAILABILITY_EVENT",
                    "title": TITLE,
                    "startTime": ms(now),
                    "timeout": 15,
                    "entitySelector": "type(SERVICE),entityName.equals(default)",
                    "properties": dict(event.properties),
                },
                created_at=now,
            ),
        ),
        opened=(event,),
        ended=(),
    )


def test_later_messages_keep_the_identity_chosen_at_opening() -> None:
    """A rename or a new eventType after opening changes neither refresh nor close."""
    b = book()
    event = opened(b, kind=FailureKind.TIMEOUT)
    assert (event.event_type, event.title) == (EventType.AVAILABILITY_EVENT, TITLE)
    changed = scenario(
        name="renamed",
        app_key="other",
        event_type=EventType.ERROR_EVENT,
        entity_selector="type(HOST),entityName.equals(x)",
    )
    last = result(Outcome.FAILURE, T0 + timedelta(minutes=9), FailureKind.WRONG_ANSWER, ("bad",))
    refresh = b.refresh(changed, failing(5, last=last), T0 + timedelta(minutes=10), send=True)
    b.apply(refresh)
    close = b.close(SID, end=T0 + timedelta(minutes=11), now=T0 + timedelta(minutes=11))
    for change in (refresh, close):
        (message,) = change.messages
        assert message.event_type is EventType.AVAILABILITY_EVENT
        assert message.event_id == "ev-1"
        assert message.body["eventType"] == "AVAILABILITY_EVENT"
        assert message.body["title"] == TITLE
        assert message.body["entitySelector"] == "type(SERVICE),entityName.equals(default)"
        assert message.body["properties"]["monitord.scenario.name"] == "shop api health"
        assert message.body["properties"]["monitord.event.id"] == "ev-1"
    assert refresh.messages[0].body["properties"]["monitord.reason"] == "bad"


def test_opening_over_an_open_event_closes_it_first() -> None:
    """An event left open is closed in the same change that opens the new one."""
    b = book()
    first = opened(b)
    now = T0 + timedelta(minutes=5)
    change = b.open(scenario(), failing(4), ("again",), now)
    assert [(m.kind, m.event_id) for m in change.messages] == [
        (MessageKind.CLOSE, "ev-1"),
        (MessageKind.OPEN, "ev-2"),
    ]
    assert change.messages[0].body["startTime"] == ms(first.refreshed_at)
    assert change.messages[0].body["endTime"] == ms(now)
    assert change.ended == (SID,)
    assert [e.event_id for e in change.opened] == ["ev-2"]
    b.apply(change)
    assert b.get(SID) == change.opened[0]


# --- refresh ---------------------------------------------------------------------------------


def test_refresh_with_send_queues_a_refresh_message() -> None:
    """send=True: a refresh message with startTime = now, and refreshed_at moves on."""
    b = book()
    event = opened(b)
    now = T0 + timedelta(minutes=10)
    last = result(Outcome.FAILURE, now - timedelta(seconds=30), reasons=("status 503", "slow"))
    change = b.refresh(scenario(), failing(6, last=last), now, send=True)
    props = {
        **event.properties,
        "monitord.consecutive_failures": "6",
        "monitord.reason": "status 503; slow",
    }
    updated = replace(event, refreshed_at=now, properties=props)
    assert change.opened == (updated,)
    assert change.ended == ()
    (message,) = change.messages
    assert message.kind is MessageKind.REFRESH
    assert message.created_at == now
    assert message.body == {
        "eventType": "AVAILABILITY_EVENT",
        "title": TITLE,
        "startTime": ms(now),
        "timeout": 15,
        "entitySelector": "type(SERVICE),entityName.equals(default)",
        "properties": props,
    }
    assert "endTime" not in message.body


def test_refresh_without_send_only_moves_the_refresh_time() -> None:
    """send=False: no message, only the stored event's refreshed_at and properties change."""
    b = book()
    event = opened(b)
    now = T0 + timedelta(minutes=10)
    last = result(Outcome.FAILURE, now, reasons=("status 500",))
    change = b.refresh(scenario(), failing(4, last=last), now, send=False)
    assert change.messages == ()
    assert change.ended == ()
    (updated,) = change.opened
    assert updated.refreshed_at == now
    assert updated.opened_at == event.opened_at
    assert updated.properties["monitord.consecutive_failures"] == "4"
    assert updated.properties["monitord.reason"] == "status 500"
    b.apply(change)
    assert b.due(now + timedelta(seconds=REFRESH_S - 1)) == []
    assert b.due(now + timedelta(seconds=REFRESH_S)) == [SID]


@pytest.mark.parametrize("outcome", [Outcome.SUCCESS, Outcome.SUPPRESSED])
def test_refresh_keeps_the_reason_when_the_last_result_did_not_fail(outcome: Outcome) -> None:
    """Only a failing last result brings a new reason; the count is updated either way."""
    b = book()
    event = opened(b)
    last = result(outcome, T0 + timedelta(minutes=9))
    change = b.refresh(scenario(), failing(7, last=last), T0 + timedelta(minutes=10), send=True)
    props = change.messages[0].body["properties"]
    assert props["monitord.reason"] == event.properties["monitord.reason"] == "connection refused"
    assert props["monitord.consecutive_failures"] == "7"


def test_refresh_keeps_the_reason_without_a_last_result() -> None:
    """A state without a last result keeps the reason too."""
    b = book()
    opened(b)
    change = b.refresh(scenario(), failing(2), T0 + timedelta(minutes=10), send=True)
    assert change.messages[0].body["properties"]["monitord.reason"] == "connection refused"


def test_refresh_or_close_without_an_open_event_is_an_empty_change() -> None:
    """Nothing is open: refresh and close change nothing."""
    b = book()
    assert b.refresh(scenario(), failing(), T0, send=True) == EventChange()
    assert b.refresh(scenario(), failing(), T0, send=False) == EventChange()
    closed = b.close(SID, end=T0, now=T0, consecutive_failures=3)
    assert closed == EventChange()
    assert not closed


def test_due_respects_the_refresh_interval() -> None:
    """An event is due once refresh_interval seconds have passed since its last refresh."""
    b = book("ev-1", "ev-2")
    at = T0 + timedelta(minutes=2)
    opened(b, at)
    b.apply(b.open(scenario(OTHER), failing(), (), at + timedelta(seconds=100)))
    assert b.due(at) == []
    assert b.due(at + timedelta(seconds=REFRESH_S - 0.001)) == []
    assert b.due(at + timedelta(seconds=REFRESH_S)) == [SID]
    assert sorted(b.due(at + timedelta(seconds=REFRESH_S + 100))) == sorted([SID, OTHER])
    b.apply(b.refresh(scenario(), failing(), at + timedelta(seconds=REFRESH_S), send=True))
    assert b.due(at + timedelta(seconds=REFRESH_S + 100)) == [OTHER]


# --- close -----------------------------------------------------------------------------------


def test_recovery_closes_with_the_recovery_time_as_end() -> None:
    """endTime = when the recovering run started; startTime = the last refresh time."""
    b = book()
    state, transition = advance(ScenarioState(), result(Outcome.FAILURE, T0), 0)
    assert transition is not None
    b.apply(b.on_transition(scenario(), state, transition, T0 + timedelta(seconds=1)))
    state, _ = advance(state, result(Outcome.FAILURE, T0 + timedelta(minutes=1)), 0)
    refreshed = T0 + timedelta(minutes=8)
    refresh = b.refresh(scenario(), state, refreshed, send=True)
    b.apply(refresh)
    recovered_at = T0 + timedelta(minutes=9)
    state, transition = advance(state, result(Outcome.SUCCESS, recovered_at), 0)
    assert transition is not None
    assert transition.change is Change.RECOVERED
    now = recovered_at + timedelta(seconds=2)
    change = b.on_transition(scenario(), state, transition, now)
    (message,) = change.messages
    assert message.kind is MessageKind.CLOSE
    assert message.event_id == "ev-1"
    assert message.created_at == now
    assert message.body == {
        **refresh.messages[0].body,
        "startTime": ms(refreshed),
        "endTime": ms(recovered_at),
    }
    assert message.body["properties"]["monitord.consecutive_failures"] == "2"
    assert change.opened == ()
    assert change.ended == (SID,)
    b.apply(change)
    assert b.get(SID) is None
    assert len(b) == 0


def test_close_without_a_count_keeps_the_stored_count() -> None:
    """A close for a removed scenario (no count given) repeats the last properties."""
    b = book()
    event = opened(b, count=5)
    change = b.close(SID, end=T0 + timedelta(hours=1), now=T0 + timedelta(hours=1))
    assert change.messages[0].body["properties"] == event.properties
    assert change.messages[0].body["properties"]["monitord.consecutive_failures"] == "5"


# --- apply -----------------------------------------------------------------------------------


def test_nothing_changes_before_apply() -> None:
    """open, refresh and close return changes; the book follows only on apply."""
    b = book()
    change = b.open(scenario(), failing(), ("x",), T0)
    assert b.get(SID) is None
    assert len(b) == 0
    assert b.due(T0 + timedelta(days=1)) == []
    b.apply(change)
    event = b.get(SID)
    assert event is not None
    later = T0 + timedelta(seconds=REFRESH_S)
    refresh = b.refresh(scenario(), failing(), later, send=True)
    assert b.get(SID) == event
    assert b.due(later) == [SID]
    close = b.close(SID, end=later, now=later)
    assert b.get(SID) == event
    b.apply(refresh)
    assert b.get(SID) == refresh.opened[0]
    assert b.due(later) == []
    b.apply(close)
    assert b.get(SID) is None


def test_book_starts_from_stored_open_events() -> None:
    """Open events given at construction are known, refreshed and closed like any other."""
    event = opened(book())
    b = EventBook(SETTINGS, REFRESH_S, {SID: event}, new_id=ids())
    assert b.get(SID) == event
    assert len(b) == 1
    change = b.close(SID, end=T0 + timedelta(hours=1), now=T0 + timedelta(hours=1))
    assert change.messages[0].event_id == "ev-1"


# --- reconcile -------------------------------------------------------------------------------


def test_reconcile_opens_for_a_failing_scenario_without_an_event() -> None:
    """A store from before events: the failing scenario gets its event."""
    b = book()
    last = result(Outcome.FAILURE, T0 + timedelta(minutes=3), reasons=("status 502",))
    state = failing(4, since=T0, kind=FailureKind.WRONG_ANSWER, last=last)
    now = T0 + timedelta(minutes=5)
    change = b.reconcile({SID: (scenario(), state)}, now, complete=False)
    (message,) = change.messages
    assert message.kind is MessageKind.OPEN
    assert message.event_type is EventType.ERROR_EVENT
    assert message.body["startTime"] == ms(now)
    props = message.body["properties"]
    assert props["monitord.reason"] == "status 502"
    assert props["monitord.consecutive_failures"] == "4"
    assert props["monitord.failing_since"] == "2026-11-23T10:00:00.000Z"
    assert [e.event_id for e in change.opened] == ["ev-1"]
    assert change.ended == ()


def test_reconcile_opens_with_failed_when_there_is_no_last_result() -> None:
    """Without a last result the reason reads ``failed``."""
    change = book().reconcile({SID: (scenario(), failing())}, T0, complete=True)
    assert change.messages[0].body["properties"]["monitord.reason"] == "failed"


@pytest.mark.parametrize("status", [Status.OK, Status.UNKNOWN])
def test_reconcile_closes_an_event_whose_scenario_is_not_failing(status: Status) -> None:
    """The scenario recovered while the daemon was down: its event is closed now."""
    b = book()
    event = opened(b)
    now = T0 + timedelta(hours=1)
    change = b.reconcile({SID: (scenario(), ScenarioState(status))}, now, complete=False)
    (message,) = change.messages
    assert message.kind is MessageKind.CLOSE
    assert message.body["startTime"] == ms(event.refreshed_at)
    assert message.body["endTime"] == ms(now)
    assert change.ended == (SID,)
    assert change.opened == ()


def test_reconcile_closes_the_event_of_a_gone_scenario_when_complete() -> None:
    """Every file loaded and the scenario is gone: its event closes."""
    b = book()
    opened(b)
    now = T0 + timedelta(hours=1)
    change = b.reconcile({}, now, complete=True)
    assert [(m.kind, m.scenario_id) for m in change.messages] == [(MessageKind.CLOSE, SID)]
    assert change.ended == (SID,)


def test_reconcile_keeps_the_event_of_a_gone_scenario_when_not_complete() -> None:
    """A file that failed to load may hold the scenario: its event stays open."""
    b = book()
    opened(b)
    change = b.reconcile({}, T0 + timedelta(hours=1), complete=False)
    assert change == EventChange()


def test_reconcile_leaves_a_failing_scenario_with_its_event() -> None:
    """Failing and open: nothing to do."""
    b = book()
    opened(b)
    assert b.reconcile({SID: (scenario(), failing())}, T0, complete=True) == EventChange()


def test_reconcile_all_cases_at_once() -> None:
    """Closes first, then opens; each scenario handled once."""
    gone, recovered, new = "gone-id", "recovered-id", "new-id"
    b = book("ev-1", "ev-2", "ev-3")
    for sid in (gone, recovered):
        b.apply(b.open(scenario(sid), failing(), (), T0))
    now = T0 + timedelta(hours=1)
    change = b.reconcile(
        {
            recovered: (scenario(recovered), ScenarioState(Status.OK)),
            new: (scenario(new), failing()),
        },
        now,
        complete=True,
    )
    assert [(m.kind, m.scenario_id, m.event_id) for m in change.messages] == [
        (MessageKind.CLOSE, gone, "ev-1"),
        (MessageKind.CLOSE, recovered, "ev-2"),
        (MessageKind.OPEN, new, "ev-3"),
    ]
    assert change.ended == (gone, recovered)
    assert [e.scenario_id for e in change.opened] == [new]
    b.apply(change)
    assert (b.get(gone), b.get(recovered)) == (None, None)
    assert len(b) == 1


# --- combine ---------------------------------------------------------------------------------


def test_combine_keeps_a_new_open_after_an_end() -> None:
    """An end then an open of the same scenario: the new open stays, the end is kept too."""
    b = book()
    old = opened(b)
    end = b.close(SID, end=T0 + timedelta(hours=1), now=T0 + timedelta(hours=1))
    new = replace(old, event_id="ev-2")
    reopen = EventChange(opened=(new,))
    both = combine(end, reopen)
    assert both.messages == end.messages
    assert both.opened == (new,)
    assert both.ended == (SID,)
    b.apply(both)
    assert b.get(SID) == new


def test_combine_drops_an_open_that_a_later_change_ends() -> None:
    """An open then an end of the same scenario: nothing stays open."""
    event = opened(book())
    both = combine(EventChange(opened=(event,)), EventChange(ended=(SID,)))
    assert both.opened == ()
    assert both.ended == (SID,)


def test_combine_keeps_message_order_and_unique_ends() -> None:
    """Messages in order; an id ended twice is listed once; the last open of an id wins."""
    b = book("ev-1", "ev-2")
    first = b.open(scenario(), failing(), (), T0)
    other = b.open(scenario(OTHER), failing(), (), T0)
    refreshed = replace(first.opened[0], refreshed_at=T0 + timedelta(minutes=1))
    both = combine(
        first,
        EventChange(ended=(OTHER,)),
        other,
        EventChange(opened=(refreshed,), ended=(OTHER,)),
    )
    assert [m.event_id for m in both.messages] == ["ev-1", "ev-2"]
    assert both.ended == (OTHER,)
    assert both.opened == (refreshed,)
    assert combine() == EventChange()


# --- through the tracker ---------------------------------------------------------------------


def test_through_the_tracker_with_error_limit_two() -> None:
    """Limit 2: nothing after 2 failures, open after the 3rd, none on the 4th, close on success."""
    b = book()
    sc = scenario(error_limit=2)
    state = ScenarioState()
    steps: list[tuple[Outcome, FailureKind | None]] = [
        (Outcome.FAILURE, FailureKind.TIMEOUT),
        (Outcome.FAILURE, FailureKind.UNAVAILABLE),
        (Outcome.FAILURE, FailureKind.TIMEOUT),
        (Outcome.FAILURE, FailureKind.WRONG_ANSWER),
        (Outcome.SUCCESS, None),
    ]
    seen: list[list[tuple[MessageKind, str]]] = []
    transitions: list[Transition | None] = []
    for minute, (outcome, kind) in enumerate(steps):
        at = T0 + timedelta(minutes=minute)
        state, transition = advance(
            state, result(outcome, at, kind, (f"run {minute}",)), sc.error_limit
        )
        transitions.append(transition)
        change = EventChange()
        if transition is not None:
            change = b.on_transition(sc, state, transition, at + timedelta(seconds=1))
        b.apply(change)
        seen.append([(m.kind, m.event_id) for m in change.messages])
        if minute == 2:
            (message,) = change.messages
            assert message.event_type is EventType.AVAILABILITY_EVENT
            assert message.body["properties"]["monitord.consecutive_failures"] == "3"
            assert message.body["properties"]["monitord.reason"] == "run 2"
            assert message.body["properties"]["monitord.failing_since"] == (
                "2026-11-23T10:00:00.000Z"
            )
        if minute == 4:
            (message,) = change.messages
            assert message.body["startTime"] == ms(T0 + timedelta(minutes=2, seconds=1))
            assert message.body["endTime"] == ms(T0 + timedelta(minutes=4))
            assert message.body["properties"]["monitord.consecutive_failures"] == "4"
    assert seen == [[], [], [(MessageKind.OPEN, "ev-1")], [], [(MessageKind.CLOSE, "ev-1")]]
    assert [t.change if t else None for t in transitions] == [
        None,
        None,
        Change.FAILING,
        None,
        Change.RECOVERED,
    ]
    assert b.get(SID) is None
