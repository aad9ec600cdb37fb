"""JSON bodies are read with orjson where it reads what the standard library reads, and
with the standard library otherwise: a document (or the reason it is not one) must be
the standard library's in every case."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitord.expressions import DocumentError, parse_document
from monitord.model import TextKind

J = TextKind.JSON


def standard(body: bytes) -> Any:
    """What the standard library reads from a UTF-8 body."""
    return json.loads(body.decode("utf-8"))


def same(read: Any, expected: Any) -> bool:
    """Equal values of the same types, and objects with their keys in the same order."""
    if type(read) is not type(expected):
        return False
    if isinstance(read, float):
        return read == expected or (math.isnan(read) and math.isnan(expected))
    if isinstance(read, list):
        return len(read) == len(expected) and all(map(same, read, expected))
    if isinstance(read, dict):
        return list(read) == list(expected) and all(same(read[k], expected[k]) for k in read)
    return bool(read == expected)


def reason(body: bytes, charset: str | None) -> str:
    with pytest.raises(DocumentError) as raised:
        parse_document(J, body, charset)
    return str(raised.value)


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.integers(min_value=-(2**64) - 2, max_value=2**64 + 2)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),  # lone surrogates included
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=600, deadline=None)
@given(value=values, ascii_only=st.booleans(), charset=st.sampled_from([None, "utf-8", "UTF8"]))
def test_documents_are_those_of_the_standard_library(
    value: Any, ascii_only: bool, charset: str | None
) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    try:
        body = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate written as itself: not UTF-8
        body = text.encode("utf-8", "surrogatepass")
        assert "codec can't decode" in reason(body, charset)
        return
    assert same(parse_document(J, body, charset), standard(body))


@settings(max_examples=600, deadline=None)
@given(
    body=st.binary(max_size=40)
    | values.map(lambda value: json.dumps(value).encode("utf-8", "surrogatepass"))
    .flatmap(
        # a valid document with a few bytes changed, cut or added
        lambda body: st.tuples(st.just(body), st.integers(0, len(body)), st.binary(max_size=3))
    )
    .map(lambda cut: cut[0][: cut[1]] + cut[2] + cut[0][cut[1] + 1 :])
)
def test_broken_bodies_read_or_fail_as_with_the_standard_library(body: bytes) -> None:
    try:
        expected = standard(body.removeprefix(b"\xef\xbb\xbf"))
    except (ValueError, RecursionError):
        with pytest.raises(DocumentError):
            parse_document(J, body, "utf-8")
        return
    assert same(parse_document(J, body, "utf-8"), expected)


@pytest.mark.parametrize(
    "number",
    [
        "9223372036854775807",
        "-9223372036854775808",
        "-9223372036854775809",  # below 64-bit signed
        "18446744073709551615",
        "18446744073709551616",  # beyond 64-bit unsigned
        "123456789012345678901234567890",
        "-123456789012345678901234567890",
    ],
)
def test_integers_beyond_64_bits_stay_exact(number: str) -> None:
    document = parse_document(
        J, b'{"id": %s, "ids": [[%s]]}' % (number.encode(), number.encode()), None
    )
    assert document == {"id": int(number), "ids": [[int(number)]]}
    assert type(document["id"]) is int
    assert type(document["ids"][0][0]) is int


def test_large_floats_stay_floats() -> None:
    document = parse_document(J, b"[1e19, -1.5e300, 9.3e18, 1e400]", None)
    assert document == [1e19, -1.5e300, 9.3e18, math.inf]
    assert all(type(value) is float for value in document)


def test_escaped_lone_surrogates_read_as_the_standard_library_reads_them() -> None:
    body = b'{"a": "\\ud800", "b": "\\ud83d\\ude00"}'
    assert parse_document(J, body, "utf-8") == {"a": "\ud800", "b": "😀"}


def test_repeated_keys_keep_the_last_value_in_the_first_place() -> None:
    document = parse_document(J, b'{"a": 1, "b": 2, "a": 3}', None)
    assert list(document.items()) == [("a", 3), ("b", 2)]


def test_nesting_the_standard_library_cannot_read_is_refused_as_before() -> None:
    # orjson reads 1,000 levels; the standard library, within Python's recursion limit,
    # does not: the reason stays the one it gives.
    assert reason(b"[" * 1000 + b"]" * 1000, None) == "body is not valid JSON: nested too deeply"


def test_documents_with_many_containers_read_alike() -> None:
    # More brackets than the fast path takes: the standard library reads it, the same way.
    items = b",".join(b'{"id": %d, "tags": ["a", [%d]]}' % (n, n) for n in range(400))
    body = b'{"items": [' + items + b'], "big": 12345678901234567890123}'
    assert same(parse_document(J, body, None), standard(body))


def test_bodies_too_short_to_nest_past_the_limit_read_alike() -> None:
    # Up to 1,000 bytes a document nests at most 500 deep, so its brackets are not
    # counted: the deepest such document, and brackets in a string, read as before.
    deepest = b"[" * 500 + b"]" * 500
    document, expected = parse_document(J, deepest, None), standard(deepest)
    for _ in range(499):  # walked, not compared: a recursive comparison would be as deep
        (document,), (expected,) = document, expected
    assert document == expected == []
    in_text = b'["' + b"[{" * 498 + b'"]'
    assert len(in_text) == 1000
    assert same(parse_document(J, in_text, "utf-8"), standard(in_text))
    unclosed = b"[" * 1000
    assert reason(unclosed, None) == reason(b"[" * 1001, None)


def test_digits_in_strings_and_long_fractions_read_alike() -> None:
    body = b'{"id": "12345678901234567890123", "x": 0.12345678901234567890123, "y": 1e-400}'
    assert same(parse_document(J, body, "utf-8"), standard(body))


def test_moderate_nesting_reads() -> None:
    body = b"[" * 150 + b"1" + b"]" * 150
    document = parse_document(J, body, None)
    for _ in range(150):
        (document,) = document
    assert document == 1


@pytest.mark.parametrize(
    ("body", "charset"),
    [
        ('{"a": "é"}'.encode("utf-16"), None),  # detected, not UTF-8
        ('{"a": "é"}'.encode("latin-1"), "iso-8859-1"),
        (b'\xef\xbb\xbf{"a": "\xc3\xa9"}', None),  # UTF-8 with a byte-order mark
        (b'\xef\xbb\xbf{"a": "\xc3\xa9"}', "utf-8"),
    ],
)
def test_other_encodings_still_read(body: bytes, charset: str | None) -> None:
    assert parse_document(J, body, charset) == {"a": "é"}
