"""Where the records of a CSV extract start and end: quote parity, blocks, byte ranges."""

from __future__ import annotations

import bisect
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from datasets.pipeline.report import ExtractError, Report

BLOCK_BYTES = 2 * 1024 * 1024  # small enough that a block's temporaries stay in the CPU's caches
MAX_RECORD_BYTES = 1024 * 1024

_QUOTE, _NEWLINE, _COMMA, _CR = 34, 10, 44, 13

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


def _read_pieces(source: BinaryIO, size: int) -> list[bytes]:
    """Read up to `size` bytes, as the pieces the source returns (none at its end).

    A reader may return less than asked (the decrypting reader: one segment of Tink's
    stream, 1 MB): a block is still about `size` bytes, and joined once.
    """
    pieces: list[bytes] = []
    got = 0
    while got < size:
        piece = source.read(size - got)
        if not piece:
            break
        pieces.append(piece)
        got += len(piece)
    return pieces


def _ends_outside_quotes(arr: np.ndarray, quoted: bool) -> bool:
    """Whether the last byte of `arr` (a newline) is outside quotes: an even number of
    quote marks come before it. Then a block may end there."""
    return not (quoted and np.count_nonzero(arr == _QUOTE) & 1)


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
        pieces = _read_pieces(source, block_bytes)
        consumed += sum(len(p) for p in pieces)
        last = pieces[-1] if pieces else b""
        j = last.rfind(b"\n") + 1 if header_done else 0
        if j:
            # The block would end at the last newline read: made in one copy (joining
            # the carry and what was read, then slicing, would copy everything twice).
            if carry or len(pieces) > 1:
                head = b"".join((carry, *pieces[:-1], memoryview(last)[:j]))
            else:
                head = last[:j]
            arr = np.frombuffer(head, dtype=np.uint8)
            if _ends_outside_quotes(arr, b'"' in head):
                newlines = int(np.count_nonzero(arr == _NEWLINE))
                yield Block(head, line, newlines)
                line += newlines
                carry = last[j:]
                if progress is not None:
                    progress(consumed - len(carry))
                continue
        chunk = b"".join(pieces) if len(pieces) > 1 else last
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
        if header_done and cut and _ends_outside_quotes(arr, quoted):
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


# How many record starts an extract keeps: enough that chunks of a few MiB can be cut
# anywhere in a file of many GiB, few enough for a JSON field.
MAX_RECORD_STARTS = 4096


class RecordStarts:
    """Find where records start as an extract streams past: the one owner of that question.

    A record starts at byte 0 and after each newline outside quotes (an even number of
    quote marks before it). For each multiple of `step` bytes this keeps the first record
    start at or after it, with the newlines before it; `step` doubles (keeping every other
    multiple) whenever more than `max_starts` would be kept, so a file of any size is
    described in a few thousand numbers, fine enough to cut its jobs' chunks at any size.
    """

    def __init__(self, max_starts: int = MAX_RECORD_STARTS) -> None:
        self.step = 1
        self._max = max_starts
        self._found: list[tuple[int, int]] = [(0, 0)]  # per multiple of step: (start, newlines)
        self._offset = 0  # bytes seen
        self._newlines = 0  # newlines seen
        self._odd = False  # an odd number of quote marks seen

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the extract.

        Only the newlines just after each multiple are looked at; the quote marks and
        newlines between are counted (bytes.count, in C), so this keeps up with the upload.
        """
        end = self._offset + len(data)
        while end // self.step + 1 > self._max:
            self.step *= 2
            self._found = self._found[::2]
        odd, newlines, counted = self._odd, self._newlines, 0  # over data[:counted]
        wanted = len(self._found) * self.step  # the next multiple waiting for its start
        while wanted <= end:
            # A record starts after a newline outside quotes at or after byte wanted - 1.
            newline = data.find(b"\n", max(wanted - 1 - self._offset, counted))
            while newline >= 0:
                odd ^= bool(data.count(b'"', counted, newline) & 1)
                newlines += data.count(b"\n", counted, newline)
                counted = newline
                if not odd:
                    break
                newline = data.find(b"\n", newline + 1)
            if newline < 0:
                break  # the start is in bytes yet to come
            start = self._offset + newline + 1
            while wanted <= start:
                self._found.append((start, newlines + 1))
                wanted += self.step
        self._odd = odd ^ bool(data.count(b'"', counted) & 1)
        self._newlines = newlines + data.count(b"\n", counted)
        self._offset = end

    def starts(self) -> list[list[int]]:
        """Return the distinct record starts found, before the end: [offset, newlines before]."""
        out: list[list[int]] = []
        for start, newlines in self._found:
            if start < self._offset and (not out or out[-1][0] != start):
                out.append([start, newlines])
        return out or [[0, 0]]


def record_starts(source: BinaryIO, *, max_starts: int = MAX_RECORD_STARTS) -> list[list[int]]:
    """Return where the records of a plaintext stream start (see RecordStarts)."""
    finder = RecordStarts(max_starts)
    while chunk := source.read(BLOCK_BYTES):
        finder.feed(chunk)
    return finder.starts()


def record_ranges(starts: list[list[int]], size: int, parts: int) -> list[tuple[int, int, int]]:
    """Cut a file of `size` bytes into at most `parts` ranges of whole records, of near equal
    size, at record starts; return each range's (start, end, first line)."""
    positions = [start for start, _ in starts]
    cuts: list[list[int]] = []
    for i in range(max(1, parts)):
        at = bisect.bisect_left(positions, size * i // max(1, parts))
        if at < len(starts) and (not cuts or cuts[-1][0] != positions[at]):
            cuts.append(starts[at])
    ends = [start for start, _ in cuts[1:]] + [size]
    return [(start, end, newlines + 1) for (start, newlines), end in zip(cuts, ends, strict=True)]


def line_at(starts: list[list[int]], position: int) -> int:
    """Return the file line where the record starting at `position` begins."""
    at = bisect.bisect_left([start for start, _ in starts], position)
    if at == len(starts) or starts[at][0] != position:
        raise ValueError(f"No record starts at byte {position}.")
    return starts[at][1] + 1


class RangeReader(io.RawIOBase):
    """Read the bytes [start, end) of a stream, whose records start at `start`.

    `source` may begin later in the file than byte 0: at `offset`. `first_line` is the
    file line where the range begins (line_at).
    """

    def __init__(
        self,
        source: BinaryIO,
        start: int,
        end: int,
        block_bytes: int = BLOCK_BYTES,
        *,
        offset: int = 0,
        first_line: int = 1,
    ) -> None:
        self._source = source
        self._block = block_bytes
        self.begin = start
        self.first_line = first_line
        skip = start - offset
        while skip > 0:
            piece = source.read(min(skip, block_bytes))
            if not piece:
                break
            skip -= len(piece)
        self._left = max(0, end - start)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        """Return up to `size` bytes of the range (all that is left: size -1 or None).

        With a size, this is one read of the source and may return fewer (b"" only at
        the end): the source's bytes as they are, not copied to fill the size (the job's
        decrypting reader returns one segment of Tink's stream at a time).
        """
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(self._block), b""))
        want = min(size, self._left)
        if want <= 0:
            return b""
        piece = self._source.read(want)
        if not piece:
            self._left = 0
            return b""
        self._left -= len(piece)
        return piece
