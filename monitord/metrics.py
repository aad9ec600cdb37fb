"""Prometheus metrics (SPEC §9).

Daemon-wide series are ordinary prometheus-client objects. Per-scenario series
are not: a child object per label set costs kilobytes per scenario, so each
scenario keeps a few counters in a ``RunStats`` and a scrape turns a snapshot
of them into metric families. The snapshot is taken on the event loop (cheap
copies); the text is then written in pieces, the loop running between them.

Two settings shape the per-scenario series (``metrics`` in config.yaml): the duration
histogram's buckets, and whether every series carries SPEC §9's five labels or only
``scenario_id``, with the other four on one ``monitord_scenario_info`` series per
scenario (a third of the bytes for a large fleet).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.utils import floatToGoString

from monitord.model import EventType, Outcome, Result, ScenarioType

# How late runs start: most are a millisecond or two; the tail is what matters.
LATENESS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Run durations: few buckets on purpose, since every bucket is a series per scenario (at
# 10,000 scenarios each adds about 2 MB to a scrape, 1.1 MB with id labels). These tell
# fast from slow from nearly timed out; config.yaml's metrics.durationBuckets sets others.
DURATION_BUCKETS = (0.25, 1.0, 5.0)

EVENT_OUTCOMES = ("queued", "delivered", "retried", "dead_lettered", "requeued")
SCENARIO_LABELS = ("scenario_id", "scenario_name", "scenario_type", "app_key", "region")
_OUTCOMES = (Outcome.SUCCESS, Outcome.FAILURE, Outcome.SUPPRESSED)
# Read once (see model.py): observed for every result.
_SUCCESS_OUTCOME, _SUPPRESSED_OUTCOME = Outcome.SUCCESS, Outcome.SUPPRESSED


class RunStats:
    """Counts of one scenario's runs since start: what its series are made of."""

    __slots__ = ("bounds", "buckets", "duration_sum", "last_run_s", "payloads", "runs", "up")

    def __init__(self, bounds: tuple[float, ...] = DURATION_BUCKETS) -> None:
        self.runs = [0, 0, 0]  # by outcome, in _OUTCOMES order
        self.payloads = [0, 0]  # BATCH: payloads judged, success and failure
        self.bounds = bounds  # the duration buckets' upper bounds, shared by every scenario
        self.buckets = [0] * (len(bounds) + 1)  # per bucket, not cumulative; the last: +Inf
        self.duration_sum = 0.0
        self.up: int | None = None  # 1 last judged run succeeded, 0 it failed
        self.last_run_s: float | None = None

    def observe(self, result: Result) -> None:
        seconds = result.duration_ms / 1000
        self.runs[_OUTCOMES.index(result.outcome)] += 1
        self.buckets[bisect.bisect_left(self.bounds, seconds)] += 1
        self.duration_sum += seconds
        self.last_run_s = result.started_at.timestamp() + seconds
        if result.outcome is not _SUPPRESSED_OUTCOME:  # maintenance says nothing about up
            self.up = int(result.outcome is _SUCCESS_OUTCOME)

    def observe_payload(self, outcome: Outcome) -> None:
        self.payloads[0 if outcome is _SUCCESS_OUTCOME else 1] += 1


@dataclass(frozen=True, slots=True)
class ScenarioSample:
    """One scenario's values at scrape time."""

    labels: tuple[str, str, str, str, str]  # in SCENARIO_LABELS order
    failing: bool
    consecutive_failures: int
    up: int | None
    last_run_s: float | None
    runs: tuple[int, int, int]
    buckets: tuple[int, ...]
    duration_sum: float
    payloads: tuple[int, int] | None = None  # BATCH only: success, failure
    # Only a scenario with avoidingValidationText can be suppressed; the others get no
    # ``result="suppressed"`` series (it would be 0 forever).
    suppressible: bool = True


class Metrics:
    """The daemon's registry and the rendering of a scrape.

    ``duration_buckets``: the upper bounds of the per-scenario duration histogram (empty:
    only ``+Inf``, that is count and sum); ``scenario_id_only``: per-scenario series carry
    ``scenario_id`` alone and ``monitord_scenario_info`` carries the five labels.
    """

    def __init__(
        self,
        duration_buckets: Sequence[float] = DURATION_BUCKETS,
        *,
        scenario_id_only: bool = False,
    ) -> None:
        bounds = tuple(float(bound) for bound in duration_buckets)
        if any(not 0 < bound < math.inf for bound in bounds) or list(bounds) != sorted(set(bounds)):
            raise ValueError(f"duration buckets must be positive and increasing: {bounds}")
        self.duration_buckets = bounds
        self.scenario_id_only = scenario_id_only
        # `_created` series double the output and mean nothing to alerting.
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        self._registry = CollectorRegistry()
        registry = self._registry
        self.lateness = Histogram(
            "monitord_schedule_lateness_seconds",
            "How late scheduled runs started: start time minus due time.",
            buckets=LATENESS_BUCKETS,
            registry=registry,
        )
        self.missed = Counter(
            "monitord_schedule_missed",
            "Scheduled slots that passed while a run could not start; one late run stood in.",
            registry=registry,
        )
        self.skipped = Counter(
            "monitord_schedule_skipped",
            "Scheduled runs skipped because the previous run of the scenario was still going.",
            registry=registry,
        )
        self.reload_successful = Gauge(
            "monitord_config_last_reload_successful",
            "1 if the last load of the scenario files had no errors.",
            registry=registry,
        )
        self.reload_success_time = Gauge(
            "monitord_config_last_reload_success_timestamp_seconds",
            "When the scenario files last loaded without errors.",
            registry=registry,
        )
        self.events = Counter(
            "monitord_events",
            "Failure event messages by what happened to them: queued in the outbox, delivered,"
            " retried after a failed attempt, dead-lettered, re-queued from the dead letters.",
            ("event_type", "outcome"),
            registry=registry,
        )
        for event_type in EventType:
            for outcome in EVENT_OUTCOMES:
                self.events.labels(event_type.value, outcome)
        self.outbox_pending = Gauge(
            "monitord_events_outbox_pending",
            "Event messages in the outbox, not yet acknowledged by the events sink.",
            registry=registry,
        )
        self.dead_letters = Gauge(
            "monitord_events_dead_letters",
            "Event messages given up on; see GET /api/v1/events, re-queue with"
            " POST /api/v1/events/requeue.",
            registry=registry,
        )

    def run_stats(self) -> RunStats:
        """Empty counts for one scenario, with this registry's duration buckets."""
        return RunStats(self.duration_buckets)

    def event(self, event_type: str, outcome: str, count: int = 1) -> None:
        self.events.labels(event_type, outcome).inc(count)

    def render(
        self,
        samples: Sequence[ScenarioSample],
        counts_by_type: Mapping[ScenarioType, int],
        accept: str | None,
    ) -> tuple[bytes, str]:
        """The exposition (text or OpenMetrics, as ``accept`` asks) and its content type."""
        pieces, content_type = self.exposition(samples, counts_by_type, accept)
        return b"".join(pieces), content_type

    def exposition(
        self,
        samples: Sequence[ScenarioSample],
        counts_by_type: Mapping[ScenarioType, int],
        accept: str | None,
    ) -> tuple[Iterator[bytes], str]:
        """The exposition in pieces, so that the caller can let the event loop run
        between them, and its content type."""
        encoder, content_type = choose_encoder(accept or "")
        openmetrics = content_type.startswith("application/openmetrics-text")
        daemon = CollectorRegistry(auto_describe=False)
        daemon.register(_Daemon(self._registry, counts_by_type))

        def pieces() -> Iterator[bytes]:
            yield encoder(daemon).removesuffix(_EOF) if openmetrics else encoder(daemon)
            for piece in scenario_pieces(
                samples,
                openmetrics=openmetrics,
                bounds=self.duration_buckets,
                id_only=self.scenario_id_only,
            ):
                yield piece.encode("utf-8")
            if openmetrics:
                yield _EOF

        return pieces(), content_type


class _Daemon:
    """A one-off collector: the daemon registry plus the scenario counts."""

    def __init__(self, registry: CollectorRegistry, counts_by_type: Mapping[ScenarioType, int]):
        self._registry = registry
        self._counts = counts_by_type

    def collect(self) -> Iterator[Metric]:
        yield from self._registry.collect()
        scenarios = GaugeMetricFamily(
            "monitord_scenarios", "Scenarios loaded, by type.", labels=["scenario_type"]
        )
        for kind in ScenarioType:
            scenarios.add_metric([kind.value], self._counts.get(kind, 0))
        yield scenarios


# --- per-scenario families, written directly ---------------------------------------------
#
# prometheus-client builds a Sample object per line and formats every value through
# floatToGoString; at 10,000 scenarios that is seconds of CPU. These families are written
# straight from the snapshot with the same text: tests compare the two byte for byte.

_EOF = b"# EOF\n"
_HELP = {
    "monitord_scenario": "The labels of each scenario, for joins on scenario_id (value 1).",
    "monitord_scenario_up": "1 if the last run succeeded, 0 if it failed.",
    "monitord_scenario_failing": "1 while the scenario is past its error limit.",
    "monitord_scenario_consecutive_failures": (
        "Failed runs in a row (suppressed runs do not count)."
    ),
    "monitord_scenario_runs": "Runs by result: success, failure or suppressed.",
    "monitord_scenario_duration_seconds": "How long runs took.",
    "monitord_scenario_last_run_timestamp_seconds": "When the last run ended.",
    "monitord_batch_payloads": (
        "Payloads posted for BATCH scenarios, by verdict: success or failure."
    ),
}
_RESULTS = tuple(f',result="{outcome.value}"' for outcome in _OUTCOMES)
_SUPPRESSED = _RESULTS[2]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int) and -(10**15) < value < 10**15:
        return f"{value}.0"  # what floatToGoString gives for such an integer, faster
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text


# Scenarios per piece of a scrape: a piece takes a few milliseconds, and the event loop
# runs between pieces (a scrape at 10,000 scenarios must not delay the schedule).
PIECE_SCENARIOS = 250


def _up(text: str, s: ScenarioSample) -> str:
    return "" if s.up is None else f"monitord_scenario_up{{{text}}} {_number(s.up)}\n"


def _failing(text: str, s: ScenarioSample) -> str:
    return f"monitord_scenario_failing{{{text}}} {_number(int(s.failing))}\n"


def _consecutive(text: str, s: ScenarioSample) -> str:
    return f"monitord_scenario_consecutive_failures{{{text}}} {_number(s.consecutive_failures)}\n"


def _runs(text: str, s: ScenarioSample) -> str:
    return "".join(
        f"monitord_scenario_runs_total{{{text}{result}}} {_number(count)}\n"
        for result, count in zip(_RESULTS, s.runs, strict=True)
        if result is not _SUPPRESSED or s.suppressible or count
    )


def _duration(text: str, s: ScenarioSample, les: tuple[str, ...]) -> str:
    lines, total = [], 0
    for le, count in zip(les, s.buckets, strict=True):
        total += count
        lines.append(f"monitord_scenario_duration_seconds_bucket{{{text}{le}}} {total}.0\n")
    lines.append(f"monitord_scenario_duration_seconds_count{{{text}}} {total}.0\n")
    lines.append(f"monitord_scenario_duration_seconds_sum{{{text}}} {_number(s.duration_sum)}\n")
    return "".join(lines)


def _last_run(text: str, s: ScenarioSample) -> str:
    if s.last_run_s is None:
        return ""
    return f"monitord_scenario_last_run_timestamp_seconds{{{text}}} {_number(s.last_run_s)}\n"


def _payloads(text: str, s: ScenarioSample) -> str:
    if s.payloads is None:
        return ""
    return (
        f'monitord_batch_payloads_total{{{text},result="success"}} {_number(s.payloads[0])}\n'
        f'monitord_batch_payloads_total{{{text},result="failure"}} {_number(s.payloads[1])}\n'
    )


def _info(text: str, s: ScenarioSample) -> str:
    return f"monitord_scenario_info{{{_label_text(s)}}} 1.0\n"


_Lines = Callable[[str, ScenarioSample], str]


def _families(bounds: tuple[float, ...]) -> tuple[tuple[str, str, _Lines], ...]:
    les = tuple(f',le="{_number(b)}"' for b in (*bounds, math.inf))

    def duration(text: str, s: ScenarioSample) -> str:
        return _duration(text, s, les)

    return (
        ("monitord_scenario_up", "gauge", _up),
        ("monitord_scenario_failing", "gauge", _failing),
        ("monitord_scenario_consecutive_failures", "gauge", _consecutive),
        ("monitord_scenario_runs", "counter", _runs),
        ("monitord_scenario_duration_seconds", "histogram", duration),
        ("monitord_scenario_last_run_timestamp_seconds", "gauge", _last_run),
        ("monitord_batch_payloads", "counter", _payloads),
    )


def _label_text(s: ScenarioSample) -> str:
    return ",".join(
        f'{key}="{_escape(value)}"' for key, value in zip(SCENARIO_LABELS, s.labels, strict=True)
    )


def _id_text(s: ScenarioSample) -> str:
    return f'scenario_id="{_escape(s.labels[0])}"'


def scenario_pieces(
    samples: Sequence[ScenarioSample],
    *,
    openmetrics: bool,
    bounds: tuple[float, ...] = DURATION_BUCKETS,
    id_only: bool = False,
) -> Iterator[str]:
    """The per-scenario families of a scrape, in the exposition format asked for, in
    pieces of at most ``PIECE_SCENARIOS`` scenarios (some pieces may be empty).

    ``id_only``: the series carry ``scenario_id`` alone, and an info family comes first
    with every scenario's five labels."""
    label_text = _id_text if id_only else _label_text
    labels: list[str] = []
    for start in range(0, len(samples), PIECE_SCENARIOS):
        labels.extend(label_text(s) for s in samples[start : start + PIECE_SCENARIOS])
        yield ""
    pairs = list(zip(labels, samples, strict=True))
    families = _families(bounds)
    if id_only:
        # prometheus-client writes an info family as a gauge named *_info in the text
        # format, and as type info named without the suffix in OpenMetrics.
        families = (("monitord_scenario", "info", _info), *families)
    for name, kind, lines_of in families:
        if kind == "info":
            shown, kind = (name, kind) if openmetrics else (f"{name}_info", "gauge")
        else:
            shown = f"{name}_total" if kind == "counter" and not openmetrics else name
        yield f"# HELP {shown} {_HELP[name]}\n# TYPE {shown} {kind}\n"
        for start in range(0, len(pairs), PIECE_SCENARIOS):
            yield "".join(lines_of(text, s) for text, s in pairs[start : start + PIECE_SCENARIOS])


def render_scenarios(
    samples: Sequence[ScenarioSample],
    *,
    openmetrics: bool,
    bounds: tuple[float, ...] = DURATION_BUCKETS,
    id_only: bool = False,
) -> str:
    """The per-scenario families of a scrape in one piece."""
    return "".join(
        scenario_pieces(samples, openmetrics=openmetrics, bounds=bounds, id_only=id_only)
    )
