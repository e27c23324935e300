"""Read the files that carry NHS numbers in: practice-system CSVs and the national files.

Every reader reports bad lines by the line of the file where the record starts (the
header, where there is one, is line 1), never by a row count.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
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


# --- the national "Check for National Data Opt-outs" service's files -------------------------
# Its format, as organisations that use it describe it: a .dat file, each NHS number
# followed by a comma, LF line ends, no header; named, and sent with the MESH subject and
# local id, <mailbox id>-<DDMMYY>-<4-digit sequence within the month> (odd characters
# there, a colon say, get no reply). The reply has the same form and holds only the
# numbers that may be used; a file it cannot process is answered by a line of text.
LOCAL_ID = re.compile(
    r"^(?P<mailbox>[A-Z0-9]+)-(?P<day>\d{2})(?P<month>\d{2})(?P<year>\d{2})-(?P<seq>\d{4})$"
)
_NUMBER_LIKE = re.compile(r"^[0-9][0-9 \-]*$")
# Words with which the service (or MESH) says it could not process a file.
_ERROR_WORDS = re.compile(r"error|invalid|incorrect|fail|reject|not valid|unable|could not", re.I)


def national_local_id(mailbox: str, day: dt.date, sequence: int) -> str:
    """Return the national service's name of a file: <mailbox>-<DDMMYY>-<NNNN>."""
    if not mailbox.isascii() or not mailbox.isalnum():
        raise ValueError(f"A MESH mailbox id has only letters and digits, not {mailbox!r}.")
    if not 1 <= sequence <= 9999:
        raise ValueError(f"The sequence within the month runs from 1 to 9999, not {sequence}.")
    return f"{mailbox.upper()}-{day:%d%m%y}-{sequence:04d}"


def national_submission(numbers: list[str]) -> bytes:
    """Return the file for the national service: each number and a comma, LF line ends.

    Every number is checked first (ValueError naming the first bad one): the service
    answers a file holding one invalid number with an error, not with the others.
    """
    for position, number in enumerate(numbers, start=1):
        try:
            valid = len(number) == 10 and normalise(number) == number
        except InvalidNHSNumber as exc:
            raise ValueError(f"Number {position} of the submission: {exc}") from None
        if not valid:
            raise ValueError(f"Number {position} of the submission is not 10 digits.")
    return "".join(f"{n},\n" for n in numbers).encode("ascii")


def _number_value(raw: str) -> str:
    """Return a line of a national file without its spaces, quotes and trailing comma."""
    return raw.strip().strip('"').rstrip(",").strip().strip('"')


def number_lines(text: str) -> tuple[list[tuple[int, str]], list[LineError]]:
    """Read a national-service file: one NHS number a line, with or without a comma.

    Return the valid numbers with their line, and the bad lines. Blank lines are
    ignored; CRLF or LF line ends.
    """
    good: list[tuple[int, str]] = []
    bad: list[LineError] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        value = _number_value(raw)
        if not value:
            continue
        try:
            good.append((n, normalise(value)))
        except InvalidNHSNumber as exc:
            bad.append(LineError(n, str(exc)))
    return good, bad


@dataclass(frozen=True)
class NationalReply:
    """What the national service answered: numbers (kind "numbers") or words."""

    kind: str  # "numbers", "error" (it refused the file) or "note" (it said something else)
    text: str = ""

    @property
    def words(self) -> str:
        """Return the service's words, on one line, at most 500 characters."""
        said = " ".join(self.text.split())
        return said if len(said) <= 500 else said[:499] + "…"


def national_reply_kind(text: str) -> NationalReply:
    """Tell a reply of numbers from the service's words (an error, or another message).

    A file with any line that looks like a number is a reply of numbers (its bad lines
    are then named by number_lines); an empty file is one too (nobody may be used). A
    file of words is the service's error where it says so, else a note (such as that a
    job was created for the file): never read as "everyone opted out".
    """
    lines = [_number_value(raw) for raw in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines or any(_NUMBER_LIKE.match(line) for line in lines):
        return NationalReply("numbers")
    kind = "error" if _ERROR_WORDS.search(text) else "note"
    return NationalReply(kind, text.strip())


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
