"""Checks on raw response bytes: ``responseValidation`` and ``lengthValidation`` (SPEC §5)."""

from __future__ import annotations

from monitord.model import ByteCheck, LengthCheck
from monitord.values import render, truncate

_HEX_LIMIT = 120
_PRINTABLE_CONTROLS = frozenset("\t\r\n")


def check_bytes(checks: tuple[ByteCheck, ...], data: bytes) -> list[str]:
    """One reason per failing ``responseValidation`` entry, in order."""
    reasons: list[str] = []
    for index, check in enumerate(checks):
        reason = check_byte(index, check, data)
        if reason is not None:
            reasons.append(reason)
    return reasons


def check_byte(index: int, check: ByteCheck, data: bytes) -> str | None:
    """The reason ``responseValidation[index]`` fails on ``data``, or None.

    The bytes at ``check.position`` (0-based) must equal ``check.expected``.
    Mismatches are shown as text when both sides are printable UTF-8 and the
    check was not written in hex, else as hex.
    """
    label = f"responseValidation[{index}] at {check.position}"
    if len(data) < check.end:
        return f"{label}: response has {len(data)} bytes, check needs {check.end}"
    seen = data[check.position : check.end]
    if seen == check.expected:
        return None
    if not check.is_hex:
        expected_text = _printable(check.expected)
        seen_text = _printable(seen)
        if expected_text is not None and seen_text is not None:
            return f"{label}: expected {render(expected_text)}, got {render(seen_text)}"
    return f"{label}: expected hex {_hex(check.expected)}, got hex {_hex(seen)}"


def check_length(check: LengthCheck, data: bytes) -> str | None:
    """The reason ``lengthValidation`` fails on ``data``, or None.

    The unsigned ``TYPE`` at ``POS`` in ``ENDIAN`` order plus ``BASE`` must be
    exactly the response's length.
    """
    label = f"lengthValidation {check.int_type.value} at {check.position}"
    value = check.field_value(data)
    expected = check.expected_size(data)
    if value is None or expected is None:
        return f"{label}: response has {len(data)} bytes, check needs {check.field_end}"
    if len(data) == expected:
        return None
    return f"{label}: length field {value} + BASE {check.base} = {expected} bytes, got {len(data)}"


def _printable(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if all(char.isprintable() or char in _PRINTABLE_CONTROLS for char in text):
        return text
    return None


def _hex(data: bytes) -> str:
    return truncate(data.hex(), _HEX_LIMIT)
