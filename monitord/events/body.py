"""Event bodies (SPEC §6): what is sent to the Events API v2 ingest endpoint. Pure.

An event's identity on the receiving side is its title, eventType and entitySelector,
so those are chosen once, when a failure period opens (``OpenEvent``), and reused for
every refresh and for the close. ``monitord.event.id`` is stable for the period, so the
receiving side can count duplicates.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from monitord.model import (
    EventType,
    FailureKind,
    HttpTarget,
    Scenario,
    SocketTarget,
    format_timestamp,
)

MAX_REASON_CHARS = 1000
# The platform rejects problem-opening start times older than 6 hours; keep clear of it.
MAX_START_AGE = timedelta(hours=5)


class MessageKind(enum.StrEnum):
    OPEN = "open"  # the scenario crossed its error limit
    REFRESH = "refresh"  # still failing: re-sent so the platform keeps the event open
    CLOSE = "close"  # recovered or removed: sent once more with endTime


@dataclass(frozen=True, slots=True)
class EventSettings:
    """What event bodies take from the configuration."""

    region: str
    timeout_minutes: int = 15
    default_entity_selector: str | None = None
    service_names: Mapping[str, str] | None = None  # appKey -> service name


@dataclass(frozen=True, slots=True)
class OpenEvent:
    """The event of one failure period, from its opening until its close."""

    scenario_id: str
    event_id: str
    event_type: EventType
    title: str
    entity_selector: str | None
    failing_since: datetime
    opened_at: datetime
    refreshed_at: datetime  # when the last open or refresh message was queued
    properties: Mapping[str, str]  # as last queued


def event_type_for(scenario: Scenario, kind: FailureKind | None) -> EventType:
    """AVAILABILITY_EVENT when the target could not be reached or timed out, ERROR_EVENT
    when it answered wrongly; the scenario's ``eventType`` overrides."""
    if scenario.event_type is not None:
        return scenario.event_type
    if kind in (FailureKind.UNAVAILABLE, FailureKind.TIMEOUT):
        return EventType.AVAILABILITY_EVENT
    return EventType.ERROR_EVENT


def title_for(scenario: Scenario, settings: EventSettings) -> str:
    names = settings.service_names or {}
    service = names.get(scenario.app_key, scenario.app_key)
    return f"monitord: {service} {scenario.name} failing"


def entity_selector_for(scenario: Scenario, settings: EventSettings) -> str | None:
    return scenario.entity_selector or settings.default_entity_selector


def open_event(
    scenario: Scenario,
    settings: EventSettings,
    *,
    event_id: str,
    kind: FailureKind | None,
    failing_since: datetime,
    consecutive_failures: int,
    reasons: tuple[str, ...],
    now: datetime,
) -> OpenEvent:
    """A new failure period's event; its identity is fixed from here on."""
    return OpenEvent(
        scenario_id=scenario.id,
        event_id=event_id,
        event_type=event_type_for(scenario, kind),
        title=title_for(scenario, settings),
        entity_selector=entity_selector_for(scenario, settings),
        failing_since=failing_since,
        opened_at=now,
        refreshed_at=now,
        properties=properties(
            scenario,
            settings,
            event_id=event_id,
            failing_since=failing_since,
            consecutive_failures=consecutive_failures,
            reason=reason_text(reasons),
        ),
    )


def properties(
    scenario: Scenario,
    settings: EventSettings,
    *,
    event_id: str,
    failing_since: datetime,
    consecutive_failures: int,
    reason: str,
) -> dict[str, str]:
    """The ``monitord.*`` properties; every value is text, none is a secret."""
    props = {
        "monitord.scenario.id": scenario.id,
        "monitord.scenario.name": scenario.name,
        "monitord.scenario.type": scenario.type.value,
        "monitord.region": settings.region,
        "monitord.reason": reason,
        "monitord.consecutive_failures": str(consecutive_failures),
    }
    target = display_target(scenario)
    if target is not None:
        props["monitord.target"] = target
    props["monitord.event.id"] = event_id
    props["monitord.failing_since"] = format_timestamp(failing_since)
    return props


def updated_properties(
    event: OpenEvent, *, consecutive_failures: int, reasons: tuple[str, ...] | None
) -> dict[str, str]:
    """The event's properties with the current count and, when given, the latest reason."""
    props = dict(event.properties)
    props["monitord.consecutive_failures"] = str(consecutive_failures)
    if reasons is not None:
        props["monitord.reason"] = reason_text(reasons)
    return props


def body(
    event: OpenEvent,
    settings: EventSettings,
    *,
    start: datetime,
    end: datetime | None = None,
) -> dict[str, Any]:
    """The ingest body of one message of ``event``; ``end`` only for the close."""
    data: dict[str, Any] = {
        "eventType": event.event_type.value,
        "title": event.title,
        "startTime": to_millis(start),
    }
    if end is not None:
        data["endTime"] = to_millis(max(end, start))
    data["timeout"] = settings.timeout_minutes
    if event.entity_selector is not None:
        data["entitySelector"] = event.entity_selector
    data["properties"] = dict(event.properties)
    return data


def for_sending(data: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
    """The body as it goes out, after a delay in the outbox (an outage of the sink, a
    backlog). The platform ends an event ``timeout`` minutes after its ``startTime`` and
    refuses problem-opening start times older than 6 hours, so an open or refresh whose
    ``startTime`` is older than half its timeout goes out as now (a full timeout from its
    arrival), and a close older than 5 hours moves to now with ``endTime`` following."""
    out = dict(data)
    start = out.get("startTime")
    if not isinstance(start, int):
        return out
    end = out.get("endTime")
    if end is None:
        timeout = out.get("timeout")
        minutes = timeout if isinstance(timeout, int) and timeout > 0 else 15
        limit_ms = min(minutes * 30_000, int(MAX_START_AGE.total_seconds() * 1000))
        if start < now_ms - limit_ms:
            out["startTime"] = now_ms
    elif start < now_ms - int(MAX_START_AGE.total_seconds() * 1000):
        out["startTime"] = now_ms
        if isinstance(end, int):
            out["endTime"] = max(end, now_ms)
    return out


def reason_text(reasons: tuple[str, ...]) -> str:
    text = "; ".join(reasons) or "failed"
    if len(text) > MAX_REASON_CHARS:
        text = text[: MAX_REASON_CHARS - 1] + "…"
    return text


_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#@]*@")


def display_target(scenario: Scenario) -> str | None:
    """The target without anything that may be a secret: no user info, query or fragment,
    and ``${NAME}`` references as written rather than their values."""
    target = scenario.target
    if isinstance(target, HttpTarget):
        url = target.url_as_written or target.url
        url = url.split("#", 1)[0].split("?", 1)[0]
        return _USERINFO.sub(r"\1", url)
    if isinstance(target, SocketTarget):
        host = f"[{target.host}]" if ":" in target.host else target.host  # IPv6
        return f"{scenario.type.value.lower()}://{host}:{target.port}"
    return None


def to_millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
