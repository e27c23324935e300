"""The demo's extracts: a new user downloads one, uploads it and pseudonymises it at once."""

from __future__ import annotations

import csv
import io
from io import StringIO

import pytest
from django.core.management import call_command

from consent.demo import cohort_numbers, nationally_opted_out
from datasets import services
from datasets.models import Dataset
from governance.models import DataFlow, User
from tests.datasets.conftest import HEADER, MAPPING, csv_file
from tests.datasets.test_jobs import code_of, output_rows, run_job


@pytest.fixture
def demo(db, settings):
    settings.DEMO_MODE = True
    settings.DEMO_PASSWORD = "a-demo-password"
    call_command("load_demo", stdout=StringIO())


@pytest.fixture
def csu_admin(demo):
    return User.objects.get(username="csu-admin")


@pytest.fixture
def riverside_flow(demo):
    """Riverside Surgery (D81901) sends identifiable GP records to NECS: approved."""
    return DataFlow.objects.get(
        source__ods_code="D81901",
        destination__ods_code="0AR",
        status=DataFlow.Status.APPROVED,
    )


def download(client, flow):
    return client.get(f"/datasets/demo-extracts/{flow.pk}.csv")


def rows_of(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_the_upload_page_offers_a_demo_extract_for_each_flow_the_person_may_upload_on(
    client, csu_admin, riverside_flow
):
    client.force_login(csu_admin)
    page = client.get("/datasets/upload/").content.decode()
    assert "Try it with a demo extract" in page
    assert (
        f'<a href="/datasets/demo-extracts/{riverside_flow.pk}.csv" download>'
        f"Download a demo extract for {riverside_flow.choice_label}</a>"
    ) in page
    # A flow whose source is no demo practice has no demo cohort, so no demo extract.
    national = DataFlow.objects.get(source__ods_code="X26", status=DataFlow.Status.APPROVED)
    assert f"/datasets/demo-extracts/{national.pk}.csv" not in page


def test_the_demo_extract_holds_the_demo_cohort_of_the_flows_source_practice(
    client, csu_admin, riverside_flow
):
    client.force_login(csu_admin)
    response = download(client, riverside_flow)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment;" in response["Content-Disposition"]
    assert response.content.decode().startswith(HEADER)
    rows = rows_of(response)
    assert 200 <= len(rows) <= 500
    assert {r["nhs_number"] for r in rows} == set(cohort_numbers("D81901"))
    assert {r["practice"] for r in rows} == {"D81901"}
    assert all(r["postcode"].startswith("CB1 ") for r in rows)
    assert download(client, riverside_flow).content == response.content  # the same every time


def test_out_of_demo_mode_there_is_no_demo_extract(client, csu_admin, riverside_flow, settings):
    settings.DEMO_MODE = False
    client.force_login(csu_admin)
    assert download(client, riverside_flow).status_code == 404
    assert "Try it with a demo extract" not in client.get("/datasets/upload/").content.decode()


def test_the_source_practice_may_download_its_demo_extract_and_no_one_else(
    client, demo, riverside_flow
):
    client.force_login(User.objects.get(username="pm-cambridgeshire-peterborough"))
    assert download(client, riverside_flow).status_code == 200
    # A practice manager of another region is no party to the flow: it does not exist for them.
    outsider = User.objects.get(username="pm-devon")
    client.force_login(outsider)
    assert download(client, riverside_flow).status_code == 404
    page = client.get("/datasets/upload/").content.decode()
    assert f"/datasets/demo-extracts/{riverside_flow.pk}.csv" not in page
    assert "/datasets/demo-extracts/" in page  # their own practice's flow is offered
    # The auditor uploads on no flow.
    client.force_login(User.objects.get(username="auditor"))
    assert download(client, riverside_flow).status_code == 404
    assert "Try it with a demo extract" not in client.get("/datasets/upload/").content.decode()


def test_a_flow_not_approved_has_no_demo_extract(client, csu_admin, riverside_flow):
    DataFlow.objects.filter(pk=riverside_flow.pk).update(
        status=DataFlow.Status.SUSPENDED, decision_comment="The agreement lapsed."
    )
    client.force_login(csu_admin)
    assert download(client, riverside_flow).status_code == 404


def test_the_demo_extract_is_pseudonymised_with_the_national_opt_outs_left_out(
    client, api, csu_admin, riverside_flow
):
    programme = riverside_flow.programme
    assert programme.national_opt_out_applies
    client.force_login(csu_admin)
    extract = download(client, riverside_flow).content.decode()
    rows = list(csv.DictReader(io.StringIO(extract)))
    response = api(csu_admin).post(
        "/api/v1/datasets/",
        {
            "file": csv_file(extract, "demo-extract.csv"),
            "data_flow": riverside_flow.pk,
            "mapping": MAPPING,
        },
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    dataset = Dataset.objects.get(pk=response.json()["id"])

    job = run_job(services.dataset_pseudonymise(actor=csu_admin, dataset=dataset))

    opted_out = [r for r in rows if nationally_opted_out(r["nhs_number"])]
    kept = [r for r in rows if not nationally_opted_out(r["nhs_number"])]
    assert opted_out and kept
    assert job.status == "succeeded"
    assert job.excluded == {"type1": 0, "national": len(opted_out), "invalid": 0}
    assert (job.rows_in, job.rows_out) == (len(rows), len(kept))
    assert [r["pseudonym"] for r in output_rows(job)] == [
        code_of(r["nhs_number"], programme) for r in kept
    ]
