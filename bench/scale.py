"""Scale: schedule lateness (issue item 2, in ``bench.lateness``), memory per loaded
scenario (item 3), the cost of a ``/metrics`` scrape (item 5), start-up and reload
(item 6).

One targets process serves every daemon of this module; each daemon is started, measured
and stopped before the next one. The scrape is measured on the lateness daemons at the
end of their window, where every scenario has run and the probe load is still going:
a scrape as Prometheus would make it, and no extra minute spent waiting for a fresh
daemon's scenarios to run once. The same scrape of the idle memory daemon (no load, no
run yet) is shown for comparison. Reload: TCP scenarios every 60 s, one of them edited
to 45 s per reload.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import lateness
from bench.common import (
    Daemon,
    Row,
    api_scenario,
    http_post,
    python_process,
    socket_scenario,
    stop_process,
    write_scenarios,
)
from bench.targets import Targets, targets

MEMORY_INTERVAL_S = 86400  # loaded, hardly ever run (phases are spread, so a few do)
RELOAD_INTERVAL_S = 60
RELOAD_EDITED_S = 45
MIB = 2**20
PROBE_PERIOD_S = 0.01  # /health asked this often during a scrape
RUNS = "monitord_scenario_runs_total"
LAST_RUN = "monitord_scenario_last_run_timestamp_seconds"
_DURATION_COUNT = re.compile(r"^monitord_scenario_duration_seconds_count\{[^}]*\} (\S+)$", re.M)
# The lines SPEC §9 does not require: the duration histogram's finite buckets (a
# histogram needs only +Inf, _count and _sum) and, second, counters by result that have
# never counted (good practice shows them at 0 so that the first one is seen by rate()).
_FINITE_BUCKET = re.compile(r'^monitord_scenario_duration_seconds_bucket\{.*,le="(?!\+Inf)')
_UNCOUNTED = re.compile(r'^monitord_scenario_runs_total\{.*,result="[a-z]+"\} 0\.0$')


@dataclass(frozen=True)
class Size:
    name: str
    lateness: tuple[tuple[int, float], ...]  # (spread scenarios, window in s)
    warmup_s: float
    load_fraction: float  # intended check rate, as a share of the maximum HTTP rate
    memory: tuple[int, ...]  # scenario counts measured besides 0
    settle_s: float  # after READY, before RSS is read
    startup: int  # the count whose time to READY is judged (<= 10 s at 10,000)
    reload_files: int
    reload_per_file: int
    reloads: int
    scrapes: int
    baseline_s: float  # /health answer times before the scrape, for comparison
    judge: bool


FULL = Size(
    name="full",
    lateness=((1000, 60), (10000, 120)),
    warmup_s=10,
    load_fraction=0.5,
    memory=(10000, 100000),
    settle_s=3,
    startup=10000,
    reload_files=100,
    reload_per_file=10,
    reloads=3,
    scrapes=3,
    baseline_s=2,
    judge=True,
)
QUICK = Size(
    name="quick",
    lateness=((1000, 30),),
    warmup_s=3,
    load_fraction=0.5,
    memory=(10000,),
    settle_s=1,
    startup=10000,
    reload_files=100,
    reload_per_file=10,
    reloads=2,
    scrapes=2,
    baseline_s=1,
    judge=True,
)
TINY = Size(
    name="tiny",
    lateness=((30, 3),),
    warmup_s=1,
    load_fraction=0.05,  # a few dozen checks/s: the harness, not the figures
    memory=(50,),
    settle_s=0.5,
    startup=50,
    reload_files=10,
    reload_per_file=3,
    reloads=1,
    scrapes=1,
    baseline_s=0.5,
    judge=False,
)


@contextlib.contextmanager
def started(items: Sequence[str], per_file: int = 1000) -> Iterator[tuple[Daemon, float]]:
    """A daemon running ``items`` and its seconds from spawn to READY=1; removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="monitord-bench-scale-"))
    running = Daemon(workdir)
    try:
        write_scenarios(running.scenarios, items, per_file)
        ready_s = running.start(timeout_s=300)
        yield running, ready_s
    finally:
        running.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def run(size: Size, http_max_rate: float | None = None) -> list[Row]:
    max_rate = http_max_rate or lateness.ASSUMED_MAX_RATE
    rate_note = (
        f"max HTTP rate {max_rate:.0f}/s from the throughput test"
        if http_max_rate
        else f"max HTTP rate assumed {max_rate:.0f}/s (no throughput figure given)"
    )
    rows: list[Row] = []
    with targets() as t:
        rows += memory_rows(t, size)
        rows += reload_rows(t, size)
        for n, window_s in size.lateness:
            p = lateness.plan(t, n, size.load_fraction * max_rate)
            label = f"{n:,} scenarios"
            with started(p.items) as (d, ready_s):

                def after(d: Daemon, n: int = n, load: int = p.load) -> list[Row]:
                    label, total = f"{n:,} + {load} load scenarios", n + load
                    found = scrape_rows(d, label, size, total)
                    return found + id_label_rows(d, label, size, total)

                found = lateness.measure(d, p, label, window_s, size.warmup_s, size.judge, after)
            found[0].note += f"; {rate_note}; READY in {ready_s:.1f} s"
            rows += found
    return rows


# --- memory and start-up ---------------------------------------------------------------


def peak_rss_bytes(pid: int) -> int | None:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def memory_rows(t: Targets, size: Size) -> list[Row]:
    rows: list[Row] = []
    rss: dict[int, int] = {}
    for n in (0, *size.memory):
        items = [api_scenario(f"mem-{i:06d}", t.http_url(), MEMORY_INTERVAL_S) for i in range(n)]
        idle: list[float] = []
        idle_size = 0
        with started(items) as (d, ready_s):
            time.sleep(size.settle_s)
            rss[n], peak = d.rss_bytes(), peak_rss_bytes(d.pid)
            if n == size.startup:  # the same scrape on a daemon with no probe load
                for _ in range(size.scrapes):
                    start = time.monotonic()
                    idle_size = len(d.get("/metrics"))
                    idle.append(time.monotonic() - start)
        peak_note = "" if peak is None else f"peak {peak / MIB:.0f} MiB; "
        rows.append(
            Row(
                f"RSS, {n:,} scenarios",
                rss[n] / MIB,
                "MiB",
                note=f"{peak_note}{size.settle_s:g} s after READY; API every {MEMORY_INTERVAL_S} s",
            )
        )
        if not n:
            continue
        per = (rss[n] - rss[0]) / n
        judged = size.judge and n == max(size.memory)
        rows.append(
            Row(
                f"RSS per scenario, {n:,}",
                per,
                "B",
                target="<= 8,192 B at 100,000",
                ok=per <= 8192 if judged else None,
                note="(RSS(n) - RSS(0)) / n"
                + ("; judged at the largest size measured" if judged and n != 100000 else ""),
            )
        )
        is_target = n == size.startup
        rows.append(
            Row(
                f"start-up to READY, {n:,} scenarios",
                ready_s,
                "s",
                target="<= 10 s at 10,000" if is_target else "",
                ok=ready_s <= 10 if is_target and size.judge else None,
                note="spawn to READY=1 (sd_notify)",
            )
        )
        if idle:
            rows.append(
                Row(
                    f"/metrics time, {n:,} idle scenarios",
                    statistics.median(idle),
                    "s",
                    note=f"for comparison: no probe load, none has run yet ({idle_size / 1e6:.3g}"
                    f" MB); each {', '.join(f'{x:.3f}' for x in idle)} s",
                )
            )
    return rows


# --- reload ----------------------------------------------------------------------------


def listing(d: Daemon) -> dict[str, dict[str, Any]]:
    scenarios = json.loads(d.get("/api/v1/scenarios"))["scenarios"]
    return {s["scenarioName"]: s for s in scenarios}


def moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def moved_intervals(before: str | None, after: str | None, period_s: int) -> int | None:
    """How many whole periods a next run moved forward; None if not by whole periods."""
    start, end = moment(before), moment(after)
    if start is None or end is None:
        return None
    diff_ms = round((end - start).total_seconds() * 1000)
    periods, rest = divmod(diff_ms, period_s * 1000)
    if diff_ms < 0 or 1 < rest < period_s * 1000 - 1:  # 1 ms of rounding either way
        return None
    return periods + (rest > 1)


def reload_rows(t: Targets, size: Size) -> list[Row]:
    n = size.reload_files * size.reload_per_file
    items = [
        socket_scenario(f"rel-{i:05d}", "TCP", t.tcp_port, RELOAD_INTERVAL_S) for i in range(n)
    ]
    times: list[float] = []
    disturbed: list[str] = []
    extra: list[str] = []
    problems: list[str] = []
    with started(items, per_file=size.reload_per_file) as (d, _):
        time.sleep(1)
        for k in range(size.reloads):
            edited = f"rel-{k * size.reload_per_file:05d}"
            runs_before = lateness.per_scenario(d.metrics(), RUNS)
            before = listing(d)
            path = d.scenarios / f"bench-{k:05d}.yaml"
            text = path.read_text()
            old = f"monitoringInterval: {RELOAD_INTERVAL_S}\n"
            path.write_text(text.replace(old, f"monitoringInterval: {RELOAD_EDITED_S}\n", 1))
            start = time.perf_counter()
            answer = json.loads(http_post(d.url + "/-/reload"))
            times.append(time.perf_counter() - start)
            after = listing(d)
            runs_after = lateness.per_scenario(d.metrics(), RUNS)
            if (answer.get("changed"), answer.get("unchanged")) != (1, n - 1):
                problems.append(f"reload {k + 1} answered {answer}")
            if after.get(edited, {}).get("schedule") != f"every {RELOAD_EDITED_S} s":
                problems.append(f"reload {k + 1}: the change is not in /api/v1/scenarios")
            for name, entry in before.items():
                if name == edited or entry["schedule"] != f"every {RELOAD_INTERVAL_S} s":
                    continue
                moved = moved_intervals(
                    entry["nextRunAt"], after.get(name, {}).get("nextRunAt"), RELOAD_INTERVAL_S
                )
                if moved is None:
                    disturbed.append(f"{name}: {entry['nextRunAt']} -> {after.get(name)}")
                    continue
                runs = runs_after.get(name, 0.0) - runs_before.get(name, 0.0)
                if runs > moved + 1:
                    extra.append(f"{name}: {runs:.0f} runs, next run moved {moved} periods")
    value = statistics.median(times)
    each = ", ".join(f"{s * 1000:.0f}" for s in times)
    return [
        Row(
            f"reload, 1 of {size.reload_files} files changed ({n:,} scenarios)",
            value,
            "s",
            target="<= 1 s",
            ok=(value <= 1 and not problems) if size.judge else None,
            note=f"median of {len(times)}: {each} ms; POST /-/reload answered when applied"
            + (f"; {'; '.join(problems[:2])}" if problems else "; change visible at once"),
        ),
        Row(
            "reload: other scenarios disturbed",
            len(disturbed) + len(extra),
            "",
            target="0",
            ok=not disturbed and not extra if size.judge else None,
            note=f"{len(disturbed)} nextRunAt moved off their period, {len(extra)} extra runs"
            + (f"; e.g. {'; '.join((disturbed + extra)[:2])}" if disturbed or extra else ""),
        ),
    ]


# --- scrape ----------------------------------------------------------------------------

# Asks /health every PERIOD s on one keep-alive connection until stdin closes; prints
# one JSON list of [monotonic start, seconds to the full answer, ok].
_PROBER = """
import http.client, json, sys, threading, time
port, period, limit = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
samples, end = [], time.monotonic() + limit
print("ready", flush=True)
due = time.monotonic()
while not stop.is_set() and time.monotonic() < end:
    start = time.monotonic()
    try:
        connection.request("GET", "/health")
        answer = connection.getresponse()
        answer.read()
        good = answer.status == 200
    except (OSError, http.client.HTTPException):
        connection.close()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        good = False
    samples.append([start, time.monotonic() - start, good])
    due = max(due + period, time.monotonic())
    stop.wait(due - time.monotonic())
print(json.dumps(samples), flush=True)
"""


def fetch(url: str, headers: dict[str, str]) -> tuple[bytes, str | None, float, float]:
    """Body, Content-Encoding, and the monotonic start and end of the request."""
    request = urllib.request.Request(url, headers=headers)  # noqa: S310
    start = time.monotonic()
    with urllib.request.urlopen(request, timeout=120) as answer:  # noqa: S310
        body: bytes = answer.read()
        encoding = answer.headers.get("Content-Encoding")
    return body, encoding, start, time.monotonic()


def promtool_row(body: bytes, label: str) -> Row:
    figure = f"promtool check metrics problems, {label}"
    tool = shutil.which("promtool")
    if tool is None:
        return Row(figure, None, "", target="0", note="promtool not on PATH: not checked")
    try:
        done = subprocess.run(  # noqa: S603
            [tool, "check", "metrics"], input=body, capture_output=True, timeout=300
        )
    except subprocess.TimeoutExpired:
        return Row(figure, None, "", target="0", note="promtool did not finish in 300 s")
    lines = [x for x in (done.stdout + done.stderr).decode(errors="replace").splitlines() if x]
    return Row(
        figure,
        len(lines),
        "",
        target="0",
        ok=done.returncode == 0 and not lines,
        note=f"exit {done.returncode}" + (f"; {'; '.join(lines[:3])}" if lines else ""),
    )


def scrape_rows(d: Daemon, label: str, size: Size, total: int) -> list[Row]:
    """Time and size of GET /metrics, gzip asked or not, and the longest /health answer
    while it renders."""
    prober = python_process(_PROBER, str(d.port), str(PROBE_PERIOD_S), "300", stdin=subprocess.PIPE)
    try:
        assert prober.stdout is not None
        assert prober.stdin is not None
        prober.stdout.readline()
        time.sleep(size.baseline_s)
        spans, times = [], []
        for _ in range(size.scrapes):
            body, _, start, end = fetch(d.url + "/metrics", {})
            spans.append((start, end))
            times.append(end - start)
        zipped, encoding, start, end = fetch(d.url + "/metrics", {"Accept-Encoding": "gzip"})
        spans.append((start, end))
        time.sleep(5 * PROBE_PERIOD_S)  # so that a question follows the last scrape too
        prober.stdin.close()
        samples = json.loads(prober.stdout.readline() or "[]")
    finally:
        stop_process(prober)
    ran = len(lateness.per_scenario(body.decode(), LAST_RUN))
    value = statistics.median(times)
    judge = size.judge and total >= 10000
    rows = [
        Row(
            f"/metrics time, {label}",
            value,
            "s",
            target="<= 1 s at 10,000",
            ok=value <= 1 if judge else None,
            note=f"median of {len(times)}: {', '.join(f'{x:.3f}' for x in times)} s;"
            f" {ran} of {total} scenarios had run; lateness load still on",
        ),
        size_row(label, body, judge, f"uncompressed; {len(body) / total:,.0f} B per scenario"),
    ]
    lines = body.decode().splitlines()
    floor = sum(len(line) + 1 for line in lines if not _FINITE_BUCKET.match(line))
    barest = floor - sum(len(line) + 1 for line in lines if _UNCOUNTED.match(line))
    rows.append(
        Row(
            f"/metrics size with only the series SPEC §9 requires, {label}",
            floor / 1e6,
            "MB",
            target="(<= 15 MB at 10,000)",
            note="the same scrape without the duration histogram's finite buckets; without"
            f" its runs-by-result series still at 0 as well: {barest / 1e6:.3g} MB",
        )
    )
    if encoding == "gzip":
        gzip_note = f"served gzip-encoded in {spans[-1][1] - spans[-1][0]:.2f} s"
    else:
        local = len(gzip.compress(body, 6)) / 1e6
        gzip_note = f"served uncompressed (no Content-Encoding); gzip -6 would give {local:.3g} MB"
    rows.append(
        Row(
            f"/metrics size, Accept-Encoding gzip, {label}", len(zipped) / 1e6, "MB", note=gzip_note
        )
    )
    rows.append(health_row(samples, spans, label, size.judge))
    rows.append(promtool_row(body, label))
    return rows


def id_label_rows(d: Daemon, label: str, size: Size, total: int) -> list[Row]:
    """The same daemon restarted with ``metrics: {scenarioLabels: id}`` on the same files
    and state, scraped after the warm-up: the size of the large-fleet layout."""
    d.stop()
    d.extra_config = {**d.extra_config, "metrics": {"scenarioLabels": "id"}}
    d.start(timeout_s=300)
    time.sleep(size.warmup_s)
    body, _, start, end = fetch(d.url + "/metrics", {})
    text = body.decode()
    ran = sum(1 for count in _DURATION_COUNT.findall(text) if float(count))
    label = f"{label}, scenarioLabels: id"
    judge = size.judge and total >= 10000
    note = (
        f"{len(body) / total:,.0f} B per scenario; restarted on the same state,"
        f" {size.warmup_s:.0f} s before: {ran} of {total} had run since (counts restart"
        f" at 0: a digit shorter); scraped in {end - start:.2f} s"
    )
    return [size_row(label, body, judge, note), promtool_row(body, label)]


def size_row(label: str, body: bytes, judge: bool, note: str) -> Row:
    """The size of a scrape against its target (judged at 10,000 scenarios)."""
    return Row(
        f"/metrics size, {label}",
        len(body) / 1e6,
        "MB",
        target="<= 15 MB at 10,000",
        ok=len(body) <= 15e6 if judge else None,
        note=note,
    )


def health_row(
    samples: list[list[Any]], spans: list[tuple[float, float]], label: str, judge: bool
) -> Row:
    figure = f"longest /health answer during a scrape, {label}"
    first = spans[0][0]
    # A question asked while a scrape ran, or just after it (a short scrape can fall
    # between two questions; a loop it blocked answers the next one late).
    during = [
        s[1]
        for s in samples
        if any(s[0] < end + 2 * PROBE_PERIOD_S and s[0] + s[1] > start for start, end in spans)
    ]
    before = [s[1] for s in samples if s[0] + s[1] <= first]
    failed = sum(1 for s in samples if not s[2])
    if not during:
        return Row(figure, None, "ms", target="<= 100 ms", note="no /health answer measured")
    longest = max(during) * 1000
    return Row(
        figure,
        longest,
        "ms",
        target="<= 100 ms",
        ok=(longest <= 100 and not failed) if judge else None,
        note=f"{len(during)} asked every 10 ms; before the scrape, longest of {len(before)}:"
        f" {max(before, default=0) * 1000:.0f} ms" + (f"; {failed} failed" if failed else ""),
    )
