"""When scenarios run: APScheduler 3.x with our own interval spread and cron trigger.

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
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_SUBMITTED,
    JobSubmissionEvent,
)
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitord.model import CronSchedule, Scenario

log = logging.getLogger(__name__)

# Interval phases are measured from this fixed instant, so they survive restarts.
PHASE_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)

RunScenario = Callable[[Scenario], Awaitable[None]]


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


class Scheduler:
    """Owns the APScheduler instance, the jobs (one per scenario) and the runs in flight.

    APScheduler coalesces late runs into one and refuses a run while the previous
    one is still going, but it reports neither as a count. The scheduler listens
    to its submission events to measure lateness (start minus due time), to count
    the slots that a coalesced run stands in for (missed), and the runs refused
    because the previous one was still going (skipped).
    """

    def __init__(self, run: RunScenario, observer: ScheduleObserver) -> None:
        self._run = run
        self._observer = observer
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)
        self._scheduler.add_listener(self._on_refused, EVENT_JOB_MAX_INSTANCES)
        self._scenarios: dict[str, Scenario] = {}
        self._triggers: dict[str, BaseTrigger] = {}
        self._last_due: dict[str, datetime] = {}  # the latest slot each job stood for
        self._due: dict[str, datetime] = {}  # submitted, not yet started
        self._running: set[asyncio.Task[Any]] = set()

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running) and self._scheduler.state == STATE_RUNNING

    def start(self) -> None:
        self._scheduler.start()

    def schedule(self, scenario: Scenario) -> bool:
        """Schedule ``scenario`` (replacing its previous job); False if it has no schedule."""
        self.unschedule(scenario.id)
        trigger = trigger_for(scenario)
        if trigger is None:
            return False
        self._scenarios[scenario.id] = scenario
        self._triggers[scenario.id] = trigger
        self._scheduler.add_job(
            self._run_one,
            trigger,
            args=(scenario,),
            id=scenario.id,
            name=scenario.name,
            max_instances=1,  # never two runs of one scenario at once
            coalesce=True,  # a late run runs once, not once per missed slot
            misfire_grace_time=None,  # and it runs however late it is
            replace_existing=True,
        )
        return True

    def unschedule(self, scenario_id: str) -> None:
        if self._scenarios.pop(scenario_id, None) is None:
            return
        self._triggers.pop(scenario_id, None)
        self._last_due.pop(scenario_id, None)
        self._due.pop(scenario_id, None)
        with contextlib.suppress(JobLookupError):
            self._scheduler.remove_job(scenario_id)

    def next_run(self, scenario_id: str) -> datetime | None:
        job = self._scheduler.get_job(scenario_id) if scenario_id in self._scenarios else None
        # A job added before start() has no next run time until the scheduler starts.
        return None if job is None else getattr(job, "next_run_time", None)

    def _on_submitted(self, event: JobSubmissionEvent) -> None:
        # A coalesced run stands in for every slot since the previous one, and APScheduler
        # reports only the last: the run is as late as the first slot it stands in for.
        self._due[event.job_id] = self._passed(event)

    def _on_refused(self, event: JobSubmissionEvent) -> None:
        self._passed(event)
        scenario = self._scenarios.get(event.job_id)
        if scenario is not None:
            self._observer.skipped(scenario, 1)

    def _passed(self, event: JobSubmissionEvent) -> datetime:
        """Note the slot ``event`` stands for; report the slots before it that passed
        unserved (missed); return the first slot since the previous one."""
        due: datetime = event.scheduled_run_times[-1]
        previous = self._last_due.get(event.job_id)
        self._last_due[event.job_id] = due
        scenario = self._scenarios.get(event.job_id)
        trigger = self._triggers.get(event.job_id)
        if previous is None or scenario is None or trigger is None:
            return due
        first, missed = slots_since(trigger, previous, due)
        if missed:
            self._observer.missed(scenario, missed)
        return first

    async def _run_one(self, scenario: Scenario) -> None:
        due = self._due.pop(scenario.id, None)
        if due is not None:
            lateness = (datetime.now(UTC) - due).total_seconds()
            self._observer.started(scenario, max(lateness, 0.0))
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            await self._run(scenario)
        except Exception:  # the run function records its own failures; this is a bug guard
            log.exception("run of scenario %s raised", scenario.id)
        finally:
            if task is not None:
                self._running.discard(task)

    async def stop(self, grace_s: float) -> None:
        """Stop scheduling, let runs in flight finish for up to ``grace_s``, then stop."""
        if self._scheduler.running:
            self._scheduler.pause()
        running = list(self._running)
        if running:
            _, pending = await asyncio.wait(running, timeout=grace_s)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("cancelled %d runs still going after %.0f s", len(pending), grace_s)
                await asyncio.wait(pending, timeout=1.0)
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)


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
