"""The local ingest sink answers as each Answer promises, and records every request."""

from __future__ import annotations

import asyncio
import io
import json
import re
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import yarl

from tests.sink import (
    GARBAGE_BODY,
    INGEST_PATH,
    MAX_REQUEST_BODY,
    EventSink,
    Received,
    created,
    drip,
    drop,
    event_sink,
    garbage,
    hang,
    huge,
    status,
    too_many,
)

EVENT: dict[str, Any] = {
    "eventType": "AVAILABILITY_EVENT",
    "title": "Checkout API down",
    "startTime": 1_700_000_000_000,
    "timeout": 15,
    "properties": {"monitord.scenario": "checkout"},
}
SHORT = aiohttp.ClientTimeout(total=0.3)
HEX16 = re.compile(r"[0-9a-f]{16}")


@pytest.fixture
async def sink() -> AsyncIterator[EventSink]:
    async with event_sink() as s:
        yield s


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def post(
    session: aiohttp.ClientSession, url: str, event: dict[str, Any] = EVENT
) -> tuple[int, bytes]:
    async with session.post(url, json=event) as response:
        return response.status, await response.read()


def count(n: int) -> Callable[[list[Received]], bool]:
    def predicate(received: list[Received]) -> bool:
        return len(received) >= n

    return predicate


def sink_address(sink: EventSink) -> tuple[str, int]:
    url = yarl.URL(sink.url)
    assert url.host is not None
    assert url.port is not None
    return url.host, url.port


# --- created -----------------------------------------------------------------------------


async def test_default_answer_is_one_ok(sink: EventSink, session: aiohttp.ClientSession) -> None:
    async with session.post(sink.url, json=EVENT) as response:
        assert response.status == 201
        assert response.content_type == "application/json"
        document = await response.json()
    assert document["reportCount"] == 1
    [result] = document["eventIngestResults"]
    assert result["status"] == "OK"
    assert HEX16.fullmatch(result["correlationId"])
    assert [r.answer for r in sink.received] == ["created"]


async def test_created_with_statuses_and_correlation_ids(
    sink: EventSink, session: aiohttp.ClientSession
) -> None:
    sink.answer(
        created(
            "OK", "INVALID_TIMESTAMPS", correlation_ids=["41f5d263011a6c9a", "00000000000000ff"]
        )
    )
    _, body = await post(session, sink.url)
    assert json.loads(body) == {
        "reportCount": 2,
        "eventIngestResults": [
            {"status": "OK", "correlationId": "41f5d263011a6c9a"},
            {"status": "INVALID_TIMESTAMPS", "correlationId": "00000000000000ff"},
        ],
    }


async def test_default_correlation_ids_are_distinct_and_fresh(
    sink: EventSink, session: aiohttp.ClientSession
) -> None:
    sink.answer(then=created("INVALID_METADATA", "INVALID_ENTITY_TYPE"))
    ids: list[str] = []
    for _ in range(2):
        _, body = await post(session, sink.url)
        results = json.loads(body)["eventIngestResults"]
        assert [r["status"] for r in results] == ["INVALID_METADATA", "INVALID_ENTITY_TYPE"]
        ids += [r["correlationId"] for r in results]
    assert all(HEX16.fullmatch(i) for i in ids)
    assert len(set(ids)) == 4


def test_created_refuses_mismatched_correlation_ids() -> None:
    with pytest.raises(ValueError, match="2 statuses but 1 correlation ids"):
        created("OK", "OK", correlation_ids=["41f5d263011a6c9a"])


# --- plain statuses ----------------------------------------------------------------------


async def test_status_with_body_and_headers(
    sink: EventSink, session: aiohttp.ClientSession
) -> None:
    sink.answer(status(400, b'{"error": "bad"}', headers={"X-Reason": "schema"}))
    async with session.post(sink.url, json=EVENT) as response:
        assert response.status == 400
        assert response.headers["X-Reason"] == "schema"
        assert await response.read() == b'{"error": "bad"}'
    assert sink.received[0].answer == "status 400"


@pytest.mark.parametrize(("retry_after", "expected"), [("7", "7"), (None, None)])
async def test_too_many_with_and_without_retry_after(
    sink: EventSink,
    session: aiohttp.ClientSession,
    retry_after: str | None,
    expected: str | None,
) -> None:
    sink.answer(too_many(retry_after))
    async with session.post(sink.url, json=EVENT) as response:
        assert response.status == 429
        assert response.headers.get("Retry-After") == expected
    assert sink.received[0].answer == "too many"


async def test_too_many_default_sends_one(sink: EventSink, session: aiohttp.ClientSession) -> None:
    sink.answer(too_many())
    async with session.post(sink.url, json=EVENT) as response:
        assert (response.status, response.headers.get("Retry-After")) == (429, "1")


# --- no answer, a cut connection ---------------------------------------------------------


async def test_hang_times_out_on_the_client(
    sink: EventSink, session: aiohttp.ClientSession
) -> None:
    sink.answer(hang())
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await session.post(sink.url, json=EVENT, timeout=SHORT)
    assert time.monotonic() - started >= 0.25
    # Recorded on arrival, although it was never answered.
    assert [(r.answer, r.event) for r in sink.received] == [("hang", EVENT)]


async def test_release_hung_answers_503_and_later_hangs_hang_again(
    sink: EventSink, session: aiohttp.ClientSession
) -> None:
    sink.answer(hang(), hang(), hang())
    first = asyncio.create_task(post(session, sink.url))
    second = asyncio.create_task(post(session, sink.url))
    await sink.wait_for(count(2), timeout_s=5)
    assert not first.done()
    sink.release_hung()
    assert await asyncio.wait_for(first, 5) == (503, b"")
    assert await asyncio.wait_for(second, 5) == (503, b"")
    with pytest.raises(TimeoutError):
        await session.post(sink.url, json=EVENT, timeout=SHORT)
    assert [r.answer for r in sink.received] == ["hang"] * 3


async def test_closing_the_sink_ends_a_hung_request(session: aiohttp.ClientSession) -> None:
    async with event_sink() as sink:
        sink.answer(hang())
        pending = asyncio.create_task(post(session, sink.url))
        await sink.wait_for(count(1), timeout_s=5)
        closing_started = time.monotonic()
    assert time.monotonic() - closing_started < 2
    with pytest.raises(aiohttp.ClientConnectionError):
        await asyncio.wait_for(pending, 5)


async def test_drop_cuts_the_connection(sink: EventSink, session: aiohttp.ClientSession) -> None:
    sink.answer(drop())
    with pytest.raises(aiohttp.ClientConnectionError):
        await post(session, sink.url)
    assert [(r.answer, r.event) for r in sink.received] == [("drop", EVENT)]
    # The sink itself carries on.
    status_code, _ = await post(session, sink.url)
    assert status_code == 201


# --- bad bodies --------------------------------------------------------------------------


async def test_garbage_is_not_json(sink: EventSink, session: aiohttp.ClientSession) -> None:
    sink.answer(garbage(), garbage(500))
    async with session.post(sink.url, json=EVENT) as response:
        assert response.status == 201
        assert response.content_type == "application/json"
        body = await response.read()
    assert body == b'{"reportCount": 1, "eventIngestResults": ['
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    status_code, body = await post(session, sink.url)
    assert (status_code, body) == (500, GARBAGE_BODY)
    assert [r.answer for r in sink.received] == ["garbage", "garbage"]


async def test_huge_sends_size_bytes_without_content_length(
    sink: EventSink, session: aiohttp.ClientSession
) -> None:
    sink.answer(huge(), huge(503, size=1000))
    async with session.post(sink.url, json=EVENT) as response:
        assert response.status == 201
        assert "Content-Length" not in response.headers
        body = await response.read()
    assert len(body) >= 8 * 1024 * 1024
    assert body.startswith(GARBAGE_BODY)
    status_code, body = await post(session, sink.url)
    assert (status_code, len(body)) == (503, 1000)


async def test_closing_the_sink_ends_a_huge_answer_nobody_reads(
    session: aiohttp.ClientSession,
) -> None:
    async with event_sink() as sink:
        sink.answer(huge(size=64 * 1024 * 1024))
        response = await session.post(sink.url, json=EVENT)
        closing_started = time.monotonic()
    try:
        assert response.status == 201
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    finally:
        response.release()
    assert time.monotonic() - closing_started < 2


async def test_drip_is_slow(sink: EventSink, session: aiohttp.ClientSession) -> None:
    sink.answer(drip(chunks=4, interval_s=0.1))
    started = time.monotonic()
    async with session.post(sink.url, json=EVENT) as response:
        headers_after = time.monotonic() - started
        assert response.status == 201
        assert response.content_length == 4
        body = await response.read()
    total = time.monotonic() - started
    assert body == b'{"re'
    assert headers_after < 0.2
    assert total >= 0.35


async def test_drip_long_enough_is_a_valid_answer(
    sink: EventSink, session: aiohttp.ClientSession
) -> None:
    sink.answer(drip(202, chunks=120, interval_s=0.001))
    status_code, body = await post(session, sink.url)
    assert (status_code, len(body)) == (202, 120)
    assert json.loads(body)["eventIngestResults"] == [
        {"status": "OK", "correlationId": "41f5d263011a6c9a"}
    ]


async def test_closing_the_sink_ends_a_drip(session: aiohttp.ClientSession) -> None:
    async with event_sink() as sink:
        sink.answer(drip(chunks=100, interval_s=30))
        response = await session.post(sink.url, json=EVENT)
        closing_started = time.monotonic()
    try:
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    finally:
        response.release()
    assert time.monotonic() - closing_started < 2


# --- the script --------------------------------------------------------------------------


async def test_script_in_order_then_default(
    sink: EventSink, session: aiohttp.ClientSession
) -> None:
    sink.answer(status(500), too_many(), then=status(503))
    codes = [(await post(session, sink.url))[0] for _ in range(4)]
    assert codes == [500, 429, 503, 503]
    assert [r.answer for r in sink.received] == ["status 500", "too many"] + ["status 503"] * 2


async def test_script_without_then_falls_back_to_created(
    sink: EventSink, session: aiohttp.ClientSession
) -> None:
    sink.answer(status(401))
    codes = [(await post(session, sink.url))[0] for _ in range(2)]
    assert codes == [401, 201]


async def test_a_new_script_replaces_what_is_left(
    sink: EventSink, session: aiohttp.ClientSession
) -> None:
    sink.answer(status(500), status(500), status(500))
    await post(session, sink.url)
    sink.answer(status(400))
    codes = [(await post(session, sink.url))[0] for _ in range(2)]
    assert codes == [400, 201]


# --- waiting -----------------------------------------------------------------------------


async def test_wait_for_returns_once_the_predicate_holds(
    sink: EventSink, session: aiohttp.ClientSession
) -> None:
    async def later() -> None:
        await asyncio.sleep(0.1)
        for _ in range(2):
            await post(session, sink.url)

    task = asyncio.create_task(later())
    await sink.wait_for(lambda received: len(received) == 2, timeout_s=5)
    assert sink.events() == [EVENT, EVENT]
    await task


async def test_wait_for_fails_with_a_summary(
    sink: EventSink, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(AssertionError, match="nothing received"):
        await sink.wait_for(count(1), timeout_s=0.1)
    sink.answer(status(500))
    await post(session, sink.url)
    started = time.monotonic()
    with pytest.raises(AssertionError) as failure:
        await sink.wait_for(count(2), timeout_s=0.2)
    assert 0.15 <= time.monotonic() - started < 2
    message = str(failure.value)
    assert "1 request(s) received" in message
    assert f"{INGEST_PATH} -> status 500" in message
    assert "'Checkout API down'" in message


async def test_listens_on_the_given_port(session: aiohttp.ClientSession) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with event_sink(port) as sink:
        assert sink.url == f"http://127.0.0.1:{port}{INGEST_PATH}"
        assert (await post(session, sink.url))[0] == 201


# --- what is recorded --------------------------------------------------------------------


async def test_records_headers_body_and_event(
    sink: EventSink, session: aiohttp.ClientSession
) -> None:
    before = time.monotonic()
    async with session.post(
        sink.url, json=EVENT, headers={"Authorization": "Api-Token dt0c01.secret"}
    ) as response:
        assert response.status == 201
    [received] = sink.received
    assert before <= received.at <= time.monotonic()
    assert received.path == INGEST_PATH
    assert received.headers["Authorization"] == "Api-Token dt0c01.secret"
    assert received.headers["Content-Type"] == "application/json"
    assert type(received.headers) is dict
    assert json.loads(received.body) == EVENT
    assert received.event == EVENT
    assert sink.events() == [EVENT]


async def test_events_skips_unparsable_bodies(
    sink: EventSink, session: aiohttp.ClientSession
) -> None:
    for body in (b"not json", b"[1, 2]", b"\xff\xfe", b"[" * 100_000, json.dumps(EVENT).encode()):
        async with session.post(sink.url, data=body) as response:
            assert response.status == 201
    assert [r.event for r in sink.received] == [None, None, None, None, EVENT]
    assert sink.events() == [EVENT]


async def test_other_paths_are_404_and_do_not_use_up_the_script(
    sink: EventSink, session: aiohttp.ClientSession
) -> None:
    sink.answer(status(503))
    other = sink.url.replace(INGEST_PATH, "/api/v1/events")
    assert (await post(session, other))[0] == 404
    assert (await post(session, sink.url))[0] == 503
    assert [(r.path, r.answer) for r in sink.received] == [
        ("/api/v1/events", "status 404"),
        (INGEST_PATH, "status 503"),
    ]


async def test_other_methods_are_405(sink: EventSink, session: aiohttp.ClientSession) -> None:
    async with session.get(sink.url) as response:
        assert response.status == 405
        assert response.headers["Allow"] == "POST"
    async with session.put(sink.url, json=EVENT) as response:
        assert response.status == 405
    assert [(r.answer, r.event) for r in sink.received] == [
        ("status 405", None),
        ("status 405", EVENT),
    ]


# --- hostile requests --------------------------------------------------------------------


async def test_body_over_the_cap_is_413_and_recorded(
    sink: EventSink, session: aiohttp.ClientSession
) -> None:
    too_big = io.BytesIO(b" " * (MAX_REQUEST_BODY + 1))
    async with session.post(sink.url, data=too_big) as response:
        assert response.status == 413
    assert [(r.answer, r.body) for r in sink.received] == [("status 413", b"")]
    assert (await post(session, sink.url))[0] == 201


async def test_unparsable_http_is_refused_by_aiohttp_and_not_recorded(
    sink: EventSink, session: aiohttp.ClientSession
) -> None:
    # Framing broken within the first packet never reaches the sink's handler:
    # aiohttp answers 400 itself. The sink goes on serving.
    reader, writer = await asyncio.open_connection(*sink_address(sink))
    try:
        writer.write(
            f"POST {INGEST_PATH} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            "zz\r\nnot a chunk\r\n".encode()
        )
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
        await writer.wait_closed()
    assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request")
    assert sink.received == []
    assert (await post(session, sink.url))[0] == 201


async def start_request(sink: EventSink, framing: str) -> asyncio.StreamWriter:
    """A raw connection with a request head sent and being handled by the sink:
    its 100 Continue comes from the handler's side, so what follows reaches it."""
    reader, writer = await asyncio.open_connection(*sink_address(sink))
    head = f"POST {INGEST_PATH} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n{framing}\r\n\r\n"
    writer.write(head.encode())
    await writer.drain()
    assert await asyncio.wait_for(reader.readline(), 5) == b"HTTP/1.1 100 Continue\r\n"
    return writer


async def test_broken_framing_mid_body_is_recorded(
    sink: EventSink, session: aiohttp.ClientSession
) -> None:
    # aiohttp's C parser does not pass a chunk error after the head on to the body
    # being read (the pure-Python one does), so the handler learns of it only when
    # the connection ends: here, the client giving up.
    writer = await start_request(sink, "Transfer-Encoding: chunked")
    writer.write(b"zz\r\nnot a chunk\r\n")
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    await sink.wait_for(count(1), timeout_s=5)
    assert [(r.path, r.answer, r.body) for r in sink.received] == [(INGEST_PATH, "drop", b"")]
    assert (await post(session, sink.url))[0] == 201


async def test_closing_the_sink_ends_a_request_stuck_in_its_body() -> None:
    async with event_sink() as sink:
        writer = await start_request(sink, "Content-Length: 100")
        closing_started = time.monotonic()
    try:
        assert time.monotonic() - closing_started < 2
        assert [(r.answer, r.body) for r in sink.received] == [("drop", b"")]
    finally:
        writer.close()
        await writer.wait_closed()


async def test_client_gone_mid_body_is_recorded(
    sink: EventSink, session: aiohttp.ClientSession
) -> None:
    writer = await start_request(sink, "Content-Length: 100")
    writer.write(b'{"eventType"')
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    await sink.wait_for(count(1), timeout_s=5)
    assert [(r.answer, r.body) for r in sink.received] == [("drop", b"")]
    assert (await post(session, sink.url))[0] == 201
