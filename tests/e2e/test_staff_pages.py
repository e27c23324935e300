"""Staff pages after the demo data is loaded: what they show, and axe-core finds nothing."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from governance.catalogue import legal_bases_sync
from governance.models import LegalBasis
from tests.e2e.axe import axe_violations

pytestmark = pytest.mark.e2e

PASSWORD = "a-demo-password"


@pytest.fixture
def demo(transactional_db, settings, tmp_path):
    legal_bases_sync(LegalBasis)
    settings.DEMO_PASSWORD = PASSWORD
    settings.PHM_SIGNING_P12_FILE = tmp_path / "signing" / "portal-signing.p12"
    call_command("load_demo", stdout=io.StringIO())


def sign_in(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")


def test_a_csu_admins_pages_show_their_queue_menu_and_labels_and_pass_axe(page, demo):
    sign_in(page, "csu-admin")
    menu = page.get_by_role("navigation", name="Menu")
    assert menu.get_by_role("link", name="Extracts").is_visible()
    assert menu.get_by_role("link", name="National checks").is_visible()
    assert "Data flows awaiting your decision" in page.locator("main").inner_text()
    assert axe_violations(page) == []

    page.goto("/data-flows/")
    main = page.locator("main").inner_text()
    assert "Awaiting your decision" in main
    assert "Submitted by you, awaiting another CSU admin" in main
    assert axe_violations(page) == []

    page.goto("/audit/")
    options = page.locator("#action option").all_inner_texts()
    assert "Data flow: approved" in options
    assert axe_violations(page) == []

    page.goto("/programmes/devon/")
    assert "1,200,000" in page.locator("main").inner_text()
    assert axe_violations(page) == []


def test_the_upload_page_labels_flows_and_shows_a_missing_column_at_its_field(page, demo, tmp_path):
    sign_in(page, "pm-devon")
    page.goto("/datasets/upload/")
    labels = page.locator("#id_data_flow option").all_inner_texts()[1:]
    assert labels and all(label.startswith("Data flow #") for label in labels)
    assert len(set(labels)) == len(labels)
    assert axe_violations(page) == []

    extract = tmp_path / "extract.csv"
    extract.write_text("nhs_number,forename,practice\n9434765919,Ann,A81001\n")
    page.locator("#id_data_flow").select_option(index=1)
    page.get_by_label("The extract (CSV, UTF-8, with a header line)").set_input_files(extract)
    # The page reads the chosen file's header before anything is sent.
    expect(page.locator("#file-columns-list")).to_have_text("nhs_number, forename, practice")
    page.get_by_label("Column with the NHS number").fill("nhs_no")
    page.get_by_role("button", name="Upload and encrypt").click()
    error = page.locator("#id_nhs_number-error").inner_text()
    assert "The file has no column named 'nhs_no'." in error
    assert "Its columns are: nhs_number, forename, practice." in error
    assert axe_violations(page) == []
