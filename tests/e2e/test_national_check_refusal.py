"""A job refused for want of a national data opt-out check, in a real browser.

The refusal is an error (an accessible error summary, not information) with a link
that leads to starting the check it wants.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from consent import services as consent
from consent.models import NationalOptOutCheck
from datasets.models import Job
from tests.datasets.conftest import make_flow
from tests.e2e.axe import axe_violations
from tests.e2e.test_journeys import main_text, sign_in, upload_extract

pytestmark = pytest.mark.e2e


@pytest.fixture
def unchecked_flow(programme, practice_a, csu, admin):
    """An approved flow of a programme that applies the national opt-out and has no check.

    Its extract's patients are known at practice A (as the worker noting them would have
    done), so a check has someone to submit.
    """
    assert programme.national_opt_out_applies
    consent.patients_note_at_practice(
        actor=admin, practice=practice_a, nhs_numbers=["9434765919", "4010232137"]
    )
    return make_flow(programme, practice_a, csu)


def test_a_job_refused_for_want_of_a_check_is_an_error_with_a_link_to_start_one(
    page, screenshot, tmp_path, unchecked_flow
):
    sign_in(page, "csu-admin")
    upload_extract(page, tmp_path, unchecked_flow)
    # A success is told apart from information and from errors.
    success = page.get_by_role("status").filter(has_text="extract.csv is stored, encrypted.")
    expect(success.get_by_role("heading", name="Success")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_count(0)
    assert axe_violations(page) == []

    page.get_by_role("button", name="Pseudonymise").click()
    alert = page.get_by_role("alert")
    expect(alert).to_have_count(1)
    expect(alert.get_by_role("heading", name="There is a problem")).to_be_visible()
    expect(alert).to_contain_text(
        "The national data opt-out applies to Testshire PHM and it has no unexpired national check."
    )
    expect(alert).to_contain_text("POST /api/v1/national-opt-outs/checks/")
    assert "Information:" not in main_text(page)
    assert not Job.objects.exists()
    assert axe_violations(page) == []
    screenshot()

    alert.get_by_role("link", name="Start a national data opt-out check of Testshire PHM").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("National data opt-out checks")
    assert page.url.endswith("/national-opt-outs/?programme=testshire")
    expect(page.get_by_label("Programme")).to_have_value("testshire")  # chosen on arrival
    page.get_by_role("button", name="Start a check").click()
    check = NationalOptOutCheck.objects.get()
    assert (check.programme.slug, check.submitted) == ("testshire", 2)
    expect(page.get_by_role("heading", level=1)).to_contain_text(
        f"National data opt-out check {check.pk}"
    )
