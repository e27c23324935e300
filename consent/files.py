"""Read the files that carry NHS numbers in: practice-system CSVs and the national files.

Every reader reports bad lines by the line of the file where the record starts (the
header, where there is one, is line 1), never by a row count.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass

from phm_portal.errors import InvalidInput
from phm_portal.lib import upload_checks
from phm_portal.lib.nhs_number import InvalidNHSNumber, normalise


@dataclass(frozen=True)
class LineError:
    line: int
    error: str

    def as_dict(self) -> dict:
        return {"line": self.line, "error": self.error}


def decode_text(data: bytes, *, field: str) -> str:
    """Return the file as text: UTF-8, with or without a byte order mark."""
    problem = upload_checks.kind_problem(data[:16])
    if problem is not None:
        raise InvalidInput(problem, field=field)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInput(
            f"Line {line}: the file is not UTF-8 text (save it as CSV UTF-8).",
            field=field,
            details=[{"line": line, "error": "not UTF-8 text"}],
        ) from None


def csv_records(text: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (line where the record starts, fields), skipping blank lines.

    The csv module reads CRLF or LF line ends and quoted fields (which may hold commas
    or even line breaks, hence the start line is tracked rather than counted).
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InvalidInput(
                f"Line {reader.line_num}: {exc}.",
                field="file",
                details=[{"line": reader.line_num, "error": f"not valid CSV: {exc}"}],
            ) from None
        if row and any(cell.strip() for cell in row):
            yield start, row
        start = reader.line_num + 1


def number_lines(text: str) -> tuple[list[tuple[int, str]], list[LineError]]:
    """Read a national-service file: one NHS number a line, no header.

    Return the valid numbers with their line, and the bad lines. Blank lines are
    ignored; CRLF or LF line ends.
    """
    good: list[tuple[int, str]] = []
    bad: list[LineError] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        value = raw.strip().strip('"')
        if not value:
            continue
        try:
            good.append((n, normalise(value)))
        except InvalidNHSNumber as exc:
            bad.append(LineError(n, str(exc)))
    return good, bad


def parse_date(value: str) -> dt.date:
    """Return a date written YYYY-MM-DD, or DD/MM/YYYY as practice systems export it."""
    value = value.strip()
    if len(value) == 10 and value[4] == "-":
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(value, fmt).date()  # noqa: DTZ007 - a calendar date
        except ValueError:
            continue
    raise ValueError(f"{value!r} is not a date (use YYYY-MM-DD)")
