"""Liveness of the event loop and the schedule, for ``/health`` and the systemd watchdog.

A task on the event loop beats once a second. When the loop is blocked the
beats stop, so a stale beat (or a scheduler that is not running) means the
daemon is stuck: ``/health`` says 503 and the watchdog keep-alive is withheld,
which lets systemd restart a daemon whose loop has hung.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from monitord.sdnotify import Notifier

log = logging.getLogger(__name__)

BEAT_PERIOD_S = 1.0
STUCK_AFTER_S = 5.0  # no beat for this long: the loop or the schedule is stuck
BLOCKED_WARNING_S = 1.0  # a beat this late is worth a log line


class Heartbeat:
    def __init__(
        self,
        is_scheduling: Callable[[], bool],
        notifier: Notifier | None = None,
        *,
        period_s: float = BEAT_PERIOD_S,
        stuck_after_s: float = STUCK_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._is_scheduling = is_scheduling
        self._notifier = notifier
        self._period_s = period_s
        self._stuck_after_s = stuck_after_s
        self._clock = clock
        self.last_beat = clock()
        self.lag_s = 0.0
        self._last_keepalive: float | None = None

    async def run(self) -> None:
        """Beat until cancelled."""
        while True:
            due = self._clock() + self._period_s
            await asyncio.sleep(self._period_s)
            self.beat(due)

    def beat(self, due: float) -> None:
        now = self._clock()
        self.last_beat = now
        self.lag_s = max(now - due, 0.0)
        if self.lag_s > BLOCKED_WARNING_S:
            log.warning("the event loop was blocked for %.1f s", self.lag_s)
        self._keep_alive(now)

    def _keep_alive(self, now: float) -> None:
        notifier = self._notifier
        interval = None if notifier is None else notifier.watchdog_interval_s
        if notifier is None or interval is None or not self.healthy():
            return
        if self._last_keepalive is None or now - self._last_keepalive >= interval:
            notifier.watchdog()
            self._last_keepalive = now

    def healthy(self) -> bool:
        return self._clock() - self.last_beat <= self._stuck_after_s and self._is_scheduling()

    def status(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.healthy() else "stuck",
            "scheduler": "running" if self._is_scheduling() else "stopped",
            "lastBeatAgeSeconds": round(self._clock() - self.last_beat, 3),
            "loopLagSeconds": round(self.lag_s, 3),
        }
