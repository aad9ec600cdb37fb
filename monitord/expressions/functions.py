"""The trailing functions of the seed's (Jayway) JSONPath dialect: ``$.items.length()``.

Semantics follow Jayway: on a *definite* path (one that can select at most one
value) the function applies to that value, an array; on an *indefinite* path
it applies to the list of selected values. Numeric functions work in exact
decimal arithmetic, so ``[0.1, 0.2].sum()`` is exactly ``0.3``.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from monitord.expressions.errors import ExpressionEvaluationError
from monitord.values import as_number, render

FUNCTION_NAMES = ("length", "size", "min", "max", "avg", "sum", "stddev")
_COUNTING = frozenset({"length", "size"})


def apply_function(name: str, selected: Sequence[Any], *, definite: bool) -> list[Any]:
    """The function's single result, as a one-value list; ``[]`` when a definite path
    selected nothing.

    Raises ``ExpressionEvaluationError`` when the function does not apply (a
    number where an array is needed, an empty array for an aggregate, an
    element that is not a number).
    """
    if name not in FUNCTION_NAMES:
        raise ExpressionEvaluationError(f"unknown function {name}()")
    if definite:
        if not selected:
            return []
        target = selected[0]
        if name in _COUNTING:
            if isinstance(target, list | str | dict):
                return [len(target)]
            raise ExpressionEvaluationError(
                f"{name}(): got {render(target)}, not an array, string or object"
            )
        if not isinstance(target, list):
            raise ExpressionEvaluationError(f"{name}(): got {render(target)}, not an array")
        items: Sequence[Any] = target
    else:
        if name in _COUNTING:
            return [len(selected)]
        items = selected
    return [_AGGREGATES[name](_numbers(name, items), _context())]


def _numbers(name: str, items: Sequence[Any]) -> list[Decimal]:
    if not items:
        raise ExpressionEvaluationError(f"{name}(): empty array")
    numbers: list[Decimal] = []
    for index, item in enumerate(items):
        number = as_number(item)
        if number is None:
            raise ExpressionEvaluationError(
                f"{name}(): element {index} is {render(item)}, not a number"
            )
        numbers.append(number)
    return numbers


def _context() -> decimal.Context:
    # A fresh context per call: contexts carry mutable flags, and evaluation runs
    # in worker threads. Overflow and invalid operations raise instead of
    # producing Infinity or NaN.
    return decimal.Context(
        prec=34,
        rounding=decimal.ROUND_HALF_EVEN,
        Emax=decimal.MAX_EMAX,
        Emin=decimal.MIN_EMIN,
        traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
    )


def _sum(numbers: list[Decimal], context: decimal.Context) -> Decimal:
    total = Decimal(0)
    for number in numbers:
        total = context.add(total, number)
    return total


def _avg(numbers: list[Decimal], context: decimal.Context) -> Decimal:
    return context.divide(_sum(numbers, context), Decimal(len(numbers)))


def _stddev(numbers: list[Decimal], context: decimal.Context) -> Decimal:
    """Population standard deviation."""
    mean = _avg(numbers, context)
    squares = [context.power(context.subtract(number, mean), 2) for number in numbers]
    return context.sqrt(context.divide(_sum(squares, context), Decimal(len(numbers))))


def _guarded(
    name: str, compute: Callable[[list[Decimal], decimal.Context], Decimal]
) -> Callable[[list[Decimal], decimal.Context], Decimal]:
    def run(numbers: list[Decimal], context: decimal.Context) -> Decimal:
        try:
            return compute(numbers, context)
        except decimal.DecimalException as exc:
            raise ExpressionEvaluationError(f"{name}(): result out of range") from exc

    return run


_AGGREGATES: dict[str, Callable[[list[Decimal], decimal.Context], Decimal]] = {
    "min": _guarded("min", lambda numbers, _context: min(numbers)),
    "max": _guarded("max", lambda numbers, _context: max(numbers)),
    "sum": _guarded("sum", _sum),
    "avg": _guarded("avg", _avg),
    "stddev": _guarded("stddev", _stddev),
}
