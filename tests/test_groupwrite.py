"""Group commit of run results on a real SQLite store: what one loop pass records is
written together, waiters learn when it is on disk, and nothing stale overwrites newer
data or brings back a removed scenario."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitord.groupwrite import LATER_S, GroupWriter
from monitord.model import BatchPayload, Outcome
from monitord.store import Store, put_state
from monitord.tracker import ScenarioState, Status
from tests.test_store import make_result


def payload(request_id: str) -> BatchPayload:
    moment = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    return BatchPayload(request_id, moment, "10.0.0.1", b"{}", make_result())


def failing(count: int) -> ScenarioState:
    return ScenarioState(Status.OK, count, None, None, make_result(Outcome.FAILURE))


def counts(store: Store) -> dict[str, int]:
    """Consecutive failures of each state on disk."""
    return {sid: s.consecutive_failures for sid, s in store.load_states().items()}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "state.sqlite3")
    yield opened
    opened.close()  # closing twice does nothing


async def test_one_loop_pass_is_one_transaction_and_waiters_learn_when_it_is_on_disk(
    store: Store,
) -> None:
    writer = GroupWriter(store)
    statements: list[str] = []  # the store's own connection, traced (observed only)
    store._open_connection().set_trace_callback(statements.append)
    for n in range(50):
        writer.queue(f"s{n}", failing(n), payload(f"r{n}") if n % 2 else None)
    writer.queue("s0", failing(99), None)  # the latest state of a scenario wins
    assert writer.queued
    waiter = writer.written()
    assert store.load_states() == {}  # nothing on disk before the loop pass
    assert writer.payload("s1") == payload("r1")  # but visible while waiting
    assert await waiter is True
    assert not writer.queued
    assert statements.count("COMMIT") == 1  # fifty results, one transaction
    states = store.load_states()
    assert len(states) == 50
    assert states["s0"].consecutive_failures == 99
    assert states["s49"].consecutive_failures == 49
    assert store.last_payload("s49") == payload("r49")
    assert store.last_payload("s48") is None
    assert writer.payload("s1") is None
    # Nothing queued: already written.
    assert await writer.written() is True


async def test_superseded_and_forgotten_writes_are_dropped(store: Store) -> None:
    writer = GroupWriter(store)
    writer.queue("newer", failing(1), payload("old"))
    writer.queue("gone", failing(1), payload("gone"))
    # A transition wrote a newer state (without a payload) on its own; then "gone"
    # was removed by a reload.
    with store.transaction() as connection:
        put_state(connection, "newer", failing(2))
    writer.supersede("newer", payload=False)
    writer.forget(["gone"])
    assert await writer.written() is True
    assert counts(store) == {"newer": 2}
    assert store.last_payload("newer") == payload("old")  # the payload was not superseded
    assert store.last_payload("gone") is None
    writer.queue("newer", failing(3), payload("new"))
    writer.supersede("newer", payload=True)
    assert await writer.written() is True
    assert store.last_payload("newer") == payload("old")


async def test_a_store_that_cannot_write_tells_every_waiter(store: Store) -> None:
    writer = GroupWriter(store)
    writer.queue("s", failing(1), payload("r"))
    first, second = writer.written(), writer.written()
    store.close()
    assert await asyncio.gather(first, second) == [False, False]
    # The next group starts afresh.
    assert writer.payload("s") is None


def test_without_a_running_loop_it_writes_at_once(store: Store) -> None:
    GroupWriter(store).queue("s", failing(4), None)
    assert store.load_states()["s"].consecutive_failures == 4


async def test_deferred_states_wait_for_the_next_queued_one_or_the_final_flush(
    store: Store,
) -> None:
    writer = GroupWriter(store)
    for sid in ("kept", "replaced", "gone", "superseded"):
        writer.defer(sid, failing(1))
    assert not writer.queued
    assert await writer.written() is True  # nothing queued: nothing to wait for
    assert store.load_states() == {}
    writer.queue("replaced", failing(2), None)  # the queued state replaces the deferred
    writer.forget(["gone"])
    writer.supersede("superseded", payload=False)
    assert await writer.written() is True
    assert counts(store) == {"replaced": 2}
    assert writer.flush(deferred=True) is True
    assert counts(store) == {"replaced": 2, "kept": 1}
    assert writer.flush(deferred=True) is True  # written once, then no longer held


async def test_a_state_for_later_is_written_within_a_second_and_nobody_waits(
    store: Store,
) -> None:
    writer = GroupWriter(store)
    writer.defer("s", failing(1))
    writer.later("s", failing(2))  # takes the deferred one's place
    writer.defer("s", failing(3))  # already on its way: the newest goes
    writer.later("t", failing(1))
    assert not writer.queued
    assert await writer.written() is True  # not waited for
    assert store.load_states() == {}
    async with asyncio.timeout(LATER_S + 2):
        while not store.load_states():
            await asyncio.sleep(0.01)
    assert counts(store) == {"s": 3, "t": 1}
    # An urgent group takes what waits for later along.
    writer.later("t", failing(5))
    writer.queue("u", failing(1), None)
    assert await writer.written() is True
    assert counts(store) == {"s": 3, "t": 5, "u": 1}
    assert writer.flush(deferred=True) is True  # nothing left behind
    assert counts(store) == {"s": 3, "t": 5, "u": 1}


async def test_a_newer_state_takes_the_place_of_a_queued_one_and_payloads_go_alone(
    store: Store,
) -> None:
    writer = GroupWriter(store)
    writer.queue("s", failing(1), None)
    writer.later("s", failing(2))  # in the same pass: newer than the queued one
    writer.defer("s", failing(3))
    writer.defer("p", failing(1))
    writer.queue("p", None, payload("r1"))  # a payload alone leaves the state waiting
    assert await writer.written() is True
    assert counts(store) == {"s": 3}
    assert store.last_payload("p") == payload("r1")
    assert writer.flush(deferred=True) is True
    assert store.load_states()["p"].consecutive_failures == 1
