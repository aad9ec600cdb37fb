"""The running set of scenarios: what is loaded and scheduled, and how each one is doing.

One ``Entry`` per scenario of this region holds the scenario, its state
(``tracker``) and its run counts (``metrics.RunStats``). Every result, from
the schedule, a manual run, a BATCH payload or a payload that did not come in
time (``batch``), goes through ``_record``: new state, the event messages of a
transition (``events``) and the payload, committed to the store in one
transaction, then counted and logged. Memory follows the store: a change that
cannot be committed is not taken up, so the next result tries again.

Reloads (SPEC §8) are applied per file: a file that loads replaces what came
from it; a file that fails keeps its previous scenarios; a file that is gone
takes its scenarios with it. Scenarios whose fingerprint did not change keep
their job and state; changed ones are rescheduled; removed ones stop.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from monitord.batch import Expectations
from monitord.config.errors import LoadError
from monitord.config.scenarios import DEFAULT_APP_KEY, LoadSet, load_scenarios
from monitord.config.settings import Config
from monitord.events.body import EventSettings
from monitord.events.lifecycle import EventBook, combine
from monitord.events.outbox import NO_CHANGE, EventChange, Outbox, write_change
from monitord.groupwrite import GroupWriter
from monitord.logs import ScenarioLog, Throttle
from monitord.metrics import Metrics, RunStats, ScenarioSample
from monitord.model import (
    BatchPayload,
    FailureKind,
    Observation,
    Outcome,
    Result,
    Scenario,
    ScenarioType,
    format_timestamp,
    slot_init,
)
from monitord.runner import Runner
from monitord.scheduler import Scheduler
from monitord.store import Store, StoreError, put_payload, put_state, remove_states
from monitord.tracker import Change, ScenarioState, Status, Transition, advance

log = logging.getLogger(__name__)

TransitionHandler = Callable[[Scenario, Transition], None]


class UnknownScenarioError(LookupError):
    pass


class NotRunnableError(RuntimeError):
    """The scenario exists but cannot be run now (BATCH, or a run is in progress)."""


class NotBatchError(LookupError):
    """A payload was posted for a scenario that is not a BATCH scenario."""


@slot_init
@dataclass(frozen=True, slots=True)
class Receipt:
    """A payload judged and recorded: the result, and why the payload did not parse as
    JSON (None when it did)."""

    result: Result
    unreadable: str | None = None


# A result that leaves a scenario's status and counts as they are on disk is written at
# most this often per scenario (and at stop): its last result is all that changed.
RESULT_SAVE_PERIOD_S = 10.0
# Missed and skipped runs: at most one log line of each per scenario in this window.
SCHEDULE_LOG_WINDOW_S = 600.0
# Members read once (see model.py): these are compared for every result and payload.
_BATCH, _FAILURE = ScenarioType.BATCH, Outcome.FAILURE


class Entry:
    __slots__ = ("last_payload_at", "running", "saved_at", "scenario", "state", "stats")

    def __init__(self, scenario: Scenario, state: ScenarioState, stats: RunStats) -> None:
        self.scenario = scenario
        self.state = state
        self.stats = stats
        self.running = False
        self.last_payload_at: datetime | None = None  # BATCH: when the last payload came
        # When its state was last written (monotonic); a state taken up from the store
        # counts as written.
        self.saved_at = time.monotonic()


def same_standing(before: ScenarioState, after: ScenarioState) -> bool:
    """Whether the two states differ in nothing but their last result."""
    return (
        before.status is after.status
        and before.consecutive_failures == after.consecutive_failures
        and before.failing_since == after.failing_since
        and before.opened_kind is after.opened_kind
    )


@dataclass(frozen=True, slots=True)
class ReloadReport:
    errors: tuple[LoadError, ...] = ()
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    kept_files: tuple[str, ...] = ()  # files with errors whose previous scenarios keep running
    out_of_region: int = 0
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        text = (
            f"{self.added} added, {self.changed} changed, {self.removed} removed,"
            f" {self.unchanged} unchanged"
        )
        if self.out_of_region:
            text += f", {self.out_of_region} outside this region"
        if self.errors:
            text += f"; {len(self.errors)} errors"
        if self.kept_files:
            text += f"; {len(self.kept_files)} files with errors keep their previous scenarios"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "successful": self.ok,
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "outOfRegion": self.out_of_region,
            "keptFiles": list(self.kept_files),
            "errors": [str(e) for e in self.errors],
        }


class Monitor:
    def __init__(
        self,
        config: Config,
        environ: Mapping[str, str],
        store: Store,
        runner: Runner,
        metrics: Metrics,
        saved_states: Mapping[str, ScenarioState] | None = None,
    ) -> None:
        self._config = config
        self._environ = dict(environ)
        self._store = store
        self._writer = GroupWriter(store)
        self._runner = runner
        self._metrics = metrics
        self._schedule_metrics = _ScheduleMetrics(metrics)
        self._scheduler = Scheduler(self._run_scheduled, self._schedule_metrics)
        self._entries: dict[str, Entry] = {}
        self._files: dict[str, tuple[Scenario, ...]] = {}  # what each file contributes now
        # States from the last process, taken up as their scenarios load.
        self._saved = dict(store.load_states() if saved_states is None else saved_states)
        self._payload_times = store.load_payload_times()
        self._expectations = Expectations()
        self._app_keys: tuple[str, ...] = ()
        self._reload_lock = asyncio.Lock()
        self.transition_handlers: list[TransitionHandler] = [_log_transition]
        self.outbox = Outbox(store)
        self._events = EventBook(
            event_settings(config), refresh_interval_s(config), self.outbox.open_events()
        )

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> ReloadReport:
        """Load the scenario files, settle the events left by the last process, and start
        the schedule."""
        report = await self.reload()
        now = datetime.now(UTC)
        current = {sid: (e.scenario, e.state) for sid, e in self._entries.items()}
        change = self._events.reconcile(current, now, complete=report.ok)
        # Every file loaded: the state of scenarios that are gone is stale.
        stale = [sid for sid in self._saved if sid not in self._entries] if report.ok else []
        if self._commit(change, forget=stale) and report.ok:
            self._saved.clear()
        self._scheduler.start()
        return report

    async def stop(self, grace_s: float) -> None:
        await self._scheduler.stop(grace_s)
        self._writer.flush(deferred=True)

    @property
    def metrics(self) -> Metrics:
        return self._metrics

    @property
    def scheduler_running(self) -> bool:
        return self._scheduler.running

    @property
    def sink_configured(self) -> bool:
        return self._config.events is not None

    # --- reload ------------------------------------------------------------------------

    async def reload(self) -> ReloadReport:
        """Read the scenario files again and apply what changed (one reload at a time)."""
        async with self._reload_lock:
            # Reading and compiling files is slow work; keep it off the event loop.
            loaded = await asyncio.to_thread(
                load_scenarios, self._config.scenario_paths, self._config, self._environ
            )
            report = self._apply(loaded)
        for error in report.errors:
            log.error("%s", error)
        log.info("scenarios loaded: %s", report.summary())
        self._metrics.reload_successful.set(int(report.ok))
        if report.ok:
            self._metrics.reload_success_time.set(report.at.timestamp())
        return report

    def _apply(self, loaded: LoadSet) -> ReloadReport:
        if loaded.problems:
            # A configured folder is missing (unmounted, renamed): change nothing
            # rather than stop every scenario that lived there.
            return ReloadReport(errors=loaded.errors, unchanged=len(self._entries))
        files: dict[str, tuple[Scenario, ...]] = {}
        kept: list[str] = []
        for file in loaded.files:
            if file.ok:
                files[file.path] = file.scenarios
            elif file.path in self._files:
                files[file.path] = self._files[file.path]
                kept.append(file.path)
        wanted, out_of_region = self._wanted(files, kept)
        removed = [sid for sid in self._entries if sid not in wanted]
        for sid in removed:
            self._scheduler.unschedule(sid)
            self._expectations.forget(sid)
            ScenarioLog(log, self._entries.pop(sid).scenario).info("removed")
        self._forget(removed)
        added = changed = unchanged = 0
        now = datetime.now(UTC)
        for scenario in wanted.values():
            entry = self._entries.get(scenario.id)
            if entry is None:
                state = self._saved.pop(scenario.id, None) or ScenarioState()
                entry = Entry(scenario, state, self._metrics.run_stats())
                self._entries[scenario.id] = entry
                entry.last_payload_at = self._payload_times.pop(scenario.id, None)
                self._schedule(entry, now)
                added += 1
            elif entry.scenario.fingerprint != scenario.fingerprint:
                entry.scenario = scenario
                self._schedule(entry, now)
                ScenarioLog(log, scenario).info("changed: rescheduled")
                changed += 1
            else:
                entry.scenario = scenario  # same meaning; its file or line may have moved
                unchanged += 1
        self._files = files
        self._app_keys = self._known_app_keys()
        return ReloadReport(
            errors=loaded.errors,
            added=added,
            changed=changed,
            removed=len(removed),
            unchanged=unchanged,
            kept_files=tuple(kept),
            out_of_region=out_of_region,
        )

    def _schedule(self, entry: Entry, now: datetime) -> None:
        """Probed scenarios go to the scheduler; BATCH scenarios with a rhythm are watched
        for missed payloads instead (they are never probed)."""
        scenario = entry.scenario
        if scenario.type is ScenarioType.BATCH:
            self._scheduler.unschedule(scenario.id)
            self._expectations.watch(scenario, now, entry.last_payload_at)
        else:
            self._expectations.forget(scenario.id)
            self._scheduler.schedule(scenario)

    def _known_app_keys(self) -> tuple[str, ...]:
        if self._config.services:
            return tuple(sorted({s.app_key for s in self._config.services}))
        used = {s.app_key for scenarios in self._files.values() for s in scenarios}
        return tuple(sorted({DEFAULT_APP_KEY, *used}))

    def _wanted(
        self, files: Mapping[str, tuple[Scenario, ...]], kept: Iterable[str]
    ) -> tuple[dict[str, Scenario], int]:
        """The scenarios to run, by id. Files that loaded come first, so when a kept
        (stale) file clashes with one that loaded, the fresh definition wins."""
        stale = set(kept)
        wanted: dict[str, Scenario] = {}
        names: set[tuple[str, str]] = set()
        out_of_region = 0
        for path in sorted(files, key=lambda p: p in stale):
            for scenario in files[path]:
                if not scenario.runs_in(self._config.region):
                    out_of_region += 1
                    continue
                name = (scenario.app_key, scenario.name)
                if scenario.id in wanted or name in names:
                    ScenarioLog(log, scenario).warning(
                        "not kept from %s: another file now defines this id or name", path
                    )
                    continue
                wanted[scenario.id] = scenario
                names.add(name)
        return wanted, out_of_region

    # --- runs --------------------------------------------------------------------------

    async def _run_scheduled(self, scenario: Scenario) -> None:
        entry = self._entries.get(scenario.id)
        if entry is None:
            return
        if entry.running:  # a manual run is going: this slot skips, as for an overlap
            self._schedule_metrics.skipped(entry.scenario, 1)
            return
        await self._execute(entry)

    async def run_now(self, scenario_id: str) -> Result:
        """Run a scenario at once, outside its schedule; its result counts like any other."""
        entry = self._entries.get(scenario_id)
        if entry is None:
            raise UnknownScenarioError(scenario_id)
        if entry.scenario.type is ScenarioType.BATCH:
            raise NotRunnableError("BATCH scenarios receive payloads; they are not probed")
        if entry.running:
            raise NotRunnableError("a run of this scenario is in progress")
        return await self._execute(entry)

    async def _execute(self, entry: Entry) -> Result:
        entry.running = True
        try:
            result = await self._runner.run(entry.scenario)
        finally:
            entry.running = False
        self._record(entry, result)
        if self._writer.queued:
            await self._writer.written()  # a run ends once its result is on disk
        return result

    def _record(self, entry: Entry, result: Result, payload: BatchPayload | None = None) -> bool:
        """Take a result up: state, events (and a BATCH payload) in one transaction, then
        counts and logs. A result without event changes joins the loop pass's group write
        (await ``self._writer.written()`` for it to be on disk). False when the store
        could not record it."""
        scenario = entry.scenario
        _log_result(scenario, result)
        if self._entries.get(scenario.id) is not entry:
            return True  # removed by a reload while it ran: nothing left to record
        entry.stats.observe(result)
        state, transition = advance(entry.state, result, scenario.error_limit)
        change = NO_CHANGE
        if transition is not None:
            change = self._events.on_transition(scenario, state, transition, datetime.now(UTC))
        now = time.monotonic()
        if transition is None and same_standing(entry.state, state):
            if now < entry.saved_at + RESULT_SAVE_PERIOD_S:
                self._writer.defer(scenario.id, state)
            else:
                self._writer.later(scenario.id, state)
                entry.saved_at = now
            if payload is not None:  # the verdict is on disk at once, in the payload's row
                self._writer.queue(scenario.id, None, payload)
        elif transition is None:
            self._writer.queue(scenario.id, state, payload)
            entry.saved_at = now
        elif self._commit(
            change,
            state=(scenario.id, state),
            payload=None if payload is None else (scenario.id, payload),
            announce=False,
        ):
            self._writer.supersede(scenario.id, payload=payload is not None)
            entry.saved_at = now
        else:
            return False
        if payload is not None:
            entry.stats.observe_payload(result.outcome)
        entry.state = state
        if transition is not None:
            for handler in self.transition_handlers:
                handler(scenario, transition)
        self._announce(change)
        return True

    # --- BATCH payloads ----------------------------------------------------------------

    def app_key_known(self, given: str) -> str | None:
        """The configured (or, without services, used) appKey equal to ``given``, compared
        in constant time against every key; None when there is none."""
        found = None
        given_bytes = given.encode("utf-8", "surrogatepass")
        for key in self._app_keys:  # every key, even after a match
            if hmac.compare_digest(given_bytes, key.encode()):
                found = key
        return found

    def batch_scenario(self, app_key: str, scenario_id: str) -> Scenario:
        """The BATCH scenario ``scenario_id`` of ``app_key`` (a key ``app_key_known`` gave).

        Raises ``UnknownScenarioError`` (also for another appKey's scenario, which this
        key must not learn about) or ``NotBatchError``."""
        entry = self._entries.get(scenario_id)
        if entry is None or entry.scenario.app_key != app_key:
            raise UnknownScenarioError(scenario_id)
        if entry.scenario.type is not _BATCH:
            raise NotBatchError(
                f"scenario {scenario_id} is an {entry.scenario.type.value} scenario;"
                " only BATCH scenarios receive payloads"
            )
        return entry.scenario

    async def receive_payload(
        self,
        scenario_id: str,
        body: bytes,
        charset: str | None,
        *,
        request_id: str,
        client: str,
        received_at: datetime,
    ) -> Receipt:
        """Judge a payload against its BATCH scenario and record the result like a run's.

        Raises ``UnknownScenarioError`` when the scenario is gone, and ``StoreError`` when
        the verdict could not be recorded (the job should send it again)."""
        entry = self._entries.get(scenario_id)
        if entry is None or entry.scenario.type is not _BATCH:
            raise UnknownScenarioError(scenario_id)
        scenario = entry.scenario
        # A deadline that passed before this payload came is a miss, recorded first
        # (deadlines are otherwise checked once a second).
        self.check_payload_deadlines(received_at)
        start = time.monotonic()
        observation = Observation(body=body, charset=charset)
        verdict = self._runner.judge_now(scenario.validation, observation)
        if verdict is None:
            verdict = await self._runner.judge_in_thread(scenario.validation, observation)
        result = Result(
            scenario_id=scenario.id,
            scenario_name=scenario.name,
            scenario_type=scenario.type,
            outcome=verdict.outcome,
            reasons=verdict.reasons,
            started_at=received_at,
            duration_ms=(time.monotonic() - start) * 1000,
            response_bytes=len(body),
            failure_kind=verdict.failure_kind,
        )
        payload = BatchPayload(request_id, received_at, client, body, result)
        if self._entries.get(scenario_id) is not entry:
            raise UnknownScenarioError(scenario_id)  # removed while it was judged
        if not self._record(entry, result, payload) or not await self._writer.written():
            raise StoreError("the state store could not record the payload; send it again")
        entry.last_payload_at = received_at
        self._expectations.arrived(scenario_id, received_at)
        return Receipt(result, verdict.unreadable)

    def last_payload(self, scenario_id: str) -> BatchPayload | None:
        return self._writer.payload(scenario_id) or self._store.last_payload(scenario_id)

    def check_payload_deadlines(self, now: datetime | None = None) -> int:
        """Record a failure for every BATCH scenario whose payload is overdue; how many."""
        now = now or datetime.now(UTC)
        missed = self._expectations.overdue(now)
        for miss in missed:
            entry = self._entries.get(miss.scenario_id)
            if entry is None:
                continue
            result = Result(
                scenario_id=entry.scenario.id,
                scenario_name=entry.scenario.name,
                scenario_type=entry.scenario.type,
                outcome=Outcome.FAILURE,
                reasons=(miss.reason,),
                started_at=miss.deadline,
                duration_ms=0.0,
                failure_kind=FailureKind.UNAVAILABLE,
            )
            self._record(entry, result)
        return len(missed)

    def _forget(self, scenario_ids: list[str]) -> None:
        """Removed scenarios: their state goes, their open events are closed."""
        if not scenario_ids:
            return
        now = datetime.now(UTC)
        change = combine(*(self._events.close(sid, end=now, now=now) for sid in scenario_ids))
        self._commit(change, forget=scenario_ids)

    def _commit(
        self,
        change: EventChange,
        *,
        state: tuple[str, ScenarioState] | None = None,
        payload: tuple[str, BatchPayload] | None = None,
        forget: list[str] | None = None,
        announce: bool = True,
    ) -> bool:
        """Write a state change and its events in one transaction; then take the events up
        (and, with ``announce``, count and log them)."""
        if forget:
            self._writer.forget(forget)  # queued writes must not bring them back
        if not change and state is None and not forget:
            return True
        try:
            with self._store.transaction() as connection:
                if state is not None:
                    put_state(connection, *state)
                if payload is not None:
                    put_payload(connection, *payload)
                if forget:
                    remove_states(connection, forget)
                write_change(connection, change)
        except StoreError as exc:
            what = f"scenario {state[0]}: result" if state is not None else "change"
            log.error("%s not recorded, state and events unchanged: %s", what, exc)
            return False
        self._events.apply(change)
        if announce:
            self._announce(change)
        return True

    def _announce(self, change: EventChange) -> None:
        for message in change.messages:
            self._metrics.event(message.event_type.value, "queued")
            log.info(
                "event %s queued: %s %r (event id %s)%s",
                message.kind.value,
                message.event_type.value,
                message.body.get("title"),
                message.event_id,
                ""
                if self._config.events
                else "; no events sink is configured, so it stays in the outbox",
                extra={
                    "scenario_id": message.scenario_id,
                    "scenario_name": message.body["properties"]["monitord.scenario.name"],
                },
            )
        if change.messages:
            self.outbox.notify()

    def refresh_events(self, now: datetime | None = None) -> int:
        """Re-send the open events that are due, so the platform keeps them open; the
        number of scenarios refreshed."""
        now = now or datetime.now(UTC)
        done = 0
        for sid in self._events.due(now):
            entry = self._entries.get(sid)
            event = self._events.get(sid)
            if entry is None or event is None or entry.state.status is not Status.FAILING:
                continue
            try:
                waiting = self.outbox.has_pending(event.event_id)
            except StoreError as exc:
                log.error("open events not refreshed: %s", exc)
                return done
            change = self._events.refresh(entry.scenario, entry.state, now, send=not waiting)
            if self._commit(change):
                done += 1
        return done

    # --- views -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    def counts_by_type(self) -> Counter[ScenarioType]:
        return Counter(entry.scenario.type for entry in self._entries.values())

    def samples(self) -> list[ScenarioSample]:
        return [sample for piece in self.sample_pieces(len(self._entries) or 1) for sample in piece]

    def sample_pieces(self, size: int) -> Iterator[list[ScenarioSample]]:
        """The scenarios' samples, ``size`` at a time (the caller may let the loop run
        in between), of the scenarios loaded when the iteration began."""
        region = self._config.region
        entries = list(self._entries.values())
        for start in range(0, len(entries), size):
            yield [_sample(entry, region) for entry in entries[start : start + size]]

    def describe(self) -> dict[str, Any]:
        """``GET /api/v1/scenarios``: every scenario with its state; numErrors = failing."""
        scenarios = [self._describe(entry) for entry in self._entries.values()]
        failing = sum(1 for e in self._entries.values() if e.state.status is Status.FAILING)
        return {"numErrors": failing, "scenarios": scenarios}

    def describe_one(self, scenario_id: str, *, payload_body: bool = False) -> dict[str, Any]:
        """One scenario as in ``describe``; a BATCH scenario adds its last payload as
        stored (``payload_body``: with the payload itself, which may carry job data)."""
        entry = self._entries.get(scenario_id)
        if entry is None:
            raise UnknownScenarioError(scenario_id)
        described = self._describe(entry)
        if entry.scenario.type is ScenarioType.BATCH:
            payload = self._store.last_payload(scenario_id)
            described["lastPayload"] = (
                None if payload is None else _payload_json(payload, payload_body)
            )
        return described

    def _describe(self, entry: Entry) -> dict[str, Any]:
        scenario, state = entry.scenario, entry.state
        next_run = self._scheduler.next_run(scenario.id)
        batch: dict[str, Any] = {}
        if scenario.type is ScenarioType.BATCH:
            next_run = self._expectations.next_deadline(scenario.id)
            grace = self._expectations.grace(scenario.id)
            batch = {
                "lastPayloadAt": _timestamp(entry.last_payload_at),
                "graceSeconds": None if grace is None else round(grace.total_seconds()),
            }
        return {
            "scenarioId": scenario.id,
            "scenarioName": scenario.name,
            "scenarioType": scenario.type.value,
            "appKey": scenario.app_key,
            "source": f"{scenario.source.path}:{scenario.source.line}",
            "schedule": _schedule_text(scenario),
            "state": state.status.value,
            "consecutiveFailures": state.consecutive_failures,
            "errorLimitCount": scenario.error_limit,
            "failingSince": _timestamp(state.failing_since),
            "lastResult": None if state.last_result is None else state.last_result.to_json(),
            "nextRunAt": _timestamp(next_run),
            **batch,
        }

    # --- what the management API needs -----------------------------------------------

    @property
    def config(self) -> Config:
        return self._config

    @property
    def environ(self) -> Mapping[str, str]:
        return self._environ

    def loaded_files(self) -> dict[str, tuple[Scenario, ...]]:
        """What each scenario file contributes now, including scenarios of other regions."""
        return dict(self._files)

    def status_of(self, scenario_id: str) -> str | None:
        """``unknown``, ``ok`` or ``failing``; None when it does not run in this region."""
        entry = self._entries.get(scenario_id)
        return None if entry is None else entry.state.status.value


class _ScheduleMetrics:
    """Schedule timeliness into metrics, and into the log where an operator should see it.

    Every missed and skipped slot is counted; the log has at most one line of each kind
    per scenario and ``SCHEDULE_LOG_WINDOW_S`` (a scenario whose runs outlast its
    interval skips slots for as long as it is loaded)."""

    def __init__(self, metrics: Metrics, clock: Callable[[], float] = time.monotonic) -> None:
        self._metrics = metrics
        self._missed_lines = Throttle(SCHEDULE_LOG_WINDOW_S, clock)
        self._skipped_lines = Throttle(SCHEDULE_LOG_WINDOW_S, clock)

    def started(self, scenario: Scenario, lateness_s: float) -> None:
        self._metrics.lateness.observe(lateness_s)

    def missed(self, scenario: Scenario, slots: int) -> None:
        self._metrics.missed.inc(slots)
        held = self._missed_lines.allow(scenario.id, slots)
        if held is not None:
            ScenarioLog(log, scenario).warning(
                "%d scheduled runs missed (the daemon could not start them on time);"
                " ran once late%s",
                slots,
                _held_back(held, "missed", self._missed_lines.window_s),
            )

    def skipped(self, scenario: Scenario, slots: int) -> None:
        self._metrics.skipped.inc(slots)
        held = self._skipped_lines.allow(scenario.id, slots)
        if held is not None:
            ScenarioLog(log, scenario).warning(
                "run skipped: the previous run was still going when this one was due%s",
                _held_back(held, "skipped", self._skipped_lines.window_s),
            )


def _held_back(held: int, what: str, window_s: float) -> str:
    if not held:
        return ""
    return (
        f"; {held} more runs {what} since the last such line"
        f" (one line per {window_s / 60:g} minutes; the metric counts every one)"
    )


def _sample(entry: Entry, region: str) -> ScenarioSample:
    scenario, state, stats = entry.scenario, entry.state, entry.stats
    up, last_run = stats.up, stats.last_run_s
    last = state.last_result
    if last is not None:  # restored from the store, before this process ran it
        if up is None and last.outcome is not Outcome.SUPPRESSED:
            up = int(last.outcome is Outcome.SUCCESS)
        if last_run is None:
            last_run = last.started_at.timestamp() + last.duration_ms / 1000
    return ScenarioSample(
        labels=(scenario.id, scenario.name, scenario.type.value, scenario.app_key, region),
        failing=state.status is Status.FAILING,
        consecutive_failures=state.consecutive_failures,
        up=up,
        last_run_s=last_run,
        runs=(stats.runs[0], stats.runs[1], stats.runs[2]),
        payloads=(
            (stats.payloads[0], stats.payloads[1]) if scenario.type is ScenarioType.BATCH else None
        ),
        buckets=tuple(stats.buckets),
        duration_sum=stats.duration_sum,
        suppressible=scenario.validation.avoiding_text is not None,
    )


def _payload_json(payload: BatchPayload, with_body: bool) -> dict[str, Any]:
    described: dict[str, Any] = {
        "requestId": payload.request_id,
        "receivedAt": _timestamp(payload.received_at),
        "ipaddr": payload.client,
        "bytes": len(payload.body),
        "result": payload.result.to_json(),
    }
    if with_body:
        described["body"] = payload.body.decode("utf-8", "replace")
    return described


def _schedule_text(scenario: Scenario) -> str | None:
    schedule = scenario.schedule
    if schedule is None:
        return None
    if schedule.cron is not None:
        text = f"cron {schedule.cron.expression} ({schedule.cron.timezone})"
    else:
        text = f"every {schedule.interval_s} s"
    return f"expects a payload: {text}" if scenario.type is ScenarioType.BATCH else text


def _timestamp(moment: datetime | None) -> str | None:
    return None if moment is None else format_timestamp(moment.astimezone(UTC))


def _log_result(scenario: Scenario, result: Result) -> None:
    failed = result.outcome is _FAILURE
    # A line per passing run is noise at scale (and about a tenth of the CPU): DEBUG.
    if not log.isEnabledFor(logging.WARNING if failed else logging.DEBUG):
        return
    scenario_log = ScenarioLog(log, scenario)
    detail = f"{result.outcome.value} in {result.duration_ms:.1f} ms"
    if result.status_code is not None:
        detail += f" (status {result.status_code})"
    if result.reasons:
        detail += ": " + "; ".join(result.reasons)
    if failed:
        scenario_log.warning("%s", detail)
    else:
        scenario_log.debug("%s", detail)


def _log_transition(scenario: Scenario, transition: Transition) -> None:
    scenario_log = ScenarioLog(log, scenario)
    if transition.change is Change.FAILING:
        scenario_log.warning(
            "transition to failing: %d consecutive failures (errorLimitCount %d) since %s, %s: %s",
            transition.consecutive_failures,
            scenario.error_limit,
            _timestamp(transition.failing_since),
            transition.kind.value if transition.kind else "failure",
            "; ".join(transition.reasons),
        )
    else:
        scenario_log.info(
            "transition to ok: recovered after %d consecutive failures since %s",
            transition.consecutive_failures,
            _timestamp(transition.failing_since),
        )


def event_settings(config: Config) -> EventSettings:
    events = config.events
    return EventSettings(
        region=config.region,
        timeout_minutes=15 if events is None else events.timeout_minutes,
        default_entity_selector=None if events is None else events.entity_selector,
        service_names={s.app_key: s.name for s in config.services},
    )


def refresh_interval_s(config: Config) -> int:
    return 15 * 30 if config.events is None else config.events.refresh_interval_s
