"""What a job reports about the records it read, and why it stopped."""

from __future__ import annotations

from dataclasses import dataclass, field

from consent.reasons import REPORTED_AS

MAX_INVALID_REPORTED = 1000


class ExtractError(Exception):
    """The extract cannot be processed at all; the message says why, for a CSU admin."""


class JobCancelled(Exception):
    """The job was cancelled between two blocks."""


def no_rows_excluded() -> dict[str, int]:
    """Return the report's rows left out by reason, all none yet: the opt-out register's
    reasons as counted in a report (consent.reasons), and invalid rows."""
    return {**{reason.value: 0 for reason in dict.fromkeys(REPORTED_AS.values())}, "invalid": 0}


@dataclass
class Report:
    rows_in: int = 0
    rows_out: int = 0
    excluded: dict[str, int] = field(default_factory=no_rows_excluded)
    invalid_rows: list[dict] = field(default_factory=list)

    def invalid(self, line: int, error: str) -> None:
        self.excluded["invalid"] += 1
        if len(self.invalid_rows) < MAX_INVALID_REPORTED:
            self.invalid_rows.append({"line": line, "error": error})
