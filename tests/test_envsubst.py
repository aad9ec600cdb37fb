from __future__ import annotations

import pytest

from monitord.config.envsubst import SubstitutionError, references, substitute

ENV = {"TOKEN": "s3cr3t", "HOST": "api.example.test", "NESTED": "${TOKEN}", "EMPTY": ""}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("", ""),
        ("Bearer ${TOKEN}", "Bearer s3cr3t"),
        ("https://${HOST}/x?t=${TOKEN}", "https://api.example.test/x?t=s3cr3t"),
        ("${NESTED}", "${TOKEN}"),  # single pass: a value is never expanded again
        ("$${TOKEN}", "${TOKEN}"),  # escaped
        ("cost: $5 and $HOST", "cost: $5 and $HOST"),  # only ${...} is special
        ("${EMPTY}x", "x"),
    ],
)
def test_substitute(text: str, expected: str) -> None:
    assert substitute(text, ENV) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${MISSING}", "environment variable MISSING is not set"),
        ("a ${TOKEN", "unclosed '${' (write '$${' for a literal '${')"),
        ("${1BAD}", "invalid variable name '1BAD' in '${...}'"),
        ("${}", "invalid variable name '' in '${...}'"),
        ("${A B}", "invalid variable name 'A B' in '${...}'"),
    ],
)
def test_substitute_errors(text: str, message: str) -> None:
    with pytest.raises(SubstitutionError) as caught:
        substitute(text, ENV)
    assert str(caught.value) == message


def test_references() -> None:
    assert references("${A} $${B} ${C_1}") == ["A", "C_1"]
