"""One table of inputs: the scalar, bulk and vectorised NHS number checks give its answers.

The rule (phm_portal.lib.nhs_number): spaces and dashes are ignored wherever they are,
tabs before and after the number too, nothing else; ten ASCII digits with the right
Modulus 11 check digit remain.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pytest

from phm_portal.lib import nhs_number

# (input, the NHS number it is, or None where it is not one)
TABLE = [
    ("9434765919", "9434765919"),  # valid
    ("4010232137", "4010232137"),
    ("0000000000", "0000000000"),  # weighs to 0: check digit 0
    ("9434765918", None),  # wrong check digit
    ("1234567890", None),  # 123456789 weighs to a check digit of 10: none is possible
    ("943 476 5919", "9434765919"),  # spaced
    ("9 4 3 4 7 6 5 9 1 9", "9434765919"),
    ("943-476-5919", "9434765919"),  # dashed
    ("943--476--5919", "9434765919"),
    (" 9434765919 ", "9434765919"),  # padded with spaces
    ("  943 476 5919", "9434765919"),
    ("\t9434765919", "9434765919"),  # padded with tabs
    ("9434765919\t", "9434765919"),
    ("\t 943-476-5919 \t", "9434765919"),
    ("94347\t65919", None),  # a tab inside
    ("\n9434765919", None),  # other whitespace is not ignored
    ("9434765919\r", None),
    ("\xa09434765919", None),  # no-break space
    ("943476591", None),  # wrong length
    ("94347659190", None),
    ("9434765919 1", None),
    ("94347A5919", None),  # letters
    ("abcdefghij", None),
    ("+9434765919", None),
    ("٩٤٣٤٧٦٥٩١٩", None),  # digits, but not ASCII
    ("９４３４７６５９１９", None),  # fullwidth digits
    ("", None),  # empty
    ("   ", None),
    ("\t", None),
    ("----------", None),
]
INPUTS = [value for value, _ in TABLE]
EXPECTED = [answer for _, answer in TABLE]


def scalar(value: str) -> str | None:
    try:
        answer = nhs_number.normalise(value)
    except nhs_number.InvalidNHSNumber:
        answer = None
    assert nhs_number.is_valid(value) == (answer is not None)
    return answer


def vectorised(column: pa.Array | pa.ChunkedArray) -> list[str | None]:
    return [f"{i:010d}" if i >= 0 else None for i in nhs_number.ids(column).tolist()]


@pytest.mark.parametrize(("value", "expected"), TABLE, ids=[repr(v) for v in INPUTS])
def test_the_scalar_check_gives_the_tables_answer(value, expected):
    assert scalar(value) == expected


def test_the_bulk_check_gives_the_tables_answers():
    answers = nhs_number.normalise_many(INPUTS)
    assert [a if isinstance(a, str) else None for a in answers] == EXPECTED


def test_the_bulk_check_words_each_refusal_as_the_scalar_check_does():
    for value, answer in zip(INPUTS, nhs_number.normalise_many(INPUTS), strict=True):
        if isinstance(answer, nhs_number.InvalidNHSNumber):
            with pytest.raises(nhs_number.InvalidNHSNumber, match=re.escape(str(answer))):
                nhs_number.normalise(value)


def test_the_vectorised_check_gives_the_tables_answers_over_a_column():
    assert vectorised(pa.array(INPUTS)) == EXPECTED
    assert vectorised(pa.chunked_array([INPUTS[:7], INPUTS[7:]])) == EXPECTED
    assert vectorised(pa.array(INPUTS).slice(3)) == EXPECTED[3:]


@pytest.mark.parametrize(("value", "expected"), TABLE, ids=[repr(v) for v in INPUTS])
def test_the_vectorised_check_gives_the_tables_answer_row_by_row(value, expected):
    """A column of one row: those of ten bytes take the plain-digits path."""
    assert vectorised(pa.array([value])) == [expected]
    assert vectorised(pa.array([value] * 3)) == [expected] * 3


def test_numbers_as_integers_come_back_as_their_ten_digits_leading_zeros_too():
    ids = nhs_number.ids(pa.array([*INPUTS, "0123456789"]))
    texts = [t.decode() for t in nhs_number.texts(ids[ids >= 0])]
    assert texts == [e for e in EXPECTED if e is not None] + ["0123456789"]


def test_texts_refuses_what_is_not_a_number_as_ids_gives_it():
    # -1 is how ids marks an invalid number: it must not come back as "9999999999".
    for values in ([-1], [10**10], [9434765919, -1]):
        with pytest.raises(ValueError):
            nhs_number.texts(np.array(values, dtype=np.int64))
    assert nhs_number.texts(np.array([], dtype=np.int64)).tolist() == []
