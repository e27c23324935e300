"""A practice's Type 1 CSV export: a cell a spreadsheet could run comes out as text.

The only free text in it is the user name of whoever recorded the event; Django's user
names may start with @, + or -, and an account made outside the portal's forms may hold
anything, so every prefix is tried.
"""

from __future__ import annotations

import csv
import io

import pytest

from governance.models import User
from tests.consent.conftest import TEST_NUMBER

PREFIXES = ["=", "+", "-", "@", "\t"]


def rows_of(response) -> list[dict]:
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode(), newline="")))


@pytest.fixture
def recorded_by_hostile_name(record, bob):
    """Return a function recording an opt-out by bob, renamed to start with `prefix`."""

    def make(prefix: str) -> str:
        record(TEST_NUMBER, by=bob)
        name = f"{prefix}cmd|' /C calc'!A0"
        User.objects.filter(pk=bob.pk).update(username=name)
        return name

    return make


@pytest.mark.parametrize("prefix", PREFIXES)
def test_a_formula_in_a_user_name_is_neutralised_in_the_api_export(
    api, alice, recorded_by_hostile_name, prefix
):
    name = recorded_by_hostile_name(prefix)
    [row] = rows_of(api(alice).get("/api/v1/practices/A81001/type1-opt-outs/export/"))
    assert row["recorded_by"] == "'" + name
    assert row["nhs_number"] == TEST_NUMBER


@pytest.mark.parametrize("prefix", PREFIXES)
def test_a_formula_in_a_user_name_is_neutralised_in_the_page_export(
    client, alice, recorded_by_hostile_name, prefix
):
    name = recorded_by_hostile_name(prefix)
    client.force_login(alice)
    [row] = rows_of(client.get("/practices/A81001/opt-outs/export.csv"))
    assert row["recorded_by"] == "'" + name
    assert row["nhs_number"] == TEST_NUMBER
