"""When scenarios run: APScheduler 3.x with our own interval spread and cron trigger.

* Interval scenarios are phase-shifted by a stable fraction of their interval,
  derived from the scenario id, so many scenarios with the same interval do not
  fire in the same second, and a restart keeps each one's phase.
* Cron scenarios use ``monitord.config.cron`` (both dialects, DST rules) through
  a small trigger, never APScheduler's CronTrigger, which numbers days from
  Monday and has its own DST handling.
* A run that could not start on time runs once, as soon as it can (coalesced,
  no misfire grace limit); a run still going when the next is due skips it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
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


class Scheduler:
    """Owns the APScheduler instance and the set of runs in flight."""

    def __init__(self, run: RunScenario) -> None:
        self._run = run
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._running: set[asyncio.Task[Any]] = set()

    def start(self, scenarios: Iterable[Scenario]) -> int:
        """Schedule ``scenarios`` and start; returns how many were scheduled."""
        count = 0
        for scenario in scenarios:
            trigger = trigger_for(scenario)
            if trigger is None:
                continue
            self._scheduler.add_job(
                self._run_one,
                trigger,
                args=(scenario,),
                id=scenario.id,
                name=scenario.name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                replace_existing=True,
            )
            count += 1
        self._scheduler.start()
        return count

    async def _run_one(self, scenario: Scenario) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            await self._run(scenario)
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
