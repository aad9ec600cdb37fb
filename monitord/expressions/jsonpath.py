"""JSONPath: jsonpath-ng's extended syntax, Jayway trailing functions, bounded regexes.

jsonpath-ng evaluates ``=~`` filters (and `` `sub(/re/, x)` ``) with the stdlib
``re``, which cannot be interrupted and holds the GIL while it backtracks. After
parsing, those nodes are swapped for equivalents built on the ``regex`` package,
compiled once here, that search with a timeout derived from the evaluation's
deadline. The deadline travels in a context variable so the shared, compiled
tree itself never changes after compilation.
"""

from __future__ import annotations

import contextvars
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import jsonpath_ng.jsonpath
import regex
from jsonpath_ng import Child, DatumInContext, Fields, Index, JSONPath, Root, This
from jsonpath_ng.exceptions import JSONPathError
from jsonpath_ng.ext.arithmetic import Operation
from jsonpath_ng.ext.filter import Expression as _FilterExpression
from jsonpath_ng.ext.parser import parse as _parse_extended
from jsonpath_ng.ext.string import DefintionInvalid, Sub

from monitord.expressions.errors import (
    ExpressionError,
    ExpressionEvaluationError,
    ExpressionTimeout,
)
from monitord.expressions.functions import FUNCTION_NAMES, apply_function

_T = TypeVar("_T")

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "monitord_jsonpath_deadline", default=None
)

# A trailing Jayway function call: `<path>.name()` (arguments only to reject them).
_TRAILING_FUNCTION = re.compile(
    r"(?P<path>.+)\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)\((?P<arguments>[^()]*)\)", re.DOTALL
)
# PLY names a literal token by itself: "near token ( (()" says "(" twice.
_REDUNDANT_TOKEN_TYPE = re.compile(r"(?P<head>.* near token (?P<value>.+)) \((?P=value)\)")


@dataclass(frozen=True, slots=True, eq=False)
class JsonPathExpression:
    """A compiled JSONPath, optionally with a trailing Jayway function.

    Immutable after compilation and safe to evaluate from several threads at once.
    """

    source: str
    path: JSONPath
    function: str | None = None
    definite: bool = True
    # ``$.a.b``: the names, looked up directly (see ``plain_names``); None for other paths.
    names: tuple[str, ...] | None = None

    def evaluate(self, document: Any, deadline: float) -> list[Any]:
        """The values the path selects from a parsed JSON document.

        Raises ``ExpressionTimeout`` when ``time.monotonic()`` passes ``deadline``
        (a regex filter is interrupted; anything else is noticed when it ends), and
        ``ExpressionEvaluationError`` for any other failure.
        """
        if time.monotonic() > deadline:
            raise ExpressionTimeout("deadline passed before evaluation")
        if self.names is not None:
            values = _look_up(document, self.names)
        else:
            values = self._find(document, deadline)
        if self.function is None:
            return values
        return apply_function(self.function, values, definite=self.definite)

    def _find(self, document: Any, deadline: float) -> list[Any]:
        token = _DEADLINE.set(deadline)
        try:
            found: Any = self.path.find(document)
        except ExpressionTimeout:
            raise
        except RecursionError as exc:
            raise ExpressionEvaluationError("the document nests too deeply to evaluate") from exc
        except ZeroDivisionError as exc:
            raise ExpressionEvaluationError("division by zero") from exc
        except Exception as exc:  # a jsonpath-ng node failing on unexpected data
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise ExpressionEvaluationError(f"evaluation failed: {detail}") from exc
        finally:
            _DEADLINE.reset(token)
        if time.monotonic() > deadline:
            raise ExpressionTimeout("evaluation ran past its deadline")
        # A few jsonpath-ng nodes (`sorted`) return a bare datum instead of a list.
        matches = found if isinstance(found, list) else [found]
        return [match.value if isinstance(match, DatumInContext) else match for match in matches]


def _look_up(document: Any, names: tuple[str, ...]) -> list[Any]:
    """What jsonpath-ng selects with ``$.name…`` in a JSON document: the value at the
    end of the names, when each step is an object holding the name, else nothing."""
    value = document
    for name in names:
        if not isinstance(value, dict) or name not in value:
            return []
        value = value[name]
    return [value]


def compile_jsonpath(source: str) -> JsonPathExpression:
    """Compile ``source`` or raise ``ExpressionError`` with a message for the operator."""
    text = source.strip()
    function: str | None = None
    call = _TRAILING_FUNCTION.fullmatch(text)
    if call is not None:
        name = call.group("name")
        if name not in FUNCTION_NAMES:
            supported = ", ".join(f"{known}()" for known in FUNCTION_NAMES)
            raise ExpressionError(f"unknown function {name}(); supported: {supported}")
        if call.group("arguments").strip():
            raise ExpressionError(f"{name}() takes no arguments")
        function = name
        text = call.group("path").strip()
    path = _parse(text)
    try:
        path = _bound_regexes(path)
        definite = is_definite(path)
    except RecursionError as exc:
        raise ExpressionError("JSONPath is nested too deeply") from exc
    return JsonPathExpression(
        source=source, path=path, function=function, definite=definite, names=plain_names(path)
    )


def plain_names(path: JSONPath) -> tuple[str, ...] | None:
    """The names of a path made of ``$`` and single plain names only (``$.a.b``,
    ``$['a b']``), or None for any other path.

    Most checks are such paths, and jsonpath-ng builds a context object per step of
    them; ``_look_up`` follows the names with the same result for ten times less."""
    if jsonpath_ng.jsonpath.auto_id_field is not None:  # `id` would mean something else
        return None
    names: list[str] = []
    node = path
    while isinstance(node, Child):  # `$.a.b` is Child(Child(Root(), a), b)
        step = node.right
        # A Fields step of jsonpath-ng's old wildcard syntax means every key: not plain.
        # (A private flag: read with a default that keeps such paths on jsonpath-ng.)
        wildcard = getattr(step, "_deprecated_wildcard_use", True)
        if type(step) is not Fields or len(step.fields) != 1 or wildcard:
            return None
        names.append(step.fields[0])
        node = node.left
    if type(node) is not Root:
        return None
    return tuple(reversed(names))


def is_definite(path: JSONPath) -> bool:
    """Whether ``path`` selects at most one value: only ``$``/``@``, single names
    and single integer indices (no wildcard, slice, filter, ``..``, union, list)."""
    pending = [path]
    while pending:
        node = pending.pop()
        if isinstance(node, Child):
            pending.extend((node.left, node.right))
        elif isinstance(node, Fields):
            if len(node.fields) != 1 or node._deprecated_wildcard_use:
                return False
        elif isinstance(node, Index):
            if len(node.indices) != 1:
                return False
        elif type(node) not in (Root, This):
            return False
    return True


def _parse(text: str) -> JSONPath:
    try:
        # jsonpath-ng 1.x warns about syntax it will drop in 2.0 (`|`, bare words
        # as operands) but still parses it; those expressions keep working here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            parsed: JSONPath = _parse_extended(text)
    except RecursionError as exc:
        raise ExpressionError("JSONPath is nested too deeply") from exc
    except (JSONPathError, DefintionInvalid, re.error, ValueError, TypeError) as exc:
        raise ExpressionError(f"JSONPath does not parse: {_parse_message(exc)}") from exc
    return parsed


def _parse_message(exc: Exception) -> str:
    message = str(exc) or type(exc).__name__
    redundant = _REDUNDANT_TOKEN_TYPE.fullmatch(message)
    return redundant.group("head") if redundant else message


# --- bounded regular expressions -------------------------------------------------------


def _search(pattern: regex.Pattern[str], text: str) -> bool:
    found = _run_bounded(lambda timeout: pattern.search(text, timeout=timeout, concurrent=True))
    return found is not None


def _run_bounded(run: Callable[[float | None], _T]) -> _T:
    deadline = _DEADLINE.get()
    timeout = None
    if deadline is not None:
        timeout = deadline - time.monotonic()
        if timeout <= 0:
            raise ExpressionTimeout("regular expression ran past its deadline")
    try:
        return run(timeout)
    except TimeoutError as exc:
        raise ExpressionTimeout("regular expression ran past its deadline") from exc


def _compile_regex(pattern: str) -> regex.Pattern[str]:
    try:
        return regex.compile(pattern)
    except (regex.error, ValueError, TypeError, OverflowError) as exc:
        raise ExpressionError(f"JSONPath regular expression {pattern!r} is invalid: {exc}") from exc


class _BoundedRegexFilter(_FilterExpression):
    """``@.x =~ "pattern"``, matched by ``regex`` under the evaluation deadline.

    Same selection as jsonpath-ng's node: the string values the target finds
    that contain a match of the pattern; non-strings never match.
    """

    def __init__(self, target: JSONPath, pattern: str) -> None:
        super().__init__(target, "=~", pattern)
        self.compiled = _compile_regex(pattern)

    def find(self, datum: Any) -> list[DatumInContext]:
        wrapped = DatumInContext.wrap(datum)
        return [
            match
            for match in self.target.find(wrapped)
            if isinstance(match.value, str) and _search(self.compiled, match.value)
        ]


class _BoundedSub(Sub):
    """`` `sub(/pattern/, replacement)` `` with ``regex`` under the evaluation deadline."""

    def __init__(self, method: str) -> None:
        super().__init__(method)
        self.compiled = _compile_regex(self.expr)

    def find(self, datum: Any) -> list[DatumInContext]:
        wrapped = DatumInContext.wrap(datum)
        original = wrapped.value
        value = _run_bounded(
            lambda timeout: self.compiled.sub(self.repl, original, timeout=timeout, concurrent=True)
        )
        if value == original:
            return []
        return [DatumInContext.wrap(value)]


def _multiply_numbers(left: Any, right: Any) -> Any:
    if isinstance(left, str | bytes | list | tuple | dict) or isinstance(
        right, str | bytes | list | tuple | dict
    ):
        # jsonpath-ng reads a TypeError in arithmetic as "no value".
        raise TypeError("only numbers multiply")
    return left * right


def _bound_regexes(path: JSONPath) -> JSONPath:
    """``path`` with every stdlib-regex node replaced by a bounded one, and
    multiplication restricted to numbers.

    Walks the tree generically (every attribute, list and tuple holding
    ``JSONPath`` nodes) so filters nested in filters, ``&&``/``||`` operands and
    sort keys are all reached.
    """
    return cast(JSONPath, _replace(path))


def _replace(value: Any) -> Any:
    if isinstance(value, _FilterExpression) and not isinstance(value, _BoundedRegexFilter):
        if value.op == "=~":
            if not isinstance(value.value, str):
                raise ExpressionError(f"JSONPath =~ needs a quoted pattern, not {value.value!r}")
            value = _BoundedRegexFilter(value.target, value.value)
    elif isinstance(value, Sub) and not isinstance(value, _BoundedSub):
        value = _BoundedSub(value.method)
    elif isinstance(value, Operation) and value.op_symbol == "*":
        # Python repeats strings and lists: `$.s * $.n` with a large n from the
        # response would build a huge value. Only numbers multiply here.
        value.op = _multiply_numbers
    if isinstance(value, JSONPath):
        for name, child in list(vars(value).items()):
            replaced = _replace(child)
            if replaced is not child:
                setattr(value, name, replaced)
        return value
    if isinstance(value, list):
        replaced_items = [_replace(item) for item in value]
        if any(new is not old for new, old in zip(replaced_items, value, strict=True)):
            value[:] = replaced_items
        return value
    if isinstance(value, tuple):
        replaced_tuple = tuple(_replace(item) for item in value)
        if any(new is not old for new, old in zip(replaced_tuple, value, strict=True)):
            return replaced_tuple
        return value
    return value
