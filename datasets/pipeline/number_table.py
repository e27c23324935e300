"""The distinct NHS numbers of a job: their codes and their status in the opt-out register."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from consent.reasons import REPORTED_AS, OptOutReason
from datasets.pipeline.hashing import _HEX, CODE_LENGTH, Hasher
from phm_portal.lib.nhs_number import POWERS as _POWERS

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


def _merged(
    into: tuple[np.ndarray, np.ndarray], more: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Merge two sorted (numbers, slots) indexes that share no number."""
    at = np.searchsorted(into[0], more[0])
    return np.insert(into[0], at, more[0]), np.insert(into[1], at, more[1])


def _unique_inverse(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the sorted distinct values and each value's index among them.

    By sorting: numpy's own unique hashes, which is several times slower on NHS numbers.
    """
    order = np.argsort(values)
    ordered = values[order]
    first = np.empty(len(values), dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    inverse = np.empty(len(values), dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return ordered[first], inverse


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
        # The numbers seen, sorted, with their slots: a large sorted index and a small one of
        # the newest, merged into the large one when it has grown to a quarter of it, so
        # that adding a block's new numbers does not copy the whole index every time.
        self._index = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        self._newest = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        self.size = 0
        self.codes = np.zeros(0, dtype=f"S{CODE_LENGTH}")
        self.numbers = np.zeros(0, dtype="S10")
        self.status = np.zeros(0, dtype=np.uint8)
        self._grow(1)  # slot lookups index these arrays even when no number is valid

    def slots(self, ids: np.ndarray) -> np.ndarray:
        """Return each row's slot in the table (-1: invalid), adding numbers never seen."""
        slots = np.full(len(ids), -1, dtype=np.int64)
        valid = ids >= 0
        if not valid.any():
            return slots
        unique, inverse = _unique_inverse(ids[valid])
        slot_of = np.full(len(unique), -1, dtype=np.int64)
        for numbers, their_slots in (self._index, self._newest):
            if len(numbers):
                at = np.minimum(np.searchsorted(numbers, unique), len(numbers) - 1)
                hit = numbers[at] == unique
                slot_of[hit] = their_slots[at[hit]]
        new = slot_of < 0
        if new.any():
            fresh = unique[new]
            first = self._add(fresh)
            slot_of[new] = np.arange(first, first + len(fresh))
            self._newest = _merged(self._newest, (fresh, slot_of[new]))
            if len(self._newest[0]) > max(1 << 16, len(self._index[0]) // 4):
                self._index = _merged(self._index, self._newest)
                self._newest = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        slots[valid] = slot_of[inverse]
        return slots

    def _add(self, ids: np.ndarray) -> int:
        """Hash new (sorted) NHS numbers, ask the register about them, give them slots.

        Return the first slot.
        """
        count = len(ids)
        start = self.size
        self._grow(start + count)
        numbers = ((ids[:, None] // _POWERS) % 10 + 48).astype(np.uint8).reshape(-1).view("S10")
        raw = self._hasher.digests(numbers)
        self.codes[start : start + count] = (
            _HEX[raw[:, : CODE_LENGTH // 2]].reshape(-1).view(f"S{CODE_LENGTH}")
        )
        self.status[start : start + count] = self._statuses(ids)
        self.numbers[start : start + count] = numbers
        self.size += count
        return start

    def _statuses(self, ids: np.ndarray) -> np.ndarray:
        """Return the register status of each new (sorted) NHS number."""
        statuses = np.zeros(len(ids), dtype=np.uint8)
        masks = getattr(self.exclusions, "exclusion_masks", None)
        if masks is not None:
            # Vectorised: one sorted look-up per opt-out list for the whole batch.
            by_reason = masks(ids)
            for status in (NATIONAL, TYPE1):  # Type 1 last: it wins
                for reason, mask in by_reason.items():
                    if REASON_STATUS[reason] == status:
                        statuses[mask] = status
            return statuses
        for number, reasons in self.exclusions(ids).items():
            reasons = list(reasons)
            at = int(np.searchsorted(ids, number))
            if reasons and at < len(ids) and ids[at] == number:
                statuses[at] = (
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
