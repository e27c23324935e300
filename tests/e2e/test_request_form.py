"""A patient fills the request form wrongly, sees every problem at once, and puts it right."""

from __future__ import annotations

import datetime as dt

import pytest

from consent.models import Type1Request
from tests.e2e.axe import axe_violations
from tests.e2e.dates import fill_date

pytestmark = pytest.mark.e2e


def test_a_patient_sees_every_error_at_once_and_each_link_focuses_its_field(
    page, screenshot, practice_a
):
    page.goto("/practices/A81001/")
    future = dt.date.today() + dt.timedelta(days=3)
    fill_date(page, "Date of birth", future)
    page.get_by_label("NHS number").fill("943 476 5918")
    page.get_by_label("How can the practice contact you?").fill("jo@example.com")
    page.get_by_role("button", name="Send my request").click()

    summary = page.locator(".nhsuk-error-summary")
    assert summary.get_by_role("heading").inner_text() == "There is a problem"
    links = summary.get_by_role("link")
    assert links.all_inner_texts() == [
        "Enter your full name",
        "Date of birth must be in the past",
        "Check your NHS number: it has 10 digits and is on letters from the NHS, "
        "the NHS App or a prescription",
    ]
    assert page.title().startswith("Error: ")
    assert "This field is required" not in page.locator("main").inner_text()
    assert axe_violations(page) == []
    screenshot()

    for text, field in [
        ("Enter your full name", "id_name"),
        ("Date of birth must be in the past", "id_date_of_birth_day"),
        ("Check your NHS number", "id_nhs_number"),
    ]:
        summary.get_by_role("link", name=text).click()
        assert page.evaluate("document.activeElement.id") == field

    page.get_by_label("Full name").fill("Jo Example")
    fill_date(page, "Date of birth", ("31", "3", "1980"))
    page.get_by_label("NHS number").fill("943 476 5919")
    page.get_by_role("button", name="Send my request").click()
    assert "Request sent" in page.get_by_role("heading", level=1).inner_text()
    assert Type1Request.objects.count() == 1


def test_a_half_typed_date_says_which_box_is_missing(page, practice_a):
    page.goto("/practices/A81001/")
    page.get_by_label("Full name").fill("Jo Example")
    fill_date(page, "Date of birth", ("31", "", "1980"))
    page.get_by_label("How can the practice contact you?").fill("jo@example.com")
    page.get_by_role("button", name="Send my request").click()
    group = page.get_by_role("group", name="Date of birth")
    assert "Date of birth must include a month" in group.inner_text()
    assert group.get_by_label("Day", exact=True).input_value() == "31"
    assert group.get_by_label("Year", exact=True).input_value() == "1980"
    assert axe_violations(page) == []
    assert not Type1Request.objects.exists()


def test_the_staff_date_boxes_refuse_a_future_date_and_pass_axe(page, alice, practice_a):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")
    page.goto("/practices/A81001/opt-outs/record/")
    fill_date(page, "Date the patient asked", dt.date.today() + dt.timedelta(days=2))
    page.get_by_role("button", name="Record").click()
    links = page.locator(".nhsuk-error-summary").get_by_role("link")
    assert links.all_inner_texts() == [
        "Enter the NHS number",
        "Select what the patient asked for",
        "Select how the patient asked",
        "Date the patient asked must be today or in the past",
    ]
    assert axe_violations(page) == []

    # The queue's record form, from a patient's request, has the same boxes.
    page.context.clear_cookies()
    page.goto("/practices/A81001/")
    page.get_by_label("Full name").fill("Jo Example")
    fill_date(page, "Date of birth", ("31", "3", "1980"))
    page.get_by_label("How can the practice contact you?").fill("jo@example.com")
    page.get_by_role("button", name="Send my request").click()
    reference = Type1Request.objects.get().reference
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")
    page.goto(f"/practices/A81001/opt-outs/requests/{reference}/")
    group = page.get_by_role("group", name="Date the patient asked")
    assert group.get_by_label("Year", exact=True).input_value() == str(dt.date.today().year)
    group.get_by_label("Month", exact=True).fill("")
    page.get_by_role("button", name="Record the opt-out (method: online)").click()
    assert "Date the patient asked must include a month" in group.inner_text()
    assert axe_violations(page) == []
