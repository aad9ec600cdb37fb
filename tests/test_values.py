"""How selected values read as numbers and text, and how reasons render them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from monitord.values import as_number, as_text, render, truncate

NAN = float("nan")
INF = float("inf")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # booleans are not numbers, although bool subclasses int
        (True, None),
        (False, None),
        # ints
        (0, Decimal(0)),
        (-7, Decimal(-7)),
        (2**70, Decimal(2**70)),
        # floats read as their shortest repr, exactly
        (1.5, Decimal("1.5")),
        (0.1, Decimal("0.1")),
        (-0.0, Decimal("-0.0")),
        (1e100, Decimal("1e+100")),
        (NAN, None),
        (INF, None),
        (-INF, None),
        # Decimals
        (Decimal("2.50"), Decimal("2.50")),
        (Decimal("NaN"), None),
        (Decimal("Infinity"), None),
        (Decimal("-Infinity"), None),
        # strings: strict decimal literals only
        ("42", Decimal(42)),
        (" 42 \n", Decimal(42)),
        ("+1.5e3", Decimal("1.5E+3")),
        ("-.5", Decimal("-0.5")),
        ("1.", Decimal(1)),
        ("1E-2", Decimal("0.01")),
        ("007", Decimal(7)),
        ("1" * 400, Decimal("1" * 400)),
        ("  " + "1" * 400 + "  ", Decimal("1" * 400)),
        ("1" * 401, None),
        ("nan", None),
        ("NaN", None),
        ("inf", None),
        ("Infinity", None),
        ("-infinity", None),
        ("1_000", None),
        ("0x10", None),
        ("1,5", None),
        ("1 2", None),
        ("", None),
        ("   ", None),
        (".", None),
        ("1e", None),
        ("e5", None),
        ("--1", None),
        ("١٢", None),  # Arabic-Indic digits are digits to Python, not to JSON
        ("1e999999999999999999999", None),  # beyond what Decimal represents
        ("abc", None),
        ("true", None),
        # everything else
        (None, None),
        ([1], None),
        ({"a": 1}, None),
        ((1,), None),
        (b"1", None),
        (object, None),
    ],
)
def test_as_number(value: Any, expected: Decimal | None) -> None:
    result = as_number(value)
    if expected is None:
        assert result is None
    else:
        assert isinstance(result, Decimal)
        assert result == expected
        assert str(result) == str(expected)


def test_as_number_of_float_is_exact_decimal() -> None:
    total = as_number(0.1)
    other = as_number(0.2)
    assert total is not None
    assert other is not None
    assert total + other == Decimal("0.3")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", "abc"),
        ("", ""),
        (" padded ", " padded "),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        (0, "0"),
        (-12, "-12"),
        (1.5, "1.5"),
        (1.0, "1.0"),
        (1e100, "1e+100"),
        (NAN, "nan"),
        (Decimal("0.30"), "0.30"),
        (Decimal("1E+2"), "1E+2"),
        ([1, 2], "[1,2]"),
        ([], "[]"),
        ({}, "{}"),
        ({"a": 1}, '{"a":1}'),
        ({"b": 1, "a": [True, None, "x"]}, '{"b":1,"a":[true,null,"x"]}'),
        ({"é": "ü"}, '{"é":"ü"}'),
        (['quote"', "line\n"], '["quote\\"","line\\n"]'),
        ([Decimal("1.50"), {"a": Decimal("1E+2")}], '[1.50,{"a":1E+2}]'),
        ([Decimal("NaN"), 1.5, "s", None, False], '[NaN,1.5,"s",null,false]'),
        ((1, 2), "[1,2]"),
    ],
)
def test_as_text(value: Any, expected: str) -> None:
    assert as_text(value) == expected


def test_as_text_of_nesting_deeper_than_the_json_encoder_allows() -> None:
    deep: Any = [Decimal(1)]
    for _ in range(5000):
        deep = [deep]
    assert as_text(deep) == "[" * 5001 + "1" + "]" * 5001


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [
        ("abc", 120, '"abc"'),
        ("", 120, '""'),
        ('say "hi"', 120, '"say \\"hi\\""'),
        ("é", 120, '"é"'),
        (3, 120, "3"),
        (2.5, 120, "2.5"),
        (True, 120, "true"),
        (None, 120, "null"),
        (Decimal("0.3"), 120, "0.3"),
        ([1, "a"], 120, '[1,"a"]'),
        ({"a": 1}, 120, '{"a":1}'),
        ("x" * 200, 10, '"xxxxxxxx…'),
        ([1] * 100, 8, "[1,1,1,…"),
        ("abcdefgh", 10, '"abcdefgh"'),  # exactly the limit: not cut
        ("abcdefghi", 10, '"abcdefgh…'),
        ("a\ud800b", 120, '"a\\ud800b"'),  # a lone surrogate stays escaped
    ],
)
def test_render(value: Any, limit: int, expected: str) -> None:
    rendered = render(value, limit)
    assert rendered == expected
    assert len(rendered) <= limit
    rendered.encode("utf-8")  # always storable and sendable


def test_render_default_limit_is_120() -> None:
    rendered = render("y" * 500)
    assert len(rendered) == 120
    assert rendered == '"' + "y" * 118 + "…"


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [("abc", 3, "abc"), ("abcd", 3, "ab…"), ("abcd", 1, "…"), ("", 0, "")],
)
def test_truncate(text: str, limit: int, expected: str) -> None:
    assert truncate(text, limit) == expected
