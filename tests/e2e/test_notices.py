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
