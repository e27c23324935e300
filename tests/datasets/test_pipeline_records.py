"""Plain blocks read and written in C (datasets.pipeline.records) give what pyarrow gives.

The general path (pyarrow's reader and writer) is the reference: every extract here is
run both ways, and the coded output, the vault and the report must be the same bytes.
"""

import datetime as dt
import io
import random

import numpy as np
import pyarrow as pa
import pytest

from datasets.pipeline import orchestration
from datasets.pipeline.hashing import Hasher
from datasets.pipeline.number_table import INVALID, NumberTable
from datasets.pipeline.records import Records
from phm_portal.lib.nhs_number import synthetic
from tests.datasets.test_pipeline import MAPPING  # the same mapping, one more column

KEY = b"r" * 32
HEADER = ["nhs_number", "name", "date_of_birth", "postcode", "practice", "note", "value"]


def run(data: bytes, *, native: bool, monkeypatch, excluded=(), block_bytes=4096):
    """Run the pipeline over a whole extract; return (output, vault, report, blocks in C)."""
    in_c = []
    scan = Records.scan.__func__

    def counted(cls, *args):
        found = scan(cls, *args) if native else None
        in_c.append(found is not None)
        return found

    with monkeypatch.context() as m:
        m.setattr(Records, "scan", classmethod(counted))
        out, vault = io.BytesIO(), io.BytesIO()
        report = orchestration.pseudonymise(
            io.BytesIO(data),
            out,
            vault,
            header=HEADER,
            mapping=MAPPING,
            key=KEY,
            exclusions=lambda numbers: {
                int(n): ["type1"] for n in excluded if int(n) in set(numbers.tolist())
            },
            reference_date=dt.date(2026, 11, 26),
            block_bytes=block_bytes,
        )
    return out.getvalue(), vault.getvalue(), report, in_c


def csv_field(value: str, rng: random.Random) -> str:
    if '"' in value or "," in value or "\n" in value or rng.random() < 0.5:
        return '"' + value.replace('"', '""') + '"'
    return value


ODD_CELLS = [
    "",
    "=SUM(A1)",
    "+44 1223",
    "-12.5",
    "@home",
    'say "hi"',
    "a,b",
    "Zoë Brontë",
    "日本",
    "'quoted",
    "12",
    " spaced ",
]


def extract(rng: random.Random, rows: int, *, odd: float) -> tuple[bytes, list[str]]:
    """A synthetic extract; `odd` is the share of rows with something unusual in them."""
    numbers = [synthetic(rng) for _ in range(max(1, rows // 3))]
    lines = [",".join(csv_field(h, rng) for h in HEADER)]
    for _ in range(rows):
        number = rng.choice(numbers)
        dob = f"{rng.randrange(1920, 2026)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
        postcode = rng.choice(["CB1 2AB", "PE13 4XY", "de4 3qt", "NOTAPOSTCODE", ""])
        note, value = "ok", str(rng.randrange(1000))
        if rng.random() < odd:
            kind = rng.randrange(6)
            if kind == 0:
                note = rng.choice(ODD_CELLS)
            elif kind == 1:
                value = rng.choice(ODD_CELLS)
            elif kind == 2:
                number = rng.choice(["123", "9434765918", " 943 476 5919", "\t9434765919"])
            elif kind == 3:
                dob = rng.choice(["", "31/12/1980", "2030-01-01", "1980-02-30", "soon"])
            elif kind == 4:
                note = 'two\nlines "quoted"'
            else:
                postcode = "EX1 1AA"
        fields = [number, "Name, Some", dob, postcode, f"P{rng.randrange(5)}", note, value]
        lines.append(",".join(csv_field(f, rng) for f in fields))
    text = "\n".join(lines) + ("\n" if rng.random() < 0.7 else "")
    return text.encode(), numbers


@pytest.mark.parametrize("seed", range(12))
def test_c_and_pyarrow_write_the_same_bytes_and_report_the_same_lines(seed, monkeypatch):
    rng = random.Random(seed)
    data, numbers = extract(rng, 400, odd=[0.0, 0.02, 0.3][seed % 3])
    excluded = rng.sample(numbers, 5)
    native = run(data, native=True, monkeypatch=monkeypatch, excluded=excluded)
    general = run(data, native=False, monkeypatch=monkeypatch, excluded=excluded)
    assert native[0] == general[0]
    assert native[1] == general[1]
    assert vars(native[2]) == vars(general[2])
    assert native[2].rows_in == 400
    # The comparison is not empty: blocks were read in C (all of them where nothing is odd;
    # at 30% odd rows, every block holds a newline in quotes and goes to pyarrow).
    assert not any(general[3])
    assert {0: all, 1: any, 2: lambda c: True}[seed % 3](native[3])


def test_a_formula_in_a_plain_block_is_neutralised_and_a_number_is_not(monkeypatch):
    data = (
        b"nhs_number,name,date_of_birth,postcode,practice,note,value\n"
        b"9434765919,A,1980-01-01,CB1 2AB,P1,=HYPERLINK(1),-12.5\n"
        b'9434765919,A,1980-01-01,CB1 2AB,P1,"@x ""y""",7\n'
    )
    out, _, report, in_c = run(data, native=True, monkeypatch=monkeypatch)
    assert in_c == [True]
    lines = out.decode().splitlines()
    assert lines[0] == (
        '"pseudonym","date_of_birth_age_band_5","postcode_district","practice","note","value"'
    )
    assert lines[1].endswith(',"P1","\'=HYPERLINK(1)","-12.5"')
    assert lines[2].endswith(',"P1","\'@x ""y""","7"')
    code = Hasher(KEY).digests(np.array([b"9434765919"])).tobytes()[:16].hex()
    assert lines[1].startswith(f'"{code}","45-49","CB1",')
    assert report.rows_out == 2


@pytest.mark.parametrize(
    "block",
    [
        b"a,b\n\nc,d\n",  # a blank line
        b"a,b\r\nc,d\r\n",  # carriage returns
        b'a,"b\nc"\n',  # a newline inside quotes
        b'a,b"c\n',  # a quote inside an unquoted value
        b'a,"b"c\n',  # text after a closing quote
        b"a,b,c\n",  # too many fields
        b"a\n",  # too few
        b'a,"b\n',  # an unclosed quote
        b"a,\xff\n",  # not UTF-8
        b"a,\xc3\n",  # UTF-8 cut short
        b"a,\xed\xa0\x80\n",  # a surrogate
    ],
)
def test_a_block_that_is_not_plain_is_left_to_pyarrow(block):
    assert Records.scan(block, 2, block.count(b"\n")) is None


def test_fields_are_found_with_their_quotes_undone():
    block = b'"a""b",,"",x\nz,"y,1",w,\xc3\xa9'
    records = Records.scan(block, 4, block.count(b"\n"))
    assert records.num_rows == 2
    assert records.column(0).to_pylist() == ['a"b', "z"]
    assert records.column(1).to_pylist() == ["", "y,1"]
    assert records.column(2).to_pylist() == ["", "w"]
    assert records.column(3).to_pylist() == ["x", "é"]
    assert records.column(1, np.array([False, True])).to_pylist() == ["y,1"]
    written = records.write(np.array([True, True]), [1, pa.array(['q"', "r"]), 0])
    assert written == b'"","q""","a""b"\n"y,1","r","z"\n'


def test_the_number_table_keeps_each_numbers_slot_as_it_grows():
    rng = np.random.default_rng(7)
    table = NumberTable(KEY, lambda numbers: {})
    numbers = rng.choice(10**9, size=30_000, replace=False) + 9 * 10**9
    seen: dict[int, int] = {}
    for _ in range(6):  # batches with repeats, numbers met before, and invalid rows
        batch = rng.choice(numbers[: rng.integers(1000, len(numbers))], size=8000)
        batch[rng.random(len(batch)) < 0.05] = -1
        slots = table.slots(batch)
        assert (slots[batch < 0] == -1).all()
        for number, slot in zip(batch.tolist(), slots.tolist(), strict=True):
            if number >= 0:
                assert seen.setdefault(number, slot) == slot
    assert table.size == len(seen) == len(set(seen.values()))
    digits = np.array([str(n).encode() for n in seen])
    assert (table.numbers[list(seen.values())] == digits).all()
    codes = Hasher(KEY).digests(digits)[:, :16]
    assert [c.decode() for c in table.codes[list(seen.values())]] == [bytes(c).hex() for c in codes]
    assert (table.status[list(seen.values())] != INVALID).all()
