"""The pseudonymised CSV as downloaded: a cell or column name a spreadsheet could run is text."""

from __future__ import annotations

import csv
import io

import pytest

from datasets import services
from datasets.models import Dataset
from tests.datasets.conftest import MAPPING, csv_file
from tests.datasets.test_jobs import run_job

PREFIXES = ["=", "+", "-", "@", "\t"]


@pytest.fixture
def no_national_check(programme):
    programme.national_opt_out_applies = False
    programme.national_opt_out_exemption = "Test exemption"
    programme.save()
    return programme


@pytest.fixture
def hostile_job(api, alice, admin, flow, no_national_check):
    """Return a function running a job over an extract whose cells start with `prefix`."""

    def make(prefix: str):
        header = f"nhs_number,forename,date_of_birth,postcode,practice,{prefix}event_code"
        rows = [
            f'9434765919,Ann,1960-03-01,CB1 2AB,A81001,"{prefix}HYPERLINK(""http://x"",""y"")"',
            "4010232137,Bob,1971-07-15,LS2 9JT,A81001,-5",
        ]
        response = api(alice).post(
            "/api/v1/datasets/",
            {
                "file": csv_file("\n".join([header, *rows]) + "\n"),
                "data_flow": flow.pk,
                "mapping": MAPPING,
            },
            format="multipart",
        )
        assert response.status_code == 201, response.json()
        dataset = Dataset.objects.get(pk=response.json()["id"])
        return run_job(services.dataset_pseudonymise(actor=admin, dataset=dataset))

    return make


def cells_of(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode(), newline="")))


def check(rows: list[list[str]], prefix: str) -> None:
    # A header name is trimmed when the extract is read: a tab before it goes then.
    assert rows[0][-1] == (f"'{prefix}event_code" if prefix.strip() else "event_code")
    assert rows[1][-1] == f'\'{prefix}HYPERLINK("http://x","y")'
    assert rows[2][-1] == "-5"  # a plain number stays a number


@pytest.mark.parametrize("prefix", PREFIXES)
def test_a_formula_is_neutralised_in_the_api_download(api, admin, hostile_job, prefix):
    job = hostile_job(prefix)
    response = api(admin).get(f"/api/v1/jobs/{job.pk}/output/")
    assert response.status_code == 200
    check(cells_of(b"".join(response.streaming_content)), prefix)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_a_formula_is_neutralised_in_the_page_download(client, admin, hostile_job, prefix):
    job = hostile_job(prefix)
    client.force_login(admin)
    response = client.get(f"/jobs/{job.pk}/output.csv")
    assert response.status_code == 200
    check(cells_of(b"".join(response.streaming_content)), prefix)
