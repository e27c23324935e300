"""The pseudonymisation pipeline: plaintext CSV stream in, coded CSV stream out.

Pure Python (no Django), so that it can be tested and measured on its own. The
caller decrypts the extract into `source` and encrypts what is written to `sink`;
no plaintext touches the disk here.

Speed comes from three things:
1. Blocks end at record boundaries, and the report must name each bad record's
   line (pyarrow's parser cannot say it when quoted newlines are allowed). Where
   each line of a block is one record, two vectorised counts say so; otherwise a
   structural scan (numpy) finds each record's start by quote parity.
2. pyarrow parses each block into string columns, and pyarrow.compute does the
   generalisation and filtering column by column.
3. Each distinct NHS number is validated, looked up in the opt-out register and
   hashed once per worker and job (HMAC-SHA256, in C where datasets.native is
   built, else from precomputed inner and outer states in Python).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from phm_portal.lib import csv_safe

BLOCK_BYTES = 2 * 1024 * 1024  # small enough that a block's temporaries stay in the CPU's caches
MAX_RECORD_BYTES = 1024 * 1024
MAX_INVALID_REPORTED = 1000

GENERALISE_RULES = {
    "year": "date",
    "age_band_5": "date",
    "district": "postcode",
}

# Status of a distinct NHS number.
OK, INVALID, TYPE1, NATIONAL = 0, 1, 2, 3
# The register's reasons; a patient no unexpired national check covers counts as national.
REASON_STATUS = {"type1": TYPE1, "national": NATIONAL, "national_unchecked": NATIONAL}

_QUOTE, _NEWLINE, _COMMA, _CR = 34, 10, 44, 13
_WEIGHTS = np.array([10, 9, 8, 7, 6, 5, 4, 3, 2], dtype=np.float64)
_POWERS = 10 ** np.arange(9, -1, -1, dtype=np.int64)
_POWER_FLOATS = _POWERS.astype(np.float64)
# The pseudonym: HMAC-SHA256 truncated to 128 bits, in hex (RFC 2104 allows truncation).
CODE_LENGTH = 32
_HEX = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)), dtype="S2")
_POSTCODE = r"^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$"
# What a spreadsheet could run as a formula: the one rule of phm_portal.lib.csv_safe.
_FORMULA_CHARS = pa.array(list(csv_safe.FORMULA_FIRST_CHARS))
_NUMBER = csv_safe.PLAIN_NUMBER


class ExtractError(Exception):
    """The extract cannot be processed at all; the message says why, for a CSU admin."""


class MissingColumn(ValueError):
    """The mapping names a column the file's header lacks; `header` lists what it has."""

    def __init__(self, column: str, header: list[str]) -> None:
        super().__init__(f"The mapping names column {column!r}, which the file does not have.")
        self.column = column
        self.header = header


class JobCancelled(Exception):
    """The job was cancelled between two blocks."""


@dataclass(frozen=True)
class Generalisation:
    column: str
    rule: str


@dataclass(frozen=True)
class Mapping:
    nhs_number: str
    practice: str
    drop: tuple[str, ...] = ()
    generalise: tuple[Generalisation, ...] = ()

    @classmethod
    def from_json(cls, data: object) -> Mapping:
        """Build a mapping from its JSON form (API.md), raising ValueError naming the problem."""
        if not isinstance(data, dict):
            raise ValueError("The mapping is a JSON object.")
        unknown = set(data) - {"nhs_number", "practice", "drop", "generalise"}
        if unknown:
            raise ValueError(f"Unknown mapping key: {', '.join(sorted(unknown))}.")
        for key in ("nhs_number", "practice"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise ValueError(f"The mapping must name the {key} column.")
        drop = data.get("drop", [])
        if not isinstance(drop, list) or not all(isinstance(c, str) for c in drop):
            raise ValueError("`drop` is a list of column names.")
        rules = []
        for item in data.get("generalise", []):
            if not isinstance(item, dict) or not isinstance(item.get("column"), str):
                raise ValueError('Each `generalise` entry is {"column": ..., "rule": ...}.')
            if item.get("rule") not in GENERALISE_RULES:
                raise ValueError(
                    f"Unknown rule {item.get('rule')!r} for column {item['column']!r}: "
                    f"use {', '.join(GENERALISE_RULES)}."
                )
            rules.append(Generalisation(item["column"], item["rule"]))
        return cls(data["nhs_number"], data["practice"], tuple(drop), tuple(rules))

    def to_json(self) -> dict:
        return {
            "nhs_number": self.nhs_number,
            "practice": self.practice,
            "drop": list(self.drop),
            "generalise": [{"column": g.column, "rule": g.rule} for g in self.generalise],
        }

    def check_columns(self, header: list[str]) -> None:
        """Raise ValueError naming the first mapped column the header lacks, or a clash."""
        named = [self.nhs_number, self.practice, *self.drop, *(g.column for g in self.generalise)]
        for column in named:
            if column not in header:
                raise MissingColumn(column, header)
        if self.nhs_number in self.drop or self.practice in self.drop:
            raise ValueError("The NHS number and practice columns cannot also be dropped.")
        generalised = [g.column for g in self.generalise]
        if len(set(generalised)) != len(generalised) or set(generalised) & set(self.drop):
            raise ValueError("A column is generalised twice, or both generalised and dropped.")

    def output_header(self, header: list[str]) -> list[str]:
        rules = {g.column: g.rule for g in self.generalise}
        out = []
        for column in header:
            if column == self.nhs_number:
                out.append("pseudonym")
            elif column in self.drop:
                continue
            elif column in rules:
                out.append(f"{column}_{rules[column]}")
            else:
                out.append(column)
        return out


@dataclass
class Report:
    rows_in: int = 0
    rows_out: int = 0
    excluded: dict[str, int] = field(
        default_factory=lambda: {"type1": 0, "national": 0, "invalid": 0}
    )
    invalid_rows: list[dict] = field(default_factory=list)

    def invalid(self, line: int, error: str) -> None:
        self.excluded["invalid"] += 1
        if len(self.invalid_rows) < MAX_INVALID_REPORTED:
            self.invalid_rows.append({"line": line, "error": error})


def read_header(first_bytes: bytes) -> list[str]:
    """Return the column names of a CSV file from its first bytes (BOM allowed)."""
    text = first_bytes.decode("utf-8-sig", errors="strict")
    line = next(csv.reader(io.StringIO(text)), None)
    if not line or all(not c.strip() for c in line):
        raise ValueError("The file has no header line.")
    names = [c.strip() for c in line]
    if any(not n for n in names):
        raise ValueError(f"Column {names.index('') + 1} of the header has no name.")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"The header names a column twice: {', '.join(duplicates)}.")
    return names


_BYTE_PARITY = np.array([bin(i).count("1") & 1 for i in range(256)], dtype=np.uint8)
# _LEADING_PARITY[b, r]: the parity of the first r bits of b (np.packbits puts the first first).
_LEADING_PARITY = np.array(
    [[bin(b >> (8 - r)).count("1") & 1 if r else 0 for r in range(8)] for b in range(256)],
    dtype=np.uint8,
)


def _quote_parity_at(arr: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Return, for each position, the parity of the quote marks before it (1: inside quotes).

    The quote flags are packed eight to a byte, so the running parity is taken over an
    eighth of the bytes: about three times faster than over every byte.
    """
    packed = np.packbits(arr == _QUOTE)
    before = np.zeros(len(packed) + 1, dtype=np.uint8)
    np.bitwise_xor.accumulate(_BYTE_PARITY[packed], out=before[1:])
    group = positions >> 3
    return (
        before[group] ^ _LEADING_PARITY[packed[np.minimum(group, len(packed) - 1)], positions & 7]
    )


@dataclass
class Block:
    """Whole records of an extract: `data` begins and ends at record boundaries.

    Most blocks are plain: each line one record, no blank line. Such a block is read as it
    is, and its records' line numbers follow from `first_line`. Where that is not so (a
    quoted newline, a blank line), `exact()` finds each record's start by quote parity.
    """

    data: bytes
    first_line: int  # the file line where `data` begins
    newlines: int  # the newlines in `data`
    lines: np.ndarray | None = None  # the line of each (non-blank) record, once known

    def exact(self) -> Block:
        """Return the block less its blank records, with each record's line."""
        if self.lines is not None:
            return self
        arr = np.frombuffer(self.data, dtype=np.uint8)
        records = _records(arr, self.first_line, quoted=b'"' in self.data)
        return _exact_block(self.data, self.first_line, self.newlines, *records)

    def one_record_per_line(self, records: int) -> bool:
        """Whether a block read as `records` records holds one record on each line.

        Each record ends at a newline, so as many records as newlines means that no
        newline is inside quotes and no line is blank (pyarrow skips blank lines). A lone
        carriage return, which pyarrow also takes for a line end, would break the count.
        """
        if records != self.newlines:
            return False
        if b"\r" not in self.data:
            return True
        arr = np.frombuffer(self.data, dtype=np.uint8)
        return np.count_nonzero(arr == _CR) == np.count_nonzero(
            (arr[:-1] == _CR) & (arr[1:] == _NEWLINE)
        )

    def field_counts(self) -> np.ndarray:
        """Return each record's number of fields (commas outside quotes, plus one)."""
        arr = np.frombuffer(self.data, dtype=np.uint8)
        parity = np.bitwise_xor.accumulate((arr == _QUOTE).view(np.uint8))
        newlines = np.flatnonzero(arr == _NEWLINE)
        ends = newlines[parity[newlines] == 0]
        outside = (arr == _COMMA) & (parity == 0)
        running = np.cumsum(outside, dtype=np.int64)
        before = np.concatenate(([0], running[ends[:-1]]))
        return running[ends] - before + 1

    def without(self, bad: np.ndarray) -> Block:
        """Return the block less the records marked bad (the block is exact)."""
        arr = np.frombuffer(self.data, dtype=np.uint8)
        starts, ends, _ = _records(arr, 0, quoted=b'"' in self.data)
        keep = ~bad
        data = b"".join(
            self.data[int(a) : int(b) + 1] for a, b in zip(starts[keep], ends[keep], strict=True)
        )
        return Block(data, self.first_line, data.count(b"\n"), self.lines[keep])


def _exact_block(
    data: bytes,
    first_line: int,
    newlines: int,
    starts: np.ndarray,
    ends: np.ndarray,
    lines: np.ndarray,
) -> Block:
    """Return a block of `data`, whose records are known, less its blank records."""
    lengths = ends - starts
    arr = np.frombuffer(data, dtype=np.uint8)
    blank = (lengths == 0) | ((lengths == 1) & (arr[np.maximum(ends - 1, 0)] == _CR))
    keep = ~blank
    if not keep.all():
        data = b"".join(
            data[int(s) : int(e) + 1] for s, e in zip(starts[keep], ends[keep], strict=True)
        )
    return Block(data, first_line, newlines, lines[keep])


def _records(
    arr: np.ndarray, first_line: int, *, quoted: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return where each record of whole records starts and ends (its newline), and its line."""
    newlines = np.flatnonzero(arr == _NEWLINE)
    if quoted:
        end_idx = np.flatnonzero(_quote_parity_at(arr, newlines) == 0)
    else:  # no quote mark: every newline ends a record
        end_idx = np.arange(newlines.size)
    ends = newlines[end_idx]
    starts = np.empty_like(ends)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    lines = first_line + np.concatenate(([0], end_idx[:-1] + 1)) if ends.size else ends
    return starts, ends, lines


def iter_blocks(
    source: BinaryIO,
    *,
    columns: int,
    report: Report,
    progress: Callable[[int], None] | None = None,
    block_bytes: int = BLOCK_BYTES,
    has_header: bool = True,
    first_line: int = 1,
) -> Iterator[Block]:
    """Yield blocks of whole records after the header.

    A record ends at a newline outside quotes. A block ends at its last newline when an
    even number of quote marks come before it (two byte counts, not a scan of each
    record); otherwise, and for the header, records are found by quote parity.
    """
    carry = b""
    line = first_line  # the line where `carry` starts
    header_done = not has_header
    consumed = 0
    while True:
        chunk = source.read(block_bytes)
        if chunk:
            consumed += len(chunk)
        buf = carry + chunk if carry else chunk
        final = not chunk
        if final:
            if not buf:
                break
            if not buf.endswith(b"\n"):
                buf += b"\n"
        cut = buf.rfind(b"\n") + 1
        arr = np.frombuffer(buf, dtype=np.uint8, count=cut)
        quoted = b'"' in buf
        if header_done and cut and not (quoted and np.count_nonzero(arr == _QUOTE) & 1):
            # The last newline is outside quotes: the block ends there.
            newlines = int(np.count_nonzero(arr == _NEWLINE))
            yield Block(buf[:cut], line, newlines)
            line += newlines
        else:
            starts, ends, lines = _records(arr, line, quoted=quoted)
            if ends.size == 0:
                if final and len(buf) <= MAX_RECORD_BYTES:
                    raise ExtractError(f"Line {line}: a quoted field is never closed.")
                if len(buf) > MAX_RECORD_BYTES:
                    raise ExtractError(
                        f"Line {line}: a record is longer than {MAX_RECORD_BYTES // 1024} KiB "
                        "(an unclosed quote, or not a CSV extract)."
                    )
                carry = buf
                continue
            cut = int(ends[-1]) + 1
            first = 0
            if not header_done:
                header_done = True
                first = int(ends[0]) + 1
                starts, ends, lines = starts[1:], ends[1:], lines[1:]
            if ends.size:
                data = buf[first:cut]
                yield _exact_block(
                    data, int(lines[0]), data.count(b"\n"), starts - first, ends - first, lines
                )
            line += buf.count(b"\n", 0, cut)
        carry = buf[cut:]
        if progress is not None:
            progress(consumed - len(carry))
        if final:
            break


try:  # CPython's own SHA-256: the same function as OpenSSL's, with less overhead per call
    from _sha2 import sha256 as _sha256  # Python 3.12 and later
except ImportError:  # pragma: no cover - depends on the interpreter
    try:
        from _sha256 import sha256 as _sha256  # Python 3.11
    except ImportError:
        _sha256 = hashlib.sha256

try:  # HMAC-SHA256 of many messages in one call, in C (built by `make`: datasets/native)
    from datasets.native._hmac import ffi as _ffi
    from datasets.native._hmac import lib as _native
except ImportError:  # pragma: no cover - not built here: Python gives the same codes, slower
    _ffi = _native = None

NATIVE_HMAC = _native is not None


class Hasher:
    """HMAC-SHA256 (RFC 2104) of many short messages.

    In C over OpenSSL's SHA-256 where datasets.native is built (about ten times faster),
    else in Python from precomputed inner and outer states: the digests are the same.
    """

    def __init__(self, key: bytes, *, native: bool = NATIVE_HMAC) -> None:
        self._key = key
        self._native = native and _native is not None
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = _sha256(bytes(b ^ 0x36 for b in key))
        self._outer = _sha256(bytes(b ^ 0x5C for b in key))

    def digests(self, messages: np.ndarray) -> np.ndarray:
        """Return the digests of messages of one width (a numpy bytes array), one row each."""
        messages = np.ascontiguousarray(messages)
        count, width = len(messages), messages.dtype.itemsize
        out = np.empty((count, 32), dtype=np.uint8)
        if count == 0:
            return out
        if self._native:
            ok = _native.hmac_sha256_many(
                self._key,
                len(self._key),
                _ffi.from_buffer(messages),
                count,
                width,
                _ffi.from_buffer(out, require_writable=True),
            )
            if not ok:
                raise RuntimeError("OpenSSL's SHA-256 failed.")
            return out
        inner_copy, outer_copy = self._inner.copy, self._outer.copy
        digests = []
        append = digests.append
        for message in messages.view(np.uint8).reshape(count, width).view(f"V{width}").ravel():
            inner = inner_copy()
            inner.update(message)
            outer = outer_copy()
            outer.update(inner.digest())
            append(outer.digest())
        return np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(count, 32)


# Given distinct valid NHS numbers as integers (sorted), return the reasons of those that
# may not flow (the opt-out register); the others are absent.
Exclusions = Callable[[np.ndarray], dict[int, Iterable[str]]]


def _string_buffers(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Return the offsets and the bytes of a string array, as numpy views (no copy)."""
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[
        array.offset : array.offset + len(array) + 1
    ]
    data = array.buffers()[2]
    return offsets, (np.frombuffer(data, dtype=np.uint8) if data else np.zeros(0, np.uint8))


def _fixed_width(array: pa.Array, width: int) -> np.ndarray | None:
    """Return the rows x width bytes of a string array whose values all have `width` bytes."""
    offsets, data = _string_buffers(array)
    n = len(array)
    if n == 0 or offsets[-1] - offsets[0] != n * width or not (np.diff(offsets) == width).all():
        return None
    return data[offsets[0] : offsets[0] + n * width].reshape(n, width)


def _strings(values: np.ndarray, width: int) -> pa.Array:
    """Build a string array from a numpy array of fixed-width byte strings (no per-row work)."""
    offsets = np.arange(0, (len(values) + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(
        len(values), pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(values).tobytes())
    )


def _nhs_ids(column: pa.ChunkedArray) -> np.ndarray:
    """Return each row's NHS number as an integer, or -1 where it is not a valid one.

    Spaces and dashes are allowed (943 476 5919); the Modulus 11 check is vectorised.
    """
    array = column.combine_chunks()
    ids = np.full(len(array), -1, dtype=np.int64)
    matrix = _fixed_width(array, 10)
    rows = None
    if matrix is None:  # not all plain 10-digit strings: normalise, then take those of 10
        array = pc.replace_substring_regex(array, r"[ -]", "")
        offsets, data = _string_buffers(array)
        rows = np.flatnonzero(np.diff(offsets) == 10)
        matrix = data[offsets[rows][:, None] + np.arange(10)]
    digits = matrix - np.uint8(48)  # a byte below "0" wraps past 9
    # Products in floating point (BLAS): exact, as every sum is an integer below 2**53.
    floats = digits.astype(np.float64)
    check = 11 - (floats[:, :9] @ _WEIGHTS).astype(np.int64) % 11
    check[check == 11] = 0
    valid = (digits <= 9).all(axis=1) & (check == digits[:, 9])
    values = np.where(valid, (floats @ _POWER_FLOATS).astype(np.int64), -1)
    if rows is None:
        ids = values
    else:
        ids[rows] = values
    return ids


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
        statuses = np.zeros(count, dtype=np.uint8)
        for number, reasons in self.exclusions(ids).items():
            reasons = list(reasons)
            at = int(np.searchsorted(ids, number))
            if reasons and at < count and ids[at] == number:
                statuses[at] = (
                    TYPE1 if "type1" in reasons else REASON_STATUS.get(reasons[0], NATIONAL)
                )
        self.status[start : start + count] = statuses
        self.numbers[start : start + count] = numbers
        self.size += count
        return start

    def _grow(self, size: int) -> None:
        if size <= len(self.codes):
            return
        capacity = max(size, 2 * len(self.codes), 1024)
        for name, dtype in (("codes", f"S{CODE_LENGTH}"), ("numbers", "S10"), ("status", np.uint8)):
            old = getattr(self, name)
            new = np.zeros(capacity, dtype=dtype)
            new[: len(old)] = old
            setattr(self, name, new)


def _read_block(
    block: Block, header: list[str], columns: list[str], on_invalid: Callable | None
) -> pa.Table:
    """Parse the named columns of a block's records as strings (`on_invalid`: pyarrow's
    handler of records with the wrong number of fields)."""
    if not block.data:
        return pa.table({c: pa.array([], pa.string()) for c in columns})
    # One thread: the job's chunks already keep every core busy, one process each.
    return pcsv.read_csv(
        pa.py_buffer(block.data),
        read_options=pcsv.ReadOptions(column_names=header, use_threads=False, block_size=1 << 24),
        parse_options=pcsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
        convert_options=pcsv.ConvertOptions(
            column_types={c: pa.string() for c in columns},
            include_columns=columns,
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


@dataclass
class Pseudonymiser:
    """Transform parsed blocks of one byte range of an extract."""

    header: list[str]
    mapping: Mapping
    key: bytes
    exclusions: Exclusions
    reference_date: dt.date
    report: Report = field(default_factory=Report)
    table: NumberTable | None = None

    def __post_init__(self) -> None:
        if self.table is None:
            self.table = NumberTable(self.key, self.exclusions)
        self._practice_ids: dict[str, int] = {}
        self._practice_names: list[str] = []
        # What this chunk's vault already holds: per slot, the practice written for it (-1:
        # none yet); a patient met at a second practice (rare) is kept in the set.
        self._vault_practice = np.zeros(0, dtype=np.int64)
        self._vault_more: set[int] = set()
        self._kept = [c for c in self.header if c not in self.mapping.drop]
        self._rules = {g.column: g.rule for g in self.mapping.generalise}
        self._out_header = self.mapping.output_header(self.header)
        self._wrote_header = False

    # -- one block ---------------------------------------------------------------
    def parse(self, block: Block) -> tuple[pa.Table, np.ndarray]:
        """Parse a block; records with the wrong number of fields go to the report by line."""
        wrong: list[int] = []

        def count_wrong(row: object) -> str:
            wrong.append(1)
            return "skip"

        table = self._read(block, count_wrong)
        if not wrong and block.lines is None and block.one_record_per_line(table.num_rows):
            return table, np.arange(block.first_line, block.first_line + table.num_rows)
        block = block.exact()
        if wrong:
            # Rare: find which records were wrong, report them by line, parse the rest.
            fields = block.field_counts()
            bad = fields != len(self.header)
            for i in np.flatnonzero(bad):
                self.report.rows_in += 1
                self.report.invalid(
                    int(block.lines[i]),
                    f"expected {len(self.header)} columns, found {int(fields[i])}",
                )
            block = block.without(bad)
            table = self._read(block, None)
        if table.num_rows != len(block.lines):
            raise ExtractError(
                f"Lines {int(block.lines[0])}-{int(block.lines[-1])}: the file could not be read "
                "record by record (a stray quote mark?)."
            )
        return table, block.lines

    def _read(self, block: Block, on_invalid: Callable | None) -> pa.Table:
        # Dropped identifiers are never materialised.
        return _read_block(block, self.header, self._kept, on_invalid)

    def transform(self, table: pa.Table, lines: np.ndarray) -> tuple[pa.Table, pa.Table | None]:
        """Return (output rows, new vault rows: pseudonym, practice, nhs_number) of one block.

        First decide which rows go (invalid, opted out), then build the output columns
        from the rows that stay only.
        """
        report = self.report
        report.rows_in += table.num_rows
        numbers = self.table
        slot = numbers.slots(_nhs_ids(table.column(self.mapping.nhs_number)))
        known = slot >= 0
        status = np.where(known, numbers.status[np.maximum(slot, 0)], INVALID)

        problems: list[tuple[np.ndarray, str]] = [(status == INVALID, "invalid NHS number")]
        generalised: dict[str, pa.Array] = {}
        for name, rule in self._rules.items():
            if GENERALISE_RULES[rule] == "date":
                values, bad = self._generalise_date(table.column(name), rule)
                problems.append((bad, f"bad date in {name}"))
                generalised[name] = values

        invalid = np.zeros(table.num_rows, dtype=bool)
        for mask, message in problems:
            for i in np.flatnonzero(mask & ~invalid):
                report.invalid(int(lines[i]), message)
            invalid |= mask
        type1 = (status == TYPE1) & ~invalid
        national = (status == NATIONAL) & ~invalid
        report.excluded["type1"] += int(type1.sum())
        report.excluded["national"] += int(national.sum())
        keep = ~(invalid | type1 | national)
        everyone = bool(keep.all())
        mask = None if everyone else pa.array(keep)
        kept_slots = slot if everyone else slot[keep]

        columns: dict[str, pa.Array] = {}
        for name in self.header:
            if name == self.mapping.nhs_number:
                columns["pseudonym"] = _strings(numbers.codes[kept_slots], CODE_LENGTH)
            elif name in self.mapping.drop:
                continue
            elif name in self._rules:
                rule = self._rules[name]
                values = generalised.get(name)
                if values is None:
                    values = self._district(table.column(name))
                columns[f"{name}_{rule}"] = values if mask is None else values.filter(mask)
            else:
                column = table.column(name)
                columns[name] = _neutralise(column if mask is None else column.filter(mask))
        out = pa.table(columns)
        report.rows_out += out.num_rows
        practice = table.column(self.mapping.practice)
        return out, self._new_vault_rows(
            kept_slots, practice if mask is None else practice.filter(mask)
        )

    def _new_vault_rows(self, slot: np.ndarray, practice: pa.ChunkedArray) -> pa.Table | None:
        """Return the (pseudonym, practice, NHS number) pairs this job has not written yet."""
        if not len(slot):
            return None
        encoded = pc.dictionary_encode(practice).combine_chunks()
        ids = self._practice_ids
        local = np.array(
            [ids.setdefault(n, len(ids)) for n in encoded.dictionary.to_pylist()], dtype=np.int64
        )
        if len(ids) > len(self._practice_names):
            self._practice_names = sorted(ids, key=ids.get)
        practice_of_row = local[encoded.indices.to_numpy(zero_copy_only=False)]
        if len(self._vault_practice) < self.table.size:
            grown = np.full(max(self.table.size, 2 * len(self._vault_practice)), -1, np.int64)
            grown[: len(self._vault_practice)] = self._vault_practice
            self._vault_practice = grown
        # Patients written for the first time: their first row's practice.
        rows = np.flatnonzero(self._vault_practice[slot] < 0)
        order = np.argsort(slot[rows], kind="stable")
        ordered = slot[rows][order]
        first = np.ones(len(ordered), dtype=bool)
        first[1:] = ordered[1:] != ordered[:-1]
        new_slots = ordered[first]
        self._vault_practice[new_slots] = practice_of_row[rows[order[first]]]
        fresh = new_slots * 65536 + self._vault_practice[new_slots]
        # Rows at a practice other than the one written for their patient.
        other = self._vault_practice[slot] != practice_of_row
        if other.any():
            pairs = set((slot[other] * 65536 + practice_of_row[other]).tolist())
            more = sorted(pairs - self._vault_more)
            self._vault_more.update(more)
            fresh = np.concatenate((fresh, np.array(more, dtype=np.int64)))
        if not len(fresh):
            return None
        slots, practices = fresh // 65536, fresh % 65536
        return pa.table(
            {
                "pseudonym": _strings(self.table.codes[slots], CODE_LENGTH),
                "practice": pc.take(pa.array(self._practice_names, pa.string()), practices),
                "nhs_number": _strings(self.table.numbers[slots], 10),
            }
        )

    def _generalise_date(self, column: pa.ChunkedArray, rule: str) -> tuple[pa.Array, np.ndarray]:
        """Generalise a column of dates: ISO dates at numpy speed, any other shape by arrow."""
        array = column.combine_chunks()
        fast = self._generalise_iso_dates(array, rule)
        if fast is not None:
            return fast
        encoded = pc.dictionary_encode(array)
        values, bad = self._generalise_dates(encoded.dictionary, rule)
        indices = encoded.indices
        return pc.take(values, indices), bad[indices.to_numpy(zero_copy_only=False)]

    def _generalise_iso_dates(
        self, array: pa.Array, rule: str
    ) -> tuple[pa.Array, np.ndarray] | None:
        """Generalise a column whose values are all YYYY-MM-DD, or return None."""
        matrix = _fixed_width(array, 10)
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
            ref = self.reference_date
            later = (month * 100 + day) > (ref.month * 100 + ref.day)
            age = ref.year - year - later
            bad |= age < 0
            labels = pc.take(_AGE_BANDS, pa.array(np.clip(age // 5, 0, 18)))
        if bad.any():
            labels = pc.if_else(pa.array(bad), "", labels)
        return labels, bad

    def _generalise_dates(self, column: pa.Array, rule: str) -> tuple[pa.Array, np.ndarray]:
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
            ref = self.reference_date
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

    @staticmethod
    def _district(column: pa.ChunkedArray) -> pa.Array:
        encoded = pc.dictionary_encode(column).combine_chunks()
        compact = pc.utf8_upper(pc.replace_substring(encoded.dictionary, " ", ""))
        valid = pc.match_substring_regex(compact, _POSTCODE)
        districts = pc.if_else(valid, pc.utf8_slice_codeunits(compact, 0, -3), "")
        return pc.take(districts, encoded.indices)

    # -- whole streams -------------------------------------------------------------
    def write(self, out: pa.Table, sink: BinaryIO) -> None:
        options = pcsv.WriteOptions(include_header=not self._wrote_header, quoting_style="needed")
        if not self._wrote_header:
            # The extract's own column names come out too: neutralised like its cells.
            out = out.rename_columns([csv_safe.neutralise(c) for c in self._out_header])
            self._wrote_header = True
        pcsv.write_csv(out, sink, options)


_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_AGE_BANDS = pa.array([f"{low}-{low + 4}" for low in range(0, 90, 5)] + ["90+"])
_RISKY_FIRST_BYTE = np.zeros(256, dtype=bool)  # by byte: may a formula start with it?
_RISKY_FIRST_BYTE[[ord(c) for c in csv_safe.FORMULA_FIRST_CHARS]] = True


def _neutralise(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Prefix cells a spreadsheet would run as a formula with an apostrophe (numbers stay).

    The vectorised shape of csv_safe.neutralise (tested to agree with it).
    """
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    offsets, data = _string_buffers(array)
    starts = offsets[:-1][np.diff(offsets) > 0]
    if not _RISKY_FIRST_BYTE[data[starts]].any():
        return array
    first = pc.utf8_slice_codeunits(array, 0, 1)
    starts_risky = pc.is_in(first, value_set=_FORMULA_CHARS)
    risky = pc.and_(starts_risky, pc.invert(pc.match_substring_regex(array, _NUMBER)))
    return pc.if_else(risky, pc.binary_join_element_wise("'", array, ""), array)


def pseudonymise(
    source: BinaryIO,
    sink: BinaryIO,
    vault_sink: BinaryIO | None,
    *,
    header: list[str],
    mapping: Mapping,
    key: bytes,
    exclusions: Exclusions,
    reference_date: dt.date,
    progress: Callable[[int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    has_header: bool = True,
    first_line: int = 1,
    write_header: bool = True,
    table: NumberTable | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> Report:
    """Run the whole pipeline over one plaintext stream; return the report.

    1. Split the stream into blocks of whole records (bad and blank ones set aside).
    2. Parse each block, resolve its distinct NHS numbers (valid? opted out? code),
       generalise, drop, neutralise and filter.
    3. Write the coded rows to `sink` and the re-identification vault to `vault_sink`.
    """
    worker = Pseudonymiser(header, mapping, key, exclusions, reference_date, table=table)
    worker._wrote_header = not write_header
    wrote_vault_header = False
    blocks = iter_blocks(
        source,
        columns=len(header),
        report=worker.report,
        progress=progress,
        has_header=has_header,
        first_line=first_line,
        block_bytes=block_bytes,
    )
    for block in blocks:
        if cancelled is not None and cancelled():
            raise JobCancelled
        out, vault = worker.transform(*worker.parse(block))
        worker.write(out, sink)
        if vault_sink is not None and vault is not None:
            pcsv.write_csv(
                vault, vault_sink, pcsv.WriteOptions(include_header=not wrote_vault_header)
            )
            wrote_vault_header = True
    if not worker._wrote_header:
        worker.write(pa.table({c: pa.array([], pa.string()) for c in worker._out_header}), sink)
    worker.report.invalid_rows.sort(key=lambda r: r["line"])
    return worker.report


def patients_by_practice(
    source: BinaryIO, *, header: list[str], mapping: Mapping
) -> dict[str, np.ndarray]:
    """Return each practice's distinct valid NHS numbers (as integers) in a plaintext extract.

    Practices are keyed by their code as written, trimmed and in capitals. Records that
    cannot be read and invalid NHS numbers are left out (the job's report names them).
    """
    found: dict[str, list[np.ndarray]] = {}
    columns = [mapping.nhs_number, mapping.practice]
    for block in iter_blocks(source, columns=len(header), report=Report()):
        table = _read_block(block, header, columns, lambda row: "skip")
        ids = _nhs_ids(table.column(mapping.nhs_number))
        practices = pc.utf8_upper(pc.utf8_trim_whitespace(table.column(mapping.practice)))
        encoded = pc.dictionary_encode(practices).combine_chunks()
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        for index, practice in enumerate(encoded.dictionary.to_pylist()):
            numbers = ids[(codes == index) & (ids >= 0)]
            if numbers.size:
                found.setdefault(practice, []).append(numbers)
    return {practice: np.unique(np.concatenate(parts)) for practice, parts in found.items()}


class RangeReader(io.RawIOBase):
    """Read the whole records of a byte range of a CSV stream.

    A range [start, end) is widened to record boundaries: it begins at the first record
    boundary at or after `start` (0 stays 0) and ends at the first at or after `end`, so
    consecutive ranges meet exactly. `first_line` is the file line where it begins.
    Quote parity and line counts are carried over the bytes skipped.
    """

    def __init__(
        self,
        source: BinaryIO,
        start: int,
        end: int,
        block_bytes: int = BLOCK_BYTES,
        *,
        offset: int = 0,
        newlines: int = 0,
        quotes_odd: bool = False,
        at_boundary: bool = True,
        parity_known_at: tuple[int, bool] | None = None,
    ) -> None:
        """`source` may begin later in the file: at `offset`, after `newlines` newlines and
        an odd or even number of quote marks, at a record boundary or not.

        `parity_known_at` (a file offset at or before `end`, and whether an odd number of
        quote marks precede it) spares counting the quote marks of the whole range: only
        those after it matter, to find where the range ends.
        """
        self._source = source
        self._block = block_bytes
        self._buf = b""
        self._offset = offset  # file offset of _buf[0]
        self._parity = int(quotes_odd)  # quote parity before _buf[0]
        self._newlines = newlines  # newlines before _buf[0]
        self._counting_lines = True
        self._eof = False
        self._stop: int | None = None  # file offset where the range ends, once known
        self._end = end
        self._known = parity_known_at if parity_known_at and parity_known_at[0] <= end else None
        if start <= offset and (at_boundary or offset == 0):
            self.begin = offset
        else:
            self.begin = self._boundary_at_or_after(max(start, offset + 1))
        self._drop_before(self.begin)
        self.first_line = self._newlines + 1
        self._counting_lines = False

    def readable(self) -> bool:
        return True

    def _fill(self, at_least: int = 1) -> bool:
        """Read until the buffer holds `at_least` more bytes or the source ends."""
        pieces = [self._buf] if self._buf else []
        got = 0
        while got < at_least:
            chunk = self._source.read(self._block)
            if not chunk:
                self._eof = True
                break
            pieces.append(chunk)
            got += len(chunk)
        if len(pieces) == 1:
            self._buf = bytes(pieces[0])
        elif pieces:
            self._buf = b"".join(pieces)
        return got > 0

    def _take(self, count: int) -> bytes:
        """Remove and return the buffer's first `count` bytes, keeping parity and lines."""
        if count >= len(self._buf):
            taken, self._buf = self._buf, b""
        else:
            taken, self._buf = self._buf[:count], self._buf[count:]
        start, self._offset = self._offset, self._offset + len(taken)
        if self._counting_lines:  # lines matter only before the range begins
            self._newlines += taken.count(b"\n")
        if self._known is None or self._counting_lines:
            self._parity ^= taken.count(b'"') & 1
            if self._known is not None and self._offset >= self._known[0]:
                self._known = None  # counted past the known point: no longer needed
        elif self._offset > self._known[0]:  # from the known point on, count again
            at, odd = self._known
            self._known = None
            tail = taken[at - start :] if at > start else taken
            self._parity = int(odd) ^ (tail.count(b'"') & 1)
        return taken

    def _drop_before(self, position: int) -> None:
        self._take(position - self._offset)

    def _boundary_at_or_after(self, target: int) -> int:
        """Return the first record boundary at or after the file offset `target` (or EOF)."""
        while True:
            while self._offset + len(self._buf) < target and self._fill():
                if len(self._buf) > 4 * self._block and self._offset + len(self._buf) < target - 1:
                    self._drop_before(self._offset + len(self._buf) - 1)
            if self._offset + len(self._buf) < target:
                return self._offset + len(self._buf)
            if self._known is not None and not self._counting_lines:
                # The parity here was not counted: take it from the known point.
                at, odd = self._known
                self._known = None
                self._parity = int(odd) ^ (self._buf[: at - self._offset].count(b'"') & 1)
            arr = np.frombuffer(self._buf, dtype=np.uint8)
            parity = np.bitwise_xor.accumulate((arr == _QUOTE).view(np.uint8)) ^ self._parity
            newlines = np.flatnonzero((arr == _NEWLINE) & (parity == 0))
            after = newlines[newlines >= target - 1 - self._offset]
            if after.size:
                return self._offset + int(after[0]) + 1
            if not self._fill():
                return self._offset + len(self._buf)
            target = max(target, self._offset + 1)

    def read(self, size: int = -1) -> bytes:
        want = size if size and size > 0 else 1 << 40
        if self._stop is None and len(self._buf) < want and not self._eof:
            self._fill(
                min(want - len(self._buf), max(self._end - self._offset - len(self._buf), 1))
            )
        if self._stop is None and (self._offset + len(self._buf) >= self._end or self._eof):
            self._stop = (
                self.begin if self._end <= self.begin else self._boundary_at_or_after(self._end)
            )
        limit = (self._stop - self._offset) if self._stop is not None else len(self._buf)
        return self._take(max(0, min(want, limit)))
