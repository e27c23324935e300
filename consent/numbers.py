"""NHS number validation at bulk speed, exactly as phm_portal.lib.nhs_number.normalise.

The register and the imports validate 100,000 numbers a call; the shared normaliser
takes about 10 µs a number. Ten plain digits, by far the common case, are checked here
with the Modulus 11 sum unrolled; anything else goes to the shared normaliser, which
also words the error.
"""

from __future__ import annotations

from phm_portal.lib.nhs_number import normalise

# 48 is ord("0"); the weights 10..2 add up to 54.
_OFFSET = 48 * 54


def normalise_fast(value: str) -> str:
    """Return the NHS number as 10 digits, or raise InvalidNHSNumber (see normalise)."""
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
