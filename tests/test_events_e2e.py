"""End to end: failure events from ``monitord run`` (a subprocess) to a local events sink.

The sink (``tests.sink``) records every request and answers as each test scripts it.
Every wait polls with a deadline. Delivery is at least once: a message may arrive twice
only when the daemon was killed between sending it and recording the answer, and then
with the same ``Idempotency-Key``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import signal
import socket
import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.sink import (
    EventSink,
    Received,
    created,
    drip,
    event_sink,
    hang,
    status,
    too_many,
)
from tests.targets import refusing_tcp_port
from tests.test_daemon import (
    ADMIN,
    Daemon,
    get_json,
    running,
    scrape,
    started,
    target_server,
    value,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.e2e

TOKEN = "events-token-e2e-0123456789"
CHECK = "/check"  # the target path the scenarios probe: numErrors from target.errors
ENV = {"EVTOKEN": TOKEN}


def events_config(directory: Path, url: str, **keys: Any) -> Path:
    settings = {"refreshSeconds": 1, "retryMaxSeconds": 1, "sendTimeoutSeconds": 3, **keys}
    lines = [f"  url: {url}", "  token: {env: EVTOKEN}"]
    lines += [f"  {key}: {value}" for key, value in settings.items()]
    return write_config(directory, "events:\n" + "\n".join(lines) + "\n")


def api_yaml(name: str, url: str, error_limit: int, **extra: Any) -> str:
    lines = [
        f"- scenarioName: {name}",
        "  scenarioType: API",
        f"  url: {url}",
        "  monitoringInterval: 1",
        f"  errorLimitCount: {error_limit}",
        *(f"  {key}: {value}" for key, value in extra.items()),
        "  validation:",
        "    timeout: 3000",
        "    textValidation:",
        "      textValidationType: JSON",
        '      textValidationInfos: [{expression: $.numErrors, operator: EQ, operand: "0"}]',
    ]
    return "\n".join(lines) + "\n"


def tcp_yaml(name: str, port: int) -> str:
    return (
        f"- scenarioName: {name}\n  scenarioType: TCP\n  ip: 127.0.0.1\n  port: {port}\n"
        "  monitoringInterval: 1\n  errorLimitCount: 0\n  validation: {timeout: 2000}\n"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- reading what the sink received -----------------------------------------------------------


def key(r: Received) -> str:
    return r.headers.get("Idempotency-Key", "")


def seq_of(r: Received) -> int:
    return int(key(r).rsplit("-", 1)[1])


def event_id(r: Received) -> str:
    assert r.event is not None
    return str(r.event["properties"]["monitord.event.id"])


def scenario_name(r: Received) -> str:
    assert r.event is not None
    return str(r.event["properties"]["monitord.scenario.name"])


def is_close(r: Received) -> bool:
    return r.event is not None and "endTime" in r.event


def answered(sink: EventSink) -> list[Received]:
    """Requests the sink took (answered 201, at once or slowly), in arrival order."""
    return [r for r in sink.received if r.answer in ("created", "drip")]


def closes(sink: EventSink, name: str) -> list[Received]:
    return [r for r in answered(sink) if scenario_name(r) == name and is_close(r)]


def check_periods(requests: list[Received]) -> dict[str, list[Received]]:
    """The messages of each failure period (by event id), checking the at-least-once rules:

    - within a scenario, messages arrive in outbox order, each period's messages together:
      a new period's first message comes only after the previous period's close;
    - a message seen twice carries the same Idempotency-Key and the same body;
    - every period ends with exactly one close (repeats of it aside), and begins with an
      open: its first message has no endTime.
    """
    by_key: dict[str, Received] = {}
    firsts: list[Received] = []
    for r in requests:
        seen = by_key.get(key(r))
        if seen is None:
            by_key[key(r)] = r
            firsts.append(r)
        else:
            assert r.body == seen.body, f"a resend of {key(r)} changed the body"
    periods: dict[str, list[Received]] = defaultdict(list)
    for r in firsts:
        periods[event_id(r)].append(r)
    by_scenario: dict[str, list[Received]] = defaultdict(list)
    for r in firsts:
        by_scenario[scenario_name(r)].append(r)
    for name, messages in by_scenario.items():
        seqs = [seq_of(r) for r in messages]
        assert seqs == sorted(seqs), f"{name}: messages out of order: {seqs}"
        order = list(dict.fromkeys(event_id(r) for r in messages))
        for earlier, later in itertools.pairwise(order):
            last_of_earlier = max(i for i, r in enumerate(messages) if event_id(r) == earlier)
            first_of_later = min(i for i, r in enumerate(messages) if event_id(r) == later)
            assert is_close(messages[last_of_earlier]), f"{name}: {earlier} never closed"
            assert last_of_earlier < first_of_later, f"{name}: {later} opened before {earlier}"
    for eid, messages in periods.items():
        assert not is_close(messages[0]), f"{eid} does not begin with an open"
        closing = [r for r in messages if is_close(r)]
        assert len(closing) <= 1, f"{eid} closed {len(closing)} times"
        assert closing == [] or closing[0] is messages[-1], f"{eid}: a message after its close"
        identities = {
            (r.event["eventType"], r.event["title"], r.event.get("entitySelector"))
            for r in messages
            if r.event is not None
        }
        assert len(identities) == 1, f"{eid} changed identity: {identities}"
    return dict(periods)


async def admin_get(base: str, path: str) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.get(base + path, headers=ADMIN) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.json()


async def admin_post(base: str, path: str, body: Any = None) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.post(base + path, headers=ADMIN, json=body) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.json()


async def outbox_empty(daemon: Daemon) -> bool:
    listing = await admin_get(daemon.base, "/api/v1/events")
    return bool(listing["pending"]["count"] == 0)


async def poll(check: Any, seconds: float, what: str) -> None:
    async with asyncio.timeout(seconds):
        while not await check():
            await asyncio.sleep(0.1)
    assert await check(), what


# --- the lifecycle ---------------------------------------------------------------------------


async def test_error_limit_2_opens_once_after_the_3rd_failure_refreshes_and_closes(
    tmp_path: Path,
) -> None:
    async with event_sink() as sink, target_server() as target:
        target.errors[CHECK] = 3
        config = events_config(tmp_path, sink.url)
        (tmp_path / "s" / "a.yaml").write_text(
            api_yaml("shop api", f"{target.base}/check", 2), encoding="utf-8"
        )
        async with running(config, ENV) as daemon:
            await sink.wait_for(lambda got: len(got) >= 3, 20)  # the open and 2 refreshes
            target.errors[CHECK] = 0
            await sink.wait_for(lambda got: any(is_close(r) for r in got), 20)
            closed_at = len(sink.received)
            ok_since = target.hits[CHECK]
            await wait_until(lambda: target.hits[CHECK] >= ok_since + 3, 15, "three more runs")
            assert len(sink.received) == closed_at, "nothing is sent once it recovered"
            listing = await admin_get(daemon.base, "/api/v1/events")
            samples = await scrape(daemon.base)
            daemon.signal(signal.SIGTERM)
            assert await daemon.exit_code(20) == 0

    received = sink.received
    assert all(r.answer == "created" for r in received)
    (period,) = check_periods(received).values()
    assert period == received  # one failure period, nothing sent twice
    opening, *refreshes, closing = period
    assert opening.event is not None
    assert closing.event is not None
    props = opening.event["properties"]
    # Nothing after 2 failures: the first message is the one the 3rd failure opened.
    assert props["monitord.consecutive_failures"] == "3"
    assert props["monitord.reason"] == "$.numErrors EQ 0: got 3"
    assert props["monitord.scenario.name"] == "shop api"
    assert props["monitord.target"] == f"{target.base}/check"
    assert opening.event["eventType"] == "ERROR_EVENT"
    assert opening.event["title"] == "monitord: default shop api failing"
    assert opening.event["timeout"] == 15
    assert "entitySelector" not in opening.event
    assert len(refreshes) >= 2
    starts = [r.event["startTime"] for r in period if r.event is not None]
    assert starts[:-1] == sorted(starts[:-1])  # refreshes carry startTime = now
    for refresh in refreshes:
        assert refresh.event is not None
        refreshed = refresh.event["properties"]
        assert refreshed["monitord.failing_since"] == props["monitord.failing_since"]
        assert refreshed["monitord.event.id"] == props["monitord.event.id"]
        assert int(refreshed["monitord.consecutive_failures"]) >= 3
    assert closing.event["endTime"] >= closing.event["startTime"]
    for r in received:
        assert r.headers["Authorization"] == f"Api-Token {TOKEN}"
    assert listing["pending"]["count"] == 0
    assert listing["deadLetters"]["count"] == 0
    acknowledged = listing["delivered"]["events"]
    assert [d["eventId"] for d in acknowledged] == [event_id(r) for r in received]
    for delivery in acknowledged:  # the sink's answer is kept: its correlation ids
        (result,) = delivery["ingestResults"]
        assert result["status"] == "OK"
        assert re.fullmatch(r"[0-9a-f]{16}", result["correlationId"])
    queued = value(samples, "monitord_events_total", event_type="ERROR_EVENT", outcome="queued")
    sent = value(samples, "monitord_events_total", event_type="ERROR_EVENT", outcome="delivered")
    assert queued == sent == len(received)
    assert TOKEN not in daemon.log


async def test_refused_is_an_availability_event_and_a_wrong_answer_an_error_event(
    tmp_path: Path,
) -> None:
    async with event_sink() as sink, target_server() as target:
        target.errors[CHECK] = 1
        with refusing_tcp_port() as refused:
            config = events_config(tmp_path, sink.url, entitySelector="type(SERVICE)")
            (tmp_path / "s" / "a.yaml").write_text(
                tcp_yaml("refused", refused.port)
                + api_yaml("wrong", f"{target.base}/check", 0)
                + api_yaml("overridden", f"{target.base}/check", 0, eventType="AVAILABILITY_EVENT"),
                encoding="utf-8",
            )
            async with running(config, ENV) as daemon:
                await sink.wait_for(
                    lambda got: (
                        {scenario_name(r) for r in got if r.event}
                        >= {"refused", "wrong", "overridden"}
                    ),
                    20,
                )
                daemon.signal(signal.SIGTERM)
                assert await daemon.exit_code(20) == 0
    types = {scenario_name(r): r.event["eventType"] for r in sink.received if r.event}
    assert types == {
        "refused": "AVAILABILITY_EVENT",
        "wrong": "ERROR_EVENT",
        "overridden": "AVAILABILITY_EVENT",
    }
    refused_event = next(
        r.event for r in sink.received if r.event and scenario_name(r) == "refused"
    )
    assert refused_event is not None
    assert refused_event["entitySelector"] == "type(SERVICE)"
    assert refused_event["properties"]["monitord.reason"] == "connection refused"
    assert refused_event["properties"]["monitord.target"] == f"tcp://127.0.0.1:{refused.port}"


# --- delivery trouble ----------------------------------------------------------------------


async def test_sink_down_for_a_while_then_everything_arrives_in_order_once(
    tmp_path: Path,
) -> None:
    port = free_port()
    async with target_server() as target:
        target.errors[CHECK] = 1
        config = events_config(tmp_path, f"http://127.0.0.1:{port}/api/v2/events/ingest")
        (tmp_path / "s" / "a.yaml").write_text(
            api_yaml("flaps", f"{target.base}/check", 0), encoding="utf-8"
        )
        async with running(config, ENV) as daemon:
            # Two failure periods and a refresh pile up while nothing listens.
            await daemon.wait_line(r"event open queued")
            await daemon.wait_line(r"not delivered: network error")
            target.errors[CHECK] = 0
            await daemon.wait_line(r"event close queued")
            target.errors[CHECK] = 1
            mark = len(daemon.lines)
            await daemon.wait_line(r"event open queued", after=mark)
            pending = await admin_get(daemon.base, "/api/v1/events")
            assert pending["pending"]["count"] >= 3
            assert pending["pending"]["events"][0]["lastError"].startswith("network error")
            async with event_sink(port) as sink:
                await poll(lambda: outbox_empty(daemon), 30, "the backlog was delivered")
                target.errors[CHECK] = 0
                await sink.wait_for(lambda got: len(closes(sink, "flaps")) == 2, 20)
                daemon.signal(signal.SIGTERM)
                assert await daemon.exit_code(20) == 0
    periods = check_periods(sink.received)
    assert len(periods) == 2
    keys = [key(r) for r in sink.received]
    assert len(keys) == len(set(keys)), "nothing is sent twice when nothing crashed"
    assert all(r.answer == "created" for r in sink.received)


async def test_429_retry_after_is_honoured(tmp_path: Path) -> None:
    async with event_sink() as sink, target_server() as target:
        sink.answer(too_many("2"), then=created())
        target.errors[CHECK] = 1
        config = events_config(tmp_path, sink.url, refreshSeconds=30)
        (tmp_path / "s" / "a.yaml").write_text(
            api_yaml("limited", f"{target.base}/check", 0), encoding="utf-8"
        )
        async with running(config, ENV) as daemon:
            await sink.wait_for(lambda got: len(got) >= 2, 20)
            samples = await scrape(daemon.base)
            daemon.signal(signal.SIGTERM)
            assert await daemon.exit_code(20) == 0
    first, second = sink.received[:2]
    assert (first.answer, second.answer) == ("too many", "created")
    assert key(first) == key(second)  # the same message, tried again
    assert second.at - first.at >= 1.95
    retried = value(samples, "monitord_events_total", event_type="ERROR_EVENT", outcome="retried")
    assert retried == 1
    assert "HTTP 429" in daemon.log


async def test_400_is_a_dead_letter_shown_by_metrics_and_api_and_requeue_sends_it(
    tmp_path: Path,
) -> None:
    async with event_sink() as sink, target_server() as target:
        sink.answer(status(400, b'{"error": {"message": "bad entity selector"}}'), then=created())
        target.errors[CHECK] = 1
        config = events_config(tmp_path, sink.url, refreshSeconds=30)
        (tmp_path / "s" / "a.yaml").write_text(
            api_yaml("rejected", f"{target.base}/check", 0), encoding="utf-8"
        )
        async with running(config, ENV) as daemon:
            await daemon.wait_line(r"moved to the dead letters")
            samples = await scrape(daemon.base)
            assert value(samples, "monitord_events_dead_letters") == 1
            dead = value(
                samples, "monitord_events_total", event_type="ERROR_EVENT", outcome="dead_lettered"
            )
            assert dead == 1
            listing = await admin_get(daemon.base, "/api/v1/events")
            (letter,) = listing["deadLetters"]["events"]
            assert letter["kind"] == "open"
            assert letter["attempts"] == 1
            assert "HTTP 400" in letter["lastError"]
            assert "bad entity selector" in letter["lastError"]
            assert len(sink.received) == 1
            answer = await admin_post(daemon.base, "/api/v1/events/requeue")
            assert answer == {"requeued": 1, "ids": [letter["id"]], "kept": [], "unknown": []}
            await sink.wait_for(lambda got: len(got) >= 2, 20)
            await poll(lambda: outbox_empty(daemon), 20, "the re-queued open was delivered")
            samples = await scrape(daemon.base)
            assert value(samples, "monitord_events_dead_letters") == 0
            requeued = value(
                samples, "monitord_events_total", event_type="ERROR_EVENT", outcome="requeued"
            )
            assert requeued == 1
            daemon.signal(signal.SIGTERM)
            assert await daemon.exit_code(20) == 0
    rejected, resent = sink.received[:2]
    assert key(rejected) == key(resent)
    assert resent.answer == "created"


# --- no sink, stop, locks -----------------------------------------------------------------


async def test_without_a_sink_events_are_kept_and_sent_once_one_is_configured(
    tmp_path: Path,
) -> None:
    async with target_server() as target:
        target.errors[CHECK] = 1
        config = write_config(tmp_path)
        (tmp_path / "s" / "a.yaml").write_text(
            api_yaml("kept", f"{target.base}/check", 0), encoding="utf-8"
        )
        async with running(config, ENV) as daemon:
            await daemon.wait_line(r"event open queued: .*no events sink is configured")
            target.errors[CHECK] = 0
            await daemon.wait_line(r"event close queued")
            listing = await admin_get(daemon.base, "/api/v1/events")
            daemon.signal(signal.SIGTERM)
            assert await daemon.exit_code(20) == 0
        assert "no events sink is configured (events.url)" in daemon.log
        assert listing["sinkConfigured"] is False
        assert [e["kind"] for e in listing["pending"]["events"]] == ["open", "close"]
        async with event_sink() as sink:
            config = events_config(tmp_path, sink.url)
            async with running(config, ENV) as daemon:
                await sink.wait_for(lambda got: len(got) >= 2, 20)
                await poll(lambda: outbox_empty(daemon), 20, "the backlog was delivered")
                daemon.signal(signal.SIGTERM)
                assert await daemon.exit_code(20) == 0
    (period,) = check_periods(sink.received).values()
    assert [is_close(r) for r in period] == [False, True]
    assert len(sink.received) == 2


async def test_sigterm_flushes_a_close_queued_by_the_last_run(tmp_path: Path) -> None:
    async with event_sink() as sink, target_server() as target:
        target.errors[CHECK] = 1
        config = events_config(tmp_path, sink.url, refreshSeconds=30)
        (tmp_path / "s" / "a.yaml").write_text(
            api_yaml("slow", f"{target.base}/check", 0), encoding="utf-8"
        )
        async with running(config, ENV) as daemon:
            await sink.wait_for(lambda got: len(got) >= 1, 20)
            target.errors[CHECK] = 0
            target.delay_s = 2.0
            hits = target.hits[CHECK]
            await wait_until(lambda: target.hits[CHECK] > hits, 10, "a slow, passing run started")
            daemon.signal(signal.SIGTERM)  # the run finishes during the stop and recovers
            assert await daemon.exit_code(30) == 0
    assert len(closes(sink, "slow")) == 1
    assert "not yet delivered" not in daemon.log


async def test_sigterm_gives_a_hanging_sink_a_bounded_time_and_keeps_the_message(
    tmp_path: Path,
) -> None:
    async with event_sink() as sink, target_server() as target:
        sink.answer(hang(), then=created())
        target.errors[CHECK] = 1
        config = events_config(tmp_path, sink.url, refreshSeconds=30, sendTimeoutSeconds=60)
        (tmp_path / "s" / "a.yaml").write_text(
            api_yaml("hung", f"{target.base}/check", 0), encoding="utf-8"
        )
        async with running(config, ENV) as daemon:
            await sink.wait_for(lambda got: len(got) >= 1, 20)
            loop = asyncio.get_running_loop()
            stopping = loop.time()
            daemon.signal(signal.SIGTERM)
            assert await daemon.exit_code(30) == 0
            assert loop.time() - stopping < 15  # 10 s for runs at most, 5 s for the outbox
        assert "1 event messages not yet delivered" in daemon.log
        sink.release_hung()
        target.errors[CHECK] = 0
        async with running(config, ENV) as daemon:
            await sink.wait_for(lambda got: len(closes(sink, "hung")) == 1, 20)
            daemon.signal(signal.SIGTERM)
            assert await daemon.exit_code(20) == 0
    (period,) = check_periods(sink.received).values()
    assert [is_close(r) for r in period] == [False, True]
    # The open was sent twice with the same key: once before the stop (never answered),
    # once after the start.
    opens = [r for r in sink.received if not is_close(r)]
    assert len(opens) == 2
    assert key(opens[0]) == key(opens[1])


async def test_a_state_store_locked_by_another_process_stops_the_start(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    async with running(config, ENV) as daemon:  # creates the store
        daemon.signal(signal.SIGTERM)
        assert await daemon.exit_code(20) == 0
    holder = sqlite3.connect(tmp_path / "var" / "state.sqlite3", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        async with started(config, ENV) as daemon:
            assert await daemon.exit_code(30) == 2
    finally:
        holder.close()
    assert "locked by another process" in daemon.log
    assert "Traceback" not in daemon.log


# --- crashes -------------------------------------------------------------------------------


async def test_kill_9_with_events_pending_then_restart_delivers_and_closes(
    tmp_path: Path,
) -> None:
    async with event_sink() as sink, target_server() as target:
        sink.answer(status(503), then=status(503))  # down: everything waits in the outbox
        target.errors[CHECK] = 1
        config = events_config(tmp_path, sink.url, refreshSeconds=30)
        (tmp_path / "s" / "a.yaml").write_text(
            api_yaml("crashy", f"{target.base}/check", 0), encoding="utf-8"
        )
        async with running(config, ENV) as daemon:
            await daemon.wait_line(r"event open queued")
            target.errors[CHECK] = 0
            await daemon.wait_line(r"event close queued")
            daemon.process.kill()
            assert await daemon.exit_code(10) == -signal.SIGKILL
        sink.answer(then=created())
        async with running(config, ENV) as daemon:
            await sink.wait_for(lambda got: len(closes(sink, "crashy")) == 1, 20)
            await poll(lambda: outbox_empty(daemon), 20, "the outbox emptied")
            daemon.signal(signal.SIGTERM)
            assert await daemon.exit_code(20) == 0
    (period,) = check_periods(answered(sink)).values()
    assert [is_close(r) for r in period] == [False, True]


async def test_kill_9_at_random_moments_while_a_scenario_flaps(tmp_path: Path) -> None:
    """20 daemons in a row on one state store, each killed at a random moment while the
    target flaps; then one that runs to the end. Every period opened is delivered and
    closed, no period is opened twice, and only crash-interrupted sends are repeated."""
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    kills = 20
    async with event_sink() as sink, target_server() as target:
        # Slow answers, so that many kills land between a send and its acknowledgement.
        sink.answer(then=drip(201, chunks=4, interval_s=0.1))
        config = events_config(tmp_path, sink.url)
        (tmp_path / "s" / "a.yaml").write_text(
            api_yaml("flappy", f"{target.base}/check", 0), encoding="utf-8"
        )

        async def flap() -> None:
            while True:
                target.errors[CHECK] = 1 - target.errors.get(CHECK, 0)
                await asyncio.sleep(rng.uniform(0.4, 1.6))

        flapping = asyncio.get_running_loop().create_task(flap())
        try:
            for _ in range(kills):
                async with running(config, ENV) as daemon:
                    await asyncio.sleep(rng.uniform(0.1, 2.0))  # the random moment
                    daemon.process.kill()
                    assert await daemon.exit_code(10) == -signal.SIGKILL, f"seed {seed}"
        finally:
            flapping.cancel()
            await asyncio.gather(flapping, return_exceptions=True)
        target.errors[CHECK] = 0
        sink.answer(then=created())
        async with running(config, ENV) as daemon:

            async def recovered() -> bool:
                listing = await get_json(daemon.base, "/api/v1/scenarios")
                return bool(listing["scenarios"][0]["state"] == "ok")

            await poll(recovered, 20, f"the scenario recovered (seed {seed})")
            await poll(lambda: outbox_empty(daemon), 30, f"the outbox emptied (seed {seed})")
            events = await admin_get(daemon.base, "/api/v1/events")
            daemon.signal(signal.SIGTERM)
            assert await daemon.exit_code(20) == 0
    assert events["deadLetters"]["count"] == 0
    received = answered(sink)
    periods = check_periods(received)
    assert periods, f"seed {seed}: no failure period was ever sent"
    for eid, messages in periods.items():
        assert is_close(messages[-1]), f"seed {seed}: period {eid} was never closed"
    repeats = len(received) - len({key(r) for r in received})
    assert repeats <= kills, f"seed {seed}: {repeats} repeats for {kills} crashes"
    print(f"seed {seed}: {len(periods)} periods, {len(received)} messages, {repeats} repeats")
    # Every open the store ever queued reached the sink.
    with sqlite3.connect(tmp_path / "var" / "state.sqlite3") as db:
        stored = {eid for (eid,) in db.execute("SELECT DISTINCT event_id FROM delivered")}
    assert stored <= set(periods), f"seed {seed}"
    assert not json.dumps([r.event for r in received]).count(TOKEN)


# --- restarts and reloads ------------------------------------------------------------------


async def test_a_restart_keeps_the_open_event_and_a_removal_closes_it(tmp_path: Path) -> None:
    async with event_sink() as sink, target_server() as target:
        target.errors[CHECK] = 1
        config = events_config(tmp_path, sink.url)
        scenario_file = tmp_path / "s" / "a.yaml"
        scenario_file.write_text(api_yaml("kept open", f"{target.base}/check", 0), "utf-8")
        async with running(config, ENV) as daemon:
            await sink.wait_for(lambda got: len(got) >= 2, 20)  # the open and a refresh
            daemon.signal(signal.SIGTERM)
            assert await daemon.exit_code(20) == 0
        before = len(sink.received)
        async with running(config, ENV) as daemon:
            await sink.wait_for(lambda got: len(got) >= before + 2, 20)  # refreshes go on
            scenario_file.write_text("", "utf-8")  # no scenarios left
            daemon.signal(signal.SIGHUP)
            await sink.wait_for(lambda got: any(is_close(r) for r in got), 20)
            await daemon.wait_line(r"1 removed")
            daemon.signal(signal.SIGTERM)
            assert await daemon.exit_code(20) == 0
        assert "event open queued" not in daemon.log  # the restart opened nothing
    (period,) = check_periods(sink.received).values()
    assert period == sink.received
    assert is_close(period[-1])
    assert [is_close(r) for r in period[:-1]] == [False] * (len(period) - 1)
