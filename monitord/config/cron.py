"""Cron expressions in two dialects, evaluated in a time zone with defined DST rules.

* 5 fields: standard Unix cron ``min hour dom mon dow`` (day of week 0-7, 0 and 7
  are Sunday).
* 6 or 7 fields: Quartz, as in ``"7 * * * * ? *"``: ``sec min hour dom mon dow
  [year]``, ``?`` for "no value", day of week 1-7 = SUN-SAT (or names), ``L``,
  ``W``, ``#`` and ``nL`` where croniter can express them.

croniter reads a 6-field expression with seconds *last* unless told otherwise and
numbers weekdays from 0 = Sunday, so Quartz expressions are translated, never
passed through.

Fire times are computed on the wall clock of the zone and converted to UTC:
a wall time that does not exist (spring forward) fires once at the first instant
after the gap; a wall time that occurs twice (fall back) fires once, at its first
occurrence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, CroniterError, croniter


class CronError(ValueError):
    pass


_QUARTZ_DOW_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_QUARTZ_FIELD_NAMES = ("second", "minute", "hour", "day-of-month", "month", "day-of-week", "year")
_QUARTZ_RANGES = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (1, 7), (1970, 2099))
_MAX_SCAN = 100_000  # bound on candidate wall times examined for one next fire


def _translate_step_start(token: str, low_high: tuple[int, int]) -> str:
    """Quartz ``a/b`` means "from a every b"; croniter wants ``a-max/b``."""
    start, slash, step = token.partition("/")
    if not slash or start in ("*", "?") or "-" in start:
        return token.replace("?", "*")
    return f"{start}-{low_high[1]}/{step}"


def _translate_dow_number(text: str) -> str:
    if not text.isdigit():
        return text  # a name such as MON; croniter accepts names
    value = int(text)
    if not 1 <= value <= 7:
        raise CronError(f"day-of-week {value} is out of range 1-7 (1 = SUN)")
    return str(value - 1)


def _translate_dow(field_text: str) -> str:
    if field_text == "?":
        return "*"
    parts = []
    for part in field_text.split(","):
        upper = part.upper()
        last = re.fullmatch(r"([0-9]+|[A-Z]{3})L", upper)
        nth = re.fullmatch(r"([0-9]+|[A-Z]{3})#([1-5])", upper)
        if last:
            day = last.group(1)
            number = _translate_dow_number(day) if day.isdigit() else str(_dow_index(day))
            parts.append(f"L{number}")
        elif nth:
            parts.append(f"{_translate_dow_number(nth.group(1))}#{nth.group(2)}")
        else:
            step = ""
            if "/" in upper:
                upper, _, step_value = upper.partition("/")
                step = f"/{step_value}"
                if upper not in ("*", "?") and "-" not in upper:
                    upper = f"{upper}-7"
            if upper in ("*", "?"):
                parts.append("*" + step)
                continue
            bounds = upper.split("-")
            if len(bounds) > 2:
                raise CronError(f"day-of-week {part!r} is not a valid range")
            parts.append("-".join(_translate_dow_number(b) for b in bounds) + step)
    return ",".join(parts)


def _dow_index(name: str) -> int:
    if name not in _QUARTZ_DOW_NAMES:
        raise CronError(f"unknown day-of-week name {name!r}")
    return _QUARTZ_DOW_NAMES.index(name)


def to_croniter(expression: str) -> tuple[str, bool]:
    """Translate to croniter's syntax: ``(expression, second_at_beginning)``."""
    fields = expression.split()
    if len(fields) == 5:
        if "?" in expression:
            raise CronError("'?' is Quartz syntax: use 6 or 7 fields with seconds first")
        return " ".join(fields), False
    if len(fields) not in (6, 7):
        raise CronError(
            f"expected 5 fields (Unix) or 6-7 fields (Quartz, seconds first), got {len(fields)}"
        )
    dom, dow = fields[3], fields[5]
    if dom not in ("?", "*") and dow not in ("?", "*"):
        raise CronError("Quartz cron: use '?' in day-of-month or day-of-week")
    translated = []
    for index, text in enumerate(fields):
        if index == 5:
            translated.append(_translate_dow(text))
            continue
        if "?" in text and index != 3:
            raise CronError(
                "'?' is only allowed in day-of-month and day-of-week,"
                f" not in {_QUARTZ_FIELD_NAMES[index]}"
            )
        parts = [_translate_step_start(p, _QUARTZ_RANGES[index]) for p in text.split(",")]
        translated.append(",".join(parts).replace("?", "*"))
    return " ".join(translated), True


@dataclass(frozen=True, slots=True)
class Cron:
    """A validated cron expression in a time zone. Satisfies ``model.CronSchedule``."""

    expression: str
    timezone: str
    _croniter_expression: str = field(repr=False, compare=False)
    _seconds_first: bool = field(repr=False, compare=False)

    def _iterator(self, start: datetime) -> croniter:
        return croniter(
            self._croniter_expression,
            start,
            ret_type=datetime,
            second_at_beginning=self._seconds_first,
        )

    def next_after(self, after: datetime) -> datetime:
        """The first fire strictly after ``after`` (aware), returned in UTC."""
        if after.tzinfo is None:
            raise ValueError("next_after needs an aware datetime")
        zone = ZoneInfo(self.timezone)
        after_utc = after.astimezone(UTC)
        # Candidates are wall times after the wall time of `after`; in a repeated
        # hour some of them map to instants before `after` and are skipped.
        wall_start = after_utc.astimezone(zone).replace(tzinfo=None, fold=0)
        iterator = self._iterator(wall_start)
        for _ in range(_MAX_SCAN):
            try:
                wall: datetime = iterator.get_next(datetime)
            except CroniterBadDateError:
                raise CronError("never fires") from None
            instant = wall_to_utc(wall, zone)
            if instant > after_utc:
                return instant
        raise CronError("no fire time found within the scan bound")


def wall_to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    """A naive wall time in ``zone`` as a UTC instant, with the DST rules above."""
    first = wall.replace(tzinfo=zone, fold=0)
    utc = first.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) == wall:
        return utc  # exists; fold=0 is the first of two occurrences
    # Inside a gap: fire at the first instant after it, where the offset changes.
    low = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)  # before the transition
    high = utc  # after the transition
    if low > high:
        low, high = high, low
    target_offset = high.astimezone(zone).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == target_offset:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


_HASH_TOKEN = re.compile(r"(?<![A-Za-z])[HhRr](?![A-Za-z])")


def parse_cron(expression: str, timezone: str, now: datetime | None = None) -> Cron:
    """Validate ``expression`` (either dialect) by computing its next fire.

    Raises ``CronError`` with an operator-friendly message.
    """
    text = " ".join(expression.split())
    if not text:
        raise CronError("empty cron expression")
    if _HASH_TOKEN.search(text):
        raise CronError("hashed (H) and random (R) fields are not supported")
    translated, seconds_first = to_croniter(text)
    try:
        croniter(translated, second_at_beginning=seconds_first)
    except (CroniterError, ValueError, KeyError, IndexError) as exc:
        # croniter quotes its own (translated, reordered) form; show the operator's.
        detail = re.sub(r"\[[^\]]*\]", f"[{text}]", str(exc)) or type(exc).__name__
        raise CronError(detail) from None
    cron = Cron(text, timezone, translated, seconds_first)
    try:
        cron.next_after(now or datetime.now(UTC))
    except (CroniterError, ValueError, KeyError, IndexError) as exc:
        raise CronError(str(exc) or "never fires") from None
    return cron
