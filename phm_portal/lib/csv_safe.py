"""CSV that a spreadsheet opens as data: every CSV the portal writes goes through here.

A spreadsheet runs a cell that starts with = + - @ (or a tab or carriage return before
one) as a formula: "=HYPERLINK(...)" in a purpose or a user name would run on the
reader's machine (CSV injection, OWASP). Such a cell is written with a single quote in
front, which spreadsheets show as text and do not run.

A plain number ("-5", "+44", "3.25") is left as it is: a spreadsheet reads it as that
number and runs nothing, and it must stay a number for whoever analyses the file.
Anything else after the sign ("-2+3", "+A1", "-1e3") is neutralised.

The pseudonymisation pipeline writes its output with Arrow, many rows at a time; its
vectorised rule (datasets.pipeline.transforms._neutralise) takes its characters and its notion of a
plain number from here, and the two are tested to agree on one table of inputs.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any

# A cell starting with one of these is run as a formula by some spreadsheet.
FORMULA_FIRST_CHARS = "=+-@\t\r"
# A plain number, which may start with a sign and is left alone. RE2 (Arrow) syntax too:
# anchored at both ends, ASCII digits only.
PLAIN_NUMBER = r"^[+-]?[0-9]+([.][0-9]+)?$"
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:[.][0-9]+)?")  # fullmatch: no trailing newline

PREFIX = "'"


def is_dangerous(text: str) -> bool:
    """Say whether a spreadsheet could run the cell as a formula."""
    return bool(text) and text[0] in FORMULA_FIRST_CHARS and _PLAIN_NUMBER.fullmatch(text) is None


def neutralise(value: Any) -> Any:
    """Return the cell with a quote in front if a spreadsheet could run it; otherwise as given."""
    if value is None:
        return value
    text = value if isinstance(value, str) else str(value)
    return PREFIX + text if is_dangerous(text) else value


class SafeWriter:
    """csv.writer whose every cell is neutralised (see the module's docstring)."""

    def __init__(self, out, **options: Any) -> None:
        options.setdefault("lineterminator", "\r\n")
        self._writer = csv.writer(out, **options)

    @property
    def dialect(self):
        return self._writer.dialect

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([neutralise(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(out, **options: Any) -> SafeWriter:
    """Return a CSV writer (CRLF line ends unless told) that neutralises formulas."""
    return SafeWriter(out, **options)


class DictWriter(csv.DictWriter):
    """csv.DictWriter whose every cell, the header's too, is neutralised."""

    def __init__(self, out, fieldnames, **options: Any) -> None:
        options.setdefault("lineterminator", "\r\n")
        super().__init__(out, fieldnames, **options)
        self.writer = SafeWriter(out, **{k: v for k, v in options.items() if k in _WRITER_OPTIONS})


_WRITER_OPTIONS = {
    "dialect",
    "delimiter",
    "quotechar",
    "escapechar",
    "doublequote",
    "skipinitialspace",
    "lineterminator",
    "quoting",
    "strict",
}
