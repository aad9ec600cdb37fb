"""The errors of compiling expressions, evaluating them and parsing bodies."""

from __future__ import annotations


class ExpressionError(ValueError):
    """An expression that does not compile; the message is for the operator."""


class ExpressionTimeout(Exception):
    """Evaluation ran past its deadline."""


class ExpressionEvaluationError(ValueError):
    """Evaluation failed for this document; the message says why, for the operator."""


class DocumentError(ValueError):
    """A body that does not parse as the declared kind."""
