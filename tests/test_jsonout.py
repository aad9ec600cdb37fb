"""JSON out: orjson's output, and the standard library's for what orjson refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitord.jsonout import dumps, dumps_bytes, json_response

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@given(JSON_VALUES)
def test_what_is_written_reads_back_as_the_same_value(value: Any) -> None:
    assert json.loads(dumps(value)) == value
    assert json.loads(dumps_bytes(value)) == value


def test_output_is_compact_utf8() -> None:
    assert dumps({"a": [1, "é"]}) == '{"a":[1,"é"]}'
    assert dumps_bytes({"a": [1, "é"]}) == '{"a":[1,"é"]}'.encode()


@pytest.mark.parametrize(
    "value",
    [
        {"body": "bad \udc80 byte"},  # a payload that was not UTF-8, decoded with escapes
        ["\ud800"],
        {"count": 2**70},  # beyond 64 bits
        {"count": -(2**64)},
    ],
)
def test_what_orjson_refuses_goes_through_the_standard_library(value: Any) -> None:
    assert json.loads(dumps(value)) == value
    written = dumps_bytes(value)
    assert written.isascii()  # a lone surrogate is escaped, not encoded
    assert json.loads(written) == value


def test_a_value_that_is_not_json_still_raises() -> None:
    with pytest.raises(TypeError):
        dumps({"when": object()})
    with pytest.raises(TypeError):
        dumps_bytes({"x": object()})


def test_json_response_is_a_utf8_json_answer() -> None:
    response = json_response({"ok": "é"}, status=409, headers={"Allow": "GET"})
    assert response.status == 409
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["Allow"] == "GET"
    assert isinstance(response.body, bytes)
    assert json.loads(response.body) == {"ok": "é"}
