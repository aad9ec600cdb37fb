"""Log lines: what a client can make the daemon log stays one line, without a traceback."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from aiohttp.http_exceptions import ContentEncodingError
from aiohttp.web import RequestPayloadError

from monitord.logs import ClientErrorFilter, Throttle, setup_logging


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    text = io.StringIO()
    setup_logging("text", "INFO", text)
    yield text
    root.handlers[:] = handlers
    root.setLevel(level)


def _log_error_with(exc: BaseException) -> None:
    try:
        raise exc
    except BaseException:
        logging.getLogger("aiohttp.server").exception("Error handling request")


@pytest.mark.parametrize(
    "exc",
    [
        ContentEncodingError("Can not decode content-encoding: gzip"),
        RequestPayloadError("400, message:\n  Can not decode content-encoding: gzip"),
    ],
)
def test_a_clients_broken_body_is_one_warning_line(stream: io.StringIO, exc: Exception) -> None:
    _log_error_with(exc)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert " WARNING aiohttp.server: bad request from a client: " in lines[0]
    assert "Can not decode content-encoding: gzip" in lines[0]
    assert "Traceback" not in stream.getvalue()


def test_other_server_errors_keep_their_traceback(stream: io.StringIO) -> None:
    _log_error_with(RuntimeError("a bug"))
    text = stream.getvalue()
    assert " ERROR aiohttp.server: Error handling request" in text
    assert "Traceback" in text
    assert "RuntimeError: a bug" in text


def test_setting_up_twice_adds_the_filter_once(stream: io.StringIO) -> None:
    setup_logging("text", "INFO", stream)
    filters = logging.getLogger("aiohttp.server").filters
    assert sum(isinstance(f, ClientErrorFilter) for f in filters) == 1


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_a_passing_run_is_a_debug_line_and_a_failure_a_warning(level: str) -> None:
    """At INFO (the daemon's default) only failed runs are logged; DEBUG adds the rest."""
    from datetime import UTC, datetime

    from monitord.model import Outcome, Result, ScenarioType
    from monitord.monitor import _log_result
    from tests.factories import api_scenario

    root = logging.getLogger()
    handlers, old_level = root.handlers[:], root.level
    text = io.StringIO()
    setup_logging("text", level, text)
    try:
        scenario = api_scenario("http://127.0.0.1:1/")
        for outcome in (Outcome.SUCCESS, Outcome.SUPPRESSED, Outcome.FAILURE):
            result = Result(
                scenario_id=scenario.id,
                scenario_name=scenario.name,
                scenario_type=ScenarioType.API,
                outcome=outcome,
                reasons=("why",) if outcome is not Outcome.SUCCESS else (),
                started_at=datetime.now(UTC),
                duration_ms=1.5,
            )
            _log_result(scenario, result)
    finally:
        root.handlers[:] = handlers
        root.setLevel(old_level)
    lines = text.getvalue().splitlines()
    failure = [line for line in lines if "failure in 1.5 ms: why" in line]
    assert len(failure) == 1
    assert " WARNING " in failure[0]
    assert f"scenario_id={scenario.id}" in failure[0]
    quiet = [line for line in lines if "success in" in line or "suppressed in" in line]
    assert len(quiet) == (2 if level == "DEBUG" else 0)
    assert all(" DEBUG " in line for line in quiet)


# --- throttled lines ------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_logs_the_first_then_one_line_per_window_with_what_it_held() -> None:
    clock = _Clock()
    throttle = Throttle(60, clock)
    assert throttle.allow("a") == 0  # the first: logged, nothing held before it
    clock.now += 10
    assert throttle.allow("a") is None
    assert throttle.allow("a", 3) is None  # an occurrence may stand for several events
    assert throttle.allow("b") == 0  # keys are independent
    clock.now += 49.9
    assert throttle.allow("a") is None  # still inside the window of the first line
    clock.now += 0.1
    assert throttle.allow("a") == 5  # 1 + 3 + 1 held since the first line
    assert throttle.allow("a") is None  # a new window starts with that line
    clock.now += 60
    assert throttle.allow("a") == 1
    assert throttle.allow("b") == 0


def test_throttle_forgets_keys_quiet_for_two_windows() -> None:
    clock = _Clock()
    throttle = Throttle(60, clock)
    assert throttle.allow("gone") == 0
    assert throttle.allow("gone") is None  # held: 1
    clock.now += 121  # the next call prunes what has been quiet for two windows
    assert throttle.allow("other") == 0
    assert throttle._seen.keys() == {"other"}
    assert throttle.allow("gone") == 0  # a fresh start, without the stale count


def test_skipped_and_missed_runs_log_one_line_per_scenario_and_window(
    stream: io.StringIO,
) -> None:
    """A scenario whose runs outlast its interval skips every other slot: every skip is
    counted, but the log gets one line per scenario and window, not one per slot."""
    from monitord.metrics import Metrics
    from monitord.monitor import SCHEDULE_LOG_WINDOW_S, _ScheduleMetrics
    from tests.factories import api_scenario
    from tests.test_metrics import scrape, values

    clock = _Clock()
    metrics = Metrics()
    schedule = _ScheduleMetrics(metrics, clock)
    slow, other = api_scenario("http://127.0.0.1:1/a"), api_scenario("http://127.0.0.1:1/b")
    for _ in range(50):
        schedule.skipped(slow, 1)
        clock.now += 1
    schedule.skipped(other, 1)
    schedule.missed(slow, 4)
    schedule.missed(slow, 2)
    clock.now += SCHEDULE_LOG_WINDOW_S
    schedule.skipped(slow, 1)
    schedule.missed(slow, 1)

    lines = stream.getvalue().splitlines()
    skipped = [line for line in lines if "run skipped" in line]
    assert len(skipped) == 3, skipped
    assert f"scenario_id={slow.id}" in skipped[0]
    assert "more runs" not in skipped[0]
    assert f"scenario_id={other.id}" in skipped[1]
    assert f"scenario_id={slow.id}" in skipped[2]
    assert "; 49 more runs skipped since the last such line" in skipped[2]
    missed = [line for line in lines if "scheduled runs missed" in line]
    assert len(missed) == 2, missed
    assert "4 scheduled runs missed" in missed[0]
    assert "; 2 more runs missed since the last such line" in missed[1]
    assert all(" WARNING " in line for line in skipped + missed)
    families, _, _ = scrape(metrics, [], {})
    assert values(families["monitord_schedule_skipped"]) == {(): 52.0}
    assert values(families["monitord_schedule_missed"]) == {(): 7.0}
