"""The distinct NHS numbers of a job: their codes and their status in the opt-out register."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pyarrow as pa

from consent.reasons import REPORTED_AS, OptOutReason
from datasets.native._records import ffi as _ffi
from datasets.native._records import lib as _native
from datasets.pipeline.hashing import CODE_LENGTH, Hasher
from phm_portal.lib import nhs_number
from phm_portal.lib.arrow_strings import from_fixed_width

_EMPTY = np.uint64(2**64 - 1)  # an empty entry of the hash table

# Status of a distinct NHS number.
OK, INVALID, TYPE1, NATIONAL = 0, 1, 2, 3
# The status of a number left out for each of the register's reasons (a patient no
# unexpired national check covers counts as national); Type 1 wins over national.
REASON_STATUS = {
    reason: {OptOutReason.TYPE1: TYPE1, OptOutReason.NATIONAL: NATIONAL}[REPORTED_AS[reason]]
    for reason in OptOutReason
}

# Given distinct valid NHS numbers as integers (sorted), return the reasons of those that
# may not flow (the opt-out register); the others are absent. The register also answers
# a whole batch at once (`exclusion_masks`: a mask of the numbers left out per reason),
# which the table uses where it is there.
Exclusions = Callable[[np.ndarray], dict[int, Iterable[str]]]


def take_rows(values: np.ndarray, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Return the given rows of a numpy bytes array, in their order (gathered in C), in
    `out` if given (any writable array of as many bytes)."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    if out is None:
        out = np.empty(len(rows), dtype=values.dtype)
    elif out.nbytes != len(rows) * values.dtype.itemsize:
        raise ValueError("take_rows: `out` does not have the rows' size")
    if len(rows):
        _native.gather_rows(
            _ffi.from_buffer("unsigned char[]", np.ascontiguousarray(values)),
            values.dtype.itemsize,
            _ffi.from_buffer("int64_t[]", rows),
            len(rows),
            _ffi.from_buffer("unsigned char[]", out, require_writable=True),
        )
    return out


class NumberTable:
    """The distinct NHS numbers of a job: each one's code, number and register status.

    Each number is hashed and asked of the register once; a worker keeps the table from
    one chunk of a job to the next (see datasets.services), so a job's later chunks
    mostly find their patients already coded.
    """

    def __init__(self, key: bytes, exclusions: Exclusions) -> None:
        self.key = key
        self.exclusions = exclusions
        self._hasher = Hasher(key)
        # The numbers seen: an open-addressing hash table (number and slot in one word), in
        # C (datasets.native._records), kept at most half full.
        self._table = np.full(1 << 12, _EMPTY, dtype=np.uint64)
        self.size = 0
        self.codes = np.zeros(0, dtype=f"S{CODE_LENGTH}")
        self.numbers = np.zeros(0, dtype="S10")
        self.status = np.zeros(0, dtype=np.uint8)
        self._grow(1)  # slot lookups index these arrays even when no number is valid

    def slots(self, ids: np.ndarray) -> np.ndarray:
        """Return each row's slot in the table (-1: invalid), adding numbers never seen.

        `ids` are NHS numbers as integers (below 10**10), -1 where invalid.
        """
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        while 2 * (self.size + len(ids)) > len(self._table):
            self._rehash(2 * len(self._table))
        slots = np.empty(len(ids), dtype=np.int64)
        fresh = np.empty(len(ids), dtype=np.int64)
        added = _native.slots_find_or_add(
            _ffi.from_buffer("uint64_t[]", self._table, require_writable=True),
            len(self._table) - 1,
            _ffi.from_buffer("int64_t[]", ids),
            len(ids),
            self.size,
            _ffi.from_buffer("int64_t[]", slots, require_writable=True),
            _ffi.from_buffer("int64_t[]", fresh, require_writable=True),
        )
        if added:
            self._add(fresh[:added])
        return slots

    def codes_of(self, slots: np.ndarray) -> pa.Array:
        """Return the codes of the numbers in the given slots, as a string array."""
        return from_fixed_width(take_rows(self.codes, slots), CODE_LENGTH)

    def numbers_of(self, slots: np.ndarray) -> pa.Array:
        """Return the 10-digit NHS numbers in the given slots, as a string array."""
        return from_fixed_width(take_rows(self.numbers, slots), 10)

    def _rehash(self, capacity: int) -> None:
        table = np.full(capacity, _EMPTY, dtype=np.uint64)
        _native.slots_rehash(
            _ffi.from_buffer("uint64_t[]", self._table),
            len(self._table),
            _ffi.from_buffer("uint64_t[]", table, require_writable=True),
            capacity - 1,
        )
        self._table = table

    def _add(self, ids: np.ndarray) -> None:
        """Hash new NHS numbers, ask the register about them, give them the next slots."""
        count = len(ids)
        start = self.size
        self._grow(start + count)
        numbers = nhs_number.texts(ids)
        self.codes[start : start + count] = self._hasher.codes(numbers)
        self.status[start : start + count] = self._statuses(ids)
        self.numbers[start : start + count] = numbers
        self.size += count

    def _statuses(self, ids: np.ndarray) -> np.ndarray:
        """Return the register status of each new NHS number (in the order given)."""
        statuses = np.zeros(len(ids), dtype=np.uint8)
        masks = getattr(self.exclusions, "exclusion_masks", None)
        if masks is not None:
            # Vectorised: one look-up per opt-out list for the whole batch, in any order.
            by_reason = masks(ids)
            for status in (NATIONAL, TYPE1):  # Type 1 last: it wins
                for reason, mask in by_reason.items():
                    if REASON_STATUS[reason] == status:
                        statuses[mask] = status
            return statuses
        # A plain function is asked in number order (`Exclusions`).
        order = np.argsort(ids)
        ids = ids[order]
        for number, reasons in self.exclusions(ids).items():
            reasons = list(reasons)
            at = int(np.searchsorted(ids, number))
            if reasons and at < len(ids) and ids[at] == number:
                statuses[order[at]] = (
                    TYPE1
                    if OptOutReason.TYPE1 in reasons
                    else REASON_STATUS.get(reasons[0], NATIONAL)
                )
        return statuses

    def _grow(self, size: int) -> None:
        if size <= len(self.codes):
            return
        capacity = max(size, 2 * len(self.codes), 1024)
        for name, dtype in (("codes", f"S{CODE_LENGTH}"), ("numbers", "S10"), ("status", np.uint8)):
            old = getattr(self, name)
            new = np.zeros(capacity, dtype=dtype)
            new[: len(old)] = old
            setattr(self, name, new)
