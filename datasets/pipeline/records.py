"""The fields of a plain block's records, found in C, and the coded records written in C.

Most blocks of an extract are plain: every record on one line with all its fields, valid
UTF-8, no blank line. For those, datasets.native._records finds each field's bytes once;
the columns the rules need (the NHS number, dates, postcodes, the practice) are gathered
into Arrow arrays for the vectorised rules, and the coded records are written straight
from the fields and the rules' results, without parsing or writing the columns that flow
unchanged. `Records.scan` returns None for any other block, which the general path
(pyarrow) reads and reports on by line. The output is byte for byte what the general
path writes (tests/datasets/test_pipeline_records.py holds them to it).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from datasets.native._records import ffi, lib


class Records:
    """The records of a plain block: where each field's value lies in `data`."""

    def __init__(self, data: bytes, columns: int, count: int, spans, escaped) -> None:
        self.data = data
        self.columns = columns
        self.num_rows = count
        self._spans = spans
        self._escaped = escaped

    @classmethod
    def scan(cls, data: bytes, columns: int, newlines: int) -> Records | None:
        """Find the fields of a block of whole records (`newlines` of them end with one),
        or return None if the block is not plain."""
        if len(data) >= 2**31 - 1:
            return None
        capacity = newlines + 1
        spans = np.empty(2 * capacity * columns, dtype=np.int32)
        escaped = np.empty(capacity * columns, dtype=np.uint8)
        count = lib.scan_records(
            data,
            len(data),
            columns,
            capacity,
            ffi.from_buffer("int32_t[]", spans, require_writable=True),
            ffi.from_buffer("uint8_t[]", escaped, require_writable=True),
        )
        if count < 0:
            return None
        return cls(data, columns, count, spans, escaped)

    def column(self, index: int, keep: np.ndarray | None = None) -> pa.Array:
        """Return a column's values (of the kept records only, if `keep` is given)."""
        count = self.num_rows if keep is None else int(np.count_nonzero(keep))
        offsets = np.empty(count + 1, dtype=np.int32)
        out = np.empty(len(self.data) + 1, dtype=np.uint8)
        keep_bytes = ffi.NULL if keep is None else _bytes(keep)
        size = lib.gather_column(
            self.data,
            ffi.from_buffer("int32_t[]", self._spans),
            ffi.from_buffer("uint8_t[]", self._escaped),
            self.num_rows,
            self.columns,
            index,
            keep_bytes,
            ffi.from_buffer("int32_t[]", offsets, require_writable=True),
            ffi.from_buffer("unsigned char[]", out, require_writable=True),
        )
        return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(out[:size]))

    def any_starts_with(self, index: int, first_bytes: np.ndarray) -> bool:
        """Whether any value of a column begins with a byte marked in `first_bytes` (256)."""
        table = np.ascontiguousarray(first_bytes, dtype=np.uint8)
        return bool(
            lib.any_first_byte(
                self.data,
                ffi.from_buffer("int32_t[]", self._spans),
                self.num_rows,
                self.columns,
                index,
                ffi.from_buffer("uint8_t[]", table),
            )
        )

    def write(self, keep: np.ndarray, plan: list[int | pa.Array]) -> bytes:
        """Write the kept records as CSV, every value quoted (as pyarrow writes strings).

        Each entry of `plan` is an output column: the index of a field written as it is,
        or a string array with one value per kept record.
        """
        arrays: list[pa.Array] = []
        steps = np.empty(len(plan), dtype=np.int64)
        for j, step in enumerate(plan):
            if not isinstance(step, int):
                arrays.append(step)
                step = -len(arrays)  # substitute array -step - 1
            steps[j] = step
        kept = int(np.count_nonzero(keep))
        buffers = []
        for array in arrays:
            if len(array) != kept or array.null_count or array.type != pa.string():
                raise ValueError("A substitute column holds one text value per kept record.")
            offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[array.offset :]
            data = array.buffers()[2]
            data = np.frombuffer(data, dtype=np.uint8) if data else np.zeros(1, np.uint8)
            buffers.append((offsets, data))
        substitute_bytes = sum(int(o[kept] - o[0]) for o, _ in buffers)
        out = np.empty(
            2 * len(self.data) + kept * (3 * len(plan) + 1) + 2 * substitute_bytes + 16,
            dtype=np.uint8,
        )
        keepers = [ffi.from_buffer("int32_t[]", o) for o, _ in buffers]
        holders = [ffi.from_buffer("unsigned char[]", d) for _, d in buffers]
        size = lib.write_records(
            self.data,
            ffi.from_buffer("int32_t[]", self._spans),
            self.num_rows,
            self.columns,
            _bytes(keep),
            ffi.from_buffer("int64_t[]", steps),
            len(plan),
            ffi.new("int32_t *[]", keepers) if keepers else ffi.NULL,
            ffi.new("unsigned char *[]", holders) if holders else ffi.NULL,
            ffi.from_buffer("unsigned char[]", out, require_writable=True),
        )
        return out[:size].tobytes()


def _bytes(mask: np.ndarray):
    return ffi.from_buffer("uint8_t[]", np.ascontiguousarray(mask, dtype=np.bool_).view(np.uint8))
