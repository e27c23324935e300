"""The data flow pages: the queue, filters, a flow with its history, the confirmation steps."""

import pytest

from governance import services
from governance.models import DataFlow
from tests.factories import DataFlowFactory


def _html(response) -> str:
    return response.content.decode()


# --- the queue and filters ---------------------------------------------------------------
def test_the_pages_need_sign_in(client, draft):
    for url in ["/data-flows/", f"/data-flows/{draft.pk}/", f"/data-flows/{draft.pk}/approve/"]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/")


def test_a_csu_admin_sees_the_queue_of_flows_awaiting_decision_by_default(
    client, admin2, submitted, programme, practice_b, csu, admin
):
    other = services.data_flow_create(
        actor=admin,
        programme=programme,
        source=practice_b,
        destination=csu,
        data_categories=["gp"],
        identifiability="identifiable",
    )
    client.force_login(admin2)
    html = _html(client.get("/data-flows/"))
    assert "<title>Data flows awaiting decision – PHM governance portal</title>" in html
    assert "1 data flow awaiting your decision" in html
    assert f'href="/data-flows/{submitted.pk}/"' in html
    assert f'href="/data-flows/{other.pk}/"' not in html  # a draft is not in the queue


def test_the_queue_says_when_it_is_empty(client, admin, draft):
    client.force_login(admin)
    html = _html(client.get("/data-flows/"))
    assert "No data flow is awaiting your decision" in html
    assert "None of the flows awaiting decision was submitted by you." in html


def test_the_queue_splits_a_csu_admins_own_submissions_from_those_they_may_decide(
    client, admin, admin2, submitted, programme, practice_b, csu
):
    other = services.data_flow_submit(
        actor=admin2,
        flow=services.data_flow_create(
            actor=admin2,
            programme=programme,
            source=practice_b,
            destination=csu,
            data_categories=["gp"],
            identifiability="identifiable",
            legal_basis_codes=["UK-GDPR-6-1-e", "UK-GDPR-9-2-h"],
            purpose="Send practice B's GP records to the CSU.",
            dpia_reference="DPIA-TEST-2026-02",
            dsa_reference="DSA-TEST-B82002-0AR",
        ),
    )
    client.force_login(admin)
    html = _html(client.get("/data-flows/"))
    yours, own = html.split("<h2>Submitted by you, awaiting another CSU admin</h2>")
    assert "<h2>Awaiting your decision</h2>" in yours
    assert "1 data flow awaiting your decision" in yours
    assert f"Data flow #{other.pk}<" in yours and f"Data flow #{submitted.pk}<" not in yours
    assert "1 data flow submitted by you, awaiting another CSU admin" in own
    assert f"Data flow #{submitted.pk}<" in own and f"Data flow #{other.pk}<" not in own


def test_the_admin_home_page_counts_own_submissions_apart(client, admin, admin2, submitted):
    client.force_login(admin)
    html = _html(client.get("/"))
    assert (
        '<a href="/data-flows/">Data flows awaiting your decision</a>: 0 to approve or reject; '
        "1 submitted by you, awaiting another CSU admin"
    ) in html
    client.force_login(admin2)
    html = _html(client.get("/"))
    assert (
        '<a href="/data-flows/">Data flows awaiting your decision</a>: 1 to approve or reject</li>'
        in html
    )


def test_every_status_can_be_listed_and_filtered_by_programme_and_organisation(
    client, admin, approved, programme, practice_b, csu
):
    other = services.data_flow_create(
        actor=admin,
        programme=programme,
        source=practice_b,
        destination=csu,
        data_categories=["gp"],
        identifiability="identifiable",
    )
    client.force_login(admin)
    html = _html(client.get("/data-flows/?status=all"))
    assert "<h1>Data flows</h1>" in html
    assert f"Data flow #{approved.pk}<" in html and f"Data flow #{other.pk}<" in html
    html = _html(client.get("/data-flows/?status=all&organisation=B82002"))
    assert f"Data flow #{other.pk}<" in html and f"Data flow #{approved.pk}<" not in html
    html = _html(client.get("/data-flows/?status=approved&programme=testshire"))
    assert f"Data flow #{approved.pk}<" in html and f"Data flow #{other.pk}<" not in html
    assert "No data flow matches" in _html(client.get("/data-flows/?status=all&programme=x"))


def test_the_list_is_paginated(client, admin, programme, practice_a, csu):
    for i in range(30):
        DataFlowFactory(
            programme=programme,
            source=practice_a,
            destination=csu,
            data_categories=["gp"],
            purpose=f"flow {i}",
        )
    client.force_login(admin)
    html = _html(client.get("/data-flows/?status=draft"))
    assert "30 data flows" in html
    assert html.count("Data flow #") == 25
    assert 'href="?status=draft&amp;programme=&amp;organisation=&amp;page=2"' in html
    assert _html(client.get("/data-flows/?status=draft&page=2")).count("Data flow #") == 5


def test_a_party_sees_only_their_flows_in_every_status(client, alice, charlie, approved):
    client.force_login(alice)
    html = _html(client.get("/data-flows/"))
    assert "<h1>Data flows</h1>" in html
    assert f"Data flow #{approved.pk}<" in html
    client.force_login(charlie)
    assert f"Data flow #{approved.pk}<" not in _html(client.get("/data-flows/"))


def test_the_queue_is_linked_from_the_admin_home_page_and_the_header(client, admin2, submitted):
    client.force_login(admin2)
    html = _html(client.get("/"))
    assert (
        '<a href="/data-flows/">Data flows awaiting your decision</a>: 1 to approve or reject'
        in html
    )
    assert 'class="nhsuk-header__navigation-link" href="/data-flows/">Data flows</a>' in html


def test_an_auditor_has_no_data_flow_link(client, auditor):
    client.force_login(auditor)
    assert 'href="/data-flows/"' not in _html(client.get("/"))


# --- a flow's page ------------------------------------------------------------------------
def test_the_flow_page_shows_details_and_history(client, admin, approved):
    client.force_login(admin)
    html = _html(client.get(f"/data-flows/{approved.pk}/"))
    assert "Practice A Surgery to North of England Commissioning Support Unit</h1>" in html
    assert "DPIA-TEST-2026-01" in html and "DSA-TEST-A81001-0AR" in html
    assert "UK GDPR Article 6 (lawful basis) 6(1)(e): Public task" in html
    assert "Data may move on this flow." in html
    history = html.split("<h2>History</h2>", 1)[1]
    assert history.index("Created") < history.index("Submitted") < history.index("Approved")
    assert "csu-admin-2" in history and "DPIA and DSA checked." in history


@pytest.mark.parametrize("who", ["alice", "bob", "dpo_a"])
def test_the_parties_see_a_flow_read_only(client, submitted, who, request):
    client.force_login(request.getfixturevalue(who))
    response = client.get(f"/data-flows/{submitted.pk}/")
    assert response.status_code == 200
    html = _html(response)
    assert "Awaiting decision" in html
    assert "/approve/" not in html and "/reject/" not in html


@pytest.mark.parametrize("who", ["charlie", "dpo_b", "auditor"])
def test_outsiders_get_404_for_a_flow_page(client, submitted, who, request):
    client.force_login(request.getfixturevalue(who))
    for url in [f"/data-flows/{submitted.pk}/", f"/data-flows/{submitted.pk}/approve/"]:
        assert client.get(url).status_code == 404
    response = client.post(
        f"/data-flows/{submitted.pk}/approve/", {"confirm": "on", "comment": "sneaky"}
    )
    assert response.status_code == 404
    submitted.refresh_from_db()
    assert submitted.status == DataFlow.Status.SUBMITTED


def test_the_deciding_admin_sees_approve_and_reject(client, admin2, submitted):
    client.force_login(admin2)
    html = _html(client.get(f"/data-flows/{submitted.pk}/"))
    assert f'href="/data-flows/{submitted.pk}/approve/"' in html
    assert f'href="/data-flows/{submitted.pk}/reject/"' in html


def test_the_submitter_sees_no_decision_buttons_and_why(client, admin, submitted):
    client.force_login(admin)
    html = _html(client.get(f"/data-flows/{submitted.pk}/"))
    assert "/approve/" not in html
    assert "another CSU admin must decide it (four eyes)" in html


# --- the confirmation steps ---------------------------------------------------------------------
def test_approving_needs_the_confirmation_tick(client, admin2, submitted):
    client.force_login(admin2)
    page = client.get(f"/data-flows/{submitted.pk}/approve/")
    assert "I have checked the DPIA and the data sharing agreement" in _html(page)
    response = client.post(f"/data-flows/{submitted.pk}/approve/", {"comment": "ok"})
    assert response.status_code == 200
    html = _html(response)
    assert "There is a problem" in html
    assert "Confirm that you have checked the DPIA and the data sharing agreement" in html
    assert "i have checked" not in html and "This field is required." not in html
    assert 'href="#id_confirm"' in html
    submitted.refresh_from_db()
    assert submitted.status == DataFlow.Status.SUBMITTED


def test_a_csu_admin_approves_through_the_confirmation(client, admin2, submitted):
    client.force_login(admin2)
    response = client.post(
        f"/data-flows/{submitted.pk}/approve/", {"confirm": "on", "comment": "All checked."}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/data-flows/{submitted.pk}/"
    html = _html(client.get(response["Location"]))
    assert "The data flow was approved." in html
    assert "All checked." in html
    submitted.refresh_from_db()
    assert (submitted.status, submitted.decided_by) == ("approved", admin2)


def test_rejecting_through_the_page_needs_a_reason(client, admin2, submitted):
    client.force_login(admin2)
    response = client.post(f"/data-flows/{submitted.pk}/reject/", {"confirm": "on"})
    assert "Say why the flow is rejected." in _html(response)
    submitted.refresh_from_db()
    assert submitted.status == DataFlow.Status.SUBMITTED
    client.post(f"/data-flows/{submitted.pk}/reject/", {"confirm": "on", "reason": "No DSA."})
    submitted.refresh_from_db()
    assert (submitted.status, submitted.decision_comment) == ("rejected", "No DSA.")


def test_the_submitter_is_refused_the_approval_page(client, admin, submitted):
    client.force_login(admin)
    assert client.get(f"/data-flows/{submitted.pk}/approve/").status_code == 403
    response = client.post(f"/data-flows/{submitted.pk}/approve/", {"confirm": "on"})
    assert response.status_code == 403
    assert "four eyes" in _html(response)
    submitted.refresh_from_db()
    assert submitted.status == DataFlow.Status.SUBMITTED


def test_a_practice_manager_party_is_refused_the_approval_page(client, alice, submitted):
    client.force_login(alice)
    assert client.post(f"/data-flows/{submitted.pk}/approve/", {"confirm": "on"}).status_code == 403


def test_a_decided_flow_says_it_cannot_be_decided_again(client, admin2, approved):
    client.force_login(admin2)
    response = client.get(f"/data-flows/{approved.pk}/approve/")
    assert response.status_code == 409
    assert "This flow is approved: it cannot be approved now." in _html(response)
    response = client.post(f"/data-flows/{approved.pk}/approve/", {"confirm": "on"})
    assert response.status_code == 409


def test_an_unknown_step_is_a_404(client, admin2, submitted):
    client.force_login(admin2)
    assert client.get(f"/data-flows/{submitted.pk}/teleport/").status_code == 404


def test_suspend_reinstate_and_close_through_the_pages(client, admin, admin2, approved):
    # Reinstating takes four eyes: admin2 asks for it, admin reinstates.
    for user, action, status in [
        (admin2, "suspend", "suspended"),
        (admin2, "request_reinstatement", "suspended"),
        (admin, "reinstate", "approved"),
        (admin, "close", "closed"),
    ]:
        client.force_login(user)
        response = client.post(f"/data-flows/{approved.pk}/{action}/", {"confirm": "on"})
        assert response.status_code == 302, (action, _html(response))
        approved.refresh_from_db()
        assert approved.status == status


# --- proposing and changing a flow -------------------------------------------------------------
def _form(**extra):
    return {
        "programme": "testshire",
        "source": "A81001",
        "destination": "0AR",
        "data_categories": ["gp"],
        "identifiability": "identifiable",
        "legal_bases": ["UK-GDPR-6-1-e"],
        "purpose": "GP records to the CSU.",
        "dpia_reference": "DPIA-P-1",
        "dsa_reference": "DSA-P-1",
    } | extra


def test_a_dpo_proposes_a_flow_then_submits_it(client, dpo_a, programme):
    client.force_login(dpo_a)
    assert client.get("/data-flows/new/").status_code == 200
    response = client.post("/data-flows/new/", _form())
    assert response.status_code == 302
    flow = DataFlow.objects.get()
    assert (flow.status, flow.created_by, flow.source.ods_code) == ("draft", dpo_a, "A81001")
    response = client.post(f"/data-flows/{flow.pk}/submit/", {"confirm": "on"})
    assert response.status_code == 302
    flow.refresh_from_db()
    assert (flow.status, flow.submitted_by) == ("submitted", dpo_a)


def test_the_propose_form_names_what_is_wrong(client, admin, programme):
    from tests.factories import OrganisationFactory

    OrganisationFactory(ods_code="RXX", name="Elsewhere Trust", kind="nhs_trust")
    client.force_login(admin)
    html = _html(client.post("/data-flows/new/", _form(destination="RXX", data_categories=[])))
    assert "There is a problem" in html
    assert "Choose at least one category of data." in html
    html = _html(client.post("/data-flows/new/", _form(destination="RXX")))
    assert "Elsewhere Trust does not take part in Testshire PHM." in html
    assert not DataFlow.objects.exists()


def test_a_practice_manager_cannot_propose_a_flow(client, alice, programme):
    client.force_login(alice)
    assert client.get("/data-flows/new/").status_code == 403
    assert client.post("/data-flows/new/", _form()).status_code == 403
    assert not DataFlow.objects.exists()


def test_a_draft_is_changed_through_its_page(client, admin, draft):
    client.force_login(admin)
    response = client.post(
        f"/data-flows/{draft.pk}/edit/", _form(data_categories=["gp", "hospital"])
    )
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.data_categories == ["gp", "hospital"]


def test_an_outsider_cannot_change_a_draft_through_its_page(client, charlie, draft):
    client.force_login(charlie)
    assert client.post(f"/data-flows/{draft.pk}/edit/", _form(purpose="x")).status_code == 404
    draft.refresh_from_db()
    assert draft.purpose != "x"
