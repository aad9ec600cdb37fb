"""Probe throughput (issue item 1): completed checks per second and checks per
CPU-second of the monitord process, for API, TCP and UDP scenarios, against the bare
Python loops (``bench.ceiling``) and blackbox_exporter (``bench.blackbox``), all in
the same run, one after the other, each in a process of its own.

The daemon is loaded with N scenarios on a 1 s interval, N chosen so that it is near
saturation (about 90 % of a core) while still keeping up with its schedule: an
efficiency figure taken at a light load would charge monitord the idle event loop's
fixed costs that the bare loops, running flat out, never pay.

Counting: ``monitord_scenario_runs_total`` summed over every scenario and result, from
a scrape at each edge of the window. monitord snapshots its counters as it takes the
request (and renders off the loop), so runs are counted between the two requests. The
daemon's CPU is read from /proc just after the opening scrape returns and just before
the closing one is sent, so the scrapes' own cost (rendering a few MB for a few
thousand scenarios) stays out of the window; checks per CPU-second is the rate over
the CPU utilisation, both per second of their own stretch.

Run as ``python -m bench.throughput [--quick|--tiny]`` for the table, or with
``--profile SECONDS [--kind API|TCP|UDP]`` for a py-spy profile of monitord near
saturation, summed per function.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bench import blackbox
from bench.ceiling import LoadRun, drive
from bench.common import (
    Daemon,
    Row,
    api_scenario,
    cpu_seconds,
    daemon,
    free_port,
    http_get,
    python_process,
    socket_scenario,
    stop_process,
    table,
)
from bench.targets import BODY, Targets, targets


@dataclass(frozen=True)
class Size:
    name: str
    min_scenarios: int  # bounds of N, the number of scenarios of one kind
    max_scenarios: int
    search_steps: int  # how many times N may be changed (a daemon restart each)
    warm_s: float  # after READY, before anything is measured
    probe_s: float  # the short window that judges N
    window_s: float  # the measured window
    load_warm_s: float  # bare loops and blackbox: warm-up and window
    load_window_s: float
    concurrency: int  # checks in flight in the bare loops and the blackbox load
    judged: bool  # False: too small to hold the targets against


FULL = Size("full", 100, 8000, 3, 2.0, 3.0, 20.0, 2.0, 10.0, 16, True)
QUICK = Size("quick", 100, 8000, 1, 0.6, 1.0, 3.0, 0.3, 1.5, 16, True)
TINY = Size("tiny", 30, 30, 0, 0.5, 0.0, 1.0, 0.2, 0.6, 8, False)

INTERVAL_S = 1
# Near saturation: at least this share of a core, and keeping up with the schedule.
BUSY_ENOUGH = 0.88
AIM = 0.95
TARGET_RATIO = 0.70
BUSY_TARGET = 0.90  # a target process above this share of a core may be the bottleneck

HTTP_RATE = "API checks completed per second"
HTTP_CPU = "API checks per CPU-second"
TCP_RATE = "TCP checks completed per second"
TCP_CPU = "TCP checks per CPU-second"
UDP_RATE = "UDP checks completed per second"
UDP_CPU = "UDP checks per CPU-second"
BB_HTTP = "blackbox HTTP probes per CPU-second"
BB_TCP = "blackbox TCP probes per CPU-second"

CEILING_CODE = "from bench.ceiling import main; main()"
BLACKBOX_CODE = "from bench.blackbox import main; main()"
# One core, like every Python process measured here; with both cores it spent as much
# or more CPU per probe (1,000-1,350 against 1,400-1,800 probes per CPU-s here).
BLACKBOX_GOMAXPROCS = 1


def http_max_rate(rows: Sequence[Row]) -> float | None:
    """monitord's completed API checks per second at its measured maximum (the N the
    search settled on; TINY has a fixed N, so there it is simply that load)."""
    for row in rows:
        if row.figure == HTTP_RATE:
            return row.value
    return None


# --- the HTTP target -------------------------------------------------------------------


@dataclass(frozen=True)
class HttpTarget:
    url: str
    pid: int  # the process that serves the requests (nginx's worker)
    name: str
    status_url: str | None = None  # nginx stub_status: accepted connections and requests

    def counters(self) -> tuple[int, int] | None:
        """Connections accepted and requests served so far (nginx only)."""
        if self.status_url is None:
            return None
        try:
            lines = http_get(self.status_url, timeout_s=5).decode().splitlines()
            accepts, _handled, requests = (int(word) for word in lines[2].split())
        except (OSError, ValueError, IndexError):
            return None
        return accepts, requests


NGINX_CONFIG = """\
worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {folder}/client;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = /nginx_status {{ stub_status; }}
        location / {{
            default_type application/json;
            return 200 '{body}';
        }}
    }}
}}
"""


@contextlib.contextmanager
def http_target(fallback: Targets) -> Iterator[HttpTarget]:
    """nginx answering the targets' JSON when it is installed (and starts), else the
    aiohttp target of ``bench.targets``."""
    binary = shutil.which("nginx")
    with contextlib.ExitStack() as stack:
        if binary is None:
            target = HttpTarget(fallback.http_url(), fallback.pid, "aiohttp target, no nginx")
        else:
            try:
                target = stack.enter_context(_nginx(binary))
            except (OSError, RuntimeError) as exc:
                name = f"aiohttp target, nginx failed: {exc}"
                target = HttpTarget(fallback.http_url(), fallback.pid, name)
        yield target


@contextlib.contextmanager
def _nginx(binary: str) -> Iterator[HttpTarget]:
    folder = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    port = free_port()
    config = folder / "nginx.conf"
    config.write_text(NGINX_CONFIG.format(folder=folder, port=port, body=BODY.decode()))
    process = subprocess.Popen(  # noqa: S603
        [binary, "-c", str(config), "-p", str(folder), "-e", str(folder / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/health"
        worker = _nginx_worker(process, url, folder, time.monotonic() + 15)
        yield HttpTarget(url, worker, "nginx", f"http://127.0.0.1:{port}/nginx_status")
    finally:
        stop_process(process)
        shutil.rmtree(folder, ignore_errors=True)


def _nginx_worker(process: subprocess.Popen[bytes], url: str, folder: Path, deadline: float) -> int:
    """The worker's pid, once nginx answers ``url`` with the fixed body."""
    while True:
        if process.poll() is not None:
            log = folder / "error.log"
            text = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"nginx exited {process.returncode}: {text}")
        try:
            if http_get(url, timeout_s=2) == BODY:
                workers = _children(process.pid)
                if workers:
                    return workers[0]
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("nginx did not start")
        time.sleep(0.05)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


# --- monitord --------------------------------------------------------------------------


@dataclass(frozen=True)
class Scrape:
    """What one /metrics scrape said, with the daemon's CPU and the clock around it."""

    runs: float
    failures: float
    skipped: float
    missed: float
    before: float  # monotonic time the request went out
    after: float  # and the answer was in
    cpu_before: float
    cpu_after: float
    size: int


_RESULT = re.compile(r'result="([a-z]+)"')
_SCHEDULE_COUNTERS = ("monitord_schedule_skipped_total ", "monitord_schedule_missed_total ")


def scrape(running: Daemon) -> Scrape:
    cpu_before, before = running.cpu_seconds(), time.monotonic()
    text = running.get("/metrics", timeout_s=SCRAPE_TIMEOUT_S).decode()
    after, cpu_after = time.monotonic(), running.cpu_seconds()
    # A plain line scan: the prometheus_client parser needs ~2 s per MB here.
    totals: defaultdict[str, float] = defaultdict(float)
    for line in text.splitlines():
        if line.startswith("monitord_scenario_runs_total{"):
            found = _RESULT.search(line)
            totals[found.group(1) if found else "?"] += float(line.rsplit(" ", 1)[1])
        elif line.startswith(_SCHEDULE_COUNTERS):
            totals[line.split(" ", 1)[0]] += float(line.rsplit(" ", 1)[1])
    return Scrape(
        runs=sum(v for k, v in totals.items() if not k.startswith("monitord_")),
        failures=totals["failure"],
        skipped=totals["monitord_schedule_skipped_total"],
        missed=totals["monitord_schedule_missed_total"],
        before=before,
        after=after,
        cpu_before=cpu_before,
        cpu_after=cpu_after,
        size=len(text),
    )


@dataclass(frozen=True)
class Window:
    """The daemon over one window between two scrapes."""

    scenarios: int
    runs: float
    failures: float
    skipped: float
    missed: float
    wall_s: float  # between the scrapes' requests: what the runs are counted over
    cpu_s: float  # between the end of the first scrape and the start of the second
    cpu_wall_s: float
    scrape_s: float  # how long the closing scrape took
    target_cpu: float | None  # share of a core the target process used
    others_cpu: float | None  # cores busy with anything but the daemon and the target
    connections_per_request: float | None  # nginx: accepted connections / requests
    udp_drops: int = 0  # datagrams dropped on a full receive buffer, machine-wide
    tried: tuple[int, ...] = ()  # the N of each step of the search, this one last

    @property
    def rate(self) -> float:
        return self.runs / self.wall_s

    @property
    def utilisation(self) -> float:
        return self.cpu_s / self.cpu_wall_s

    @property
    def per_cpu_s(self) -> float:
        return self.rate / self.utilisation if self.cpu_s > 0 else 0.0

    @property
    def keeping_up(self) -> bool:
        # Failures too: the targets are healthy, so a failed check here is a timeout.
        late = self.skipped + self.missed + self.failures
        # 10 % slack: a short window's edges are only as sharp as a busy loop's answers.
        return late == 0 and self.rate >= 0.9 * self.scenarios / INTERVAL_S


def measure_window(
    running: Daemon, scenarios: int, seconds: float, target_pid: int, http: HttpTarget | None
) -> Window:
    counters0 = http.counters() if http is not None else None
    first = scrape(running)
    target0, busy0, drops0 = _cpu_or_none(target_pid), _busy_cores_s(), _udp_drops()
    time.sleep(seconds)
    target1, busy1, drops1 = _cpu_or_none(target_pid), _busy_cores_s(), _udp_drops()
    last = scrape(running)
    counters1 = http.counters() if http is not None else None
    cpu_wall = last.before - first.after
    cpu = last.cpu_before - first.cpu_after
    target_cpu = None
    if target0 is not None and target1 is not None:
        target_cpu = (target1 - target0) / cpu_wall
    others = (busy1 - busy0) / cpu_wall - cpu / cpu_wall - (target_cpu or 0.0)
    per_request = None
    if counters0 is not None and counters1 is not None and counters1[1] > counters0[1]:
        # Includes the two stub_status requests themselves, on fresh connections too.
        per_request = (counters1[0] - counters0[0]) / (counters1[1] - counters0[1])
    return Window(
        scenarios=scenarios,
        runs=last.runs - first.runs,
        failures=last.failures - first.failures,
        skipped=last.skipped - first.skipped,
        missed=last.missed - first.missed,
        wall_s=last.before - first.before,
        cpu_s=cpu,
        cpu_wall_s=cpu_wall,
        scrape_s=last.after - last.before,
        target_cpu=target_cpu,
        others_cpu=max(others, 0.0),
        connections_per_request=per_request,
        udp_drops=drops1 - drops0,
    )


def _cpu_or_none(pid: int) -> float | None:
    try:
        return cpu_seconds(pid)
    except OSError:
        return None


def _udp_drops() -> int:
    """UDP datagrams the kernel dropped for a full receive buffer, so far."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    names, values = [line for line in lines if line and line[0] == "Udp:"][:2]
    return int(dict(zip(names, values, strict=True)).get("RcvbufErrors", 0))


def _busy_cores_s() -> float:
    """CPU-seconds the whole machine has spent busy (not idle, not waiting for I/O)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def resize(window: Window, size: Size) -> int:
    """The next N: the same when the daemon is busy enough and keeping up."""
    n = window.scenarios
    if not window.keeping_up:
        wanted = int(min(window.rate * INTERVAL_S, n) * 0.85)
    elif window.utilisation >= BUSY_ENOUGH or n >= size.max_scenarios:
        return n
    else:
        cost = window.utilisation / max(window.rate, 1.0)  # CPU-s per check
        wanted = int(AIM / cost * INTERVAL_S)
        if abs(wanted - n) < 0.05 * n:
            return n
    return max(size.min_scenarios, min(size.max_scenarios, wanted))


Items = Callable[[int], list[str]]

# A daemon given far more checks than it can run answers scrapes slowly (each piece of
# the exposition waits for a pass of a crowded loop); when a scrape times out, N is cut
# to this share and measured again, at most this many times.
OVERLOADED_STEP = 0.7
SCRAPE_TIMEOUT_S = 20.0
OVERLOADED_RETRIES = 3
# A measured window that fell behind its schedule is measured again at this share of N.
BEHIND_STEP = 0.85


def measure_monitord(
    items: Items, first_n: int, size: Size, target_pid: int, http: HttpTarget | None = None
) -> Window:
    """Find N near saturation, then measure.

    Each N gets a fresh daemon. A reload would be quicker, but applying one stalls the
    schedule for a moment and the runs due meanwhile go out in one burst: a few hundred
    datagrams at once overflow the UDP target's receive buffer, and each lost one costs
    a 5 s timeout and skipped runs, which would read as overload."""
    tried = [first_n]
    searches_left = size.search_steps
    for _ in range(size.search_steps + 1 + OVERLOADED_RETRIES):
        n = tried[-1]
        with daemon(items(n)) as running:
            time.sleep(size.warm_s)
            try:
                if searches_left > 0:
                    searches_left -= 1
                    probe = measure_window(running, n, size.probe_s, target_pid, None)
                    wanted = resize(probe, size)
                    if wanted != n:
                        tried.append(wanted)
                        continue
                window = measure_window(running, n, size.window_s, target_pid, http)
            except OSError:  # a scrape timed out: an overloaded daemon, so fewer scenarios
                tried.append(max(size.min_scenarios, int(n * OVERLOADED_STEP)))
                continue
            retries_left = len(tried) < size.search_steps + 1 + OVERLOADED_RETRIES
            if not window.keeping_up and n > size.min_scenarios and retries_left:
                # An N the short window judged fine fell behind over the long one: the
                # figure would be an overloaded daemon's, not a saturated one's.
                tried.append(max(size.min_scenarios, int(n * BEHIND_STEP)))
                continue
            return replace(window, tried=tuple(tried))
    raise RuntimeError(f"no N could be measured (tried {tried})")


def api_items(url: str) -> Items:
    return lambda n: [api_scenario(f"api-{i}", url, INTERVAL_S) for i in range(n)]


def socket_items(kind: str, port: int) -> Items:
    return lambda n: [
        socket_scenario(f"{kind.lower()}-{i}", kind, port, INTERVAL_S) for i in range(n)
    ]


# --- the other processes ---------------------------------------------------------------


@dataclass(frozen=True)
class Loop:
    """A bare loop's or blackbox load's result: checks per CPU-s of the measured process."""

    per_cpu_s: float | None
    rate: float | None
    utilisation: float | None
    target_cpu: float | None
    failed: int
    note: str = ""


def bracketed(before: Loop, after: Loop) -> Loop:
    """The bare loop measured before and after monitord's window, as one ceiling: the
    mean of the two. The machine's speed drifts over minutes; a ceiling from one side
    of the window alone moved the ratio by 10-15 points between runs."""
    if before.per_cpu_s is None or after.per_cpu_s is None:
        return before if after.per_cpu_s is None else after

    def mean(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else (a + b) / 2

    spread = f"before {before.per_cpu_s:,.0f}, after {after.per_cpu_s:,.0f} per CPU-s"
    return Loop(
        per_cpu_s=(before.per_cpu_s + after.per_cpu_s) / 2,
        rate=mean(before.rate, after.rate),
        utilisation=mean(before.utilisation, after.utilisation),
        target_cpu=mean(before.target_cpu, after.target_cpu),
        failed=before.failed + after.failed,
        note="; ".join(n for n in (spread, before.note, after.note) if n),
    )


def ceiling(kind: str, target: str, size: Size, target_pid: int) -> Loop:
    args = [kind, target, str(size.concurrency), str(size.load_warm_s), str(size.load_window_s)]
    try:
        run = drive(CEILING_CODE, args, [target_pid], _load_timeout(size))
    except (OSError, RuntimeError, ValueError) as exc:
        return Loop(None, None, None, None, 0, f"bare loop failed: {exc}")
    report = run.report
    cpu = float(report["cpu_s"])
    return Loop(
        per_cpu_s=report["checks"] / cpu if cpu > 0 else None,
        rate=report["checks"] / float(report["wall_s"]),
        utilisation=cpu / float(report["wall_s"]),
        target_cpu=run.utilisation(target_pid),
        failed=int(report["failed"]),
        note=_errors(report),
    )


def blackbox_probes(module: str, target: str, size: Size, target_pid: int) -> Loop:
    if blackbox.executable() is None:
        return Loop(None, None, None, None, 0, "prometheus-blackbox-exporter not installed")
    try:
        with blackbox.exporter(BLACKBOX_GOMAXPROCS) as exporter:
            args = [
                exporter.probe_url(module, target),
                str(size.concurrency),
                str(size.load_warm_s),
                str(size.load_window_s),
            ]
            run: LoadRun = drive(
                BLACKBOX_CODE, args, [exporter.pid, target_pid], _load_timeout(size)
            )
            spent = run.cpu_s.get(exporter.pid)
            probes = int(run.report["checks"])
            return Loop(
                per_cpu_s=probes / spent if spent else None,
                rate=probes / run.wall_s,
                utilisation=run.utilisation(exporter.pid),
                target_cpu=run.utilisation(target_pid),
                failed=int(run.report["failed"]),
                note=f"blackbox {exporter.version}, GOMAXPROCS={BLACKBOX_GOMAXPROCS}"
                + (f"; {_errors(run.report)}" if run.report["errors"] else ""),
            )
    except (OSError, RuntimeError, ValueError) as exc:
        return Loop(None, None, None, None, 0, f"blackbox failed: {exc}")


def _load_timeout(size: Size) -> float:
    return size.load_warm_s + size.load_window_s + 60


def _errors(report: dict[str, object]) -> str:
    errors = report.get("errors") or {}
    assert isinstance(errors, dict)
    return ", ".join(f"{name} ×{count}" for name, count in errors.items())


# --- the rows --------------------------------------------------------------------------


def _percent(share: float | None) -> str:
    return "?" if share is None else f"{share:.0%}"


def _target_note(share: float | None) -> str:
    text = f"target {_percent(share)} CPU"
    if share is not None and share >= BUSY_TARGET:
        text += " (NEAR SATURATION: may be the bottleneck)"
    return text


def _window_note(window: Window, target_name: str) -> str:
    parts = [
        f"N={window.scenarios} at {INTERVAL_S} s"
        + (f" (tried {'→'.join(map(str, window.tried))})" if len(window.tried) > 1 else ""),
        f"monitord {_percent(window.utilisation)} CPU",
        f"{window.skipped:.0f} skipped, {window.missed:.0f} missed, {window.failures:.0f} failed",
        f"{_target_note(window.target_cpu)} ({target_name})",
        f"others {window.others_cpu or 0:.1f} cores",
        f"scrapes ({window.scrape_s * 1000:.0f} ms) outside the CPU window",
    ]
    if window.udp_drops:
        parts.append(f"{window.udp_drops} datagrams dropped on full receive buffers")
    if window.connections_per_request is not None:
        parts.append(f"{window.connections_per_request:.2f} connections per request")
    return "; ".join(parts)


def _loop_note(name: str, loop: Loop) -> str:
    if loop.per_cpu_s is None:
        return f"{name}: {loop.note}"
    parts = [
        f"{name} {_percent(loop.utilisation)} CPU at {loop.rate or 0:,.0f}/s",
        f"{loop.failed} failed",
    ]
    if loop.note:
        parts.append(loop.note)
    parts.append(_target_note(loop.target_cpu))
    return "; ".join(parts)


def _ratio_ok(value: float, ceiling: float | None, size: Size) -> bool | None:
    if not size.judged or ceiling is None:
        return None
    return value >= TARGET_RATIO * ceiling


def kind_rows(
    kind: str,
    window: Window,
    bare: Loop,
    bare_name: str,
    target_name: str,
    size: Size,
    peer: Loop | None = None,
) -> list[Row]:
    per_cpu, rate = {"API": (HTTP_CPU, HTTP_RATE), "TCP": (TCP_CPU, TCP_RATE)}.get(
        kind, (UDP_CPU, UDP_RATE)
    )
    target = f"≥ {TARGET_RATIO:.0%} of bare loop"
    ok = _ratio_ok(window.per_cpu_s, bare.per_cpu_s, size)
    if kind == "API":
        target += " and > blackbox"
        if ok is not None and peer is not None and peer.per_cpu_s is not None:
            ok = ok and window.per_cpu_s > peer.per_cpu_s
    rows = [
        Row(
            per_cpu,
            window.per_cpu_s,
            "checks/CPU-s",
            bare.per_cpu_s,
            bare_name,
            target,
            ok,
            _loop_note(bare_name, bare),
        ),
        Row(
            rate,
            window.rate,
            "checks/s",
            bare.rate,
            bare_name,
            note=_window_note(window, target_name),
        ),
    ]
    return rows


def peer_row(figure: str, peer: Loop, bare: Loop, bare_name: str) -> Row:
    return Row(
        figure,
        peer.per_cpu_s,
        "probes/CPU-s",
        bare.per_cpu_s,
        bare_name,
        note=_loop_note("blackbox", peer) if peer.per_cpu_s is not None else peer.note,
    )


def first_n(bare: Loop, size: Size, before: Window | None = None) -> int:
    """Where the search for N starts: a third of the bare loop's checks per CPU-s, or
    what the daemon did for the kind measured before if that is less. Too high costs
    more than too low: an overloaded daemon answers scrapes slowly."""
    guess = int((bare.per_cpu_s or 0) * 0.3 * INTERVAL_S)
    if before is not None:
        guess = min(guess, int(before.per_cpu_s * AIM * INTERVAL_S))
    return max(size.min_scenarios, min(size.max_scenarios, guess))


def run(size: Size) -> list[Row]:
    rows: list[Row] = []
    with targets() as sockets, http_target(sockets) as http:
        tcp = f"127.0.0.1:{sockets.tcp_port}"
        udp = f"127.0.0.1:{sockets.udp_port}"

        bare = ceiling("http", http.url, size, http.pid)
        window = measure_monitord(api_items(http.url), first_n(bare, size), size, http.pid, http)
        bare = bracketed(bare, ceiling("http", http.url, size, http.pid))
        peer = blackbox_probes("http_2xx", http.url, size, http.pid)
        rows += kind_rows("API", window, bare, "bare aiohttp loop", http.name, size, peer)
        rows.append(peer_row(BB_HTTP, peer, bare, "bare aiohttp loop"))

        bare = ceiling("tcp", tcp, size, sockets.pid)
        items = socket_items("TCP", sockets.tcp_port)
        window = measure_monitord(items, first_n(bare, size, window), size, sockets.pid)
        bare = bracketed(bare, ceiling("tcp", tcp, size, sockets.pid))
        peer = blackbox_probes("tcp_connect", tcp, size, sockets.pid)
        rows += kind_rows("TCP", window, bare, "bare TCP loop", "asyncio target", size)
        rows.append(peer_row(BB_TCP, peer, bare, "bare TCP loop"))

        bare = ceiling("udp", udp, size, sockets.pid)
        items = socket_items("UDP", sockets.udp_port)
        window = measure_monitord(items, first_n(bare, size, window), size, sockets.pid)
        bare = bracketed(bare, ceiling("udp", udp, size, sockets.pid))
        rows += kind_rows("UDP", window, bare, "bare UDP loop", "asyncio target", size)
    rows.append(overhead_row(size))
    return rows


# The daemon's own work per run (bench.overhead): scenarios, warm-up, window.
OVERHEAD_SIZES = {"full": (3000, 3.0, 10.0), "quick": (1000, 1.0, 3.0), "tiny": (30, 0.5, 1.0)}
OVERHEAD_CODE = "from bench.overhead import main; main()"
OVERHEAD = "monitord CPU per run beyond the probe"


def overhead_row(size: Size) -> Row:
    """The daemon's CPU per run with a probe that answers at once: its fixed cost of a
    check, which the bare loops do not pay. Information, not a bound: with real probes
    the loop serves timers and socket events in the same passes."""
    scenarios, warm_s, window_s = OVERHEAD_SIZES[size.name]
    process = python_process(OVERHEAD_CODE, str(scenarios), str(warm_s), str(window_s))
    try:
        out, _ = process.communicate(timeout=warm_s + window_s + 120)
        report = json.loads(out.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, ValueError, IndexError) as exc:
        stop_process(process)
        return Row(OVERHEAD, None, "µs/run", note=f"measurement failed: {exc}")
    runs = int(report["runs"])
    return Row(
        OVERHEAD,
        report["cpu_s"] / runs * 1e6 if runs else None,
        "µs/run",
        note=f"{scenarios} UDP scenarios at 1 s whose probe answers at once, {runs:,} runs:"
        " scheduler, runner, checks, state, group write, metrics",
    )


# --- a profile of monitord under the API load ------------------------------------------


def profile(
    size: Size, seconds: float, kind: str = "API", scenarios: int | None = None
) -> tuple[str, str]:
    """py-spy's view of monitord near saturation under ``kind`` checks: a summary per
    function, and the raw collapsed stacks (for a flame graph)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return "py-spy not installed (pip install py-spy)", ""
    with targets() as sockets, http_target(sockets) as http:
        loop_kind, target, pid, items = {
            "API": ("http", http.url, http.pid, api_items(http.url)),
            "TCP": ("tcp", f"127.0.0.1:{sockets.tcp_port}", sockets.pid, None),
            "UDP": ("udp", f"127.0.0.1:{sockets.udp_port}", sockets.pid, None),
        }[kind]
        if items is None:
            port = sockets.tcp_port if kind == "TCP" else sockets.udp_port
            items = socket_items(kind, port)
        if scenarios is None:
            bare = ceiling(loop_kind, target, size, pid)
            short = replace(size, window_s=2.0)
            scenarios = measure_monitord(items, first_n(bare, size), short, pid).scenarios
        with daemon(items(scenarios)) as running:
            time.sleep(size.warm_s)
            out = Path(running.workdir) / "profile.txt"
            cpu0 = running.cpu_seconds()
            command = [spy, "record", "-p", str(running.pid), "-d", str(round(seconds))]
            command += ["-r", "100", "-f", "raw", "-o", str(out)]
            subprocess.run(command, check=True, capture_output=True, timeout=seconds + 60)  # noqa: S603
            util = (running.cpu_seconds() - cpu0) / seconds
            raw = out.read_text()
    head = f"N={scenarios} {kind} scenarios at {INTERVAL_S} s, monitord {util:.0%} CPU sampled\n"
    return head + summarise(raw), raw


def summarise(collapsed: str, top: int = 25) -> str:
    """Self and inclusive shares of the sampled stacks (py-spy raw format).

    Executor threads sitting in their work queue (the leaf frame is ``_worker``) are
    waiting, not working; py-spy samples them as active, so they are left out."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = waiting = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames[-1].startswith("_worker ("):
            waiting += count
            continue
        total += count
        # Worker threads start in threading.py; the rest is the event loop's thread
        # (py-spy can lose the outer frames of a coroutine's stack).
        threads["worker threads" if "threading.py" in stack else "event loop thread"] += count
        names = [re.sub(r" \(.*/([^/]+:\d+)\)$", r" (\1)", f) for f in frames]
        names = [re.sub(r":\d+\)$", ")", n) for n in names]
        own[names[-1]] += count
        for name in set(names):
            inclusive[name] += count
    if not total:
        return "no samples"
    lines = [f"{total} samples ({waiting} more of idle executor threads left out)"]
    lines += [f"{n / total:6.1%} {t}" for t, n in threads.most_common()]
    lines.append("self:")
    lines += [f"{n / total:6.1%} {f}" for f, n in own.most_common(top)]
    lines.append("inclusive:")
    lines += [f"{n / total:6.1%} {f}" for f, n in inclusive.most_common(top * 2)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--profile", type=float, metavar="SECONDS")
    parser.add_argument("--kind", choices=("API", "TCP", "UDP"), default="API")
    parser.add_argument("--scenarios", type=int, help="N for --profile (default: measured)")
    parser.add_argument("--raw", type=Path, help="write py-spy's collapsed stacks here")
    options = parser.parse_args(argv)
    size = TINY if options.tiny else QUICK if options.quick else FULL
    if options.profile:
        summary, raw = profile(size, options.profile, options.kind, options.scenarios)
        if options.raw is not None:
            options.raw.write_text(raw)
        print(summary)
        return
    started = time.monotonic()
    rows = run(size)
    print(table(rows))
    print(f"\n{size.name}: {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
