"""The daemon configuration (``config.yaml``, SPEC §3): every key has a default."""

from __future__ import annotations

import enum
import ipaddress
import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yarl

from monitord.config.errors import ConfigError, LoadError
from monitord.config.fields import Section, type_name
from monitord.config.yamlsource import YamlError, YamlMap, parse_yaml

log = logging.getLogger(__name__)

DEFAULT_CONFIG_PATHS = (Path("config.yaml"), Path("/etc/monitord/config.yaml"))
MAX_CONFIG_BYTES = 1024 * 1024
MAX_SECRET_FILE_BYTES = 64 * 1024
MAX_EVENT_TIMEOUT_MINUTES = 360

APP_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
REGION_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret value that never shows itself in reprs, logs or messages."""

    value: str = field(repr=False)
    origin: str = "inline"

    def __str__(self) -> str:
        return "***"


@dataclass(frozen=True, slots=True)
class Service:
    app_key: str
    name: str


@dataclass(frozen=True, slots=True)
class EventsConfig:
    url: str
    token: Secret | None
    entity_selector: str | None = None
    timeout_minutes: int = 15
    refresh_s: int | None = None  # None: timeout_minutes × 30 (half the event timeout)
    send_timeout_s: int = 10  # one delivery attempt, connect to last byte of the answer
    retry_max_s: int = 300  # the longest pause between attempts (429's Retry-After aside)
    max_attempts: int = 300  # then the event goes to the dead letters
    max_age_hours: int = 24  # an event this old is not sent but dead-lettered

    @property
    def refresh_interval_s(self) -> int:
        """How often an open event is re-sent: at least every half of its timeout."""
        half = self.timeout_minutes * 30
        return half if self.refresh_s is None else min(self.refresh_s, half)


@dataclass(frozen=True, slots=True)
class Defaults:
    timeout_ms: int = 10_000
    error_limit_count: int = 0
    max_response_bytes: int = 10 * 1024 * 1024
    expression_budget_ms: int = 500


class ScenarioLabels(enum.Enum):
    """Which labels the per-scenario series carry."""

    ALL = "all"  # SPEC §9: the five on every series
    ID = "id"  # scenario_id only; the five on monitord_scenario_info


MAX_DURATION_BUCKETS = 30
MAX_BUCKET_S = 10**9  # about 31 years; a larger integer may not even convert to a float


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    scenario_labels: ScenarioLabels = ScenarioLabels.ALL
    duration_buckets: tuple[float, ...] | None = None  # None: the built-in buckets


@dataclass(frozen=True, slots=True)
class Config:
    path: str | None = None  # the file it was read from; None = built-in defaults
    scenarios: tuple[str, ...] = ("./scenarios",)
    state: str = "./var/monitord.sqlite3"
    region: str = "KOR"
    timezone: str = "UTC"
    listen_host: str = "127.0.0.1"
    listen_port: int = 9480
    watch_interval_s: int = 2  # how often the scenario files are checked for changes; 0 = never
    admin_key: Secret | None = None
    services: tuple[Service, ...] = ()
    events: EventsConfig | None = None
    defaults: Defaults = Defaults()
    metrics: MetricsConfig = MetricsConfig()

    @property
    def base_dir(self) -> Path:
        """Relative paths in the configuration are relative to its file's folder."""
        return Path(self.path).resolve().parent if self.path else Path.cwd()

    def resolve(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.base_dir / candidate

    @property
    def scenario_paths(self) -> tuple[Path, ...]:
        return tuple(self.resolve(p) for p in self.scenarios)

    @property
    def state_path(self) -> Path:
        return self.resolve(self.state)

    def service(self, app_key: str) -> Service | None:
        return next((s for s in self.services if s.app_key == app_key), None)


def find_config_path(explicit: str | None) -> Path | None:
    """``--config`` if given, else ./config.yaml, else /etc/monitord/config.yaml, else None."""
    if explicit is not None:
        return Path(explicit)
    return next((p for p in DEFAULT_CONFIG_PATHS if p.is_file()), None)


def load_config(path: Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a configuration file; ``None`` gives the built-in defaults.

    Raises ``ConfigError`` listing every problem found.
    """
    if path is None:
        return Config()
    env = os.environ if environ is None else environ
    display = str(path)
    try:
        raw = path.read_bytes()[: MAX_CONFIG_BYTES + 1]
    except OSError as exc:
        raise ConfigError([LoadError(display, 1, "-", f"cannot read: {exc.strerror}")]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([LoadError(display, 1, "-", f"larger than {MAX_CONFIG_BYTES} bytes")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError([LoadError(display, 1, "-", f"not UTF-8 text: {exc.reason}")]) from None
    try:
        document = parse_yaml(text)
    except YamlError as exc:
        raise ConfigError([LoadError(display, exc.line, "yaml", exc.message)]) from None
    if document is None:
        document = YamlMap(1)
    if not isinstance(document, dict):
        raise ConfigError(
            [LoadError(display, 1, "-", f"must be a mapping, got {type_name(document)}")]
        )
    errors: list[LoadError] = []
    config = _read_config(Section(document, display, "", errors, 1), path, env)
    if errors:
        raise ConfigError(sorted(errors, key=lambda e: e.line))
    return config


_TOP_KEYS = (
    "scenarios",
    "watchIntervalSeconds",
    "state",
    "region",
    "timezone",
    "listen",
    "adminKey",
    "services",
    "events",
    "defaults",
    "metrics",
)


def _read_config(top: Section, path: Path, env: Mapping[str, str]) -> Config:
    top.reject_unknown(_TOP_KEYS)
    base = Config()
    values: dict[str, Any] = {"path": str(path)}

    scenarios = _read_scenario_globs(top)
    if scenarios is not None:
        values["scenarios"] = scenarios
    state = top.string("state")
    if state is not None:
        values["state"] = state
    region = top.string("region")
    if region is not None:
        if REGION_PATTERN.match(region):
            values["region"] = region
        else:
            top.error("region", "must be letters, digits, '-' or '_' (at most 32)")
    zone = top.string("timezone")
    if zone is not None and check_timezone(top, "timezone", zone):
        values["timezone"] = zone
    listen = top.string("listen")
    if listen is not None:
        parsed = parse_listen(listen)
        if parsed is None:
            top.error("listen", f"must be HOST:PORT (e.g. 127.0.0.1:9480), got {listen!r}")
        else:
            values["listen_host"], values["listen_port"] = parsed
    watch = top.integer("watchIntervalSeconds", minimum=0, maximum=3600)
    if watch is not None:
        values["watch_interval_s"] = watch
    if top.has("adminKey"):
        values["admin_key"] = read_secret(top, "adminKey", path.parent, env)
    services = _read_services(top)
    if services is not None:
        values["services"] = services
    events = top.section("events")
    if events is not None:
        values["events"] = _read_events(events, path.parent, env)
    defaults = top.section("defaults")
    if defaults is not None:
        values["defaults"] = _read_defaults(defaults, base.defaults)
    metrics = top.section("metrics")
    if metrics is not None:
        values["metrics"] = _read_metrics(metrics)
    return Config(**values)


def _read_scenario_globs(top: Section) -> tuple[str, ...] | None:
    value = top.raw("scenarios")
    if value is None:
        return None
    if isinstance(value, str):
        return (value,) if top.string("scenarios") else None
    items = top.items("scenarios")
    if items is None:
        return None
    result = []
    for line, item, field_name in items:
        if not isinstance(item, str) or not item.strip():
            top.errors.append(LoadError(top.path, line, field_name, "must be a non-empty string"))
        else:
            result.append(item)
    return tuple(result)


def check_timezone(section: Section, key: str, zone: str) -> bool:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        section.error(key, f"unknown time zone {zone!r} (use an IANA name such as Asia/Seoul)")
        return False
    return True


def parse_listen(text: str) -> tuple[str, int] | None:
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not port_text.isdigit() or not host:
        return None
    port = int(port_text)
    if port > 65535:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return None
    elif ":" in host:
        return None
    return host, port


def read_secret(
    section: Section, key: str, base_dir: Path, env: Mapping[str, str]
) -> Secret | None:
    """``{env: NAME}``, ``{file: PATH}`` or an inline string (discouraged).

    An unset variable leaves the secret absent (the feature it guards stays off);
    a missing file is an error because it was named explicitly.
    """
    value = section.raw(key)
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            section.error(key, "must not be empty")
            return None
        log.warning("%s holds an inline secret; prefer {env: NAME} or {file: PATH}", key)
        return Secret(value)
    ref = section.section(key)
    if ref is None:
        return None
    ref.reject_unknown(("env", "file"), " (use {env: NAME} or {file: PATH})")
    if ref.has("env") == ref.has("file"):
        ref.error(None, "give exactly one of env or file")
        return None
    if ref.has("env"):
        name = ref.string("env")
        if name is None:
            return None
        secret = env.get(name)
        if not secret:
            log.info("environment variable %s is not set: %s is not configured", name, key)
            return None
        return Secret(secret, f"env {name}")
    file_name = ref.string("file")
    if file_name is None:
        return None
    secret_path = Path(file_name).expanduser()
    if not secret_path.is_absolute():
        secret_path = base_dir / secret_path
    try:
        with secret_path.open("rb") as handle:
            data = handle.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        ref.error("file", f"cannot read {file_name}: {exc.strerror}")
        return None
    if len(data) > MAX_SECRET_FILE_BYTES:
        ref.error("file", f"{file_name} is larger than {MAX_SECRET_FILE_BYTES} bytes")
        return None
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        ref.error("file", f"{file_name} is not UTF-8 text")
        return None
    if not text:
        ref.error("file", f"{file_name} is empty")
        return None
    return Secret(text, f"file {file_name}")


def _read_services(top: Section) -> tuple[Service, ...] | None:
    items = top.items("services")
    if items is None:
        return None
    services: list[Service] = []
    seen: set[str] = set()
    for line, item, field_name in items:
        entry = top.item_section(line, item, field_name)
        if entry is None:
            continue
        entry.reject_unknown(("appKey", "name"))
        app_key = entry.string("appKey", required=True)
        name = entry.string("name") or app_key
        if app_key is None:
            continue
        if not APP_KEY_PATTERN.match(app_key):
            entry.error("appKey", "must be 1-64 letters, digits, '-' or '_'")
        elif app_key in seen:
            entry.error("appKey", f"duplicate appKey {app_key!r}")
        else:
            seen.add(app_key)
            services.append(Service(app_key, name or app_key))
    return tuple(services)


EVENTS_KEYS = (
    "url",
    "token",
    "entitySelector",
    "timeoutMinutes",
    "refreshSeconds",
    "sendTimeoutSeconds",
    "retryMaxSeconds",
    "maxAttempts",
    "maxAgeHours",
)


def _read_events(events: Section, base_dir: Path, env: Mapping[str, str]) -> EventsConfig | None:
    events.reject_unknown(EVENTS_KEYS)
    url = events.string("url", required=True)
    if url is not None and not is_http_url(url):
        events.error("url", "must be an http:// or https:// URL with a host")
        url = None
    token = read_secret(events, "token", base_dir, env) if events.has("token") else None
    selector = events.string("entitySelector", max_length=1024)
    timeout = events.integer("timeoutMinutes", minimum=1, maximum=MAX_EVENT_TIMEOUT_MINUTES)
    timeout = 15 if timeout is None else timeout
    # Re-sent at least every half timeout, or the platform closes the event on its own.
    refresh = events.integer("refreshSeconds", minimum=1, maximum=timeout * 30)
    send_timeout = events.integer("sendTimeoutSeconds", minimum=1, maximum=300)
    retry_max = events.integer("retryMaxSeconds", minimum=1, maximum=3600)
    attempts = events.integer("maxAttempts", minimum=1, maximum=1_000_000)
    max_age = events.integer("maxAgeHours", minimum=1, maximum=24 * 30)
    if url is None:
        return None
    base = EventsConfig(url=url, token=token)
    return EventsConfig(
        url=url,
        token=token,
        entity_selector=selector,
        timeout_minutes=timeout,
        refresh_s=refresh,
        send_timeout_s=base.send_timeout_s if send_timeout is None else send_timeout,
        retry_max_s=base.retry_max_s if retry_max is None else retry_max,
        max_attempts=base.max_attempts if attempts is None else attempts,
        max_age_hours=base.max_age_hours if max_age is None else max_age,
    )


def _read_defaults(section: Section, base: Defaults) -> Defaults:
    section.reject_unknown(
        ("timeoutMs", "errorLimitCount", "maxResponseBytes", "expressionBudgetMs")
    )
    timeout = section.integer("timeoutMs", minimum=1, maximum=600_000)
    limit = section.integer("errorLimitCount", minimum=0, maximum=1_000_000)
    max_bytes = section.integer("maxResponseBytes", minimum=1, maximum=1024 * 1024 * 1024)
    budget = section.integer("expressionBudgetMs", minimum=1, maximum=60_000)
    return Defaults(
        timeout_ms=base.timeout_ms if timeout is None else timeout,
        error_limit_count=base.error_limit_count if limit is None else limit,
        max_response_bytes=base.max_response_bytes if max_bytes is None else max_bytes,
        expression_budget_ms=base.expression_budget_ms if budget is None else budget,
    )


def is_http_url(text: str) -> bool:
    try:
        url = yarl.URL(text)
    except (ValueError, TypeError):
        return False
    return url.scheme in ("http", "https") and bool(url.host) and url.is_absolute()


def _read_metrics(section: Section) -> MetricsConfig:
    section.reject_unknown(("scenarioLabels", "durationBuckets"))
    labels = section.choice("scenarioLabels", ScenarioLabels) or ScenarioLabels.ALL
    return MetricsConfig(scenario_labels=labels, duration_buckets=_read_buckets(section))


def _read_buckets(section: Section) -> tuple[float, ...] | None:
    """Upper bounds in seconds: positive, finite, increasing; ``[]`` keeps count and sum."""
    items = section.items("durationBuckets")
    if items is None:
        return None
    if len(items) > MAX_DURATION_BUCKETS:
        section.error("durationBuckets", f"at most {MAX_DURATION_BUCKETS}, got {len(items)}")
        return None
    bounds: list[float] = []
    for line, item, field_name in items:
        number = isinstance(item, int | float) and not isinstance(item, bool)
        if not number or not 0 < item < math.inf:
            message = f"must be a positive number of seconds, got {type_name(item)}"
            if number:
                message = f"must be a positive number of seconds, got {item}"
        elif item > MAX_BUCKET_S:
            shown = str(item) if len(str(item)) <= 20 else f"{str(item)[:20]}…"
            message = f"must be at most {MAX_BUCKET_S} seconds, got {shown}"
        elif bounds and item <= bounds[-1]:
            message = f"must be larger than the bucket before it ({bounds[-1]:g}), got {item:g}"
        else:
            bounds.append(float(item))
            continue
        section.errors.append(LoadError(section.path, line, field_name, message))
        return None
    return tuple(bounds)
