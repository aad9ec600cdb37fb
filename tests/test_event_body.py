"""Event bodies (SPEC §6): type, title, entity, properties, target, reason and send time."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitord.config.scenarios import load_text
from monitord.config.settings import Config
from monitord.events.body import (
    MAX_REASON_CHARS,
    EventSettings,
    OpenEvent,
    body,
    display_target,
    entity_selector_for,
    event_type_for,
    for_sending,
    open_event,
    properties,
    reason_text,
    title_for,
    to_millis,
    updated_properties,
)
from monitord.model import EventType, FailureKind, HttpTarget, Scenario, ScenarioType
from tests.factories import api_scenario, socket_scenario

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
T0_MS = 1_795_428_000_000  # T0 in milliseconds since the epoch
SID = "0c96cff0-edc2-11ea-9760-8d94f461e6d4"
DEFAULT_SELECTOR = "type(SERVICE),entityName.equals(default)"
OWN_SELECTOR = "type(SERVICE),entityName.equals(shop)"
SETTINGS = EventSettings(
    region="KOR",
    timeout_minutes=20,
    default_entity_selector=DEFAULT_SELECTOR,
    service_names={"shop": "Shop Service"},
)
SPEC_PROPERTIES = {
    "monitord.scenario.id",
    "monitord.scenario.name",
    "monitord.scenario.type",
    "monitord.region",
    "monitord.reason",
    "monitord.consecutive_failures",
    "monitord.target",
    "monitord.event.id",
    "monitord.failing_since",
}


def shop_scenario(**changes: Any) -> Scenario:
    base = replace(
        api_scenario("https://shop.test/health", name="shop api health"), id=SID, app_key="shop"
    )
    return replace(base, **changes)


def batch_scenario() -> Scenario:
    return replace(shop_scenario(), type=ScenarioType.BATCH, target=None, name="nightly import")


def make_event(scenario: Scenario, settings: EventSettings = SETTINGS, **kw: Any) -> OpenEvent:
    args: dict[str, Any] = {
        "event_id": "ev-1",
        "kind": FailureKind.TIMEOUT,
        "failing_since": T0,
        "consecutive_failures": 3,
        "reasons": ("timed out after 2000 ms",),
        "now": T0 + timedelta(minutes=2),
    }
    args.update(kw)
    return open_event(scenario, settings, **args)


def test_t0_millis_constant() -> None:
    """The millisecond constant used below is T0."""
    assert to_millis(T0) == T0_MS
    assert to_millis(T0 + timedelta(microseconds=1999)) == T0_MS + 1


# --- type, title, entity -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (FailureKind.UNAVAILABLE, EventType.AVAILABILITY_EVENT),
        (FailureKind.TIMEOUT, EventType.AVAILABILITY_EVENT),
        (FailureKind.WRONG_ANSWER, EventType.ERROR_EVENT),
        (None, EventType.ERROR_EVENT),
    ],
)
def test_event_type_follows_the_failure_kind(kind: FailureKind | None, expected: EventType) -> None:
    """Unreachable or timed out: availability; a wrong answer (or no kind): error."""
    assert event_type_for(shop_scenario(), kind) is expected


@pytest.mark.parametrize("kind", [*FailureKind, None])
@pytest.mark.parametrize("override", list(EventType))
def test_the_scenarios_event_type_overrides_both_ways(
    kind: FailureKind | None, override: EventType
) -> None:
    """A scenario's eventType wins over whatever the failure kind suggests."""
    assert event_type_for(shop_scenario(event_type=override), kind) is override


def test_title_uses_the_configured_service_name() -> None:
    """An appKey listed under services shows as the service's name."""
    assert title_for(shop_scenario(), SETTINGS) == "monitord: Shop Service shop api health failing"


@pytest.mark.parametrize("names", [None, {}, {"other": "Other Service"}])
def test_title_falls_back_to_the_bare_app_key(names: dict[str, str] | None) -> None:
    """Without a service name for its appKey, the title shows the appKey itself."""
    settings = replace(SETTINGS, service_names=names)
    assert title_for(shop_scenario(), settings) == "monitord: shop shop api health failing"


def test_entity_selector_precedence() -> None:
    """The scenario's selector, else the configured default, else none at all."""
    no_default = replace(SETTINGS, default_entity_selector=None)
    own = shop_scenario(entity_selector=OWN_SELECTOR)
    assert entity_selector_for(own, SETTINGS) == OWN_SELECTOR
    assert entity_selector_for(own, no_default) == OWN_SELECTOR
    assert entity_selector_for(shop_scenario(), SETTINGS) == DEFAULT_SELECTOR
    assert entity_selector_for(shop_scenario(), no_default) is None


def test_entity_selector_in_the_body() -> None:
    """The chosen selector is in the body; without one the key is absent, not null."""
    own = body(make_event(shop_scenario(entity_selector=OWN_SELECTOR)), SETTINGS, start=T0)
    assert own["entitySelector"] == OWN_SELECTOR
    default = body(make_event(shop_scenario()), SETTINGS, start=T0)
    assert default["entitySelector"] == DEFAULT_SELECTOR
    no_default = replace(SETTINGS, default_entity_selector=None)
    bare = body(make_event(shop_scenario(), no_default), no_default, start=T0)
    assert "entitySelector" not in bare
    assert list(bare) == ["eventType", "title", "startTime", "timeout", "properties"]


# --- exact bodies ----------------------------------------------------------------------------


def expected_properties(**changes: str) -> dict[str, str]:
    props = {
        "monitord.scenario.id": SID,
        "monitord.scenario.name": "shop api health",
        "monitord.scenario.type": "API",
        "monitord.region": "KOR",
        "monitord.reason": "timed out after 2000 ms",
        "monitord.consecutive_failures": "3",
        "monitord.target": "https://shop.test/health",
        "monitord.event.id": "ev-1",
        "monitord.failing_since": "2026-11-23T10:00:00.000Z",
    }
    props.update(changes)
    return props


def test_open_event_identity_and_properties() -> None:
    """open_event fixes type, title and selector and records the period's start."""
    event = make_event(shop_scenario(), failing_since=T0 + timedelta(milliseconds=250))
    assert event == OpenEvent(
        scenario_id=SID,
        event_id="ev-1",
        event_type=EventType.AVAILABILITY_EVENT,
        title="monitord: Shop Service shop api health failing",
        entity_selector=DEFAULT_SELECTOR,
        failing_since=T0 + timedelta(milliseconds=250),
        opened_at=T0 + timedelta(minutes=2),
        refreshed_at=T0 + timedelta(minutes=2),
        properties=expected_properties(**{"monitord.failing_since": "2026-11-23T10:00:00.250Z"}),
    )


def test_exact_open_body() -> None:
    """The open body: startTime in ms, timeout from settings, no endTime."""
    event = make_event(shop_scenario())
    data = body(event, SETTINGS, start=T0 + timedelta(minutes=2))
    assert data == {
        "eventType": "AVAILABILITY_EVENT",
        "title": "monitord: Shop Service shop api health failing",
        "startTime": T0_MS + 120_000,
        "timeout": 20,
        "entitySelector": DEFAULT_SELECTOR,
        "properties": expected_properties(),
    }
    assert list(data) == [
        "eventType",
        "title",
        "startTime",
        "timeout",
        "entitySelector",
        "properties",
    ]
    assert set(data["properties"]) == SPEC_PROPERTIES
    assert all(isinstance(v, str) for v in data["properties"].values())


def test_exact_refresh_body() -> None:
    """A refresh: same identity, startTime = now, the current count and reason."""
    event = make_event(shop_scenario())
    props = updated_properties(event, consecutive_failures=7, reasons=("connection refused",))
    later = replace(event, refreshed_at=T0 + timedelta(minutes=10), properties=props)
    data = body(later, SETTINGS, start=later.refreshed_at)
    assert data == {
        "eventType": "AVAILABILITY_EVENT",
        "title": "monitord: Shop Service shop api health failing",
        "startTime": T0_MS + 600_000,
        "timeout": 20,
        "entitySelector": DEFAULT_SELECTOR,
        "properties": expected_properties(
            **{"monitord.consecutive_failures": "7", "monitord.reason": "connection refused"}
        ),
    }


def test_exact_close_body() -> None:
    """The close: the last message again, with endTime in ms."""
    event = make_event(shop_scenario())
    props = updated_properties(event, consecutive_failures=8, reasons=None)
    closing = replace(event, properties=props)
    start = T0 + timedelta(minutes=2)
    data = body(closing, SETTINGS, start=start, end=T0 + timedelta(minutes=12, seconds=1.5))
    assert data == {
        "eventType": "AVAILABILITY_EVENT",
        "title": "monitord: Shop Service shop api health failing",
        "startTime": T0_MS + 120_000,
        "endTime": T0_MS + 721_500,
        "timeout": 20,
        "entitySelector": DEFAULT_SELECTOR,
        "properties": expected_properties(**{"monitord.consecutive_failures": "8"}),
    }
    assert list(data) == [
        "eventType",
        "title",
        "startTime",
        "endTime",
        "timeout",
        "entitySelector",
        "properties",
    ]


def test_end_time_is_never_before_start_time() -> None:
    """An end before the start (a refresh queued while the recovering run ran) is raised to it."""
    event = make_event(shop_scenario())
    data = body(event, SETTINGS, start=T0 + timedelta(minutes=10), end=T0 + timedelta(minutes=9))
    assert data["startTime"] == T0_MS + 600_000
    assert data["endTime"] == T0_MS + 600_000


def test_body_properties_are_a_copy() -> None:
    """Changing a body's properties leaves the event untouched."""
    event = make_event(shop_scenario())
    data = body(event, SETTINGS, start=T0)
    data["properties"]["monitord.reason"] = "changed"
    assert event.properties["monitord.reason"] == "timed out after 2000 ms"


def test_updated_properties_keeps_the_reason_without_new_reasons() -> None:
    """Only the count changes when no reasons are given; the event is not changed."""
    event = make_event(shop_scenario())
    assert updated_properties(event, consecutive_failures=9, reasons=None) == expected_properties(
        **{"monitord.consecutive_failures": "9"}
    )
    assert updated_properties(event, consecutive_failures=9, reasons=()) == expected_properties(
        **{"monitord.consecutive_failures": "9", "monitord.reason": "failed"}
    )
    assert event.properties == expected_properties()


# --- target ----------------------------------------------------------------------------------

SECRET = "S3CRET-VALUE-42"
SECRET_URL = """
scenarioName: secret path
scenarioType: API
appKey: shop
url: https://admin:pa55w0rd@api.test:8443/v1/${TOKEN}/items?apikey=q-key-77#frag-part
monitoringInterval: 30
"""


def test_api_target_hides_secrets_and_shows_references_as_written() -> None:
    """No user info, query or fragment; ``${TOKEN}`` is shown, never its value."""
    loaded = load_text(SECRET_URL, "s.yaml", Config(), {"TOKEN": SECRET}, T0)
    assert loaded.errors == ()
    (scenario,) = loaded.scenarios
    assert scenario.target is not None
    assert SECRET in getattr(scenario.target, "url", "")  # the run uses the value
    assert display_target(scenario) == "https://api.test:8443/v1/${TOKEN}/items"
    event = make_event(scenario)
    assert event.properties["monitord.target"] == "https://api.test:8443/v1/${TOKEN}/items"
    text = json.dumps(body(event, SETTINGS, start=T0, end=T0))
    for secret in (SECRET, "pa55w0rd", "admin", "q-key-77", "apikey", "frag-part"):
        assert secret not in text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://u:p@host.test/a/b", "http://host.test/a/b"),
        ("https://host.test/?token=x", "https://host.test/"),
        ("https://host.test/p#token=x", "https://host.test/p"),
        ("https://u@host.test:81/p?q=1#f", "https://host.test:81/p"),
        ("https://host.test/path@v2/x", "https://host.test/path@v2/x"),
    ],
)
def test_display_target_of_written_urls(url: str, shown: str) -> None:
    """Each secret-bearing part is removed; an ``@`` in the path is not user info."""
    scenario = shop_scenario(target=HttpTarget(url, "GET", url_as_written=url))
    assert display_target(scenario) == shown


@pytest.mark.parametrize(
    ("kind", "host", "port", "shown"),
    [
        (ScenarioType.TCP, "db.internal", 5432, "tcp://db.internal:5432"),
        (ScenarioType.UDP, "10.0.0.5", 514, "udp://10.0.0.5:514"),
    ],
)
def test_socket_targets(kind: ScenarioType, host: str, port: int, shown: str) -> None:
    """TCP and UDP targets show as ``<type>://host:port``."""
    scenario = socket_scenario(kind, host, port, request=b"secret-request", name="sock")
    event = make_event(scenario)
    assert event.properties["monitord.target"] == shown
    assert event.properties["monitord.scenario.type"] == kind.value
    assert set(event.properties) == SPEC_PROPERTIES
    assert "secret-request" not in json.dumps(body(event, SETTINGS, start=T0))


def test_batch_has_no_target_property() -> None:
    """A BATCH scenario has no target, so no ``monitord.target``."""
    scenario = batch_scenario()
    assert display_target(scenario) is None
    props = properties(
        scenario,
        SETTINGS,
        event_id="ev-9",
        failing_since=T0,
        consecutive_failures=1,
        reason="payload did not arrive",
    )
    assert props == {
        "monitord.scenario.id": SID,
        "monitord.scenario.name": "nightly import",
        "monitord.scenario.type": "BATCH",
        "monitord.region": "KOR",
        "monitord.reason": "payload did not arrive",
        "monitord.consecutive_failures": "1",
        "monitord.event.id": "ev-9",
        "monitord.failing_since": "2026-11-23T10:00:00.000Z",
    }
    assert set(props) == SPEC_PROPERTIES - {"monitord.target"}


# --- reason ----------------------------------------------------------------------------------


def test_reason_text_joins_reasons() -> None:
    """Reasons are joined with ``; ``; a single reason stays as it is."""
    assert reason_text(("status 503 not in [2xx]", "$.ok EQ true: got false")) == (
        "status 503 not in [2xx]; $.ok EQ true: got false"
    )
    assert reason_text(("only",)) == "only"


def test_reason_text_without_reasons_is_failed() -> None:
    """No reasons at all read ``failed``."""
    assert reason_text(()) == "failed"


def test_reason_text_is_capped() -> None:
    """At most 1000 characters, the last an ellipsis; exactly 1000 is kept whole."""
    assert MAX_REASON_CHARS == 1000
    exact = "x" * 1000
    assert reason_text((exact,)) == exact
    long = reason_text(("a" * 600, "b" * 600))
    assert len(long) == 1000
    assert long == "a" * 600 + "; " + "b" * 397 + "…"


# --- for_sending -----------------------------------------------------------------------------

NOW_MS = T0_MS + 7 * 3_600_000


def test_for_sending_keeps_a_recent_start() -> None:
    """A close whose startTime is within 5 hours goes out as it is."""
    data = {"startTime": NOW_MS - 4 * 3_600_000, "endTime": NOW_MS - 60_000, "title": "t"}
    assert for_sending(data, NOW_MS) == data


def test_for_sending_moves_an_old_start_to_now_and_end_follows() -> None:
    """A startTime 6 hours old moves to now; an endTime before now moves with it."""
    start = NOW_MS - 6 * 3_600_000
    data: dict[str, Any] = {"startTime": start, "endTime": start + 60_000, "timeout": 20}
    original = dict(data)
    assert for_sending(data, NOW_MS) == {"startTime": NOW_MS, "endTime": NOW_MS, "timeout": 20}
    assert data == original  # the stored body is not changed
    open_body = {"startTime": start, "timeout": 20}
    assert for_sending(open_body, NOW_MS) == {"startTime": NOW_MS, "timeout": 20}
    assert open_body == {"startTime": start, "timeout": 20}


def test_for_sending_an_open_or_refresh_older_than_half_its_timeout_goes_out_as_now() -> None:
    """A delayed open or refresh would reach the platform already expired: it goes out
    with startTime = now once older than half its timeout; a younger one is kept, and a
    close of the same age keeps its times."""
    late = {"startTime": NOW_MS - 11 * 60_000, "timeout": 20}
    assert for_sending(late, NOW_MS) == {"startTime": NOW_MS, "timeout": 20}
    fresh = {"startTime": NOW_MS - 9 * 60_000, "timeout": 20}
    assert for_sending(fresh, NOW_MS) == fresh
    untimed = {"startTime": NOW_MS - 8 * 60_000}  # the platform's default: 15 minutes
    assert for_sending(untimed, NOW_MS) == {"startTime": NOW_MS}
    closing = {"startTime": NOW_MS - 11 * 60_000, "endTime": NOW_MS - 60_000, "timeout": 20}
    assert for_sending(closing, NOW_MS) == closing


def test_for_sending_keeps_an_end_after_now() -> None:
    """An endTime already later than now stays."""
    data = {"startTime": NOW_MS - 6 * 3_600_000, "endTime": NOW_MS + 5_000}
    assert for_sending(data, NOW_MS) == {"startTime": NOW_MS, "endTime": NOW_MS + 5_000}


@pytest.mark.parametrize("value", [None, "1", float(NOW_MS - 6 * 3_600_000), [1]])
def test_for_sending_leaves_non_integer_start_times(value: object) -> None:
    """Only an integer startTime is looked at."""
    data = {"startTime": value, "endTime": 5}
    assert for_sending(data, NOW_MS) == {"startTime": value, "endTime": 5}


def test_for_sending_without_start_time() -> None:
    """A body without startTime goes out unchanged, as a new mapping."""
    data = {"title": "t"}
    out = for_sending(data, NOW_MS)
    assert out == {"title": "t"}
    assert out is not data
