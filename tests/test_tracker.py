"""The error limit (SPEC §6): state transitions of ``monitord.tracker.advance``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitord.model import FailureKind, Outcome, Result, ScenarioType
from monitord.tracker import Change, ScenarioState, Status, Transition, advance

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

S = Outcome.SUCCESS
F = Outcome.FAILURE
X = Outcome.SUPPRESSED
UNAVAILABLE = FailureKind.UNAVAILABLE
TIMEOUT = FailureKind.TIMEOUT
WRONG = FailureKind.WRONG_ANSWER


def result(
    outcome: Outcome, minute: int = 0, kind: FailureKind | None = None, reason: str = ""
) -> Result:
    return Result(
        scenario_id="0c96cff0-edc2-11ea-9760-8d94f461e6d4",
        scenario_name="shop api health",
        scenario_type=ScenarioType.API,
        outcome=outcome,
        reasons=(reason,) if reason else (),
        started_at=T0 + timedelta(minutes=minute),
        duration_ms=12.3,
        failure_kind=kind if outcome is F else None,
    )


Step = Outcome | tuple[Outcome, FailureKind | None]


def play(
    steps: list[Step], limit: int, state: ScenarioState | None = None
) -> list[tuple[ScenarioState, Transition | None, Result]]:
    """Advance through ``steps`` (one a minute from T0); every state, transition and result."""
    state = state or ScenarioState()
    out = []
    for minute, step in enumerate(steps):
        outcome, kind = step if isinstance(step, tuple) else (step, UNAVAILABLE)
        res = result(outcome, minute, kind, reason=f"run {minute}")
        state, transition = advance(state, res, limit)
        out.append((state, transition, res))
    return out


@pytest.mark.parametrize(
    ("limit", "steps", "expected"),
    [
        # (status, consecutive failures, change) after each step.
        (0, [F], [(Status.FAILING, 1, Change.FAILING)]),
        (0, [F, F], [(Status.FAILING, 1, Change.FAILING), (Status.FAILING, 2, None)]),
        (
            2,
            [F, F, F, F],
            [
                (Status.OK, 1, None),
                (Status.OK, 2, None),
                (Status.FAILING, 3, Change.FAILING),
                (Status.FAILING, 4, None),
            ],
        ),
        (2, [F, F, S], [(Status.OK, 1, None), (Status.OK, 2, None), (Status.OK, 0, None)]),
        (
            2,
            [F, F, S, F, F, F],
            [
                (Status.OK, 1, None),
                (Status.OK, 2, None),
                (Status.OK, 0, None),
                (Status.OK, 1, None),  # the count starts over after a success
                (Status.OK, 2, None),
                (Status.FAILING, 3, Change.FAILING),
            ],
        ),
        (
            0,
            [F, F, S, S],
            [
                (Status.FAILING, 1, Change.FAILING),
                (Status.FAILING, 2, None),
                (Status.OK, 0, Change.RECOVERED),
                (Status.OK, 0, None),
            ],
        ),
        (1, [S], [(Status.OK, 0, None)]),
        (1, [X], [(Status.UNKNOWN, 0, None)]),
        (
            1,
            [F, X, F],  # a suppressed run does not break a streak of failures
            [(Status.OK, 1, None), (Status.OK, 1, None), (Status.FAILING, 2, Change.FAILING)],
        ),
        (
            0,
            [F, X, X, S],
            [
                (Status.FAILING, 1, Change.FAILING),
                (Status.FAILING, 1, None),
                (Status.FAILING, 1, None),
                (Status.OK, 0, Change.RECOVERED),
            ],
        ),
        (0, [S, X], [(Status.OK, 0, None), (Status.OK, 0, None)]),
    ],
)
def test_transitions(
    limit: int, steps: list[Step], expected: list[tuple[Status, int, Change | None]]
) -> None:
    seen = [
        (state.status, state.consecutive_failures, None if t is None else t.change)
        for state, t, _ in play(steps, limit)
    ]
    assert seen == expected


def test_failing_opens_once_with_the_streak_and_its_start() -> None:
    steps = play([F, F, F, F], limit=2)
    transitions = [t for _, t, _ in steps if t is not None]
    assert len(transitions) == 1
    opened = transitions[0]
    third = steps[2][2]
    assert opened == Transition(
        change=Change.FAILING,
        scenario_id=third.scenario_id,
        scenario_name="shop api health",
        at=third.started_at,
        consecutive_failures=3,
        failing_since=T0,  # the first failure of the streak, not the one that crossed
        kind=UNAVAILABLE,
        reasons=("run 2",),
    )
    last = steps[-1][0]
    assert (last.status, last.consecutive_failures, last.failing_since) == (
        Status.FAILING,
        4,
        T0,
    )


def test_recovery_carries_the_streak_and_clears_the_state() -> None:
    steps = play([S, F, F, F, S], limit=2)
    state, transition, success = steps[-1]
    assert transition == Transition(
        change=Change.RECOVERED,
        scenario_id=success.scenario_id,
        scenario_name="shop api health",
        at=success.started_at,
        consecutive_failures=3,
        failing_since=T0 + timedelta(minutes=1),  # the first failure's started_at
        kind=UNAVAILABLE,
        reasons=("run 4",),
    )
    assert state == ScenarioState(Status.OK, 0, None, None, success)


def test_a_success_within_the_limit_resets_without_a_transition() -> None:
    steps = play([F, S], limit=2)
    after_failure = steps[0][0]
    assert after_failure.failing_since == T0
    assert after_failure.opened_kind is None  # nothing opened within the limit
    state, transition, success = steps[1]
    assert transition is None
    assert state == ScenarioState(Status.OK, 0, None, None, success)


@pytest.mark.parametrize(
    "before",
    [
        ScenarioState(),
        ScenarioState(Status.OK, 0, None, None, result(S, 0)),
        ScenarioState(Status.OK, 1, T0, None, result(F, 0, TIMEOUT)),
        ScenarioState(Status.FAILING, 3, T0, TIMEOUT, result(F, 0, TIMEOUT)),
    ],
    ids=["unknown", "ok", "ok-within-limit", "failing"],
)
def test_suppressed_changes_only_the_last_result(before: ScenarioState) -> None:
    suppressed = result(X, 5, reason="planned maintenance")
    after, transition = advance(before, suppressed, 0)
    assert transition is None
    assert after.last_result is suppressed
    assert (after.status, after.consecutive_failures, after.failing_since, after.opened_kind) == (
        before.status,
        before.consecutive_failures,
        before.failing_since,
        before.opened_kind,
    )


def test_unknown_then_success_is_ok() -> None:
    success = result(S)
    state, transition = advance(ScenarioState(), success, 0)
    assert transition is None
    assert state == ScenarioState(Status.OK, 0, None, None, success)


@pytest.mark.parametrize("limit", [0, 1])
def test_the_kind_that_opened_stays_until_recovery(limit: int) -> None:
    # With limit 1 the first failure (WRONG) is within the limit; TIMEOUT crosses it.
    first: FailureKind = WRONG if limit else TIMEOUT
    steps = play([(F, first), (F, TIMEOUT), (F, UNAVAILABLE), (F, WRONG), S], limit)
    opened = next(t for _, t, _ in steps if t is not None and t.change is Change.FAILING)
    assert opened.kind is TIMEOUT
    for state, _, _ in steps[limit:-1]:
        assert state.status is Status.FAILING
        assert state.opened_kind is TIMEOUT
    _, recovered, _ = steps[-1]
    assert recovered is not None
    assert recovered.change is Change.RECOVERED
    assert recovered.kind is TIMEOUT
    assert recovered.consecutive_failures == 4
    assert recovered.failing_since == T0


def test_a_failure_without_a_kind_opens_as_a_wrong_answer() -> None:
    state, transition = advance(ScenarioState(), result(F, kind=None), 0)
    assert transition is not None
    assert transition.kind is WRONG
    assert state.opened_kind is WRONG


def test_failure_updates_the_last_result() -> None:
    steps = play([F, F], limit=0)
    for state, _, res in steps:
        assert state.last_result is res
