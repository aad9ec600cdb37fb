"""Delivery of the outbox to the events-ingest sink (SPEC §6), at least once.

The worker takes the oldest message of up to ``CONCURRENCY`` scenarios at a time (so each
scenario's messages arrive in order), POSTs each with ``Authorization: Api-Token`` and an
``Idempotency-Key`` that a resend repeats, and records the verdict in the store before it
looks at the next. A message leaves the outbox only when acknowledged or given up on:

- 2xx: delivered; the 201 answer's ``eventIngestResults`` are stored. An answer that cannot
  be read (garbage, too large, too slow) still means the sink took the event: delivered.
  A result status other than OK means the sink refused the event itself: dead letter.
- network errors, timeouts, 408, 425, 429 and 5xx: retried. The whole worker pauses
  (the sink is one endpoint): ``Retry-After`` when given, else exponential backoff with
  jitter up to ``retryMaxSeconds``.
- any other answer (400, 401, 403, 404, a redirect): dead letter, since resending the
  same request gets the same answer; re-queue after fixing the cause.
- a message past ``maxAttempts`` or ``maxAgeHours``: dead letter.

A crash between a send and its acknowledgement resends the message after the restart,
with the same ``Idempotency-Key`` and ``monitord.event.id``.
"""

from __future__ import annotations

import asyncio
import email.utils
import enum
import json
import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import hdrs

from monitord import jsonout
from monitord.config.settings import EventsConfig
from monitord.events.body import for_sending
from monitord.events.outbox import (
    Outbox,
    Row,
    due_heads,
    mark_dead,
    mark_delivered,
    mark_retry,
    next_attempt_at,
)
from monitord.metrics import Metrics
from monitord.store import StoreError, parse_time

log = logging.getLogger(__name__)

CONCURRENCY = 4
MAX_ANSWER_BYTES = 64 * 1024  # the sink's answer is small; more is not read
MAX_RETRY_AFTER_S = 3600.0
FIRST_BACKOFF_S = 1.0
MIN_PAUSE_S = 0.5
IDLE_CHECK_S = 60.0  # wake at least this often even when nothing is due
RETRYABLE_STATUSES = frozenset({408, 425, 429}) | frozenset(range(500, 600))


class Verdict(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class AttemptResult:
    verdict: Verdict
    detail: str  # what happened, for the log and lastError
    retry_after_s: float | None = None
    ingest_results: tuple[dict[str, Any], ...] | None = None


# --- judging one answer (pure) -----------------------------------------------------------


def judge(
    status: int,
    reason: str,
    headers: Mapping[str, str],
    answer: bytes,
    *,
    answer_problem: str | None = None,
    now: datetime | None = None,
) -> AttemptResult:
    """The verdict on one HTTP answer of the sink."""
    if 200 <= status < 300:
        results = ingest_results(answer) if answer_problem is None else None
        refused = [r for r in results or () if r.get("status") not in (None, "OK")]
        if refused:
            statuses = ", ".join(sorted({str(r["status"]) for r in refused}))
            return AttemptResult(
                Verdict.DEAD,
                f"the sink took the request but refused the event: {statuses}",
                None,
                results,
            )
        detail = f"HTTP {status}"
        if results is None:
            detail += f" (answer not understood: {answer_problem or 'not an ingest result'})"
        return AttemptResult(Verdict.DELIVERED, detail, None, results)
    summary = f"HTTP {status} {reason}".strip()
    snippet = _snippet(answer)
    if snippet:
        summary += f": {snippet}"
    if status in RETRYABLE_STATUSES:
        retry_after = parse_retry_after(headers.get(hdrs.RETRY_AFTER), now or datetime.now(UTC))
        return AttemptResult(Verdict.RETRY, summary, retry_after)
    if 300 <= status < 400:
        location = _snippet(headers.get(hdrs.LOCATION, "").encode(), 200)
        return AttemptResult(
            Verdict.DEAD,
            f"HTTP {status}: redirected to {location or 'nowhere'}; set events.url to the final"
            " address",
        )
    return AttemptResult(Verdict.DEAD, summary)


def ingest_results(answer: bytes) -> tuple[dict[str, Any], ...] | None:
    """``eventIngestResults`` as ``{"status", "correlationId"}`` pairs; None if unreadable."""
    try:
        data = json.loads(answer)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return None
    if not isinstance(data, dict):
        return None
    results = data.get("eventIngestResults")
    if results is None:
        return ()
    if not isinstance(results, list):
        return None
    out = []
    for item in results[:100]:
        if not isinstance(item, dict):
            return None
        out.append(
            {
                "status": _short_text(item.get("status")),
                "correlationId": _short_text(item.get("correlationId")),
            }
        )
    return tuple(out)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date),
    capped at an hour; None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return MAX_RETRY_AFTER_S if len(text) > 6 else min(float(text), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER_S)


def backoff_s(failures: int, cap_s: float, rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter: 1, 2, 4 … seconds up to ``cap_s``, each drawn from
    the upper half of its range so senders spread out but never retry at once."""
    ceiling = min(cap_s, FIRST_BACKOFF_S * 2.0 ** min(max(failures - 1, 0), 32))
    return ceiling * (0.5 + rand() / 2)


def _snippet(answer: bytes, limit: int = 200) -> str:
    text = answer[: limit * 4].decode("utf-8", "replace")
    text = re.sub(r"[\x00-\x1f\x7f-\x9f]+", " ", text)  # C0, DEL and C1 controls
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short_text(value: object) -> str | None:
    return None if value is None else str(value)[:200]


# --- one attempt -------------------------------------------------------------------------


async def attempt(
    session: aiohttp.ClientSession,
    url: str,
    payload: bytes,
    headers: Mapping[str, str],
    timeout_s: float,
) -> AttemptResult:
    """POST one event and judge the answer; never raises for anything the sink does."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with session.post(
            url, data=payload, headers=headers, timeout=timeout, allow_redirects=False
        ) as response:
            answer, problem = await _read_answer(response)
            return judge(
                response.status,
                response.reason or "",
                response.headers,
                answer,
                answer_problem=problem,
            )
    except TimeoutError:
        return AttemptResult(Verdict.RETRY, f"no answer within {timeout_s:g} s")
    except aiohttp.ClientError as exc:
        return AttemptResult(Verdict.RETRY, f"network error: {_describe(exc)}")
    except OSError as exc:
        return AttemptResult(Verdict.RETRY, f"network error: {exc.strerror or exc}")


async def _read_answer(response: aiohttp.ClientResponse) -> tuple[bytes, str | None]:
    """Up to ``MAX_ANSWER_BYTES`` of the answer, and what went wrong reading it, if anything.

    The status has arrived by now, so a body that is too large or too slow does not make
    a delivered event undelivered."""
    chunks: list[bytes] = []
    size = 0
    try:
        while size <= MAX_ANSWER_BYTES:
            chunk = await response.content.readany()
            if not chunk:
                return b"".join(chunks), None
            chunks.append(chunk)
            size += len(chunk)
    except TimeoutError:
        return b"".join(chunks), "the answer was too slow"
    except (aiohttp.ClientError, OSError) as exc:
        return b"".join(chunks), f"the answer broke off ({_describe(exc)})"
    too_large = f"the answer is larger than {MAX_ANSWER_BYTES} bytes"
    return b"".join(chunks)[:MAX_ANSWER_BYTES], too_large


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:299] + "…"


# --- the worker --------------------------------------------------------------------------


class Deliverer:
    def __init__(
        self,
        outbox: Outbox,
        config: EventsConfig,
        metrics: Metrics,
        user_agent: str,
        *,
        concurrency: int = CONCURRENCY,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._outbox = outbox
        self._config = config
        self._metrics = metrics
        self._user_agent = user_agent
        self._concurrency = concurrency
        self._rand = rand
        self._failures = 0  # attempts failed in a row, for the backoff
        self._paused_until = 0.0
        self._draining = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="event delivery")

    async def stop(self, grace_s: float) -> None:
        """Send what can be sent within ``grace_s`` (nothing waits out a retry pause), then
        stop; what is left stays in the outbox for the next start."""
        task, self._task = self._task, None
        if task is None:
            return
        self._draining = True
        self._outbox.notify()
        try:
            await asyncio.wait_for(asyncio.shield(task), grace_s)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        try:
            pending, _ = self._outbox.counts()
        except StoreError:
            return
        if pending:
            log.warning(
                "%d event messages not yet delivered; they are sent after the next start", pending
            )

    async def _run(self) -> None:
        headers = {
            hdrs.USER_AGENT: self._user_agent,
            hdrs.CONTENT_TYPE: "application/json; charset=utf-8",
        }
        if self._config.token is not None:
            headers[hdrs.AUTHORIZATION] = f"Api-Token {self._config.token.value}"
        connector = aiohttp.TCPConnector(limit=self._concurrency)
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
            while True:
                try:
                    if not await self._step(session):
                        return
                except StoreError as exc:
                    log.error("event delivery: %s; trying again in 5 s", exc)
                    await self._outbox.wait_queued(5.0)
                except Exception:  # a bug must not end delivery for good
                    log.exception("event delivery failed; trying again in 5 s")
                    await self._outbox.wait_queued(5.0)

    async def _step(self, session: aiohttp.ClientSession) -> bool:
        """Send one round of due messages, or wait for some; False when drained."""
        now = time.time()
        if self._paused_until > now:
            if self._draining:
                return False
            # Woken early by stop() (or a new message, which waits like the rest).
            await self._outbox.wait_queued(self._paused_until - now)
            return True
        with self._outbox.store.reading() as connection:
            rows = due_heads(connection, now, self._concurrency)
            if not rows:
                next_at = next_attempt_at(connection)
        if not rows:
            if self._draining:
                return False
            wait = IDLE_CHECK_S if next_at is None else min(max(next_at - now, 0.0), IDLE_CHECK_S)
            await self._outbox.wait_queued(wait)
            return True
        verdicts = await asyncio.gather(*(self._deliver(session, row) for row in rows))
        retry_after = [v.retry_after_s for v in verdicts if v.verdict is Verdict.RETRY]
        if retry_after:
            self._failures += 1
            given = [s for s in retry_after if s is not None]
            delay = (
                max(*given, MIN_PAUSE_S)  # "Retry-After: 0" must not become a tight loop
                if given
                else backoff_s(self._failures, self._config.retry_max_s, self._rand)
            )
            self._paused_until = time.time() + delay
            self._set_retry_time(rows, verdicts, self._paused_until)
        elif any(v.verdict is Verdict.DELIVERED for v in verdicts):
            self._failures = 0
        return True

    async def _deliver(self, session: aiohttp.ClientSession, row: Row) -> AttemptResult:
        now = datetime.now(UTC)
        expired = self._expired(row, now)
        if expired is not None:
            self._dead(row, expired, now, attempted=False)
            return AttemptResult(Verdict.DEAD, expired)
        try:
            data = json.loads(row.body)
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except ValueError:
            problem = "the stored event is not a JSON object"
            self._dead(row, problem, now, attempted=False)
            return AttemptResult(Verdict.DEAD, problem)
        outgoing = for_sending(data, int(now.timestamp() * 1000))
        payload = jsonout.dumps_bytes(outgoing)
        headers = {"Idempotency-Key": f"{row.event_id}-{row.seq}"}
        result = await attempt(
            session, self._config.url, payload, headers, self._config.send_timeout_s
        )
        now = datetime.now(UTC)
        if result.verdict is Verdict.DELIVERED:
            with self._outbox.store.transaction() as connection:
                mark_delivered(connection, row, result.ingest_results, now)
            self._metrics.event(row.event_type, "delivered")
            log.info(
                "event %s delivered: %s %s (event id %s)%s",
                row.kind,
                row.event_type,
                result.detail,
                row.event_id,
                _correlation(result),
                extra={"scenario_id": row.scenario_id},
            )
        elif result.verdict is Verdict.DEAD:
            self._dead(row, result.detail, now, attempted=True, ingest=result.ingest_results)
        elif row.attempts + 1 >= self._config.max_attempts:
            why = f"gave up after {row.attempts + 1} attempts: {result.detail}"
            self._dead(row, why, now, attempted=True)
            return AttemptResult(Verdict.DEAD, result.detail)
        return result

    def _expired(self, row: Row, now: datetime) -> str | None:
        if row.attempts >= self._config.max_attempts:
            return f"gave up after {row.attempts} attempts: {row.last_error or 'no answer'}"
        try:
            queued = parse_time(row.queued_at)
        except (TypeError, ValueError):
            return None
        if now - queued > timedelta(hours=self._config.max_age_hours):
            return f"not sent: older than maxAgeHours ({self._config.max_age_hours} h)"
        return None

    def _dead(
        self,
        row: Row,
        why: str,
        now: datetime,
        *,
        attempted: bool,
        ingest: tuple[dict[str, Any], ...] | None = None,
    ) -> None:
        with self._outbox.store.transaction() as connection:
            mark_dead(connection, row, why, now, attempted=attempted, ingest_results=ingest)
        self._metrics.event(row.event_type, "dead_lettered")
        log.error(
            "event %s %s (event id %s) moved to the dead letters: %s;"
            " re-queue it with POST /api/v1/events/requeue once the cause is fixed",
            row.kind,
            row.event_type,
            row.event_id,
            why,
            extra={"scenario_id": row.scenario_id},
        )

    def _set_retry_time(
        self, rows: list[Row], verdicts: list[AttemptResult], retry_at: float
    ) -> None:
        with self._outbox.store.transaction() as connection:
            for row, verdict in zip(rows, verdicts, strict=True):
                if verdict.verdict is Verdict.RETRY:
                    mark_retry(connection, row, verdict.detail, retry_at)
        for row, verdict in zip(rows, verdicts, strict=True):
            if verdict.verdict is Verdict.RETRY:
                self._metrics.event(row.event_type, "retried")
                log.warning(
                    "event %s %s (event id %s) not delivered: %s; next attempt in %.1f s",
                    row.kind,
                    row.event_type,
                    row.event_id,
                    verdict.detail,
                    max(retry_at - time.time(), 0.0),
                    extra={"scenario_id": row.scenario_id},
                )


def _correlation(result: AttemptResult) -> str:
    ids = [r["correlationId"] for r in result.ingest_results or () if r.get("correlationId")]
    return f", correlation id {', '.join(ids)}" if ids else ""
