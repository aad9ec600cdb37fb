"""``monitord run``: load, schedule, run and log scenarios until SIGTERM/SIGINT.

Lifecycle: load the scenarios (a broken file is reported and skipped, the rest
run), start the probes and the schedule, wait for a stop signal, then stop
scheduling and give runs in flight a bounded time to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping

from monitord import __version__
from monitord.config.scenarios import load_scenarios
from monitord.config.settings import Config
from monitord.logs import ScenarioLog
from monitord.model import Outcome, Result, Scenario
from monitord.probes import open_probes
from monitord.runner import Runner
from monitord.scheduler import Scheduler

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 10.0


async def serve(
    config: Config, environ: Mapping[str, str], stop: asyncio.Event | None = None
) -> None:
    """Run until ``stop`` is set (by default, by SIGTERM or SIGINT)."""
    stop = stop or _stop_on_signals()
    loaded = load_scenarios(config.scenario_paths, config, environ)
    for error in loaded.errors:
        log.error("%s", error)
    scenarios = [s for s in loaded.scenarios if s.runs_in(config.region)]
    excluded = len(loaded.scenarios) - len(scenarios)
    async with open_probes(user_agent=f"monitord/{__version__}") as probes:
        runner = Runner(probes, expression_budget_s=config.defaults.expression_budget_ms / 1000)

        async def run(scenario: Scenario) -> None:
            _log_result(scenario, await runner.run(scenario))

        scheduler = Scheduler(run)
        try:
            scheduled = scheduler.start(s for s in scenarios if s.target is not None)
            log.info(
                "monitord %s running: %d scenarios scheduled, %d outside region %s,"
                " %d files with errors",
                __version__,
                scheduled,
                excluded,
                config.region,
                sum(1 for f in loaded.files if not f.ok),
            )
            await stop.wait()
            log.info("stopping")
        finally:
            await scheduler.stop(SHUTDOWN_GRACE_S)
            runner.close()
    log.info("stopped")


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop


def _log_result(scenario: Scenario, result: Result) -> None:
    scenario_log = ScenarioLog(log, scenario)
    detail = f"{result.outcome.value} in {result.duration_ms:.1f} ms"
    if result.status_code is not None:
        detail += f" (status {result.status_code})"
    if result.reasons:
        detail += ": " + "; ".join(result.reasons)
    if result.outcome is Outcome.FAILURE:
        scenario_log.warning("%s", detail)
    else:
        scenario_log.info("%s", detail)
