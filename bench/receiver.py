"""Item 4 of the benchmarks: the batch receiver under load.

``POST /v1.0/monitoring/batchmon/appkey/default/scenarios/{id}`` with a 200-byte JSON
payload that passes both checks of its BATCH scenario, at ``connections`` keep-alive
connections for a fixed window, the load spread round-robin over every BATCH scenario
(so each request updates a different scenario's row, as many batch jobs would). The
ceiling, in the same run, is a bare aiohttp server whose one handler only decodes the
JSON body and answers a small JSON document, driven the same way. A second server, the
least durable receiver, does only what any receiver of SPEC §7 must: two checks, the
verdict committed to SQLite before the answer, the seed's answer echoing the payload.

The driver is ``wrk`` (Debian) with a Lua script when installed, else an aiohttp client
in a process of its own. All servers are single processes on a 2-core machine where the
driver takes the other core, so requests per CPU-second of each server are reported too.

Every answer must be 200 with ``resultCode`` 0, else the measurement failed. After the
window, the payloads the store recorded (``monitord_batch_payloads_total``) must match
the answers: each verdict is committed before its answer, so the count may only exceed
the 200s by the requests still in flight when the driver stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import contextlib
import json
import math
import os
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.common import (
    CLOCK_TICKS,
    Daemon,
    Row,
    batch_scenario,
    cpu_seconds,
    daemon,
    metric_samples,
    python_process,
    stop_process,
    table,
)

APP_KEY = "default"
PATH = "/v1.0/monitoring/batchmon/appkey/{app_key}/scenarios/{scenario_id}"
# What a 200 must hold: the envelope's success code (the bare server answers it too).
EXPECT = re.compile(rb'"resultCode":\s*0[,}]')
EXPECT_LUA = '"resultCode":%s*0[,}]'
BARE_ANSWER = b'{"header": {"isSuccessful": true, "resultCode": 0, "resultMessage": "SUCCESS"}}'
PAYLOAD_BYTES = 200
RECEIVER_TARGET = 0.6  # of the bare handler's requests/s
RUN_TIMEOUT_EXTRA_S = 30


class MeasurementError(Exception):
    """The driver or the ceiling failed: the figure is missing, monitord is not at fault."""


@dataclass(frozen=True)
class Size:
    scenarios: int
    connections: int
    window_s: int  # wrk takes whole seconds
    warmup_s: int
    rounds: int  # bare and monitord alternate; the best round of each counts
    judged: bool  # big enough to judge the targets


FULL = Size(scenarios=100, connections=100, window_s=15, warmup_s=2, rounds=2, judged=True)
QUICK = Size(scenarios=100, connections=100, window_s=6, warmup_s=1, rounds=1, judged=True)
TINY = Size(scenarios=10, connections=4, window_s=1, warmup_s=1, rounds=1, judged=False)


def payload() -> bytes:
    """A 200-byte JSON document passing both checks of ``batch_scenario``."""
    head = '{"status": "done", "failed": 0, "job": "nightly-export", "rows": 182734, '
    head += '"startedAt": "2026-01-01T02:00:00Z", "finishedAt": "2026-01-01T02:31:00Z", '
    tail = '"note": "'
    pad = PAYLOAD_BYTES - len(head) - len(tail) - 2
    body = (head + tail + "x" * pad + '"}').encode()
    assert len(body) == PAYLOAD_BYTES
    return body


@dataclass
class Load:
    """What one driver run saw."""

    requests: int  # answers received
    good: int  # 200 with resultCode 0
    non2xx: int
    bad_code: int  # 2xx without resultCode 0
    socket_errors: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    driver_cpu_s: float
    server_cpu_s: float = 0.0

    @classmethod
    def of(cls, got: dict[str, Any], driver_cpu_s: float) -> Load:
        """A driver's JSON summary (either driver writes the same keys)."""
        return cls(
            requests=got["requests"],
            good=got["good"],
            non2xx=got["non2xx"],
            bad_code=got["bad_code"],
            socket_errors=got["socket_errors"],
            duration_s=got["duration_us"] / 1e6,
            p50_ms=got["p50_us"] / 1000,
            p99_ms=got["p99_us"] / 1000,
            driver_cpu_s=driver_cpu_s,
        )

    @property
    def rate(self) -> float:
        return self.good / self.duration_s if self.duration_s else 0.0

    @property
    def per_cpu_s(self) -> float:
        return self.good / self.server_cpu_s if self.server_cpu_s else 0.0

    def problem(self) -> str | None:
        """Why this run does not count as a measurement, or None."""
        if self.non2xx or self.bad_code:
            return f"{self.non2xx} non-2xx and {self.bad_code} without resultCode 0"
        if self.good == 0:
            return "no answers"
        return None


# --- drivers -------------------------------------------------------------------------


def _lua_script(paths: list[str], body: bytes) -> str:
    """wrk script: cycles through the paths, checks each answer, and prints the totals
    of every thread and the latency percentiles as one JSON line."""
    lua_paths = ", ".join(json.dumps(p) for p in paths)
    return f"""
local paths = {{{lua_paths}}}
local body = {json.dumps(body.decode())}
local expect = {json.dumps(EXPECT_LUA)}
local threads = {{}}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  reqs = {{}}
  for i, p in ipairs(paths) do
    reqs[i] = wrk.format("POST", p, {{["Content-Type"] = "application/json"}}, body)
  end
  n = 0
  good = 0
  non2xx = 0
  badcode = 0
end

function request()
  n = n + 1
  return reqs[(n % #reqs) + 1]
end

function response(status, headers, answer)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  elseif string.find(answer, expect) then
    good = good + 1
  else
    badcode = badcode + 1
  end
end

function done(summary, latency, requests)
  local g, x, b = 0, 0, 0
  for _, t in ipairs(threads) do
    g = g + t:get("good")
    x = x + t:get("non2xx")
    b = b + t:get("badcode")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {{"requests": %d, "good": %d, "non2xx": %d, "bad_code": %d, ' ..
    '"socket_errors": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d}}\\n',
    summary.requests, g, x, b, e.connect + e.read + e.write + e.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99)))
end
"""


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _wrk(base: str, paths: list[str], body: bytes, connections: int, seconds: int) -> Load:
    """One wrk run (one thread: the servers are single processes and need the other
    core more than wrk needs two)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_lua_script(paths, body))
    try:
        before = _children_cpu_s()
        try:
            done = subprocess.run(  # noqa: S603
                [
                    str(shutil.which("wrk")),
                    "-t1",
                    f"-c{connections}",
                    f"-d{seconds}s",
                    "--timeout",
                    "10s",
                    "--latency",
                    "-s",
                    script.name,
                    base,
                ],
                capture_output=True,
                text=True,
                timeout=seconds + RUN_TIMEOUT_EXTRA_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise MeasurementError(f"wrk ran past {exc.timeout} s") from exc
        driver_cpu = _children_cpu_s() - before
    finally:
        Path(script.name).unlink(missing_ok=True)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCHJSON ")), None)
    if done.returncode != 0 or line is None:
        raise MeasurementError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    got = json.loads(line.removeprefix("BENCHJSON "))
    return Load.of(got, driver_cpu)


async def _drive(urls: list[str], body: bytes, connections: int, seconds: float) -> dict[str, Any]:
    """The aiohttp load client: ``connections`` workers on keep-alive connections, each
    posting until the window ends; every request's latency is kept for the percentiles."""
    import aiohttp

    latencies: list[float] = []
    counts = collections.Counter[str]()
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=10)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=headers
    ) as session:
        end = time.monotonic() + seconds

        async def worker(first: int) -> None:
            n = first
            while time.monotonic() < end:
                url = urls[n % len(urls)]
                n += connections
                start = time.perf_counter()
                try:
                    async with session.post(url, data=body) as answer:
                        text = await answer.read()
                        status = answer.status
                except (aiohttp.ClientError, TimeoutError):
                    counts["socket_errors"] += 1
                    continue
                latencies.append(time.perf_counter() - start)
                counts["requests"] += 1
                if not 200 <= status <= 299:
                    counts["non2xx"] += 1
                elif EXPECT.search(text):
                    counts["good"] += 1
                else:
                    counts["bad_code"] += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        **{k: counts[k] for k in ("requests", "good", "non2xx", "bad_code", "socket_errors")},
        "duration_us": elapsed * 1e6,
        "p50_us": _percentile(latencies, 50) * 1e6,
        "p99_us": _percentile(latencies, 99) * 1e6,
    }


def _percentile(ordered: list[float], pct: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1)]


def client_main() -> None:
    """Entry of the aiohttp load client process: argv[1] is its JSON job."""
    job = json.loads(sys.argv[1])
    result = asyncio.run(
        _drive(job["urls"], job["body"].encode(), job["connections"], job["seconds"])
    )
    print(json.dumps(result), flush=True)


def _aiohttp(base: str, paths: list[str], body: bytes, connections: int, seconds: int) -> Load:
    job = json.dumps(
        {
            "urls": [base + p for p in paths],
            "body": body.decode(),
            "connections": connections,
            "seconds": seconds,
        }
    )
    before = _children_cpu_s()
    process = python_process("from bench.receiver import client_main; client_main()", job)
    try:
        out, _ = process.communicate(timeout=seconds + RUN_TIMEOUT_EXTRA_S)
    except subprocess.TimeoutExpired as exc:
        raise MeasurementError(f"the aiohttp load client ran past {exc.timeout} s") from exc
    finally:
        stop_process(process)
    driver_cpu = _children_cpu_s() - before
    if process.returncode != 0 or not out.strip():
        raise MeasurementError(f"aiohttp load client failed ({process.returncode})")
    got = json.loads(out.strip().splitlines()[-1])
    return Load.of(got, driver_cpu)


def _driver_name() -> str:
    return "wrk" if shutil.which("wrk") else "aiohttp"


def _load(
    driver: str, base: str, paths: list[str], connections: int, seconds: int, pid: int
) -> Load:
    """One run of the driver against ``base``, with the server's CPU over it."""
    run = _wrk if driver == "wrk" else _aiohttp
    before = cpu_seconds(pid)
    load = run(base, paths, payload(), connections, seconds)
    load.server_cpu_s = cpu_seconds(pid) - before
    return load


# --- the ceilings --------------------------------------------------------------------
# Two servers beside monitord, each a single process driven the same way:
# * bare: decodes the JSON body and answers a fixed envelope (the target's ceiling);
# * least durable receiver: the least any receiver of SPEC §7 must do. It decodes the
#   payload, runs the scenario's two checks, commits payload and verdict to SQLite (WAL,
#   synchronous=NORMAL, one transaction per loop pass, the answer waits for it) and
#   answers the seed's envelope echoing the payload. Between the two, it shows how much
#   of monitord's distance to the bare handler is the work itself.

LEAST_SERVICE_ID = "00000000-0000-5000-8000-000000000000"


class _LeastReceiver:
    """The least durable receiver's store: payload rows written per loop pass."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.execute(
            "CREATE TABLE payload (scenario_id TEXT PRIMARY KEY, request_id TEXT,"
            " received_at TEXT, client TEXT, body BLOB, verdict TEXT)"
        )
        self.rows: dict[str, tuple[Any, ...]] = {}
        self.group: asyncio.Future[None] | None = None

    def written(self, row: tuple[Any, ...]) -> asyncio.Future[None]:
        """Queue ``row`` (the latest per scenario); resolves once its group is committed."""
        self.rows[row[0]] = row
        if self.group is None:
            loop = asyncio.get_running_loop()
            self.group = loop.create_future()
            loop.call_soon(self._flush)
        return self.group

    def _flush(self) -> None:
        group, rows, self.group, self.rows = self.group, list(self.rows.values()), None, {}
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany("INSERT OR REPLACE INTO payload VALUES (?, ?, ?, ?, ?, ?)", rows)
        self.db.execute("COMMIT")
        assert group is not None
        group.set_result(None)

    async def answer(self, request: web.Request, raw: bytes) -> web.Response:
        document = json.loads(raw)
        passed = document.get("status") == "done" and document.get("failed") == 0
        status = "success" if passed else "failure"
        scenario_id = request.match_info["scenario_id"]
        received_at = datetime.now(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
        request_id = str(uuid.uuid4())
        verdict = json.dumps({"result": status, "reasons": []})
        row = (scenario_id, request_id, received_at, request.remote, raw, verdict)
        # Shielded: a cancelled request must not cancel its whole group's future.
        await asyncio.shield(self.written(row))
        element: dict[str, Any] = {
            "pk": {"serviceId": LEAST_SERVICE_ID, "requestId": request_id},
            "scenarioId": scenario_id,
            "ipaddr": request.remote,
            "requestTime": received_at,
            "requestData": {"body": raw.decode()},
            "serviceCode": 0,
            "status": status,
            "reasons": [],
        }
        header = {"isSuccessful": True, "resultCode": 0, "resultMessage": "SUCCESS"}
        return web.json_response({"header": header, "body": element})


async def _ceiling_serve(kind: str) -> None:
    with tempfile.TemporaryDirectory(prefix="monitord-bench-least-") as folder:
        least = _LeastReceiver(Path(folder) / "state.sqlite3") if kind == "least" else None

        async def receive(request: web.Request) -> web.StreamResponse:
            raw = await request.read()
            if least is not None:
                return await least.answer(request, raw)
            json.loads(raw)
            return web.Response(body=BARE_ANSWER, content_type="application/json")

        app = web.Application()
        app.router.add_post(PATH, receive)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(json.dumps({"port": runner.addresses[0][1]}), flush=True)
        # Serve until the parent closes our stdin (or terminates us).
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await runner.cleanup()
        if least is not None:
            least.db.close()


def ceiling_main(kind: str) -> None:
    asyncio.run(_ceiling_serve(kind))


class _Ceiling:
    """A ceiling's server (``bare`` or ``least``) in a process of its own."""

    def __init__(self, kind: str, prefix: Sequence[str] = ()) -> None:
        self.kind = kind
        self.prefix = prefix

    def __enter__(self) -> _Ceiling:
        self.process = python_process(
            f"from bench.receiver import ceiling_main; ceiling_main({self.kind!r})",
            prefix=self.prefix,
            stdin=subprocess.PIPE,
            # valgrind's own messages would fill the terminal: a prefix runs quietly.
            stderr=subprocess.DEVNULL if self.prefix else None,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            stop_process(self.process)
            raise MeasurementError(f"the {self.kind} ceiling server did not start")
        self.url = f"http://127.0.0.1:{json.loads(line)['port']}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        stop_process(self.process)


# --- monitord ------------------------------------------------------------------------


def _batch_ids(running: Daemon) -> list[str]:
    listing = json.loads(running.get("/api/v1/scenarios"))
    return [s["scenarioId"] for s in listing["scenarios"] if s["scenarioType"] == "BATCH"]


def _payload_counts(running: Daemon) -> tuple[float, float]:
    """Payloads judged so far: (all, failures)."""
    samples = metric_samples(running.metrics(), "monitord_batch_payloads_total")
    total = sum(value for _, value in samples)
    failed = sum(value for labels, value in samples if labels.get("result") == "failure")
    return total, failed


def _settled_counts(running: Daemon, timeout_s: float = 10) -> tuple[float, float]:
    """The payload counts once the requests still in flight have been answered."""
    end = time.monotonic() + timeout_s
    last = _payload_counts(running)
    while time.monotonic() < end:
        time.sleep(0.2)
        now = _payload_counts(running)
        if now == last:
            return now
        last = now
    return last


def _stored_scenarios(running: Daemon, ids: list[str]) -> int:
    """How many of ``ids`` have a last payload in the SQLite file itself (read-only,
    beside the running daemon: WAL lets a reader in)."""
    path = running.workdir / "state.sqlite3"
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        rows = connection.execute("SELECT scenario_id FROM batch_payload").fetchall()
    finally:
        connection.close()
    return len({r[0] for r in rows} & set(ids))


@dataclass
class _Measured:
    monitord: Load | None
    bare: Load | None
    least: Load | None
    answered: int  # 200s with resultCode 0 over every monitord window
    recorded: float  # payloads the store counted over those windows
    failed_payloads: float
    stored: int  # scenarios with their last payload in the file
    scenarios: int
    driver: str
    notes: list[str]


def _best(loads: list[Load]) -> Load | None:
    good = [x for x in loads if x.problem() is None]
    return max(good, key=lambda x: x.rate) if good else None


def measure(size: Size, driver: str) -> _Measured:
    items = [batch_scenario(f"bench-batch-{n:05d}") for n in range(size.scenarios)]
    notes: list[str] = []
    monitord_loads: list[Load] = []
    bare_loads: list[Load] = []
    least_loads: list[Load] = []
    recorded = failed = 0.0
    with daemon(items) as running, _Ceiling("bare") as bare, _Ceiling("least") as least:
        ids = _batch_ids(running)
        if len(ids) != size.scenarios:
            raise RuntimeError(f"monitord loaded {len(ids)} of {size.scenarios} BATCH scenarios")
        paths = [PATH.format(app_key=APP_KEY, scenario_id=i) for i in ids]
        for _ in range(size.rounds):
            for name, url, pid, loads in (
                ("bare", bare.url, bare.process.pid, bare_loads),
                ("least durable receiver", least.url, least.process.pid, least_loads),
                ("monitord", running.url, running.pid, monitord_loads),
            ):
                warm = _load(driver, url, paths, size.connections, size.warmup_s, pid)
                if warm.problem():
                    notes.append(f"{name} warm-up: {warm.problem()}")
                before = _settled_counts(running) if name == "monitord" else (0.0, 0.0)
                load = _load(driver, url, paths, size.connections, size.window_s, pid)
                loads.append(load)
                if load.problem():
                    notes.append(f"{name}: {load.problem()}")
                if load.socket_errors:
                    notes.append(f"{name}: {load.socket_errors} socket errors")
                if name == "monitord":
                    if running.process is None or running.process.poll() is not None:
                        raise RuntimeError(f"monitord exited under load: {running.tail()}")
                    after = _settled_counts(running)
                    recorded += after[0] - before[0]
                    failed += after[1] - before[1]
        try:
            stored = _stored_scenarios(running, ids)
        except sqlite3.Error as exc:
            stored = -1
            notes.append(f"reading the state file failed: {exc}")
    return _Measured(
        monitord=_best(monitord_loads),
        bare=_best(bare_loads),
        least=_best(least_loads),
        answered=sum(x.good for x in monitord_loads),
        recorded=recorded,
        failed_payloads=failed,
        stored=stored,
        scenarios=size.scenarios,
        driver=driver,
        notes=notes,
    )


# --- rows ----------------------------------------------------------------------------


def rows(size: Size, m: _Measured) -> list[Row]:
    """The table lines of one measurement."""
    where = f"{size.connections} conns, {m.scenarios} scenarios round-robin, {m.driver}"
    how = f"{PAYLOAD_BYTES} B payload, {size.window_s} s windows"
    if size.rounds > 1:
        how += f", best of {size.rounds} alternated"
    note = "; ".join([how, *m.notes])
    judge = size.judged
    mon, bare, least = m.monitord, m.bare, m.least
    out: list[Row] = []
    if mon is None or bare is None:
        missing = "monitord" if mon is None else "bare handler"
        fail = f"failed measurement ({missing}): {note}"
        out.append(Row(f"receiver requests/s ({where})", None, "req/s", note=fail))
        out.append(Row("receiver p99 latency", None, "ms", note=fail))
    else:
        out.append(
            Row(
                f"receiver requests/s ({where})",
                mon.rate,
                "req/s",
                ceiling=bare.rate,
                ceiling_name="bare aiohttp handler",
                target=">= 60 % of bare",
                ok=mon.rate >= RECEIVER_TARGET * bare.rate if judge else None,
                note=note,
            )
        )
        out.append(
            Row(
                "receiver p99 latency",
                mon.p99_ms,
                "ms",
                ceiling=bare.p99_ms,
                ceiling_name="bare",
                target="<= 200 % of bare",
                ok=mon.p99_ms <= 2 * bare.p99_ms if judge else None,
                note=f"p50 {mon.p50_ms:.1f} ms vs {bare.p50_ms:.1f} ms",
            )
        )
        out.append(
            Row(
                "receiver requests per server CPU-second",
                mon.per_cpu_s,
                "req/CPU-s",
                ceiling=bare.per_cpu_s,
                ceiling_name="bare",
                note=(
                    f"server CPU {mon.server_cpu_s / mon.duration_s:.0%} vs"
                    f" {bare.server_cpu_s / bare.duration_s:.0%} of a core;"
                    f" driver {mon.driver_cpu_s / mon.duration_s:.0%}"
                    f" vs {bare.driver_cpu_s / bare.duration_s:.0%}"
                ),
            )
        )
    if least is None or bare is None:
        out.append(Row("least durable receiver requests/s", None, "req/s", note="failed"))
    else:
        of_least = f"; monitord does {mon.rate / least.rate:.0%} of its rate" if mon else ""
        out.append(
            Row(
                "least durable receiver requests/s (checks, SQLite commit, seed answer)",
                least.rate,
                "req/s",
                ceiling=bare.rate,
                ceiling_name="bare aiohttp handler",
                note=f"p99 {least.p99_ms:.1f} ms, {least.per_cpu_s:,.0f} req/CPU-s{of_least}",
            )
        )
    # Each verdict is committed before its answer: the store's count may pass the 200s
    # only by what was in flight when a window ended.
    in_flight = size.connections * size.rounds
    extra = m.recorded - m.answered
    recorded_ok = 0 <= extra <= in_flight and m.failed_payloads == 0 and m.stored == m.scenarios
    out.append(
        Row(
            "receiver payloads recorded in the store",
            m.recorded,
            "payloads",
            ceiling=m.answered or None,
            ceiling_name="200 answers",
            target=f"= 200s (+ <= {in_flight} in flight)",
            ok=recorded_ok,
            note=(
                f"{extra:+.0f} vs answers, {m.failed_payloads:.0f} judged failing,"
                f" {m.stored}/{m.scenarios} scenarios' last payload in SQLite"
            ),
        )
    )
    return out


def run(size: Size) -> list[Row]:
    return run_with(size, _driver_name())


def run_with(size: Size, driver: str) -> list[Row]:
    """The rows with a given driver (``wrk`` or ``aiohttp``). A driver or ceiling that
    fails is a row without a value; a monitord failure raises."""
    try:
        m = measure(size, driver)
    except MeasurementError as exc:
        return [Row("receiver requests/s", None, "req/s", note=f"{driver}: {exc}")]
    return [*rows(size, m), payload_cost_row(size, m.bare)]


# The receiver's work without HTTP (bench.overhead): payloads judged and recorded.
PAYLOAD_COST_CODE = "from bench.overhead import main; main()"
PAYLOAD_COST = "monitord CPU per payload without HTTP (judge, record, verdict on disk)"


def payload_cost_row(size: Size, bare: Load | None) -> Row:
    """What a payload costs monitord before any HTTP, beside what the receiver target
    leaves for all of monitord's work beyond the bare handler's."""
    count = size.scenarios * 200
    process = python_process(PAYLOAD_COST_CODE, "payloads", str(count))
    try:
        out, _ = process.communicate(timeout=120)
        report = json.loads(out.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, ValueError, IndexError) as exc:
        stop_process(process)
        return Row(PAYLOAD_COST, None, "µs/payload", note=f"measurement failed: {exc}")
    cost_us = report["cpu_s"] / report["payloads"] * 1e6
    note = f"{report['payloads']:,} payloads through Monitor.receive_payload, 100 at a time"
    if bare is not None and bare.per_cpu_s:
        bare_us = 1e6 / bare.per_cpu_s
        budget_us = bare_us / RECEIVER_TARGET - bare_us
        note += (
            f"; the bare handler takes {bare_us:.0f} µs a request, so 60 % of its rate leaves"
            f" {budget_us:.0f} µs a request for everything monitord adds to it"
        )
    return Row(PAYLOAD_COST, cost_us, "µs/payload", note=note)


# --- profile and command line ------------------------------------------------------


def profile(size: Size, seconds: int, driver: str, top: int = 25) -> str:
    """Where monitord's CPU goes under the receiver load: py-spy samples the daemon for
    ``seconds`` while the driver runs; the answer lists self and inclusive shares.

    The daemon is pinned to CPU 0 and the driver to CPU 1 for the profile: unpinned, the
    client woken by each answer preempts the daemon inside ``send``, and py-spy (which
    samples runnable threads) books that wait on ``_SelectorSocketTransport.write``."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        return "py-spy is not installed (pip install py-spy)"
    items = [batch_scenario(f"bench-batch-{n:05d}") for n in range(size.scenarios)]
    with daemon(items) as running, tempfile.TemporaryDirectory() as tmp:
        paths = [PATH.format(app_key=APP_KEY, scenario_id=i) for i in _batch_ids(running)]
        raw = Path(tmp) / "profile.txt"
        window = seconds + 2 * size.warmup_s + 2
        for task in Path(f"/proc/{running.pid}/task").iterdir():
            os.sched_setaffinity(int(task.name), {0})

        def drive() -> Load:
            os.sched_setaffinity(0, {1})  # this thread, and the driver it starts
            return _load(driver, running.url, paths, size.connections, window, running.pid)

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            loading = pool.submit(drive)
            time.sleep(size.warmup_s)
            before = _thread_cpu(running.pid)
            spy = subprocess.run(  # noqa: S603
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(running.pid),
                    "--duration",
                    str(seconds),
                    "--rate",
                    "250",
                    "--format",
                    "raw",
                    "--function",
                    "--nonblocking",
                    "-o",
                    str(raw),
                ],
                capture_output=True,
                text=True,
                timeout=seconds + RUN_TIMEOUT_EXTRA_S,
                check=False,
            )
            after = _thread_cpu(running.pid)
            load = loading.result(timeout=window + RUN_TIMEOUT_EXTRA_S)
        if spy.returncode != 0 or not raw.exists():
            return f"py-spy failed ({spy.returncode}): {spy.stderr.strip()[-300:]}"
        main = after.get(running.pid, 0.0) - before.get(running.pid, 0.0)
        others = sum(after.values()) - sum(before.values()) - main
        return _summarise(raw.read_text(), top) + (
            f"\n\nload during the profile: {load.rate:,.0f} req/s, p99 {load.p99_ms:.1f} ms,"
            f" server CPU {load.server_cpu_s / load.duration_s:.0%} of a core,"
            f" {load.per_cpu_s:,.0f} req/CPU-s\n"
            f"CPU while sampled: event-loop thread {main:.2f} s, other threads {others:.2f} s"
        )


def _thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of ``pid``."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            found[int(task.name)] = _task_cpu(pid, task.name)
    return found


def _task_cpu(pid: int, tid: str) -> float:
    fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _summarise(collapsed: str, top: int) -> str:
    """Self and inclusive shares per function from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [f.strip() for f in stack.split(";")]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return "no samples"
    out = [f"{total} samples (busy only)", "", "self share, function:"]
    out += [f"  {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    out += ["", "inclusive share, function:"]
    out += [f"  {n / total:6.1%}  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The batch receiver benchmark alone.")
    parser.add_argument("--size", choices=("full", "quick", "tiny"), default="quick")
    parser.add_argument("--driver", choices=("wrk", "aiohttp"), default=None)
    parser.add_argument("--profile", type=int, default=0, metavar="SECONDS")
    args = parser.parse_args(argv)
    size = {"full": FULL, "quick": QUICK, "tiny": TINY}[args.size]
    driver = args.driver or _driver_name()
    started = time.monotonic()
    if args.profile:
        print(profile(size, args.profile, driver))
    else:
        print(table(run_with(size, driver)))
    print(f"\n{args.size}, {driver}: {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
