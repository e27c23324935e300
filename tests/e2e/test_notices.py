"""The public notice pages in a real browser: no WCAG 2.x A/AA violation, and a patient's journey."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from governance import services as gov
from governance.catalogue import legal_bases_sync
from governance.models import LegalBasis, Programme, User
from notices import services
from notices.models import NoticeVersion
from tests.e2e.axe import axe_violations

pytestmark = pytest.mark.e2e


@pytest.fixture
def demo(transactional_db, settings):
    # A transactional test's flush also empties the catalogue that migration 0002 seeded.
    legal_bases_sync(LegalBasis)
    settings.DEMO_PASSWORD = "a-demo-password"
    call_command("load_demo", stdout=io.StringIO())


@pytest.fixture
def devon_v2(demo):
    """Publish a second version of Devon's notice, so that there is a diff to read."""
    devon = Programme.objects.get(slug="devon")
    gov.programme_update(actor=None, programme=devon, data={"length_weeks": 30})
    dpo = User.objects.get(username="dpo-devon")
    draft, _ = services.notice_draft_generate(actor=dpo, programme=devon)
    services.notice_version_update(
        actor=dpo, version=draft, local_texts={"opt_out": "You can also ask at **reception**."}
    )
    draft.refresh_from_db()
    return services.notice_version_publish(actor=dpo, version=draft)


@pytest.mark.parametrize(
    "url",
    [
        "/notices/",
        "/notices/?q=EX1",
        "/notices/devon/",
        "/notices/devon/v1/",
        "/notices/devon/v2/changes/",
        "/notices/north-east-lincolnshire/",
    ],
)
def test_the_public_notice_pages_have_no_wcag_a_or_aa_violation(page, devon_v2, url):
    page.goto(url)
    assert page.locator("h1").count() == 1
    violations = axe_violations(page)
    assert violations == [], json.dumps(violations, indent=2)


def test_the_notice_prints_without_the_header_and_search(page, demo):
    page.goto("/notices/devon/")
    page.emulate_media(media="print")
    assert not page.locator(".nhsuk-header").is_visible()
    assert not page.locator(".nhsuk-contents-list").is_visible()
    assert page.locator("#section-opt_out").is_visible()


def test_the_accessibility_check_does_find_violations(page):
    page.set_content(
        "<!DOCTYPE html><html><head><title>Broken</title></head><body><main>"
        '<img src="/static/nhsuk/images/favicon.svg"><input type="text"></main></body></html>'
    )
    found = {v["id"] for v in axe_violations(page)}
    assert {"image-alt", "html-has-lang", "label"} <= found


def test_the_draft_page_shows_what_changed_and_has_no_violation(page, demo):
    devon = Programme.objects.get(slug="devon")
    gov.programme_update(actor=None, programme=devon, data={"length_weeks": 30})
    dpo = User.objects.get(username="dpo-devon")
    draft, _ = services.notice_draft_generate(actor=dpo, programme=devon)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("dpo-devon")
    page.get_by_label("Password").fill("a-demo-password")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")
    page.goto(f"/notice-versions/{draft.pk}/")
    main = page.locator("main").inner_text()
    assert "What changed since version 1" in main
    assert "30 weeks" in main
    violations = axe_violations(page)
    assert violations == [], json.dumps(violations, indent=2)


def test_an_unknown_address_shows_the_portals_own_404_page(page, transactional_db):
    response = page.goto("/no-such-page/")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Page not found"
    assert "If you typed the web address, check it is correct." in page.locator("main").inner_text()
    violations = axe_violations(page)
    assert violations == [], json.dumps(violations, indent=2)


# --- reading ease: the law one click away, the DPO's figures and the publish warning --------
def test_the_exact_words_of_the_law_are_one_click_away(page, demo):
    page.goto("/notices/north-east-lincolnshire/")
    words = "processing is necessary for the purposes of preventive or occupational medicine"
    law = page.get_by_text(words, exact=False)
    assert not law.is_visible()  # a patient reads the plain words first
    page.get_by_text("The exact words of the law").click()
    assert law.is_visible()
    assert "It lets health information be used to give and manage health and social care." in (
        page.locator("details").inner_text()
    )
    violations = axe_violations(page)
    assert violations == [], json.dumps(violations, indent=2)


LEGALESE = (
    "Notwithstanding the foregoing, the processing of pseudonymised personal information "
    "undertaken by the aforementioned organisations shall additionally be subject to "
    "contractual obligations, organisational safeguards and technical protections "
    "commensurate with the identified residual risks of re-identification."
)


def test_a_dpo_sees_how_easy_each_section_is_and_confirms_a_harder_version(page, demo):
    devon = Programme.objects.get(slug="devon")
    dpo = User.objects.get(username="dpo-devon")
    draft, _ = services.notice_draft_generate(actor=dpo, programme=devon)
    services.notice_version_update(actor=dpo, version=draft, local_texts={"about": LEGALESE})
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("dpo-devon")
    page.get_by_label("Password").fill("a-demo-password")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")

    page.goto(f"/notice-versions/{draft.pk}/")
    table = page.get_by_role("table", name="Reading ease and grade of each section")
    assert table.get_by_role("rowheader", name="About this notice").is_visible()
    assert table.get_by_role("rowheader", name="How to opt out").is_visible()
    assert table.get_by_role("rowheader", name="The exact words of the law").count() == 0
    assert "Harder to read than version 1" in page.locator("#harder-to-read").inner_text()
    hardest = page.locator("#hardest-sentences li").first.inner_text()
    assert "in “About this notice”" in hardest and "Notwithstanding the foregoing" in hardest
    # Marked in the preview by an underline as well as a colour, and named for screen readers.
    mark = page.locator(".portal-preview mark.portal-hard-sentence").first
    assert mark.is_visible()
    assert mark.evaluate("m => getComputedStyle(m).textDecorationStyle") == "dashed"
    assert "Hard to read:" in mark.text_content()
    violations = axe_violations(page)
    assert violations == [], json.dumps(violations, indent=2)

    page.get_by_role("link", name="Publish version 2").click()
    warning = page.locator("#harder-to-read").inner_text()
    assert "This draft is harder to read than version 1, which patients read now" in warning
    page.get_by_role("button", name="Yes, publish version 2").click()
    summary = page.locator(".nhsuk-error-summary").inner_text()
    assert "Tick the box to publish a version that is harder to read" in summary
    assert NoticeVersion.objects.get(pk=draft.pk).status == "draft"
    violations = axe_violations(page)
    assert violations == [], json.dumps(violations, indent=2)

    page.get_by_label("I have read the warning: publish version 2 even though").check()
    page.get_by_role("button", name="Yes, publish version 2").click()
    assert "Version 2 is published." in page.locator("main").inner_text()
    assert NoticeVersion.objects.get(pk=draft.pk).status == "published"
