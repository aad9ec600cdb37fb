"""config.yaml: defaults, every key, secrets and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitord.config.errors import ConfigError
from monitord.config.settings import (
    Config,
    Defaults,
    EventsConfig,
    MetricsConfig,
    ScenarioLabels,
    Secret,
    load_config,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env or {})
    return [f"{e.line}: {e.field}: {e.message}" for e in caught.value.errors]


def test_no_file_gives_defaults() -> None:
    config = load_config(None, {})
    assert config == Config()
    assert config.listen_host == "127.0.0.1"  # loopback by default
    assert config.listen_port == 9480
    assert config.region == "KOR"
    assert config.timezone == "UTC"
    assert config.defaults == Defaults(10_000, 0, 10 * 1024 * 1024, 500)
    assert config.events is None
    assert config.admin_key is None
    assert config.metrics == MetricsConfig(ScenarioLabels.ALL, None)  # SPEC §9's labels


@pytest.mark.parametrize("text", ["", "# nothing but a comment\n", "{}\n"])
def test_empty_file_is_valid(tmp_path: Path, text: str) -> None:
    config = load_config(write(tmp_path, text), {})
    assert config.scenarios == ("./scenarios",)
    assert config.state_path == tmp_path / "var" / "monitord.sqlite3"


def test_every_key(tmp_path: Path) -> None:
    (tmp_path / "token.txt").write_text("tok-from-file\n", encoding="utf-8")
    path = write(
        tmp_path,
        """
scenarios: [./a, "/abs/b/*.yaml"]
state: /var/lib/monitord/state.sqlite3
region: US
timezone: Asia/Seoul
listen: "[::1]:9999"
adminKey: {env: ADMIN}
services:
  - {appKey: 81713f1cc96b4eae834f7535ec4fae7a, name: shop}
  - {appKey: other}
events:
  url: https://events.example.test/api/v2/events/ingest
  token: {file: token.txt}
  entitySelector: type(SERVICE)
  timeoutMinutes: 30
defaults:
  timeoutMs: 5000
  errorLimitCount: 2
  maxResponseBytes: 1024
  expressionBudgetMs: 250
metrics:
  scenarioLabels: id
  durationBuckets: [0.1, 1, 2.5]
""",
    )
    config = load_config(path, {"ADMIN": "admin-secret"})
    assert config.scenario_paths == (tmp_path / "a", Path("/abs/b/*.yaml"))
    assert config.state_path == Path("/var/lib/monitord/state.sqlite3")
    assert (config.region, config.timezone) == ("US", "Asia/Seoul")
    assert (config.listen_host, config.listen_port) == ("::1", 9999)
    assert config.admin_key == Secret("admin-secret", "env ADMIN")
    assert [s.app_key for s in config.services] == ["81713f1cc96b4eae834f7535ec4fae7a", "other"]
    assert config.services[1].name == "other"
    assert config.events is not None
    assert config.events.token == Secret("tok-from-file", "file token.txt")
    assert config.events.timeout_minutes == 30
    assert config.events.refresh_interval_s == 900  # half the timeout by default
    assert config.defaults == Defaults(5000, 2, 1024, 250)
    assert config.metrics == MetricsConfig(ScenarioLabels.ID, (0.1, 1.0, 2.5))


def test_event_delivery_settings_and_their_defaults(tmp_path: Path) -> None:
    bare = load_config(write(tmp_path, "events: {url: 'http://sink.test/ingest'}\n"), {})
    assert bare.events == EventsConfig(url="http://sink.test/ingest", token=None)
    assert (bare.events.timeout_minutes, bare.events.refresh_interval_s) == (15, 450)
    assert (bare.events.send_timeout_s, bare.events.retry_max_s) == (10, 300)
    assert (bare.events.max_attempts, bare.events.max_age_hours) == (300, 24)
    text = (
        "events:\n  url: https://sink.test/ingest\n  timeoutMinutes: 4\n  refreshSeconds: 30\n"
        "  sendTimeoutSeconds: 3\n  retryMaxSeconds: 60\n  maxAttempts: 5\n  maxAgeHours: 2\n"
    )
    events = load_config(write(tmp_path, text), {}).events
    assert events == EventsConfig(
        url="https://sink.test/ingest",
        token=None,
        timeout_minutes=4,
        refresh_s=30,
        send_timeout_s=3,
        retry_max_s=60,
        max_attempts=5,
        max_age_hours=2,
    )
    assert events.refresh_interval_s == 30


def test_secrets_never_show_themselves(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "adminKey: {env: ADMIN}\n"), {"ADMIN": "hunter2"})
    assert "hunter2" not in repr(config)
    assert "hunter2" not in str(config.admin_key)


def test_unset_secret_variable_leaves_the_secret_absent(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "adminKey: {env: NOT_SET_ANYWHERE}\n"), {})
    assert config.admin_key is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nonsense: 1\n", ["1: nonsense: unknown field"]),
        (
            "listen: localhost\n",
            ["1: listen: must be HOST:PORT (e.g. 127.0.0.1:9480), got 'localhost'"],
        ),
        (
            "listen: '1.2.3.4:99999'\n",
            ["1: listen: must be HOST:PORT (e.g. 127.0.0.1:9480), got '1.2.3.4:99999'"],
        ),
        (
            "timezone: Mars/Olympus\n",
            ["1: timezone: unknown time zone 'Mars/Olympus' (use an IANA name such as Asia/Seoul)"],
        ),
        ("region: 5\n", ["1: region: must be a string, got an integer"]),
        ("region: 'K O R'\n", ["1: region: must be letters, digits, '-' or '_' (at most 32)"]),
        ("adminKey: {env: A, file: b}\n", ["1: adminKey: give exactly one of env or file"]),
        (
            "adminKey: {vault: x}\n",
            [
                "1: adminKey.vault: unknown field (use {env: NAME} or {file: PATH})",
                "1: adminKey: give exactly one of env or file",
            ],
        ),
        (
            "adminKey: {file: /nonexistent/key}\n",
            ["1: adminKey.file: cannot read /nonexistent/key: No such file or directory"],
        ),
        ("services: [{name: x}]\n", ["1: services[0].appKey: missing required field"]),
        (
            "services:\n  - {appKey: a}\n  - {appKey: a}\n",
            ["3: services[1].appKey: duplicate appKey 'a'"],
        ),
        (
            "services: [{appKey: 'has space'}]\n",
            ["1: services[0].appKey: must be 1-64 letters, digits, '-' or '_'"],
        ),
        ("events: {token: {env: T}}\n", ["1: events.url: missing required field"]),
        (
            "events: {url: 'ftp://x'}\n",
            ["1: events.url: must be an http:// or https:// URL with a host"],
        ),
        (
            "events: {url: 'http://x', timeoutMinutes: 361}\n",
            ["1: events.timeoutMinutes: must be at most 360, got 361"],
        ),
        (
            "events: {url: 'http://x', timeoutMinutes: 2, refreshSeconds: 61}\n",
            ["1: events.refreshSeconds: must be at most 60, got 61"],
        ),
        (
            "events: {url: 'http://x', refreshSeconds: 0}\n",
            ["1: events.refreshSeconds: must be at least 1, got 0"],
        ),
        (
            "events: {url: 'http://x', sendTimeoutSeconds: 301, retryMaxSeconds: 0}\n",
            [
                "1: events.sendTimeoutSeconds: must be at most 300, got 301",
                "1: events.retryMaxSeconds: must be at least 1, got 0",
            ],
        ),
        (
            "events: {url: 'http://x', maxAttempts: 0, maxAgeHours: 721}\n",
            [
                "1: events.maxAttempts: must be at least 1, got 0",
                "1: events.maxAgeHours: must be at most 720, got 721",
            ],
        ),
        (
            "events: {url: 'http://x', retries: 3}\n",
            ["1: events.retries: unknown field"],
        ),
        ("defaults: {timeoutMs: 0}\n", ["1: defaults.timeoutMs: must be at least 1, got 0"]),
        (
            "defaults: {errorLimitCount: -1}\n",
            ["1: defaults.errorLimitCount: must be at least 0, got -1"],
        ),
        (
            "defaults: {errorLimitCount: true}\n",
            ["1: defaults.errorLimitCount: must be an integer, got a boolean"],
        ),
        (
            "defaults: {timeoutMs: '5000'}\n",
            ["1: defaults.timeoutMs: must be an integer, got a string ('5000')"],
        ),
        ("scenarios: [1]\n", ["1: scenarios[0]: must be a non-empty string"]),
        ("metrics: id\n", ["1: metrics: must be a mapping, got a string ('id')"]),
        ("metrics: {labels: id}\n", ["1: metrics.labels: unknown field"]),
        (
            "metrics: {scenarioLabels: names}\n",
            ["1: metrics.scenarioLabels: must be one of all, id, got 'names'"],
        ),
        (
            "metrics: {durationBuckets: 0.5}\n",
            ["1: metrics.durationBuckets: must be a list, got a number"],
        ),
        (
            "metrics:\n  durationBuckets:\n    - 0.5\n    - 0.5\n",
            [
                "4: metrics.durationBuckets[1]: must be larger than the bucket before it (0.5), got 0.5"
            ],
        ),
        (
            "metrics: {durationBuckets: [2, 1]}\n",
            ["1: metrics.durationBuckets[1]: must be larger than the bucket before it (2), got 1"],
        ),
        (
            "metrics: {durationBuckets: [0, 1]}\n",
            ["1: metrics.durationBuckets[0]: must be a positive number of seconds, got 0"],
        ),
        (
            "metrics: {durationBuckets: [-1]}\n",
            ["1: metrics.durationBuckets[0]: must be a positive number of seconds, got -1"],
        ),
        (
            "metrics: {durationBuckets: [1, .inf]}\n",
            ["1: metrics.durationBuckets[1]: must be a positive number of seconds, got inf"],
        ),
        (
            "metrics: {durationBuckets: [.nan]}\n",
            ["1: metrics.durationBuckets[0]: must be a positive number of seconds, got nan"],
        ),
        (
            "metrics: {durationBuckets: ['1']}\n",
            [
                "1: metrics.durationBuckets[0]: must be a positive number of seconds,"
                " got a string ('1')"
            ],
        ),
        (
            f"metrics: {{durationBuckets: [{10**400}]}}\n",
            [
                "1: metrics.durationBuckets[0]: must be at most 1000000000 seconds,"
                " got 10000000000000000000…"
            ],
        ),
        (
            "metrics: {durationBuckets: [1.0e+300]}\n",
            ["1: metrics.durationBuckets[0]: must be at most 1000000000 seconds, got 1e+300"],
        ),
        (
            "metrics: {durationBuckets: [true]}\n",
            ["1: metrics.durationBuckets[0]: must be a positive number of seconds, got a boolean"],
        ),
        (
            f"metrics: {{durationBuckets: {list(range(1, 32))}}}\n",
            ["1: metrics.durationBuckets: at most 30, got 31"],
        ),
        ("- a\n- b\n", ["1: -: must be a mapping, got a list"]),
        (
            "a: [1, 2\n",
            ["2: yaml: did not find expected ',' or ']' (while parsing a flow sequence)"],
        ),
        ("state: a\nstate: b\n", ["2: yaml: duplicate key 'state'"]),
        (
            "watchIntervalSeconds: 2\nmetrics: {durationBuckets: [1" + "0" * 5000 + "]}\n",
            ["2: yaml: integer of more than 4300 digits"],
        ),
    ],
)
def test_bad_values(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert errors_of(write(tmp_path, text)) == expected


def test_all_errors_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "listen: nope\nregion: ''\ndefaults: {timeoutMs: -5}\nfoo: 1\n")
    assert errors_of(path) == [
        "1: listen: must be HOST:PORT (e.g. 127.0.0.1:9480), got 'nope'",
        "2: region: must not be empty",
        "3: defaults.timeoutMs: must be at least 1, got -5",
        "4: foo: unknown field",
    ]


def test_hostile_files(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"\xff\xfe\x00bad")
    assert errors_of(path) == ["1: -: not UTF-8 text: invalid start byte"]
    path.write_text("a: !!python/object/apply:os.system ['true']\n", encoding="utf-8")
    assert errors_of(path)[0].startswith("1: yaml: could not determine a constructor")
    path.write_bytes(b"a: '" + b"x" * (1024 * 1024 + 10) + b"'\n")
    assert errors_of(path) == ["1: -: larger than 1048576 bytes"]
    assert errors_of(tmp_path / "missing.yaml") == ["1: -: cannot read: No such file or directory"]


def test_metrics_without_duration_buckets(tmp_path: Path) -> None:
    """An empty list keeps the histogram's count and sum only (its +Inf bucket)."""
    config = load_config(write(tmp_path, "metrics: {durationBuckets: []}\n"), {})
    assert config.metrics == MetricsConfig(ScenarioLabels.ALL, ())
