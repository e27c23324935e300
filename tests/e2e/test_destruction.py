"""A CSU admin destroys a demo programme's data in the browser and downloads the certificate."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from datasets.models import Dataset
from destruction.models import DestructionRun
from destruction.selectors import certificate_verify
from governance import permissions as governance_perms
from governance.catalogue import legal_bases_sync
from governance.models import DataFlow, LegalBasis, Programme, User
from tests.e2e.axe import axe_violations

pytestmark = pytest.mark.e2e

PASSWORD = "a-demo-password"
MAPPING = (
    '{"nhs_number": "nhs_number", "practice": "practice", "drop": ["forename"], "generalise": []}'
)


@pytest.fixture
def devon_with_an_extract(transactional_db, settings, tmp_path):
    legal_bases_sync(LegalBasis)
    settings.DEMO_PASSWORD = PASSWORD
    settings.PHM_SIGNING_P12_FILE = tmp_path / "signing" / "portal-signing.p12"
    call_command("load_demo", stdout=io.StringIO())
    manager = User.objects.get(username="pm-devon")
    flow = DataFlow.objects.filter(
        programme__slug="devon",
        status=DataFlow.Status.APPROVED,
        source__in=governance_perms.organisations_of(manager),
    ).first()
    practice = flow.source.ods_code
    extract = io.BytesIO(
        f"nhs_number,forename,practice\n9434765919,Ann,{practice}\n4010232137,Bob,{practice}\n".encode()
    )
    extract.name = "devon-extract.csv"
    client = APIClient()
    client.force_authenticate(manager)
    response = client.post(
        "/api/v1/datasets/",
        {"file": extract, "data_flow": flow.pk, "mapping": MAPPING},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    return Programme.objects.get(slug="devon")


@pytest.fixture
def eager_tasks():
    """Run the destruction task in the web process as soon as the run is committed."""
    from phm_portal.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


def test_a_csu_admin_destroys_a_demo_programme_and_downloads_the_certificate(
    page, screenshot, devon_with_an_extract, eager_tasks, tmp_path
):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("csu-admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")

    page.goto("/programmes/devon/")
    page.get_by_role("link", name="Destruction page of this programme").click()
    assert (
        page.get_by_role("heading", level=1)
        .inner_text()
        .endswith("Destruction of the programme's data")
    )
    held = page.locator("dl").get_by_text("Extracts held").locator("xpath=..")
    assert held.inner_text().split()[2] == "1"  # "Extracts held", then the count
    page.get_by_role("link", name="Destroy the programme's data").click()
    assert "This cannot be undone" in page.locator("main").inner_text()

    # Without the tick nothing happens, and the page says why.
    page.get_by_role("button", name="Destroy the data").click()
    assert "There is a problem" in page.locator("main").inner_text()
    assert not DestructionRun.objects.exists()

    page.get_by_label("Destroy the data before the programme's end date").check()
    page.get_by_label("Why the data must be destroyed before the end").fill(
        "The partnership was dissolved."
    )
    page.get_by_label("I understand that every extract").check()
    page.get_by_role("button", name="Destroy the data").click()
    page.wait_for_url("**/destruction-runs/*/")
    run = DestructionRun.objects.get()
    heading = page.get_by_role("heading", level=1).inner_text()
    assert heading.endswith(f"Run {run.pk}: Succeeded"), heading
    main = page.locator("main").inner_text()
    assert "Verify nothing remains readable" in main and "Failed" not in main
    assert axe_violations(page) == []
    assert Dataset.objects.get().status == "destroyed"

    with page.expect_download() as download:
        page.get_by_role("link", name="Download the certificate (PDF)").click()
    target = Path(tmp_path) / "certificate.pdf"
    download.value.save_as(target)
    result = certificate_verify(data=target.read_bytes())
    assert result.valid and result.programme == "devon" and result.run == run.pk
    assert screenshot().stat().st_size > 0

    # Anyone can check it on the public page.
    page.goto("/verify/")
    page.get_by_label("Certificate (PDF)").set_input_files(str(target))
    page.get_by_role("button", name="Check the certificate").click()
    assert "This certificate is valid" in page.locator("main").inner_text()
    assert axe_violations(page) == []


def test_the_verify_page_shows_an_error_summary_and_a_warning_for_a_bad_file(
    page, transactional_db, tmp_path
):
    import pypdf

    page.goto("/notices/")
    page.get_by_role("link", name="Check a data destruction certificate").click()
    page.get_by_role("button", name="Check the certificate").click()
    summary = page.locator(".nhsuk-error-summary").inner_text()
    assert "Choose the certificate PDF to check" in summary
    assert axe_violations(page) == []

    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=200, height=200)
    unsigned = Path(tmp_path) / "unsigned.pdf"
    with unsigned.open("wb") as f:
        writer.write(f)
    page.get_by_label("Certificate (PDF)").set_input_files(str(unsigned))
    page.get_by_role("button", name="Check the certificate").click()
    result = page.locator("#verify-result").inner_text()
    assert "This certificate is not valid" in result and "Signed by" not in result
    assert axe_violations(page) == []
