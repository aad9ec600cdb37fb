"""Group commit of run results: the states (and BATCH payloads) recorded during one pass
of the event loop are written in one SQLite transaction.

A transaction per result was a tenth of the daemon's CPU at a thousand checks a
second, and most of a payload's cost. Whoever needs the result on disk (a run before it
ends, a payload before it is answered) awaits ``written()``, which resolves when the
transaction holding it has committed, normally within the same loop pass.

Results with event changes are not grouped: they are written at once, state and
outbox together, by the monitor (``supersede`` then drops what they replace).

A scenario's state waits in one place at a time, and a newer state takes the older
one's place. A state that differs from the one on disk only in its last result need not
be written at once (a BATCH payload's verdict still is, in the payload's own row).
``later`` writes it within a second, with whatever group comes by then, and nobody
waits for it; ``defer`` keeps it until the scenario's next write, or the final flush at
stop. The monitor defers such states for a few seconds (``monitor.RESULT_SAVE_PERIOD_S``),
so a healthy fleet on short intervals writes a row per scenario now and then, many to
a transaction, not a row per run.
"""

from __future__ import annotations

import asyncio
import logging

from monitord.model import BatchPayload
from monitord.store import Store, StoreError, put_payloads, put_states
from monitord.tracker import ScenarioState

log = logging.getLogger(__name__)

# How long a state written ``later`` may wait for a group.
LATER_S = 1.0


class GroupWriter:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._states: dict[str, ScenarioState] = {}
        self._later: dict[str, ScenarioState] = {}
        self._later_timer: asyncio.TimerHandle | None = None
        self._deferred: dict[str, ScenarioState] = {}
        self._payloads: dict[str, BatchPayload] = {}
        self._waiting: list[asyncio.Future[bool]] = []
        self._scheduled = False

    def queue(
        self, scenario_id: str, state: ScenarioState | None, payload: BatchPayload | None
    ) -> None:
        """Write ``state`` and ``payload`` (either may be None) with the next group; the
        latest per scenario."""
        if state is not None:
            self._states[scenario_id] = state
            self._later.pop(scenario_id, None)
            self._deferred.pop(scenario_id, None)
        if payload is not None:
            self._payloads[scenario_id] = payload
        if self._scheduled:
            return
        loop = self._loop_or_flush()
        if loop is not None:
            self._scheduled = True
            loop.call_soon(self.flush)

    def later(self, scenario_id: str, state: ScenarioState) -> None:
        """Write ``state`` within ``LATER_S``, with whatever group comes by then; nobody
        waits for it."""
        if scenario_id in self._states:  # a write of it is queued already: the newest goes
            self._states[scenario_id] = state
            return
        self._deferred.pop(scenario_id, None)
        self._later[scenario_id] = state
        if self._later_timer is not None:
            return
        loop = self._loop_or_flush()
        if loop is not None:
            self._later_timer = loop.call_later(LATER_S, self._flush_later)

    def defer(self, scenario_id: str, state: ScenarioState) -> None:
        """Keep ``state`` (whose status and counts are those on disk) until the scenario's
        next write, or the final flush, writes it."""
        if scenario_id in self._states:  # a write of it is on its way: the newest goes
            self._states[scenario_id] = state
        elif scenario_id in self._later:
            self._later[scenario_id] = state
        else:
            self._deferred[scenario_id] = state

    def supersede(self, scenario_id: str, *, payload: bool) -> None:
        """A newer state (and, with ``payload``, a newer payload) of the scenario has just
        been written on its own: the queued ones must not overwrite it."""
        self._states.pop(scenario_id, None)
        self._later.pop(scenario_id, None)
        self._deferred.pop(scenario_id, None)
        if payload:
            self._payloads.pop(scenario_id, None)

    def forget(self, scenario_ids: list[str]) -> None:
        """Removed scenarios: nothing of theirs may be written after their removal."""
        for scenario_id in scenario_ids:
            self._states.pop(scenario_id, None)
            self._later.pop(scenario_id, None)
            self._deferred.pop(scenario_id, None)
            self._payloads.pop(scenario_id, None)

    def payload(self, scenario_id: str) -> BatchPayload | None:
        """A payload still waiting for its group, if any."""
        return self._payloads.get(scenario_id)

    @property
    def queued(self) -> bool:
        """Whether anything waits for the next group (what ``written()`` would wait for)."""
        return bool(self._states or self._payloads)

    def written(self) -> asyncio.Future[bool]:
        """Resolves once what is queued now is on disk: True, or False when the store
        could not write it."""
        future = asyncio.get_running_loop().create_future()
        if not self.queued:
            future.set_result(True)
        else:
            self._waiting.append(future)
        return future

    def flush(self, *, deferred: bool = False) -> bool:
        """Write everything queued and everything for ``later`` (with ``deferred``, the
        deferred states too) in one transaction; tell the waiters how it went."""
        self._scheduled = False
        states, payloads, waiting = self._later | self._states, self._payloads, self._waiting
        self._states, self._later, self._payloads, self._waiting = {}, {}, {}, []
        if deferred:
            states = self._deferred | states
            self._deferred = {}
        ok = True
        if states or payloads:
            try:
                with self._store.transaction() as connection:
                    put_states(connection, states.items())
                    put_payloads(connection, payloads.items())
            except StoreError as exc:
                ok = False
                log.error(
                    "%d results and %d payloads not recorded: %s", len(states), len(payloads), exc
                )
        for future in waiting:
            if not future.done():
                future.set_result(ok)
        return ok

    def _loop_or_flush(self) -> asyncio.AbstractEventLoop | None:
        """The running loop; without one (start-up, tests), write at once instead."""
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return None

    def _flush_later(self) -> None:
        self._later_timer = None
        if self._later:
            self.flush()
