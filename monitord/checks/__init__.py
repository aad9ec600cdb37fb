"""Pure judging: (Validation, Observation) -> Verdict.

Every check is evaluated and every failure reported, in a fixed order: status
code, text checks, byte checks, length check. Nothing here does I/O.
"""

from __future__ import annotations

from monitord.checks.binary import check_byte, check_bytes, check_length
from monitord.checks.status import check_status, status_matches
from monitord.checks.text import (
    Mismatch,
    check_document,
    check_expression,
    check_text,
    compare,
    format_ms,
    mismatch_of,
)
from monitord.expressions import DocumentError, parse_document
from monitord.model import FailureKind, Observation, Outcome, Validation, Verdict
from monitord.values import render

__all__ = [
    "PASSED",
    "Mismatch",
    "check_avoiding",
    "check_byte",
    "check_bytes",
    "check_document",
    "check_expression",
    "check_length",
    "check_status",
    "check_text",
    "compare",
    "decode_body",
    "format_ms",
    "judge",
    "mismatch_of",
    "status_matches",
]


# Every passing judgement is this same (immutable) verdict: no new object per run.
PASSED = Verdict(Outcome.SUCCESS)


def judge(validation: Validation, observation: Observation, *, budget_s: float) -> Verdict:
    """The verdict on one observation.

    A probe failure is the verdict as is. Otherwise, a body containing the
    avoiding text is ``suppressed`` whatever else holds; else every check runs
    and each failing one adds its reason to a ``wrong_answer`` failure.
    ``budget_s`` bounds each text check's expression evaluation.
    """
    failure = observation.failure
    if failure is not None:
        return Verdict(Outcome.FAILURE, (failure.reason,), failure.kind)
    suppressed = check_avoiding(validation.avoiding_text, observation.body, observation.charset)
    if suppressed is not None:
        return Verdict(Outcome.SUPPRESSED, (suppressed,), None)
    reasons: list[str] = []
    unreadable: str | None = None
    if observation.status_code is not None:
        status = check_status(validation.response_codes, observation.status_code)
        if status is not None:
            reasons.append(status)
    if validation.text is not None:
        try:
            document = parse_document(validation.text.kind, observation.body, observation.charset)
        except DocumentError as exc:
            unreadable = str(exc)
            reasons.append(unreadable)
        else:
            reasons.extend(check_document(validation.text, document, budget_s=budget_s))
    reasons.extend(check_bytes(validation.byte_checks, observation.body))
    if validation.length is not None:
        length = check_length(validation.length, observation.body)
        if length is not None:
            reasons.append(length)
    if reasons:
        return Verdict(Outcome.FAILURE, tuple(reasons), FailureKind.WRONG_ANSWER, unreadable)
    return PASSED


def check_avoiding(avoiding_text: str | None, body: bytes, charset: str | None) -> str | None:
    """The suppression reason when the decoded body contains ``avoiding_text``, else None.

    An empty avoiding text would match every body, so it is treated as absent.
    """
    if not avoiding_text:
        return None
    if avoiding_text not in decode_body(body, charset):
        return None
    return f"avoidingValidationText {render(avoiding_text)} found in body"


def decode_body(body: bytes, charset: str | None) -> str:
    """``body`` as text in its declared charset (UTF-8 when none or unknown), lossy."""
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except (LookupError, UnicodeError):  # unknown, or no text codec (idna, rot13…)
        return body.decode("utf-8", errors="replace")
