"""Run deadlines: a run past its timeout is cancelled and reported as a timeout; any
other cancellation still propagates; nothing is left behind."""

from __future__ import annotations

import asyncio
import time

import pytest

from monitord.deadlines import TICK_S, Deadlines
from monitord.model import FailureKind, Observation, Outcome, Scenario, ScenarioType
from monitord.runner import Runner
from tests.factories import socket_scenario


class Probe:
    """A UDP probe that answers after ``seconds`` (never, for None)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.cancelled = 0

    async def __call__(self, scenario: Scenario) -> Observation:
        try:
            if self.seconds is None:
                await asyncio.Event().wait()
            else:
                await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return Observation(body=b"PONG")


def udp(timeout_ms: int) -> Scenario:
    return socket_scenario(ScenarioType.UDP, "127.0.0.1", 9, timeout_ms=timeout_ms)


async def test_a_run_past_its_timeout_is_a_timeout_within_a_tick() -> None:
    probe = Probe(None)
    runner = Runner({ScenarioType.UDP: probe})
    began = time.monotonic()
    result = await runner.run(udp(100))
    elapsed = time.monotonic() - began
    runner.close()
    assert (result.outcome, result.reasons) == (Outcome.FAILURE, ("timeout after 100 ms",))
    assert result.failure_kind is FailureKind.TIMEOUT
    assert probe.cancelled == 1
    assert 0.1 <= elapsed < 0.1 + TICK_S + 0.5  # (slack for a loaded machine)
    # The task owes nothing: it goes on awaiting without a stray cancellation.
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
    await asyncio.sleep(0.01)


async def test_a_run_within_its_timeout_is_left_alone() -> None:
    probe = Probe(0.05)
    runner = Runner({ScenarioType.UDP: probe})
    result = await runner.run(udp(1000))
    runner.close()
    assert result.outcome is Outcome.SUCCESS
    assert probe.cancelled == 0
    await asyncio.sleep(1.0 + TICK_S)  # past the deadline it had: nothing fires
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0


async def test_a_cancellation_from_outside_propagates() -> None:
    probe = Probe(None)
    runner = Runner({ScenarioType.UDP: probe})
    run = asyncio.create_task(runner.run(udp(5000)))
    await asyncio.sleep(0.05)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    runner.close()
    assert probe.cancelled == 1


@pytest.mark.parametrize("outside_after_s", [0.05, 0.2])
async def test_a_cancellation_from_outside_in_the_deadlines_pass_still_propagates(
    outside_after_s: float,
) -> None:
    probe = Probe(None)
    runner = Runner({ScenarioType.UDP: probe})
    loop = asyncio.get_running_loop()
    run = asyncio.create_task(runner.run(udp(100)))
    await asyncio.sleep(0)  # the run starts and waits in its probe
    loop.call_at(loop.time() + outside_after_s, run.cancel)
    time.sleep(0.4)  # both come due while the loop is held: they fire in one pass
    with pytest.raises(asyncio.CancelledError):
        await run
    runner.close()
    assert probe.cancelled == 1


async def test_deadlines_forget_every_run_they_watched() -> None:
    deadlines = Deadlines()
    timed_out: list[tuple[asyncio.Task[object], int]] = []

    async def watched(seconds: float) -> str:
        task = asyncio.current_task()
        assert task is not None
        tick = deadlines.start(task, 0.05)
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            assert deadlines.finish(task, tick) is True
            task.uncancel()
            timed_out.append((task, tick))
            return "timed out"
        assert deadlines.finish(task, tick) is False
        return "done"

    results = await asyncio.gather(
        *(watched(0) for _ in range(100)), *(watched(10) for _ in range(100))
    )
    assert (results.count("done"), results.count("timed out")) == (100, 100)
    assert len(deadlines) == 0
    # Each timeout is reported once.
    assert not any(deadlines.finish(task, tick) for task, tick in timed_out)
