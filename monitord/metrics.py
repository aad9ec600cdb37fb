"""Prometheus metrics (SPEC §9).

Daemon-wide series are ordinary prometheus-client objects. Per-scenario series
are not: a child object per label set costs kilobytes per scenario, so each
scenario keeps a few counters in a ``RunStats`` and a scrape turns a snapshot
of them into metric families. The snapshot is taken on the event loop (cheap
copies); formatting the text can then happen off it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder

from monitord.model import EventType, Outcome, Result, ScenarioType

# How late runs start: most are a millisecond or two; the tail is what matters.
LATENESS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Run durations: few buckets on purpose, since every bucket is a series per scenario.
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

EVENT_OUTCOMES = ("queued", "delivered", "retried", "dead_lettered", "requeued")
SCENARIO_LABELS = ("scenario_id", "scenario_name", "scenario_type", "app_key", "region")
_OUTCOMES = (Outcome.SUCCESS, Outcome.FAILURE, Outcome.SUPPRESSED)
_BUCKET_BOUNDS = [*(str(float(b)) for b in DURATION_BUCKETS), "+Inf"]


class RunStats:
    """Counts of one scenario's runs since start: what its series are made of."""

    __slots__ = ("buckets", "duration_sum", "last_run_s", "payloads", "runs", "up")

    def __init__(self) -> None:
        self.runs = [0, 0, 0]  # by outcome, in _OUTCOMES order
        self.payloads = [0, 0]  # BATCH: payloads judged, success and failure
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)  # per bucket, not cumulative
        self.duration_sum = 0.0
        self.up: int | None = None  # 1 last judged run succeeded, 0 it failed
        self.last_run_s: float | None = None

    def observe(self, result: Result) -> None:
        seconds = result.duration_ms / 1000
        self.runs[_OUTCOMES.index(result.outcome)] += 1
        self.buckets[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.duration_sum += seconds
        self.last_run_s = result.started_at.timestamp() + seconds
        if result.outcome is not Outcome.SUPPRESSED:  # maintenance says nothing about up
            self.up = int(result.outcome is Outcome.SUCCESS)

    def observe_payload(self, outcome: Outcome) -> None:
        self.payloads[0 if outcome is Outcome.SUCCESS else 1] += 1


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


class Metrics:
    """The daemon's registry and the rendering of a scrape."""

    def __init__(self) -> None:
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

    def event(self, event_type: str, outcome: str, count: int = 1) -> None:
        self.events.labels(event_type, outcome).inc(count)

    def render(
        self,
        samples: Sequence[ScenarioSample],
        counts_by_type: Mapping[ScenarioType, int],
        accept: str | None,
    ) -> tuple[bytes, str]:
        """The exposition (text or OpenMetrics, as ``accept`` asks) and its content type."""
        encoder, content_type = choose_encoder(accept or "")
        scrape = CollectorRegistry(auto_describe=False)
        scrape.register(_Scrape(self._registry, samples, counts_by_type))
        return encoder(scrape), content_type


class _Scrape:
    """A one-off collector: the daemon registry plus the per-scenario families."""

    def __init__(
        self,
        registry: CollectorRegistry,
        samples: Sequence[ScenarioSample],
        counts_by_type: Mapping[ScenarioType, int],
    ) -> None:
        self._registry = registry
        self._samples = samples
        self._counts = counts_by_type

    def collect(self) -> Iterator[Metric]:
        yield from self._registry.collect()
        scenarios = GaugeMetricFamily(
            "monitord_scenarios", "Scenarios loaded, by type.", labels=["scenario_type"]
        )
        for kind in ScenarioType:
            scenarios.add_metric([kind.value], self._counts.get(kind, 0))
        yield scenarios
        yield from scenario_families(self._samples)


def scenario_families(samples: Iterable[ScenarioSample]) -> Iterator[Metric]:
    labels = list(SCENARIO_LABELS)
    up = GaugeMetricFamily(
        "monitord_scenario_up", "1 if the last run succeeded, 0 if it failed.", labels=labels
    )
    failing = GaugeMetricFamily(
        "monitord_scenario_failing", "1 while the scenario is past its error limit.", labels=labels
    )
    consecutive = GaugeMetricFamily(
        "monitord_scenario_consecutive_failures",
        "Failed runs in a row (suppressed runs do not count).",
        labels=labels,
    )
    runs = CounterMetricFamily(
        "monitord_scenario_runs",
        "Runs by result: success, failure or suppressed.",
        labels=[*labels, "result"],
    )
    duration = HistogramMetricFamily(
        "monitord_scenario_duration_seconds", "How long runs took.", labels=labels
    )
    last_run = GaugeMetricFamily(
        "monitord_scenario_last_run_timestamp_seconds",
        "When the last run ended.",
        labels=labels,
    )
    payloads = CounterMetricFamily(
        "monitord_batch_payloads",
        "Payloads posted for BATCH scenarios, by verdict: success or failure.",
        labels=[*labels, "result"],
    )
    for sample in samples:
        values = list(sample.labels)
        if sample.up is not None:
            up.add_metric(values, sample.up)
        failing.add_metric(values, int(sample.failing))
        consecutive.add_metric(values, sample.consecutive_failures)
        for outcome, count in zip(_OUTCOMES, sample.runs, strict=True):
            runs.add_metric([*values, outcome.value], count)
        cumulative, total = [], 0
        for bound, count in zip(_BUCKET_BOUNDS, sample.buckets, strict=True):
            total += count
            cumulative.append((bound, total))
        duration.add_metric(values, cumulative, sample.duration_sum)
        if sample.last_run_s is not None:
            last_run.add_metric(values, sample.last_run_s)
        if sample.payloads is not None:
            payloads.add_metric([*values, "success"], sample.payloads[0])
            payloads.add_metric([*values, "failure"], sample.payloads[1])
    yield from (up, failing, consecutive, runs, duration, last_run, payloads)
