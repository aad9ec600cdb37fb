"""The error limit (SPEC §6): pure transitions from one scenario state to the next.

A failure adds one to ``consecutive_failures``; a success resets it. When the
count exceeds ``errorLimitCount`` (0 = the first failure) the scenario turns
``failing``; the next success turns it ``ok``. A ``suppressed`` result changes
nothing. Crossing into or out of ``failing`` yields a ``Transition``, which is
what events are made of.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime

from monitord.model import FailureKind, Outcome, Result, slot_init


class Status(enum.StrEnum):
    UNKNOWN = "unknown"  # never run
    OK = "ok"
    FAILING = "failing"  # past the error limit


class Change(enum.StrEnum):
    FAILING = "failing"  # crossed the error limit: an event opens
    RECOVERED = "recovered"  # a success after failing: the event closes


@slot_init
@dataclass(frozen=True, slots=True)
class ScenarioState:
    status: Status = Status.UNKNOWN
    consecutive_failures: int = 0
    # When the current run of failures began (the first of them); None while none.
    failing_since: datetime | None = None
    # The kind of the failure that turned the scenario failing; fixed until recovery.
    opened_kind: FailureKind | None = None
    last_result: Result | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    change: Change
    scenario_id: str
    scenario_name: str
    at: datetime
    consecutive_failures: int
    failing_since: datetime | None
    kind: FailureKind | None
    reasons: tuple[str, ...]


# Members read once (see model.py): advance runs for every result.
_SUCCESS, _SUPPRESSED = Outcome.SUCCESS, Outcome.SUPPRESSED
_OK, _FAILING = Status.OK, Status.FAILING


def advance(
    state: ScenarioState, result: Result, error_limit: int
) -> tuple[ScenarioState, Transition | None]:
    """The state after ``result``, and the transition it causes, if any."""
    if result.outcome is _SUPPRESSED:
        return replace(state, last_result=result), None
    if result.outcome is _SUCCESS:
        recovered = state.status is _FAILING
        after = ScenarioState(_OK, 0, None, None, result)
        if not recovered:
            return after, None
        return after, _transition(Change.RECOVERED, state, result)
    failures = state.consecutive_failures + 1
    since = state.failing_since or result.started_at
    if state.status is _FAILING:
        return replace(state, consecutive_failures=failures, last_result=result), None
    if failures > error_limit:
        kind = result.failure_kind or FailureKind.WRONG_ANSWER
        after = ScenarioState(Status.FAILING, failures, since, kind, result)
        return after, _transition(Change.FAILING, after, result)
    # Within the limit: it has run and is not failing.
    return ScenarioState(Status.OK, failures, since, None, result), None


def _transition(change: Change, state: ScenarioState, result: Result) -> Transition:
    return Transition(
        change=change,
        scenario_id=result.scenario_id,
        scenario_name=result.scenario_name,
        at=result.started_at,
        consecutive_failures=state.consecutive_failures,
        failing_since=state.failing_since,
        kind=state.opened_kind,
        reasons=result.reasons,
    )
