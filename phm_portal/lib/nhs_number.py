"""NHS numbers: normalise and validate with the Modulus 11 check digit."""

from __future__ import annotations

import random


class InvalidNHSNumber(ValueError):
    """The value is not a valid NHS number; the message says why."""


def check_digit(first_nine: str) -> int | None:
    """Return the Modulus 11 check digit of nine digits, or None where none is possible."""
    d = first_nine.encode("ascii")
    # Unrolled: this runs for every NHS number of every extract and import.
    total = (
        (d[0] - 48) * 10
        + (d[1] - 48) * 9
        + (d[2] - 48) * 8
        + (d[3] - 48) * 7
        + (d[4] - 48) * 6
        + (d[5] - 48) * 5
        + (d[6] - 48) * 4
        + (d[7] - 48) * 3
        + (d[8] - 48) * 2
    )
    digit = 11 - (total % 11)
    if digit == 11:
        return 0
    if digit == 10:
        return None
    return digit


def normalise(value: str) -> str:
    """Return the NHS number as 10 digits, or raise InvalidNHSNumber saying what is wrong."""
    if not isinstance(value, str):
        raise InvalidNHSNumber("An NHS number must be given as text.")
    digits = value.replace(" ", "").replace("-", "").strip() if not value.isdigit() else value
    if not digits:
        raise InvalidNHSNumber("The NHS number is empty.")
    if not digits.isascii() or not digits.isdigit():
        raise InvalidNHSNumber("An NHS number has only digits (spaces are allowed).")
    if len(digits) != 10:
        raise InvalidNHSNumber(f"An NHS number has 10 digits, not {len(digits)}.")
    expected = check_digit(digits[:9])
    if expected is None or expected != int(digits[9]):
        raise InvalidNHSNumber("The NHS number's check digit is wrong (Modulus 11).")
    return digits


def is_valid(value: str) -> bool:
    """Return whether the value is a valid NHS number."""
    try:
        normalise(value)
    except InvalidNHSNumber:
        return False
    return True


def synthetic(rng: random.Random) -> str:
    """Return a valid NHS number in the 999 test range (never issued to a patient)."""
    while True:
        first_nine = "999" + "".join(str(rng.randrange(10)) for _ in range(6))
        digit = check_digit(first_nine)
        if digit is not None:
            return first_nine + str(digit)
