import random

import pytest

from phm_portal.lib.nhs_number import InvalidNHSNumber, normalise, normalise_fast


def outcome(fn, value):
    try:
        return fn(value)
    except InvalidNHSNumber as exc:
        return ("invalid", str(exc))


def test_the_fast_path_agrees_with_the_shared_normaliser_on_every_kind_of_input():
    rng = random.Random(4)
    values = [f"{rng.randrange(10**10):010d}" for _ in range(20_000)]
    values += [
        "943 476 5919",
        "943-476-5919",
        "",
        "12345",
        "94347659190",
        "٩٤٣٤٧٦٥٩١٩",
        "abcdefghij",
    ]
    for value in values:
        assert outcome(normalise_fast, value) == outcome(normalise, value), value


@pytest.mark.parametrize("value", [None, 9434765919])
def test_a_value_that_is_not_text_is_refused(value):
    with pytest.raises(InvalidNHSNumber):
        normalise_fast(value)
