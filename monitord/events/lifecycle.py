"""The life of a failure event (SPEC §6): open, refresh while failing, close.

``EventBook`` knows which scenarios have an open event and turns state changes into
``EventChange``s: the messages to queue and the open-event rows to write, all committed in
the transaction of the state change that caused them. It changes its own view only when
told the transaction committed (``apply``), so memory never runs ahead of the store.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from monitord.events.body import (
    EventSettings,
    MessageKind,
    OpenEvent,
    body,
    open_event,
    updated_properties,
)
from monitord.events.outbox import EventChange, Message
from monitord.model import Outcome, Scenario
from monitord.tracker import Change, ScenarioState, Status, Transition


def new_event_id() -> str:
    return uuid.uuid4().hex


class EventBook:
    def __init__(
        self,
        settings: EventSettings,
        refresh_interval_s: float,
        open_events: Mapping[str, OpenEvent] | None = None,
        new_id: Callable[[], str] = new_event_id,
    ) -> None:
        self._settings = settings
        self._refresh = timedelta(seconds=refresh_interval_s)
        self._open = dict(open_events or {})
        self._new_id = new_id

    def get(self, scenario_id: str) -> OpenEvent | None:
        return self._open.get(scenario_id)

    def __len__(self) -> int:
        return len(self._open)

    def on_transition(
        self, scenario: Scenario, state: ScenarioState, transition: Transition, now: datetime
    ) -> EventChange:
        """Open on the way into ``failing``, close on the way out."""
        if transition.change is Change.FAILING:
            return self.open(scenario, state, transition.reasons, now)
        count = transition.consecutive_failures
        return self.close(scenario.id, end=transition.at, now=now, consecutive_failures=count)

    def open(
        self, scenario: Scenario, state: ScenarioState, reasons: tuple[str, ...], now: datetime
    ) -> EventChange:
        event = open_event(
            scenario,
            self._settings,
            event_id=self._new_id(),
            kind=state.opened_kind,
            failing_since=state.failing_since or now,
            consecutive_failures=state.consecutive_failures,
            reasons=reasons,
            now=now,
        )
        message = self._message(event, MessageKind.OPEN, now, start=now)
        # An event still open here has lost its period (it cannot happen through
        # transitions); close it first so the platform does not keep it forever.
        before = self.close(scenario.id, end=now, now=now)
        return combine(before, EventChange((message,), (event,)))

    def close(
        self,
        scenario_id: str,
        *,
        end: datetime,
        now: datetime,
        consecutive_failures: int | None = None,
    ) -> EventChange:
        """The close message (``endTime`` = ``end``) of the scenario's open event, if any."""
        event = self._open.get(scenario_id)
        if event is None:
            return EventChange()
        if consecutive_failures is not None:
            props = updated_properties(
                event, consecutive_failures=consecutive_failures, reasons=None
            )
            event = replace(event, properties=props)
        # The last message sent once more, now with endTime: that closes it.
        message = self._message(event, MessageKind.CLOSE, now, start=event.refreshed_at, end=end)
        return EventChange((message,), (), (scenario_id,))

    def due(self, now: datetime) -> list[str]:
        """Scenarios whose open event must be re-sent to stay open."""
        return [sid for sid, e in self._open.items() if now - e.refreshed_at >= self._refresh]

    def refresh(
        self, scenario: Scenario, state: ScenarioState, now: datetime, *, send: bool
    ) -> EventChange:
        """Re-send the open event with the current count and reason. With ``send`` False
        (an earlier message of the event is still waiting in the outbox, and goes out as
        fresh as this one would) only the refresh time moves on."""
        event = self._open.get(scenario.id)
        if event is None:
            return EventChange()
        last = state.last_result
        reasons = last.reasons if last is not None and last.outcome is Outcome.FAILURE else None
        props = updated_properties(
            event, consecutive_failures=state.consecutive_failures, reasons=reasons
        )
        event = replace(event, refreshed_at=now, properties=props)
        if not send:
            return EventChange(opened=(event,))
        message = self._message(event, MessageKind.REFRESH, now, start=now)
        return EventChange((message,), (event,))

    def reconcile(
        self,
        scenarios: Mapping[str, tuple[Scenario, ScenarioState]],
        now: datetime,
        *,
        complete: bool,
    ) -> EventChange:
        """After the first load: a failing scenario without an open event gets one (a store
        from before events), an open event whose scenario is not failing is closed, and
        with ``complete`` (every file loaded) so is one whose scenario is gone."""
        changes: list[EventChange] = []
        for sid in list(self._open):
            known = scenarios.get(sid)
            if known is None and not complete:
                continue
            if known is None or known[1].status is not Status.FAILING:
                changes.append(self.close(sid, end=now, now=now))
        for sid, (scenario, state) in scenarios.items():
            if state.status is Status.FAILING and sid not in self._open:
                last = state.last_result
                reasons = () if last is None else last.reasons
                changes.append(self.open(scenario, state, reasons, now))
        return combine(*changes)

    def apply(self, change: EventChange) -> None:
        """The change committed: take it into this view."""
        for sid in change.ended:
            self._open.pop(sid, None)
        for event in change.opened:
            self._open[event.scenario_id] = event

    def _message(
        self,
        event: OpenEvent,
        kind: MessageKind,
        now: datetime,
        *,
        start: datetime,
        end: datetime | None = None,
    ) -> Message:
        return Message(
            scenario_id=event.scenario_id,
            event_id=event.event_id,
            kind=kind,
            event_type=event.event_type,
            body=body(event, self._settings, start=start, end=end),
            created_at=now,
        )


def combine(*changes: EventChange) -> EventChange:
    """Several changes as one, in order (an end before a later open of the same scenario)."""
    messages: list[Message] = []
    opened: dict[str, OpenEvent] = {}
    ended: list[str] = []
    for change in changes:
        messages.extend(change.messages)
        for sid in change.ended:
            opened.pop(sid, None)
            ended.append(sid)
        for event in change.opened:
            opened[event.scenario_id] = event
    return EventChange(tuple(messages), tuple(opened.values()), tuple(_unique(ended)))


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
