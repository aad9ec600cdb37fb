"""Run deadlines: cancel a run that outlives its scenario's timeout.

``asyncio.timeout`` gives every run a timer handle of its own, pushed onto the event
loop's heap and compared there in Python; at thousands of runs a second that was about
13 % of the CPU a run costs beyond its probe. Here deadlines are rounded up to
``TICK_S`` ticks and the runs that share a tick share one loop timer: a run costs a set
insertion and removal.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

# A run may outlive its timeout by up to this much before it is cancelled.
TICK_S = 0.005

Task = asyncio.Task[Any]


class Deadlines:
    """The deadlines of the runs in flight on one event loop."""

    def __init__(self, tick_s: float = TICK_S) -> None:
        self._tick_s = tick_s
        self._due: dict[int, set[Task]] = {}  # tick number -> its runs still going
        self._timed_out: set[Task] = set()

    def start(self, task: Task, seconds: float) -> int:
        """Cancel ``task`` once ``seconds`` have passed (within a tick) unless ``finish``
        comes first; returns the tick to hand to ``finish``."""
        loop = task.get_loop()
        tick = math.ceil((loop.time() + seconds) / self._tick_s)
        tasks = self._due.get(tick)
        if tasks is None:
            tasks = self._due[tick] = set()
            loop.call_at(tick * self._tick_s, self._expire, tick)
        tasks.add(task)
        return tick

    def finish(self, task: Task, tick: int) -> bool:
        """Stop watching ``task``; True if its deadline passed and cancelled it (the
        caller then owes the task one ``uncancel``)."""
        tasks = self._due.get(tick)
        if tasks is not None:
            tasks.discard(task)
        if task in self._timed_out:
            self._timed_out.discard(task)
            return True
        return False

    def _expire(self, tick: int) -> None:
        for task in self._due.pop(tick, ()):
            self._timed_out.add(task)
            task.cancel()

    def __len__(self) -> int:
        """Runs watched (for tests: nothing may stay behind)."""
        return sum(len(tasks) for tasks in self._due.values())
