"""Liveness: the heartbeat's health, status, blocked-loop warning and watchdog keep-alives."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitord.heartbeat import Heartbeat
from monitord.sdnotify import Notifier
from tests.targets import notify_receiver


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Flag:
    def __init__(self, value: bool = True) -> None:
        self.value = value

    def __call__(self) -> bool:
        return self.value


def make(
    clock: Clock, scheduling: Flag, notifier: Notifier | None = None, stuck_after_s: float = 5.0
) -> Heartbeat:
    return Heartbeat(scheduling, notifier, period_s=1.0, stuck_after_s=stuck_after_s, clock=clock)


def test_healthy_after_a_beat_and_stuck_when_the_beat_is_stale() -> None:
    clock, scheduling = Clock(), Flag()
    heartbeat = make(clock, scheduling)
    clock.now += 1.0
    heartbeat.beat(clock.now)
    assert heartbeat.last_beat == clock.now
    assert heartbeat.healthy()
    clock.now += 5.0  # exactly the limit: still healthy
    assert heartbeat.healthy()
    clock.now += 0.5
    assert not heartbeat.healthy()
    heartbeat.beat(clock.now)  # beats again: healthy again
    assert heartbeat.healthy()


def test_unhealthy_while_not_scheduling() -> None:
    clock, scheduling = Clock(), Flag(False)
    heartbeat = make(clock, scheduling)
    heartbeat.beat(clock.now)
    assert not heartbeat.healthy()
    scheduling.value = True
    assert heartbeat.healthy()


def test_status() -> None:
    clock, scheduling = Clock(), Flag()
    heartbeat = make(clock, scheduling)
    clock.now += 1.25
    heartbeat.beat(clock.now - 0.25)  # a quarter second late
    clock.now += 0.5
    assert heartbeat.status() == {
        "status": "ok",
        "scheduler": "running",
        "lastBeatAgeSeconds": 0.5,
        "loopLagSeconds": 0.25,
    }
    clock.now += 6.0
    assert heartbeat.status() == {
        "status": "stuck",
        "scheduler": "running",
        "lastBeatAgeSeconds": 6.5,
        "loopLagSeconds": 0.25,
    }
    heartbeat.beat(clock.now)
    scheduling.value = False
    assert heartbeat.status() == {
        "status": "stuck",
        "scheduler": "stopped",
        "lastBeatAgeSeconds": 0.0,
        "loopLagSeconds": 0.0,
    }


def test_a_late_beat_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    clock, scheduling = Clock(), Flag()
    heartbeat = make(clock, scheduling)
    caplog.set_level(logging.WARNING, logger="monitord.heartbeat")
    clock.now += 1.0
    heartbeat.beat(clock.now - 1.0)  # exactly the threshold: not worth a line
    heartbeat.beat(clock.now + 0.5)  # early (clock jitter): no lag
    assert heartbeat.lag_s == 0.0
    assert caplog.records == []
    clock.now += 3.0
    heartbeat.beat(clock.now - 2.5)
    assert heartbeat.lag_s == 2.5
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "the event loop was blocked for 2.5 s")
    ]


# --- watchdog keep-alives over a real AF_UNIX datagram socket ------------------------------


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[socket.socket]:
    with notify_receiver(
        tmp_path,
    ) as sock:
        yield sock


@pytest.fixture
def socket_path(receiver: socket.socket) -> Path:
    return Path(receiver.getsockname())


@pytest.fixture
def notifier(socket_path: Path, receiver: socket.socket) -> Iterator[Notifier]:
    n = Notifier(str(socket_path), watchdog_usec=4_000_000)  # keep-alive every 2 s
    yield n
    n.close()


def drain(sock: socket.socket) -> list[str]:
    """Every datagram waiting on ``sock`` (a local datagram arrives when it is sent)."""
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


def test_watchdog_keepalives_while_healthy_at_most_once_per_interval(
    notifier: Notifier, receiver: socket.socket
) -> None:
    assert notifier.watchdog_interval_s == 2.0
    clock, scheduling = Clock(), Flag()
    heartbeat = make(clock, scheduling, notifier)
    sent = []
    for _ in range(9):  # a beat every second for eight seconds
        heartbeat.beat(clock.now)
        sent.append(drain(receiver))
        clock.now += 1.0
    # A keep-alive on the beats at 0, 2, 4, 6 and 8 s; none on the beats between.
    assert sent == [["WATCHDOG=1"] if second % 2 == 0 else [] for second in range(9)]


def test_no_watchdog_keepalive_while_unhealthy(notifier: Notifier, receiver: socket.socket) -> None:
    clock, scheduling = Clock(), Flag()
    heartbeat = make(clock, scheduling, notifier)
    heartbeat.beat(clock.now)
    assert drain(receiver) == ["WATCHDOG=1"]
    scheduling.value = False
    for _ in range(6):
        clock.now += 1.0
        heartbeat.beat(clock.now)
        assert drain(receiver) == []
    scheduling.value = True  # healthy again: the keep-alive resumes at once
    clock.now += 1.0
    heartbeat.beat(clock.now)
    assert drain(receiver) == ["WATCHDOG=1"]
    clock.now += 1.0
    heartbeat.beat(clock.now)
    assert drain(receiver) == []


def test_no_watchdog_keepalive_without_a_watchdog_period(
    socket_path: Path, receiver: socket.socket
) -> None:
    clock, scheduling = Clock(), Flag()
    plain = Notifier(str(socket_path))  # a notify socket, but no WATCHDOG_USEC
    try:
        heartbeat = make(clock, scheduling, plain)
        for _ in range(3):
            heartbeat.beat(clock.now)
            clock.now += 10.0
        assert drain(receiver) == []
    finally:
        plain.close()


# --- on the real event loop -----------------------------------------------------------------


async def test_run_beats_on_the_loop_until_cancelled() -> None:
    heartbeat = Heartbeat(lambda: True, period_s=0.05)
    first = heartbeat.last_beat
    task = asyncio.create_task(heartbeat.run())
    try:
        async with asyncio.timeout(5):
            while heartbeat.last_beat == first:
                await asyncio.sleep(0.01)
        assert heartbeat.last_beat > first
        assert heartbeat.healthy()
        assert 0.0 <= heartbeat.lag_s < 1.0
    finally:
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
