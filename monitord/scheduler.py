"""When scenarios run: APScheduler 3.x triggers (our interval spread and cron) over a
heap of due times, with one event-loop timer for the earliest.

* Interval scenarios are phase-shifted by a stable fraction of their interval,
  derived from the scenario id, so many scenarios with the same interval do not
  fire in the same second, and a restart keeps each one's phase.
* Cron scenarios use ``monitord.config.cron`` (both dialects, DST rules) through
  a small trigger, never APScheduler's CronTrigger, which numbers days from
  Monday and has its own DST handling.
* A run that could not start on time runs once, as soon as it can (coalesced,
  no misfire grace limit) and the slots it stands in for are counted as missed;
  a run still going when the next is due makes that one skip, counted.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import itertools
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitord.model import CronSchedule, Scenario

log = logging.getLogger(__name__)

# Interval phases are measured from this fixed instant, so they survive restarts.
PHASE_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)

RunScenario = Callable[[Scenario], Awaitable[None]]

# A timer that fires this much before its slot by the wall clock (the clock was set
# back while it waited) is set again rather than run early.
EARLY_TOLERANCE = timedelta(milliseconds=1)
# The scheduler wakes on the loop clock's 5 ms ticks and starts every run due by then:
# runs whose slots fall in the same tick share loop passes (one wake, one poll for their
# sockets) instead of each waking the loop alone. A run starts up to one tick after its
# slot; that costs nothing at intervals of a second or more, and saves about a quarter
# of the CPU per check.
WAKE_TICK_S = 0.005
# Stale heap entries (of replaced or removed scenarios) are dropped once there are more
# than this many and they are over half the heap.
COMPACT_AFTER = 1024


def spread_offset(scenario_id: str, interval_s: int) -> float:
    """A stable offset in ``[0, interval_s)`` seconds derived from the scenario id."""
    digest = hashlib.sha256(scenario_id.encode("utf-8")).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return fraction * interval_s


class CronTrigger(BaseTrigger):  # type: ignore[misc]  # APScheduler ships no types
    """An APScheduler trigger over a validated ``CronSchedule``."""

    __slots__ = ("cron",)

    def __init__(self, cron: CronSchedule) -> None:
        self.cron = cron

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        try:
            return self.cron.next_after(previous_fire_time or now)
        except ValueError as exc:
            # A schedule that has run out (its last year passed) ends the job;
            # raising here would break APScheduler's wake-up for every job.
            log.warning("cron %r will not fire again: %s", self.cron.expression, exc)
            return None

    def __str__(self) -> str:
        return f"cron[{self.cron.expression} {self.cron.timezone}]"


def trigger_for(scenario: Scenario) -> BaseTrigger | None:
    schedule = scenario.schedule
    if schedule is None:
        return None
    if schedule.cron is not None:
        return CronTrigger(schedule.cron)
    if schedule.interval_s is None:
        return None
    offset = spread_offset(scenario.id, schedule.interval_s)
    return IntervalTrigger(
        seconds=schedule.interval_s,
        start_date=PHASE_EPOCH + timedelta(seconds=offset),
        timezone=UTC,
    )


class ScheduleObserver(Protocol):
    """What the scheduler reports about timeliness (metrics and logs)."""

    def started(self, scenario: Scenario, lateness_s: float) -> None: ...

    def missed(self, scenario: Scenario, slots: int) -> None: ...

    def skipped(self, scenario: Scenario, slots: int) -> None: ...


class _Job:
    """One scheduled scenario: its trigger, its next slot, its run in flight."""

    __slots__ = ("last_due", "next_due", "scenario", "seq", "task", "trigger")

    def __init__(self, scenario: Scenario, trigger: BaseTrigger) -> None:
        self.scenario = scenario
        self.trigger = trigger
        self.next_due: datetime | None = None  # None: not armed yet, or the schedule ended
        self.last_due: datetime | None = None  # the latest slot served or skipped
        self.seq = 0  # the heap entry that stands for its next slot; 0: none
        self.task: asyncio.Task[None] | None = None


class Scheduler:
    """A heap of due times and one loop timer for its head, woken on ``WAKE_TICK_S`` ticks;
    APScheduler's triggers say when.

    A due run costs a heap pop, a trigger step and one task. (APScheduler's scheduler,
    with its job store, executor and events, cost about a sixth of the daemon's CPU at a
    thousand runs a second.) The heap holds plain ``(loop time, sequence, scenario id)``
    tuples, which the garbage collector stops tracking, and nothing of a run outlives it:
    a timer object per scenario, alive until its next slot, made every collection of the
    young generations walk them all (25 ms at 10,000 scenarios). A replaced or removed
    scenario's entry stays in the heap, stale, until it comes up or the heap is compacted.

    A slot that comes while the scenario's previous run is still going is skipped and
    counted; a loop that wakes late runs the scenario once and counts the slots it stands
    in for as missed; lateness is the run's start minus the first slot it stands in for.
    """

    def __init__(self, run: RunScenario, observer: ScheduleObserver) -> None:
        self._run = run
        self._observer = observer
        self._jobs: dict[str, _Job] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._sequence = itertools.count(1)
        self._stale = 0  # heap entries whose job was replaced or removed
        self._wakeup: asyncio.TimerHandle | None = None
        self._wakeup_at = math.inf
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False
        self._running: dict[asyncio.Task[None], _Job] = {}

    @property
    def running(self) -> bool:
        return self._loop is not None and not self._stopped

    def start(self) -> None:
        """Start on the running loop and arm every job scheduled so far."""
        self._loop = asyncio.get_running_loop()
        now = datetime.now(UTC)
        for job in self._jobs.values():
            self._arm(job, job.trigger.get_next_fire_time(None, now))

    def schedule(self, scenario: Scenario) -> bool:
        """Schedule ``scenario`` (replacing its previous job); False if it has no schedule."""
        previous = self._jobs.get(scenario.id)
        self.unschedule(scenario.id)
        trigger = trigger_for(scenario)
        if trigger is None:
            return False
        job = self._jobs[scenario.id] = _Job(scenario, trigger)
        if previous is not None:
            job.task = previous.task  # its run in flight still makes the next slot skip
        if self.running:
            now = datetime.now(UTC)
            self._arm(job, trigger.get_next_fire_time(None, now))
        return True

    def unschedule(self, scenario_id: str) -> None:
        job = self._jobs.pop(scenario_id, None)
        if job is not None:
            self._disarm(job)  # a run in flight finishes; stop() still waits for it

    def next_run(self, scenario_id: str) -> datetime | None:
        job = self._jobs.get(scenario_id)
        return None if job is None else job.next_due

    def _arm(self, job: _Job, due: datetime | None) -> None:
        self._disarm(job)
        job.next_due = due
        if due is None or self._loop is None or self._stopped:
            return
        # Both clocks read together: a "now" taken before arming 10,000 jobs at start
        # would set the last of them tens of milliseconds late.
        when = self._loop.time() + max((due - datetime.now(UTC)).total_seconds(), 0.0)
        job.seq = next(self._sequence)
        heapq.heappush(self._heap, (when, job.seq, job.scenario.id))
        if when < self._wakeup_at:
            self._wake_at(when)

    def _disarm(self, job: _Job) -> None:
        if not job.seq:
            return
        job.seq = 0
        self._stale += 1
        if self._stale > COMPACT_AFTER and self._stale > len(self._heap) // 2:
            # In place: a pass of ``_wake`` holds the list.
            self._heap[:] = [entry for entry in self._heap if self._current(entry) is not None]
            heapq.heapify(self._heap)
            self._stale = 0

    def _current(self, entry: tuple[float, int, str]) -> _Job | None:
        """The job ``entry`` stands for, if it is still that job's next slot."""
        job = self._jobs.get(entry[2])
        return job if job is not None and job.seq == entry[1] else None

    def _wake_at(self, when: float) -> None:
        when = math.ceil(when / WAKE_TICK_S) * WAKE_TICK_S  # the tick at or after ``when``
        if when >= self._wakeup_at:
            return
        if self._wakeup is not None:
            self._wakeup.cancel()
        self._wakeup_at = when
        if self._loop is not None:
            self._wakeup = self._loop.call_at(when, self._wake)

    def _wake(self) -> None:
        """Fire every job whose slot has come, then sleep until the next."""
        self._wakeup, self._wakeup_at = None, math.inf
        loop = self._loop
        if loop is None or self._stopped:
            return
        heap, now = self._heap, loop.time()
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            job = self._current(entry)
            if job is None:
                self._stale = max(self._stale - 1, 0)
                continue
            job.seq = 0
            self._fire(job, loop)
        if heap:
            self._wake_at(heap[0][0])

    def _fire(self, job: _Job, loop: asyncio.AbstractEventLoop) -> None:
        due = job.next_due
        if due is None:
            return
        now = datetime.now(UTC)
        if due > now + EARLY_TOLERANCE:  # the wall clock was set back while we waited
            self._arm(job, due)
            return
        try:
            latest, following = latest_slot(job.trigger, due, now)
            first = self._passed(job, latest)
        except Exception:  # a trigger is our code: log its bug, never stop the others
            log.exception("schedule of scenario %s failed; it will not run again", job.scenario.id)
            job.next_due = None
            return
        if job.task is not None and not job.task.done():
            self._observer.skipped(job.scenario, 1)
        else:
            task = loop.create_task(self._run_one(job.scenario, first))
            job.task = task
            self._running[task] = job
            task.add_done_callback(self._finished)
        self._arm(job, following)

    def _finished(self, task: asyncio.Task[None]) -> None:
        """A run ended: nothing of it stays referenced."""
        job = self._running.pop(task, None)
        if job is None:
            return
        for holder in (job, self._jobs.get(job.scenario.id)):
            if holder is not None and holder.task is task:
                holder.task = None

    def _passed(self, job: _Job, due: datetime) -> datetime:
        """Note the slot ``due`` as served; report the slots before it that passed
        unserved (missed); return the first slot since the previous one."""
        previous, job.last_due = job.last_due, due
        if previous is None:
            return due
        first, missed = slots_since(job.trigger, previous, due)
        if missed:
            self._observer.missed(job.scenario, missed)
        return first

    async def _run_one(self, scenario: Scenario, due: datetime) -> None:
        lateness = (datetime.now(UTC) - due).total_seconds()
        self._observer.started(scenario, max(lateness, 0.0))
        try:
            await self._run(scenario)
        except Exception:  # the run function records its own failures; this is a bug guard
            log.exception("run of scenario %s raised", scenario.id)

    async def stop(self, grace_s: float) -> None:
        """Stop scheduling, let runs in flight finish for up to ``grace_s``, then stop."""
        self._stopped = True
        if self._wakeup is not None:
            self._wakeup.cancel()
            self._wakeup, self._wakeup_at = None, math.inf
        self._heap.clear()
        for job in self._jobs.values():
            job.seq = 0
        running = list(self._running)
        if running:
            _, pending = await asyncio.wait(running, timeout=grace_s)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("cancelled %d runs still going after %.0f s", len(pending), grace_s)
                await asyncio.wait(pending, timeout=1.0)


def latest_slot(
    trigger: BaseTrigger, due: datetime, now: datetime
) -> tuple[datetime, datetime | None]:
    """The last slot at or before ``now``, counting from ``due`` (``due`` itself when the
    loop woke on time), and the slot after it."""
    if isinstance(trigger, IntervalTrigger) and trigger.end_date is None and not trigger.jitter:
        # Plain arithmetic: the trigger's call costs more (ours have no end and no jitter).
        period: timedelta = trigger.interval
        latest = due + max((now - due) // period, 0) * period
        return latest, latest + period
    latest, following = due, trigger.get_next_fire_time(due, now)
    while following is not None and following <= now:  # the loop woke late
        latest, following = following, trigger.get_next_fire_time(following, now)
    return latest, following


# Counting missed slots steps through the schedule; past this many it stops counting.
MAX_COUNTED_SLOTS = 100_000


def slots_since(trigger: BaseTrigger, previous: datetime, due: datetime) -> tuple[datetime, int]:
    """The first fire time after ``previous`` (``due`` at the latest), and how many fire
    times lie strictly between ``previous`` and ``due``."""
    if isinstance(trigger, IntervalTrigger):
        period: timedelta = trigger.interval
        missed = max(round((due - previous) / period) - 1, 0)
        return (previous + period if missed else due), missed
    first: datetime | None = trigger.get_next_fire_time(previous, due)
    if first is None or first >= due:
        return due, 0
    missed, moment = 0, first
    while moment is not None and moment < due and missed < MAX_COUNTED_SLOTS:
        missed += 1
        moment = trigger.get_next_fire_time(moment, due)
    return first, missed
