"""A patient, not signed in, finds their way by following links: to the opt-out form, and back."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from governance.demo import PRACTICES, SLUGS
from tests.e2e.axe import axe_violations
from tests.e2e.dates import fill_date
from tests.e2e.test_notices import demo  # noqa: F401  (the fixture)

pytestmark = pytest.mark.e2e

FORM_HEADING = "Opting out of sharing your data"


class Clicks:
    """Follow links by their names, counting the clicks."""

    def __init__(self, page) -> None:
        self.page = page
        self.count = 0

    def link(self, name: str) -> None:
        self.page.get_by_role("link", name=name, exact=True).first.click()
        self.page.wait_for_load_state()
        self.count += 1

    def button(self, name: str) -> None:
        self.page.get_by_role("button", name=name).click()
        self.page.wait_for_load_state()
        self.count += 1


def assert_on_the_opt_out_form(page, practice: str) -> None:
    heading = page.get_by_role("heading", level=1).inner_text()
    assert FORM_HEADING in heading and practice in heading
    assert page.get_by_role("button", name="Send my request").is_visible()


def assert_accessible(page) -> None:
    assert page.locator("h1").count() == 1
    violations = axe_violations(page)
    assert violations == [], json.dumps(violations, indent=2)


def test_from_home_to_the_opt_out_form_through_a_notice_in_three_clicks(page, demo):  # noqa: F811
    page.goto("/")
    clicks = Clicks(page)
    clicks.link("Find your area's privacy notice, or opt out")
    clicks.link("Devon Population Health Management project")
    clicks.link("Exe Estuary Surgery")
    assert_on_the_opt_out_form(page, "Exe Estuary Surgery")
    assert clicks.count <= 3


def test_from_home_to_the_opt_out_form_by_searching_the_area_in_three_clicks(page, demo):  # noqa: F811
    page.goto("/")
    clicks = Clicks(page)
    clicks.link("Find your area's privacy notice, or opt out")
    page.get_by_label("Practice name, ODS code, postcode district or area").fill("Devon")
    clicks.button("Search")
    assert "3 practices found for “Devon”" in page.locator("main").inner_text()
    clicks.link("Opt out at Tamar Bridge Surgery, or ask for it online")
    assert_on_the_opt_out_form(page, "Tamar Bridge Surgery")
    assert clicks.count <= 3


def test_the_public_pages_wear_no_staff_header_or_footer(page, demo):  # noqa: F811
    for url in ["/notices/", "/notices/devon/", "/practices/L83901/"]:
        page.goto(url)
        text = page.locator("body").inner_text()
        assert "API documentation" not in text, url
        assert page.get_by_role("navigation", name="Menu").count() == 0, url


def test_the_unnamed_area_is_labelled_by_its_practices(page, demo):  # noqa: F811
    page.goto("/notices/")
    listing = page.locator("main").inner_text()
    assert (
        "Population Health Management programme (20 weeks) "
        "(Meadow Lane Practice and Old Mill Health Centre)" in listing
    )
    assert "Your area" not in listing


@pytest.mark.parametrize("slug", SLUGS)
def test_each_notice_leads_to_its_practices_pages_and_back(page, demo, slug):  # noqa: F811
    page.goto(f"/notices/{slug}/")
    notice_url = page.url
    section = page.locator("#practices").locator("xpath=..")
    names = sorted(section.get_by_role("link").all_inner_texts())
    assert names == sorted(p["name"] for p in PRACTICES[slug])
    for name in names:
        page.goto(notice_url)
        clicks = Clicks(page)
        clicks.link(name)
        assert_on_the_opt_out_form(page, name)
        back = page.get_by_role("link", name="Privacy notice of the ", exact=False).first
        back.click()
        assert page.url == notice_url


@pytest.mark.parametrize(
    "url",
    [
        "/accounts/login/",
        "/notices/",
        "/notices/?q=Devon",
        "/notices/generic-20-week/",
        "/practices/L83901/",
        "/practices/P99901/",
    ],
)
def test_the_pages_on_the_way_have_no_wcag_a_or_aa_violation(page, demo, url):  # noqa: F811
    page.goto(url)
    assert_accessible(page)


def test_the_request_sent_page_is_public_and_accessible(page, demo):  # noqa: F811
    page.goto("/practices/L83901/")
    page.get_by_label("Full name").fill("Jo Example")
    fill_date(page, "Date of birth", dt.date(1970, 3, 31))
    page.get_by_label("How can the practice contact you?").fill("jo@example.com")
    page.get_by_role("button", name="Send my request").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Request sent"
    assert "API documentation" not in page.locator("body").inner_text()
    assert_accessible(page)


def test_the_too_many_requests_page_is_public_and_accessible(page, demo, settings):  # noqa: F811
    settings.PHM_OPT_OUT_REQUESTS_PER_HOUR = 0
    page.goto("/practices/L83901/")
    page.get_by_label("Full name").fill("Jo Example")
    fill_date(page, "Date of birth", dt.date(1970, 3, 31))
    page.get_by_label("How can the practice contact you?").fill("jo@example.com")
    page.get_by_role("button", name="Send my request").click()
    assert "Too many requests" in page.locator("main").inner_text()
    assert "API documentation" not in page.locator("body").inner_text()
    assert_accessible(page)
