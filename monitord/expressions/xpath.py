"""XPath 1.0 over parsed HTML and XML documents (lxml).

lxml cannot interrupt an XPath evaluation, so the deadline is checked when it
returns: an expression that ran too long still fails its check, and the runner
keeps the event loop free by evaluating in a worker thread.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from lxml import etree

from monitord.expressions.errors import (
    ExpressionError,
    ExpressionEvaluationError,
    ExpressionTimeout,
)

# Evaluated once at compile time so that unknown functions, variables and
# namespace prefixes are compile errors rather than failures at every run.
_PROBE_DOCUMENT = b"<probe/>"


@dataclass(frozen=True, slots=True, eq=False)
class XPathExpression:
    """A compiled XPath. lxml serialises concurrent calls of one ``XPath`` object,
    so sharing it between threads is safe."""

    source: str
    xpath: etree.XPath

    def evaluate(self, document: Any, deadline: float) -> list[Any]:
        """The values the XPath selects from a parsed document (an lxml element).

        A node-set gives one value per node: an element's whole text content
        (its XPath string value), an attribute's or text node's string, each
        stripped of surrounding whitespace. A boolean gives a bool; a number an
        int when integral and finite, else a float (NaN stays NaN); a string one
        str, even when empty.
        """
        if time.monotonic() > deadline:
            raise ExpressionTimeout("deadline passed before evaluation")
        try:
            result = self.xpath(document)
        except etree.XPathError as exc:
            raise ExpressionEvaluationError(f"XPath error: {exc}") from exc
        except (TypeError, ValueError) as exc:  # not an lxml document
            raise ExpressionEvaluationError(f"XPath cannot evaluate: {exc}") from exc
        if time.monotonic() > deadline:
            raise ExpressionTimeout("XPath evaluation ran past its deadline")
        return convert_result(result)


def compile_xpath(source: str) -> XPathExpression:
    """Compile ``source`` or raise ``ExpressionError`` with a message for the operator.

    EXSLT regular expressions are off (``regexp=False``): they would run the
    stdlib ``re`` without a time bound.
    """
    try:
        xpath = etree.XPath(source, regexp=False, smart_strings=False)
    except etree.XPathSyntaxError as exc:
        raise ExpressionError(f"XPath does not parse: {exc}") from exc
    except (etree.XPathError, ValueError, TypeError) as exc:
        raise ExpressionError(f"XPath error: {exc}") from exc
    try:
        xpath(etree.fromstring(_PROBE_DOCUMENT))
    except etree.XPathError as exc:
        raise ExpressionError(f"XPath error: {exc}") from exc
    return XPathExpression(source=source, xpath=xpath)


def convert_result(result: Any) -> list[Any]:
    """lxml's XPath result as plain Python values (see ``XPathExpression.evaluate``)."""
    if isinstance(result, bool):
        return [result]
    if isinstance(result, float):
        return [_number(result)]
    if isinstance(result, str):
        return [str(result)]
    if isinstance(result, bytes):
        return [result.decode("utf-8", errors="replace")]
    if isinstance(result, list):
        return [_node_value(node) for node in result]
    return [result]


def _number(value: float) -> int | float:
    if math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def _node_value(node: Any) -> str:
    if isinstance(node, etree._Element):
        if isinstance(node, etree._Comment | etree._ProcessingInstruction):
            return (node.text or "").strip()
        if isinstance(node, etree._Entity):
            # An entity reference left unresolved (entities are never loaded).
            return str(node.text or "").strip()
        value = node.xpath("string()", smart_strings=False)
        return str(value).strip()
    if isinstance(node, tuple):  # a namespace node: (prefix, URI)
        return str(node[-1]).strip()
    if isinstance(node, bytes):
        return node.decode("utf-8", errors="replace").strip()
    return str(node).strip()
