"""One run of a scenario: probe under the scenario's deadline, then judge.

The runner owns the deadline, the timing and exception capture, so probes stay
small and a bad target can never raise past this point.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from monitord.checks import judge
from monitord.deadlines import Deadlines
from monitord.model import (
    Clock,
    FailureKind,
    Observation,
    Outcome,
    ProbeFailure,
    Result,
    Scenario,
    ScenarioType,
    SystemClock,
    TextKind,
    TextValidation,
    Validation,
    Verdict,
)
from monitord.probes import Probe
from monitord.probes.errors import classify_exception

log = logging.getLogger(__name__)

# Parsing a body at the size cap takes well under this; expressions get their own budget.
_PARSE_ALLOWANCE_S = 5.0
# A small JSON body is judged on the loop: parsing it and walking two or three paths
# takes tens of microseconds, less than the hop to a worker thread and back. Regular
# expressions (``=~``, ``sub(``) are bounded only by the expression budget, so they,
# XML and HTML (lxml cannot be interrupted) and larger bodies go to a thread.
INLINE_JUDGE_BYTES = 16 * 1024


class Runner:
    def __init__(
        self,
        probes: Mapping[ScenarioType, Probe],
        clock: Clock | None = None,
        *,
        expression_budget_s: float = 0.5,
        judge_threads: int = 2,
    ) -> None:
        self._probes = probes
        self._clock = clock or SystemClock()
        self._budget_s = expression_budget_s
        self._deadlines = Deadlines()
        # Text checks parse bodies and evaluate expressions off the event loop, so
        # a large body or a slow XPath cannot stall the schedule.
        self._executor = ThreadPoolExecutor(
            max_workers=judge_threads, thread_name_prefix="monitord-judge"
        )

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def run(self, scenario: Scenario) -> Result:
        probe = self._probes.get(scenario.type)
        if probe is None:
            raise ValueError(f"{scenario.type.value} scenarios are not probed")
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a run needs a task of its own (its deadline cancels it)")
        started_at = self._clock.now()
        start = self._clock.monotonic()
        timeout_ms = scenario.validation.timeout_ms
        cancelling = task.cancelling()
        tick = self._deadlines.start(task, timeout_ms / 1000)
        timed_out = False
        try:
            try:
                observation = await probe(scenario)
            finally:
                timed_out = self._deadlines.finish(task, tick)
        except asyncio.CancelledError:
            # Cancelled by its deadline, unless someone else (stop) cancelled it too.
            if not timed_out or task.uncancel() > cancelling:
                raise
            observation = Observation(
                failure=ProbeFailure(FailureKind.TIMEOUT, f"timeout after {timeout_ms} ms")
            )
        except Exception as exc:  # a bad target must never escape as an exception
            observation = Observation(failure=classify_exception(exc))
        else:
            if timed_out:  # the probe swallowed its deadline's cancellation
                task.uncancel()
        duration_ms = (self._clock.monotonic() - start) * 1000
        verdict = await self.judge(scenario.validation, observation)
        answered = observation.failure is None or bool(observation.body)
        return Result(
            scenario_id=scenario.id,
            scenario_name=scenario.name,
            scenario_type=scenario.type,
            outcome=verdict.outcome,
            reasons=verdict.reasons,
            started_at=started_at,
            duration_ms=duration_ms,
            status_code=observation.status_code,
            response_bytes=len(observation.body) if answered else None,
            failure_kind=verdict.failure_kind,
        )

    def judge_now(self, validation: Validation, observation: Observation) -> Verdict | None:
        """The verdict, when the work is cheap enough for the event loop; else None, and
        ``judge_in_thread`` is for it. (A receiver under load calls the two itself: the
        usual payload then costs no coroutine.)"""
        if validation.text is not None and not _inline(validation.text, observation):
            return None
        try:
            return judge(validation, observation, budget_s=self._budget_s)
        except Exception as exc:
            return _judging_failed(exc)

    async def judge(self, validation: Validation, observation: Observation) -> Verdict:
        """Judge inline when it is cheap, in a worker thread when the text work is not."""
        verdict = self.judge_now(validation, observation)
        if verdict is None:
            verdict = await self.judge_in_thread(validation, observation)
        return verdict

    async def judge_in_thread(self, validation: Validation, observation: Observation) -> Verdict:
        """Judge in a worker thread, within the time budget of its expressions."""
        checks = 0 if validation.text is None else len(validation.text.checks)
        try:
            bound = self._budget_s * (checks + 1) + _PARSE_ALLOWANCE_S
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(
                self._executor,
                lambda: judge(validation, observation, budget_s=self._budget_s),
            )
            return await asyncio.wait_for(future, bound)
        except TimeoutError:
            budget_ms = round(self._budget_s * 1000)
            return Verdict(
                Outcome.FAILURE,
                (f"validation exceeded its time budget ({budget_ms} ms per expression)",),
                FailureKind.WRONG_ANSWER,
            )
        except Exception as exc:
            return _judging_failed(exc)


def _judging_failed(exc: Exception) -> Verdict:
    log.error("validation raised unexpectedly", exc_info=exc)
    return Verdict(
        Outcome.FAILURE, (f"validation error: {type(exc).__name__}",), FailureKind.WRONG_ANSWER
    )


_JSON = TextKind.JSON  # read once (see model.py): _inline runs for every payload


def _inline(text: TextValidation, observation: Observation) -> bool:
    """Whether the text checks are cheap and bounded enough for the event loop."""
    if observation.failure is not None:
        return True
    if text.kind is not _JSON or len(observation.body) > INLINE_JUDGE_BYTES:
        return False
    for check in text.checks:  # a loop, not any(): this runs for every payload
        source = check.expression.source
        if "=~" in source or "sub(" in source:
            return False
    return True
