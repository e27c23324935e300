"""The pseudonymisation pipeline on its own: shapes of file, reports, properties."""

import csv
import datetime as dt
import hashlib
import hmac
import io
import random
import shutil

import numpy as np
import pytest

from datasets.pipeline.framing import (
    BLOCK_BYTES,
    RangeReader,
    RecordStarts,
    record_ranges,
    record_starts,
)
from datasets.pipeline.hashing import CODE_LENGTH, NATIVE_HMAC, Hasher
from datasets.pipeline.mapping import Mapping, read_header
from datasets.pipeline.orchestration import pseudonymise
from datasets.pipeline.report import ExtractError
from phm_portal.lib.nhs_number import synthetic

KEY = b"k" * 32
MAPPING = Mapping.from_json(
    {
        "nhs_number": "nhs_number",
        "practice": "practice",
        "drop": ["name"],
        "generalise": [
            {"column": "date_of_birth", "rule": "age_band_5"},
            {"column": "postcode", "rule": "district"},
        ],
    }
)
HEADER = ["nhs_number", "name", "date_of_birth", "postcode", "practice", "note"]


class _Pieces(io.RawIOBase):
    """A stream that returns at most `piece` bytes a read, as the job's decrypting reader
    returns one segment of Tink's stream at a time."""

    def __init__(self, data: bytes, piece: int) -> None:
        self._data = io.BytesIO(data)
        self._piece = piece

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(self._piece if size is None or size < 0 else min(size, self._piece))


def run(
    data: bytes,
    *,
    mapping=MAPPING,
    key=KEY,
    excluded=None,
    header=HEADER,
    chunks=1,
    block_bytes=BLOCK_BYTES,
    piece_bytes=None,
):
    """Run the pipeline over `data` in `chunks` byte ranges, reading blocks of `block_bytes`;
    return (output text, the reports of the ranges). The ranges are cut as a job cuts them,
    at the record starts found as at upload."""
    out = io.BytesIO()
    reports = []
    ranges = record_ranges(record_starts(io.BytesIO(data)), len(data), chunks)
    for i, (start, end, first_line) in enumerate(ranges):
        source = io.BytesIO(data) if piece_bytes is None else _Pieces(data, piece_bytes)
        reader = RangeReader(source, start, end, block_bytes=64, first_line=first_line)
        reports.append(
            pseudonymise(
                reader,
                out,
                None,
                header=header,
                mapping=mapping,
                key=key,
                exclusions=lambda numbers: {
                    int(n): r for n, r in (excluded or {}).items() if int(n) in numbers
                },
                reference_date=dt.date(2026, 11, 22),
                has_header=i == 0,
                first_line=reader.first_line,
                write_header=i == 0,
                block_bytes=block_bytes,
            )
        )
    return out.getvalue().decode(), reports


def code(number: str, key: bytes = KEY) -> str:
    return hmac.new(key, number.encode(), hashlib.sha256).hexdigest()[:CODE_LENGTH]


def rows(text: str) -> list[list[str]]:
    import csv

    return list(csv.reader(io.StringIO(text)))


def test_pseudonymises_drops_and_generalises():
    data = b"nhs_number,name,date_of_birth,postcode,practice,note\n943 476 5919,Ann Smith,1960-03-01,CB1 2AB,A81001,ok\n"
    text, [report] = run(data)
    assert rows(text) == [
        ["pseudonym", "date_of_birth_age_band_5", "postcode_district", "practice", "note"],
        [code("9434765919"), "65-69", "CB1", "A81001", "ok"],
    ]
    assert (report.rows_in, report.rows_out) == (1, 1)


def test_any_common_file_shape_works():
    data = (
        b"\xef\xbb\xbfnhs_number,name,date_of_birth,postcode,practice,note\r\n"
        b'9434765919,"Smith, Ann",01/03/1960,cb12ab,A81001,"two\r\nlines, and ""quotes"""\r\n'
        b"\r\n\r\n"
    )
    text, [report] = run(data)
    assert rows(text)[1] == [
        code("9434765919"),
        "65-69",
        "CB1",
        "A81001",
        'two\r\nlines, and "quotes"',
    ]
    assert (report.rows_in, report.rows_out, report.excluded["invalid"]) == (1, 1, 0)


def test_bad_rows_are_reported_by_the_line_where_they_start():
    data = (
        b"nhs_number,name,date_of_birth,postcode,practice,note\n"
        b'9434765919,Ann,1960-03-01,CB1 2AB,A81001,"a\nmultiline note"\n'  # lines 2-3
        b"9434765918,Bob,1960-03-01,CB1 2AB,A81001,x\n"  # line 4: check digit
        b"9434765919,Cy,1960-13-45,CB1 2AB,A81001,x\n"  # line 5: bad date
        b"9434765919,Di,CB1 2AB,A81001,x\n"  # line 6: five columns
        b"4010232137,Ed,,,A81001,x\n"  # line 7: fine, empty date and postcode
    )
    text, [report] = run(data)
    assert report.invalid_rows == [
        {"line": 4, "error": "invalid NHS number"},
        {"line": 5, "error": "bad date in date_of_birth"},
        {"line": 6, "error": "expected 6 columns, found 5"},
    ]
    assert (report.rows_in, report.rows_out, report.excluded["invalid"]) == (5, 2, 3)
    assert rows(text)[2] == [code("4010232137"), "", "", "A81001", "x"]


def test_opted_out_patients_never_appear_and_are_counted_by_reason():
    data = b"nhs_number,name,date_of_birth,postcode,practice,note\n" + b"".join(
        f"{n},N,1970-01-01,LS2 9JT,B82002,x\n".encode()
        for n in ["9434765919", "4010232137", "9434765919", "9990000018"]
    )
    excluded = {"9434765919": ["type1"], "4010232137": ["national"]}
    text, [report] = run(data, excluded=excluded)
    assert report.excluded == {"type1": 2, "national": 1, "invalid": 0}
    assert code("9434765919") not in text and code("4010232137") not in text
    assert code("9990000018") in text


def test_codes_are_stable_for_one_key_and_differ_for_another():
    data = b"nhs_number,name,date_of_birth,postcode,practice,note\n9434765919,A,1970-01-01,LS2 9JT,B82002,x\n"
    first, _ = run(data)
    again, _ = run(data)
    other, _ = run(data, key=b"another programme key...........")
    assert rows(first)[1][0] == rows(again)[1][0] != rows(other)[1][0]


def test_spreadsheet_formulas_are_neutralised_but_numbers_kept():
    data = (
        b"nhs_number,name,date_of_birth,postcode,practice,note\n"
        b'9434765919,A,1970-01-01,LS2 9JT,B82002,=HYPERLINK("x")\n'
        b"9434765919,A,1970-01-01,LS2 9JT,B82002,-5.5\n"
        b"9434765919,A,1970-01-01,LS2 9JT,B82002,@SUM(A1)\n"
    )
    notes = [r[-1] for r in rows(run(data)[0])[1:]]
    assert notes == ['\'=HYPERLINK("x")', "-5.5", "'@SUM(A1)"]


def test_no_nhs_number_name_or_full_postcode_reaches_the_output():
    rng = random.Random(11)
    patients = [
        (synthetic(rng), f"Name{i}", f"LS{rng.randrange(1, 29)} {rng.randrange(1, 9)}AB")
        for i in range(200)
    ]
    lines = [",".join(HEADER)]
    for _ in range(1000):
        n, name, pc = rng.choice(patients)
        lines.append(f"{n},{name},1980-05-06,{pc},B82002,note")
    text, _ = run(("\n".join(lines) + "\n").encode())
    for n, name, pc in patients:
        assert (
            n not in text
            and name not in text
            and pc not in text
            and pc.replace(" ", "") not in text
        )


@pytest.mark.parametrize("chunks", [2, 3, 7])
def test_chunks_give_the_same_output_and_line_numbers_as_one_run(chunks):
    rng = random.Random(5)
    lines = [",".join(HEADER)]
    for i in range(300):
        n = synthetic(rng) if i % 17 else "123"
        note = rng.choice(["plain", '"quoted, comma"', '"multi\nline"', ""])
        lines.append(f"{n},N{i},1980-05-06,LS2 9JT,B82002,{note}")
        if i % 50 == 0:
            lines.append("")
    data = ("\n".join(lines) + "\n").encode()
    whole, [one] = run(data)
    split, reports = run(data, chunks=chunks)
    assert split == whole
    assert [r for rep in reports for r in rep.invalid_rows] == one.invalid_rows
    assert sum(r.rows_out for r in reports) == one.rows_out


def test_record_starts_fed_in_any_pieces_at_any_granularity_cut_whole_records():
    """Where records start is decided once (RecordStarts, as the upload streams past); the
    starts kept are record starts with their line, and ranges cut there read every byte."""
    rng = random.Random(7)
    notes = ["plain", '"quoted, comma"', '"multi\nline"', '"a ""quote"""', ""]
    data = "".join(f"{i},{rng.choice(notes)}\n" for i in range(60)).encode()
    every = record_starts(io.BytesIO(data), max_starts=len(data) + 1)
    assert len(every) == 60  # one a record
    for start, newlines in every:
        assert start == 0 or (
            data[start - 1 : start] == b"\n" and data[:start].count(b'"') % 2 == 0
        )
        assert data.count(b"\n", 0, start) == newlines
    for max_starts in (2, 5, 16, 4096):
        for piece in (1, 7, 64, len(data)):
            finder = RecordStarts(max_starts)
            for at in range(0, len(data), piece):
                finder.feed(data[at : at + piece])
            starts = finder.starts()
            assert len(starts) <= max_starts and starts[0] == [0, 0]
            assert all(s in every for s in starts), (max_starts, piece)
            for parts in (1, 2, 3, 7):
                ranges = record_ranges(starts, len(data), parts)
                read = [RangeReader(io.BytesIO(data), a, b).read() for a, b, _ in ranges]
                assert b"".join(read) == data
                assert [line for *_, line in ranges] == [
                    data.count(b"\n", 0, a) + 1 for a, *_ in ranges
                ]


def test_an_unclosed_quote_stops_the_job_naming_the_line():
    data = b'nhs_number,name,date_of_birth,postcode,practice,note\n9434765919,"A,1970-01-01,LS2 9JT,B82002,x\n'
    with pytest.raises(ExtractError, match="Line 2: a quoted field is never closed"):
        run(data)


def test_one_enormous_record_stops_the_job():
    data = (
        b"nhs_number,name,date_of_birth,postcode,practice,note\n"
        + b'1,"'
        + b"x" * (2 * 1024 * 1024)
    )
    with pytest.raises(ExtractError, match="longer than 1024 KiB"):
        run(data)


def test_a_file_with_only_a_header_gives_a_header():
    text, [report] = run(b"nhs_number,name,date_of_birth,postcode,practice,note\r\n")
    assert rows(text) == [
        ["pseudonym", "date_of_birth_age_band_5", "postcode_district", "practice", "note"]
    ]
    assert report.rows_in == 0


def test_read_header_names_the_problem():
    assert read_header(b"\xef\xbb\xbfa,b,c\r\n") == ["a", "b", "c"]
    with pytest.raises(ValueError, match="twice: a"):
        read_header(b"a,b,a\n")
    with pytest.raises(ValueError, match="Column 2 of the header has no name"):
        read_header(b"a,,c\n")


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"practice": "p"}, "must name the nhs_number column"),
        (
            {"nhs_number": "n", "practice": "p", "generalise": [{"column": "d", "rule": "decade"}]},
            "Unknown rule 'decade'",
        ),
        ({"nhs_number": "n", "practice": "p", "colour": "red"}, "Unknown mapping key: colour"),
    ],
)
def test_a_bad_mapping_is_named(mapping, message):
    with pytest.raises(ValueError, match=message):
        Mapping.from_json(mapping)


def test_a_mapping_naming_a_missing_column_is_refused_naming_it():
    with pytest.raises(ValueError, match="column 'dob'"):
        Mapping.from_json(
            {
                "nhs_number": "nhs_number",
                "practice": "practice",
                "generalise": [{"column": "dob", "rule": "year"}],
            }
        ).check_columns(HEADER)


def test_the_vault_names_each_patient_once_per_practice_they_were_seen_at():
    rows = [
        "9434765919,Ann,1960-03-01,CB1 2AB,A81001,1",
        "9434765919,Ann,1960-03-01,CB1 2AB,A81001,2",
        "4010232137,Bob,1971-07-15,LS2 9JT,B82002,3",
        "9434765919,Ann,1960-03-01,CB1 2AB,B82002,4",
        "9434765919,Ann,1960-03-01,CB1 2AB,B82002,5",
    ]
    data = (
        "nhs_number,forename,date_of_birth,postcode,practice,event_code\n" + "\n".join(rows) + "\n"
    ).encode()
    vault = io.BytesIO()
    pseudonymise(
        RangeReader(io.BytesIO(data), 0, len(data), block_bytes=64),
        io.BytesIO(),
        vault,
        header=read_header(data),
        mapping=Mapping.from_json({"nhs_number": "nhs_number", "practice": "practice"}),
        key=KEY,
        exclusions=lambda numbers: {},
        reference_date=dt.date(2026, 11, 22),
    )
    entries = sorted(tuple(r) for r in csv.reader(io.StringIO(vault.getvalue().decode())))
    assert entries == sorted(
        [
            ("pseudonym", "practice", "nhs_number"),
            (code("9434765919"), "A81001", "9434765919"),
            (code("9434765919"), "B82002", "9434765919"),
            (code("4010232137"), "B82002", "4010232137"),
        ]
    )


def test_the_number_table_keeps_one_slot_and_code_per_patient_across_many_blocks():
    """More distinct numbers than the table's small index holds, so its indexes merge."""
    from datasets.pipeline.number_table import NumberTable

    rng = random.Random(6)
    patients = sorted({int(synthetic(rng)) for _ in range(90_000)})
    opted_out = set(patients[::97])
    asked: list[int] = []

    def exclusions(numbers):
        asked.extend(numbers.tolist())
        return {int(n): ["type1"] for n in numbers if int(n) in opted_out}

    table = NumberTable(KEY, exclusions)
    slot_of: dict[int, int] = {}
    for block in range(40):
        ids = np.array(rng.choices(patients, k=6_000) + [-1], dtype=np.int64)
        slots = table.slots(ids)
        assert slots[-1] == -1  # an invalid number has no slot
        for number, slot in zip(ids[:-1].tolist(), slots[:-1].tolist(), strict=True):
            assert slot_of.setdefault(number, slot) == slot, f"block {block}: {number} moved"
    assert len(set(slot_of.values())) == len(slot_of) > 1 << 16
    assert sorted(asked) == sorted(slot_of)  # the register is asked about each number once
    for number, slot in list(slot_of.items())[::500]:
        assert table.codes[slot].decode() == code(f"{number:010d}")
        assert table.numbers[slot].decode() == f"{number:010d}"
        assert (table.status[slot] != 0) == (number in opted_out)


def test_the_number_table_asks_the_register_about_numbers_in_the_order_met():
    """The register's masks answer numbers in any order (no sort): each patient's status is
    its own, Type 1 winning over the national opt-out, uncovered patients left out."""
    from consent.reasons import OptOutReason
    from consent.register import OptOutRegister, RegisterResult
    from datasets.pipeline.number_table import NATIONAL, OK, TYPE1, NumberTable
    from phm_portal.lib.number_hash import HashedNumbers

    rng = random.Random(8)
    patients = sorted({int(synthetic(rng)) for _ in range(30_000)})
    covered = np.array(patients[: len(patients) * 9 // 10], dtype=np.int64)  # the rest: unchecked
    opted_out = np.zeros(len(covered), dtype=bool)
    opted_out[::7] = True
    type1 = np.array(patients[::11], dtype=np.int64)
    register = OptOutRegister(RegisterResult(), type1, HashedNumbers(covered, opted_out))
    table = NumberTable(KEY, register)
    shuffled = patients[:]
    rng.shuffle(shuffled)
    slots = table.slots(np.array(shuffled, dtype=np.int64))

    def expected(number: int) -> int:
        if number in set_type1:
            return TYPE1
        at = int(np.searchsorted(covered, number))
        if at == len(covered) or covered[at] != number or opted_out[at]:
            return NATIONAL
        return OK

    set_type1 = set(type1.tolist())
    got = table.status[slots]
    want = np.array([expected(n) for n in shuffled], dtype=np.uint8)
    assert (got == want).all()
    assert {OK, TYPE1, NATIONAL} == set(got.tolist())
    masks = register.exclusion_masks(np.array(shuffled, dtype=np.int64))
    assert masks[OptOutReason.NATIONAL_UNCHECKED].sum() == len(patients) - len(covered)


def _extract_with_known_lines(rng: random.Random, *, plain: bool) -> tuple[bytes, list[dict]]:
    """Return a file of many shapes and the invalid rows a report must name, by line."""
    notes = (
        ["plain", ""] if plain else ["plain", "", '"quoted, comma"', '"multi\nline"', '"a ""q"""']
    )
    lines = ["nhs_number,name,date_of_birth,postcode,practice,note"]
    expected = []
    line = 2  # the file line where the next record starts
    for i in range(400):
        note = rng.choice(notes)
        eol = "\n" if plain or i % 3 else "\r\n"
        kind = rng.random()
        if kind < 0.05:
            lines.append(f"{synthetic(rng)},N{i},1980-05-06,LS2 9JT{eol}")
            expected.append({"line": line, "error": "expected 6 columns, found 4"})
        elif kind < 0.1:
            lines.append(f"123,N{i},1980-05-06,LS2 9JT,B82002,{note}{eol}")
            expected.append({"line": line, "error": "invalid NHS number"})
        elif kind < 0.15:
            lines.append(f"{synthetic(rng)},N{i},1980-13-06,LS2 9JT,B82002,{note}{eol}")
            expected.append({"line": line, "error": "bad date in date_of_birth"})
        else:
            lines.append(f"{synthetic(rng)},N{i},1980-05-06,LS2 9JT,B82002,{note}{eol}")
        line += lines[-1].count("\n")
        if not plain and i % 37 == 0:
            lines.append(eol)  # a blank line
            line += 1
    return ("\n".join(lines[:1]) + "\n" + "".join(lines[1:])).encode(), expected


@pytest.mark.parametrize("plain", [True, False], ids=["one record a line", "many shapes"])
@pytest.mark.parametrize("block_bytes", [16, 61, 300, 4096])
def test_any_block_size_reports_the_right_lines_and_gives_the_same_output(plain, block_bytes):
    """A block ends at its last newline when the quotes before it pair up, else where quote
    parity says; records' lines are counted, or found by parity where a record spans lines."""
    data, expected = _extract_with_known_lines(random.Random(11), plain=plain)
    whole, [one] = run(data)
    text, [report] = run(data, block_bytes=block_bytes)
    assert one.invalid_rows == expected
    assert report.invalid_rows == expected
    assert text == whole
    assert (report.rows_in, report.rows_out) == (one.rows_in, one.rows_out)


@pytest.mark.parametrize("plain", [True, False], ids=["one record a line", "many shapes"])
@pytest.mark.parametrize("piece_bytes", [1, 7, 150, 4095])
def test_a_source_giving_short_reads_gives_the_same_blocks_lines_and_output(plain, piece_bytes):
    """A block gathers what several reads return (the decrypting reader gives one Tink
    segment a read): the same records, lines and output as reading the file whole."""
    data, expected = _extract_with_known_lines(random.Random(12), plain=plain)
    whole, [one] = run(data)
    for chunks in (1, 3):
        text, reports = run(data, chunks=chunks, block_bytes=4096, piece_bytes=piece_bytes)
        invalid = [r for report in reports for r in report.invalid_rows]
        assert sorted(invalid, key=lambda r: r["line"]) == one.invalid_rows == expected
        assert text == whole
        assert sum(r.rows_out for r in reports) == one.rows_out


def test_the_c_hmac_and_the_python_hmac_give_the_standard_hmac_sha256():
    messages = np.array([synthetic(random.Random(i)).encode() for i in range(50)], dtype="S10")
    for key in (b"", b"k" * 32, b"x" * 64, b"long key " * 20):
        expected = [hmac.digest(key, m, "sha256") for m in messages.tolist()]
        assert [bytes(d) for d in Hasher(key, native=False).digests(messages)] == expected
        if NATIVE_HMAC:
            assert [bytes(d) for d in Hasher(key).digests(messages)] == expected


def test_the_codes_are_the_standard_hmac_truncated_to_hex_in_c_and_in_python():
    messages = np.array([synthetic(random.Random(i)).encode() for i in range(50)], dtype="S10")
    for key in (b"", b"k" * 32, b"long key " * 20):
        expected = [code(m.decode(), key).encode() for m in messages.tolist()]
        assert Hasher(key, native=False).codes(messages).tolist() == expected
        assert Hasher(key).codes(messages).tolist() == expected
        assert Hasher(key).codes(messages[:0]).tolist() == []


def test_make_builds_the_c_hmac():
    """`make` builds datasets/native where a C compiler and OpenSSL's headers are, as in CI."""
    if not shutil.which("cc") and not shutil.which("gcc"):
        pytest.skip("no C compiler here: jobs hash in Python")
    assert NATIVE_HMAC, "datasets/native is not built: run `python -m datasets.native.build`"


def test_a_portal_without_the_c_hmac_says_so_at_check(monkeypatch):
    from datasets import apps
    from datasets.pipeline import hashing as pipeline

    monkeypatch.setattr(pipeline, "NATIVE_HMAC", False)
    assert [m.id for m in apps.native_hmac_built()] == ["datasets.W001"]
    monkeypatch.setattr(pipeline, "NATIVE_HMAC", True)
    assert apps.native_hmac_built() == []
