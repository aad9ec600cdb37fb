"""The batch-monitor receiver (SPEC §7, seed 004) on a real app and a real ``Monitor``.

Two services (appKeys) each own a BATCH scenario judged with two JSON checks; the
first also owns an API scenario. Payloads go through ``POST /v1.0/monitoring/batchmon``
paths; every answer is checked field by field against the seed's envelope, and what
was recorded is read back from ``GET /api/v1/scenarios/{id}`` and ``/metrics``.
"""

from __future__ import annotations

import io
import json
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitord.receiver import new_request_id
from tests.test_api import (
    NEVER,
    App,
    _value,
    api_yaml,
    assert_still_serving,
    batch_yaml,
    raw_exchange,
    running_app,
    saved_rows,
)

SHOP = "81713f1cc96b4eae834f7535ec4fae7a"
BILLING = "2aac90b8f3c64fcb8083d1ed0218192c"
UNKNOWN_KEY = "0000000000000000000000000000dead"

CONFIG = (
    "scenarios: ./s\n"
    "state: ./state.sqlite3\n"
    "adminKey: {env: ADMIN}\n"
    "services:\n"
    f"  - appKey: {SHOP}\n"
    "    name: shop\n"
    f"  - appKey: {BILLING}\n"
    "    name: billing\n"
)

MULTI = "/v1.0/monitoring/batchmon"
JSON = "application/json"
MIB = 1024 * 1024

PASSING = '{"numErrors": 0, "status": "ok"}'
FAILING = '{"numErrors": 3, "status": "bad"}'
FAILING_REASONS = ["$.numErrors LTE 0: got 3", '$.status EQ ok: got "bad"']
NOT_JSON_REASON = "body is not valid JSON: Expecting value: line 1 column 1 (char 0)"

ELEMENT_KEYS = [
    "pk",
    "scenarioId",
    "ipaddr",
    "requestTime",
    "requestData",
    "serviceCode",
    "status",
    "reasons",
]
REQUEST_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")

USAGE = 'the body must be {"target": [{"appkey": "…", "scenarioIdList": ["…"]}], "data": "…"}'
DATA_NOT_TEXT = 'data must be JSON text in a string, e.g. "{\\"key\\": \\"value\\"}"'
TARGET_LIST = "target must be a list of 1 to 100 entries"
TARGET_SHAPE = 'each target must be {"appkey": "…", "scenarioIdList": ["…"]}'
TARGET_TYPES = "appkey must be a string and scenarioIdList a list of scenario ids"
ID_TYPES = "scenarioIdList must hold scenario ids (strings)"
BODY_NOT_JSON = "the request body is not JSON"

# Stands for the id of the "nightly" scenario in request tables (ids are known at run time).
NIGHTLY = "<nightly>"


def two_check_batch_yaml(name: str, app_key: str) -> str:
    """``batch_yaml`` of test_api, owned by ``app_key`` and judged by two checks."""
    one_check = "    textValidationInfos: [{expression: $.status, operator: EQ, operand: done}]\n"
    text = batch_yaml(name)
    assert one_check in text
    return f"appKey: {app_key}\n" + text.replace(
        one_check,
        "    textValidationInfos:\n"
        '      - {expression: $.numErrors, operator: LTE, operand: "0"}\n'
        "      - {expression: $.status, operator: EQ, operand: ok}\n",
    )


def single_path(app_key: str, scenario_id: str) -> str:
    return f"/v1.0/monitoring/batchmon/appkey/{app_key}/scenarios/{scenario_id}"


# --- requests and the envelope ---------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]  # names in lower case
    document: Any
    sent_at: datetime
    answered_at: datetime


def _answer(status: int, headers: Mapping[str, str], raw: bytes, sent_at: datetime) -> Answer:
    answered_at = datetime.now(UTC)
    assert headers.get("content-type", "").startswith(JSON), (status, headers, raw[:500])
    return Answer(status, headers, json.loads(raw), sent_at, answered_at)


async def post(
    app: App, path: str, body: bytes | AsyncIterator[bytes], content_type: str = JSON
) -> Answer:
    headers = {"Content-Type": content_type}
    data = io.BytesIO(body) if isinstance(body, bytes) else body  # large bodies without a copy
    sent_at = datetime.now(UTC)
    async with app.client.post(path, data=data, headers=headers) as response:
        raw = await response.read()
        lowered = {name.lower(): value for name, value in response.headers.items()}
        return _answer(response.status, lowered, raw, sent_at)


async def raw_post(app: App, path: str, body: bytes, content_type: str | None) -> Answer:
    """A POST written byte by byte: the path goes out as given, no header is added."""
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    sent_at = datetime.now(UTC)
    response = await raw_exchange(app.address, head.encode("latin-1") + body)
    assert response.status is not None
    return _answer(response.status, response.headers, response.body, sent_at)


def envelope_body(answer: Answer, status: int, code: int, message: str | None) -> Any:
    """Checks the HTTP status and the whole header; returns the envelope's body.

    ``message`` None: any non-empty text (a message aiohttp itself chooses)."""
    assert answer.status == status, answer.document
    assert set(answer.document) == {"header", "body"}
    header = answer.document["header"]
    assert set(header) == {"isSuccessful", "resultCode", "resultMessage"}
    assert header["isSuccessful"] is (code == 0)
    assert header["resultCode"] == code
    if message is None:
        assert isinstance(header["resultMessage"], str)
        assert header["resultMessage"]
    else:
        assert header["resultMessage"] == message
    return answer.document["body"]


def envelope_error(answer: Answer, status: int, code: int, message: str | None) -> None:
    """An error envelope without a body."""
    assert envelope_body(answer, status, code, message) is None


def to_ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# --- the app under test ------------------------------------------------------------------------


@dataclass
class Receiver:
    app: App
    nightly: str  # BATCH, appKey SHOP
    billing: str  # BATCH, appKey BILLING
    api: str  # API, appKey SHOP
    service_ids: dict[str, str] = field(default_factory=dict)
    request_ids: set[str] = field(default_factory=set)

    async def single(
        self, app_key: str, scenario_id: str, body: bytes | str, content_type: str = JSON
    ) -> Answer:
        data = body.encode() if isinstance(body, str) else body
        return await post(self.app, single_path(app_key, scenario_id), data, content_type)

    async def multi(self, document: Any, content_type: str = JSON) -> Answer:
        """``document`` as JSON (bytes go as they are); ``NIGHTLY`` becomes the real id."""
        data = document if isinstance(document, bytes) else json.dumps(document).encode()
        data = data.replace(NIGHTLY.encode(), self.nightly.encode())
        return await post(self.app, MULTI, data, content_type)

    async def state(self, scenario_id: str) -> dict[str, Any]:
        async with self.app.client.get(f"/api/v1/scenarios/{scenario_id}") as response:
            assert response.status == 200
            state: dict[str, Any] = await response.json()
        return state

    def check_element(
        self,
        element: Any,
        answer: Answer,
        *,
        app_key: str,
        scenario_id: str,
        body: str,
        status: str,
        reasons: list[str] | None,
        service_code: int = 0,
    ) -> None:
        """One body element, every field; ``reasons`` None: at least one, any text."""
        assert list(element) == ELEMENT_KEYS
        assert list(element["pk"]) == ["serviceId", "requestId"]
        service_id = element["pk"]["serviceId"]
        assert uuid.UUID(service_id).version == 5
        known = self.service_ids.setdefault(app_key, service_id)
        assert service_id == known, "serviceId changed for one appKey"
        assert list(self.service_ids.values()).count(service_id) == 1, self.service_ids
        request_id = element["pk"]["requestId"]
        assert uuid.UUID(request_id).version == 4
        assert str(uuid.UUID(request_id)) == request_id
        assert request_id not in self.request_ids, "requestId reused"
        self.request_ids.add(request_id)
        assert element["scenarioId"] == scenario_id
        assert element["ipaddr"] == "127.0.0.1"
        assert REQUEST_TIME.fullmatch(element["requestTime"]), element["requestTime"]
        request_time = datetime.fromisoformat(element["requestTime"])
        assert to_ms(answer.sent_at) <= request_time <= answer.answered_at
        assert element["requestData"] == {"body": body}
        assert element["serviceCode"] == service_code
        assert element["status"] == status
        if reasons is None:
            assert element["reasons"], element
            assert all(isinstance(r, str) and r for r in element["reasons"])
        else:
            assert element["reasons"] == reasons

    def check_elements(
        self,
        elements: Any,
        answer: Answer,
        expected: list[tuple[str, str, int, str, list[str]]],
        body: str,
    ) -> None:
        """The elements of a multi-target answer, in order: (appKey, scenario id, serviceCode,
        status, reasons) each, all for the same ``body``."""
        assert isinstance(elements, list)
        for element, (app_key, scenario_id, code, status, reasons) in zip(
            elements, expected, strict=True
        ):
            self.check_element(
                element,
                answer,
                app_key=app_key,
                scenario_id=scenario_id,
                body=body,
                status=status,
                reasons=reasons,
                service_code=code,
            )


def write_scenarios(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    folder.mkdir(exist_ok=True)
    (folder / "nightly.yaml").write_text(two_check_batch_yaml("nightly", SHOP))
    (folder / "billing.yaml").write_text(two_check_batch_yaml("billing run", BILLING))
    api = f"appKey: {SHOP}\n" + api_yaml("shop api", "http://127.0.0.1:9/never")
    assert NEVER in api
    (folder / "api.yaml").write_text(api)


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[Receiver]:
    write_scenarios(tmp_path)
    async with running_app(tmp_path, CONFIG) as app:
        ids = {s["scenarioName"]: s["scenarioId"] for s in (await app.scenarios())["scenarios"]}
        yield Receiver(app, ids["nightly"], ids["billing run"], ids["shop api"])
        await assert_still_serving(app)  # whatever the test sent, the app still answers


# --- single: accepted payloads -----------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [JSON, "application/json; charset=utf-8", "application/vnd.x+json", "APPLICATION/JSON"],
)
async def test_a_passing_payload_is_a_success_and_the_scenario_is_ok(
    receiver: Receiver, content_type: str
) -> None:
    """A payload meeting every check: 200 envelope, element with status success, state ok."""
    before = await receiver.state(receiver.nightly)
    assert (before["state"], before["lastResult"], before["lastPayloadAt"]) == (
        "unknown",
        None,
        None,
    )
    answer = await receiver.single(SHOP, receiver.nightly, PASSING, content_type)
    element = envelope_body(answer, 200, 0, "SUCCESS")
    receiver.check_element(
        element,
        answer,
        app_key=SHOP,
        scenario_id=receiver.nightly,
        body=PASSING,
        status="success",
        reasons=[],
    )
    after = await receiver.state(receiver.nightly)
    assert (after["state"], after["consecutiveFailures"]) == ("ok", 0)
    assert after["lastResult"]["result"] == "success"
    assert after["lastResult"]["reasons"] == []
    assert after["lastResult"]["startedAt"] == element["requestTime"]
    assert after["lastPayloadAt"] == element["requestTime"]


async def test_each_verdict_is_on_disk_when_answered_even_when_the_state_waits(
    tmp_path: Path,
) -> None:
    """A second passing payload leaves the standing as it was: its state row may wait
    (RESULT_SAVE_PERIOD_S), but its verdict is in the payload row before the answer."""
    write_scenarios(tmp_path)
    async with running_app(tmp_path, CONFIG) as app:
        ids = {s["scenarioName"]: s["scenarioId"] for s in (await app.scenarios())["scenarios"]}
        nightly = ids["nightly"]
        times = []
        for _ in range(2):
            answer = await post(app, single_path(SHOP, nightly), PASSING.encode(), JSON)
            times.append(envelope_body(answer, 200, 0, "SUCCESS")["requestTime"])
            assert stored_payload(tmp_path, nightly) == times[-1]
        assert saved_rows(tmp_path) == {nightly: (0, times[0])}  # the state waits
    assert saved_rows(tmp_path) == {nightly: (0, times[1])}  # until stop at the latest


def stored_payload(tmp_path: Path, scenario_id: str) -> str:
    """startedAt of the stored payload's result, read through a connection of its own."""
    connection = sqlite3.connect(tmp_path / "state.sqlite3")
    try:
        (result,) = connection.execute(
            "SELECT result FROM batch_payload WHERE scenario_id = ?", (scenario_id,)
        ).fetchone()
    finally:
        connection.close()
    started: str = json.loads(result)["startedAt"]
    return started


async def test_failing_payloads_make_the_scenario_fail_and_a_passing_one_recovers(
    receiver: Receiver,
) -> None:
    """Both checks failing: status failure with both reasons; state follows each payload."""
    failing_since = None
    for count in (1, 2):
        answer = await receiver.single(SHOP, receiver.nightly, FAILING)
        element = envelope_body(answer, 200, 0, "SUCCESS")
        receiver.check_element(
            element,
            answer,
            app_key=SHOP,
            scenario_id=receiver.nightly,
            body=FAILING,
            status="failure",
            reasons=FAILING_REASONS,
        )
        state = await receiver.state(receiver.nightly)
        assert (state["state"], state["consecutiveFailures"]) == ("failing", count)
        assert state["lastResult"]["result"] == "failure"
        assert state["lastResult"]["reasons"] == FAILING_REASONS
        assert state["lastPayloadAt"] == element["requestTime"]
        failing_since = failing_since or element["requestTime"]  # the first failure's time
        assert state["failingSince"] == failing_since

    answer = await receiver.single(SHOP, receiver.nightly, PASSING)
    receiver.check_element(
        envelope_body(answer, 200, 0, "SUCCESS"),
        answer,
        app_key=SHOP,
        scenario_id=receiver.nightly,
        body=PASSING,
        status="success",
        reasons=[],
    )
    state = await receiver.state(receiver.nightly)
    assert (state["state"], state["consecutiveFailures"], state["failingSince"]) == ("ok", 0, None)
    # The other service's scenario saw none of it.
    other = await receiver.state(receiver.billing)
    assert (other["state"], other["lastResult"]) == ("unknown", None)


async def test_service_ids_are_stable_per_app_key_and_request_ids_fresh(
    tmp_path: Path,
) -> None:
    """pk.serviceId: one UUID per appKey, the same after a restart; pk.requestId: new each time."""
    write_scenarios(tmp_path)
    seen: dict[str, str] = {}
    request_ids: set[str] = set()
    for _ in range(2):  # the second round is a restart on the same state and config
        async with running_app(tmp_path, CONFIG) as app:
            ids = {s["scenarioName"]: s["scenarioId"] for s in (await app.scenarios())["scenarios"]}
            receiver = Receiver(app, ids["nightly"], ids["billing run"], ids["shop api"], seen)
            receiver.request_ids = request_ids
            for app_key, scenario_id in [
                (SHOP, receiver.nightly),
                (BILLING, receiver.billing),
                (SHOP, receiver.nightly),
                (BILLING, receiver.billing),
            ]:
                answer = await receiver.single(app_key, scenario_id, PASSING)
                receiver.check_element(
                    envelope_body(answer, 200, 0, "SUCCESS"),
                    answer,
                    app_key=app_key,
                    scenario_id=scenario_id,
                    body=PASSING,
                    status="success",
                    reasons=[],
                )
    assert set(seen) == {SHOP, BILLING}
    assert seen[SHOP] != seen[BILLING]
    assert len(request_ids) == 8


@pytest.mark.parametrize("charset", ["latin-1", "ISO-8859-1"])
async def test_a_latin_1_payload_is_decoded_in_its_charset(
    receiver: Receiver, charset: str
) -> None:
    """The declared charset decodes the payload: for the checks and for requestData.body."""
    content_type = f"application/json; charset={charset}"
    text = '{"numErrors": 0, "status": "ok", "note": "café crème"}'
    answer = await receiver.single(SHOP, receiver.nightly, text.encode("latin-1"), content_type)
    receiver.check_element(
        envelope_body(answer, 200, 0, "SUCCESS"),
        answer,
        app_key=SHOP,
        scenario_id=receiver.nightly,
        body=text,
        status="success",
        reasons=[],
    )
    text = '{"numErrors": 0, "status": "été"}'
    answer = await receiver.single(SHOP, receiver.nightly, text.encode("latin-1"), content_type)
    receiver.check_element(
        envelope_body(answer, 200, 0, "SUCCESS"),
        answer,
        app_key=SHOP,
        scenario_id=receiver.nightly,
        body=text,
        status="failure",
        reasons=['$.status EQ ok: got "été"'],
    )


async def test_a_payload_of_exactly_1_mib_is_judged(receiver: Receiver) -> None:
    """The cap is 1 MiB: a payload of exactly that size is still taken."""
    text = PASSING + " " * (MIB - len(PASSING))
    answer = await receiver.single(SHOP, receiver.nightly, text)
    receiver.check_element(
        envelope_body(answer, 200, 0, "SUCCESS"),
        answer,
        app_key=SHOP,
        scenario_id=receiver.nightly,
        body=text,
        status="success",
        reasons=[],
    )


# --- single: payloads that are not JSON ----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message", "reason"),
    [
        pytest.param(
            "nope",
            "payload is not valid JSON: Expecting value: line 1 column 1 (char 0)",
            NOT_JSON_REASON,
            id="not JSON",
        ),
        pytest.param(
            '{"numErrors": 0,',
            "payload is not valid JSON: Expecting property name enclosed in double quotes:"
            " line 1 column 17 (char 16)",
            "body is not valid JSON: Expecting property name enclosed in double quotes:"
            " line 1 column 17 (char 16)",
            id="truncated",
        ),
        pytest.param("", "payload is empty", "body is empty", id="empty"),
        pytest.param(" \r\n\t ", "payload is empty", "body is empty", id="whitespace"),
    ],
)
async def test_a_payload_that_is_not_json_is_400_and_recorded_as_a_failure(
    receiver: Receiver, body: str, message: str, reason: str
) -> None:
    """400 with the element in the body; the job did report, so it counts as a failure."""
    for count in (1, 2):
        answer = await receiver.single(SHOP, receiver.nightly, body)
        element = envelope_body(answer, 400, 400, message)
        receiver.check_element(
            element,
            answer,
            app_key=SHOP,
            scenario_id=receiver.nightly,
            body=body,
            status="failure",
            reasons=[reason],
        )
        state = await receiver.state(receiver.nightly)
        assert (state["state"], state["consecutiveFailures"]) == ("failing", count)
        assert state["lastResult"]["result"] == "failure"
        assert state["lastResult"]["reasons"] == [reason]
        assert state["lastPayloadAt"] == element["requestTime"]


# --- single: refused before the payload is looked at ---------------------------------------------


async def test_unknown_app_key_unknown_scenario_and_api_scenario_are_refused(
    receiver: Receiver,
) -> None:
    """4041 / 4042 (also for another appKey's scenario) / 409, nothing recorded."""
    before = await receiver.state(receiver.nightly)
    before_billing = await receiver.state(receiver.billing)
    missing = str(uuid.uuid4())

    answer = await receiver.single(UNKNOWN_KEY, receiver.nightly, PASSING)
    envelope_error(answer, 404, 4041, "unknown appKey")
    answer = await receiver.single(SHOP, missing, PASSING)
    envelope_error(answer, 404, 4042, f"no scenario {missing!r} for this appKey")
    answer = await receiver.single(SHOP, receiver.billing, PASSING)
    envelope_error(answer, 404, 4042, f"no scenario {receiver.billing!r} for this appKey")
    answer = await receiver.single(BILLING, receiver.nightly, FAILING)
    envelope_error(answer, 404, 4042, f"no scenario {receiver.nightly!r} for this appKey")
    answer = await receiver.single(BILLING, receiver.api, PASSING)
    envelope_error(answer, 404, 4042, f"no scenario {receiver.api!r} for this appKey")
    answer = await receiver.single(SHOP, receiver.api, PASSING)
    envelope_error(
        answer,
        409,
        409,
        f"scenario {receiver.api} is an API scenario; only BATCH scenarios receive payloads",
    )

    assert await receiver.state(receiver.nightly) == before
    assert await receiver.state(receiver.billing) == before_billing
    api = await receiver.state(receiver.api)
    assert (api["state"], api["lastResult"]) == ("unknown", None)


async def test_the_checks_come_in_order_app_key_scenario_type_then_content_type(
    receiver: Receiver,
) -> None:
    """A request wrong in several ways gets the first problem: appKey, scenario, type, media."""
    answer = await receiver.single(UNKNOWN_KEY, "nope", "x", "text/plain")
    envelope_error(answer, 404, 4041, "unknown appKey")
    answer = await receiver.single(SHOP, "nope", "x", "text/plain")
    envelope_error(answer, 404, 4042, "no scenario 'nope' for this appKey")
    answer = await receiver.single(SHOP, receiver.api, "x", "text/plain")
    envelope_error(
        answer,
        409,
        409,
        f"scenario {receiver.api} is an API scenario; only BATCH scenarios receive payloads",
    )
    answer = await receiver.single(SHOP, receiver.nightly, "x", "text/plain")
    envelope_error(answer, 415, 415, "Content-Type must be application/json")


@pytest.mark.parametrize(
    "app_key",
    [
        pytest.param("%00", id="nul"),
        pytest.param(f"{SHOP}%00", id="known key then nul"),
        pytest.param(f"{SHOP}%20", id="known key then space"),
        pytest.param(SHOP.upper(), id="known key upper case"),
        pytest.param(SHOP[:-1], id="known key shortened"),
        pytest.param("%E2%98%83%F0%9F%92%A9", id="unicode"),
        pytest.param(f"{SHOP}%C3%A9", id="known key then accent"),
        pytest.param("%ff%fe", id="invalid utf-8"),
        pytest.param("%25%25", id="percent"),
        pytest.param("'%3B%20DROP%20TABLE%20batch_payload%3B--", id="sql"),
        pytest.param("k" * 7500, id="7.5 KB"),
    ],
)
async def test_odd_app_keys_in_the_path_are_unknown(receiver: Receiver, app_key: str) -> None:
    """Whatever the appKey segment holds, it is 404/4041 in the envelope, never a 5xx."""
    before = await receiver.state(receiver.nightly)
    answer = await raw_post(
        receiver.app, single_path(app_key, receiver.nightly), PASSING.encode(), JSON
    )
    envelope_error(answer, 404, 4041, "unknown appKey")
    assert await receiver.state(receiver.nightly) == before


async def test_multi_whose_answer_would_echo_over_8_mib_is_413_and_nothing_is_recorded(
    receiver: Receiver,
) -> None:
    """Every judged element echoes ``data``: 1000 scenarios times a 9 KiB payload would be
    a 9 MiB answer, so the request is refused before anything is judged."""
    before = await receiver.state(receiver.nightly)
    data = json.dumps({"numErrors": 0, "pad": "x" * 9 * 1024})
    ids = [receiver.nightly, *(f"id-{i}" for i in range(999))]
    answer = await receiver.multi({"target": _target(*ids), "data": data})
    envelope_error(
        answer,
        413,
        413,
        "data times the number of scenarios exceeds 8388608 bytes; split the request",
    )
    assert await receiver.state(receiver.nightly) == before
    # Just under the bound, the same request is taken.
    small = json.dumps({"numErrors": 0, "pad": "x" * 7 * 1024})
    answer = await receiver.multi({"target": _target(*ids), "data": small})
    assert len(envelope_body(answer, 200, 0, "SUCCESS")) == 1000


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("text/plain", id="text"),
        pytest.param("application/x-www-form-urlencoded", id="form"),
        pytest.param("multipart/form-data; boundary=x", id="multipart"),
        pytest.param("application/octet-stream", id="octet-stream"),
        pytest.param("text/json", id="text/json"),
        pytest.param("application/json-seq", id="json-seq"),
        pytest.param(None, id="none"),
    ],
)
async def test_a_payload_that_is_not_declared_json_is_415_and_not_recorded(
    receiver: Receiver, content_type: str | None
) -> None:
    """415 with Accept-Post, body null; the payload is not judged."""
    before = await receiver.state(receiver.nightly)
    for body in (PASSING, FAILING):
        answer = await raw_post(
            receiver.app, single_path(SHOP, receiver.nightly), body.encode(), content_type
        )
        envelope_error(answer, 415, 415, "Content-Type must be application/json")
        assert answer.headers["accept-post"] == JSON
    assert await receiver.state(receiver.nightly) == before


async def _chunks(total: int) -> AsyncIterator[bytes]:
    """``total`` bytes of a JSON document padded with spaces, sent chunked."""
    yield PASSING.encode()
    left = total - len(PASSING)
    while left > 0:
        size = min(left, 64 * 1024)
        yield b" " * size
        left -= size


@pytest.mark.parametrize("path", ["single", "multi"])
async def test_a_body_over_1_mib_is_413_and_not_recorded(receiver: Receiver, path: str) -> None:
    """Over the cap, with Content-Length (refused up front) or chunked: 413 envelope."""
    target = single_path(SHOP, receiver.nightly) if path == "single" else MULTI
    before = await receiver.state(receiver.nightly)

    answer = await post(receiver.app, target, PASSING.encode() + b" " * MIB)
    envelope_error(answer, 413, 413, f"request body larger than {MIB} bytes")

    # Only the head: the answer must not wait for a body that is declared too large.
    head = (
        f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Type: {JSON}\r\n"
        f"Content-Length: {MIB + 1}\r\nConnection: close\r\n\r\n"
    )
    response = await raw_exchange(receiver.app.address, head.encode())
    assert response.status is not None
    envelope_error(
        _answer(response.status, response.headers, response.body, datetime.now(UTC)),
        413,
        413,
        f"request body larger than {MIB} bytes",
    )

    answer = await post(receiver.app, target, _chunks(2 * MIB))
    envelope_error(answer, 413, 413, None)
    answer = await post(receiver.app, target, _chunks(MIB + 1))
    envelope_error(answer, 413, 413, None)

    assert await receiver.state(receiver.nightly) == before


# --- single: hostile payloads ------------------------------------------------------------------


DEPTH = 100_000


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"[" * DEPTH + b"]" * DEPTH, id="arrays nested 100000 deep"),
        pytest.param(b'{"a":' * DEPTH + b"0" + b"}" * DEPTH, id="objects nested 100000 deep"),
        pytest.param(
            b'{"status": "ok", "numErrors": ' + b"9" * 5000 + b"}", id="5000-digit number"
        ),
        pytest.param(b'{"status": "ok", "numErrors": 0.' + b"1" * 5000 + b"}", id="5000 decimals"),
        pytest.param(b'{"status": "ok", "numErrors": 1e99999}', id="huge exponent"),
        pytest.param(b'{"status": "ok", "numErrors": NaN}', id="NaN"),
        pytest.param(b'{"status": "ok", "numErrors": -Infinity}', id="-Infinity"),
        pytest.param(b"NaN", id="bare NaN"),
        pytest.param(b'{"status": "\\ud800", "numErrors": 0}', id="lone surrogate escaped"),
        pytest.param(b'{"status": "ok", "\\udfff": 1}', id="lone surrogate key"),
        pytest.param(b'{"status": "\xed\xa0\x80", "numErrors": 0}', id="lone surrogate encoded"),
        pytest.param(b'{"status": "ok\x00", "numErrors": 0}', id="raw NUL in a string"),
        pytest.param(b'{"status": "ok\\u0000", "numErrors": 0}', id="escaped NUL"),
        pytest.param(b"\x00\x00\x00\x00", id="only NUL bytes"),
        pytest.param(b'{"status": "\xff\xfe", "numErrors": 0}', id="invalid utf-8"),
        pytest.param(b'{"status": "\xc0\xaf", "numErrors": 0}', id="overlong utf-8"),
        pytest.param(b"\xff\xfe\x00\x00garbage", id="utf-32 BOM then garbage"),
        pytest.param(b'{"status": "ok", "status": "bad", "numErrors": 0}', id="duplicate key"),
        pytest.param(b"[" + b"1," * 200_000 + b"1]", id="wide array"),
    ],
)
async def test_hostile_payloads_are_a_clear_400_or_a_failure_never_5xx(
    receiver: Receiver, payload: bytes
) -> None:
    """Each is answered with the element: 400 "not valid JSON", or judged a failure;
    either way the scenario records one failure."""
    before = await receiver.state(receiver.nightly)
    answer = await receiver.single(SHOP, receiver.nightly, payload)
    assert answer.status in (200, 400), answer.document
    if answer.status == 400:
        element = envelope_body(answer, 400, 400, answer.document["header"]["resultMessage"])
        assert answer.document["header"]["resultMessage"].startswith("payload is not valid JSON: ")
    else:
        element = envelope_body(answer, 200, 0, "SUCCESS")
    receiver.check_element(
        element,
        answer,
        app_key=SHOP,
        scenario_id=receiver.nightly,
        body=payload.decode("utf-8", "replace"),
        status="failure",
        reasons=None,
    )
    after = await receiver.state(receiver.nightly)
    assert after["consecutiveFailures"] == before["consecutiveFailures"] + 1
    assert after["lastResult"]["result"] == "failure"
    assert after["lastResult"]["reasons"] == element["reasons"]


# --- envelope for routes and methods ------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["single", "multi"])
async def test_other_methods_on_the_receiver_are_405_in_the_envelope(
    receiver: Receiver, method: str, path: str
) -> None:
    target = single_path(SHOP, receiver.nightly) if path == "single" else MULTI
    sent_at = datetime.now(UTC)
    async with receiver.app.client.request(
        method, target, data=PASSING.encode(), headers={"Content-Type": JSON}
    ) as response:
        lowered = {name.lower(): value for name, value in response.headers.items()}
        answer = _answer(response.status, lowered, await response.read(), sent_at)
    envelope_error(answer, 405, 405, "Method Not Allowed")
    assert "POST" in {m.strip() for m in answer.headers["allow"].split(",")}
    assert (await receiver.state(receiver.nightly))["lastResult"] is None


@pytest.mark.parametrize(
    "path",
    [
        "/v1.0/",
        "/v1.0/nope",
        "/v1.0/monitoring/batchmon/appkey/{key}",
        "/v1.0/monitoring/batchmon/appkey/{key}/scenarios",
        "/v1.0/monitoring/batchmon/appkey/{key}/scenarios/{sid}/extra",
        "/v1.0/monitoring/batchmon/appkey//scenarios/{sid}",
    ],
)
async def test_unknown_paths_under_v1_0_are_404_in_the_envelope(
    receiver: Receiver, path: str
) -> None:
    target = path.format(key=SHOP, sid=receiver.nightly)
    for method in ("GET", "POST"):
        sent_at = datetime.now(UTC)
        async with receiver.app.client.request(
            method, target, data=PASSING.encode(), headers={"Content-Type": JSON}
        ) as response:
            lowered = {name.lower(): value for name, value in response.headers.items()}
            answer = _answer(response.status, lowered, await response.read(), sent_at)
        envelope_error(answer, 404, 404, "Not Found")
    assert (await receiver.state(receiver.nightly))["lastResult"] is None


# --- multi ---------------------------------------------------------------------------------------


async def test_the_seed_example_one_element_per_pair_in_order(receiver: Receiver) -> None:
    """Known, unknown id and unknown appkey: 200, elements 0/4042/4041, only one judged."""
    missing = str(uuid.uuid4())
    document = {
        "target": [
            {"appkey": SHOP, "scenarioIdList": [receiver.nightly, missing]},
            {"appkey": UNKNOWN_KEY, "scenarioIdList": [receiver.billing]},
        ],
        "data": PASSING,
    }
    before_billing = await receiver.state(receiver.billing)
    answer = await receiver.multi(document)
    elements = envelope_body(answer, 200, 0, "SUCCESS")
    assert isinstance(elements, list)
    assert len(elements) == 3
    expected = [
        (SHOP, receiver.nightly, 0, "success", []),
        (SHOP, missing, 4042, "rejected", ["unknown scenario for this appkey"]),
        (UNKNOWN_KEY, receiver.billing, 4041, "rejected", ["unknown appkey"]),
    ]
    receiver.check_elements(elements, answer, expected, PASSING)
    state = await receiver.state(receiver.nightly)
    assert (state["state"], state["consecutiveFailures"]) == ("ok", 0)
    assert state["lastPayloadAt"] == elements[0]["requestTime"]
    assert await receiver.state(receiver.billing) == before_billing


async def test_both_services_judged_and_api_and_foreign_scenarios_rejected(
    receiver: Receiver,
) -> None:
    """Each known pair is judged on its own; an API scenario is 409, another key's is 4042."""
    document = {
        "target": [
            {"appkey": BILLING, "scenarioIdList": [receiver.billing, receiver.nightly]},
            {"appkey": SHOP, "scenarioIdList": [receiver.api, receiver.nightly]},
        ],
        "data": FAILING,
    }
    answer = await receiver.multi(document)
    elements = envelope_body(answer, 200, 0, "SUCCESS")
    not_batch = f"scenario {receiver.api} is an API scenario; only BATCH scenarios receive payloads"
    expected = [
        (BILLING, receiver.billing, 0, "failure", FAILING_REASONS),
        (BILLING, receiver.nightly, 4042, "rejected", ["unknown scenario for this appkey"]),
        (SHOP, receiver.api, 409, "rejected", [not_batch]),
        (SHOP, receiver.nightly, 0, "failure", FAILING_REASONS),
    ]
    receiver.check_elements(elements, answer, expected, FAILING)
    for scenario_id in (receiver.nightly, receiver.billing):
        state = await receiver.state(scenario_id)
        assert (state["state"], state["consecutiveFailures"]) == ("failing", 1)
        assert state["lastResult"]["reasons"] == FAILING_REASONS
    api = await receiver.state(receiver.api)
    assert (api["state"], api["lastResult"]) == ("unknown", None)


async def test_a_repeated_pair_is_validated_once(receiver: Receiver) -> None:
    """The same (appkey, id) listed three times: one element, one failure recorded."""
    document = {
        "target": [
            {"appkey": SHOP, "scenarioIdList": [receiver.nightly, receiver.nightly]},
            {"appkey": SHOP, "scenarioIdList": [receiver.nightly]},
        ],
        "data": FAILING,
    }
    answer = await receiver.multi(document)
    (element,) = envelope_body(answer, 200, 0, "SUCCESS")
    receiver.check_element(
        element,
        answer,
        app_key=SHOP,
        scenario_id=receiver.nightly,
        body=FAILING,
        status="failure",
        reasons=FAILING_REASONS,
    )
    state = await receiver.state(receiver.nightly)
    assert (state["state"], state["consecutiveFailures"]) == ("failing", 1)
    families = await receiver.app.metrics()
    payloads = "monitord_batch_payloads_total"
    assert _value(families, payloads, scenario_id=receiver.nightly, result="failure") == 1


async def test_data_that_is_not_json_is_400_with_the_elements_and_recorded(
    receiver: Receiver,
) -> None:
    """Every known scenario records a failure; the answer is 400 with all elements."""
    missing = str(uuid.uuid4())
    document = {
        "target": [
            {"appkey": SHOP, "scenarioIdList": [receiver.nightly, missing]},
            {"appkey": BILLING, "scenarioIdList": [receiver.billing]},
            {"appkey": UNKNOWN_KEY, "scenarioIdList": [receiver.nightly]},
        ],
        "data": "nope",
    }
    for count in (1, 2):
        answer = await receiver.multi(document)
        elements = envelope_body(
            answer,
            400,
            400,
            "data: payload is not valid JSON: Expecting value: line 1 column 1 (char 0)",
        )
        expected = [
            (SHOP, receiver.nightly, 0, "failure", [NOT_JSON_REASON]),
            (SHOP, missing, 4042, "rejected", ["unknown scenario for this appkey"]),
            (BILLING, receiver.billing, 0, "failure", [NOT_JSON_REASON]),
            (UNKNOWN_KEY, receiver.nightly, 4041, "rejected", ["unknown appkey"]),
        ]
        receiver.check_elements(elements, answer, expected, "nope")
        for scenario_id in (receiver.nightly, receiver.billing):
            state = await receiver.state(scenario_id)
            assert (state["state"], state["consecutiveFailures"]) == ("failing", count)
            assert state["lastResult"]["reasons"] == [NOT_JSON_REASON]


def _target(*ids: Any) -> list[dict[str, Any]]:
    return [{"appkey": SHOP, "scenarioIdList": list(ids)}]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        pytest.param({"target": _target(NIGHTLY), "data": 5}, DATA_NOT_TEXT, id="data a number"),
        pytest.param({"target": _target(NIGHTLY), "data": None}, DATA_NOT_TEXT, id="data null"),
        pytest.param(
            {"target": _target(NIGHTLY), "data": {"numErrors": 3}}, DATA_NOT_TEXT, id="data object"
        ),
        pytest.param(
            {"target": _target(NIGHTLY), "data": [FAILING]}, DATA_NOT_TEXT, id="data list"
        ),
        pytest.param({"target": _target(NIGHTLY)}, USAGE, id="no data"),
        pytest.param({"data": FAILING}, USAGE, id="no target"),
        pytest.param({}, USAGE, id="empty object"),
        pytest.param(
            {"target": _target(NIGHTLY), "data": FAILING, "extra": 1}, USAGE, id="extra key"
        ),
        pytest.param(
            {"Target": _target(NIGHTLY), "data": FAILING}, USAGE, id="key in another case"
        ),
        pytest.param([{"target": _target(NIGHTLY), "data": FAILING}], USAGE, id="body a list"),
        pytest.param(FAILING, USAGE, id="body a string"),
        pytest.param(None, USAGE, id="body null"),
        pytest.param({"target": [], "data": FAILING}, TARGET_LIST, id="empty target list"),
        pytest.param(
            {"target": _target(NIGHTLY) * 101, "data": FAILING}, TARGET_LIST, id="101 targets"
        ),
        pytest.param(
            {"target": _target(NIGHTLY)[0], "data": FAILING}, TARGET_LIST, id="target an object"
        ),
        pytest.param({"target": NIGHTLY, "data": FAILING}, TARGET_LIST, id="target a string"),
        pytest.param({"target": None, "data": FAILING}, TARGET_LIST, id="target null"),
        pytest.param({"target": [NIGHTLY], "data": FAILING}, TARGET_SHAPE, id="entry a string"),
        pytest.param(
            {"target": [{"appkey": SHOP}], "data": FAILING}, TARGET_SHAPE, id="no scenarioIdList"
        ),
        pytest.param(
            {"target": [{"scenarioIdList": [NIGHTLY]}], "data": FAILING},
            TARGET_SHAPE,
            id="no appkey",
        ),
        pytest.param(
            {"target": [{"appkey": SHOP, "scenarioIdList": [NIGHTLY], "x": 1}], "data": FAILING},
            TARGET_SHAPE,
            id="entry extra key",
        ),
        pytest.param(
            {"target": [{"appkey": SHOP, "scenarioIdList": NIGHTLY}], "data": FAILING},
            TARGET_TYPES,
            id="id list a string",
        ),
        pytest.param({"target": _target(), "data": FAILING}, TARGET_TYPES, id="id list empty"),
        pytest.param(
            {"target": [{"appkey": 81713, "scenarioIdList": [NIGHTLY]}], "data": FAILING},
            TARGET_TYPES,
            id="appkey a number",
        ),
        pytest.param({"target": _target(NIGHTLY, 1), "data": FAILING}, ID_TYPES, id="id a number"),
        pytest.param({"target": _target(NIGHTLY, None), "data": FAILING}, ID_TYPES, id="id null"),
        pytest.param(
            {"target": _target(NIGHTLY, [NIGHTLY]), "data": FAILING}, ID_TYPES, id="id a list"
        ),
        pytest.param(
            {"target": _target(NIGHTLY, *(f"id-{i}" for i in range(1000))), "data": FAILING},
            "at most 1000 scenarios per request",
            id="1001 ids",
        ),
        pytest.param(
            {
                "target": [
                    {"appkey": SHOP, "scenarioIdList": [NIGHTLY, *(f"a-{i}" for i in range(500))]},
                    {"appkey": BILLING, "scenarioIdList": [f"b-{i}" for i in range(500)]},
                ],
                "data": FAILING,
            },
            "at most 1000 scenarios per request",
            id="1001 pairs over two targets",
        ),
        pytest.param(b"nope", BODY_NOT_JSON, id="body not JSON"),
        pytest.param(b"", BODY_NOT_JSON, id="body empty"),
        pytest.param(
            b'{"target": [{"appkey": "' + SHOP.encode() + b'", "scenarioIdList": ["<nightly>"]}],'
            b' "data": NaN}',
            BODY_NOT_JSON,
            id="NaN",
        ),
        pytest.param(b"[" * DEPTH + b"]" * DEPTH, BODY_NOT_JSON, id="nested 100000 deep"),
        pytest.param(b'{"data": ' + b"9" * 5000 + b"}", BODY_NOT_JSON, id="5000-digit number"),
        pytest.param(b'{"data": "\xff\xfe", "target": []}', BODY_NOT_JSON, id="invalid utf-8"),
    ],
)
async def test_malformed_multi_requests_are_400_and_nothing_is_recorded(
    receiver: Receiver, document: Any, message: str
) -> None:
    before = await receiver.state(receiver.nightly)
    answer = await receiver.multi(document)
    envelope_error(answer, 400, 400, message)
    assert await receiver.state(receiver.nightly) == before


async def test_multi_at_its_limits_is_taken(receiver: Receiver) -> None:
    """100 targets and 1000 distinct pairs are allowed: 200, one element per pair."""
    answer = await receiver.multi({"target": _target(NIGHTLY) * 100, "data": PASSING})
    (element,) = envelope_body(answer, 200, 0, "SUCCESS")
    receiver.check_element(
        element,
        answer,
        app_key=SHOP,
        scenario_id=receiver.nightly,
        body=PASSING,
        status="success",
        reasons=[],
    )
    missing = [f"id-{i}" for i in range(999)]
    answer = await receiver.multi({"target": _target(NIGHTLY, *missing), "data": FAILING})
    elements = envelope_body(answer, 200, 0, "SUCCESS")
    assert [e["scenarioId"] for e in elements] == [receiver.nightly, *missing]
    assert [e["serviceCode"] for e in elements] == [0] + [4042] * 999
    assert [e["status"] for e in elements] == ["failure"] + ["rejected"] * 999
    assert len({e["pk"]["requestId"] for e in elements}) == 1000
    state = await receiver.state(receiver.nightly)
    assert (state["state"], state["consecutiveFailures"]) == ("failing", 1)


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("text/plain", id="text"),
        pytest.param("application/x-www-form-urlencoded", id="form"),
        pytest.param(None, id="none"),
    ],
)
async def test_a_multi_request_not_declared_json_is_415(
    receiver: Receiver, content_type: str | None
) -> None:
    before = await receiver.state(receiver.nightly)
    body = json.dumps({"target": _target(receiver.nightly), "data": FAILING}).encode()
    answer = await raw_post(receiver.app, MULTI, body, content_type)
    envelope_error(answer, 415, 415, "Content-Type must be application/json")
    assert answer.headers["accept-post"] == JSON
    assert await receiver.state(receiver.nightly) == before


async def test_multi_data_is_judged_as_the_text_sent_whatever_charset_is_declared(
    receiver: Receiver,
) -> None:
    """``data`` is already text: a charset on the request must not re-decode it."""
    data = '{"numErrors": 0, "status": "café"}'
    document = {"target": _target(receiver.nightly), "data": data}
    body = json.dumps(document).encode("ascii")  # "é" travels as \\u00e9
    for content_type in (JSON, "application/json; charset=iso-8859-1"):
        answer = await post(receiver.app, MULTI, body, content_type)
        (element,) = envelope_body(answer, 200, 0, "SUCCESS")
        receiver.check_element(
            element,
            answer,
            app_key=SHOP,
            scenario_id=receiver.nightly,
            body=data,
            status="failure",
            reasons=['$.status EQ ok: got "café"'],
        )


@pytest.mark.parametrize(
    "data",
    [
        pytest.param('{"status": "\\ud800", "numErrors": 0}', id="escaped lone surrogate"),
        pytest.param('{"status": "\ud800", "numErrors": 0}', id="lone surrogate in the text"),
        pytest.param('{"status": "ok\u0000", "numErrors": 0}', id="NUL in the text"),
        pytest.param("[" * DEPTH + "]" * DEPTH, id="nested 100000 deep"),
        pytest.param('{"status": "ok", "numErrors": ' + "9" * 5000 + "}", id="5000 digits"),
        pytest.param('{"status": "ok", "numErrors": NaN}', id="NaN"),
    ],
)
async def test_hostile_multi_data_is_a_clear_400_or_a_failure_never_5xx(
    receiver: Receiver, data: str
) -> None:
    before = await receiver.state(receiver.nightly)
    answer = await receiver.multi({"target": _target(NIGHTLY), "data": data})
    assert answer.status in (200, 400), answer.document
    if answer.status == 400:
        message = answer.document["header"]["resultMessage"]
        assert message.startswith("data: payload is not valid JSON: ")
        (element,) = envelope_body(answer, 400, 400, message)
    else:
        (element,) = envelope_body(answer, 200, 0, "SUCCESS")
    receiver.check_element(
        element,
        answer,
        app_key=SHOP,
        scenario_id=receiver.nightly,
        body=data.encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
        status="failure",
        reasons=None,
    )
    after = await receiver.state(receiver.nightly)
    assert after["consecutiveFailures"] == before["consecutiveFailures"] + 1
    assert after["lastResult"]["reasons"] == element["reasons"]


# --- metrics -------------------------------------------------------------------------------------


async def test_metrics_count_payloads_by_result_with_the_scenario_labels(
    receiver: Receiver,
) -> None:
    """N passing and M failing payloads (wrong answers and non-JSON) show in /metrics;
    refused requests count nowhere."""
    passing, failing = 3, 4
    for _ in range(passing - 1):
        envelope_body(await receiver.single(SHOP, receiver.nightly, PASSING), 200, 0, "SUCCESS")
    envelope_body(await receiver.single(SHOP, receiver.nightly, FAILING), 200, 0, "SUCCESS")
    envelope_body(await receiver.single(SHOP, receiver.nightly, "nope"), 400, 400, None)
    envelope_body(await receiver.single(SHOP, receiver.nightly, ""), 400, 400, "payload is empty")
    multi = {"target": _target(receiver.nightly), "data": FAILING}
    envelope_body(await receiver.multi(multi), 200, 0, "SUCCESS")
    multi = {"target": _target(receiver.nightly), "data": PASSING}
    envelope_body(await receiver.multi(multi), 200, 0, "SUCCESS")
    # Refused: counted nowhere.
    envelope_error(
        await receiver.single(SHOP, receiver.nightly, PASSING, "text/plain"), 415, 415, None
    )
    envelope_error(await receiver.single(UNKNOWN_KEY, receiver.nightly, PASSING), 404, 4041, None)
    envelope_error(await receiver.multi({"target": [], "data": PASSING}), 400, 400, None)
    envelope_error(await receiver.single(SHOP, receiver.api, PASSING), 409, 409, None)

    families = await receiver.app.metrics()
    labels = {
        "scenario_id": receiver.nightly,
        "scenario_name": "nightly",
        "scenario_type": "BATCH",
        "app_key": SHOP,
        "region": "KOR",
    }
    payloads = "monitord_batch_payloads_total"
    runs = "monitord_scenario_runs_total"
    assert _value(families, payloads, **labels, result="success") == passing
    assert _value(families, payloads, **labels, result="failure") == failing
    assert _value(families, runs, **labels, result="success") == passing
    assert _value(families, runs, **labels, result="failure") == failing
    # No avoidingValidationText: such a scenario has no suppressed series at all.
    assert not [
        s
        for s in families["monitord_scenario_runs"].samples
        if s.labels["scenario_id"] == receiver.nightly and s.labels["result"] == "suppressed"
    ]
    # The other BATCH scenario had no payload; API scenarios have no payload series.
    assert _value(families, payloads, scenario_id=receiver.billing, result="success") == 0
    assert _value(families, payloads, scenario_id=receiver.billing, result="failure") == 0
    api_payloads = [
        s
        for s in families["monitord_batch_payloads"].samples
        if s.labels["scenario_id"] == receiver.api
    ]
    assert api_payloads == []
    assert _value(families, runs, scenario_id=receiver.api, result="success") == 0
    assert _value(families, runs, scenario_id=receiver.api, result="failure") == 0


def test_request_ids_are_version_4_uuids_and_do_not_repeat() -> None:
    made = [new_request_id() for _ in range(20_000)]
    assert len(set(made)) == len(made)
    for text in made[:2000]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # canonical: lower case, dashes in place
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
    # Every random bit varies across ids: none is stuck at 0 or 1.
    ints = [uuid.UUID(text).int for text in made[:2000]]
    fixed = 0xF000 << 64 | 0xC000 << 48
    varying = 0
    for value in ints[1:]:
        varying |= value ^ ints[0]
    assert varying == (2**128 - 1) & ~fixed
