"""Compiled JSONPath and XPath expressions, and parsing response bodies for them.

``compile_expression`` runs at load time and is memoised: scenarios that share
an expression share one compiled, immutable object. Evaluation is pure apart
from reading the monotonic clock for its deadline.
"""

from __future__ import annotations

import functools

from monitord.expressions.documents import parse_document
from monitord.expressions.errors import (
    DocumentError,
    ExpressionError,
    ExpressionEvaluationError,
    ExpressionTimeout,
)
from monitord.expressions.functions import FUNCTION_NAMES
from monitord.expressions.jsonpath import JsonPathExpression, compile_jsonpath
from monitord.expressions.xpath import XPathExpression, compile_xpath
from monitord.model import Expression, TextKind

__all__ = [
    "FUNCTION_NAMES",
    "DocumentError",
    "ExpressionError",
    "ExpressionEvaluationError",
    "ExpressionTimeout",
    "JsonPathExpression",
    "XPathExpression",
    "compile_expression",
    "parse_document",
]

# Bounded so a long-lived daemon reloading edited scenarios cannot grow without
# limit; far above the number of distinct expressions a deployment uses.
_CACHE_SIZE = 16384


def compile_expression(kind: TextKind, source: str) -> Expression:
    """``source`` compiled for documents of ``kind`` (JSONPath for JSON, XPath otherwise).

    Raises ``ExpressionError`` with a message for the operator, such as
    ``JSONPath does not parse: Parse error at 1:14 near token (`` or
    ``XPath error: Undefined namespace prefix``. Equal arguments return the
    same object.
    """
    return _compile(kind, source)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compile(kind: TextKind, source: str) -> Expression:
    if kind is TextKind.JSON:
        return compile_jsonpath(source)
    return compile_xpath(source)
