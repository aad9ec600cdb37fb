"""Scheduling: interval spread, the cron trigger (DST), and the Scheduler on a real loop."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from monitord.config.cron import parse_cron
from monitord.model import Scenario, Schedule
from monitord.scheduler import (
    COMPACT_AFTER,
    PHASE_EPOCH,
    WAKE_TICK_S,
    CronTrigger,
    Scheduler,
    latest_slot,
    slots_since,
    spread_offset,
    trigger_for,
)
from tests.factories import api_scenario

NOW = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)


def test_spread_offset_is_stable_and_within_the_interval() -> None:
    ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"s{i}")) for i in range(1000)]
    offsets = [spread_offset(i, 30) for i in ids]
    assert offsets == [spread_offset(i, 30) for i in ids]
    assert all(0 <= o < 30 for o in offsets)
    # A thousand 30-second scenarios land in (nearly) every second of the period.
    assert len({int(o) for o in offsets}) == 30
    per_second = [sum(1 for o in offsets if int(o) == s) for s in range(30)]
    assert max(per_second) < 3 * 1000 / 30


def test_interval_trigger_keeps_its_phase_across_restarts() -> None:
    scenario = replace(api_scenario("http://127.0.0.1:9/"), schedule=Schedule(interval_s=60))
    trigger = trigger_for(scenario)
    assert trigger is not None
    first = trigger.get_next_fire_time(None, NOW)
    later = trigger.get_next_fire_time(None, NOW + timedelta(hours=5, seconds=1))
    offset = spread_offset(scenario.id, 60)
    assert NOW < first <= NOW + timedelta(seconds=60)
    phase = ((first - PHASE_EPOCH).total_seconds() - offset) % 60
    assert min(phase, 60 - phase) < 1e-3  # fires at epoch + offset + k * interval
    drift = (later - first).total_seconds() % 60
    assert min(drift, 60 - drift) < 1e-3


def test_cron_trigger_uses_the_scenario_cron() -> None:
    cron = parse_cron("7 * * * * ? *", "UTC", NOW)
    trigger = CronTrigger(cron)
    first = trigger.get_next_fire_time(None, NOW)
    assert first == NOW + timedelta(seconds=7)
    assert trigger.get_next_fire_time(first, NOW) == NOW + timedelta(minutes=1, seconds=7)
    scenario = replace(api_scenario("http://127.0.0.1:9/"), schedule=Schedule(cron=cron))
    assert isinstance(trigger_for(scenario), CronTrigger)


def test_unscheduled_scenarios_get_no_trigger() -> None:
    assert trigger_for(replace(api_scenario("http://127.0.0.1:9/"), schedule=None)) is None


def test_a_cron_that_runs_out_ends_instead_of_raising() -> None:
    cron = parse_cron("0 0 12 31 12 ? 2026", "UTC", NOW)  # one last fire: 2026-12-31 12:00
    trigger = CronTrigger(cron)
    last = trigger.get_next_fire_time(None, NOW)
    assert last == datetime(2026, 12, 31, 12, 0, tzinfo=UTC)
    assert trigger.get_next_fire_time(last, last) is None


# --- the Scheduler on the real event loop ------------------------------------------------


class Recorder:
    """A ScheduleObserver that keeps what it was told."""

    def __init__(self) -> None:
        self.starts: list[tuple[str, float]] = []
        self.misses: list[tuple[str, int]] = []
        self.skips: list[tuple[str, int]] = []

    def started(self, scenario: Scenario, lateness_s: float) -> None:
        self.starts.append((scenario.id, lateness_s))

    def missed(self, scenario: Scenario, slots: int) -> None:
        self.misses.append((scenario.id, slots))

    def skipped(self, scenario: Scenario, slots: int) -> None:
        self.skips.append((scenario.id, slots))


class Runs:
    """A run function that records when each run started (wall clock and monotonic)."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.started: list[tuple[Scenario, datetime, float]] = []
        self.finished = 0
        self.cancelled = 0
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, scenario: Scenario) -> None:
        self.started.append((scenario, datetime.now(UTC), time.monotonic()))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.seconds:
                await asyncio.sleep(self.seconds)
            self.finished += 1
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1

    def __len__(self) -> int:
        return len(self.started)

    def since(self, moment: float) -> list[float]:
        """Monotonic start times of the runs that started at or after ``moment``."""
        return [mono for _, _, mono in self.started if mono >= moment]


def every_second(name: str = "every second") -> Scenario:
    """A 1-second interval scenario whose phase puts its first slot 0.1-0.3 s from now."""
    base = replace(api_scenario("http://127.0.0.1:9/", name=name), schedule=Schedule(interval_s=1))
    elapsed = (datetime.now(UTC) - PHASE_EPOCH).total_seconds()
    while True:
        scenario = replace(base, id=str(uuid.uuid4()))
        if 0.1 <= (spread_offset(scenario.id, 1) - elapsed) % 1 <= 0.3:
            return scenario


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll ``condition`` until it holds; fails with TimeoutError after ``seconds``."""
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def started_scheduler(run: Runs, observer: Recorder) -> AsyncIterator[Scheduler]:
    scheduler = Scheduler(run, observer)
    scheduler.start()
    try:
        yield scheduler
    finally:
        await scheduler.stop(0.2)
        await asyncio.sleep(0)  # let cancelled runs finish unwinding


async def test_interval_scenario_runs_every_interval_on_time() -> None:
    run, observer = Runs(), Recorder()
    scenario = every_second()
    async with started_scheduler(run, observer) as scheduler:
        assert scheduler.running
        assert scheduler.schedule(scenario) is True
        await until(lambda: len(run) >= 2)
        starts = [mono for _, _, mono in run.started]
        assert all(s is scenario for s, _, _ in run.started)
        assert 0.5 < starts[1] - starts[0] < 1.5
        # One lateness per run, each small and never negative.
        assert len(observer.starts) == len(run)
        assert {sid for sid, _ in observer.starts} == {scenario.id}
        assert all(0 <= lateness < 0.5 for _, lateness in observer.starts)
        assert observer.misses == []
        assert observer.skips == []


async def test_a_blocked_loop_runs_the_scenario_once_late_and_counts_missed_slots() -> None:
    run, observer = Runs(), Recorder()
    scenario = every_second()
    async with started_scheduler(run, observer) as scheduler:
        scheduler.schedule(scenario)
        await until(lambda: len(run) >= 1)
        before = len(run)
        time.sleep(3.5)  # block the event loop on purpose: three slots pass meanwhile
        unblocked = time.monotonic()
        await until(lambda: len(run.since(unblocked)) >= 1)
        catch_up = run.started[before][1]
        next_slot = scheduler.next_run(scenario.id)
        assert next_slot is not None
        # The schedule keeps its phase: the next slot is the regular one after the block.
        assert catch_up < next_slot < catch_up + timedelta(seconds=1)
        # Wait for that regular run: no run other than the catch-up lies between them.
        await until(lambda: len(run) > before + 1, seconds=3)
        assert [w for _, w, _ in run.started[before:] if w < next_slot] == [catch_up]
        assert run.started[before + 1][1] >= next_slot
        # The missed slots are counted (2 or 3, by where in the second the block began),
        # and the one late run is as late as the first slot it stands in for.
        assert len(observer.misses) == 1
        missed_id, slots = observer.misses[0]
        assert missed_id == scenario.id
        assert slots in (2, 3)
        assert len(observer.starts) >= before + 1
        assert observer.starts[before][1] >= 2.0
        assert observer.starts[before][1] < 3.6
        assert observer.skips == []


async def test_a_run_still_going_makes_the_next_slots_skip() -> None:
    run, observer = Runs(seconds=2.5), Recorder()
    scenario = every_second()
    async with started_scheduler(run, observer) as scheduler:
        scheduler.schedule(scenario)
        await until(lambda: len(observer.skips) >= 2)
        assert observer.skips[:2] == [(scenario.id, 1), (scenario.id, 1)]
        assert run.max_in_flight == 1
        assert len(run) == 1  # the slots during the run were skipped, not queued
        assert observer.misses == []  # a skipped slot is not also a missed one


async def test_scheduling_the_same_id_again_replaces_the_job() -> None:
    run, observer = Runs(), Recorder()
    scenario = every_second(name="before")
    async with started_scheduler(run, observer) as scheduler:
        scheduler.schedule(scenario)
        renamed = replace(scenario, name="after")
        assert scheduler.schedule(renamed) is True
        await until(lambda: len(run) >= 2)
        # One job: only the new definition runs, once per second (not twice).
        assert [s.name for s, _, _ in run.started] == ["after"] * len(run)
        first, second = (mono for _, _, mono in run.started[:2])
        assert second - first > 0.5


async def test_a_replaced_job_waits_for_the_run_of_its_previous_definition() -> None:
    run, observer = Runs(seconds=1.6), Recorder()
    scenario = every_second(name="before")
    async with started_scheduler(run, observer) as scheduler:
        scheduler.schedule(scenario)
        await until(lambda: len(run) >= 1)
        scheduler.schedule(replace(scenario, name="after"))
        # The old definition's run is still going: the new job's first slot skips.
        await until(lambda: len(observer.skips) >= 1, seconds=3)
        assert run.max_in_flight == 1
        await until(lambda: len(run) >= 2, seconds=4)
        assert [s.name for s, _, _ in run.started[:2]] == ["before", "after"]
        assert run.max_in_flight == 1


async def test_many_scenarios_each_run_once_per_slot() -> None:
    run, observer = Runs(), Recorder()
    base = replace(api_scenario("http://127.0.0.1:9/"), schedule=Schedule(interval_s=1))
    scenarios = [replace(base, id=str(uuid.uuid4())) for _ in range(500)]
    async with started_scheduler(run, observer) as scheduler:
        for scenario in scenarios:
            scheduler.schedule(scenario)
        began = time.monotonic()
        await until(lambda: len(run) >= 1000, seconds=5)
        elapsed = time.monotonic() - began
    counts: dict[str, int] = {}
    for scenario, _, _ in run.started:
        counts[scenario.id] = counts.get(scenario.id, 0) + 1
    # Every scenario ran, none more often than its slots allow.
    assert set(counts) == {s.id for s in scenarios}
    assert max(counts.values()) <= int(elapsed) + 2
    assert observer.misses == []
    assert observer.skips == []
    assert len(observer.starts) == len(run)


async def test_runs_due_in_the_same_tick_start_in_one_loop_pass() -> None:
    """500 slots a second, at random phases: the scheduler wakes once per tick and starts
    every run due by then together, instead of waking the loop for each."""
    loop = asyncio.get_running_loop()
    passes = 0

    def count_pass() -> None:  # runs once in every pass of the loop
        nonlocal passes
        passes += 1
        loop.call_soon(count_pass)

    pass_of_run: list[int] = []

    async def run(scenario: Scenario) -> None:
        pass_of_run.append(passes)

    observer = Recorder()
    base = replace(api_scenario("http://127.0.0.1:9/"), schedule=Schedule(interval_s=1))
    scheduler = Scheduler(run, observer)
    for _ in range(500):
        scheduler.schedule(replace(base, id=str(uuid.uuid4())))
    count_pass()
    scheduler.start()
    began = time.monotonic()
    try:
        await until(lambda: len(pass_of_run) >= 1000, seconds=5)
    finally:
        await scheduler.stop(0.2)
    elapsed = time.monotonic() - began
    # About 1,000 runs over about 2 s: about one pass per tick (some slack for a tick
    # woken a hair early and re-armed), where a wake per run would take a pass for
    # nearly every run.
    assert len(set(pass_of_run)) <= 1.5 * elapsed / WAKE_TICK_S
    assert len(set(pass_of_run)) < len(pass_of_run) / 2
    # Each run starts at or after its slot, and within a tick of it (and some slack).
    assert all(0 <= lateness < WAKE_TICK_S + 0.1 for _, lateness in observer.starts)
    assert observer.misses == []
    assert observer.skips == []


async def test_rescheduling_leaves_one_live_slot_per_scenario_and_a_bounded_heap() -> None:
    run, observer = Runs(), Recorder()
    base = replace(api_scenario("http://127.0.0.1:9/"), schedule=Schedule(interval_s=1))
    scenarios = [replace(base, id=str(uuid.uuid4())) for _ in range(50)]
    async with started_scheduler(run, observer) as scheduler:
        for _ in range(100):  # every reload replaces every job: 4,950 stale heap entries
            for scenario in scenarios:
                scheduler.schedule(scenario)
        assert len(scheduler._heap) <= 2 * COMPACT_AFTER + len(scenarios)
        gone = scenarios.pop()
        scheduler.unschedule(gone.id)
        began = time.monotonic()
        await until(lambda: len(run) >= 2 * len(scenarios), seconds=5)
        elapsed = time.monotonic() - began
    counts: dict[str, int] = {}
    for scenario, _, _ in run.started:
        counts[scenario.id] = counts.get(scenario.id, 0) + 1
    assert set(counts) == {s.id for s in scenarios}  # the removed one never ran
    assert max(counts.values()) <= int(elapsed) + 2  # stale entries fired nothing
    assert observer.skips == []


async def test_every_armed_slot_maps_to_the_loop_clock_at_its_own_arming() -> None:
    """Arming 20,000 jobs at start takes a while: each one's loop time must come from the
    clocks read as it is armed, not from one "now" taken before the first."""
    run, observer = Runs(), Recorder()
    base = replace(api_scenario("http://127.0.0.1:9/"), schedule=Schedule(interval_s=3600))
    scheduler = Scheduler(run, observer)
    for _ in range(20_000):
        scheduler.schedule(replace(base, id=str(uuid.uuid4())))
    scheduler.start()
    try:
        loop_now, wall_now = asyncio.get_running_loop().time(), datetime.now(UTC)
        errors = []
        for when, _, scenario_id in scheduler._heap:
            due = scheduler.next_run(scenario_id)
            assert due is not None
            errors.append(abs((when - loop_now) - (due - wall_now).total_seconds()))
        assert len(errors) == 20_000
        # A collection between an arming's two clock reads may set one off; a "now" read
        # once for all would set thousands off, by up to the time all the arming took.
        assert sum(error > 0.005 for error in errors) <= 10
    finally:
        await scheduler.stop(0.2)


async def test_unschedule_stops_the_runs() -> None:
    run, observer = Runs(), Recorder()
    scenario = every_second()
    async with started_scheduler(run, observer) as scheduler:
        scheduler.schedule(scenario)
        await until(lambda: len(run) >= 1)
        scheduler.unschedule(scenario.id)
        stopped = time.monotonic()
        assert scheduler.next_run(scenario.id) is None
        # Two and a half slots: a bounded wait is the point of this test.
        await asyncio.sleep(2.5)
        assert run.since(stopped) == []
        assert scheduler.running
        scheduler.unschedule(scenario.id)  # a second time is harmless


async def test_next_run_and_running() -> None:
    run, observer = Runs(), Recorder()
    scheduler = Scheduler(run, observer)
    scenario = every_second()
    assert scheduler.running is False
    assert scheduler.schedule(scenario) is True
    assert scheduler.next_run(scenario.id) is None  # not started: not known yet
    scheduler.start()
    try:
        assert scheduler.running is True
        now = datetime.now(UTC)
        next_run = scheduler.next_run(scenario.id)
        assert next_run is not None
        assert now < next_run <= now + timedelta(seconds=1)
        assert scheduler.next_run("no-such-scenario") is None
        unscheduled = replace(every_second(), schedule=None)
        assert scheduler.schedule(unscheduled) is False
        assert scheduler.next_run(unscheduled.id) is None
    finally:
        await scheduler.stop(0.2)
    assert scheduler.running is False
    await asyncio.sleep(0)


async def test_stop_waits_for_a_run_that_finishes_within_the_grace() -> None:
    run, observer = Runs(seconds=0.3), Recorder()
    scheduler = Scheduler(run, observer)
    scheduler.start()
    scheduler.schedule(every_second())
    await until(lambda: len(run) >= 1)
    began = time.monotonic()
    await scheduler.stop(5.0)
    await asyncio.sleep(0)
    assert (run.finished, run.cancelled) == (1, 0)
    assert time.monotonic() - began < 2.0
    assert scheduler.running is False


async def test_stop_cancels_a_run_that_outlasts_the_grace() -> None:
    run, observer = Runs(seconds=30), Recorder()
    scheduler = Scheduler(run, observer)
    scheduler.start()
    scheduler.schedule(every_second())
    await until(lambda: len(run) >= 1)
    began = time.monotonic()
    await scheduler.stop(0.2)
    await asyncio.sleep(0)
    assert time.monotonic() - began < 2.0
    assert (run.finished, run.cancelled) == (0, 1)
    assert run.in_flight == 0
    assert scheduler.running is False


# --- counting slots ----------------------------------------------------------------------


def test_slots_since_interval_slots() -> None:
    scenario = replace(api_scenario("http://127.0.0.1:9/"), schedule=Schedule(interval_s=30))
    trigger = trigger_for(scenario)
    assert trigger is not None
    period = timedelta(seconds=30)
    assert slots_since(trigger, NOW, NOW + 5 * period) == (NOW + period, 4)
    assert slots_since(trigger, NOW, NOW + period) == (NOW + period, 0)
    assert slots_since(trigger, NOW, NOW + 2 * period) == (NOW + period, 1)


@pytest.mark.parametrize("late_s", [-0.001, 0.0, 0.5, 7.0, 20.999, 21.0, 3600.25])
def test_latest_slot_of_an_interval_is_what_stepping_its_trigger_gives(late_s: float) -> None:
    scenario = replace(api_scenario("http://127.0.0.1:9/"), schedule=Schedule(interval_s=7))
    trigger = trigger_for(scenario)
    assert trigger is not None
    due = trigger.get_next_fire_time(None, NOW)
    now = due + timedelta(seconds=late_s)
    latest, following = due, trigger.get_next_fire_time(due, now)
    while following <= now:
        latest, following = following, trigger.get_next_fire_time(following, now)
    assert latest_slot(trigger, due, now) == (latest, following)
    assert latest <= max(now, due) < following


def test_latest_slot_of_an_interval_that_ends_has_no_slot_after_the_end() -> None:
    trigger = IntervalTrigger(seconds=10, start_date=NOW, end_date=NOW + timedelta(seconds=25))
    now = NOW + timedelta(seconds=21)
    assert latest_slot(trigger, NOW, now) == (NOW + timedelta(seconds=20), None)


def test_slots_since_cron_slots() -> None:
    trigger = CronTrigger(parse_cron("* * * * *", "UTC", NOW))
    minute = timedelta(minutes=1)
    assert slots_since(trigger, NOW, NOW + 5 * minute) == (NOW + minute, 4)
    assert slots_since(trigger, NOW, NOW + minute) == (NOW + minute, 0)
    # The Quartz dialect with seconds: every 20 s, 10:00:00 -> 10:01:00 has 10:00:20, 10:00:40.
    quartz = CronTrigger(parse_cron("*/20 * * * * ?", "UTC", NOW))
    assert slots_since(quartz, NOW, NOW + minute) == (NOW + timedelta(seconds=20), 2)


# --- cron across DST, through the trigger, with a controlled clock ------------------------
# Europe/Berlin springs forward on 2026-03-29 (02:00 CET -> 03:00 CEST) and falls back on
# 2026-10-25 (03:00 CEST -> 02:00 CET). Each step passes the previous fire time and an
# explicit "now", as the scheduler does.

BERLIN = "Europe/Berlin"


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def trigger_fires(trigger: CronTrigger, now: datetime, count: int) -> list[datetime]:
    """Fire times as the scheduler asks for them: first from ``now``, then from the last fire."""
    fires: list[datetime] = []
    previous: datetime | None = None
    for _ in range(count):
        moment = trigger.get_next_fire_time(previous, now)
        assert moment is not None
        fires.append(moment)
        previous = now = moment
    return fires


def berlin(expression: str) -> CronTrigger:
    return CronTrigger(parse_cron(expression, BERLIN, NOW))


def test_trigger_spring_forward_daily_in_the_gap_runs_at_the_next_valid_instant() -> None:
    trigger = berlin("30 2 * * *")
    # 02:30 does not exist on 03-29: it runs once at 03:00 CEST, then 02:30 CEST again.
    assert trigger_fires(trigger, utc(3, 28, 12), 3) == [
        utc(3, 29, 1, 0),
        utc(3, 30, 0, 30),
        utc(3, 31, 0, 30),
    ]
    # "now" inside the gap's night, before the gap: the first fire is still 03:00 CEST.
    assert trigger.get_next_fire_time(None, utc(3, 29, 0, 45)) == utc(3, 29, 1, 0)
    # "now" just after the transition: 02:30 of that day is gone, tomorrow's is next.
    assert trigger.get_next_fire_time(None, utc(3, 29, 1, 0)) == utc(3, 30, 0, 30)


def test_trigger_spring_forward_hourly_has_no_duplicate() -> None:
    # 02:00 does not exist: it would run at 03:00 CEST, which is also the 03:00 slot. Once.
    assert trigger_fires(berlin("0 * * * *"), utc(3, 28, 23, 30), 4) == [
        utc(3, 29, 0),  # 01:00 CET
        utc(3, 29, 1),  # 03:00 CEST (02:00 does not exist)
        utc(3, 29, 2),  # 04:00 CEST
        utc(3, 29, 3),  # 05:00 CEST
    ]


def test_trigger_fall_back_daily_in_the_repeated_hour_runs_once() -> None:
    trigger = berlin("30 2 * * *")
    assert trigger_fires(trigger, utc(10, 24, 12), 3) == [
        utc(10, 25, 0, 30),  # 02:30 CEST, the first 02:30
        utc(10, 26, 1, 30),  # 02:30 CET the next day; the second 02:30 of 10-25 is skipped
        utc(10, 27, 1, 30),
    ]
    # Asked during the first pass of the repeated hour, before 02:30: it is still to come.
    assert trigger.get_next_fire_time(None, utc(10, 25, 0, 15)) == utc(10, 25, 0, 30)
    # Asked after the first 02:30 but before the second: the second does not fire.
    assert trigger.get_next_fire_time(None, utc(10, 25, 0, 45)) == utc(10, 26, 1, 30)


def test_trigger_fall_back_hourly_has_no_duplicate_and_skips_only_the_repeated_hour() -> None:
    fires = trigger_fires(berlin("0 * * * *"), utc(10, 24, 22, 30), 5)
    assert fires == [
        utc(10, 24, 23),  # 01:00 CEST
        utc(10, 25, 0),  # 02:00 CEST
        # 02:00 CET (01:00Z) is 02:00 a second time: it does not run again.
        utc(10, 25, 2),  # 03:00 CET
        utc(10, 25, 3),  # 04:00 CET
        utc(10, 25, 4),  # 05:00 CET
    ]
    assert len(set(fires)) == len(fires)
    gaps = [b - a for a, b in itertools.pairwise(fires)]
    assert gaps == [timedelta(hours=1), timedelta(hours=2), timedelta(hours=1), timedelta(hours=1)]


def test_trigger_steps_from_the_previous_fire_not_from_now() -> None:
    # The scheduler enumerates the slots a late run missed by passing the previous fire and
    # a later "now"; the trigger must answer the slot after the previous fire.
    trigger = berlin("0 * * * *")
    later = utc(10, 25, 6)
    assert trigger.get_next_fire_time(utc(10, 24, 23), later) == utc(10, 25, 0)
    assert trigger.get_next_fire_time(utc(10, 25, 0), later) == utc(10, 25, 2)


def test_slots_since_across_dst_nights() -> None:
    hourly = berlin("0 * * * *")
    # Fall back: between 01:00 CEST and 04:00 CET lie 02:00 CEST and 03:00 CET only.
    assert slots_since(hourly, utc(10, 24, 23), utc(10, 25, 3)) == (utc(10, 25, 0), 2)
    # Spring forward: between 01:00 CET and 04:00 CEST lies only 03:00 CEST.
    assert slots_since(hourly, utc(3, 29, 0), utc(3, 29, 2)) == (utc(3, 29, 1), 1)
