"""Judging observations: comparisons, text checks, status codes and whole verdicts."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitord.checks import (
    PASSED,
    check_avoiding,
    check_expression,
    check_status,
    compare,
    format_ms,
    judge,
    mismatch_of,
)
from monitord.expressions import compile_expression, parse_document
from monitord.model import (
    ByteCheck,
    Endian,
    FailureKind,
    IntType,
    LengthCheck,
    Observation,
    Operator,
    Outcome,
    ProbeFailure,
    TextCheck,
    TextKind,
    TextValidation,
    Validation,
    Verdict,
)
from monitord.values import as_number, as_text

J = TextKind.JSON
HTML = TextKind.HTML
XML = TextKind.XML
CONTAINS = Operator.CONTAINS
NOT_CONTAINS = Operator.NOT_CONTAINS
EQ = Operator.EQ
NE = Operator.NE
GT = Operator.GT
GTE = Operator.GTE
LT = Operator.LT
LTE = Operator.LTE


def text_check(kind: TextKind, source: str, operator: Operator, operand: str) -> TextCheck:
    return TextCheck(compile_expression(kind, source), operator, operand)


# --- compare: every operator against every kind of value -----------------------------------


@pytest.mark.parametrize(
    ("operator", "value", "operand", "seen"),
    [
        # CONTAINS: substring of the value's text
        (CONTAINS, "abc", "b", None),
        (CONTAINS, "abc", "", None),
        (CONTAINS, "abc", "x", '"abc"'),
        (CONTAINS, "abc", "ABC", '"abc"'),
        (CONTAINS, 123, "2", None),
        (CONTAINS, 1.5, ".5", None),
        (CONTAINS, 1.5, "1.50", "1.5"),
        (CONTAINS, True, "ru", None),
        (CONTAINS, False, "true", "false"),
        (CONTAINS, None, "ul", None),
        (CONTAINS, [1, 2], "1,2", None),
        (CONTAINS, [1, 2], "1, 2", "[1,2]"),
        (CONTAINS, {"a": 1}, '"a":1', None),
        (CONTAINS, {"a": 1}, "b", '{"a":1}'),
        # NOT_CONTAINS
        (NOT_CONTAINS, "all good", "error", None),
        (NOT_CONTAINS, "error 5", "error", '"error 5"'),
        (NOT_CONTAINS, 404, "40", "404"),
        (NOT_CONTAINS, None, "x", None),
        (NOT_CONTAINS, [1, 2], "3", None),
        (NOT_CONTAINS, {"a": 1}, "a", '{"a":1}'),
        # EQ: numeric when both sides read as numbers, else text
        (EQ, "ok", "ok", None),
        (EQ, "down", "ok", '"down"'),
        (EQ, "abc", "ABC", '"abc"'),
        (EQ, "", "", None),
        (EQ, 3, "3", None),
        (EQ, 3, "3.0", None),
        (EQ, 3, " 3 ", None),
        (EQ, 3.0, "3", None),
        (EQ, 0.1, "0.1", None),
        (EQ, 0.1 + 0.2, "0.3", "0.30000000000000004"),
        (EQ, Decimal("0.3"), "0.3", None),
        (EQ, "42", "42.0", None),
        (EQ, "42", "43", '"42"'),
        (EQ, 3, "abc", "3"),
        (EQ, True, "true", None),
        (EQ, True, "1", "true"),
        (EQ, True, "True", "true"),
        (EQ, False, "false", None),
        (EQ, False, "0", "false"),
        (EQ, None, "null", None),
        (EQ, None, "", "null"),
        (EQ, [1, 2], "[1,2]", None),
        (EQ, [1, 2], "[1, 2]", "[1,2]"),
        (EQ, [], "[]", None),
        (EQ, {"a": 1}, '{"a":1}', None),
        (EQ, {"a": 1}, '{"a": 1}', '{"a":1}'),
        # NE: the negation of EQ
        (NE, "ok", "ok", '"ok"'),
        (NE, "down", "ok", None),
        (NE, 3, "3.0", "3"),
        (NE, 3, "4", None),
        (NE, "42", "42.0", '"42"'),
        (NE, True, "true", "true"),
        (NE, True, "false", None),
        (NE, None, "null", "null"),
        (NE, [1], "[1]", "[1]"),
        (NE, {"a": 1}, "{}", None),
        # GT / GTE / LT / LTE: numbers only, never read as 0
        (GT, 5, "3", None),
        (GT, 3, "3", "3"),
        (GTE, 3, "3", None),
        (GTE, 2.99, "3", "2.99"),
        (LT, -1, "0", None),
        (LT, 0, "0", "0"),
        (LTE, 0, "0", None),
        (LTE, 3, "0", "3"),
        (GT, "10", "9", None),  # numerically, although "10" < "9" as text
        (LT, " 1e2 ", "101", None),
        (GT, 2.5, "2.49", None),
        (LTE, 0.1 + 0.2, "0.3", "0.30000000000000004"),
        (LTE, Decimal("0.3"), "0.3", None),
        (GT, 10**30, "1e29", None),
        (GT, "abc", "5", '"abc", not a number'),
        (GT, "", "5", '"", not a number'),
        (GT, "nan", "5", '"nan", not a number'),
        (LT, float("nan"), "5", "nan, not a number"),
        (GTE, None, "0", "null, not a number"),
        (GT, True, "0", "true, not a number"),
        (LT, False, "1", "false, not a number"),
        (LT, [1], "2", "[1], not a number"),
        (LTE, {"a": 1}, "2", '{"a":1}, not a number'),
        (GT, 3, "abc", 'operand "abc" is not a number'),
        (LTE, "abc", "", 'operand "" is not a number'),
    ],
)
def test_compare(operator: Operator, value: Any, operand: str, seen: str | None) -> None:
    assert compare(operator, value, operand) == seen


# --- text checks on JSON ---------------------------------------------------------------------

BODY: dict[str, Any] = {
    "isSuccess": True,
    "numErrors": 3,
    "status": "down",
    "name": "abc",
    "ok": True,
    "nothing": None,
    "arr": [1, 2],
    "obj": {"a": 1},
    "empty": [],
    "price": 9.5,
    "count": "42",
    "items": [{"price": 12}, {"price": 15}, {"price": 3}],
    "many": [1, 2, 3, 4, 5, 6, 7, 8],
    "mixed": [5, "x", -1, None],
    "fractions": [0.1, 0.2],
    "long": "y" * 500,
}
JSON_DOCUMENT = parse_document(J, json.dumps(BODY).encode(), None)


@pytest.mark.parametrize(
    ("source", "operator", "operand", "reason"),
    [
        ("$.numErrors", LTE, "0", "$.numErrors LTE 0: got 3"),
        ("$.numErrors", GT, "2", None),
        ("$.status", EQ, "ok", '$.status EQ ok: got "down"'),
        ("$.status", NE, "ok", None),
        ("$.status", CONTAINS, "ow", None),
        ("$.status", NOT_CONTAINS, "ow", '$.status NOT_CONTAINS ow: got "down"'),
        ("$.isSuccess", EQ, "true", None),
        ("$.isSuccess", EQ, "false", "$.isSuccess EQ false: got true"),
        ("$.nothing", EQ, "null", None),
        ("$.nothing", GT, "0", "$.nothing GT 0: got null, not a number"),
        ("$.arr", EQ, "[1,2]", None),
        ("$.arr", CONTAINS, "3", "$.arr CONTAINS 3: got [1,2]"),
        ("$.obj", EQ, '{"a":1}', None),
        ("$.obj", NE, '{"a":1}', '$.obj NE {"a":1}: got {"a":1}'),
        ("$.empty", EQ, "[]", None),
        ("$.price", GTE, "9.5", None),
        ("$.price", LT, "9.5", "$.price LT 9.5: got 9.5"),
        ("$.count", EQ, "42.00", None),
        ("$.count", GT, "100", '$.count GT 100: got "42"'),
        ("$.name", GT, "5", '$.name GT 5: got "abc", not a number'),
        ("$.name", GT, "abc", '$.name GT abc: operand "abc" is not a number'),
        ("$.missing", EQ, "x", "$.missing EQ x: matched nothing"),
        ("$.missing", NOT_CONTAINS, "x", "$.missing NOT_CONTAINS x: matched nothing"),
        ("$.items[?(@.price > 100)]", EQ, "x", "$.items[?(@.price > 100)] EQ x: matched nothing"),
        ("$.items[*].price", LT, "10", "$.items[*].price LT 10: got 12, 15"),
        ("$.items[*].price", GT, "1", None),
        ("$.many[*]", GT, "100", "$.many[*] GT 100: got 1, 2, 3, 4, 5 … (3 more)"),
        ("$.many[*]", GT, "3", "$.many[*] GT 3: got 1, 2, 3"),
        (
            "$.mixed[*]",
            GT,
            "0",
            '$.mixed[*] GT 0: got "x" (not a number), -1, null (not a number)',
        ),
        ("$.long", EQ, "x", '$.long EQ x: got "' + "y" * 118 + "…"),
        # Jayway functions
        ("$.items.length()", GTE, "1", None),
        ("$.items.length()", EQ, "2", "$.items.length() EQ 2: got 3"),
        ("$..errors.length()", EQ, "0", None),
        ("$.fractions.sum()", EQ, "0.3", None),
        ("$.items[*].price.avg()", EQ, "10", None),
        ("$.items[*].price.max()", LTE, "12", "$.items[*].price.max() LTE 12: got 15"),
        ("$.missing.length()", EQ, "0", "$.missing.length() EQ 0: matched nothing"),
        ("$.name.sum()", GT, "1", '$.name.sum() GT 1: sum(): got "abc", not an array'),
        ("$.mixed.sum()", GT, "1", '$.mixed.sum() GT 1: sum(): element 1 is "x", not a number'),
        ("$.empty.min()", GT, "1", "$.empty.min() GT 1: min(): empty array"),
        ("$.items.`len`", EQ, "3", None),
    ],
)
def test_json_text_check(source: str, operator: Operator, operand: str, reason: str | None) -> None:
    check = text_check(J, source, operator, operand)
    assert check_expression(check, JSON_DOCUMENT, budget_s=5) == reason


def test_catastrophic_regex_fails_the_check_within_its_budget() -> None:
    check = text_check(J, '$[?(@.s =~ "^(a|a?)+$")]', NE, "x")
    document = [{"s": "a" * 5000 + "!"}]
    started = time.monotonic()
    reason = check_expression(check, document, budget_s=0.05)
    assert time.monotonic() - started < 5
    assert reason == '$[?(@.s =~ "^(a|a?)+$")] NE x: exceeded the 50 ms time budget'


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.05, "50"),
        (0.5, "500"),
        (1, "1000"),
        (2.25, "2250"),
        (0.0005, "0.5"),
        (0.0001234, "0.1234"),
    ],
)
def test_format_ms(seconds: float, text: str) -> None:
    assert format_ms(seconds) == text


# --- text checks on HTML and XML -----------------------------------------------------------

PAGE = parse_document(
    HTML,
    b"<html><head><title> Shop </title></head><body><h1>Hello <b>world</b></h1>"
    b"<ul><li>one<li>two</ul><a href='https://x.example/'>link</a><p id=n>42</p></body></html>",
    None,
)
FEED = parse_document(
    XML,
    b'<feed><status code="200">ok</status><n>42</n><n>7.5</n><flag>true</flag><none/></feed>',
    None,
)


@pytest.mark.parametrize(
    ("kind", "source", "operator", "operand", "reason"),
    [
        # element text
        (HTML, "//title", EQ, "Shop", None),
        (HTML, "//title", NE, "Shop", '//title NE Shop: got "Shop"'),
        (HTML, "//h1", EQ, "Hello world", None),
        (HTML, "//h1", CONTAINS, "planet", '//h1 CONTAINS planet: got "Hello world"'),
        (HTML, "//li", NOT_CONTAINS, "w", '//li NOT_CONTAINS w: got "two"'),
        (HTML, "//p[@id='n']", GT, "41", None),
        (HTML, "//li", GT, "0", '//li GT 0: got "one" (not a number), "two" (not a number)'),
        (HTML, "//table", EQ, "x", "//table EQ x: matched nothing"),
        (XML, "/feed/status", EQ, "ok", None),
        (XML, "/feed/n", GTE, "7.5", None),
        (XML, "/feed/n", LT, "10", '/feed/n LT 10: got "42"'),
        (XML, "/feed/none", EQ, "", None),
        (XML, "/feed/flag", EQ, "true", None),
        # attributes
        (HTML, "//a/@href", CONTAINS, "https://", None),
        (HTML, "//a/@href", EQ, "http://x", '//a/@href EQ http://x: got "https://x.example/"'),
        (XML, "/feed/status/@code", EQ, "200", None),
        (XML, "/feed/status/@code", LT, "200", '/feed/status/@code LT 200: got "200"'),
        # count() and other numbers
        (HTML, "count(//li)", EQ, "2", None),
        (HTML, "count(//li)", GTE, "3", "count(//li) GTE 3: got 2"),
        (XML, "sum(/feed/n)", EQ, "49.5", None),
        (XML, "sum(/feed/n)", LT, "10", "sum(/feed/n) LT 10: got 49.5"),
        (XML, "0 div 0", GT, "0", "0 div 0 GT 0: got nan, not a number"),
        # booleans
        (HTML, "boolean(//li)", EQ, "true", None),
        (HTML, "boolean(//table)", EQ, "true", "boolean(//table) EQ true: got false"),
        (XML, "/feed/n > 40", EQ, "true", None),
        (XML, "/feed/n > 40", GT, "0", "/feed/n > 40 GT 0: got true, not a number"),
        # string()
        (HTML, "string(//title)", EQ, " Shop ", None),
        (HTML, "string(//table)", EQ, "", None),
        (HTML, "string(//table)", NE, "", 'string(//table) NE : got ""'),
        (XML, "string(/feed/n)", EQ, "42", None),
        (XML, "concat(/feed/status, '!')", CONTAINS, "ok!", None),
    ],
)
def test_markup_text_check(
    kind: TextKind, source: str, operator: Operator, operand: str, reason: str | None
) -> None:
    document = PAGE if kind is HTML else FEED
    check = text_check(kind, source, operator, operand)
    assert check_expression(check, document, budget_s=5) == reason


# --- status codes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "status", "reason"),
    [
        (None, 200, None),
        (None, 204, None),
        (None, 299, None),
        (None, 199, "responseCodes 2xx: got 199"),
        (None, 301, "responseCodes 2xx: got 301"),
        (None, 404, "responseCodes 2xx: got 404"),
        ((), 200, None),
        ((), 500, "responseCodes 2xx: got 500"),
        (("200", "201"), 201, None),
        (("200", "201"), 503, "responseCodes 200, 201: got 503"),
        (("200",), 204, "responseCodes 200: got 204"),
        (("2xx",), 250, None),
        (("2XX",), 204, None),
        (("3xx", "404"), 404, None),
        (("3xx", "404"), 302, None),
        (("3xx", "404"), 200, "responseCodes 3xx, 404: got 200"),
        (("5xx",), 503, None),
        (("abc",), 200, "responseCodes abc: got 200"),
    ],
)
def test_check_status(codes: tuple[str, ...] | None, status: int, reason: str | None) -> None:
    assert check_status(codes, status) == reason


@pytest.mark.parametrize(
    ("avoiding", "body", "charset", "reason"),
    [
        (None, b"planned maintenance", None, None),
        ("", b"anything", None, None),
        ("planned maintenance", b"all good", None, None),
        (
            "planned maintenance",
            b"<p>planned maintenance tonight</p>",
            None,
            'avoidingValidationText "planned maintenance" found in body',
        ),
        (
            "Wartung geplant",
            "Wartung geplant für".encode("latin-1"),
            "iso-8859-1",
            'avoidingValidationText "Wartung geplant" found in body',
        ),
        (
            "für",
            "für".encode("latin-1"),
            "iso-8859-1",
            'avoidingValidationText "für" found in body',
        ),
        ("für", "für".encode("latin-1"), None, None),
        ("für", "für".encode(), "no-such-charset", 'avoidingValidationText "für" found in body'),
    ],
)
def test_check_avoiding(
    avoiding: str | None, body: bytes, charset: str | None, reason: str | None
) -> None:
    assert check_avoiding(avoiding, body, charset) == reason


# --- judge ---------------------------------------------------------------------------------

STATUS_BODY = b'{"isSuccess": true, "numErrors": 0, "status": "ok"}'


def json_validation(**overrides: Any) -> Validation:
    fields: dict[str, Any] = {
        "timeout_ms": 1000,
        "text": TextValidation(
            J,
            (
                text_check(J, "$.isSuccess", EQ, "true"),
                text_check(J, "$.numErrors", LTE, "0"),
            ),
        ),
    }
    fields.update(overrides)
    return Validation(**fields)


@pytest.mark.parametrize(
    "failure",
    [
        ProbeFailure(FailureKind.TIMEOUT, "timeout after 500 ms"),
        ProbeFailure(FailureKind.UNAVAILABLE, "connection refused"),
        ProbeFailure(FailureKind.WRONG_ANSWER, "response larger than 10 bytes"),
    ],
)
def test_probe_failure_is_the_verdict(failure: ProbeFailure) -> None:
    validation = json_validation(avoiding_text="planned maintenance")
    observation = Observation(body=b"planned maintenance", status_code=503, failure=failure)
    assert judge(validation, observation, budget_s=1) == Verdict(
        Outcome.FAILURE, (failure.reason,), failure.kind
    )


def test_success() -> None:
    observation = Observation(body=STATUS_BODY, status_code=200)
    assert judge(json_validation(), observation, budget_s=1) == Verdict(Outcome.SUCCESS)
    # Passing judgements share one verdict object (frozen, so sharing is safe).
    assert judge(json_validation(), observation, budget_s=1) is PASSED


def test_suppression_beats_every_failure() -> None:
    validation = json_validation(
        response_codes=("200",),
        avoiding_text="planned maintenance",
        byte_checks=(ByteCheck(0, b"X"),),
    )
    observation = Observation(body=b"<h1>planned maintenance</h1>", status_code=503)
    assert judge(validation, observation, budget_s=1) == Verdict(
        Outcome.SUPPRESSED, ('avoidingValidationText "planned maintenance" found in body',), None
    )


def test_every_failing_check_is_reported_in_order() -> None:
    validation = Validation(
        timeout_ms=1000,
        response_codes=("200", "201"),
        avoiding_text="planned maintenance",
        text=TextValidation(
            J,
            (
                text_check(J, "$.isSuccess", EQ, "true"),
                text_check(J, "$.numErrors", LTE, "0"),
                text_check(J, "$.status", EQ, "ok"),
                text_check(J, "$.missing", EQ, "x"),
            ),
        ),
        byte_checks=(ByteCheck(0, b"{"), ByteCheck(0, b"["), ByteCheck(500, b"}")),
        length=LengthCheck(Endian.BIG, 0, IntType.BYTE, 0),
    )
    body = b'{"isSuccess":true,"numErrors":3,"status":"down"}'
    verdict = judge(validation, Observation(body=body, status_code=503), budget_s=1)
    assert verdict == Verdict(
        Outcome.FAILURE,
        (
            "responseCodes 200, 201: got 503",
            "$.numErrors LTE 0: got 3",
            '$.status EQ ok: got "down"',
            "$.missing EQ x: matched nothing",
            'responseValidation[1] at 0: expected "[", got "{"',
            "responseValidation[2] at 500: response has 48 bytes, check needs 501",
            "lengthValidation BYTE at 0: length field 123 + BASE 0 = 123 bytes, got 48",
        ),
        FailureKind.WRONG_ANSWER,
    )


def test_default_codes_accept_any_2xx() -> None:
    validation = json_validation()
    accepted = judge(validation, Observation(body=STATUS_BODY, status_code=204), budget_s=1)
    assert accepted == Verdict(Outcome.SUCCESS)
    refused = judge(validation, Observation(body=STATUS_BODY, status_code=404), budget_s=1)
    assert refused == Verdict(
        Outcome.FAILURE, ("responseCodes 2xx: got 404",), FailureKind.WRONG_ANSWER
    )


def test_status_classes() -> None:
    validation = json_validation(response_codes=("3xx", "200"))
    for status in (200, 301, 399):
        verdict = judge(validation, Observation(body=STATUS_BODY, status_code=status), budget_s=1)
        assert verdict == Verdict(Outcome.SUCCESS)
    verdict = judge(validation, Observation(body=STATUS_BODY, status_code=204), budget_s=1)
    assert verdict.reasons == ("responseCodes 3xx, 200: got 204",)


def test_body_that_does_not_parse_is_one_reason_and_other_checks_still_run() -> None:
    validation = json_validation(response_codes=("200",), byte_checks=(ByteCheck(0, b"{"),))
    verdict = judge(validation, Observation(body=b"<html>oops</html>", status_code=500), budget_s=1)
    assert verdict == Verdict(
        Outcome.FAILURE,
        (
            "responseCodes 200: got 500",
            "body is not valid JSON: Expecting value: line 1 column 1 (char 0)",
            'responseValidation[0] at 0: expected "{", got "<"',
        ),
        FailureKind.WRONG_ANSWER,
        unreadable="body is not valid JSON: Expecting value: line 1 column 1 (char 0)",
    )


def test_empty_body_with_text_checks() -> None:
    verdict = judge(json_validation(), Observation(body=b"", status_code=200), budget_s=1)
    assert verdict == Verdict(
        Outcome.FAILURE, ("body is empty",), FailureKind.WRONG_ANSWER, unreadable="body is empty"
    )


def test_a_body_that_parses_is_not_unreadable_whatever_its_checks_say() -> None:
    verdict = judge(json_validation(), Observation(body=b"[]", status_code=200), budget_s=1)
    assert verdict.outcome is Outcome.FAILURE
    assert verdict.unreadable is None


def test_socket_observation_has_no_status_check() -> None:
    validation = Validation(
        timeout_ms=1000,
        byte_checks=(ByteCheck(0, b"Hello World!"),),
        length=LengthCheck(Endian.BIG, 2, IntType.INT, 6),
    )
    good = bytes.fromhex("AB010000000A") + b"x" * 10
    assert judge(validation, Observation(body=good), budget_s=1).reasons == (
        "responseValidation[0] at 0: expected hex 48656c6c6f20576f726c6421, "
        "got hex ab010000000a787878787878",
    )
    validation = Validation(timeout_ms=1000, length=LengthCheck(Endian.BIG, 2, IntType.INT, 6))
    assert judge(validation, Observation(body=good), budget_s=1) == Verdict(Outcome.SUCCESS)


def test_expression_budget_applies_within_judge() -> None:
    validation = Validation(
        timeout_ms=1000,
        text=TextValidation(
            J,
            (
                text_check(J, '$.items[?(@.s =~ "^(a|a?)+$")]', NE, "x"),
                text_check(J, "$.items.length()", EQ, "1"),
            ),
        ),
    )
    body = json.dumps({"items": [{"s": "a" * 5000 + "!"}]}).encode()
    started = time.monotonic()
    verdict = judge(validation, Observation(body=body, status_code=200), budget_s=0.05)
    assert time.monotonic() - started < 5
    assert verdict == Verdict(
        Outcome.FAILURE,
        ('$.items[?(@.s =~ "^(a|a?)+$")] NE x: exceeded the 50 ms time budget',),
        FailureKind.WRONG_ANSWER,
    )


def test_markup_judged_in_declared_charset() -> None:
    validation = Validation(
        timeout_ms=1000,
        text=TextValidation(HTML, (text_check(HTML, "//p", EQ, "Grüße"),)),
    )
    body = "<p>Grüße</p>".encode("latin-1")
    ok = judge(
        validation, Observation(body=body, status_code=200, charset="iso-8859-1"), budget_s=1
    )
    assert ok == Verdict(Outcome.SUCCESS)


NUMBER_LIKE = st.from_regex(
    r"\s?[+-]?[0-9]{1,3}(\.[0-9]{0,3})?([eE][+-]?[0-9])?\s?", fullmatch=True
)


@given(
    value=st.one_of(st.text(max_size=8), NUMBER_LIKE, st.integers(), st.floats(), st.none()),
    operand=st.one_of(st.text(max_size=8), NUMBER_LIKE),
    same=st.booleans(),
)
def test_equality_is_numeric_when_both_read_as_numbers_else_textual(
    value: Any, operand: str, same: bool
) -> None:
    if same and isinstance(value, str):
        operand = value  # the shortcut for identical text must agree with the rule
    number, wanted = as_number(value), as_number(operand)
    if number is not None and wanted is not None:
        equal = number == wanted
    else:
        equal = as_text(value) == operand
    assert (mismatch_of(Operator.EQ, value, operand) is None) is equal
    assert (mismatch_of(Operator.NE, value, operand) is None) is not equal
