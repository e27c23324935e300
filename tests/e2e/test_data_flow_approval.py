import pytest

from governance import services
from governance.models import DataFlow
from tests.assurance import assure_flow

pytestmark = pytest.mark.e2e


@pytest.fixture
def submitted_flow(programme, practice_a, csu, admin):
    flow = services.data_flow_create(
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
    return services.data_flow_submit(actor=admin, flow=flow)


def test_a_csu_admin_approves_a_flow_from_the_queue_through_the_confirmation(
    page, screenshot, admin2, submitted_flow
):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("csu-admin-2")
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")

    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Data flows").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Data flows awaiting decision"
    page.get_by_role("link", name=f"Data flow #{submitted_flow.pk}").click()
    page.get_by_role("link", name="Approve this flow").click()
    assert page.title().startswith("Approve this data flow")
    assert "DPIA-E2E-01" in page.locator("main").inner_text()

    # Without the tick nothing is approved, and the page says why.
    page.get_by_role("button", name="Approve data flow").click()
    assert "There is a problem" in page.locator("main").inner_text()
    assert DataFlow.objects.get(pk=submitted_flow.pk).status == "submitted"

    page.get_by_label("Comment (optional)").fill("DPIA and data sharing agreement checked.")
    page.get_by_label("I have checked the DPIA and the data sharing agreement").check()
    page.get_by_role("button", name="Approve data flow").click()
    page.wait_for_url(f"**/data-flows/{submitted_flow.pk}/")
    main = page.locator("main").inner_text()
    assert "The data flow was approved." in main
    assert "Data may move on this flow." in main
    assert page.locator("main .nhsuk-tag").first.inner_text() == "Approved"
    assert "DPIA and data sharing agreement checked." in main
    flow = DataFlow.objects.get(pk=submitted_flow.pk)
    assert (flow.status, flow.decided_by.username) == ("approved", "csu-admin-2")
    assert screenshot().stat().st_size > 0
