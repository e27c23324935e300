"""Which column of an extract is what, and how each is generalised: the job's mapping."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

GENERALISE_RULES = {
    "year": "date",
    "age_band_5": "date",
    "district": "postcode",
}


class MissingColumn(ValueError):
    """The mapping names a column the file's header lacks; `header` lists what it has."""

    def __init__(self, column: str, header: list[str]) -> None:
        super().__init__(f"The mapping names column {column!r}, which the file does not have.")
        self.column = column
        self.header = header


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
