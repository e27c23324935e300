"""The four journeys of the portal in a real browser, one test each.

Each ends by saving a screenshot of its last page under var/screenshots/ (a CI
artifact). The CSU admin's journey needs real Celery workers on PostgreSQL and Redis
(the `workers` fixture of the integration tests), so it runs where those are set (CI)
and is skipped otherwise; it ends with the destruction of the programme's data and
the download of its signed certificate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from pypdf import PdfReader

from consent import services as consent
from consent.files import national_submission
from consent.models import Type1Event
from consent.selectors import national_check_submission
from datasets import services as datasets
from datasets.models import Job
from datasets.pipeline.hashing import CODE_LENGTH
from destruction.selectors import certificate_verify
from governance import services as gov
from governance.models import DataFlow
from notices.models import NoticeVersion
from tests.assurance import assure_flow
from tests.e2e.axe import axe_violations
from tests.e2e.dates import fill_date
from tests.e2e.test_notices import demo  # noqa: F401 - the demo regions, for the patient
from tests.integration.conftest import workers  # noqa: F401 - real Celery workers
from tests.integration.test_pseudonymisation_workers import (  # noqa: F401 - files and keys
    shared_storage,  # the workers see
)
from tests.notices.conftest import complete  # noqa: F401 - a programme a notice can describe

pytestmark = pytest.mark.e2e

PASSWORD = "correct-horse-battery"


def sign_in(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")
    assert page.get_by_role("heading", level=1).inner_text() == f"Hello, {username}"


def main_text(page) -> str:
    return page.locator("main").inner_text()


def save(page, request, suffix: str = "png") -> Path:
    folder = Path(settings.VAR_DIR) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{request.node.name}.{suffix}"


def upload_extract(page, tmp_path: Path, flow, text: str | None = None) -> None:
    """Upload an extract (EXTRACT by default) on the flow through the upload page."""
    extract = tmp_path / "extract.csv"
    extract.write_text(text or EXTRACT)
    page.goto("/datasets/upload/")
    page.get_by_label("Approved data flow").select_option(str(flow.pk))
    page.get_by_label("The extract (CSV, UTF-8, with a header line)").set_input_files(str(extract))
    page.get_by_label("Direct identifier columns to drop").fill("forename")
    page.get_by_role("button", name="Upload and encrypt").click()
    assert "extract.csv" in page.get_by_role("heading", level=1).inner_text()


# --- 1. a practice manager records and withdraws an opt-out -------------------------
def test_a_practice_manager_records_and_withdraws_an_opt_out(page, screenshot, alice, programme):
    sign_in(page, "alice")
    asked = dt.date.today() - dt.timedelta(days=2)

    page.get_by_role("link", name="Record an opt-out or withdrawal").first.click()
    page.get_by_label("NHS number").fill("401 023 2137")
    page.get_by_label("Opt out (Type 1 dissent").check()
    page.get_by_label("Phone").check()
    fill_date(page, "Date the patient asked", asked)
    page.get_by_role("button", name="Record").click()
    assert page.get_by_role("heading", level=1).inner_text().endswith("NHS number 401 023 2137")

    page.goto("/practices/A81001/opt-outs/")
    assert "401 023 2137" in main_text(page)

    # The patient changes their mind the next day.
    page.goto("/practices/A81001/opt-outs/record/")
    page.get_by_label("NHS number").fill("4010232137")
    page.get_by_label("Withdraw their opt-out").check()
    page.get_by_label("Phone").check()
    fill_date(page, "Date the patient asked", dt.date.today() - dt.timedelta(days=1))
    page.get_by_role("button", name="Record").click()
    main = main_text(page)
    assert "827261000000102" in main or "ithdr" in main
    events = list(Type1Event.objects.order_by("recorded_on", "pk").values_list("event", flat=True))
    assert events == ["dissent", "withdrawal"]

    # The practice's list of current opt-outs no longer has the patient.
    page.get_by_role("link", name="Type 1 opt-outs").first.click()
    assert "401 023 2137" not in main_text(page)
    assert screenshot().stat().st_size > 0


# --- 2. a DPO edits, checks and publishes a notice ----------------------------------
def test_a_dpo_edits_checks_and_publishes_a_notice(page, screenshot, complete, dpo_a):  # noqa: F811
    sign_in(page, "dpo-a")
    page.goto(f"/programmes/{complete.slug}/")
    page.get_by_role("link", name="Privacy notice of this programme").click()
    page.get_by_role("button", name="Generate a draft from the programme's data").click()
    assert "Privacy notice, version 1" in page.get_by_role("heading", level=1).inner_text()

    page.locator("textarea").first.fill("You can also ask at **reception**.")
    page.get_by_role("button", name="Save local wording and preview").click()
    main = main_text(page)
    assert "You can also ask at reception." in main.replace("\n", " ")
    assert "Flesch reading ease" in main
    # The completeness check: nothing is missing, so it may be published.
    assert "What the notice does not say yet" not in main

    page.get_by_role("link", name="Publish version 1").click()
    page.get_by_role("button", name="Yes, publish version 1").click()
    assert "Published" in page.get_by_role("heading", level=1).inner_text()
    version = NoticeVersion.objects.get()
    assert (version.status, version.published_by.username) == ("published", "dpo-a")

    page.goto(f"/notices/{complete.slug}/")
    assert "You can also ask at reception." in main_text(page).replace("\n", " ")
    assert screenshot().stat().st_size > 0


# --- 3. a CSU admin approves a flow, uploads an extract, runs the job, downloads ----
# The extract's two patients; Bob has registered a national data opt-out.
ANN, BOB = "9434765919", "4010232137"


@pytest.fixture
def national_check(programme, practice_a, admin):
    """A complete national data opt-out check of the extract's patients: Bob opted out.

    Recorded as a CSU admin does by hand: the patients are known at their practice, the
    check is started, and the national service's reply (every number but Bob's) imported.
    """
    assert programme.national_opt_out_applies
    consent.patients_note_at_practice(actor=admin, practice=practice_a, nhs_numbers=[ANN, BOB])
    check = consent.national_check_start(actor=admin, programme=programme)
    returned = [n for n in national_check_submission(check) if n != BOB]
    return consent.national_check_complete(
        actor=admin, check=check, returned=national_submission(returned)
    )


@pytest.fixture
def submitted_flow(programme, practice_a, csu, admin, national_check):
    flow = gov.data_flow_create(
        actor=admin,
        programme=programme,
        source=practice_a,
        destination=csu,
        data_categories=["gp"],
        identifiability="identifiable",
        legal_basis_codes=["UK-GDPR-6-1-e", "UK-GDPR-9-2-h"],
        dpia_reference="DPIA-E2E-01",
        dsa_reference="DSA-E2E-A81001-0AR",
    )
    assure_flow(flow)  # a signed-off DPIA, an agreement, DSPT and ICO: it may be approved
    return gov.data_flow_submit(actor=admin, flow=flow)


EXTRACT = (
    "nhs_number,forename,date_of_birth,postcode,practice,event_code\n"
    f"{ANN},Ann,1960-03-01,CB1 2AB,A81001,XaZ89\n"
    f"{BOB},Bob,1971-07-15,LS2 9JT,A81001,C10..\n"
)


def pseudonym_of(nhs_number: str, programme) -> str:
    """Return the code the programme's key gives the patient (see datasets.pipeline)."""
    key = datasets.programme_key(programme=programme)
    return hmac.new(key, nhs_number.encode(), hashlib.sha256).hexdigest()[:CODE_LENGTH]


@pytest.mark.integration
def test_a_csu_admin_approves_uploads_pseudonymises_downloads_and_destroys(
    page,
    screenshot,
    request,
    tmp_path,
    admin2,
    submitted_flow,
    shared_storage,  # noqa: F811
    workers,  # noqa: F811
):
    workers.start()
    sign_in(page, "csu-admin-2")

    # Approve the flow from the queue, through the confirmation.
    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Data flows").click()
    page.get_by_role("link", name=f"Data flow #{submitted_flow.pk}").click()
    page.get_by_role("link", name="Approve this flow").click()
    page.get_by_label("I have checked the DPIA and the data sharing agreement").check()
    page.get_by_role("button", name="Approve data flow").click()
    assert "The data flow was approved." in main_text(page)
    assert DataFlow.objects.get(pk=submitted_flow.pk).status == "approved"

    # Upload the extract on it.
    upload_extract(page, tmp_path, submitted_flow)

    # Run pseudonymisation and watch the job until the worker has finished it.
    page.get_by_role("button", name="Pseudonymise").click()
    job_url = page.url

    # The page follows the job by itself (and reloads when it ends): wait on what it shows.
    ended = page.locator("#job-status").filter(has_text=re.compile("^(Succeeded|Failed)$"))
    try:
        ended.wait_for(timeout=90_000)
    except PlaywrightTimeoutError:
        pytest.fail(f"the job did not end in 90 s: {main_text(page)}\n{workers.report()}")
    assert page.url == job_url
    assert page.locator("#job-status").inner_text() == "Succeeded", main_text(page)
    assert axe_violations(page) == []  # the finished job's page

    with page.expect_download() as info:
        page.get_by_role("link", name="Download the pseudonymised extract (CSV)").click()
    target = save(page, request, "csv")
    info.value.save_as(target)
    lines = target.read_text().splitlines()
    assert len(lines) == 2 and "pseudonym" in lines[0]  # Bob's row is left out
    output = target.read_text()
    assert "9434765919" not in output
    assert "Ann" not in output
    programme = submitted_flow.programme
    assert pseudonym_of(ANN, programme) in lines[1]
    assert pseudonym_of(BOB, programme) not in output
    job = Job.objects.get()
    assert job.excluded == {"type1": 0, "national": 1, "invalid": 0}

    # Destroy the programme's data (early, with a reason), on the worker, and download the
    # signed certificate.
    slug = submitted_flow.programme.slug
    page.goto(f"/programmes/{slug}/")
    page.get_by_role("link", name="Destruction page of this programme").click()
    page.get_by_role("link", name="Destroy the programme's data").click()
    assert "This cannot be undone" in main_text(page)
    page.get_by_label("Destroy the data before the programme's end date").check()
    page.get_by_label("Why the data must be destroyed before the end").fill(
        "The partnership was dissolved."
    )
    page.get_by_label("I understand that every extract").check()
    page.get_by_role("button", name="Destroy the data").click()
    page.wait_for_url("**/destruction-runs/*/")
    run_url = page.url

    def destroyed():
        page.goto(run_url)
        heading = page.get_by_role("heading", level=1).inner_text()
        return heading.endswith(("Succeeded", "Failed"))

    workers.wait_for(destroyed, timeout=120, interval=1, what="the destruction run to finish")
    heading = page.get_by_role("heading", level=1).inner_text()
    assert heading.endswith("Succeeded"), main_text(page)
    assert axe_violations(page) == []  # the finished run's evidence
    with page.expect_download() as info:
        page.get_by_role("link", name="Download the certificate (PDF)").click()
    certificate = save(page, request, "pdf")
    info.value.save_as(certificate)
    result = certificate_verify(data=certificate.read_bytes())
    assert result.valid and result.programme == slug, result
    page.goto(job_url)
    assert "destroyed" in main_text(page)
    assert screenshot().stat().st_size > 0


# --- 4. a patient finds their practice, reads the notice, downloads its PDF ---------
def test_a_patient_finds_their_practice_reads_the_notice_and_downloads_the_pdf(
    browser,
    live_server,
    demo,  # noqa: F811
    request,
):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto("/notices/")
        page.get_by_label("Practice name, ODS code, postcode district or area").fill("EX1")
        page.get_by_role("button", name="Search").click()
        assert "Exe Estuary Surgery" in main_text(page)
        page.get_by_role(
            "link", name="Devon Population Health Management project: privacy notice"
        ).click()
        heading = page.get_by_role("heading", level=1).inner_text()
        assert "Privacy notice: Devon Population Health Management project" in heading
        main = main_text(page)
        assert "1.2 million people who live in Devon" in main
        assert "contact your GP practice's Data Protection Officer in the first instance" in main
        with page.expect_download() as info:
            page.get_by_role("link", name="Download version 1 of this notice as a PDF").click()
        target = save(page, request, "pdf")
        info.value.save_as(target)
        reader = PdfReader(str(target))
        assert (
            reader.metadata.title
            == "Privacy notice: Devon Population Health Management project (version 1)"
        )
        assert "1.2 million people" in " ".join(reader.pages[0].extract_text().split())
        shot = save(page, request)
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 0
    finally:
        context.close()
