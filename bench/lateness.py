"""Schedule lateness (issue item 2): how late monitord starts its runs with 1,000 or
10,000 interval scenarios while a steady probe load keeps it busy.

The scenarios: index ``i`` of ``n`` gets the interval ``1 + round(59 * u ** (1 / p))`` s
with ``u = (i + 0.5) / n`` (``p = 1`` is an even spread over 1-60 s; a higher ``p`` puts
more scenarios on long intervals) and the kind API, API, TCP, UDP in turn. Extra API
scenarios on a 1 s interval ("load") bring the daemon's check rate up to the intended
share of the maximum HTTP rate (half of it, as the issue asks). When the spread alone
would take more than three quarters of that rate, ``p`` is raised until it does not.

Figures come from two scrapes of ``/metrics``, at the start and the end of the window:
the deltas of the lateness histogram, of the missed/skipped counters and of each
scenario's ``monitord_scenario_runs_total``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.common import Daemon, Row, api_scenario, socket_scenario
from bench.targets import Targets

ASSUMED_MAX_RATE = 700.0  # checks/s, when the throughput figure is not passed in
SPREAD_POWERS = (1, 2, 3, 4, 6, 8)
SPREAD_SHARE = 0.75  # the spread may take at most this share of the intended rate
KINDS = ("API", "API", "TCP", "UDP")
TARGET_P99_S = 0.020
TARGET_MAX_S = 0.250

_BUCKET = re.compile(r'^monitord_schedule_lateness_seconds_bucket\{le="([^"]+)"\} (\S+)$', re.M)


# --- reading an exposition -------------------------------------------------------------


def plain_value(text: str, name: str) -> float | None:
    """The value of an unlabelled sample ``name``."""
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return None if found is None else float(found.group(1))


def lateness_buckets(text: str) -> dict[float, float]:
    """Cumulative lateness bucket counts by upper bound (``+Inf`` as math.inf)."""
    return {float(le): float(count) for le, count in _BUCKET.findall(text)}


def per_scenario(text: str, name: str) -> dict[str, float]:
    """Sum of the samples called ``name`` by scenario name (over their other labels)."""
    line = re.compile(
        rf'^{re.escape(name)}\{{[^}}]*?scenario_name="((?:[^"\\]|\\.)*)"[^}}]*\}} (\S+)$', re.M
    )
    found: dict[str, float] = {}
    for scenario, value in line.findall(text):
        found[scenario] = found.get(scenario, 0.0) + float(value)
    return found


def quantile_bound(deltas: dict[float, float], q: float) -> float | None:
    """The upper bound of the bucket holding quantile ``q`` of the observations."""
    bounds = sorted(deltas)
    total = deltas[bounds[-1]] if bounds else 0
    if total <= 0:
        return None
    for bound in bounds:
        if deltas[bound] >= q * total:
            return bound
    return bounds[-1]


def max_bucket(deltas: dict[float, float]) -> tuple[float, float] | None:
    """(lower, upper] bounds of the bucket holding the largest observation."""
    bounds = sorted(deltas)
    lower, previous = 0.0, 0.0
    found = None
    for bound in bounds:
        if deltas[bound] > previous:
            found = (lower, bound)
        previous = deltas[bound]
        lower = bound
    return found


# --- the scenarios ---------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    items: list[str]
    intervals: dict[str, int]  # by scenario name
    power: int
    spread_rate: float  # runs/s of the spread scenarios
    load: int  # 1 s API scenarios added
    intended_rate: float


def spread(n: int, power: int) -> list[int]:
    return [1 + round(59 * ((i + 0.5) / n) ** (1 / power)) for i in range(n)]


def plan(targets: Targets, n: int, intended_rate: float) -> Plan:
    power, intervals = SPREAD_POWERS[-1], spread(n, SPREAD_POWERS[-1])
    for candidate in SPREAD_POWERS:
        intervals = spread(n, candidate)
        if sum(1 / i for i in intervals) <= SPREAD_SHARE * intended_rate:
            power = candidate
            break
    rate = sum(1 / i for i in intervals)
    items, by_name = [], {}
    for i, interval in enumerate(intervals):
        name, kind = f"late-{i:05d}", KINDS[i % len(KINDS)]
        if kind == "API":
            items.append(api_scenario(name, targets.http_url(), interval))
        else:
            port = targets.tcp_port if kind == "TCP" else targets.udp_port
            items.append(socket_scenario(name, kind, port, interval))
        by_name[name] = interval
    load = max(0, round(intended_rate - rate))
    for j in range(load):
        items.append(api_scenario(f"load-{j:05d}", targets.http_url(), 1))
        by_name[f"load-{j:05d}"] = 1
    return Plan(items, by_name, power, rate, load, intended_rate)


# --- the measurement -------------------------------------------------------------------


@dataclass(frozen=True)
class Scrape:
    text: str
    at: float  # monotonic time the request was sent
    cpu_s: float


def scrape(d: Daemon) -> Scrape:
    at, cpu = time.monotonic(), d.cpu_seconds()
    return Scrape(d.metrics(), at, cpu)


def off_expected(
    first: dict[str, float], last: dict[str, float], intervals: dict[str, int], window_s: float
) -> tuple[int, list[str]]:
    """Scenarios whose runs in the window are outside floor(W/I) - 1 ... ceil(W/I) + 1."""
    off = []
    for name, interval in intervals.items():
        runs = last.get(name, 0.0) - first.get(name, 0.0)
        expected = window_s / interval
        if not math.floor(expected) - 1 <= runs <= math.ceil(expected) + 1:
            off.append(f"{name}: {runs:.0f} runs, {expected:.1f} expected")
    return len(off), off


def ms(bound: float | None) -> float | None:
    return None if bound is None else bound * 1000


def measure(
    d: Daemon,
    p: Plan,
    label: str,
    window_s: float,
    warmup_s: float,
    judge: bool,
    after: Callable[[Daemon], Sequence[Row]] | None = None,
) -> list[Row]:
    """Lateness rows of a started daemon running ``p``; then ``after`` on the same daemon."""
    time.sleep(warmup_s)
    first = scrape(d)
    time.sleep(max(0.0, first.at + window_s - time.monotonic()))
    last = scrape(d)
    window = last.at - first.at
    start_buckets, end_buckets = lateness_buckets(first.text), lateness_buckets(last.text)
    deltas = {b: end_buckets[b] - start_buckets.get(b, 0.0) for b in end_buckets}
    p50, p99 = quantile_bound(deltas, 0.5), quantile_bound(deltas, 0.99)
    top = max_bucket(deltas)
    observed = deltas.get(math.inf, 0.0)
    runs_first = per_scenario(first.text, "monitord_scenario_runs_total")
    runs_last = per_scenario(last.text, "monitord_scenario_runs_total")
    off, examples = off_expected(runs_first, runs_last, p.intervals, window)
    total_runs = sum(runs_last.values()) - sum(runs_first.values())
    counters = {}
    for name in ("monitord_schedule_missed_total", "monitord_schedule_skipped_total"):
        before, now = plain_value(first.text, name), plain_value(last.text, name)
        counters[name] = None if before is None or now is None else now - before
    setup = (
        f"{len(p.intervals) - p.load} spread (power {p.power}) + {p.load} load scenarios,"
        f" window {window:.0f} s after {warmup_s:.0f} s warm-up"
    )
    if p.spread_rate > SPREAD_SHARE * p.intended_rate:
        setup += f"; the spread alone is {p.spread_rate:.0f}/s, over its share even at power 8"
    bucket_note = "upper bound of its histogram bucket"
    rows = [
        Row(
            f"lateness p50, {label}",
            ms(p50),
            "ms",
            target="",
            note=f"{bucket_note}; {observed:.0f} runs observed; {setup}",
        ),
        Row(
            f"lateness p99, {label}",
            ms(p99),
            "ms",
            target="<= 20 ms",
            ok=(p99 is not None and p99 <= TARGET_P99_S) if judge else None,
            note=bucket_note,
        ),
        Row(
            f"lateness max, {label}",
            ms(top[1]) if top else None,
            "ms",
            target="<= 250 ms",
            ok=(top is not None and top[1] <= TARGET_MAX_S) if judge else None,
            note=(
                f"largest run in bucket ({ms(top[0]):g}, {ms(top[1]):g}] ms: reported as <= bound"
                if top
                else "no runs observed"
            ),
        ),
    ]
    for name, figure in (
        ("monitord_schedule_missed_total", "missed runs"),
        ("monitord_schedule_skipped_total", "skipped runs"),
    ):
        value = counters[name]
        rows.append(
            Row(
                f"{figure}, {label}",
                value,
                "",
                target="0",
                ok=(value == 0) if judge and value is not None else None,
                note="" if value is not None else f"{name} not in the exposition",
            )
        )
    rows.append(
        Row(
            f"scenarios off their expected runs, {label}",
            off,
            "",
            target="0",
            ok=(off == 0) if judge else None,
            note=f"of {len(p.intervals)}, tolerance window/interval +-1"
            + (f"; e.g. {'; '.join(examples[:3])}" if examples else ""),
        )
    )
    cpu = (last.cpu_s - first.cpu_s) / window if window > 0 else None
    rows.append(
        Row(
            f"check rate in the lateness window, {label}",
            total_runs / window if window > 0 else None,
            "/s",
            ceiling=p.intended_rate,
            ceiling_name="intended",
            note=(
                f"spread {p.spread_rate:.0f}/s + load {p.load}/s; monitord CPU {cpu:.0%} of a core"
                if cpu is not None
                else ""
            ),
        )
    )
    if after is not None:
        rows.extend(after(d))
    return rows
