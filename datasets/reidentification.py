"""The re-identification index of a job's part: code -> (practice, NHS number), by bucket.

A chunk of a job writes its vault (CSV: pseudonym, practice, nhs_number) and, beside it,
this index of the same pairs, sealed (phm_portal.lib.envelope.seal_parts) at a path named
after the job and the part. The pairs are cut into 256 buckets by the code's first byte,
each bucket a part of its own: re-identifying a few codes decrypts and scans a few
buckets of some KiB in each part, never the whole vault.

Bucket layout: n codes (32 ASCII hex digits each), then n NHS numbers (10 ASCII digits
each), then n practices (int32, positions in the list of the index's last part, JSON).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from datasets.pipeline.number_table import take_rows
from datasets.pipeline.vault import VaultRows
from phm_portal.lib import envelope

BUCKETS = 256
CODE_BYTES = 32
NUMBER_BYTES = 10
_ENTRY_BYTES = CODE_BYTES + NUMBER_BYTES + 4
_CODE = re.compile(r"[0-9a-f]{32}")
# ASCII hex digit -> its value (other bytes never occur in a code).
_HEX_VALUE = np.zeros(256, dtype=np.uint16)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX_VALUE[_c] = _i


def index_name(job_id: object, chunk_index: int) -> str:
    """Return the storage name of a part's index (deterministic: one per part of a job)."""
    return f"jobs/{job_id}/reidentify-{chunk_index:05d}.idx.enc"


def index_associated_data(job_id: object, chunk_index: int) -> bytes:
    return f"job:{job_id}:reidentify:{chunk_index}".encode()


def _fixed(array: pa.Array, width: int) -> np.ndarray:
    """Return a string array whose values all have `width` bytes as a numpy bytes array."""
    array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[
        array.offset : array.offset + len(array) + 1
    ]
    if len(array) and not (np.diff(offsets) == width).all():
        raise ValueError(f"expected values of {width} bytes")
    data = (
        np.frombuffer(array.buffers()[2], dtype=np.uint8) if len(array) else np.zeros(0, np.uint8)
    )
    return data[offsets[0] : offsets[0] + len(array) * width].view(f"S{width}")


class IndexBuilder:
    """Collect a part's vault rows (pseudonym, practice, nhs_number), then seal the index.

    A job's chunk gives it each block's new rows as slots of the job's table of numbers
    (`add_rows`: 16 bytes a row kept, the codes and numbers read from the table when the
    index is sealed); an older part's vault read back from its CSV, or a test, gives it
    the rows themselves (`add`).
    """

    def __init__(self) -> None:
        self._pieces: list[VaultRows | pa.Table] = []
        self.rows = 0

    def add_rows(self, rows: VaultRows) -> None:
        """Keep a block's new vault rows: their slots and practices (no copy of any code)."""
        if rows.num_rows:
            self._pieces.append(rows)
            self.rows += rows.num_rows

    def add(self, vault: pa.Table) -> None:
        """Keep rows given as a table of pseudonym, practice and nhs_number (strings)."""
        if vault.num_rows:
            self._pieces.append(vault.select(["pseudonym", "practice", "nhs_number"]))
            self.rows += vault.num_rows

    def add_csv(self, vault: BinaryIO) -> None:
        """Add the rows of a vault written as CSV (a part of a job from before indexes)."""
        columns = ("pseudonym", "practice", "nhs_number")
        self.add(
            pcsv.read_csv(
                vault,
                convert_options=pcsv.ConvertOptions(
                    column_types=dict.fromkeys(columns, pa.string()),
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        )

    def _gathered(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """Return (codes, numbers, rows, practices, practice names): the index's row i is
        codes[rows[i]], numbers[rows[i]], practice names[practices[i]]."""
        tables = {id(p.numbers) for p in self._pieces if isinstance(p, VaultRows)}
        if len(tables) == 1 and all(isinstance(p, VaultRows) for p in self._pieces):
            # A chunk's rows: one table of numbers, one list of practices that only grew.
            numbers = self._pieces[0].numbers
            return (
                numbers.codes,
                numbers.numbers,
                np.concatenate([p.slots for p in self._pieces]),
                np.concatenate([p.practices for p in self._pieces]).astype(np.int32),
                list(self._pieces[-1].practice_names),
            )
        if not self._pieces:
            empty = np.zeros(0, np.int64)
            return np.zeros(0, f"S{CODE_BYTES}"), np.zeros(0, f"S{NUMBER_BYTES}"), empty, empty, []
        vault = pa.concat_tables(p.table() if isinstance(p, VaultRows) else p for p in self._pieces)
        codes = _fixed(vault.column("pseudonym"), CODE_BYTES)
        numbers = _fixed(vault.column("nhs_number"), NUMBER_BYTES)
        encoded = pc.dictionary_encode(vault.column("practice")).combine_chunks()
        practices = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32)
        return codes, numbers, np.arange(len(codes)), practices, encoded.dictionary.to_pylist()

    def write(self, kek: bytes, sink: BinaryIO, associated_data: bytes) -> None:
        """Write the sealed index to `sink`, one bucket at a time (little memory)."""
        codes, numbers, rows, practices, names = self._gathered()
        # Into buckets by the code's first byte (a stable radix sort of one byte: cheap);
        # a bucket is small enough to be scanned whole when a code is looked up.
        digits = codes.view(np.uint8).reshape(-1, CODE_BYTES)
        buckets = (_HEX_VALUE[digits[rows, 0]] * 16 + _HEX_VALUE[digits[rows, 1]]).astype(np.uint8)
        order = np.argsort(buckets, kind="stable")
        bounds = np.searchsorted(buckets[order], np.arange(BUCKETS + 1)).tolist()
        practice_list = json.dumps(names).encode()
        sizes = [(b - a) * _ENTRY_BYTES for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        writer = envelope.SealedWriter(kek, sink, associated_data, [*sizes, len(practice_list)])
        part = np.empty(max(sizes, default=0), dtype=np.uint8)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            # A bucket's rows gathered straight into its part: codes, numbers, practices.
            n = b - a
            at = order[a:b]
            take_rows(codes, rows[at], part[: n * CODE_BYTES])
            take_rows(numbers, rows[at], part[n * CODE_BYTES : n * (CODE_BYTES + NUMBER_BYTES)])
            part[n * (CODE_BYTES + NUMBER_BYTES) : n * _ENTRY_BYTES] = practices[at].view(np.uint8)
            writer.write_part(part[: n * _ENTRY_BYTES])
        writer.write_part(practice_list)
        writer.close()

    def seal(self, kek: bytes, associated_data: bytes) -> bytes:
        """Return the sealed index (for small ones; `write` streams)."""
        out = io.BytesIO()
        self.write(kek, out, associated_data)
        return out.getvalue()


def look_up(
    kek: bytes, source, associated_data: bytes, codes: Iterable[str], practice: str
) -> dict[str, str]:
    """Return {code: NHS number} of the codes an index holds for patients of `practice`.

    Reads the buckets of the codes asked about, whatever the practice: the work does not
    depend on whose patients they are.
    """
    sealed = envelope.SealedReader(kek, source, associated_data)
    names = json.loads(sealed.part(BUCKETS))
    wanted = names.index(practice) if practice in names else -1
    by_bucket: dict[int, list[str]] = {}
    for code in codes:
        if _CODE.fullmatch(code):
            by_bucket.setdefault(int(code[:2], 16), []).append(code)
    found: dict[str, str] = {}
    for bucket, asked in sorted(by_bucket.items()):
        data = sealed.part(bucket)
        n = len(data) // _ENTRY_BYTES
        bucket_codes = np.frombuffer(data, dtype=f"S{CODE_BYTES}", count=n)
        numbers = np.frombuffer(data, dtype=f"S{NUMBER_BYTES}", count=n, offset=n * CODE_BYTES)
        practices = np.frombuffer(
            data, dtype=np.int32, count=n, offset=n * (CODE_BYTES + NUMBER_BYTES)
        )
        mine = practices == wanted
        for code in asked:
            hits = np.flatnonzero((bucket_codes == code.encode()) & mine)
            if hits.size:
                found[code] = numbers[hits[0]].decode("ascii")
    return found
