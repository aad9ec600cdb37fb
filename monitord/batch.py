"""BATCH scenarios that expect a payload on a rhythm: which ones are overdue (SPEC §7).

A BATCH scenario with ``monitoringInterval`` or ``monitoringCron`` expects a
payload at least that often, plus a grace period (``graceSeconds``; by
default 10 % of the period, at least 60 s). Nothing here does I/O or reads a
clock: the monitor says what arrived and when, and asks what is overdue.

* **Interval N**: a payload at least every N seconds. The deadline is the last
  payload plus N plus grace; each payload moves it. When it passes, that is a
  missed payload, and the next deadline is N seconds later, so a job that stays
  silent fails once per period, as a probe would.
* **Cron**: a payload for every fire time T, arriving after the previous fire
  time's deadline and by T + grace. A job started by the same cron reports
  after T; one that reports late still fails that slot.
* **Start**: waiting is counted from when monitoring began if that is later
  than the last payload: a payload sent while monitord was down could not
  arrive, and that is no fault of the job.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitord.model import Scenario, format_timestamp

MIN_DEFAULT_GRACE_S = 60
DEFAULT_GRACE_FRACTION = 0.1


@dataclass(frozen=True, slots=True)
class Missed:
    """A payload that did not arrive in time."""

    scenario_id: str
    deadline: datetime
    reason: str


class _Watch:
    __slots__ = (
        "began",
        "deadline",
        "grace",
        "last_arrival",
        "scenario",
        "slot",
        "window_start",
    )

    def __init__(self, scenario: Scenario, grace: timedelta, began: datetime) -> None:
        self.scenario = scenario
        self.grace = grace
        self.began = began  # when monitoring (this watch) began
        self.window_start: datetime = datetime.min
        self.deadline: datetime = datetime.min
        self.slot: datetime | None = None  # cron: the fire time the deadline belongs to
        self.last_arrival: datetime | None = None


def expects_payloads(scenario: Scenario) -> bool:
    return scenario.schedule is not None


def grace_for(scenario: Scenario, after: datetime) -> timedelta:
    """``graceSeconds``, or 10 % of the period (at least 60 s); a cron's period is the gap
    between its next two fire times after ``after``."""
    if scenario.grace_seconds is not None:
        return timedelta(seconds=scenario.grace_seconds)
    schedule = scenario.schedule
    period = 0.0
    if schedule is not None and schedule.interval_s is not None:
        period = schedule.interval_s
    elif schedule is not None and schedule.cron is not None:
        try:
            first = schedule.cron.next_after(after)
            period = (schedule.cron.next_after(first) - first).total_seconds()
        except ValueError:  # fires at most once more
            period = 0.0
    return timedelta(seconds=max(MIN_DEFAULT_GRACE_S, DEFAULT_GRACE_FRACTION * period))


class Expectations:
    """The deadlines of BATCH scenarios that expect payloads, soonest first."""

    def __init__(self) -> None:
        self._watches: dict[str, _Watch] = {}
        self._heap: list[tuple[datetime, int, str]] = []
        self._pushes = 0

    def __len__(self) -> int:
        return len(self._watches)

    def watch(self, scenario: Scenario, since: datetime, last_arrival: datetime | None) -> None:
        """Start (or restart, for a changed scenario) expecting payloads for ``scenario``;
        ``since`` is when monitoring began, ``last_arrival`` the last payload known."""
        self.forget(scenario.id)
        if not expects_payloads(scenario):
            return
        watch = _Watch(scenario, grace_for(scenario, since), since)
        watch.last_arrival = last_arrival
        schedule = scenario.schedule
        assert schedule is not None  # expects_payloads
        if schedule.interval_s is not None:
            start = since if last_arrival is None else max(since, last_arrival)
            watch.window_start = start
            watch.deadline = start + timedelta(seconds=schedule.interval_s) + watch.grace
        else:
            # The first slot whose deadline is still ahead; a payload for it counts from
            # the slot itself, or from now when the slot is still to come.
            slot = self._next_slot(watch, since - watch.grace)
            if slot is None:
                return
            watch.slot = slot
            watch.window_start = min(slot, since)
            watch.deadline = slot + watch.grace
        self._watches[scenario.id] = watch
        self._push(watch)

    def forget(self, scenario_id: str) -> None:
        self._watches.pop(scenario_id, None)  # its heap entries go stale and are skipped

    def arrived(self, scenario_id: str, at: datetime) -> None:
        """A payload arrived (whatever its verdict: the job did report). Call ``overdue(at)``
        first, so a deadline that passed just before is reported, not forgiven."""
        watch = self._watches.get(scenario_id)
        if watch is None:
            return
        watch.last_arrival = at if watch.last_arrival is None else max(watch.last_arrival, at)
        schedule = watch.scenario.schedule
        if schedule is not None and schedule.interval_s is not None:
            watch.window_start = watch.last_arrival
            watch.deadline = watch.last_arrival + timedelta(seconds=schedule.interval_s)
            watch.deadline += watch.grace
            self._push(watch)

    def next_deadline(self, scenario_id: str) -> datetime | None:
        watch = self._watches.get(scenario_id)
        return None if watch is None else watch.deadline

    def grace(self, scenario_id: str) -> timedelta | None:
        watch = self._watches.get(scenario_id)
        return None if watch is None else watch.grace

    def overdue(self, now: datetime) -> list[Missed]:
        """The payloads missed by ``now``, each deadline once; the watches move on."""
        missed: list[Missed] = []
        while self._heap and self._heap[0][0] <= now:
            deadline, _, scenario_id = heapq.heappop(self._heap)
            watch = self._watches.get(scenario_id)
            if watch is None or watch.deadline != deadline:
                continue  # forgotten, or moved by a payload
            miss = self._judge(watch)
            if miss is not None:
                missed.append(miss)
            if self._advance(watch):
                self._push(watch)
            else:
                self.forget(scenario_id)
        return missed

    def _judge(self, watch: _Watch) -> Missed | None:
        arrived = watch.last_arrival
        on_time = arrived is not None and watch.window_start < arrived <= watch.deadline
        if watch.slot is not None and on_time:
            return None  # the slot's payload came, and was judged when it did
        since = arrived if arrived is not None else watch.began
        what = "no payload since" if arrived is not None else "no payload since monitoring began at"
        schedule = watch.scenario.schedule
        grace_s = round(watch.grace.total_seconds())
        if watch.slot is None and schedule is not None:
            rule = f"expected every {schedule.interval_s} s, grace {grace_s} s"
        else:
            slot = format_timestamp(watch.slot) if watch.slot is not None else "?"
            rule = f"one was due for the run at {slot}, grace {grace_s} s"
        return Missed(
            watch.scenario.id, watch.deadline, f"{what} {format_timestamp(since)} ({rule})"
        )

    def _advance(self, watch: _Watch) -> bool:
        schedule = watch.scenario.schedule
        if schedule is not None and schedule.interval_s is not None:
            watch.deadline += timedelta(seconds=schedule.interval_s)
            return True
        if watch.slot is None:
            return False
        slot = self._next_slot(watch, watch.slot)
        if slot is None:
            return False
        watch.window_start = watch.deadline
        watch.slot = slot
        watch.deadline = slot + watch.grace
        return True

    @staticmethod
    def _next_slot(watch: _Watch, after: datetime) -> datetime | None:
        schedule = watch.scenario.schedule
        if schedule is None or schedule.cron is None:
            return None
        try:
            return schedule.cron.next_after(after)
        except ValueError:  # a cron whose last year has passed
            return None

    def _push(self, watch: _Watch) -> None:
        self._pushes += 1
        heapq.heappush(self._heap, (watch.deadline, self._pushes, watch.scenario.id))
        if len(self._heap) > 2 * len(self._watches) + 1024:
            # Every payload leaves a stale entry behind; rebuild before they pile up.
            self._heap = [(w.deadline, i, sid) for i, (sid, w) in enumerate(self._watches.items())]
            heapq.heapify(self._heap)
