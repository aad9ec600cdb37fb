"""How values selected from a response read as numbers and as text (SPEC §5)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def as_number(value: Any) -> Decimal | None:
    """The value as an exact number, or None when it does not read as one."""
    raise NotImplementedError


def as_text(value: Any) -> str:
    """The value's text: JSON literals as true/false/null, containers as compact JSON."""
    raise NotImplementedError


def render(value: Any, limit: int = 120) -> str:
    """A short rendering of a value for a failure reason."""
    raise NotImplementedError
