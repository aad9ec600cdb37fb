"""Byte checks (``responseValidation``) and the length check (``lengthValidation``)."""

from __future__ import annotations

import pytest

from monitord.checks import check_byte, check_bytes, check_length
from monitord.model import ByteCheck, Endian, IntType, LengthCheck

BIG = Endian.BIG
LITTLE = Endian.LITTLE


@pytest.mark.parametrize(
    ("check", "data", "reason"),
    [
        (ByteCheck(0, b"Hello"), b"Hello World", None),
        (ByteCheck(6, b"World"), b"Hello World", None),  # ends exactly at the last byte
        (ByteCheck(6, b"World"), b"Hello World and more", None),
        (ByteCheck(0, b""), b"", None),
        (
            ByteCheck(6, b"World"),
            b"Hello Worl",  # one byte short
            "responseValidation[0] at 6: response has 10 bytes, check needs 11",
        ),
        (
            ByteCheck(0, b"Hello"),
            b"",
            "responseValidation[0] at 0: response has 0 bytes, check needs 5",
        ),
        (
            ByteCheck(3, b"x"),
            b"abc",
            "responseValidation[0] at 3: response has 3 bytes, check needs 4",
        ),
        (
            ByteCheck(0, b"Hello"),
            b"Hellp World",
            'responseValidation[0] at 0: expected "Hello", got "Hellp"',
        ),
        (
            ByteCheck(13, b"It's new world!"),
            b"Hello World! It's old world!",
            'responseValidation[0] at 13: expected "It\'s new world!", got "It\'s old world!"',
        ),
        (ByteCheck(0, b"A\n"), b"B\n", 'responseValidation[0] at 0: expected "A\\n", got "B\\n"'),
        (
            ByteCheck(0, b'"q"'),
            b'"r"',
            'responseValidation[0] at 0: expected "\\"q\\"", got "\\"r\\""',
        ),
        (
            ByteCheck(0, "é".encode()),
            "è".encode(),
            'responseValidation[0] at 0: expected "é", got "è"',
        ),
        # written as hex: shown as hex even when printable
        (
            ByteCheck(0, b"\x01\x02", is_hex=True),
            b"\x01\x03",
            "responseValidation[0] at 0: expected hex 0102, got hex 0103",
        ),
        (
            ByteCheck(0, b"AB", is_hex=True),
            b"AC",
            "responseValidation[0] at 0: expected hex 4142, got hex 4143",
        ),
        (ByteCheck(1, b"\xab", is_hex=True), b"\x00\xab", None),
        # either side not printable UTF-8: hex
        (
            ByteCheck(0, b"AB"),
            b"\xff\xfe",
            "responseValidation[0] at 0: expected hex 4142, got hex fffe",
        ),
        (
            ByteCheck(0, b"A\x00"),
            b"B\x00",
            "responseValidation[0] at 0: expected hex 4100, got hex 4200",
        ),
        (ByteCheck(0, b"\xc3"), b"\xc4", "responseValidation[0] at 0: expected hex c3, got hex c4"),
    ],
)
def test_byte_check(check: ByteCheck, data: bytes, reason: str | None) -> None:
    assert check_byte(0, check, data) == reason


def test_every_byte_check_is_reported_with_its_index() -> None:
    checks = (
        ByteCheck(0, b"Hello"),
        ByteCheck(0, b"Howdy"),
        ByteCheck(6, b"World"),
        ByteCheck(6, b"Earth"),
        ByteCheck(20, b"!"),
    )
    assert check_bytes(checks, b"Hello World") == [
        'responseValidation[1] at 0: expected "Howdy", got "Hello"',
        'responseValidation[3] at 6: expected "Earth", got "World"',
        "responseValidation[4] at 20: response has 11 bytes, check needs 21",
    ]


def test_long_mismatches_are_cut() -> None:
    reason = check_byte(0, ByteCheck(0, b"a" * 300), b"b" * 300)
    assert reason == (
        'responseValidation[0] at 0: expected "' + "a" * 118 + '…, got "' + "b" * 118 + "…"
    )
    hex_reason = check_byte(0, ByteCheck(0, b"\x01" * 300, is_hex=True), b"\x02" * 300)
    assert hex_reason == (
        "responseValidation[0] at 0: expected hex " + "01" * 59 + "0…, got hex " + "02" * 59 + "0…"
    )


SPEC_HEADER = bytes.fromhex("AB010000000A")  # the INT at byte 2 is 10


@pytest.mark.parametrize(
    ("check", "data", "reason"),
    [
        # the SPEC §5 example: 10 + 6 = 16 bytes
        (LengthCheck(BIG, 2, IntType.INT, 6), SPEC_HEADER + b"x" * 10, None),
        (
            LengthCheck(BIG, 2, IntType.INT, 6),
            SPEC_HEADER + b"x" * 9,
            "lengthValidation INT at 2: length field 10 + BASE 6 = 16 bytes, got 15",
        ),
        (
            LengthCheck(BIG, 2, IntType.INT, 6),
            SPEC_HEADER + b"x" * 11,
            "lengthValidation INT at 2: length field 10 + BASE 6 = 16 bytes, got 17",
        ),
        (
            LengthCheck(BIG, 2, IntType.INT, 6),
            SPEC_HEADER[:5],
            "lengthValidation INT at 2: response has 5 bytes, check needs 6",
        ),
        (
            LengthCheck(BIG, 2, IntType.INT, 6),
            b"",
            "lengthValidation INT at 2: response has 0 bytes, check needs 6",
        ),
        # the same bytes read little-endian
        (
            LengthCheck(LITTLE, 2, IntType.INT, 6),
            SPEC_HEADER + b"x" * 10,
            "lengthValidation INT at 2: length field 167772160 + BASE 6 = 167772166 bytes, got 16",
        ),
        (LengthCheck(LITTLE, 2, IntType.INT, 6), bytes.fromhex("AB010A000000") + b"x" * 10, None),
        # BYTE: unsigned, BASE counts the bytes the field does not cover
        (LengthCheck(BIG, 0, IntType.BYTE, 1), b"\x03abc", None),
        (LengthCheck(BIG, 0, IntType.BYTE, 0), b"\x03ab", None),  # BASE 0
        (
            LengthCheck(BIG, 0, IntType.BYTE, 0),
            b"\x03abc",
            "lengthValidation BYTE at 0: length field 3 + BASE 0 = 3 bytes, got 4",
        ),
        (LengthCheck(BIG, 0, IntType.BYTE, 1), b"\xff" + b"x" * 255, None),
        (LengthCheck(LITTLE, 4, IntType.BYTE, 0), b"abcd\x05", None),  # field is the last byte
        (
            LengthCheck(BIG, 5, IntType.BYTE, 0),
            b"abcd\x05",
            "lengthValidation BYTE at 5: response has 5 bytes, check needs 6",
        ),
        # SHORT: both bytes count
        (LengthCheck(BIG, 0, IntType.SHORT, 2), b"\x01\x02" + b"x" * 258, None),
        (
            LengthCheck(LITTLE, 0, IntType.SHORT, 2),
            b"\x01\x02" + b"x" * 258,
            "lengthValidation SHORT at 0: length field 513 + BASE 2 = 515 bytes, got 260",
        ),
        (
            LengthCheck(BIG, 0, IntType.SHORT, 2),
            b"\x01",
            "lengthValidation SHORT at 0: response has 1 bytes, check needs 2",
        ),
        # INT: all four bytes
        (
            LengthCheck(BIG, 0, IntType.INT, 0),
            b"\x01\x02\x03\x04",
            "lengthValidation INT at 0: length field 16909060 + BASE 0 = 16909060 bytes, got 4",
        ),
        (
            LengthCheck(LITTLE, 0, IntType.INT, 0),
            b"\x01\x02\x03\x04",
            "lengthValidation INT at 0: length field 67305985 + BASE 0 = 67305985 bytes, got 4",
        ),
        (
            LengthCheck(BIG, 0, IntType.INT, 0),
            b"\x00\x00\x00",
            "lengthValidation INT at 0: response has 3 bytes, check needs 4",
        ),
        # LONG: all eight bytes, values past 2**32, unsigned
        (
            LengthCheck(BIG, 0, IntType.LONG, 0),
            (2**40 + 5).to_bytes(8, "big"),
            "lengthValidation LONG at 0: length field 1099511627781 + BASE 0 = "
            "1099511627781 bytes, got 8",
        ),
        (
            LengthCheck(LITTLE, 0, IntType.LONG, 0),
            (2**40 + 5).to_bytes(8, "little"),
            "lengthValidation LONG at 0: length field 1099511627781 + BASE 0 = "
            "1099511627781 bytes, got 8",
        ),
        (
            LengthCheck(BIG, 0, IntType.LONG, 0),
            b"\xff" * 8,
            "lengthValidation LONG at 0: length field 18446744073709551615 + BASE 0 = "
            "18446744073709551615 bytes, got 8",
        ),
        (LengthCheck(LITTLE, 1, IntType.LONG, 9), b"h" + (3).to_bytes(8, "little") + b"abc", None),
        (
            LengthCheck(BIG, 1, IntType.LONG, 9),
            b"h" + b"\x00" * 7,
            "lengthValidation LONG at 1: response has 8 bytes, check needs 9",
        ),
    ],
)
def test_length_check(check: LengthCheck, data: bytes, reason: str | None) -> None:
    assert check_length(check, data) == reason
