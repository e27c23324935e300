"""Column transforms of a block: dates and postcodes generalised, formulas neutralised."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from phm_portal.lib import csv_safe
from phm_portal.lib.arrow_strings import fixed_width, string_buffers

_POSTCODE = r"^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$"
# What a spreadsheet could run as a formula: the one rule of phm_portal.lib.csv_safe.
_FORMULA_CHARS = pa.array(list(csv_safe.FORMULA_FIRST_CHARS))
_NUMBER = csv_safe.PLAIN_NUMBER


def _generalise_date(
    column: pa.ChunkedArray, rule: str, reference_date: dt.date
) -> tuple[pa.Array, np.ndarray]:
    """Generalise a column of dates: ISO dates at numpy speed, any other shape by arrow."""
    array = column.combine_chunks()
    fast = _generalise_iso_dates(array, rule, reference_date)
    if fast is not None:
        return fast
    encoded = pc.dictionary_encode(array)
    values, bad = _generalise_dates(encoded.dictionary, rule, reference_date)
    indices = encoded.indices
    return pc.take(values, indices), bad[indices.to_numpy(zero_copy_only=False)]


def _generalise_iso_dates(
    array: pa.Array, rule: str, reference_date: dt.date
) -> tuple[pa.Array, np.ndarray] | None:
    """Generalise a column whose values are all YYYY-MM-DD, or return None."""
    matrix = fixed_width(array, 10)
    if matrix is None or not ((matrix[:, 4] == 45) & (matrix[:, 7] == 45)).all():
        return None
    digits = matrix[:, [0, 1, 2, 3, 5, 6, 8, 9]] - np.uint8(48)  # a non-digit wraps past 9
    if (digits > 9).any():
        return None
    digits = digits.astype(np.int16)  # years, days of the year and ages all fit in 16 bits
    year = digits[:, 0] * 1000 + digits[:, 1] * 100 + digits[:, 2] * 10 + digits[:, 3]
    month = digits[:, 4] * 10 + digits[:, 5]
    day = digits[:, 6] * 10 + digits[:, 7]
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = _MONTH_DAYS[np.clip(month, 0, 12)] + ((month == 2) & leap)
    bad = (year < 1) | (month < 1) | (month > 12) | (day < 1) | (day > month_days)
    if rule == "year":
        labels = pc.cast(pa.array(year), pa.string())
    else:
        ref = reference_date
        later = (month * 100 + day) > (ref.month * 100 + ref.day)
        age = ref.year - year - later
        bad |= age < 0
        labels = pc.take(_AGE_BANDS, pa.array(np.clip(age // 5, 0, 18)))
    if bad.any():
        labels = pc.if_else(pa.array(bad), "", labels)
    return labels, bad


def _generalise_dates(
    column: pa.Array, rule: str, reference_date: dt.date
) -> tuple[pa.Array, np.ndarray]:
    text = pc.utf8_trim_whitespace(column)
    parsed = pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True)
    uk = pc.strptime(text, format="%d/%m/%Y", unit="s", error_is_null=True)
    parsed = pc.coalesce(parsed, uk)
    empty = pc.equal(text, "")
    bad = pc.and_(pc.is_null(parsed), pc.invert(empty))
    year = pc.year(parsed)
    if rule == "year":
        values = pc.cast(year, pa.string())
    else:
        ref = reference_date
        month_day = pc.add(pc.multiply(pc.month(parsed), 100), pc.day(parsed))
        later = pc.cast(pc.greater(month_day, ref.month * 100 + ref.day), pa.int64())
        age = pc.subtract(pc.subtract(ref.year, year), later)
        bad = pc.or_(bad, pc.fill_null(pc.less(age, 0), False))
        low = pc.multiply(pc.divide(age, 5), 5)
        band = pc.binary_join_element_wise(
            pc.cast(low, pa.string()), pc.cast(pc.add(low, 4), pa.string()), "-"
        )
        values = pc.if_else(pc.greater_equal(age, 90), "90+", band)
    values = pc.fill_null(values, "")
    return values, bad.to_numpy(zero_copy_only=False).astype(bool)


def _district(column: pa.ChunkedArray) -> pa.Array:
    encoded = pc.dictionary_encode(column).combine_chunks()
    compact = pc.utf8_upper(pc.replace_substring(encoded.dictionary, " ", ""))
    valid = pc.match_substring_regex(compact, _POSTCODE)
    districts = pc.if_else(valid, pc.utf8_slice_codeunits(compact, 0, -3), "")
    return pc.take(districts, encoded.indices)


_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_AGE_BANDS = pa.array([f"{low}-{low + 4}" for low in range(0, 90, 5)] + ["90+"])
_RISKY_FIRST_BYTE = np.zeros(256, dtype=bool)  # by byte: may a formula start with it?
_RISKY_FIRST_BYTE[[ord(c) for c in csv_safe.FORMULA_FIRST_CHARS]] = True


def _neutralise(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Prefix cells a spreadsheet would run as a formula with an apostrophe (numbers stay).

    The vectorised shape of csv_safe.neutralise (tested to agree with it).
    """
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    offsets, data = string_buffers(array)
    starts = offsets[:-1][np.diff(offsets) > 0]
    if not _RISKY_FIRST_BYTE[data[starts]].any():
        return array
    first = pc.utf8_slice_codeunits(array, 0, 1)
    starts_risky = pc.is_in(first, value_set=_FORMULA_CHARS)
    risky = pc.and_(starts_risky, pc.invert(pc.match_substring_regex(array, _NUMBER)))
    return pc.if_else(risky, pc.binary_join_element_wise("'", array, ""), array)
