"""End to end: ``monitord run`` as a subprocess against local targets."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from tests.test_cli import MONITORD

pytestmark = pytest.mark.e2e


@asynccontextmanager
async def counting_server() -> AsyncIterator[tuple[str, Counter[str]]]:
    hits: Counter[str] = Counter()

    async def handler(request: web.Request) -> web.Response:
        hits[request.path] += 1
        return web.json_response({"numErrors": 0})

    app = web.Application()
    app.router.add_get("/{name}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", hits
    finally:
        await runner.cleanup()


async def wait_until(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    async with asyncio.timeout(seconds):
        while not predicate():
            await asyncio.sleep(0.05)
    assert predicate(), what


@asynccontextmanager
async def daemon(config: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        *MONITORD,
        "run",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_run_schedules_interval_and_cron_skips_other_regions_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    async with counting_server() as (base, hits):
        (tmp_path / "s").mkdir()
        (tmp_path / "s" / "checks.yaml").write_text(
            f"""
- scenarioName: every second
  scenarioType: API
  url: {base}/interval
  monitoringInterval: 1
  validation:
    textValidation:
      textValidationType: JSON
      textValidationInfos: [{{expression: $.numErrors, operator: EQ, operand: "0"}}]
- scenarioName: quartz every second
  scenarioType: API
  url: {base}/cron
  monitoringCron: "* * * * * ?"
- scenarioName: another region
  scenarioType: API
  url: {base}/elsewhere
  monitoringInterval: 1
  monitoringRegion: [US]
""",
            encoding="utf-8",
        )
        (tmp_path / "s" / "broken.yaml").write_text("scenarioName: [\n", encoding="utf-8")
        config = tmp_path / "config.yaml"
        config.write_text("scenarios: ./s\nregion: KOR\n", encoding="utf-8")
        async with daemon(config) as process:
            await wait_until(
                lambda: hits["/interval"] >= 2 and hits["/cron"] >= 2, 15, "both scenarios ran"
            )
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(15):
                _, stderr_bytes = await process.communicate()
            assert process.returncode == 0
        assert hits["/elsewhere"] == 0
    stderr = stderr_bytes.decode()
    assert f"{tmp_path / 's' / 'broken.yaml'}:2: yaml: " in stderr
    assert "2 scenarios scheduled, 1 outside region KOR, 1 files with errors" in stderr
    success_lines = [line for line in stderr.splitlines() if "success in" in line]
    assert any('scenario_name="every second"' in line for line in success_lines)
    assert any('scenario_name="quartz every second"' in line for line in success_lines)
    assert all("scenario_id=" in line for line in success_lines)
    assert stderr.splitlines()[-1].endswith("monitord.daemon: stopped")


async def test_run_exits_2_when_the_configuration_cannot_be_loaded(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("listen: [oops]\n", encoding="utf-8")
    async with daemon(config) as process, asyncio.timeout(30):
        _, stderr = await process.communicate()
    assert process.returncode == 2
    assert f"{config}:1: listen: must be a string, got a list" in stderr.decode()


async def test_sigint_also_stops_cleanly(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("scenarios: ./s\n", encoding="utf-8")
    (tmp_path / "s").mkdir()
    async with daemon(config) as process:
        assert process.stderr is not None
        async with asyncio.timeout(30):
            while b"running:" not in await process.stderr.readline():
                pass
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(15):
            await process.communicate()
    assert process.returncode == 0
