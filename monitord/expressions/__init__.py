"""Compiled JSONPath and XPath expressions, and parsing response bodies for them."""

from __future__ import annotations

from typing import Any

from monitord.model import Expression, TextKind


class ExpressionError(ValueError):
    """An expression that does not compile; the message is for the operator."""


class ExpressionTimeout(Exception):
    """Evaluation ran past its deadline."""


class DocumentError(ValueError):
    """A body that does not parse as the declared kind."""


def compile_expression(kind: TextKind, source: str) -> Expression:
    raise NotImplementedError


def parse_document(kind: TextKind, body: bytes, charset: str | None) -> Any:
    raise NotImplementedError
