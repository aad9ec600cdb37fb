"""Metrics (SPEC §9): per-scenario run statistics and the exposition, parsed back."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from datetime import UTC, datetime

import pytest
from prometheus_client.core import Metric
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from monitord.metrics import (
    DURATION_BUCKETS,
    LATENESS_BUCKETS,
    SCENARIO_LABELS,
    Metrics,
    RunStats,
    ScenarioSample,
)
from monitord.model import Outcome, Result, ScenarioType

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"

SHOP = ("0c96cff0-edc2-11ea-9760-8d94f461e6d4", "shop api health", "API", "shopkey", "KOR")
GATEWAY = ("9f1c7f53-5a0e-4b4e-9d7b-1f4ab0c0d3e1", "billing gateway", "TCP", "billkey", "KOR")
EXPORT = ("5b9e2c41-4f7d-4c1a-9a55-2f3b8c0d1e2f", "nightly export", "BATCH", "shopkey", "KOR")
# A name with everything the text formats must escape, and some that they must not mangle.
AWKWARD_NAME = 'say "hi" \\ back\\slash\nnew line – ümlaut 한글'
# Duration buckets and whether series carry scenario_id only (config.yaml's metrics).
LAYOUTS = {
    "default": (DURATION_BUCKETS, False),
    "id-only": ((0.001, 0.5, 20.0, 1e16), True),
    "no-buckets": ((), False),
    "id-only-no-buckets": ((), True),
}


def result(outcome: Outcome, duration_ms: float, second: int = 0) -> Result:
    return Result(
        scenario_id=SHOP[0],
        scenario_name=SHOP[1],
        scenario_type=ScenarioType.API,
        outcome=outcome,
        reasons=(),
        started_at=T0.replace(second=second),
        duration_ms=duration_ms,
    )


def sample(
    labels: tuple[str, str, str, str, str],
    stats: RunStats,
    *,
    failing: bool = False,
    consecutive_failures: int = 0,
) -> ScenarioSample:
    return ScenarioSample(
        labels=labels,
        failing=failing,
        consecutive_failures=consecutive_failures,
        up=stats.up,
        last_run_s=stats.last_run_s,
        runs=(stats.runs[0], stats.runs[1], stats.runs[2]),
        buckets=tuple(stats.buckets),
        payloads=(stats.payloads[0], stats.payloads[1]) if labels[2] == "BATCH" else None,
        duration_sum=stats.duration_sum,
    )


# --- RunStats --------------------------------------------------------------------------


def test_run_stats_start_empty() -> None:
    stats = RunStats()
    assert stats.runs == [0, 0, 0]
    assert stats.buckets == [0] * (len(DURATION_BUCKETS) + 1)
    assert (stats.duration_sum, stats.up, stats.last_run_s) == (0.0, None, None)


def test_run_stats_observe() -> None:
    stats = RunStats()
    stats.observe(result(Outcome.SUCCESS, 30.0, second=0))  # 0.03 s: bucket le=0.25
    assert (stats.up, stats.runs) == (1, [1, 0, 0])
    assert stats.last_run_s == pytest.approx(T0.timestamp() + 0.03)
    stats.observe(result(Outcome.FAILURE, 250.0, second=10))  # exactly a bound: le=0.25
    assert (stats.up, stats.runs) == (0, [1, 1, 0])
    stats.observe(result(Outcome.SUPPRESSED, 12_000.0, second=20))  # beyond every bound
    # Maintenance says nothing about up: the failure before it still stands.
    assert (stats.up, stats.runs) == (0, [1, 1, 1])
    assert stats.last_run_s == pytest.approx(T0.timestamp() + 20 + 12.0)
    assert stats.duration_sum == pytest.approx(0.03 + 0.25 + 12.0)
    expected = [0] * (len(DURATION_BUCKETS) + 1)
    expected[DURATION_BUCKETS.index(0.25)] = 2
    expected[-1] = 1  # +Inf only
    assert stats.buckets == expected
    stats.observe(result(Outcome.SUCCESS, 1.0, second=30))
    assert stats.up == 1
    assert stats.buckets[0] == 3  # 0.001 s: le=0.25, with the two before


def test_run_stats_with_other_buckets() -> None:
    metrics = Metrics((0.01, 2.0))
    stats = metrics.run_stats()
    for ms in (5.0, 10.0, 10.5, 2_000.0, 2_000.1, 90_000.0):
        stats.observe(result(Outcome.SUCCESS, ms))
    assert stats.buckets == [2, 2, 2]
    counts_only = Metrics(()).run_stats()
    for ms in (0.0, 1.0, 10**6):
        counts_only.observe(result(Outcome.FAILURE, ms))
    assert counts_only.buckets == [3]


@pytest.mark.parametrize(
    "buckets", [(0.0,), (-1.0, 1.0), (1.0, 1.0), (2.0, 1.0), (1.0, float("inf")), (float("nan"),)]
)
def test_metrics_refuse_buckets_that_are_not_positive_and_increasing(
    buckets: tuple[float, ...],
) -> None:
    with pytest.raises(ValueError, match="positive and increasing"):
        Metrics(buckets)


# --- render ------------------------------------------------------------------------------


def scrape(
    metrics: Metrics,
    samples: list[ScenarioSample],
    counts: dict[ScenarioType, int],
    accept: str | None = None,
) -> tuple[dict[str, Metric], str, str]:
    body, content_type = metrics.render(samples, counts, accept)
    text = body.decode("utf-8")
    parser = parse_openmetrics if content_type.startswith("application/openmetrics") else parse_text
    return {family.name: family for family in parser(text)}, text, content_type


def values(
    family: Metric, sample_name: str | None = None
) -> dict[tuple[tuple[str, str], ...], float]:
    """The family's samples (of one name) keyed by their sorted labels."""
    return {
        tuple(sorted(s.labels.items())): s.value
        for s in family.samples
        if sample_name is None or s.name == sample_name
    }


def key(labels: tuple[str, ...], **extra: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({**dict(zip(SCENARIO_LABELS, labels, strict=True)), **extra}.items()))


@pytest.fixture
def daemon_metrics() -> Metrics:
    metrics = Metrics()
    for lateness in (0.0005, 0.003, 0.003, 0.7, 42.0):
        metrics.lateness.observe(lateness)
    metrics.missed.inc(3)
    metrics.skipped.inc(2)
    metrics.reload_successful.set(1)
    metrics.reload_success_time.set(1_795_000_000.5)
    return metrics


def shop_stats() -> RunStats:
    stats = RunStats()
    for outcome, ms in [
        (Outcome.SUCCESS, 30.0),
        (Outcome.FAILURE, 300.0),
        (Outcome.FAILURE, 7_000.0),
        (Outcome.SUPPRESSED, 20_000.0),
    ]:
        stats.observe(result(outcome, ms))
    return stats


def export_stats() -> RunStats:
    """A BATCH scenario: two payloads passed, one failed, and one payload was missed."""
    stats = RunStats()
    for outcome in (Outcome.SUCCESS, Outcome.FAILURE, Outcome.SUCCESS):
        stats.observe(result(outcome, 1.0))
        stats.observe_payload(outcome)
    stats.observe(result(Outcome.FAILURE, 0.0))
    return stats


SCENARIO_FAMILIES = {
    # family name as parsed -> sample names it holds
    "monitord_scenario_up": {"monitord_scenario_up"},
    "monitord_scenario_failing": {"monitord_scenario_failing"},
    "monitord_scenario_consecutive_failures": {"monitord_scenario_consecutive_failures"},
    "monitord_scenario_runs": {"monitord_scenario_runs_total"},
    "monitord_scenario_duration_seconds": {
        "monitord_scenario_duration_seconds_bucket",
        "monitord_scenario_duration_seconds_count",
        "monitord_scenario_duration_seconds_sum",
    },
    "monitord_scenario_last_run_timestamp_seconds": {
        "monitord_scenario_last_run_timestamp_seconds"
    },
    "monitord_batch_payloads": {"monitord_batch_payloads_total"},
}
DAEMON_FAMILIES = {
    "monitord_scenarios": {"monitord_scenarios"},
    "monitord_schedule_lateness_seconds": {
        "monitord_schedule_lateness_seconds_bucket",
        "monitord_schedule_lateness_seconds_count",
        "monitord_schedule_lateness_seconds_sum",
    },
    "monitord_schedule_missed": {"monitord_schedule_missed_total"},
    "monitord_schedule_skipped": {"monitord_schedule_skipped_total"},
    "monitord_config_last_reload_successful": {"monitord_config_last_reload_successful"},
    "monitord_config_last_reload_success_timestamp_seconds": {
        "monitord_config_last_reload_success_timestamp_seconds"
    },
    "monitord_events": {"monitord_events_total"},
    "monitord_events_outbox_pending": {"monitord_events_outbox_pending"},
    "monitord_events_dead_letters": {"monitord_events_dead_letters"},
}
TYPES = {
    "monitord_scenario_up": "gauge",
    "monitord_scenario_failing": "gauge",
    "monitord_scenario_consecutive_failures": "gauge",
    "monitord_scenario_runs": "counter",
    "monitord_scenario_duration_seconds": "histogram",
    "monitord_scenario_last_run_timestamp_seconds": "gauge",
    "monitord_batch_payloads": "counter",
    "monitord_scenarios": "gauge",
    "monitord_schedule_lateness_seconds": "histogram",
    "monitord_schedule_missed": "counter",
    "monitord_schedule_skipped": "counter",
    "monitord_config_last_reload_successful": "gauge",
    "monitord_config_last_reload_success_timestamp_seconds": "gauge",
    "monitord_events": "counter",
    "monitord_events_outbox_pending": "gauge",
    "monitord_events_dead_letters": "gauge",
}


@pytest.mark.parametrize("accept", [None, "text/plain", OPENMETRICS])
def test_every_family_is_exposed_with_its_labels(
    daemon_metrics: Metrics, accept: str | None
) -> None:
    never_run = RunStats()
    families, _, _ = scrape(
        daemon_metrics,
        [
            sample(SHOP, shop_stats(), failing=True, consecutive_failures=2),
            sample(GATEWAY, never_run),
            sample(EXPORT, export_stats()),
        ],
        {ScenarioType.API: 1, ScenarioType.TCP: 1, ScenarioType.BATCH: 1},
        accept,
    )
    assert set(families) == set(SCENARIO_FAMILIES) | set(DAEMON_FAMILIES)
    payloads = {s.labels["result"]: s.value for s in families["monitord_batch_payloads"].samples}
    assert payloads == {"success": 2.0, "failure": 1.0}
    assert {s.labels["scenario_name"] for s in families["monitord_batch_payloads"].samples} == {
        "nightly export"
    }
    for name, family in families.items():
        assert family.type == TYPES[name], name
        assert {s.name for s in family.samples} <= (SCENARIO_FAMILIES | DAEMON_FAMILIES)[name]
    for name in SCENARIO_FAMILIES:
        extra = (
            {"result"} if name in ("monitord_scenario_runs", "monitord_batch_payloads") else set()
        )
        if name == "monitord_scenario_duration_seconds":
            extra = {"le"}
        for s in families[name].samples:
            if s.name.endswith(("_count", "_sum")):
                assert set(s.labels) == set(SCENARIO_LABELS), s
            else:
                assert set(s.labels) == set(SCENARIO_LABELS) | extra, s


@pytest.mark.parametrize("accept", [None, OPENMETRICS])
def test_scenario_values(daemon_metrics: Metrics, accept: str | None) -> None:
    shop = shop_stats()
    families, _, _ = scrape(
        daemon_metrics,
        [
            sample(SHOP, shop, failing=True, consecutive_failures=2),
            sample(GATEWAY, RunStats()),
        ],
        {ScenarioType.API: 1, ScenarioType.TCP: 1},
        accept,
    )
    # up: the last judged run failed; absent for a scenario that has not run.
    assert values(families["monitord_scenario_up"]) == {key(SHOP): 0.0}
    assert values(families["monitord_scenario_failing"]) == {key(SHOP): 1.0, key(GATEWAY): 0.0}
    assert values(families["monitord_scenario_consecutive_failures"]) == {
        key(SHOP): 2.0,
        key(GATEWAY): 0.0,
    }
    runs = values(families["monitord_scenario_runs"])
    assert {k: v for k, v in runs.items() if ("scenario_id", SHOP[0]) in k} == {
        key(SHOP, result="success"): 1.0,
        key(SHOP, result="failure"): 2.0,
        key(SHOP, result="suppressed"): 1.0,
    }
    assert {k: v for k, v in runs.items() if ("scenario_id", GATEWAY[0]) in k} == {
        key(GATEWAY, result=r): 0.0 for r in ("success", "failure", "suppressed")
    }
    assert values(families["monitord_scenario_last_run_timestamp_seconds"]) == {
        key(SHOP): pytest.approx(T0.timestamp() + 20.0)
    }
    # The duration histogram: cumulative buckets, +Inf equals the count, the sum.
    duration = families["monitord_scenario_duration_seconds"]
    buckets = {
        float(s.labels["le"]): s.value
        for s in duration.samples
        if s.name.endswith("_bucket") and s.labels["scenario_id"] == SHOP[0]
    }
    assert list(buckets) == [*DURATION_BUCKETS, float("inf")]
    expected = {b: 0.0 for b in DURATION_BUCKETS}
    for bound in DURATION_BUCKETS:  # 0.03 s, 0.3 s, 7 s, 20 s
        expected[bound] = float(sum(1 for d in (0.03, 0.3, 7.0) if d <= bound))
    assert buckets == {**expected, float("inf"): 4.0}
    assert values(duration, "monitord_scenario_duration_seconds_count")[key(SHOP)] == 4.0
    assert values(duration, "monitord_scenario_duration_seconds_sum")[key(SHOP)] == pytest.approx(
        27.33
    )
    never = values(duration, "monitord_scenario_duration_seconds_bucket")
    assert all(v == 0.0 for k, v in never.items() if ("scenario_id", GATEWAY[0]) in k)


@pytest.mark.parametrize("accept", [None, OPENMETRICS])
def test_id_only_series_carry_the_id_and_one_info_series_the_five_labels(
    accept: str | None,
) -> None:
    metrics = Metrics(scenario_id_only=True)
    shop = metrics.run_stats()
    shop.observe(result(Outcome.FAILURE, 300.0))
    export = metrics.run_stats()
    export.observe_payload(Outcome.SUCCESS)
    families, _, _ = scrape(
        metrics,
        [sample(SHOP, shop, failing=True, consecutive_failures=1), sample(EXPORT, export)],
        {ScenarioType.API: 1, ScenarioType.BATCH: 1},
        accept,
    )
    # The text parser names the family after its one sample; OpenMetrics has a type info.
    info = families.pop("monitord_scenario_info", None) or families.pop("monitord_scenario")
    assert info.type == ("info" if accept else "gauge")
    assert [(s.name, s.labels, s.value) for s in info.samples] == [
        ("monitord_scenario_info", dict(zip(SCENARIO_LABELS, labels, strict=True)), 1.0)
        for labels in (SHOP, EXPORT)
    ]
    assert set(families) == set(SCENARIO_FAMILIES) | set(DAEMON_FAMILIES)
    for name in SCENARIO_FAMILIES:
        assert families[name].samples, name
        for s in families[name].samples:
            assert "scenario_id" in s.labels, s
            assert set(s.labels) <= {"scenario_id", "result", "le"}, s
    assert values(families["monitord_scenario_up"]) == {(("scenario_id", SHOP[0]),): 0.0}
    assert values(families["monitord_scenario_consecutive_failures"]) == {
        (("scenario_id", SHOP[0]),): 1.0,
        (("scenario_id", EXPORT[0]),): 0.0,
    }
    assert values(families["monitord_batch_payloads"]) == {
        (("result", "failure"), ("scenario_id", EXPORT[0])): 0.0,
        (("result", "success"), ("scenario_id", EXPORT[0])): 1.0,
    }
    assert families["monitord_scenarios"].samples  # the daemon's own series are unchanged


@pytest.mark.parametrize("accept", [None, OPENMETRICS])
def test_daemon_values(daemon_metrics: Metrics, accept: str | None) -> None:
    families, _, _ = scrape(
        daemon_metrics, [], {ScenarioType.API: 3, ScenarioType.BATCH: 1}, accept
    )
    assert values(families["monitord_scenarios"]) == {
        (("scenario_type", "API"),): 3.0,
        (("scenario_type", "TCP"),): 0.0,
        (("scenario_type", "UDP"),): 0.0,
        (("scenario_type", "BATCH"),): 1.0,
    }
    assert values(families["monitord_schedule_missed"]) == {(): 3.0}
    assert values(families["monitord_schedule_skipped"]) == {(): 2.0}
    assert values(families["monitord_config_last_reload_successful"]) == {(): 1.0}
    assert values(families["monitord_config_last_reload_success_timestamp_seconds"]) == {
        (): 1_795_000_000.5
    }
    lateness = families["monitord_schedule_lateness_seconds"]
    buckets = {
        float(s.labels["le"]): s.value for s in lateness.samples if s.name.endswith("_bucket")
    }
    assert list(buckets) == [*map(float, LATENESS_BUCKETS), float("inf")]
    observed = (0.0005, 0.003, 0.003, 0.7, 42.0)
    for bound, count in buckets.items():
        assert count == sum(1 for o in observed if o <= bound), bound
    assert buckets[float("inf")] == 5.0
    assert values(lateness, "monitord_schedule_lateness_seconds_count") == {(): 5.0}
    assert values(lateness, "monitord_schedule_lateness_seconds_sum")[()] == pytest.approx(
        sum(observed)
    )
    # No scenarios: the per-scenario families are there, without samples.
    assert families["monitord_scenario_failing"].samples == []


def test_text_format_by_default() -> None:
    for accept in (None, "", "text/plain", "*/*"):
        body, content_type = Metrics().render([], {}, accept)
        assert content_type.startswith("text/plain; version=0.0.4"), accept
        assert b"# EOF" not in body


def test_openmetrics_when_asked() -> None:
    stats = shop_stats()
    for accept in (OPENMETRICS, "application/openmetrics-text", f"{OPENMETRICS}, text/plain;q=0.5"):
        families, text, content_type = scrape(Metrics(), [sample(SHOP, stats)], {}, accept)
        assert content_type.startswith("application/openmetrics-text"), accept
        assert text.endswith("# EOF\n")
        assert "monitord_scenario_runs" in families


@pytest.mark.parametrize("accept", [None, OPENMETRICS])
def test_label_values_round_trip(accept: str | None) -> None:
    labels = ('id-"1"', AWKWARD_NAME, "API", "key\\with\\backslashes", "서울")
    stats = RunStats()
    stats.observe(result(Outcome.SUCCESS, 5.0))
    families, text, _ = scrape(Metrics(), [sample(labels, stats)], {}, accept)
    # Escaped in the exposition: one sample per line, quotes and newlines escaped.
    assert '\\"hi\\"' in text
    assert "back\\\\slash\\nnew line" in text
    assert "ümlaut 한글" in text
    assert values(families["monitord_scenario_up"]) == {key(labels): 1.0}
    for family in families.values():
        for s in family.samples:
            if "scenario_id" in s.labels:
                assert (s.labels["scenario_id"], s.labels["scenario_name"]) == labels[:2]
                assert (s.labels["app_key"], s.labels["region"]) == labels[3:]


@pytest.mark.parametrize("accept", [None, OPENMETRICS])
def test_no_created_series(daemon_metrics: Metrics, accept: str | None) -> None:
    families, text, _ = scrape(daemon_metrics, [sample(SHOP, shop_stats())], {}, accept)
    assert "_created" not in text
    assert all(not s.name.endswith("_created") for f in families.values() for s in f.samples)


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (.ci/run fetches it)")
@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_promtool_accepts_the_exposition(layout: tuple[tuple[float, ...], bool]) -> None:
    assert PROMTOOL is not None
    bounds, id_only = layout
    metrics = Metrics(bounds, scenario_id_only=id_only)
    metrics.lateness.observe(0.003)
    shop = metrics.run_stats()
    shop.observe(result(Outcome.FAILURE, 300.0))
    awkward = ('id-"1"', AWKWARD_NAME, "API", "key", "KOR")
    samples = [sample(SHOP, shop), sample(awkward, metrics.run_stats())]
    body, _ = metrics.render(samples, {ScenarioType.API: 2}, None)
    done = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    assert done.stdout.decode() + done.stderr.decode() == ""
    # And it does complain about a broken one, so the check above means something.
    broken = subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=b"# TYPE requests counter\nrequests 1\n",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert broken.returncode != 0


# --- the per-scenario families equal prometheus-client's own rendering --------------------


def reference_families(
    samples: list[ScenarioSample],
    bounds: tuple[float, ...] = DURATION_BUCKETS,
    id_only: bool = False,
) -> list[Metric]:
    """The per-scenario families built with prometheus-client's metric families."""
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        InfoMetricFamily,
    )
    from prometheus_client.utils import floatToGoString

    labels = ["scenario_id"] if id_only else list(SCENARIO_LABELS)
    info = InfoMetricFamily(
        "monitord_scenario",
        "The labels of each scenario, for joins on scenario_id (value 1).",
        labels=list(SCENARIO_LABELS),
    )
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
        "monitord_scenario_last_run_timestamp_seconds", "When the last run ended.", labels=labels
    )
    payloads = CounterMetricFamily(
        "monitord_batch_payloads",
        "Payloads posted for BATCH scenarios, by verdict: success or failure.",
        labels=[*labels, "result"],
    )
    les = [*(floatToGoString(b) for b in bounds), "+Inf"]
    for s in samples:
        values = [s.labels[0]] if id_only else list(s.labels)
        info.add_metric(list(s.labels), {})
        if s.up is not None:
            up.add_metric(values, s.up)
        failing.add_metric(values, int(s.failing))
        consecutive.add_metric(values, s.consecutive_failures)
        for outcome, count in zip(("success", "failure", "suppressed"), s.runs, strict=True):
            if outcome != "suppressed" or s.suppressible or count:
                runs.add_metric([*values, outcome], count)
        cumulative, total = [], 0
        for bound, count in zip(les, s.buckets, strict=True):
            total += count
            cumulative.append((bound, total))
        duration.add_metric(values, cumulative, s.duration_sum)
        if s.last_run_s is not None:
            last_run.add_metric(values, s.last_run_s)
        if s.payloads is not None:
            payloads.add_metric([*values, "success"], s.payloads[0])
            payloads.add_metric([*values, "failure"], s.payloads[1])
    families: list[Metric] = [up, failing, consecutive, runs, duration, last_run, payloads]
    return [info, *families] if id_only else families


def canonical(text: str) -> list[tuple[str, tuple[tuple[str, str], ...], str]]:
    """The lines of an exposition with each sample's labels in sorted order (label order
    means nothing, and prometheus-client versions differ in it); comments kept whole."""
    lines = []
    for line in text.splitlines():
        if line.startswith("#") or "{" not in line:
            lines.append((line, (), ""))
            continue
        name, rest = line.split("{", 1)
        labels, i = [], 0
        while rest[i] != "}":
            eq = rest.index('="', i)
            key, i, value = rest[i:eq], eq + 2, []
            while rest[i] != '"':
                value.append(rest[i : i + 2] if rest[i] == "\\" else rest[i])
                i += 2 if rest[i] == "\\" else 1
            labels.append((key, "".join(value)))
            i += 2 if rest[i + 1] == "," else 1
        lines.append((name, tuple(sorted(labels)), rest[i + 1 :]))
    return lines


def test_canonical_reads_escaped_label_values() -> None:
    line = 'm{b="x\\"}\\\\",a="y,z=\\"w\\""} 1.0'
    assert canonical(line) == [("m", (("a", 'y,z=\\"w\\"'), ("b", 'x\\"}\\\\')), " 1.0")]


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
@pytest.mark.parametrize("accept", [None, OPENMETRICS], ids=["text", "openmetrics"])
def test_scenario_families_are_written_as_prometheus_client_writes_them(
    accept: str | None, layout: tuple[tuple[float, ...], bool]
) -> None:
    """The hand-written per-scenario exposition is byte for byte what prometheus-client
    writes for the same families: escaping, counters' ``_total``, cumulative buckets,
    number formats (large counts, timestamps, tiny sums, bucket bounds), families without
    samples, the info family of the id-only layout."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import choose_encoder

    bounds, id_only = layout
    metrics = Metrics(bounds, scenario_id_only=id_only)
    busy = metrics.run_stats()
    for n, (outcome, ms) in enumerate(
        [
            (Outcome.SUCCESS, 3),
            (Outcome.FAILURE, 700),
            (Outcome.SUPPRESSED, 30_000),
            (Outcome.SUCCESS, 0.001),
        ]
    ):
        busy.observe(result(outcome, ms, second=n))
    busy.runs[0] = 10**17  # past where integers print as they are
    batch = metrics.run_stats()
    batch.observe_payload(Outcome.FAILURE)
    awkward = ('id-"1"\\\n', AWKWARD_NAME, "API", 'key"\\', "K\nR")
    plain = dataclasses.replace(sample(GATEWAY, metrics.run_stats()), suppressible=False)
    samples = [
        sample(SHOP, busy, failing=True, consecutive_failures=3),
        sample(awkward, metrics.run_stats()),
        sample(EXPORT, batch),
        plain,
    ]

    class Families:
        def collect(self) -> list[Metric]:
            return reference_families(samples, bounds, id_only)

    encoder, _ = choose_encoder(accept or "")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Families())
    expected = encoder(registry).decode("utf-8")
    first = expected.splitlines()[0]
    info = "monitord_scenario" if accept == OPENMETRICS else "monitord_scenario_info"
    assert first.split()[2] == (info if id_only else "monitord_scenario_up")
    _, text, _ = scrape(metrics, samples, {}, accept)
    start = text.index(first + "\n")
    assert canonical(text[start:]) == canonical(expected)
    assert len(text[start:]) == len(expected)
    gateway = [line for line in text.splitlines() if f'"{GATEWAY[0]}"' in line and "runs" in line]
    assert [line.count('result="') for line in gateway] == [1, 1]  # no suppressed series
    # An empty daemon writes the family headers only, like prometheus-client.
    registry = CollectorRegistry(auto_describe=False)
    samples = []
    registry.register(Families())
    _, text, _ = scrape(metrics, [], {}, accept)
    assert text[text.index(first + "\n") :] == encoder(registry).decode("utf-8")


def test_a_large_scrape_comes_in_pieces_of_a_few_hundred_scenarios() -> None:
    """So the event loop runs between pieces: no piece holds more than PIECE_SCENARIOS
    scenarios' lines, and the pieces joined are the whole exposition."""
    from monitord.metrics import PIECE_SCENARIOS, render_scenarios, scenario_pieces

    stats = RunStats()
    stats.observe(result(Outcome.SUCCESS, 20.0))
    count = PIECE_SCENARIOS * 2 + 7
    samples = [sample((f"id-{n}", f"s{n}", "API", "k", "KOR"), stats) for n in range(count)]
    pieces = list(scenario_pieces(samples, openmetrics=False))
    assert "".join(pieces) == render_scenarios(samples, openmetrics=False)
    for piece in pieces:
        assert len({line.split('"')[1] for line in piece.splitlines() if "{" in line}) <= (
            PIECE_SCENARIOS
        )
    failing = [p for p in pieces if p.startswith("monitord_scenario_failing{")]
    assert [p.count("\n") for p in failing] == [PIECE_SCENARIOS, PIECE_SCENARIOS, 7]
    body, _ = Metrics().render(samples, {ScenarioType.API: count}, None)
    assert body.decode().endswith("".join(pieces))
