"""The HTTP status check: ``responseCodes`` (SPEC §5)."""

from __future__ import annotations

DEFAULT_CODES = ("2xx",)


def status_matches(code: str, status: int) -> bool:
    """Whether ``status`` is ``code``: an exact code (``"200"``) or a class (``"2xx"``)."""
    pattern = code.strip().lower()
    if not pattern.isascii():
        return False
    if len(pattern) == 3 and pattern[0].isdigit() and pattern[1:] == "xx":
        return status // 100 == int(pattern[0])
    return pattern.isdigit() and int(pattern) == status


def check_status(response_codes: tuple[str, ...] | None, status: int) -> str | None:
    """The reason ``status`` is not accepted, or None.

    Absent (or empty) codes accept any 2xx. Reason: ``responseCodes 200, 201: got 503``.
    """
    codes = response_codes or DEFAULT_CODES
    if any(status_matches(code, status) for code in codes):
        return None
    return f"responseCodes {', '.join(codes)}: got {status}"
