"""Scenario files (SPEC §4): parse, default, validate and compile, collecting every error.

A file holds one scenario (a mapping) or several (a list). Field names are the
seed's scenario API body, so a YAML file and a JSON body of the management API
are the same document and go through ``parse_scenario_document``.
"""

from __future__ import annotations

import glob
import hashlib
import ipaddress
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitord.config.cron import CronError, parse_cron
from monitord.config.envsubst import SubstitutionError, references, substitute
from monitord.config.errors import LoadError
from monitord.config.fields import Section, type_name, unknown_field
from monitord.config.settings import (
    APP_KEY_PATTERN,
    REGION_PATTERN,
    Config,
    check_timezone,
    is_http_url,
)
from monitord.config.yamlsource import YamlError, YamlList, parse_yaml
from monitord.expressions import ExpressionError, compile_expression
from monitord.model import (
    NUMERIC_OPERATORS,
    ByteCheck,
    Endian,
    EventType,
    HttpTarget,
    IntType,
    LengthCheck,
    Operator,
    Scenario,
    ScenarioType,
    Schedule,
    SocketTarget,
    Source,
    TextCheck,
    TextKind,
    TextValidation,
    Validation,
)
from monitord.values import as_number

MAX_SCENARIO_FILE_BYTES = 32 * 1024 * 1024
MAX_REQUEST_BODY_BYTES = 1024 * 1024
MAX_UDP_DATAGRAM = 65_507
MAX_TIMEOUT_MS = 600_000
MAX_INTERVAL_S = 7 * 24 * 3600
SCENARIO_SUFFIXES = (".yaml", ".yml")

# Scenario ids derived from appKey and name live in this namespace (UUIDv5).
SCENARIO_NAMESPACE = uuid.UUID("6f0c3b8e-4c1e-5b7a-9d1f-6d6f6e69746f")
DEFAULT_APP_KEY = "default"
HTTP_METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD", "PATCH")

_COMMON_FIELDS = (
    "scenarioName",
    "scenarioType",
    "appKey",
    "scenarioId",
    "description",
    "monitoringInterval",
    "monitoringCron",
    "monitoringRegion",
    "errorLimitCount",
    "eventType",
    "entitySelector",
    "timezone",
    "validation",
)
_TYPE_FIELDS: dict[ScenarioType, tuple[str, ...]] = {
    # ``ip`` and ``browserOption`` appear in the seed's API bodies; they are accepted
    # so those bodies load unchanged, and have no effect.
    ScenarioType.API: (
        "url",
        "httpMethod",
        "headers",
        "requestBody",
        "followRedirects",
        "tlsVerify",
        "browserOption",
        "ip",
    ),
    ScenarioType.TCP: ("ip", "port", "request", "requestHex"),
    ScenarioType.UDP: ("ip", "port", "request", "requestHex"),
    ScenarioType.BATCH: ("graceSeconds",),
}
_VALIDATION_FIELDS: dict[ScenarioType, tuple[str, ...]] = {
    ScenarioType.API: ("timeout", "responseCodes", "avoidingValidationText", "textValidation"),
    ScenarioType.TCP: ("timeout", "responseValidation", "lengthValidation"),
    ScenarioType.UDP: ("timeout", "responseValidation", "lengthValidation"),
    ScenarioType.BATCH: ("textValidation",),
}
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}$")
_HOST_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$")
_STATUS_CODE = re.compile(r"^[1-5](\d\d|xx)$", re.IGNORECASE)
_HEX_TEXT = re.compile(r"^[0-9A-Fa-f\s]+$")


@dataclass(frozen=True, slots=True)
class FileLoad:
    """The outcome of loading one file: its scenarios, or the errors that reject it."""

    path: str
    scenarios: tuple[Scenario, ...] = ()
    errors: tuple[LoadError, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True, slots=True)
class LoadSet:
    files: tuple[FileLoad, ...] = ()
    problems: tuple[LoadError, ...] = field(default=())  # e.g. a folder that does not exist

    @property
    def scenarios(self) -> tuple[Scenario, ...]:
        return tuple(s for f in self.files if f.ok for s in f.scenarios)

    @property
    def errors(self) -> tuple[LoadError, ...]:
        return self.problems + tuple(e for f in self.files for e in f.errors)


# --- discovery -------------------------------------------------------------------------


def _visible(path: Path, root: Path) -> bool:
    """Hidden files and folders, editor backups and temp files are not scenarios."""
    relative = path.relative_to(root).parts if path.is_relative_to(root) else path.parts[-1:]
    return not any(part.startswith(".") for part in relative) and not path.name.endswith("~")


def discover(paths: Iterable[Path]) -> tuple[list[Path], list[LoadError]]:
    """Scenario files under folders (recursively), matching globs, or named directly."""
    found: dict[Path, None] = {}
    problems: list[LoadError] = []
    for path in paths:
        text = str(path)
        if path.is_dir():
            files = [
                p
                for p in path.rglob("*")
                if p.suffix in SCENARIO_SUFFIXES and p.is_file() and _visible(p, path)
            ]
            found.update((p, None) for p in sorted(files))
        elif path.is_file():
            found[path] = None
        elif any(ch in text for ch in "*?["):
            matches = sorted(
                Path(p)
                for p in glob.glob(text, recursive=True)
                if Path(p).suffix in SCENARIO_SUFFIXES and Path(p).is_file()
            )
            found.update((p, None) for p in matches if not p.name.startswith("."))
        else:
            problems.append(LoadError(text, 0, "-", "no such file or folder"))
    return list(found), problems


# --- loading files -------------------------------------------------------------------


def load_scenarios(
    paths: Iterable[Path],
    config: Config,
    environ: Mapping[str, str],
    now: datetime | None = None,
) -> LoadSet:
    """Load every scenario file under ``paths``.

    Files are independent: a file with any error contributes no scenarios, and
    the others still load. Names (per appKey) and ids must be unique across all
    files; a clash is reported on the later file.
    """
    files, problems = discover(paths)
    loads: list[FileLoad] = []
    ids: dict[str, Source] = {}
    names: dict[tuple[str, str], Source] = {}
    for path in files:
        loaded = load_file(path, config, environ, now)
        if loaded.ok:
            loaded = check_unique(loaded, ids, names)
        if loaded.ok:
            for scenario in loaded.scenarios:
                ids[scenario.id] = scenario.source
                names[(scenario.app_key, scenario.name)] = scenario.source
        loads.append(loaded)
    return LoadSet(tuple(loads), tuple(problems))


def check_unique(
    loaded: FileLoad,
    ids: Mapping[str, Source],
    names: Mapping[tuple[str, str], Source],
) -> FileLoad:
    """Reject ``loaded`` if it reuses an id or (appKey, name) already taken."""
    errors = []
    for scenario in loaded.scenarios:
        where = scenario.source.line
        name_owner = names.get((scenario.app_key, scenario.name))
        id_owner = ids.get(scenario.id)
        if name_owner is not None:
            errors.append(
                LoadError(
                    loaded.path,
                    where,
                    "scenarioName",
                    f"duplicate scenarioName {scenario.name!r} for appKey {scenario.app_key}"
                    f" (also in {name_owner.path}:{name_owner.line})",
                )
            )
        elif id_owner is not None:  # a repeated name already explains a repeated id
            errors.append(
                LoadError(
                    loaded.path,
                    where,
                    "scenarioId",
                    f"duplicate scenarioId {scenario.id} (also in {id_owner.path}:{id_owner.line})",
                )
            )
    return FileLoad(loaded.path, (), tuple(errors)) if errors else loaded


def load_file(
    path: Path, config: Config, environ: Mapping[str, str], now: datetime | None = None
) -> FileLoad:
    display = str(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SCENARIO_FILE_BYTES + 1)
    except OSError as exc:
        return FileLoad(
            display, errors=(LoadError(display, 0, "-", f"cannot read: {exc.strerror}"),)
        )
    if len(raw) > MAX_SCENARIO_FILE_BYTES:
        return FileLoad(
            display,
            errors=(LoadError(display, 0, "-", f"larger than {MAX_SCENARIO_FILE_BYTES} bytes"),),
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return FileLoad(
            display, errors=(LoadError(display, 1, "-", f"not UTF-8 text: {exc.reason}"),)
        )
    return load_text(text, display, config, environ, now)


def load_text(
    text: str, display: str, config: Config, environ: Mapping[str, str], now: datetime | None = None
) -> FileLoad:
    try:
        document = parse_yaml(text)
    except YamlError as exc:
        return FileLoad(display, errors=(LoadError(display, exc.line, "yaml", exc.message),))
    if document is None:
        return FileLoad(display)  # an empty file (or only comments) holds no scenarios
    return load_document(document, display, config, environ, now)


def load_document(
    document: Any,
    display: str,
    config: Config,
    environ: Mapping[str, str],
    now: datetime | None = None,
) -> FileLoad:
    errors: list[LoadError] = []
    if isinstance(document, dict):
        entries: list[tuple[Any, int, str]] = [(document, getattr(document, "line", 1), "")]
    elif isinstance(document, list):
        lines = document.item_lines if isinstance(document, YamlList) else [1] * len(document)
        entries = [(item, lines[i], f"[{i}]") for i, item in enumerate(document)]
    else:
        return FileLoad(
            display,
            errors=(
                LoadError(
                    display,
                    1,
                    "-",
                    f"must be a scenario mapping or a list of them, got {type_name(document)}",
                ),
            ),
        )
    scenarios: list[Scenario] = []
    for item, line, label in entries:
        if not isinstance(item, dict):
            errors.append(
                LoadError(display, line, label or "-", f"must be a mapping, got {type_name(item)}")
            )
            continue
        scenario = parse_scenario_document(
            Section(item, display, "", errors, line), config, environ, now
        )
        if scenario is not None:
            scenarios.append(scenario)
    if not errors:
        # Within one file, compare each scenario with the ones before it.
        ids: dict[str, Source] = {}
        names: dict[tuple[str, str], Source] = {}
        for scenario in scenarios:
            single = check_unique(FileLoad(display, (scenario,)), ids, names)
            errors.extend(single.errors)
            ids.setdefault(scenario.id, scenario.source)
            names.setdefault((scenario.app_key, scenario.name), scenario.source)
    if errors:
        return FileLoad(display, errors=tuple(sorted(errors, key=lambda e: e.line)))
    return FileLoad(display, tuple(scenarios))


# --- one scenario ----------------------------------------------------------------------


def parse_scenario_document(
    doc: Section, config: Config, environ: Mapping[str, str], now: datetime | None = None
) -> Scenario | None:
    """Validate one scenario mapping; errors go to ``doc.errors``; None if any."""
    errors_before = len(doc.errors)
    kind = doc.choice("scenarioType", ScenarioType, required=True)
    if kind is None:
        all_fields = set(_COMMON_FIELDS).union(*_TYPE_FIELDS.values())
        doc.reject_unknown(all_fields)
    else:
        _reject_unknown_for_type(doc, kind)

    name = doc.string("scenarioName", required=True, max_length=200)
    description = doc.string("description", allow_empty=True, single_line=False) or ""
    app_key = _read_app_key(doc, config)
    scenario_id = _read_scenario_id(doc, app_key, name)
    zone = doc.string("timezone")
    if zone is not None and not check_timezone(doc, "timezone", zone):
        zone = None
    schedule = _read_schedule(doc, kind, zone or config.timezone, now)
    regions = _read_regions(doc)
    error_limit = doc.integer("errorLimitCount", minimum=0, maximum=1_000_000)
    event_type = doc.choice("eventType", EventType)
    entity_selector = doc.string("entitySelector", max_length=1024)

    target: HttpTarget | SocketTarget | None = None
    validation: Validation | None = None
    grace: int | None = None
    if kind is ScenarioType.API:
        target = _read_http_target(doc, environ)
    elif kind in (ScenarioType.TCP, ScenarioType.UDP):
        target = _read_socket_target(doc, kind)
    elif kind is ScenarioType.BATCH:
        grace = doc.integer("graceSeconds", minimum=0, maximum=MAX_INTERVAL_S)
        if grace is not None and schedule is None:
            doc.error("graceSeconds", "only applies with monitoringInterval or monitoringCron")
    if kind is not None:
        validation = _read_validation(doc, kind, config)

    if len(doc.errors) > errors_before:
        return None
    if kind is None or name is None or app_key is None or scenario_id is None or validation is None:
        # Every path that leaves a piece unset records why; never drop silently.
        doc.error(None, "scenario could not be loaded")
        return None
    return Scenario(
        id=scenario_id,
        name=name,
        type=kind,
        app_key=app_key,
        validation=validation,
        source=Source(doc.path, doc.line),
        fingerprint=_fingerprint(doc.data, environ, config, app_key, zone),
        description=description,
        schedule=schedule,
        regions=regions,
        error_limit=config.defaults.error_limit_count if error_limit is None else error_limit,
        event_type=event_type,
        entity_selector=entity_selector,
        target=target,
        max_response_bytes=config.defaults.max_response_bytes,
        grace_seconds=grace,
    )


def _reject_unknown_for_type(doc: Section, kind: ScenarioType) -> None:
    allowed = set(_COMMON_FIELDS) | set(_TYPE_FIELDS[kind])

    def explain(key: str) -> str:
        owners = [t.value for t, names in _TYPE_FIELDS.items() if key in names]
        if owners:
            return f"not a field of {kind.value} scenarios (it belongs to {', '.join(owners)})"
        return unknown_field(key, allowed)

    doc.reject_unknown(allowed, explain=explain)


def _read_app_key(doc: Section, config: Config) -> str | None:
    if doc.raw("appKey") is None:
        return config.services[0].app_key if config.services else DEFAULT_APP_KEY
    app_key = doc.string("appKey", max_length=64)
    if app_key is None:
        return None
    if not APP_KEY_PATTERN.match(app_key):
        doc.error("appKey", "must be 1-64 letters, digits, '-' or '_'")
        return None
    if config.services and config.service(app_key) is None:
        known = ", ".join(s.app_key for s in config.services)
        doc.error("appKey", f"{app_key} is not a configured service (services: {known})")
        return None
    return app_key


def _read_scenario_id(doc: Section, app_key: str | None, name: str | None) -> str | None:
    if doc.has("scenarioId") and doc.raw("scenarioId") is not None:
        text = doc.string("scenarioId", max_length=64)
        if text is None:
            return None
        try:
            return str(uuid.UUID(text))
        except ValueError:
            doc.error("scenarioId", f"must be a UUID, got {text!r}")
            return None
    if app_key is None or name is None:
        return None
    return derive_scenario_id(app_key, name)


def derive_scenario_id(app_key: str, name: str) -> str:
    """Stable id for a scenario that names none: UUIDv5 of appKey and name."""
    return str(uuid.uuid5(SCENARIO_NAMESPACE, f"{app_key}/{name}"))


def _read_schedule(
    doc: Section, kind: ScenarioType | None, zone: str, now: datetime | None
) -> Schedule | None:
    has_interval = doc.raw("monitoringInterval") is not None
    has_cron = doc.raw("monitoringCron") is not None
    if has_interval and has_cron:
        doc.error("monitoringCron", "give monitoringInterval or monitoringCron, not both")
        return None
    if has_interval:
        interval = doc.integer("monitoringInterval", minimum=1, maximum=MAX_INTERVAL_S)
        return None if interval is None else Schedule(interval_s=interval)
    if has_cron:
        text = doc.string("monitoringCron", max_length=200)
        if text is None:
            return None
        try:
            return Schedule(cron=parse_cron(text, zone, now or datetime.now(UTC)))
        except CronError as exc:
            doc.error("monitoringCron", f"invalid cron expression {text!r}: {exc}")
            return None
    if kind is not None and kind is not ScenarioType.BATCH:
        doc.error("monitoringInterval", "missing: give monitoringInterval or monitoringCron")
    return None


def _read_regions(doc: Section) -> frozenset[str]:
    items = doc.items("monitoringRegion")
    if items is None:
        return frozenset()
    regions = set()
    for line, item, field_name in items:
        if not isinstance(item, str) or not REGION_PATTERN.match(item):
            doc.errors.append(
                LoadError(
                    doc.path,
                    line,
                    field_name,
                    f"must be a region name such as KOR, got {type_name(item)}"
                    if not isinstance(item, str)
                    else f"must be letters, digits, '-' or '_', got {item[:40]!r}",
                )
            )
        else:
            regions.add(item)
    return frozenset(regions)


# --- targets ---------------------------------------------------------------------------


def _substituted(doc: Section, key: str, text: str, environ: Mapping[str, str]) -> str | None:
    try:
        return substitute(text, environ)
    except SubstitutionError as exc:
        doc.error(key, str(exc))
        return None


def _read_http_target(doc: Section, environ: Mapping[str, str]) -> HttpTarget | None:
    url_text = doc.string("url", required=True, max_length=8192)
    url = _substituted(doc, "url", url_text, environ) if url_text is not None else None
    if url is not None and not is_http_url(url):
        doc.error("url", "must be an http:// or https:// URL with a host")
        url = None
    method = doc.string("httpMethod") or "GET"
    if method not in HTTP_METHODS:
        doc.error("httpMethod", f"must be one of {', '.join(HTTP_METHODS)}, got {method!r}")
    headers = _read_headers(doc, environ)
    body: bytes | None = None
    body_text = doc.string(
        "requestBody", allow_empty=True, single_line=False, max_length=MAX_REQUEST_BODY_BYTES
    )
    if body_text is not None:
        substituted = _substituted(doc, "requestBody", body_text, environ)
        if substituted is not None:
            body = substituted.encode("utf-8")
    options = doc.section("browserOption")
    if options is not None:
        for key, value in options.data.items():
            if not isinstance(key, str) or not isinstance(value, str):
                options.error(str(key)[:60], "must map strings to strings")
    if doc.raw("ip") is not None:
        doc.string("ip")
    follow = doc.boolean("followRedirects")
    verify = doc.boolean("tlsVerify")
    if url is None or headers is None:
        return None
    return HttpTarget(
        url=url,
        method=method,
        headers=headers,
        body=body,
        follow_redirects=bool(follow),
        tls_verify=True if verify is None else verify,
        url_as_written=url_text,
    )


def _read_headers(doc: Section, environ: Mapping[str, str]) -> tuple[tuple[str, str], ...] | None:
    section = doc.section("headers")
    if section is None:
        return None if doc.raw("headers") is not None else ()
    headers = []
    ok = True
    for name, value in section.data.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            section.error(
                None, f"{str(name)[:60]!r} is not a valid header name", section.line_of(name)
            )
            ok = False
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            section.error(name, f"must be a string, got {type_name(value)}")
            ok = False
            continue
        text = _substituted(section, name, str(value), environ)
        if text is None:
            ok = False
            continue
        if any(ch in text for ch in "\r\n\x00"):
            section.error(name, "must not contain line breaks or NUL")
            ok = False
            continue
        headers.append((name, text))
    return tuple(headers) if ok else None


def _read_socket_target(doc: Section, kind: ScenarioType) -> SocketTarget | None:
    host = doc.string("ip", required=True, max_length=253)
    if host is not None and not _valid_host(host):
        doc.error("ip", f"must be an IP address or host name, got {host[:60]!r}")
        host = None
    port = doc.integer("port", required=True, minimum=1, maximum=65535)
    request = b""
    if doc.raw("request") is not None and doc.raw("requestHex") is not None:
        doc.error("requestHex", "give request or requestHex, not both")
    elif doc.raw("requestHex") is not None:
        hex_text = doc.string(
            "requestHex", single_line=False, max_length=2 * MAX_REQUEST_BODY_BYTES
        )
        decoded = _decode_hex(doc, "requestHex", hex_text) if hex_text is not None else None
        request = decoded or b""
    elif doc.raw("request") is not None:
        text = doc.string(
            "request", allow_empty=True, single_line=False, max_length=MAX_REQUEST_BODY_BYTES
        )
        request = text.encode("utf-8") if text is not None else b""
    if kind is ScenarioType.UDP and len(request) > MAX_UDP_DATAGRAM:
        doc.error("request", f"a UDP datagram holds at most {MAX_UDP_DATAGRAM} bytes")
    if host is None or port is None:
        return None
    return SocketTarget(host=host, port=port, request=request)


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return bool(_HOST_NAME.match(host))


def _decode_hex(section: Section, key: str, text: str) -> bytes | None:
    compact = "".join(text.split())
    if not _HEX_TEXT.match(text) or len(compact) % 2:
        section.error(key, "must be pairs of hex digits (spaces allowed), e.g. 'de ad be ef'")
        return None
    return bytes.fromhex(compact)


# --- validation --------------------------------------------------------------------------


def _read_validation(doc: Section, kind: ScenarioType, config: Config) -> Validation | None:
    timeout_ms = config.defaults.timeout_ms
    section = doc.section("validation")
    if section is None:
        if doc.raw("validation") is not None:
            return None
        if kind is ScenarioType.BATCH:
            doc.error("validation", "missing required field (BATCH needs textValidation)")
            return None
        return Validation(timeout_ms=timeout_ms)
    allowed = _VALIDATION_FIELDS[kind]

    def explain(key: str) -> str:
        owners = sorted({t.value for t, names in _VALIDATION_FIELDS.items() if key in names})
        if owners:
            return (
                f"not a validation field of {kind.value} scenarios"
                f" (it belongs to {', '.join(owners)})"
            )
        return unknown_field(key, allowed)

    section.reject_unknown(allowed, explain=explain)

    errors_before = len(section.errors)
    timeout = section.integer("timeout", minimum=0, maximum=MAX_TIMEOUT_MS)
    if timeout:  # 0, as the seed allows, means "the configured default"
        timeout_ms = timeout
    codes = _read_response_codes(section) if "responseCodes" in allowed else None
    avoid = None
    if "avoidingValidationText" in allowed:
        avoid = section.string("avoidingValidationText", single_line=False, max_length=4096)
    text = _read_text_validation(section, kind)
    byte_checks: tuple[ByteCheck, ...] = ()
    length = None
    if "responseValidation" in allowed:
        byte_checks = _read_byte_checks(section)
        length = _read_length_check(section)
    if kind is ScenarioType.BATCH and text is None and not section.errors[errors_before:]:
        section.error("textValidation", "missing required field")
    if len(section.errors) > errors_before:
        return None
    return Validation(
        timeout_ms=timeout_ms,
        response_codes=codes,
        avoiding_text=avoid,
        text=text,
        byte_checks=byte_checks,
        length=length,
    )


def _read_response_codes(section: Section) -> tuple[str, ...] | None:
    items = section.items("responseCodes")
    if items is None:
        return None
    if not items:
        section.error("responseCodes", "must not be empty (omit it to accept any 2xx)")
        return None
    codes = []
    for line, item, field_name in items:
        text = str(item) if isinstance(item, int) and not isinstance(item, bool) else item
        if not isinstance(text, str) or not _STATUS_CODE.match(text.strip()):
            section.errors.append(
                LoadError(
                    section.path,
                    line,
                    field_name,
                    'must be an HTTP status code such as "200" or a class such as "2xx"',
                )
            )
            continue
        codes.append(text.strip().lower())
    return tuple(codes)


def _read_text_validation(section: Section, kind: ScenarioType) -> TextValidation | None:
    text_section = section.section("textValidation")
    if text_section is None:
        return None
    text_section.reject_unknown(("textValidationType", "textValidationInfos"))
    text_kind = text_section.choice("textValidationType", TextKind, required=True)
    if text_kind is not None and kind is ScenarioType.BATCH and text_kind is not TextKind.JSON:
        text_section.error("textValidationType", "BATCH payloads are JSON: must be JSON")
        text_kind = None
    items = text_section.items("textValidationInfos") or []
    checks = []
    for line, item, field_name in items:
        info = text_section.item_section(line, item, field_name)
        if info is None:
            continue
        info.reject_unknown(("expression", "operator", "operand"))
        expression_text = info.string("expression", required=True, max_length=4096)
        operator = info.choice("operator", Operator, required=True)
        operand = _read_operand(info)
        if operand is not None and operator in NUMERIC_OPERATORS and as_number(operand) is None:
            info.error("operand", f"{operator.value} needs a number, got {operand!r}")
            operand = None
        if expression_text is None or text_kind is None:
            continue
        try:
            compiled = compile_expression(text_kind, expression_text)
        except ExpressionError as exc:
            info.error("expression", str(exc))
            continue
        if operator is not None and operand is not None:
            checks.append(TextCheck(compiled, operator, operand))
    if text_kind is None:
        return None
    return TextValidation(text_kind, tuple(checks))


def _read_operand(info: Section) -> str | None:
    value = info.raw("operand")
    if value is None:
        info.error("operand", "missing required field")
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return info.string("operand", allow_empty=True, single_line=False, max_length=4096)


def _read_byte_checks(section: Section) -> tuple[ByteCheck, ...]:
    items = section.items("responseValidation")
    if items is None:
        return ()
    checks = []
    for line, item, field_name in items:
        entry = section.item_section(line, item, field_name)
        if entry is None:
            continue
        entry.reject_unknown(("position", "validationText", "validationHex"))
        position = entry.integer("position", required=True, minimum=0, maximum=2**31)
        has_text = entry.raw("validationText") is not None
        has_hex = entry.raw("validationHex") is not None
        expected: bytes | None = None
        if has_text == has_hex:
            entry.error(None, "give exactly one of validationText or validationHex")
        elif has_text:
            text = entry.string("validationText", single_line=False)
            expected = text.encode("utf-8") if text is not None else None
        else:
            hex_text = entry.string("validationHex", single_line=False)
            expected = _decode_hex(entry, "validationHex", hex_text) if hex_text else None
        if position is not None and expected:
            checks.append(ByteCheck(position, expected, is_hex=has_hex))
    return tuple(checks)


def _read_length_check(section: Section) -> LengthCheck | None:
    entry = section.section("lengthValidation")
    if entry is None:
        return None
    entry.reject_unknown(("ENDIAN", "POS", "TYPE", "BASE"))
    endian = entry.choice("ENDIAN", Endian) or Endian.BIG
    int_type = entry.choice("TYPE", IntType, required=True)
    position = entry.integer("POS", required=True, minimum=0, maximum=2**31, allow_string=True)
    base = entry.integer("BASE", minimum=-(2**31), maximum=2**31, allow_string=True)
    if int_type is None or position is None:
        return None
    return LengthCheck(endian, position, int_type, 0 if base is None else base)


def _fingerprint(
    data: Mapping[Any, Any],
    environ: Mapping[str, str],
    config: Config,
    app_key: str,
    zone: str | None,
) -> str:
    """Equal fingerprints mean equal scenarios: the document, the variables it
    uses, and the configuration defaults it inherits."""
    used = sorted({name for text in _strings(data) for name in references(text)})
    material = json.dumps(
        [
            _canonical(data),
            {name: environ.get(name) for name in used},
            app_key,
            zone or config.timezone,
            [
                config.defaults.timeout_ms,
                config.defaults.error_limit_count,
                config.defaults.max_response_bytes,
            ],
        ],
        sort_keys=True,
        default=str,
        ensure_ascii=False,
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
