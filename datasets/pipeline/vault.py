"""The re-identification vault's rows: which (patient, practice) pairs a part must hold.

A job's vault is the union of its parts' vaults (re-identification reads every part of a
job that succeeded). A part need not repeat a pair that an earlier part of the same job
already holds, as long as that part was published: a worker process keeps, per job, the
pairs of the parts it published (VaultPairs), and each chunk it runs starts from a copy
of them and writes only the pairs they lack. The copy becomes the worker's only when the
chunk's part is published (datasets.services.job_chunk_run): a part that was not (its
attempt lost the chunk, or failed) leaves nothing behind that another part relies on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datasets.native._records import ffi as _ffi
from datasets.native._records import lib as _native
from datasets.pipeline.number_table import NumberTable


@dataclass(frozen=True)
class VaultRows:
    """A block's new vault rows: each patient by their slot in the job's table of numbers,
    each practice by its position in `practice_names` (the job's list so far, which only
    ever grows, so a position stays valid).

    The vault's CSV is written from `table()`; the part's re-identification index keeps
    the slots and positions only (16 bytes a row) and reads the codes and numbers from the
    table when it is sealed (datasets.reidentification.IndexBuilder).
    """

    numbers: NumberTable
    slots: np.ndarray  # int64
    practices: np.ndarray  # int64, positions in practice_names
    practice_names: list[str]

    @property
    def num_rows(self) -> int:
        return len(self.slots)

    def table(self) -> pa.Table:
        """Return the rows as the vault's columns: pseudonym, practice, nhs_number."""
        return pa.table(
            {
                "pseudonym": self.numbers.codes_of(self.slots),
                "practice": pc.take(pa.array(self.practice_names, pa.string()), self.practices),
                "nhs_number": self.numbers.numbers_of(self.slots),
            }
        )


@dataclass
class VaultPairs:
    """The (patient, practice) pairs already in a job's vault, by the patient's table slot."""

    practice_ids: dict[str, int] = field(default_factory=dict)
    practice_names: list[str] = field(default_factory=list)
    # Per slot, the practice written for the patient (-1: none yet); a patient met at a
    # second practice (rare) is kept in `more` (slot * 65536 + practice).
    practice_of_slot: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    more: set[int] = field(default_factory=set)

    def copy(self) -> VaultPairs:
        return VaultPairs(
            dict(self.practice_ids),
            list(self.practice_names),
            self.practice_of_slot.copy(),
            set(self.more),
        )

    def new_rows(
        self, table: NumberTable, slot: np.ndarray, practice: pa.ChunkedArray
    ) -> VaultRows | None:
        """Return the rows of the (patient, practice) pairs not held yet, and hold them from
        now on; `slot` and `practice` are the kept rows' patients and practices."""
        if not len(slot):
            return None
        encoded = pc.dictionary_encode(practice).combine_chunks()
        ids = self.practice_ids
        local = np.array(
            [ids.setdefault(n, len(ids)) for n in encoded.dictionary.to_pylist()], dtype=np.int32
        )
        if len(ids) > len(self.practice_names):
            self.practice_names = sorted(ids, key=ids.get)
        practice_of_row = local[encoded.indices.to_numpy(zero_copy_only=False)]
        held = self.practice_of_slot
        if len(held) < table.size:
            grown = np.full(max(table.size, 2 * len(held)), -1, np.int32)
            grown[: len(held)] = held
            self.practice_of_slot = held = grown
        # Patients written for the first time (their first row's practice), and rows at a
        # practice other than the one written for their patient (rare).
        slot = np.ascontiguousarray(slot, dtype=np.int64)
        fresh = np.empty(len(slot), dtype=np.int64)
        other = np.empty(len(slot), dtype=np.int64)
        others = _ffi.new("int64_t *")
        found = _native.vault_rows_new(
            _ffi.from_buffer("int32_t[]", held, require_writable=True),
            _ffi.from_buffer("int64_t[]", slot),
            _ffi.from_buffer("int32_t[]", practice_of_row),
            len(slot),
            _ffi.from_buffer("int64_t[]", fresh, require_writable=True),
            _ffi.from_buffer("int64_t[]", other, require_writable=True),
            others,
        )
        new_slots = np.sort(slot[fresh[:found]])
        pairs = new_slots * 65536 + held[new_slots]
        if others[0]:
            rows = other[: others[0]]
            seen = set((slot[rows] * 65536 + practice_of_row[rows]).tolist())
            more = sorted(seen - self.more)
            self.more.update(more)
            pairs = np.concatenate((pairs, np.array(more, dtype=np.int64)))
        if not len(pairs):
            return None
        return VaultRows(table, pairs // 65536, pairs % 65536, self.practice_names)
