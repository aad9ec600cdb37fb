"""Text checks: an expression selects values from the parsed body, each compared
with the operand (SPEC §5).

Reasons name the check and say what was seen: ``$.numErrors LTE 0: got 3``.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from operator import ge, gt, le, lt
from typing import Any

from monitord.expressions import (
    DocumentError,
    ExpressionEvaluationError,
    ExpressionTimeout,
    parse_document,
)
from monitord.model import NUMERIC_OPERATORS, Operator, TextCheck, TextValidation
from monitord.values import as_number, as_text, render

MAX_SHOWN_VALUES = 5
# Members read once (see model.py): _mismatch runs for every selected value.
_CONTAINS, _NOT_CONTAINS = Operator.CONTAINS, Operator.NOT_CONTAINS
_EQ, _NE = Operator.EQ, Operator.NE


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One selected value for which the check does not hold."""

    value: Any
    not_a_number: bool = False


def compare(operator: Operator, value: Any, operand: str) -> str | None:
    """None when ``value`` satisfies ``operator operand``, else what was seen.

    The description is the rendered value (``3``, ``"down"``), with
    ``, not a number`` for a numeric operator on a value that is not a number,
    or ``operand "x" is not a number`` when the operand itself is not one.
    """
    if operator in NUMERIC_OPERATORS and as_number(operand) is None:
        return f"operand {render(operand)} is not a number"
    mismatch = mismatch_of(operator, value, operand)
    if mismatch is None:
        return None
    return _describe([mismatch])


def mismatch_of(operator: Operator, value: Any, operand: str) -> Mismatch | None:
    """None when ``value`` satisfies ``operator operand``, else the mismatch.

    CONTAINS / NOT_CONTAINS test the operand as a substring of the value's text.
    EQ / NE compare numerically when both sides read as numbers, else as text.
    GT / GTE / LT / LTE are numeric only: a value (or operand) that is not a
    number never holds, and is flagged, never read as 0.
    """
    return _mismatch(operator, value, operand, as_number(operand))


# Operands come from scenario files: a bounded set, each read as a number once.
_operand_number = functools.lru_cache(maxsize=4096)(as_number)


def _mismatch(
    operator: Operator, value: Any, operand: str, wanted: Decimal | None
) -> Mismatch | None:
    """``mismatch_of`` with the operand already read as a number (``wanted``)."""
    if operator is _EQ or operator is _NE:
        if value == operand and isinstance(value, str):
            # The same text reads as the same number, or as no number: equal either way.
            return None if operator is _EQ else Mismatch(value)
        number = _as_number(value)
        if number is not None and wanted is not None:
            equal = number == wanted
        else:
            equal = as_text(value) == operand
        holds = equal if operator is _EQ else not equal
        return None if holds else Mismatch(value)
    if operator is _CONTAINS:
        return None if operand in as_text(value) else Mismatch(value)
    if operator is _NOT_CONTAINS:
        return Mismatch(value) if operand in as_text(value) else None
    number = _as_number(value)
    if number is None:
        return Mismatch(value, not_a_number=True)
    if wanted is None:
        return Mismatch(value)
    return None if _ORDERED[operator](number, wanted) else Mismatch(value)


def _as_number(value: Any) -> Decimal | int | None:
    """``as_number``, with an int as itself: it compares with a Decimal exactly, and most
    numbers in JSON documents are ints."""
    return value if type(value) is int else as_number(value)


_ORDERED: dict[Operator, Callable[[Decimal | int, Decimal], bool]] = {
    Operator.GT: gt,
    Operator.GTE: ge,
    Operator.LT: lt,
    Operator.LTE: le,
}


def check_text(
    validation: TextValidation, body: bytes, charset: str | None, *, budget_s: float
) -> list[str]:
    """One reason per failing text check, in order; the body is parsed once.

    A body that does not parse is a single reason (and no check is evaluated).
    """
    try:
        document = parse_document(validation.kind, body, charset)
    except DocumentError as exc:
        return [str(exc)]
    return check_document(validation, document, budget_s=budget_s)


def check_document(validation: TextValidation, document: Any, *, budget_s: float) -> list[str]:
    """One reason per text check that fails on a parsed ``document``, in order."""
    reasons: list[str] = []
    for check in validation.checks:
        reason = check_expression(check, document, budget_s=budget_s)
        if reason is not None:
            reasons.append(reason)
    return reasons


def check_expression(check: TextCheck, document: Any, *, budget_s: float) -> str | None:
    """The reason ``check`` fails on ``document``, or None when it holds.

    The expression gets ``budget_s`` seconds from now. The check holds only
    when the expression selects at least one value and every value satisfies it.
    """
    wanted = _operand_number(check.operand)
    if check.operator in NUMERIC_OPERATORS and wanted is None:
        return f"{_label(check)}: operand {render(check.operand)} is not a number"
    deadline = time.monotonic() + budget_s
    try:
        values = check.expression.evaluate(document, deadline)
    except ExpressionTimeout:
        return f"{_label(check)}: exceeded the {format_ms(budget_s)} ms time budget"
    except ExpressionEvaluationError as exc:
        return f"{_label(check)}: {exc}"
    if not values:
        return f"{_label(check)}: matched nothing"
    mismatches = []
    operator, operand = check.operator, check.operand
    for value in values:  # a loop, not a comprehension (a call of its own): runs per check
        mismatch = _mismatch(operator, value, operand, wanted)
        if mismatch is not None:
            mismatches.append(mismatch)
    if not mismatches:
        return None
    return f"{_label(check)}: got {_describe(mismatches)}"


def _label(check: TextCheck) -> str:
    return f"{check.expression.source} {check.operator.value} {check.operand}"


def format_ms(seconds: float) -> str:
    """A duration in whole milliseconds when it is one (``50``), else as precise as given."""
    if not math.isfinite(seconds):
        return str(seconds)
    milliseconds = Decimal(repr(seconds)) * 1000
    if milliseconds == milliseconds.to_integral_value():
        return str(int(milliseconds))
    return format(milliseconds.normalize(), "f")


def _describe(mismatches: list[Mismatch]) -> str:
    if len(mismatches) == 1:
        only = mismatches[0]
        return f"{render(only.value)}, not a number" if only.not_a_number else render(only.value)
    shown = [
        f"{render(mismatch.value)} (not a number)"
        if mismatch.not_a_number
        else render(mismatch.value)
        for mismatch in mismatches[:MAX_SHOWN_VALUES]
    ]
    text = ", ".join(shown)
    hidden = len(mismatches) - MAX_SHOWN_VALUES
    if hidden > 0:
        text += f" … ({hidden} more)"
    return text
