"""The runner: real probes against real local servers, the deadline, and judging.

These go through the whole path of one run: probe under the scenario's timeout,
then the checks (in a worker thread when text must be parsed), into a Result.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from monitord.expressions import compile_expression
from monitord.model import (
    ByteCheck,
    Endian,
    FailureKind,
    IntType,
    LengthCheck,
    Observation,
    Operator,
    Outcome,
    Scenario,
    ScenarioType,
    TextCheck,
    TextKind,
    TextValidation,
    Validation,
)
from monitord.probes import Probe, open_probes
from monitord.runner import Runner
from tests.factories import RESULT_KEYS, api_scenario, socket_scenario
from tests.targets import (
    frame,
    refusing_tcp_port,
    tcp_target,
    wait_for_close,
    web_target,
)


class FixedClock:
    def __init__(self) -> None:
        self.wall = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return time.monotonic()


def text(kind: TextKind, *checks: tuple[str, Operator, str]) -> TextValidation:
    return TextValidation(
        kind, tuple(TextCheck(compile_expression(kind, e), op, v) for e, op, v in checks)
    )


@pytest.fixture
async def runner() -> AsyncIterator[Runner]:
    async with open_probes() as probes:
        runner = Runner(probes, FixedClock(), expression_budget_s=0.1)
        try:
            yield runner
        finally:
            runner.close()


async def test_json_success_result(runner: Runner) -> None:
    async with web_target() as target:
        scenario = api_scenario(
            target.url("/json"),
            text=text(
                TextKind.JSON,
                ("$.isSuccess", Operator.EQ, "true"),
                ("$.numErrors", Operator.LTE, "0"),
                ("$.items.length()", Operator.EQ, "2"),
            ),
        )
        result = await runner.run(scenario)
    assert (result.outcome, result.reasons, result.failure_kind) == (Outcome.SUCCESS, (), None)
    assert result.status_code == 200
    assert result.response_bytes == len(b'{"isSuccess": true, "numErrors": 0, "items": [1, 2]}')
    assert result.started_at == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert 0 < result.duration_ms < 5000
    document = result.to_json()
    assert list(document) == RESULT_KEYS
    assert document["startedAt"] == "2026-11-23T10:00:00.000Z"
    assert document["result"] == "success"


async def test_every_failing_check_is_reported(runner: Runner) -> None:
    async with web_target() as target:
        scenario = api_scenario(
            target.url("/json"),
            response_codes=("201",),
            text=text(
                TextKind.JSON,
                ("$.numErrors", Operator.GT, "0"),
                ("$.isSuccess", Operator.EQ, "true"),
                ("$.missing", Operator.EQ, "x"),
            ),
        )
        result = await runner.run(scenario)
    assert result.outcome is Outcome.FAILURE
    assert result.failure_kind is FailureKind.WRONG_ANSWER
    assert result.reasons == (
        "responseCodes 201: got 200",
        "$.numErrors GT 0: got 0",
        "$.missing EQ x: matched nothing",
    )


async def test_html_and_xml_through_the_runner(runner: Runner) -> None:
    async with web_target() as target:
        html = await runner.run(
            api_scenario(
                target.url("/html"),
                text=text(
                    TextKind.HTML,
                    ("//title", Operator.EQ, "Café"),  # served as ISO-8859-1
                    ("//p[@id='s']", Operator.EQ, "ok"),
                ),
            )
        )
        xml = await runner.run(
            api_scenario(
                target.url("/xml"),
                text=text(
                    TextKind.XML,
                    ("/status/ok", Operator.EQ, "true"),
                    ("/status/count", Operator.GTE, "4"),
                ),
            )
        )
    assert (html.outcome, html.reasons) == (Outcome.SUCCESS, ())
    assert (xml.outcome, xml.reasons) == (Outcome.FAILURE, ('/status/count GTE 4: got "3"',))


async def test_xxe_in_a_response_is_not_resolved(runner: Runner, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("MONITORD-XXE-MARKER", encoding="utf-8")
    body = (
        f'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY x SYSTEM "file://{secret}">]>'
        "<s><v>&x;</v><w>ok</w></s>"
    ).encode()

    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/xml")

    async with served(handler) as url:
        result = await runner.run(
            api_scenario(
                url,
                text=text(
                    TextKind.XML,
                    ("/s/v", Operator.NOT_CONTAINS, "MONITORD-XXE-MARKER"),
                    ("/s/w", Operator.EQ, "ok"),
                ),
            )
        )
    assert (result.outcome, result.reasons) == (Outcome.SUCCESS, ())


async def test_catastrophic_regex_fails_the_check_and_the_loop_keeps_running(
    runner: Runner,
) -> None:
    document = {"items": [{"s": "a" * 5000 + "!"}]}

    async def handler(_: web.Request) -> web.Response:
        return web.json_response(document)

    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.005)

    async with served(handler) as url:
        scenario = api_scenario(
            url,
            text=text(
                TextKind.JSON,
                ('$.items[?(@.s =~ "^(a|a?)+$")].s', Operator.CONTAINS, "a"),
                ("$.items.length()", Operator.EQ, "1"),
            ),
        )
        ticking = asyncio.create_task(ticker())
        try:
            async with asyncio.timeout(10):  # a hang fails here, not in CI's timeout
                result = await runner.run(scenario)
        finally:
            ticking.cancel()
    assert result.outcome is Outcome.FAILURE
    assert result.reasons == (
        '$.items[?(@.s =~ "^(a|a?)+$")].s CONTAINS a: exceeded the 100 ms time budget',
    )
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) > 10
    assert max(gaps) < 0.5  # the event loop was never blocked by the regex


async def test_timeout_covers_the_whole_exchange(runner: Runner) -> None:
    release = asyncio.Event()

    async def slow(_: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="late")

    async with served(slow) as url:
        started = time.monotonic()
        result = await runner.run(api_scenario(url, timeout_ms=200))
        elapsed = time.monotonic() - started
        release.set()
    assert (result.outcome, result.reasons) == (Outcome.FAILURE, ("timeout after 200 ms",))
    assert result.failure_kind is FailureKind.TIMEOUT
    assert result.status_code is None
    assert result.response_bytes is None
    assert 0.2 <= elapsed < 2


async def test_tcp_timeout_and_refused(runner: Runner) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await wait_for_close(reader)

    async with tcp_target(silent) as address:
        timed_out = await runner.run(
            socket_scenario(ScenarioType.TCP, address.host, address.port, timeout_ms=150)
        )
    with refusing_tcp_port() as address:
        refused = await runner.run(socket_scenario(ScenarioType.TCP, address.host, address.port))
    assert (timed_out.reasons, timed_out.failure_kind) == (
        ("timeout after 150 ms",),
        FailureKind.TIMEOUT,
    )
    assert (refused.reasons, refused.failure_kind) == (
        ("connection refused",),
        FailureKind.UNAVAILABLE,
    )


async def test_tcp_length_prefixed_reply_judged(runner: Runner) -> None:
    async def framed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.read(100)
        writer.write(frame(b"HELLO " + request))
        await writer.drain()
        await wait_for_close(reader)  # keeps the connection open: the length ends the read

    async with tcp_target(framed) as address:
        result = await runner.run(
            socket_scenario(
                ScenarioType.TCP,
                address.host,
                address.port,
                request=b"world",
                byte_checks=(ByteCheck(0, b"\xab\x01", is_hex=True), ByteCheck(6, b"HELLO world")),
                length=LengthCheck(Endian.BIG, 2, IntType.INT, 6),
            )
        )
    assert (result.outcome, result.reasons, result.response_bytes) == (Outcome.SUCCESS, (), 17)


async def test_oversized_and_suppressed(runner: Runner) -> None:
    async def maintenance(_: web.Request) -> web.Response:
        return web.Response(status=503, text="down for planned maintenance")

    async with web_target() as target:
        big = await runner.run(api_scenario(target.url("/bytes/2048"), max_response_bytes=1024))
    async with served(maintenance) as url:
        quiet = await runner.run(
            api_scenario(
                url,
                avoiding_text="planned maintenance",
                text=text(TextKind.JSON, ("$.ok", Operator.EQ, "true")),
            )
        )
    assert (big.outcome, big.reasons) == (Outcome.FAILURE, ("response larger than 1024 bytes",))
    assert (quiet.outcome, quiet.reasons, quiet.failure_kind) == (
        Outcome.SUPPRESSED,
        ('avoidingValidationText "planned maintenance" found in body',),
        None,
    )
    assert quiet.status_code == 503


async def test_a_probe_that_raises_anything_becomes_a_failure() -> None:
    async def broken(scenario: Scenario) -> Observation:
        raise RuntimeError("boom")

    probes: dict[ScenarioType, Probe] = {ScenarioType.API: broken}
    runner = Runner(probes, FixedClock())
    try:
        result = await runner.run(api_scenario("http://127.0.0.1:9/"))
    finally:
        runner.close()
    assert result.outcome is Outcome.FAILURE
    assert result.reasons == ("probe error: RuntimeError: boom",)


async def test_batch_scenarios_are_not_probed(runner: Runner) -> None:
    scenario = api_scenario("http://127.0.0.1:9/")
    with pytest.raises(ValueError, match="BATCH scenarios are not probed"):
        await runner.run(replace(scenario, type=ScenarioType.BATCH, target=None))


async def test_json_result_line_round_trips(runner: Runner) -> None:
    async with web_target() as target:
        result = await runner.run(api_scenario(target.url("/status/500")))
    line = json.dumps(result.to_json())
    assert json.loads(line)["reasons"] == ["responseCodes 2xx: got 500"]
    assert json.loads(line)["statusCode"] == 500


# --- a one-handler server -----------------------------------------------------------------


@asynccontextmanager
async def served(handler: web.Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("kind", "expression", "body", "on_the_loop"),
    [
        pytest.param(TextKind.JSON, "$.status", b'{"status": "ok"}', True, id="small JSON"),
        pytest.param(
            TextKind.JSON,
            "$.status",
            b'{"status": "ok", "pad": "' + b"x" * 17_000 + b'"}',
            False,
            id="JSON over 16 KiB",
        ),
        pytest.param(
            TextKind.JSON,
            "$[?(@.status =~ 'o.*')].status",
            b'[{"status": "ok"}]',
            False,
            id="regex filter",
        ),
        pytest.param(TextKind.XML, "/r/status", b"<r><status>ok</status></r>", False, id="XML"),
    ],
)
async def test_small_json_is_judged_on_the_loop_the_rest_in_a_thread(
    kind: TextKind, expression: str, body: bytes, on_the_loop: bool
) -> None:
    """Small JSON without regular expressions needs no worker thread: with the worker
    pool shut down it is still judged, while the other kinds of work cannot be."""
    async with open_probes() as probes:
        runner = Runner(probes, FixedClock())
        runner.close()
        validation = Validation(timeout_ms=1000, text=text(kind, (expression, Operator.EQ, "ok")))
        verdict = await runner.judge(validation, Observation(body=body, status_code=200))
    if on_the_loop:
        assert verdict.outcome is Outcome.SUCCESS, verdict
    else:
        assert verdict.reasons == ("validation error: RuntimeError",)


async def test_judging_on_the_loop_turns_an_unexpected_error_into_a_failure() -> None:
    """A bug in judging must fail the check with a reason, not escape to the caller."""
    async with open_probes() as probes:
        runner = Runner(probes, FixedClock())
        validation = Validation(
            timeout_ms=1000, text=text(TextKind.JSON, ("$.a", Operator.EQ, "1"))
        )
        not_bytes: Any = [b'{"a": 1}']  # parsing expects bytes: raises inside judging
        verdict = runner.judge_now(validation, Observation(body=not_bytes))
        runner.close()
    assert verdict is not None
    assert verdict.outcome is Outcome.FAILURE
    assert verdict.reasons[0].startswith("validation error: ")


async def test_judge_now_leaves_work_for_a_thread_to_judge_in_thread() -> None:
    async with open_probes() as probes:
        runner = Runner(probes, FixedClock())
        xml = Validation(timeout_ms=1000, text=text(TextKind.XML, ("/r/s", Operator.EQ, "ok")))
        observation = Observation(body=b"<r><s>ok</s></r>", status_code=200)
        assert runner.judge_now(xml, observation) is None
        verdict = await runner.judge_in_thread(xml, observation)
        runner.close()
    assert verdict.outcome is Outcome.SUCCESS, verdict
