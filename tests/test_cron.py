"""Cron dialects (Unix 5-field, Quartz 6/7-field) and DST behaviour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from monitord.config.cron import CronError, parse_cron, to_croniter

NOW = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)  # a Monday


def fires(expression: str, start: datetime, count: int, zone: str = "UTC") -> list[str]:
    cron = parse_cron(expression, zone, start)
    moment, out = start, []
    for _ in range(count):
        moment = cron.next_after(moment)
        out.append(moment.astimezone(ZoneInfo(zone)).strftime("%a %Y-%m-%d %H:%M:%S"))
    return out


@pytest.mark.parametrize(
    ("expression", "translated", "seconds_first"),
    [
        ("*/5 * * * *", "*/5 * * * *", False),
        ("0 9 * * 1-5", "0 9 * * 1-5", False),
        ("7 * * * * ? *", "7 * * * * * *", True),
        ("0 0 12 ? * 2-6", "0 0 12 * * 1-5", True),
        ("0 0 12 ? * 1", "0 0 12 * * 0", True),
        ("0 0 12 ? * 7", "0 0 12 * * 6", True),
        ("0 0 12 ? * MON-FRI", "0 0 12 * * MON-FRI", True),
        ("0 0 12 ? * 6L", "0 0 12 * * L5", True),
        ("0 0 12 ? * 6#3", "0 0 12 * * 5#3", True),
        ("0 0/15 * * * ?", "0 0-59/15 * * * *", True),
        ("0 0 12 ? * 2/2", "0 0 12 * * 1-6/2", True),
        ("0 0 12 L * ?", "0 0 12 L * *", True),
        ("0 0 12 * * ? 2027", "0 0 12 * * * 2027", True),
    ],
)
def test_translation_to_croniter(expression: str, translated: str, seconds_first: bool) -> None:
    assert to_croniter(expression) == (translated, seconds_first)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # Unix: minute hour dom month dow, 0 and 7 are Sunday.
        ("*/5 * * * *", ["Mon 2026-11-23 10:05:00", "Mon 2026-11-23 10:10:00"]),
        ("0 0 * * 0", ["Sun 2026-11-29 00:00:00", "Sun 2026-12-06 00:00:00"]),
        ("0 0 * * 7", ["Sun 2026-11-29 00:00:00", "Sun 2026-12-06 00:00:00"]),
        ("30 8 1 * *", ["Tue 2026-12-01 08:30:00", "Fri 2027-01-01 08:30:00"]),
        # Quartz: seconds first; the seed's own expression fires at second 7 of every minute.
        ("7 * * * * ? *", ["Mon 2026-11-23 10:00:07", "Mon 2026-11-23 10:01:07"]),
        ("9 * * * * ? *", ["Mon 2026-11-23 10:00:09", "Mon 2026-11-23 10:01:09"]),
        ("*/20 * * * * ?", ["Mon 2026-11-23 10:00:20", "Mon 2026-11-23 10:00:40"]),
        # Quartz day-of-week 1 = SUN ... 7 = SAT.
        ("0 0 0 ? * 1", ["Sun 2026-11-29 00:00:00", "Sun 2026-12-06 00:00:00"]),
        ("0 0 0 ? * 7", ["Sat 2026-11-28 00:00:00", "Sat 2026-12-05 00:00:00"]),
        ("0 0 0 ? * SAT", ["Sat 2026-11-28 00:00:00", "Sat 2026-12-05 00:00:00"]),
        ("0 0 12 ? * 2-6", ["Mon 2026-11-23 12:00:00", "Tue 2026-11-24 12:00:00"]),
        ("0 0 12 ? * 6L", ["Fri 2026-11-27 12:00:00", "Fri 2026-12-25 12:00:00"]),
        ("0 0 12 ? * 6#3", ["Fri 2026-12-18 12:00:00", "Fri 2027-01-15 12:00:00"]),
        ("0 0 12 L * ?", ["Mon 2026-11-30 12:00:00", "Thu 2026-12-31 12:00:00"]),
        ("0 0 12 * * ? 2027", ["Fri 2027-01-01 12:00:00", "Sat 2027-01-02 12:00:00"]),
        ("0 15 10 ? * MON-FRI", ["Mon 2026-11-23 10:15:00", "Tue 2026-11-24 10:15:00"]),
    ],
)
def test_fire_times(expression: str, expected: list[str]) -> None:
    assert fires(expression, NOW, len(expected)) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "empty cron expression"),
        ("* * *", "expected 5 fields (Unix) or 6-7 fields (Quartz, seconds first), got 3"),
        (
            "* * * * * * * *",
            "expected 5 fields (Unix) or 6-7 fields (Quartz, seconds first), got 8",
        ),
        ("61 * * * *", "[61 * * * *] is not acceptable, out of range"),
        ("0 0 31 2 *", "never fires"),
        ("0 0 12 * * ? 2020", "never fires"),
        ("0 0 12 ? * 0", "day-of-week 0 is out of range 1-7 (1 = SUN)"),
        ("0 0 12 ? * 8", "day-of-week 8 is out of range 1-7 (1 = SUN)"),
        ("0 0 12 5 * 3", "Quartz cron: use '?' in day-of-month or day-of-week"),
        ("0 ? 12 * * ?", "'?' is only allowed in day-of-month and day-of-week, not in minute"),
        ("0 0 ? * ?", "'?' is Quartz syntax: use 6 or 7 fields with seconds first"),
        ("H * * * *", "hashed (H) and random (R) fields are not supported"),
        ("a b c d e", "[a b c d e] is not acceptable"),
    ],
)
def test_invalid_expressions(expression: str, message: str) -> None:
    with pytest.raises(CronError) as caught:
        parse_cron(expression, "UTC", NOW)
    assert str(caught.value) == message


def test_next_after_is_strictly_after() -> None:
    cron = parse_cron("0 * * * *", "UTC", NOW)
    assert cron.next_after(NOW) == NOW + timedelta(hours=1)
    assert cron.next_after(NOW - timedelta(microseconds=1)) == NOW


def test_time_zone_is_applied() -> None:
    cron = parse_cron("0 9 * * *", "Asia/Seoul", NOW)
    assert cron.next_after(NOW) == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)  # 09:00 KST


# --- DST: Europe/Berlin springs forward 2026-03-29 02:00 -> 03:00 and falls back
# 2026-10-25 03:00 -> 02:00. A controlled clock: every fire is computed from the last.

BERLIN = "Europe/Berlin"


def berlin_fires(expression: str, start_utc: datetime, count: int) -> list[str]:
    cron = parse_cron(expression, BERLIN, start_utc)
    zone = ZoneInfo(BERLIN)
    moment, out = start_utc, []
    for _ in range(count):
        moment = cron.next_after(moment)
        out.append(f"{moment.astimezone(zone):%m-%d %H:%M%z}={moment:%H:%MZ}")
    return out


def test_spring_forward_missing_time_runs_once_at_next_valid_instant() -> None:
    assert berlin_fires("30 2 * * *", datetime(2026, 3, 28, 12, tzinfo=UTC), 3) == [
        "03-29 03:00+0200=01:00Z",
        "03-30 02:30+0200=00:30Z",
        "03-31 02:30+0200=00:30Z",
    ]


def test_spring_forward_frequent_schedule_fires_once_for_the_whole_gap() -> None:
    assert berlin_fires("*/20 * * * *", datetime(2026, 3, 29, 0, 30, tzinfo=UTC), 4) == [
        "03-29 01:40+0100=00:40Z",
        "03-29 03:00+0200=01:00Z",
        "03-29 03:20+0200=01:20Z",
        "03-29 03:40+0200=01:40Z",
    ]


def test_spring_forward_quartz_with_seconds() -> None:
    assert berlin_fires("0 30 2 ? * *", datetime(2026, 3, 28, 12, tzinfo=UTC), 2) == [
        "03-29 03:00+0200=01:00Z",
        "03-30 02:30+0200=00:30Z",
    ]


def test_fall_back_repeated_time_runs_once() -> None:
    assert berlin_fires("30 2 * * *", datetime(2026, 10, 24, 12, tzinfo=UTC), 3) == [
        "10-25 02:30+0200=00:30Z",
        "10-26 02:30+0100=01:30Z",
        "10-27 02:30+0100=01:30Z",
    ]


def test_fall_back_frequent_schedule_does_not_repeat_the_hour() -> None:
    assert berlin_fires("*/30 * * * *", datetime(2026, 10, 24, 23, 15, tzinfo=UTC), 5) == [
        "10-25 01:30+0200=23:30Z",
        "10-25 02:00+0200=00:00Z",
        "10-25 02:30+0200=00:30Z",
        "10-25 03:00+0100=02:00Z",
        "10-25 03:30+0100=02:30Z",
    ]


def test_fall_back_starting_inside_the_second_pass() -> None:
    # 01:10Z is 02:10 CET, the second 02:10 of the night; 02:30 already fired at 00:30Z.
    cron = parse_cron("30 2 * * *", BERLIN, NOW)
    assert cron.next_after(datetime(2026, 10, 25, 1, 10, tzinfo=UTC)) == datetime(
        2026, 10, 26, 1, 30, tzinfo=UTC
    )


def test_naive_datetime_is_refused() -> None:
    cron = parse_cron("* * * * *", "UTC", NOW)
    with pytest.raises(ValueError, match="aware"):
        cron.next_after(datetime(2026, 1, 1))
