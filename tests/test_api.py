"""The HTTP API (SPEC §7 operations, §8 reload, §9 metrics) on a real app.

The app is composed as ``monitord.daemon`` composes it: a real state store, the
real probes and runner, a ``Monitor`` loading scenario files from ``tmp_path``,
a ``Heartbeat`` (on a clock the test advances) and a reload callable. Scenarios
probe real local targets. Every wait polls with a deadline.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import re
import socket
import sqlite3
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from monitord import monitor as monitor_module
from monitord.api import build_app
from monitord.config.settings import load_config
from monitord.heartbeat import STUCK_AFTER_S, Heartbeat
from monitord.httpbase import MAX_BODY_BYTES, Api
from monitord.metrics import SCENARIO_LABELS, Metrics
from monitord.monitor import Monitor, ReloadReport
from monitord.probes import open_probes
from monitord.runner import Runner
from monitord.store import Store
from tests.factories import RESULT_KEYS
from tests.targets import LOCALHOST, SocketAddress, refusing_tcp_port, web_target

ADMIN_KEY = "s3cret-key"
ENVIRON = {"ADMIN": ADMIN_KEY}
ADMIN = {"TOAST_PRODUCT_APPKEY": ADMIN_KEY}
BEARER = {"Authorization": f"Bearer {ADMIN_KEY}"}

CONFIG_WITH_KEY = "scenarios: ./s\nstate: ./state.sqlite3\nadminKey: {env: ADMIN}\n"
CONFIG_WITHOUT_KEY = "scenarios: ./s\nstate: ./state.sqlite3\n"

# Fires once, in 2060: scenarios are loaded and scheduled, but only the test runs them.
NEVER = 'monitoringCron: "0 0 0 1 1 ? 2060"'

# FILE:LINE: FIELD: message
LOAD_ERROR = re.compile(r"^(?P<file>[^\n]+?):(?P<line>\d+): (?P<field>[^:\n]+): (?P<message>.+)$")

DEADLINE_S = 10.0


# --- scenario files ----------------------------------------------------------------------


def api_yaml(name: str, url: str, *, error_limit: int = 0, timeout_ms: int = 5000) -> str:
    return (
        f"scenarioName: {name}\n"
        "scenarioType: API\n"
        f"url: {url}\n"
        f"{NEVER}\n"
        f"errorLimitCount: {error_limit}\n"
        "validation:\n"
        f"  timeout: {timeout_ms}\n"
        "  textValidation:\n"
        "    textValidationType: JSON\n"
        '    textValidationInfos: [{expression: $.numErrors, operator: EQ, operand: "0"}]\n'
    )


def tcp_yaml(name: str, port: int, *, error_limit: int = 0, timeout_ms: int = 3000) -> str:
    return (
        f"scenarioName: {name}\n"
        "scenarioType: TCP\n"
        f"ip: {LOCALHOST}\n"
        f"port: {port}\n"
        "request: ping\n"
        f"{NEVER}\n"
        f"errorLimitCount: {error_limit}\n"
        "validation:\n"
        f"  timeout: {timeout_ms}\n"
    )


def batch_yaml(name: str) -> str:
    return (
        f"scenarioName: {name}\n"
        "scenarioType: BATCH\n"
        "monitoringInterval: 3600\n"
        "graceSeconds: 60\n"
        "validation:\n"
        "  textValidation:\n"
        "    textValidationType: JSON\n"
        "    textValidationInfos: [{expression: $.status, operator: EQ, operand: done}]\n"
    )


# --- the app under test ------------------------------------------------------------------


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class App:
    client: TestClient[web.Request, web.Application]
    monitor: Monitor
    heartbeat: Heartbeat
    clock: FakeClock
    folder: Path  # the scenarios folder

    @property
    def address(self) -> tuple[str, int]:
        server = self.client.server
        assert server.port is not None
        return LOCALHOST, server.port

    def write(self, file: str, text: str | bytes) -> Path:
        path = self.folder / file
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    async def scenarios(self) -> dict[str, Any]:
        async with self.client.get("/api/v1/scenarios") as response:
            assert response.status == 200
            body: dict[str, Any] = await response.json()
        return body

    async def scenario(self, name: str) -> dict[str, Any]:
        listed = await self.scenarios()
        (found,) = [s for s in listed["scenarios"] if s["scenarioName"] == name]
        return dict(found)

    async def run(self, scenario_id: str, headers: dict[str, str] | None = None) -> Any:
        async with self.client.post(
            f"/api/v1/scenarios/{scenario_id}/run", headers=ADMIN if headers is None else headers
        ) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def reload(self) -> tuple[int, dict[str, Any]]:
        async with self.client.post("/-/reload", headers=ADMIN) as response:
            return response.status, await response.json()

    async def metrics(self) -> dict[str, Any]:
        async with self.client.get("/metrics") as response:
            assert response.status == 200
            text = await response.text()
        return {family.name: family for family in text_string_to_metric_families(text)}


@asynccontextmanager
async def running_app(
    tmp_path: Path, config_text: str = CONFIG_WITH_KEY, environ: Mapping[str, str] = ENVIRON
) -> AsyncIterator[App]:
    """The daemon's composition (see ``monitord.daemon._serve``) behind a test client.

    Scenario files already in ``tmp_path / "s"`` are loaded by ``monitor.start()``.
    """
    folder = tmp_path / "s"
    folder.mkdir(exist_ok=True)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(config_text, encoding="utf-8")
    config = load_config(config_path, environ)
    store = Store.open(config.state_path)
    try:
        async with open_probes(user_agent="monitord-test") as probes:
            runner = Runner(probes, expression_budget_s=config.defaults.expression_budget_ms / 1000)
            try:
                metrics = Metrics()
                monitor = Monitor(config, environ, store, runner, metrics)
                clock = FakeClock()
                heartbeat = Heartbeat(lambda: monitor.scheduler_running, None, clock=clock)

                async def reload() -> ReloadReport:
                    return await monitor.reload()

                app = build_app(Api(monitor, metrics, heartbeat, config.admin_key, reload))
                try:
                    await monitor.start()
                    async with TestClient(TestServer(app, host=LOCALHOST)) as client:
                        yield App(client, monitor, heartbeat, clock, folder)
                finally:
                    await monitor.stop(5.0)
            finally:
                runner.close()
    finally:
        store.close()


# --- local targets -----------------------------------------------------------------------


@dataclass
class SwitchTarget:
    """Answers at once, or holds each request until released while ``hold`` is set."""

    url: str = ""
    hold: bool = False
    arrived: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)


@asynccontextmanager
async def switch_target(hold: bool = False) -> AsyncIterator[SwitchTarget]:
    target = SwitchTarget(hold=hold)

    async def answer(request: web.Request) -> web.Response:
        target.arrived += 1
        target.in_flight += 1
        target.max_in_flight = max(target.max_in_flight, target.in_flight)
        try:
            if target.hold:
                async with asyncio.timeout(DEADLINE_S):
                    await target.release.wait()
        finally:
            target.in_flight -= 1
        return web.json_response({"numErrors": 0})

    app = web.Application()
    app.router.add_get("/tick", answer)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, LOCALHOST, 0).start()
        target.url = f"http://{LOCALHOST}:{runner.addresses[0][1]}/tick"
        yield target
    finally:
        target.release.set()
        await runner.cleanup()


@contextmanager
def late_listener() -> Iterator[tuple[SocketAddress, socket.socket]]:
    """A bound TCP socket that refuses connections until the test makes it listen."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((LOCALHOST, 0))
        yield SocketAddress(LOCALHOST, sock.getsockname()[1]), sock
    finally:
        sock.close()


async def answer_hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await reader.read(100)
        writer.write(b"hello\n")
        await writer.drain()
    finally:
        writer.close()


# --- assertions and raw HTTP -------------------------------------------------------------


async def assert_json_error(response: Any, status: int) -> dict[str, Any]:
    """The response is the API's JSON error with this status; returns the error object."""
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"status", "message"}
    assert error["status"] == status
    assert isinstance(error["message"], str)
    assert error["message"]
    return dict(error)


def check_json_error(status: int, body: bytes) -> None:
    document = json.loads(body)
    assert document["error"]["status"] == status
    assert isinstance(document["error"]["message"], str)


@dataclass
class RawResponse:
    status: int | None  # None: the server closed without an answer
    headers: dict[str, str]
    body: bytes


async def raw_exchange(address: tuple[str, int], data: bytes) -> RawResponse:
    """Send ``data`` on a fresh connection; read one response (or the server closing)."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        async with asyncio.timeout(DEADLINE_S):
            try:
                writer.write(data)
                await writer.drain()
            except ConnectionError:
                pass  # the server may answer and close before taking everything
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return RawResponse(None, {}, b"")
            status_line, *lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            try:
                body = await reader.readexactly(length)
            except (asyncio.IncompleteReadError, ConnectionError):
                body = b""
            return RawResponse(int(status_line.split()[1]), headers, body)
    finally:
        writer.close()
        with suppress(ConnectionError):
            await writer.wait_closed()


async def assert_still_serving(app: App) -> None:
    async with app.client.get("/health") as response:
        assert response.status == 200
        assert (await response.json())["status"] == "ok"


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    async with running_app(tmp_path) as running:
        yield running


# --- GET /api/v1/scenarios ---------------------------------------------------------------


async def test_scenarios_are_unknown_until_they_run_then_ok_with_a_result(
    tmp_path: Path,
) -> None:
    async with web_target() as target:
        (tmp_path / "s").mkdir()
        (tmp_path / "s" / "shop.yaml").write_text(api_yaml("shop", target.url("/json")))
        async with running_app(tmp_path) as app:
            listed = await app.scenarios()
            assert listed["numErrors"] == 0
            (shop,) = listed["scenarios"]
            assert shop["scenarioName"] == "shop"
            assert shop["scenarioType"] == "API"
            assert shop["state"] == "unknown"
            assert shop["consecutiveFailures"] == 0
            assert shop["lastResult"] is None
            assert shop["nextRunAt"].startswith("2060-01-01T00:00:00")
            assert shop["source"] == f"{app.folder / 'shop.yaml'}:1"

            result = await app.run(shop["scenarioId"])
            assert list(result) == RESULT_KEYS
            assert result["result"] == "success"
            assert result["reasons"] == []
            assert result["statusCode"] == 200
            assert result["scenarioId"] == shop["scenarioId"]

            after = await app.scenario("shop")
            assert after["state"] == "ok"
            assert after["consecutiveFailures"] == 0
            assert list(after["lastResult"]) == RESULT_KEYS
            assert after["lastResult"] == result
            async with app.client.get(f"/api/v1/scenarios/{shop['scenarioId']}") as response:
                assert response.status == 200
                assert await response.json() == after


async def test_error_limit_failing_and_recovery_through_the_api(tmp_path: Path) -> None:
    with late_listener() as (address, sock):
        (tmp_path / "s").mkdir()
        (tmp_path / "s" / "gw.yaml").write_text(tcp_yaml("gateway", address.port, error_limit=1))
        async with running_app(tmp_path) as app:
            gateway = await app.scenario("gateway")
            sid = gateway["scenarioId"]
            assert gateway["errorLimitCount"] == 1

            first = await app.run(sid)
            assert first["result"] == "failure"
            assert any("refused" in reason for reason in first["reasons"]), first["reasons"]
            one = await app.scenario("gateway")
            assert (one["state"], one["consecutiveFailures"]) == ("ok", 1)
            assert (await app.scenarios())["numErrors"] == 0

            await app.run(sid)
            listed = await app.scenarios()
            assert listed["numErrors"] == 1
            (two,) = listed["scenarios"]
            assert (two["state"], two["consecutiveFailures"]) == ("failing", 2)
            assert two["failingSince"] == first["startedAt"]

            server = await asyncio.start_server(answer_hello, sock=sock)
            try:
                passed = await app.run(sid)
            finally:
                server.close()
                await server.wait_closed()
            assert passed["result"] == "success", passed["reasons"]
            listed = await app.scenarios()
            assert listed["numErrors"] == 0
            (three,) = listed["scenarios"]
            assert (three["state"], three["consecutiveFailures"]) == ("ok", 0)
            assert three["failingSince"] is None


def saved_rows(tmp_path: Path) -> dict[str, tuple[int, str | None]]:
    """(consecutive failures, startedAt of the last result) per scenario, as on disk,
    read through a connection of its own."""
    connection = sqlite3.connect(tmp_path / "state.sqlite3")
    try:
        rows = connection.execute(
            "SELECT scenario_id, consecutive_failures, last_result FROM scenario_state"
        ).fetchall()
    finally:
        connection.close()
    return {
        sid: (count, json.loads(last)["startedAt"] if last else None) for sid, count, last in rows
    }


async def test_an_unchanged_standing_saves_its_result_once_per_period_and_at_stop(
    tmp_path: Path,
) -> None:
    async with web_target() as target:
        (tmp_path / "s").mkdir()
        (tmp_path / "s" / "shop.yaml").write_text(api_yaml("shop", target.url("/json")))
        async with running_app(tmp_path) as app:
            sid = (await app.scenario("shop"))["scenarioId"]
            first = await app.run(sid)  # the first result of this process is written
            assert saved_rows(tmp_path) == {sid: (0, first["startedAt"])}
            second = await app.run(sid)  # still OK with no failures: only kept in memory
            assert second["startedAt"] != first["startedAt"]
            assert (await app.scenario("shop"))["lastResult"] == second
            assert saved_rows(tmp_path) == {sid: (0, first["startedAt"])}
        assert saved_rows(tmp_path) == {sid: (0, second["startedAt"])}  # written at stop


async def test_an_unchanged_standing_past_its_period_is_saved_within_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(monitor_module, "RESULT_SAVE_PERIOD_S", 0.0)
    async with web_target() as target:
        (tmp_path / "s").mkdir()
        (tmp_path / "s" / "shop.yaml").write_text(api_yaml("shop", target.url("/json")))
        async with running_app(tmp_path) as app:
            sid = (await app.scenario("shop"))["scenarioId"]
            await app.run(sid)
            second = await app.run(sid)
            async with asyncio.timeout(DEADLINE_S):
                while saved_rows(tmp_path) != {sid: (0, second["startedAt"])}:
                    await asyncio.sleep(0.02)


async def test_every_change_of_the_failure_count_is_saved_at_once(tmp_path: Path) -> None:
    with late_listener() as (address, _):
        (tmp_path / "s").mkdir()
        (tmp_path / "s" / "gw.yaml").write_text(tcp_yaml("gateway", address.port, error_limit=3))
        async with running_app(tmp_path) as app:
            sid = (await app.scenario("gateway"))["scenarioId"]
            for count in (1, 2, 3):
                result = await app.run(sid)
                assert saved_rows(tmp_path) == {sid: (count, result["startedAt"])}


async def test_one_scenario_by_id_and_404_json_for_an_unknown_id(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "b.yaml").write_text(batch_yaml("nightly"))
    async with running_app(tmp_path) as app:
        (nightly,) = (await app.scenarios())["scenarios"]
        async with app.client.get(f"/api/v1/scenarios/{nightly['scenarioId']}") as response:
            assert response.status == 200
            one = await response.json()
        assert one.pop("lastPayload") is None  # one BATCH scenario adds it: none came yet
        assert one == nightly
        assert one["scenarioType"] == "BATCH"
        async with app.client.get(
            "/api/v1/scenarios/00000000-0000-0000-0000-000000000000"
        ) as response:
            error = await assert_json_error(response, 404)
        assert "00000000-0000-0000-0000-000000000000" in error["message"]


# --- POST /api/v1/scenarios/{id}/run: authentication ---------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no key"),
        pytest.param({"TOAST_PRODUCT_APPKEY": "wrong-key"}, id="wrong key"),
        pytest.param({"TOAST_PRODUCT_APPKEY": ""}, id="empty header"),
        pytest.param({"TOAST_PRODUCT_APPKEY": ADMIN_KEY.upper()}, id="case differs"),
        pytest.param({"TOAST_PRODUCT_APPKEY": ADMIN_KEY + "!"}, id="trailing char"),
        pytest.param({"TOAST_PRODUCT_APPKEY": ADMIN_KEY[:-1]}, id="prefix"),
        pytest.param({"Authorization": f"Bearer {ADMIN_KEY.upper()}"}, id="bearer case differs"),
        pytest.param({"Authorization": f"Bearer {ADMIN_KEY}x"}, id="bearer trailing char"),
        pytest.param({"Authorization": "Bearer"}, id="empty bearer"),
        pytest.param({"Authorization": "Bearer    "}, id="blank bearer"),
        pytest.param({"Authorization": f"Basic {ADMIN_KEY}"}, id="basic scheme"),
        pytest.param({"Authorization": ADMIN_KEY}, id="no scheme"),
        pytest.param({"Authorization": f"Token {ADMIN_KEY}"}, id="other scheme"),
    ],
)
async def test_run_now_without_the_right_key_is_401(
    tmp_path: Path, headers: dict[str, str]
) -> None:
    async with web_target() as target:
        (tmp_path / "s").mkdir()
        (tmp_path / "s" / "shop.yaml").write_text(api_yaml("shop", target.url("/echo")))
        async with running_app(tmp_path) as app:
            sid = (await app.scenario("shop"))["scenarioId"]
            async with app.client.post(f"/api/v1/scenarios/{sid}/run", headers=headers) as response:
                error = await assert_json_error(response, 401)
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert "TOAST_PRODUCT_APPKEY" in error["message"]
            # Nothing ran: the target saw no request and the state is untouched.
            assert target.received == []
            assert (await app.scenario("shop"))["state"] == "unknown"
            # An unknown id answers 401 too: without the key, nothing is revealed.
            async with app.client.post("/api/v1/scenarios/nope/run", headers=headers) as response:
                await assert_json_error(response, 401)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(ADMIN, id="TOAST_PRODUCT_APPKEY"),
        pytest.param(BEARER, id="bearer"),
        pytest.param({"Authorization": f"bearer {ADMIN_KEY}"}, id="bearer lower-case scheme"),
    ],
)
async def test_run_now_with_the_key_runs_the_scenario(
    tmp_path: Path, headers: dict[str, str]
) -> None:
    async with web_target() as target:
        (tmp_path / "s").mkdir()
        (tmp_path / "s" / "shop.yaml").write_text(api_yaml("shop", target.url("/json")))
        async with running_app(tmp_path) as app:
            sid = (await app.scenario("shop"))["scenarioId"]
            result = await app.run(sid, headers)
            assert result["result"] == "success"
            assert result["scenarioId"] == sid
            assert (await app.scenario("shop"))["state"] == "ok"


async def test_run_now_unknown_id_is_404_and_batch_is_409(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "b.yaml").write_text(batch_yaml("nightly"))
    async with running_app(tmp_path) as app:
        sid = (await app.scenario("nightly"))["scenarioId"]
        async with app.client.post("/api/v1/scenarios/nope/run", headers=ADMIN) as response:
            error = await assert_json_error(response, 404)
        assert "nope" in error["message"]
        async with app.client.post(f"/api/v1/scenarios/{sid}/run", headers=ADMIN) as response:
            error = await assert_json_error(response, 409)
        assert "BATCH" in error["message"]
        assert (await app.scenario("nightly"))["state"] == "unknown"


async def test_run_now_while_a_run_is_in_progress_is_409(tmp_path: Path) -> None:
    async with switch_target(hold=True) as target:
        (tmp_path / "s").mkdir()
        (tmp_path / "s" / "slow.yaml").write_text(api_yaml("slow", target.url))
        async with running_app(tmp_path) as app:
            sid = (await app.scenario("slow"))["scenarioId"]
            first = asyncio.ensure_future(app.run(sid))
            try:
                async with asyncio.timeout(DEADLINE_S):
                    while target.arrived == 0:
                        assert not first.done(), first
                        await asyncio.sleep(0.01)
                async with app.client.post(
                    f"/api/v1/scenarios/{sid}/run", headers=ADMIN
                ) as response:
                    error = await assert_json_error(response, 409)
                assert "in progress" in error["message"]
                target.release.set()
                async with asyncio.timeout(DEADLINE_S):
                    result = await first
            finally:
                target.release.set()
                if not first.done():
                    first.cancel()
                await asyncio.gather(first, return_exceptions=True)
            assert result["result"] == "success"
            assert target.arrived == 1
            # Once the run is over, the scenario can run again.
            assert (await app.run(sid))["result"] == "success"
            assert target.arrived == 2


async def test_admin_api_without_an_admin_key_is_off(tmp_path: Path) -> None:
    async with web_target() as target:
        (tmp_path / "s").mkdir()
        (tmp_path / "s" / "shop.yaml").write_text(api_yaml("shop", target.url("/echo")))
        async with running_app(tmp_path, CONFIG_WITHOUT_KEY) as app:
            sid = (await app.scenario("shop"))["scenarioId"]
            for headers in ({}, ADMIN, BEARER):
                for path in (f"/api/v1/scenarios/{sid}/run", "/-/reload"):
                    async with app.client.post(path, headers=headers) as response:
                        error = await assert_json_error(response, 401)
                        assert "WWW-Authenticate" in response.headers
                    assert "off" in error["message"]
                    assert "adminKey" in error["message"]
            assert target.received == []
            # The read-only endpoints need no key.
            assert (await app.scenario("shop"))["state"] == "unknown"


# --- POST /-/reload -----------------------------------------------------------------------


async def test_reload_needs_the_key(app: App) -> None:
    app.write("new.yaml", batch_yaml("new"))
    for headers in ({}, {"TOAST_PRODUCT_APPKEY": "nope"}, {"Authorization": "Basic x"}):
        async with app.client.post("/-/reload", headers=headers) as response:
            await assert_json_error(response, 401)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await app.scenarios())["scenarios"] == []  # nothing was reloaded
    status, report = await app.reload()
    assert status == 200
    assert report["added"] == 1


async def test_reload_adds_changes_and_removes_and_keeps_state(tmp_path: Path) -> None:
    with refusing_tcp_port() as refused:
        (tmp_path / "s").mkdir()
        (tmp_path / "s" / "gw.yaml").write_text(tcp_yaml("gateway", refused.port, error_limit=3))
        async with running_app(tmp_path) as app:
            sid = (await app.scenario("gateway"))["scenarioId"]
            await app.run(sid)
            await app.run(sid)
            before = await app.scenario("gateway")
            assert before["consecutiveFailures"] == 2

            app.write("extra.yaml", batch_yaml("extra"))
            status, report = await app.reload()
            assert status == 200
            assert report == {
                "successful": True,
                "added": 1,
                "changed": 0,
                "removed": 0,
                "unchanged": 1,
                "outOfRegion": 0,
                "keptFiles": [],
                "errors": [],
            }
            names = {s["scenarioName"] for s in (await app.scenarios())["scenarios"]}
            assert names == {"gateway", "extra"}

            # A meaningful change (the timeout): rescheduled, same id, state kept.
            app.write("gw.yaml", tcp_yaml("gateway", refused.port, error_limit=3, timeout_ms=2500))
            status, report = await app.reload()
            assert status == 200
            assert (report["added"], report["changed"], report["removed"]) == (0, 1, 0)
            after = await app.scenario("gateway")
            assert after["scenarioId"] == sid
            assert after["consecutiveFailures"] == 2
            assert after["state"] == before["state"]
            assert after["lastResult"] == before["lastResult"]
            # The kept count goes on from where it was.
            await app.run(sid)
            assert (await app.scenario("gateway"))["consecutiveFailures"] == 3

            # Reloading with nothing changed changes nothing.
            status, report = await app.reload()
            assert (status, report["unchanged"], report["changed"]) == (200, 2, 0)

            extra_id = (await app.scenario("extra"))["scenarioId"]
            (app.folder / "extra.yaml").unlink()
            status, report = await app.reload()
            assert status == 200
            assert (report["added"], report["changed"], report["removed"]) == (0, 0, 1)
            names = {s["scenarioName"] for s in (await app.scenarios())["scenarios"]}
            assert names == {"gateway"}
            async with app.client.get(f"/api/v1/scenarios/{extra_id}") as response:
                await assert_json_error(response, 404)
            async with app.client.post(
                f"/api/v1/scenarios/{extra_id}/run", headers=ADMIN
            ) as response:
                await assert_json_error(response, 404)


GARBAGE = [
    pytest.param("scenarioName: [\n", id="yaml syntax"),
    pytest.param(bytes(range(256)) * 8, id="binary"),
    pytest.param(b"garbage " * (2 * 1024 * 1024 // 8), id="2 MiB"),
    pytest.param("scenarioName: x\nscenarioType: API\nbogus: 1\n", id="invalid scenario"),
    pytest.param("- 1\n- [2]\n", id="not mappings"),
]


@pytest.mark.parametrize("garbage", GARBAGE)
async def test_a_broken_file_keeps_its_scenarios_running(
    tmp_path: Path, garbage: str | bytes
) -> None:
    async with web_target() as target:
        (tmp_path / "s").mkdir()
        good = api_yaml("shop", target.url("/json"))
        (tmp_path / "s" / "shop.yaml").write_text(good)
        (tmp_path / "s" / "other.yaml").write_text(batch_yaml("other"))
        async with running_app(tmp_path) as app:
            sid = (await app.scenario("shop"))["scenarioId"]
            await app.run(sid)
            families = await app.metrics()
            assert _value(families, "monitord_config_last_reload_successful") == 1

            broken = app.write("shop.yaml", garbage)
            status, report = await app.reload()
            assert status == 422
            assert report["successful"] is False
            assert report["keptFiles"] == [str(broken)]
            assert (report["added"], report["changed"], report["removed"]) == (0, 0, 0)
            assert report["unchanged"] == 2
            assert report["errors"], report
            for error in report["errors"]:
                match = LOAD_ERROR.match(error)
                assert match is not None, error
                assert match["file"] == str(broken)
                assert int(match["line"]) >= 0

            # Its scenario is still listed, with its state, and still runs.
            shop = await app.scenario("shop")
            assert shop["scenarioId"] == sid
            assert shop["state"] == "ok"
            assert (await app.run(sid))["result"] == "success"
            families = await app.metrics()
            assert _value(families, "monitord_config_last_reload_successful") == 0
            assert _runs(families, "shop", "success") == 2

            app.write("shop.yaml", good)
            status, report = await app.reload()
            assert status == 200
            assert report["successful"] is True
            assert report["keptFiles"] == []
            assert report["errors"] == []
            assert report["unchanged"] == 2
            families = await app.metrics()
            assert _value(families, "monitord_config_last_reload_successful") == 1
            assert _value(families, "monitord_config_last_reload_success_timestamp_seconds") > 0


async def test_a_file_emptied_holds_no_scenarios(tmp_path: Path) -> None:
    """An empty file is a valid file with no scenarios (the loader's rule), so they go."""
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "a.yaml").write_text(batch_yaml("a"))
    async with running_app(tmp_path) as app:
        app.write("a.yaml", "")
        status, report = await app.reload()
        assert status == 200
        assert report["successful"] is True
        assert report["removed"] == 1
        assert (await app.scenarios())["scenarios"] == []


async def test_a_file_broken_before_it_ever_loaded_is_reported_and_others_apply(
    app: App,
) -> None:
    broken = app.write("broken.yaml", "scenarioName: [\n")
    app.write("fine.yaml", batch_yaml("fine"))
    status, report = await app.reload()
    assert status == 422
    assert report["added"] == 1
    assert report["keptFiles"] == []
    (error,) = report["errors"]
    match = LOAD_ERROR.match(error)
    assert match is not None, error
    assert (match["file"], match["field"]) == (str(broken), "yaml")
    names = [s["scenarioName"] for s in (await app.scenarios())["scenarios"]]
    assert names == ["fine"]


# --- /metrics ------------------------------------------------------------------------------


def _value(families: dict[str, Any], name: str, **labels: str) -> float:
    values = [
        sample.value
        for family in families.values()
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(values) == 1, (name, labels, values)
    return float(values[0])


def _runs(families: dict[str, Any], scenario: str, result: str) -> float:
    return _value(families, "monitord_scenario_runs_total", scenario_name=scenario, result=result)


async def test_metrics_count_runs_done_through_the_api(tmp_path: Path) -> None:
    async with web_target() as target:
        with refusing_tcp_port() as refused:
            (tmp_path / "s").mkdir()
            (tmp_path / "s" / "shop.yaml").write_text(api_yaml("shop", target.url("/json")))
            (tmp_path / "s" / "gw.yaml").write_text(tcp_yaml("gateway", refused.port))
            (tmp_path / "s" / "b.yaml").write_text(batch_yaml("nightly"))
            async with running_app(tmp_path) as app:
                families = await app.metrics()
                assert _runs(families, "shop", "success") == 0
                assert _value(families, "monitord_scenarios", scenario_type="API") == 1
                assert _value(families, "monitord_scenarios", scenario_type="TCP") == 1
                assert _value(families, "monitord_scenarios", scenario_type="BATCH") == 1
                assert _value(families, "monitord_scenarios", scenario_type="UDP") == 0

                shop = await app.scenario("shop")
                gateway = await app.scenario("gateway")
                for _ in range(3):
                    await app.run(shop["scenarioId"])
                for _ in range(2):
                    await app.run(gateway["scenarioId"])

                families = await app.metrics()
                assert _runs(families, "shop", "success") == 3
                assert _runs(families, "shop", "failure") == 0
                assert _runs(families, "gateway", "failure") == 2
                assert _runs(families, "gateway", "success") == 0
                assert _value(families, "monitord_scenario_up", scenario_name="shop") == 1
                assert _value(families, "monitord_scenario_up", scenario_name="gateway") == 0
                assert _value(families, "monitord_scenario_failing", scenario_name="gateway") == 1
                assert _value(families, "monitord_scenario_failing", scenario_name="shop") == 0
                assert (
                    _value(
                        families, "monitord_scenario_consecutive_failures", scenario_name="gateway"
                    )
                    == 2
                )
                assert (
                    _value(
                        families, "monitord_scenario_duration_seconds_count", scenario_name="shop"
                    )
                    == 3
                )
                assert (
                    _value(
                        families,
                        "monitord_scenario_last_run_timestamp_seconds",
                        scenario_name="shop",
                    )
                    > 0
                )
                # Every per-scenario series has the five labels, with the scenario's values.
                for name in (
                    "monitord_scenario_up",
                    "monitord_scenario_failing",
                    "monitord_scenario_consecutive_failures",
                    "monitord_scenario_runs",
                    "monitord_scenario_duration_seconds",
                    "monitord_scenario_last_run_timestamp_seconds",
                ):
                    samples = families[name].samples
                    assert samples, name
                    for sample in samples:
                        assert set(SCENARIO_LABELS) <= set(sample.labels), sample
                        assert sample.labels["region"] == "KOR"
                shop_runs = [
                    s
                    for s in families["monitord_scenario_runs"].samples
                    if s.labels["scenario_id"] == shop["scenarioId"]
                ]
                # Without avoidingValidationText a run is never suppressed: no such series.
                assert {s.labels["result"] for s in shop_runs} == {"success", "failure"}
                assert {s.labels["scenario_type"] for s in shop_runs} == {"API"}
                assert {s.labels["scenario_name"] for s in shop_runs} == {"shop"}
                assert {s.labels["app_key"] for s in shop_runs} == {shop["appKey"]}
                # BATCH scenarios are never probed: no up series until they run.
                assert not [
                    s
                    for s in families["monitord_scenario_up"].samples
                    if s.labels["scenario_name"] == "nightly"
                ]


async def test_metrics_in_openmetrics_when_asked(tmp_path: Path) -> None:
    async with web_target() as target:
        (tmp_path / "s").mkdir()
        (tmp_path / "s" / "shop.yaml").write_text(api_yaml("shop", target.url("/json")))
        async with running_app(tmp_path) as app:
            await app.run((await app.scenario("shop"))["scenarioId"])
            async with app.client.get(
                "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
            ) as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("application/openmetrics-text")
                text = await response.text()
            assert text.endswith("# EOF\n")
            families = {f.name: f for f in openmetrics_families(text)}  # type: ignore[no-untyped-call]
            runs = [
                s
                for s in families["monitord_scenario_runs"].samples
                if s.name == "monitord_scenario_runs_total" and s.labels["result"] == "success"
            ]
            assert [s.value for s in runs] == [1]
            assert families["monitord_config_last_reload_successful"].samples[0].value == 1

            async with app.client.get("/metrics") as response:
                assert response.headers["Content-Type"].startswith("text/plain")
                assert "# EOF" not in await response.text()


# --- /health -------------------------------------------------------------------------------


async def test_health_is_ok_while_the_heartbeat_is_fresh_and_503_when_stale(app: App) -> None:
    async with app.client.get("/health") as response:
        assert response.status == 200
        body = await response.json()
    assert body["status"] == "ok"
    assert body["scheduler"] == "running"

    app.clock.now += STUCK_AFTER_S + 1
    async with app.client.get("/health") as response:
        assert response.status == 503
        body = await response.json()
    assert body["status"] == "stuck"
    assert body["lastBeatAgeSeconds"] == STUCK_AFTER_S + 1

    app.heartbeat.beat(app.clock())
    await assert_still_serving(app)


async def test_health_is_503_once_the_scheduler_stopped(app: App) -> None:
    await assert_still_serving(app)
    await app.monitor.stop(1.0)
    async with app.client.get("/health") as response:
        assert response.status == 503
        body = await response.json()
    assert body["status"] == "stuck"
    assert body["scheduler"] == "stopped"
    app.heartbeat.beat(app.clock())  # a fresh beat does not make a stopped scheduler healthy
    async with app.client.get("/health") as response:
        assert response.status == 503


# --- malformed and hostile requests --------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/nope"),
        ("GET", "/api/v1"),
        ("GET", "/api/v1/scenarios/x/y"),
        ("POST", "/api/v1/scenarios/x/y/run"),
        ("GET", "/metrics/extra"),
        ("POST", "/-/reload/now"),
    ],
)
async def test_unknown_paths_are_404_json(app: App, method: str, path: str) -> None:
    async with app.client.request(method, path, headers=ADMIN) as response:
        await assert_json_error(response, 404)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/metrics", {"GET"}),
        ("POST", "/metrics", {"GET"}),
        ("PUT", "/health", {"GET"}),
        ("GET", "/-/reload", {"POST"}),
        ("PUT", "/-/reload", {"POST"}),
        ("DELETE", "/api/v1/scenarios", {"GET"}),
        ("POST", "/api/v1/scenarios/x", {"GET"}),
        ("GET", "/api/v1/scenarios/x/run", {"POST"}),
    ],
)
async def test_wrong_methods_are_405_json_with_allow(
    app: App, method: str, path: str, allowed: set[str]
) -> None:
    async with app.client.request(method, path, headers=ADMIN) as response:
        await assert_json_error(response, 405)
        allow = {m.strip() for m in response.headers["Allow"].split(",")}
    assert allowed <= allow
    assert method not in allow


@pytest.mark.parametrize("path", ["/-/reload", "/api/v1/scenarios/{sid}/run"])
@pytest.mark.parametrize("with_key", [True, False], ids=["key", "no key"])
async def test_declared_bodies_over_the_cap_are_413_json(
    tmp_path: Path, path: str, with_key: bool
) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "b.yaml").write_text(batch_yaml("nightly"))
    async with running_app(tmp_path) as app:
        sid = (await app.scenario("nightly"))["scenarioId"]
        key = f"TOAST_PRODUCT_APPKEY: {ADMIN_KEY}\r\n" if with_key else ""
        head = (
            f"POST {path.format(sid=sid)} HTTP/1.1\r\nHost: x\r\n{key}"
            f"Content-Type: application/octet-stream\r\n"
            f"Content-Length: {MAX_BODY_BYTES + 1}\r\nConnection: close\r\n\r\n"
        ).encode()
        # Only the head is sent: the answer must not wait for the body.
        answer = await raw_exchange(app.address, head)
        assert answer.status == 413
        assert answer.headers["content-type"].startswith("application/json")
        check_json_error(413, answer.body)
        # A body exactly at the cap passes the size check (and then meets the key check).
        body = b"x" * MAX_BODY_BYTES
        async with app.client.post(
            path.format(sid=sid), data=body, headers=ADMIN if with_key else {}
        ) as response:
            if with_key:
                assert response.status in (200, 409, 422)
            else:
                await assert_json_error(response, 401)
        await assert_still_serving(app)


@pytest.mark.parametrize(("method", "path"), [("POST", "/nope"), ("PUT", "/health")])
async def test_unrouted_requests_get_the_body_cap_and_json_errors_too(
    app: App, method: str, path: str
) -> None:
    """Requests no route takes go through the same error answers: a declared body over
    the cap is 413 before the path's 404 or the method's 405."""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {MAX_BODY_BYTES + 1}\r\nConnection: close\r\n\r\n"
    ).encode()
    answer = await raw_exchange(app.address, head)
    assert answer.status == 413
    check_json_error(413, answer.body)
    async with app.client.request(method, path, data=b"{}") as response:
        await assert_json_error(response, 404 if path == "/nope" else 405)
    await assert_still_serving(app)


async def test_a_chunked_2_mib_body_on_reload_is_not_a_server_error(app: App) -> None:
    app.write("one.yaml", batch_yaml("one"))

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(32):
            yield b"z" * (64 * 1024)

    async with app.client.post("/-/reload", data=chunks(), headers=ADMIN) as response:
        assert response.status < 500, await response.text()
        if response.status >= 400:
            await assert_json_error(response, response.status)
    await assert_still_serving(app)
    assert [s["scenarioName"] for s in (await app.scenarios())["scenarios"]] == ["one"]


@pytest.mark.parametrize(
    "scenario_id",
    [
        pytest.param("..%2F..%2Fetc", id="encoded traversal"),
        pytest.param("..%2F..%2F..%2Fetc%2Fpasswd", id="encoded traversal deep"),
        pytest.param("%2e%2e", id="encoded dots"),
        pytest.param("%00", id="nul"),
        pytest.param("%ff%fe", id="invalid utf-8"),
        pytest.param("%E2%98%83%F0%9F%92%A9", id="unicode"),
        pytest.param("caf%C3%A9", id="accent"),
        pytest.param("%25%25%25", id="percent"),
        pytest.param("a%0d%0aX-Injected:%201", id="crlf"),
        pytest.param("'%3B%20DROP%20TABLE%20scenario_state%3B--", id="sql"),
        pytest.param("x" * 2000, id="2 KB"),
        pytest.param("x" * 10_000, id="10 KB"),
    ],
)
async def test_junk_scenario_ids_are_4xx_never_5xx(app: App, scenario_id: str) -> None:
    for method, path, headers in [
        ("GET", f"/api/v1/scenarios/{scenario_id}", {}),
        ("POST", f"/api/v1/scenarios/{scenario_id}/run", ADMIN),
        ("POST", f"/api/v1/scenarios/{scenario_id}/run", {}),
    ]:
        request = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        for name, value in headers.items():
            request += f"{name}: {value}\r\n"
        answer = await raw_exchange(app.address, (request + "\r\n").encode())
        assert answer.status is not None
        assert 400 <= answer.status < 500, (method, path, answer)
        if answer.headers.get("content-type", "").startswith("application/json"):
            check_json_error(answer.status, answer.body)
        else:  # only the HTTP parser itself may answer without JSON (a line too long)
            assert len(path) > 8000, (method, path, answer)
        assert "x-injected" not in answer.headers
    await assert_still_serving(app)


async def test_a_100_kb_header_is_4xx_and_the_server_keeps_serving(app: App) -> None:
    request = (
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: "
        + b"a" * (100 * 1024)
        + b"\r\nConnection: close\r\n\r\n"
    )
    answer = await raw_exchange(app.address, request)
    assert answer.status is not None
    assert 400 <= answer.status < 500
    await assert_still_serving(app)


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(b"\x00\xff garbage\r\n\r\n", id="binary"),
        pytest.param(b"GET\r\n\r\n", id="no target"),
        pytest.param(b"GET /health HTTP/9.9\r\n\r\n", id="bad version"),
        pytest.param(b"GET /health HTTP/1.1\r\nBad Header\r\n\r\n", id="bad header"),
        pytest.param(
            b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", id="negative"
        ),
        pytest.param(
            b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n",
            id="bad length",
        ),
        pytest.param(
            b"POST /-/reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            id="bad chunk",
        ),
    ],
)
async def test_garbage_on_the_wire_is_4xx_or_closed_and_the_server_keeps_serving(
    app: App, garbage: bytes
) -> None:
    answer = await raw_exchange(app.address, garbage)
    if answer.status is not None:
        assert 400 <= answer.status < 500, answer
    await assert_still_serving(app)


async def test_a_client_that_goes_away_mid_run_does_not_break_the_server(
    tmp_path: Path,
) -> None:
    async with switch_target(hold=True) as target:
        (tmp_path / "s").mkdir()
        (tmp_path / "s" / "slow.yaml").write_text(api_yaml("slow", target.url))
        async with running_app(tmp_path) as app:
            sid = (await app.scenario("slow"))["scenarioId"]
            request = (
                f"POST /api/v1/scenarios/{sid}/run HTTP/1.1\r\nHost: x\r\n"
                f"TOAST_PRODUCT_APPKEY: {ADMIN_KEY}\r\nContent-Length: 0\r\n\r\n"
            ).encode()
            _, writer = await asyncio.open_connection(*app.address)
            try:
                writer.write(request)
                await writer.drain()
                async with asyncio.timeout(DEADLINE_S):
                    while target.arrived == 0:
                        await asyncio.sleep(0.01)
            finally:
                writer.close()
                await writer.wait_closed()
            target.release.set()
            await assert_still_serving(app)
            # The server still answers runs, and the scenario is not stuck "in progress".
            async with asyncio.timeout(DEADLINE_S):
                while True:
                    async with app.client.post(
                        f"/api/v1/scenarios/{sid}/run", headers=ADMIN
                    ) as response:
                        if response.status == 200:
                            break
                        await assert_json_error(response, 409)
                    await asyncio.sleep(0.02)


# --- the admin key stays secret ------------------------------------------------------------


async def test_the_admin_key_never_shows_in_responses_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    async def exchange(running: App, method: str, path: str, **kwargs: Any) -> int:
        async with running.client.request(method, path, **kwargs) as response:
            seen.append(await response.text())
            seen.extend(f"{k}: {v}" for k, v in response.headers.items())
            status: int = response.status
        return status

    async with web_target() as target:
        with refusing_tcp_port() as refused:
            (tmp_path / "s").mkdir()
            (tmp_path / "s" / "shop.yaml").write_text(api_yaml("shop", target.url("/json")))
            (tmp_path / "s" / "gw.yaml").write_text(tcp_yaml("gateway", refused.port))
            async with running_app(tmp_path) as app:
                shop = (await app.scenario("shop"))["scenarioId"]
                gateway = (await app.scenario("gateway"))["scenarioId"]
                near_misses = [
                    {"TOAST_PRODUCT_APPKEY": ADMIN_KEY + "x"},
                    {"TOAST_PRODUCT_APPKEY": ADMIN_KEY.upper()},
                    {"Authorization": f"Basic {ADMIN_KEY}"},
                    {"Authorization": f"Bearer {ADMIN_KEY[:-1]}"},
                ]
                for headers in near_misses:
                    assert (
                        await exchange(
                            app, "POST", f"/api/v1/scenarios/{shop}/run", headers=headers
                        )
                        == 401
                    )
                    assert await exchange(app, "POST", "/-/reload", headers=headers) == 401
                assert (
                    await exchange(app, "POST", f"/api/v1/scenarios/{shop}/run", headers=ADMIN)
                    == 200
                )
                assert (
                    await exchange(app, "POST", f"/api/v1/scenarios/{gateway}/run", headers=BEARER)
                    == 200
                )
                assert (
                    await exchange(app, "POST", "/api/v1/scenarios/nope/run", headers=ADMIN) == 404
                )
                assert await exchange(app, "POST", "/-/reload", headers=ADMIN) == 200
                app.write("gw.yaml", "scenarioName: [\n")
                assert await exchange(app, "POST", "/-/reload", headers=BEARER) == 422
                assert await exchange(app, "GET", "/-/reload", headers=ADMIN) == 405
                assert await exchange(app, "GET", "/api/v1/scenarios", headers=ADMIN) == 200
                assert await exchange(app, "GET", f"/api/v1/scenarios/{shop}", headers=ADMIN) == 200
                assert await exchange(app, "GET", "/metrics", headers=ADMIN) == 200
                assert await exchange(app, "GET", "/health", headers=ADMIN) == 200
                assert await exchange(app, "GET", "/nope", headers=ADMIN) == 404

    assert len(seen) > 20
    for text in seen:
        assert ADMIN_KEY not in text
        assert ADMIN_KEY.upper() not in text
    # The exercise did log (runs, reloads, load errors), and none of it holds the key.
    assert any("scenarios loaded" in r.getMessage() for r in caplog.records)
    assert any(r.levelno >= logging.ERROR for r in caplog.records)  # the broken file
    for record in caplog.records:
        text = record.getMessage() + repr(record.__dict__)
        assert ADMIN_KEY not in text, record
        assert ADMIN_KEY.upper() not in text, record
    assert ADMIN_KEY not in caplog.text


# --- a manual run and the schedule ---------------------------------------------------------


async def test_a_scheduled_run_due_during_a_manual_run_is_skipped_not_run_twice(
    tmp_path: Path,
) -> None:
    """Never two runs of one scenario at once: the schedule's slot is skipped, counted."""
    async with switch_target() as target:
        (tmp_path / "s").mkdir()
        (tmp_path / "s" / "tick.yaml").write_text(
            api_yaml("tick", target.url).replace(NEVER, "monitoringInterval: 3")
        )
        async with running_app(tmp_path) as app:
            sid = (await app.scenario("tick"))["scenarioId"]
            # Start the manual run well before the next scheduled slot, once every
            # scheduled run that reached the target has been recorded (none in flight).
            async with asyncio.timeout(DEADLINE_S):
                while True:
                    due = datetime.fromisoformat((await app.scenario("tick"))["nextRunAt"])
                    recorded = _runs(await app.metrics(), "tick", "success")
                    if (due - datetime.now(UTC)).total_seconds() > 1.5 and recorded == (
                        target.arrived
                    ):
                        break
                    await asyncio.sleep(0.02)
            target.hold = True
            before = target.arrived
            manual = asyncio.ensure_future(app.run(sid))
            try:
                async with asyncio.timeout(DEADLINE_S):
                    while target.arrived == before:
                        assert not manual.done(), manual
                        await asyncio.sleep(0.01)
                # Hold the manual run across the slot: the schedule either skips it
                # (counted) or, wrongly, starts a second run of the scenario.
                async with asyncio.timeout(DEADLINE_S):
                    while True:
                        families = await app.metrics()
                        skipped = _value(families, "monitord_schedule_skipped_total")
                        if skipped >= 1 or target.max_in_flight >= 2:
                            break
                        await asyncio.sleep(0.02)
                assert target.max_in_flight == 1
                target.release.set()
                async with asyncio.timeout(DEADLINE_S):
                    result = await manual
            finally:
                target.release.set()
                if not manual.done():
                    manual.cancel()
                await asyncio.gather(manual, return_exceptions=True)
            assert result["result"] == "success"
            assert skipped >= 1


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b"TOAST_PRODUCT_APPKEY: \xff\xfe", id="latin-1 key"),
        pytest.param(b"TOAST_PRODUCT_APPKEY: s3cret-key\xc3\xa9", id="utf-8 suffix"),
        pytest.param(b"Authorization: Bearer \xff\xfe", id="latin-1 bearer"),
        pytest.param(b"Authorization: Bearer s3cret-key\xff", id="bearer bad byte"),
        pytest.param(b"Authorization: \xe2\x98\x83 s3cret-key", id="unicode scheme"),
    ],
)
async def test_non_ascii_admin_headers_are_401_json(app: App, header: bytes) -> None:
    app.write("one.yaml", batch_yaml("one"))
    request = b"POST /-/reload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + header + b"\r\n\r\n"
    answer = await raw_exchange(app.address, request)
    assert answer.status == 401, answer
    check_json_error(401, answer.body)
    assert (await app.scenarios())["scenarios"] == []  # the reload did not happen


@pytest.mark.parametrize("encoding", ["gzip", "identity", None])
async def test_metrics_are_gzipped_only_when_asked(tmp_path: Path, encoding: str | None) -> None:
    """Prometheus asks for gzip; a client that does not gets the plain text."""
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "b.yaml").write_text(batch_yaml("nightly"))
    async with running_app(tmp_path) as app:
        headers = {"Accept-Encoding": encoding} if encoding else {"Accept-Encoding": ""}
        async with app.client.get("/metrics", headers=headers, auto_decompress=False) as response:
            assert response.status == 200
            raw = await response.read()
            sent_encoding = response.headers.get("Content-Encoding")
    if encoding == "gzip":
        assert sent_encoding == "gzip"
        text = gzip.decompress(raw).decode()
    else:
        assert sent_encoding is None
        text = raw.decode()
    assert 'monitord_scenarios{scenario_type="BATCH"} 1.0' in text
