"""A local Events API v2 ingest endpoint for tests.

The daemon under test (in process or as a subprocess) posts its events here; a
test then looks at what arrived and scripts how each request is answered, from
the ordinary 201 to the ways a real endpoint or the network in between can
misbehave: error statuses, throttling, no answer, a cut connection, a body that
is not JSON, too big, or too slow.

Like the targets in ``tests.targets``, the sink listens on 127.0.0.1 (port 0 by
default) and on exit ends whatever its handlers are still doing, so no test
leaves a task or a socket behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

LOCALHOST = "127.0.0.1"
INGEST_PATH = "/api/v2/events/ingest"
# What the endpoint can say about each event it was given.
INGEST_STATUSES = ("OK", "INVALID_ENTITY_TYPE", "INVALID_METADATA", "INVALID_TIMESTAMPS")

MAX_REQUEST_BODY = 4 * 1024 * 1024
GARBAGE_BODY = b'{"reportCount": 1, "eventIngestResults": ['
POLL_INTERVAL_S = 0.05
# Everything the sink holds is ended before the runner is cleaned up; this only
# bounds the wait if a handler somehow does not end.
SHUTDOWN_TIMEOUT_S = 5.0
_STREAM_CHUNK = 64 * 1024
_SUMMARY_LAST = 10


@dataclass(frozen=True)
class Received:
    """One request as the sink saw it."""

    at: float  # time.monotonic() when the request arrived
    path: str
    headers: dict[str, str]  # names as sent; repeated headers joined with ", "
    body: bytes  # empty when the body was over the cap or could not be read
    event: dict[str, Any] | None  # the body parsed as a JSON object, else None
    answer: str  # name of the Answer that answered it


Responder = Callable[[web.Request, "EventSink"], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Answer:
    """How the sink answers one request; made by the functions below."""

    name: str
    _respond: Responder = field(repr=False)


def created(*statuses: str, correlation_ids: Sequence[str] | None = None) -> Answer:
    """201 with one ingest result per status (default one ``OK``).

    Without ``correlation_ids`` every response gets fresh, distinct 16-hex ids.
    Statuses are not checked against ``INGEST_STATUSES``, so a test can also
    send one the daemon does not know.
    """
    if not statuses:
        statuses = ("OK",) * (len(correlation_ids) if correlation_ids else 1)
    if correlation_ids is not None and len(correlation_ids) != len(statuses):
        raise ValueError(f"{len(statuses)} statuses but {len(correlation_ids)} correlation ids")
    fixed_ids = None if correlation_ids is None else tuple(correlation_ids)
    results_statuses = tuple(statuses)

    async def respond(request: web.Request, sink: EventSink) -> web.StreamResponse:
        ids = fixed_ids or _fresh_ids(len(results_statuses))
        document = _created_document(results_statuses, ids)
        return web.Response(status=201, body=document, content_type="application/json")

    return Answer("created", respond)


def status(code: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> Answer:
    """A plain answer with ``code``, e.g. 400, 401, 500 or 503."""
    fixed_headers = dict(headers or {})

    async def respond(request: web.Request, sink: EventSink) -> web.StreamResponse:
        return web.Response(status=code, body=body, headers=fixed_headers)

    return Answer(f"status {code}", respond)


def too_many(retry_after: str | None = "1") -> Answer:
    """429, with ``Retry-After`` unless it is None; the value is sent as given,
    so a test can also send a date or something unparsable."""
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    return Answer("too many", status(429, headers=headers)._respond)


def hang() -> Answer:
    """No answer at all: the request waits until ``release_hung()`` (then 503)
    or until the sink closes (then the connection is cut)."""

    async def respond(request: web.Request, sink: EventSink) -> web.StreamResponse:
        gate = sink._hung_gate
        await gate.wait()
        if sink._closing.is_set():
            return _abort(request)
        return web.Response(status=503)

    return Answer("hang", respond)


def drop() -> Answer:
    """The connection is cut (transport abort) without any answer."""

    async def respond(request: web.Request, sink: EventSink) -> web.StreamResponse:
        return _abort(request)

    return Answer("drop", respond)


def garbage(code: int = 201) -> Answer:
    """``code`` with a JSON content type and a body that is not valid JSON."""

    async def respond(request: web.Request, sink: EventSink) -> web.StreamResponse:
        return web.Response(status=code, body=GARBAGE_BODY, content_type="application/json")

    return Answer("garbage", respond)


def huge(code: int = 201, size: int = 8 * 1024 * 1024) -> Answer:
    """``code`` with a body of ``size`` bytes: the start of an ingest result, then
    spaces. It is streamed in chunks without a Content-Length, so only counting
    what arrives can stop a client reading it."""

    async def respond(request: web.Request, sink: EventSink) -> web.StreamResponse:
        response = web.StreamResponse(status=code)
        response.content_type = "application/json"
        response.enable_chunked_encoding()
        head = GARBAGE_BODY[:size]
        padding = b" " * _STREAM_CHUNK
        try:
            await response.prepare(request)
            await response.write(head)
            left = size - len(head)
            while left > 0:
                n = min(left, _STREAM_CHUNK)
                await response.write(padding[:n])
                left -= n
            await response.write_eof()
        except ConnectionError:
            pass  # the client stopped reading and went away, or the sink is closing
        return response

    return Answer("huge", respond)


def drip(code: int = 201, chunks: int = 20, interval_s: float = 0.5) -> Answer:
    """Headers at once (Content-Length ``chunks``), then one byte every
    ``interval_s``. When ``chunks`` is long enough the bytes are a success document
    behind leading spaces, so a patient client gets a valid answer; otherwise they
    are the start of one."""
    document = _created_document(("OK",), ("41f5d263011a6c9a",))
    body = document.rjust(chunks) if chunks >= len(document) else document[:chunks]

    async def respond(request: web.Request, sink: EventSink) -> web.StreamResponse:
        response = web.StreamResponse(status=code)
        response.content_type = "application/json"
        response.content_length = len(body)
        try:
            await response.prepare(request)
            for i in range(len(body)):
                if await sink._closed_within(interval_s):
                    return _abort(request)
                await response.write(body[i : i + 1])
            await response.write_eof()
        except ConnectionError:
            pass  # the client gave up waiting
        return response

    return Answer("drip", respond)


class EventSink:
    """What arrived, and the script of answers for the requests to come."""

    def __init__(self) -> None:
        self.url = ""
        self.received: list[Received] = []
        self._script: deque[Answer] = deque()
        self._default = created()
        # Hung requests wait on the gate that was current when they arrived;
        # release_hung() opens it and puts a fresh one in place for later ones.
        self._hung_gate = asyncio.Event()
        self._closing = asyncio.Event()
        self._active: dict[asyncio.Task[Any], web.Request] = {}

    def answer(self, *answers: Answer, then: Answer | None = None) -> None:
        """The next requests to the ingest path get ``answers`` in order (replacing
        any script not used up yet); after them ``then``, when given, is the
        default answer. Requests the sink refuses itself (404, 405, 413) do not use
        up the script."""
        self._script = deque(answers)
        if then is not None:
            self._default = then

    def events(self) -> list[dict[str, Any]]:
        """The parsed bodies of all requests, leaving out the unparsable ones."""
        return [r.event for r in self.received if r.event is not None]

    async def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout_s: float = 30
    ) -> None:
        """Poll until ``predicate(self.received)`` holds; fail the test with what
        did arrive when it still does not after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not predicate(self.received):
            if time.monotonic() >= deadline:
                raise AssertionError(f"not within {timeout_s} s: {self.summary()}")
            await asyncio.sleep(POLL_INTERVAL_S)

    def release_hung(self) -> None:
        """Let every request held by ``hang()`` so far answer 503."""
        self._hung_gate.set()
        self._hung_gate = asyncio.Event()

    def summary(self) -> str:
        """A short account of what arrived, for failure messages."""
        if not self.received:
            return "nothing received"
        shown = self.received[-_SUMMARY_LAST:]
        lines = [f"{len(self.received)} request(s) received, the last {len(shown)}:"]
        first = self.received[0].at
        lines += [f"  {_describe(r, first)}" for r in shown]
        return "\n".join(lines)

    # --- serving ---------------------------------------------------------------------

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        task = asyncio.current_task()
        assert task is not None
        self._active[task] = request
        try:
            return await self._answer_request(request, arrived)
        finally:
            del self._active[task]

    async def _answer_request(self, request: web.Request, arrived: float) -> web.StreamResponse:
        headers = _plain_headers(request)
        body = b""
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            answer = status(413, b"request body over the cap")
        except Exception:
            # Broken framing, a client gone mid-body, the sink closing: whatever it
            # was, the request is still recorded and its connection is unusable.
            answer = drop()
        else:
            answer = self._choose(request)
        self.received.append(
            Received(arrived, request.path, headers, body, _parse_event(body), answer.name)
        )
        return await answer._respond(request, self)

    def _choose(self, request: web.Request) -> Answer:
        if request.path != INGEST_PATH:
            return status(404)
        if request.method != "POST":
            return status(405, headers={"Allow": "POST"})
        if self._script:
            return self._script.popleft()
        return self._default

    async def _closed_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._closing.wait()
        return self._closing.is_set()

    async def _close(self) -> None:
        """End every handler still running: hung and dripping ones notice the
        closing flag; cutting the connections frees those blocked on a client that
        does not read (``huge``) or does not finish sending."""
        self._closing.set()
        self._hung_gate.set()
        for request in self._active.values():
            if request.transport is not None:
                request.transport.abort()
        if self._active:
            await asyncio.wait(set(self._active), timeout=SHUTDOWN_TIMEOUT_S)


@asynccontextmanager
async def event_sink(port: int = 0) -> AsyncIterator[EventSink]:
    """An ingest sink on 127.0.0.1 (``port`` 0: a free one), answering ``created()``
    until told otherwise."""
    sink = EventSink()
    app = web.Application(client_max_size=MAX_REQUEST_BODY)
    app.router.add_route("*", "/{path:.*}", sink._serve)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        site = web.TCPSite(runner, LOCALHOST, port)
        await site.start()
        (address,) = runner.addresses
        sink.url = f"http://{LOCALHOST}:{address[1]}{INGEST_PATH}"
        yield sink
    finally:
        await sink._close()
        await runner.cleanup()


def _abort(request: web.Request) -> web.StreamResponse:
    """Cut the connection; aiohttp then fails to send the returned response and
    takes that as the client having gone away, which it handles quietly."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response()


def _fresh_ids(n: int) -> list[str]:
    ids: list[str] = []
    while len(ids) < n:
        cid = secrets.token_hex(8)
        if cid not in ids:
            ids.append(cid)
    return ids


def _created_document(statuses: Sequence[str], ids: Sequence[str]) -> bytes:
    results = [{"status": s, "correlationId": c} for s, c in zip(statuses, ids, strict=True)]
    return json.dumps({"reportCount": len(results), "eventIngestResults": results}).encode()


def _plain_headers(request: web.Request) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _parse_event(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deep
        return None
    return document if isinstance(document, dict) else None


def _describe(r: Received, first: float) -> str:
    what = f"{len(r.body)} bytes"
    if r.event is not None:
        what = f"eventType={r.event.get('eventType')!r} title={r.event.get('title')!r}"
    return f"+{r.at - first:.3f}s {r.path} -> {r.answer}: {what}"
