"""End to end: ``monitord run`` as a subprocess against local targets.

Every wait polls with a deadline; nothing here depends on a fixed sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tests.targets import notify_receiver, refusing_tcp_port
from tests.test_cli import MONITORD

pytestmark = pytest.mark.e2e

ADMIN_KEY = "e2e-admin-key-0123456789"
ADMIN = {"TOAST_PRODUCT_APPKEY": ADMIN_KEY}


# --- a target whose answer the test controls -------------------------------------------


@dataclass
class Target:
    base: str
    hits: Counter[str] = field(default_factory=Counter)
    errors: dict[str, int] = field(default_factory=dict)  # path -> numErrors answered
    delay_s: float = 0.0  # how long each answer takes


@asynccontextmanager
async def target_server() -> AsyncIterator[Target]:
    target = Target("")

    async def handler(request: web.Request) -> web.Response:
        target.hits[request.path] += 1
        errors = target.errors.get(request.path, 0)  # as it was when the request came
        if target.delay_s:
            await asyncio.sleep(target.delay_s)
        return web.json_response({"numErrors": errors})

    app = web.Application()
    app.router.add_get("/{name}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    target.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield target
    finally:
        await runner.cleanup()


def api_scenario(name: str, url: str, schedule: str = "monitoringInterval: 1", **extra: Any) -> str:
    lines = [
        f"- scenarioName: {name}",
        "  scenarioType: API",
        f"  url: {url}",
        f"  {schedule}",
        *(f"  {key}: {value}" for key, value in extra.items()),
        "  validation:",
        "    textValidation:",
        "      textValidationType: JSON",
        '      textValidationInfos: [{expression: $.numErrors, operator: EQ, operand: "0"}]',
    ]
    return "\n".join(lines) + "\n"


# --- the daemon under test ---------------------------------------------------------------


class Daemon:
    """A running ``monitord run`` whose stderr is collected line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self.base = ""
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    async def wait_line(self, pattern: str, seconds: float = 20, after: int = 0) -> re.Match[str]:
        """The first line (from index ``after``) matching ``pattern``, waiting for it."""
        regex = re.compile(pattern)
        async with asyncio.timeout(seconds):
            while True:
                for line in self.lines[after:]:
                    match = regex.search(line)
                    if match:
                        return match
                if self.process.returncode is not None and self._reader.done():
                    raise AssertionError(f"exited {self.process.returncode}:\n{self.log}")
                await asyncio.sleep(0.05)

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    async def exit_code(self, seconds: float = 20) -> int:
        async with asyncio.timeout(seconds):
            code = await self.process.wait()
            await self._reader
        return code


@asynccontextmanager
async def started(
    config: Path, env: dict[str, str] | None = None, *args: str
) -> AsyncIterator[Daemon]:
    process = await asyncio.create_subprocess_exec(
        *MONITORD,
        "run",
        "--config",
        str(config),
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "ADMIN": ADMIN_KEY, **(env or {})},
    )
    daemon = Daemon(process)
    try:
        yield daemon
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await asyncio.wait_for(daemon._reader, 10)


@asynccontextmanager
async def running(
    config: Path, env: dict[str, str] | None = None, *args: str
) -> AsyncIterator[Daemon]:
    """A daemon that has loaded its scenarios and listens; its base URL is set."""
    async with started(config, env, *args) as daemon:
        match = await daemon.wait_line(r"listening on (http://\S+)")
        daemon.base = match.group(1)
        await daemon.wait_line(r"running in region")
        yield daemon


def write_config(directory: Path, extra: str = "") -> Path:
    (directory / "s").mkdir(exist_ok=True)
    config = directory / "config.yaml"
    config.write_text(
        "scenarios: ./s\n"
        "state: ./var/state.sqlite3\n"
        "listen: 127.0.0.1:0\n"
        "adminKey: {env: ADMIN}\n"
        "region: KOR\n" + extra,
        encoding="utf-8",
    )
    return config


async def get_json(base: str, path: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(base + path) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def post(base: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(base + path, headers=headers or {}) as response,
    ):
        return response.status, await response.json()


async def scrape(base: str) -> dict[str, list[Any]]:
    """Samples by metric name, from the Prometheus text format."""
    async with aiohttp.ClientSession() as session, session.get(base + "/metrics") as response:
        assert response.status == 200
        text = await response.text()
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict[str, list[Any]], name: str, **labels: str) -> float | None:
    for sample in samples.get(name, []):
        if all(sample.labels.get(k) == v for k, v in labels.items()):
            return float(sample.value)
    return None


async def poll(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    async with asyncio.timeout(seconds):
        while not await check():
            await asyncio.sleep(0.1)
    assert await check(), what


async def wait_until(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    async with asyncio.timeout(seconds):
        while not predicate():
            await asyncio.sleep(0.05)
    assert predicate(), what


def scenario_state(listing: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in listing["scenarios"] if s["scenarioName"] == name)


# --- scheduling, regions, signals ---------------------------------------------------------


async def test_interval_and_cron_run_other_regions_never_and_sigterm_exits_0(
    tmp_path: Path,
) -> None:
    async with target_server() as target:
        config = write_config(tmp_path)
        (tmp_path / "s" / "checks.yaml").write_text(
            api_scenario("every second", f"{target.base}/interval")
            + api_scenario("quartz seconds", f"{target.base}/cron", 'monitoringCron: "* * * * * ?"')
            + api_scenario("unix minutes", f"{target.base}/minute", 'monitoringCron: "* * * * *"')
            + api_scenario("another region", f"{target.base}/elsewhere", monitoringRegion="[US]"),
            encoding="utf-8",
        )
        (tmp_path / "s" / "broken.yaml").write_text("scenarioName: [\n", encoding="utf-8")
        async with running(config, None, "--log-level", "DEBUG") as daemon:
            await wait_until(
                lambda: target.hits["/interval"] >= 2 and target.hits["/cron"] >= 2,
                15,
                "the interval and the 6-field cron scenarios ran",
            )
            listing = await get_json(daemon.base, "/api/v1/scenarios")
            names = {s["scenarioName"] for s in listing["scenarios"]}
            assert names == {"every second", "quartz seconds", "unix minutes"}
            minute = scenario_state(listing, "unix minutes")
            assert minute["schedule"] == "cron * * * * * (UTC)"
            assert minute["nextRunAt"].endswith(":00.000Z")
            daemon.signal(signal.SIGTERM)
            assert await daemon.exit_code(15) == 0
        assert target.hits["/elsewhere"] == 0
    log = daemon.log
    assert f"{tmp_path / 's' / 'broken.yaml'}:2: yaml: " in log
    assert "3 added, 0 changed, 0 removed, 0 unchanged, 1 outside this region; 1 errors" in log
    # Passing runs are logged at DEBUG only (asked for above).
    success_lines = [line for line in daemon.lines if "success in" in line]
    assert any('scenario_name="every second"' in line for line in success_lines)
    assert any('scenario_name="quartz seconds"' in line for line in success_lines)
    assert all("scenario_id=" in line for line in success_lines)
    assert daemon.lines[-1].endswith("monitord.daemon: stopped")


async def test_sigint_also_stops_cleanly_and_an_empty_folder_is_fine(tmp_path: Path) -> None:
    async with running(write_config(tmp_path)) as daemon:
        assert "0 scenarios" in daemon.log
        daemon.signal(signal.SIGINT)
        assert await daemon.exit_code(15) == 0


async def test_sigterm_lets_a_run_in_flight_finish(tmp_path: Path) -> None:
    release = asyncio.Event()
    started_run = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        started_run.set()
        await release.wait()
        return web.json_response({"numErrors": 0})

    app = web.Application()
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        config = write_config(tmp_path)
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/slow"
        (tmp_path / "s" / "slow.yaml").write_text(api_scenario("slow", url), encoding="utf-8")
        async with running(config, None, "--log-level", "DEBUG") as daemon:
            async with asyncio.timeout(15):
                await started_run.wait()
            daemon.signal(signal.SIGTERM)
            await daemon.wait_line("stopping: letting runs in flight finish")
            release.set()
            assert await daemon.exit_code(15) == 0
        assert re.search(r'success in [\d.]+ ms.*scenario_name="slow"', daemon.log)
    finally:
        release.set()
        await runner.cleanup()


# --- state, metrics and the error limit ---------------------------------------------------


async def test_metrics_and_the_scenarios_api_follow_results_and_the_error_limit(
    tmp_path: Path,
) -> None:
    async with target_server() as target:
        config = write_config(tmp_path)
        (tmp_path / "s" / "shop.yaml").write_text(
            api_scenario("shop", f"{target.base}/shop", errorLimitCount=1), encoding="utf-8"
        )
        async with running(config) as daemon:
            labels = {"scenario_name": "shop", "scenario_type": "API", "region": "KOR"}

            async def ok_with_successes() -> bool:
                m = await scrape(daemon.base)
                return (
                    value(m, "monitord_scenario_runs_total", result="success", **labels) or 0
                ) >= 1

            await poll(ok_with_successes, 15, "a success was counted")
            metrics = await scrape(daemon.base)
            assert value(metrics, "monitord_scenario_up", **labels) == 1
            assert value(metrics, "monitord_scenario_failing", **labels) == 0
            assert value(metrics, "monitord_scenarios", scenario_type="API") == 1
            assert value(metrics, "monitord_config_last_reload_successful") == 1
            assert (value(metrics, "monitord_schedule_lateness_seconds_count") or 0) >= 1
            assert value(metrics, "monitord_schedule_missed_total") == 0
            assert value(metrics, "monitord_schedule_skipped_total") == 0
            duration_count = value(metrics, "monitord_scenario_duration_seconds_count", **labels)
            assert duration_count is not None
            assert duration_count >= 1
            listing = await get_json(daemon.base, "/api/v1/scenarios")
            assert listing["numErrors"] == 0
            shop = scenario_state(listing, "shop")
            assert shop["state"] == "ok"
            assert shop["lastResult"]["result"] == "success"

            target.errors["/shop"] = 3
            failing_at = len(daemon.lines)

            async def failing() -> bool:
                listing = await get_json(daemon.base, "/api/v1/scenarios")
                return bool(scenario_state(listing, "shop")["state"] == "failing")

            await poll(failing, 15, "the scenario turned failing")
            listing = await get_json(daemon.base, "/api/v1/scenarios")
            assert listing["numErrors"] == 1
            shop = scenario_state(listing, "shop")
            assert shop["consecutiveFailures"] >= 2
            assert shop["lastResult"]["reasons"] == ["$.numErrors EQ 0: got 3"]
            metrics = await scrape(daemon.base)
            assert value(metrics, "monitord_scenario_failing", **labels) == 1
            assert value(metrics, "monitord_scenario_up", **labels) == 0
            assert (value(metrics, "monitord_scenario_consecutive_failures", **labels) or 0) >= 2
            line = await daemon.wait_line("transition to failing", after=failing_at)
            assert "2 consecutive failures (errorLimitCount 1)" in line.string
            assert 'scenario_name="shop"' in line.string
            # The failure before the limit did not make it failing.
            first_failure = await daemon.wait_line("failure in", after=failing_at)
            assert daemon.lines.index(first_failure.string) < daemon.lines.index(line.string) - 1

            target.errors["/shop"] = 0

            async def recovered() -> bool:
                listing = await get_json(daemon.base, "/api/v1/scenarios")
                return bool(listing["numErrors"] == 0)

            await poll(recovered, 15, "the scenario recovered")
            await daemon.wait_line("transition to ok: recovered after", after=failing_at)
            metrics = await scrape(daemon.base)
            assert value(metrics, "monitord_scenario_failing", **labels) == 0
            assert value(metrics, "monitord_scenario_consecutive_failures", **labels) == 0


async def test_metrics_settings_shape_the_per_scenario_series(tmp_path: Path) -> None:
    """``metrics: {scenarioLabels: id, durationBuckets: [...]}`` in config.yaml: the
    series carry scenario_id alone, monitord_scenario_info the five labels, and the
    duration histogram has the buckets asked for."""
    async with target_server() as target:
        config = write_config(
            tmp_path, "metrics: {scenarioLabels: id, durationBuckets: [0.001, 30]}\n"
        )
        (tmp_path / "s" / "shop.yaml").write_text(
            api_scenario("shop", f"{target.base}/shop"), encoding="utf-8"
        )
        async with running(config) as daemon:
            listing = await get_json(daemon.base, "/api/v1/scenarios")
            shop_id = scenario_state(listing, "shop")["scenarioId"]

            async def ran() -> bool:
                m = await scrape(daemon.base)
                return (value(m, "monitord_scenario_runs_total", result="success") or 0) >= 1

            await poll(ran, 15, "a success was counted")
            metrics = await scrape(daemon.base)
    assert [s.labels for s in metrics["monitord_scenario_info"]] == [
        {
            "scenario_id": shop_id,
            "scenario_name": "shop",
            "scenario_type": "API",
            "app_key": "default",
            "region": "KOR",
        }
    ]
    for name, samples in metrics.items():
        if name.startswith("monitord_scenario_") and name != "monitord_scenario_info":
            for sample in samples:
                assert sample.labels["scenario_id"] == shop_id, sample
                assert set(sample.labels) <= {"scenario_id", "result", "le"}, sample
    bounds = [s.labels["le"] for s in metrics["monitord_scenario_duration_seconds_bucket"]]
    assert bounds == ["0.001", "30.0", "+Inf"]
    assert value(metrics, "monitord_scenario_up", scenario_id=shop_id) == 1


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with refusing_tcp_port() as address:
        host, port = address.host, address.port
        (tmp_path / "s" / "gate.yaml").write_text(
            "scenarioName: gate\nscenarioType: TCP\n"
            f"ip: {host}\nport: {port}\nrequest: hi\n"
            "monitoringInterval: 86400\nerrorLimitCount: 1\n",
            encoding="utf-8",
        )
        async with running(config) as daemon:
            listing = await get_json(daemon.base, "/api/v1/scenarios")
            gate = scenario_state(listing, "gate")
            assert gate["state"] == "unknown"
            for _ in range(2):
                status, result = await post(
                    daemon.base, f"/api/v1/scenarios/{gate['scenarioId']}/run", ADMIN
                )
                assert status == 200
                assert result["result"] == "failure"
                assert result["reasons"] == ["connection refused"]
            before = scenario_state(await get_json(daemon.base, "/api/v1/scenarios"), "gate")
            assert before["state"] == "failing"
            daemon.signal(signal.SIGTERM)
            assert await daemon.exit_code() == 0
        async with running(config) as daemon:
            listing = await get_json(daemon.base, "/api/v1/scenarios")
            after = scenario_state(listing, "gate")
            assert listing["numErrors"] == 1
            for key in ("state", "consecutiveFailures", "failingSince", "lastResult"):
                assert after[key] == before[key], key
            metrics = await scrape(daemon.base)
            assert value(metrics, "monitord_scenario_failing", scenario_name="gate") == 1
            assert value(metrics, "monitord_scenario_up", scenario_name="gate") == 0
            daemon.signal(signal.SIGTERM)
            assert await daemon.exit_code() == 0


# --- reload -------------------------------------------------------------------------------


async def test_sighup_reloads_and_a_broken_file_keeps_its_scenarios(tmp_path: Path) -> None:
    async with target_server() as target:
        config = write_config(tmp_path, "watchIntervalSeconds: 0\n")
        folder = tmp_path / "s"
        (folder / "a.yaml").write_text(api_scenario("a", f"{target.base}/a"), encoding="utf-8")
        (folder / "gone.yaml").write_text(
            api_scenario("gone", f"{target.base}/gone"), encoding="utf-8"
        )
        async with running(config) as daemon:
            await wait_until(lambda: target.hits["/gone"] >= 1, 15, "gone ran")
            (folder / "b.yaml").write_text(api_scenario("b", f"{target.base}/b"), encoding="utf-8")
            (folder / "gone.yaml").unlink()
            mark = len(daemon.lines)
            daemon.signal(signal.SIGHUP)
            await daemon.wait_line("1 added, 0 changed, 1 removed, 1 unchanged", after=mark)
            await wait_until(lambda: target.hits["/b"] >= 1, 15, "the added scenario ran")
            gone_hits = target.hits["/gone"]

            # A file replaced by garbage: reported, and its scenario keeps running.
            (folder / "a.yaml").write_bytes(b"\x00\xff not yaml: [\n")
            mark = len(daemon.lines)
            daemon.signal(signal.SIGHUP)
            error = await daemon.wait_line(
                rf"{re.escape(str(folder / 'a.yaml'))}:\d+: \S+: ", after=mark
            )
            assert "ERROR" in error.string
            await daemon.wait_line("1 files with errors keep their previous scenarios", after=mark)
            metrics = await scrape(daemon.base)
            assert value(metrics, "monitord_config_last_reload_successful") == 0
            hits_a = target.hits["/a"]
            await wait_until(lambda: target.hits["/a"] >= hits_a + 2, 15, "a kept running")
            assert target.hits["/gone"] == gone_hits, "a removed scenario stopped"
            names = {
                s["scenarioName"]
                for s in (await get_json(daemon.base, "/api/v1/scenarios"))["scenarios"]
            }
            assert names == {"a", "b"}

            # Fixed again: the reload metric comes back.
            (folder / "a.yaml").write_text(api_scenario("a", f"{target.base}/a"), encoding="utf-8")
            mark = len(daemon.lines)
            daemon.signal(signal.SIGHUP)
            await daemon.wait_line("0 added, 0 changed, 0 removed, 2 unchanged", after=mark)
            metrics = await scrape(daemon.base)
            assert value(metrics, "monitord_config_last_reload_successful") == 1
            daemon.signal(signal.SIGTERM)
            assert await daemon.exit_code() == 0


async def test_a_file_change_is_noticed_without_a_signal(tmp_path: Path) -> None:
    async with target_server() as target:
        config = write_config(tmp_path, "watchIntervalSeconds: 1\n")
        folder = tmp_path / "s"
        (folder / "a.yaml").write_text(api_scenario("a", f"{target.base}/old"), encoding="utf-8")
        async with running(config) as daemon:
            await wait_until(lambda: target.hits["/old"] >= 1, 15, "the first version ran")
            listing = await get_json(daemon.base, "/api/v1/scenarios")
            scenario_id = scenario_state(listing, "a")["scenarioId"]
            (folder / "a.yaml").write_text(
                api_scenario("a", f"{target.base}/new"), encoding="utf-8"
            )
            await daemon.wait_line("0 added, 1 changed, 0 removed, 0 unchanged", 15)
            await wait_until(lambda: target.hits["/new"] >= 1, 15, "the changed scenario ran")
            old_hits = target.hits["/old"]
            await wait_until(lambda: target.hits["/new"] >= 3, 15, "it keeps running")
            assert target.hits["/old"] == old_hits
            listing = await get_json(daemon.base, "/api/v1/scenarios")
            assert scenario_state(listing, "a")["scenarioId"] == scenario_id

            (folder / "a.yaml").write_text(
                "- scenarioName: a\n  scenarioType: NOPE\n", encoding="utf-8"
            )
            await daemon.wait_line(r"a\.yaml:2: scenarioType: ", 15)

            async def reload_failed() -> bool:
                return (
                    value(await scrape(daemon.base), "monitord_config_last_reload_successful") == 0
                )

            await poll(reload_failed, 15, "the reload metric dropped to 0")
            new_hits = target.hits["/new"]
            await wait_until(lambda: target.hits["/new"] >= new_hits + 2, 15, "old version kept")
            daemon.signal(signal.SIGTERM)
            assert await daemon.exit_code() == 0


# --- admin API ----------------------------------------------------------------------------


async def test_admin_calls_need_the_key(tmp_path: Path) -> None:
    async with running(write_config(tmp_path)) as daemon:
        for headers in (
            {},
            {"TOAST_PRODUCT_APPKEY": "wrong"},
            {"Authorization": "Bearer wrong"},
            {"Authorization": f"Basic {ADMIN_KEY}"},
        ):
            status, body = await post(daemon.base, "/-/reload", headers)
            assert status == 401, headers
            assert body["error"]["status"] == 401
            status, _ = await post(daemon.base, "/api/v1/scenarios/x/run", headers)
            assert status == 401
        status, body = await post(
            daemon.base, "/-/reload", {"Authorization": f"Bearer {ADMIN_KEY}"}
        )
        assert status == 200
        assert body["successful"] is True
        status, body = await post(daemon.base, "/api/v1/scenarios/nope/run", ADMIN)
        assert status == 404
        daemon.signal(signal.SIGTERM)
        assert await daemon.exit_code() == 0
    assert ADMIN_KEY not in daemon.log


async def test_json_log_lines(tmp_path: Path) -> None:
    with refusing_tcp_port() as address:
        host, port = address.host, address.port
        config = write_config(tmp_path)
        (tmp_path / "s" / "t.yaml").write_text(
            f"scenarioName: tcp\nscenarioType: TCP\nip: {host}\nport: {port}\nrequest: hi\n"
            "monitoringInterval: 1\n",
            encoding="utf-8",
        )
        async with started(config, None, "--log-format", "json") as daemon:
            await daemon.wait_line('"message": "failure in')
            daemon.signal(signal.SIGTERM)
            assert await daemon.exit_code() == 0
    records = [json.loads(line) for line in daemon.lines]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    failures = [r for r in records if r["message"].startswith("failure in")]
    assert failures
    assert all(r["scenario_name"] == "tcp" and r["scenario_id"] for r in failures)


# --- start-up errors ------------------------------------------------------------------------


async def test_run_exits_2_when_the_configuration_cannot_be_loaded(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("listen: [oops]\n", encoding="utf-8")
    async with started(config) as daemon:
        assert await daemon.exit_code() == 2
    assert f"{config}:1: listen: must be a string, got a list" in daemon.log


async def test_the_state_folder_is_created_on_first_start(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(
        config.read_text().replace("./var/state.sqlite3", "./deep/er/state.sqlite3"),
        encoding="utf-8",
    )
    async with running(config) as daemon:
        assert (tmp_path / "deep" / "er" / "state.sqlite3").is_file()
        daemon.signal(signal.SIGTERM)
        assert await daemon.exit_code() == 0


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ("./afile/sub/state.sqlite3", "cannot create folder"),
        ("/proc/monitord-e2e/state.sqlite3", "cannot create folder"),
    ],
)
async def test_an_unusable_state_path_exits_2_with_a_clear_error(
    tmp_path: Path, state: str, message: str
) -> None:
    (tmp_path / "afile").write_text("not a folder", encoding="utf-8")
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("./var/state.sqlite3", state), encoding="utf-8")
    async with started(config) as daemon:
        assert await daemon.exit_code() == 2
    assert "monitord: state store" in daemon.log
    assert message in daemon.log
    assert "Traceback" not in daemon.log


async def test_a_second_daemon_on_the_same_state_exits_2(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    async with running(config) as first:
        async with started(config) as second:
            assert await second.exit_code() == 2
        assert "in use by another monitord process" in second.log
        first.signal(signal.SIGTERM)
        assert await first.exit_code() == 0


async def test_a_listen_address_in_use_exits_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path)
        config.write_text(
            config.read_text().replace("127.0.0.1:0", f"127.0.0.1:{port}"), encoding="utf-8"
        )
        async with started(config) as daemon:
            assert await daemon.exit_code() == 2
    assert f"cannot listen on 127.0.0.1:{port}" in daemon.log


# --- systemd notify protocol ----------------------------------------------------------------


async def test_the_daemon_speaks_the_notify_protocol(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    messages: list[str] = []
    with notify_receiver(tmp_path) as receiver:

        def drain() -> list[str]:
            while True:
                try:
                    messages.append(receiver.recv(4096).decode())
                except BlockingIOError:
                    return messages

        env = {"NOTIFY_SOCKET": receiver.getsockname(), "WATCHDOG_USEC": "400000"}
        async with running(config, env) as daemon:
            await wait_until(lambda: any(m.startswith("READY=1") for m in drain()), 15, "READY")
            await wait_until(lambda: drain().count("WATCHDOG=1") >= 2, 15, "keep-alives")
            ready_count = sum(m.startswith("READY=1") for m in messages)
            daemon.signal(signal.SIGHUP)
            await wait_until(
                lambda: sum(m.startswith("READY=1") for m in drain()) > ready_count, 15, "re-READY"
            )
            reloading = next(m for m in messages if m.startswith("RELOADING=1"))
            assert re.fullmatch(r"RELOADING=1\nMONOTONIC_USEC=\d+", reloading)
            assert messages.index(reloading) < len(messages) - 1
            daemon.signal(signal.SIGTERM)
            assert await daemon.exit_code() == 0
        drain()
    assert "STOPPING=1" in messages
    first_ready = next(i for i, m in enumerate(messages) if m.startswith("READY=1"))
    assert first_ready < messages.index(reloading) < messages.index("STOPPING=1")


async def test_a_sighup_while_starting_or_stopping_does_not_end_the_daemon(tmp_path: Path) -> None:
    # A target that accepts and never answers keeps a run in flight, so the daemon is
    # still stopping (waiting for that run) when the second SIGHUP comes.
    accepted = asyncio.Event()
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        accepted.set()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = write_config(tmp_path)
    (tmp_path / "s" / "held.yaml").write_text(
        api_scenario("held", f"http://127.0.0.1:{port}/"), encoding="utf-8"
    )
    try:
        async with started(config) as daemon:
            await daemon.wait_line(r"listening on ")
            daemon.signal(signal.SIGHUP)
            await daemon.wait_line(r"running in region")
            async with asyncio.timeout(15):
                await accepted.wait()
            daemon.signal(signal.SIGTERM)
            await daemon.wait_line("stopping:")
            daemon.signal(signal.SIGHUP)
            for writer in held:  # now let the run in flight end
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            assert await daemon.exit_code() == 0
        assert "monitord.daemon: stopped" in daemon.lines[-1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
        for writer in held:
            with contextlib.suppress(OSError):
                await writer.wait_closed()
