"""NHS numbers: normalise and validate with the Modulus 11 check digit; the one rule.

One rule, three shapes, tested to agree on one table of inputs
(tests/phm_portal/test_nhs_number_shapes.py):
- scalar: `normalise` (the 10 digits, or InvalidNHSNumber saying what is wrong) and
  `is_valid`, for a form or a line of a file;
- bulk: `normalise_many` over a list of strings (`normalise_fast` is its step: ten plain
  digits are checked with the sum unrolled, anything else goes to `normalise`), for the
  register and the imports, 100,000 numbers a call;
- vectorised: `ids` over an Arrow column of a pseudonymisation job (numpy), each row's
  number as an integer or -1.

What is read as a number: every space and every dash is ignored, wherever it is
("943 476 5919", "943-476-5919", " 9434765919 "), and so are tabs before and after the
number; nothing else is (a tab inside it, a newline, a no-break space, letters). What
remains must be exactly ten ASCII digits whose Modulus 11 check digit is right.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from phm_portal.lib.arrow_strings import fixed_width, string_buffers


class InvalidNHSNumber(ValueError):
    """The value is not a valid NHS number; the message says why."""


# --- scalar ---------------------------------------------------------------------------
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
    digits = value.replace(" ", "").replace("-", "").strip("\t") if not value.isdigit() else value
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


# --- bulk -----------------------------------------------------------------------------
# 48 is ord("0"); the weights 10..2 add up to 54.
_OFFSET = 48 * 54


def normalise_fast(value: str) -> str:
    """Return the NHS number as 10 digits, or raise InvalidNHSNumber (as normalise).

    `normalise` takes about 10 µs a number; ten plain digits, by far the common case, are
    checked here with the sum unrolled, anything else goes to `normalise`.
    """
    if type(value) is str and len(value) == 10 and value.isdigit() and value.isascii():
        b = value.encode("ascii")
        total = (
            10 * b[0] + 9 * b[1] + 8 * b[2] + 7 * b[3] + 6 * b[4] + 5 * b[5] + 4 * b[6]
            + 3 * b[7] + 2 * b[8] - _OFFSET
        )  # fmt: skip
        digit = 11 - total % 11
        if digit == 11:
            digit = 0
        if digit != 10 and digit == b[9] - 48:
            return value
    return normalise(value)


def normalise_many(values: Iterable[str]) -> list[str | InvalidNHSNumber]:
    """Return each value as 10 digits, or the InvalidNHSNumber saying what is wrong with it."""
    out: list[str | InvalidNHSNumber] = []
    append = out.append
    for value in values:
        try:
            append(normalise_fast(value))
        except InvalidNHSNumber as exc:
            append(exc)
    return out


# --- vectorised -----------------------------------------------------------------------
_WEIGHTS = np.array([10, 9, 8, 7, 6, 5, 4, 3, 2], dtype=np.float64)
# The place value of each of the ten digits: number -> digits and back.
POWERS = 10 ** np.arange(9, -1, -1, dtype=np.int64)
_POWER_FLOATS = POWERS.astype(np.float64)


def ids(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Return each row's NHS number as an integer, or -1 where it is not a valid one.

    Plain 10-digit columns are read as they are; any other is first normalised as
    `normalise` does. The Modulus 11 check is vectorised.
    """
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    out = np.full(len(array), -1, dtype=np.int64)
    matrix = fixed_width(array, 10)
    rows = None
    if matrix is None:  # not all plain 10-digit strings: normalise, then take those of 10
        array = pc.utf8_trim(pc.replace_substring_regex(array, r"[ -]", ""), "\t")
        offsets, data = string_buffers(array)
        rows = np.flatnonzero(np.diff(offsets) == 10)
        matrix = data[offsets[rows][:, None] + np.arange(10)]
    digits = matrix - np.uint8(48)  # a byte below "0" wraps past 9
    # Products, sums and the remainder in floating point (BLAS): exact, as every value is
    # an integer below 2**53.
    floats = digits.astype(np.float64)
    total = floats[:, :9] @ _WEIGHTS
    check = 11 - (total - 11 * np.floor(total / 11))
    check[check == 11] = 0
    valid = check == floats[:, 9]  # a check digit of 10 is no digit: never valid
    if digits.max(initial=0) > 9:  # some byte is not a digit: find its rows
        valid &= (digits <= 9).all(axis=1)
    values = np.where(valid, (floats @ _POWER_FLOATS).astype(np.int64), -1)
    if rows is None:
        out = values
    else:
        out[rows] = values
    return out


# The four digits of each number below 10,000, leading zeros kept.
_FOUR_DIGITS = np.frombuffer(b"".join(b"%04d" % i for i in range(10_000)), np.uint8).reshape(
    10_000, 4
)


def texts(values: np.ndarray) -> np.ndarray:
    """Return NHS numbers given as integers (as `ids` returns them) as 10-digit bytes,
    leading zeros kept (three look-ups of four digits a number, not a text conversion)."""
    values = np.asarray(values, dtype=np.int64)
    if len(values) and (values.min() < 0 or values.max() >= 10**10):
        raise ValueError("texts: an NHS number as an integer is from 0 to 9,999,999,999")
    out = np.empty((len(values), 10), dtype=np.uint8)
    high, low = np.divmod(values, 10_000)
    high, middle = np.divmod(high, 10_000)
    out[:, 0:2] = _FOUR_DIGITS[high, 2:]
    out[:, 2:6] = _FOUR_DIGITS[middle]
    out[:, 6:10] = _FOUR_DIGITS[low]
    return out.reshape(-1).view("S10")


def synthetic(rng: random.Random) -> str:
    """Return a valid NHS number in the 999 test range (never issued to a patient)."""
    while True:
        first_nine = "999" + "".join(str(rng.randrange(10)) for _ in range(6))
        digit = check_digit(first_nine)
        if digit is not None:
            return first_nine + str(digit)
