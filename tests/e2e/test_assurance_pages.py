"""The assurance pages in a real browser, checked with axe (issue 17): a programme's flows and
their conditions at a glance, and the approval page's checklist, before and after the
conditions hold."""

from __future__ import annotations

import pytest

from governance import services
from governance.models import DataFlow
from tests.assurance import assure_flow
from tests.e2e.axe import axe_violations
from tests.e2e.test_journeys import main_text, sign_in

pytestmark = pytest.mark.e2e


@pytest.fixture
def two_flows(programme, practice_a, practice_b, csu, admin):
    """Practice A's flow stands on everything and is approved; practice B's awaits, bare."""
    flows = []
    for source in (practice_a, practice_b):
        flow = services.data_flow_create(
            actor=admin,
            programme=programme,
            source=source,
            destination=csu,
            data_categories=["gp"],
            identifiability="pseudonymised",
            legal_basis_codes=["UK-GDPR-6-1-e", "UK-GDPR-9-2-h"],
            purpose=f"{source.name} to the CSU.",
            dpia_reference="DPIA-E2E",
            dsa_reference="DSA-E2E",
        )
        flows.append(services.data_flow_submit(actor=admin, flow=flow))
    assure_flow(flows[0])
    return flows


def test_the_programme_assurance_page_shows_each_flow_and_condition_and_passes_axe(
    page, screenshot, admin, admin2, two_flows
):
    approved = services.data_flow_approve(actor=admin2, flow=two_flows[0])
    sign_in(page, "csu-admin")
    page.goto("/programmes/testshire/")
    page.get_by_role("link", name="Assurance of the data flows").click()
    assert page.get_by_role("heading", level=1).inner_text().endswith("Assurance of the data flows")
    main = main_text(page)
    assert "Every condition holds for 1 of 2 data flows in effect or proposed." in main
    table = page.get_by_role("table", name="Each data flow of Testshire PHM")
    good = table.locator(f'tr[data-flow="{approved.pk}"]')
    assert good.locator(".nhsuk-tag--green", has_text="Holds").count() == 6
    # Practice B's flow: no DPIA, no agreement, practice B unassured; the CSU is assured.
    bare = table.locator(f'tr[data-flow="{two_flows[1].pk}"]')
    assert bare.locator(".nhsuk-tag--red", has_text="Does not hold").count() == 4
    assert bare.locator(".nhsuk-tag--green", has_text="Holds").count() == 2
    # The words, not the colour alone: each cell says whether it holds.
    assert "No DPIA covers this flow." in main
    assert page.get_by_role("link", name=f"DPIA for flow #{approved.pk}").is_visible()
    assert axe_violations(page) == []
    assert screenshot().stat().st_size > 0


def test_the_approval_checklist_refuses_then_offers_approval_and_passes_axe(
    page, screenshot, admin2, two_flows
):
    bare = two_flows[1]
    sign_in(page, "csu-admin-2")
    page.goto(f"/data-flows/{bare.pk}/")
    page.get_by_role("link", name="Approve this flow").click()
    assert page.title().startswith("Approve this data flow")
    checklist = page.get_by_role("table", name="Each condition the flow must meet")
    assert checklist.get_by_role("row").count() == 7  # the header and six conditions
    assert checklist.get_by_text("Does not hold").count() == 4  # the CSU is assured already
    assert (
        "This flow cannot be approved until every condition holds. 4 conditions do not hold"
        in main_text(page).replace("\n", " ")
    )
    assert page.get_by_role("button", name="Approve data flow").count() == 0
    assert axe_violations(page) == []

    # Once the DPIA, the agreement and both organisations' DSPT and ICO are in place:
    assure_flow(bare)
    page.reload()
    assert checklist.get_by_text("Holds", exact=True).count() == 6
    page.get_by_label("I have checked the DPIA and the data sharing agreement").check()
    assert axe_violations(page) == []
    page.get_by_role("button", name="Approve data flow").click()
    page.wait_for_url(f"**/data-flows/{bare.pk}/")
    assert "The data flow was approved." in main_text(page)
    assert DataFlow.objects.get(pk=bare.pk).status == DataFlow.Status.APPROVED
    assert screenshot().stat().st_size > 0
