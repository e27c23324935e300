import datetime as dt

import pytest

from consent.models import Type1Event, Type1Request
from tests.e2e.dates import fill_date

pytestmark = pytest.mark.e2e


def sign_in(page, username="alice"):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")


def test_a_practice_manager_records_an_opt_out_and_sees_the_rate(
    page, screenshot, alice, programme
):
    sign_in(page)
    page.get_by_role("link", name="Record an opt-out or withdrawal").first.click()
    page.get_by_label("NHS number").fill("943 476 5919")
    page.get_by_label("Opt out (Type 1 dissent").check()
    page.get_by_label("Phone").check()
    fill_date(page, "Date the patient asked", dt.date.today() - dt.timedelta(days=1))
    page.get_by_role("button", name="Record").click()
    assert page.get_by_role("heading", level=1).inner_text().endswith("NHS number 943 476 5919")
    assert Type1Event.objects.get().method == "phone"
    page.get_by_role("link", name="Type 1 opt-outs").first.click()
    page.get_by_role("link", name="Opt-out rate").click()
    assert page.locator("svg rect").count() == 12
    assert page.get_by_role("img").first.is_visible()
    screenshot()


def test_a_patient_asks_for_an_opt_out_without_javascript(browser, live_server, practice_a):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    page.goto("/practices/A81001/")
    assert "Opting out of sharing your data" in page.get_by_role("heading", level=1).inner_text()
    page.get_by_label("Full name").fill("Jo Example")
    fill_date(page, "Date of birth", ("31", "3", "1970"))
    page.get_by_label("How can the practice contact you?").fill("jo@example.com")
    page.get_by_role("button", name="Send my request").click()
    reference = Type1Request.objects.get().reference
    assert reference in page.locator("main").inner_text()
    context.close()
