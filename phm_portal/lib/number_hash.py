"""A set of NHS numbers, each with a flag, looked up in bulk by hashing (vectorised).

For a set asked about again and again in batches of a few thousand numbers (a compiled
national opt-out check, asked about each new patient of every job): a sorted array
asked with np.searchsorted misses the CPU's caches about twenty times a number once the
set outgrows them (1M numbers: 8 MiB), a hash table about once.

The table: open addressing with linear probing, one 64-bit word a slot (the number, below
2**34, with the flag in the top bit; all ones empty), at most two thirds full. It is
built in one pass without probing: entries sorted by their home slot are placed each at
its home or just after the one before (a cumulative maximum), which keeps every entry
reachable from its home through occupied slots; a few slots past the end take the runs
that would wrap. A look-up probes the whole batch at once, slot after slot, until each
number is found or meets an empty slot (most in one or two probes). The table is all it
keeps: the sorted arrays it was built from can go.
"""

from __future__ import annotations

import numpy as np

_EMPTY = np.uint64(2**64 - 1)
_FLAG = np.uint64(1 << 63)
_KEY = ~_FLAG
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: 2**64 / golden ratio


class HashedNumbers:
    """Distinct NHS numbers (int64, below 2**34) with a flag each, hashed once."""

    def __init__(self, numbers: np.ndarray, flags: np.ndarray) -> None:
        numbers = np.asarray(numbers, dtype=np.int64)
        flags = np.asarray(flags, dtype=bool)
        if len(numbers) != len(flags):
            raise ValueError("HashedNumbers: one flag per number")
        count = self.count = len(numbers)
        self._bits = max(4, int(np.ceil(np.log2(max(1.5 * count, 2)))))
        homes = self._homes(numbers)
        order = np.argsort(homes, kind="stable")
        homes = homes[order]
        ranks = np.arange(count, dtype=np.int64)
        slots = np.maximum.accumulate(homes - ranks) + ranks if count else homes
        size = max(1 << self._bits, int(slots[-1]) + 1 if count else 0) + 1  # + 1: one empty
        self._table = np.full(size, _EMPTY, dtype=np.uint64)
        self._table[slots] = numbers[order].astype(np.uint64) | (
            flags[order].astype(np.uint64) << np.uint64(63)
        )

    @property
    def nbytes(self) -> int:
        return self._table.nbytes

    def _homes(self, ids: np.ndarray) -> np.ndarray:
        return ((ids.astype(np.uint64) * _MULTIPLIER) >> np.uint64(64 - self._bits)).astype(
            np.int64
        )

    def look_up(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return, for each number (int64, any order), whether it is in the set, and its flag."""
        ids = np.asarray(ids, dtype=np.int64)
        found = np.zeros(len(ids), dtype=bool)
        flag = np.zeros(len(ids), dtype=bool)
        if not len(ids) or not self.count:
            return found, flag
        keys = ids.astype(np.uint64)
        slots = self._homes(ids)
        pending = np.arange(len(ids))
        while len(pending):  # the last slot is always empty: every probe ends
            entries = self._table[slots]
            hit = (entries & _KEY) == keys[pending]
            rows = pending[hit]
            found[rows] = True
            flag[rows] = entries[hit] >= _FLAG
            going_on = ~hit & (entries != _EMPTY)
            pending, slots = pending[going_on], slots[going_on] + 1
        return found, flag
