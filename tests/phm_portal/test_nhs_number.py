import random

import pytest

from phm_portal.lib import nhs_number
from phm_portal.lib.nhs_number import InvalidNHSNumber


@pytest.mark.parametrize("value", ["9434765919", "943 476 5919", " 943-476-5919 "])
def test_valid_numbers_normalise_to_ten_digits(value):
    assert nhs_number.normalise(value) == "9434765919"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("9434765918", "check digit"),
        ("943476591", "10 digits, not 9"),
        ("94347659190", "10 digits, not 11"),
        ("94347A5919", "only digits"),
        ("", "empty"),
        ("١٢٣٤٥٦٧٨٩٠", "only digits"),  # non-ASCII digits are not NHS numbers
    ],
)
def test_invalid_numbers_are_refused_with_the_reason(value, reason):
    with pytest.raises(InvalidNHSNumber, match=reason):
        nhs_number.normalise(value)


def test_a_number_whose_check_digit_would_be_ten_is_invalid():
    # 999000008 weighs to a remainder of 1, so no check digit exists.
    first_nine = next(
        f"99900{i:04d}" for i in range(10000) if nhs_number.check_digit(f"99900{i:04d}") is None
    )
    for last in "0123456789":
        assert not nhs_number.is_valid(first_nine + last)


def test_synthetic_numbers_are_valid_and_in_the_test_range():
    rng = random.Random(7)
    numbers = {nhs_number.synthetic(rng) for _ in range(200)}
    assert all(n.startswith("999") and nhs_number.is_valid(n) for n in numbers)
    assert len(numbers) > 190
