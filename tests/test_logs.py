"""Log lines: what a client can make the daemon log stays one line, without a traceback."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from aiohttp.http_exceptions import ContentEncodingError
from aiohttp.web import RequestPayloadError

from monitord.logs import ClientErrorFilter, setup_logging


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
