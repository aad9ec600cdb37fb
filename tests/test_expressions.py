"""Compiling and evaluating JSONPath and XPath expressions."""

from __future__ import annotations

import math
import threading
import time
from decimal import Decimal
from typing import Any

import hypothesis
import hypothesis.strategies
import pytest

from monitord.expressions import (
    ExpressionError,
    ExpressionEvaluationError,
    ExpressionTimeout,
    JsonPathExpression,
    XPathExpression,
    compile_expression,
    parse_document,
)
from monitord.expressions.jsonpath import compile_jsonpath, is_definite
from monitord.model import TextKind

J = TextKind.JSON
HTML = TextKind.HTML
XML = TextKind.XML

SUPPORTED = "length(), size(), min(), max(), avg(), sum(), stddev()"

DOC: dict[str, Any] = {
    "status": "ok",
    "numErrors": 0,
    "price": 9.99,
    "count": "42",
    "ok": True,
    "off": False,
    "nothing": None,
    "name": "monitord",
    "tags": ["a", "b"],
    "obj": {"a": 1, "b": 2},
    "items": [
        {"id": 1, "price": 12, "name": "pen"},
        {"id": 2, "price": 15, "name": "ink"},
        {"id": 3, "price": 3, "name": "pad"},
    ],
    "fractions": [0.1, 0.2],
    "empty": [],
    "mixed": [1, "2", "x"],
    "flags": [True],
    "stats": [2, 4, 4, 4, 5, 5, 7, 9],
    "one": [5],
    "thirds": [1, 2, 2],
    "numericStrings": ["1.5", " 2 "],
    "huge": ["9e999999999999999999", "9e999999999999999999"],
    "nested": {"errors": [1, 2]},
}


def later(seconds: float = 5.0) -> float:
    return time.monotonic() + seconds


def evaluate(kind: TextKind, source: str, document: Any) -> list[Any]:
    return compile_expression(kind, source).evaluate(document, later())


# --- JSONPath ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("$.status", ["ok"]),
        ("$.numErrors", [0]),
        ("$.price", [9.99]),
        ("$.count", ["42"]),
        ("$.ok", [True]),
        ("$.off", [False]),
        ("$.nothing", [None]),
        ("$.tags", [["a", "b"]]),
        ("$.obj", [{"a": 1, "b": 2}]),
        ("$['status']", ["ok"]),
        ("$.missing", []),
        ("$.status.deeper", []),
        ("$.items[*].price", [12, 15, 3]),
        ("$.items[0].name", ["pen"]),
        ("$.items[-1].id", [3]),
        ("$.items[5].id", []),
        ("$.items[0:2].id", [1, 2]),
        ("$.items[0,2].id", [1, 3]),
        ("$.obj.*", [1, 2]),
        ("$['status','name']", ["ok", "monitord"]),
        ("$..errors", [[1, 2]]),
        ("$..id", [1, 2, 3]),
        ("$.items[?(@.price > 10)].name", ["pen", "ink"]),
        ("$.items[?(@.price > 10 && @.id > 1)].name", ["ink"]),
        ("$.items[?(@.name == 'pad' || @.id == 1)].id", [1, 3]),
        ("$.items[?(@.name =~ '^p')].id", [1, 3]),
        ("$.items[?(@.name =~ 'x')].id", []),
        ("$.tags[?(@ == 'b')]", ["b"]),
        ("$.items.`len`", [3]),
        ("$.name.`len`", [8]),
        ("$.items[*].price * 2", [24, 30, 6]),
        ("$.items[0].price + $.items[1].price", [27]),
        ("$.name + $.status", ["monitordok"]),
        # strings and lists do not multiply: a count from the response could be huge
        ("$.name * 2", []),
        ("$.tags * 3", []),
        ("$.name * $.items[2].price", []),
        ("$.name.`sub(/o/, 0)`", ["m0nit0rd"]),
        ("  $.status  ", ["ok"]),
    ],
)
def test_jsonpath_selects(source: str, expected: list[Any]) -> None:
    assert evaluate(J, source, DOC) == expected


@pytest.mark.parametrize(
    ("source", "document", "expected"),
    [
        # definite paths: the function applies to the one selected value
        ("$.items.length()", DOC, [3]),
        ("$.items.size()", DOC, [3]),
        ("$.tags.length()", DOC, [2]),
        ("$.empty.length()", DOC, [0]),
        ("$.name.length()", DOC, [8]),
        ("$.obj.size()", DOC, [2]),
        ("$.items[0].length()", DOC, [3]),
        ("$.nested.errors.length()", DOC, [2]),
        ("$.missing.length()", DOC, []),
        ("$.missing.sum()", DOC, []),
        ("$.fractions.sum()", DOC, [Decimal("0.3")]),
        ("$.fractions.avg()", DOC, [Decimal("0.15")]),
        ("$.fractions.min()", DOC, [Decimal("0.1")]),
        ("$.fractions.max()", DOC, [Decimal("0.2")]),
        ("$.stats.stddev()", DOC, [Decimal(2)]),
        ("$.one.stddev()", DOC, [Decimal(0)]),
        ("$.thirds.avg()", DOC, [Decimal("1.666666666666666666666666666666667")]),
        ("$.numericStrings.sum()", DOC, [Decimal("3.5")]),
        ("$.length()", {"a": 1, "b": 2}, [2]),
        ("$.length()", [1, 2, 3], [3]),
        # indefinite paths: the function applies to the list of selected values
        ("$.items[*].price.sum()", DOC, [Decimal(30)]),
        ("$.items[*].price.min()", DOC, [Decimal(3)]),
        ("$.items[*].price.max()", DOC, [Decimal(15)]),
        ("$.items[*].price.avg()", DOC, [Decimal(10)]),
        ("$.items[*].price.length()", DOC, [3]),
        ("$..price.max()", DOC, [Decimal(15)]),
        ("$..errors.length()", {"a": {"b": 1}}, [0]),
        ("$..errors.length()", DOC, [1]),
        ("$.items[*].nope.length()", DOC, [0]),
        ("$.items[?(@.price > 10)].length()", DOC, [2]),
        ("$.items[?(@.price > 100)].size()", DOC, [0]),
        ("$.items[0,1].price.sum()", DOC, [Decimal(27)]),
    ],
)
def test_jayway_functions(source: str, document: Any, expected: list[Any]) -> None:
    values = evaluate(J, source, document)
    assert values == expected
    assert [type(value) for value in values] == [type(value) for value in expected]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("$.mixed.sum()", 'sum(): element 2 is "x", not a number'),
        ("$.flags.avg()", "avg(): element 0 is true, not a number"),
        ("$.items.max()", 'max(): element 0 is {"id":1,"price":12,"name":"pen"}, not a number'),
        ("$.empty.min()", "min(): empty array"),
        ("$.empty.stddev()", "stddev(): empty array"),
        ("$.items[?(@.price > 100)].price.max()", "max(): empty array"),
        ("$.items[*].nope.sum()", "sum(): empty array"),
        ("$.name.sum()", 'sum(): got "monitord", not an array'),
        ("$.obj.avg()", 'avg(): got {"a":1,"b":2}, not an array'),
        ("$.numErrors.length()", "length(): got 0, not an array, string or object"),
        ("$.nothing.size()", "size(): got null, not an array, string or object"),
        ("$.huge.sum()", "sum(): result out of range"),
        ("$.`parent`", "evaluation failed: AssertionError"),
    ],
)
def test_jsonpath_evaluation_errors(source: str, message: str) -> None:
    expression = compile_expression(J, source)
    with pytest.raises(ExpressionEvaluationError) as raised:
        expression.evaluate(DOC, later())
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("$.items.foo()", f"unknown function foo(); supported: {SUPPORTED}"),
        ("$.items.length().foo()", f"unknown function foo(); supported: {SUPPORTED}"),
        ("$.items.sum(2)", "sum() takes no arguments"),
        ("$.items.length(", "JSONPath does not parse: Parse error at 1:14 near token ("),
        ("$.items[", "JSONPath does not parse: Parse error near the end of string!"),
        ("", "JSONPath does not parse: Parse error near the end of string!"),
        ("$.a / 2", "JSONPath does not parse: Parse error at 1:4 near token / (SORT_DIRECTION)"),
        ("$.a.`unknown`", "JSONPath does not parse: Unknown named operator `unknown` at 1:12"),
        ("$[?(@.s =~ '(')]", "JSONPath regular expression '(' is invalid: missing ) at position 1"),
        ("$[?(@.s =~ 5)]", "JSONPath =~ needs a quoted pattern, not 5"),
        (
            "$.a.`sub(/[/, x)`",
            "JSONPath does not parse: unterminated character set at position 0",
        ),
        ("$" + ".a" * 5000, "JSONPath is nested too deeply"),
    ],
)
def test_jsonpath_compile_errors(source: str, message: str) -> None:
    with pytest.raises(ExpressionError) as raised:
        compile_expression(J, source)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("source", "definite"),
    [
        ("$", True),
        ("$.a", True),
        ("$.a.b[0]", True),
        ("$['a'][2].c", True),
        ("@.a", True),
        ("$.a[*]", False),
        ("$.*", False),
        ("$..a", False),
        ("$.a[0:1]", False),
        ("$.a[0,1]", False),
        ("$['a','b']", False),
        ("$.a[?(@.b)]", False),
        ("$.a.`len`", False),
        ("$.a + $.b", False),
    ],
)
def test_definite_paths(source: str, definite: bool) -> None:
    assert is_definite(compile_jsonpath(source).path) is definite


def test_compilation_is_memoised_per_kind_and_source() -> None:
    first = compile_expression(J, "$.memo")
    assert compile_expression(J, "$.memo") is first
    assert compile_expression(J, "$.memo2") is not first
    assert compile_expression(HTML, "//p") is not compile_expression(XML, "//p")
    assert compile_expression(XML, "//p") is compile_expression(XML, "//p")


def test_compiled_expressions_keep_their_source_and_type() -> None:
    json_expression = compile_expression(J, "$.items.length()")
    assert isinstance(json_expression, JsonPathExpression)
    assert json_expression.source == "$.items.length()"
    xpath_expression = compile_expression(HTML, "//title")
    assert isinstance(xpath_expression, XPathExpression)
    assert xpath_expression.source == "//title"


def test_deprecated_jsonpath_syntax_still_compiles_without_warnings() -> None:
    # pytest turns warnings into errors, so this fails if one escapes.
    assert evaluate(J, "$.items[?(@.name == pen)].id", DOC) == [1]


def test_evaluation_does_not_change_the_document_or_the_expression() -> None:
    document = {"items": [{"s": "b"}, {"s": "a"}]}
    expression = compile_expression(J, "$.items[?(@.s =~ 'a')].s")
    assert expression.evaluate(document, later()) == ["a"]
    assert expression.evaluate(document, later()) == ["a"]
    assert document == {"items": [{"s": "b"}, {"s": "a"}]}


# --- time budget ---------------------------------------------------------------------------

CATASTROPHIC = [{"s": "a" * 5000 + "!"}]


@pytest.mark.parametrize(
    "source",
    [
        '$[?(@.s =~ "^(a|a?)+$")]',
        '$[?(@.t == 1 || @.s =~ "^(a|a?)+$")]',
        '$[?(@.s && @.s =~ "^(a|a?)+$")]',
        "$[*].s.`sub(/^(a|a?)+$/, b)`",
    ],
)
def test_catastrophic_regex_is_interrupted_at_the_deadline(source: str) -> None:
    expression = compile_expression(J, source)
    started = time.monotonic()
    with pytest.raises(ExpressionTimeout):
        expression.evaluate(CATASTROPHIC, started + 0.05)
    assert time.monotonic() - started < 5


def test_regex_filter_matches_within_budget() -> None:
    expression = compile_expression(J, '$[?(@.s =~ "^(a|a?)+!$")].s')
    assert expression.evaluate([{"s": "aaa!"}, {"s": "b"}, {"s": 3}], later()) == ["aaa!"]


def test_deadline_already_passed_is_a_timeout() -> None:
    expression = compile_expression(J, "$.status")
    with pytest.raises(ExpressionTimeout):
        expression.evaluate(DOC, time.monotonic() - 1)


def test_deadlines_of_concurrent_evaluations_do_not_mix() -> None:
    slow = compile_expression(J, '$[?(@.s =~ "^(a|a?)+$")]')
    quick = compile_expression(J, '$[?(@.s =~ "^a+!$")].s')
    outcomes: dict[str, Any] = {}

    def run_slow() -> None:
        try:
            slow.evaluate(CATASTROPHIC, time.monotonic() + 0.3)
        except ExpressionTimeout:
            outcomes["slow"] = "timeout"

    def run_quick() -> None:
        results = [quick.evaluate([{"s": "aaa!"}], later(30)) for _ in range(50)]
        outcomes["quick"] = results[-1]

    threads = [threading.Thread(target=run_slow), threading.Thread(target=run_quick)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert outcomes == {"slow": "timeout", "quick": ["aaa!"]}


# --- XPath ---------------------------------------------------------------------------------

HTML_BODY = (
    b"<html><head><title> Shop </title></head><body>"
    b"<h1>Hello <b>world</b></h1><ul><li>one<li>two<li> three </ul>"
    b"<a href=' https://x.example/ '>link</a><p class=empty></p><!-- note -->"
    b"</body></html>"
)
XML_BODY = (
    b'<?xml version="1.0"?><root xmlns:x="urn:x">'
    b'<status code="200">ok</status><n>42</n><n>7.5</n><x:item>ns</x:item>'
    b"<?pi data?><mixed>a<b>b</b>c</mixed><flag>true</flag></root>"
)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("//title", ["Shop"]),
        ("//h1", ["Hello world"]),
        ("//li", ["one", "two", "three"]),
        ("//li[2]", ["two"]),
        ("//li/text()", ["one", "two", "three"]),
        ("//a/@href", ["https://x.example/"]),
        ("//p[@class='empty']", [""]),
        ("//table", []),
        ("//comment()", ["note"]),
        ("count(//li)", [3]),
        ("count(//li) div 2", [1.5]),
        ("sum(//table)", [0]),
        ("boolean(//li)", [True]),
        ("boolean(//table)", [False]),
        ("//li = 'two'", [True]),
        ("string(//title)", [" Shop "]),
        ("string(//table)", [""]),
        ("name(/*)", ["html"]),
        ("1 div 0", [math.inf]),
    ],
)
def test_xpath_over_html(source: str, expected: list[Any]) -> None:
    values = evaluate(HTML, source, parse_document(HTML, HTML_BODY, None))
    assert values == expected
    assert [type(value) for value in values] == [type(value) for value in expected]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("/root/status", ["ok"]),
        ("/root/status/@code", ["200"]),
        ("/root/n", ["42", "7.5"]),
        ("sum(/root/n)", [49.5]),
        ("count(/root/n)", [2]),
        ("/root/n > 40", [True]),
        ("/root/n > 100", [False]),
        ("string(/root/n)", ["42"]),
        ("/root/*[local-name()='item']", ["ns"]),
        ("/root/namespace::x", ["urn:x"]),
        ("//processing-instruction()", ["data"]),
        ("/root/mixed", ["abc"]),
        ("/root/flag", ["true"]),
        ("/root/nothing", []),
    ],
)
def test_xpath_over_xml(source: str, expected: list[Any]) -> None:
    values = evaluate(XML, source, parse_document(XML, XML_BODY, None))
    assert values == expected
    assert [type(value) for value in values] == [type(value) for value in expected]


def test_xpath_not_a_number_stays_a_float_nan() -> None:
    values = evaluate(XML, "0 div 0", parse_document(XML, XML_BODY, None))
    assert len(values) == 1
    assert isinstance(values[0], float)
    assert math.isnan(values[0])


@pytest.mark.parametrize("kind", [HTML, XML])
@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("//x[", "XPath does not parse: Invalid expression"),
        ("", "XPath does not parse: Invalid expression"),
        ("foo:bar", "XPath error: Undefined namespace prefix"),
        ("nosuch()", "XPath error: Unregistered function"),
        ("$v", "XPath error: Undefined variable"),
        # EXSLT regular expressions are off: they would run without a time bound
        ("re:test(., 'a')", "XPath error: Undefined namespace prefix"),
    ],
)
def test_xpath_compile_errors(kind: TextKind, source: str, message: str) -> None:
    with pytest.raises(ExpressionError) as raised:
        compile_expression(kind, source)
    assert str(raised.value) == message


def test_xpath_on_something_that_is_not_a_document() -> None:
    expression = compile_expression(XML, "/a")
    with pytest.raises(ExpressionEvaluationError) as raised:
        expression.evaluate({"a": 1}, later())
    assert str(raised.value) == "XPath cannot evaluate: Invalid input object: dict"


def test_xpath_past_its_deadline_is_a_timeout() -> None:
    expression = compile_expression(XML, "/root")
    document = parse_document(XML, XML_BODY, None)
    with pytest.raises(ExpressionTimeout):
        expression.evaluate(document, time.monotonic() - 1)


# --- plain paths, looked up without jsonpath-ng's tree -----------------------------------


@pytest.mark.parametrize(
    ("source", "names"),
    [
        ("$", ()),
        ("$.status", ("status",)),
        ("$.a.b.c", ("a", "b", "c")),
        ("$['a b']", ("a b",)),
        ('$."x.y"', ("x.y",)),
        ("$.id", ("id",)),
        ("$.items.length()", ("items",)),
        ("$.a[0]", None),
        ("$.*", None),
        ("$[*]", None),
        ("$..a", None),
        ("$.a,b", None),
        ("$['a','b']", None),
        ("a.b", None),
        ("@.a", None),
        ("$.items[?(@.price > 10)]", None),
        ("$.a.`len`", None),
        ("$['*']", ("*",)),  # a key named *, as jsonpath-ng reads it
    ],
)
def test_plain_paths_are_recognised(source: str, names: tuple[str, ...] | None) -> None:
    assert compile_jsonpath(source).names == names


def _jsonpath_ng_values(source: str, document: Any) -> list[Any]:
    return [match.value for match in compile_jsonpath(source).path.find(document)]


_KEYS = hypothesis.strategies.sampled_from(["a", "b", "id", "a b", "", "*"])
_JSON = hypothesis.strategies.recursive(
    hypothesis.strategies.none()
    | hypothesis.strategies.booleans()
    | hypothesis.strategies.integers()
    | hypothesis.strategies.floats(allow_nan=False)
    | hypothesis.strategies.text(max_size=3),
    lambda children: (
        hypothesis.strategies.lists(children, max_size=3)
        | hypothesis.strategies.dictionaries(_KEYS, children, max_size=3)
    ),
    max_leaves=12,
)
_PLAIN = [
    "$",
    "$.a",
    "$.b",
    "$.id",
    "$['a b']",
    "$['']",
    "$['*']",
    "$.a.b",
    "$.a.id",
    "$.a.b.a",
    "$.b.b",
]


@hypothesis.given(document=_JSON, source=hypothesis.strategies.sampled_from(_PLAIN))
@hypothesis.settings(max_examples=400, deadline=None)
def test_plain_paths_select_what_jsonpath_ng_selects(document: Any, source: str) -> None:
    expression = compile_jsonpath(source)
    assert expression.names is not None
    assert expression.evaluate(document, later()) == _jsonpath_ng_values(source, document)


@pytest.mark.parametrize(
    ("document", "source", "expected"),
    [
        ({"a": {"b": None}}, "$.a.b", [None]),  # present, even when null
        ({"a": {"c": 1}}, "$.a.b", []),
        ({"a": [{"b": 1}]}, "$.a.b", []),  # names do not reach into lists
        ({"a": "text"}, "$.a.b", []),
        ([{"a": 1}], "$.a", []),
        ("a", "$.a", []),
        ({"a": {"b": [1, 2]}}, "$.a.b", [[1, 2]]),
        ({"a": 1}, "$", [{"a": 1}]),
    ],
)
def test_plain_paths_on_edge_documents(document: Any, source: str, expected: list[Any]) -> None:
    assert compile_jsonpath(source).evaluate(document, later()) == expected
    assert _jsonpath_ng_values(source, document) == expected


def test_plain_path_with_a_function_applies_it() -> None:
    assert compile_jsonpath("$.tags.length()").evaluate(DOC, later()) == [2]
    assert compile_jsonpath("$.missing.length()").evaluate(DOC, later()) == []
