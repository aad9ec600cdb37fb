"""What ``monitord check`` and ``monitord probe`` do, as functions that return data.

The CLI prints and picks exit codes; nothing here exits or prints.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from monitord import __version__
from monitord.config.errors import ConfigError, LoadError
from monitord.config.scenarios import LoadSet, load_scenarios
from monitord.config.settings import Config, find_config_path, load_config
from monitord.model import Result, Scenario, ScenarioType
from monitord.probes import open_probes
from monitord.runner import Runner


@dataclass(frozen=True, slots=True)
class CheckReport:
    config: Config
    config_errors: tuple[LoadError, ...]
    load: LoadSet

    @property
    def errors(self) -> tuple[LoadError, ...]:
        return self.config_errors + self.load.errors

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        files = self.load.files
        valid = sum(1 for f in files if f.ok)
        by_type = Counter(s.type.value for s in self.load.scenarios)
        kinds = ", ".join(f"{by_type[t.value]} {t.value}" for t in ScenarioType if by_type[t.value])
        scenarios = len(self.load.scenarios)
        parts = [
            f"{len(files)} scenario file{'s' if len(files) != 1 else ''} checked:"
            f" {valid} valid, {len(files) - valid} invalid",
            f"{scenarios} scenario{'s' if scenarios != 1 else ''}"
            + (f" ({kinds})" if kinds else ""),
        ]
        parts.append("configuration " + ("invalid" if self.config_errors else "valid"))
        parts.append(f"{len(self.errors)} error{'s' if len(self.errors) != 1 else ''}")
        return "; ".join(parts)


def read_config(explicit: str | None, environ: Mapping[str, str]) -> Config:
    """The configuration ``--config`` names, or the default locations; ConfigError if bad."""
    return load_config(find_config_path(explicit), environ)


def check(config_path: str | None, paths: Sequence[str], environ: Mapping[str, str]) -> CheckReport:
    """Validate the configuration and the scenario files (all, or only ``paths``).

    With a broken configuration the files are still checked, against the
    built-in defaults, so one run reports every problem.
    """
    config_errors: tuple[LoadError, ...] = ()
    try:
        config = read_config(config_path, environ)
    except ConfigError as exc:
        config_errors = tuple(exc.errors)
        config = Config()
    targets = [Path(p) for p in paths] if paths else list(config.scenario_paths)
    return CheckReport(config, config_errors, load_scenarios(targets, config, environ))


def select(scenarios: Iterable[Scenario], name_or_id: str | None) -> list[Scenario]:
    chosen = list(scenarios)
    if name_or_id is None:
        return chosen
    wanted = name_or_id.strip()
    return [s for s in chosen if s.name == wanted or s.id == wanted.lower()]


async def probe_all(
    scenarios: Sequence[Scenario], config: Config, *, concurrency: int = 16
) -> list[Result]:
    """Run each scenario once, now, at most ``concurrency`` at a time; results in order."""
    limit = asyncio.Semaphore(concurrency)
    async with open_probes(user_agent=f"monitord/{__version__}") as probes:
        runner = Runner(probes, expression_budget_s=config.defaults.expression_budget_ms / 1000)
        try:

            async def one(scenario: Scenario) -> Result:
                async with limit:
                    return await runner.run(scenario)

            return list(await asyncio.gather(*(one(s) for s in scenarios)))
        finally:
            runner.close()


def split_probeable(scenarios: Iterable[Scenario]) -> tuple[list[Scenario], list[Scenario]]:
    """``(probeable, batch)``: BATCH scenarios receive payloads, they are not probed."""
    chosen = list(scenarios)
    return (
        [s for s in chosen if s.type is not ScenarioType.BATCH],
        [s for s in chosen if s.type is ScenarioType.BATCH],
    )
