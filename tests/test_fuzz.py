"""Property-based fuzzing of a real ``monitord run`` over HTTP.

The daemon has two services, an admin key, a hand-written file (an API scenario probing
a local target every second, BATCH scenarios) and a scenario created through the
management API. Two rounds, each against a daemon of its own:

* schemathesis generates requests for every operation of the OpenAPI document the
  daemon serves, positive and negative, with the admin key, a Bearer token, or whatever
  it generated; path parameters are either generated or ids the daemon knows, so the
  handlers' deeper paths are reached too. Every answer must be a documented status with
  a body matching its schema (schemathesis's checks and ``tests.test_openapi.OpenApi``),
  never a 5xx, and never a dropped connection; data outside the schema must be refused.
* hand-written hypothesis strategies send junk: random bytes and JSON bodies (lone
  surrogates included), random Content-Type (odd charsets), Content-Encoding,
  Authorization and TOAST_PRODUCT_APPKEY values, percent-encoded junk path segments,
  unknown routes and wrong methods. Answers must be documented, or in the error format
  of their path; only aiohttp's HTTP parser may refuse a request without JSON.

After each round the daemon must be alive and healthy, the probed scenario must have kept
running all along (its runs_total grew during the fuzz) and its log must hold no
traceback. Runs are bounded (``MAX_EXAMPLES`` per operation) and reproducible: the seed
is printed and can be set with ``MONITORD_FUZZ_SEED``.

The fuzzing loops are synchronous (schemathesis calls with ``requests``) and run in a
worker thread, so the event loop keeps reading the daemon's log meanwhile.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from multidict import CIMultiDict
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from monitord.config.scenarios import derive_scenario_id
from tests.test_api import batch_yaml
from tests.test_daemon import (
    ADMIN,
    ADMIN_KEY,
    Daemon,
    Target,
    get_json,
    running,
    scrape,
    target_server,
    value,
    write_config,
)
from tests.test_openapi import (
    DOC,
    MULTI,
    SINGLE,
    as_list,
    operations,
    path_of,
)

pytestmark = pytest.mark.e2e

SEED = int(os.environ.get("MONITORD_FUZZ_SEED", "20261123"))
MAX_EXAMPLES = 25
JUNK_EXAMPLES = 50
REQUEST_TIMEOUT_S = 10.0

BEARER = {"Authorization": f"Bearer {ADMIN_KEY}"}
SERVICES = "services:\n  - appKey: shop\n    name: shop\n  - appKey: billing\n"
NIGHTLY = derive_scenario_id("shop", "nightly")
BILLING_NIGHTLY = derive_scenario_id("billing", "billing nightly")
PROBE = derive_scenario_id("shop", "probe")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
MANAGED_DOCUMENT = {
    "scenarioName": "managed",
    "scenarioType": "BATCH",
    "monitoringInterval": 3600,
    "validation": {"textValidation": {"textValidationType": "JSON"}},
}


# --- the daemon under fuzz -------------------------------------------------------------------


@dataclass
class Fuzzed:
    """A running daemon and what the fuzzers may aim at."""

    daemon: Daemon
    target: Target
    managed: str  # the id of the scenario created through the API
    runs: list[tuple[float, float]] = field(default_factory=list)  # (time, probe runs)

    @property
    def base(self) -> str:
        return self.daemon.base

    @property
    def address(self) -> tuple[str, int]:
        split = urlsplit(self.base)
        assert split.hostname is not None
        assert split.port is not None
        return split.hostname, split.port

    def known(self, names: set[str]) -> list[dict[str, str]]:
        """Path parameters the daemon knows (a BATCH scenario, the probed API scenario,
        the managed one, another service's), for an operation with these names."""
        sets = [
            {"scenarioId": PROBE},
            {"scenarioId": NIGHTLY},
            {"scenarioId": self.managed},
            {"appKey": "shop"},
            {"appKey": "billing"},
            {"appKey": "shop", "scenarioId": NIGHTLY},
            {"appKey": "shop", "scenarioId": PROBE},
            {"appKey": "shop", "scenarioId": self.managed},
            {"appKey": "billing", "scenarioId": BILLING_NIGHTLY},
            {"appKey": "billing", "scenarioId": NIGHTLY},
        ]
        return [s for s in sets if set(s) == names]


async def probe_runs(base: str) -> float:
    samples = await scrape(base)
    return sum(
        value(samples, "monitord_scenario_runs_total", scenario_name="probe", result=r) or 0
        for r in ("success", "failure")
    )


@asynccontextmanager
async def fuzzed_daemon(tmp_path: Path) -> AsyncIterator[Fuzzed]:
    """The daemon, with its probed scenario sampled (``runs``) while the body runs."""
    print(f"fuzz seed {SEED} (set MONITORD_FUZZ_SEED to change it)")
    async with target_server() as target:
        config = write_config(tmp_path, SERVICES)
        (tmp_path / "s" / "hand.yaml").write_text(
            "# written by hand: comments and several scenarios\n"
            "- scenarioName: probe\n"
            "  scenarioType: API\n"
            f"  url: {target.base}/probe\n"
            "  monitoringInterval: 1\n"
            "  validation:\n"
            "    textValidation:\n"
            "      textValidationType: JSON\n"
            '      textValidationInfos: [{expression: $.numErrors, operator: EQ, operand: "0"}]\n'
            + as_list(
                batch_yaml("nightly"),
                batch_yaml("billing nightly") + "appKey: billing\n",
            ),
            encoding="utf-8",
        )
        async with running(config) as daemon:
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    daemon.base + "/open-api/v1.0/appkey/shop/scenarios",
                    json=MANAGED_DOCUMENT,
                    headers=ADMIN,
                ) as response,
            ):
                assert response.status == 200, await response.text()
                managed = (await response.json())["body"]["scenarioId"]
            fuzzed = Fuzzed(daemon, target, managed)

            async def sample() -> None:
                while True:
                    fuzzed.runs.append((time.monotonic(), await probe_runs(daemon.base)))
                    await asyncio.sleep(0.5)

            await wait_for_runs(daemon.base, 1)
            sampler = asyncio.create_task(sample())
            try:
                yield fuzzed
            finally:
                sampler.cancel()


async def wait_for_runs(base: str, count: int) -> None:
    async with asyncio.timeout(15):
        while await probe_runs(base) < count:
            await asyncio.sleep(0.1)


async def survival_problems(fuzzed: Fuzzed) -> list[str]:
    """Alive, healthy, the probe kept running through the fuzz, no traceback logged."""
    problems = []
    if fuzzed.daemon.process.returncode is not None:
        return [f"the daemon exited {fuzzed.daemon.process.returncode}"]
    health = await get_json(fuzzed.base, "/health")
    if health["status"] != "ok":
        problems.append(f"health: {health}")
    (start, first), (end, last) = fuzzed.runs[0], fuzzed.runs[-1]
    values = [runs for _, runs in fuzzed.runs]
    elapsed = end - start
    if values != sorted(values) or elapsed < 3:
        problems.append(f"probe runs sampled: {fuzzed.runs}")
    # One run a second is due; half of them is the least that counts as running on.
    if last - first < elapsed / 2 - 1:
        problems.append(f"the probe ran {last - first:.0f} times in {elapsed:.0f} s")
    if fuzzed.target.hits["/probe"] < last:
        problems.append(f"{last:.0f} runs counted, {fuzzed.target.hits['/probe']} hits")
    tracebacks = [line[:3000] for line in fuzzed.daemon.lines if "Traceback" in line]
    problems += [f"logged: {line}" for line in tracebacks[:3]]
    return problems


# --- a record of what the fuzz saw -------------------------------------------------------


@dataclass
class Findings:
    failures: dict[str, str] = field(default_factory=dict)  # what failed -> an example
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    not_negatable: set[str] = field(default_factory=set)

    def fail(self, what: str, example: str) -> None:
        self.failures.setdefault(what, example)

    def summary(self) -> str:
        by_operation: dict[str, list[str]] = {}
        for (label, status), count in sorted(self.statuses.items()):
            by_operation.setdefault(label, []).append(f"{status}×{count}")
        lines = [f"{label}: {' '.join(counts)}" for label, counts in by_operation.items()]
        if self.not_negatable:
            lines.append(f"nothing to make invalid: {', '.join(sorted(self.not_negatable))}")
        return "\n".join(lines)

    def report(self) -> str:
        return "\n\n".join(f"{what}\n    {example}" for what, example in self.failures.items())


def fuzz_settings(max_examples: int) -> Callable[[Any], Any]:
    def apply(test: Any) -> Any:
        configured = settings(
            max_examples=max_examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
            print_blob=False,
        )(test)
        return hypothesis.seed(SEED)(configured)

    return apply


# --- schemathesis over every operation ------------------------------------------------------


# None: only what schemathesis generated (a made-up key, or none).
AUTH = [ADMIN, None, BEARER, {"TOAST_PRODUCT_APPKEY": "not-the-key"}]


def fuzz_operations(document: dict[str, Any], fuzzed: Fuzzed) -> Findings:
    schema = schemathesis.openapi.from_dict(document)
    findings = Findings()
    session = requests.Session()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz_operation(result.ok(), mode, fuzzed, session, findings)
    return findings


def fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    fuzzed: Fuzzed,
    session: requests.Session,
    findings: Findings,
) -> None:
    known = fuzzed.known(set(re.findall(r"\{(\w+)\}", operation.path)))
    strategies = [operation.as_strategy(generation_mode=mode)]
    strategies += [
        operation.as_strategy(generation_mode=mode, path_parameters=dict(p)) for p in known
    ]
    generated = 0

    @fuzz_settings(MAX_EXAMPLES)
    @given(case=st.one_of(strategies), auth=st.sampled_from(AUTH))
    def call(case: Any, auth: dict[str, str] | None) -> None:
        nonlocal generated
        generated += 1
        label = f"{operation.label} ({mode.value}, {'key' if auth else 'generated key'})"
        if auth is BEARER and case.headers:
            # TOAST_PRODUCT_APPKEY, when present, is the key checked: drop a made-up one.
            case.headers = {
                k: v for k, v in case.headers.items() if k.lower() != "toast_product_appkey"
            }
        try:
            response = case.call(
                base_url=fuzzed.base, session=session, headers=auth, timeout=REQUEST_TIMEOUT_S
            )
        except requests.RequestException as exc:
            findings.fail(f"{label}: no answer ({type(exc).__name__})", repr(case))
            return
        findings.statuses[(operation.label, response.status_code)] += 1
        checks = list(CHECKS)
        if mode is GenerationMode.NEGATIVE and auth is None:
            checks.append(negative_data_rejection)  # an added key would make it valid
        try:
            case.validate_response(response, checks=checks)
        except (FailureGroup, Failure) as exc:
            findings.fail(f"{label}: {str(exc).splitlines()[0]}", case.as_curl_command())
        try:
            DOC.check(
                operation.method.upper(),
                operation.path,
                response.status_code,
                {name: values[0] for name, values in response.headers.items()},
                response.content,
            )
        except AssertionError as exc:
            findings.fail(f"{label}: {str(exc)[:300]}", case.as_curl_command())

    try:
        call()
    except Unsatisfiable:
        # Nothing of this operation can be made invalid (no body, query or key).
        if mode is not GenerationMode.NEGATIVE or generated:
            raise
        findings.not_negatable.add(operation.label)


async def test_schemathesis_finds_every_operation_answering_as_documented(
    tmp_path: Path,
) -> None:
    """Positive and negative cases for every operation of the served document, with and
    without the admin key, against known and generated ids."""
    async with fuzzed_daemon(tmp_path) as fuzzed:
        document = await get_json(fuzzed.base, "/api/v1/openapi.json")
        assert document == DOC.document
        findings = await asyncio.to_thread(fuzz_operations, document, fuzzed)
        survival = await survival_problems(fuzzed)
    print(findings.summary())
    assert not findings.failures, findings.report()
    assert not survival, survival
    # Operations with a body, a query or the admin key have something to make invalid.
    assert findings.not_negatable <= {
        "GET /metrics",
        "GET /health",
        "GET /api/v1/scenarios",
        "GET /api/v1/scenarios/{scenarioId}",
        "GET /api/v1/openapi.json",
        "POST /v1.0/monitoring/batchmon/appkey/{appKey}/scenarios/{scenarioId}",
    }, findings.not_negatable
    seen = {label for label, _ in findings.statuses}
    assert seen == {f"{m} {t}" for m, t in operations(DOC.document)}
    # The fuzz went past the key check and the lookups, not only into 401 and 404.
    for label, statuses in [
        ("POST /-/reload", {200, 401}),
        ("POST /api/v1/scenarios/{scenarioId}/run", {200, 401, 404, 409}),
        ("GET /open-api/v1.0/appkey/{appKey}/scenarios", {200, 401, 404}),
        ("GET /open-api/v1.0/appkey/{appKey}/scenarios/{scenarioId}", {200, 401, 404}),
        ("POST /open-api/v1.0/appkey/{appKey}/scenarios", {401, 404, 422}),
        ("POST /v1.0/monitoring/batchmon/appkey/{appKey}/scenarios/{scenarioId}", {200, 404}),
        ("POST /v1.0/monitoring/batchmon", {200, 400}),
    ]:
        answered = {status for (op, status) in findings.statuses if op == label}
        assert statuses <= answered, (label, answered)


# --- hand-written junk --------------------------------------------------------------------------


CHARSETS = ["utf-8", "UTF-16", "latin-1", "utf-7", "undefined", "idna", "rot13", "nope", ""]
MEDIA_TYPES = [
    "application/json",
    "application/problem+json",
    "application/json;",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "*/*",
    "",
]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
ENCODINGS = [b"gzip", b"deflate", b"identity", b"x-unknown"]
SURROGATES = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff", "\udc80"])
TEXT = st.lists(st.one_of(st.text(max_size=8), SURROGATES), max_size=4).map("".join)
# What a header value may hold: visible ASCII, space, tab and obs-text (RFC 9110 field-value).
HEADER_VALUE = st.binary(max_size=60).map(
    lambda raw: bytes(b for b in raw if b == 9 or 0x20 <= b < 0x7F or b >= 0x80).strip()
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)


@dataclass(frozen=True)
class Junk:
    """One request: the operation it aims at, and whether it surely reaches it."""

    method: str
    template: str
    path: str
    headers: tuple[tuple[str, bytes], ...]
    body: bytes
    routed: bool  # the path is the template's, with segments the router keeps whole

    def __repr__(self) -> str:
        return f"{self.method} {self.path} {dict(self.headers)!r} {self.body[:200]!r}"


def junk_segment(raw: bytes) -> str:
    return "".join(f"%{b:02X}" for b in raw)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, the likelier the heavier."""
    slots = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(slots) - 1).flatmap(lambda i: slots[i])


KNOWN_IDS = st.sampled_from([NIGHTLY, PROBE, BILLING_NIGHTLY])
JSON_TEXT = JSON_VALUES.map(json.dumps)
MULTI_BODIES = st.builds(
    lambda targets, data: json.dumps({"target": targets, "data": data}),
    st.lists(
        st.fixed_dictionaries(
            {
                "appkey": weighted((2, st.sampled_from(["shop", "billing"])), (1, TEXT)),
                "scenarioIdList": st.lists(weighted((2, KNOWN_IDS), (1, TEXT)), min_size=1),
            }
        ),
        min_size=1,
        max_size=3,
    ),
    weighted((2, JSON_TEXT), (1, TEXT)),
)
SCENARIO_BODIES = st.builds(
    lambda name, extra: json.dumps({**MANAGED_DOCUMENT, "scenarioName": name, **extra}),
    weighted((2, st.text(min_size=1, max_size=20)), (1, TEXT)),
    st.dictionaries(st.sampled_from(["description", "monitoringRegion", "x"]), JSON_VALUES),
)


@st.composite
def junk_requests(
    draw: st.DrawFn, method: str, template: str, known: list[dict[str, str]], key: str
) -> Junk:
    names = re.findall(r"\{(\w+)\}", template)
    way = draw(st.sampled_from(["known", "known", "text", "bytes"] if known else ["text", "bytes"]))
    if way == "known":
        path = path_of(template, draw(st.sampled_from(known)))
    elif way == "text":
        segment = st.text(min_size=1, max_size=30).filter(lambda s: s not in (".", ".."))
        path = path_of(template, {name: draw(segment) for name in names})
    else:
        path = template.format_map(
            {name: junk_segment(draw(st.binary(min_size=1, max_size=30))) for name in names}
        )
    routed = way != "bytes" or not names
    if draw(st.integers(0, 9)) == 9:  # an unknown route below this one
        path += "/" + junk_segment(draw(st.binary(min_size=1, max_size=10)))
        routed = False
    chosen = draw(weighted((6, st.just(method)), (1, st.sampled_from(METHODS))))
    routed = routed and chosen == method

    headers: list[tuple[str, bytes]] = []
    media = draw(
        weighted(
            (4, st.just("application/json")),
            (3, st.sampled_from(MEDIA_TYPES)),
            (1, HEADER_VALUE.map(lambda b: b.decode("latin-1"))),
        )
    )
    if media:
        charset = draw(weighted((1, st.none()), (2, st.sampled_from(CHARSETS))))
        text = media if charset is None else f"{media}; charset={charset}"
        headers.append(("Content-Type", text.encode("latin-1")))
    authorization = draw(
        weighted(
            (1, st.none()),
            (1, st.just(f"Bearer {key}".encode())),
            (1, HEADER_VALUE.map(lambda b: b"Bearer " + b)),
            (1, HEADER_VALUE),
        )
    )
    if authorization is not None:
        headers.append(("Authorization", authorization))
    app_key = draw(weighted((2, st.just(key.encode())), (1, st.none()), (1, HEADER_VALUE)))
    if app_key is not None:
        headers.append(("TOAST_PRODUCT_APPKEY", app_key))
    encoding = draw(weighted((4, st.none()), (1, st.sampled_from(ENCODINGS))))
    if encoding is not None:
        headers.append(("Content-Encoding", encoding))
    if draw(st.booleans()):
        accept = st.sampled_from([b"application/openmetrics-text", b"text/plain;q=0.5, */*"])
        headers.append(("Accept", draw(accept | HEADER_VALUE)))

    shaped = MULTI_BODIES if template == MULTI else SCENARIO_BODIES
    body = draw(
        weighted(
            (3, shaped.map(str.encode)),
            (2, JSON_TEXT.map(str.encode)),
            (2, st.binary(max_size=300)),
        )
    )
    return Junk(chosen, template, path, tuple(headers), body, routed)


def pinned(template: str) -> list[Junk]:
    """Requests every run tries on this route, whatever the seed draws."""
    headers = (("Content-Type", b"application/json"),)
    if template == SINGLE:
        path = path_of(SINGLE, {"appKey": "shop", "scenarioId": NIGHTLY})
        return [
            Junk(
                "POST",
                SINGLE,
                path,
                (("Content-Type", f"application/json; charset={c}".encode()),),
                b'{"status": "done"}',
                routed=True,
            )
            for c in ("undefined", "idna")
        ]
    if template == "/api/v1/events/requeue":
        gzip = (
            *headers,
            ("Content-Encoding", b"gzip"),
            ("TOAST_PRODUCT_APPKEY", ADMIN_KEY.encode()),
        )
        return [Junk("POST", template, template, gzip, b"not gzip", routed=True)]
    if template == MULTI:
        body = b'{"target": [{"appkey": "\\ud800", "scenarioIdList": ["x"]}], "data": "{}"}'
        return [Junk("POST", MULTI, MULTI, headers, body, routed=True)]
    return []


@dataclass(frozen=True)
class Answer:
    status: int
    headers: CIMultiDict[str]
    body: bytes
    version: int = 11  # 10: HTTP/1.0, as aiohttp's parser answers a request it refuses


def send(address: tuple[str, int], junk: Junk) -> Answer:
    """The request in one write (head and body together), on a connection of its own."""
    head = f"{junk.method} {junk.path} HTTP/1.1\r\nHost: {address[0]}\r\n".encode()
    for name, value_ in junk.headers:
        head += name.encode() + b": " + value_ + b"\r\n"
    head += f"Content-Length: {len(junk.body)}\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection(address, timeout=REQUEST_TIMEOUT_S) as sock:
        sock.sendall(head + junk.body)
        response = http.client.HTTPResponse(sock, method=junk.method)
        response.begin()
        headers = CIMultiDict(response.getheaders())
        return Answer(response.status, headers, response.read(), response.version)


def template_pattern(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template)))


def judge_junk(junk: Junk, answer: Answer) -> str | None:
    """What is wrong with this answer, or None."""
    status, headers, body = answer.status, answer.headers, answer.body
    if status >= 500:
        return f"answered {status}"
    if (
        answer.version == 10
        and status == 400
        and headers.get("Content-Type", "").startswith("text/plain")
    ):
        return None  # aiohttp's HTTP parser refused the request before any handler saw it
    if junk.routed:
        try:
            DOC.check(junk.method, junk.template, status, headers, body)
        except AssertionError as exc:
            return str(exc)[:400]
        return None
    # The answer of an operation whose template the path fits (maybe not the one aimed
    # at: a segment added to a list path is an id), or the router's 404 or 405.
    problems = []
    for method, template in operations(DOC.document):
        if method == junk.method and template_pattern(template).fullmatch(junk.path):
            try:
                DOC.check(method, template, status, headers, body)
                return None
            except AssertionError as exc:
                problems.append(str(exc)[:300])
    try:
        DOC.check_error_format(junk.path, status, headers, body)
        return None
    except AssertionError as exc:
        problems.append(str(exc)[:300])
    return " / ".join(problems)


def fuzz_junk(fuzzed: Fuzzed) -> Findings:
    findings = Findings()
    for method, template in operations(DOC.document):
        fuzz_route(method, template, fuzzed, findings)
    return findings


def fuzz_route(method: str, template: str, fuzzed: Fuzzed, findings: Findings) -> None:
    known = fuzzed.known(set(re.findall(r"\{(\w+)\}", template)))

    @fuzz_settings(JUNK_EXAMPLES)
    @given(junk=junk_requests(method, template, known, ADMIN_KEY))
    def call(junk: Junk) -> None:
        try:
            answer = send(fuzzed.address, junk)
        except (OSError, http.client.HTTPException) as exc:
            findings.fail(f"{junk.method} {template}: no answer ({exc!r})", repr(junk))
            return
        findings.statuses[(f"{method} {template}", answer.status)] += 1
        problem = judge_junk(junk, answer)
        if problem is not None:
            what = re.sub(r"b'.*", "", problem.splitlines()[0])[:200]
            findings.fail(f"{junk.method} {template}: {what}", repr(junk))

    for junk in pinned(template):
        call = hypothesis.example(junk=junk)(call)
    call()


async def test_junk_requests_on_every_route_answer_4xx_in_the_format_of_their_path(
    tmp_path: Path,
) -> None:
    """Random bodies, header values and path segments on each route: no 5xx, no dropped
    connection, and every answer documented or in the error format of its path."""
    async with fuzzed_daemon(tmp_path) as fuzzed:
        findings = await asyncio.to_thread(fuzz_junk, fuzzed)
        survival = await survival_problems(fuzzed)
    print(findings.summary())
    assert not findings.failures, findings.report()
    assert not survival, survival
    seen = {label for label, _ in findings.statuses}
    assert seen == {f"{m} {t}" for m, t in operations(DOC.document)}
    assert any(status == 200 for (label, status) in findings.statuses if label.endswith(MULTI))


def test_the_junk_judge_refuses_5xx_and_errors_in_the_wrong_format() -> None:
    """A sanity check of the judge: both error formats, and a 500 is never fine."""
    junk = Junk("PUT", "/health", "/health", (), b"", routed=False)
    json_type = CIMultiDict({"Content-Type": "application/json"})
    error = json.dumps({"error": {"status": 405, "message": "Method Not Allowed"}}).encode()
    assert judge_junk(junk, Answer(405, json_type, error)) is None
    assert judge_junk(junk, Answer(500, json_type, error)) == "answered 500"
    wrong = json.dumps({"error": {"status": 404, "message": "x"}}).encode()
    assert judge_junk(junk, Answer(405, json_type, wrong)) is not None
    text = CIMultiDict({"Content-Type": "text/plain; charset=utf-8"})
    assert judge_junk(junk, Answer(400, text, b"Bad Request", version=10)) is None
    assert judge_junk(junk, Answer(400, text, b"Bad Request")) is not None
    routed = Junk("GET", "/health", "/health", (), b"", routed=True)
    assert "undocumented status" in str(judge_junk(routed, Answer(404, json_type, error)))
    # Under /v1.0/ and /open-api/ errors come in the envelope, not as {"error": …}.
    on_multi = Junk("GET", MULTI, MULTI, (), b"", routed=False)
    assert judge_junk(on_multi, Answer(405, json_type, error)) is not None
    envelope = {"header": {"isSuccessful": False, "resultCode": 405, "resultMessage": "no"}}
    answer = Answer(405, json_type, json.dumps({**envelope, "body": None}).encode())
    assert judge_junk(on_multi, answer) is None
