"""Trigger construction: stable interval spread and the cron trigger."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from monitord.config.cron import parse_cron
from monitord.model import Schedule
from monitord.scheduler import PHASE_EPOCH, CronTrigger, spread_offset, trigger_for
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
