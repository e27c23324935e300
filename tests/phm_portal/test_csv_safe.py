"""The one CSV writer: a cell a spreadsheet could run as a formula comes out with a quote.

One table of inputs drives the writer and the pipeline's vectorised rule, which agree.
"""

from __future__ import annotations

import csv
import io

import pyarrow as pa
import pytest

from datasets.pipeline import transforms as pipeline
from phm_portal.lib import csv_safe

# (cell, what the file must hold once read back as CSV)
TABLE = [
    ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
    ("=1+1", "'=1+1"),
    ("+SUM(A1:A2)", "'+SUM(A1:A2)"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1+1", "'\t=1+1"),
    ("\r=1+1", "'\r=1+1"),
    ("=", "'="),
    ("-", "'-"),
    ("+44 7700 900000", "'+44 7700 900000"),
    ("-1e3", "'-1e3"),
    ("-5\n", "'-5\n"),  # a newline after a number: not a plain number
    ("-٣", "'-٣"),  # digits of other scripts are not plain numbers
    # plain numbers stay numbers
    ("-5", "-5"),
    ("+44", "+44"),
    ("-5.25", "-5.25"),
    ("12", "12"),
    # nothing to do
    ("", ""),
    ("planning services", "planning services"),
    (" =1+1", " =1+1"),  # a space first: read as text
    ("a=1", "a=1"),
    ("'=1", "'=1"),
    ("＝1+1", "＝1+1"),  # a full-width equals sign is not a formula
]


def written(rows, **options) -> list[list[str]]:
    out = io.StringIO()
    csv_safe.writer(out, **options).writerows(rows)
    return list(csv.reader(io.StringIO(out.getvalue(), newline="")))


@pytest.mark.parametrize(("cell", "expected"), TABLE)
def test_each_cell_is_written_safe(cell, expected):
    assert written([["id", cell]]) == [["id", expected]]


@pytest.mark.parametrize(("cell", "expected"), TABLE)
def test_the_pipelines_vectorised_rule_agrees_with_the_writer(cell, expected):
    column = pa.array(["plain", cell, "=x"])
    assert pipeline._neutralise(column).to_pylist() == [
        "plain",
        csv_safe.neutralise(cell),
        "'=x",
    ]
    assert csv_safe.neutralise(cell) == expected


def test_the_pipeline_takes_its_characters_from_the_one_rule():
    assert sorted(pipeline._FORMULA_CHARS.to_pylist()) == sorted(csv_safe.FORMULA_FIRST_CHARS)
    risky = {chr(b) for b in range(256) if pipeline._RISKY_FIRST_BYTE[b]}
    assert risky == set(csv_safe.FORMULA_FIRST_CHARS)
    assert pipeline._NUMBER == csv_safe.PLAIN_NUMBER


def test_values_that_are_not_text_are_written_as_text_safely():
    class Odd:
        def __str__(self) -> str:
            return "=cmd"

    assert written([[-5, 3.5, None, Odd(), True]]) == [["-5", "3.5", "", "'=cmd", "True"]]


def test_the_dict_writer_neutralises_cells_and_header():
    out = io.StringIO()
    writer = csv_safe.DictWriter(out, fieldnames=["name", "=evil"])
    writer.writeheader()
    writer.writerow({"name": "@SUM(A1)", "=evil": "-5"})
    assert out.getvalue() == "name,'=evil\r\n'@SUM(A1),-5\r\n"


def test_the_dict_writer_keeps_csvs_own_options():
    out = io.StringIO()
    writer = csv_safe.DictWriter(out, fieldnames=["a"], delimiter=";", extrasaction="ignore")
    writer.writerow({"a": "=1;2", "ignored": "x"})
    assert out.getvalue() == '"\'=1;2"\r\n'  # quoted: it holds the delimiter


def test_lines_end_with_crlf_unless_told():
    out = io.StringIO()
    csv_safe.writer(out).writerow(["a", "b"])
    csv_safe.writer(out, lineterminator="\n").writerow(["c"])
    assert out.getvalue() == "a,b\r\nc\n"
