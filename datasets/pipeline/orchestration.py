"""Run the pipeline over a byte range: plaintext CSV stream in, coded CSV stream out.

Pure Python (no Django), so that it can be tested and measured on its own. The
caller decrypts the extract into `source` and encrypts what is written to `sink`;
no plaintext touches the disk here.

Speed comes from four things:
1. Blocks end at record boundaries, and the report must name each bad record's
   line. A plain block (each line one record, see datasets.pipeline.records) has
   its fields found in C; any other is parsed by pyarrow, where a structural scan
   (numpy) finds each record's start by quote parity if lines and records differ.
2. Only the columns the rules need are gathered (NHS number, dates, postcodes,
   practice); pyarrow.compute and numpy generalise and filter them column by column.
3. Each distinct NHS number is validated, looked up in the opt-out register and
   hashed once per worker and job (HMAC-SHA256 in C, datasets.native; a hash table
   in C finds the numbers already seen).
4. The coded records of a plain block are written in C straight from its fields and
   the rules' results; other blocks are written by pyarrow, byte for byte the same.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from consent.reasons import OptOutReason
from datasets.pipeline.framing import BLOCK_BYTES, Block, iter_blocks
from datasets.pipeline.mapping import GENERALISE_RULES, Mapping
from datasets.pipeline.number_table import INVALID, NATIONAL, TYPE1, Exclusions, NumberTable
from datasets.pipeline.records import Records
from datasets.pipeline.report import ExtractError, JobCancelled, Report
from datasets.pipeline.transforms import (
    _RISKY_FIRST_BYTE,
    _district,
    _generalise_date,
    _neutralise,
)
from datasets.pipeline.vault import VaultPairs, VaultRows
from phm_portal.lib import csv_safe, nhs_number


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
    # The pairs the job's vault already holds (datasets.pipeline.vault); this range's new
    # pairs are added to it.
    vault_pairs: VaultPairs = field(default_factory=VaultPairs)

    def __post_init__(self) -> None:
        if self.table is None:
            self.table = NumberTable(self.key, self.exclusions)
        self._kept = [c for c in self.header if c not in self.mapping.drop]
        self._rules = {g.column: g.rule for g in self.mapping.generalise}
        self._out_header = self.mapping.output_header(self.header)
        self._index = {name: i for i, name in enumerate(self.header)}
        self._wrote_header = False

    # -- one block ---------------------------------------------------------------
    def parse(self, block: Block) -> tuple[pa.Table | Records, np.ndarray]:
        """Parse a block; records with the wrong number of fields go to the report by line.

        A plain block (see datasets.pipeline.records) has its fields found in C; any other
        is parsed by pyarrow.
        """
        records = Records.scan(block.data, len(self.header), block.newlines)
        if records is not None:  # one record a line, each record's line known or counted
            if block.lines is not None:
                return records, block.lines
            return records, np.arange(block.first_line, block.first_line + records.num_rows)
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

    def transform(
        self, rows: pa.Table | Records, lines: np.ndarray
    ) -> tuple[pa.Table | bytes, VaultRows | None]:
        """Return (output rows, new vault rows: patient and practice) of one block.

        First decide which rows go (invalid, opted out), then build the output columns
        from the rows that stay only: an Arrow table, or for records found in C the coded
        CSV records themselves.
        """
        report = self.report
        report.rows_in += rows.num_rows
        column = self._column_reader(rows)
        numbers = self.table
        slot = numbers.slots(nhs_number.ids(column(self.mapping.nhs_number)))
        known = slot >= 0
        status = np.where(known, numbers.status[np.maximum(slot, 0)], INVALID)

        problems: list[tuple[np.ndarray, str]] = [(status == INVALID, "invalid NHS number")]
        generalised: dict[str, pa.Array] = {}
        for name, rule in self._rules.items():
            if GENERALISE_RULES[rule] == "date":
                values, bad = _generalise_date(column(name), rule, self.reference_date)
                problems.append((bad, f"bad date in {name}"))
                generalised[name] = values

        invalid = np.zeros(rows.num_rows, dtype=bool)
        for mask, message in problems:
            for i in np.flatnonzero(mask & ~invalid):
                report.invalid(int(lines[i]), message)
            invalid |= mask
        type1 = (status == TYPE1) & ~invalid
        national = (status == NATIONAL) & ~invalid
        report.excluded[OptOutReason.TYPE1] += int(type1.sum())
        report.excluded[OptOutReason.NATIONAL] += int(national.sum())
        keep = ~(invalid | type1 | national)
        everyone = bool(keep.all())
        mask = None if everyone else pa.array(keep)
        kept_slots = slot if everyone else slot[keep]

        # Each output column: a computed array of the kept rows, or the name of a column
        # that flows as it is (formulas neutralised).
        columns: dict[str, pa.Array | str] = {}
        for name in self.header:
            if name == self.mapping.nhs_number:
                columns["pseudonym"] = numbers.codes_of(kept_slots)
            elif name in self.mapping.drop:
                continue
            elif name in self._rules:
                rule = self._rules[name]
                values = generalised.get(name)
                if values is None:
                    values = _district(column(name))
                columns[f"{name}_{rule}"] = values if mask is None else values.filter(mask)
            else:
                columns[name] = name
        report.rows_out += int(np.count_nonzero(keep))
        if isinstance(rows, Records):
            out = self._records_out(rows, keep, columns)
            practice = rows.column(self._index[self.mapping.practice], None if everyone else keep)
        else:
            out = pa.table(
                {
                    name: _neutralise(self._kept_rows(rows.column(value), mask))
                    if isinstance(value, str)
                    else value
                    for name, value in columns.items()
                }
            )
            practice = self._kept_rows(rows.column(self.mapping.practice), mask)
        return out, self.vault_pairs.new_rows(self.table, kept_slots, pa.chunked_array([practice]))

    def _column_reader(self, rows: pa.Table | Records) -> Callable[[str], pa.ChunkedArray]:
        if isinstance(rows, Records):
            return lambda name: pa.chunked_array([rows.column(self._index[name])])
        return rows.column

    @staticmethod
    def _kept_rows(column: pa.ChunkedArray, mask: pa.Array | None) -> pa.Array:
        column = column.combine_chunks()
        return column if mask is None else column.filter(mask)

    def _records_out(
        self, rows: Records, keep: np.ndarray, columns: dict[str, pa.Array | str]
    ) -> bytes:
        plan: list[int | pa.Array] = []
        for value in columns.values():
            if not isinstance(value, str):
                plan.append(value)
            elif rows.any_starts_with(self._index[value], _RISKY_FIRST_BYTE):
                plan.append(_neutralise(rows.column(self._index[value], keep)))
            else:  # nothing to neutralise: the field's bytes are written as they are
                plan.append(self._index[value])
        return rows.write(keep, plan)

    # -- whole streams -------------------------------------------------------------
    def write(self, out: pa.Table | bytes, sink: BinaryIO) -> None:
        if not self._wrote_header:
            # The extract's own column names come out too: neutralised like its cells.
            names = [csv_safe.neutralise(c) for c in self._out_header]
            empty = pa.Table.from_arrays([pa.array([], pa.string())] * len(names), names=names)
            pcsv.write_csv(empty, sink, pcsv.WriteOptions(quoting_style="needed"))
            self._wrote_header = True
        if isinstance(out, bytes):
            sink.write(out)
        else:
            pcsv.write_csv(
                out,
                sink,
                pcsv.WriteOptions(include_header=False, quoting_style="needed", batch_size=1 << 20),
            )


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
    vault_rows: Callable[[VaultRows], None] | None = None,
    vault_pairs: VaultPairs | None = None,
) -> Report:
    """Run the whole pipeline over one plaintext stream; return the report.

    1. Split the stream into blocks of whole records (bad and blank ones set aside).
    2. Parse each block, resolve its distinct NHS numbers (valid? opted out? code),
       generalise, drop, neutralise and filter.
    3. Write the coded rows to `sink` and the re-identification vault to `vault_sink`
       (each block's new vault rows are also given to `vault_rows`: the index's), leaving
       out the pairs `vault_pairs` holds (the job's published parts'; it is added to).
    """
    worker = Pseudonymiser(
        header,
        mapping,
        key,
        exclusions,
        reference_date,
        table=table,
        vault_pairs=VaultPairs() if vault_pairs is None else vault_pairs,
    )
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
            # A block's vault rows in one write (pyarrow writes 1,024 rows a call by
            # default; each call to the encrypting stream costs tens of microseconds).
            pcsv.write_csv(
                vault.table(),
                vault_sink,
                pcsv.WriteOptions(include_header=not wrote_vault_header, batch_size=1 << 20),
            )
            wrote_vault_header = True
        if vault_rows is not None and vault is not None:
            vault_rows(vault)
    if not worker._wrote_header:
        worker.write(b"", sink)
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
        ids = nhs_number.ids(table.column(mapping.nhs_number))
        practices = pc.utf8_upper(pc.utf8_trim_whitespace(table.column(mapping.practice)))
        encoded = pc.dictionary_encode(practices).combine_chunks()
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        for index, practice in enumerate(encoded.dictionary.to_pylist()):
            numbers = ids[(codes == index) & (ids >= 0)]
            if numbers.size:
                found.setdefault(practice, []).append(numbers)
    return {practice: np.unique(np.concatenate(parts)) for practice, parts in found.items()}
