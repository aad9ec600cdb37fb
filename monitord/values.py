"""How values selected from a response read as numbers and as text (SPEC §5).

Everything here is pure and total: a value that does not read as a number is
``None``, never 0, and every value has a text.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

# A plain decimal literal: no "nan"/"inf", no underscores, no hex, ASCII digits only.
_DECIMAL_LITERAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_NUMBER_TEXT = 400
_ELLIPSIS = "…"


def as_number(value: Any) -> Decimal | None:
    """The value as an exact, finite number, or None when it does not read as one.

    Numbers (but not booleans) read as themselves; a float reads as its shortest
    repr, so ``0.1`` is exactly ``Decimal("0.1")``; a string reads as a number
    only if, stripped of surrounding whitespace, it is a decimal literal of at
    most 400 characters. Everything else (None, containers, NaN, infinities) is None.
    """
    # bool is a subclass of int: JSON true is not the number 1.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, str):
        text = value.strip()
        if len(text) > _MAX_NUMBER_TEXT or not _DECIMAL_LITERAL.fullmatch(text):
            return None
        try:
            return Decimal(text)
        except InvalidOperation:  # an exponent beyond what Decimal can represent
            return None
    return None


def as_text(value: Any) -> str:
    """The value's text: JSON literals as true/false/null, containers as compact JSON.

    Strings are themselves; ints and Decimals their ``str``; floats their
    ``repr``; lists and dicts compact JSON (``[1,2]``, ``{"a":1}``) with keys in
    document order, non-ASCII kept, and Decimals written as JSON numbers.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, list | tuple | dict):
        try:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            # Decimals (or other scalars) inside, or nested past the C encoder's limit.
            return _compact_json(value)
    return str(value)


def render(value: Any, limit: int = 120) -> str:
    """A short rendering of a value for a failure reason.

    Strings are JSON-quoted (``"abc"``), everything else is ``as_text``; the
    result is at most ``limit`` characters, ending in ``…`` when cut.
    """
    text = _quote(value) if isinstance(value, str) else as_text(value)
    return truncate(text, limit)


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, the last being ``…`` when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + _ELLIPSIS


def _quote(text: str) -> str:
    # A lone surrogate (JSON allows "\ud800") stays escaped: it is no character, and
    # text holding one cannot be stored or sent as UTF-8.
    return json.dumps(text, ensure_ascii=False).encode("utf-8", "backslashreplace").decode()


def _scalar_json(value: Any) -> str:
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, bool) or value is None:
        return as_text(value)
    if isinstance(value, float):
        return json.dumps(value)
    if isinstance(value, Decimal):
        if value.is_finite():
            return str(value)
        return "NaN" if value.is_nan() else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, int):
        return str(value)
    return _quote(str(value))


def _compact_json(value: Any) -> str:
    """Compact JSON without recursion, for what ``json.dumps`` refuses."""
    parts: list[str] = []
    # The stack holds either values still to write or literal text to emit.
    stack: list[tuple[bool, Any]] = [(False, value)]
    while stack:
        is_text, item = stack.pop()
        if is_text:
            parts.append(item)
            continue
        if isinstance(item, dict):
            pending: list[tuple[bool, Any]] = [(True, "{")]
            for index, (key, child) in enumerate(item.items()):
                separator = "," if index else ""
                pending.append((True, f"{separator}{_quote(as_text(key))}:"))
                pending.append((False, child))
            pending.append((True, "}"))
            stack.extend(reversed(pending))
        elif isinstance(item, list | tuple):
            pending = [(True, "[")]
            for index, child in enumerate(item):
                if index:
                    pending.append((True, ","))
                pending.append((False, child))
            pending.append((True, "]"))
            stack.extend(reversed(pending))
        else:
            parts.append(_scalar_json(item))
    return "".join(parts)
